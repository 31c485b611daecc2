//! Each tenant's pool of runtimes through the real `.wasm`: made on
//! demand, at most `max_resident` kept (never one a call holds), idle ones
//! dropped, and a dropped tenant's next call works on a new one with its
//! data intact; calls in one lane wait for each other, calls in other
//! lanes do not, up to the tenant's `per_tenant`.

use host_test::outbound::{Forward, Policy};
use host_test::storage;
use host_test::tenants::Tenants;
use std::sync::Arc;
use std::time::Duration;

const SETTINGS: &str = r#"{"twilioAccountSid":"AC0123456789abcdef0123456789abcdef","twilioAuthToken":"t",
    "fromMobileNo":"+15005550006","delaySeconds":60}"#;

/// Pools over an empty in-memory store, and the store.
async fn pools() -> (Arc<dyn storage::Storage>, Tenants) {
    let store = storage::open("memory:").await.unwrap();
    // Nothing is sent here: no request leaves.
    let policy = Policy::new(Arc::new(Forward("http://127.0.0.1:9".parse().unwrap())));
    let tenants = Tenants::new(&store, &policy, host_test::prepared().unwrap(), |_| {});
    (store, tenants)
}

#[tokio::test]
async fn runtimes_are_bounded_idle_ones_go_and_data_stays() {
    let (store, mut tenants) = pools().await;
    tenants.max_resident = 32;
    let tenants = Arc::new(tenants);

    // A call holds its runtime: it outlives any eviction.
    let mut held = tenants.call("held", &[]).await;
    for t in 0..100 {
        let name = format!("t{t}");
        store.save_settings(&name, SETTINGS).await.unwrap();
        let mut rt = tenants.call(&name, &[]).await;
        let answer = rt.validate_settings(&name, SETTINGS).await;
        assert!(matches!(answer, Ok(Ok(()))), "{answer:?}");
        drop(rt);
        assert!(tenants.resident() <= 32, "{} resident", tenants.resident());
    }
    assert!(held.validate_settings("held", SETTINGS).await.is_ok());
    drop(held);

    // Idle for longer than nothing: every runtime no call holds goes.
    let kept = tenants.resident();
    assert_eq!(tenants.evict_idle(Duration::ZERO), kept);
    assert_eq!(tenants.resident(), 0);

    // A tenant whose runtime went has its data: its inspection still reads
    // what an earlier runtime stored.
    let mut rt = tenants.call("t7", &[]).await;
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
    let answer = rt.on_message("t7", &message).await;
    assert!(answer.is_ok(), "{answer:?}");
    drop(rt);
    tenants.evict_idle(Duration::ZERO);
    let mut rt = tenants.call("t7", &[]).await;
    let inspection = rt.inspect("t7").await.unwrap().unwrap();
    assert_eq!(inspection.pending.len(), 1, "{inspection:?}");
}

/// Whether `call` is still waiting after a while (a call that can go
/// ahead takes microseconds).
async fn waits<T>(call: impl std::future::Future<Output = T>) -> bool {
    tokio::time::timeout(Duration::from_millis(200), call)
        .await
        .is_err()
}

#[tokio::test]
async fn one_lane_runs_one_call_at_a_time_and_a_tenant_runs_per_tenant() {
    let (_, mut tenants) = pools().await;
    tenants.per_tenant = 2;
    let lane = |name: &str| vec![name.to_owned()];

    let a = tenants.call("acme", &lane("a")).await;
    assert!(
        waits(tenants.call("acme", &lane("a"))).await,
        "lane a is held"
    );
    assert!(
        waits(tenants.call("acme", &[lane("b"), lane("a")].concat())).await,
        "a call in lanes a and b waits for a"
    );
    let b = tenants.call("acme", &lane("b")).await;
    assert!(
        waits(tenants.call("acme", &lane("c"))).await,
        "acme has its 2 calls running"
    );
    drop(tenants.call("other", &lane("a")).await);
    drop(a);
    let a_again = tenants.call("acme", &lane("a")).await;
    assert_eq!(tenants.resident(), 3, "acme's two and other's one");
    drop((a_again, b));

    // The pool keeps its runtimes for the next calls until they idle.
    drop(tenants.call("acme", &lane("c")).await);
    assert_eq!(tenants.resident(), 3, "reused, not made again");
    assert_eq!(tenants.evict_idle(Duration::ZERO), 3);
    assert_eq!(tenants.resident(), 0);
}
