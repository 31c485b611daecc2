//! The limits every setting and record keeps to, and the defaults of the
//! settings: in one place, so a record's bound and the setting it serves
//! cannot drift apart.

use crate::model::Millis;

/// A day, the window of every daily limit.
pub const DAY_MS: Millis = 24 * 60 * 60 * 1000;

/// Default for `delaySeconds`: how long after a message the recipient must
/// still be offline with it unread before an SMS goes out.
pub const DEFAULT_DELAY_SECONDS: u64 = 60;
/// Upper bound for `delaySeconds`: one day.
pub const MAX_DELAY_SECONDS: u64 = 86_400;
/// Upper bound for `websiteURL`, so the link never crowds out the message.
pub const MAX_URL_CHARS: usize = 200;
/// Defaults of the limits, as in CometChat's notification settings.
pub const DEFAULT_COOLDOWN_MINUTES: u64 = 120;
pub const DEFAULT_CONVERSATION_SMS_PER_DAY: u64 = 2;
pub const DEFAULT_RECIPIENT_SMS_PER_DAY: u64 = 20;
/// Upper bounds of the limits; a history never holds more entries.
pub const MAX_COOLDOWN_MINUTES: u64 = 1440;
pub const MAX_CONVERSATION_SMS_PER_DAY: u64 = 100;
pub const MAX_RECIPIENT_SMS_PER_DAY: u64 = 1000;
/// Longest SMS allowed, in segments (each billed as one SMS).
pub const MAX_SEGMENTS: u64 = 10;
/// Attempts per notification when Twilio asks us to come back later.
pub const DEFAULT_MAX_ATTEMPTS: u64 = 5;
pub const MAX_ATTEMPTS: u64 = 10;

/// Longest id (message, conversation, user) accepted, in bytes. Ids become
/// parts of state and timer keys, so they must stay short.
pub const MAX_ID_BYTES: usize = 256;
