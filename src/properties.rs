//! Property tests: random sequences of messages, receipts, presence and
//! number changes and clock advances, driven through the driver and core
//! on the in-memory host, checked against the product's promises.

use crate::history::DAY_MS;
use crate::memory::Memory;
use crate::model::{ConversationKind, Format, Message, Outcome, Presence, Receipt, User};
use crate::segments;
use crate::timer::Timer;
use crate::twilio::{Response, Transport};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;

const USERS: [&str; 3] = ["alice", "bob", "carol"];
const NUMBERS: [&str; 5] = [
    "+14155552671",
    "+44 20 7946 0958",
    "4155552671",
    "+1 (415) 555-0000",
    "not a number",
];
const TEXTS: [&str; 6] = [
    "hi",
    "see you at 8?",
    "🎉🎉 party 🍕",
    "{braces} [and] ~tilde~ €uro",
    "a long message that goes on and on and on and on and on and on and on and on and on and on and on and on and on and on and on and on and on and on",
    "ünïcödé ✓ 😀 and some more text to push it past a single UCS-2 segment of seventy",
];

#[derive(Clone, Debug)]
enum Op {
    /// `from` writes to `to` (indices into USERS), text index.
    Message {
        from: usize,
        to: usize,
        text: usize,
        media: bool,
    },
    /// `reader` reads the newest (`back` = 0) or an older message to them
    /// from `from`.
    Read {
        reader: usize,
        from: usize,
        back: usize,
    },
    Presence {
        user: usize,
        online: bool,
    },
    Number {
        user: usize,
        number: Option<usize>,
    },
    Advance {
        seconds: u64,
    },
    /// Twilio's answer to the next request.
    Twilio(Answer),
}

#[derive(Clone, Copy, Debug)]
enum Answer {
    RateLimited,
    ServerError,
    TimedOut,
    Stop,
    NotMobile,
    BadCredentials,
    Garbled,
}

impl Answer {
    fn response(self) -> Response {
        let refusal = |status: u16, code: u32| Response::Http {
            status,
            body: format!(r#"{{"code":{code},"message":"scripted"}}"#).into_bytes(),
            retry_after: None,
        };
        match self {
            Self::RateLimited => Response::Http {
                status: 429,
                body: br#"{"code":20429,"message":"Too Many Requests"}"#.to_vec(),
                retry_after: Some(5),
            },
            Self::ServerError => refusal(503, 0),
            Self::TimedOut => Response::Transport(Transport::NotConnected("timed out".into())),
            Self::Stop => refusal(400, 21610),
            Self::NotMobile => refusal(400, 21614),
            Self::BadCredentials => refusal(401, 20003),
            // Accepted, but the answer is unreadable: Twilio may send it.
            Self::Garbled => Response::Http {
                status: 201,
                body: b"<html>".to_vec(),
                retry_after: None,
            },
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 0..3usize, 0..TEXTS.len(), prop::bool::weighted(0.1))
            .prop_map(|(from, to, text, media)| Op::Message { from, to, text, media }),
        2 => (0..3usize, 0..3usize, 0..3usize).prop_map(|(reader, from, back)| Op::Read { reader, from, back }),
        1 => (0..3usize, any::<bool>()).prop_map(|(user, online)| Op::Presence { user, online }),
        1 => (0..3usize, prop::option::of(0..NUMBERS.len())).prop_map(|(user, number)| Op::Number { user, number }),
        3 => prop_oneof![0..30u64, 30..400u64, 3_000..90_000u64].prop_map(|seconds| Op::Advance { seconds }),
        1 => prop::sample::select(vec![
            Answer::RateLimited, Answer::ServerError, Answer::TimedOut, Answer::Stop,
            Answer::NotMobile, Answer::BadCredentials, Answer::Garbled,
        ]).prop_map(Op::Twilio),
    ]
}

#[derive(Clone, Debug)]
struct Limits {
    delay: u64,
    cooldown_minutes: u64,
    per_conversation: u64,
    per_recipient: u64,
    max_segments: u64,
    include_text: bool,
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        prop::sample::select(vec![0u64, 30, 60]),
        prop::sample::select(vec![0u64, 1, 5]),
        1..4u64,
        1..6u64,
        1..3u64,
        any::<bool>(),
    )
        .prop_map(
            |(
                delay,
                cooldown_minutes,
                per_conversation,
                per_recipient,
                max_segments,
                include_text,
            )| Limits {
                delay,
                cooldown_minutes,
                per_conversation,
                per_recipient,
                max_segments,
                include_text,
            },
        )
}

fn conversation(a: usize, b: usize) -> String {
    let (a, b) = (a.min(b), a.max(b));
    format!("{}_{}", USERS[a], USERS[b])
}

/// What the model knows of one (conversation, recipient).
#[derive(Default)]
struct Thread {
    /// Text message ids to the recipient, in order.
    messages: Vec<String>,
    /// How many of `messages` the recipient has read.
    read: usize,
    /// How many of `messages` existed at the last SMS.
    at_last_sms: usize,
}

fn user(uid: &str, number: Option<usize>, online: bool) -> User {
    let metadata = match number {
        Some(n) => format!(r#"{{"@private":{{"contactNumber":"{}"}}}}"#, NUMBERS[n]),
        None => "{}".into(),
    };
    User {
        uid: uid.into(),
        name: uid.to_uppercase(),
        presence: if online {
            Presence::Online
        } else {
            Presence::Offline
        },
        metadata,
    }
}

fn is_e164(to: &str) -> bool {
    let digits = &to[1.min(to.len())..];
    to.starts_with('+')
        && (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn promises_hold_for_any_sequence(limits in limits(), ops in prop::collection::vec(op(), 1..60)) {
        let settings = format!(
            r#"{{"twilioAccountSid":"AC0123456789abcdef0123456789abcdef","twilioAuthToken":"t0k","fromMobileNo":"+15005550006",
                "delaySeconds":{},"cooldownMinutes":{},"conversationSmsPerDay":{},"recipientSmsPerDay":{},"maxSegments":{},"includeMessageText":{},
                "websiteURL":"https://chat.example.com"}}"#,
            limits.delay, limits.cooldown_minutes, limits.per_conversation, limits.per_recipient, limits.max_segments, limits.include_text
        );
        let mut host = Memory {
            settings: Some(settings),
            ..Memory::default()
        };
        // Scripted answers first, then the default 201.
        let script: Rc<RefCell<VecDeque<Answer>>> = Rc::default();
        let mut default = std::mem::replace(&mut host.twilio, Box::new(|_| unreachable!()));
        let queue = script.clone();
        host.twilio = Box::new(move |request| match queue.borrow_mut().pop_front() {
            Some(answer) => answer.response(),
            None => default(request),
        });
        // Numbers Twilio refused for good, per recipient (STOP, not a mobile).
        let mut refused: HashSet<(String, String)> = HashSet::new();
        let mut numbers: HashMap<usize, Option<usize>> = (0..3).map(|u| (u, Some(u))).collect();
        let mut online: HashMap<usize, bool> = (0..3).map(|u| (u, false)).collect();
        for (u, uid) in USERS.iter().enumerate() {
            host.users.insert(uid.to_string(), user(uid, numbers[&u], online[&u]));
        }
        let mut threads: HashMap<(String, String), Thread> = HashMap::new();
        // Every SMS: (time, conversation, recipient).
        let mut sms: Vec<(u64, String, String)> = Vec::new();
        let mut next_id = 0;

        for op in ops {
            let before = host.requests.len();
            let mut fired = Vec::new();
            match op {
                Op::Message { from, to, text, media } => {
                    next_id += 1;
                    let id = next_id.to_string();
                    let message = Message {
                        id: id.clone(),
                        conversation: conversation(from, to),
                        kind: ConversationKind::OneOnOne,
                        format: if media { Format::Image } else { Format::Text },
                        sender: USERS[from].into(),
                        receiver: USERS[to].into(),
                        text: TEXTS[text].into(),
                        sent_at: host.now,
                    };
                    let outcome = host.on_message(&message);
                    prop_assert!(outcome.is_ok(), "{outcome:?}");
                    if from != to && !media {
                        threads.entry((message.conversation, USERS[to].into())).or_default().messages.push(id);
                    }
                }
                Op::Read { reader, from, back } => {
                    let key = (conversation(reader, from), USERS[reader].to_string());
                    let Some(thread) = threads.get_mut(&key) else { continue };
                    let Some(index) = thread.messages.len().checked_sub(1 + back) else { continue };
                    let receipt = Receipt {
                        conversation: key.0.clone(),
                        reader: key.1.clone(),
                        message: thread.messages[index].clone(),
                        read_at: host.now,
                    };
                    prop_assert!(host.on_read(&receipt).is_ok());
                    thread.read = thread.read.max(index + 1);
                }
                Op::Presence { user: u, online: o } => {
                    online.insert(u, o);
                    host.users.insert(USERS[u].into(), user(USERS[u], numbers[&u], o));
                }
                Op::Number { user: u, number } => {
                    numbers.insert(u, number);
                    host.users.insert(USERS[u].into(), user(USERS[u], number, online[&u]));
                }
                Op::Advance { seconds } => fired = host.advance(seconds * 1000, 10_000),
                Op::Twilio(answer) => script.borrow_mut().push_back(answer),
            }
            for (_, at, result) in &fired {
                prop_assert!(!matches!(result, Err(crate::model::Error::InvalidSettings(_))), "{result:?}");
                let Ok(Outcome::Sent { conversation, recipient, unread, .. }) = result else { continue };
                let thread = threads.get_mut(&(conversation.clone(), recipient.clone())).expect("an SMS for a known thread");
                let news = thread.messages.len() - thread.read.max(thread.at_last_sms);
                // No SMS for what was read or already notified; at most one per notification.
                prop_assert!(news > 0, "SMS for {conversation}/{recipient} with nothing new unread");
                prop_assert!(*unread as usize <= news, "told about {unread}, only {news} new and unread");
                // The recipient is offline when it is sent.
                let r = USERS.iter().position(|u| u == recipient).unwrap();
                prop_assert!(!online[&r], "SMS to an online recipient");
                thread.at_last_sms = thread.messages.len();
                sms.push((*at, conversation.clone(), recipient.clone()));
            }
            for (_, key, request) in &host.requests[before..] {
                let form: HashMap<String, String> = form_urlencoded::parse(request.body.as_bytes()).into_owned().collect();
                prop_assert!(is_e164(&form["To"]), "SMS to {}", form["To"]);
                let Some(Timer::Deliver { recipient, .. }) = Timer::parse(key) else {
                    panic!("a request outside a delivery timer: {key}")
                };
                prop_assert!(
                    !refused.contains(&(recipient.clone(), form["To"].clone())),
                    "texted {} again after Twilio refused it for good", form["To"]
                );
                let body = &form["Body"];
                prop_assert!(segments::fits(body, limits.max_segments as usize), "{:?}: {body}", segments::count(body));
                prop_assert!(body.chars().count() <= segments::MAX_CHARS);
                if !limits.include_text {
                    for text in TEXTS.iter().filter(|t| t.chars().count() > 5) {
                        let start: String = text.chars().take(5).collect();
                        prop_assert!(!body.contains(&start), "privacy mode leaked {start:?}: {body}");
                    }
                }
            }
            for (key, _, result) in &fired {
                if let Ok(Outcome::Failed { recipient, error, .. }) = result
                    && matches!(error.code, Some(21610 | 21614))
                {
                    let (_, _, request) = host.requests.iter().rev().find(|(_, k, _)| k == key).expect("the refused request");
                    let to = form_urlencoded::parse(request.body.as_bytes()).find(|(k, _)| k == "To").unwrap().1.into_owned();
                    refused.insert((recipient.clone(), to));
                }
            }
        }

        // The limits: per (conversation, recipient) and per recipient within any 24 h, and the cooldown.
        for (i, (t, conversation, recipient)) in sms.iter().enumerate() {
            let window = |same: &dyn Fn(&(u64, String, String)) -> bool| {
                sms[..=i].iter().filter(|s| s.0 + DAY_MS > *t && same(s)).count() as u64
            };
            prop_assert!(window(&|s| &s.1 == conversation && &s.2 == recipient) <= limits.per_conversation);
            prop_assert!(window(&|s| &s.2 == recipient) <= limits.per_recipient);
            if let Some(previous) = sms[..i].iter().rev().find(|s| &s.1 == conversation && &s.2 == recipient) {
                prop_assert!(t - previous.0 >= limits.cooldown_minutes * 60_000, "cooldown broken");
            }
        }
    }
}
