//! The core's own types: the inputs it decides on and the outcomes and
//! effects it returns. They mirror the WIT records but are plain Rust, so the
//! core builds and tests natively; the glue converts at the boundary.

use crate::prelude::*;

/// Milliseconds since the Unix epoch. Every time in the core is one of these,
/// passed in as an argument.
pub type Millis = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConversationKind {
    OneOnOne,
    Group,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Image,
    Video,
    Audio,
    File,
    Custom,
}

/// A message as the chat server delivered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub conversation: String,
    pub kind: ConversationKind,
    pub format: Format,
    pub sender: String,
    pub receiver: String,
    pub text: String,
    pub sent_at: Millis,
}

/// `reader` has read `message` and every earlier message of `conversation`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    pub conversation: String,
    pub reader: String,
    pub message: String,
    pub read_at: Millis,
}

/// A message the chat server deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deletion {
    pub conversation: String,
    /// The deleted message's id.
    pub message: String,
    pub deleted_at: Millis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Online,
    Offline,
}

/// A user as the chat server knows them right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: String,
    pub name: String,
    pub presence: Presence,
    /// JSON text; the contact number is `@private.contactNumber`.
    pub metadata: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// A pending notification as reported in an outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingSummary {
    pub conversation: String,
    pub recipient: String,
    pub unread: u32,
    pub due_at: Millis,
}

/// Why a call did nothing: the closed list of the WIT's `skip-reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    GroupConversation,
    NotText,
    SelfMessage,
    RecipientOnline,
    UnknownRecipient,
    NoContactNumber,
    InvalidContactNumber,
    NothingPending,
    UnknownTimer,
    ConversationDailyLimit,
    RecipientDailyLimit,
    OptedOut,
    UndeliverableNumber,
    UnknownSms,
}

impl SkipReason {
    /// The reason's name as the WIT spells it (kebab-case).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::GroupConversation => "group-conversation",
            Self::NotText => "not-text",
            Self::SelfMessage => "self-message",
            Self::RecipientOnline => "recipient-online",
            Self::UnknownRecipient => "unknown-recipient",
            Self::NoContactNumber => "no-contact-number",
            Self::InvalidContactNumber => "invalid-contact-number",
            Self::NothingPending => "nothing-pending",
            Self::UnknownTimer => "unknown-timer",
            Self::ConversationDailyLimit => "conversation-daily-limit",
            Self::RecipientDailyLimit => "recipient-daily-limit",
            Self::OptedOut => "opted-out",
            Self::UndeliverableNumber => "undeliverable-number",
            Self::UnknownSms => "unknown-sms",
        }
    }
}

/// What a call did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Scheduled(PendingSummary),
    Updated(PendingSummary),
    /// Held back (the cooldown, quiet hours) until `due_at`.
    Deferred(PendingSummary, DeferReason),
    Cancelled {
        conversation: String,
        recipient: String,
        read: u32,
    },
    Sent {
        conversation: String,
        recipient: String,
        sid: String,
        /// Twilio's status for the message (`queued`, `accepted`, …).
        status: String,
        unread: u32,
    },
    /// Twilio asked us to come back later: attempt `attempt` failed, the
    /// next is at `due_at`.
    Retrying {
        conversation: String,
        recipient: String,
        attempt: u32,
        due_at: Millis,
        error: TwilioError,
    },
    /// The notification was given up: the last error says why.
    Failed {
        conversation: String,
        recipient: String,
        attempts: u32,
        error: TwilioError,
    },
    /// The tenant's sending is paused until `until` (its credentials were
    /// refused); the notification waits and is tried again then.
    Paused {
        conversation: String,
        recipient: String,
        until: Millis,
        error: TwilioError,
    },
    Skipped(SkipReason),
    /// A delivery report was recorded.
    Delivery(Delivery),
}

/// Why a due notification waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeferReason {
    Cooldown,
    QuietHours,
}

/// A delivery report, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub conversation: String,
    pub recipient: String,
    pub sid: String,
    pub status: String,
    pub error_code: Option<u32>,
    /// The number is not texted again.
    pub suppressed: bool,
}

/// One thing wrong with the settings: the field's JSON path and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

/// Twilio's refusal, or a failure to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TwilioError {
    /// HTTP status; 0 when no response arrived.
    pub status: u16,
    pub code: Option<u32>,
    pub message: String,
}

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    InvalidSettings(Vec<Problem>),
    InvalidInput(String),
    Host(String),
    /// A delivery report whose signature does not verify.
    Unauthenticated(String),
}

/// A change to the tenant's durable state or timers: what the core asks the
/// shell to commit. An event's changes are committed together, in order,
/// all or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Store `value` under `key` in the tenant's durable state.
    Put { key: String, value: Vec<u8> },
    /// Remove `key` from the tenant's durable state.
    Delete { key: String },
    /// Set (or move) the durable timer `key` to `due_at`.
    SetTimer { key: String, due_at: Millis },
    /// Cancel the durable timer `key`.
    CancelTimer { key: String },
}

/// A line for the operator's log, already masked and free of secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    pub level: Level,
    pub line: String,
}

/// What a call decided: its result, the changes to commit (in order, all
/// or none) and the log lines to write once they are committed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    pub result: Option<Result<Outcome, Error>>,
    pub changes: Vec<Change>,
    pub logs: Vec<Log>,
}

impl Decision {
    pub(crate) fn new(result: Result<Outcome, Error>) -> Self {
        Self {
            result: Some(result),
            ..Self::default()
        }
    }

    pub(crate) fn skip(reason: SkipReason) -> Self {
        Self::new(Ok(Outcome::Skipped(reason)))
    }

    pub(crate) fn change(mut self, change: Change) -> Self {
        self.changes.push(change);
        self
    }

    pub(crate) fn log(mut self, level: Level, line: String) -> Self {
        self.logs.push(Log { level, line });
        self
    }

    /// The call's result.
    pub fn result(&self) -> &Result<Outcome, Error> {
        self.result.as_ref().expect("every step has a result")
    }
}
