//! CometChat's webhooks, both systems, end to end: the real `serve` binary,
//! real HTTP on loopback, a SQLite file, the real `.wasm`, a fake Twilio on
//! loopback. Every payload is one CometChat documents, read from
//! `tests/fixtures/cometchat/` (each file names its source); a test only
//! fills in the values its story needs (ids, times, the documented
//! placeholders), never a field CometChat does not send.

mod common;

use common::serve::{Serve, WEBHOOK, basic, metric, settled, wait_for};
use common::twilio::FakeTwilio;
use serde_json::{Value, json};
use std::time::Duration;

/// Susan (cometchat-uid-4) gets John's (cometchat-uid-5) messages in the
/// legacy examples; George (cometchat-uid-2) gets Andrew's
/// (cometchat-uid-1) in the current ones.
const SUSAN: &str = "cometchat-uid-4";
const ANDREW: &str = "cometchat-uid-1";
const JOHN: &str = "cometchat-uid-5";
const GEORGE: &str = "cometchat-uid-2";

fn fixture(path: &str) -> Value {
    let file = format!(
        "{}/tests/fixtures/cometchat/{path}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap())
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// `serve` on a fresh SQLite file, sending SMS to a fake Twilio on
/// loopback (keep the directory alive as long as the service).
fn start(flags: &[&str]) -> (FakeTwilio, tempfile::TempDir, Serve) {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let s = Serve::start(
        &format!("sqlite:{}", dir.path().join("sms.db").display()),
        &twilio.url,
        flags,
    );
    (twilio, dir, s)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A tenant `acme` with a delay of `delay` seconds, and the recipients of
/// both systems' examples offline with a number.
fn tenant(s: &Serve, delay: u64) {
    let settings = json!({
        "twilioAccountSid": "AC0123456789abcdef0123456789abcdef",
        "twilioAuthToken": "tw-auth-token",
        "fromMobileNo": "+15005550006",
        "delaySeconds": delay,
        "cooldownMinutes": 0,
        "conversationSmsPerDay": 100,
    });
    let (status, body) = s.api("PUT", "/v1/tenants/acme/settings", &settings.to_string());
    assert_eq!(status, 200, "{body}");
    s.webhook_credentials("acme");
    for (uid, number) in [(SUSAN, "+14155552671"), (GEORGE, "+14155552672")] {
        let user = json!({ "metadata": { "@private": { "contactNumber": number } } });
        let (status, body) = s.api(
            "PUT",
            &format!("/v1/tenants/acme/users/{uid}"),
            &user.to_string(),
        );
        assert_eq!(status, 200, "{body}");
    }
}

fn post(s: &Serve, payload: &Value) -> (u16, Value) {
    s.call(
        "POST",
        "/cometchat/acme/webhook",
        Some(&basic(WEBHOOK)),
        &payload.to_string(),
    )
}

/// Posts and expects a 200.
fn ok(s: &Serve, payload: &Value) -> Value {
    let (status, body) = post(s, payload);
    assert_eq!(status, 200, "{payload}\n→ {body}");
    body
}

/// Pending notifications, read by the component.
fn pending(s: &Serve) -> Vec<Value> {
    let (status, state) = s.api("GET", "/v1/tenants/acme/state", "");
    assert_eq!(status, 200, "{state}");
    state["pending"].as_array().unwrap().clone()
}

// --- the legacy system -----------------------------------------------------

fn legacy_message(id: &str, sent_at_s: u64) -> Value {
    let mut m = fixture("legacy/after_message");
    m["data"]["id"] = json!(id);
    m["data"]["sentAt"] = json!(sent_at_s);
    m["data"]["updatedAt"] = json!(sent_at_s);
    m
}

/// The documented receipt with its placeholders filled: `reader` read
/// `message`, written by `author`.
fn legacy_receipt(trigger: &str, reader: &str, author: &str, message: &str) -> Value {
    let mut r = fixture(&format!("legacy/{trigger}"));
    let d = &mut r["data"];
    d["messageId"] = json!(message);
    d["messageSender"] = json!(author);
    d["receiptSender"] = json!(reader);
    d["receiptReceiver"] = json!(author);
    d["receiverType"] = json!("user");
    r
}

fn legacy_presence(uid: &str, online: bool, at_ms: u64) -> Value {
    let mut p = fixture("legacy/user_connection_status_change");
    let d = &mut p["data"];
    d["user"]["uid"] = json!(uid);
    d["user"]["status"] = json!(if online { "online" } else { "offline" });
    d["user"]["status_updated_at"] = json!(at_ms);
    d["event"]["type"] = json!(if online { "connected" } else { "disconnected" });
    d["event"]["at"] = json!(at_ms);
    p
}

/// The legacy system's story: a message read within the delay is not
/// texted (the documented read receipt, the headline bug); a message to a
/// user online when it came, who disconnects before the delay, is texted
/// once; one who stays online is not; redeliveries are one event.
#[test]
fn legacy_webhooks_tell_the_whole_story() {
    let (twilio, _dir, s) = start(&[]);
    tenant(&s, 2);
    let now = now_ms() / 1000;

    // Read within the delay: the receipt ends the notification.
    let body = ok(&s, &legacy_message("1", now));
    assert_eq!(
        body["outcome"]["scheduled"]["conversation"],
        "cometchat-uid-4_user_cometchat-uid-5"
    );
    assert_eq!(body["outcome"]["scheduled"]["recipient"], SUSAN);
    // CometChat retries after 10 s and 30 s: the same message again.
    let again = ok(&s, &legacy_message("1", now));
    assert_eq!(again["outcome"]["scheduled"]["unread"], 1, "{again}");
    // A delivery receipt is not a read.
    let delivered = ok(
        &s,
        &legacy_receipt("message_delivery_receipt", SUSAN, JOHN, "1"),
    );
    assert!(delivered["ignored"].is_string(), "{delivered}");
    assert_eq!(pending(&s).len(), 1);
    let read = ok(
        &s,
        &legacy_receipt("message_read_receipt", SUSAN, JOHN, "1"),
    );
    assert_eq!(read["outcome"]["cancelled"]["recipient"], SUSAN, "{read}");
    assert_eq!(read["outcome"]["cancelled"]["read"], 1, "{read}");
    let replay = ok(
        &s,
        &legacy_receipt("message_read_receipt", SUSAN, JOHN, "1"),
    );
    assert_eq!(replay["outcome"]["skipped"], "nothing-pending", "{replay}");
    assert!(pending(&s).is_empty());
    settled(&s);
    assert_eq!(twilio.total(), 0, "a message read in time is never texted");

    // Online when it came (the payload says so), then disconnected: one SMS.
    let mut online = legacy_message("2", now_ms() / 1000);
    online["data"]["data"]["entities"]["receiver"]["entity"]["status"] = json!("online");
    ok(&s, &online);
    let off = ok(&s, &legacy_presence(SUSAN, false, now_ms()));
    assert_eq!(off["applied"], true, "{off}");
    // The same disconnect event again, and an older "online" event that
    // arrives late (a retried webhook): neither changes anything.
    ok(&s, &legacy_presence(SUSAN, false, now_ms()));
    let stale = ok(&s, &legacy_presence(SUSAN, true, now_ms() - 60_000));
    assert_eq!(stale["applied"], false, "{stale}");
    assert!(wait_for(Duration::from_secs(30), || twilio.total() == 1));
    assert_eq!(twilio.counts()["+14155552671"], 1);
    ok(&s, &legacy_message("2", now_ms() / 1000));
    settled(&s);

    // Online and still online at the due time: not texted.
    ok(&s, &legacy_presence(SUSAN, true, now_ms()));
    ok(&s, &legacy_message("3", now_ms() / 1000));
    assert!(wait_for(Duration::from_secs(30), || metric(
        &s,
        "sms_calls_total{call=\"on-timer\",answer=\"skipped\"}"
    ) == 1));
    settled(&s);

    // A group message, and an image: never texted.
    ok(&s, &legacy_presence(SUSAN, false, now_ms()));
    let mut group = legacy_message("4", now_ms() / 1000);
    group["data"]["receiverType"] = json!("group");
    group["data"]["receiver"] = json!("cometchat-guid-1");
    assert_eq!(ok(&s, &group)["outcome"]["skipped"], "group-conversation");
    let mut image = legacy_message("5", now_ms() / 1000);
    image["data"]["type"] = json!("image");
    assert_eq!(ok(&s, &image)["outcome"]["skipped"], "not-text");
    // before_message: in flight, not yet sent.
    let before = ok(&s, &fixture("legacy/before_message"));
    assert!(before["ignored"].is_string(), "{before}");
    settled(&s);
    assert_eq!(twilio.total(), 1);

    assert_eq!(
        metric(
            &s,
            "sms_webhooks_total{system=\"legacy\",trigger=\"message_read_receipt\",answer=\"cancelled\"}"
        ),
        1
    );
    assert_eq!(
        metric(
            &s,
            "sms_webhooks_total{system=\"legacy\",trigger=\"after_connection_status_changed\",answer=\"stale\"}"
        ),
        1
    );
    assert!(s.stop().success());
}

// --- the current system ----------------------------------------------------

fn current_message(id: &str, sent_at_s: u64) -> Value {
    let mut m = fixture("current/message_sent");
    m["data"]["message"]["id"] = json!(id);
    m["data"]["message"]["sentAt"] = json!(sent_at_s);
    m["data"]["message"]["updatedAt"] = json!(sent_at_s);
    m
}

fn current_receipt(trigger: &str, message: &str, at_s: u64) -> Value {
    let mut r = fixture(&format!("current/{trigger}"));
    r["data"]["body"]["messageId"] = json!(message);
    r["data"]["body"]["timestamp"] = json!(at_s);
    r
}

fn current_presence(uid: &str, online: bool, at_ms: u64) -> Value {
    let mut p = fixture("current/user_connection_status_changed");
    let d = &mut p["data"];
    let status = if online { "online" } else { "offline" };
    d["user"]["uid"] = json!(uid);
    d["user"]["status"] = json!(status);
    d["status"] = json!(status);
    d["timestamp"] = json!(at_ms);
    d["currentConnection"]["action"] = json!(if online { "connected" } else { "disconnected" });
    p
}

/// The current system's story, the same promises.
#[test]
fn current_webhooks_tell_the_whole_story() {
    let (twilio, _dir, s) = start(&[]);
    tenant(&s, 2);
    // The documented message says George is "available": online when it
    // came. He disconnects before the delay ends: one SMS.
    let body = ok(&s, &current_message("1", now_ms() / 1000));
    assert_eq!(body["outcome"]["scheduled"]["recipient"], GEORGE, "{body}");
    assert_eq!(
        body["outcome"]["scheduled"]["conversation"],
        "cometchat-uid-1_user_cometchat-uid-2"
    );
    ok(&s, &current_message("1", now_ms() / 1000));
    let off = ok(&s, &current_presence(GEORGE, false, now_ms()));
    assert_eq!(off["applied"], true, "{off}");
    assert!(wait_for(Duration::from_secs(30), || twilio.total() == 1));
    settled(&s);
    assert_eq!(twilio.counts()["+14155552672"], 1, "redelivered: one SMS");

    // Read within the delay (George is offline now): no SMS. The
    // documented receipt's reader is its `sender`, George.
    let mut offline_now = current_message("57", now_ms() / 1000);
    offline_now["data"]["message"]["data"]["entities"]["receiver"]["entity"]["status"] =
        json!("offline");
    ok(&s, &offline_now);
    let delivered = ok(
        &s,
        &current_receipt("message_delivery_receipt", "57", now_ms() / 1000),
    );
    assert!(delivered["ignored"].is_string(), "{delivered}");
    assert_eq!(pending(&s).len(), 1);
    let read = ok(
        &s,
        &current_receipt("message_read_receipt", "57", now_ms() / 1000),
    );
    assert_eq!(read["outcome"]["cancelled"]["recipient"], GEORGE, "{read}");
    ok(
        &s,
        &current_receipt("message_read_receipt", "57", now_ms() / 1000),
    );
    assert!(pending(&s).is_empty());

    // Group receipts, reactions, mentions, calls: acknowledged, nothing
    // done.
    for trigger in [
        "message_read_by_all",
        "message_delivered_to_all",
        "message_reaction_added",
        "user_mentioned",
        "call_initiated",
    ] {
        let answer = ok(&s, &fixture(&format!("current/{trigger}")));
        assert_eq!(answer["ignored"], trigger, "{answer}");
    }
    settled(&s);
    assert_eq!(twilio.total(), 1);
    assert_eq!(
        metric(
            &s,
            "sms_webhooks_total{system=\"current\",trigger=\"message_read_receipt\",answer=\"cancelled\"}"
        ),
        1
    );
    assert!(s.stop().success());
}

/// CometChat's documented `message_edited` and `message_deleted`: the SMS
/// quotes the edited text; a notification whose only message was deleted
/// ends without one.
#[test]
fn edited_and_deleted_messages() {
    let (twilio, _dir, s) = start(&[]);
    tenant(&s, 3);
    let offline = |id: &str| {
        let mut m = current_message(id, now_ms() / 1000);
        m["data"]["message"]["data"]["entities"]["receiver"]["entity"]["status"] = json!("offline");
        m
    };
    // The documented edit is of message "1", now reading "hello".
    ok(&s, &offline("1"));
    let edited = ok(&s, &fixture("current/message_edited"));
    assert_eq!(
        edited["outcome"]["updated"]["recipient"], GEORGE,
        "{edited}"
    );
    assert!(wait_for(Duration::from_secs(30), || twilio.total() == 1));
    assert_eq!(twilio.bodies(), ["1 new message from Andrew Joseph: hello"]);
    settled(&s);
    // The documented deletion is of message "2".
    ok(&s, &offline("2"));
    let deleted = ok(&s, &fixture("current/message_deleted"));
    assert_eq!(deleted["outcome"]["cancelled"]["read"], 0, "{deleted}");
    assert!(pending(&s).is_empty());
    // CometChat retries: the same deletion again changes nothing.
    let again = ok(&s, &fixture("current/message_deleted"));
    assert_eq!(again["outcome"]["skipped"], "nothing-pending", "{again}");
    settled(&s);
    assert_eq!(twilio.total(), 1);
    assert!(s.stop().success());
}

/// Every documented trigger of both systems, as documented (placeholders
/// filled), gets a 200 and the answer it should: nothing for what the
/// extension has no use for, never a 400.
#[test]
fn every_documented_trigger_is_answered() {
    let (_twilio, _dir, s) = start(&[]);
    tenant(&s, 3600);
    let now = now_ms();
    let mut seen = 0;
    for system in ["legacy", "current"] {
        let folder = format!(
            "{}/tests/fixtures/cometchat/{system}",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
            .collect();
        names.sort();
        for name in names {
            let payload = match (system, name.as_str()) {
                ("legacy", "message_read_receipt" | "message_delivery_receipt") => {
                    legacy_receipt(&name, SUSAN, JOHN, "1")
                }
                ("legacy", "user_connection_status_change") => legacy_presence(SUSAN, false, now),
                _ => fixture(&format!("{system}/{name}")),
            };
            let trigger = payload["trigger"].as_str().unwrap().to_owned();
            // What came before has fired (old messages are due at once):
            // each answer below is the trigger's own.
            settled(&s);
            let (status, body) = post(&s, &payload);
            assert_eq!(status, 200, "{system}/{name}: {body}");
            let answer = body
                .get("outcome")
                .and_then(|o| o.as_object())
                .and_then(|o| o.keys().next().cloned())
                .or_else(|| body.get("presence").map(|_| "presence".to_owned()))
                .or_else(|| body.get("ignored").map(|_| "ignored".to_owned()))
                .unwrap_or_default();
            let expected = match trigger.as_str() {
                "after_message"
                | "message_sent"
                | "moderation_engine_approved"
                | "moderation_manual_approved" => "scheduled",
                // Before any message of their conversation (files are
                // posted in name order), or of a message never seen.
                "message_read_receipt"
                | "message_edited"
                | "message_deleted"
                | "moderation_engine_blocked" => "skipped",
                "after_connection_status_changed" | "user_connection_status_changed" => {
                    if body["ignored"].is_string() {
                        "ignored" // Andrew, whom this tenant never saw
                    } else {
                        "presence"
                    }
                }
                _ => "ignored",
            };
            assert_eq!(answer, expected, "{system}/{name}: {body}");
            seen += 1;
        }
    }
    assert_eq!(seen, 43, "every fixture was posted");
    assert_eq!(
        metric(
            &s,
            "sms_webhooks_total{system=\"unknown\",trigger=\"unknown\",answer=\"malformed\"}"
        ),
        0
    );
    assert!(s.stop().success());
}

/// What CometChat must be told about: an unknown trigger is acknowledged
/// but counted by name and logged once per tenant; a known trigger
/// without a field the extension needs is a 400 naming it; wrong
/// credentials are a 401.
#[test]
fn unknown_malformed_and_unauthorized_webhooks() {
    let (_twilio, _dir, s) = start(&[]);
    tenant(&s, 3600);
    let novel = json!({ "trigger": "message_pinned", "data": {}, "appId": "<appId>" });
    for _ in 0..3 {
        let answer = ok(&s, &novel);
        assert_eq!(answer["ignored"], "message_pinned");
    }
    assert_eq!(
        metric(
            &s,
            "sms_webhooks_total{system=\"unknown\",trigger=\"message_pinned\",answer=\"unknown\"}"
        ),
        3
    );
    let (_, logs) = s.api("GET", "/v1/tenants/acme/logs", "");
    let lines: Vec<&Value> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["line"].as_str().unwrap().contains("message_pinned"))
        .collect();
    assert_eq!(lines.len(), 1, "logged once: {logs}");
    assert_eq!(lines[0]["level"], "warn");

    let mut receipt = fixture("current/message_read_receipt");
    receipt["data"]["body"]
        .as_object_mut()
        .unwrap()
        .remove("messageId");
    let (status, body) = post(&s, &receipt);
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "message_read_receipt: `data.body.messageId` is missing or empty"
    );
    let mut message = fixture("legacy/after_message");
    message["data"].as_object_mut().unwrap().remove("receiver");
    let (status, body) = post(&s, &message);
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "after_message: `data.receiver` is missing or empty"
    );
    assert_eq!(
        metric(
            &s,
            "sms_webhooks_total{system=\"current\",trigger=\"message_read_receipt\",answer=\"malformed\"}"
        ),
        1
    );

    let (status, _) = s.call(
        "POST",
        "/cometchat/acme/webhook",
        Some(&basic("cometchat:wrong")),
        &fixture("legacy/after_message").to_string(),
    );
    assert_eq!(status, 401);
    assert!(pending(&s).is_empty(), "nothing was scheduled");
    assert!(s.stop().success());
}

// --- users read from CometChat's REST API ------------------------------------

const REST_KEY: &str = "cc-rest-api-key-never-shown";

fn api_message(s: &Serve, id: &str, to: &str) {
    let m = json!({ "id": id, "conversation": format!("alice_{to}"), "sender": "alice",
        "receiver": to, "text": format!("message {id}") });
    let (status, body) = s.api("POST", "/v1/tenants/acme/messages", &m.to_string());
    assert_eq!(status, 200, "{body}");
    assert!(body["outcome"]["scheduled"].is_object(), "{body}");
}

fn requests_for(cc: &common::cometchat::FakeCometChat, uid: &str) -> usize {
    cc.seen()
        .iter()
        .filter(|(path, _)| path == &format!("/v3/users/{uid}"))
        .count()
}

/// A tenant with its CometChat app: users come from CometChat's REST API
/// (Bob's number is nowhere else), read anew at the moment a notification
/// fires; every failure CometChat can answer with leaves the notification
/// waiting, never texted on a guess, and the REST API key appears in no
/// output.
#[test]
fn users_are_read_from_cometchat() {
    use common::cometchat::{FakeCometChat, Mode};
    let cc = FakeCometChat::start();
    cc.user("alice", "Alice", true, None);
    cc.user("bob", "Bob", false, Some("+14155552671"));
    let (twilio, _dir, s) = start(&["--cometchat-url", &cc.url]);
    let settings = json!({
        "twilioAccountSid": "AC0123456789abcdef0123456789abcdef",
        "twilioAuthToken": "tw-auth-token",
        "fromMobileNo": "+15005550006",
        "delaySeconds": 1,
        "cooldownMinutes": 0,
        "conversationSmsPerDay": 100,
    });
    assert_eq!(
        s.api("PUT", "/v1/tenants/acme/settings", &settings.to_string())
            .0,
        200
    );
    let app = json!({ "appId": "app1", "region": "us", "restApiKey": REST_KEY });
    let (status, body) = s.api("PUT", "/v1/tenants/acme/cometchat", &app.to_string());
    assert_eq!(status, 200, "{body}");
    let traps = || metric(&s, "sms_traps_total");
    let skipped = || metric(&s, "sms_calls_total{call=\"on-timer\",answer=\"skipped\"}");

    // The whole path: CometChat's documented message_sent in, George read
    // from CometChat (his number is nowhere else; CometChat says he is
    // offline at the due time, whatever the payload said when it came),
    // one SMS out.
    s.webhook_credentials("acme");
    cc.user(ANDREW, "Andrew Joseph", true, None);
    cc.user(GEORGE, "George Alan", false, Some("+14155552672"));
    ok(&s, &current_message("w1", now_ms() / 1000));
    assert!(wait_for(Duration::from_secs(20), || twilio.total() == 1));
    assert_eq!(twilio.counts()["+14155552672"], 1);
    assert!(requests_for(&cc, GEORGE) >= 1);
    settled(&s);

    // Bob, offline in CometChat, with his number there: one SMS, with
    // Alice's name from CometChat.
    api_message(&s, "m1", "bob");
    assert!(wait_for(Duration::from_secs(20), || twilio.total() == 2));
    assert_eq!(twilio.bodies()[1], "1 new message from Alice: message m1");
    assert!(cc.seen().iter().all(|(_, key)| key == REST_KEY));
    settled(&s);

    // No such user in CometChat: skipped, nothing sent.
    api_message(&s, "m2", "carol");
    assert!(wait_for(Duration::from_secs(20), || skipped() == 1));
    settled(&s);

    // Online in CometChat at the due time: read fresh, not texted.
    cc.user("bob", "Bob", true, Some("+14155552671"));
    api_message(&s, "m3", "bob");
    assert!(wait_for(Duration::from_secs(20), || skipped() == 2));
    settled(&s);
    cc.user("bob", "Bob", false, Some("+14155552671"));

    // A 5xx, a dropped connection, an answer slower than 5 s: the call
    // fails, its timer fires again, and once CometChat answers, one SMS.
    let mut sent = 2;
    for (n, failing) in [
        Mode::Status(503, None),
        Mode::Drop,
        Mode::Slow(Duration::from_secs(7)),
    ]
    .into_iter()
    .enumerate()
    {
        let before = traps();
        cc.mode(failing.clone());
        api_message(&s, &format!("f{n}"), "bob");
        assert!(
            wait_for(Duration::from_secs(30), || traps() > before),
            "{failing:?}: the call failed"
        );
        assert_eq!(twilio.total(), sent, "{failing:?}: nothing sent on a guess");
        cc.mode(Mode::Serve);
        sent += 1;
        assert!(
            wait_for(Duration::from_secs(40), || twilio.total() == sent),
            "{failing:?}: sent once CometChat answered"
        );
        settled(&s);
    }

    // 429 with Retry-After: 3 s without a request for that tenant.
    cc.mode(Mode::Status(429, Some(3)));
    let asked = requests_for(&cc, "bob");
    api_message(&s, "r1", "bob");
    assert!(wait_for(Duration::from_secs(20), || requests_for(
        &cc, "bob"
    ) > asked));
    let after_429 = requests_for(&cc, "bob");
    cc.mode(Mode::Serve);
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(requests_for(&cc, "bob"), after_429, "Retry-After obeyed");
    assert_eq!(twilio.total(), sent);
    sent += 1;
    assert!(wait_for(Duration::from_secs(30), || twilio.total() == sent));
    settled(&s);

    // 401: the key refused. The tenant's users are not read (no more
    // requests) until the key is saved again; the reason says so.
    cc.mode(Mode::Status(401, None));
    let asked = requests_for(&cc, "bob");
    api_message(&s, "k1", "bob");
    assert!(wait_for(Duration::from_secs(20), || requests_for(
        &cc, "bob"
    ) > asked));
    let paused = || s.api("GET", "/v1/tenants/acme/cometchat", "").1;
    assert!(wait_for(Duration::from_secs(10), || {
        paused()["app"]["paused"].is_string()
    }));
    let shown = paused();
    let why = shown["app"]["paused"].as_str().unwrap().to_owned();
    assert!(why.contains("REST API key"), "{shown}");
    let refused = requests_for(&cc, "bob");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(requests_for(&cc, "bob"), refused, "no request while paused");
    assert_eq!(twilio.total(), sent);
    cc.mode(Mode::Serve);
    let (status, _) = s.api("PUT", "/v1/tenants/acme/cometchat", &app.to_string());
    assert_eq!(status, 200);
    let (_, shown) = s.api("GET", "/v1/tenants/acme/cometchat", "");
    assert!(shown["app"]["paused"].is_null(), "{shown}");
    sent += 1;
    assert!(wait_for(Duration::from_secs(40), || twilio.total() == sent));
    settled(&s);
    assert_eq!(twilio.counts()["+14155552671"], sent - 1, "never twice");

    // The REST API key is in no output.
    let (_, logs) = s.api("GET", "/v1/tenants/acme/logs", "");
    let (_, metrics) = s.call("GET", "/metrics", None, "");
    let log = s.log.lock().unwrap().clone();
    for (what, text) in [
        ("the app", shown.to_string()),
        ("the tenant's log", logs.to_string()),
        ("metrics", metrics.to_string()),
        ("stderr", log),
    ] {
        assert!(!text.contains(REST_KEY), "{what} shows the REST API key");
    }
    assert!(logs.to_string().contains("REST API key"), "{logs}");
    assert!(s.stop().success());
}

// --- credentials per tenant --------------------------------------------------

/// A tenant token opens its own tenant's routes (and only those: token
/// management is the operator's), never another tenant's, on every route
/// of the API; a revoked token is refused at once. A webhook with another
/// tenant's credentials is refused, and nothing is scheduled.
#[test]
fn credentials_are_per_tenant() {
    let (_twilio, _dir, s) = start(&["--fake-twilio"]);
    tenant(&s, 3600);
    let mint = |tenant: &str| {
        let (status, body) = s.api("POST", &format!("/v1/tenants/{tenant}/tokens"), "");
        assert_eq!(status, 200, "{body}");
        (
            body["id"].as_str().unwrap().to_owned(),
            body["token"].as_str().unwrap().to_owned(),
        )
    };
    let (_, acme) = mint("acme");
    let (other_id, other) = mint("other");
    let with = |token: &str, method: &str, path: &str, body: &str| {
        s.call(method, path, Some(&format!("Bearer {token}")), body)
    };
    // Acme's token sets acme up, a webhook password included; a tenant
    // never needs the operator's token for its own settings.
    let (status, answer) = with(
        &acme,
        "PUT",
        "/v1/tenants/acme/webhook",
        &json!({ "user": "acme-hook" }).to_string(),
    );
    assert_eq!(status, 200, "{answer}");
    let password = answer["password"].as_str().unwrap().to_owned();
    assert!(password.len() >= 32, "generated: {password}");
    assert!(
        answer["url"]
            .as_str()
            .unwrap()
            .ends_with("/cometchat/acme/webhook")
    );
    let (_, shown) = with(&acme, "GET", "/v1/tenants/acme/webhook", "");
    assert_eq!(
        (shown["user"].as_str(), shown["password_set"].as_bool()),
        (Some("acme-hook"), Some(true))
    );
    assert!(!shown.to_string().contains(&password), "write-only");

    // Every route of the API, from the served document.
    let (_, doc) = s.call("GET", "/openapi.json", None, "");
    let mut checked = 0;
    for (path, methods) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/v1/tenants/{tenant}") {
            continue;
        }
        for method in methods.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let concrete = path.replace("{uid}", "bob").replace("{id}", &other_id);
            let on_acme = concrete.replace("{tenant}", "acme");
            // Another tenant's token: refused, whatever the route.
            let (status, body) = with(&other, &method, &on_acme, "{}");
            assert_eq!(
                status, 401,
                "{method} {on_acme} with another tenant's token: {body}"
            );
            // Its own token: past authentication, except what is the
            // operator's (tokens).
            let (status, body) = with(&acme, &method, &on_acme, "{}");
            if path.contains("/tokens") {
                assert_eq!(status, 401, "{method} {on_acme} is the operator's: {body}");
            } else {
                assert_ne!(status, 401, "{method} {on_acme} with its own token: {body}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked} routes checked");
    // The fake Twilio's list: a tenant sees its own SMS only, by name.
    assert_eq!(
        with(&acme, "GET", "/v1/fake-twilio/sms?tenant=acme", "").0,
        200
    );
    assert_eq!(
        with(&acme, "GET", "/v1/fake-twilio/sms?tenant=other", "").0,
        401
    );
    assert_eq!(with(&acme, "GET", "/v1/fake-twilio/sms", "").0, 401);
    // The page is static; it works with the tenant's token (tested in
    // Chromium by the page test).

    // Webhooks: acme's credentials on acme, nobody else's.
    s.webhook_credentials("other");
    let mut m = fixture("legacy/after_message");
    m["data"]["sentAt"] = json!(now_ms() / 1000);
    let post_as = |tenant: &str, credentials: &str| {
        s.call(
            "POST",
            &format!("/cometchat/{tenant}/webhook"),
            Some(&basic(credentials)),
            &m.to_string(),
        )
    };
    let acme_hook = format!("acme-hook:{password}");
    assert_eq!(
        post_as("other", &acme_hook).0,
        401,
        "acme's credentials on other"
    );
    assert_eq!(
        post_as("acme", WEBHOOK).0,
        401,
        "other's credentials on acme"
    );
    assert!(pending(&s).is_empty(), "nothing scheduled");
    let (status, body) = post_as("acme", &acme_hook);
    assert_eq!(status, 200, "{body}");
    assert_eq!(pending(&s).len(), 1);

    // Revoked: refused at once; the operator's token still works.
    let (status, _) = s.api(
        "DELETE",
        &format!("/v1/tenants/other/tokens/{other_id}"),
        "",
    );
    assert_eq!(status, 200);
    assert_eq!(with(&other, "GET", "/v1/tenants/other/webhook", "").0, 401);
    assert_eq!(s.api("GET", "/v1/tenants/other/webhook", "").0, 200);
    let (_, listed) = s.api("GET", "/v1/tenants/acme/tokens", "");
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 1);
    assert!(
        !listed.to_string().contains(&acme),
        "tokens are never shown again"
    );
    assert!(s.stop().success());
}

/// `--fake-cometchat`: the in-process stand-in answers CometChat's REST
/// API with the users pushed through this service's API, to the tenant's
/// saved key only, so the whole path runs without a CometChat app.
#[test]
fn the_in_process_fake_cometchat() {
    let (twilio, _dir, s) = start(&["--fake-cometchat"]);
    tenant(&s, 1);
    let app = json!({ "appId": "demo", "region": "eu", "restApiKey": "fake-key-1" });
    assert_eq!(
        s.api("PUT", "/v1/tenants/acme/cometchat", &app.to_string())
            .0,
        200
    );
    // As CometChat answers, to the saved key only.
    let (status, user) = s.call(
        "GET",
        "/fake-cometchat/acme/v3/users/cometchat-uid-4",
        None,
        "",
    );
    assert_eq!(status, 401, "{user}");
    let (status, _) = s.call("GET", "/fake-cometchat/acme/v3/users/nobody", None, "");
    assert_eq!(status, 401);
    api_message(&s, "m1", SUSAN);
    assert!(wait_for(Duration::from_secs(20), || twilio.total() == 1));
    assert_eq!(twilio.counts()["+14155552671"], 1);
    assert!(s.stop().success());
}
