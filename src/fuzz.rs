//! Fuzzing the core's parsers and renderers with arbitrary input: nothing
//! panics, and what comes out keeps its promises. A short pass runs with
//! every `cargo test`; `FUZZ_CASES=1000000 cargo test --release --lib fuzz`
//! runs a long one.

use crate::contact;
use crate::pending::Pending;
use crate::record::Record;
use crate::render::{self, Notice, Style};
use crate::segments;
use crate::settings;
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
                prop_assert!((9..=16).contains(&number.len()));
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
            &Notice { sender_name: &sender, unread, latest_text: &latest },
        );
        prop_assert!(segments::fits(&body, max_segments), "{} segments: {body:?}", segments::count(&body));
    }

    #[test]
    fn any_answer_is_classified(status in any::<u16>(), body in prop::collection::vec(any::<u8>(), 0..200), json in json_value(), retry_after in prop::option::of(any::<u64>())) {
        let _ = twilio::classify(&Response::Http { status, body, retry_after });
        let _ = twilio::classify(&Response::Http { status, body: json.to_string().into_bytes(), retry_after });
    }

    #[test]
    fn keys_and_state_never_panic(key in text(), bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Some(timer) = Timer::parse(&key) {
            prop_assert_eq!(Timer::parse(&timer.key()), Some(timer));
        }
        let _ = Pending::decode(&bytes);
        let _ = Pending::decode(key.as_bytes());
    }
}
