//! The host-test CLI: `demo` tells the story, `run FILE` runs a scenario,
//! `host` runs a durable host on the wall clock, `serve` the HTTP service.

use clap::{Parser, Subcommand};
use host_test::demo::{self, Twilio};
use host_test::outbound::{Mode, Policy};
use host_test::runtime::Runtime;
use host_test::scenario;
use host_test::storage::sealed::Key;
use host_test::{engine, live, storage};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(about = "Runs the sms-notification component in a wasmtime host")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tells a short story through the real component: one SMS for an
    /// unread message, none for a message read in time.
    Demo {
        /// Send one real SMS through api.twilio.com. Needs TWILIO_ACCOUNT_SID,
        /// TWILIO_AUTH_TOKEN, TWILIO_FROM and SMS_TO in the environment.
        #[arg(long)]
        live: bool,
    },
    /// Runs a scenario file (JSON Lines) and prints one JSON line per call
    /// and per SMS the fake Twilio received.
    Run {
        /// The scenario file.
        file: PathBuf,
        /// Where tenants' data lives: memory:, sqlite:PATH or postgres://…
        #[arg(long, default_value = "memory:")]
        db: String,
    },
    /// A host on the wall clock: reads events (scenario steps other than
    /// `advance`) as JSON lines on stdin, fires timers as they come due,
    /// prints one JSON line per call.
    Host {
        /// Where tenants' data lives: sqlite:PATH (one process) or
        /// postgres://… (several processes may share it).
        #[arg(long, env = "SMS_DB", default_value = "sqlite:sms-notification.db")]
        db: String,
        /// Twilio's base URL (another server may stand in for it, e.g. a
        /// fake on loopback: http://127.0.0.1:8099).
        #[arg(long, env = "SMS_TWILIO_URL", default_value = "https://api.twilio.com")]
        twilio_url: String,
        /// Use the in-process fake Twilio instead (no account needed).
        #[arg(long)]
        fake_twilio: bool,
        /// Runtimes tenants are spread over (calls into different tenants
        /// run concurrently).
        #[arg(long, default_value_t = 4)]
        shards: usize,
        /// Exit once stdin is closed and no timer is left.
        #[arg(long)]
        until_idle: bool,
        /// The file holding the key that seals settings at rest (32 bytes,
        /// base64). SMS_SETTINGS_KEY (the key itself) takes precedence.
        /// Default for sqlite:PATH: PATH.key, created on first use.
        #[arg(long, env = "SMS_SETTINGS_KEY_FILE")]
        settings_key_file: Option<PathBuf>,
        /// How long a due timer stays with the process that claimed it
        /// before another may fire it (a process that died mid-call). Past
        /// the 30 s call deadline by default; shorter only gives up more
        /// notifications as cut off mid-send, never sends one twice.
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
        lease_seconds: u64,
    },
    /// The extension as an HTTP service: a JSON API under /v1 (operator
    /// token), CometChat's legacy webhooks, Twilio's status callbacks,
    /// /healthz and /metrics. Timers fire on the wall clock.
    Serve {
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
        /// default: the one this build made.
        #[arg(long, env = "SMS_WASM")]
        wasm: Option<String>,
        /// Largest request body, in bytes (larger: 413, refused on its
        /// declared length before any of it is read).
        #[arg(long, env = "SMS_MAX_BODY", default_value_t = host_test::serve::MAX_BODY)]
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
        /// Log format on stderr.
        #[arg(long, value_enum, default_value = "human")]
        log_format: LogFormat,
        /// Runtimes tenants are spread over.
        #[arg(long, default_value_t = 32)]
        shards: usize,
        /// The file holding the key that seals settings at rest (32 bytes,
        /// base64). SMS_SETTINGS_KEY (the key itself) takes precedence.
        /// Default for sqlite:PATH: PATH.key, created on first use.
        #[arg(long, env = "SMS_SETTINGS_KEY_FILE")]
        settings_key_file: Option<PathBuf>,
    },
}

/// The shortest operator token `serve` accepts: one that can be guessed
/// is no token.
const MIN_TOKEN_BYTES: usize = 16;

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

/// `--twilio-url` as the outbound mode, or why it is not one.
fn twilio_mode(fake: bool, url: &str) -> Result<Mode, String> {
    if fake {
        return Ok(Mode::Fake);
    }
    if url.trim_end_matches('/') == "https://api.twilio.com" {
        return Ok(Mode::Live);
    }
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => Ok(Mode::Forward(uri)),
        _ => Err(format!("--twilio-url {url:?} is not an http(s) URL")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Demo { live } => {
            let twilio = if live {
                match Twilio::live(|name| std::env::var(name).ok()) {
                    Ok(twilio) => twilio,
                    Err(why) => {
                        eprintln!("error: {why}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                Twilio::fake()
            };
            let mut stdout = std::io::stdout().lock();
            match demo::story(&mut stdout, twilio).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Host {
            db,
            twilio_url,
            fake_twilio,
            shards,
            until_idle,
            settings_key_file,
            lease_seconds,
        } => {
            let mode = match twilio_mode(fake_twilio, &twilio_url) {
                Ok(mode) => mode,
                Err(why) => {
                    eprintln!("error: {why}");
                    return ExitCode::FAILURE;
                }
            };
            let Some(storage) = open(&db, settings_key_file.as_deref()).await else {
                return ExitCode::FAILURE;
            };
            let options = live::Options {
                shards,
                policy: Policy {
                    mode,
                    ..Policy::default()
                },
                until_idle,
                lease_ms: lease_seconds * 1000,
            };
            match live::host(storage, options).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve {
            bind,
            db,
            token,
            insecure_no_auth,
            cometchat_url,
            fake_cometchat,
            twilio_url,
            fake_twilio,
            public_url,
            wasm,
            max_body,
            body_timeout,
            header_timeout,
            max_connections,
            max_sandboxes,
            max_users,
            max_user_bytes,
            max_state_keys,
            shutdown_seconds,
            log_format,
            shards,
            settings_key_file,
        } => {
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
                None => host_test::serve::directory::Endpoint::CometChat,
                Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
                    host_test::serve::directory::Endpoint::At(url)
                }
                Some(url) => {
                    eprintln!("error: --cometchat-url {url:?} is not an http(s) URL");
                    return ExitCode::FAILURE;
                }
            };
            let mode = match twilio_mode(fake_twilio, &twilio_url) {
                Ok(mode) => mode,
                Err(why) => {
                    eprintln!("error: {why}");
                    return ExitCode::FAILURE;
                }
            };
            let Some(storage) = open(&db, settings_key_file.as_deref()).await else {
                return ExitCode::FAILURE;
            };
            let options = host_test::serve::Options {
                token,
                cometchat,
                fake_cometchat,
                max_body,
                body_timeout: std::time::Duration::from_secs(body_timeout),
                limits: host_test::serve::listen::Limits {
                    max_connections: max_connections as usize,
                    header_timeout: std::time::Duration::from_secs(header_timeout),
                    shutdown_deadline: std::time::Duration::from_secs(shutdown_seconds),
                },
                max_sandboxes: max_sandboxes as usize,
                quotas: host_test::serve::Quotas {
                    users: max_users,
                    user_bytes: max_user_bytes,
                    state_keys: max_state_keys,
                },
                shards,
                policy: Policy {
                    mode,
                    ..Policy::default()
                },
                lease_ms: host_test::runtime::LEASE_MS,
                public_url,
                json_logs: matches!(log_format, LogFormat::Json),
                wasm,
            };
            match host_test::serve::run(bind, storage, options).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { file, db } => {
            let script = match std::fs::read_to_string(&file) {
                Ok(script) => script,
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            let steps = match scenario::parse(&script) {
                Ok(steps) => steps,
                Err(malformed) => {
                    eprintln!("error: {}: {malformed}", file.display());
                    return ExitCode::FAILURE;
                }
            };
            let Some(storage) = open(&db, None).await else {
                return ExitCode::FAILURE;
            };
            let mut runtime = match engine::prepared() {
                Ok(pre) => Runtime::on(Policy::default(), pre, storage),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            let mut print = |line: serde_json::Value| {
                let _ = writeln!(std::io::stdout(), "{line}");
            };
            match scenario::run(&mut runtime, steps, &mut print).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// The store `db` names, settings sealed with the key `SMS_SETTINGS_KEY`
/// or `key_file` holds (see `storage::open_sealed` for the default), or
/// `None` after saying why it cannot be opened.
async fn open(
    db: &str,
    key_file: Option<&std::path::Path>,
) -> Option<std::sync::Arc<dyn storage::Storage>> {
    let opened = match settings_key(key_file) {
        Ok(key) => storage::open_sealed(db, key)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    opened.inspect_err(|e| eprintln!("error: {e}")).ok()
}

/// The settings key: `SMS_SETTINGS_KEY` (base64), else the key file, else
/// none (the store's default; see `storage::open_sealed`).
fn settings_key(file: Option<&std::path::Path>) -> Result<Option<Key>, String> {
    if let Ok(text) = std::env::var("SMS_SETTINGS_KEY") {
        return Key::from_base64(&text).map(Some);
    }
    file.map(|path| Key::from_file(path, false)).transpose()
}
