//! The one table of timer kinds, and the state keys that go with them.
//!
//! Every timer the extension sets is a [`Timer`]; its key is the only thing
//! the host keeps and hands back to `on-timer`. A key that does not parse,
//! or whose notification is gone, is harmless.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Characters kept as they are in a key part; everything else (notably `/`,
/// the separator) is percent-encoded, so any id round-trips.
const PART: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// Every kind of timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The delay of the pending notification of `recipient` in
    /// `conversation` has passed: check and send.
    Deliver {
        conversation: String,
        recipient: String,
    },
}

impl Timer {
    /// The timer's key, as given to the host's `timer-set`.
    pub fn key(&self) -> String {
        match self {
            Self::Deliver {
                conversation,
                recipient,
            } => join("deliver", conversation, recipient),
        }
    }

    /// The timer a key names, or `None` for a key this extension never sets.
    pub fn parse(key: &str) -> Option<Self> {
        let mut parts = key.split('/');
        let kind = parts.next()?;
        let conversation = decode(parts.next()?)?;
        let recipient = decode(parts.next()?)?;
        if parts.next().is_some() {
            return None;
        }
        match kind {
            "deliver" => Some(Self::Deliver {
                conversation,
                recipient,
            }),
            _ => None,
        }
    }
}

/// State key of the pending notification of `recipient` in `conversation`.
/// One key per notification keeps every event O(1) in the number of
/// notifications a tenant has pending.
pub fn pending_key(conversation: &str, recipient: &str) -> String {
    join("pending", conversation, recipient)
}

fn join(kind: &str, conversation: &str, recipient: &str) -> String {
    format!(
        "{kind}/{}/{}",
        utf8_percent_encode(conversation, PART),
        utf8_percent_encode(recipient, PART)
    )
}

fn decode(part: &str) -> Option<String> {
    percent_decode_str(part)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_any_id() {
        for (conversation, recipient) in [("alice_bob", "bob"), ("a/b c", "ü/%2F"), ("", "x")] {
            let timer = Timer::Deliver {
                conversation: conversation.into(),
                recipient: recipient.into(),
            };
            assert_eq!(Timer::parse(&timer.key()), Some(timer));
        }
    }

    #[test]
    fn foreign_keys_are_not_timers() {
        for key in [
            "",
            "deliver",
            "deliver/a",
            "deliver/a/b/c",
            "retry/a/b",
            "deliver/%FF/b",
        ] {
            assert_eq!(Timer::parse(key), None, "{key}");
        }
    }

    #[test]
    fn pending_and_timer_keys_differ() {
        let timer = Timer::Deliver {
            conversation: "c".into(),
            recipient: "r".into(),
        };
        assert_ne!(timer.key(), pending_key("c", "r"));
    }
}
