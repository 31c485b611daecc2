//! The spine through the real component: one SMS end to end, what Twilio
//! receives, what the host denies, and what never leaks.

use host_test::TestRuntime;
use host_test::bindings::sms_notification::extension::types::{
    ConversationKind, Message, MessageFormat, Outcome, SkipReason,
};
use host_test::storage::{Presence, User};
use serde_json::{Value, json};

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "tok-7f3a9c-never-shown";
const TENANT: &str = "acme";

fn settings() -> String {
    json!({
        "twilioAccountSid": ACCOUNT,
        "twilioAuthToken": TOKEN,
        "fromMobileNo": "+15005550006",
        "delaySeconds": 60,
    })
    .to_string()
}

fn user(uid: &str, presence: Presence, number: Option<&str>) -> User {
    let metadata = match number {
        Some(n) => json!({ "@private": { "contactNumber": n } }),
        None => json!({}),
    };
    User {
        uid: uid.into(),
        name: uid[..1].to_uppercase() + &uid[1..],
        presence,
        metadata: metadata.to_string(),
    }
}

fn message(id: &str, at: u64) -> Message {
    Message {
        id: id.into(),
        conversation: "alice_bob".into(),
        kind: ConversationKind::OneOnOne,
        format: MessageFormat::Text,
        sender: "alice".into(),
        receiver: "bob".into(),
        text: "dinner at 8?".into(),
        sent_at: at,
    }
}

fn runtime(bob: User) -> TestRuntime {
    let rt = TestRuntime::new().unwrap();
    let tenant = rt.tenant(TENANT);
    let mut t = tenant.lock().unwrap();
    t.save_settings(settings());
    t.users
        .insert("alice".into(), user("alice", Presence::Online, None));
    t.users.insert("bob".into(), bob);
    drop(t);
    rt
}

#[tokio::test]
async fn offline_unread_message_is_texted_once_after_the_delay() {
    let mut rt = runtime(user("bob", Presence::Offline, Some("+14155552671")));
    let outcome = rt
        .on_message(TENANT, &message("m1", 0))
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcome, Outcome::Scheduled(ref p) if p.due_at == 60_000 && p.unread == 1),
        "{outcome:?}"
    );

    assert!(
        rt.advance(59_999).await.unwrap().is_empty(),
        "nothing before the delay"
    );
    assert!(rt.traffic.take_sms().is_empty());

    let fired = rt.advance(1).await.unwrap();
    assert_eq!(fired.len(), 1);
    let Ok(Ok(Outcome::Sent(sent))) = &fired[0].result else {
        panic!("expected sent, got {:?}", fired[0].result)
    };
    assert!(
        sent.sid.starts_with("SM") && sent.sid.len() == 34,
        "{}",
        sent.sid
    );
    let sms = rt.traffic.take_sms();
    assert_eq!(sms.len(), 1);
    let form: std::collections::HashMap<_, _> = sms[0].form.iter().cloned().collect();
    assert_eq!(form["To"], "+14155552671");
    assert_eq!(form["From"], "+15005550006");
    assert_eq!(form["Body"], "1 new message from Alice: dinner at 8?");
    assert_eq!(sms[0].auth_user.as_deref(), Some(ACCOUNT));
    assert_eq!(sms[0].at, 60_000);

    // The notification is done: no pending state, nothing more is sent;
    // the record and the send history (for the limits) stay, with the
    // record's expiry timer a day after the message.
    let tenant = rt.tenant(TENANT);
    let keys: Vec<String> = tenant.lock().unwrap().state.keys().cloned().collect();
    assert_eq!(keys, ["conversation/alice_bob", "sent-to/bob"]);
    let timers: Vec<(String, u64)> = tenant.lock().unwrap().timers.clone().into_iter().collect();
    assert_eq!(timers, [("expire/alice_bob".to_owned(), DAY_MS)]);
    assert!(rt.advance(3_600_000).await.unwrap().is_empty());
    assert!(rt.traffic.take_sms().is_empty());

    // A day after the SMS, nothing of it is left.
    let fired = rt.advance(DAY_MS).await.unwrap();
    assert_eq!(
        fired.len(),
        2,
        "the expiry timer, then moved to a day after the SMS: {fired:?}"
    );
    assert!(tenant.lock().unwrap().state.is_empty());
    assert!(tenant.lock().unwrap().timers.is_empty());
    assert!(rt.traffic.take_sms().is_empty());
}

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

#[tokio::test]
async fn request_matches_the_openapi_create_message_operation() {
    let spec: Value = serde_json::from_str(include_str!("fixtures/create_message.json")).unwrap();
    let mut rt = runtime(user("bob", Presence::Offline, Some("+14155552671")));
    rt.on_message(TENANT, &message("m1", 0))
        .await
        .unwrap()
        .unwrap();
    rt.advance(60_000).await.unwrap();
    let sms = rt.traffic.take_sms();
    assert_eq!(sms.len(), 1);
    let request = &sms[0];

    assert_eq!(request.method, spec["method"]);
    let path = spec["path"]
        .as_str()
        .unwrap()
        .replace("{AccountSid}", ACCOUNT);
    assert_eq!(
        request.url,
        format!("{}{path}", spec["server"].as_str().unwrap())
    );
    let sid_len = spec["path_parameters"]["AccountSid"]["maxLength"]
        .as_u64()
        .unwrap() as usize;
    assert_eq!(ACCOUNT.len(), sid_len);
    assert_eq!(
        request.content_type.as_deref(),
        spec["content_type"].as_str()
    );

    let known: Vec<&str> = spec["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for required in spec["required"].as_array().unwrap() {
        assert!(
            request.form.iter().any(|(k, _)| k == required),
            "required field {required} missing"
        );
    }
    for (name, _) in &request.form {
        assert!(
            known.contains(&name.as_str()),
            "field {name} is not in CreateMessage"
        );
    }
    // The guest asks for timeouts, so a stuck connection cannot hold it for WASI's 600 s default.
    let options = request.options.expect("request options");
    assert!(options.connect_timeout.is_some() && options.first_byte_timeout.is_some());
}

#[tokio::test]
async fn each_reason_not_to_text_is_reported() {
    // Online when the timer fires.
    let mut rt = runtime(user("bob", Presence::Online, Some("+14155552671")));
    rt.on_message(TENANT, &message("m1", 0))
        .await
        .unwrap()
        .unwrap();
    let fired = rt.advance(60_000).await.unwrap();
    assert!(matches!(
        fired[0].result,
        Ok(Ok(Outcome::Skipped(SkipReason::RecipientOnline)))
    ));

    // No number.
    let mut rt = runtime(user("bob", Presence::Offline, None));
    rt.on_message(TENANT, &message("m1", 0))
        .await
        .unwrap()
        .unwrap();
    let fired = rt.advance(60_000).await.unwrap();
    assert!(matches!(
        fired[0].result,
        Ok(Ok(Outcome::Skipped(SkipReason::NoContactNumber)))
    ));

    // Group conversation.
    let mut group = message("m1", 0);
    group.kind = ConversationKind::Group;
    let outcome = rt.on_message(TENANT, &group).await.unwrap();
    assert!(matches!(
        outcome,
        Ok(Outcome::Skipped(SkipReason::GroupConversation))
    ));

    // Read in time: the receipt cancels and the timer is gone.
    let mut rt = runtime(user("bob", Presence::Offline, Some("+14155552671")));
    rt.on_message(TENANT, &message("m1", 0))
        .await
        .unwrap()
        .unwrap();
    let receipt = host_test::bindings::sms_notification::extension::types::Receipt {
        conversation: "alice_bob".into(),
        reader: "bob".into(),
        message: "m1".into(),
        read_at: 1_000,
    };
    let outcome = rt.on_read(TENANT, &receipt).await.unwrap().unwrap();
    assert!(
        matches!(outcome, Outcome::Cancelled(ref c) if c.read == 1),
        "{outcome:?}"
    );
    assert!(rt.advance(120_000).await.unwrap().is_empty());
    assert!(rt.traffic.take_sms().is_empty());
}

#[tokio::test]
async fn a_request_to_any_other_host_is_denied() {
    // The component only ever asks for api.twilio.com; a host that allows
    // some other host must deny it, and the component reports it as an error.
    let mut rt = runtime(user("bob", Presence::Offline, Some("+14155552671")));
    rt.policy.allowed_host = "sms.example.org".into();
    rt.on_message(TENANT, &message("m1", 0))
        .await
        .unwrap()
        .unwrap();
    let fired = rt.advance(60_000).await.unwrap();
    let Ok(Ok(Outcome::Failed(failure))) = &fired[0].result else {
        panic!("expected a failed outcome, got {:?}", fired[0].result)
    };
    let e = &failure.error;
    assert_eq!(e.status, 0);
    assert!(e.message.contains("denied"), "{}", e.message);
    assert!(rt.traffic.take_sms().is_empty());
    let denied = rt.policy.stats.denied();
    assert_eq!(denied.len(), 1);
    assert!(
        denied[0].url.starts_with("https://api.twilio.com/"),
        "{}",
        denied[0].url
    );
}

#[tokio::test]
async fn the_auth_token_never_leaves_in_outcomes_logs_or_state() {
    let mut rt = runtime(user("bob", Presence::Offline, Some("+14155552671")));
    let mut seen = String::new();
    seen += &format!(
        "{:?}",
        rt.on_message(TENANT, &message("m1", 0)).await.unwrap()
    );
    seen += &format!("{:?}", rt.advance(60_000).await.unwrap());
    seen += &format!("{:?}", rt.traffic.take_sms());
    // A bad setting next to the token: the problems must not quote it.
    let bad = settings().replace("+15005550006", "not-a-number");
    seen += &format!("{:?}", rt.validate_settings(TENANT, &bad).await.unwrap());
    let tenant = rt.tenant(TENANT);
    let t = tenant.lock().unwrap();
    seen += &format!("{:?}", t.logs);
    for value in t.state.values() {
        seen += &String::from_utf8_lossy(value);
    }
    assert!(seen.contains("SM"), "the run did send: {seen}");
    // As it is, and in the forms it travels in (base64 alone and with the
    // account SID, as in the Authorization header; percent-encoded).
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    for form in [
        TOKEN.to_owned(),
        b64(TOKEN),
        b64(&format!("{ACCOUNT}:{TOKEN}")),
        percent_encoding::utf8_percent_encode(TOKEN, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    ] {
        assert!(
            !seen.contains(&form),
            "the auth token leaked as {form}: {seen}"
        );
    }
    // Logged numbers are masked.
    assert!(!format!("{:?}", t.logs).contains("+14155552671"));
}
