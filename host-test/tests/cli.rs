//! The two CLI entry points the README documents, run as a user would.

use std::path::Path;
use std::process::{Command, Output};

fn host_test(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_host-test"))
        .args(args)
        .env_remove("TWILIO_ACCOUNT_SID")
        .env_remove("TWILIO_AUTH_TOKEN")
        .env_remove("TWILIO_FROM")
        .env_remove("SMS_TO")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn demo_tells_the_story_with_one_sms() {
    let out = host_test(&["demo"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("Twilio received POST https://api.twilio.com/2010-04-01/Accounts/"),
        "{stdout}"
    );
    assert!(stdout.contains("To  : +14155552671"), "{stdout}");
    assert!(
        stdout.contains("Body: 1 new message from Alice: Are we still on for dinner at 8?"),
        "{stdout}"
    );
    assert!(stdout.contains("\"cancelled\""), "{stdout}");
    assert!(
        stdout.contains("0 SMS sent: Bob already read it."),
        "{stdout}"
    );
    assert!(
        !stdout.contains("demo-auth-token"),
        "the token must never be printed"
    );
}

#[test]
fn live_demo_names_every_missing_variable() {
    let out = host_test(&["demo", "--live"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    for name in [
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_FROM",
        "SMS_TO",
    ] {
        assert!(stderr.contains(name), "{name} not named in: {stderr}");
    }
    assert!(out.stdout.is_empty(), "nothing runs without the variables");
}

#[test]
fn run_prints_json_lines_with_the_sms() {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/scenarios/offline_unread.jsonl");
    let out = host_test(&["run", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let sms: Vec<_> = lines.iter().filter_map(|l| l.get("sms")).collect();
    assert_eq!(sms.len(), 1, "{lines:?}");
    assert_eq!(sms[0]["form"]["To"], "+14155552671");
    assert_eq!(sms[0]["auth_user"], "AC0123456789abcdef0123456789abcdef");
    assert!(!text(&out.stdout).contains("scenario-token"));
    assert!(
        lines
            .iter()
            .any(|l| l["call"] == "on-timer" && l["outcome"]["sent"]["sid"].is_string())
    );
}

#[test]
fn a_malformed_step_is_reported_with_its_line() {
    let dir = std::env::temp_dir().join(format!("host-test-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.jsonl");
    std::fs::write(&file, "# comment\n{\"advance\": 1}\n{\"advance\": -1}\n").unwrap();
    let out = host_test(&["run", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing runs before every line parses"
    );

    let missing = host_test(&["run", dir.join("nope.jsonl").to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("cannot read"));
}

/// The wall-clock host refuses the steps that move a virtual clock (a
/// `time` step would otherwise fire timers early), line by line, and goes
/// on.
#[test]
fn the_wall_clock_host_refuses_virtual_time() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("sms.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_host-test"))
        .args(["host", "--db", &db, "--fake-twilio", "--until-idle"])
        .env(
            "SMS_SETTINGS_KEY",
            "Y2xpLXRlc3RzLXNldHRpbmdzLWtleS0zMi1ieXRlcyE=",
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"advance\": 60}\n{\"time\": \"2030-01-01T00:00:00Z\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    let errors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("runs on the wall clock"))
        .collect();
    assert_eq!(errors.len(), 2, "{stdout}");
    assert!(errors[1].contains("\"line\":2"), "{stdout}");
}
