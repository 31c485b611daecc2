//! The scheduler on the wall clock: tenants spread over [`Shards`]
//! (runtimes, by a hash of the tenant's name) so calls into different
//! tenants run concurrently (and their commits share fsyncs) and calls
//! into one tenant one at a time; due timers claimed in batches of
//! [`BATCH`], the next batch claimed when one finishes, so a backlog
//! drains at a bounded pace while events, which queue for the same
//! runtimes fairly, keep their turn. The service runs it; so does the
//! test harness's wall-clock `host`.

use crate::call::{CallRecord, Logged};
use crate::outbound::Policy;
use crate::runtime::Runtime;
use crate::storage::Storage;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc};

/// Timers claimed at once.
pub const BATCH: usize = 64;
/// The longest the scheduler sleeps before looking for due timers again
/// (another process may have set one).
pub const IDLE_POLL: Duration = Duration::from_millis(100);
/// How long a claimed timer stays leased to the process firing it unless
/// renewed. The scheduler renews its claims every third of it while their
/// calls run (however long a call or its wait for the tenant's runtime
/// takes), so only a process that died, or lost its database for that
/// long, loses them: another process fires them within this (plus a poll).
pub const LEASE_MS: u64 = 3_000;

/// Given an idle condition, how far ahead a timer still counts as work
/// to wait for: a conversation record's expiry timer (a day after its
/// newest message) does not keep a batch run alive.
pub const IDLE_HORIZON_MS: u64 = 3_600_000;

/// The runtimes tenants are spread over.
pub struct Shards(Vec<Arc<Mutex<Runtime>>>);

impl Shards {
    /// `n` runtimes on the wall clock over one store, running `pre`.
    pub fn new(
        storage: &Arc<dyn Storage>,
        policy: &Policy,
        n: usize,
        pre: crate::contract::Pre,
    ) -> wasmtime::Result<Self> {
        Ok(Self(
            (0..n.max(1))
                .map(|_| {
                    let mut rt = Runtime::on(policy.clone(), pre.clone(), storage.clone());
                    rt.clock = crate::clock::Clock::wall();
                    Arc::new(Mutex::new(rt))
                })
                .collect(),
        ))
    }

    /// Every runtime.
    pub fn all(&self) -> &[Arc<Mutex<Runtime>>] {
        &self.0
    }

    /// The runtime `tenant`'s calls run on.
    pub fn of(&self, tenant: &str) -> Arc<Mutex<Runtime>> {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in tenant.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0[(h % self.0.len() as u64) as usize].clone()
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {}
            () = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Fires due timers on the wall clock until stopped, or, given `idle`,
/// once that task has finished and no timer is due within
/// [`IDLE_HORIZON_MS`]. Each call's record goes to `lines`.
pub async fn schedule(
    shards: Arc<Shards>,
    storage: Arc<dyn Storage>,
    lines: mpsc::UnboundedSender<Logged>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    lease_ms: u64,
    idle: Option<&tokio::task::JoinHandle<()>>,
) -> wasmtime::Result<()> {
    let clock = crate::clock::Clock::wall();
    loop {
        if *stopped.borrow() {
            break;
        }
        let now = clock.now();
        let claims = match storage.claim(now, now, BATCH, lease_ms).await {
            Ok(claims) => claims,
            Err(e) => {
                tracing::error!("claiming due timers: {e}");
                Vec::new()
            }
        };
        if claims.is_empty() {
            let next = storage.next_due(now).await.ok().flatten();
            // Idle means no timer due within the horizon, counting those
            // another process holds (it may die and leave them to us).
            let horizon = now.saturating_add(IDLE_HORIZON_MS);
            if idle.is_some_and(|events| events.is_finished())
                && next.is_none_or(|due| due > horizon)
                && matches!(storage.next_due(u64::MAX).await, Ok(d) if d.is_none_or(|due| due > horizon))
            {
                break;
            }
            let wait = next.map_or(IDLE_POLL, |due| {
                Duration::from_millis(due.saturating_sub(now)).min(IDLE_POLL)
            });
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => {}
            }
            continue;
        }
        // The batch's leases, renewed until its last call ends.
        let mut tokens: Vec<i64> = claims.iter().map(|c| c.token).collect();
        tokens.sort_unstable();
        tokens.dedup();
        let renewer = tokio::spawn({
            let (storage, clock) = (storage.clone(), clock.clone());
            async move {
                let every = Duration::from_millis((lease_ms / 3).max(1));
                loop {
                    tokio::time::sleep(every).await;
                    let until = clock.now().saturating_add(lease_ms);
                    if let Err(e) = storage.renew(&tokens, until).await {
                        tracing::error!(
                            "renewing the leases of {} claimed timers: {e}",
                            tokens.len()
                        );
                    }
                }
            }
        });
        let mut calls = tokio::task::JoinSet::new();
        for claim in claims {
            let shard = shards.of(&claim.tenant);
            let lines = lines.clone();
            // How late the call starts (a backlog, a busy runtime).
            let lag = clock.now().saturating_sub(claim.due_at);
            calls.spawn(async move {
                let fired = shard.lock().await.fire(claim).await;
                match fired {
                    Ok(fired) => {
                        let mut record =
                            CallRecord::new(&fired.tenant, "on-timer", fired.at, fired.result);
                        record.key = Some(fired.key);
                        record.lag_ms = Some(lag);
                        let _ = lines.send(Logged::Call(record));
                    }
                    Err(e) => tracing::error!("firing a timer: {e:#}"),
                }
            });
        }
        // Calls in flight finish even when a stop comes meanwhile.
        while calls.join_next().await.is_some() {}
        renewer.abort();
    }
    Ok(())
}
