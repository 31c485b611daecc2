//! What happens to each tenant, as it happens: every call's line goes to
//! the tenant's open pages (server-sent events, `GET …/events`), and the
//! recent calls that sent nothing and say why (skips, failures, errors)
//! are kept for the page apart from the log (`GET …/unsent`).
//!
//! Both live in this process's memory, bounded: [`KEEP`] lines per tenant,
//! [`MAX_TENANTS`] tenants (the least recently active without an open page
//! are forgotten first), [`MAX_STREAMS`] open pages per tenant. With
//! several processes, each page sees the calls its own process made live;
//! state and log lines, read from the database, are every process's.

use super::App;
use super::access::TenantCaller;
use super::api::types::{ErrorBody, Unsent};
use super::api::{ApiResult, TenantPath, fail, name, ok};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use serde_json::Value;
use sms_host::bindings::sms_notification::extension::types::{Outcome, SkipReason};
use sms_host::call::{CallRecord, Reply};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// Calls kept per tenant that sent nothing.
pub const KEEP: usize = 50;
/// Tenants whose recent calls are kept.
pub const MAX_TENANTS: usize = 10_000;
/// Open event streams per tenant (a page in a few tabs).
pub const MAX_STREAMS: usize = 16;
/// Lines a slow page may fall behind before it is told to read afresh.
const BACKLOG: usize = 256;

/// Skip reasons that say only what a message was (a group's, not text,
/// to oneself) or that nothing was left to do: routine, not kept.
fn routine(reason: SkipReason) -> bool {
    matches!(
        reason,
        SkipReason::NothingPending
            | SkipReason::GroupConversation
            | SkipReason::NotText
            | SkipReason::SelfMessage
    )
}

/// Whether a call is one the page lists apart: an SMS not sent and why
/// (a skip other than the routine ones, a failure, a pause, a retry), or a
/// call that erred or trapped.
pub fn unsent(record: &CallRecord) -> bool {
    match &record.reply {
        Reply::Error(_) | Reply::Trap(_) => true,
        Reply::Outcome(Outcome::Skipped(reason)) => !routine(*reason),
        Reply::Outcome(Outcome::Failed(_) | Outcome::Paused(_) | Outcome::Retrying(_)) => true,
        Reply::Outcome(_) => false,
    }
}

#[derive(Default)]
pub struct Activity {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Set at shutdown: streams end, none start.
    closed: bool,
    tenants: HashMap<String, Tenant>,
    /// Bumped by every line, to find the least recently active tenant.
    tick: u64,
}

struct Tenant {
    unsent: VecDeque<Value>,
    /// Each call's line, and whether it is one that sent nothing.
    events: broadcast::Sender<(bool, Value)>,
    touched: u64,
}

impl Tenant {
    fn new() -> Self {
        Self {
            unsent: VecDeque::new(),
            events: broadcast::channel(BACKLOG).0,
            touched: 0,
        }
    }
}

/// Why a stream was not opened.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The service is shutting down.
    Closing,
    /// [`MAX_STREAMS`] are open for the tenant.
    TooMany,
}

impl Activity {
    /// A call answered: its line sent to its tenant's open pages (as an
    /// `unsent` event when it sent nothing for a reason, else `call`), and
    /// kept if it sent nothing.
    pub fn publish(&self, record: &CallRecord) {
        let keep = unsent(record);
        let tenant = record.tenant.as_str();
        let mut inner = self.inner.lock().unwrap();
        if inner.closed || (!keep && !inner.tenants.contains_key(tenant)) {
            return;
        }
        let line = record.to_json();
        inner.tick += 1;
        let tick = inner.tick;
        let t = inner
            .tenants
            .entry(tenant.to_owned())
            .or_insert_with(Tenant::new);
        t.touched = tick;
        if t.events.receiver_count() > 0 {
            let _ = t.events.send((keep, line.clone()));
        }
        if keep {
            t.unsent.push_back(line);
            if t.unsent.len() > KEEP {
                t.unsent.pop_front();
            }
        }
        if inner.tenants.len() > MAX_TENANTS {
            inner.forget_oldest();
        }
    }

    /// The tenant's recent calls that sent nothing, oldest first.
    pub fn recent_unsent(&self, tenant: &str) -> Vec<Value> {
        let inner = self.inner.lock().unwrap();
        inner
            .tenants
            .get(tenant)
            .map(|t| t.unsent.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A stream of the tenant's call lines from now on.
    pub fn subscribe(&self, tenant: &str) -> Result<broadcast::Receiver<(bool, Value)>, Refused> {
        let mut inner = self.inner.lock().unwrap();
        if inner.closed {
            return Err(Refused::Closing);
        }
        inner.tick += 1;
        let tick = inner.tick;
        let t = inner
            .tenants
            .entry(tenant.to_owned())
            .or_insert_with(Tenant::new);
        if t.events.receiver_count() >= MAX_STREAMS {
            return Err(Refused::TooMany);
        }
        t.touched = tick;
        let events = t.events.subscribe();
        if inner.tenants.len() > MAX_TENANTS {
            inner.forget_oldest();
        }
        Ok(events)
    }

    /// Ends every stream and refuses new ones (the service is stopping:
    /// open pages must not hold its shutdown).
    pub fn close(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.closed = true;
        inner.tenants.clear();
    }
}

impl Inner {
    /// Forgets the least recently active sixteenth of the tenants with
    /// no open page (one scan for that many new tenants).
    fn forget_oldest(&mut self) {
        let idle = self
            .tenants
            .iter()
            .filter(|(_, t)| t.events.receiver_count() == 0)
            .map(|(name, t)| (t.touched, name.clone()));
        for name in sms_host::tenants::oldest(idle, MAX_TENANTS.div_ceil(16)) {
            self.tenants.remove(&name);
        }
    }
}

/// `GET /v1/tenants/{tenant}/unsent`: the tenant's recent calls that sent
/// nothing and why, oldest first, as this process saw them (empty for a
/// tenant nothing happened to yet).
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/unsent", tag = "state", params(TenantPath), security(("operator" = []), ("tenant" = [])), responses(
    (status = 200, description = "the recent calls that sent nothing, oldest first", body = Unsent),
)
)]
pub async fn get_unsent(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
) -> ApiResult {
    name("tenant", &tenant)?;
    ok(Unsent {
        calls: app.activity.recent_unsent(&tenant),
        keep: KEEP,
    })
}

/// `GET /v1/tenants/{tenant}/events`: server-sent events, one per call of
/// the tenant this process answers (its line, as the call log prints it):
/// `unsent` for a call [`unsent`] keeps, `call` for any other; `lagged`
/// when the page fell behind (read everything afresh); a comment every
/// 15 s to keep proxies from closing it. Ends when the service stops.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/events", tag = "state", params(TenantPath), security(("operator" = []), ("tenant" = [])), responses(
    (status = 200, description = "server-sent events: `call` and `unsent` (a call's line) for each call of the tenant this process answers, `lagged` when the reader fell behind (read afresh); a comment every 15 s; ends when the service stops", content_type = "text/event-stream"),
    (status = 429, description = "16 streams are open for this tenant already", body = ErrorBody),
    (status = 503, description = "the service is stopping", body = ErrorBody),
)
)]
pub async fn get_events(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
) -> ApiResult {
    name("tenant", &tenant)?;
    let events = app
        .activity
        .subscribe(&tenant)
        .map_err(|refused| match refused {
            Refused::Closing => fail(StatusCode::SERVICE_UNAVAILABLE, "the service is stopping"),
            Refused::TooMany => fail(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "{MAX_STREAMS} event streams are open for this tenant already: close a page"
                ),
            ),
        })?;
    let stream = futures_util::stream::unfold(events, |mut events| async move {
        let event = match events.recv().await {
            Ok((unsent, line)) => Event::default()
                .event(if unsent { "unsent" } else { "call" })
                .data(line.to_string()),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                Event::default().event("lagged").data(n.to_string())
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok::<_, std::convert::Infallible>(event), events))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sms_host::bindings::sms_notification::extension::types::{
        Error, Failure, SkipReason, TwilioError,
    };

    fn record(tenant: &str, outcome: Outcome) -> CallRecord {
        let mut r = CallRecord::new(tenant, "on-timer", 1, Ok(Ok(outcome)));
        r.key = Some("deliver/c/bob".into());
        r
    }

    fn skipped(tenant: &str, reason: SkipReason) -> CallRecord {
        record(tenant, Outcome::Skipped(reason))
    }

    fn error(tenant: &str, n: usize) -> CallRecord {
        CallRecord::new(
            tenant,
            "on-message",
            n as u64,
            Ok(Err(Error::InvalidInput(n.to_string()))),
        )
    }

    #[test]
    fn only_calls_that_sent_nothing_for_a_reason_are_kept() {
        assert!(unsent(&skipped("t", SkipReason::OptedOut)));
        assert!(unsent(&skipped("t", SkipReason::RecipientDailyLimit)));
        assert!(!unsent(&skipped("t", SkipReason::NothingPending)));
        assert!(!unsent(&skipped("t", SkipReason::GroupConversation)));
        let failed = Outcome::Failed(Failure {
            conversation: "c".into(),
            recipient: "bob".into(),
            attempts: 5,
            error: TwilioError {
                status: 500,
                code: None,
                message: "down".into(),
            },
        });
        assert!(unsent(&record("t", failed)));
        assert!(unsent(&error("t", 0)));
        let trap = CallRecord::new("t", "on-read", 1, Err(wasmtime::format_err!("out of fuel")));
        assert!(unsent(&trap));
    }

    #[test]
    fn each_tenant_keeps_its_last_ones() {
        let a = Activity::default();
        for i in 0..KEEP + 5 {
            a.publish(&error("t", i));
            a.publish(&skipped("t", SkipReason::NothingPending));
        }
        a.publish(&skipped("u", SkipReason::OptedOut));
        let kept = a.recent_unsent("t");
        assert_eq!(kept.len(), KEEP);
        assert_eq!(kept[0]["at"], 5, "the oldest went first");
        assert_eq!(
            a.recent_unsent("u"),
            [skipped("u", SkipReason::OptedOut).to_json()]
        );
        assert!(a.recent_unsent("nobody").is_empty());
    }

    #[test]
    fn open_pages_get_every_line_of_their_tenant_only() {
        let a = Activity::default();
        let mut events = a.subscribe("t").unwrap();
        let routine = skipped("t", SkipReason::NothingPending);
        a.publish(&routine);
        a.publish(&skipped("u", SkipReason::OptedOut));
        a.publish(&skipped("t", SkipReason::OptedOut));
        assert_eq!(events.try_recv().unwrap(), (false, routine.to_json()));
        let (kept, line) = events.try_recv().unwrap();
        assert!(kept, "{line}");
        assert_eq!(line["tenant"], "t", "not another tenant's");
        assert!(events.try_recv().is_err());
    }

    #[test]
    fn streams_are_bounded_and_end_at_shutdown() {
        let a = Activity::default();
        let open: Vec<_> = (0..MAX_STREAMS)
            .map(|_| a.subscribe("t").unwrap())
            .collect();
        assert_eq!(a.subscribe("t").unwrap_err(), Refused::TooMany);
        assert!(a.subscribe("u").is_ok(), "another tenant's page opens");
        drop(open);
        let mut events = a.subscribe("t").unwrap();
        a.close();
        assert!(matches!(
            events.try_recv(),
            Err(broadcast::error::TryRecvError::Closed)
        ));
        assert_eq!(a.subscribe("t").unwrap_err(), Refused::Closing);
    }

    #[test]
    fn the_least_recently_active_tenants_without_a_page_are_forgotten() {
        let a = Activity::default();
        let _page = a.subscribe("watched").unwrap();
        for i in 0..MAX_TENANTS + 1 {
            a.publish(&skipped(&format!("t{i}"), SkipReason::OptedOut));
        }
        // Past the bound, the oldest sixteenth went at once.
        let share = MAX_TENANTS.div_ceil(16);
        assert!(a.recent_unsent("t0").is_empty(), "forgotten");
        assert!(a.recent_unsent(&format!("t{}", share - 1)).is_empty());
        assert_eq!(a.recent_unsent(&format!("t{share}")).len(), 1, "kept");
        assert_eq!(a.recent_unsent(&format!("t{MAX_TENANTS}")).len(), 1);
        let inner = a.inner.lock().unwrap();
        assert!(inner.tenants.contains_key("watched"), "its page is open");
        assert_eq!(inner.tenants.len(), MAX_TENANTS + 2 - share);
    }
}
