//! Outbound HTTP: the only way out of a sandbox.
//!
//! Every request the component makes reaches [`Outbound::send_request`]
//! (wasmtime-wasi-http's `WasiHttpHooks`). Only `https://api.twilio.com` is
//! allowed; anything else gets `HttpRequestDenied`. An allowed request goes
//! to the in-process fake Twilio (the default: records the request and
//! answers `201` with a fresh `SM…` SID, unless a test scripted another
//! [`Answer`]) or, in live mode, to the real one.

use crate::clock::Clock;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The one host the component may reach.
pub const TWILIO_HOST: &str = "api.twilio.com";
/// The longest any request may take, whatever timeouts the guest asked for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a request body the fake Twilio reads.
const MAX_BODY: usize = 64 * 1024;

/// Where allowed requests go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The in-process fake Twilio.
    Fake,
    /// The real `api.twilio.com`, over HTTPS.
    Live,
    /// Another server standing in for Twilio (e.g. a fake on loopback that
    /// outlives host processes): the request's path and query go to this
    /// base URL (`http://127.0.0.1:8099`), as they would to Twilio.
    Forward(http::Uri),
}

/// A request the fake Twilio received. The Basic-auth password (the auth
/// token) is never kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sms {
    pub tenant: String,
    /// Virtual time of arrival, in milliseconds.
    pub at: u64,
    pub method: String,
    pub url: String,
    pub content_type: Option<String>,
    /// The Basic-auth user name (the account SID).
    pub auth_user: Option<String>,
    pub form: Vec<(String, String)>,
    /// The timeouts the component asked for.
    pub options: Option<RequestOptions>,
    /// What the fake Twilio answered.
    pub answer: Answer,
    /// The timer whose call sent it (for tests that model notifications).
    pub timer: Option<String>,
    /// The SID the fake Twilio gave it, when it answered 201.
    pub sid: Option<String>,
}

/// What the fake Twilio answers to one request. The default is `201` with
/// a fresh SID; a test scripts others with [`Traffic::script`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// HTTP status; 201 when absent.
    #[serde(default)]
    pub status: Option<u16>,
    /// Twilio's error code, put in a Twilio error body.
    #[serde(default)]
    pub code: Option<u32>,
    /// Twilio's error message.
    #[serde(default)]
    pub message: Option<String>,
    /// A `Retry-After` header, in seconds.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// The raw body, instead of a generated one.
    #[serde(default)]
    pub body: Option<String>,
    /// No HTTP answer at all: `refused` (connection refused), `timeout`
    /// (connecting timed out) or `reset` (the connection dropped after the
    /// request went out).
    #[serde(default)]
    pub transport: Option<Transport>,
    /// Twilio takes the SMS, then the sandbox dies before the answer
    /// arrives (the host kills the call): a crash mid-send.
    #[serde(default)]
    pub crash: bool,
    /// Answer only after this many milliseconds (real time). Past the
    /// first-byte timeout the component asked for, it gets that timeout
    /// instead, as from a real server that is too slow.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Refused,
    Timeout,
    Reset,
}

/// A request the policy refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub tenant: String,
    pub url: String,
}

/// What left (or tried to leave) the sandboxes, shared by all tenants.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    pub sms: Arc<Mutex<Vec<Sms>>>,
    pub denied: Arc<Mutex<Vec<Denied>>>,
    /// Scripted answers per tenant, used in order, then the default.
    pub scripts: Arc<Mutex<HashMap<String, VecDeque<Answer>>>>,
    /// Signalled when a scripted crash should kill the call under way.
    pub crash: Arc<tokio::sync::Notify>,
    /// The timer key whose call is running, while one is.
    pub firing: Arc<Mutex<Option<String>>>,
    /// How long Twilio (or its stand-in) took to answer, forwarded and
    /// live requests only.
    pub latency: Arc<Mutex<Latency>>,
}

/// Upper bounds of [`Latency`]'s buckets, in milliseconds.
pub const LATENCY_BUCKETS_MS: [u64; 9] = [25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/// A histogram of answer times: counts per bucket (cumulative when read as
/// Prometheus' `le`), their sum and count.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    pub buckets: [u64; LATENCY_BUCKETS_MS.len()],
    pub sum_ms: u64,
    pub count: u64,
}

impl Latency {
    pub fn record(&mut self, ms: u64) {
        for (bucket, bound) in self.buckets.iter_mut().zip(LATENCY_BUCKETS_MS) {
            if ms <= bound {
                *bucket += 1;
            }
        }
        self.sum_ms += ms;
        self.count += 1;
    }
}

impl Traffic {
    /// The fake Twilio's next answers to `tenant`'s requests.
    pub fn script(&self, tenant: &str, answers: impl IntoIterator<Item = Answer>) {
        self.scripts
            .lock()
            .unwrap()
            .entry(tenant.to_owned())
            .or_default()
            .extend(answers);
    }

    fn next_answer(&self, tenant: &str) -> Answer {
        self.scripts
            .lock()
            .unwrap()
            .get_mut(tenant)
            .and_then(VecDeque::pop_front)
            .unwrap_or_default()
    }

    /// Takes the SMS received since the last call.
    pub fn take_sms(&self) -> Vec<Sms> {
        std::mem::take(&mut self.sms.lock().unwrap())
    }
}

/// Configuration shared by every tenant's [`Outbound`].
#[derive(Clone, Debug)]
pub struct Policy {
    pub mode: Mode,
    /// The allowed host; `api.twilio.com` except in tests of the policy.
    pub allowed_host: String,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            mode: Mode::Fake,
            allowed_host: TWILIO_HOST.into(),
        }
    }
}

/// One tenant's outbound HTTP hooks.
pub struct Outbound {
    pub tenant: String,
    pub policy: Policy,
    pub clock: Clock,
    pub traffic: Traffic,
    pub sids: Arc<AtomicU64>,
}

impl Outbound {
    fn allows(&self, uri: &http::Uri) -> bool {
        uri.scheme() == Some(&http::uri::Scheme::HTTPS)
            && uri.host() == Some(self.policy.allowed_host.as_str())
            && uri.port_u16().is_none_or(|port| port == 443)
    }
}

type Io = Box<dyn Future<Output = Result<(), Error>> + Send>;
type Sent = Box<dyn Future<Output = Result<(http::Response<WasiBody>, Io), Error>> + Send>;

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Io,
    ) -> Sent {
        if !self.allows(request.uri()) {
            self.traffic.denied.lock().unwrap().push(Denied {
                tenant: self.tenant.clone(),
                url: request.uri().to_string(),
            });
            eprintln!(
                "[{}] denied outbound request to {}",
                self.tenant,
                request.uri()
            );
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let options = Some(capped_timeouts(options));
        match &self.policy.mode {
            Mode::Forward(base) => {
                let mut request = request;
                let path = request
                    .uri()
                    .path_and_query()
                    .map_or("/".to_owned(), |p| p.as_str().to_owned());
                let mut parts = base.clone().into_parts();
                parts.path_and_query = path.parse().ok();
                match http::Uri::from_parts(parts) {
                    Ok(uri) => *request.uri_mut() = uri,
                    Err(_) => return Box::new(async { Err(Error::HttpRequestUriInvalid) }),
                }
                timed(self.traffic.latency.clone(), request, options)
            }
            Mode::Live => timed(self.traffic.latency.clone(), request, options),
            Mode::Fake => {
                let tenant = self.tenant.clone();
                let at = self.clock.now();
                let traffic = self.traffic.clone();
                let sid = self.sids.fetch_add(1, Ordering::SeqCst);
                let answer = traffic.next_answer(&tenant);
                let timer = traffic.firing.lock().unwrap().clone();
                Box::new(async move {
                    let mut sms = receive(tenant, at, options, answer.clone(), request).await?;
                    sms.timer = timer;
                    if answer.body.is_none() && answer.status.unwrap_or(201) == 201 {
                        sms.sid = Some(fake_sid(sid));
                    }
                    let response = respond(sid, &sms, &answer);
                    traffic.sms.lock().unwrap().push(sms);
                    if answer.crash {
                        traffic.crash.notify_one();
                        std::future::pending::<()>().await;
                    }
                    if let Some(delay) = answer.delay_ms.map(Duration::from_millis) {
                        let limit = options
                            .and_then(|o| o.first_byte_timeout)
                            .unwrap_or(MAX_TIMEOUT);
                        tokio::time::sleep(delay.min(limit)).await;
                        if delay > limit {
                            return Err(Error::ConnectionReadTimeout);
                        }
                    }
                    let response = response?;
                    Ok((response, Box::new(async { Ok(()) }) as Io))
                })
            }
        }
    }
}

/// Sends `request` through wasmtime-wasi-http's sender, recording how long
/// the answer's head took.
fn timed(
    latency: Arc<Mutex<Latency>>,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Sent {
    Box::new(async move {
        let started = std::time::Instant::now();
        let sent = wasmtime_wasi_http::default_send_request(request, options).await;
        latency
            .lock()
            .unwrap()
            .record(started.elapsed().as_millis() as u64);
        let (response, io) = sent?;
        Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Io))
    })
}

/// The fake Twilio's answer to a received request.
fn respond(sid: u64, sms: &Sms, answer: &Answer) -> Result<http::Response<WasiBody>, Error> {
    match answer.transport {
        Some(Transport::Refused) => return Err(Error::ConnectionRefused),
        Some(Transport::Timeout) => return Err(Error::ConnectionTimeout),
        Some(Transport::Reset) => return Err(Error::ConnectionTerminated),
        None => {}
    }
    let status = answer.status.unwrap_or(201);
    let body = match (&answer.body, status) {
        (Some(body), _) => body.clone().into_bytes(),
        (None, 201) => created(sid, sms),
        (None, _) => serde_json::to_vec(&serde_json::json!({
            "code": answer.code,
            "message": answer.message.clone().unwrap_or_else(|| format!("scripted HTTP {status}")),
            "more_info": answer.code.map(|c| format!("https://www.twilio.com/docs/errors/{c}")),
            "status": status,
        }))
        .expect("JSON"),
    };
    let mut response = http::Response::builder()
        .status(status)
        .header("content-type", "application/json");
    if let Some(seconds) = answer.retry_after {
        response = response.header("retry-after", seconds.to_string());
    }
    response
        .body(
            Full::new(Bytes::from(body))
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .map_err(|e| Error::InternalError(Some(e.to_string())))
}

/// The guest's timeouts, each capped at [`MAX_TIMEOUT`] (and set to it when
/// the guest gave none), so no request can hold a sandbox for long.
fn capped_timeouts(options: Option<RequestOptions>) -> RequestOptions {
    let cap = |t: Option<Duration>| Some(t.map_or(MAX_TIMEOUT, |t| t.min(MAX_TIMEOUT)));
    let options = options.unwrap_or_default();
    RequestOptions {
        connect_timeout: cap(options.connect_timeout),
        first_byte_timeout: cap(options.first_byte_timeout),
        between_bytes_timeout: cap(options.between_bytes_timeout),
    }
}

/// Reads a request the way Twilio would, keeping nothing secret.
async fn receive(
    tenant: String,
    at: u64,
    options: Option<RequestOptions>,
    answer: Answer,
    request: http::Request<WasiBody>,
) -> Result<Sms, Error> {
    let (parts, body) = request.into_parts();
    let body = http_body_util::Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| Error::HttpRequestBodySize(Some(MAX_BODY as u64)))?
        .to_bytes();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Ok(Sms {
        tenant,
        at,
        method: parts.method.to_string(),
        url: parts.uri.to_string(),
        content_type: header("content-type"),
        auth_user: header("authorization").and_then(|v| basic_user(&v)),
        form: form_urlencoded::parse(&body).into_owned().collect(),
        options,
        answer,
        timer: None,
        sid: None,
    })
}

/// The user name of a Basic `Authorization` value; the password is dropped.
fn basic_user(value: &str) -> Option<String> {
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    decoded.split_once(':').map(|(user, _)| user.to_owned())
}

/// A `201 Created` body like Twilio's, with a fresh SID.
/// The fake Twilio's `n`th message SID.
pub fn fake_sid(n: u64) -> String {
    format!("SM{n:032x}")
}

fn created(n: u64, sms: &Sms) -> Vec<u8> {
    let field = |name: &str| {
        sms.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    serde_json::to_vec(&serde_json::json!({
        "sid": fake_sid(n),
        "status": "queued",
        "account_sid": sms.auth_user,
        "to": field("To"),
        "from": field("From"),
        "messaging_service_sid": field("MessagingServiceSid"),
        "body": field("Body"),
        "num_segments": "1",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
    }))
    .expect("JSON")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound(mode: Mode) -> Outbound {
        Outbound {
            tenant: "t".into(),
            policy: Policy {
                mode,
                allowed_host: TWILIO_HOST.into(),
            },
            clock: Clock::default(),
            traffic: Traffic::default(),
            sids: Arc::default(),
        }
    }

    #[test]
    fn only_https_twilio_on_443_is_allowed() {
        let o = outbound(Mode::Fake);
        for (url, allowed) in [
            ("https://api.twilio.com/2010-04-01/x", true),
            ("https://api.twilio.com:443/x", true),
            ("http://api.twilio.com/x", false),
            ("https://api.twilio.com:8443/x", false),
            ("https://api.twilio.com.evil.example/x", false),
            ("https://example.com/x", false),
            ("https://127.0.0.1/x", false),
        ] {
            assert_eq!(o.allows(&url.parse().unwrap()), allowed, "{url}");
        }
    }

    #[test]
    fn timeouts_are_capped() {
        let asked = RequestOptions {
            connect_timeout: Some(Duration::from_secs(600)),
            first_byte_timeout: Some(Duration::from_secs(2)),
            between_bytes_timeout: None,
        };
        let got = capped_timeouts(Some(asked));
        assert_eq!(got.connect_timeout, Some(MAX_TIMEOUT));
        assert_eq!(got.first_byte_timeout, Some(Duration::from_secs(2)));
        assert_eq!(got.between_bytes_timeout, Some(MAX_TIMEOUT));
    }

    #[test]
    fn basic_user_keeps_only_the_user() {
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ACxyz:secret")
        );
        assert_eq!(basic_user(&value).as_deref(), Some("ACxyz"));
        assert_eq!(basic_user("Bearer x"), None);
    }
}
