//! Every scenario under `tests/scenarios/` runs through the real component
//! and must print exactly its `.expected.jsonl` twin, twice: on the
//! in-memory store and on a fresh SQLite file (the durable default). Each
//! is a test of its own (`cargo test --test scenarios -- NAME` runs one),
//! and none is forgotten: a test checks that the list below is the
//! directory's.
//!
//! After an intended change of behaviour, regenerate the twins with
//! `BLESS=1 cargo test --test scenarios` and review the diff.

use host_test::TestRuntime;
use host_test::{scenario, storage};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

/// Runs the scenario on the store `db` names (`None`: a fresh SQLite file).
async fn check(name: &str, db: Option<&str>) {
    let scenario = dir().join(format!("{name}.jsonl"));
    let script = std::fs::read_to_string(&scenario).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let url = match db {
        Some(url) => url.to_owned(),
        None => format!("sqlite:{}", scratch.path().join("sms.db").display()),
    };
    // On SQLite, settings are sealed at rest as a host seals them.
    let key =
        storage::sealed::Key::from_base64("c2NlbmFyaW8tc2V0dGluZ3Mta2V5LTMyLWJ5dGVzISE=").unwrap();
    let store = storage::open_sealed(&url, Some(key)).await.unwrap();
    let mut runtime = TestRuntime::on(host_test::prepared().unwrap(), store);
    let got = scenario::run_script(&mut runtime, &script)
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}", scenario.display()));
    let path = dir().join(format!("{name}.expected.jsonl"));
    if std::env::var_os("BLESS").is_some() && db.is_some() {
        let text: String = got.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no {} (run with BLESS=1 and review it)", path.display()));
    let want: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    if got != want {
        let got: String = got.iter().map(|l| format!("  {l}\n")).collect();
        panic!("{}: output differs; got:\n{got}", scenario.display());
    }
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn memory() {
                    super::check(stringify!($name), Some("memory:")).await;
                }

                #[tokio::test]
                async fn sqlite() {
                    super::check(stringify!($name), None).await;
                }
            }
        )*

        const NAMES: &[&str] = &[$(stringify!($name)),*];
    };
}

scenarios! {
    api_key_and_service,
    auth_paused,
    bad_settings,
    burst_and_partial_read,
    contact_numbers,
    cooldown,
    daily_limits,
    delivery_reports,
    edits_and_deletions,
    emoji_name,
    expiry,
    failed_timer_rearms,
    gsm_vs_emoji,
    huge_name,
    link_with_many_unread,
    lost_timer,
    lowered_max_attempts,
    maybe_sent_counts,
    message_during_send,
    never_twice,
    offline_unread,
    preview,
    quiet_hours,
    quoted_secret,
    redelivered,
    replies_read,
    retry_after_capped,
    retry_exhausted,
    retry_rate_limited,
    retry_rechecks,
    segment_budget,
    skips,
    slow_twilio,
    stop_suppression,
    templates,
    tenant_wide_refusals,
    three_hundred_messages,
    undeliverable,
}

#[test]
fn every_scenario_file_has_a_test() {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl") && !n.ends_with(".expected.jsonl"))
        .map(|n| n.trim_end_matches(".jsonl").to_owned())
        .collect();
    files.sort();
    assert_eq!(
        files, NAMES,
        "add each scenario to the list in tests/scenarios.rs"
    );
}
