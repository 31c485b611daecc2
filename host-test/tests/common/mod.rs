//! Test support shared by the host-test integration tests.
#![allow(dead_code)]

pub mod cometchat;
pub mod host;
pub mod pg;
pub mod serve;
pub mod twilio;
