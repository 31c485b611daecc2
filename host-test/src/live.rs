//! A host on the wall clock: `host-test host --db URL`. It reads events as
//! JSON lines on stdin (the scenario format's steps but `advance` and
//! `time`), fires due timers as they come due,
//! and prints one JSON line per call. It is the durable storage's test bed
//! (the kill and multi-process tests start it as a child process) and the
//! core that `serve` will put behind HTTP.
//!
//! Tenants are spread over [`Options::shards`] runtimes by a hash of their
//! name: calls into different tenants run concurrently (and their commits
//! share fsyncs), calls into one tenant one at a time. Due timers are
//! claimed in batches of [`BATCH`]; the next batch is claimed when one
//! finishes, so a backlog drains at a bounded pace while events, which
//! queue for the same runtimes fairly, keep their turn.

use crate::engine;
use crate::outbound::Policy;
use crate::runtime::{Fired, Runtime};
use crate::scenario::{self, Runner, Step};
use crate::storage::Storage;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{Mutex, mpsc};

/// Timers claimed at once.
pub const BATCH: usize = 64;
/// The longest the scheduler sleeps before looking for due timers again
/// (another process may have set one).
pub const IDLE_POLL: Duration = Duration::from_millis(100);

pub struct Options {
    pub shards: usize,
    pub policy: Policy,
    /// Exit once stdin is closed and no timer is left (tests, batch runs).
    pub until_idle: bool,
    /// How long a claimed timer stays with this process (see
    /// [`crate::runtime::LEASE_MS`], the default).
    pub lease_ms: u64,
}

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

/// Runs until stdin closes and (with `until_idle`) no timer is left, or
/// until SIGTERM / Ctrl-C: then calls in flight finish and it returns.
pub async fn host(storage: Arc<dyn Storage>, options: Options) -> wasmtime::Result<()> {
    let shards = Arc::new(Shards::new(
        &storage,
        &options.policy,
        options.shards,
        engine::prepared()?,
    )?);
    let (lines, mut printed) = mpsc::unbounded_channel::<Value>();
    let printer = tokio::spawn(async move {
        use std::io::Write;
        while let Some(line) = printed.recv().await {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{line}");
            let _ = stdout.flush();
        }
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });

    let events = tokio::spawn(read_events(shards.clone(), lines.clone(), stopped.clone()));
    let idle = options.until_idle.then_some(&events);
    schedule(shards, storage, lines, stopped, options.lease_ms, idle).await?;
    events.abort();
    printer.await?;
    Ok(())
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

/// Events from stdin, one at a time, each on its tenant's runtime.
async fn read_events(
    shards: Arc<Shards>,
    lines: mpsc::UnboundedSender<Value>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut input = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut runner = Runner::default();
    let mut n = 0;
    loop {
        let line = tokio::select! {
            line = input.next_line() => line,
            _ = stopped.changed() => return,
        };
        let Ok(Some(line)) = line else { return };
        n += 1;
        let step = match scenario::parse(&line) {
            Ok(mut steps) => match steps.pop() {
                Some((_, step)) => step,
                None => continue,
            },
            Err(e) => {
                let _ = lines.send(json!({ "line": n, "error": e.message }));
                continue;
            }
        };
        if matches!(step, Step::Advance(_) | Step::Time(_)) {
            let _ = lines.send(json!({ "line": n,
                "error": "advance and time move a virtual clock; this host runs on the wall clock" }));
            continue;
        }
        let shard = match &step {
            Step::Tenant(name) => shards.of(name),
            _ => shards.of(runner.tenant()),
        };
        let mut rt = shard.lock().await;
        let mut out = |value: Value| {
            let _ = lines.send(value);
        };
        if let Err(e) = runner.step(&mut rt, step, &mut out).await {
            let _ = lines.send(json!({ "line": n, "error": format!("{e:#}") }));
        }
    }
}

/// Fires due timers on the wall clock until stopped, or, given `idle`,
/// once that task has finished and no timer is left. Each call's line (and
/// each SMS the fake Twilio took) goes to `lines`.
pub async fn schedule(
    shards: Arc<Shards>,
    storage: Arc<dyn Storage>,
    lines: mpsc::UnboundedSender<Value>,
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
                eprintln!("claiming due timers: {e}");
                Vec::new()
            }
        };
        if claims.is_empty() {
            let next = storage.next_due(now).await.ok().flatten();
            // Idle means no timer at all, counting those another process
            // holds (it may die and leave them to us).
            if idle.is_some_and(|events| events.is_finished())
                && next.is_none()
                && matches!(storage.next_due(u64::MAX).await, Ok(None))
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
        let mut calls = tokio::task::JoinSet::new();
        for claim in claims {
            let shard = shards.of(&claim.tenant);
            let lines = lines.clone();
            // How late the call starts (a backlog, a busy runtime).
            let lag = clock.now().saturating_sub(claim.due_at);
            calls.spawn(async move {
                let (fired, sms) = {
                    let mut rt = shard.lock().await;
                    let fired = rt.fire(claim).await;
                    (fired, rt.traffic.take_sms())
                };
                match fired {
                    Ok(fired) => {
                        let mut line = fired_line(fired);
                        line["lag_ms"] = json!(lag);
                        let _ = lines.send(line);
                    }
                    Err(e) => eprintln!("firing a timer: {e:#}"),
                }
                for sms in sms {
                    let _ = lines.send(crate::json::sms(&sms));
                }
            });
        }
        // Calls in flight finish even when a stop comes meanwhile.
        while calls.join_next().await.is_some() {}
    }
    Ok(())
}

fn fired_line(fired: Fired) -> Value {
    let mut line = scenario::call_line(fired.at, "on-timer", Some(&fired.key), fired.result);
    line["tenant"] = Value::String(fired.tenant);
    line
}
