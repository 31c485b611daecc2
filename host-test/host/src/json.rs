//! JSON forms of the component's answers, as the scenario runner prints them.
//! Names follow the WIT (kebab-case variants, snake_case fields).

use crate::bindings::sms_notification::extension::types::{
    DeferReason, Encoding, Error, Inspection, Outcome, Pending, Preview, Problem, SkipReason,
    TwilioError,
};
use serde_json::{Value, json};

pub fn outcome(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Scheduled(p) => json!({ "scheduled": pending(p) }),
        Outcome::Updated(p) => json!({ "updated": pending(p) }),
        Outcome::Deferred(d) => json!({ "deferred": {
            "conversation": d.conversation, "recipient": d.recipient, "unread": d.unread,
            "due_at": d.due_at, "why": match d.why {
                DeferReason::Cooldown => "cooldown",
                DeferReason::QuietHours => "quiet-hours",
            },
        }}),
        Outcome::Delivery(d) => json!({ "delivery": {
            "conversation": d.conversation, "recipient": d.recipient, "sid": d.sid,
            "status": d.status, "error_code": d.error_code, "suppressed": d.suppressed,
        }}),
        Outcome::Cancelled(c) => json!({ "cancelled": {
            "conversation": c.conversation, "recipient": c.recipient, "read": c.read,
        }}),
        Outcome::Sent(s) => json!({ "sent": {
            "conversation": s.conversation, "recipient": s.recipient, "sid": s.sid,
            "status": s.status, "unread": s.unread,
        }}),
        Outcome::Retrying(r) => json!({ "retrying": {
            "conversation": r.conversation, "recipient": r.recipient, "attempt": r.attempt,
            "due_at": r.due_at, "error": twilio_error(&r.error),
        }}),
        Outcome::Failed(f) => json!({ "failed": {
            "conversation": f.conversation, "recipient": f.recipient, "attempts": f.attempts,
            "error": twilio_error(&f.error),
        }}),
        Outcome::Paused(p) => json!({ "paused": {
            "conversation": p.conversation, "recipient": p.recipient, "until": p.until,
            "error": twilio_error(&p.error),
        }}),
        Outcome::Skipped(reason) => json!({ "skipped": skip_reason(*reason) }),
    }
}

fn pending(p: &Pending) -> Value {
    json!({
        "conversation": p.conversation,
        "recipient": p.recipient,
        "unread": p.unread,
        "due_at": p.due_at,
    })
}

pub fn skip_reason(reason: SkipReason) -> &'static str {
    match reason {
        SkipReason::GroupConversation => "group-conversation",
        SkipReason::NotText => "not-text",
        SkipReason::SelfMessage => "self-message",
        SkipReason::RecipientOnline => "recipient-online",
        SkipReason::UnknownRecipient => "unknown-recipient",
        SkipReason::NoContactNumber => "no-contact-number",
        SkipReason::InvalidContactNumber => "invalid-contact-number",
        SkipReason::NothingPending => "nothing-pending",
        SkipReason::UnknownTimer => "unknown-timer",
        SkipReason::ConversationDailyLimit => "conversation-daily-limit",
        SkipReason::RecipientDailyLimit => "recipient-daily-limit",
        SkipReason::OptedOut => "opted-out",
        SkipReason::UndeliverableNumber => "undeliverable-number",
        SkipReason::UnknownSms => "unknown-sms",
    }
}

pub fn error(error: &Error) -> Value {
    match error {
        Error::InvalidSettings(ps) => json!({ "invalid-settings": problems(ps) }),
        Error::InvalidInput(what) => json!({ "invalid-input": what }),
        Error::Host(what) => json!({ "host": what }),
        Error::Unauthenticated(what) => json!({ "unauthenticated": what }),
    }
}

pub fn preview(p: &Preview) -> Value {
    json!({
        "body": p.body,
        "encoding": match p.encoding {
            Encoding::Gsm7 => "gsm7",
            Encoding::Ucs2 => "ucs2",
        },
        "segments": p.segments,
        "max_segments": p.max_segments,
        "chars_left": p.chars_left,
        "shortened": p.shortened,
    })
}

pub fn inspection(i: &Inspection) -> Value {
    json!({
        "pending": i.pending.iter().map(|p| json!({
            "conversation": p.conversation, "recipient": p.recipient, "unread": p.unread,
            "due_at": p.due_at, "attempts": p.attempts, "held": p.held,
        })).collect::<Vec<_>>(),
        "sends": i.sends.iter().map(|s| json!({
            "conversation": s.conversation, "recipient": s.recipient, "sid": s.sid,
            "to": s.to, "at": s.at, "status": s.status, "error_code": s.error_code,
        })).collect::<Vec<_>>(),
        "suppressions": i.suppressions.iter().map(|s| json!({
            "recipient": s.recipient, "number": s.number, "reason": skip_reason(s.reason),
        })).collect::<Vec<_>>(),
        "paused": i.paused.as_ref().map(|p| json!({
            "until": p.until, "error": twilio_error(&p.error), "setting": p.setting,
        })),
        "unreadable": i.unreadable,
    })
}

fn twilio_error(e: &TwilioError) -> Value {
    json!({ "status": e.status, "code": e.code, "message": e.message })
}

pub fn problems(problems: &[Problem]) -> Value {
    problems
        .iter()
        .map(|p| json!({ "field": p.field, "message": p.message }))
        .collect()
}

/// A log line the component wrote (it masks numbers and never writes a
/// secret; the scenario tests check both).
pub fn log(line: &crate::storage::LogLine) -> Value {
    let level = line.level.name();
    json!({ "log": { "at": line.at, "level": level, "line": line.line } })
}

/// What the fake Twilio answered, in short.
/// A phone number as logs show it: the country code's first digits and the
/// last two, the rest starred (`+14*******71`).
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 5 {
        return "*".repeat(chars.len());
    }
    let (head, tail) = (3, 2);
    chars[..head]
        .iter()
        .chain(std::iter::repeat_n(&'*', chars.len() - head - tail))
        .chain(&chars[chars.len() - tail..])
        .collect()
}

/// One output line for a call's result.
pub fn call_line(at: u64, call: &str, key: Option<&str>, result: crate::runtime::Call) -> Value {
    let mut line = match result {
        Ok(Ok(o)) => json!({ "at": at, "call": call, "outcome": outcome(&o) }),
        Ok(Err(e)) => json!({ "at": at, "call": call, "error": error(&e) }),
        Err(trap) => trap_line(at, call, &trap),
    };
    if let Some(key) = key {
        line["key"] = Value::String(key.to_owned());
    }
    line
}

/// A trap: the host threw the sandbox away; the run goes on.
pub fn trap_line(at: u64, call: &str, trap: &wasmtime::Error) -> Value {
    json!({ "at": at, "call": call, "trap": format!("{trap:#}") })
}
