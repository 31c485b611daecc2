//! `serve` end to end: the real binary as a child process, real HTTP on
//! loopback, a SQLite file, the real `.wasm`, and a fake Twilio on
//! loopback that counts what it took.

mod common;

use common::serve::{Serve, TOKEN, WEBHOOK, basic, raw, request, settled, wait_for};
use common::twilio::FakeTwilio;
use serde_json::{Value, json};
use std::time::Duration;

const AUTH_TOKEN: &str = "tw-auth-token-never-echoed";

fn settings(delay: u64) -> String {
    json!({
        "twilioAccountSid": "AC0123456789abcdef0123456789abcdef",
        "twilioAuthToken": AUTH_TOKEN,
        "fromMobileNo": "+15005550006",
        "delaySeconds": delay,
        "cooldownMinutes": 0,
    })
    .to_string()
}

fn db(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}", dir.path().join("sms.db").display())
}

/// Settings and Alice (online) and Bob (offline, with a number).
fn tenant(s: &Serve, delay: u64) {
    assert_eq!(
        s.api("PUT", "/v1/tenants/acme/settings", &settings(delay))
            .0,
        200
    );
    let alice = json!({ "name": "Alice", "presence": "online" }).to_string();
    assert_eq!(s.api("PUT", "/v1/tenants/acme/users/alice", &alice).0, 200);
    let bob =
        json!({ "name": "Bob", "metadata": { "@private": { "contactNumber": "+14155552671" } } })
            .to_string();
    assert_eq!(s.api("PUT", "/v1/tenants/acme/users/bob", &bob).0, 200);
}

fn message(id: &str, text: &str) -> String {
    json!({ "id": id, "conversation": "alice_bob", "sender": "alice", "receiver": "bob", "text": text })
        .to_string()
}

#[test]
fn alice_and_bob_through_the_json_api() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(&db(&dir), &twilio.url, &[]);
    tenant(&s, 1);
    let (status, body) = s.api(
        "POST",
        "/v1/tenants/acme/messages",
        &message("m1", "dinner?"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"]["scheduled"]["recipient"], "bob");
    assert!(wait_for(Duration::from_secs(20), || twilio.total() == 1));
    // Read it now: nothing more goes out.
    let read = json!({ "conversation": "alice_bob", "reader": "bob", "message": "m1" });
    let (status, body) = s.api("POST", "/v1/tenants/acme/receipts", &read.to_string());
    assert_eq!(status, 200, "{body}");
    let (status, state) = s.api("GET", "/v1/tenants/acme/state", "");
    assert_eq!(status, 200);
    assert_eq!(state["sends"][0]["status"], "queued");
    assert_eq!(state["sends"][0]["to"], "+14*******71");
    let (_, logs) = s.api("GET", "/v1/tenants/acme/logs", "");
    let logs = logs.to_string();
    assert!(logs.contains("sent SMS SM"), "{logs}");
    assert!(!logs.contains("4155552671"), "numbers are masked: {logs}");
    // No timer left: nothing more can go out.
    settled(&s);
    assert_eq!(twilio.counts()["+14155552671"], 1);
    let (_, metrics) = s.call("GET", "/metrics", None, "");
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(metrics.contains("sms_sent_total 1"), "{metrics}");
    // The conversation's record waits a day to expire; nothing else.
    assert!(metrics.contains("\nsms_timers 1\n"), "{metrics}");
    assert!(
        metrics.contains("\nsms_timers_by_kind{kind=\"expire\"} 1\n"),
        "{metrics}"
    );
    assert!(!metrics.contains("kind=\"deliver\""), "{metrics}");
    // acme's sandbox is in memory (its settings were checked, its
    // events answered), no other.
    assert!(metrics.contains("\nsms_sandboxes 1\n"), "{metrics}");
    assert!(
        metrics.contains("sms_timer_lag_seconds_count 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sms_calls_total{call=\"on-message\",answer=\"scheduled\"} 1"),
        "{metrics}"
    );
    let (status, health) = s.call("GET", "/healthz", None, "");
    assert_eq!((status, health["component"].as_str()), (200, Some("0.4.0")));
    // Without --public-url, delivery reports are off by default, and both
    // /healthz and the start-up line say why.
    assert!(
        health["delivery_reports"]["default_callback"].is_null(),
        "{health}"
    );
    assert!(
        health["delivery_reports"]["why"]
            .as_str()
            .unwrap()
            .contains("--public-url"),
        "{health}"
    );
    assert!(
        s.log.lock().unwrap().contains("delivery reports: off"),
        "the start-up line says so"
    );
    let log = s.log.lock().unwrap().clone();
    assert!(!log.contains(AUTH_TOKEN), "the auth token reached the log");
    assert!(
        !log.contains("4155552671"),
        "numbers are masked in the log: {log}"
    );
    assert!(s.stop().success());
}

/// Twilio's status callback, signed as Twilio signs: recorded; forged: 403.
#[test]
fn delivery_reports_over_http() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(&db(&dir), &twilio.url, &[]);
    let callback = format!("http://{}/twilio/acme/status", s.addr);
    let mut with_callback: Value = serde_json::from_str(&settings(1)).unwrap();
    with_callback["statusCallbackURL"] = json!(callback);
    tenant(&s, 1);
    assert_eq!(
        s.api(
            "PUT",
            "/v1/tenants/acme/settings",
            &with_callback.to_string()
        )
        .0,
        200
    );
    s.api("POST", "/v1/tenants/acme/messages", &message("m1", "hi"));
    assert!(wait_for(Duration::from_secs(20), || twilio.total() == 1));
    let url = format!("{callback}?recipient=bob");
    let params = vec![
        ("MessageSid".to_owned(), format!("SM{:032x}", 1)),
        ("MessageStatus".to_owned(), "undelivered".to_owned()),
        ("ErrorCode".to_owned(), "30006".to_owned()),
    ];
    let form: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let path = "/twilio/acme/status?recipient=bob";
    let forged = host_test::report::sign("not-the-token", &url, &params);
    let headers = |sig: &str| {
        format!("X-Twilio-Signature: {sig}\r\nContent-Type: application/x-www-form-urlencoded\r\n")
    };
    let (status, body) = request(&s.addr, "POST", path, &headers(&forged), &form);
    assert_eq!(status, 403, "{body}");
    let (_, state) = s.api("GET", "/v1/tenants/acme/state", "");
    assert_eq!(state["sends"][0]["status"], "queued", "nothing recorded");
    let signed = host_test::report::sign(AUTH_TOKEN, &url, &params);
    let (status, body) = request(&s.addr, "POST", path, &headers(&signed), &form);
    assert_eq!(status, 204, "{body}");
    let (_, state) = s.api("GET", "/v1/tenants/acme/state", "");
    assert_eq!(state["sends"][0]["status"], "undelivered");
    assert_eq!(state["suppressions"][0]["reason"], "undeliverable-number");
    // The number is not texted again: the message is taken, and its
    // notification ends without an SMS, for that reason.
    let (status, body) = s.api(
        "POST",
        "/v1/tenants/acme/messages",
        &message("m2", "again?"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"]["scheduled"]["recipient"], "bob", "{body}");
    assert!(
        wait_for(Duration::from_secs(20), || {
            let (_, logs) = s.api("GET", "/v1/tenants/acme/logs", "");
            logs.to_string().contains("undeliverable-number")
        }),
        "the notification ended as undeliverable"
    );
    settled(&s);
    assert_eq!(twilio.total(), 1);
    assert!(s.stop().success());
}

/// With `--public-url`, every SMS asks Twilio for delivery reports with
/// no setup by the tenant: a landline Twilio reports as undeliverable is
/// never texted again. A tenant's own `statusCallbackURL: null` opts out.
#[test]
fn delivery_reports_without_tenant_setup() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    // Behind a proxy: Twilio calls the public name, the proxy this address.
    let public = "https://sms.example.com";
    let s = Serve::start(
        &db(&dir),
        &twilio.url,
        &["--public-url", "https://sms.example.com/"],
    );
    let (_, health) = s.call("GET", "/healthz", None, "");
    assert_eq!(
        health["delivery_reports"]["default_callback"],
        format!("{public}/twilio/{{tenant}}/status"),
        "{health}"
    );
    tenant(&s, 1);
    let (status, body) = s.api("POST", "/v1/tenants/acme/messages", &message("m1", "hi"));
    assert_eq!(status, 200, "{body}");
    assert!(wait_for(Duration::from_secs(20), || twilio.total() == 1));
    let callback = twilio.callbacks()[0].clone().expect("a StatusCallback");
    assert_eq!(
        callback,
        format!("{public}/twilio/acme/status?recipient=bob")
    );
    // Twilio reports the number undeliverable (30006: a landline).
    let params = vec![
        ("MessageSid".to_owned(), format!("SM{:032x}", 1)),
        ("MessageStatus".to_owned(), "undelivered".to_owned()),
        ("ErrorCode".to_owned(), "30006".to_owned()),
    ];
    let form: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter())
        .finish();
    let signed = host_test::report::sign(AUTH_TOKEN, &callback, &params);
    let headers = format!(
        "X-Twilio-Signature: {signed}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    );
    let path = callback.strip_prefix(public).unwrap();
    let (status, body) = request(&s.addr, "POST", path, &headers, &form);
    assert_eq!(status, 204, "{body}");
    let (_, state) = s.api("GET", "/v1/tenants/acme/state", "");
    assert_eq!(state["suppressions"][0]["reason"], "undeliverable-number");
    // Another message: taken, and its notification ends without an SMS.
    let (status, body) = s.api(
        "POST",
        "/v1/tenants/acme/messages",
        &message("m2", "again?"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"]["scheduled"]["recipient"], "bob", "{body}");
    let ended = wait_for(Duration::from_secs(20), || {
        let (_, state) = s.api("GET", "/v1/tenants/acme/state", "");
        state["pending"].as_array().is_some_and(|p| p.is_empty())
    });
    let (_, logs) = s.api("GET", "/v1/tenants/acme/logs", "");
    assert!(ended, "the second notification ended: {logs}");
    assert!(
        logs.to_string()
            .contains(r#"no SMS for \"bob\" in \"alice_bob\": undeliverable-number"#),
        "the log says why nothing was sent: {logs}"
    );
    assert_eq!(twilio.total(), 1, "the landline was not texted again");

    // A tenant that wants no reports says `null`.
    let mut without: Value = serde_json::from_str(&settings(0)).unwrap();
    without["statusCallbackURL"] = Value::Null;
    assert_eq!(
        s.api("PUT", "/v1/tenants/beta/settings", &without.to_string())
            .0,
        200
    );
    let carol = json!({ "name": "Carol", "presence": "offline", "metadata": { "@private": { "contactNumber": "+14155552672" } } });
    assert_eq!(
        s.api("PUT", "/v1/tenants/beta/users/carol", &carol.to_string())
            .0,
        200
    );
    let dan = json!({ "name": "Dan", "presence": "online" }).to_string();
    assert_eq!(s.api("PUT", "/v1/tenants/beta/users/dan", &dan).0, 200);
    let m = json!({ "id": "b1", "conversation": "carol_dan", "sender": "dan", "receiver": "carol", "text": "yo" });
    assert_eq!(
        s.api("POST", "/v1/tenants/beta/messages", &m.to_string()).0,
        200
    );
    assert!(wait_for(Duration::from_secs(20), || twilio.total() == 2));
    assert_eq!(twilio.callbacks()[1], None, "no StatusCallback for beta");
    assert!(s.stop().success());

    // A public URL Twilio could not call is refused at start-up.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-test"))
        .args(["serve", "--bind", "127.0.0.1:0", "--db", &db(&dir)])
        .args(["--public-url", "sms.example.com"])
        .env("SMS_OPERATOR_TOKEN", TOKEN)
        .env(
            "SMS_SETTINGS_KEY",
            "c2VydmUtdGVzdHMtc2V0dGluZ3Mta2V5LTMyLWJ5dGU=",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("--public-url \"sms.example.com\" is not a base URL"),
        "{said}"
    );
}

#[test]
fn a_restart_between_message_and_due_time_still_sends_once() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(&db(&dir), &twilio.url, &[]);
    tenant(&s, 3);
    let (status, _) = s.api("POST", "/v1/tenants/acme/messages", &message("m1", "ping"));
    assert_eq!(status, 200);
    assert!(s.stop().success(), "SIGTERM: exit 0");
    assert_eq!(twilio.total(), 0);
    let s = Serve::start(&db(&dir), &twilio.url, &[]);
    assert!(wait_for(Duration::from_secs(20), || twilio.total() == 1));
    settled(&s);
    assert_eq!(twilio.total(), 1);
    assert!(s.stop().success());
}

#[test]
fn bad_input_gets_clear_errors_and_loses_nothing() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(&db(&dir), &twilio.url, &[]);
    tenant(&s, 600);
    let m = message("m1", "x");
    // Who is asking.
    assert_eq!(s.call("POST", "/v1/tenants/acme/messages", None, &m).0, 401);
    let wrong = s.call(
        "POST",
        "/v1/tenants/acme/messages",
        Some("Bearer operator-token-for-testz"),
        &m,
    );
    assert_eq!(wrong.0, 401);
    // What was sent.
    let (status, body) = s.api("POST", "/v1/tenants/acme/messages", "{\"id\": \"m1\"");
    assert_eq!(status, 400, "{body}");
    let (status, body) = s.api("POST", "/v1/tenants/acme/messages", "{\"id\": \"m1\"}");
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("conversation"),
        "{body}"
    );
    let (status, body) = s.api(
        "POST",
        "/v1/tenants/acme/messages",
        &json!({ "id": "m1", "conversation": "c", "sender": "a", "receiver": "b", "colour": 1 })
            .to_string(),
    );
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("colour"), "{body}");
    let (status, body) = s.api(
        "POST",
        "/v1/tenants/acme/messages",
        &json!({ "id": "", "conversation": "c", "sender": "a", "receiver": "b" }).to_string(),
    );
    assert_eq!(status, 422, "the component's own check: {body}");
    assert_eq!(s.api("POST", "/v1/tenants/nobody/messages", &m).0, 404);
    assert_eq!(s.api("POST", "/v1/tenants/bad%20name/messages", &m).0, 400);
    assert_eq!(s.api("GET", "/v1/nothing-here", "").0, 404);
    let big = vec![b'a'; (1 << 20) + 1];
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    let (status, body) = raw(&s.addr, "POST", "/v1/tenants/acme/messages", &auth, &big);
    assert_eq!(status, 413);
    assert!(body["error"].is_string(), "JSON, as every error: {body}");
    // Settings: every problem, each naming its field; the stored ones stay.
    let (status, body) = s.api(
        "PUT",
        "/v1/tenants/acme/settings",
        &json!({ "twilioAccountSid": "AC1", "delaySeconds": -1 }).to_string(),
    );
    assert_eq!(status, 422);
    let fields: Vec<&str> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"twilioAccountSid") && fields.contains(&"delaySeconds"),
        "{fields:?}"
    );
    let (status, got) = s.api("GET", "/v1/tenants/acme/settings", "");
    assert_eq!(status, 200);
    assert_eq!(
        got["settings"]["delaySeconds"], 600,
        "the saved settings stay"
    );
    assert_eq!(got["secrets_set"], json!(["twilioAuthToken"]));
    assert!(!got.to_string().contains(AUTH_TOKEN), "write-only secret");
    // Saving other fields keeps the token.
    let mut without: Value = serde_json::from_str(&settings(30)).unwrap();
    without.as_object_mut().unwrap().remove("twilioAuthToken");
    assert_eq!(
        s.api("PUT", "/v1/tenants/acme/settings", &without.to_string())
            .0,
        200
    );
    let (_, got) = s.api("GET", "/v1/tenants/acme/settings", "");
    assert_eq!(got["settings"]["delaySeconds"], 30);
    assert_eq!(got["secrets_set"], json!(["twilioAuthToken"]));
    // Nothing stored was lost: a message still schedules.
    let (status, body) = s.api("POST", "/v1/tenants/acme/messages", &m);
    assert_eq!(status, 200, "{body}");
    let log = s.log.lock().unwrap().clone();
    assert!(!log.contains(AUTH_TOKEN));
    assert!(!log.contains("panicked"), "{log}");
    assert!(s.stop().success());
}

/// Small refusals a hostile client meets: ids of only dots, a `sent_at` at
/// the end of time, an unknown tenant's status callback answered as a
/// forged one, errors before authentication, axum's own refusals in JSON,
/// a page that no other site may frame.
#[test]
fn small_refusals_for_hostile_clients() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(&db(&dir), &twilio.url, &[]);
    tenant(&s, 600);
    for path in [
        "/v1/tenants/../settings",
        "/v1/tenants/%2e%2e/settings",
        "/v1/tenants/./settings",
    ] {
        let (status, body) = s.api("PUT", path, &settings(1));
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("only dots"),
            "{body}"
        );
    }
    let (status, body) = s.api("PUT", "/v1/tenants/acme/users/..", "{}");
    assert_eq!(status, 400, "{body}");
    // A notification due at the end of time would never come.
    let late = json!({ "id": "m1", "conversation": "alice_bob", "sender": "alice",
        "receiver": "bob", "text": "x", "sent_at": u64::MAX });
    let (status, body) = s.api("POST", "/v1/tenants/acme/messages", &late.to_string());
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("ahead"), "{body}");
    let (_, state) = s.api("GET", "/v1/tenants/acme/state", "");
    assert_eq!(state["pending"], json!([]), "nothing scheduled");
    // The status callback: the same answer for a real tenant and for a
    // name nobody has, so names cannot be probed.
    let form = "MessageSid=SM1&MessageStatus=delivered";
    let header =
        "Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: forged\r\n";
    let real = request(&s.addr, "POST", "/twilio/acme/status", header, form);
    let ghost = request(&s.addr, "POST", "/twilio/ghost/status", header, form);
    assert_eq!(real.0, 403);
    assert_eq!(real, ghost, "one answer for both");
    // Counted, not logged one line each.
    for _ in 0..20 {
        request(&s.addr, "POST", "/twilio/acme/status", header, form);
    }
    let (_, metrics) = s.call("GET", "/metrics", None, "");
    assert!(
        metrics
            .as_str()
            .unwrap()
            .contains("sms_forged_reports_total 22"),
        "{metrics}"
    );
    let log = s.log.lock().unwrap().clone();
    assert_eq!(log.matches("status callback(s)").count(), 1, "{log}");
    // Before authentication, nothing about the request is read.
    let (status, body) = s.call("DELETE", "/v1/tenants/acme/quarantine", None, "");
    assert_eq!(status, 401, "{body}");
    // axum's own refusals are JSON too.
    let (status, body) = s.api("PATCH", "/v1/tenants/acme/settings", "{}");
    assert_eq!(status, 405);
    assert!(body["error"].is_string(), "{body}");
    // The page refuses to be framed.
    let mut stream = std::net::TcpStream::connect(&s.addr).unwrap();
    use std::io::{Read, Write};
    write!(
        stream,
        "GET /tenants/acme HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut head = String::new();
    stream.read_to_string(&mut head).unwrap();
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("frame-ancestors 'none'"),
        "{}",
        &head[..400.min(head.len())]
    );
    assert!(head.contains("x-frame-options: deny"));
    assert!(s.stop().success());
}

/// Per-tenant quotas: a user too large is 413, a user past the count 422,
/// state past its keys refused whole (the call fails, nothing stored
/// changes); CometChat's webhooks obey the same caps.
#[test]
fn quotas_bound_what_a_tenant_keeps() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(
        &db(&dir),
        &twilio.url,
        &[
            "--max-users",
            "3",
            "--max-user-bytes",
            "2000",
            "--max-state-keys",
            "2",
        ],
    );
    tenant(&s, 600);
    let hog = json!({ "metadata": { "junk": "x".repeat(1 << 19) } }).to_string();
    let (status, body) = s.api("PUT", "/v1/tenants/acme/users/hog", &hog);
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("--max-user-bytes"),
        "{body}"
    );
    assert_eq!(s.api("PUT", "/v1/tenants/acme/users/carol", "{}").0, 200);
    let (status, body) = s.api("PUT", "/v1/tenants/acme/users/dave", "{}");
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("--max-users"),
        "{body}"
    );
    assert_eq!(
        s.api("PUT", "/v1/tenants/acme/users/bob", "{}").0,
        200,
        "replacing is fine"
    );
    // A webhook naming a new user past the count: the message is taken,
    // the user is not kept.
    s.webhook_credentials("acme");
    let mut m = json!({ "trigger": "after_message", "data": { "id": "w1",
        "sender": "erin", "receiver": "bob", "receiverType": "user", "category": "message",
        "type": "text", "data": { "text": "hi", "entities": { "sender": { "entityType": "user",
        "entity": { "uid": "erin", "name": "E".repeat(5000), "status": "online" } } } } } });
    let (status, body) = s.call(
        "POST",
        "/cometchat/acme/webhook",
        Some(&basic(WEBHOOK)),
        &m.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    // A known user's name past the bytes: not kept.
    let mut renamed = m.clone();
    renamed["data"]["id"] = json!("w0");
    renamed["data"]["sender"] = json!("bob");
    renamed["data"]["receiver"] = json!("alice");
    renamed["data"]["data"]["entities"]["sender"]["entity"]["uid"] = json!("bob");
    let (status, body) = s.call(
        "POST",
        "/cometchat/acme/webhook",
        Some(&basic(WEBHOOK)),
        &renamed.to_string(),
    );
    assert_eq!(status, 200, "{body}");
    // State: two records (the two conversations above); a third
    // conversation's record is refused whole.
    m["data"]["id"] = json!("w2");
    let second = json!({ "id": "m9", "conversation": "alice_carol", "sender": "alice",
        "receiver": "carol", "text": "x" });
    let (status, body) = s.api("POST", "/v1/tenants/acme/messages", &second.to_string());
    assert_eq!(status, 507, "a full quota is not 'try again': {body}");
    assert!(body.to_string().contains("full"), "{body}");
    assert!(s.stop().success());
    let conn = rusqlite::Connection::open(dir.path().join("sms.db")).unwrap();
    let users: Vec<(String, i64)> = conn
        .prepare("SELECT uid, length(name) FROM users WHERE tenant = 'acme' ORDER BY uid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let uids: Vec<&str> = users.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(uids, ["alice", "bob", "carol"], "erin was not kept");
    assert!(users.iter().all(|(_, len)| *len < 2000), "{users:?}");
}

/// An operator token that can be guessed is refused at start-up.
#[test]
fn a_short_operator_token_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-test"))
        .args(["serve", "--bind", "127.0.0.1:0", "--db", "memory:"])
        .env("SMS_OPERATOR_TOKEN", "a")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at least 16"), "{err}");
}

#[test]
fn serve_needs_a_token_off_loopback() {
    for flags in [
        vec!["--bind", "0.0.0.0:0"],
        vec!["--bind", "0.0.0.0:0", "--insecure-no-auth"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_host-test"))
            .arg("serve")
            .args(&flags)
            .args(["--db", "memory:"])
            .env_remove("SMS_OPERATOR_TOKEN")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("operator token"), "{err}");
    }
}

/// A bounded load: concurrent clients, a few thousand events, every one
/// answered with an outcome, none lost.
#[test]
fn concurrent_clients_get_every_outcome() {
    let clients: usize = std::env::var("SMS_SERVE_CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let per_client: usize = std::env::var("SMS_SERVE_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(250);
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(&db(&dir), &twilio.url, &[]);
    tenant(&s, 3600);
    let addr = s.addr.clone();
    let outcomes: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let addr = addr.clone();
                scope.spawn(move || {
                    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
                    (0..per_client)
                        .map(|i| {
                            let body = json!({
                                "id": format!("m{c}-{i}"),
                                "conversation": format!("c{c}-{}", i % 10),
                                "sender": "alice",
                                "receiver": "bob",
                                "text": "load",
                            });
                            let (status, answer) = request(
                                &addr,
                                "POST",
                                "/v1/tenants/acme/messages",
                                &auth,
                                &body.to_string(),
                            );
                            assert_eq!(status, 200, "{answer}");
                            answer["outcome"]
                                .as_object()
                                .and_then(|o| o.keys().next().cloned())
                                .unwrap_or_default()
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<&String> = outcomes.iter().flatten().collect();
    assert_eq!(all.len(), clients * per_client);
    assert!(
        all.iter().all(|o| *o == "scheduled"),
        "every message scheduled or joined one"
    );
    let (_, state) = s.api("GET", "/v1/tenants/acme/state", "");
    assert_eq!(
        state["pending"].as_array().unwrap().len(),
        clients * 10,
        "one pending notification per conversation"
    );
    let unread: u64 = state["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["unread"].as_u64().unwrap())
        .sum();
    assert_eq!(
        unread as usize,
        clients * per_client,
        "every message counted"
    );
    assert!(s.stop().success());
}

/// A tenant whose SMS waits on Twilio holds up no other tenant: with
/// acme's SMS taken by Twilio and not yet answered, other tenants' events
/// are answered. The others are tenants that shared acme's runtime when
/// tenants were spread over 32 runtimes by a hash of their name: then
/// each waited for Twilio's answer to acme. Nor do acme's own calls that
/// commit nothing (its state, validation, preview).
#[test]
fn a_slow_twilio_holds_up_no_other_tenant() {
    let shard = |name: &str| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h % 32
    };
    let others: Vec<String> = (0..)
        .map(|t| format!("other{t}"))
        .filter(|name| shard(name) == shard("acme"))
        .take(8)
        .collect();
    // Twilio answers after 4 s (under the component's 5 s timeout).
    let twilio = FakeTwilio::start(Duration::from_secs(4), 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(&db(&dir), &twilio.url, &[]);
    tenant(&s, 0);
    for other in &others {
        let path = format!("/v1/tenants/{other}/settings");
        assert_eq!(s.api("PUT", &path, &settings(0)).0, 200);
    }
    let (status, body) = s.api("POST", "/v1/tenants/acme/messages", &message("m1", "hi"));
    assert_eq!(status, 200, "{body}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while twilio.total() == 0 {
        assert!(std::time::Instant::now() < deadline, "the SMS never left");
        std::thread::sleep(Duration::from_millis(10));
    }
    for other in &others {
        let path = format!("/v1/tenants/{other}/messages");
        let (status, body) = s.api("POST", &path, &message("m1", "hi"));
        assert_eq!(status, 200, "{body}");
        assert!(body["outcome"]["scheduled"].is_object(), "{body}");
        assert_eq!(
            twilio.answered(),
            0,
            "{other}'s event waited for Twilio's answer to acme"
        );
    }
    // acme's own page reads and checks meanwhile: its state shows the SMS
    // in flight, its settings validate, a preview is made; none of them
    // commits anything, so none waits for the send.
    let (status, state) = s.api("GET", "/v1/tenants/acme/state", "");
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["pending"][0]["recipient"], "bob", "{state}");
    let (status, checked) = s.api("POST", "/v1/tenants/acme/settings/validate", &settings(0));
    assert_eq!(
        (status, &checked["problems"]),
        (200, &json!([])),
        "{checked}"
    );
    let sample = json!({ "sender_name": "Alice", "text": "hi" }).to_string();
    let (status, preview) = s.api("POST", "/v1/tenants/acme/preview", &sample);
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        twilio.answered(),
        0,
        "acme's reads waited for Twilio's answer to its SMS"
    );
    assert!(s.stop().success());
}

/// The OpenAPI document the server serves is generated with the router,
/// and each route it names answers (not 404 or 405).
#[test]
fn the_openapi_document_matches_the_routes() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(&db(&dir), &twilio.url, &["--fake-twilio"]);
    tenant(&s, 600);
    let (status, doc) = s.call("GET", "/openapi.json", None, "");
    assert_eq!(status, 200);
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    // Every route is registered with its document entry (`routes!`): a
    // plain `.route(` would serve a route the document leaves out.
    for (file, source) in [
        ("lib.rs", include_str!("../serve/src/lib.rs")),
        ("openapi.rs", include_str!("../serve/src/openapi.rs")),
    ] {
        assert!(
            !source.contains(".route(\""),
            "{file} routes outside the document"
        );
    }
    assert_eq!(documented.len(), 32, "{documented:?}");
    for (method, path) in &documented {
        let path = path.replace("{tenant}", "acme").replace("{uid}", "bob");
        let (status, body) = s.api(method, &path, "{}");
        // A 404 that is not the router's (no such token, say) is an answer.
        let unrouted = status == 404
            && body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("no route"));
        assert!(
            !unrouted && status != 405,
            "{method} {path} answered {status}: {body}"
        );
    }
    assert!(s.stop().success());
}

/// A tenant's component may be an older build: `--wasm` loads the
/// released 0.2.0 `.wasm`, and the story works the same over HTTP.
#[test]
fn serve_runs_a_020_component() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let wasm = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/components/sms-notification-0.2.0.wasm"
    );
    // Any path loads: a copy outside the tree.
    let copy = dir.path().join("old.wasm");
    std::fs::copy(wasm, &copy).unwrap();
    let s = Serve::start(&db(&dir), &twilio.url, &["--wasm", copy.to_str().unwrap()]);
    let (status, health) = s.call("GET", "/healthz", None, "");
    assert_eq!((status, health["component"].as_str()), (200, Some("0.2.0")));
    tenant(&s, 1);
    let (status, body) = s.api(
        "POST",
        "/v1/tenants/acme/messages",
        &message("m1", "old build"),
    );
    assert_eq!(status, 200, "{body}");
    assert!(wait_for(Duration::from_secs(20), || twilio.total() == 1));
    // What 0.2.0 lacks is a clear answer, not a failure.
    let (status, body) = s.api("GET", "/v1/tenants/acme/state", "");
    assert_eq!(status, 501, "{body}");
    assert!(s.stop().success());
}

/// A record the component cannot read is kept aside, listed, and cleared
/// by the operator over HTTP; nothing else is lost.
#[test]
fn quarantined_records_are_listed_and_cleared() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(&db(&dir), &twilio.url, &[]);
    tenant(&s, 600);
    // A conversation record from a newer build (layout version 9), written
    // behind the server's back.
    let conn = rusqlite::Connection::open(dir.path().join("sms.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute(
        "INSERT INTO state (tenant, key, value) VALUES ('acme', 'conversation/alice_bob', x'4309ff')",
        [],
    )
    .unwrap();
    drop(conn);
    let (status, body) = s.api("POST", "/v1/tenants/acme/messages", &message("m1", "hi"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"]["scheduled"]["unread"], 1, "started afresh");
    let (status, kept) = s.api("GET", "/v1/tenants/acme/quarantine", "");
    assert_eq!(status, 200);
    let key = kept["records"][0]["key"].as_str().unwrap().to_owned();
    assert_eq!(key, "quarantine/conversation/alice_bob");
    assert_eq!(kept["records"][0]["bytes"], "Qwn/");
    let (_, state) = s.api("GET", "/v1/tenants/acme/state", "");
    assert_eq!(state["unreadable"], json!([key]));
    assert_eq!(state["pending"][0]["unread"], 1);
    let (status, _) = s.api("DELETE", "/v1/tenants/acme/quarantine?key=settings", "");
    assert_eq!(status, 400, "only quarantined keys");
    let path = format!(
        "/v1/tenants/acme/quarantine?key={}",
        key.replace('/', "%2F")
    );
    assert_eq!(s.api("DELETE", &path, "").0, 200);
    assert_eq!(s.api("DELETE", &path, "").0, 404);
    let (_, kept) = s.api("GET", "/v1/tenants/acme/quarantine", "");
    assert_eq!(kept["records"], json!([]));
    assert!(s.stop().success());
}

/// The connection limits over real HTTP: the `Bearer` scheme in any case;
/// a body slower than `--body-timeout` gets 408; past `--max-connections`
/// a new connection waits until one closes.
#[test]
fn connection_limits_over_http() {
    use std::io::{Read, Write};
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(
        &db(&dir),
        &twilio.url,
        &[
            "--body-timeout",
            "1",
            "--max-connections",
            "3",
            "--header-timeout",
            "30",
        ],
    );
    tenant(&s, 600);
    let (status, body) = s.call(
        "GET",
        "/v1/tenants/acme/settings",
        Some(&format!("bearer {TOKEN}")),
        "",
    );
    assert_eq!(status, 200, "{body}");
    // A body that stops halfway: 408 once the deadline passes.
    let mut slow = std::net::TcpStream::connect(&s.addr).unwrap();
    write!(
        slow,
        "PUT /v1/tenants/acme/users/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n{{\"name\""
    )
    .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\""), "JSON: {answer}");
    // Three connections held open: a fourth is not served until one closes.
    let held: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(&s.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut waiting = std::net::TcpStream::connect(&s.addr).unwrap();
    write!(
        waiting,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    waiting
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut first = [0u8; 1];
    assert!(
        waiting.read(&mut first).is_err(),
        "not served while three are open"
    );
    drop(held);
    waiting
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut answer = String::new();
    let _ = waiting.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "served once one closed: {answer}"
    );
    assert!(s.stop().success());
}

/// An open event stream of `tenant` (`GET …/events`) read on a thread:
/// its status line and headers, then everything it sent so far.
struct Events {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    ended: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Events {
    fn open(s: &Serve, tenant: &str) -> Self {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&s.addr).unwrap();
        write!(
            stream,
            "GET /v1/tenants/{tenant}/events HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\nAccept: text/event-stream\r\n\r\n",
            s.addr
        )
        .unwrap();
        let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let ended = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (into, done) = (text.clone(), ended.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut buf) {
                into.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        Self { text, ended }
    }

    fn has(&self, what: &str) -> bool {
        self.text.lock().unwrap().contains(what)
    }

    /// Waits for an event named `event` whose data holds every one of `parts`.
    fn wait(&self, event: &str, parts: &[&str]) {
        let found = wait_for(Duration::from_secs(30), || {
            let text = self.text.lock().unwrap();
            text.split("event: ").any(|e| {
                e.starts_with(&format!("{event}\n")) && parts.iter().all(|p| e.contains(p))
            })
        });
        assert!(
            found,
            "no {event} event with {parts:?}: {}",
            self.text.lock().unwrap()
        );
    }
}

/// The page's live activity over real HTTP: every call of the tenant
/// reaches its open event streams as it is answered (a call that sent
/// nothing as `unsent`), other tenants' calls do not, the calls that sent
/// nothing stay listed at `…/unsent`, streams are bounded per tenant, and
/// a stopping service ends them instead of waiting on them.
#[test]
fn activity_streams_as_it_happens_and_lists_what_was_not_sent() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(&db(&dir), &twilio.url, &[]);
    tenant(&s, 1);
    let (status, _) = s.call("GET", "/v1/tenants/acme/events", None, "");
    assert_eq!(status, 401, "a token is needed");

    let events = Events::open(&s, "acme");
    let other = Events::open(&s, "globex");
    assert!(wait_for(Duration::from_secs(10), || events
        .has("content-type: text/event-stream")));
    let (status, body) = s.api(
        "POST",
        "/v1/tenants/acme/messages",
        &message("m1", "dinner?"),
    );
    assert_eq!(status, 200, "{body}");
    events.wait("call", &["\"on-message\"", "\"scheduled\""]);
    events.wait(
        "call",
        &["\"on-timer\"", "\"sent\"", "deliver/alice_bob/bob"],
    );

    // Carol has no number: her notification comes due and is not sent.
    let carol = json!({ "name": "Carol", "presence": "offline" }).to_string();
    assert_eq!(s.api("PUT", "/v1/tenants/acme/users/carol", &carol).0, 200);
    let to_carol = json!({ "id": "c1", "conversation": "alice_carol", "sender": "alice", "receiver": "carol", "text": "hi" });
    assert_eq!(
        s.api("POST", "/v1/tenants/acme/messages", &to_carol.to_string())
            .0,
        200
    );
    events.wait(
        "unsent",
        &["\"no-contact-number\"", "deliver/alice_carol/carol"],
    );
    let (status, unsent) = s.api("GET", "/v1/tenants/acme/unsent", "");
    assert_eq!(status, 200, "{unsent}");
    let calls = unsent["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1, "only the call that sent nothing: {unsent}");
    assert_eq!(calls[0]["outcome"]["skipped"], "no-contact-number");
    assert_eq!(calls[0]["key"], "deliver/alice_carol/carol");
    assert!(
        !other.has("on-message"),
        "another tenant's stream hears nothing"
    );
    assert_eq!(twilio.total(), 1);

    // At most 16 streams per tenant: one is open for acme, 15 more fill it.
    let more: Vec<Events> = (0..15).map(|_| Events::open(&s, "acme")).collect();
    assert!(wait_for(Duration::from_secs(10), || more
        .iter()
        .all(|e| e.has("200 OK"))));
    let (status, body) = s.api("GET", "/v1/tenants/acme/events", "");
    assert_eq!(status, 429, "{body}");
    assert!(body["error"].as_str().unwrap().contains("16"), "{body}");

    // Stopping ends every stream: none is left for the drain deadline to
    // drop.
    let log = s.log.clone();
    let status = s.stop();
    assert!(status.success(), "{status:?}");
    let log = log.lock().unwrap();
    assert!(!log.contains("still open after"), "{log}");
    assert!(wait_for(Duration::from_secs(5), || events
        .ended
        .load(std::sync::atomic::Ordering::SeqCst)));
}
