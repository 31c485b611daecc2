//! The scheduler on the wall clock: due timers claimed a batch at a time
//! while fewer than [`Window::max_in_flight`] calls run, each call on a
//! runtime of its tenant's pool in its conversation's and recipient's
//! lanes ([`Tenants`]), so a slow Twilio holds up neither other tenants'
//! timers nor other conversations'. A tenant is skipped by the next
//! claims while it has [`Window::per_tenant`] timer calls running, so one
//! tenant's backlog does not take every slot. Leases are renewed while
//! their calls run. The service runs it; so does the test harness's
//! wall-clock `host`.

use crate::call::{CallRecord, Logged};
use crate::storage::{Claim, Storage};
use crate::tenants::Tenants;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Timers claimed at once, at most.
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

/// How many timer calls run at once.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    /// Over all tenants (`--timers-in-flight`): each may be an SMS waiting
    /// on Twilio.
    pub max_in_flight: usize,
    /// Of one tenant: past it, its timers are left for later claims (its
    /// pool runs at most [`Tenants::per_tenant`] calls at once, so more
    /// would only hold leases).
    pub per_tenant: usize,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            max_in_flight: 256,
            per_tenant: crate::tenants::PER_TENANT,
        }
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
/// once that task has finished, no call runs and no timer is due within
/// [`IDLE_HORIZON_MS`]. Each call's record goes to `lines`. Calls in
/// flight finish when a stop comes.
pub async fn schedule(
    tenants: Arc<Tenants>,
    storage: Arc<dyn Storage>,
    lines: mpsc::UnboundedSender<Logged>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    lease_ms: u64,
    window: Window,
    idle: Option<&tokio::task::JoinHandle<()>>,
) -> wasmtime::Result<()> {
    let clock = crate::clock::Clock::wall();
    // The leases held (by token: a batch shares one) and how many of
    // their calls run; renewed until their last call ends.
    let held: Arc<Mutex<HashMap<i64, usize>>> = Arc::default();
    let renewer = tokio::spawn({
        let (storage, clock, held) = (storage.clone(), clock.clone(), held.clone());
        async move {
            let every = Duration::from_millis((lease_ms / 3).max(1));
            loop {
                tokio::time::sleep(every).await;
                let tokens: Vec<i64> = held.lock().unwrap().keys().copied().collect();
                if tokens.is_empty() {
                    continue;
                }
                let until = clock.now().saturating_add(lease_ms);
                if let Err(e) = storage.renew(&tokens, until).await {
                    tracing::error!("renewing the leases of claimed timers: {e}");
                }
            }
        }
    });
    let mut busy: HashMap<String, usize> = HashMap::new();
    let mut calls: tokio::task::JoinSet<()> = tokio::task::JoinSet::new();
    // Each call's tenant and lease, by task: a call that panicked is
    // accounted for too.
    let mut running: HashMap<tokio::task::Id, (String, i64)> = HashMap::new();
    let ended = |(tenant, token): (String, i64), busy: &mut HashMap<String, usize>| {
        if let Some(n) = busy.get_mut(&tenant) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&tenant);
            }
        }
        let mut held = held.lock().unwrap();
        if let Some(n) = held.get_mut(&token) {
            *n -= 1;
            if *n == 0 {
                held.remove(&token);
            }
        }
    };
    loop {
        while let Some(done) = calls.try_join_next_with_id() {
            let id = done.map_or_else(|e| e.id(), |(id, ())| id);
            if let Some(done) = running.remove(&id) {
                ended(done, &mut busy);
            }
        }
        if *stopped.borrow() {
            break;
        }
        let free = window.max_in_flight.saturating_sub(calls.len());
        let now = clock.now();
        let mut claims: Vec<Claim> = Vec::new();
        let asked = free.min(BATCH);
        if asked > 0 {
            let full: Vec<String> = busy
                .iter()
                .filter(|(_, n)| **n >= window.per_tenant.max(1))
                .map(|(t, _)| t.clone())
                .collect();
            claims = match storage
                .claim_skipping(now, now, asked, lease_ms, &full)
                .await
            {
                Ok(claims) => claims,
                Err(e) => {
                    tracing::error!("claiming due timers: {e}");
                    Vec::new()
                }
            };
        }
        let more = asked > 0 && claims.len() == asked;
        if let Some(first) = claims.first() {
            held.lock().unwrap().insert(first.token, claims.len());
        }
        for claim in claims {
            *busy.entry(claim.tenant.clone()).or_default() += 1;
            let tenants = tenants.clone();
            let lines = lines.clone();
            // How late the call starts (a backlog, a busy tenant).
            let lag = clock.now().saturating_sub(claim.due_at);
            let done = (claim.tenant.clone(), claim.token);
            let task = calls.spawn(async move {
                let lanes = crate::tenants::timer_lanes(&claim.key);
                let fired = tenants.call(&claim.tenant, &lanes).await.fire(claim).await;
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
            running.insert(task.id(), done);
        }
        if more {
            // A full batch: more may be due now.
            continue;
        }
        let next = storage.next_due(now).await.ok().flatten();
        if calls.is_empty() {
            // Idle means no timer due within the horizon, counting those
            // another process holds (it may die and leave them to us).
            let horizon = now.saturating_add(IDLE_HORIZON_MS);
            if idle.is_some_and(|events| events.is_finished())
                && next.is_none_or(|due| due > horizon)
                && matches!(storage.next_due(u64::MAX).await, Ok(d) if d.is_none_or(|due| due > horizon))
            {
                break;
            }
        }
        // Until the next timer is due (one already due belongs to a busy
        // tenant, or to another process: look again after a poll), a call
        // ends, or a stop.
        let wait = match next {
            Some(due) if due > now => Duration::from_millis(due - now).min(IDLE_POLL),
            _ => IDLE_POLL,
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            Some(done) = calls.join_next_with_id(), if !calls.is_empty() => {
                let id = done.map_or_else(|e| e.id(), |(id, ())| id);
                if let Some(done) = running.remove(&id) {
                    ended(done, &mut busy);
                }
            }
            _ = stopped.changed() => {}
        }
    }
    // Calls in flight finish even when a stop comes meanwhile.
    while calls.join_next().await.is_some() {}
    renewer.abort();
    Ok(())
}
