//! A stand-in for CometChat's REST API on loopback: `GET /v3/users/{uid}`
//! with the header `apikey`, answered as CometChat answers
//! (`{"data": {"uid", "name", "status", "metadata", …}}`), or as a test
//! scripts it (an error status, a `Retry-After`, a slow answer, a dropped
//! connection). It records every request's path and key.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime_wasi_http::io::TokioIo;

/// How the stand-in answers.
#[derive(Clone, Debug)]
pub enum Mode {
    /// As CometChat: the user, or 404.
    Serve,
    /// This status (with `Retry-After` seconds, if given), every time.
    Status(u16, Option<u64>),
    /// As CometChat, but only after this long.
    Slow(Duration),
    /// The connection is dropped before any answer.
    Drop,
}

#[derive(Clone, Default)]
struct State {
    users: HashMap<String, Value>,
    mode: Option<Mode>,
    /// (path, apikey) of every request.
    seen: Vec<(String, String)>,
}

pub struct FakeCometChat {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeCometChat {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = shared.clone();
                    if matches!(state.lock().unwrap().mode, Some(Mode::Drop)) {
                        let path = String::from("(dropped)");
                        state.lock().unwrap().seen.push((path, String::new()));
                        drop(stream);
                        continue;
                    }
                    tokio::spawn(async move {
                        let service =
                            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                                let state = state.clone();
                                async move { Ok::<_, hyper::Error>(answer(&state, &req).await) }
                            });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Self { url, state }
    }

    /// A user as CometChat keeps it.
    pub fn user(&self, uid: &str, name: &str, online: bool, number: Option<&str>) {
        let mut metadata = json!({});
        if let Some(n) = number {
            metadata = json!({ "@private": { "contactNumber": n } });
        }
        let user = json!({
            "uid": uid,
            "name": name,
            "status": if online { "online" } else { "offline" },
            "role": "default",
            "metadata": metadata,
            "lastActiveAt": 1_700_000_000,
            "createdAt": 1_690_000_000,
        });
        self.state
            .lock()
            .unwrap()
            .users
            .insert(uid.to_owned(), user);
    }

    pub fn mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    /// Requests received so far: (path, apikey).
    pub fn seen(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().seen.clone()
    }
}

async fn answer(
    state: &Mutex<State>,
    req: &hyper::Request<Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let key = req
        .headers()
        .get("apikey")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let (mode, user) = {
        let mut s = state.lock().unwrap();
        s.seen.push((path.clone(), key));
        let uid = path.strip_prefix("/v3/users/").unwrap_or_default();
        (
            s.mode.clone().unwrap_or(Mode::Serve),
            s.users.get(uid).cloned(),
        )
    };
    let respond = |status: u16, body: Value| {
        let mut r = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        r
    };
    match mode {
        Mode::Status(status, retry_after) => {
            let mut r = respond(
                status,
                json!({ "error": { "code": "SCRIPTED", "message": "scripted" } }),
            );
            if let Some(s) = retry_after {
                r.headers_mut()
                    .insert("retry-after", s.to_string().parse().unwrap());
            }
            r
        }
        Mode::Slow(wait) => {
            tokio::time::sleep(wait).await;
            served(user, respond)
        }
        Mode::Serve | Mode::Drop => served(user, respond),
    }
}

fn served(
    user: Option<Value>,
    respond: impl Fn(u16, Value) -> hyper::Response<Full<Bytes>>,
) -> hyper::Response<Full<Bytes>> {
    match user {
        Some(user) => respond(200, json!({ "data": user })),
        None => respond(
            404,
            json!({ "error": { "code": "ERR_UID_NOT_FOUND", "message": "The UID does not exist." } }),
        ),
    }
}
