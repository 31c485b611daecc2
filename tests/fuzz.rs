//! Random event sequences through the real component: whatever arrives, no
//! call traps and every SMS that leaves is well formed. A short pass runs
//! with every `cargo test`; `FUZZ_CASES=2000 cargo test --release --test fuzz`
//! runs a long one.

use host_test::TestRuntime;
use host_test::bindings::sms_notification::extension::types::{
    ConversationKind, Message, MessageFormat, Receipt,
};
use host_test::fake_twilio::{Answer, Transport};
use host_test::storage::{Presence, User};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(12)
}

const UIDS: [&str; 4] = ["alice", "bob", "carol", "a/b%2F\u{7f}"];

#[derive(Clone, Debug)]
enum Event {
    Message {
        id: String,
        from: usize,
        to: usize,
        group: bool,
        format: u8,
        text: String,
    },
    Read {
        reader: usize,
        from: usize,
        id: String,
    },
    User {
        uid: usize,
        online: bool,
        metadata: String,
    },
    Settings(String),
    Advance(u64),
    Fire(String),
    Twilio(Answer),
}

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0..20u32).prop_map(|n| format!("m{n}")),
        1 => any::<String>(),
        1 => "[\\x00-\\x1f]{1,4}",
        1 => Just("x".repeat(300)),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z {}🎉€é\\n]{0,60}",
        1 => any::<String>(),
        1 => (1usize..200_000).prop_map(|n| "w".repeat(n)),
    ]
}

fn metadata() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec!["+14155552671", "+44 20 7946 0958", "4155552671", "+1", ""])
            .prop_map(|n| format!(r#"{{"@private":{{"contactNumber":"{n}"}}}}"#)),
        1 => any::<String>(),
        1 => (1usize..5_000).prop_map(|n| "[".repeat(n)),
        1 => Just(r#"{"@private":{"contactNumber":12}}"#.to_owned()),
    ]
}

fn settings() -> impl Strategy<Value = String> {
    let good = r#""twilioAccountSid":"AC0123456789abcdef0123456789abcdef","twilioAuthToken":"fuzz-token","fromMobileNo":"+15005550006""#;
    prop_oneof![
        4 => (0u64..120, 0u64..3, 1u64..4, any::<bool>(), "[a-z {}]{0,30}").prop_map(move |(delay, cooldown, segments, text, template)| {
            format!(r#"{{{good},"delaySeconds":{delay},"cooldownMinutes":{cooldown},"maxSegments":{segments},"includeMessageText":{text},"template":{}}}"#, serde_json::Value::from(template))
        }),
        1 => any::<String>(),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        (
            prop::sample::select(vec![201u16, 400, 401, 404, 429, 500, 503]),
            prop::option::of(prop::sample::select(vec![
                20003u32, 20429, 21211, 21610, 21614, 21617
            ])),
            prop::option::of(0u64..100)
        )
            .prop_map(|(status, code, retry_after)| Answer {
                status: Some(status),
                code,
                retry_after,
                ..Answer::default()
            }),
        Just(Answer {
            transport: Some(Transport::Refused),
            ..Answer::default()
        }),
        Just(Answer {
            body: Some("{not json".into()),
            ..Answer::default()
        }),
        Just(Answer {
            crash: true,
            ..Answer::default()
        }),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => (id(), 0..4usize, 0..4usize, prop::bool::weighted(0.1), 0u8..6, text())
            .prop_map(|(id, from, to, group, format, text)| Event::Message { id, from, to, group, format, text }),
        2 => (0..4usize, 0..4usize, id()).prop_map(|(reader, from, id)| Event::Read { reader, from, id }),
        2 => (0..4usize, any::<bool>(), metadata()).prop_map(|(uid, online, metadata)| Event::User { uid, online, metadata }),
        1 => settings().prop_map(Event::Settings),
        4 => prop_oneof![0u64..120, 120u64..7_200].prop_map(Event::Advance),
        1 => prop_oneof![Just("deliver/alice_bob/bob".to_owned()), any::<String>()].prop_map(Event::Fire),
        2 => answer().prop_map(Event::Twilio),
    ]
}

fn conversation(a: usize, b: usize) -> String {
    format!("{}_{}", UIDS[a.min(b)], UIDS[a.max(b)])
}

async fn run(events: Vec<Event>) -> Result<(), String> {
    let mut rt = TestRuntime::new().unwrap();
    let t = "fuzz";
    for event in events {
        let now = rt.clock.now();
        let result = match event {
            Event::Message {
                id,
                from,
                to,
                group,
                format,
                text,
            } => {
                let format = [
                    MessageFormat::Text,
                    MessageFormat::Image,
                    MessageFormat::Video,
                    MessageFormat::Audio,
                    MessageFormat::File,
                    MessageFormat::Custom,
                ][format as usize % 6];
                let message = Message {
                    id,
                    conversation: conversation(from, to),
                    kind: if group {
                        ConversationKind::Group
                    } else {
                        ConversationKind::OneOnOne
                    },
                    format,
                    sender: UIDS[from].into(),
                    receiver: UIDS[to].into(),
                    text,
                    sent_at: now,
                };
                rt.on_message(t, &message).await.map(|_| ())
            }
            Event::Read { reader, from, id } => {
                let receipt = Receipt {
                    conversation: conversation(reader, from),
                    reader: UIDS[reader].into(),
                    message: id,
                    read_at: now,
                };
                rt.on_read(t, &receipt).await.map(|_| ())
            }
            Event::User {
                uid,
                online,
                metadata,
            } => {
                let user = User {
                    uid: UIDS[uid].into(),
                    name: UIDS[uid].to_uppercase(),
                    presence: if online {
                        Presence::Online
                    } else {
                        Presence::Offline
                    },
                    metadata,
                };
                rt.tenant(t)
                    .lock()
                    .unwrap()
                    .users
                    .insert(UIDS[uid].into(), user);
                Ok(())
            }
            Event::Settings(json) => {
                rt.tenant(t).lock().unwrap().save_settings(json.clone());
                rt.validate_settings(t, &json).await.map(|_| ())
            }
            Event::Advance(seconds) => {
                let fired = rt
                    .advance(seconds * 1000)
                    .await
                    .map_err(|e| format!("{e:#}"))?;
                // A scripted crash is the only trap allowed, in every call.
                match fired.into_iter().find(|f| {
                    f.result
                        .as_ref()
                        .is_err_and(|e| !format!("{e:#}").contains("aborted mid-call"))
                }) {
                    Some(f) => Err(f.result.unwrap_err()),
                    None => Ok(()),
                }
            }
            Event::Fire(key) => rt.on_timer(t, &key).await.map(|_| ()),
            Event::Twilio(answer) => {
                rt.traffic.script(t, [answer]);
                Ok(())
            }
        };
        if let Err(trap) = result {
            let trap = format!("{trap:#}");
            if !trap.contains("aborted mid-call") {
                return Err(trap);
            }
        }
        for sms in rt.traffic.take_sms() {
            let body = sms
                .form
                .iter()
                .find(|(k, _)| k == "Body")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            if body.chars().count() > 1600 {
                return Err(format!("a body of {} characters", body.chars().count()));
            }
            if sms.auth_user.as_deref() != Some("AC0123456789abcdef0123456789abcdef") {
                return Err(format!("unexpected auth user {:?}", sms.auth_user));
            }
        }
    }
    Ok(())
}

mod oracle;

/// The real component in the host runtime, as the oracle's system.
struct Wasm {
    rt: TestRuntime,
    tokio: tokio::runtime::Runtime,
    outputs: String,
}

const TENANT: &str = "oracle";

impl Wasm {
    fn new() -> Self {
        Self {
            rt: TestRuntime::new().unwrap(),
            tokio: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            outputs: String::new(),
        }
    }

    fn called(&mut self, what: &str, call: host_test::runtime::Call) -> Result<bool, String> {
        use host_test::bindings::sms_notification::extension::types::Error;
        self.outputs.push_str(&format!("{what}: {call:?}\n"));
        match call {
            Ok(Ok(_) | Err(Error::InvalidSettings(_))) => Ok(true),
            Ok(Err(Error::Host(_))) => Ok(false),
            Ok(Err(e)) => Err(format!("{e:?}")),
            Err(trap) if format!("{trap:#}").contains("aborted mid-call") => Ok(true),
            Err(trap) => Err(format!("{trap:#}")),
        }
    }
}

fn wit_message(m: &sms_notification::model::Message) -> Message {
    Message {
        id: m.id.clone(),
        conversation: m.conversation.clone(),
        kind: ConversationKind::OneOnOne,
        format: match m.format {
            sms_notification::model::Format::Text => MessageFormat::Text,
            _ => MessageFormat::Image,
        },
        sender: m.sender.clone(),
        receiver: m.receiver.clone(),
        text: m.text.clone(),
        sent_at: m.sent_at,
    }
}

impl oracle::System for Wasm {
    fn now(&self) -> u64 {
        self.rt.clock.now()
    }

    fn save_settings(&mut self, json: &str) {
        self.rt
            .tenant(TENANT)
            .lock()
            .unwrap()
            .save_settings(json.to_owned());
    }

    fn put_user(&mut self, uid: &str, online: bool, number: Option<&str>) {
        let metadata = match number {
            Some(n) => format!(r#"{{"@private":{{"contactNumber":"{n}"}}}}"#),
            None => "{}".into(),
        };
        let presence = if online {
            Presence::Online
        } else {
            Presence::Offline
        };
        let user = User {
            uid: uid.into(),
            name: uid.to_uppercase(),
            presence,
            metadata,
        };
        self.rt
            .tenant(TENANT)
            .lock()
            .unwrap()
            .users
            .insert(uid.into(), user);
    }

    fn message(&mut self, m: &sms_notification::model::Message) -> Result<bool, String> {
        let call = self
            .tokio
            .block_on(self.rt.on_message(TENANT, &wit_message(m)));
        self.called("on-message", call)
    }

    fn read(&mut self, r: &sms_notification::model::Receipt) -> Result<bool, String> {
        let receipt = Receipt {
            conversation: r.conversation.clone(),
            reader: r.reader.clone(),
            message: r.message.clone(),
            read_at: r.read_at,
        };
        let call = self.tokio.block_on(self.rt.on_read(TENANT, &receipt));
        self.called("on-read", call)
    }

    fn script(&mut self, fault: oracle::Fault) {
        use oracle::Fault as F;
        let refusal = |status: u16, code: u32| Answer {
            status: Some(status),
            code: Some(code),
            retry_after: Some(5),
            ..Answer::default()
        };
        let answer = match fault {
            F::RateLimited => refusal(429, 20429),
            F::ServerError => Answer {
                status: Some(503),
                ..Answer::default()
            },
            F::NotConnected => Answer {
                transport: Some(Transport::Refused),
                ..Answer::default()
            },
            F::Stop => refusal(400, 21610),
            F::NotMobile => refusal(400, 21614),
            F::BadCredentials => refusal(401, 20003),
            F::WrongSender => refusal(400, 21659),
            F::Garbled => Answer {
                body: Some("<html>".into()),
                ..Answer::default()
            },
            F::Reset => Answer {
                transport: Some(Transport::Reset),
                ..Answer::default()
            },
            F::Crash => Answer {
                crash: true,
                ..Answer::default()
            },
        };
        self.rt.traffic.script(TENANT, [answer]);
    }

    fn clear_script(&mut self) {
        self.rt.traffic.scripts.lock().unwrap().clear();
    }

    fn quota(&mut self, full: bool) {
        self.rt.tenant(TENANT).lock().unwrap().max_keys = full.then_some(0);
    }

    fn advance(&mut self, ms: u64) -> Result<(), String> {
        let fired = self
            .tokio
            .block_on(self.rt.advance(ms))
            .map_err(|e| format!("{e:#}"))?;
        for f in fired {
            self.called(&f.key, f.result)?;
        }
        Ok(())
    }

    fn take_requests(&mut self) -> Vec<oracle::Request> {
        use oracle::Fault as F;
        self.rt
            .traffic
            .take_sms()
            .into_iter()
            .map(|sms| {
                let field = |name: &str| {
                    sms.form
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let a = &sms.answer;
                let fault = if a.crash {
                    Some(F::Crash)
                } else if a.transport == Some(Transport::Reset) {
                    Some(F::Reset)
                } else if a.transport.is_some() {
                    Some(F::NotConnected)
                } else if a.body.is_some() {
                    Some(F::Garbled)
                } else {
                    match (a.status, a.code) {
                        (Some(429), _) => Some(F::RateLimited),
                        (Some(503), _) => Some(F::ServerError),
                        (_, Some(21610)) => Some(F::Stop),
                        (_, Some(21614)) => Some(F::NotMobile),
                        (_, Some(20003)) => Some(F::BadCredentials),
                        (_, Some(21659)) => Some(F::WrongSender),
                        _ => None,
                    }
                };
                oracle::Request {
                    at: sms.at,
                    to: field("To"),
                    body: field("Body"),
                    key: sms.timer.clone().unwrap_or_default(),
                    fault,
                }
            })
            .collect()
    }

    fn state(&self) -> Vec<(String, Vec<u8>)> {
        let t = self.rt.tenant(TENANT);
        let t = t.lock().unwrap();
        t.state
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn timers(&self) -> Vec<String> {
        let t = self.rt.tenant(TENANT);
        let t = t.lock().unwrap();
        t.timers.keys().cloned().collect()
    }

    fn outputs(&self) -> String {
        let t = self.rt.tenant(TENANT);
        let t = t.lock().unwrap();
        let mut all = self.outputs.clone();
        for line in &t.logs {
            all.push_str(&line.line);
            all.push('\n');
        }
        all
    }
}

fn oracle_cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(24)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: oracle_cases(), max_shrink_iters: 64, ..ProptestConfig::default() })]

    /// The oracle's laws through the real component: the same generator as
    /// the native property test, fewer cases.
    #[test]
    fn the_laws_hold_through_the_component(limits in oracle::limits(), ops in prop::collection::vec(oracle::op(), 1..40)) {
        let outcome = oracle::check(&mut Wasm::new(), &limits, ops);
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_event_sequence_traps_the_component(events in prop::collection::vec(event(), 1..40)) {
        let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let outcome = tokio.block_on(run(events));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}
