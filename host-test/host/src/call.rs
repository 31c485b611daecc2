//! One typed record per call of the component: which tenant, which export,
//! for which timer, what it answered (an outcome, a typed error, or a
//! trap), why the store failed it if it did, when and how late. A host
//! emits one for every call it makes; each consumer turns it into its own
//! form (the service's HTTP answer and status, its log line, its metrics,
//! its page's events), so none of them reads another's JSON.

use crate::bindings::sms_notification::extension::types::{Error, Outcome};
use crate::runtime::Call;
use crate::storage::StoreError;
use serde_json::{Value, json};

/// What a call answered.
#[derive(Debug)]
pub enum Reply {
    Outcome(Outcome),
    /// The component's typed error.
    Error(Error),
    /// The call trapped (or overran its deadline): the host threw the
    /// sandbox away.
    Trap(String),
}

/// One call and what came of it.
#[derive(Debug)]
pub struct CallRecord {
    pub tenant: String,
    /// The export, as the WIT names it (`on-message`, `on-timer`, …).
    pub call: &'static str,
    /// The timer a timer call was for.
    pub key: Option<String>,
    /// When it answered (the host's clock, ms).
    pub at: u64,
    pub reply: Reply,
    /// Why the host's store failed the call, when it did (a commit refused,
    /// a read it could not answer).
    pub store: Option<StoreError>,
    /// For a timer: how late its call started, in ms.
    pub lag_ms: Option<u64>,
}

impl CallRecord {
    pub fn new(tenant: &str, call: &'static str, at: u64, result: Call) -> Self {
        Self {
            tenant: tenant.to_owned(),
            call,
            key: None,
            at,
            reply: match result {
                Ok(Ok(outcome)) => Reply::Outcome(outcome),
                Ok(Err(error)) => Reply::Error(error),
                Err(trap) => Reply::Trap(format!("{trap:#}")),
            },
            store: None,
            lag_ms: None,
        }
    }

    /// What it answered, in one word: the outcome's kind, `error:KIND`, or
    /// `trap` (as `/metrics` counts calls).
    pub fn kind(&self) -> String {
        match &self.reply {
            Reply::Outcome(o) => outcome_kind(o).to_owned(),
            Reply::Error(e) => format!("error:{}", error_kind(e)),
            Reply::Trap(_) => "trap".to_owned(),
        }
    }

    /// The JSON form logs and the service's answers use: the scenario
    /// line's fields (`call`, `outcome` / `error` / `trap`, `key`) with
    /// `at` and `tenant`.
    pub fn to_json(&self) -> Value {
        let mut line = json!({ "at": self.at, "call": self.call });
        match &self.reply {
            Reply::Outcome(o) => line["outcome"] = crate::json::outcome(o),
            Reply::Error(e) => line["error"] = crate::json::error(e),
            Reply::Trap(t) => line["trap"] = Value::String(t.clone()),
        }
        if let Some(key) = &self.key {
            line["key"] = Value::String(key.clone());
        }
        line["tenant"] = Value::String(self.tenant.clone());
        if let Some(lag) = self.lag_ms {
            line["lag_ms"] = json!(lag);
        }
        line
    }
}

/// An outcome's kind, as its JSON form names it.
pub fn outcome_kind(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Scheduled(_) => "scheduled",
        Outcome::Updated(_) => "updated",
        Outcome::Deferred(_) => "deferred",
        Outcome::Delivery(_) => "delivery",
        Outcome::Cancelled(_) => "cancelled",
        Outcome::Sent(_) => "sent",
        Outcome::Retrying(_) => "retrying",
        Outcome::Failed(_) => "failed",
        Outcome::Paused(_) => "paused",
        Outcome::Skipped(_) => "skipped",
    }
}

/// An error's kind, as its JSON form names it.
pub fn error_kind(error: &Error) -> &'static str {
    match error {
        Error::InvalidSettings(_) => "invalid-settings",
        Error::InvalidInput(_) => "invalid-input",
        Error::Host(_) => "host",
        Error::Unauthenticated(_) => "unauthenticated",
    }
}

/// Where a call goes once answered: its record, or (the fake Twilio's) a
/// line that is no call.
#[derive(Debug)]
pub enum Logged {
    Call(CallRecord),
    Line(Value),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::sms_notification::extension::types::SkipReason;

    #[test]
    fn kinds_and_json_agree_with_the_json_forms() {
        let mut r = CallRecord::new(
            "acme",
            "on-timer",
            5,
            Ok(Ok(Outcome::Skipped(SkipReason::OptedOut))),
        );
        r.key = Some("deliver/c/bob".into());
        r.lag_ms = Some(3);
        assert_eq!(r.kind(), "skipped");
        assert_eq!(
            r.to_json(),
            json!({ "at": 5, "call": "on-timer", "outcome": { "skipped": "opted-out" },
                    "key": "deliver/c/bob", "tenant": "acme", "lag_ms": 3 })
        );
        let e = CallRecord::new("acme", "on-message", 1, Ok(Err(Error::Host("db".into()))));
        assert_eq!(e.kind(), "error:host");
        assert_eq!(e.to_json()["error"], json!({ "host": "db" }));
        let t = CallRecord::new("acme", "on-read", 1, Err(wasmtime::format_err!("fuel")));
        assert_eq!(t.kind(), "trap");
        assert_eq!(t.to_json()["trap"], "fuel");
        // Every error kind is the key of its JSON form.
        for e in [
            Error::InvalidSettings(vec![]),
            Error::InvalidInput("x".into()),
            Error::Host("x".into()),
            Error::Unauthenticated("x".into()),
        ] {
            let json = crate::json::error(&e);
            assert!(json.get(error_kind(&e)).is_some(), "{json}");
        }
    }
}
