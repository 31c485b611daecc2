//! Durable hosts, tested as operators run them: `host-test host` child
//! processes on a SQLite file or a shared PostgreSQL database, killed with
//! SIGKILL at random moments, against a fake Twilio on loopback that
//! outlives them and counts what it accepted.
//!
//! `SMS_KILLS=N` sets the number of kills of the crash test (100 by
//! default; the README's soak command runs 1,000), `SMS_KILL_SEED` its
//! random moments.

mod common;

use common::host::Host;
use common::twilio::FakeTwilio;
use serde_json::{Value, json};
use sms_notification::conversation::Conversation;
use sms_notification::record::Record;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

fn settings(delay_seconds: u64) -> String {
    json!({ "settings": {
        "twilioAccountSid": ACCOUNT,
        "twilioAuthToken": "durable-test-token",
        "fromMobileNo": "+15005550006",
        "delaySeconds": delay_seconds,
        "maxAttempts": 5,
        "websiteURL": "https://chat.example.com",
    }})
    .to_string()
        + "\n"
}

/// The number of recipient `i`: New York numbers, all valid and distinct.
fn number(i: usize) -> String {
    format!("+1212{:07}", 2_000_000 + i)
}

/// A user line for recipient `i` and a message to them from Alice.
fn notification(i: usize) -> String {
    let user = json!({ "user": { "uid": format!("u{i}"), "name": format!("User {i}"),
        "metadata": { "@private": { "contactNumber": number(i) } } } });
    let message = json!({ "message": { "id": format!("m{i}"), "conversation": format!("c{i}"),
        "sender": "alice", "receiver": format!("u{i}"), "text": "are you there?" } });
    format!("{user}\n{message}\n")
}

const ALICE: &str = "{\"user\": {\"uid\": \"alice\", \"name\": \"Alice\"}}\n";

fn is(call: &str, outcome: &str) -> impl Fn(&Value) -> bool {
    move |line: &Value| line["call"] == call && line["outcome"].get(outcome).is_some()
}

/// Recipients that got a `scheduled` outcome.
fn scheduled(lines: &[Value]) -> BTreeSet<String> {
    lines
        .iter()
        .filter_map(|l| l["outcome"]["scheduled"]["recipient"].as_str())
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_host_killed_while_a_notification_waits_sends_it_once_after_restart() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("sms.db").display());

    let mut first = Host::start(&db, &twilio.url, false);
    first.send(&(settings(2) + ALICE + &notification(0)));
    first.wait_for(Duration::from_secs(20), is("on-message", "scheduled"));
    first.kill();
    assert_eq!(twilio.total(), 0, "killed before it was due");

    let second = Host::start(&db, &twilio.url, true);
    let lines = second.wait(Duration::from_secs(30));
    assert!(lines.iter().any(is("on-timer", "sent")), "{lines:?}");
    assert_eq!(twilio.counts().get(&number(0)), Some(&1));
    assert_eq!(twilio.total(), 1);
    // The settings were sealed: the database files hold no auth token.
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        files.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let token = b"durable-test-token";
    assert!(!files.windows(token.len()).any(|w| w == token));
}

/// No conversation record still has a notification due.
fn nothing_due(records: &[(String, Vec<u8>)]) {
    assert!(!records.is_empty());
    for (key, bytes) in records {
        let conversation = Conversation::decode(bytes).unwrap_or_else(|e| panic!("{key}: {e:?}"));
        for p in &conversation.participants {
            assert_eq!(p.due_at, None, "{key}: {} still due", p.uid);
        }
    }
}

/// Notifications `scheduled` that no SMS reached (cut off mid-send).
fn unsent<'a>(scheduled: &'a BTreeSet<String>, counts: &HashMap<String, usize>) -> Vec<&'a String> {
    scheduled
        .iter()
        .filter(|uid| {
            let i: usize = uid[1..].parse().unwrap();
            !counts.contains_key(&number(i))
        })
        .collect()
}

/// A small deterministic generator for the kill moments.
struct Moments(u64);

impl Moments {
    fn next_ms(&mut self, max: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % max
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn killing_the_host_at_random_moments_never_sends_twice_nor_leaves_a_notification_behind() {
    let kills = env_or("SMS_KILLS", 100) as usize;
    let seed = env_or("SMS_KILL_SEED", 20_261_128).max(1);
    eprintln!("{kills} kills, SMS_KILL_SEED={seed}");
    let mut moments = Moments(seed);
    // A slow answer keeps requests out when kills land; every 20th request
    // is refused with a 503 and retried (15 to 30 s later).
    let twilio = FakeTwilio::start(Duration::from_millis(40), 20);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sms.db");
    let db = format!("sqlite:{}", path.display());

    let mut lines = Vec::new();
    let per_round = 3;
    for round in 0..kills {
        let mut host = Host::start(&db, &twilio.url, false);
        if round == 0 {
            host.send(&(settings(1) + ALICE));
        }
        let events: String = (round * per_round..(round + 1) * per_round)
            .map(notification)
            .collect();
        host.send(&events);
        // The random moment counts from when the host answers its first
        // event: a host still starting (a loaded machine: the other tests
        // of this file run beside it) would otherwise be killed before it
        // did anything, round after round.
        host.wait_for(Duration::from_secs(60), |line| {
            line["call"] == "on-message" || line["call"] == "validate-settings"
        });
        std::thread::sleep(Duration::from_millis(moments.next_ms(600)));
        lines.extend(host.kill());
    }
    // A last host drains whatever is left, retries included.
    twilio.refuse_every(0);
    let last = Host::start(&db, &twilio.url, true);
    lines.extend(last.wait(Duration::from_secs(300)));

    let counts = twilio.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "texted more than once: {twice:?}");

    // Nothing pending is left without a timer: no timer rows remain, and no
    // conversation still has a notification due.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let timers: i64 = conn
        .query_row("SELECT count(*) FROM timers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(timers, 0);
    let mut records = conn
        .prepare("SELECT key, value FROM state WHERE key LIKE 'conversation/%'")
        .unwrap();
    let records: Vec<(String, Vec<u8>)> = records
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    nothing_due(&records);

    // Every scheduled notification was sent, except those a kill cut off
    // between marking it in flight and Twilio taking it (given up, never
    // sent twice): at most a few per kill that landed mid-send.
    let scheduled = scheduled(&lines);
    let by_uid: HashMap<String, usize> = (0..kills * per_round)
        .map(|i| {
            (
                format!("u{i}"),
                counts.get(&number(i)).copied().unwrap_or(0),
            )
        })
        .collect();
    let unsent: Vec<&String> = scheduled.iter().filter(|uid| by_uid[*uid] == 0).collect();
    eprintln!(
        "{} scheduled, {} sent, {} cut off mid-send",
        scheduled.len(),
        twilio.total(),
        unsent.len()
    );
    assert!(
        scheduled.len() >= kills,
        "the run did real work: {}",
        scheduled.len()
    );
    assert!(
        unsent.len() <= kills / 4,
        "too many notifications lost to kills: {unsent:?}"
    );
}

#[test]
#[cfg_attr(
    not(postgres_found),
    ignore = "PostgreSQL not installed (apt-get install postgresql)"
)]
fn three_hosts_on_one_postgres_send_ten_thousand_due_notifications_exactly_once() {
    let total = env_or("SMS_MULTI_NOTIFICATIONS", 10_000) as usize;
    let cluster = common::pg::Cluster::start();
    let db = cluster.create("shared");
    let twilio = FakeTwilio::start(Duration::ZERO, 0);

    let mut first = Host::start(&db, &twilio.url, true);
    first.send(&(settings(20) + ALICE));
    first.wait_for(Duration::from_secs(30), |l| {
        l["call"] == "validate-settings"
    });
    let mut hosts = vec![
        first,
        Host::start(&db, &twilio.url, true),
        Host::start(&db, &twilio.url, true),
    ];
    let started = std::time::Instant::now();
    for (p, host) in hosts.iter_mut().enumerate() {
        let events: String = (p..total).step_by(3).map(notification).collect();
        host.send(&events);
        host.close();
    }
    let outputs: Vec<Vec<Value>> = hosts
        .into_iter()
        .map(|h| h.wait(Duration::from_secs(600)))
        .collect();
    eprintln!("{total} notifications in {:?}", started.elapsed());

    let counts = twilio.counts();
    assert_eq!(twilio.total(), total, "every SMS once");
    assert!(counts.values().all(|n| *n == 1));
    assert_eq!(counts.len(), total);
    let fired: Vec<usize> = outputs
        .iter()
        .map(|lines| lines.iter().filter(|l| is("on-timer", "sent")(l)).count())
        .collect();
    eprintln!("sent per host: {fired:?}");
    assert_eq!(fired.iter().sum::<usize>(), total);
    for n in &fired {
        assert!(*n >= total / 10, "the work is shared: {fired:?}");
    }
}

#[test]
#[cfg_attr(
    not(postgres_found),
    ignore = "PostgreSQL not installed (apt-get install postgresql)"
)]
fn hosts_on_postgres_killed_mid_run_never_send_twice_and_leave_nothing_due() {
    let kills = env_or("SMS_PG_KILLS", 12) as usize;
    let mut moments = Moments(env_or("SMS_KILL_SEED", 20_261_128).max(1));
    let cluster = common::pg::Cluster::start();
    let db = cluster.create("killed");
    let twilio = FakeTwilio::start(Duration::from_millis(40), 0);
    // Short leases, so the survivor takes a dead host's timers within a
    // second (a lease shorter than a call only gives more up as cut off).
    let flags = ["--lease-seconds", "1"];
    let mut survivor = Host::start_with(&db, &twilio.url, true, &flags);
    survivor.send(&(settings(1) + ALICE));
    survivor.wait_for(Duration::from_secs(30), |l| {
        l["call"] == "validate-settings"
    });

    let mut lines = Vec::new();
    let per_round = 8;
    for round in 0..kills {
        let mut victim = Host::start_with(&db, &twilio.url, false, &flags);
        let ids = round * per_round..(round + 1) * per_round;
        let (mine, theirs): (Vec<usize>, Vec<usize>) = ids.partition(|i| i % 2 == 0);
        victim.send(&mine.into_iter().map(notification).collect::<String>());
        survivor.send(&theirs.into_iter().map(notification).collect::<String>());
        std::thread::sleep(Duration::from_millis(300 + moments.next_ms(1200)));
        lines.extend(victim.kill());
    }
    lines.extend(survivor.wait(Duration::from_secs(180)));

    let counts = twilio.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "texted more than once: {twice:?}");
    let (timers, records) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let (client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let timers: i64 = client
            .query_one("SELECT count(*) FROM timers", &[])
            .await
            .unwrap()
            .get(0);
        let records: Vec<(String, Vec<u8>)> = client
            .query(
                "SELECT key, value FROM state WHERE key LIKE 'conversation/%'",
                &[],
            )
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        (timers, records)
    });
    assert_eq!(timers, 0, "no timer left");
    nothing_due(&records);
    let scheduled = scheduled(&lines);
    let unsent = unsent(&scheduled, &counts);
    eprintln!(
        "{kills} kills on PostgreSQL: {} scheduled, {} sent, {} cut off mid-send",
        scheduled.len(),
        twilio.total(),
        unsent.len()
    );
    assert!(
        scheduled.len() >= kills * per_round / 2,
        "the run did real work"
    );
    assert!(
        unsent.len() <= kills * 4,
        "too many lost to kills: {unsent:?}"
    );
}
