//! `GET /metrics`: counters in Prometheus' text format, fed by the record
//! of every call ([`CallRecord`]).

use sms_host::call::CallRecord;
use sms_host::outbound::{LATENCY_BUCKETS_MS, Latency};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Unknown webhook triggers counted by name; later ones count as `other`.
pub const UNKNOWN_NAMES: usize = 64;

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Calls by export and by what they answered (an outcome's kind, an
    /// error's kind, or `trap`).
    calls: BTreeMap<(String, String), u64>,
    /// Requests the fake Twilio took.
    requests: u64,
    http: BTreeMap<(String, u16), u64>,
    /// CometChat webhooks by system, trigger and answer.
    webhooks: BTreeMap<(&'static str, String, String), u64>,
    /// Names of unknown triggers counted so far (bounded).
    unknown: std::collections::BTreeSet<String>,
    /// How late due timers' calls started.
    lag: Latency,
}

impl Metrics {
    /// Counts one call (by export and what it answered) and, for a
    /// timer, how late it started.
    pub fn call(&self, record: &CallRecord) {
        let mut m = self.inner.lock().unwrap();
        *m.calls
            .entry((record.call.to_owned(), record.kind()))
            .or_default() += 1;
        if let Some(lag) = record.lag_ms {
            m.lag.record(lag);
        }
    }

    /// Counts one request the fake Twilio took.
    pub fn fake_request(&self) {
        self.inner.lock().unwrap().requests += 1;
    }

    /// Counts one CometChat webhook. A trigger neither system documents is
    /// counted by its name (letters, digits, `_`, `-`, `.`; at most 64
    /// characters) for the first [`UNKNOWN_NAMES`] names, then as `other`:
    /// the names come from outside.
    pub fn webhook(&self, system: &'static str, trigger: &str, answer: &str) {
        let mut m = self.inner.lock().unwrap();
        let trigger = if super::cometchat::documented(trigger) {
            trigger.to_owned()
        } else {
            let clean: String = trigger
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .take(64)
                .collect();
            if m.unknown.contains(&clean) || m.unknown.len() < UNKNOWN_NAMES && !clean.is_empty() {
                m.unknown.insert(clean.clone());
                clean
            } else {
                "other".to_owned()
            }
        };
        *m.webhooks
            .entry((system, trigger, answer.to_owned()))
            .or_default() += 1;
    }

    /// Counts one HTTP response.
    pub fn http(&self, route: &str, status: u16) {
        let mut m = self.inner.lock().unwrap();
        *m.http.entry((route.to_owned(), status)).or_default() += 1;
    }

    pub fn render(&self, twilio: &Latency, timers: Option<Vec<(String, u64)>>) -> String {
        let m = self.inner.lock().unwrap();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP sms_calls_total Calls into the component, by export and answer (outcome kind, error:KIND, trap).\n# TYPE sms_calls_total counter"
        );
        for ((call, answer), n) in &m.calls {
            let _ = writeln!(
                out,
                "sms_calls_total{{call=\"{call}\",answer=\"{answer}\"}} {n}"
            );
        }
        let count = |answer: &str| -> u64 {
            m.calls
                .iter()
                .filter(|((_, a), _)| a == answer)
                .map(|(_, n)| n)
                .sum()
        };
        for (name, help, answer) in [
            ("sms_sent_total", "SMS Twilio accepted.", "sent"),
            ("sms_failed_total", "Notifications given up.", "failed"),
            (
                "sms_retried_total",
                "Attempts Twilio asked to repeat.",
                "retrying",
            ),
            (
                "sms_traps_total",
                "Calls that trapped (the sandbox was replaced).",
                "trap",
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                count(answer)
            );
        }
        let _ = writeln!(
            out,
            "# HELP sms_fake_twilio_requests_total Requests the in-process fake Twilio took.\n# TYPE sms_fake_twilio_requests_total counter\nsms_fake_twilio_requests_total {}",
            m.requests
        );
        if let Some(timers) = timers {
            let total: u64 = timers.iter().map(|(_, n)| n).sum();
            let _ = writeln!(
                out,
                "# HELP sms_timers Timers set, all tenants, every kind.\n# TYPE sms_timers gauge\nsms_timers {total}"
            );
            let _ = writeln!(
                out,
                "# HELP sms_timers_by_kind Timers set, all tenants, by kind: deliver (pending notifications, retries, waits), expire (records that may go once quiet for a day).\n# TYPE sms_timers_by_kind gauge"
            );
            for (kind, n) in timers {
                let kind = kind
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = writeln!(out, "sms_timers_by_kind{{kind=\"{kind}\"}} {n}");
            }
        }
        histogram(
            &mut out,
            "sms_twilio_latency_seconds",
            "How long Twilio took to answer an SMS request (its head).",
            twilio,
        );
        histogram(
            &mut out,
            "sms_timer_lag_seconds",
            "How late a due timer's call started.",
            &m.lag,
        );
        let _ = writeln!(
            out,
            "# HELP sms_webhooks_total CometChat webhooks by system (legacy, current, unknown), trigger and answer (an outcome's kind, ignored, unknown, presence, stale, unknown-user, malformed, unauthorized).\n# TYPE sms_webhooks_total counter"
        );
        for ((system, trigger, answer), n) in &m.webhooks {
            let _ = writeln!(
                out,
                "sms_webhooks_total{{system=\"{system}\",trigger=\"{trigger}\",answer=\"{answer}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP sms_http_responses_total HTTP responses by route and status.\n# TYPE sms_http_responses_total counter"
        );
        for ((route, status), n) in &m.http {
            let _ = writeln!(
                out,
                "sms_http_responses_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out
    }
}

/// A Prometheus histogram from millisecond buckets.
fn histogram(out: &mut String, name: &str, help: &str, h: &Latency) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for (bound, n) in LATENCY_BUCKETS_MS.iter().zip(h.buckets) {
        let _ = writeln!(
            out,
            "{name}_bucket{{le=\"{}\"}} {n}",
            *bound as f64 / 1000.0
        );
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum {}", h.sum_ms as f64 / 1000.0);
    let _ = writeln!(out, "{name}_count {}", h.count);
}
