//! `serve` over loopback HTTP, with every commit durable (SQLite), against
//! the loopback webhook baseline (the native core on an in-memory host
//! behind plain HTTP), both driven the same way: `C` clients, each on one
//! keep-alive connection, posting messages as fast as answers come. Prints
//! events per second, p50 and p99 latency, and the cost per event as a
//! ratio to each baseline's at the same concurrency (in memory, and
//! durable: every event's changes in SQLite, group-committed, before it
//! answers); and how long `serve`
//! takes to start (the compiled component is cached beside the `.wasm`).
//!
//! `cargo bench -p host-test --bench serve` (`SMS_BENCH_EVENTS=N` events
//! per run, default 20,000).

mod support;

use host_test::serve::TwilioTarget;
use serde_json::json;
use std::time::{Duration, Instant};
use support::service::{self, AUTH, put};
use support::{BOB_METADATA, settings, webhook};

struct Run {
    events: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }
}

/// `clients` connections posting `events` messages in all, each one's body
/// made by `event(i)`; client `c` posts to `path(c)`.
async fn drive(
    addr: std::net::SocketAddr,
    path: fn(usize) -> &'static str,
    auth: Option<&'static str>,
    clients: usize,
    events: usize,
    offset: usize,
    event: fn(u64) -> serde_json::Value,
) -> Run {
    let per = events / clients;
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        tasks.spawn(async move {
            let mut client = webhook::connect(addr).await;
            let mut latencies = Vec::with_capacity(per);
            for i in 0..per {
                let n = (offset + c * per + i) as u64;
                let sent = Instant::now();
                client.post_to(path(c), auth, event(n)).await;
                latencies.push(sent.elapsed());
            }
            latencies
        });
    }
    let mut latencies = Vec::with_capacity(events);
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done.unwrap());
    }
    Run {
        events: per * clients,
        elapsed: start.elapsed(),
        latencies,
    }
}

fn api_message(i: u64) -> serde_json::Value {
    json!({
        "id": format!("m{i}"), "conversation": format!("c{i}"), "sender": "alice",
        "receiver": "bob", "text": "Are we still on for dinner at 8?",
    })
}

fn baseline_message(i: u64) -> serde_json::Value {
    webhook::message_event(i, i * 1000)
}

/// Tenants of the many-tenant run: `t0` … `t63`.
const TENANTS: usize = 64;

fn one_tenant(_: usize) -> &'static str {
    "/v1/tenants/bench/messages"
}

fn tenant_per_client(c: usize) -> &'static str {
    static PATHS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        (0..TENANTS)
            .map(|t| format!("/v1/tenants/t{t}/messages"))
            .collect()
    })[c % TENANTS]
        .as_str()
}

fn baseline_path(_: usize) -> &'static str {
    "/events"
}

fn main() {
    // As a deployment logs: one JSON line per call on stderr.
    host_test::serve::init_logs(true);
    let events: usize = std::env::var("SMS_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    tokio.block_on(async move {
        // Startup: open the store, load the (cached) compiled component,
        // listen. The first start compiles it once if the cache is cold.
        let _ = host_test::prepared().unwrap();
        let started = Instant::now();
        let service = service::start(dir.path(), TwilioTarget::TryOut, 4096).await;
        let addr = service.addr;
        put(addr, "/v1/tenants/bench/settings", settings()).await;
        let startup = started.elapsed();
        put(addr, "/v1/tenants/bench/users/alice", json!({"name": "Alice", "presence": "online"}).to_string()).await;
        let bob = json!({"name": "Bob", "metadata": serde_json::from_str::<serde_json::Value>(BOB_METADATA).unwrap()});
        put(addr, "/v1/tenants/bench/users/bob", bob.to_string()).await;
        let baseline = webhook::serve();
        let durable = webhook::serve_durable(&dir.path().join("baseline.db"));
        println!("serve started and answered its first request in {startup:.1?} (compiled component cached)");
        println!("| concurrency | serve events/s | p50 | p99 | webhook events/s | p50 | p99 | cost vs webhook | durable webhook events/s | p50 | p99 | cost vs durable webhook |");
        println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        for t in 0..TENANTS {
            let base = format!("/v1/tenants/t{t}");
            put(addr, &format!("{base}/settings"), settings()).await;
            put(addr, &format!("{base}/users/alice"), json!({"name": "Alice", "presence": "online"}).to_string()).await;
            put(addr, &format!("{base}/users/bob"), bob.to_string()).await;
        }
        let mut offset = 0;
        for (clients, path, label) in [
            (1usize, one_tenant as fn(usize) -> &'static str, "1"),
            (64, one_tenant, "64, one tenant"),
            (64, tenant_per_client, "64, 64 tenants"),
        ] {
            let n = if clients == 1 { events / 4 } else { events };
            let mut s = drive(addr, path, Some(AUTH), clients, n, offset, api_message).await;
            let mut w = drive(baseline, baseline_path, None, clients, n, offset, baseline_message).await;
            let mut d = drive(durable, baseline_path, None, clients, n, offset, baseline_message).await;
            offset += n;
            println!(
                "| {label} | {:.0} | {:.2?} | {:.2?} | {:.0} | {:.2?} | {:.2?} | {:.2}x | {:.0} | {:.2?} | {:.2?} | {:.2}x |",
                s.per_second(),
                s.percentile(0.5),
                s.percentile(0.99),
                w.per_second(),
                w.percentile(0.5),
                w.percentile(0.99),
                w.per_second() / s.per_second(),
                d.per_second(),
                d.percentile(0.5),
                d.percentile(0.99),
                d.per_second() / s.per_second(),
            );
        }
        service.stop().await;
    });
}
