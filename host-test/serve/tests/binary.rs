//! The `sms-serve` binary on its own, as an operator deploys it: it needs
//! the component's `.wasm` named, and then serves. (Everything it serves is
//! tested through `host-test serve` in `host-test/tests/`.)

use std::io::{BufRead, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn serve(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sms-serve"));
    cmd.args(args)
        .env_remove("SMS_WASM")
        .env("SMS_OPERATOR_TOKEN", "operator-token-for-binary-tests")
        .env(
            "SMS_SETTINGS_KEY",
            "c2VydmUtdGVzdHMtc2V0dGluZ3Mta2V5LTMyLWJ5dGU=",
        );
    cmd
}

#[test]
fn without_a_component_it_says_which_flag_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("sms.db").display());
    let out = serve(&["--bind", "127.0.0.1:0", "--db", &db])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--wasm PATH (or SMS_WASM)"), "{said}");
}

#[test]
fn with_the_component_named_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("sms.db").display());
    let mut child = serve(&["--bind", "127.0.0.1:0", "--db", &db, "--fake-twilio"])
        .args(["--wasm", host_test::COMPONENT])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (found, addr) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            // The start-up event, as the text log writes it.
            if let Some((_, a)) = line.split_once("serving on http://") {
                let addr: String = a
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"')
                    .collect();
                let _ = found.send(addr);
            }
        }
    });
    let addr = addr
        .recv_timeout(Duration::from_secs(60))
        .expect("sms-serve started");
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"component\":\"0.4.0\""), "{answer}");
}
