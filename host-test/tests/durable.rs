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
use sms_notification::state::conversation::Conversation;
use sms_notification::state::record::Record;
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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

const ALICE: &str = "{\"user\": {\"uid\": \"alice\", \"name\": \"Alice\"}}\n";

fn is(call: &str, outcome: &str) -> impl Fn(&Value) -> bool {
    move |line: &Value| line["call"] == call && line["outcome"].get(outcome).is_some()
}

/// When each of a killed host's notifications was owed: the later of the
/// kill and its due time, by recipient.
fn owe(owed: &mut std::collections::BTreeMap<String, u64>, said: &[Value], killed_at: u64) {
    for line in said.iter().filter(|l| l["call"] == "on-message") {
        let p = &line["outcome"]["scheduled"];
        if let (Some(uid), Some(due)) = (p["recipient"].as_str(), p["due_at"].as_u64()) {
            owed.insert(uid.to_owned(), killed_at.max(due));
        }
    }
}

/// How long after it was owed ([`owe`]) the survivor sent each of those
/// notifications, shortest first (a figure for BENCHMARKS.md, not a
/// bound: a loaded machine is slower).
fn takeover(survivors: &[Value], owed: &std::collections::BTreeMap<String, u64>) -> Vec<u64> {
    let mut after: Vec<u64> = survivors
        .iter()
        .filter(|l| is("on-timer", "sent")(l))
        .filter_map(|l| {
            let uid = l["outcome"]["sent"]["recipient"].as_str()?;
            Some(l["at"].as_u64()?.saturating_sub(*owed.get(uid)?))
        })
        .collect();
    after.sort_unstable();
    after
}

/// Recipients whose message got a `scheduled` answer.
fn scheduled(lines: &[Value]) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|l| l["call"] == "on-message")
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

/// Recipients whose attempt a host found cut off mid-send (and gave up:
/// Twilio may have taken it, so it is never sent twice).
fn cut_off(lines: &[Value]) -> BTreeSet<String> {
    lines
        .iter()
        .filter(|l| l["call"] == "on-timer")
        .filter_map(|l| l["outcome"].get("failed"))
        .filter(|f| {
            f["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("cut off mid-send"))
        })
        .filter_map(|f| f["recipient"].as_str())
        .map(str::to_owned)
        .collect()
}

/// Accounts for every notification in `who`: each reached Twilio exactly
/// once, or was cut off mid-send by a kill and reported so by the host
/// that found it, or (`reserved`: recipients whose history in the store
/// still holds the attempt's reservation, made in the commit that marked
/// it in flight) given up by a host killed before it could print so.
/// Panics on one sent twice or lost without a trace; returns those cut off
/// before Twilio took them.
fn account(
    who: &BTreeSet<String>,
    lines: &[Value],
    counts: &HashMap<String, usize>,
    reserved: &BTreeSet<String>,
) -> Vec<String> {
    let mut cut = cut_off(lines);
    cut.extend(reserved.iter().cloned());
    let mut never = Vec::new();
    for uid in who {
        let i: usize = uid[1..].parse().unwrap();
        match counts.get(&number(i)).copied().unwrap_or(0) {
            1 => {}
            0 if cut.contains(uid) => never.push(uid.clone()),
            0 => {
                let said: Vec<&Value> = lines
                    .iter()
                    .filter(|l| l.to_string().contains(&format!("\"{uid}\"")))
                    .collect();
                panic!(
                    "{uid}'s notification was scheduled, never sent, and left no trace: {said:#?}"
                )
            }
            n => panic!("{uid} texted {n} times"),
        }
    }
    never
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

    // Nothing pending is left without a timer: no notification timer
    // remains, and no conversation still has a notification due; each
    // record keeps its expiry timer.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(
        count("SELECT count(*) FROM timers WHERE key NOT LIKE 'expire/%'"),
        0
    );
    assert_eq!(
        count("SELECT count(*) FROM timers WHERE key LIKE 'expire/%'"),
        count("SELECT count(*) FROM state WHERE key LIKE 'conversation/%'"),
        "each record has its expiry timer"
    );
    let mut records = conn
        .prepare("SELECT key, value FROM state WHERE key LIKE 'conversation/%'")
        .unwrap();
    let records: Vec<(String, Vec<u8>)> = records
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    nothing_due(&records);

    // Every scheduled notification was sent once, except those a kill cut
    // off between marking it in flight and Twilio taking it, each reported
    // by the host that found it (given up, never sent twice): a window of
    // a millisecond or so, so rarely more than one per kill.
    let scheduled = scheduled(&lines);
    // A host killed just after giving a notification up (its commit made,
    // its line not yet printed) leaves the attempt's reservation in the
    // recipient's history: the give-up is in the store if not in a line.
    let reserved: BTreeSet<String> = conn
        .prepare("SELECT key FROM state WHERE key LIKE 'sent-to/%'")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|k| k.unwrap()["sent-to/".len()..].to_owned())
        .collect();
    let never = account(&scheduled, &lines, &counts, &reserved);
    eprintln!(
        "{} scheduled, {} sent, {} cut off before Twilio took them",
        scheduled.len(),
        twilio.total(),
        never.len()
    );
    assert!(
        scheduled.len() >= kills,
        "the run did real work: {}",
        scheduled.len()
    );
    assert!(
        never.len() <= kills / 4,
        "too many notifications lost to kills: {never:?}"
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
        // Shared, not balanced: a loaded machine may starve one host a
        // while, so only that each took part is asserted.
        assert!(*n >= total / 100, "the work is shared: {fired:?}");
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
    // The default lease (3 s, renewed while calls run): the survivor takes
    // a dead host's timers over within it.
    let flags = [];
    let mut survivor = Host::start_with(&db, &twilio.url, true, &flags);
    survivor.send(&(settings(1) + ALICE));
    survivor.wait_for(Duration::from_secs(30), |l| {
        l["call"] == "validate-settings"
    });

    let mut lines = Vec::new();
    let mut victims = BTreeSet::new();
    // A victim's notification: when the survivor could first owe it (the
    // later of the kill and its due time).
    let mut owed = std::collections::BTreeMap::new();
    let per_round = 8;
    for round in 0..kills {
        let mut victim = Host::start_with(&db, &twilio.url, false, &flags);
        let ids = round * per_round..(round + 1) * per_round;
        let (mine, theirs): (Vec<usize>, Vec<usize>) = ids.partition(|i| i % 2 == 0);
        victim.send(&mine.into_iter().map(notification).collect::<String>());
        survivor.send(&theirs.into_iter().map(notification).collect::<String>());
        // The random moment counts from the victim's first answer (a victim
        // still starting would die having done nothing), and spans its
        // notifications' due time (1 s): some kills find them waiting, most
        // find them being sent.
        victim.wait_for(Duration::from_secs(60), is("on-message", "scheduled"));
        std::thread::sleep(Duration::from_millis(500 + moments.next_ms(1500)));
        let killed_at = now_ms();
        let said = victim.kill();
        owe(&mut owed, &said, killed_at);
        victims.extend(scheduled(&said));
        lines.extend(said);
    }
    let survivors = survivor.wait(Duration::from_secs(180));
    let takeover = takeover(&survivors, &owed);
    if let (Some(median), Some(last)) = (takeover.get(takeover.len() / 2), takeover.last()) {
        eprintln!(
            "takeover: {} victims' notifications sent by the survivor, {median} ms after the kill or their due time (median), {last} ms at the latest",
            takeover.len()
        );
    }
    let theirs = scheduled(&survivors);
    lines.extend(survivors);

    let counts = twilio.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "texted more than once: {twice:?}");
    let (timers, records) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let (client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let timers: i64 = client
            .query_one(
                "SELECT count(*) FROM timers WHERE key NOT LIKE 'expire/%'",
                &[],
            )
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
    assert_eq!(timers, 0, "no notification timer left");
    nothing_due(&records);
    // The victims' notifications, counted apart from the survivor's: each
    // was sent once (by its victim before the kill, or by whichever host
    // took its timer over), or reported cut off mid-send.
    let none = BTreeSet::new();
    let never_victims = account(&victims, &lines, &counts, &none);
    let never_survivor = account(&theirs, &lines, &counts, &none);
    eprintln!(
        "{kills} kills on PostgreSQL: {} scheduled by victims, {} by the survivor, {} sent, {} cut off before Twilio took them",
        victims.len(),
        theirs.len(),
        twilio.total(),
        never_victims.len() + never_survivor.len()
    );
    assert!(victims.len() >= kills, "every victim did real work");
    assert_eq!(theirs.len(), kills * per_round / 2, "the survivor's own");
    // Cut off before Twilio took it: a kill between the in-flight mark's
    // commit and the request reaching Twilio, a window of milliseconds.
    // A host that lingers there (a queue, a slow client) loses one SMS per
    // notification in flight at each kill and fails this.
    assert!(
        never_victims.len() + never_survivor.len() <= kills / 4,
        "too many lost to kills: {never_victims:?} {never_survivor:?}"
    );
}

/// One kill of a busy host: two hosts on one PostgreSQL share
/// `SMS_KILL_NOTIFICATIONS` (200; `1000` for the figure in BENCHMARKS.md)
/// notifications over 20 tenants, and one is SIGKILLed while it sends.
/// None is sent twice, none is left, and the survivor prints how soon
/// after the kill (or its due time, if later) it sent each of the dead
/// host's: a figure, not a bound.
#[test]
#[cfg_attr(
    not(postgres_found),
    ignore = "PostgreSQL not installed (apt-get install postgresql)"
)]
fn a_busy_host_killed_on_postgres_leaves_its_notifications_to_the_other_once() {
    const TENANTS: usize = 20;
    let n = env_or("SMS_KILL_NOTIFICATIONS", 200) as usize;
    let cluster = common::pg::Cluster::start();
    let db = cluster.create("busy");
    let twilio = FakeTwilio::start(Duration::from_millis(40), 0);
    let mut survivor = Host::start_with(&db, &twilio.url, true, &[]);
    let mut setup = String::new();
    for t in 0..TENANTS {
        setup += &format!("{{\"tenant\": \"t{t}\"}}\n");
        setup += &(settings(1) + ALICE);
    }
    survivor.send(&setup);
    let started = std::time::Instant::now();
    while survivor
        .lines()
        .iter()
        .filter(|l| l["call"] == "validate-settings")
        .count()
        < TENANTS
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "settings saved"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Each host's half, by tenant.
    let half = |parity: usize| {
        let mut stream = String::new();
        for t in 0..TENANTS {
            stream += &format!("{{\"tenant\": \"t{t}\"}}\n");
            for i in (0..n).filter(|i| i % TENANTS == t && i % 2 == parity) {
                stream += &notification(i);
            }
        }
        stream
    };
    let mut victim = Host::start_with(&db, &twilio.url, false, &[]);
    victim.send(&half(0));
    survivor.send(&half(1));
    // Killed while it sends: its first notifications are due 1 s after
    // their messages, its last ones later.
    victim.wait_for(Duration::from_secs(60), is("on-timer", "sent"));
    std::thread::sleep(Duration::from_millis(300));
    let killed_at = now_ms();
    let said = victim.kill();
    let mut owed = std::collections::BTreeMap::new();
    owe(&mut owed, &said, killed_at);
    let victims = scheduled(&said);
    let survivors = survivor.wait(Duration::from_secs(600));
    let takeover = takeover(&survivors, &owed);
    let sent_by_victim = said.iter().filter(|l| is("on-timer", "sent")(l)).count();
    eprintln!(
        "one kill, {n} notifications over {TENANTS} tenants: the victim scheduled {} and sent {sent_by_victim} SMS (either host's) before the kill; \
         the survivor sent {} of the victim's, the first {:?} ms and the last {:?} ms after the kill (or their due time, if later)",
        victims.len(),
        takeover.len(),
        takeover.first(),
        takeover.last(),
    );
    let counts = twilio.counts();
    let twice: Vec<_> = counts.iter().filter(|(_, k)| **k > 1).collect();
    assert!(twice.is_empty(), "texted more than once: {twice:?}");
    let theirs = scheduled(&survivors);
    let mut lines = said;
    lines.extend(survivors);
    let none = BTreeSet::new();
    let never = account(&victims, &lines, &counts, &none).len()
        + account(&theirs, &lines, &counts, &none).len();
    // Cut off before Twilio took it (given up: it may have been sent):
    // only a send between its in-flight mark's commit and Twilio taking
    // the request, a window of milliseconds, of which the victim has at
    // most one per tenant open at the kill.
    assert!(never <= TENANTS / 4, "{never} lost to one kill");
    assert_eq!(
        victims.len() + theirs.len(),
        n,
        "every notification scheduled"
    );
    assert!(
        !takeover.is_empty() && sent_by_victim > 0,
        "the kill came mid-run: some sent before it, some taken over"
    );
}

/// Leases are short and renewed: two hosts on one PostgreSQL with 1 s
/// leases, Twilio answering each SMS after 3 s. Every call outlives its
/// lease's first term, yet neither host takes over the other's claims
/// while their calls run: each timer fires once, every notification is
/// sent once, none is reported cut off.
#[test]
#[cfg_attr(
    not(postgres_found),
    ignore = "PostgreSQL not installed (apt-get install postgresql)"
)]
fn a_call_longer_than_its_lease_keeps_it_while_another_host_runs() {
    let cluster = common::pg::Cluster::start();
    let db = cluster.create("renewed");
    let twilio = FakeTwilio::start(Duration::from_secs(3), 0);
    let flags = ["--lease-seconds", "1"];
    let mut a = Host::start_with(&db, &twilio.url, false, &flags);
    let b = Host::start_with(&db, &twilio.url, false, &flags);
    a.send(&(settings(1) + ALICE));
    a.wait_for(Duration::from_secs(30), |l| {
        l["call"] == "validate-settings"
    });
    let total = 6;
    a.send(&(0..total).map(notification).collect::<String>());
    let recipients: BTreeSet<String> = (0..total).map(|i| format!("u{i}")).collect();
    let done = std::time::Instant::now() + Duration::from_secs(60);
    while twilio.total() < total && std::time::Instant::now() < done {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Long enough after the last answer for a taken-over claim to show.
    std::thread::sleep(Duration::from_secs(3));
    let mut lines = a.kill();
    lines.extend(b.kill());
    assert_eq!(cut_off(&lines), BTreeSet::new(), "no claim was taken over");
    // Each notification's timer fired once, on one host: a claim taken
    // over while its call ran would fire again on the other (there it
    // finds the notification in flight, or gone, and sends nothing).
    let mut fired: Vec<&str> = lines
        .iter()
        .filter(|l| l["call"] == "on-timer")
        .filter_map(|l| l["key"].as_str())
        .filter(|k| k.starts_with("deliver/"))
        .collect();
    fired.sort_unstable();
    assert_eq!(fired.len(), total, "fired once each: {fired:?}");
    let counts = twilio.counts();
    for i in 0..total {
        assert_eq!(counts.get(&number(i)), Some(&1), "u{i}: {counts:?}");
    }
    assert_eq!(scheduled(&lines), recipients);
}
