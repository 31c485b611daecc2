//! The store's own types: what it keeps, independent of any contract's
//! WIT bindings (each contract converts to and from these in one place,
//! [`crate::contract`]).

/// Whether a user is connected now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Online,
    Offline,
}

/// A user as a tenant's directory keeps them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: String,
    /// Display name.
    pub name: String,
    pub presence: Presence,
    /// The user's metadata, a JSON document (the number is
    /// `@private.contactNumber`).
    pub metadata: String,
}

/// Severity of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    /// As logs and the API name it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// One change of a commit: to the tenant's state or its timers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Store `value` under `key`, replacing what was there.
    Put { key: String, value: Vec<u8> },
    /// Remove the state `key` (a missing key is no error).
    Delete(String),
    /// Set (or move) the timer `key` to come due at `due_at` (ms).
    SetTimer { key: String, due_at: u64 },
    /// Cancel the timer `key` (a missing timer is no error).
    CancelTimer(String),
}
