//! `cargo bench -p host-test --bench expiry`: state that shrinks, through
//! the component. A tenant has had `SMS_BENCH_PAST` conversations
//! (default 1,000,000), each a message read at once; a day later their
//! records expire, and 1,000 new conversations are active. Prints the
//! tenant's state (keys and bytes) and timers at each stage, and what it
//! holds per active conversation: proportional to the active ones, not to
//! every conversation the tenant ever had.

use host_test::TestRuntime;
use std::time::Instant;

mod support;

use support::{setup_tenant, tokio, wit_message, wit_receipt};

const TENANT: &str = "bench";
const ACTIVE: u64 = 1_000;
const HOUR_MS: u64 = 3_600_000;

/// The tenant's state keys, their bytes, and its timers.
fn held(rt: &TestRuntime) -> (usize, usize, usize) {
    let t = rt.tenant(TENANT);
    let t = t.lock().unwrap();
    let bytes = t.state.iter().map(|(k, v)| k.len() + v.len()).sum();
    (t.state.len(), bytes, t.timers.len())
}

fn show(stage: &str, (keys, bytes, timers): (usize, usize, usize)) {
    println!("expiry/{stage}: {keys} state keys, {bytes} bytes, {timers} timers");
}

fn main() {
    let past: u64 = std::env::var("SMS_BENCH_PAST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let tokio = tokio();
    let mut rt = TestRuntime::new().unwrap();
    setup_tenant(&mut rt, TENANT);
    tokio.block_on(async {
        let started = Instant::now();
        for i in 0..past {
            rt.on_message(TENANT, &wit_message(i, 0)).await.unwrap().unwrap();
            rt.on_read(TENANT, &wit_receipt(i)).await.unwrap().unwrap();
        }
        println!(
            "expiry/past: {past} conversations (a message and its receipt) in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let before = held(&rt);
        show("before", before);

        // A day and an hour later every past record has gone.
        let started = Instant::now();
        let mut fired = 0u64;
        // As `serve` fires them: every due timer, in batches.
        rt.clock.set(24 * HOUR_MS + HOUR_MS);
        loop {
            let batch = rt.fire_due(4096).await.unwrap();
            if batch.is_empty() {
                break;
            }
            for f in &batch {
                assert!(f.key.starts_with("expire/"), "{}", f.key);
            }
            fired += batch.len() as u64;
        }
        println!(
            "expiry/sweep: {fired} expiry timers fired in {:.1} s ({:.1} µs each)",
            started.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64() * 1e6 / fired.max(1) as f64
        );
        let after = held(&rt);
        show("after", after);
        assert_eq!(after.0, 0, "every past record expired");

        let now = 24 * HOUR_MS + HOUR_MS;
        for i in past..past + ACTIVE {
            rt.on_message(TENANT, &wit_message(i, now)).await.unwrap().unwrap();
        }
        let active = held(&rt);
        show("active", active);
        println!(
            "expiry/per-active: {:.1} keys, {:.0} bytes, {:.1} timers per active conversation; without expiry the tenant would hold {} keys and {} bytes",
            active.0 as f64 / ACTIVE as f64,
            active.1 as f64 / ACTIVE as f64,
            active.2 as f64 / ACTIVE as f64,
            before.0 + active.0,
            before.1 + active.1,
        );
    });
}
