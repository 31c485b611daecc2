//! A host on the wall clock: `host-test host --db URL`. It reads events as
//! JSON lines on stdin (the scenario format's steps but `advance` and
//! `time`), fires due timers as they come due (the service's scheduler,
//! [`crate::scheduler`]), and prints one JSON line per call. It is the
//! durable storage's test bed: the kill and multi-process tests start it
//! as a child process.

use crate::call::Logged;
use crate::fake_twilio::FakeTwilio;
use crate::outbound::Policy;
use crate::scenario::{self, Runner, Step};
use crate::scheduler::{Window, schedule, shutdown_signal};
use crate::storage::Storage;
use crate::tenants::{Tenants, conversation_lane};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

pub struct Options {
    /// How many due timers' calls run at once.
    pub window: Window,
    pub policy: Policy,
    /// The fake Twilio, when `policy` sends to it: `twilio` steps script
    /// it, and each SMS it takes is printed as it is taken.
    pub fake: Option<FakeTwilio>,
    /// Exit once stdin is closed and no timer is due within
    /// [`crate::scheduler::IDLE_HORIZON_MS`] (tests, batch runs).
    pub until_idle: bool,
    /// How long a claimed timer stays with this process (see
    /// [`crate::runtime::LEASE_MS`], the default).
    pub lease_ms: u64,
}

/// Runs until stdin closes and (with `until_idle`) no timer is due soon, or
/// until SIGTERM / Ctrl-C: then calls in flight finish and it returns.
pub async fn host(storage: Arc<dyn Storage>, options: Options) -> wasmtime::Result<()> {
    let (lines, mut printed) = mpsc::unbounded_channel::<Value>();
    // A scripted crash cuts every runtime's call short.
    let crash = options.fake.as_ref().map(|fake| {
        fake.tap(&lines);
        fake.crash.clone()
    });
    let tenants = Arc::new(Tenants::new(
        &storage,
        &options.policy,
        crate::prepared()?,
        move |rt| {
            if let Some(crash) = &crash {
                rt.abort = crash.clone();
            }
        },
    ));
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

    let runner = Runner::new(options.fake.clone());
    let events = tokio::spawn(read_events(
        tenants.clone(),
        runner,
        lines.clone(),
        stopped.clone(),
    ));
    // The scheduler's call records, printed as their JSON lines.
    let (calls, mut recorded) = mpsc::unbounded_channel::<Logged>();
    tokio::spawn(async move {
        while let Some(logged) = recorded.recv().await {
            let _ = lines.send(match logged {
                Logged::Call(record) => record.to_json(),
                Logged::Line(line) => line,
            });
        }
    });
    let idle = options.until_idle.then_some(&events);
    schedule(
        tenants,
        storage,
        calls,
        stopped,
        options.lease_ms,
        options.window,
        idle,
    )
    .await?;
    events.abort();
    printer.await?;
    Ok(())
}

/// Events from stdin, one at a time, each on its tenant's runtime.
async fn read_events(
    tenants: Arc<Tenants>,
    mut runner: Runner,
    lines: mpsc::UnboundedSender<Value>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut input = tokio::io::BufReader::new(tokio::io::stdin()).lines();
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
        // Lines run one at a time, each event in its conversation's lane
        // (the scheduler's timer calls run beside them).
        let lanes = match &step {
            Step::Message(m) | Step::Edit(m) => vec![conversation_lane(&m.conversation)],
            Step::Read(r) => vec![conversation_lane(&r.conversation)],
            Step::Delete(d) => vec![conversation_lane(&d.conversation)],
            _ => Vec::new(),
        };
        let mut rt = match &step {
            Step::Tenant(name) => tenants.call(name, &lanes).await,
            _ => tenants.call(runner.tenant(), &lanes).await,
        };
        let mut out = |value: Value| {
            let _ = lines.send(value);
        };
        if let Err(e) = runner.step(&mut rt, step, &mut out).await {
            let _ = lines.send(json!({ "line": n, "error": format!("{e:#}") }));
        }
    }
}
