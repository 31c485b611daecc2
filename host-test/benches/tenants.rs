//! `serve`'s resident memory with many tenants: `SMS_BENCH_KNOWN`
//! (100,000) tenants with saved settings, of which `SMS_BENCH_ACTIVE`
//! (10,000) each get an event within a minute, with `--max-sandboxes`
//! as high as the active tenants so every one keeps its sandbox. Prints
//! the process's resident memory (VmRSS) at each step.
//!
//! `cargo bench -p host-test --bench tenants` (about a minute).

mod support;

use host_test::serve::TwilioTarget;
use serde_json::json;
use std::time::Instant;
use support::service::{self, AUTH};
use support::{settings, webhook};

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let known = env_or("SMS_BENCH_KNOWN", 100_000);
    let active = env_or("SMS_BENCH_ACTIVE", 10_000).min(known);
    let _ = host_test::prepared().unwrap();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // The database on tmpfs when there is one: saving 100,000 settings one
    // fsync each would take minutes, and its pages are not this process's.
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        tempfile::tempdir_in("/dev/shm").unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    tokio.block_on(async move {
        let service = service::start(dir.path(), TwilioTarget::TryOut, active).await;
        let (addr, store) = (service.addr, service.store.clone());
        // Wait for it to answer.
        let mut client = webhook::connect(addr).await;
        client.put_to("/v1/tenants/t0/settings", Some(AUTH), settings()).await;
        let started = rss();
        // Known tenants: settings saved (through the store: the API would
        // validate each through a sandbox first, which is not what is
        // measured here).
        let saving = Instant::now();
        let text = settings();
        let mut tasks = tokio::task::JoinSet::new();
        const WRITERS: usize = 32;
        for w in 0..WRITERS {
            let (store, text) = (store.clone(), text.clone());
            tasks.spawn(async move {
                for t in (0..known).filter(|t| t % WRITERS == w) {
                    store.save_settings(&format!("t{t}"), &text).await.unwrap();
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let known_rss = rss();
        println!(
            "{known} tenants known (settings saved in {:.1?}): resident {:.0} MiB (started at {:.0} MiB)",
            saving.elapsed(),
            mib(known_rss),
            mib(started)
        );
        // Active tenants: one event each, 16 clients at once.
        let posting = Instant::now();
        const CLIENTS: usize = 16;
        for c in 0..CLIENTS {
            tasks.spawn(async move {
                let mut client = webhook::connect(addr).await;
                for t in (0..active).filter(|t| t % CLIENTS == c) {
                    let message = json!({"id": "m1", "conversation": "c1", "sender": "alice",
                        "receiver": "bob", "text": "hello"});
                    client
                        .post_to(&format!("/v1/tenants/t{t}/messages"), Some(AUTH), message)
                        .await;
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        let active_rss = rss();
        println!(
            "{active} of them active (an event each, in {:.1?}, every sandbox kept): resident {:.0} MiB, \
             {:.0} KiB per active tenant over the known ones; target 1.5 GiB: {}",
            posting.elapsed(),
            mib(active_rss),
            (active_rss.saturating_sub(known_rss)) as f64 / 1024.0 / active as f64,
            if active_rss <= 3 << 29 { "met" } else { "missed" }
        );
        service.stop().await;
    });
}
