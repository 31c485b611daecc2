//! The one table of timer kinds.
//!
//! Every timer the extension sets is a [`Timer`]; its key is the only thing
//! the host keeps and hands back to `on-timer`. A key that does not parse,
//! or whose record is gone, is harmless.

use crate::prelude::*;

use crate::state::keys;

/// Every kind of timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The pending notification of `recipient` in `conversation` is due:
    /// its delay has passed, or a cooldown holding it back has ended.
    Deliver {
        conversation: String,
        recipient: String,
    },
    /// The conversation's record may have outlived its use: removed when
    /// nothing in it is pending, unread or still counted by a limit, and
    /// its newest message is past the time a redelivery could come (see
    /// [`crate::calls::expiry`]); else moved to when it may be.
    Expire { conversation: String },
}

impl Timer {
    /// The timer's key, as given to the host's `timer-set`.
    pub fn key(&self) -> String {
        match self {
            Self::Deliver {
                conversation,
                recipient,
            } => keys::join(&["deliver", conversation, recipient]),
            Self::Expire { conversation } => keys::join(&["expire", conversation]),
        }
    }

    /// The timer a key names, or `None` for a key this extension never sets.
    pub fn parse(key: &str) -> Option<Self> {
        // Ids are at most 256 bytes, tripled at worst by percent-encoding.
        if key.len() > 2048 {
            return None;
        }
        let parts = keys::split(key)?;
        match parts.len() {
            2 => match <[String; 2]>::try_from(parts).ok()? {
                [kind, conversation] if kind == "expire" => Some(Self::Expire { conversation }),
                _ => None,
            },
            _ => match <[String; 3]>::try_from(parts).ok()? {
                [kind, conversation, recipient] if kind == "deliver" => Some(Self::Deliver {
                    conversation,
                    recipient,
                }),
                _ => None,
            },
        }
    }
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
            let expire = Timer::Expire {
                conversation: conversation.into(),
            };
            assert_eq!(Timer::parse(&expire.key()), Some(expire));
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
            "expire",
            "expire/a/b",
            "deliver/a",
        ] {
            assert_eq!(Timer::parse(key), None, "{key}");
        }
    }

    #[test]
    fn timer_keys_are_not_state_keys() {
        let timer = Timer::Deliver {
            conversation: "c".into(),
            recipient: "r".into(),
        };
        assert_ne!(timer.key(), keys::conversation("c"));
        assert_ne!(timer.key(), keys::legacy_pending("c", "r"));
    }
}
