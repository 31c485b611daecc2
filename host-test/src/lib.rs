//! The test harness of the sms-notification component, and its CLI: the
//! guest build (`build.rs`, [`COMPONENT`]), the scenario runner, the fake
//! Twilio with its crash injection, [`TestRuntime`], the wall-clock `host`
//! the durable tests drive, and the demo. The host itself is the
//! `sms-host` library and the service `sms-serve`; both are re-exported
//! here under their module names, so a test reads `host_test::runtime`,
//! `host_test::storage` or `host_test::serve` alike. Neither depends on
//! anything here.

include!(concat!(env!("OUT_DIR"), "/component.rs"));

pub mod demo;
pub mod fake_twilio;
pub mod scenario;
pub mod stdin_host;
pub mod test_runtime;
pub use test_runtime::TestRuntime;

pub use sms_host::{
    bindings, call, clock, contract, directory, engine, json, outbound, report, runtime, sandbox,
    scheduler, storage, tenants,
};
#[cfg(feature = "service")]
pub use sms_serve as serve;

/// The component this build made ([`COMPONENT`]), compiled for `engine`
/// and pre-instantiated.
pub fn prepare(engine: &wasmtime::Engine) -> wasmtime::Result<contract::Pre> {
    engine::prepare_file(engine, COMPONENT)
}

/// [`prepare`] on the default engine, once per process: every runtime and
/// test shares the compilation.
pub fn prepared() -> wasmtime::Result<contract::Pre> {
    static PRE: std::sync::OnceLock<contract::Pre> = std::sync::OnceLock::new();
    if let Some(pre) = PRE.get() {
        return Ok(pre.clone());
    }
    let pre = prepare(&engine::engine()?)?;
    Ok(PRE.get_or_init(|| pre).clone())
}
