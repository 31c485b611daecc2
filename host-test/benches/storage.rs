//! `cargo bench -p host-test --bench storage`: events per second through
//! the component with every commit durable (SQLite, and PostgreSQL when it
//! is installed), against the in-memory store in the same run; then timer
//! lag (due → fired, median and 99th percentile) with 100,000 pending.
//!
//! Tenants are spread over `SHARDS` runtimes, each a task, as `host-test
//! host` runs them: concurrent commits share fsyncs (SQLite's writer
//! batches them; PostgreSQL's WAL flushes group them). Figures, not
//! assertions: BENCHMARKS.md keeps them.

#[path = "../tests/common/pg.rs"]
#[allow(dead_code)]
mod pg;

use host_test::TestRuntime;
use host_test::bindings::sms_notification::extension::types as wit;
use host_test::clock::Clock;
use host_test::runtime::LEASE_MS;
use host_test::storage::{self, Storage};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Mutex;

const SHARDS: usize = 64;
const TENANTS: usize = 256;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn settings(delay_seconds: u64) -> String {
    format!(
        r#"{{"twilioAccountSid":"AC0123456789abcdef0123456789abcdef","twilioAuthToken":"bench-token",
        "fromMobileNo":"+15005550006","delaySeconds":{delay_seconds},"cooldownMinutes":0,
        "conversationSmsPerDay":100,"recipientSmsPerDay":1000,"websiteURL":"https://chat.example.com"}}"#
    )
}

fn user(uid: &str, presence: host_test::storage::Presence, n: usize) -> host_test::storage::User {
    host_test::storage::User {
        uid: uid.into(),
        name: uid.into(),
        presence,
        metadata: format!(
            r#"{{"@private":{{"contactNumber":"+1212{:07}"}}}}"#,
            2_000_000 + n
        ),
    }
}

async fn setup(db: &Arc<dyn Storage>, recipients: usize, delay_seconds: u64) {
    for t in 0..TENANTS {
        let tenant = format!("t{t}");
        db.save_settings(&tenant, &settings(delay_seconds))
            .await
            .unwrap();
        db.put_user(
            &tenant,
            &user("alice", host_test::storage::Presence::Online, 0),
        )
        .await
        .unwrap();
    }
    for r in 0..recipients {
        let tenant = format!("t{}", r % TENANTS);
        db.put_user(
            &tenant,
            &user(&format!("u{r}"), host_test::storage::Presence::Offline, r),
        )
        .await
        .unwrap();
    }
}

fn shards(db: &Arc<dyn Storage>, clock: &Clock) -> Vec<Arc<Mutex<TestRuntime>>> {
    let pre = host_test::prepared().unwrap();
    (0..SHARDS)
        .map(|_| {
            let mut rt = TestRuntime::on(pre.clone(), db.clone());
            rt.clock = clock.clone();
            Arc::new(Mutex::new(rt))
        })
        .collect()
}

fn message(r: usize, seq: usize, now: u64) -> wit::Message {
    wit::Message {
        id: format!("m{r}-{seq}"),
        conversation: format!("c{r}"),
        kind: wit::ConversationKind::OneOnOne,
        format: wit::MessageFormat::Text,
        sender: "alice".into(),
        receiver: format!("u{r}"),
        text: "are you there?".into(),
        sent_at: now,
    }
}

/// `events` on-message calls over `recipients` conversations, shard by
/// shard concurrently; events per second.
async fn throughput(db: Arc<dyn Storage>, events: usize, recipients: usize) -> f64 {
    setup(&db, recipients, 3600).await;
    let clock = Clock::wall();
    let shards = shards(&db, &clock);
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (s, shard) in shards.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut rt = shard.lock().await;
            // Tenants t with t % SHARDS == s belong to shard s.
            let mut n = s;
            let mut seq = 0;
            while n < events {
                let r = n % recipients;
                if (r % TENANTS) % SHARDS == s {
                    let tenant = format!("t{}", r % TENANTS);
                    let now = rt.clock.now();
                    rt.on_message(&tenant, &message(r, seq, now))
                        .await
                        .unwrap()
                        .unwrap();
                    seq += 1;
                }
                n += 1;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    events as f64 / start.elapsed().as_secs_f64()
}

/// `pending` notifications due within a few seconds, fired by a scheduler
/// like `host`'s; (median, p99) lag in ms from due to the call's start.
async fn timer_lag(db: Arc<dyn Storage>, pending: usize) -> (u64, u64, f64) {
    setup(&db, pending, 5).await;
    let clock = Clock::wall();
    let shards = shards(&db, &clock);
    // Schedule them all (5 s delay), concurrently.
    let mut tasks = tokio::task::JoinSet::new();
    for (s, shard) in shards.iter().cloned().enumerate() {
        tasks.spawn(async move {
            let mut rt = shard.lock().await;
            for r in (0..pending).filter(|r| (r % TENANTS) % SHARDS == s) {
                let tenant = format!("t{}", r % TENANTS);
                let now = rt.clock.now();
                rt.on_message(&tenant, &message(r, 0, now))
                    .await
                    .unwrap()
                    .unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let mut lags = Vec::with_capacity(pending);
    let start = Instant::now();
    while lags.len() < pending {
        let now = clock.now();
        let claims = db.claim(now, now, 64, LEASE_MS).await.unwrap();
        if claims.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        }
        let mut calls = tokio::task::JoinSet::new();
        for claim in claims {
            lags.push(clock.now().saturating_sub(claim.due_at));
            let shard = shards[(claim.tenant[1..].parse::<usize>().unwrap()) % SHARDS].clone();
            calls.spawn(async move {
                let mut rt = shard.lock().await;
                rt.fire(claim).await.unwrap();
                rt.traffic.take_sms();
            });
        }
        while calls.join_next().await.is_some() {}
    }
    let rate = pending as f64 / start.elapsed().as_secs_f64();
    lags.sort_unstable();
    (lags[lags.len() / 2], lags[lags.len() * 99 / 100], rate)
}

fn main() {
    // `cargo bench -p host-test -- FILTER` (criterion's filter for the
    // events bench) skips this one unless FILTER names it.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && !a.contains("storage"))
    {
        return;
    }
    let events = env_or("SMS_BENCH_EVENTS", 20_000);
    let pending = env_or("SMS_BENCH_PENDING", 100_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cluster = std::fs::read_dir("/usr/lib/postgresql")
        .is_ok()
        .then(pg::Cluster::start);
    rt.block_on(async {
        let mut results = Vec::new();
        let sqlite = |name: &str| format!("sqlite:{}", dir.path().join(name).display());
        let mut backends = vec![("memory", "memory:".to_owned()), ("sqlite", sqlite("events.db"))];
        if let Some(c) = &cluster {
            backends.push(("postgres", c.create("events")));
        } else {
            println!("PostgreSQL not installed: its figures are not measured");
        }
        for (name, url) in &backends {
            let db = storage::open(url).await.unwrap();
            let rate = throughput(db, events, 10_000).await;
            println!("on-message, {name}: {rate:.0} events/s ({events} events, {SHARDS} shards, {TENANTS} tenants)");
            results.push((*name, rate));
        }
        let memory = results[0].1;
        for (name, rate) in &results[1..] {
            println!("durable/memory, {name}: {:.2}", rate / memory);
        }
        // The in-memory store's claim scans every timer: only durable stores
        // are measured here.
        for (name, url) in [("sqlite", sqlite("timers.db"))] {
            let db = storage::open(&url).await.unwrap();
            let (median, p99, rate) = timer_lag(db, pending).await;
            println!(
                "timer lag, {name}, {pending} pending: median {median} ms, p99 {p99} ms ({rate:.0} fired/s)"
            );
        }
    });
}
