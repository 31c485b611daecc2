//! Fuzzing the core's parsers and renderers with arbitrary input: nothing
//! panics, and what comes out keeps its promises. A short pass runs with
//! every `cargo test`; `FUZZ_CASES=1000000 cargo test --release --lib fuzz`
//! runs a long one.

use crate::contact;
use crate::conversation::Conversation;
use crate::history::History;
use crate::legacy;
use crate::pause::Pause;
use crate::record::Record;
use crate::render::{self, Notice, Style};
use crate::segments;
use crate::settings;
use crate::suppression::Suppression;
use crate::template::Template;
use crate::timer::Timer;
use crate::twilio::{self, Response};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512)
}

/// Strings that look like what the parsers expect, broken in every way.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[{}\\[\\]\":,+0-9a-zA-Z@. ()-]{0,80}",
        "[{}a-z ]{0,40}",
        prop::collection::vec(
            prop::sample::select(vec![
                "{",
                "}",
                "{{",
                "}}",
                "{sender}",
                "{preview}",
                "{link}",
                "é",
                "🎉",
                "€",
                "x",
                " "
            ]),
            0..60
        )
        .prop_map(|parts| parts.concat()),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "twilioAccountSid",
                    "twilioAuthToken",
                    "fromMobileNo",
                    "delaySeconds",
                    "template",
                    "maxSegments",
                    "websiteURL",
                    "@private",
                    "contactNumber",
                    "x",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn settings_never_panic(doc in json_value(), raw in text()) {
        for input in [doc.to_string(), raw] {
            if let Ok(s) = settings::parse(&input) {
                prop_assert!(s.delay_seconds <= settings::MAX_DELAY_SECONDS);
                prop_assert!((1..=settings::MAX_SEGMENTS).contains(&s.max_segments));
            }
        }
    }

    #[test]
    fn contact_numbers_are_e164_or_a_reason(metadata in json_value(), raw in text()) {
        for input in [metadata.to_string(), raw.clone()] {
            if let Ok(number) = contact::from_metadata(&input) {
                prop_assert!(number.starts_with('+'));
                prop_assert!(number[1..].bytes().all(|b| b.is_ascii_digit()));
                prop_assert!((5..=16).contains(&number.len()));
            }
        }
        if let Ok(number) = contact::normalize(&raw) {
            prop_assert_eq!(contact::normalize(&number), Ok(number.clone()));
        }
        let masked = contact::mask(&raw);
        prop_assert_eq!(masked.chars().count(), raw.chars().count());
    }

    #[test]
    fn bodies_always_fit(
        template in text(),
        sender in text(),
        latest in text(),
        link in prop::option::of("https://[a-z]{1,60}\\.example/[a-z0-9]{0,80}"),
        unread in 0u32..10_000,
        max_segments in 1usize..=10,
        include_text in any::<bool>(),
    ) {
        let Ok(template) = Template::parse(&template) else { return Ok(()) };
        // Settings validation guarantees the fixed part leaves room; the
        // renderer must still never exceed the budget.
        let body = render::body(
            &Style { template: &template, link: link.as_deref(), include_text, max_segments },
            &Notice { sender_name: &sender, sender_uid: "uid", unread, latest_text: &latest, text_cut: false },
        );
        prop_assert!(segments::fits(&body, max_segments), "{:?}: {body:?}", segments::count(&body));
    }

    #[test]
    fn any_answer_is_classified(status in any::<u16>(), body in prop::collection::vec(any::<u8>(), 0..200), json in json_value(), retry_after in prop::option::of(any::<u64>()), why in text()) {
        for body in [body, json.to_string().into_bytes()] {
            let verdict = twilio::classify(&Response::Http { status, body, retry_after });
            match verdict {
                // Accepted means a 201 with a message SID.
                twilio::Verdict::Accepted { sid, .. } => {
                    prop_assert_eq!(status, 201);
                    prop_assert!(twilio::is_message_sid(&sid), "{}", sid);
                }
                // A 201 is accepted or, unreadable, maybe sent: never retried.
                twilio::Verdict::Retry { after_ms, .. } => {
                    prop_assert_ne!(status, 201);
                    prop_assert!(after_ms.is_none_or(|ms| ms <= twilio::RETRY_AFTER_CAP_MS));
                }
                twilio::Verdict::Rejected { maybe_sent, .. } => prop_assert_eq!(maybe_sent, status == 201),
                _ => prop_assert_ne!(status, 201),
            }
        }
        // No answer after the request went out is never retried.
        let lost = twilio::classify(&Response::Transport(twilio::Transport::NoAnswer(why.clone())));
        prop_assert!(matches!(lost, twilio::Verdict::Rejected { maybe_sent: true, .. }), "{:?}", lost);
        let never = twilio::classify(&Response::Transport(twilio::Transport::NotConnected(why)));
        prop_assert!(matches!(never, twilio::Verdict::Retry { .. }), "{:?}", never);
    }

    #[test]
    fn keys_and_state_never_panic(key in text(), bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Some(timer) = Timer::parse(&key) {
            prop_assert_eq!(Timer::parse(&timer.key()), Some(timer));
        }
        for bytes in [&bytes[..], key.as_bytes()] {
            let _ = Conversation::decode(bytes);
            let _ = History::decode(bytes);
            let _ = Suppression::decode(bytes);
            let _ = Pause::decode(bytes);
            let found = [legacy::Found { uid: "bob", pending: Some(bytes), history: Some(bytes) }];
            let _ = legacy::conversation(&found);
        }
        // Whatever decodes re-encodes to the same record.
        if let Ok(c) = Conversation::decode(&bytes) {
            prop_assert_eq!(Conversation::decode(&c.encode()), Ok(c));
        }
    }
}
