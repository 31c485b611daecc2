//! `serve`'s command line: the `sms-serve` binary's, and `host-test
//! serve`'s (which runs the component its build made unless told another).

use crate::TwilioTarget;
use clap::Parser;
use sms_host::storage;
use std::path::PathBuf;
use std::process::ExitCode;

/// The shortest operator token `serve` accepts: one that can be guessed
/// is no token.
const MIN_TOKEN_BYTES: usize = 16;

/// The extension as an HTTP service: a JSON API under /v1 (operator
/// token), CometChat's webhooks, Twilio's status callbacks, /healthz and
/// /metrics. Timers fire on the wall clock.
#[derive(Parser, Debug)]
#[command(name = "sms-serve")]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "SMS_BIND", default_value = "127.0.0.1:8080")]
    bind: std::net::SocketAddr,
    /// Where tenants' data lives: sqlite:PATH (one process) or
    /// postgres://… (several processes may share it).
    #[arg(long, env = "SMS_DB", default_value = "sqlite:sms-notification.db")]
    db: String,
    /// The operator's bearer token for /v1 (`Authorization: Bearer …`).
    #[arg(long, env = "SMS_OPERATOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Serve without an operator token: only on a loopback address.
    #[arg(long)]
    insecure_no_auth: bool,
    /// CometChat's REST API for tenants that saved their CometChat app:
    /// a stand-in's base URL (`{URL}/v3/users/{uid}`); default
    /// https://{appId}.api-{region}.cometchat.io.
    #[arg(long, env = "SMS_COMETCHAT_URL")]
    cometchat_url: Option<String>,
    /// Serve an in-process stand-in for CometChat's REST API (no
    /// CometChat app needed): it answers with the users pushed through
    /// PUT /v1/tenants/{tenant}/users/{uid}, to the REST API key the
    /// tenant saved.
    #[arg(long)]
    fake_cometchat: bool,
    /// Twilio's base URL (another server may stand in for it).
    #[arg(long, env = "SMS_TWILIO_URL", default_value = "https://api.twilio.com")]
    twilio_url: String,
    /// Use the in-process fake Twilio instead (no account needed);
    /// what it received: GET /v1/fake-twilio/sms.
    #[arg(long)]
    fake_twilio: bool,
    /// The public base URL Twilio calls status callbacks on (for their
    /// signatures), e.g. https://sms.example.com; default: the
    /// request's Host header.
    #[arg(long, env = "SMS_PUBLIC_URL")]
    public_url: Option<String>,
    /// The component's .wasm (any contract version this host loads);
    /// required, except under `host-test serve` (the one its build made).
    #[arg(long, env = "SMS_WASM")]
    wasm: Option<String>,
    /// Largest request body, in bytes (larger: 413, refused on its
    /// declared length before any of it is read).
    #[arg(long, env = "SMS_MAX_BODY", default_value_t = crate::MAX_BODY)]
    max_body: usize,
    /// Seconds a request's body may take to arrive (408 past it).
    #[arg(long, env = "SMS_BODY_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    body_timeout: u64,
    /// Seconds a request's headers may take to arrive; also how long a
    /// keep-alive connection may wait idle.
    #[arg(long, env = "SMS_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    header_timeout: u64,
    /// Connections open at once (more wait in the backlog).
    #[arg(long, env = "SMS_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_connections: u64,
    /// Most sandboxes resident at once (the least recently used is
    /// dropped first; its tenant's next call makes a new one).
    #[arg(long, env = "SMS_MAX_SANDBOXES", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    max_sandboxes: u64,
    /// Seconds a sandbox may sit uncalled before it is dropped (its
    /// tenant's next call makes a new one, in about 10 µs).
    #[arg(long, env = "SMS_SANDBOX_IDLE_SECONDS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    sandbox_idle_seconds: u64,
    /// Most users one tenant may have (a new one past it: 422).
    #[arg(long, env = "SMS_MAX_USERS", default_value_t = 100_000)]
    max_users: u64,
    /// Most bytes of one user's name and metadata (past it: 413).
    #[arg(long, env = "SMS_MAX_USER_BYTES", default_value_t = 16 << 10)]
    max_user_bytes: usize,
    /// Most records in one tenant's state (a commit past it is refused
    /// whole: the call's `host` error, nothing stored changed).
    #[arg(long, env = "SMS_MAX_STATE_KEYS", default_value_t = 1_000_000)]
    max_state_keys: usize,
    /// Seconds requests in flight get after SIGTERM before the rest are
    /// dropped and the process exits.
    #[arg(long, env = "SMS_SHUTDOWN_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=600))]
    shutdown_seconds: u64,
    /// Log format on stderr: text, or one JSON object per line (levels
    /// from RUST_LOG, `info` by default).
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormat,
    /// Due timers' calls run at once, over all tenants: each may be an SMS
    /// waiting on Twilio.
    #[arg(long, env = "SMS_TIMERS_IN_FLIGHT", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    timers_in_flight: u64,
    /// One tenant's calls at once (events and due timers, each in its
    /// conversation's lane): each may be an SMS waiting on Twilio, whose
    /// account concurrency is commonly 100 requests.
    #[arg(long, env = "SMS_CALLS_PER_TENANT", default_value_t = sms_host::tenants::PER_TENANT as u64, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    calls_per_tenant: u64,
    /// The file holding the key that seals settings at rest (32 bytes,
    /// base64). SMS_SETTINGS_KEY (the key itself) takes precedence.
    /// Default for sqlite:PATH: PATH.key, created on first use.
    #[arg(long, env = "SMS_SETTINGS_KEY_FILE")]
    settings_key_file: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// Runs `serve` as `args` say; `wasm` is the component when `--wasm` is
/// not given (`host-test serve` passes its build's).
pub async fn run(args: Args, wasm: Option<&str>) -> ExitCode {
    let Args {
        bind,
        db,
        token,
        insecure_no_auth,
        cometchat_url,
        fake_cometchat,
        twilio_url,
        fake_twilio,
        public_url,
        wasm: given,
        max_body,
        body_timeout,
        header_timeout,
        max_connections,
        max_sandboxes,
        sandbox_idle_seconds,
        max_users,
        max_user_bytes,
        max_state_keys,
        shutdown_seconds,
        log_format,
        timers_in_flight,
        calls_per_tenant,
        settings_key_file,
    } = args;
    crate::init_logs(matches!(log_format, LogFormat::Json));
    let Some(wasm) = given.or(wasm.map(str::to_owned)) else {
        eprintln!("error: --wasm PATH (or SMS_WASM): the component's .wasm to run");
        return ExitCode::FAILURE;
    };

    let token = token.filter(|t| !t.is_empty());
    if token.is_none() && !(insecure_no_auth && bind.ip().is_loopback()) {
        eprintln!(
            "error: serve needs an operator token (--token or SMS_OPERATOR_TOKEN); \
             without one it only starts on a loopback address with --insecure-no-auth"
        );
        return ExitCode::FAILURE;
    }
    if let Some(t) = &token
        && t.len() < MIN_TOKEN_BYTES
    {
        eprintln!(
            "error: the operator token is {} bytes; it must have at least {MIN_TOKEN_BYTES} \
             (make one with: head -c 24 /dev/urandom | base64)",
            t.len()
        );
        return ExitCode::FAILURE;
    }
    let cometchat = match cometchat_url {
        None => crate::directory::Endpoint::CometChat,
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            crate::directory::Endpoint::At(url)
        }
        Some(url) => {
            eprintln!("error: --cometchat-url {url:?} is not an http(s) URL");
            return ExitCode::FAILURE;
        }
    };
    let twilio = match TwilioTarget::parse(fake_twilio, &twilio_url) {
        Ok(twilio) => twilio,
        Err(why) => {
            eprintln!("error: {why}");
            return ExitCode::FAILURE;
        }
    };
    let Some(storage) = open(&db, settings_key_file.as_deref()).await else {
        return ExitCode::FAILURE;
    };
    let options = crate::Options {
        token,
        cometchat,
        fake_cometchat,
        max_body,
        body_timeout: std::time::Duration::from_secs(body_timeout),
        limits: crate::listen::Limits {
            max_connections: max_connections as usize,
            header_timeout: std::time::Duration::from_secs(header_timeout),
            shutdown_deadline: std::time::Duration::from_secs(shutdown_seconds),
        },
        max_sandboxes: max_sandboxes as usize,
        sandbox_idle: std::time::Duration::from_secs(sandbox_idle_seconds),
        quotas: crate::Quotas {
            users: max_users,
            user_bytes: max_user_bytes,
            state_keys: max_state_keys,
        },
        window: sms_host::scheduler::Window {
            max_in_flight: timers_in_flight as usize,
            per_tenant: calls_per_tenant as usize,
        },
        twilio,
        lease_ms: sms_host::scheduler::LEASE_MS,
        public_url,
        wasm,
    };
    match crate::run(bind, storage, options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The store `db` names (see [`storage::open_configured`]), or `None`
/// after saying why it cannot be opened.
pub async fn open(
    db: &str,
    key_file: Option<&std::path::Path>,
) -> Option<std::sync::Arc<dyn storage::Storage>> {
    storage::open_configured(db, key_file)
        .await
        .inspect_err(|e| eprintln!("error: {e}"))
        .ok()
}
