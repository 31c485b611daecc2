//! A recipient's number that must not be texted: they replied STOP
//! (Twilio 21610), or Twilio says the number can never receive (invalid,
//! not a mobile, not SMS-capable). It holds only while the recipient's
//! contact number stays the one it was recorded for.

use crate::record::Record;
use miniserde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Why {
    #[serde(rename = "stop")]
    OptedOut,
    #[serde(rename = "undeliverable")]
    Undeliverable,
}

/// Stored under [`crate::keys::suppression`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// The E.164 number it applies to.
    #[serde(rename = "n")]
    pub number: String,
    #[serde(rename = "w")]
    pub why: Why,
}

impl Record for Suppression {}

impl Suppression {
    /// Whether it forbids texting `number`.
    pub fn covers(&self, number: &str) -> bool {
        self.number == number
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_only_for_its_number() {
        let s = Suppression {
            number: "+14155552671".into(),
            why: Why::OptedOut,
        };
        assert!(s.covers("+14155552671"));
        assert!(!s.covers("+14155550000"));
        assert_eq!(Suppression::decode(&s.encode()), Some(s));
        assert_eq!(Suppression::decode(b"[]"), None);
    }
}
