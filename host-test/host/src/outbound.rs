//! Outbound HTTP: the only way out of a sandbox.
//!
//! Every request the component makes reaches [`Outbound::send_request`]
//! (wasmtime-wasi-http's `WasiHttpHooks`). Only `https://api.twilio.com`
//! on port 443 is allowed; anything else gets `HttpRequestDenied` and is
//! counted in [`Stats`]. An allowed request, its timeouts capped, goes to
//! the policy's [`Sender`]: [`Twilio`] (the real one), [`Forward`] (a
//! stand-in at another address), or one a host brings (the service's
//! try-out recorder, the test harness's scripted fake).

use crate::clock::Clock;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

/// The one host the component may reach.
pub const TWILIO_HOST: &str = "api.twilio.com";
/// The longest any request may take, whatever timeouts the guest asked for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10);
/// Refused requests kept for inspection (the latest).
pub const KEEP_DENIED: usize = 64;

/// The body-writing task wasmtime-wasi-http runs beside a request.
pub type Io = Box<dyn Future<Output = Result<(), Error>> + Send>;
/// A request on its way: its answer's head, and the body's task.
pub type Sent = Box<dyn Future<Output = Result<(http::Response<WasiBody>, Io), Error>> + Send>;

/// One allowed request, as the policy hands it to its [`Sender`].
pub struct Request {
    pub tenant: String,
    /// The due timer whose call sends it, if a timer's.
    pub timer: Option<String>,
    /// The host clock's now, in milliseconds.
    pub at: u64,
    /// Its timeouts, each capped at [`MAX_TIMEOUT`].
    pub options: RequestOptions,
    pub http: http::Request<WasiBody>,
}

/// Where allowed requests go.
pub trait Sender: Send + Sync + 'static {
    fn send(&self, request: Request) -> Sent;
    /// In words, for start-up lines.
    fn describe(&self) -> String;
}

/// The real `api.twilio.com`, over HTTPS.
pub struct Twilio;

impl Sender for Twilio {
    fn send(&self, request: Request) -> Sent {
        Box::new(send_http(request.http, request.options))
    }

    fn describe(&self) -> String {
        format!("https://{TWILIO_HOST}")
    }
}

/// Another server standing in for Twilio (e.g. a fake on loopback that
/// outlives host processes): the request's path and query go to this base
/// URL (`http://127.0.0.1:8099`), as they would to Twilio.
pub struct Forward(pub http::Uri);

impl Sender for Forward {
    fn send(&self, request: Request) -> Sent {
        let mut http = request.http;
        let path = http
            .uri()
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned());
        let mut parts = self.0.clone().into_parts();
        parts.path_and_query = path.parse().ok();
        match http::Uri::from_parts(parts) {
            Ok(uri) => *http.uri_mut() = uri,
            Err(_) => return Box::new(async { Err(Error::HttpRequestUriInvalid) }),
        }
        Box::new(send_http(http, request.options))
    }

    fn describe(&self) -> String {
        format!("forwarded to {}", self.0)
    }
}

async fn send_http(
    request: http::Request<WasiBody>,
    options: RequestOptions,
) -> Result<(http::Response<WasiBody>, Io), Error> {
    use http_body_util::BodyExt;
    let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
    Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as Io))
}

/// A request the policy refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denied {
    pub tenant: String,
    pub url: String,
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

/// What every tenant's requests add up to: how long answers took, and the
/// latest requests refused.
#[derive(Debug, Default)]
pub struct Stats {
    pub latency: Mutex<Latency>,
    denied: Mutex<VecDeque<Denied>>,
    /// Calls run again because their commit met a record another call
    /// changed since they read it (see `runtime::MAX_RUNS`).
    pub reruns: std::sync::atomic::AtomicU64,
}

impl Stats {
    /// The latest refused requests (at most [`KEEP_DENIED`]), oldest first.
    pub fn denied(&self) -> Vec<Denied> {
        self.denied.lock().unwrap().iter().cloned().collect()
    }

    fn deny(&self, denied: Denied) {
        let mut kept = self.denied.lock().unwrap();
        if kept.len() == KEEP_DENIED {
            kept.pop_front();
        }
        kept.push_back(denied);
    }
}

/// Configuration shared by every tenant's [`Outbound`].
#[derive(Clone)]
pub struct Policy {
    /// The allowed host; `api.twilio.com` except in tests of the policy.
    pub allowed_host: String,
    pub sender: Arc<dyn Sender>,
    pub stats: Arc<Stats>,
}

impl Policy {
    /// Requests to `api.twilio.com` go to `sender`.
    pub fn new(sender: Arc<dyn Sender>) -> Self {
        Self {
            allowed_host: TWILIO_HOST.into(),
            sender,
            stats: Arc::default(),
        }
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("allowed_host", &self.allowed_host)
            .field("sender", &self.sender.describe())
            .finish()
    }
}

/// One tenant's outbound HTTP hooks.
pub struct Outbound {
    pub tenant: String,
    pub policy: Policy,
    pub clock: Clock,
    /// The due timer whose call is running, while one is.
    pub timer: Option<String>,
}

impl Outbound {
    fn allows(&self, uri: &http::Uri) -> bool {
        uri.scheme() == Some(&http::uri::Scheme::HTTPS)
            && uri.host() == Some(self.policy.allowed_host.as_str())
            && uri.port_u16().is_none_or(|port| port == 443)
    }
}

impl WasiHttpHooks for Outbound {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Io,
    ) -> Sent {
        if !self.allows(request.uri()) {
            self.policy.stats.deny(Denied {
                tenant: self.tenant.clone(),
                url: request.uri().to_string(),
            });
            tracing::warn!(tenant = %self.tenant, "denied outbound request to {}", request.uri());
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        let sent = Box::into_pin(self.policy.sender.send(Request {
            tenant: self.tenant.clone(),
            timer: self.timer.clone(),
            at: self.clock.now(),
            options: capped_timeouts(options),
            http: request,
        }));
        let stats = self.policy.stats.clone();
        Box::new(async move {
            let started = std::time::Instant::now();
            let sent = sent.await;
            let ms = started.elapsed().as_millis() as u64;
            stats.latency.lock().unwrap().record(ms);
            sent
        })
    }
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

/// A request as Twilio reads it, without its secret: for senders that
/// answer in Twilio's place (the service's try-out recorder, the test
/// harness's fake).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    pub url: String,
    pub content_type: Option<String>,
    /// The Basic-auth user name (the account SID); the password (the auth
    /// token) is dropped.
    pub auth_user: Option<String>,
    pub form: Vec<(String, String)>,
}

impl Received {
    /// Reads `request`'s head and up to `max_body` bytes of its form.
    pub async fn read(request: http::Request<WasiBody>, max_body: usize) -> Result<Self, Error> {
        use http_body_util::BodyExt;
        let (parts, body) = request.into_parts();
        let body = http_body_util::Limited::new(body, max_body)
            .collect()
            .await
            .map_err(|_| Error::HttpRequestBodySize(Some(max_body as u64)))?
            .to_bytes();
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Ok(Self {
            method: parts.method.to_string(),
            url: parts.uri.to_string(),
            content_type: header("content-type"),
            auth_user: header("authorization").and_then(|v| basic_user(&v)),
            form: form_urlencoded::parse(&body).into_owned().collect(),
        })
    }

    /// A form field's value.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Twilio's `201 Created` body for this request, with message SID `sid`.
    pub fn created(&self, sid: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "sid": sid,
            "status": "queued",
            "account_sid": self.auth_user,
            "to": self.field("To"),
            "from": self.field("From"),
            "messaging_service_sid": self.field("MessagingServiceSid"),
            "body": self.field("Body"),
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
        }))
        .expect("JSON")
    }
}

/// A JSON answer with `status` and `body`, as a sender's response.
pub fn json_response(
    status: u16,
    body: Vec<u8>,
    headers: &[(&str, String)],
) -> Result<http::Response<WasiBody>, Error> {
    use http_body_util::{BodyExt, Full};
    let mut response = http::Response::builder()
        .status(status)
        .header("content-type", "application/json");
    for (name, value) in headers {
        response = response.header(*name, value);
    }
    response
        .body(
            Full::new(bytes::Bytes::from(body))
                .map_err(|e| match e {})
                .boxed_unsync(),
        )
        .map_err(|e| Error::InternalError(Some(e.to_string())))
}

/// The user name of a Basic `Authorization` value; the password is dropped.
fn basic_user(value: &str) -> Option<String> {
    use base64::Engine as _;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    decoded.split_once(':').map(|(user, _)| user.to_owned())
}

/// A message SID in Twilio's form for the `n`th SMS a stand-in took.
pub fn stand_in_sid(n: u64) -> String {
    format!("SM{n:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbound() -> Outbound {
        Outbound {
            tenant: "t".into(),
            policy: Policy::new(Arc::new(Twilio)),
            clock: Clock::default(),
            timer: None,
        }
    }

    #[test]
    fn only_https_twilio_on_443_is_allowed() {
        let o = outbound();
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
        use base64::Engine as _;
        let value = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("ACxyz:secret")
        );
        assert_eq!(basic_user(&value).as_deref(), Some("ACxyz"));
        assert_eq!(basic_user("Bearer x"), None);
    }

    #[test]
    fn denied_requests_are_kept_up_to_a_bound() {
        let stats = Stats::default();
        for i in 0..KEEP_DENIED + 5 {
            stats.deny(Denied {
                tenant: "t".into(),
                url: format!("https://example.com/{i}"),
            });
        }
        let kept = stats.denied();
        assert_eq!(kept.len(), KEEP_DENIED);
        assert_eq!(kept[0].url, "https://example.com/5", "the oldest go first");
    }
}
