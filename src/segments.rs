//! SMS encoding and segment counting.
//!
//! A body that uses only the GSM 03.38 alphabet travels as 7-bit septets:
//! 160 in one segment, 153 per segment when split (the rest carries the
//! concatenation header); characters of the extension table take two
//! septets. Anything else makes the whole body UCS-2: 70 UTF-16 code units
//! in one segment, 67 per segment when split.

/// Twilio refuses bodies longer than this many characters.
pub const MAX_CHARS: usize = 1600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    /// Units that fit in a single segment, and per segment when split.
    fn capacity(self) -> (usize, usize) {
        match self {
            Self::Gsm7 => (160, 153),
            Self::Ucs2 => (70, 67),
        }
    }
}

/// The GSM 03.38 basic character set.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each costs an escape septet plus its own.
const EXTENDED: &str = "\u{c}^{}\\[~]|€";

/// Septets `c` takes in GSM-7, or `None` if GSM-7 cannot carry it.
fn septets(c: char) -> Option<usize> {
    if c.is_ascii_alphanumeric() || c == ' ' || BASIC.contains(c) {
        Some(1)
    } else if EXTENDED.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// The encoding a body travels in.
pub fn encoding(body: &str) -> Encoding {
    if body.chars().all(|c| septets(c).is_some()) {
        Encoding::Gsm7
    } else {
        Encoding::Ucs2
    }
}

/// Length in the encoding's units: septets, or UTF-16 code units.
pub fn units(body: &str, encoding: Encoding) -> usize {
    match encoding {
        Encoding::Gsm7 => body.chars().map(|c| septets(c).unwrap_or(2)).sum(),
        Encoding::Ucs2 => body.encode_utf16().count(),
    }
}

/// How many segments `body` is sent as (an empty body still costs one).
pub fn count(body: &str) -> usize {
    let encoding = encoding(body);
    let units = units(body, encoding);
    let (single, split) = encoding.capacity();
    if units <= single {
        1
    } else {
        units.div_ceil(split)
    }
}

/// Whether `body` fits in `max_segments` and in Twilio's character limit.
pub fn fits(body: &str, max_segments: usize) -> bool {
    body.chars().count() <= MAX_CHARS && count(body) <= max_segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm_limits() {
        assert_eq!(encoding("Hello @ £5 è"), Encoding::Gsm7);
        assert_eq!(count(&"a".repeat(160)), 1);
        assert_eq!(count(&"a".repeat(161)), 2);
        assert_eq!(count(&"a".repeat(306)), 2);
        assert_eq!(count(&"a".repeat(307)), 3);
    }

    #[test]
    fn extension_characters_count_double() {
        assert_eq!(encoding("{€}"), Encoding::Gsm7);
        assert_eq!(units("{€}", Encoding::Gsm7), 6);
        assert_eq!(count(&"€".repeat(80)), 1);
        assert_eq!(count(&"€".repeat(81)), 2);
    }

    #[test]
    fn anything_else_is_ucs2_in_utf16_units() {
        assert_eq!(encoding("see you 🙂"), Encoding::Ucs2);
        assert_eq!(encoding("…"), Encoding::Ucs2);
        assert_eq!(units("🙂", Encoding::Ucs2), 2);
        assert_eq!(count(&"я".repeat(70)), 1);
        assert_eq!(count(&"я".repeat(71)), 2);
        assert_eq!(count(&"🙂".repeat(35)), 1);
        assert_eq!(count(&"🙂".repeat(36)), 2);
    }

    #[test]
    fn fits_checks_segments_and_characters() {
        assert!(fits(&"a".repeat(160), 1));
        assert!(!fits(&"a".repeat(161), 1));
        assert!(fits(&"a".repeat(1530), 10));
        assert!(!fits(&"a".repeat(1531), 10));
    }
}
