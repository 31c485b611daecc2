//! State keys: where each record lives in the tenant's durable state. One
//! key per record keeps every event O(1) in the number of conversations a
//! tenant has.

use crate::prelude::*;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Characters kept as they are in a key part; everything else (notably `/`,
/// the separator) is percent-encoded, so any id round-trips.
const PART: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// The conversation's record: its messages' order and its participants'
/// marks and pending notifications.
pub fn conversation(conversation: &str) -> String {
    join(&["conversation", conversation])
}

/// What was sent to `recipient` lately, in any conversation (the
/// per-recipient cap).
pub fn recipient_history(recipient: &str) -> String {
    join(&["sent-to", recipient])
}

/// Why `recipient`'s numbers must not be texted (replied STOP, or not a
/// mobile), with the numbers it applies to.
pub fn suppression(recipient: &str) -> String {
    join(&["suppressed", recipient])
}

/// The tenant's pause (circuit breaker).
pub fn pause() -> String {
    "paused".to_owned()
}

/// Where a record that could not be read is kept aside for the operator:
/// the prefix, then its own key.
pub fn quarantine(key: &str) -> String {
    format!("{QUARANTINE}{key}")
}

/// The prefix of every quarantined record's key.
pub const QUARANTINE: &str = "quarantine/";

/// The 0.2.0 layout's pending notification of `recipient` (see
/// [`crate::state::v020`]).
pub fn legacy_pending(conversation: &str, recipient: &str) -> String {
    join(&["pending", conversation, recipient])
}

/// The 0.2.0 layout's sends to `recipient` in `conversation`.
pub fn legacy_history(conversation: &str, recipient: &str) -> String {
    join(&["sent", conversation, recipient])
}

/// `kind/part/part…`, each part percent-encoded.
pub fn join(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push('/');
        }
        key.extend(utf8_percent_encode(part, PART));
    }
    key
}

/// The parts of a key made by [`join`]; `None` if one is not UTF-8.
pub fn split(key: &str) -> Option<Vec<String>> {
    key.split('/')
        .map(|part| {
            percent_decode_str(part)
                .decode_utf8()
                .ok()
                .map(|s| s.into_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_any_id() {
        for parts in [["a", "b/c d", "ü/%2F"], ["x", "", "y"]] {
            assert_eq!(split(&join(&parts)).unwrap(), parts);
        }
        assert_eq!(split("a/%FF"), None);
    }

    #[test]
    fn records_do_not_collide() {
        let keys = [
            conversation("c"),
            conversation("c/r"),
            recipient_history("r"),
            suppression("r"),
            pause(),
            quarantine(&conversation("c")),
            legacy_pending("c", "r"),
            legacy_history("c", "r"),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
