//! sms-notification: a chat-server extension that texts offline users about
//! unread one-on-one messages through Twilio.
//!
//! Functional core, imperative shell. Every module but [`driver`] and `glue`
//! is pure core: no WIT types, no I/O, no clock reads; time and records come in
//! as arguments, effects go out as values. [`driver`] sequences host calls
//! around them, and `glue` (built only for WebAssembly) connects the driver
//! to the WIT contract in `wit/`.

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

// The oracle shared with `tests/` names the crate by its name.
#[cfg(test)]
extern crate self as sms_notification;

/// What the standard prelude would bring: the WebAssembly build is
/// `no_std` (std's panic printing, stdio and environment imports cost bytes
/// and imports a sandboxed extension has no use for).
mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

pub mod contact;
pub mod conversation;
pub mod deliver;
pub mod driver;
pub mod expiry;
pub mod history;
pub mod inspect;
pub mod keys;
pub mod legacy;
pub mod model;
pub mod notify;
pub mod pause;
pub mod phone_table;
pub mod preview;
pub mod quiet;
pub mod record;
pub mod redact;
pub mod render;
pub mod segments;
pub mod settings;
pub mod status;
pub mod suppression;
pub mod template;
pub mod timer;
pub mod transport;
pub mod twilio;

#[cfg(target_arch = "wasm32")]
mod glue;

/// The driver on an in-memory host, for native tests and benchmarks.
#[cfg(not(target_arch = "wasm32"))]
pub mod memory;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod properties;
