//! The oracle: a model of conversations and the product's laws, checked
//! against any system that runs the extension. One generator, one model,
//! two systems: the driver on the in-memory host (`src/properties.rs`, many
//! cases) and the real `.wasm` in the host runtime (`tests/fuzz.rs`, fewer
//! cases), where redelivery, crash cut-offs and quotas really happen.
//!
//! The model knows conversations in both directions, messages delivered
//! twice, receipts naming any message (one's own reply too), settings that
//! turn invalid and valid again, refused commits, crashes mid-send, lost
//! answers and timers fired twice. Its laws:
//! - no request about nothing new: every request to Twilio concerns a text
//!   the recipient has neither read, nor answered, nor been told about by
//!   an SMS Twilio may have taken (so never two SMS for one notification);
//! - only to an offline recipient, never to a number refused for good;
//! - the limits hold counting every SMS Twilio may have taken;
//! - every stored notification has a timer, after every step;
//! - liveness: once the faults stop and the settings are valid, every
//!   notification ends (sent, skipped or failed) within bounded time;
//! - no secret in any output or stored record.

#![allow(dead_code)]

use proptest::prelude::*;
use sms_notification::model::{ConversationKind, Format, Message, Receipt};
use sms_notification::policy::limits::DAY_MS;
use sms_notification::state::conversation::Conversation;
use sms_notification::state::record::Record;
use std::collections::{HashMap, HashSet};

pub const USERS: [&str; 3] = ["alice", "bob", "carol"];
pub const NUMBERS: [&str; 4] = [
    "+14155552671",
    "+44 20 7946 0958",
    "4155552671",
    "+1 (415) 555-0000",
];
pub const TEXTS: [&str; 5] = [
    "hi",
    "see you at 8?",
    "🎉🎉 party 🍕",
    "{braces} [and] ~tilde~ €uro",
    "a long message that goes on and on and on and on and on and on and on and on and on and on and on and on and on and on",
];
pub const TOKEN: &str = "oracle-t0ken-secret";

/// What Twilio (or the way to it) does with the next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    RateLimited,
    ServerError,
    /// The connection never opened.
    NotConnected,
    Stop,
    NotMobile,
    BadCredentials,
    WrongSender,
    /// A 201 without a readable SID: Twilio may send it.
    Garbled,
    /// The connection dropped after the request went out.
    Reset,
    /// Twilio takes the SMS, then the call dies before the answer.
    Crash,
}

impl Fault {
    /// Whether Twilio may have taken the SMS.
    pub fn maybe_sent(self) -> bool {
        matches!(self, Self::Garbled | Self::Reset | Self::Crash)
    }
}

#[derive(Clone, Debug)]
pub enum Op {
    /// `from` writes to `to`; `again` redelivers an earlier message of the
    /// pair instead (by how far back), when there is one.
    Message {
        from: usize,
        to: usize,
        text: usize,
        media: bool,
        again: Option<usize>,
    },
    /// `reader` reads a message of their conversation with `other`, any
    /// direction, `back` from the newest.
    Read {
        reader: usize,
        other: usize,
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
    Twilio(Fault),
    /// The settings saved valid (with the generated limits) or invalid.
    Settings {
        valid: bool,
    },
    /// The host refuses every commit (a full quota) or accepts them again.
    Quota {
        full: bool,
    },
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Pairs of two different users, generated as such (a filter would
        // spend proptest's reject budget on long runs).
        5 => (0..3usize, 1..3usize, 0..TEXTS.len(), prop::bool::weighted(0.1), prop::option::weighted(0.15, 0..4usize))
            .prop_map(|(from, step, text, media, again)| Op::Message { from, to: (from + step) % 3, text, media, again }),
        2 => (0..3usize, 1..3usize, 0..4usize)
            .prop_map(|(reader, step, back)| Op::Read { reader, other: (reader + step) % 3, back }),
        1 => (0..3usize, any::<bool>()).prop_map(|(user, online)| Op::Presence { user, online }),
        1 => (0..3usize, prop::option::of(0..NUMBERS.len())).prop_map(|(user, number)| Op::Number { user, number }),
        3 => prop_oneof![0..30u64, 30..400u64, 900..4_000u64].prop_map(|seconds| Op::Advance { seconds }),
        2 => prop::sample::select(vec![
            Fault::RateLimited, Fault::ServerError, Fault::NotConnected, Fault::Stop, Fault::NotMobile,
            Fault::BadCredentials, Fault::WrongSender, Fault::Garbled, Fault::Reset, Fault::Crash,
        ]).prop_map(Op::Twilio),
        1 => prop::bool::weighted(0.8).prop_map(|valid| Op::Settings { valid }),
        1 => prop::bool::weighted(0.3).prop_map(|full| Op::Quota { full }),
    ]
}

#[derive(Clone, Debug)]
pub struct Limits {
    pub delay: u64,
    pub cooldown_minutes: u64,
    pub per_conversation: u64,
    pub per_recipient: u64,
    pub max_segments: u64,
    pub reply_means_read: bool,
}

pub fn limits() -> impl Strategy<Value = Limits> {
    (
        prop::sample::select(vec![0u64, 30, 60]),
        prop::sample::select(vec![0u64, 1, 5]),
        1..4u64,
        1..6u64,
        1..3u64,
        prop::bool::weighted(0.8),
    )
        .prop_map(
            |(delay, cooldown_minutes, per_conversation, per_recipient, max_segments, reply)| {
                Limits {
                    delay,
                    cooldown_minutes,
                    per_conversation,
                    per_recipient,
                    max_segments,
                    reply_means_read: reply,
                }
            },
        )
}

impl Limits {
    pub fn settings(&self, valid: bool) -> String {
        let delay = if valid {
            self.delay.to_string()
        } else {
            "\"soon\"".into()
        };
        format!(
            r#"{{"twilioAccountSid":"AC0123456789abcdef0123456789abcdef","twilioAuthToken":"{TOKEN}","fromMobileNo":"+15005550006",
                "delaySeconds":{delay},"cooldownMinutes":{},"conversationSmsPerDay":{},"recipientSmsPerDay":{},"maxSegments":{},
                "replyMeansRead":{},"websiteURL":"https://chat.example.com"}}"#,
            self.cooldown_minutes,
            self.per_conversation,
            self.per_recipient,
            self.max_segments,
            self.reply_means_read
        )
    }
}

/// A request Twilio received.
#[derive(Clone, Debug)]
pub struct Request {
    pub at: u64,
    pub to: String,
    pub body: String,
    /// The timer whose call sent it.
    pub key: String,
    /// What Twilio did with it.
    pub fault: Option<Fault>,
}

impl Request {
    /// Whether Twilio took, or may have taken, the SMS.
    pub fn taken(&self) -> bool {
        self.fault.is_none_or(Fault::maybe_sent)
    }
}

/// A system that runs the extension for one tenant.
pub trait System {
    fn now(&self) -> u64;
    fn save_settings(&mut self, json: &str);
    fn put_user(&mut self, uid: &str, online: bool, number: Option<&str>);
    /// Whether the call was done (`Ok(true)`; invalid settings included:
    /// the message is still recorded) or refused by the host's full quota
    /// with nothing changed (`Ok(false)`); an error for anything else.
    fn message(&mut self, m: &Message) -> Result<bool, String>;
    fn read(&mut self, r: &Receipt) -> Result<bool, String>;
    fn script(&mut self, fault: Fault);
    fn clear_script(&mut self);
    fn quota(&mut self, full: bool);
    /// Moves the clock, firing due timers; an error for a trap that was
    /// not a scripted crash.
    fn advance(&mut self, ms: u64) -> Result<(), String>;
    /// The requests Twilio received since the last call.
    fn take_requests(&mut self) -> Vec<Request>;
    fn state(&self) -> Vec<(String, Vec<u8>)>;
    fn timers(&self) -> Vec<String>;
    /// Every log line and call result so far, as text.
    fn outputs(&self) -> String;
}

fn conversation(a: usize, b: usize) -> String {
    format!("{}_{}", USERS[a.min(b)], USERS[a.max(b)])
}

/// One message as the model knows it.
struct Said {
    id: String,
    from: usize,
    to: usize,
    text: bool,
}

/// What the model knows of a conversation.
#[derive(Default)]
struct Thread {
    said: Vec<Said>,
    /// Per user: read through this many messages.
    read: HashMap<usize, usize>,
    /// Per user: an SMS Twilio may have taken told about the first this
    /// many messages.
    told: HashMap<usize, usize>,
}

impl Thread {
    /// Texts to `user` neither read nor told about.
    fn news(&self, user: usize) -> usize {
        let floor = self
            .read
            .get(&user)
            .copied()
            .unwrap_or(0)
            .max(self.told.get(&user).copied().unwrap_or(0));
        self.said[floor..]
            .iter()
            .filter(|s| s.text && s.to == user)
            .count()
    }
}

/// Runs `ops` on `system` and checks every law; the error names the first
/// broken one.
pub fn check(system: &mut impl System, limits: &Limits, ops: Vec<Op>) -> Result<(), String> {
    system.save_settings(&limits.settings(true));
    let mut valid = true;
    let mut numbers: Vec<Option<usize>> = vec![Some(0), Some(1), Some(3)];
    let mut online = vec![false; 3];
    for (u, uid) in USERS.iter().enumerate() {
        system.put_user(uid, false, numbers[u].map(|n| NUMBERS[n]));
    }
    let mut threads: HashMap<String, Thread> = HashMap::new();
    let mut refused: HashSet<(String, String)> = HashSet::new();
    let mut taken: Vec<(u64, String, String)> = Vec::new();
    let mut next_id = 0;
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Message {
                from,
                to,
                text,
                media,
                again,
            } => {
                let id = conversation(from, to);
                let thread = threads.entry(id.clone()).or_default();
                let redelivered = again.and_then(|back| {
                    let mine: Vec<&Said> = thread.said.iter().filter(|s| s.from == from).collect();
                    mine.len().checked_sub(1 + back).map(|i| mine[i].id.clone())
                });
                let (mid, is_new) = match redelivered {
                    Some(mid) => (mid, false),
                    None => {
                        next_id += 1;
                        (format!("m{next_id}"), true)
                    }
                };
                let text_of = |mid: &str| {
                    // A redelivery carries the same content.
                    thread.said.iter().find(|s| s.id == mid).map(|s| s.text)
                };
                let is_text = if is_new {
                    !media
                } else {
                    text_of(&mid).unwrap_or(false)
                };
                let message = Message {
                    id: mid.clone(),
                    conversation: id.clone(),
                    kind: ConversationKind::OneOnOne,
                    format: if is_text { Format::Text } else { Format::Image },
                    sender: USERS[from].into(),
                    receiver: USERS[to].into(),
                    text: if is_text {
                        TEXTS[text].into()
                    } else {
                        String::new()
                    },
                    sent_at: system.now(),
                };
                let done = system
                    .message(&message)
                    .map_err(|e| format!("step {step}: on-message: {e}"))?;
                if is_new && done {
                    thread.said.push(Said {
                        id: mid,
                        from,
                        to,
                        text: is_text,
                    });
                    // Writing means having read (when the settings say so,
                    // or cannot be read: then the default holds).
                    if limits.reply_means_read || !valid {
                        thread.read.insert(from, thread.said.len());
                    }
                }
            }
            Op::Read {
                reader,
                other,
                back,
            } => {
                let id = conversation(reader, other);
                let Some(thread) = threads.get_mut(&id) else {
                    continue;
                };
                let Some(i) = thread.said.len().checked_sub(1 + back) else {
                    continue;
                };
                let receipt = Receipt {
                    conversation: id.clone(),
                    reader: USERS[reader].into(),
                    message: thread.said[i].id.clone(),
                    read_at: system.now(),
                };
                let done = system
                    .read(&receipt)
                    .map_err(|e| format!("step {step}: on-read: {e}"))?;
                if done {
                    let mark = thread.read.entry(reader).or_default();
                    *mark = (*mark).max(i + 1);
                }
            }
            Op::Presence { user, online: o } => {
                online[user] = o;
                system.put_user(USERS[user], o, numbers[user].map(|n| NUMBERS[n]));
            }
            Op::Number { user, number } => {
                numbers[user] = number;
                system.put_user(USERS[user], online[user], number.map(|n| NUMBERS[n]));
            }
            Op::Advance { seconds } => system
                .advance(seconds * 1000)
                .map_err(|e| format!("step {step}: {e}"))?,
            Op::Twilio(fault) => system.script(fault),
            Op::Settings { valid: v } => {
                valid = v;
                system.save_settings(&limits.settings(v));
            }
            Op::Quota { full } => system.quota(full),
        }
        let requests = system.take_requests();
        laws(
            system,
            requests,
            &mut threads,
            &online,
            &mut refused,
            &mut taken,
            limits,
        )
        .map_err(|e| format!("step {step}: {e}"))?;
    }
    // Liveness: the faults stop, the settings are valid; within three days
    // every notification has ended.
    system.quota(false);
    system.clear_script();
    system.save_settings(&limits.settings(true));
    system
        .advance(3 * DAY_MS)
        .map_err(|e| format!("at the end: {e}"))?;
    let requests = system.take_requests();
    laws(
        system,
        requests,
        &mut threads,
        &online,
        &mut refused,
        &mut taken,
        limits,
    )
    .map_err(|e| format!("at the end: {e}"))?;
    for (key, bytes) in system.state() {
        if let (Some(_), Ok(c)) = (
            key.strip_prefix("conversation/"),
            Conversation::decode(&bytes),
        ) {
            for p in &c.participants {
                if p.due_at.is_some() {
                    return Err(format!("{key}: {}'s notification never ended", p.uid));
                }
            }
        }
    }
    // Liveness that demands the SMS: each recipient, offline with a valid
    // number nobody refused, gets a new text in each of their
    // conversations; with room in the limits (as the model counts them),
    // exactly one request reaches Twilio by the due time, or by the retry
    // schedule's first step when Twilio's first answer is a 500.
    let mut fresh = Vec::new();
    for (r, uid) in USERS.iter().enumerate() {
        let number = format!("+1415555{:04}", 3_000 + r);
        if sms_notification::contact::normalize(&number).is_err() {
            return Err(format!("the oracle's number {number} is not valid"));
        }
        system.put_user(uid, false, Some(&number));
        fresh.push(number);
    }
    let offline = [false; 3];
    let pairs = [(0, 1), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2)];
    for (i, (from, to)) in pairs.into_iter().enumerate() {
        let id = conversation(from, to);
        let now = system.now();
        let due = now + limits.delay * 1000;
        let counted = |same: &dyn Fn(&(u64, String, String)) -> bool| {
            taken
                .iter()
                .filter(|s| s.0 + DAY_MS > due && same(s))
                .count() as u64
        };
        let room = counted(&|s| s.1 == id && s.2 == USERS[to]) < limits.per_conversation
            && counted(&|s| s.2 == USERS[to]) < limits.per_recipient;
        let refused_first = i == 0;
        if refused_first {
            system.script(Fault::ServerError);
        }
        next_id += 1;
        let message = Message {
            id: format!("m{next_id}"),
            conversation: id.clone(),
            kind: ConversationKind::OneOnOne,
            format: Format::Text,
            sender: USERS[from].into(),
            receiver: USERS[to].into(),
            text: TEXTS[i % TEXTS.len()].into(),
            sent_at: now,
        };
        if !system
            .message(&message)
            .map_err(|e| format!("liveness: on-message: {e}"))?
        {
            return Err("liveness: a message refused with the quota open".into());
        }
        let thread = threads.entry(id.clone()).or_default();
        thread.said.push(Said {
            id: message.id.clone(),
            from,
            to,
            text: true,
        });
        if limits.reply_means_read {
            thread.read.insert(from, thread.said.len());
        }
        let window = if refused_first {
            limits.delay * 1000 + sms_notification::calls::deliver::RETRY_BASE_MS
        } else {
            limits.delay * 1000
        };
        let before = taken.len();
        let requests = system.take_requests();
        if !requests.is_empty() {
            return Err(format!(
                "liveness: a request before its due time: {requests:?}"
            ));
        }
        system
            .advance(window)
            .map_err(|e| format!("liveness: {e}"))?;
        let requests = system.take_requests();
        let to_number = &fresh[to];
        let timer = sms_notification::calls::notify::deliver_timer(&id, USERS[to]);
        let mine: Vec<&Request> = requests
            .iter()
            .filter(|r| &r.to == to_number && r.key == timer)
            .collect();
        let sent = mine.iter().filter(|r| r.fault.is_none()).count();
        let expected = usize::from(room);
        if sent != expected || mine.len() != expected * (1 + usize::from(refused_first)) {
            return Err(format!(
                "liveness: {} in {id}, offline with a valid number and {} in the limits, got {sent} SMS (expected {expected}) by {}s after the message: {requests:?}",
                USERS[to],
                if room { "room" } else { "no room" },
                window / 1000
            ));
        }
        // The same requests through the laws (nothing new, limits, ...).
        system.clear_script();
        laws(
            system,
            requests,
            &mut threads,
            &offline,
            &mut refused,
            &mut taken,
            limits,
        )
        .map_err(|e| format!("liveness: {e}"))?;
        if taken.len() != before + expected {
            return Err("liveness: the laws counted another SMS".into());
        }
    }
    // No secret in any output or stored record.
    let outputs = system.outputs();
    if outputs.contains(TOKEN) {
        return Err("the auth token reached an output".into());
    }
    for (key, bytes) in system.state() {
        if bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()) {
            return Err(format!("the auth token is stored under {key}"));
        }
    }
    Ok(())
}

fn laws(
    system: &mut impl System,
    requests: Vec<Request>,
    threads: &mut HashMap<String, Thread>,
    online: &[bool],
    refused: &mut HashSet<(String, String)>,
    taken: &mut Vec<(u64, String, String)>,
    limits: &Limits,
) -> Result<(), String> {
    for request in requests {
        let parts: Vec<&str> = request.key.split('/').collect();
        let (id, recipient) = (parts[1].to_owned(), parts[2].to_owned());
        let r = USERS
            .iter()
            .position(|u| *u == recipient)
            .ok_or("a request for a stranger")?;
        let thread = threads
            .get_mut(&id)
            .ok_or(format!("a request for {id}, which had no message"))?;
        if thread.news(r) == 0 {
            return Err(format!(
                "a request to {recipient} in {id} about nothing new (read, answered or already told): {request:?}"
            ));
        }
        if online[r] {
            return Err(format!("a request to {recipient}, who is online"));
        }
        if refused.contains(&(recipient.clone(), request.to.clone())) {
            return Err(format!(
                "{} texted again after Twilio refused it for good",
                request.to
            ));
        }
        if !sms_notification::text::segments::fits(&request.body, limits.max_segments as usize) {
            return Err(format!(
                "{} segments: {}",
                sms_notification::text::segments::count(&request.body).segments,
                request.body
            ));
        }
        if request.taken() {
            thread.told.insert(r, thread.said.len());
            taken.push((request.at, id.clone(), recipient.clone()));
        }
        if matches!(request.fault, Some(Fault::Stop | Fault::NotMobile)) {
            refused.insert((recipient, request.to.clone()));
        }
    }
    // The limits, counting every SMS Twilio may have taken.
    for (i, (t, id, recipient)) in taken.iter().enumerate() {
        let window = |same: &dyn Fn(&(u64, String, String)) -> bool| {
            taken[..=i]
                .iter()
                .filter(|s| s.0 + DAY_MS > *t && same(s))
                .count() as u64
        };
        if window(&|s| &s.1 == id && &s.2 == recipient) > limits.per_conversation {
            return Err(format!(
                "more than {} SMS to {recipient} in {id} in a day",
                limits.per_conversation
            ));
        }
        if window(&|s| &s.2 == recipient) > limits.per_recipient {
            return Err(format!(
                "more than {} SMS to {recipient} in a day",
                limits.per_recipient
            ));
        }
        if let Some(previous) = taken[..i]
            .iter()
            .rev()
            .find(|s| &s.1 == id && &s.2 == recipient)
            && t - previous.0 < limits.cooldown_minutes * 60_000
        {
            return Err(format!("the cooldown broken for {recipient} in {id}"));
        }
    }
    // Every stored notification has a timer.
    let timers: HashSet<String> = system.timers().into_iter().collect();
    for (key, bytes) in system.state() {
        let Some(id) = key.strip_prefix("conversation/") else {
            continue;
        };
        let c = Conversation::decode(&bytes).map_err(|e| format!("{key} unreadable: {e:?}"))?;
        for p in &c.participants {
            let timer = sms_notification::calls::notify::deliver_timer(id, &p.uid);
            if p.due_at.is_some() && !timers.contains(&timer) {
                return Err(format!("{}'s notification in {id} has no timer", p.uid));
            }
        }
    }
    Ok(())
}
