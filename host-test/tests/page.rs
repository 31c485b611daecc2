//! The dashboard page in a real browser: `serve --fake-twilio` as a child
//! process, Debian's Chromium driven by `playwright-core` from npm
//! (`tests/browser/page.mjs`: every step a user takes, asserted, with a
//! screenshot of each state under `target/browser-screenshots/`).
//!
//! Needs `/usr/bin/chromium`, Node.js and `npm ci --prefix
//! host-test/tests/browser`; without them the test is ignored and the build
//! says so in one line. `.ci/run` installs them and sets
//! `SMS_REQUIRE_BROWSER=1`, which makes their absence a build error.

mod common;

use common::serve::Serve;
use common::twilio::FakeTwilio;
use std::time::Duration;

#[test]
#[cfg_attr(
    not(browser_found),
    ignore = "needs Chromium, Node.js and playwright-core (see the README's Tests)"
)]
fn the_page_in_chromium() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("sms.db").display());
    let s = Serve::start(&db, &twilio.url, &["--fake-twilio"]);
    // The page is the app developer's: signed in with the tenant's own
    // token, never the operator's.
    let (status, minted) = s.api("POST", "/v1/tenants/acme/tokens", "");
    assert_eq!(status, 200, "{minted}");
    let token = minted["token"].as_str().unwrap().to_owned();
    let manifest = env!("CARGO_MANIFEST_DIR");
    let shots = format!("{manifest}/../target/browser-screenshots");
    let out = std::process::Command::new("node")
        .arg(format!("{manifest}/tests/browser/page.mjs"))
        .args([&format!("http://{}", s.addr), &token, &shots])
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("every step passed"));
    let log = s.log.lock().unwrap().clone();
    for secret in ["page-test-auth-token", "page-test-rest-api-key", &token] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
    assert!(s.stop().success());
}
