//! The host-test CLI: `demo` tells the story, `run FILE` runs a scenario.

use clap::{Parser, Subcommand};
use host_test::demo::{self, Twilio};
use host_test::outbound::Policy;
use host_test::runtime::Runtime;
use host_test::scenario;
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
    },
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
        Command::Run { file } => {
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
            let mut runtime = match Runtime::new(Policy::default()) {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::FAILURE;
                }
            };
            let mut stdout = std::io::stdout().lock();
            let mut print = |line: serde_json::Value| {
                let _ = writeln!(stdout, "{line}");
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
