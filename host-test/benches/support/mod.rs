//! What the benchmarks share: the tenant's settings, the native core on an
//! in-memory host, and the loopback webhook baseline (the same core behind
//! plain HTTP), which `events` and `serve` both measure against.
#![allow(dead_code)]

use host_test::TestRuntime;
use host_test::bindings::sms_notification::extension::types as wit;
use sms_notification::model;
use sms_notification::shell::native::NativeHost;
use std::cell::RefCell;
use std::rc::Rc;

pub fn settings() -> String {
    r#"{"twilioAccountSid":"AC0123456789abcdef0123456789abcdef","twilioAuthToken":"bench-token",
        "fromMobileNo":"+15005550006","delaySeconds":60,"cooldownMinutes":0,
        "conversationSmsPerDay":100,"recipientSmsPerDay":1000,"websiteURL":"https://chat.example.com"}"#
        .into()
}

pub const BOB_METADATA: &str = r#"{"@private":{"contactNumber":"+14155552671"}}"#;

pub fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub fn native() -> NativeHost {
    let mut m = NativeHost {
        settings: Some(settings()),
        ..NativeHost::default()
    };
    for (uid, presence, metadata) in [
        ("alice", model::Presence::Online, "{}"),
        ("bob", model::Presence::Offline, BOB_METADATA),
    ] {
        m.users.insert(
            uid.into(),
            model::User {
                uid: uid.into(),
                name: uid.into(),
                presence,
                metadata: metadata.into(),
            },
        );
    }
    m
}

/// A minimal webhook service on loopback: each event is a JSON POST, run
/// through the same core on an in-memory host, answered with the outcome.
pub mod webhook {
    use super::*;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Incoming;
    use wasmtime_wasi_http::io::TokioIo;

    pub struct Client {
        sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    }

    /// The baseline with nothing durable: its state in memory only.
    pub fn serve() -> std::net::SocketAddr {
        serve_on(None)
    }

    /// The baseline with every event's changes durable before it answers:
    /// written to SQLite (WAL, `synchronous=FULL`, as `serve`'s store) by
    /// one writer thread that commits whatever events wait in one
    /// transaction (group commit: one fsync for them all).
    pub fn serve_durable(db: &std::path::Path) -> std::net::SocketAddr {
        serve_on(Some(writer(db)))
    }

    type Batch = (Vec<model::Change>, tokio::sync::oneshot::Sender<()>);

    fn writer(db: &std::path::Path) -> std::sync::mpsc::Sender<Batch> {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
             CREATE TABLE state (key TEXT PRIMARY KEY, value BLOB NOT NULL);
             CREATE TABLE timers (key TEXT PRIMARY KEY, due_at INTEGER NOT NULL);",
        )
        .unwrap();
        let (send, receive) = std::sync::mpsc::channel::<Batch>();
        std::thread::spawn(move || {
            let mut conn = conn;
            while let Ok(first) = receive.recv() {
                let mut waiting = vec![first];
                waiting.extend(receive.try_iter());
                let tx = conn.transaction().unwrap();
                for (changes, _) in &waiting {
                    for change in changes {
                        match change {
                            model::Change::Put { key, value } => tx.execute(
                                "INSERT INTO state (key, value) VALUES (?1, ?2)
                                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                rusqlite::params![key, value],
                            ),
                            model::Change::Delete { key } => {
                                tx.execute("DELETE FROM state WHERE key = ?1", [key])
                            }
                            model::Change::SetTimer { key, due_at } => tx.execute(
                                "INSERT INTO timers (key, due_at) VALUES (?1, ?2)
                                 ON CONFLICT (key) DO UPDATE SET due_at = excluded.due_at",
                                rusqlite::params![key, *due_at as i64],
                            ),
                            model::Change::CancelTimer { key } => {
                                tx.execute("DELETE FROM timers WHERE key = ?1", [key])
                            }
                        }
                        .unwrap();
                    }
                }
                tx.commit().unwrap();
                for (_, done) in waiting {
                    let _ = done.send(());
                }
            }
        });
        send
    }

    fn serve_on(durable: Option<std::sync::mpsc::Sender<Batch>>) -> std::net::SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            // The in-memory host is not `Send`: one thread, local tasks.
            let rt = tokio();
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let mut host = native();
                if durable.is_some() {
                    host.journal = Some(Vec::new());
                }
                let host = Rc::new(RefCell::new(host));
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let (host, durable) = (host.clone(), durable.clone());
                    tokio::task::spawn_local(async move {
                        let service =
                            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                                let (host, durable) = (host.clone(), durable.clone());
                                async move {
                                    let body = req.into_body().collect().await?.to_bytes();
                                    let event: serde_json::Value =
                                        serde_json::from_slice(&body).unwrap();
                                    let answer = handle(&mut host.borrow_mut(), &event);
                                    if let Some(writer) = durable {
                                        let changes = host
                                            .borrow_mut()
                                            .journal
                                            .as_mut()
                                            .map(std::mem::take)
                                            .unwrap_or_default();
                                        let (done, stored) = tokio::sync::oneshot::channel();
                                        writer.send((changes, done)).unwrap();
                                        stored.await.unwrap();
                                    }
                                    Ok::<_, hyper::Error>(hyper::Response::new(Full::new(
                                        Bytes::from(answer),
                                    )))
                                }
                            });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        addr
    }

    fn handle(m: &mut NativeHost, event: &serde_json::Value) -> String {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        let outcome = if let Some(e) = event.get("message") {
            m.now = e["sent_at"].as_u64().unwrap_or(0);
            m.on_message(&model::Message {
                id: text(&e["id"]),
                conversation: text(&e["conversation"]),
                kind: model::ConversationKind::OneOnOne,
                format: model::Format::Text,
                sender: text(&e["sender"]),
                receiver: text(&e["receiver"]),
                text: text(&e["text"]),
                sent_at: m.now,
            })
        } else {
            let e = &event["read"];
            m.on_read(&model::Receipt {
                conversation: text(&e["conversation"]),
                reader: text(&e["reader"]),
                message: text(&e["message"]),
                read_at: 0,
            })
        };
        format!("{{\"outcome\":{:?}}}", format!("{outcome:?}"))
    }

    pub async fn connect(addr: std::net::SocketAddr) -> Client {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        Client { sender }
    }

    impl Client {
        pub async fn post(&mut self, event: serde_json::Value) {
            self.post_to("/events", None, event).await;
        }

        /// Posts `event` to `path`, with an `Authorization` header if given.
        pub async fn post_to(&mut self, path: &str, auth: Option<&str>, event: serde_json::Value) {
            self.send(hyper::Method::POST, path, auth, event.to_string())
                .await;
        }

        pub async fn put_to(&mut self, path: &str, auth: Option<&str>, body: String) {
            self.send(hyper::Method::PUT, path, auth, body).await;
        }

        async fn send(
            &mut self,
            method: hyper::Method,
            path: &str,
            auth: Option<&str>,
            body: String,
        ) {
            let mut request = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header("content-type", "application/json");
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let request = request.body(Full::new(Bytes::from(body))).unwrap();
            // The connection is free once it has read the last answer.
            self.sender.ready().await.unwrap();
            let response = self.sender.send_request(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert!(status.is_success(), "{path}: {status} {body:?}");
        }
    }

    pub fn message_event(i: u64, at: u64) -> serde_json::Value {
        serde_json::json!({ "message": {
            "id": format!("m{i}"), "conversation": format!("c{i}"), "sender": "alice",
            "receiver": "bob", "text": "Are we still on for dinner at 8?", "sent_at": at,
        }})
    }

    pub fn read_event(i: u64) -> serde_json::Value {
        serde_json::json!({ "read": { "conversation": format!("c{i}"), "reader": "bob", "message": format!("m{i}") } })
    }
}

/// The tenant `name` on a runtime through the component: the settings,
/// Alice online and Bob offline with a number.
pub fn setup_tenant(rt: &mut TestRuntime, name: &str) {
    let t = rt.tenant(name);
    let mut t = t.lock().unwrap();
    t.save_settings(settings());
    for (uid, presence, metadata) in [
        ("alice", host_test::storage::Presence::Online, "{}"),
        ("bob", host_test::storage::Presence::Offline, BOB_METADATA),
    ] {
        t.users.insert(
            uid.into(),
            host_test::storage::User {
                uid: uid.into(),
                name: uid.into(),
                presence,
                metadata: metadata.into(),
            },
        );
    }
}

/// Message `i` from Alice to Bob, in conversation `c{i}`, sent at `at`.
pub fn wit_message(i: u64, at: u64) -> wit::Message {
    wit::Message {
        id: format!("m{i}"),
        conversation: format!("c{i}"),
        kind: wit::ConversationKind::OneOnOne,
        format: wit::MessageFormat::Text,
        sender: "alice".into(),
        receiver: "bob".into(),
        text: "Are we still on for dinner at 8?".into(),
        sent_at: at,
    }
}

/// Bob's receipt for message `i`.
pub fn wit_receipt(i: u64) -> wit::Receipt {
    wit::Receipt {
        conversation: format!("c{i}"),
        reader: "bob".into(),
        message: format!("m{i}"),
        read_at: 0,
    }
}

/// `serve` in this process, as the service benchmarks run it: a sealed
/// SQLite store in `dir`, the operator token [`service::AUTH`], the
/// defaults of its command line but `twilio` and `max_sandboxes`.
pub mod service {
    use host_test::serve::{self, Options, TwilioTarget};
    use host_test::storage::{self, Storage};
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    pub const TOKEN: &str = "bench-operator-token";
    pub const AUTH: &str = "Bearer bench-operator-token";

    pub struct Service {
        pub addr: SocketAddr,
        pub store: Arc<dyn Storage>,
        stop: tokio::sync::oneshot::Sender<()>,
        server: tokio::task::JoinHandle<wasmtime::Result<()>>,
    }

    pub async fn start(
        dir: &std::path::Path,
        twilio: TwilioTarget,
        max_sandboxes: usize,
    ) -> Service {
        let url = format!("sqlite:{}", dir.join("bench.db").display());
        let key = storage::sealed::Key::from_base64("YmVuY2gtc2VydmUtc2V0dGluZ3Mta2V5LTMyLWJ5dGU=")
            .unwrap();
        let store = storage::open_sealed(&url, Some(key)).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = Options {
            token: Some(TOKEN.into()),
            cometchat: serve::directory::Endpoint::CometChat,
            fake_cometchat: false,
            body_timeout: Duration::from_secs(10),
            max_sandboxes,
            sandbox_idle: Duration::from_secs(300),
            quotas: Default::default(),
            limits: serve::listen::Limits {
                max_connections: 1024,
                header_timeout: Duration::from_secs(10),
                shutdown_deadline: Duration::from_secs(1),
            },
            max_body: serve::MAX_BODY,
            window: Default::default(),
            twilio,
            lease_ms: host_test::scheduler::LEASE_MS,
            public_url: None,
            wasm: host_test::COMPONENT.to_owned(),
        };
        let server = tokio::spawn(serve::serve(listener, store.clone(), options, async {
            let _ = stopped.await;
        }));
        Service {
            addr,
            store,
            stop,
            server,
        }
    }

    /// One PUT on a connection of its own (setup, not measured).
    pub async fn put(addr: SocketAddr, path: &str, body: String) {
        let mut client = super::webhook::connect(addr).await;
        client.put_to(path, Some(AUTH), body).await;
    }

    impl Service {
        pub async fn stop(self) {
            let _ = self.stop.send(());
            self.server.await.unwrap().unwrap();
        }
    }
}
