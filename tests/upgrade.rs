//! An upgrade from the 0.2.0 layout, through the real component: state
//! written by the 0.2.0 build (its exact bytes, as golden data) is read by
//! this one; a pending notification goes out once, an attempt cut off
//! mid-send is never repeated, a STOP still holds, and a record that
//! cannot be read is kept aside for an operator, never lost silently.

use host_test::TestRuntime;
use host_test::bindings::sms_notification::extension::types::Outcome;
use host_test::storage::{Presence, User};
use serde_json::json;

/// A record of `tests/fixtures/records-0.2.0.txt`: what the 0.2.0 build
/// stored (`pending`: Alice's m1 "one", m2 an image, m3 "see you at 8?" to
/// Bob, due at 60 s; `in-flight`: the same cut off mid-send; `suppression`:
/// +14155552671 replied STOP).
fn golden(name: &str) -> Vec<u8> {
    let hex = include_str!("fixtures/records-0.2.0.txt")
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .expect("a golden record");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn runtime(number: &str) -> TestRuntime {
    let rt = TestRuntime::new().unwrap();
    let t = rt.tenant("t");
    let mut t = t.lock().unwrap();
    t.save_settings(
        json!({
            "twilioAccountSid": "AC0123456789abcdef0123456789abcdef",
            "twilioAuthToken": "upgrade-token",
            "fromMobileNo": "+15005550006",
        })
        .to_string(),
    );
    for (uid, presence, number) in [
        ("alice", Presence::Online, None),
        ("bob", Presence::Offline, Some(number)),
    ] {
        let metadata = match number {
            Some(n) => json!({ "@private": { "contactNumber": n } }),
            None => json!({}),
        };
        t.users.insert(
            uid.into(),
            User {
                uid: uid.into(),
                name: uid.into(),
                presence,
                metadata: metadata.to_string(),
            },
        );
    }
    drop(t);
    rt
}

fn store(rt: &mut TestRuntime, key: &str, name: &str) {
    rt.tenant("t")
        .lock()
        .unwrap()
        .state
        .insert(key.into(), golden(name));
}

fn arm(rt: &mut TestRuntime) {
    rt.tenant("t")
        .lock()
        .unwrap()
        .timers
        .insert("deliver/alice_bob/bob".into(), 60_000);
}

#[tokio::test]
async fn a_pending_notification_from_020_goes_out_once() {
    let mut rt = runtime("+12025550123");
    store(&mut rt, "pending/alice_bob/bob", "pending");
    arm(&mut rt);
    let fired = rt.advance(60_000).await.unwrap();
    assert!(
        matches!(&fired[0].result, Ok(Ok(Outcome::Sent(s))) if s.unread == 2),
        "{fired:?}"
    );
    let sms = rt.traffic.take_sms();
    assert_eq!(sms.len(), 1);
    let body = &sms[0].form.iter().find(|(k, _)| k == "Body").unwrap().1;
    assert_eq!(body, "2 new messages from alice: see you at 8?");
    let state = rt.tenant("t").lock().unwrap().state.clone();
    assert!(!state.contains_key("pending/alice_bob/bob"), "converted");
    assert!(state.contains_key("conversation/alice_bob"));
    // Fired again (a host that replays): nothing more.
    let again = rt.on_timer("t", "deliver/alice_bob/bob").await.unwrap();
    assert!(matches!(again, Ok(Outcome::Skipped(_))), "{again:?}");
    assert!(rt.traffic.take_sms().is_empty());
}

#[tokio::test]
async fn a_receipt_after_the_upgrade_reads_020_messages() {
    let mut rt = runtime("+12025550123");
    store(&mut rt, "pending/alice_bob/bob", "pending");
    arm(&mut rt);
    let receipt = host_test::bindings::sms_notification::extension::types::Receipt {
        conversation: "alice_bob".into(),
        reader: "bob".into(),
        message: "m3".into(),
        read_at: 1_000,
    };
    let read = rt.on_read("t", &receipt).await.unwrap();
    assert!(matches!(read, Ok(Outcome::Cancelled(_))), "{read:?}");
    rt.advance(60_000).await.unwrap();
    assert!(rt.traffic.take_sms().is_empty());
}

#[tokio::test]
async fn an_attempt_cut_off_in_020_is_never_repeated() {
    let mut rt = runtime("+12025550123");
    store(&mut rt, "pending/alice_bob/bob", "in-flight");
    arm(&mut rt);
    let fired = rt.advance(60_000).await.unwrap();
    assert!(
        matches!(&fired[0].result, Ok(Ok(Outcome::Failed(f))) if f.error.message.contains("cut off")),
        "{fired:?}"
    );
    assert!(rt.traffic.take_sms().is_empty());
}

#[tokio::test]
async fn a_020_stop_still_holds() {
    let mut rt = runtime("+14155552671");
    store(&mut rt, "pending/alice_bob/bob", "pending");
    store(&mut rt, "suppressed/bob", "suppression");
    arm(&mut rt);
    let fired = rt.advance(60_000).await.unwrap();
    assert!(
        matches!(
            &fired[0].result,
            Ok(Ok(Outcome::Skipped(
                host_test::bindings::sms_notification::extension::types::SkipReason::OptedOut
            )))
        ),
        "{fired:?}"
    );
    assert!(rt.traffic.take_sms().is_empty());
}

#[tokio::test]
async fn an_unreadable_record_is_kept_aside_and_logged() {
    let mut rt = runtime("+12025550123");
    rt.tenant("t")
        .lock()
        .unwrap()
        .state
        .insert("conversation/alice_bob".into(), vec![0x43, 0xff, 0x00]);
    arm(&mut rt);
    rt.advance(60_000).await.unwrap();
    {
        let data = rt.tenant("t");
        let t = data.lock().unwrap();
        assert_eq!(
            t.state.get("quarantine/conversation/alice_bob"),
            Some(&vec![0x43, 0xff, 0x00])
        );
        assert!(!t.state.contains_key("conversation/alice_bob"));
        let logs: Vec<&str> = t.logs.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(
            logs.iter().filter(|l| l.contains("cannot be read")).count(),
            1,
            "logged once: {logs:?}"
        );
    }
    // The operator lists it, looks, and clears it.
    assert_eq!(
        rt.quarantined("t").await.unwrap(),
        [(
            "quarantine/conversation/alice_bob".to_owned(),
            vec![0x43, 0xff, 0x00]
        )]
    );
    assert!(
        !rt.clear_quarantined("t", "conversation/alice_bob")
            .await
            .unwrap(),
        "only quarantined keys"
    );
    assert!(
        rt.clear_quarantined("t", "quarantine/conversation/alice_bob")
            .await
            .unwrap()
    );
    assert!(rt.quarantined("t").await.unwrap().is_empty());
}
