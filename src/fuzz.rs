//! Fuzzing the core's parsers and renderers with arbitrary input: nothing
//! panics, and what comes out keeps its promises. A short pass runs with
//! every `cargo test`; `FUZZ_CASES=1000000 cargo test --release --lib fuzz`
//! runs a long one.
//!
//! Arbitrary input alone rarely gets past a parser's first check, so each
//! property also draws inputs shaped like the real thing (valid settings
//! with one field changed, Twilio's answers with and without a message
//! SID, phone numbers as people type them, records encoded and then
//! damaged, keys of the shapes the component writes) and counts how often
//! its interesting branch ran: fewer than a fifth of the cases fails the
//! property, so a check that generation stopped reaching is noticed.

use crate::contact;
use crate::policy::settings;
use crate::state::conversation::{Conversation, id_hash};
use crate::state::history::{History, Send};
use crate::state::pause::Pause;
use crate::state::record::Record;
use crate::state::suppression::{Refused, Suppression, Why};
use crate::state::timer::Timer;
use crate::state::v020;
use crate::text::render::{self, Notice, Style};
use crate::text::segments;
use crate::text::template::Template;
use crate::twilio::{self, Response};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::cell::Cell;

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

/// Runs `property` on `cases()` inputs drawn from `strategy`; it answers
/// whether the case reached the branch worth checking. Fails on the first
/// broken case (shrunk), and when fewer than a fifth of the cases reached.
fn reaching<S: Strategy>(
    name: &str,
    strategy: S,
    property: impl Fn(S::Value) -> Result<bool, TestCaseError>,
) {
    let (reached, total) = (Cell::new(0u32), Cell::new(0u32));
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        ..Config::default()
    });
    let run = runner.run(&strategy, |input| {
        let hit = property(input)?;
        total.set(total.get() + 1);
        reached.set(reached.get() + u32::from(hit));
        Ok(())
    });
    if let Err(e) = run {
        panic!("{name}: {e}");
    }
    let (reached, total) = (reached.get(), total.get());
    eprintln!("{name}: {reached} of {total} cases reached the check");
    assert!(
        reached * 5 >= total,
        "{name}: only {reached} of {total} cases reached the check; the generator no longer reaches it"
    );
}

/// Valid settings, as a JSON object.
fn valid_settings() -> serde_json::Map<String, serde_json::Value> {
    let serde_json::Value::Object(map) = serde_json::json!({
        "twilioAccountSid": "AC0123456789abcdef0123456789abcdef",
        "twilioAuthToken": "fuzz-token",
        "fromMobileNo": "+15005550006",
        "delaySeconds": 60,
        "cooldownMinutes": 5,
        "conversationSmsPerDay": 2,
        "recipientSmsPerDay": 20,
        "maxSegments": 2,
        "maxAttempts": 5,
        "includeMessageText": true,
        "replyMeansRead": true,
        "template": "{sender}: {preview} {link}",
        "websiteURL": "https://chat.example.com/c",
    }) else {
        unreachable!()
    };
    map
}

/// A value a settings field might be given: in range, out of range, of the
/// wrong type, or anything.
fn field_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        3 => (0u64..200).prop_map(serde_json::Value::from),
        1 => any::<i64>().prop_map(serde_json::Value::from),
        1 => any::<bool>().prop_map(serde_json::Value::from),
        1 => Just(serde_json::Value::Null),
        2 => text().prop_map(serde_json::Value::from),
        1 => json_value(),
    ]
}

/// Valid settings with at most one field changed, removed or added.
fn settings_doc() -> impl Strategy<
    Value = (
        serde_json::Value,
        Option<(String, Option<serde_json::Value>)>,
    ),
> {
    let fields: Vec<String> = valid_settings()
        .keys()
        .cloned()
        .chain(
            [
                "twilioApiKeySid",
                "messagingServiceSid",
                "quietHours",
                "timeZone",
                "x",
            ]
            .map(str::to_owned),
        )
        .collect();
    let change = prop_oneof![
        1 => Just(None),
        4 => (prop::sample::select(fields), prop::option::weighted(0.85, field_value()))
            .prop_map(Some),
    ];
    change.prop_map(|change| {
        let mut map = valid_settings();
        if let Some((key, value)) = &change {
            match value {
                Some(v) => map.insert(key.clone(), v.clone()),
                None => map.remove(key),
            };
        }
        (serde_json::Value::Object(map), change)
    })
}

#[test]
fn settings_never_panic() {
    let input = (settings_doc(), text());
    reaching("settings", input, |((doc, change), raw)| {
        let _ = settings::parse(&raw);
        let Ok(s) = settings::parse(&doc.to_string()) else {
            return Ok(false);
        };
        prop_assert!(s.delay_seconds <= crate::policy::limits::MAX_DELAY_SECONDS);
        prop_assert!((1..=crate::policy::limits::MAX_SEGMENTS).contains(&s.max_segments));
        prop_assert!((1..=crate::policy::limits::MAX_ATTEMPTS).contains(&s.max_attempts));
        // A number the settings took is the number they hold.
        if let Some((key, Some(serde_json::Value::Number(n)))) = &change {
            let held = match key.as_str() {
                "delaySeconds" => Some(s.delay_seconds),
                "maxSegments" => Some(s.max_segments),
                "maxAttempts" => Some(s.max_attempts),
                _ => None,
            };
            if let Some(held) = held {
                prop_assert_eq!(Some(held), n.as_u64(), "{}", key);
            }
        }
        Ok(true)
    });
}

/// Phone numbers as people type them, valid or not.
fn phone() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\+1 ?\\(?[2-9][0-9]{2}\\)? ?[2-9][0-9]{2}-?[0-9]{4}",
        "\\+44 ?(20|7[0-9]{3}) ?[0-9]{3,4} ?[0-9]{3,4}",
        "\\+(33|49|34|39|81|61|55|91) ?[0-9 ]{8,13}",
        "\\+[1-9][0-9]{6,15}",
        "00[1-9][0-9]{8,12}",
        "[0-9 ()+.-]{4,20}",
        text(),
    ]
}

#[test]
fn contact_numbers_are_e164_or_a_reason() {
    let input = (phone(), json_value(), any::<bool>());
    reaching("contact numbers", input, |(raw, metadata, wrapped)| {
        let metadata = if wrapped {
            serde_json::json!({ "@private": { "contactNumber": raw } })
        } else {
            metadata
        };
        for input in [metadata.to_string(), raw.clone()] {
            if let Ok(number) = contact::from_metadata(&input) {
                prop_assert!(number.starts_with('+'));
                prop_assert!(number[1..].bytes().all(|b| b.is_ascii_digit()));
                prop_assert!((5..=16).contains(&number.len()));
            }
        }
        let masked = contact::mask(&raw);
        prop_assert_eq!(masked.chars().count(), raw.chars().count());
        // A number read once reads the same again, or, as libphonenumber
        // reads it, loses a national prefix it still begins with
        // (`+310000000` is `+31000000`, which is `+3100000`): it never
        // grows, and its last digits stay.
        let Ok(number) = contact::normalize(&raw) else {
            return Ok(false);
        };
        match contact::normalize(&number) {
            Ok(again) if again == number => {}
            Ok(again) => prop_assert!(
                again.len() < number.len() && number.ends_with(&again[again.len() - 4..]),
                "{number} read again is {again}"
            ),
            Err(why) => prop_assert_eq!(why, contact::Invalid::Ambiguous, "{}", number),
        }
        Ok(true)
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

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
}

fn hex(n: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(b"0123456789abcdef".to_vec()), n)
        .prop_map(|b| String::from_utf8(b).unwrap())
}

/// A message SID, or something in its place.
fn sid() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => hex(32).prop_map(|h| Some(format!("SM{h}"))),
        1 => hex(32).prop_map(|h| Some(format!("MM{h}"))),
        1 => hex(31).prop_map(|h| Some(format!("SM{h}"))),
        1 => hex(32).prop_map(|h| Some(format!("AC{h}"))),
        1 => text().prop_map(Some),
        1 => Just(None),
    ]
}

/// A body shaped like Twilio's answers (a message resource, or an error
/// with its code), or anything.
fn twilio_body() -> impl Strategy<Value = Vec<u8>> {
    let code = prop_oneof![
        Just(None),
        prop::sample::select(vec![
            20003u32, 20429, 21211, 21408, 21610, 21612, 21614, 30007
        ])
        .prop_map(Some),
        any::<u32>().prop_map(Some),
    ];
    let status = prop::sample::select(vec!["queued", "accepted", "sent", "failed", ""]);
    prop_oneof![
        6 => (sid(), code, status, text()).prop_map(|(sid, code, status, message)| {
            let mut doc = serde_json::json!({ "status": status, "message": message });
            if let Some(sid) = sid {
                doc["sid"] = sid.into();
            }
            if let Some(code) = code {
                doc["code"] = code.into();
                doc["more_info"] = format!("https://www.twilio.com/docs/errors/{code}").into();
            }
            doc.to_string().into_bytes()
        }),
        2 => json_value().prop_map(|v| v.to_string().into_bytes()),
        2 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

fn http_status() -> impl Strategy<Value = u16> {
    prop_oneof![
        5 => Just(201u16),
        3 => prop::sample::select(vec![200u16, 400, 401, 403, 404, 429, 500, 502, 503]),
        2 => any::<u16>(),
    ]
}

#[test]
fn any_answer_is_classified() {
    let input = (
        http_status(),
        twilio_body(),
        prop::option::of(any::<u64>()),
        text(),
    );
    reaching(
        "Twilio answers",
        input,
        |(status, body, retry_after, why)| {
            let has_sid = serde_json::from_slice::<serde_json::Value>(&body)
                .is_ok_and(|v| v.get("sid").is_some());
            let verdict = twilio::classify(&Response::Http {
                status,
                body,
                retry_after,
            });
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
                twilio::Verdict::Rejected { maybe_sent, .. } => {
                    prop_assert_eq!(maybe_sent, status == 201)
                }
                _ => prop_assert_ne!(status, 201),
            }
            // No answer after the request went out is never retried.
            let lost = twilio::classify(&Response::Transport(twilio::Transport::NoAnswer(
                why.clone(),
            )));
            prop_assert!(
                matches!(
                    lost,
                    twilio::Verdict::Rejected {
                        maybe_sent: true,
                        ..
                    }
                ),
                "{:?}",
                lost
            );
            let never =
                twilio::classify(&Response::Transport(twilio::Transport::NotConnected(why)));
            prop_assert!(
                matches!(never, twilio::Verdict::Retry { .. }),
                "{:?}",
                never
            );
            // The branch worth checking: a 201 whose verdict the SID decides.
            Ok(status == 201 && has_sid)
        },
    );
}

/// Ids as the chat server sends them, some with the characters a key must
/// escape.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z0-9_-]{1,24}",
        1 => "[a-z/%. é]{1,24}",
        1 => text(),
    ]
}

/// Keys of the shapes the component writes, and others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (id(), id()).prop_map(|(c, r)| crate::state::keys::join(&["deliver", &c, &r])),
        1 => (id(), id()).prop_map(|(c, r)| format!("deliver/{c}/{r}")),
        1 => (id(), id()).prop_map(|(c, r)| crate::state::keys::join(&["conversation", &c, &r])),
        1 => text(),
    ]
}

/// A conversation built by messages and reads, as the core builds them.
fn conversation() -> impl Strategy<Value = Conversation> {
    let step = (
        any::<bool>(),
        prop::option::of(text()),
        any::<bool>(),
        0u64..40,
    );
    prop::collection::vec(step, 0..40).prop_map(|steps| {
        let mut c = Conversation::default();
        let (a, b) = (c.join("alice").unwrap(), c.join("bob").unwrap());
        for (i, (from_alice, text, read, back)) in steps.into_iter().enumerate() {
            let (from, to) = if from_alice { (a, b) } else { (b, a) };
            let seq = c.push(from, to, id_hash(&format!("m{i}")), text.as_deref());
            if read {
                c.read_through(to, seq.saturating_sub(back));
            }
        }
        c
    })
}

fn history() -> impl Strategy<Value = History> {
    let send = (sid(), id(), any::<u64>(), prop::option::of(any::<u32>())).prop_map(
        |(sid, conversation, at, error_code)| Send {
            sid: sid.unwrap_or_default(),
            conversation,
            to: "+14155552671".into(),
            at,
            status: "queued".into(),
            error_code,
        },
    );
    (
        prop::collection::vec(any::<u64>(), 0..20),
        prop::collection::vec(send, 0..8),
    )
        .prop_map(|(sent, sends)| History { sent, sends })
}

fn suppression() -> impl Strategy<Value = Suppression> {
    let refused = ("\\+[1-9][0-9]{7,14}", any::<bool>()).prop_map(|(number, stop)| Refused {
        number,
        why: if stop {
            Why::OptedOut
        } else {
            Why::Undeliverable
        },
    });
    prop::collection::vec(refused, 0..16).prop_map(|refused| Suppression { refused })
}

/// What happens to a valid record's bytes before they are read back.
#[derive(Clone, Debug)]
enum Damage {
    None,
    /// Bytes at these positions (modulo the length) xor-ed.
    Flip(Vec<(usize, u8)>),
    /// Cut to this many bytes (modulo the length).
    Cut(usize),
    /// A byte added at the end.
    Grow(u8),
}

/// A valid record's bytes, then damaged.
fn damaged(bytes: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(Damage::None),
        2 => prop::collection::vec((any::<usize>(), 1..=255u8), 1..3).prop_map(Damage::Flip),
        1 => any::<usize>().prop_map(Damage::Cut),
        1 => any::<u8>().prop_map(Damage::Grow),
    ]
    .prop_map(move |damage| {
        let mut out = bytes.clone();
        let len = out.len().max(1);
        match damage {
            Damage::None => {}
            Damage::Flip(flips) => {
                for (at, x) in flips {
                    if let Some(b) = out.get_mut(at % len) {
                        *b ^= x;
                    }
                }
            }
            Damage::Cut(to) => out.truncate(to % len),
            Damage::Grow(b) => out.push(b),
        }
        out
    })
}

/// Decodes `bytes`; what decodes re-encodes to the same record.
fn round_trips<R: Record + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Result<bool, TestCaseError> {
    let Ok(record) = R::decode(bytes) else {
        return Ok(false);
    };
    prop_assert_eq!(R::decode(&record.encode()), Ok(record));
    Ok(true)
}

#[test]
fn keys_and_state_never_panic() {
    let records = (conversation(), history(), suppression()).prop_flat_map(|(c, h, s)| {
        (
            damaged(c.encode()),
            damaged(h.encode()),
            damaged(s.encode()),
        )
    });
    let input = (key(), records, prop::collection::vec(any::<u8>(), 0..200));
    reaching("keys and records", input, |(key, (c, h, s), noise)| {
        let timer = Timer::parse(&key);
        if let Some(timer) = &timer {
            let again = Timer::parse(&timer.key());
            prop_assert_eq!(again.as_ref(), Some(timer));
        }
        for bytes in [&c[..], &h[..], &s[..], &noise[..], key.as_bytes()] {
            let _ = Conversation::decode(bytes);
            let _ = History::decode(bytes);
            let _ = Suppression::decode(bytes);
            let _ = Pause::decode(bytes);
            let found = [v020::Found {
                uid: "bob",
                pending: Some(bytes),
                history: Some(bytes),
            }];
            let _ = v020::conversation(&found);
        }
        let decoded = [
            round_trips::<Conversation>(&c)?,
            round_trips::<History>(&h)?,
            round_trips::<Suppression>(&s)?,
            round_trips::<Conversation>(&noise)?,
        ];
        // The branch worth checking: a timer key read back, and a
        // conversation record re-encoded.
        Ok(timer.is_some() && decoded[0])
    });
}
