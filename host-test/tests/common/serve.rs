//! A `host-test serve` child process and a plain HTTP/1.1 client for it.

use serde_json::Value;
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "operator-token-for-tests";
/// The webhook credentials tests set for their tenants (see
/// [`Serve::webhook_credentials`]).
pub const WEBHOOK: &str = "cometchat:hook-password-for-tests";

pub struct Serve {
    child: Child,
    pub addr: String,
    /// Everything it printed on stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl Serve {
    /// Starts `serve` on a free loopback port over `db`, sending SMS to
    /// `twilio`, with the test token and webhook credentials.
    pub fn start(db: &str, twilio: &str, flags: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_host-test"))
            .args(["serve", "--bind", "127.0.0.1:0", "--db", db])
            .args(["--twilio-url", twilio, "--log-format", "json"])
            .args(flags)
            .env("SMS_OPERATOR_TOKEN", TOKEN)
            .env(
                "SMS_SETTINGS_KEY",
                "c2VydmUtdGVzdHMtc2V0dGluZ3Mta2V5LTMyLWJ5dGU=",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("host-test starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (found, addr) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // The start-up event, in whatever form the log writes it.
                if let Some((_, a)) = line.split_once("serving on http://") {
                    let addr: String = a
                        .chars()
                        .take_while(|c| {
                            c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']')
                        })
                        .collect();
                    let _ = found.send(addr);
                }
                let mut log = lines.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = addr
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve did not start: {}", log.lock().unwrap()));
        Self { child, addr, log }
    }

    /// One request; the status and the body (JSON when it is).
    pub fn call(&self, method: &str, path: &str, auth: Option<&str>, body: &str) -> (u16, Value) {
        request(&self.addr, method, path, &auth_header(auth), body)
    }

    /// With the operator token.
    pub fn api(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        self.call(method, path, Some(&format!("Bearer {TOKEN}")), body)
    }

    /// Sets `tenant`'s webhook credentials to [`WEBHOOK`].
    pub fn webhook_credentials(&self, tenant: &str) {
        let (user, password) = WEBHOOK.split_once(':').unwrap();
        let body = serde_json::json!({ "user": user, "password": password }).to_string();
        let (status, answer) = self.api("PUT", &format!("/v1/tenants/{tenant}/webhook"), &body);
        assert_eq!(status, 200, "{answer}");
    }

    /// The process id (for its memory in `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then its exit status.
    pub fn stop(mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn auth_header(auth: Option<&str>) -> String {
    auth.map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default()
}

/// Basic auth as CometChat sends it.
pub fn basic(credentials: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// A request over a fresh connection (`Connection: close`).
pub fn request(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, Value) {
    raw(addr, method, path, headers, body.as_bytes())
}

pub fn raw(addr: &str, method: &str, path: &str, headers: &str, body: &[u8]) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // A server may answer (413) before reading a large body: a failed
    // write is then not the test's failure.
    let _ = stream.write_all(body);
    // Read to the end, but for an event stream (it never ends): its head.
    let mut response = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n @ 1..) = stream.read(&mut buf) {
        response.extend_from_slice(&buf[..n]);
        let head = String::from_utf8_lossy(&response).to_ascii_lowercase();
        if head.contains("\r\n\r\n") && head.contains("content-type: text/event-stream") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let json = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
    (status, json)
}

/// Waits until `done` holds, for at most `limit`.
pub fn wait_for(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// One number of `/metrics` (0 when the series is absent).
pub fn metric(s: &Serve, series: &str) -> u64 {
    let (_, text) = s.call("GET", "/metrics", None, "");
    text.as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// The series of notification timers (pending, retries, waits).
pub const DELIVER_TIMERS: &str = "sms_timers_by_kind{kind=\"deliver\"}";

/// Waits until no notification timer is left in the store: every
/// notification went out, was skipped or ended. Nothing can be sent after
/// that (the records' expiry timers stay: they send nothing).
pub fn settled(s: &Serve) {
    assert!(
        wait_for(Duration::from_secs(30), || metric(s, DELIVER_TIMERS) == 0),
        "notification timers left: {}",
        metric(s, DELIVER_TIMERS)
    );
}
