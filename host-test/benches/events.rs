//! `cargo bench -p host-test`: what an event costs through the component,
//! against two baselines measured in the same run: the same core called
//! natively (the limit), and the same core behind a loopback HTTP webhook
//! (what operators would build instead). Then sandbox creation (default vs
//! pooling allocator), resident memory per idle tenant, and scaling with
//! pending notifications and tenants. The last lines print the ratios.

use criterion::{BenchmarkId, Criterion};
use host_test::TestRuntime;
use host_test::bindings::sms_notification::extension::types as wit;
use host_test::engine;
use host_test::outbound::Outbound;
use host_test::sandbox::Sandbox;
use sms_notification::model;
use sms_notification::shell::native::NativeHost;
use sms_notification::state::conversation::{Conversation, id_hash};
use sms_notification::state::keys;
use sms_notification::state::record::Record;
use sms_notification::state::timer::Timer;
use std::time::{Duration, Instant};
use wasmtime::Store;

mod support;

use support::{native, settings, setup_tenant, tokio, webhook, wit_message, wit_receipt};

const TENANT: &str = "bench";
const DAY_PLUS: u64 = 25 * 3_600_000;

/// A runtime on an engine with the pooling allocator, as a server with
/// many tenants would run (it also reuses fiber stacks between calls).
fn pooled(tenants: u32) -> TestRuntime {
    let engine = engine::build(Some(tenants)).unwrap();
    TestRuntime::with(host_test::prepare(&engine).unwrap())
}

fn component(engine: Option<u32>) -> TestRuntime {
    let mut rt = match engine {
        Some(tenants) => pooled(tenants),
        None => TestRuntime::new().unwrap(),
    };
    setup_tenant(&mut rt, TENANT);
    rt
}

fn message(i: u64, at: u64) -> model::Message {
    model::Message {
        id: format!("m{i}"),
        conversation: format!("c{i}"),
        kind: model::ConversationKind::OneOnOne,
        format: model::Format::Text,
        sender: "alice".into(),
        receiver: "bob".into(),
        text: "Are we still on for dinner at 8?".into(),
        sent_at: at,
    }
}

fn receipt(i: u64) -> model::Receipt {
    model::Receipt {
        conversation: format!("c{i}"),
        reader: "bob".into(),
        message: format!("m{i}"),
        read_at: 0,
    }
}

fn deliver_key(i: u64) -> String {
    Timer::Deliver {
        conversation: format!("c{i}"),
        recipient: "bob".into(),
    }
    .key()
}

/// Which event a benchmark times; the others it needs run untimed.
#[derive(Clone, Copy)]
enum Event {
    Message,
    Read,
    Timer,
    Settings,
}

const EVENTS: [(Event, &str); 4] = [
    (Event::Message, "on-message"),
    (Event::Read, "on-read"),
    (Event::Timer, "on-timer"),
    (Event::Settings, "validate-settings"),
];

/// Times `iters` events of one kind through the component.
fn time_component(
    tokio: &tokio::runtime::Runtime,
    rt: &mut TestRuntime,
    event: Event,
    iters: u64,
    seq: &mut u64,
) -> Duration {
    tokio.block_on(async {
        let mut spent = Duration::ZERO;
        let json = settings();
        for _ in 0..iters {
            *seq += 1;
            let i = *seq;
            let at = i * DAY_PLUS;
            rt.clock.set(at);
            let start = Instant::now();
            match event {
                Event::Message => {
                    rt.on_message(TENANT, &wit_message(i, at))
                        .await
                        .unwrap()
                        .unwrap();
                    spent += start.elapsed();
                    rt.on_read(TENANT, &wit_receipt(i)).await.unwrap().unwrap();
                }
                Event::Read => {
                    rt.on_message(TENANT, &wit_message(i, at))
                        .await
                        .unwrap()
                        .unwrap();
                    let start = Instant::now();
                    rt.on_read(TENANT, &wit_receipt(i)).await.unwrap().unwrap();
                    spent += start.elapsed();
                }
                Event::Timer => {
                    rt.on_message(TENANT, &wit_message(i, at))
                        .await
                        .unwrap()
                        .unwrap();
                    rt.clock.set(at + 60_000);
                    rt.tenant(TENANT).lock().unwrap().timers.clear();
                    let start = Instant::now();
                    let outcome = rt.on_timer(TENANT, &deliver_key(i)).await.unwrap().unwrap();
                    spent += start.elapsed();
                    assert!(matches!(outcome, wit::Outcome::Sent(_)), "{outcome:?}");
                    rt.traffic.take_sms();
                }
                Event::Settings => {
                    rt.validate_settings(TENANT, &json).await.unwrap().unwrap();
                    spent += start.elapsed();
                }
            }
        }
        spent
    })
}

/// The same events through the same core, natively.
fn time_native(m: &mut NativeHost, event: Event, iters: u64, seq: &mut u64) -> Duration {
    let mut spent = Duration::ZERO;
    let json = settings();
    for _ in 0..iters {
        *seq += 1;
        let i = *seq;
        let at = i * DAY_PLUS;
        m.now = at;
        let start = Instant::now();
        match event {
            Event::Message => {
                m.on_message(&message(i, at)).unwrap();
                spent += start.elapsed();
                m.on_read(&receipt(i)).unwrap();
            }
            Event::Read => {
                m.on_message(&message(i, at)).unwrap();
                let start = Instant::now();
                m.on_read(&receipt(i)).unwrap();
                spent += start.elapsed();
            }
            Event::Timer => {
                m.on_message(&message(i, at)).unwrap();
                m.now = at + 60_000;
                m.timers.clear();
                let start = Instant::now();
                let outcome =
                    sms_notification::shell::driver::on_timer(m, &deliver_key(i)).unwrap();
                spent += start.elapsed();
                assert!(
                    matches!(outcome, model::Outcome::Sent { .. }),
                    "{outcome:?}"
                );
                m.requests.clear();
            }
            Event::Settings => {
                sms_notification::shell::driver::validate_settings(m, &json).unwrap();
                spent += start.elapsed();
            }
        }
    }
    spent
}

fn per_event(c: &mut Criterion) {
    let tokio = tokio();
    let mut rt = component(Some(16));
    let mut unpooled = component(None);
    let mut m = native();
    let mut seq = 0;
    let mut group = c.benchmark_group("event");
    for (event, name) in EVENTS {
        group.bench_function(BenchmarkId::new("component", name), |b| {
            b.iter_custom(|iters| time_component(&tokio, &mut rt, event, iters, &mut seq))
        });
        group.bench_function(BenchmarkId::new("component-default-allocator", name), |b| {
            b.iter_custom(|iters| time_component(&tokio, &mut unpooled, event, iters, &mut seq))
        });
        group.bench_function(BenchmarkId::new("native", name), |b| {
            b.iter_custom(|iters| time_native(&mut m, event, iters, &mut seq))
        });
    }
    // The webhook baselines: in memory, and with every event's changes
    // durable (SQLite, group commit) before it answers.
    let durable = tempfile::tempdir().unwrap();
    for (baseline, addr) in [
        ("webhook", webhook::serve()),
        (
            "webhook-durable",
            webhook::serve_durable(&durable.path().join("baseline.db")),
        ),
    ] {
        let mut client = tokio.block_on(webhook::connect(addr));
        for (event, name) in [(Event::Message, "on-message"), (Event::Read, "on-read")] {
            group.bench_function(BenchmarkId::new(baseline, name), |b| {
                b.iter_custom(|iters| {
                    tokio.block_on(async {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            seq += 1;
                            let (i, at) = (seq, seq * DAY_PLUS);
                            let start = Instant::now();
                            client.post(webhook::message_event(i, at)).await;
                            if matches!(event, Event::Message) {
                                spent += start.elapsed();
                            }
                            let start = Instant::now();
                            client.post(webhook::read_event(i)).await;
                            if matches!(event, Event::Read) {
                                spent += start.elapsed();
                            }
                        }
                        spent
                    })
                })
            });
        }
    }
    group.finish();
}

fn sandbox_creation(c: &mut Criterion) {
    let tokio = tokio();
    let mut group = c.benchmark_group("sandbox");
    for (name, pool) in [("default", None), ("pooling", Some(1_000))] {
        let engine = engine::build(pool).unwrap();
        let pre = host_test::prepare(&engine).unwrap();
        let rt = TestRuntime::with(pre.clone());
        let create = || async {
            let mut store = Store::new(pre.engine(), sandbox(&rt));
            store.limiter(|s| &mut s.limits);
            engine::configure(&mut store);
            let instance = pre.instantiate_async(&mut store).await.unwrap();
            (instance, store)
        };
        // Creation alone: each sandbox is dropped outside the timed part
        // (its slot is then reused by the next, as on a server that
        // evicts idle tenants).
        group.bench_function(BenchmarkId::new("create", name), |b| {
            b.iter_custom(|iters| {
                tokio.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        let sandbox = create().await;
                        spent += start.elapsed();
                        drop(sandbox);
                    }
                    spent
                })
            })
        });
        // The whole cycle: creation and drop (the slot's reset).
        group.bench_function(BenchmarkId::new("cycle", name), |b| {
            b.iter_custom(|iters| {
                tokio.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        drop(create().await);
                    }
                    start.elapsed()
                })
            })
        });
    }
    // The fixed cost of a call: `on-timer` with a key that is not a timer
    // makes no host call. Raw, and through the runtime's deadline wrapper.
    let mut rt = component(None);
    let pre = host_test::prepared().unwrap();
    let mut raw = Store::new(pre.engine(), sandbox(&rt));
    raw.limiter(|s| &mut s.limits);
    engine::configure(&mut raw);
    let instance = tokio.block_on(pre.instantiate_async(&mut raw)).unwrap();
    group.bench_function("call/raw", |b| {
        b.iter_custom(|iters| {
            tokio.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    instance
                        .call_on_timer(&mut raw, "x")
                        .await
                        .unwrap()
                        .unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("call/runtime", |b| {
        b.iter_custom(|iters| {
            tokio.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    rt.on_timer(TENANT, "x").await.unwrap().unwrap();
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

fn sandbox(rt: &TestRuntime) -> Sandbox {
    let outbound = Outbound {
        tenant: TENANT.into(),
        policy: rt.policy.clone(),
        clock: rt.clock.clone(),
        timer: None,
    };
    Sandbox::new(
        TENANT.into(),
        rt.storage().clone(),
        std::sync::Arc::new(host_test::directory::Stored(rt.storage().clone())),
        rt.clock.clone(),
        outbound,
    )
}

fn scaling(c: &mut Criterion) {
    let tokio = tokio();
    let mut group = c.benchmark_group("scaling");
    group.sample_size(20);
    for pending in [1u64, 1_000, 100_000] {
        let mut rt = component(Some(16));
        {
            let t = rt.tenant(TENANT);
            let mut t = t.lock().unwrap();
            for i in 0..pending {
                let conversation = format!("p{i}");
                let mut c = Conversation::default();
                let (alice, bob) = (c.join("alice").unwrap(), c.join("bob").unwrap());
                c.push(alice, bob, id_hash("x1"), Some("waiting"));
                c.participants[bob].due_at = Some(u64::MAX / 2);
                t.state
                    .insert(keys::conversation(&conversation), c.encode());
                let timer = Timer::Deliver {
                    conversation,
                    recipient: "bob".into(),
                };
                t.timers.insert(timer.key(), u64::MAX / 2);
            }
        }
        let mut seq = 10_000_000;
        group.bench_function(BenchmarkId::new("pending", pending), |b| {
            b.iter_custom(|iters| time_component(&tokio, &mut rt, Event::Message, iters, &mut seq))
        });
    }
    for tenants in [1usize, 100, 10_000] {
        let mut rt = pooled(tenants as u32 + 1);
        let names: Vec<String> = (0..tenants).map(|n| format!("t{n}")).collect();
        tokio.block_on(async {
            for name in &names {
                setup_tenant(&mut rt, name);
                rt.validate_settings(name, &settings())
                    .await
                    .unwrap()
                    .unwrap();
            }
        });
        let mut seq = 20_000_000u64;
        group.bench_function(BenchmarkId::new("tenants", tenants), |b| {
            b.iter_custom(|iters| {
                tokio.block_on(async {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        seq += 1;
                        let name = &names[(seq as usize * 7919) % tenants];
                        let start = Instant::now();
                        rt.on_message(name, &wit_message(seq, 0))
                            .await
                            .unwrap()
                            .unwrap();
                        spent += start.elapsed();
                        rt.on_read(name, &wit_receipt(seq)).await.unwrap().unwrap();
                    }
                    spent
                })
            })
        });
    }
    group.finish();
}

/// Resident memory, in bytes.
fn resident() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Resident bytes per idle tenant (instantiated, one event handled), for
/// each allocator and tenant count; `None` where the tenants do not fit.
fn idle_tenants() -> Vec<(String, Option<u64>)> {
    let tokio = tokio();
    let mut figures = Vec::new();
    for (name, pool) in [("default", false), ("pooling", true)] {
        for n in [1_000u32, 10_000] {
            let engine = engine::build(pool.then_some(n)).unwrap();
            let pre = host_test::prepare(&engine).unwrap();
            let mut rt = TestRuntime::with(pre);
            let before = resident();
            let fitted = tokio.block_on(async {
                for t in 0..n {
                    let name = format!("t{t}");
                    setup_tenant(&mut rt, &name);
                    if let Err(e) = rt.on_message(&name, &wit_message(1, 0)).await {
                        eprintln!("{name} allocator: tenant {t} of {n} failed: {e:#}");
                        return false;
                    }
                }
                true
            });
            let per = fitted.then(|| resident().saturating_sub(before) / u64::from(n));
            figures.push((format!("{name} allocator, {n} tenants"), per));
            drop(rt);
        }
    }
    figures
}

/// Mean time of one criterion benchmark, from its saved estimates.
fn mean_ns(dir: &std::path::Path, group: &str, id: &str) -> Option<f64> {
    let path = dir.join(group).join(id).join("new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
    let mut c = Criterion::default()
        .output_directory(&dir)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    per_event(&mut c);
    sandbox_creation(&mut c);
    scaling(&mut c);
    c.final_summary();

    let mean = |group: &str, id: &str| mean_ns(&dir, group, id).unwrap_or(f64::NAN);
    println!("\n== Ratios (same run)");
    for (_, name) in EVENTS {
        let (component, native) = (
            mean("event", &format!("component/{name}")),
            mean("event", &format!("native/{name}")),
        );
        println!(
            "{name:<18} component {:>9.1} µs  native {:>8.1} µs  component/native {:>5.2}",
            component / 1e3,
            native / 1e3,
            component / native
        );
    }
    for name in ["on-message", "on-read"] {
        let (component, webhook, durable) = (
            mean("event", &format!("component/{name}")),
            mean("event", &format!("webhook/{name}")),
            mean("event", &format!("webhook-durable/{name}")),
        );
        println!(
            "{name:<18} webhook {:>9.1} µs  webhook/component {:>5.1}  durable webhook {:>9.1} µs (the component here keeps its state in memory: `--bench serve` compares durable with durable)",
            webhook / 1e3,
            webhook / component,
            durable / 1e3,
        );
    }
    for name in ["default", "pooling"] {
        println!(
            "sandbox creation, {name:<8} {:>8.1} µs  (with its drop {:>5.1} µs)",
            mean("sandbox", &format!("create/{name}")) / 1e3,
            mean("sandbox", &format!("cycle/{name}")) / 1e3
        );
    }
    let base = mean("scaling", "pending/1");
    for n in [1, 1_000, 100_000] {
        let t = mean("scaling", &format!("pending/{n}"));
        println!(
            "on-message with {n:>6} pending  {:>8.1} µs  ×{:.2}",
            t / 1e3,
            t / base
        );
    }
    let base = mean("scaling", "tenants/1");
    for n in [1, 100, 10_000] {
        let t = mean("scaling", &format!("tenants/{n}"));
        println!(
            "on-message with {n:>6} tenants  {:>8.1} µs  ×{:.2}",
            t / 1e3,
            t / base
        );
    }
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    for (what, bytes) in idle_tenants() {
        match bytes {
            Some(bytes) => println!(
                "resident per idle tenant, {what}: {bytes} bytes ({} tenants per GiB)",
                (1u64 << 30) / bytes.max(1)
            ),
            None => {
                println!("resident per idle tenant, {what}: does not fit (see the error above)")
            }
        }
    }
    let wasm = std::fs::metadata(host_test::COMPONENT)
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "release .wasm: {wasm} bytes ({:.1} KiB)",
        wasm as f64 / 1024.0
    );
}
