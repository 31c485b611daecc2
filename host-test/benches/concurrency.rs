//! `serve` (SQLite, every commit durable) with Twilio slow: a loopback
//! stand-in that answers each SMS after a delay (`tests/common/twilio.rs`).
//!
//! 1. **An unrelated tenant, while SMS wait on Twilio.** 64 tenants with 16
//!    notifications each due at once (1,024), Twilio at 3 s; meanwhile
//!    another tenant's events are posted one every 20 ms, and their answer
//!    times measured (p50, p99, max), with how many SMS were in flight.
//! 2. **One tenant's backlog.** One tenant with `SMS_BENCH_BACKLOG` (2,000)
//!    notifications due at once, one per conversation, Twilio at 250 ms:
//!    SMS sent per second, from when they came due to the last one
//!    answered (the tenant runs `--calls-per-tenant` of them at once).
//!
//! `cargo bench -p host-test --bench concurrency` (about 50 s).

mod support;

#[path = "../tests/common/twilio.rs"]
#[allow(dead_code)]
mod twilio;

use host_test::serve::TwilioTarget;
use serde_json::json;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::service::{self, AUTH, put};
use support::webhook;
use twilio::FakeTwilio;

/// Every notification due `DELAY_S` after its message (time enough to post
/// them all first, so they come due together), no cooldown, limits far
/// away.
const DELAY_S: u64 = 5;

fn settings() -> String {
    json!({"twilioAccountSid": "AC0123456789abcdef0123456789abcdef", "twilioAuthToken": "bench-token",
        "fromMobileNo": "+15005550006", "delaySeconds": DELAY_S, "cooldownMinutes": 0,
        "conversationSmsPerDay": 100, "recipientSmsPerDay": 1000, "websiteURL": "https://chat.example.com"})
        .to_string()
}

/// A tenant with `recipients` offline users with numbers, and alice.
async fn tenant(addr: SocketAddr, name: &str, recipients: usize) {
    let base = format!("/v1/tenants/{name}");
    put(addr, &format!("{base}/settings"), settings()).await;
    put(
        addr,
        &format!("{base}/users/alice"),
        json!({"name": "Alice", "presence": "online"}).to_string(),
    )
    .await;
    let mut client = webhook::connect(addr).await;
    for r in 0..recipients {
        let user = json!({"name": format!("R{r}"), "metadata": {"@private": {"contactNumber": format!("+1415555{:04}", 1000 + r)}}});
        client
            .put_to(&format!("{base}/users/r{r}"), Some(AUTH), user.to_string())
            .await;
    }
}

/// Alice writes to each of the tenant's recipients: one notification each,
/// due at once.
async fn notify_all(addr: SocketAddr, name: &str, recipients: usize) {
    let mut client = webhook::connect(addr).await;
    let path = format!("/v1/tenants/{name}/messages");
    for r in 0..recipients {
        let message = json!({"id": format!("m{r}"), "conversation": format!("c{r}"),
            "sender": "alice", "receiver": format!("r{r}"), "text": "Are we still on?"});
        client.post_to(&path, Some(AUTH), message).await;
    }
}

fn target(twilio: &FakeTwilio) -> TwilioTarget {
    TwilioTarget::parse(false, &twilio.url).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    host_test::serve::init_logs(false);
    let backlog: usize = std::env::var("SMS_BENCH_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let _ = host_test::prepared().unwrap();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio.block_on(async move {
        // 1. An unrelated tenant while 1,024 SMS wait on a 3 s Twilio.
        let twilio = FakeTwilio::start(Duration::from_secs(3), 0);
        let dir = tempfile::tempdir().unwrap();
        let service = service::start(dir.path(), target(&twilio), 4096).await;
        let addr = service.addr;
        const TENANTS: usize = 64;
        const EACH: usize = 16;
        for t in 0..TENANTS {
            tenant(addr, &format!("t{t}"), EACH).await;
        }
        // The probe's receiver is online: its events send nothing.
        tenant(addr, "probe", 0).await;
        put(
            addr,
            "/v1/tenants/probe/users/on",
            json!({"name": "On", "presence": "online", "metadata": {"@private": {"contactNumber": "+14155550999"}}}).to_string(),
        )
        .await;
        let posted = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..TENANTS {
            tasks.spawn(async move { notify_all(addr, &format!("t{t}"), EACH).await });
        }
        while tasks.join_next().await.is_some() {}
        assert!(posted.elapsed() < Duration::from_secs(DELAY_S), "posted before they came due");
        // From when they come due, probe for 12 s.
        tokio::time::sleep(Duration::from_secs(DELAY_S).saturating_sub(posted.elapsed())).await;
        let due = Instant::now();
        let mut probe = webhook::connect(addr).await;
        let mut latencies = Vec::new();
        let until = Instant::now() + Duration::from_secs(12);
        let mut i = 0;
        while Instant::now() < until {
            i += 1;
            // Bob is online: the answer is a skip, after the same reads
            // and commit as any message.
            let message = json!({"id": format!("p{i}"), "conversation": "probe",
                "sender": "alice", "receiver": "on", "text": "hello"});
            let sent = Instant::now();
            probe.post_to("/v1/tenants/probe/messages", Some(AUTH), message).await;
            latencies.push(sent.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let sent_by_now = twilio.answered();
        let elapsed = due.elapsed();
        latencies.sort();
        println!(
            "unrelated tenant, {} notifications due over {TENANTS} tenants, Twilio at 3 s: \
             {} events, p50 {:.2?}, p99 {:.2?}, max {:.2?}; {} SMS answered by Twilio in the {:.1?} after they came due ({:.1} SMS/s)",
            TENANTS * EACH,
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().unwrap(),
            sent_by_now,
            elapsed,
            sent_by_now as f64 / elapsed.as_secs_f64(),
        );
        service.stop().await;

        // 2. One tenant's backlog, Twilio at 250 ms.
        let twilio = FakeTwilio::start(Duration::from_millis(250), 0);
        let dir = tempfile::tempdir().unwrap();
        let service = service::start(dir.path(), target(&twilio), 4096).await;
        let addr = service.addr;
        tenant(addr, "one", backlog).await;
        let posted = Instant::now();
        notify_all(addr, "one", backlog).await;
        assert!(posted.elapsed() < Duration::from_secs(DELAY_S), "posted before they came due");
        tokio::time::sleep(Duration::from_secs(DELAY_S).saturating_sub(posted.elapsed())).await;
        let due = Instant::now();
        let give_up = due + Duration::from_secs(120);
        let mut last = (0, due);
        while last.0 < backlog as u64 && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let answered = twilio.answered();
            if answered > last.0 {
                last = (answered, Instant::now());
            }
        }
        let (sent, at) = last;
        let took = at.duration_since(due);
        println!(
            "one tenant, {backlog} notifications due at once, Twilio at 250 ms: {sent} SMS answered, the last {took:.1?} after they came due ({:.1} SMS/s)",
            sent as f64 / took.as_secs_f64()
        );
        service.stop().await;
    });
}
