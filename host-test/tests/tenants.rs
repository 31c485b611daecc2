//! Each tenant's runtime through the real `.wasm`: made on demand, at most
//! `max_resident` kept (never one a call holds), idle ones dropped, and a
//! dropped tenant's next call works on a new one with its data intact.

use host_test::outbound::{Forward, Policy};
use host_test::storage;
use host_test::tenants::Tenants;
use std::sync::Arc;
use std::time::Duration;

const SETTINGS: &str = r#"{"twilioAccountSid":"AC0123456789abcdef0123456789abcdef","twilioAuthToken":"t",
    "fromMobileNo":"+15005550006","delaySeconds":60}"#;

#[tokio::test]
async fn runtimes_are_bounded_idle_ones_go_and_data_stays() {
    let store = storage::open("memory:").await.unwrap();
    // Nothing is sent here: no request leaves.
    let policy = Policy::new(Arc::new(Forward("http://127.0.0.1:9".parse().unwrap())));
    let mut tenants = Tenants::new(&store, &policy, host_test::prepared().unwrap(), |_| {});
    tenants.max_resident = 32;
    let tenants = Arc::new(tenants);

    // A call holds its tenant's runtime: it outlives any eviction.
    let held = tenants.of("held");
    let mut guard = held.lock().await;
    for t in 0..100 {
        let name = format!("t{t}");
        store.save_settings(&name, SETTINGS).await.unwrap();
        let rt = tenants.of(&name);
        let answer = rt.lock().await.validate_settings(&name, SETTINGS).await;
        assert!(matches!(answer, Ok(Ok(()))), "{answer:?}");
        assert!(tenants.resident() <= 32, "{} resident", tenants.resident());
    }
    assert!(
        Arc::ptr_eq(&held, &tenants.of("held")),
        "the held runtime was kept"
    );
    assert!(guard.validate_settings("held", SETTINGS).await.is_ok());
    drop(guard);
    drop(held);

    // Idle for longer than nothing: every runtime no call holds goes.
    let kept = tenants.resident();
    assert_eq!(tenants.evict_idle(Duration::ZERO), kept);
    assert_eq!(tenants.resident(), 0);

    // A tenant whose runtime went has its data: its inspection still reads
    // what an earlier runtime stored.
    let rt = tenants.of("t7");
    let message = host_test::bindings::sms_notification::extension::types::Message {
        id: "m1".into(),
        conversation: "c1".into(),
        kind: host_test::bindings::sms_notification::extension::types::ConversationKind::OneOnOne,
        format: host_test::bindings::sms_notification::extension::types::MessageFormat::Text,
        sender: "alice".into(),
        receiver: "bob".into(),
        text: "hi".into(),
        sent_at: 1,
    };
    let answer = rt.lock().await.on_message("t7", &message).await;
    assert!(answer.is_ok(), "{answer:?}");
    drop(rt);
    tenants.evict_idle(Duration::ZERO);
    let rt = tenants.of("t7");
    let inspection = rt.lock().await.inspect("t7").await.unwrap().unwrap();
    assert_eq!(inspection.pending.len(), 1, "{inspection:?}");
}
