//! `sms-serve`: the extension as an HTTP service any chat server can
//! call. A JSON API under `/v1` (operator bearer token), CometChat's legacy
//! webhooks, Twilio's status callbacks, `/healthz` and `/metrics`. Calls go
//! to the tenants' runtimes ([`sms_host::scheduler::Shards`]); due timers fire on
//! the wall clock from the same scheduler `host` uses. Product decisions
//! stay in the component: this module only translates HTTP.

mod access;
mod activity;
mod api;
pub mod cli;
pub mod cometchat;
mod credentials;
pub mod directory;
mod guard;
pub mod listen;
mod metrics;
mod openapi;
pub mod try_out;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use metrics::Metrics;
use serde_json::Value;
use sms_host::call::{CallRecord, Logged};
use sms_host::outbound::{Forward, Policy, Twilio};
use sms_host::scheduler::{self, Shards};
use sms_host::storage::Storage;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc};

/// Default cap on a request body.
pub const MAX_BODY: usize = 1 << 20;
/// Calls of one tenant that may wait at (or run on) its runtime at once: a
/// flood from one tenant cannot queue more than this ahead of another
/// tenant's call. Past it, calls wait their turn for up to
/// [`TENANT_WAIT`], then get 429.
pub const TENANT_CONCURRENCY: usize = 32;
pub const TENANT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
/// SMS the fake Twilio keeps for `GET /v1/fake-twilio/sms`.
const KEEP_FAKE_SMS: usize = 200;

pub struct Options {
    /// The operator's bearer token for `/v1`; `None` only with
    /// `--insecure-no-auth` on loopback (checked by the CLI).
    pub token: Option<String>,
    /// Where CometChat's REST API is, for tenants that saved their
    /// CometChat app (`--cometchat-url`, or the in-process stand-in of
    /// `--fake-cometchat`).
    pub cometchat: directory::Endpoint,
    /// Serve an in-process stand-in for CometChat's REST API, answering
    /// with the users pushed through the API.
    pub fake_cometchat: bool,
    pub max_body: usize,
    /// The longest a request's body may take to arrive (408 past it).
    pub body_timeout: std::time::Duration,
    /// Connections, header deadline, shutdown deadline.
    pub limits: listen::Limits,
    /// Most sandboxes resident at once, all runtimes (least recently used
    /// dropped first).
    pub max_sandboxes: usize,
    /// A sandbox not called for this long is dropped (checked every
    /// minute); its tenant's next call makes a new one.
    pub sandbox_idle: std::time::Duration,
    /// What one tenant may keep.
    pub quotas: Quotas,
    pub shards: usize,
    /// Where SMS go.
    pub twilio: TwilioTarget,
    pub lease_ms: u64,
    /// The public base URL (`https://sms.example.com`) Twilio calls status
    /// callbacks on, for their signatures; by default the request's Host.
    pub public_url: Option<String>,
    /// The component to run: a `.wasm` of any contract version this host
    /// loads.
    pub wasm: String,
}

/// Where SMS go (`--twilio-url`, `--fake-twilio`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwilioTarget {
    /// `https://api.twilio.com`.
    Live,
    /// A stand-in at another address: requests keep their path and query.
    Forward(http::Uri),
    /// The in-process try-out stand-in ([`try_out::TryOut`]).
    TryOut,
}

impl TwilioTarget {
    /// `--twilio-url` (or `--fake-twilio`), or why it is not a target.
    pub fn parse(fake: bool, url: &str) -> Result<Self, String> {
        if fake {
            return Ok(Self::TryOut);
        }
        if url.trim_end_matches('/') == "https://api.twilio.com" {
            return Ok(Self::Live);
        }
        match url.parse::<http::Uri>() {
            Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => {
                Ok(Self::Forward(uri))
            }
            _ => Err(format!("--twilio-url {url:?} is not an http(s) URL")),
        }
    }
}

/// How often idle sandboxes are looked for.
const SANDBOX_SWEEP: std::time::Duration = std::time::Duration::from_secs(60);

/// What one tenant may keep, so no tenant (nor anyone holding its
/// webhook credentials) can fill the database.
#[derive(Clone, Copy, Debug)]
pub struct Quotas {
    /// Users (`--max-users`).
    pub users: u64,
    /// Bytes of one user's name and metadata (`--max-user-bytes`).
    pub user_bytes: usize,
    /// Records in the component's state (`--max-state-keys`).
    pub state_keys: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            users: 100_000,
            user_bytes: 16 << 10,
            state_keys: 1_000_000,
        }
    }
}

/// What every handler shares.
pub struct App {
    shards: Arc<Shards>,
    storage: Arc<dyn Storage>,
    options: Options,
    metrics: Arc<Metrics>,
    lines: mpsc::UnboundedSender<Logged>,
    /// What the fake Twilio received, newest last.
    fake_sms: Arc<Mutex<VecDeque<Value>>>,
    fake: bool,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Where users are found: CometChat for tenants with an app.
    directory: Arc<directory::CometChatDirectory>,
    /// The contract version of the component being run.
    contract: &'static str,
    /// See [`status_callback`].
    status_callback: Option<String>,
    /// The count of refused status callbacks (forged, altered, for no
    /// tenant) at the last log line about them, and its time.
    forged_logged: Mutex<(u64, std::time::Instant)>,
    /// Each tenant's calls as they happen, for its page.
    activity: Arc<activity::Activity>,
    /// (tenant, trigger) pairs whose unknown trigger was logged.
    unknown_logged: Mutex<std::collections::HashSet<(String, String)>>,
}

/// Most (tenant, trigger) pairs remembered as logged: past it, an unknown
/// trigger is counted but no longer logged.
const UNKNOWN_LOGGED: usize = 10_000;

impl App {
    /// A refused status callback: counted (`sms_forged_reports_total`), and
    /// logged at most once a minute with how many came since.
    fn forged_report(&self) {
        let total = self.metrics.forged_report();
        let mut logged = self.forged_logged.lock().unwrap();
        if total == 1 || logged.1.elapsed() >= std::time::Duration::from_secs(60) {
            tracing::warn!(
                "refused {} status callback(s) that were not signed with their tenant's auth token (forged, altered, or for no tenant) since the last line",
                total - logged.0
            );
            *logged = (total, std::time::Instant::now());
        }
    }

    /// An unknown trigger from CometChat: logged once per name and tenant,
    /// in the tenant's log (the page shows it) and on stderr, so a webhook
    /// set up with the wrong triggers is visible.
    async fn unknown_trigger(&self, tenant: &str, trigger: &str) {
        let new = {
            let mut logged = self.unknown_logged.lock().unwrap();
            logged.len() < UNKNOWN_LOGGED && logged.insert((tenant.to_owned(), trigger.to_owned()))
        };
        if !new {
            return;
        }
        let shown: String = trigger.chars().take(64).collect();
        let line = format!(
            "CometChat sent a webhook with trigger {shown:?}, which this service does not know: \
             acknowledged and ignored (check the webhook's triggers in CometChat's dashboard)"
        );
        tracing::warn!(tenant, "{line}");
        let at = sms_host::clock::Clock::wall().now();
        let level = sms_host::storage::Level::Warn;
        if let Err(e) = self
            .storage
            .log(tenant, sms_host::storage::LogLine { at, level, line })
            .await
        {
            tracing::error!(tenant, "a log line was lost: {e}");
        }
    }

    fn limit(&self, tenant: &str) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().unwrap();
        if !limits.contains_key(tenant) && limits.len() >= KEEP_LIMITS {
            forget_unused(&mut limits);
        }
        limits
            .entry(tenant.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(TENANT_CONCURRENCY)))
            .clone()
    }
}

/// Tenants whose call bound is kept while none of their calls runs; past
/// it, the unused ones are forgotten (a tenant's next call starts afresh),
/// so the map follows the tenants active now, not every tenant served.
const KEEP_LIMITS: usize = 10_000;

/// Drops the bounds no call holds or waits on.
fn forget_unused(limits: &mut HashMap<String, Arc<Semaphore>>) {
    limits.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < TENANT_CONCURRENCY);
}

/// The service's routes on `app`.
pub fn router(app: Arc<App>) -> Router {
    let max_body = app.options.max_body;
    let (routes, _) = openapi::routes().split_for_parts();
    routes
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), count))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(max_body))
        // Outermost last: errors in JSON, then the caller checked, then
        // the body read (see `guard`).
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::read_body,
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::authenticate,
        ))
        .layer(axum::middleware::map_response(json_errors))
        // A span per request, its start and end at debug level
        // (RUST_LOG=tower_http=debug).
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

/// Every error body is JSON `{"error": "…"}`: axum's own refusals (a body
/// over the limit, a path or query it cannot read) come as plain text, and
/// are turned into that shape here.
async fn json_errors(response: axum::response::Response) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if response.status().as_u16() < 400 || json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let text = if text.is_empty() {
        parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_owned()
    } else {
        text
    };
    (
        parts.status,
        axum::Json(serde_json::json!({ "error": text })),
    )
        .into_response()
}

/// The status callback URL every SMS asks for (`{tenant}` stands for the
/// tenant), from `--public-url`: `None` without one. A URL Twilio could
/// not call is refused at start-up rather than written into every SMS.
fn status_callback(public_url: Option<&str>) -> wasmtime::Result<Option<String>> {
    let Some(base) = public_url else {
        return Ok(None);
    };
    let base = base.trim_end_matches('/');
    let fine = (base.starts_with("https://") || base.starts_with("http://"))
        && base.len() > "https://".len()
        && base.bytes().all(|b| b.is_ascii_graphic())
        && !base.contains(['?', '#']);
    if !fine {
        wasmtime::bail!(
            "--public-url {base:?} is not a base URL Twilio can call: use http:// or https://, \
             a host and optionally a path, printable ASCII without spaces, no query"
        );
    }
    Ok(Some(format!("{base}/twilio/{{tenant}}/status")))
}

/// Counts every response by route and status.
async fn count(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    matched: Option<axum::extract::MatchedPath>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = matched.map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(request).await;
    app.metrics.http(&route, response.status().as_u16());
    response
}

/// Serves on `listener` until `shutdown` resolves: then it stops accepting,
/// lets calls in flight (requests and timers) finish, and returns. Timers
/// stay in the store for the next start.
pub async fn serve(
    listener: tokio::net::TcpListener,
    storage: Arc<dyn Storage>,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> wasmtime::Result<()> {
    let fake = options.twilio == TwilioTarget::TryOut;
    let pre = sms_host::engine::prepare_file(&sms_host::engine::engine()?, &options.wasm)?;
    let contract = pre.version();
    tracing::info!("component {} (contract {contract})", options.wasm);
    let (lines, mut printed) = mpsc::unbounded_channel::<Logged>();
    let policy = Policy::new(match &options.twilio {
        TwilioTarget::Live => Arc::new(Twilio),
        TwilioTarget::Forward(base) => Arc::new(Forward(base.clone())),
        TwilioTarget::TryOut => Arc::new(try_out::TryOut::new(&lines)),
    });
    tracing::info!("Twilio: {}", policy.sender.describe());
    let status_callback = status_callback(options.public_url.as_deref())?;
    match &status_callback {
        Some(url) => tracing::info!(
            "delivery reports: every SMS asks Twilio to report to {url}, unless its tenant's settings name a statusCallbackURL"
        ),
        None => tracing::warn!(
            "delivery reports: off for tenants whose settings name no statusCallbackURL; \
             start with --public-url https://THIS-HOST (as Twilio reaches it) so every SMS asks \
             Twilio to report, and a number Twilio cannot deliver to is not texted again"
        ),
    }
    let shards = Arc::new(Shards::new(&storage, &policy, options.shards, pre)?);
    let addr = listener.local_addr()?;
    let mut options = options;
    if options.fake_cometchat {
        // The stand-in is a route of this service (see `api::fakes::fake_cometchat`).
        let host = if addr.ip().is_unspecified() {
            format!("127.0.0.1:{}", addr.port())
        } else {
            addr.to_string()
        };
        options.cometchat = directory::Endpoint::Fake(format!("http://{host}/fake-cometchat"));
    }
    let directory = Arc::new(directory::CometChatDirectory::new(
        storage.clone(),
        options.cometchat.clone(),
    ));
    for rt in shards.all() {
        let mut rt = rt.lock().await;
        rt.set_directory(directory.clone());
        rt.set_status_callback(status_callback.clone());
        rt.max_sandboxes = (options.max_sandboxes / options.shards.max(1)).max(1);
    }
    let lease_ms = options.lease_ms;
    let app = Arc::new(App {
        shards,
        storage: storage.clone(),
        options,
        metrics: Arc::new(Metrics::new(policy.stats.clone())),
        lines: lines.clone(),
        fake_sms: Arc::new(Mutex::new(VecDeque::new())),
        fake,
        limits: Mutex::new(HashMap::new()),
        directory,
        contract,
        status_callback,
        unknown_logged: Mutex::default(),
        activity: Arc::default(),
        forged_logged: Mutex::new((0, std::time::Instant::now())),
    });
    // The call log: counted, printed (numbers already masked by the
    // component; the fake Twilio's own lines mask theirs), and the fake
    // Twilio's SMS kept for the API.
    // It ends once every sender is gone: the app's and the scheduler's.
    let logger = {
        let (metrics, fake_sms) = (app.metrics.clone(), app.fake_sms.clone());
        let activity = app.activity.clone();
        tokio::spawn(async move {
            while let Some(logged) = printed.recv().await {
                match logged {
                    Logged::Call(record) => {
                        metrics.call(&record);
                        activity.publish(&record);
                        print_call(&record);
                    }
                    Logged::Line(line) => {
                        if let Some(sms) = line.get("sms") {
                            metrics.fake_request();
                            let mut kept = fake_sms.lock().unwrap();
                            kept.push_back(sms.clone());
                            while kept.len() > KEEP_FAKE_SMS {
                                kept.pop_front();
                            }
                        }
                        print_line(&line);
                    }
                }
            }
        })
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = {
        let shards = app.shards.clone();
        tokio::spawn(async move {
            scheduler::schedule(shards, storage, lines, stopped, lease_ms, None).await
        })
    };
    // Memory follows the tenants active lately: idle sandboxes go.
    let sweeper = {
        let (shards, idle) = (app.shards.clone(), app.options.sandbox_idle);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(
                SANDBOX_SWEEP
                    .min(idle)
                    .max(std::time::Duration::from_millis(100)),
            );
            loop {
                every.tick().await;
                for rt in shards.all() {
                    rt.lock().await.evict_idle(idle);
                }
            }
        })
    };
    tracing::info!("serving on http://{addr}");
    // Open pages' event streams end with the service, not at the drain
    // deadline.
    let shutdown = {
        let activity = app.activity.clone();
        async move {
            shutdown.await;
            activity.close();
        }
    };
    listen::serve(listener, router(app.clone()), app.options.limits, shutdown).await?;
    let _ = stop.send(true);
    sweeper.abort();
    scheduler.await??;
    drop(app);
    let _ = logger.await;
    Ok(())
}

/// A line that is no call (the fake Twilio's SMS) in the log; the number
/// it went to masked.
fn print_line(line: &Value) {
    if let Some(sms) = line.get("sms") {
        tracing::info!(
            tenant = sms["tenant"].as_str().unwrap_or(""),
            "fake Twilio took an SMS to {}",
            sms_host::json::mask(sms["form"]["To"].as_str().unwrap_or(""))
        );
    }
}

/// One call in the log: its tenant, export, answer (one word), timer and
/// lag as fields, what it answered as the message (JSON, as the API
/// answers it).
fn print_call(record: &CallRecord) {
    let line = record.to_json();
    let detail = line
        .get("outcome")
        .or_else(|| line.get("error"))
        .or_else(|| line.get("trap"))
        .map(Value::to_string)
        .unwrap_or_default();
    tracing::info!(
        target: "sms_serve::call",
        tenant = %record.tenant,
        call = record.call,
        answer = %record.kind(),
        key = record.key.as_deref(),
        lag_ms = record.lag_ms,
        "{detail}"
    );
}

/// Where the service's log goes: stderr, as text or one JSON object per
/// line (`--log-format json`), at `RUST_LOG`'s levels (`info` unless set).
/// Once per process; later calls change nothing.
pub fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let _ = if json {
        logs.json().flatten_event(true).try_init()
    } else {
        logs.try_init()
    };
}

/// `serve` from the CLI: the signal stops it.
pub async fn run(
    bind: std::net::SocketAddr,
    storage: Arc<dyn Storage>,
    options: Options,
) -> wasmtime::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    serve(listener, storage, options, scheduler::shutdown_signal()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounds_in_use_are_kept_past_the_limit() {
        let mut limits = HashMap::new();
        let held = Arc::new(Semaphore::new(TENANT_CONCURRENCY));
        let permit = held.clone().try_acquire_owned().unwrap();
        limits.insert("busy".to_owned(), held);
        let waiting = Arc::new(Semaphore::new(TENANT_CONCURRENCY));
        limits.insert("waited-on".to_owned(), waiting.clone());
        limits.insert(
            "idle".to_owned(),
            Arc::new(Semaphore::new(TENANT_CONCURRENCY)),
        );
        forget_unused(&mut limits);
        let mut kept: Vec<&str> = limits.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["busy", "waited-on"]);
        drop((permit, waiting));
        forget_unused(&mut limits);
        assert!(limits.is_empty());
    }
}
