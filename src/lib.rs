//! sms-notification: a chat-server extension that texts offline users about
//! unread one-on-one messages through Twilio.
//!
//! Functional core, imperative shell. Every module but [`shell`] is pure
//! core: no WIT types, no I/O, no clock reads; time and records come in as
//! arguments, effects go out as values. Its folders, by role:
//!
//! - [`calls`]: what each call of the contract decides (a message, a
//!   receipt, a timer, a delivery report, an expiry, a preview, an inspection);
//! - [`state`]: the records a tenant's state holds, their keys, timers and
//!   encoding, and the 0.2.0 layout read for the last time;
//! - [`policy`]: settings, their limits, quiet hours;
//! - [`twilio`]: the request, what its answers and transport errors say,
//!   scrubbing outside text;
//! - [`text`]: templates, segments, fitting the SMS body;
//! - [`contact`]: contact numbers as libphonenumber reads them;
//! - [`shell`]: the driver that sequences host calls around the core, the
//!   WIT glue (WebAssembly only) and a native in-memory host.
//!
//! [`model`] holds the types they share. Dependencies point one way:
//! `shell` → `calls` → `state` → `policy` → `text`, with `twilio` and
//! `contact` beside them and `model` under all.

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

pub mod calls;
pub mod contact;
pub mod model;
pub mod policy;
pub mod shell;
pub mod state;
pub mod text;
pub mod twilio;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod properties;
