//! The wasmtime host library for the sms-notification component, as a
//! tokio-based chat server would embed it: one compiled component and one
//! `InstancePre` shared by every tenant ([`engine`], [`contract`]), one
//! `Store` (sandbox) per tenant ([`sandbox`]), async host functions, a
//! clock ([`clock`]), outbound HTTP that only ever reaches Twilio
//! ([`outbound`]), the runtime that calls the component ([`runtime`]), the
//! wall-clock scheduler ([`scheduler`]) and the tenants' durable data
//! ([`storage`]). It depends on nothing of the test harness.

pub mod bindings;
pub mod call;
pub mod clock;
pub mod contract;
pub mod directory;
pub mod engine;
pub mod json;
pub mod outbound;
pub mod report;
pub mod runtime;
pub mod sandbox;
pub mod scheduler;
pub mod storage;
pub mod tenants;
