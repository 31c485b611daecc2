//! What every handler shares ([`App`]): the runtimes, the store, the
//! options, the metrics and the call log's sender, and the per-tenant
//! bounds on calls in flight.

use super::metrics::Metrics;
use super::options::{Options, TENANT_CONCURRENCY};
use super::{activity, directory};
use serde_json::Value;
use sms_host::call::Logged;
use sms_host::storage::Storage;
use sms_host::tenants::Tenants;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{Semaphore, mpsc};

/// What every handler shares.
pub struct App {
    pub(crate) tenants: Arc<Tenants>,
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) options: Options,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) lines: mpsc::UnboundedSender<Logged>,
    /// What the fake Twilio received, newest last.
    pub(crate) fake_sms: Arc<Mutex<VecDeque<Value>>>,
    pub(crate) fake: bool,
    pub(crate) limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Where users are found: CometChat for tenants with an app.
    pub(crate) directory: Arc<directory::CometChatDirectory>,
    /// The contract version of the component being run.
    pub(crate) contract: &'static str,
    /// See [`status_callback`].
    pub(crate) status_callback: Option<String>,
    /// The count of refused status callbacks (forged, altered, for no
    /// tenant) at the last log line about them, and its time.
    pub(crate) forged_logged: Mutex<(u64, std::time::Instant)>,
    /// Each tenant's calls as they happen, for its page.
    pub(crate) activity: Arc<activity::Activity>,
    /// (tenant, trigger) pairs whose unknown trigger was logged.
    pub(crate) unknown_logged: Mutex<std::collections::HashSet<(String, String)>>,
}

/// Most (tenant, trigger) pairs remembered as logged: past it, an unknown
/// trigger is counted but no longer logged.
const UNKNOWN_LOGGED: usize = 10_000;

impl App {
    /// A refused status callback: counted (`sms_forged_reports_total`), and
    /// logged at most once a minute with how many came since.
    pub(crate) fn forged_report(&self) {
        let total = self.metrics.forged_report();
        let mut logged = self.forged_logged.lock().unwrap();
        if total == 1 || logged.1.elapsed() >= std::time::Duration::from_secs(60) {
            tracing::warn!(
                "refused {} status callback(s) that were not signed with their tenant's auth token (forged, altered, or for no tenant) since the last line",
                total - logged.0
            );
            *logged = (total, std::time::Instant::now());
        }
    }

    /// An unknown trigger from CometChat: logged once per name and tenant,
    /// in the tenant's log (the page shows it) and on stderr, so a webhook
    /// set up with the wrong triggers is visible.
    pub(crate) async fn unknown_trigger(&self, tenant: &str, trigger: &str) {
        let new = {
            let mut logged = self.unknown_logged.lock().unwrap();
            logged.len() < UNKNOWN_LOGGED && logged.insert((tenant.to_owned(), trigger.to_owned()))
        };
        if !new {
            return;
        }
        let shown: String = trigger.chars().take(64).collect();
        let line = format!(
            "CometChat sent a webhook with trigger {shown:?}, which this service does not know: \
             acknowledged and ignored (check the webhook's triggers in CometChat's dashboard)"
        );
        tracing::warn!(tenant, "{line}");
        let at = sms_host::clock::Clock::wall().now();
        let level = sms_host::storage::Level::Warn;
        if let Err(e) = self
            .storage
            .log(tenant, sms_host::storage::LogLine { at, level, line })
            .await
        {
            tracing::error!(tenant, "a log line was lost: {e}");
        }
    }

    pub(crate) fn limit(&self, tenant: &str) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().unwrap();
        if !limits.contains_key(tenant) && limits.len() >= KEEP_LIMITS {
            forget_unused(&mut limits);
        }
        limits
            .entry(tenant.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(TENANT_CONCURRENCY)))
            .clone()
    }
}

/// Tenants whose call bound is kept while none of their calls runs; past
/// it, the unused ones are forgotten (a tenant's next call starts afresh),
/// so the map follows the tenants active now, not every tenant served.
const KEEP_LIMITS: usize = 10_000;

/// Drops the bounds no call holds or waits on.
fn forget_unused(limits: &mut HashMap<String, Arc<Semaphore>>) {
    limits.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < TENANT_CONCURRENCY);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounds_in_use_are_kept_past_the_limit() {
        let mut limits = HashMap::new();
        let held = Arc::new(Semaphore::new(TENANT_CONCURRENCY));
        let permit = held.clone().try_acquire_owned().unwrap();
        limits.insert("busy".to_owned(), held);
        let waiting = Arc::new(Semaphore::new(TENANT_CONCURRENCY));
        limits.insert("waited-on".to_owned(), waiting.clone());
        limits.insert(
            "idle".to_owned(),
            Arc::new(Semaphore::new(TENANT_CONCURRENCY)),
        );
        forget_unused(&mut limits);
        let mut kept: Vec<&str> = limits.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["busy", "waited-on"]);
        drop((permit, waiting));
        forget_unused(&mut limits);
        assert!(limits.is_empty());
    }
}
