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

use crate::bindings::{SmsNotification, SmsNotificationPre};
use crate::tenant::Sandbox;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::sync::Notify;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::error::Context as _;
use wasmtime::{Config, Engine, Result, Store, format_err};
use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
use wasmtime_wasi::p2::bindings::cli;

/// How often the epoch advances; guest code yields to tokio this often.
pub const TICK: Duration = Duration::from_millis(10);

/// The engine's configuration: component model, async, epochs.
pub fn config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config
}

/// The process's engine, with its epoch ticker running.
pub fn engine() -> Result<Engine> {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    if let Some(engine) = ENGINE.get() {
        return Ok(engine.clone());
    }
    let engine = Engine::new(&config())?;
    let ticking = engine.clone();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                ticking.increment_epoch();
            }
        })?;
    Ok(ENGINE.get_or_init(|| engine).clone())
}

/// Sets a store up to yield at every epoch tick (without a deadline, the
/// first epoch check would trap).
pub fn configure<T>(store: &mut Store<T>) {
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
}

/// What a sandbox may import: WASI clocks, I/O, random and stdio (stdio goes
/// nowhere: the context grants none), `wasi:cli` environment (empty), exit
/// and terminal queries, `wasi:http`, and our host interface. No filesystem
/// and no sockets are linked at all: a component importing them does not
/// instantiate.
pub fn linker(engine: &Engine) -> Result<Linker<Sandbox>> {
    let mut linker = Linker::<Sandbox>::new(engine);
    wasmtime_wasi_http::p2::add_to_linker_async(&mut linker)?;
    let l = &mut linker;
    cli::environment::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::exit::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_input::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_output::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_stdin::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_stdout::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    cli::terminal_stderr::add_to_linker::<Sandbox, WasiCli>(l, Sandbox::cli)?;
    SmsNotification::add_to_linker::<Sandbox, HasSelf<Sandbox>>(l, |s| s)?;
    Ok(linker)
}

/// The compiled component and its pre-instantiation, shared by every tenant
/// and every runtime in the process: compiling happens once.
pub fn prepared() -> Result<SmsNotificationPre<Sandbox>> {
    static PRE: OnceLock<SmsNotificationPre<Sandbox>> = OnceLock::new();
    if let Some(pre) = PRE.get() {
        return Ok(pre.clone());
    }
    let engine = engine()?;
    let component = Component::from_file(&engine, crate::COMPONENT)
        .with_context(|| format!("loading the component {}", crate::COMPONENT))?;
    let pre = SmsNotificationPre::new(linker(&engine)?.instantiate_pre(&component)?)?;
    Ok(PRE.get_or_init(|| pre).clone())
}

/// Runs one call, cut off by the deadline or by a scripted crash.
pub async fn bounded<T>(
    crash: &Notify,
    deadline: Duration,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        result = tokio::time::timeout(deadline, call) => match result {
            Ok(result) => result,
            Err(_) => Err(format_err!("the call took longer than {deadline:?}")),
        },
        () = crash.notified() => Err(format_err!("the sandbox was killed mid-call (a scripted crash)")),
    }
}
