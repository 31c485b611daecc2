//! The host-test CLI: `demo` tells the story, `run FILE` runs a scenario,
//! `host` runs a durable host on the wall clock, `serve` the HTTP service.

use clap::{Parser, Subcommand};
use host_test::TestRuntime;
use host_test::demo::{self, Twilio};
use host_test::fake_twilio::FakeTwilio;
use host_test::outbound::{Forward, Policy, Twilio as LiveTwilio};
use host_test::scenario;
use host_test::stdin_host;
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
        /// Due timers' calls run at once, over all tenants (a tenant's own
        /// up to 64 at once, one per conversation and recipient).
        #[arg(long, default_value_t = 256)]
        timers_in_flight: usize,
        /// Exit once stdin is closed and no timer is due within the hour
        /// (records' daily expiry timers wait for the next run).
        #[arg(long)]
        until_idle: bool,
        /// The file holding the key that seals settings at rest (32 bytes,
        /// base64). SMS_SETTINGS_KEY (the key itself) takes precedence.
        /// Default for sqlite:PATH: PATH.key, created on first use.
        #[arg(long, env = "SMS_SETTINGS_KEY_FILE")]
        settings_key_file: Option<PathBuf>,
        /// How long a due timer stays with the process that claimed it
        /// unless renewed (renewed every third of it while its call runs):
        /// a process that dies has its timers fired by another within it.
        #[arg(long, default_value_t = sms_host::scheduler::LEASE_MS / 1000, value_parser = clap::value_parser!(u64).range(1..=3600))]
        lease_seconds: u64,
    },
    /// The extension as an HTTP service (`sms-serve`), running the
    /// component this build made unless `--wasm` names another.
    #[cfg(feature = "service")]
    Serve(Box<sms_serve::cli::Args>),
}

/// The wall-clock host's outbound policy (`--twilio-url`,
/// `--fake-twilio`), the fake Twilio when it is the fake, or why the URL
/// is not one.
fn host_twilio(fake: bool, url: &str) -> Result<(Policy, Option<FakeTwilio>), String> {
    if fake {
        let fake = FakeTwilio::default();
        return Ok((host_test::test_runtime::fake_policy(&fake), Some(fake)));
    }
    if url.trim_end_matches('/') == "https://api.twilio.com" {
        return Ok((Policy::new(std::sync::Arc::new(LiveTwilio)), None));
    }
    match url.parse::<http::Uri>() {
        Ok(uri) if uri.scheme().is_some() && uri.authority().is_some() => {
            Ok((Policy::new(std::sync::Arc::new(Forward(uri))), None))
        }
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
            timers_in_flight,
            until_idle,
            settings_key_file,
            lease_seconds,
        } => {
            // The host library's diagnostics on stderr (stdout is the
            // call lines), at RUST_LOG's levels, `info` by default.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false)
                .try_init();
            let (policy, fake) = match host_twilio(fake_twilio, &twilio_url) {
                Ok(twilio) => twilio,
                Err(why) => {
                    eprintln!("error: {why}");
                    return ExitCode::FAILURE;
                }
            };
            let Some(storage) = open(&db, settings_key_file.as_deref()).await else {
                return ExitCode::FAILURE;
            };
            let options = stdin_host::Options {
                window: sms_host::scheduler::Window {
                    max_in_flight: timers_in_flight.max(1),
                    ..Default::default()
                },
                policy,
                fake,
                until_idle,
                lease_ms: lease_seconds * 1000,
            };
            match stdin_host::host(storage, options).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        #[cfg(feature = "service")]
        Command::Serve(args) => sms_serve::cli::run(*args, Some(host_test::COMPONENT)).await,
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
            let mut runtime = match host_test::prepared() {
                Ok(pre) => TestRuntime::on(pre, storage),
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

/// The store `db` names (see [`host_test::storage::open_configured`]), or
/// `None` after saying why it cannot be opened.
async fn open(
    db: &str,
    key_file: Option<&std::path::Path>,
) -> Option<std::sync::Arc<dyn host_test::storage::Storage>> {
    host_test::storage::open_configured(db, key_file)
        .await
        .inspect_err(|e| eprintln!("error: {e}"))
        .ok()
}
