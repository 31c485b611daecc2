//! Every scenario under `tests/scenarios/` runs through the real component
//! and must print exactly its `.expected.jsonl` twin. None is forgotten: the
//! test walks the directory, and a scenario without a twin fails.
//!
//! After an intended change of behaviour, regenerate the twins with
//! `BLESS=1 cargo test --test scenarios` and review the diff.

use host_test::outbound::Policy;
use host_test::runtime::Runtime;
use host_test::scenario;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".jsonl") && !name.ends_with(".expected.jsonl")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenarios in {}", dir.display());
    files
}

fn expected_path(scenario: &Path) -> PathBuf {
    scenario.with_extension("expected.jsonl")
}

async fn output(scenario: &Path) -> Vec<Value> {
    let script = std::fs::read_to_string(scenario).unwrap();
    let mut runtime = Runtime::new(Policy::default()).unwrap();
    scenario::run_script(&mut runtime, &script)
        .await
        .unwrap_or_else(|e| panic!("{}: {e:#}", scenario.display()))
}

#[tokio::test]
async fn every_scenario_prints_its_expected_output() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for scenario in scenarios() {
        let got = output(&scenario).await;
        let path = expected_path(&scenario);
        if bless {
            let text: String = got.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(&path, text).unwrap();
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            failures.push(format!(
                "{}: no {} (run with BLESS=1 and review it)",
                scenario.display(),
                path.display()
            ));
            continue;
        };
        let want: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if got != want {
            let got: String = got.iter().map(|l| format!("  {l}\n")).collect();
            failures.push(format!(
                "{}: output differs; got:\n{got}",
                scenario.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
