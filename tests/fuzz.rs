//! Random event sequences through the real component: whatever arrives, no
//! call traps and every SMS that leaves is well formed. A short pass runs
//! with every `cargo test`; `FUZZ_CASES=2000 cargo test --release --test fuzz`
//! runs a long one.

use host_test::bindings::sms_notification::extension::types::{
    ConversationKind, Message, MessageFormat, Presence, Receipt, User,
};
use host_test::outbound::{Answer, Policy, Transport};
use host_test::runtime::Runtime;
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
    let mut rt = Runtime::new(Policy::default()).unwrap();
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
                match fired.into_iter().find(|f| f.result.is_err()) {
                    // A scripted crash is the only trap allowed.
                    Some(f)
                        if !format!("{:#}", f.result.as_ref().unwrap_err())
                            .contains("scripted crash") =>
                    {
                        Err(f.result.unwrap_err())
                    }
                    _ => Ok(()),
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
            if !trap.contains("scripted crash") {
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

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_event_sequence_traps_the_component(events in prop::collection::vec(event(), 1..40)) {
        let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let outcome = tokio.block_on(run(events));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}
