//! A fake Twilio on loopback that outlives the host processes a test
//! starts and kills: it counts every SMS it accepted, by `To` number.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime_wasi_http::io::TokioIo;

pub struct FakeTwilio {
    pub url: String,
    received: Arc<Mutex<Vec<String>>>,
    /// Each SMS taken: its `To` and its `Body`.
    bodies: Arc<Mutex<Vec<(String, String)>>>,
    /// Each SMS's `StatusCallback` field, if it had one.
    callbacks: Arc<Mutex<Vec<Option<String>>>>,
    refuse_every: Arc<AtomicU64>,
    /// SMS answered (after the delay), as opposed to taken.
    answered: Arc<AtomicU64>,
}

impl FakeTwilio {
    /// Serves on a free loopback port from a thread of its own. Each
    /// answer (201, as Twilio's) comes after `delay`, which widens the window
    /// in which a killed host has a request out; every `refuse_every`th
    /// request (0: none) gets a 503 instead, which the component retries.
    pub fn start(delay: Duration, refuse_every: u64) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let texts = bodies.clone();
        let callbacks = Arc::new(Mutex::new(Vec::new()));
        let asked = callbacks.clone();
        let refuse_every = Arc::new(AtomicU64::new(refuse_every));
        let refusing = refuse_every.clone();
        let answered = Arc::new(AtomicU64::new(0));
        let answering = answered.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let sids = Arc::new(AtomicU64::new(1));
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (log, sids, refusing) = (log.clone(), sids.clone(), refusing.clone());
                    let (texts, asked) = (texts.clone(), asked.clone());
                    let answering = answering.clone();
                    tokio::spawn(async move {
                        let service =
                            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                                let (log, sids, texts) = (log.clone(), sids.clone(), texts.clone());
                                let (asked, answering) = (asked.clone(), answering.clone());
                                let refuse_every = refusing.load(Ordering::SeqCst);
                                async move {
                                    let body = req.into_body().collect().await?.to_bytes();
                                    let to = form_urlencoded::parse(&body)
                                        .find(|(k, _)| k == "To")
                                        .map(|(_, v)| v.into_owned())
                                        .unwrap_or_default();
                                    let sid = sids.fetch_add(1, Ordering::SeqCst);
                                    if refuse_every > 0 && sid % refuse_every == 0 {
                                        // Not taken: the component retries it.
                                        let mut response =
                                            hyper::Response::new(Full::new(Bytes::from_static(
                                                b"{\"code\":20500,\"message\":\"scripted\"}",
                                            )));
                                        *response.status_mut() =
                                            hyper::StatusCode::SERVICE_UNAVAILABLE;
                                        return Ok(response);
                                    }
                                    // Counted as soon as it is taken: Twilio has
                                    // it, whatever happens to the answer.
                                    log.lock().unwrap().push(to.clone());
                                    let text = form_urlencoded::parse(&body)
                                        .find(|(k, _)| k == "Body")
                                        .map(|(_, v)| v.into_owned())
                                        .unwrap_or_default();
                                    texts.lock().unwrap().push((to.clone(), text));
                                    asked.lock().unwrap().push(
                                        form_urlencoded::parse(&body)
                                            .find(|(k, _)| k == "StatusCallback")
                                            .map(|(_, v)| v.into_owned()),
                                    );
                                    tokio::time::sleep(delay).await;
                                    answering.fetch_add(1, Ordering::SeqCst);
                                    let answer = serde_json::json!({
                                        "sid": format!("SM{sid:032x}"),
                                        "status": "queued",
                                        "to": to,
                                    });
                                    let mut response = hyper::Response::new(Full::new(
                                        Bytes::from(answer.to_string()),
                                    ));
                                    *response.status_mut() = hyper::StatusCode::CREATED;
                                    Ok::<_, hyper::Error>(response)
                                }
                            });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Self {
            url,
            received,
            bodies,
            callbacks,
            refuse_every,
            answered,
        }
    }

    /// SMS answered so far (each after the delay).
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::SeqCst)
    }

    /// From now on, refuse every `n`th request (0: none).
    pub fn refuse_every(&self, n: u64) {
        self.refuse_every.store(n, Ordering::SeqCst);
    }

    /// How many SMS each number received.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for to in self.received.lock().unwrap().iter() {
            *counts.entry(to.clone()).or_default() += 1;
        }
        counts
    }

    /// The bodies of the SMS taken, in order.
    pub fn bodies(&self) -> Vec<String> {
        self.taken().into_iter().map(|(_, body)| body).collect()
    }

    /// The `To` and `Body` of each SMS taken, in order.
    pub fn taken(&self) -> Vec<(String, String)> {
        self.bodies.lock().unwrap().clone()
    }

    /// The `StatusCallback` of each SMS taken, in order.
    pub fn callbacks(&self) -> Vec<Option<String>> {
        self.callbacks.lock().unwrap().clone()
    }

    pub fn total(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}
