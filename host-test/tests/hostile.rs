//! Hostile clients, bounded (issue 29's acceptance run, short enough for
//! every `cargo test`): hundreds of connections that send half their
//! headers and stall, that post a large body without a token, that declare
//! a body of 100 GB, and hundreds of tenant names nobody saved. Meanwhile
//! the process's memory grows by less than 40 MiB and `/healthz` answers
//! at once; the stalled connections are closed by the server; SIGTERM with
//! a half-sent request open exits within the shutdown deadline.

mod common;

use common::serve::{Serve, TOKEN};
use common::twilio::FakeTwilio;
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Resident memory of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

fn open(addr: &str, head: &str, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    stream
}

/// The median time `/healthz` takes, over `n` probes.
fn healthz(s: &Serve, n: usize) -> Duration {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let start = Instant::now();
            let (status, _) = s.call("GET", "/healthz", None, "");
            assert_eq!(status, 200);
            start.elapsed()
        })
        .collect();
    times.sort();
    times[n / 2]
}

#[test]
fn hostile_clients_cannot_exhaust_or_hang_the_service() {
    let twilio = FakeTwilio::start(Duration::ZERO, 0);
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("sms.db").display());
    let s = Serve::start(
        &db,
        &twilio.url,
        &[
            "--header-timeout",
            "3",
            "--body-timeout",
            "20",
            "--shutdown-seconds",
            "2",
            "--max-sandboxes",
            "64",
        ],
    );
    let settings = json!({ "twilioAccountSid": "AC0123456789abcdef0123456789abcdef",
        "twilioAuthToken": "t0k", "fromMobileNo": "+15005550006" });
    assert_eq!(
        s.api("PUT", "/v1/tenants/acme/settings", &settings.to_string())
            .0,
        200
    );
    // Warm: the first calls make what every later one reuses.
    for _ in 0..3 {
        healthz(&s, 3);
        s.api("POST", "/v1/tenants/acme/settings/validate", "{}");
    }
    let before = rss(s.pid());

    let mut held = Vec::new();
    // Half the headers, then silence.
    for _ in 0..100 {
        held.push(open(
            &s.addr,
            "POST /v1/tenants/acme/messages HTTP/1.1\r\nHost: x\r\n",
            b"",
        ));
    }
    // No token, a body of nearly 1 MiB: refused from the headers, never read.
    let body = vec![b'a'; 512 << 10];
    for _ in 0..100 {
        let head = format!(
            "POST /v1/tenants/acme/messages HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            (1 << 20) - 2
        );
        held.push(open(&s.addr, &head, &body));
    }
    // A declared body of 100 GB: refused at once.
    for _ in 0..100 {
        let head = "POST /v1/tenants/acme/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nContent-Length: 99999999999\r\n\r\n";
        held.push(open(&s.addr, head, b"{"));
    }
    // Three hundred tenant names nobody saved: no sandbox kept for any.
    for n in 0..300 {
        let (status, _) = s.api(
            "POST",
            &format!("/v1/tenants/ghost{n}/settings/validate"),
            "{}",
        );
        assert_eq!(status, 200);
    }
    let median = healthz(&s, 9);
    assert!(
        median < Duration::from_millis(50),
        "/healthz took {median:?} (median of 9)"
    );
    let grown = rss(s.pid()).saturating_sub(before);
    assert!(
        grown < 40 << 20,
        "resident memory grew by {} MiB",
        grown >> 20
    );

    // The refused ones were answered and closed; the stalled ones are closed
    // by the server once their header deadline passes.
    let started = Instant::now();
    let mut answers = std::collections::HashMap::new();
    for mut stream in held {
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut got = Vec::new();
        let _ = stream.read_to_end(&mut got);
        let text = String::from_utf8_lossy(&got);
        let status = text.split(' ').nth(1).unwrap_or("closed").to_owned();
        *answers.entry(status).or_insert(0) += 1;
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "every connection ended"
    );
    assert_eq!(answers.get("401"), Some(&100), "{answers:?}");
    assert_eq!(answers.get("413"), Some(&100), "{answers:?}");
    assert_eq!(
        answers.values().sum::<usize>(),
        300,
        "and the stalled ones were closed: {answers:?}"
    );

    // SIGTERM while a client holds a half-sent request: out within the
    // deadline (2 s here), not held open by it.
    let head = format!(
        "PUT /v1/tenants/acme/users/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n"
    );
    let _half = open(&s.addr, &head, b"{\"name\":");
    std::thread::sleep(Duration::from_millis(200));
    let stopping = Instant::now();
    let status = s.stop();
    assert!(status.success(), "{status}");
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "stopped after {:?}",
        stopping.elapsed()
    );
}
