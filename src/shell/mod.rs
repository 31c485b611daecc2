//! The imperative shell: [`driver`] sequences host calls around the core
//! (no decisions), `glue` (WebAssembly only) connects it to the WIT
//! contract in `wit/`, and [`native`] runs it on an in-memory host for
//! native tests and benchmarks.

pub mod driver;

#[cfg(target_arch = "wasm32")]
mod glue;

/// The driver on an in-memory host, for native tests and benchmarks.
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
