//! The call log: every call's record counted (`/metrics`), shown to the
//! tenant's open pages and printed through `tracing`; the fake Twilio's
//! SMS kept for its route.

use super::App;
use serde_json::Value;
use sms_host::call::{CallRecord, Logged, Reply};
use std::sync::Arc;
use tokio::sync::mpsc;

/// SMS the fake Twilio keeps for `GET /v1/fake-twilio/sms`.
const KEEP_FAKE_SMS: usize = 200;

/// Reads the call log until every sender is gone: counts each call,
/// publishes it to the tenant's pages and prints it (numbers already
/// masked by the component; the fake Twilio's own lines mask theirs);
/// keeps the fake Twilio's SMS for the API.
pub fn spawn(
    app: &Arc<App>,
    mut printed: mpsc::UnboundedReceiver<Logged>,
) -> tokio::task::JoinHandle<()> {
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
    let detail = match &record.reply {
        Reply::Outcome(o) => sms_host::json::outcome(o).to_string(),
        Reply::Error(e) => sms_host::json::error(e).to_string(),
        Reply::Trap(t) => Value::String(t.clone()).to_string(),
    };
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
