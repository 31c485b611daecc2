//! The real client path: the component's request leaves through
//! `wasmtime-wasi-http`'s sender (the host forwards it to a server on
//! loopback standing in for Twilio), and what goes wrong on the way
//! decides whether it is tried again. Only a request that never left may
//! be: a connection refused or a TLS handshake that failed is retried; a
//! slow answer or a connection dropped after the request went out is never
//! sent twice. A 429's `Retry-After` is obeyed.

use host_test::TestRuntime;
use host_test::bindings::sms_notification::extension::types::{
    ConversationKind, Message, MessageFormat, Outcome,
};
use host_test::outbound::{Forward, Policy};
use host_test::storage::{Presence, User};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the stand-in does with each request, in turn (the last repeats).
#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// 201 with a SID.
    Created,
    /// 429 with `Retry-After: 120`.
    RateLimited,
    /// Reads the whole request, then waits past the 5 s first-byte timeout.
    Slow,
    /// Reads the whole request, then closes the connection.
    Drop,
    /// Answers the TLS handshake with plain bytes.
    NotTls,
}

struct StandIn {
    url: String,
    requests: Arc<AtomicUsize>,
}

/// A server on loopback answering with `script`, one behaviour per request.
async fn stand_in(scheme: &str, script: Vec<Behaviour>) -> StandIn {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let n = counted.load(Ordering::SeqCst);
            let behaviour = script[n.min(script.len() - 1)];
            let counted = counted.clone();
            tokio::spawn(async move {
                if matches!(behaviour, Behaviour::NotTls) {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.write_all(b"HTTP/1.1 400 Not TLS\r\n\r\n").await;
                    return;
                }
                // The whole request: headers, then Content-Length bytes.
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(read) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if read == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..read]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break;
                        }
                    }
                }
                let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                let answer = match behaviour {
                    Behaviour::Created => {
                        let body =
                            json!({ "sid": format!("SM{n:032x}"), "status": "queued" }).to_string();
                        format!(
                            "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    Behaviour::RateLimited => {
                        let body = r#"{"code":20429,"message":"Too Many Requests"}"#;
                        format!(
                            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 120\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                    Behaviour::Slow => {
                        tokio::time::sleep(Duration::from_secs(8)).await;
                        return;
                    }
                    Behaviour::Drop | Behaviour::NotTls => return,
                };
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    StandIn { url, requests }
}

/// A runtime whose requests go to `url`, with Alice and Bob and one
/// message due at 60 s.
async fn story(url: &str) -> TestRuntime {
    let policy = Policy::new(std::sync::Arc::new(Forward(url.parse().unwrap())));
    let mut rt = TestRuntime::with_policy(policy).unwrap();
    let t = rt.tenant("t");
    {
        let mut t = t.lock().unwrap();
        t.settings = Some(
            json!({
                "twilioAccountSid": "AC0123456789abcdef0123456789abcdef",
                "twilioAuthToken": "transport-token",
                "fromMobileNo": "+15005550006",
                "delaySeconds": 60,
            })
            .to_string(),
        );
        t.settings_revision = 1;
        for (uid, presence, number) in [
            ("alice", Presence::Online, None),
            ("bob", Presence::Offline, Some("+14155552671")),
        ] {
            let metadata = match number {
                Some(n) => json!({ "@private": { "contactNumber": n } }),
                None => json!({}),
            };
            t.users.insert(
                uid.into(),
                User {
                    uid: uid.into(),
                    name: uid.into(),
                    presence,
                    metadata: metadata.to_string(),
                },
            );
        }
    }
    let message = Message {
        id: "m1".into(),
        conversation: "alice_bob".into(),
        kind: ConversationKind::OneOnOne,
        format: MessageFormat::Text,
        sender: "alice".into(),
        receiver: "bob".into(),
        text: "hello".into(),
        sent_at: 0,
    };
    rt.on_message("t", &message).await.unwrap().unwrap();
    rt
}

/// The first outcome of each timer call over the next `ms`.
/// The notification timers' outcomes, moving the clock `ms` ahead (the
/// record's expiry timer, a day after the message, sends nothing).
async fn fire(rt: &mut TestRuntime, ms: u64) -> Vec<Outcome> {
    rt.advance(ms)
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.key.starts_with("deliver/"))
        .map(|f| f.result.unwrap().unwrap())
        .collect()
}

#[tokio::test]
async fn a_refused_connection_never_left_and_is_retried() {
    // A port nobody listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let mut rt = story(&closed).await;
    let outcomes = fire(&mut rt, 60_000).await;
    let [Outcome::Retrying(r)] = outcomes.as_slice() else {
        panic!("{outcomes:?}")
    };
    assert_eq!(r.error.status, 0);
    assert!(r.error.message.contains("refused"), "{}", r.error.message);
}

#[tokio::test]
async fn a_failed_tls_handshake_never_left_and_is_retried() {
    let s = stand_in("https", vec![Behaviour::NotTls]).await;
    let mut rt = story(&s.url).await;
    let outcomes = fire(&mut rt, 60_000).await;
    let [Outcome::Retrying(r)] = outcomes.as_slice() else {
        panic!("{outcomes:?}")
    };
    assert!(r.error.message.contains("TLS"), "{}", r.error.message);
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_sends() {
    let s = stand_in("http", vec![Behaviour::RateLimited, Behaviour::Created]).await;
    let mut rt = story(&s.url).await;
    let outcomes = fire(&mut rt, 60_000).await;
    let [Outcome::Retrying(r)] = outcomes.as_slice() else {
        panic!("{outcomes:?}")
    };
    assert_eq!(r.error.status, 429);
    assert!(
        r.due_at >= 60_000 + 120_000,
        "Retry-After obeyed: {}",
        r.due_at
    );
    let outcomes = fire(&mut rt, 3_600_000).await;
    assert!(
        matches!(outcomes.as_slice(), [Outcome::Sent(_)]),
        "{outcomes:?}"
    );
    assert_eq!(s.requests.load(Ordering::SeqCst), 2);
}

/// The first attempt meets `behaviour` after the request went out: it is
/// given up as maybe taken, and no second request ever follows.
async fn never_sent_twice(behaviour: Behaviour) {
    let s = stand_in("http", vec![behaviour, Behaviour::Created]).await;
    let mut rt = story(&s.url).await;
    let outcomes = fire(&mut rt, 60_000).await;
    let [Outcome::Failed(f)] = outcomes.as_slice() else {
        panic!("{outcomes:?}")
    };
    assert!(
        f.error.message.contains("may have taken"),
        "{}",
        f.error.message
    );
    let later = fire(&mut rt, 24 * 3_600_000).await;
    assert!(later.is_empty(), "{later:?}");
    assert_eq!(s.requests.load(Ordering::SeqCst), 1, "one request, ever");
}

#[tokio::test]
async fn a_slow_first_byte_is_never_sent_twice() {
    never_sent_twice(Behaviour::Slow).await;
}

#[tokio::test]
async fn a_connection_dropped_after_the_request_is_never_sent_twice() {
    never_sent_twice(Behaviour::Drop).await;
}
