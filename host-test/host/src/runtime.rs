//! The runtime: one compiled component and one `InstancePre` for the whole
//! process, one sandbox (`Store` + instance) per tenant, a clock (virtual
//! for scenarios, the wall clock for a service), and the tenants' durable
//! data and timers in a [`Storage`].
//!
//! This is the async embedding a tokio-based chat server would use: async
//! host functions and `call_*` futures, so a call waiting on Twilio or on the
//! database never blocks a server thread.

use crate::bindings::sms_notification::extension::host::Entry;
use crate::bindings::sms_notification::extension::types::{
    Deletion, DeliveryReport, Error, Inspection, Message, Outcome, Preview, Problem, Receipt,
    Sample,
};
use crate::clock::Clock;
use crate::contract::{Extension, Pre};
use crate::engine::{self, bounded};
use crate::outbound::{Outbound, Policy};
use crate::sandbox::Sandbox;
use crate::storage::{self, Claim, Finish, Retry, Storage, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use wasmtime::error::Context as _;
use wasmtime::{Result, Store, bail};

/// The prefix under which the component keeps records it could not read
/// (`keys::QUARANTINE` in the component).
pub const QUARANTINE: &str = "quarantine/";

/// How many timers one `advance` may fire before it gives up: a component
/// that keeps re-arming a due timer must not hang the host.
pub const MAX_FIRES: usize = 100_000;

/// What a call returned: the component's answer, or the trap (or time-out)
/// that ended it.
pub type Call = Result<std::result::Result<Outcome, Error>>;

/// A due timer that was fired, and what the component answered.
#[derive(Debug)]
pub struct Fired {
    pub tenant: String,
    pub key: String,
    pub at: u64,
    pub result: Call,
}

/// How long one call may take, in real time, before the host gives up on
/// it and throws the sandbox away.
pub const CALL_DEADLINE: Duration = Duration::from_secs(30);
/// The most bytes of one input (a message's text, settings JSON, a timer
/// key) the host hands a sandbox. A sandbox has 16 MiB of memory; an input
/// that cannot fit would trap the call while it is being copied in, so the
/// host answers it with a typed error instead, without entering the sandbox.
pub const MAX_INPUT_BYTES: usize = 10 << 20;

/// Entries handed to one `inspect` call at most.
pub const INSPECT_PAGE: usize = 512;
/// Bytes of records (keys and values) handed to one `inspect` call at
/// most, unless one record alone is larger: a page stays far under the
/// sandbox's memory (the guest holds the page and what it decodes from
/// it) however large the tenant's records are.
pub const INSPECT_PAGE_BYTES: usize = 1 << 20;

/// `entries` cut into `inspect` pages: at most [`INSPECT_PAGE`] entries
/// and [`INSPECT_PAGE_BYTES`] bytes each, at least one entry each.
fn inspect_pages(entries: &[(String, Vec<u8>)]) -> Vec<&[(String, Vec<u8>)]> {
    let mut pages = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (key, value)) in entries.iter().enumerate() {
        let size = key.len() + value.len();
        if i > start && (i - start == INSPECT_PAGE || bytes + size > INSPECT_PAGE_BYTES) {
            pages.push(&entries[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    // At least one call, empty or not: it says whether the component has
    // `inspect` at all.
    pages.push(&entries[start..]);
    pages
}

/// How many times a timer whose call trapped (or failed with a `host`
/// error: a refused commit) fires again.
pub const MAX_REDELIVERIES: u32 = 5;
/// How long after the first failed call its timer fires again; each further
/// re-delivery waits twice as long (1, 2, 4, 8, 16 s).
pub const REDELIVERY_MS: u64 = 1_000;
/// After [`MAX_REDELIVERIES`], a timer whose calls keep failing is swept up
/// and fired again this often, so nothing waits forever (a database host
/// does the same with its timer rows).
pub const SWEEP_MS: u64 = 10 * 60 * 1000;
/// How long a timer claimed by [`Runtime::fire_next`] or
/// [`Runtime::fire_due`] stays leased to the process firing it: past any
/// call's deadline, so only a process that died loses its lease. (The
/// wall-clock scheduler leases for less and renews, see
/// [`crate::scheduler::LEASE_MS`].)
pub const LEASE_MS: u64 = 2 * CALL_DEADLINE.as_millis() as u64;

/// Why one of the named inputs is too big to hand a sandbox, if one is.
fn too_big(inputs: &[(&str, &str)]) -> Option<String> {
    let (what, text) = inputs
        .iter()
        .find(|(_, text)| text.len() > MAX_INPUT_BYTES)?;
    Some(format!(
        "{what} is {} bytes; the host hands a sandbox at most {MAX_INPUT_BYTES}",
        text.len()
    ))
}

/// Why a message (new or edited) is too big to hand a sandbox, if it is.
fn message_too_big(message: &Message) -> Option<String> {
    too_big(&[
        ("message.text", &message.text),
        ("message.id", &message.id),
        ("message.conversation", &message.conversation),
        ("message.sender", &message.sender),
        ("message.receiver", &message.receiver),
    ])
}

/// Runs `$call(store, instance)` on the tenant's sandbox, again from the
/// start while its commit meets a key another call (in this process or
/// another) changed since it read it, up to [`MAX_RUNS`] runs. Other calls
/// of the tenant may run meanwhile: its commits are compare-and-set.
macro_rules! checked_call {
    ($runtime:ident, $tenant:ident, |$store:ident, $instance:ident| $call:expr) => {{
        let mut runs = 0;
        loop {
            runs += 1;
            let result = match $runtime.sandbox($tenant).await {
                Ok(($store, $instance)) => $call.await,
                Err(e) => Err(e),
            };
            // A key it read changed before its commit (another call, an
            // operator clearing a record): nothing of it was written;
            // it runs again from the start on what is there now.
            if runs < MAX_RUNS && $runtime.conflicted($tenant) {
                $runtime
                    .policy
                    .stats
                    .reruns
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            break result;
        }
    }};
}

/// Runs of one call whose commit met a changed key, at most: past it the
/// call answers with the store's conflict (a `host` error; a timer's call
/// fires again later).
pub const MAX_RUNS: u32 = 8;

/// Many tenants' sandboxes on one clock and one store.
pub struct Runtime {
    pre: Pre,
    pub clock: Clock,
    pub policy: Policy,
    /// Signalled to cut the call under way short, as if its process died
    /// mid-call (the call traps; the sandbox is thrown away). The test
    /// harness's fake Twilio signals it for a scripted crash.
    pub abort: Arc<Notify>,
    storage: Arc<dyn Storage>,
    /// Where users are found; the store's users by default.
    directory: Arc<dyn crate::directory::Directory>,
    sandboxes: HashMap<String, (Store<Sandbox>, Extension)>,
    /// When each sandbox was last used (a counter of calls): the least
    /// recently used goes first when there are [`Runtime::max_sandboxes`].
    used: HashMap<String, u64>,
    /// When each sandbox was last called, in real time (see
    /// [`Runtime::evict_idle`]).
    touched: HashMap<String, std::time::Instant>,
    calls: u64,
    /// Most sandboxes kept at once; past it, the least recently used one
    /// is dropped (its data stays; the next call makes a new one), so
    /// memory stays bounded whatever the number of tenants.
    pub max_sandboxes: usize,
    /// See [`CALL_DEADLINE`].
    pub call_deadline: Duration,
    /// See [`Runtime::refused`].
    refused: Option<StoreError>,
    /// See [`Runtime::set_status_callback`].
    status_callback: Option<Arc<str>>,
}

impl Runtime {
    /// A runtime running `pre`, on any store (see [`storage::open`]).
    pub fn on(policy: Policy, pre: Pre, storage: Arc<dyn Storage>) -> Self {
        Self {
            pre,
            clock: Clock::default(),
            policy,
            abort: Arc::new(Notify::new()),
            directory: Arc::new(crate::directory::Stored(storage.clone())),
            storage,
            sandboxes: HashMap::new(),
            used: HashMap::new(),
            touched: HashMap::new(),
            calls: 0,
            max_sandboxes: usize::MAX,
            call_deadline: CALL_DEADLINE,
            refused: None,
            status_callback: None,
        }
    }

    /// Finds users in `directory` from now on (sandboxes made before are
    /// dropped, so every call uses it).
    pub fn set_directory(&mut self, directory: Arc<dyn crate::directory::Directory>) {
        self.directory = directory;
        self.sandboxes.clear();
        self.used.clear();
    }

    /// Asks Twilio to report every SMS to `template` (`{tenant}` replaced
    /// by the tenant's name) unless the tenant's settings name their own
    /// `statusCallbackURL` (or `null`, for none). See
    /// [`with_status_callback`].
    pub fn set_status_callback(&mut self, template: Option<String>) {
        self.status_callback = template.map(Arc::from);
        self.sandboxes.clear();
        self.used.clear();
    }

    /// The tenants' store.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The tenant's records the component could not read and kept aside
    /// (under `quarantine/…`), with their bytes, for an operator to look at.
    pub async fn quarantined(&self, tenant: &str) -> storage::Result<Vec<(String, Vec<u8>)>> {
        self.storage.state_prefix(tenant, QUARANTINE).await
    }

    /// Deletes one quarantined record (after an operator looked at it);
    /// whether there was one. Only keys under `quarantine/` can be deleted.
    pub async fn clear_quarantined(&self, tenant: &str, key: &str) -> storage::Result<bool> {
        if !key.starts_with(QUARANTINE) {
            return Ok(false);
        }
        self.storage.state_delete(tenant, key).await
    }

    /// The tenant's sandbox, instantiated from the shared `InstancePre` the
    /// first time (or after a trap threw the last one away).
    async fn sandbox(&mut self, tenant: &str) -> Result<&mut (Store<Sandbox>, Extension)> {
        self.calls += 1;
        self.refused = None;
        // The common case first: a warm sandbox, found without allocating.
        if let Some(used) = self.used.get_mut(tenant) {
            *used = self.calls;
        }
        let now = std::time::Instant::now();
        match self.touched.get_mut(tenant) {
            Some(at) => *at = now,
            None => {
                self.touched.insert(tenant.to_owned(), now);
            }
        }
        if !self.sandboxes.contains_key(tenant) {
            while self.sandboxes.len() >= self.max_sandboxes.max(1) {
                let oldest = self
                    .used
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(t, _)| t.clone());
                match oldest {
                    Some(t) => self.evict(&t),
                    None => break,
                }
            }
            self.instantiate(tenant).await?;
            self.used.insert(tenant.to_owned(), self.calls);
        }
        let sandbox = self.sandboxes.get_mut(tenant).expect("just instantiated");
        sandbox.0.data_mut().begin();
        Ok(sandbox)
    }

    /// Creates the tenant's sandbox from the shared `InstancePre`.
    async fn instantiate(&mut self, tenant: &str) -> Result<()> {
        let outbound = Outbound {
            tenant: tenant.to_owned(),
            policy: self.policy.clone(),
            clock: self.clock.clone(),
            timer: None,
        };
        let mut store = Store::new(
            self.pre.engine(),
            Sandbox::new(
                tenant.to_owned(),
                self.storage.clone(),
                self.directory.clone(),
                self.clock.clone(),
                outbound,
            ),
        );
        store.data_mut().status_callback = self.status_callback.clone();
        store.limiter(|s| &mut s.limits);
        engine::configure(&mut store);
        let instance = self.pre.instantiate_async(&mut store).await?;
        self.sandboxes.insert(tenant.to_owned(), (store, instance));
        Ok(())
    }

    /// Whether the tenant's sandbox's last commit met a changed key.
    fn conflicted(&self, tenant: &str) -> bool {
        self.sandboxes
            .get(tenant)
            .is_some_and(|(store, _)| store.data().conflicted())
    }

    /// Why the store failed the last call, if it did: a commit it refused
    /// (the component then answers with its `host` error) or a read it could
    /// not answer (the call traps). Its kind says whether to retry and, in
    /// the service, which HTTP status to answer.
    pub fn refused(&self) -> Option<&StoreError> {
        self.refused.as_ref()
    }

    /// How many sandboxes are resident now.
    pub fn resident(&self) -> usize {
        self.sandboxes.len()
    }

    /// Drops the tenant's sandbox (e.g. idle for a while) to free its slot
    /// and memory; its durable data stays, and the next call creates a new
    /// one.
    pub fn evict(&mut self, tenant: &str) {
        self.sandboxes.remove(tenant);
        self.used.remove(tenant);
        self.touched.remove(tenant);
    }

    /// Drops every sandbox not called for `idle` (real time), so memory
    /// follows the tenants active lately, not every tenant ever served;
    /// how many went. A service calls it now and then (`serve`: every
    /// minute, for sandboxes idle five minutes).
    pub fn evict_idle(&mut self, idle: Duration) -> usize {
        let now = std::time::Instant::now();
        let stale: Vec<String> = self
            .touched
            .iter()
            .filter(|(_, at)| now.duration_since(**at) >= idle)
            .map(|(t, _)| t.clone())
            .collect();
        let mut dropped = 0;
        for tenant in &stale {
            dropped += usize::from(self.sandboxes.contains_key(tenant));
            self.evict(tenant);
        }
        dropped
    }

    /// A call that trapped leaves its instance in an unknown state: it is
    /// thrown away; the tenant's durable data is untouched.
    ///
    /// It also keeps why the store failed the call, if it did (see
    /// [`Runtime::refused`]).
    async fn discard_on_trap<T>(&mut self, tenant: &str, result: Result<T>) -> Result<T> {
        if let Some((store, _)) = self.sandboxes.get_mut(tenant) {
            let sandbox = store.data_mut();
            self.refused = sandbox.refused.take();
            // The call is over and will not run again: its lines are kept.
            sandbox.write_lines().await;
        }
        if let Err(trap) = &result {
            if let Some(e) = trap.downcast_ref::<StoreError>() {
                self.refused = Some(e.clone());
            }
            self.evict(tenant);
        }
        result.with_context(|| format!("the component trapped for tenant {tenant:?}"))
    }

    pub async fn validate_settings(
        &mut self,
        tenant: &str,
        json: &str,
    ) -> Result<Result<(), Vec<Problem>>> {
        if let Some(why) = too_big(&[("the settings document", json)]) {
            return Ok(Err(vec![Problem {
                field: String::new(),
                message: why,
            }]));
        }
        let (crash, deadline) = (self.abort.clone(), self.call_deadline);
        let (store, instance) = self.sandbox(tenant).await?;
        let result = bounded(
            &crash,
            deadline,
            instance.call_validate_settings(store, json),
        )
        .await;
        self.discard_on_trap(tenant, result).await
    }

    pub async fn on_message(
        &mut self,
        tenant: &str,
        message: &Message,
    ) -> Result<Result<Outcome, Error>> {
        if let Some(why) = message_too_big(message) {
            return Ok(Err(Error::InvalidInput(why)));
        }
        let (crash, deadline) = (self.abort.clone(), self.call_deadline);
        let result = checked_call!(self, tenant, |store, instance| bounded(
            &crash,
            deadline,
            instance.call_on_message(store, message)
        ));
        self.discard_on_trap(tenant, result).await
    }

    pub async fn on_read(
        &mut self,
        tenant: &str,
        receipt: &Receipt,
    ) -> Result<Result<Outcome, Error>> {
        if let Some(why) = too_big(&[
            ("receipt.conversation", &receipt.conversation),
            ("receipt.reader", &receipt.reader),
            ("receipt.message", &receipt.message),
        ]) {
            return Ok(Err(Error::InvalidInput(why)));
        }
        let (crash, deadline) = (self.abort.clone(), self.call_deadline);
        let result = checked_call!(self, tenant, |store, instance| bounded(
            &crash,
            deadline,
            instance.call_on_read(store, receipt)
        ));
        self.discard_on_trap(tenant, result).await
    }

    /// An edited message (`message` carries its new text).
    pub async fn on_edit(
        &mut self,
        tenant: &str,
        message: &Message,
    ) -> Result<Result<Outcome, Error>> {
        if let Some(why) = message_too_big(message) {
            return Ok(Err(Error::InvalidInput(why)));
        }
        let (crash, deadline) = (self.abort.clone(), self.call_deadline);
        let result = checked_call!(self, tenant, |store, instance| bounded(
            &crash,
            deadline,
            instance.call_on_edit(store, message)
        ));
        self.discard_on_trap(tenant, result).await
    }

    /// A deleted message.
    pub async fn on_delete(
        &mut self,
        tenant: &str,
        deletion: &Deletion,
    ) -> Result<Result<Outcome, Error>> {
        if let Some(why) = too_big(&[
            ("deletion.conversation", &deletion.conversation),
            ("deletion.message", &deletion.message),
        ]) {
            return Ok(Err(Error::InvalidInput(why)));
        }
        let (crash, deadline) = (self.abort.clone(), self.call_deadline);
        let result = checked_call!(self, tenant, |store, instance| bounded(
            &crash,
            deadline,
            instance.call_on_delete(store, deletion)
        ));
        self.discard_on_trap(tenant, result).await
    }

    pub async fn on_timer(&mut self, tenant: &str, key: &str) -> Result<Result<Outcome, Error>> {
        if let Some(why) = too_big(&[("the timer key", key)]) {
            return Ok(Err(Error::InvalidInput(why)));
        }
        let (crash, deadline) = (self.abort.clone(), self.call_deadline);
        let result = checked_call!(self, tenant, |store, instance| async {
            store.data_mut().firing = true;
            store.data_mut().outbound.timer = Some(key.to_owned());
            let result = bounded(&crash, deadline, instance.call_on_timer(&mut *store, key)).await;
            store.data_mut().firing = false;
            store.data_mut().outbound.timer = None;
            result
        });
        self.discard_on_trap(tenant, result).await
    }

    /// Twilio's status callback for one of the tenant's SMS.
    pub async fn on_delivery_status(
        &mut self,
        tenant: &str,
        report: &DeliveryReport,
    ) -> Result<Result<Outcome, Error>> {
        let params = report
            .params
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>();
        if let Some(why) = too_big(&[("the report's URL", &report.url)])
            .or_else(|| too_big(&[("the report's signature", &report.signature)]))
            .or_else(|| (params > MAX_INPUT_BYTES).then(|| format!("the report's parameters are {params} bytes; the host hands a sandbox at most {MAX_INPUT_BYTES}")))
        {
            return Ok(Err(Error::InvalidInput(why)));
        }
        let (crash, deadline) = (self.abort.clone(), self.call_deadline);
        let result = checked_call!(self, tenant, |store, instance| bounded(
            &crash,
            deadline,
            instance.call_on_delivery_status(store, report)
        ));
        self.discard_on_trap(tenant, result).await
    }

    /// The SMS `settings` would send for `sample` (nothing is stored).
    pub async fn preview(
        &mut self,
        tenant: &str,
        settings: &str,
        sample: &Sample,
    ) -> Result<Result<Preview, Vec<Problem>>> {
        if let Some(why) = too_big(&[
            ("the settings document", settings),
            ("sample.text", &sample.text),
            ("sample.sender_name", &sample.sender_name),
        ]) {
            return Ok(Err(vec![Problem {
                field: String::new(),
                message: why,
            }]));
        }
        let (crash, deadline) = (self.abort.clone(), self.call_deadline);
        let (store, instance) = self.sandbox(tenant).await?;
        let result = bounded(
            &crash,
            deadline,
            instance.call_preview(store, settings, sample),
        )
        .await;
        self.discard_on_trap(tenant, result).await
    }

    /// What the tenant's stored state holds, read by the component; `None`
    /// when the tenant's component is a build of a contract without
    /// `inspect`. Read in pages of at most [`INSPECT_PAGE`] entries and
    /// [`INSPECT_PAGE_BYTES`] bytes, each under the sandbox's memory limit.
    pub async fn inspect(&mut self, tenant: &str) -> Result<Option<Inspection>> {
        let entries = self.storage.state_prefix(tenant, "").await?;
        let mut whole = Inspection {
            pending: Vec::new(),
            sends: Vec::new(),
            suppressions: Vec::new(),
            paused: None,
            unreadable: Vec::new(),
        };
        let (crash, deadline) = (self.abort.clone(), self.call_deadline);
        for page in inspect_pages(&entries) {
            let page: Vec<Entry> = page
                .iter()
                .map(|(key, value)| Entry {
                    key: key.clone(),
                    value: value.clone(),
                })
                .collect();
            let (store, instance) = self.sandbox(tenant).await?;
            let result = bounded(&crash, deadline, instance.call_inspect(store, &page)).await;
            let Some(part) = self.discard_on_trap(tenant, result).await? else {
                return Ok(None);
            };
            whole.pending.extend(part.pending);
            whole.sends.extend(part.sends);
            whole.suppressions.extend(part.suppressions);
            whole.paused = part.paused.or(whole.paused);
            whole.unreadable.extend(part.unreadable);
        }
        whole
            .pending
            .sort_by(|a, b| (a.due_at, &a.conversation).cmp(&(b.due_at, &b.conversation)));
        whole
            .sends
            .sort_by(|a, b| (b.at, &b.sid).cmp(&(a.at, &a.sid)));
        Ok(Some(whole))
    }

    /// The contract version of the component this runtime runs.
    pub fn contract(&self) -> &'static str {
        self.pre.version()
    }

    /// Fires the earliest timer due at or before `until`, moving the clock
    /// to its due time; `None` when no timer is due by then.
    pub async fn fire_next(&mut self, until: u64) -> Result<Option<Fired>> {
        let now = self.clock.now();
        let claimed = self.storage.claim(until, now, 1, LEASE_MS).await?;
        let Some(claim) = claimed.into_iter().next() else {
            return Ok(None);
        };
        self.clock.set(claim.due_at);
        Ok(Some(self.fire(claim).await?))
    }

    /// Fires every timer due by the clock's now, up to `limit` of them,
    /// earliest first; what fired. A host on the wall clock calls it in a
    /// loop (see `serve`).
    pub async fn fire_due(&mut self, limit: usize) -> Result<Vec<Fired>> {
        let now = self.clock.now();
        let claims = self.storage.claim(now, now, limit, LEASE_MS).await?;
        let mut fired = Vec::with_capacity(claims.len());
        for claim in claims {
            fired.push(self.fire(claim).await?);
        }
        Ok(fired)
    }

    /// Calls `on-timer` for a claimed timer, then ends its lease. The row
    /// stays during the call (a process that dies mid-call leaves it to fire
    /// again); the component may set it again or cancel it meanwhile.
    /// Timers are at least once: if the call traps, or fails because the
    /// host could not store its changes, the timer fires again with backoff,
    /// up to [`MAX_REDELIVERIES`] times, then every [`SWEEP_MS`] (unless the
    /// component set it again).
    pub async fn fire(&mut self, claim: Claim) -> Result<Fired> {
        let result = self.on_timer(&claim.tenant, &claim.key).await;
        let failed = matches!(result, Err(_) | Ok(Err(Error::Host(_))));
        // A quota or an unreadable record is not fixed by waiting seconds.
        let soon = self.refused().is_none_or(|e| e.retry() == Retry::Soon);
        let finish = if failed {
            let wait = if claim.attempts < MAX_REDELIVERIES && soon {
                REDELIVERY_MS << claim.attempts
            } else {
                SWEEP_MS
            };
            Finish::Retry {
                at: self.clock.now().max(claim.due_at).saturating_add(wait),
            }
        } else {
            Finish::Done
        };
        self.storage.finish(&claim, finish).await?;
        Ok(Fired {
            tenant: claim.tenant,
            key: claim.key,
            at: self.clock.now(),
            result,
        })
    }

    /// Moves the clock forward by `ms`, firing every timer that comes due on
    /// the way, in due order, handing each to `each` as it fires; then
    /// leaves the clock at the end.
    pub async fn advance_each(&mut self, ms: u64, mut each: impl FnMut(Fired)) -> Result<()> {
        let target = self.clock.now().saturating_add(ms);
        let mut fires = 0;
        while let Some(fired) = self.fire_next(target).await? {
            fires += 1;
            if fires > MAX_FIRES {
                bail!(
                    "more than {MAX_FIRES} timers came due in one advance; a timer keeps re-arming"
                );
            }
            each(fired);
        }
        self.clock.set(target);
        Ok(())
    }

    /// [`Runtime::advance_each`], collecting what fired.
    pub async fn advance(&mut self, ms: u64) -> Result<Vec<Fired>> {
        let mut fired = Vec::new();
        self.advance_each(ms, |f| fired.push(f)).await?;
        Ok(fired)
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("now", &self.clock.now())
            .field("sandboxes", &self.sandboxes.len())
            .field("max_sandboxes", &self.max_sandboxes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(sizes: &[usize]) -> Vec<(String, Vec<u8>)> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("k{i}"), vec![0; *n]))
            .collect()
    }

    #[test]
    fn inspect_pages_are_bounded_by_count_and_bytes() {
        let lens = |e: &[(String, Vec<u8>)]| -> Vec<usize> {
            inspect_pages(e).iter().map(|p| p.len()).collect()
        };
        assert_eq!(lens(&[]), [0], "one call even when empty");
        assert_eq!(lens(&entries(&[10; 1200])), [512, 512, 176]);
        // 400 KB each: two fit in a page of 1 MiB, a third does not.
        assert_eq!(lens(&entries(&[400_000; 5])), [2, 2, 1]);
        // One record larger than a page still gets a page of its own.
        assert_eq!(lens(&entries(&[10, 3 << 20, 10])), [1, 1, 1]);
    }
}
