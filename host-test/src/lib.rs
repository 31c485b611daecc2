//! An example wasmtime host for the sms-notification component, and the test
//! harness its integration tests and CLI run on.
//!
//! It embeds the component the way a tokio-based chat server would: one
//! compiled component and one `InstancePre` shared by every tenant, one
//! `Store` (sandbox) per tenant, async host functions, a virtual clock, and
//! outbound HTTP that only ever reaches Twilio (or an in-process fake).

include!(concat!(env!("OUT_DIR"), "/component.rs"));

pub mod bindings;
pub mod clock;
pub mod contract;
pub mod demo;
pub mod directory;
pub mod engine;
pub mod json;
pub mod live;
pub mod outbound;
pub mod report;
pub mod runtime;
pub mod sandbox;
pub mod scenario;
pub mod serve;
pub mod storage;
