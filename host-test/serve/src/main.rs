//! `sms-serve --wasm PATH …`: the service on its own (see `--help`).

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    sms_serve::cli::run(sms_serve::cli::Args::parse(), None).await
}
