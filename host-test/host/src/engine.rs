//! The engine every tenant shares: its configuration, the epoch ticker
//! that bounds guest time, the linker (what a sandbox may import), and the
//! compiled component with its `InstancePre`.
//!
//! Time limits use epochs, not fuel. Fuel counts guest instructions and
//! costs a counter update in every basic block; an epoch check is a load
//! and a compare at function entries and loop heads. A call's limit here is
//! wall time anyway (it includes waiting for Twilio), so each store yields
//! to tokio at every epoch tick ([`TICK`]) and the call's deadline
//! ([`bounded`]) can cut off even a guest that loops forever, without
//! blocking the server's other tasks meanwhile.

use crate::contract::{self, Pre};
use crate::sandbox::{MEMORY_LIMIT, Sandbox};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::Notify;
use wasmtime::component::{Component, Linker};
use wasmtime::error::Context as _;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
    ProfilingStrategy, Result, Store, format_err,
};

/// How often the epoch advances; guest code yields to tokio this often.
pub const TICK: Duration = Duration::from_millis(10);

/// The engine's configuration: component model, async, epochs, and, for
/// `pool = Some(n)`, the pooling allocator sized for `n` tenants.
pub fn config(pool: Option<u32>) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // For profiling with `perf`: names the guest's compiled functions.
    if std::env::var_os("SMS_NOTIFICATION_PERFMAP").is_some() {
        config.profiler(ProfilingStrategy::PerfMap);
    }
    if let Some(tenants) = pool {
        // Slots for `tenants` sandboxes, each instance, memory and table
        // pre-reserved; memories reserve only their limit (not the 4 GiB a
        // default memory reserves), so tens of thousands fit in the address
        // space at the price of explicit bounds checks.
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(tenants)
            .total_core_instances(tenants.saturating_mul(CORE_INSTANCES))
            .total_memories(tenants)
            .total_tables(tenants.saturating_mul(TABLES))
            // A store keeps its fiber stack between calls.
            .total_stacks(tenants)
            .max_memory_size(MEMORY_LIMIT)
            .max_memories_per_module(1)
            .max_memories_per_component(1)
            .max_tables_per_component(TABLES);
        // A freed slot is reset by `memset` of its first pages rather than
        // `madvise`, and, where Linux has `PAGEMAP_SCAN` (6.7+), only its
        // dirty pages are: sandbox creation from a warm slot is a quarter
        // cheaper (BENCHMARKS.md). More than 64 KiB costs more than it saves
        // without `PAGEMAP_SCAN`.
        pool.linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        config.memory_reservation(MEMORY_LIMIT as u64);
        config.memory_guard_size(64 << 10);
        config.memory_reservation_for_growth(0);
    }
    config
}

/// Bytes of a freed memory or table slot reset in place (see [`config`]).
const KEEP_RESIDENT: usize = 64 << 10;

/// Core instances and tables one sandbox of this component needs.
const CORE_INSTANCES: u32 = 8;
const TABLES: u32 = 4;

/// A new engine, with its epoch ticker running.
pub fn build(pool: Option<u32>) -> Result<Engine> {
    let engine = Engine::new(&config(pool))?;
    let ticking = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = ticking.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(TICK);
            }
        })?;
    Ok(engine)
}

/// The process's engine (default allocator).
pub fn engine() -> Result<Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine.clone());
    }
    let engine = build(None)?;
    Ok(ENGINE.get_or_init(|| engine).clone())
}

/// Sets a store up to yield at every epoch tick (without a deadline, the
/// first epoch check would trap).
pub fn configure<T>(store: &mut Store<T>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
}

/// What a sandbox may import: `wasi:http/proxy`'s interfaces (HTTP, I/O,
/// clocks, random, and stdio that goes nowhere: the context grants none)
/// and our host interface, in every contract version this host loads. The
/// component itself imports only the host, I/O, clocks and HTTP. No
/// filesystem, environment or sockets are linked at all: a component
/// importing them does not instantiate.
pub fn linker(engine: &Engine) -> Result<Linker<Sandbox>> {
    let mut linker = Linker::<Sandbox>::new(engine);
    wasmtime_wasi_http::p2::add_to_linker_async(&mut linker)?;
    contract::add_to_linker(&mut linker)?;
    Ok(linker)
}

/// The component at `path` (a build of any contract this host loads),
/// compiled for `engine` and pre-instantiated.
pub fn prepare_file(engine: &Engine, path: &str) -> Result<Pre> {
    let component = compiled(engine, path)?;
    Pre::new(&linker(engine)?, &component).with_context(|| format!("loading {path}"))
}

/// The component at `path`, compiled for `engine`. Compiling takes a second
/// or two (more in a debug build); the result is kept in the compiled-code
/// cache ([`cache_dir`]), named by a SHA-256 of the engine's compatibility
/// hash and the component's bytes, so a restarted host starts at once and
/// nothing is written beside the `.wasm`. wasmtime checks a cached file
/// against the engine when loading it; a file that does not load (another
/// engine, a damaged file) is compiled again and replaced, never trusted.
/// A cache that cannot be read or written is only slower.
pub fn compiled(engine: &Engine, path: &str) -> Result<Component> {
    use sha2::{Digest, Sha256};
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(path).with_context(|| format!("loading the component {path}"))?;
    // The engine's compatibility hash is only offered through `Hash`: fed
    // to SHA-256 as it writes itself, it gives a name stable across Rust
    // releases (std's `DefaultHasher` is not).
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut sha = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut sha);
    sha.0.update(&bytes);
    let name: String = sha.0.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = cache_dir();
    let cache = dir.as_ref().map(|d| d.join(format!("{name}.cwasm")));
    if let Some(cache) = &cache
        && cache.exists()
    {
        // SAFETY: the file is this host's own compilation of these bytes
        // for this engine (its name says so), written whole (by rename) in
        // the operator's cache directory; wasmtime also checks that it was
        // compiled by a compatible engine before using it.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, cache) } {
            return Ok(component);
        }
    }
    let component = Component::new(engine, &bytes)
        .with_context(|| format!("compiling the component {path}"))?;
    if let (Some(dir), Some(cache), Ok(serialized)) = (dir, cache, component.serialize()) {
        let partial = dir.join(format!("{name}.{}.partial", std::process::id()));
        if std::fs::create_dir_all(&dir).is_ok() && std::fs::write(&partial, serialized).is_ok() {
            let _ = std::fs::rename(&partial, &cache);
        }
    }
    Ok(component)
}

/// Where compiled components are kept: `SMS_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/sms-notification`, else `~/.cache/sms-notification`;
/// `None` (no cache) when none can be told.
pub fn cache_dir() -> Option<std::path::PathBuf> {
    if let Some(dir) = std::env::var_os("SMS_CACHE_DIR") {
        return Some(dir.into());
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(std::path::PathBuf::from(dir).join("sms-notification"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| std::path::PathBuf::from(home).join(".cache/sms-notification"))
}

/// Runs one call, cut off by the deadline or by the runtime's abort
/// signal.
pub async fn bounded<T>(
    abort: &Notify,
    deadline: Duration,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        // The call first: one that finishes without waiting (most do) then
        // never registers with the abort signal or the timer.
        biased;
        result = tokio::time::timeout(deadline, call) => match result {
            Ok(result) => result,
            Err(_) => Err(format_err!("the call took longer than {deadline:?}")),
        },
        () = abort.notified() => Err(format_err!("the call was aborted mid-call (the runtime's abort signal)")),
    }
}
