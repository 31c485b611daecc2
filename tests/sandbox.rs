//! The sandbox through the real component: what it may import, time and
//! memory limits, traps that cost nothing stored, hostile input, tenants
//! that never see each other, and secrets that never leave.

use base64::Engine as _;
use host_test::TestRuntime;
use host_test::bindings::sms_notification::extension::types::{
    ConversationKind, Error, Message, MessageFormat, Outcome, Receipt, SkipReason,
};
use host_test::engine;
use host_test::fake_twilio::Answer;
use host_test::runtime::Call;
use host_test::sandbox::Sandbox;
use host_test::scenario;
use host_test::storage::{Presence, User};
use serde_json::json;
use std::time::Duration;
use wasmtime::component::{Component, Linker};

const ACCOUNT_A: &str = "AC0123456789abcdef0123456789abcdef";
const ACCOUNT_B: &str = "ACfedcba9876543210fedcba9876543210";

fn settings(account: &str, token: &str) -> String {
    json!({
        "twilioAccountSid": account,
        "twilioAuthToken": token,
        "fromMobileNo": "+15005550006",
        "delaySeconds": 60,
        "cooldownMinutes": 0,
        "conversationSmsPerDay": 100,
        "maxAttempts": 2,
    })
    .to_string()
}

fn user(uid: &str, number: &str) -> User {
    User {
        uid: uid.into(),
        name: uid.to_uppercase(),
        presence: Presence::Offline,
        metadata: json!({ "@private": { "contactNumber": number } }).to_string(),
    }
}

fn message(id: &str, to: &str, text: &str) -> Message {
    Message {
        id: id.into(),
        conversation: format!("alice_{to}"),
        kind: ConversationKind::OneOnOne,
        format: MessageFormat::Text,
        sender: "alice".into(),
        receiver: to.into(),
        text: text.into(),
        sent_at: 0,
    }
}

fn tenant(rt: &mut TestRuntime, name: &str, account: &str, token: &str, users: &[User]) {
    let t = rt.tenant(name);
    let mut t = t.lock().unwrap();
    t.save_settings(settings(account, token));
    for u in users {
        t.users.insert(u.uid.clone(), u.clone());
    }
}

fn sent(call: &Call) -> bool {
    matches!(call, Ok(Ok(Outcome::Sent(_))))
}

#[test]
fn the_component_imports_only_its_host_clocks_and_http() {
    let engine = engine::engine().unwrap();
    let component = Component::from_file(&engine, host_test::COMPONENT).unwrap();
    let imports: Vec<String> = component
        .component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler")),
        "{imports:?}"
    );
    for import in &imports {
        let allowed = [
            "sms-notification:extension/",
            "wasi:io/",
            "wasi:clocks/",
            "wasi:http/",
        ]
        .iter()
        .any(|prefix| import.starts_with(prefix));
        assert!(allowed, "unexpected import {import}");
    }
}

#[test]
fn a_component_that_imports_the_filesystem_or_sockets_cannot_run() {
    let engine = engine::engine().unwrap();
    let linker: Linker<Sandbox> = engine::linker(&engine).unwrap();
    for import in [
        "wasi:filesystem/preopens@0.2.12",
        "wasi:sockets/tcp-create-socket@0.2.12",
    ] {
        let wat = format!(r#"(component (import "{import}" (instance (export "f" (func)))))"#);
        let component = Component::new(&engine, wat).unwrap();
        let err = linker
            .instantiate_pre(&component)
            .err()
            .expect("must not link");
        assert!(format!("{err:#}").contains(import), "{err:#}");
    }
}

#[test]
fn the_sandbox_has_no_environment() {
    use wasmtime_wasi::cli::WasiCliView as _;
    use wasmtime_wasi::p2::bindings::cli::environment::Host as _;
    let rt = TestRuntime::new().unwrap();
    let outbound = host_test::outbound::Outbound {
        tenant: "t".into(),
        policy: rt.policy.clone(),
        clock: rt.clock.clone(),
        timer: None,
    };
    // SAFETY of the test: the host's own environment is not empty here.
    assert!(std::env::vars().next().is_some());
    let directory = std::sync::Arc::new(host_test::directory::Stored(rt.storage().clone()));
    let mut sandbox = Sandbox::new(
        "t".into(),
        rt.storage().clone(),
        directory,
        rt.clock.clone(),
        outbound,
    );
    assert!(sandbox.cli().get_environment().unwrap().is_empty());
    assert!(sandbox.cli().get_arguments().unwrap().is_empty());
}

#[tokio::test]
async fn a_guest_that_loops_forever_is_cut_off_by_the_deadline() {
    let engine = engine::engine().unwrap();
    let component = Component::new(
        &engine,
        r#"(component
            (core module $m (func (export "spin") (loop $l (br $l))))
            (core instance $i (instantiate $m))
            (func (export "spin") (canon lift (core func $i "spin"))))"#,
    )
    .unwrap();
    let mut store = wasmtime::Store::new(&engine, ());
    engine::configure(&mut store);
    let instance = Linker::new(&engine)
        .instantiate_async(&mut store, &component)
        .await
        .unwrap();
    let spin = instance
        .get_typed_func::<(), ()>(&mut store, "spin")
        .unwrap();
    let crash = tokio::sync::Notify::new();
    let result = engine::bounded(
        &crash,
        Duration::from_millis(300),
        spin.call_async(&mut store, ()),
    )
    .await;
    let err = result.expect_err("an endless loop must be cut off");
    assert!(format!("{err:#}").contains("took longer than"), "{err:#}");
}

#[tokio::test]
async fn a_trap_throws_the_sandbox_away_and_keeps_the_data_and_other_tenants() {
    let mut rt = TestRuntime::new().unwrap();
    tenant(
        &mut rt,
        "a",
        ACCOUNT_A,
        "token-a",
        &[user("bob", "+14155552671"), user("dan", "+14155550100")],
    );
    tenant(
        &mut rt,
        "b",
        ACCOUNT_B,
        "token-b",
        &[user("carol", "+14155550199")],
    );
    assert!(matches!(
        rt.on_message("a", &message("m1", "bob", "hi"))
            .await
            .unwrap(),
        Ok(Outcome::Scheduled(_))
    ));
    assert!(matches!(
        rt.on_message("a", &message("d1", "dan", "later"))
            .await
            .unwrap(),
        Ok(Outcome::Scheduled(_))
    ));
    assert!(matches!(
        rt.on_message("b", &message("c1", "carol", "yo"))
            .await
            .unwrap(),
        Ok(Outcome::Scheduled(_))
    ));

    // Tenant a's first timer call is killed mid-send: a trap for that call.
    rt.traffic.script(
        "a",
        [Answer {
            crash: true,
            ..Answer::default()
        }],
    );
    let fired = rt.advance(60_000).await.unwrap();
    let trapped: Vec<_> = fired.iter().filter(|f| f.result.is_err()).collect();
    assert_eq!(trapped.len(), 1, "{fired:?}");
    assert_eq!(trapped[0].tenant, "a");
    assert!(
        format!("{:#}", trapped[0].result.as_ref().unwrap_err())
            .contains("trapped for tenant \"a\"")
    );
    // The other notifications of both tenants went out; a's sandbox was re-created.
    let sent_to: Vec<_> = fired
        .iter()
        .filter(|f| sent(&f.result))
        .map(|f| f.key.clone())
        .collect();
    assert_eq!(sent_to.len(), 2, "{fired:?}");
    assert!(
        sent_to.iter().any(|k| k.ends_with("/dan"))
            && sent_to.iter().any(|k| k.ends_with("/carol"))
    );
    // The interrupted notification is still on record (in flight) and its
    // timer fires again, where it is given up rather than sent twice.
    assert!(
        rt.tenant("a")
            .lock()
            .unwrap()
            .state
            .contains_key("conversation/alice_bob")
    );
    let again = rt.advance(1_000).await.unwrap();
    assert!(
        matches!(&again[0].result, Ok(Ok(Outcome::Failed(f))) if f.error.message.contains("cut off")),
        "{again:?}"
    );
}

#[tokio::test]
async fn a_reused_pool_slot_carries_nothing_over() {
    // One slot: tenant b's sandbox reuses the memory tenant a's had.
    let engine = engine::build(Some(1)).unwrap();
    let mut rt = TestRuntime::with(host_test::prepare(&engine).unwrap());
    let bob = user("bob", "+14155552671");
    tenant(
        &mut rt,
        "a",
        ACCOUNT_A,
        "token-a",
        std::slice::from_ref(&bob),
    );
    // Both tenants' settings are at revision 1; only b's delay is 120 s.
    let mut slower: serde_json::Value =
        serde_json::from_str(&settings(ACCOUNT_B, "token-b")).unwrap();
    slower["delaySeconds"] = json!(120);
    {
        let b = rt.tenant("b");
        let mut b = b.lock().unwrap();
        b.save_settings(slower.to_string());
        b.users.insert(bob.uid.clone(), bob);
    }

    let due = |call: Call| match call {
        Ok(Ok(Outcome::Scheduled(p))) => p.due_at,
        other => panic!("{other:?}"),
    };
    let a = rt.on_message("a", &message("m1", "bob", "hi")).await;
    assert_eq!(due(a), 60_000);
    // While a holds the only slot, b cannot get one: the host says so, and
    // a's sandbox is untouched.
    assert!(
        rt.on_message("b", &message("m1", "bob", "hi"))
            .await
            .is_err()
    );
    rt.evict("a");
    let b = rt.on_message("b", &message("m1", "bob", "hi")).await;
    assert_eq!(due(b), 120_000, "b's sandbox saw a's settings");
    // a's data outlived its sandbox.
    rt.evict("b");
    let again = rt.on_message("a", &message("m2", "bob", "again")).await;
    assert_eq!(due(again), 60_000);
}

#[tokio::test]
async fn a_refused_commit_changes_nothing_and_never_sends_twice() {
    let mut rt = TestRuntime::new().unwrap();
    tenant(
        &mut rt,
        "a",
        ACCOUNT_A,
        "token-a",
        &[user("bob", "+14155552671")],
    );
    let data = rt.tenant("a");
    let snapshot = |rt: &mut TestRuntime| {
        let t = rt.tenant("a");
        let t = t.lock().unwrap();
        (t.state.clone(), t.timers.clone(), t.logs.len())
    };

    // A full store refuses the new notification: a typed error, nothing
    // stored, no timer, no log line.
    data.lock().unwrap().max_keys = Some(0);
    let before = snapshot(&mut rt);
    let refused = rt
        .on_message("a", &message("m1", "bob", "hi"))
        .await
        .unwrap();
    assert!(
        matches!(&refused, Err(Error::Host(why)) if why.contains("state is full")),
        "{refused:?}"
    );
    assert_eq!(snapshot(&mut rt), before);

    // With room for the notification alone, it is scheduled; but its
    // attempt cannot be recorded (the in-flight mark and the count for the
    // limits need a second key), so no request ever leaves. A full quota
    // is not fixed by seconds of backoff: the host tries again only at its
    // ten-minute sweep.
    data.lock().unwrap().max_keys = Some(1);
    let scheduled = rt
        .on_message("a", &message("m1", "bob", "hi"))
        .await
        .unwrap();
    assert!(
        matches!(scheduled, Ok(Outcome::Scheduled(_))),
        "{scheduled:?}"
    );
    let fired = rt.advance(100_000).await.unwrap();
    assert_eq!(fired.len(), 1, "no seconds-backoff for a full quota");
    for f in &fired {
        assert!(
            matches!(&f.result, Ok(Err(Error::Host(why))) if why.contains("state is full")),
            "{fired:?}"
        );
    }
    assert!(
        rt.traffic.take_sms().is_empty(),
        "nothing leaves unrecorded"
    );
    let (state, timers, _) = snapshot(&mut rt);
    assert_eq!(state.keys().collect::<Vec<_>>(), ["conversation/alice_bob"]);
    assert_eq!(
        timers.get("deliver/alice_bob/bob").copied(),
        Some(fired.last().unwrap().at + host_test::runtime::SWEEP_MS),
        "then swept up every ten minutes, never dropped"
    );

    // Room again: the sweep sends it, once.
    data.lock().unwrap().max_keys = None;
    let swept = rt.advance(host_test::runtime::SWEEP_MS).await.unwrap();
    assert!(sent(&swept[0].result), "{swept:?}");
    assert_eq!(rt.traffic.take_sms().len(), 1);
    assert!(
        rt.advance(host_test::runtime::SWEEP_MS)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn inputs_too_big_for_the_sandbox_are_refused_before_it() {
    let mut rt = TestRuntime::new().unwrap();
    let mut huge_metadata = user("eve", "+14155552671");
    huge_metadata.metadata = format!(
        r#"{{"@private":{{"contactNumber":"+14155552671"}},"x":"{}"}}"#,
        "x".repeat(20 << 20)
    );
    tenant(
        &mut rt,
        "t",
        ACCOUNT_A,
        "token-t",
        &[user("bob", "+14155552671"), huge_metadata],
    );
    rt.on_message("t", &message("m1", "bob", "kept"))
        .await
        .unwrap()
        .unwrap();
    let before = rt.tenant("t").lock().unwrap().state.clone();

    // 20 MiB of text cannot fit a 16 MiB sandbox: refused by the host, typed.
    let outcome = rt
        .on_message("t", &message("m2", "bob", &"x".repeat(20 << 20)))
        .await
        .unwrap();
    assert!(
        matches!(&outcome, Err(Error::InvalidInput(w)) if w.contains("message.text is 20971520 bytes")),
        "{outcome:?}"
    );
    let problems = rt
        .validate_settings("t", &"{".repeat(20 << 20))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        problems[0]
            .message
            .contains("the settings document is 20971520 bytes"),
        "{problems:?}"
    );
    assert!(matches!(
        rt.on_timer("t", &"k".repeat(20 << 20)).await.unwrap(),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(
        rt.tenant("t").lock().unwrap().state,
        before,
        "nothing stored is lost"
    );

    // A user's 20 MiB metadata is withheld: a skip, not a trap.
    rt.on_message("t", &message("e1", "eve", "hi"))
        .await
        .unwrap()
        .unwrap();
    let fired = rt.advance(60_000).await.unwrap();
    let eve = fired.iter().find(|f| f.key.ends_with("/eve")).unwrap();
    assert!(
        matches!(
            eve.result,
            Ok(Ok(Outcome::Skipped(SkipReason::NoContactNumber)))
        ),
        "{:?}",
        eve.result
    );
    assert!(
        fired
            .iter()
            .any(|f| f.key.ends_with("/bob") && sent(&f.result))
    );
}

#[tokio::test]
async fn hostile_input_gets_typed_errors_or_skips_and_loses_nothing() {
    let mut rt = TestRuntime::new().unwrap();
    let mut users = vec![user("bob", "+14155552671")];
    let weird: [(&str, String, SkipReason); 7] = [
        ("deep", "[".repeat(100_000), SkipReason::NoContactNumber),
        (
            "closed",
            format!("{}{}", "[".repeat(30_000), "]".repeat(30_000)),
            SkipReason::NoContactNumber,
        ),
        ("notjson", "{not json".into(), SkipReason::NoContactNumber),
        ("array", "[1,2,3]".into(), SkipReason::NoContactNumber),
        (
            "number",
            r#"{"@private":{"contactNumber":14155552671}}"#.into(),
            SkipReason::InvalidContactNumber,
        ),
        (
            "list",
            r#"{"@private":{"contactNumber":["+14155552671"]}}"#.into(),
            SkipReason::InvalidContactNumber,
        ),
        (
            "long",
            json!({"@private": {"contactNumber": "+1".to_owned() + &"5".repeat(10_000)}})
                .to_string(),
            SkipReason::InvalidContactNumber,
        ),
    ];
    for (uid, metadata, _) in &weird {
        users.push(User {
            uid: (*uid).into(),
            name: "W".into(),
            presence: Presence::Offline,
            metadata: metadata.clone(),
        });
    }
    tenant(&mut rt, "t", ACCOUNT_A, "token-t", &users);
    // Stored before the onslaught: it must still be sent at the end.
    assert!(matches!(
        rt.on_message("t", &message("keep", "bob", "still here"))
            .await
            .unwrap(),
        Ok(Outcome::Scheduled(_))
    ));

    // Huge texts are accepted and fitted; a later one joins the same notification.
    for (id, size) in [("big1", 1 << 20), ("big10", 10 << 20)] {
        let outcome = rt
            .on_message("t", &message(id, "bob", &"é".repeat(size / 2)))
            .await
            .unwrap();
        assert!(
            matches!(outcome, Ok(Outcome::Scheduled(_))),
            "{id}: {outcome:?}"
        );
    }
    // Ids with control characters, 64 kB ids: typed errors naming the field.
    for bad in [
        message("m\u{0}", "bob", "x"),
        message(&"i".repeat(65_536), "bob", "x"),
    ] {
        let outcome = rt.on_message("t", &bad).await.unwrap();
        assert!(
            matches!(&outcome, Err(Error::InvalidInput(w)) if w.contains("message.id")),
            "{outcome:?}"
        );
    }
    let mut long_receiver = message("r1", "bob", "x");
    long_receiver.receiver = "u".repeat(65_536);
    assert!(matches!(
        rt.on_message("t", &long_receiver).await.unwrap(),
        Err(Error::InvalidInput(_))
    ));
    // A receipt before any message, receipts and timers for keys that do not exist.
    let receipt = Receipt {
        conversation: "nowhere".into(),
        reader: "nobody".into(),
        message: "m0".into(),
        read_at: 0,
    };
    assert!(matches!(
        rt.on_read("t", &receipt).await.unwrap(),
        Ok(Outcome::Skipped(SkipReason::NothingPending))
    ));
    for key in [
        "",
        "deliver/x/y",
        &"k".repeat(65_536),
        "deliver/%ZZ/%FF",
        "deliver\u{0}/a/b",
    ] {
        let outcome = rt.on_timer("t", key).await.unwrap();
        assert!(
            matches!(
                outcome,
                Ok(Outcome::Skipped(
                    SkipReason::UnknownTimer | SkipReason::NothingPending
                ))
            ),
            "{outcome:?}"
        );
    }
    // Settings of 1 MiB, exploding templates, unknown values: problems, not traps.
    let big = json!({ "twilioAccountSid": ACCOUNT_A, "padding": "p".repeat(1 << 20) }).to_string();
    let problems = rt.validate_settings("t", &big).await.unwrap().unwrap_err();
    assert!(
        problems[0].message.contains("at most 65536"),
        "{problems:?}"
    );
    for template in [
        "{{".repeat(5_000),
        "{".repeat(5_000),
        "{sender{count}}".into(),
        "{{{preview}}}".repeat(300),
    ] {
        let doc = json!({ "twilioAccountSid": ACCOUNT_A, "twilioAuthToken": "t", "fromMobileNo": "+15005550006", "template": template });
        let result = rt.validate_settings("t", &doc.to_string()).await.unwrap();
        if let Err(problems) = result {
            assert!(
                problems.iter().all(|p| p.field == "template"),
                "{problems:?}"
            );
        }
    }
    let unknown = json!({ "twilioAccountSid": ACCOUNT_A, "twilioAuthToken": "t", "fromMobileNo": "+15005550006", "includeMessageText": "sometimes", "maxSegments": "many" });
    let problems = rt
        .validate_settings("t", &unknown.to_string())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");

    // Weird metadata: each a skip with its reason.
    for (uid, _, reason) in &weird {
        assert!(matches!(
            rt.on_message("t", &message("w1", uid, "hello"))
                .await
                .unwrap(),
            Ok(Outcome::Scheduled(_))
        ));
        let fired = rt.advance(60_000).await.unwrap();
        let mine = fired
            .iter()
            .find(|f| f.key.ends_with(&format!("/{uid}")))
            .expect("its timer");
        assert!(
            matches!(&mine.result, Ok(Ok(Outcome::Skipped(r))) if r == reason),
            "{uid}: {:?}",
            mine.result
        );
    }
    // The notification stored first went out, fitted to one segment.
    let sms = rt.traffic.take_sms();
    let bob: Vec<_> = sms
        .iter()
        .filter(|s| s.form.iter().any(|(k, v)| k == "To" && v == "+14155552671"))
        .collect();
    assert_eq!(bob.len(), 1, "{sms:?}");
    let body = &bob[0].form.iter().find(|(k, _)| k == "Body").unwrap().1;
    assert!(body.starts_with("3 new messages from alice: éé"), "{body}");
    assert!(body.ends_with("..."), "{body}");
    assert_eq!(
        sms_notification::text::segments::count(body).segments,
        1,
        "{body}"
    );
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let mut rt = TestRuntime::new().unwrap();
    tenant(
        &mut rt,
        "acme",
        ACCOUNT_A,
        "acme-token-1111",
        &[user("bob", "+14155552671")],
    );
    tenant(
        &mut rt,
        "globex",
        ACCOUNT_B,
        "globex-token-2222",
        &[user("bob", "+442079460958")],
    );
    rt.traffic.script(
        "globex",
        [Answer {
            status: Some(503),
            ..Answer::default()
        }],
    );
    rt.on_message("acme", &message("a1", "bob", "acme secret plans"))
        .await
        .unwrap()
        .unwrap();
    rt.on_message("globex", &message("g1", "bob", "globex secret plans"))
        .await
        .unwrap()
        .unwrap();
    let fired = rt.advance(3_600_000).await.unwrap();
    assert!(
        fired
            .iter()
            .filter(|f| f.tenant == "acme")
            .all(|f| sent(&f.result))
    );
    let sms = rt.traffic.take_sms();
    assert_eq!(sms.iter().filter(|s| s.tenant == "acme").count(), 1);
    assert_eq!(
        sms.iter().filter(|s| s.tenant == "globex").count(),
        2,
        "a retry after the 503"
    );

    let (a, b) = ("acme", "globex");
    for (me, account, number, other_account, other_number, other_text) in [
        (
            a,
            ACCOUNT_A,
            "+14155552671",
            ACCOUNT_B,
            "+442079460958",
            "globex secret",
        ),
        (
            b,
            ACCOUNT_B,
            "+442079460958",
            ACCOUNT_A,
            "+14155552671",
            "acme secret",
        ),
    ] {
        for s in sms.iter().filter(|s| s.tenant == me) {
            assert_eq!(s.auth_user.as_deref(), Some(account));
            assert!(s.url.contains(account));
            let form = format!("{:?}", s.form);
            assert!(
                form.contains(number) && !form.contains(other_number) && !form.contains(other_text),
                "{form}"
            );
        }
        let t = rt.tenant(me);
        let t = t.lock().unwrap();
        let everything = format!(
            "{:?}{:?}{:?}",
            t.logs,
            t.timers,
            t.state
                .iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(v)))
                .collect::<Vec<_>>()
        );
        for foreign in [other_account, other_number, other_text, "token"] {
            assert!(
                !everything.contains(foreign),
                "{me} holds {foreign}: {everything}"
            );
        }
    }
}

#[tokio::test]
async fn no_secret_reaches_any_output() {
    const TOKEN: &str = "Zq9-AUTH-TOKEN-7f3a9c2e";
    const KEY_SECRET: &str = "Yx8-API-SECRET-1b5d0e4f";
    let base = format!(
        r#""twilioAccountSid":"{ACCOUNT_A}","fromMobileNo":"+15005550006","delaySeconds":10,"cooldownMinutes":0,"conversationSmsPerDay":50,"maxAttempts":2"#
    );
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let pct = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let key_sid = "SK0123456789abcdef0123456789abcdef";
    // Every form a secret travels in, which an outside party might quote.
    let forms = |user: &str, secret: &str| {
        [
            secret.to_owned(),
            b64(secret),
            b64(&format!("{user}:{secret}")),
            pct(secret),
        ]
    };
    let echo = |user: &str, secret: &str| {
        let quoted = forms(user, secret).join(" / ");
        serde_json::json!({ "twilio": { "respond": [
            { "status": 400, "code": 21999, "message": format!("echo {quoted}") }
        ] } })
        .to_string()
    };
    let script = [
        format!(r#"{{"settings": {{{base},"twilioAuthToken":"{TOKEN}"}}}}"#),
        r#"{"user": {"uid": "carol", "name": "Carol", "metadata": {"@private": {"contactNumber": "+14155550100"}}}}"#.into(),
        echo(ACCOUNT_A, TOKEN),
        r#"{"message": {"id": "e1", "conversation": "e", "sender": "alice", "receiver": "carol", "text": "echo"}}"#.into(),
        r#"{"advance": 60}"#.into(),
        r#"{"user": {"uid": "alice", "name": "Alice", "presence": "online"}}"#.into(),
        r#"{"user": {"uid": "bob", "name": "Bob", "metadata": {"@private": {"contactNumber": "+14155552671"}}}}"#.into(),
        r#"{"twilio": {"respond": [{"status": 429, "retry_after": 1}, {"status": 201}, {"status": 500}, {"status": 500}, {"status": 401, "code": 20003}, {"crash": true}]}}"#.into(),
        r#"{"message": {"id": "m1", "conversation": "c", "sender": "alice", "receiver": "bob", "text": "one"}}"#.into(),
        r#"{"advance": 600}"#.into(),
        r#"{"message": {"id": "m2", "conversation": "c", "sender": "alice", "receiver": "bob", "text": "two"}}"#.into(),
        r#"{"advance": 600}"#.into(),
        r#"{"message": {"id": "m3", "conversation": "c", "sender": "alice", "receiver": "bob", "text": "three"}}"#.into(),
        r#"{"advance": 600}"#.into(),
        r#"{"advance": 1800}"#.into(),
        // Bad settings next to each secret: the problems must not quote them.
        format!(r#"{{"settings": {{{base},"twilioAuthToken":"{TOKEN} x"}}}}"#),
        format!(r#"{{"settings": {{{base},"twilioAuthToken":"{TOKEN}","twilioApiKeySid":"SK0123456789abcdef0123456789abcdef","twilioApiKeySecret":"{KEY_SECRET}"}}}}"#),
        format!(r#"{{"settings": {{{base},"twilioApiKeySid":"SKbad","twilioApiKeySecret":"{KEY_SECRET}"}}}}"#),
        format!(r#"{{"settings": {{{base},"twilioApiKeySid":"SK0123456789abcdef0123456789abcdef","twilioApiKeySecret":"{KEY_SECRET}"}}}}"#),
        r#"{"message": {"id": "m4", "conversation": "c", "sender": "alice", "receiver": "bob", "text": "four"}}"#.into(),
        r#"{"advance": 60}"#.into(),
        echo(key_sid, KEY_SECRET),
        r#"{"message": {"id": "e2", "conversation": "e", "sender": "alice", "receiver": "carol", "text": "echo"}}"#.into(),
        r#"{"advance": 60}"#.into(),
    ]
    .join("\n");
    let mut rt = TestRuntime::new().unwrap();
    let lines = scenario::run_script(&mut rt, &script).await.unwrap();
    let mut everything: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let t = rt.tenant("default");
    let t = t.lock().unwrap();
    everything += &format!("{:?}", t.logs);
    for (key, value) in &t.state {
        everything += key;
        everything += &String::from_utf8_lossy(value);
    }
    everything += &format!("{:?}", t.timers);
    // The run did what it claims: sends, retries, a pause, a crash, bad settings.
    for expected in [
        "\"sent\"",
        "\"retrying\"",
        "\"paused\"",
        "\"trap\"",
        "\"failed\"",
        "invalid-settings",
        "SK0123456789abcdef0123456789abcdef",
        "echo [redacted] / [redacted] / [redacted] / [redacted]",
    ] {
        assert!(
            everything.contains(expected),
            "{expected} missing from the run:\n{everything}"
        );
    }
    for (user, secret) in [(ACCOUNT_A, TOKEN), (key_sid, KEY_SECRET)] {
        for form in forms(user, secret) {
            assert!(
                !everything.contains(&form),
                "{secret} leaked as {form}:\n{everything}"
            );
        }
    }
}

#[tokio::test]
async fn a_huge_display_name_is_cut_by_the_host_and_still_texted() {
    let mut rt = TestRuntime::new().unwrap();
    let mut alice = user("alice", "+14155550100");
    alice.name = "Ä".repeat(9 << 19); // 9 MiB of two-byte characters
    tenant(
        &mut rt,
        "a",
        ACCOUNT_A,
        "token-a",
        &[alice, user("bob", "+14155552671")],
    );
    rt.on_message("a", &message("m1", "bob", "hi"))
        .await
        .unwrap()
        .unwrap();
    let fired = rt.advance(60_000).await.unwrap();
    assert!(sent(&fired[0].result), "{:?}", fired[0].result);
    let sms = rt.traffic.take_sms();
    let body = &sms[0].form.iter().find(|(k, _)| k == "Body").unwrap().1;
    assert!(
        body.starts_with(&format!("1 new message from {}...", "Ä".repeat(40))),
        "{body}"
    );
}

/// Memory stays bounded whatever the number of tenants: past
/// `max_sandboxes`, the least recently used sandbox is dropped, and its
/// tenant's next call makes a new one with its data intact.
#[tokio::test]
async fn past_the_bound_the_least_recently_used_sandbox_is_dropped() {
    let mut rt = TestRuntime::new().unwrap();
    rt.max_sandboxes = 2;
    for t in ["a", "b", "c"] {
        tenant(
            &mut rt,
            t,
            "AC0123456789abcdef0123456789abcdef",
            "tok",
            &[user("bob", "+14155552671")],
        );
    }
    let scheduled = |call: &Call| matches!(call, Ok(Ok(Outcome::Scheduled(_))));
    assert!(scheduled(
        &rt.on_message("a", &message("m1", "bob", "one")).await
    ));
    assert!(scheduled(
        &rt.on_message("b", &message("m1", "bob", "one")).await
    ));
    // "a" used again: "b" is now the least recently used.
    assert!(scheduled(
        &rt.on_message("a", &message("m2", "bob", "two")).await
    ));
    assert!(scheduled(
        &rt.on_message("c", &message("m1", "bob", "one")).await
    ));
    assert_eq!(rt.resident(), 2);
    // "b" comes back with its conversation: its next message joins it.
    let Ok(Ok(Outcome::Scheduled(p))) = rt.on_message("b", &message("m2", "bob", "two")).await
    else {
        panic!("scheduled")
    };
    assert_eq!(p.unread, 2, "its data was kept");
    assert_eq!(rt.resident(), 2);
    // Every notification still goes out once.
    let fired = rt.advance(61_000).await.unwrap();
    assert_eq!(fired.iter().filter(|f| sent(&f.result)).count(), 3);
    assert!(rt.resident() <= 2);
}

/// Memory follows the tenants active lately: sandboxes not called for a
/// while are dropped (`serve` sweeps every minute), and a dropped tenant's
/// next call makes a new one with its data intact.
#[tokio::test]
async fn idle_sandboxes_are_dropped_and_come_back_with_their_data() {
    let mut rt = TestRuntime::new().unwrap();
    for t in ["a", "b"] {
        tenant(
            &mut rt,
            t,
            "AC0123456789abcdef0123456789abcdef",
            "tok",
            &[user("bob", "+14155552671")],
        );
        let first = rt.on_message(t, &message("m1", "bob", "one")).await;
        assert!(matches!(first, Ok(Ok(Outcome::Scheduled(_)))), "{first:?}");
    }
    assert_eq!(rt.resident(), 2);
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(rt.evict_idle(hour), 0, "used just now");
    assert_eq!(rt.resident(), 2);
    assert_eq!(rt.evict_idle(std::time::Duration::ZERO), 2);
    assert_eq!(rt.resident(), 0);
    let Ok(Ok(Outcome::Scheduled(p))) = rt.on_message("a", &message("m2", "bob", "two")).await
    else {
        panic!("scheduled")
    };
    assert_eq!(p.unread, 2, "its data was kept");
    assert_eq!(rt.resident(), 1);
    let fired = rt.advance(61_000).await.unwrap();
    assert_eq!(fired.iter().filter(|f| sent(&f.result)).count(), 2);
}

/// `inspect` reads a tenant's records in pages bounded by bytes as well as
/// by count, so records near their largest cannot push one call past the
/// sandbox's memory: 300 records of 60 KB (18 MB, more than the sandbox's
/// 16 MiB) are all read, in pages of about 1 MiB.
#[tokio::test]
async fn inspect_pages_by_bytes_so_large_records_fit_the_sandbox() {
    let mut rt = TestRuntime::new().unwrap();
    tenant(
        &mut rt,
        "t",
        "AC0123456789abcdef0123456789abcdef",
        "tok",
        &[user("bob", "+14155552671")],
    );
    {
        let data = rt.tenant("t");
        let mut t = data.lock().unwrap();
        for i in 0..300 {
            // Unreadable on purpose: the page lists them by key.
            t.state
                .insert(format!("conversation/c{i:03}"), vec![0x43; 60_000]);
        }
    }
    let total: usize = rt
        .tenant("t")
        .lock()
        .unwrap()
        .state
        .values()
        .map(Vec::len)
        .sum();
    assert!(total > host_test::sandbox::MEMORY_LIMIT);
    let inspection = rt
        .inspect("t")
        .await
        .expect("read in pages that fit")
        .expect("this build has inspect");
    assert_eq!(inspection.unreadable.len(), 300);
}
