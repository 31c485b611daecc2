//! `sms-serve`: the extension as an HTTP service any chat server can
//! call. A JSON API under `/v1` (operator bearer token), CometChat's legacy
//! webhooks, Twilio's status callbacks, `/healthz` and `/metrics`. Calls go
//! to the tenants' runtimes ([`sms_host::tenants::Tenants`]); due timers fire on
//! the wall clock from the same scheduler `host` uses. Product decisions
//! stay in the component: this module only translates HTTP.

mod access;
mod activity;
mod api;
mod call_log;
pub mod cli;
pub mod cometchat;
mod credentials;
pub mod directory;
mod guard;
pub mod listen;
mod metrics;
mod openapi;
mod options;
mod shared;
pub mod try_out;

pub use call_log::init_logs;
use options::status_callback;
pub use options::{MAX_BODY, Options, Quotas, TENANT_CONCURRENCY, TENANT_WAIT, TwilioTarget};
use shared::App;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use metrics::Metrics;
use sms_host::call::Logged;
use sms_host::outbound::{Forward, Policy, Twilio};
use sms_host::scheduler;
use sms_host::storage::Storage;
use sms_host::tenants::Tenants;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

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

/// How often idle sandboxes are looked for.
const SANDBOX_SWEEP: std::time::Duration = std::time::Duration::from_secs(60);

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
    // Sandboxes come from the pooling allocator: slots for the resident
    // ones, plus one for every call that may hold a runtime the LRU bound
    // cannot drop (timer calls and requests in flight). The default
    // allocator reserves 4 GiB of address space per sandbox and fails
    // past about 9,000 of them.
    let slots = options
        .max_sandboxes
        .saturating_add(options.window.max_in_flight)
        .saturating_add(options.limits.max_connections);
    let engine = sms_host::engine::build(Some(u32::try_from(slots).unwrap_or(u32::MAX)))?;
    let pre = sms_host::engine::prepare_file(&engine, &options.wasm)?;
    let contract = pre.version();
    tracing::info!("component {} (contract {contract})", options.wasm);
    let (lines, printed) = mpsc::unbounded_channel::<Logged>();
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
    let mut tenants = Tenants::new(&storage, &policy, pre, {
        let (directory, status_callback) = (directory.clone(), status_callback.clone());
        move |rt| {
            rt.set_directory(directory.clone());
            rt.set_status_callback(status_callback.clone());
        }
    });
    tenants.max_resident = options.max_sandboxes;
    tenants.per_tenant = options.window.per_tenant;
    let (lease_ms, window) = (options.lease_ms, options.window);
    let app = Arc::new(App {
        tenants: Arc::new(tenants),
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
    // The call log; it ends once every sender is gone: the app's and the
    // scheduler's.
    let logger = call_log::spawn(&app, printed);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = {
        let tenants = app.tenants.clone();
        tokio::spawn(async move {
            scheduler::schedule(tenants, storage, lines, stopped, lease_ms, window, None).await
        })
    };
    // Memory follows the tenants active lately: idle sandboxes go.
    let sweeper = {
        let (tenants, idle) = (app.tenants.clone(), app.options.sandbox_idle);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(
                SANDBOX_SWEEP
                    .min(idle)
                    .max(std::time::Duration::from_millis(100)),
            );
            loop {
                every.tick().await;
                tenants.evict_idle(idle);
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

/// `serve` from the CLI: the signal stops it.
pub async fn run(
    bind: std::net::SocketAddr,
    storage: Arc<dyn Storage>,
    options: Options,
) -> wasmtime::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    serve(listener, storage, options, scheduler::shutdown_signal()).await
}
