//! A `host-test host` child process: events written to its stdin, its
//! output lines collected, killed with SIGKILL or left to finish.

use serde_json::Value;
use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Host {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<Vec<Value>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Host {
    /// Starts a host on `db`, sending SMS to `twilio`; with `until_idle`
    /// it exits once its stdin is closed and no timer is left.
    pub fn start(db: &str, twilio: &str, until_idle: bool) -> Self {
        Self::start_with(db, twilio, until_idle, &[])
    }

    /// [`Host::start`] with more flags.
    pub fn start_with(db: &str, twilio: &str, until_idle: bool, flags: &[&str]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-test"));
        cmd.args(["host", "--db", db, "--twilio-url", twilio])
            .args(flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // Every host of a test shares one settings key (PostgreSQL needs
            // it given; a SQLite host would otherwise make one beside its file).
            .env(
                "SMS_SETTINGS_KEY",
                "ZHVyYWJsZS10ZXN0cy1zZXR0aW5ncy1rZXktMzJieXQ=",
            );
        if until_idle {
            cmd.arg("--until-idle");
        }
        let mut child = cmd.spawn().expect("host-test starts");
        let stdout = child.stdout.take().unwrap();
        let out = Arc::new(Mutex::new(Vec::new()));
        let lines = out.clone();
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(value) = serde_json::from_str(&line) {
                    lines.lock().unwrap().push(value);
                }
            }
        });
        Self {
            stdin: child.stdin.take(),
            child,
            out,
            reader: Some(reader),
        }
    }

    /// Writes event lines (a write to a killed host is ignored).
    pub fn send(&mut self, lines: &str) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = stdin.write_all(lines.as_bytes());
            let _ = stdin.flush();
        }
    }

    /// Closes stdin: no more events.
    pub fn close(&mut self) {
        self.stdin = None;
    }

    /// The output lines so far.
    pub fn lines(&self) -> Vec<Value> {
        self.out.lock().unwrap().clone()
    }

    /// Waits until an output line satisfies `ok` (or panics after `limit`).
    pub fn wait_for(&self, limit: Duration, ok: impl Fn(&Value) -> bool) {
        let start = Instant::now();
        while !self.lines().iter().any(&ok) {
            assert!(
                start.elapsed() < limit,
                "no such line in {limit:?}: {:?}",
                self.lines()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: no chance to finish anything. A host that already exited
    /// fails the test: a kill test must kill a running host.
    pub fn kill(mut self) -> Vec<Value> {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!(
                "the host died before its kill ({status}): {:?}",
                self.lines()
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finish()
    }

    /// Waits for the host to exit by itself (panics after `limit`).
    pub fn wait(mut self, limit: Duration) -> Vec<Value> {
        self.close();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "host-test host exited with {status}");
                break;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("the host did not finish in {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.finish()
    }

    fn finish(&mut self) -> Vec<Value> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.lines()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
