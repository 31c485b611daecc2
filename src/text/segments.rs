//! SMS encoding and segment counting, the way carriers and Twilio count.
//!
//! A body that uses only the GSM 03.38 alphabet travels as 7-bit septets;
//! characters of its extension table (`^{}\[~]|€` and form feed) take two.
//! Anything else makes the whole body UCS-2, counted in UTF-16 code units
//! (an emoji outside the BMP takes two). A body that fits one segment (160
//! septets, or 70 units) is sent whole. Longer, it is split into parts that
//! each carry a 6-octet concatenation header, leaving 153 septets or 67
//! units per part, and parts are packed one by one: a character is never
//! split across two parts (an escape pair or a surrogate pair that would
//! straddle the boundary moves whole to the next part), and neither is a
//! grapheme (a letter with its combining accents, a flag, an emoji with its
//! modifiers), unless it alone is longer than a part.

use crate::prelude::*;

use unicode_segmentation::UnicodeSegmentation;

/// Twilio refuses bodies longer than this many characters.
pub const MAX_CHARS: usize = 1600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    /// Units that fit in a single segment, and per part when split.
    pub fn capacity(self) -> (usize, usize) {
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
pub fn septets(c: char) -> Option<usize> {
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
pub fn units(text: &str, encoding: Encoding) -> usize {
    match encoding {
        Encoding::Gsm7 => text.chars().map(|c| septets(c).unwrap_or(2)).sum(),
        Encoding::Ucs2 => text.encode_utf16().count(),
    }
}

/// The graphemes of `text` (user-perceived characters), in order.
pub fn graphemes(text: &str) -> impl Iterator<Item = &str> {
    text.graphemes(true)
}

/// How a body is sent: its encoding, its length in units, how many
/// segments, and the units left in its last one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    pub encoding: Encoding,
    pub units: usize,
    pub segments: usize,
    pub left: usize,
}

/// Where `body` is split: the byte range of each part, in order, packed
/// grapheme by grapheme (one range for a body that fits a single segment,
/// an empty body included).
pub fn parts(body: &str) -> Vec<core::ops::Range<usize>> {
    let encoding = encoding(body);
    let (single, split) = encoding.capacity();
    if units(body, encoding) <= single {
        return core::iter::once(0..body.len()).collect();
    }
    let mut parts = Vec::new();
    let (mut start, mut used) = (0, 0);
    let mut place = |at: usize, cost: usize, parts: &mut Vec<core::ops::Range<usize>>| {
        if used + cost > split {
            parts.push(start..at);
            start = at;
            used = 0;
        }
        used += cost;
    };
    let mut at = 0;
    for g in graphemes(body) {
        let cost = units(g, encoding);
        if cost <= split {
            place(at, cost, &mut parts);
        } else {
            // A grapheme longer than a part: split between its characters.
            for (i, c) in g.char_indices() {
                place(
                    at + i,
                    units(c.encode_utf8(&mut [0; 4]), encoding),
                    &mut parts,
                );
            }
        }
        at += g.len();
    }
    parts.push(start..body.len());
    parts
}

/// Counts `body`'s segments by packing its graphemes into parts (see
/// [`parts`]).
pub fn count(body: &str) -> Count {
    let encoding = encoding(body);
    let units = units(body, encoding);
    let (single, split) = encoding.capacity();
    let parts = parts(body);
    let capacity = if parts.len() == 1 { single } else { split };
    let last = parts.last().cloned().unwrap_or(0..0);
    Count {
        encoding,
        units,
        segments: parts.len(),
        left: capacity - self::units(&body[last], encoding),
    }
}

/// Whether `body` fits in `max_segments` and in Twilio's character limit.
pub fn fits(body: &str, max_segments: usize) -> bool {
    body.chars().count() <= MAX_CHARS && count(body).segments <= max_segments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(body: &str) -> usize {
        count(body).segments
    }

    #[test]
    fn gsm_limits() {
        assert_eq!(encoding("Hello @ £5 è"), Encoding::Gsm7);
        assert_eq!(segments(&"a".repeat(160)), 1);
        assert_eq!(segments(&"a".repeat(161)), 2);
        assert_eq!(segments(&"a".repeat(306)), 2);
        assert_eq!(segments(&"a".repeat(307)), 3);
        assert_eq!(count(&"a".repeat(150)).left, 10);
        assert_eq!(count(&"a".repeat(200)).left, 153 - 47);
    }

    #[test]
    fn extension_characters_count_double() {
        assert_eq!(encoding("{€}"), Encoding::Gsm7);
        assert_eq!(units("{€}", Encoding::Gsm7), 6);
        assert_eq!(segments(&"€".repeat(80)), 1);
        assert_eq!(segments(&"€".repeat(81)), 2);
    }

    #[test]
    fn anything_else_is_ucs2_in_utf16_units() {
        assert_eq!(encoding("see you 🙂"), Encoding::Ucs2);
        assert_eq!(encoding("…"), Encoding::Ucs2);
        assert_eq!(units("🙂", Encoding::Ucs2), 2);
        assert_eq!(segments(&"я".repeat(70)), 1);
        assert_eq!(segments(&"я".repeat(71)), 2);
        assert_eq!(segments(&"🙂".repeat(35)), 1);
        assert_eq!(segments(&"🙂".repeat(36)), 2);
    }

    #[test]
    fn a_pair_straddling_a_boundary_moves_to_the_next_part() {
        // The repros: 306 septets with `{` at 153–154, and 134 units
        // with an emoji at 67–68, are three parts, not two.
        let gsm = format!("{}{{{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(units(&gsm, Encoding::Gsm7), 306);
        assert_eq!(segments(&gsm), 3);
        let ucs2 = format!("{}🙂{}", "x".repeat(66), "y".repeat(66));
        assert_eq!(units(&ucs2, Encoding::Ucs2), 134);
        assert_eq!(segments(&ucs2), 3);
        // Off the boundary, two.
        assert_eq!(
            segments(&format!("{}{{{}", "a".repeat(151), "a".repeat(153))),
            2
        );
    }

    #[test]
    fn a_grapheme_stays_in_one_part() {
        // A flag (two regional indicators, 4 units) at units 66–69.
        let flag = format!("{}🇩🇪{}", "x".repeat(65), "y".repeat(64));
        assert_eq!(units(&flag, Encoding::Ucs2), 133);
        assert_eq!(segments(&flag), 3);
        // e + combining acute at units 67–68.
        let accent = format!("{}e\u{301}{}", "x".repeat(66), "y".repeat(66));
        assert_eq!(segments(&accent), 3);
        // A grapheme longer than a part is split between its characters.
        let zalgo = format!("a{}", "\u{301}".repeat(200));
        assert_eq!(segments(&zalgo), 3);
    }

    #[test]
    fn parts_are_where_the_body_splits() {
        assert_eq!(parts(""), vec![0..0_usize; 1]);
        assert_eq!(parts(&"a".repeat(160)), vec![0..160_usize; 1]);
        assert_eq!(parts(&"a".repeat(200)), [0..153, 153..200]);
        // The escape pair at septets 153–154 starts the second part.
        let gsm = format!("{}{{{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(parts(&gsm), [0..152, 152..304, 304..305]);
        // Every part holds at most 153 septets, and they cover the body.
        let text = "a{€b".repeat(100);
        let p = parts(&text);
        assert_eq!(p.first().unwrap().start, 0);
        assert_eq!(p.last().unwrap().end, text.len());
        for w in p.windows(2) {
            assert_eq!(w[0].end, w[1].start);
        }
        for r in &p {
            assert!(units(&text[r.clone()], Encoding::Gsm7) <= 153);
        }
    }

    #[test]
    fn fits_checks_segments_and_characters() {
        assert!(fits(&"a".repeat(160), 1));
        assert!(!fits(&"a".repeat(161), 1));
        assert!(fits(&"a".repeat(1530), 10));
        assert!(!fits(&"a".repeat(1531), 10));
    }
}
