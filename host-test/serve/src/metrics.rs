//! `GET /metrics`: the service's counters, gauges and histograms in a
//! [`prometheus_client`] registry, encoded as OpenMetrics text. Calls are
//! counted from their typed record ([`CallRecord`]); Twilio's answer times
//! come from the runtimes' shared figures at each scrape; the timers are
//! read from the store at each scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use sms_host::call::CallRecord;
use sms_host::outbound::{LATENCY_BUCKETS_MS, Stats};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Unknown webhook triggers counted by name; later ones count as `other`.
pub const UNKNOWN_NAMES: usize = 64;

/// What `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    call: String,
    answer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    system: String,
    trigger: String,
    answer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

pub struct Metrics {
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    sent: Counter,
    failed: Counter,
    retried: Counter,
    traps: Counter,
    fake_requests: Counter,
    forged: Counter,
    webhooks: Family<WebhookLabels, Counter>,
    http: Family<HttpLabels, Counter>,
    lag: Histogram,
    timers: Gauge,
    timers_by_kind: Family<KindLabels, Gauge>,
    sandboxes: Gauge,
    /// Names of unknown triggers counted so far (bounded).
    unknown: Mutex<BTreeSet<String>>,
}

/// Twilio's answer times as the runtimes measured them (their shared
/// figures), encoded at each scrape.
#[derive(Debug)]
struct TwilioLatency(Arc<Stats>);

impl Collector for TwilioLatency {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let h = self.0.latency.lock().unwrap().clone();
        // The figures are cumulative per bound; the encoder adds them up.
        let mut buckets = Vec::with_capacity(LATENCY_BUCKETS_MS.len() + 1);
        let mut below = 0;
        for (bound, n) in LATENCY_BUCKETS_MS.iter().zip(h.buckets) {
            buckets.push((*bound as f64 / 1000.0, n - below));
            below = n;
        }
        buckets.push((f64::INFINITY, h.count - below));
        let metric = encoder.encode_descriptor(
            "sms_twilio_latency_seconds",
            "How long Twilio took to answer an SMS request (its head)",
            None,
            MetricType::Histogram,
        )?;
        TwilioHistogram {
            sum: h.sum_ms as f64 / 1000.0,
            count: h.count,
            buckets,
        }
        .encode(metric)
    }
}

/// Calls run again after a conflicting commit, as the runtimes counted
/// them (their shared figures), encoded at each scrape.
#[derive(Debug)]
struct Reruns(Arc<Stats>);

impl Collector for Reruns {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let n = self.0.reruns.load(std::sync::atomic::Ordering::Relaxed);
        let metric = encoder.encode_descriptor(
            "sms_calls_rerun",
            "Calls run again from the start because their commit met a record another call (in this process or another) changed since they read it",
            None,
            MetricType::Counter,
        )?;
        prometheus_client::metrics::counter::ConstCounter::new(n).encode(metric)
    }
}

#[derive(Debug)]
struct TwilioHistogram {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for TwilioHistogram {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::MetricEncoder,
    ) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            self.sum,
            self.count,
            &self.buckets,
            None,
        )
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

impl Metrics {
    /// The registry, with Twilio's answer times read from `stats`.
    pub fn new(stats: Arc<Stats>) -> Self {
        let mut registry = Registry::default();
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "sms_calls",
            "Calls into the component, by export and answer (outcome kind, error:KIND, trap)",
            calls.clone(),
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let sent = counter(&mut registry, "sms_sent", "SMS Twilio accepted");
        let failed = counter(&mut registry, "sms_failed", "Notifications given up");
        let retried = counter(
            &mut registry,
            "sms_retried",
            "Attempts Twilio asked to repeat",
        );
        let traps = counter(
            &mut registry,
            "sms_traps",
            "Calls that trapped (the sandbox was replaced)",
        );
        let fake_requests = counter(
            &mut registry,
            "sms_fake_twilio_requests",
            "Requests the in-process fake Twilio took",
        );
        let forged = counter(
            &mut registry,
            "sms_forged_reports",
            "Status callbacks refused: not signed with their tenant's auth token, or for no tenant",
        );
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "sms_webhooks",
            "CometChat webhooks by system (legacy, current, unknown), trigger and answer (an outcome's kind, ignored, unknown, presence, stale, unknown-user, malformed, unauthorized)",
            webhooks.clone(),
        );
        let http = Family::<HttpLabels, Counter>::default();
        registry.register(
            "sms_http_responses",
            "HTTP responses by route and status",
            http.clone(),
        );
        let lag = Histogram::new(LATENCY_BUCKETS_MS.iter().map(|ms| *ms as f64 / 1000.0));
        registry.register(
            "sms_timer_lag_seconds",
            "How late a due timer's call started",
            lag.clone(),
        );
        let timers = Gauge::default();
        registry.register(
            "sms_timers",
            "Timers set, all tenants, every kind",
            timers.clone(),
        );
        let timers_by_kind = Family::<KindLabels, Gauge>::default();
        registry.register(
            "sms_timers_by_kind",
            "Timers set, all tenants, by kind: deliver (pending notifications, retries, waits), expire (records that may go once quiet for a day)",
            timers_by_kind.clone(),
        );
        let sandboxes = Gauge::default();
        registry.register(
            "sms_sandboxes",
            "Sandboxes in memory, over every tenant's pool: at most --max-sandboxes, plus those of calls in flight",
            sandboxes.clone(),
        );
        registry.register_collector(Box::new(Reruns(stats.clone())));
        registry.register_collector(Box::new(TwilioLatency(stats)));
        Self {
            registry,
            calls,
            sent,
            failed,
            retried,
            traps,
            fake_requests,
            forged,
            webhooks,
            http,
            lag,
            timers,
            timers_by_kind,
            sandboxes,
            unknown: Mutex::default(),
        }
    }

    /// Counts one call (by export and what it answered) and, for a
    /// timer, how late it started.
    pub fn call(&self, record: &CallRecord) {
        let answer = record.kind();
        match answer.as_str() {
            "sent" => self.sent.inc(),
            "failed" => self.failed.inc(),
            "retrying" => self.retried.inc(),
            "trap" => self.traps.inc(),
            _ => 0,
        };
        self.calls
            .get_or_create(&CallLabels {
                call: record.call.to_owned(),
                answer,
            })
            .inc();
        if let Some(lag) = record.lag_ms {
            self.lag.observe(lag as f64 / 1000.0);
        }
    }

    /// Counts one request the fake Twilio took.
    pub fn fake_request(&self) {
        self.fake_requests.inc();
    }

    /// Counts one refused status callback.
    pub fn forged_report(&self) -> u64 {
        self.forged.inc() + 1
    }

    /// Counts one CometChat webhook. A trigger neither system documents is
    /// counted by its name (letters, digits, `_`, `-`, `.`; at most 64
    /// characters) for the first [`UNKNOWN_NAMES`] names, then as `other`:
    /// the names come from outside.
    pub fn webhook(&self, system: &'static str, trigger: &str, answer: &str) {
        let trigger = if super::cometchat::documented(trigger) {
            trigger.to_owned()
        } else {
            let clean: String = trigger
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                .take(64)
                .collect();
            let mut unknown = self.unknown.lock().unwrap();
            if unknown.contains(&clean) || unknown.len() < UNKNOWN_NAMES && !clean.is_empty() {
                unknown.insert(clean.clone());
                clean
            } else {
                "other".to_owned()
            }
        };
        self.webhooks
            .get_or_create(&WebhookLabels {
                system: system.to_owned(),
                trigger,
                answer: answer.to_owned(),
            })
            .inc();
    }

    /// Counts one HTTP response.
    pub fn http(&self, route: &str, status: u16) {
        self.http
            .get_or_create(&HttpLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// The registry as OpenMetrics text, with the timers as the store
    /// counts them now (`None`: it did not answer; the last count stands).
    pub fn render(&self, timers: Option<Vec<(String, u64)>>, sandboxes: usize) -> String {
        self.sandboxes.set(sandboxes as i64);
        if let Some(timers) = &timers {
            self.timers_by_kind.clear();
            self.timers
                .set(timers.iter().map(|(_, n)| *n as i64).sum::<i64>());
            for (kind, n) in timers {
                self.timers_by_kind
                    .get_or_create(&KindLabels { kind: kind.clone() })
                    .set(*n as i64);
            }
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sms_host::bindings::sms_notification::extension::types::{Outcome, SkipReason};

    #[test]
    fn the_text_is_openmetrics_with_every_series() {
        let stats = Arc::new(Stats::default());
        stats.latency.lock().unwrap().record(30);
        stats.latency.lock().unwrap().record(20_000);
        stats
            .reruns
            .fetch_add(3, std::sync::atomic::Ordering::Relaxed);
        let m = Metrics::new(stats);
        let mut timer = CallRecord::new(
            "t",
            "on-timer",
            1,
            Ok(Ok(Outcome::Skipped(SkipReason::OptedOut))),
        );
        timer.lag_ms = Some(40);
        m.call(&timer);
        m.call(&CallRecord::new(
            "t",
            "on-read",
            1,
            Err(wasmtime::format_err!("fuel")),
        ));
        m.webhook("legacy", "after_message", "scheduled");
        m.webhook("current", "no such trigger!", "unknown");
        m.http("/v1/tenants/{tenant}/messages", 200);
        assert_eq!(m.forged_report(), 1);
        let text = m.render(Some(vec![("deliver".into(), 2), ("expire".into(), 3)]), 7);
        for line in [
            "# TYPE sms_calls counter",
            "sms_calls_total{call=\"on-timer\",answer=\"skipped\"} 1",
            "sms_calls_total{call=\"on-read\",answer=\"trap\"} 1",
            "sms_traps_total 1",
            "sms_sent_total 0",
            "sms_forged_reports_total 1",
            "sms_webhooks_total{system=\"legacy\",trigger=\"after_message\",answer=\"scheduled\"} 1",
            "sms_webhooks_total{system=\"current\",trigger=\"nosuchtrigger\",answer=\"unknown\"} 1",
            "sms_http_responses_total{route=\"/v1/tenants/{tenant}/messages\",status=\"200\"} 1",
            "sms_timer_lag_seconds_count 1",
            "sms_timer_lag_seconds_bucket{le=\"0.05\"} 1",
            "sms_timer_lag_seconds_bucket{le=\"0.025\"} 0",
            "sms_timers 5",
            "sms_timers_by_kind{kind=\"expire\"} 3",
            "sms_sandboxes 7",
            "sms_calls_rerun_total 3",
            "sms_twilio_latency_seconds_count 2",
            "sms_twilio_latency_seconds_bucket{le=\"0.05\"} 1",
            "sms_twilio_latency_seconds_bucket{le=\"10.0\"} 1",
            "sms_twilio_latency_seconds_bucket{le=\"+Inf\"} 2",
            "sms_twilio_latency_seconds_sum 20.03",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
        }
        assert!(!text.contains(".."), "help texts end with one dot:\n{text}");
        // A scrape while the store does not answer keeps the last count.
        assert!(m.render(None, 0).lines().any(|l| l == "sms_timers 5"));
    }
}
