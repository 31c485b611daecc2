//! Contact numbers: finding the recipient's number in their metadata,
//! normalising it to E.164, and masking numbers for logs.

use crate::prelude::*;

use crate::model::SkipReason;
use miniserde::json::{self, Value};

/// E.164 allows at most 15 digits, country code included.
const MAX_DIGITS: usize = 15;
/// The shortest numbers in use (country code + subscriber) have 8 digits.
const MIN_DIGITS: usize = 8;

/// Why there is no number to text: the skip reason, and what exactly is
/// wrong (for the log; never the number itself).
pub type Unusable = (SkipReason, &'static str);

/// The recipient's number from their metadata JSON,
/// `{"@private": {"contactNumber": "+12345678910"}}`, normalised to E.164.
/// Anything else is a skip with its reason, never a panic.
pub fn from_metadata(metadata: &str) -> Result<String, Unusable> {
    use SkipReason::{InvalidContactNumber as Invalid, NoContactNumber as Missing};
    let value: Value = json::from_str(metadata)
        .map_err(|_| (Missing, "the metadata is not JSON (or nested too deeply)"))?;
    let Value::Object(root) = value else {
        return Err((Missing, "the metadata is not a JSON object"));
    };
    let private = match root.get("@private") {
        None => return Err((Missing, "the metadata has no @private")),
        Some(Value::Object(private)) => private,
        Some(_) => return Err((Missing, "@private is not an object")),
    };
    match private.get("contactNumber") {
        None | Some(Value::Null) => Err((Missing, "@private has no contactNumber")),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err((Missing, "@private.contactNumber is empty"))
        }
        Some(Value::String(s)) => normalize(s).map_err(|why| (Invalid, why.describe())),
        Some(_) => Err((Invalid, "@private.contactNumber is not a string")),
    }
}

/// Why a string is not an E.164 number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// No leading `+`: without a country code the number is ambiguous.
    NoCountryCode,
    /// A character other than digits and the usual separators.
    BadCharacter,
    /// Too few or too many digits for E.164, or a country code starting 0.
    BadLength,
}

impl Invalid {
    pub fn describe(self) -> &'static str {
        match self {
            Self::NoCountryCode => "the number does not start with + and a country code",
            Self::BadCharacter => {
                "the number has characters other than digits, spaces, dashes, dots and parentheses"
            }
            Self::BadLength => "E.164 numbers have 8 to 15 digits, the first not 0",
        }
    }
}

/// Normalises a phone number written with common separators (spaces,
/// dashes, dots, parentheses) to E.164: `+` and 8 to 15 digits, the first
/// not 0.
pub fn normalize(raw: &str) -> Result<String, Invalid> {
    let raw = raw.trim();
    let rest = raw.strip_prefix('+').ok_or(Invalid::NoCountryCode)?;
    let mut out = String::with_capacity(MAX_DIGITS + 1);
    out.push('+');
    for c in rest.chars() {
        match c {
            '0'..='9' => {
                if out.len() > MAX_DIGITS {
                    return Err(Invalid::BadLength);
                }
                out.push(c);
            }
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(Invalid::BadCharacter),
        }
    }
    let digits = out.len() - 1;
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits) || out.as_bytes()[1] == b'0' {
        return Err(Invalid::BadLength);
    }
    Ok(out)
}

/// A number as it may appear in a log: the `+`, the first two and the last
/// two digits; the rest starred.
pub fn mask(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 5 {
        return "*".repeat(chars.len());
    }
    let (head, tail) = (3, 2);
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if i < head || i >= chars.len() - tail {
                c
            } else {
                '*'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_formatting_normalises() {
        assert_eq!(normalize("+1 (415) 555-2671").unwrap(), "+14155552671");
        assert_eq!(normalize("+44.20.7946.0958").unwrap(), "+442079460958");
        assert_eq!(normalize(" +12345678910 ").unwrap(), "+12345678910");
    }

    #[test]
    fn numbers_without_country_code_or_bad_length_are_rejected() {
        assert_eq!(normalize("4155552671"), Err(Invalid::NoCountryCode));
        assert_eq!(normalize("+1234567"), Err(Invalid::BadLength));
        assert_eq!(normalize("+1234567890123456"), Err(Invalid::BadLength));
        assert_eq!(normalize("+04155552671"), Err(Invalid::BadLength));
        assert_eq!(normalize("+1415555x2671"), Err(Invalid::BadCharacter));
        assert_eq!(normalize("+"), Err(Invalid::BadLength));
    }

    #[test]
    fn metadata_shapes() {
        let ok = r#"{"@private":{"contactNumber":"+12345678910"}}"#;
        assert_eq!(from_metadata(ok).unwrap(), "+12345678910");
        for (metadata, reason) in [
            ("not json", SkipReason::NoContactNumber),
            ("[1,2]", SkipReason::NoContactNumber),
            ("{}", SkipReason::NoContactNumber),
            (r#"{"@private":"x"}"#, SkipReason::NoContactNumber),
            (
                r#"{"@private":{"contactNumber":""}}"#,
                SkipReason::NoContactNumber,
            ),
            (
                r#"{"@private":{"contactNumber":12345678910}}"#,
                SkipReason::InvalidContactNumber,
            ),
            (
                r#"{"@private":{"contactNumber":"2345678910"}}"#,
                SkipReason::InvalidContactNumber,
            ),
        ] {
            assert_eq!(
                from_metadata(metadata).map_err(|e| e.0),
                Err(reason),
                "{metadata}"
            );
        }
    }

    #[test]
    fn deep_metadata_is_a_skip_not_a_crash() {
        let closed = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            from_metadata(&closed).map_err(|e| e.0),
            Err(SkipReason::NoContactNumber)
        );
        let deep = "[".repeat(100_000);
        assert_eq!(
            from_metadata(&deep).map_err(|e| e.0),
            Err(SkipReason::NoContactNumber)
        );
        let (_, why) = from_metadata(r#"{"@private":{"contactNumber":"+1234"}}"#).unwrap_err();
        assert!(why.contains("8 to 15 digits"), "{why}");
    }

    #[test]
    fn masking_keeps_only_the_ends() {
        assert_eq!(mask("+12345678910"), "+12*******10");
        assert_eq!(mask("+1234"), "*****");
    }
}
