//! The host keeps loading components built against older contracts: each
//! released build (`host-test/tests/fixtures/components/`: 0.2.0 and
//! 0.3.0) runs the scenarios whose behaviour later versions did not
//! change, through its one adapter (`host-test/src/contract/`), and
//! prints exactly what the current build prints; what an older build
//! lacks is a typed answer, never a trap; and a tenant upgraded from an
//! older build to this one, on the same database, gets its pending
//! notification once.

use host_test::TestRuntime;
use host_test::bindings::sms_notification::extension::types::{
    Deletion, DeliveryReport, Error, Message, MessageFormat, Outcome, Sample,
};
use host_test::contract::Pre;
use host_test::storage::{Presence, User};
use host_test::{engine, scenario, storage};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

const V0_2_0: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/host-test/tests/fixtures/components/sms-notification-0.2.0.wasm"
);
const V0_3_0: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/host-test/tests/fixtures/components/sms-notification-0.3.0.wasm"
);

/// Scenarios that use what 0.3.0 added or changed (delivery reports, quiet
/// hours, preview, the status callback's `recipient`, the settings list).
const CHANGED_IN_0_3_0: &[&str] = &[
    "api_key_and_service",
    "bad_settings",
    "delivery_reports",
    "preview",
    "quiet_hours",
];

/// Scenarios that use what 0.4.0 added or changed (edits and deletions;
/// the `ended: replied` log line; the answer to a message that arrives
/// during a send, which speaks of the next notification; numbers typed
/// with a national prefix in countries whose prefix rule is a pattern,
/// read instead of skipped; conversation records that expire).
const CHANGED_IN_0_4_0: &[&str] = &[
    "contact_numbers",
    "daily_limits",
    "edits_and_deletions",
    "expiry",
    "message_during_send",
    "quiet_hours",
    "replies_read",
];

fn load(path: &str) -> Pre {
    engine::prepare_file(&engine::engine().unwrap(), path).unwrap()
}

fn old() -> Pre {
    load(V0_2_0)
}

#[test]
fn the_released_builds_are_recognised_as_such() {
    assert_eq!(old().version(), "0.2.0");
    assert_eq!(load(V0_3_0).version(), "0.3.0");
    assert_eq!(host_test::prepared().unwrap().version(), "0.4.0");
}

/// Runs every scenario not in `changed` through `pre` and compares it with
/// what this build printed.
async fn prints_what_this_build_prints(pre: Pre, changed: &[&str]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl") && !n.ends_with(".expected.jsonl"))
        .map(|n| n.trim_end_matches(".jsonl").to_owned())
        .filter(|n| !changed.contains(&n.as_str()))
        .collect();
    names.sort();
    assert!(names.len() >= 25, "most scenarios still compare: {names:?}");
    for name in names {
        let script = std::fs::read_to_string(dir.join(format!("{name}.jsonl"))).unwrap();
        let store = storage::open("memory:").await.unwrap();
        let mut runtime = TestRuntime::on(pre.clone(), store);
        let got = scenario::run_script(&mut runtime, &script).await.unwrap();
        let want: Vec<Value> = std::fs::read_to_string(dir.join(format!("{name}.expected.jsonl")))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            got == want,
            "{name} differs through the {} build",
            pre.version()
        );
    }
}

#[tokio::test]
async fn the_030_build_prints_what_this_build_prints() {
    prints_what_this_build_prints(load(V0_3_0), CHANGED_IN_0_4_0).await;
}

#[tokio::test]
async fn the_020_build_prints_what_this_build_prints() {
    let changed: Vec<&str> = CHANGED_IN_0_3_0
        .iter()
        .chain(CHANGED_IN_0_4_0)
        .copied()
        .collect();
    prints_what_this_build_prints(old(), &changed).await;
}

#[tokio::test]
async fn what_030_lacks_is_a_typed_answer() {
    let store = storage::open("memory:").await.unwrap();
    let mut rt = TestRuntime::on(load(V0_3_0), store);
    let m = message("m1", "edited");
    let Ok(Err(Error::InvalidInput(why))) = rt.on_edit("t", &m).await else {
        panic!("a typed error")
    };
    assert!(why.contains("0.3.0") && why.contains("on-edit"), "{why}");
    let deletion = Deletion {
        conversation: "alice_bob".into(),
        message: "m1".into(),
        deleted_at: 0,
    };
    let Ok(Err(Error::InvalidInput(why))) = rt.on_delete("t", &deletion).await else {
        panic!("a typed error")
    };
    assert!(why.contains("0.3.0") && why.contains("on-delete"), "{why}");
    // It still answers everything it has.
    assert!(rt.inspect("t").await.unwrap().is_some());
    assert!(rt.validate_settings("t", "{}").await.unwrap().is_err());
}

#[tokio::test]
async fn what_020_lacks_is_a_typed_answer() {
    let store = storage::open("memory:").await.unwrap();
    let mut rt = TestRuntime::on(old(), store);
    let report = DeliveryReport {
        url: "https://h.example/s?recipient=bob".into(),
        params: vec![("MessageSid".into(), "SM1".into())],
        signature: "x".into(),
    };
    let Ok(Err(Error::InvalidInput(why))) = rt.on_delivery_status("t", &report).await else {
        panic!("a typed error")
    };
    assert!(why.contains("0.2.0"), "{why}");
    let sample = Sample {
        sender_name: "Alice".into(),
        text: "hi".into(),
        unread: 1,
    };
    let Ok(Err(problems)) = rt.preview("t", "{}", &sample).await else {
        panic!("a typed error")
    };
    assert!(problems[0].message.contains("no preview"), "{problems:?}");
    assert!(rt.inspect("t").await.unwrap().is_none());
    // The sandbox was not thrown away: it still answers.
    assert!(rt.validate_settings("t", "{}").await.unwrap().is_err());
}

fn settings() -> String {
    json!({
        "twilioAccountSid": "AC0123456789abcdef0123456789abcdef",
        "twilioAuthToken": "upgrade-token",
        "fromMobileNo": "+15005550006",
        "delaySeconds": 60,
        "cooldownMinutes": 0,
    })
    .to_string()
}

fn message(id: &str, text: &str) -> Message {
    Message {
        id: id.into(),
        conversation: "alice_bob".into(),
        kind: host_test::bindings::sms_notification::extension::types::ConversationKind::OneOnOne,
        format: MessageFormat::Text,
        sender: "alice".into(),
        receiver: "bob".into(),
        text: text.into(),
        sent_at: 0,
    }
}

/// The 0.2.0 build sends one SMS and leaves a second notification pending
/// in a SQLite file; this build opens the file and sends the pending one,
/// once; the first is never sent again.
#[tokio::test]
async fn an_upgrade_from_the_020_build_sends_what_was_pending_once() {
    upgrade_from(old(), 1).await;
}

/// The same from the 0.3.0 build, whose SMS keep their SID on record.
#[tokio::test]
async fn an_upgrade_from_the_030_build_sends_what_was_pending_once() {
    upgrade_from(load(V0_3_0), 2).await;
}

/// `old` sends one SMS and leaves one pending; this build sends the
/// pending one once. `sends` SMS are then on record with their SID.
async fn upgrade_from(old: Pre, sends: usize) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("sms.db").display());
    let key = || {
        storage::sealed::Key::from_base64("dXBncmFkZS1zZXR0aW5ncy1rZXktMzItYnl0ZXMhISE=").unwrap()
    };
    let t = "acme";
    {
        let store: Arc<dyn storage::Storage> =
            storage::open_sealed(&url, Some(key())).await.unwrap();
        store.save_settings(t, &settings()).await.unwrap();
        for (uid, presence, metadata) in [
            ("alice", Presence::Online, json!({})),
            (
                "bob",
                Presence::Offline,
                json!({ "@private": { "contactNumber": "+14155552671" } }),
            ),
        ] {
            let user = User {
                uid: uid.into(),
                name: uid.into(),
                presence,
                metadata: metadata.to_string(),
            };
            store.put_user(t, &user).await.unwrap();
        }
        let mut rt = TestRuntime::on(old, store);
        let mut m = message("m1", "first");
        rt.on_message(t, &m).await.unwrap().unwrap();
        let fired = rt.advance(60_000).await.unwrap();
        assert!(
            matches!(&fired[0].result, Ok(Ok(Outcome::Sent(_)))),
            "{fired:?}"
        );
        m = message("m2", "second");
        m.sent_at = rt.clock.now();
        let Ok(Ok(Outcome::Scheduled(p))) = rt.on_message(t, &m).await else {
            panic!("scheduled")
        };
        assert_eq!(p.due_at, 120_000);
        assert_eq!(rt.traffic.take_sms().len(), 1);
    }
    let store = storage::open_sealed(&url, Some(key())).await.unwrap();
    let mut rt = TestRuntime::on(host_test::prepared().unwrap(), store);
    assert_eq!(rt.contract(), "0.4.0");
    rt.clock.set(60_000);
    // This build reads the older build's records.
    let before = rt.inspect(t).await.unwrap().unwrap();
    assert_eq!(before.pending.len(), 1);
    assert_eq!(before.pending[0].due_at, 120_000);
    assert!(before.unreadable.is_empty(), "{:?}", before.unreadable);
    let fired = rt.advance(24 * 3_600_000).await.unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
    let Ok(Ok(Outcome::Sent(sent))) = &fired[0].result else {
        panic!("{fired:?}")
    };
    assert_eq!(sent.unread, 1);
    let sms = rt.traffic.take_sms();
    assert_eq!(sms.len(), 1);
    let body = &sms[0].form.iter().find(|(k, _)| k == "Body").unwrap().1;
    assert!(body.ends_with("second"), "{body}");
    let after = rt.inspect(t).await.unwrap().unwrap();
    assert!(after.pending.is_empty());
    assert_eq!(after.sends.len(), sends, "{:?}", after.sends);
}
