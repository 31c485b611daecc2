//! The storage contract, held by every backend: the same checks run on the
//! in-memory store, on a SQLite file and on a throwaway PostgreSQL cluster
//! (ignored, with the reason, where PostgreSQL is not installed; mandatory
//! in `.ci/run`). Then what only a durable store has: data surviving a
//! reopen, schema migration, clear errors for bad URLs and newer schemas,
//! and a database that goes away and comes back.

mod common;

use host_test::storage::{self, Finish, LogLine, Retry, Storage, StoreError};
use host_test::storage::{Change, Level, Presence, User};
use std::sync::Arc;

fn put(key: &str, value: &[u8]) -> Change {
    Change::Put {
        key: key.into(),
        value: value.to_vec(),
    }
}

fn timer(key: &str, due_at: u64) -> Change {
    Change::SetTimer {
        key: key.into(),
        due_at,
    }
}

/// Everything a backend promises, checked on a fresh store.
async fn contract(db: &Arc<dyn Storage>) {
    // Settings and their revision.
    assert_eq!(db.settings("t").await.unwrap(), (None, 0));
    assert_eq!(db.save_settings("t", "{\"a\":1}").await.unwrap(), 1);
    assert_eq!(db.save_settings("t", "{\"a\":2}").await.unwrap(), 2);
    assert_eq!(
        db.settings("t").await.unwrap(),
        (Some("{\"a\":2}".into()), 2)
    );
    assert_eq!(db.settings("other").await.unwrap(), (None, 0), "per tenant");
    assert_eq!(db.revision("t").await.unwrap(), 2);
    assert_eq!(db.revision("other").await.unwrap(), 0);

    // Users.
    let bob = User {
        uid: "bob".into(),
        name: "Bob".into(),
        presence: Presence::Offline,
        metadata: "{\"@private\":{\"contactNumber\":\"+12025550123\"}}".into(),
    };
    db.put_user("t", &bob).await.unwrap();
    let found = |user: Option<User>| user.map(|u| format!("{u:?}"));
    assert_eq!(
        found(db.find_user("t", "bob").await.unwrap()),
        found(Some(bob.clone()))
    );
    let online = User {
        presence: Presence::Online,
        ..bob.clone()
    };
    db.put_user("t", &online).await.unwrap();
    assert_eq!(
        found(db.find_user("t", "bob").await.unwrap()),
        found(Some(online.clone()))
    );
    assert!(db.find_user("other", "bob").await.unwrap().is_none());
    assert_eq!(db.user_count("t").await.unwrap(), 1);
    assert_eq!(db.user_count("other").await.unwrap(), 0);
    // Presence as of a time: a late (older) event changes nothing.
    let presence =
        async |db: &Arc<dyn Storage>| db.find_user("t", "bob").await.unwrap().unwrap().presence;
    assert_eq!(
        db.set_presence("t", "bob", Presence::Offline, 2_000)
            .await
            .unwrap(),
        Some(true)
    );
    assert!(matches!(presence(db).await, Presence::Offline));
    assert_eq!(
        db.set_presence("t", "bob", Presence::Online, 1_000)
            .await
            .unwrap(),
        Some(false)
    );
    assert!(matches!(presence(db).await, Presence::Offline));
    assert_eq!(
        db.set_presence("t", "bob", Presence::Online, 2_000)
            .await
            .unwrap(),
        Some(true),
        "the same time again applies (a redelivery is the same event)"
    );
    assert!(matches!(presence(db).await, Presence::Online));
    assert_eq!(
        db.set_presence("t", "nobody", Presence::Online, 3_000)
            .await
            .unwrap(),
        None
    );
    // Replacing the user keeps the time of the last presence event.
    db.put_user("t", &bob).await.unwrap();
    assert_eq!(
        db.set_presence("t", "bob", Presence::Online, 1_500)
            .await
            .unwrap(),
        Some(false)
    );
    db.put_user("t", &online).await.unwrap();

    // Commits: all or none, quota included.
    db.commit("t", &[put("a", b"1"), put("b", b"2")])
        .await
        .unwrap();
    db.set_quota("t", Some(3)).await.unwrap();
    let refused = db
        .commit("t", &[put("c", b"3"), put("d", b"4"), timer("x", 10)])
        .await
        .unwrap_err();
    assert!(
        refused.message().contains("full (4 keys; at most 3)"),
        "{refused}"
    );
    assert!(matches!(refused, StoreError::Full(_)), "{refused:?}");
    assert_eq!(
        refused.retry(),
        Retry::Later,
        "a full quota is not retried soon"
    );
    assert_eq!(
        db.state_get("t", "c").await.unwrap(),
        None,
        "nothing applied"
    );
    assert!(db.timers("t").await.unwrap().is_empty(), "no timer either");
    // Replacing and deleting keys does not count against the quota.
    db.commit(
        "t",
        &[
            put("a", b"one"),
            Change::Delete("b".into()),
            put("c", b"3"),
            put("d", b"4"),
        ],
    )
    .await
    .unwrap();
    // The count follows every commit and delete (a store may keep it
    // rather than count each time): a, c and d are 3 of 3.
    let full = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Full(_)));
    assert!(full(db.commit("t", &[put("e", b"5")]).await), "4 of 3");
    assert!(db.state_delete("t", "c").await.unwrap());
    db.commit("t", &[put("e", b"5")]).await.unwrap();
    assert!(full(db.commit("t", &[put("f", b"6")]).await), "4 of 3");
    db.commit("t", &[Change::Delete("e".into()), put("c", b"3")])
        .await
        .unwrap();
    db.set_quota("t", None).await.unwrap();
    assert_eq!(db.state_get("t", "a").await.unwrap(), Some(b"one".to_vec()));
    assert_eq!(db.state_get("t", "b").await.unwrap(), None);
    db.commit(
        "t",
        &[
            put("quarantine/x", b"?"),
            put("quarantine/y", b"!"),
            put("quarantinez", b""),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        db.state_prefix("t", "quarantine/").await.unwrap(),
        [
            ("quarantine/x".to_owned(), b"?".to_vec()),
            ("quarantine/y".to_owned(), b"!".to_vec())
        ]
    );
    assert!(db.state_delete("t", "quarantine/x").await.unwrap());
    assert!(!db.state_delete("t", "quarantine/x").await.unwrap());

    // Timers: claimed in due order, leased, finished only by their holder.
    db.commit("t", &[timer("late", 100), timer("early", 50)])
        .await
        .unwrap();
    db.commit("u", &[timer("early", 50)]).await.unwrap();
    assert_eq!(db.next_due(0).await.unwrap(), Some(50));
    assert_eq!(
        db.timer_counts().await.unwrap(),
        vec![("early".to_owned(), 2), ("late".to_owned(), 1)],
        "all tenants' timers, by kind"
    );
    let claims = db.claim(60, 0, 10, 1_000).await.unwrap();
    let got: Vec<(&str, &str)> = claims
        .iter()
        .map(|c| (c.tenant.as_str(), c.key.as_str()))
        .collect();
    assert_eq!(
        got,
        [("t", "early"), ("u", "early")],
        "due, then tenant order"
    );
    assert!(
        db.claim(60, 0, 10, 1_000).await.unwrap().is_empty(),
        "leased"
    );
    assert_eq!(db.next_due(0).await.unwrap(), Some(100), "leased rows wait");
    db.finish(&claims[0], Finish::Done).await.unwrap();
    assert_eq!(db.timers("t").await.unwrap(), [("late".to_owned(), 100)]);
    db.commit("t", &[Change::CancelTimer("late".into())])
        .await
        .unwrap();
    // A lease that ran out (its process died) is claimed again; the old
    // holder can no longer finish it.
    let again = db.claim(60, 2_000, 10, 1_000).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].tenant.as_str(), again[0].key.as_str()),
        ("u", "early")
    );
    db.finish(&claims[1], Finish::Done).await.unwrap();
    assert_eq!(
        db.timers("u").await.unwrap().len(),
        1,
        "not the old holder's"
    );
    // A failed call re-arms the row and counts the attempt.
    db.finish(&again[0], Finish::Retry { at: 5_000 })
        .await
        .unwrap();
    assert_eq!(db.timers("u").await.unwrap(), [("early".to_owned(), 5_000)]);
    let retry = db.claim(5_000, 5_000, 10, 1_000).await.unwrap();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].attempts, 1);
    // The component sets the timer again during the call: its new due time
    // stands, whatever the call's end says.
    db.commit("u", &[timer("early", 9_000)]).await.unwrap();
    db.finish(&retry[0], Finish::Done).await.unwrap();
    assert_eq!(db.timers("u").await.unwrap(), [("early".to_owned(), 9_000)]);
    let fresh = db.claim(9_000, 9_000, 10, 1_000).await.unwrap();
    assert_eq!(fresh[0].attempts, 0, "setting a timer clears its attempts");
    db.commit("u", &[Change::CancelTimer("early".into())])
        .await
        .unwrap();
    db.finish(&fresh[0], Finish::Retry { at: 1 }).await.unwrap();
    assert!(
        db.timers("u").await.unwrap().is_empty(),
        "a cancel stands too"
    );
    // A lease renewed by its token outlasts its first term; one that
    // ended is not renewed.
    db.commit("r", &[timer("renewed", 10)]).await.unwrap();
    let held = db.claim(10, 10, 10, 100).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(db.renew(&[held[0].token], 500).await.unwrap(), 1);
    assert!(
        db.claim(10, 200, 10, 100).await.unwrap().is_empty(),
        "renewed past its first term"
    );
    assert_eq!(
        db.claim(10, 600, 10, 100).await.unwrap().len(),
        1,
        "then it ends"
    );
    assert_eq!(
        db.renew(&[held[0].token], 5_000).await.unwrap(),
        0,
        "the old holder's token renews nothing"
    );
    db.commit("r", &[Change::CancelTimer("renewed".into())])
        .await
        .unwrap();

    // A commit made from what a call read: applied while every key read
    // still holds what it did (absent included), else refused whole.
    let put = |k: &str, v: &[u8]| Change::Put {
        key: k.into(),
        value: v.to_vec(),
    };
    db.commit("cas", &[put("a", b"1")]).await.unwrap();
    let read = |k: &str, v: Option<&[u8]>| (k.to_owned(), v.map(<[u8]>::to_vec));
    db.commit_if(
        "cas",
        &[read("a", Some(b"1")), read("b", None)],
        &[put("a", b"2"), put("c", b"x")],
    )
    .await
    .unwrap();
    assert_eq!(
        db.state_get("cas", "a").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    for stale in [
        vec![read("a", Some(b"1"))],
        vec![read("a", None)],
        vec![read("a", Some(b"2")), read("c", None)],
    ] {
        let refused = db
            .commit_if("cas", &stale, &[put("a", b"3"), put("d", b"y")])
            .await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{stale:?}: {refused:?}"
        );
    }
    assert_eq!(
        db.state_get("cas", "a").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(
        db.state_get("cas", "d").await.unwrap(),
        None,
        "nothing written"
    );

    // A busy tenant's timers are skipped: another tenant's come first,
    // however late they are due; with nothing skipped, the earliest.
    db.commit("busy", &[timer("b1", 20), timer("b2", 21)])
        .await
        .unwrap();
    db.commit("idle", &[timer("i1", 30)]).await.unwrap();
    let skipped = db
        .claim_skipping(40, 40, 1, 100, &["busy".to_owned(), "x'y".to_owned()])
        .await
        .unwrap();
    assert_eq!(
        skipped
            .iter()
            .map(|c| (c.tenant.as_str(), c.key.as_str()))
            .collect::<Vec<_>>(),
        [("idle", "i1")]
    );
    let rest = db.claim_skipping(40, 40, 10, 100, &[]).await.unwrap();
    assert_eq!(
        rest.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
        ["b1", "b2"]
    );
    for claim in skipped.iter().chain(&rest) {
        db.finish(claim, Finish::Done).await.unwrap();
    }

    // Counted by kind: the key's text before its first `/`.
    db.commit(
        "k",
        &[
            timer("expire/c1", 1),
            timer("deliver/c1/bob", 1),
            timer("expire/c2", 1),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        db.timer_counts().await.unwrap(),
        vec![("deliver".to_owned(), 1), ("expire".to_owned(), 2)]
    );
    db.commit(
        "k",
        &[
            Change::CancelTimer("expire/c1".into()),
            Change::CancelTimer("deliver/c1/bob".into()),
            Change::CancelTimer("expire/c2".into()),
        ],
    )
    .await
    .unwrap();
    // A time past i64::MAX (as an u64) is kept as the largest one stored,
    // and does not come due in any year a host will run.
    db.commit("u", &[timer("never", u64::MAX)]).await.unwrap();
    const YEAR_3000: u64 = 32_503_680_000_000;
    assert!(db.claim(YEAR_3000, 0, 10, 1).await.unwrap().is_empty());
    assert_eq!(db.timers("u").await.unwrap().len(), 1);

    // Log lines, by position.
    for (i, line) in ["one", "two", "three"].into_iter().enumerate() {
        db.log(
            "t",
            LogLine {
                at: i as u64,
                level: Level::Warn,
                line: line.into(),
            },
        )
        .await
        .unwrap();
    }
    // Logs are written without waiting; reading waits for them.
    let all = db.logs("t", 0, 10).await.unwrap();
    let lines: Vec<&str> = all.iter().map(|(_, l)| l.line.as_str()).collect();
    assert_eq!(lines, ["one", "two", "three"]);
    assert_eq!(all[2].1.level, Level::Warn);
    let after = db.logs("t", all[0].0, 1).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].1.line, "two");
    assert!(db.logs("u", 0, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn memory_keeps_the_contract() {
    contract(&storage::open("memory:").await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_keeps_the_contract_and_its_data_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("sms.db").display());
    let db = storage::open(&url).await.unwrap();
    contract(&db).await;
    db.commit("t", &[put("kept", b"yes"), timer("pending", 42)])
        .await
        .unwrap();
    let held = db.claim(42, 42, 1, 60_000).await.unwrap();
    assert_eq!(held.len(), 1);
    // A second store on the same file (another process) is refused: it
    // would take the first one's leases.
    let Err(busy) = storage::open(&url).await else {
        panic!("two stores on one SQLite file");
    };
    assert!(
        busy.message().contains("in use by another host process"),
        "{busy}"
    );
    assert!(matches!(busy, StoreError::Setup(_)), "{busy:?}");
    drop(db);
    // A new process: the data is there, and the lease the old one held is
    // gone (one process per SQLite file), so the timer fires at once.
    let db = storage::open(&url).await.unwrap();
    assert_eq!(
        db.state_get("t", "kept").await.unwrap(),
        Some(b"yes".to_vec())
    );
    assert_eq!(db.settings("t").await.unwrap().1, 2);
    let claims = db.claim(42, 43, 1, 60_000).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].key, "pending");
}

#[tokio::test]
async fn sqlite_migrates_a_version_1_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    let v1 = rusqlite::Connection::open(&path).unwrap();
    v1.execute_batch(include_str!("fixtures/schema-v1.sqlite.sql"))
        .unwrap();
    drop(v1);
    let db = storage::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    assert_eq!(
        db.settings("acme").await.unwrap(),
        (Some("{\"delayMinutes\": 5}".into()), 3)
    );
    assert_eq!(
        db.state_get("acme", "conversation/alice_bob")
            .await
            .unwrap(),
        Some(vec![0x43, 1, 2, 3, 4])
    );
    assert_eq!(
        db.find_user("acme", "bob").await.unwrap().unwrap().name,
        "Bob"
    );
    let claims = db.claim(300_000, 300_000, 10, 1_000).await.unwrap();
    assert_eq!(claims.len(), 1, "the v1 timer fires under v2");
    assert_eq!(claims[0].attempts, 0);
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, storage::SCHEMA_VERSION);
}

#[tokio::test]
async fn a_database_from_a_newer_build_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let url = format!("sqlite:{}", path.display());
    drop(storage::open(&url).await.unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("INSERT INTO schema_version VALUES (99)", [])
        .unwrap();
    drop(conn);
    let Err(refused) = storage::open(&url).await else {
        panic!("a newer schema must be refused");
    };
    assert!(
        refused.message().contains(&format!(
            "schema version 99, newer than this build's {}",
            storage::SCHEMA_VERSION
        )),
        "{refused}"
    );
}

#[tokio::test]
async fn bad_urls_get_clear_errors_without_passwords() {
    for (url, says) in [
        (
            "mysql://root:pw@db/sms",
            "unknown database URL \"mysql://root:***@db/sms\"",
        ),
        ("sqlite:", "needs a file path"),
        (
            "sqlite:/nonexistent-dir/x/sms.db",
            "SQLite database /nonexistent-dir/x/sms.db",
        ),
        (
            "postgres://sms:hunter2@127.0.0.1:1/sms",
            "cannot connect to postgres://sms:***@127.0.0.1:1/sms",
        ),
    ] {
        let Err(e) = storage::open(url).await else {
            panic!("{url} opened");
        };
        assert!(e.message().contains(says), "{url}: {e}");
        assert!(
            !e.message().contains("hunter2") && !e.message().contains(":pw@"),
            "{e}"
        );
    }
}

#[tokio::test]
#[cfg_attr(
    not(postgres_found),
    ignore = "PostgreSQL not installed (apt-get install postgresql)"
)]
async fn postgres_keeps_the_contract_migrates_and_survives_a_restart() {
    let cluster = common::pg::Cluster::start();
    let url = cluster.create("contract");
    let db = storage::open(&url).await.unwrap();
    contract(&db).await;

    // The database goes away: a commit fails whole and says so; once it is
    // back, the next one works on fresh connections.
    cluster.stop();
    let down = db.commit("t", &[put("during", b"x")]).await.unwrap_err();
    assert!(down.message().contains("PostgreSQL database"), "{down}");
    assert!(matches!(down, StoreError::Unavailable(_)), "{down:?}");
    assert_eq!(down.retry(), Retry::Soon);
    cluster.restart();
    let mut back = db.commit("t", &[put("after", b"y")]).await;
    for _ in 0..storage::postgres::POOL {
        if back.is_ok() {
            break;
        }
        back = db.commit("t", &[put("after", b"y")]).await;
    }
    back.unwrap();
    assert_eq!(db.state_get("t", "during").await.unwrap(), None);
    let line = LogLine {
        at: 7,
        level: Level::Info,
        line: "after the restart".into(),
    };
    db.log("t", line.clone()).await.unwrap();
    let lines = db.logs("t", 0, 100).await.unwrap();
    assert_eq!(lines.last().map(|(_, l)| l), Some(&line), "logs work again");
    assert_eq!(
        db.state_get("t", "after").await.unwrap(),
        Some(b"y".to_vec())
    );
    drop(db);

    // A newer schema is refused.
    let newer = cluster.create("newer");
    drop(storage::open(&newer).await.unwrap());
    let (client, conn) = tokio_postgres::connect(&newer, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .execute("INSERT INTO schema_version VALUES (99)", &[])
        .await
        .unwrap();
    let Err(refused) = storage::open(&newer).await else {
        panic!("a newer schema must be refused");
    };
    assert!(refused.message().contains("schema version 99"), "{refused}");
}

/// Every file of a SQLite database (the main file and its WAL), as bytes.
fn dump(path: &std::path::Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        let file = format!("{}{suffix}", path.display());
        bytes.extend(std::fs::read(file).unwrap_or_default());
    }
    bytes
}

#[tokio::test]
async fn a_dump_of_the_database_holds_no_auth_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sms.db");
    let url = format!("sqlite:{}", path.display());
    let token = "tok-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let json = format!("{{\"twilioAuthToken\":\"{token}\",\"apiKeySecret\":\"{token}\"}}");
    let db = storage::open_sealed(&url, None).await.unwrap();
    db.save_settings("t", &json).await.unwrap();
    assert_eq!(
        db.settings("t").await.unwrap().0.as_deref(),
        Some(json.as_str())
    );
    drop(db);
    // The check itself sees a token stored in clear (a store not sealed).
    let plain_path = dir.path().join("plain.db");
    let plain = storage::open(&format!("sqlite:{}", plain_path.display()))
        .await
        .unwrap();
    plain.save_settings("t", &json).await.unwrap();
    drop(plain);
    let plain = dump(&plain_path);
    assert!(plain.windows(token.len()).any(|w| w == token.as_bytes()));

    let bytes = dump(&path);
    assert!(!bytes.is_empty());
    let found = bytes.windows(token.len()).any(|w| w == token.as_bytes());
    assert!(!found, "the token is in the database file");
    // The key was created beside the database, and opens it again.
    assert!(dir.path().join("sms.db.key").exists());
    let db = storage::open_sealed(&url, None).await.unwrap();
    assert_eq!(
        db.settings("t").await.unwrap().0.as_deref(),
        Some(json.as_str())
    );
    drop(db);
    // Another key does not guess: reading the settings fails, naming the tenant.
    let other =
        storage::sealed::Key::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    let db = storage::open_sealed(&url, Some(other)).await.unwrap();
    let refused = db.settings("t").await.unwrap_err();
    assert!(
        refused.message().contains("tenant \"t\" do not open"),
        "{refused}"
    );
    assert!(matches!(refused, StoreError::Corrupt(_)), "{refused:?}");
}

#[tokio::test]
async fn postgres_without_a_settings_key_is_refused_before_connecting() {
    let Err(e) = storage::open_sealed("postgres://sms:hunter2@127.0.0.1:1/sms", None).await else {
        panic!("opened without a key");
    };
    assert!(
        e.message()
            .contains("needs a settings key (SMS_SETTINGS_KEY"),
        "{e}"
    );
    assert!(!e.message().contains("hunter2"), "{e}");
}

/// The disk fills up (simulated: a trigger refuses every write the way
/// SQLite does when it cannot grow the file): a call's commit fails whole,
/// the component answers with a `host` error, nothing is half-written; once
/// there is room again, the next call works. Through the real component.
#[tokio::test]
async fn a_commit_that_fails_writes_nothing_and_the_next_one_works() {
    use host_test::TestRuntime;
    use host_test::bindings::sms_notification::extension::types::{
        ConversationKind, Error, Message, MessageFormat,
    };

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sms.db");
    let db = storage::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    db.save_settings(
        "t",
        r#"{"twilioAccountSid":"AC0123456789abcdef0123456789abcdef","twilioAuthToken":"tok",
            "fromMobileNo":"+15005550006","delaySeconds":60}"#,
    )
    .await
    .unwrap();
    for (uid, metadata) in [
        ("alice", "{}"),
        ("bob", r#"{"@private":{"contactNumber":"+12025550123"}}"#),
    ] {
        let user = User {
            uid: uid.into(),
            name: uid.into(),
            presence: Presence::Offline,
            metadata: metadata.into(),
        };
        db.put_user("t", &user).await.unwrap();
    }
    let mut rt = TestRuntime::on(host_test::prepared().unwrap(), db.clone());
    let message = |id: &str| Message {
        id: id.into(),
        conversation: "alice_bob".into(),
        kind: ConversationKind::OneOnOne,
        format: MessageFormat::Text,
        sender: "alice".into(),
        receiver: "bob".into(),
        text: "hi".into(),
        sent_at: 0,
    };

    let outside = rusqlite::Connection::open(&path).unwrap();
    outside
        .execute_batch(
            "CREATE TRIGGER full_put BEFORE INSERT ON state BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;
             CREATE TRIGGER full_timer BEFORE INSERT ON timers BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;",
        )
        .unwrap();
    let refused = rt.on_message("t", &message("m1")).await.unwrap();
    let Err(Error::Host(why)) = refused else {
        panic!("expected a host error, got {refused:?}");
    };
    assert!(why.contains("database or disk is full"), "{why}");
    assert!(
        db.state_prefix("t", "").await.unwrap().is_empty(),
        "nothing written"
    );
    assert!(db.timers("t").await.unwrap().is_empty());

    outside
        .execute_batch("DROP TRIGGER full_put; DROP TRIGGER full_timer;")
        .unwrap();
    let outcome = rt.on_message("t", &message("m2")).await.unwrap().unwrap();
    assert!(format!("{outcome:?}").contains("Scheduled"), "{outcome:?}");
    let timers: Vec<String> = db
        .timers("t")
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        timers.len(),
        2,
        "the notification's and the record's expiry: {timers:?}"
    );
    assert!(
        timers.iter().any(|k| k.starts_with("deliver/")),
        "{timers:?}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(postgres_found),
    ignore = "PostgreSQL not installed (apt-get install postgresql)"
)]
async fn postgres_over_tls_as_libpq_sslmode_says() {
    // The cluster takes TLS connections only; its certificate names
    // `localhost` and is signed by `tls.ca`.
    let (cluster, tls) = common::pg::Cluster::start_tls();
    cluster.create("sms");
    let at = |host: &str, query: &str| {
        format!(
            "postgres://postgres:hunter2@{host}:{}/sms?{query}",
            cluster.port
        )
    };
    let ca = tls.ca.display().to_string();
    let stranger = tls.stranger.display().to_string();
    let works = async |url: String| {
        let db = storage::open(&url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        db.commit("t", &[put("k", b"over TLS")]).await.unwrap();
        assert_eq!(
            db.state_get("t", "k").await.unwrap(),
            Some(b"over TLS".to_vec())
        );
    };
    let refused = async |url: String, says: &str| {
        let Err(e) = storage::open(&url).await else {
            panic!("{url} connected");
        };
        assert!(e.message().contains(says), "{url}: {e}");
        assert!(!e.message().contains("hunter2"), "{e}");
    };

    // Without TLS the server refuses; with it, unchecked, it accepts
    // (libpq's `require`, and `prefer`, its default).
    refused(at("127.0.0.1", "sslmode=disable"), "no encryption").await;
    works(at("127.0.0.1", "sslmode=require")).await;
    works(at("127.0.0.1", "connect_timeout=5")).await;
    // Checked against the CA: the name must match for verify-full only.
    works(at(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    refused(
        at(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        "not valid for name",
    )
    .await;
    works(at(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .await;
    works(at(
        "127.0.0.1",
        &format!("sslmode=require&sslrootcert={ca}"),
    ))
    .await;
    // Another CA: refused in every checked mode.
    for mode in ["verify-full", "verify-ca", "require"] {
        let query = format!("sslmode={mode}&sslrootcert={stranger}");
        refused(at("localhost", &query), "UnknownIssuer").await;
    }
    // The Mozilla roots did not sign a throwaway CA either.
    refused(
        at("localhost", "sslmode=verify-full&sslrootcert=system"),
        "UnknownIssuer",
    )
    .await;
}
