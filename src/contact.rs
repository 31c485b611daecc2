//! Contact numbers: finding the recipient's number in their metadata,
//! normalising it to E.164, and masking numbers for logs.

use crate::prelude::*;

use crate::model::SkipReason;
use miniserde::json::{self, Value};

/// E.164 allows at most 15 digits, country code included.
const MAX_DIGITS: usize = 15;

/// What the core knows of a country calling code (see
/// [`crate::phone_table`], generated from libphonenumber's metadata).
#[derive(Clone, Copy, Debug)]
pub struct Country {
    pub code: u16,
    /// The national (trunk) prefix people insert after the country code,
    /// as digits (`0`, `1`, `8`, `06`), or empty.
    pub prefix: &'static str,
    /// Bit n: a national significant number of n digits is possible.
    pub lengths: u32,
}

/// What a few countries need besides (see [`crate::phone_table::RULES`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rule {
    pub code: u16,
    /// Bit nn: a national number may itself begin with the two digits nn,
    /// which begin with the prefix (so the prefix may be part of it).
    pub viable: u128,
    /// Bit nn: the country's prefix rule is a pattern (not just digits)
    /// that may consume the start of a number beginning with the two
    /// digits nn; anchored alternatives only at `anchored_lengths`.
    pub starts: u128,
    pub anchored_starts: u128,
    pub anchored_lengths: u32,
    /// The fewest digits the pattern's other alternatives consume: a
    /// shorter number cannot be read by them.
    pub shortest: u8,
}

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

/// Why a string is not a number to text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// No leading `+` (or `00`): without a country code the number is
    /// ambiguous.
    NoCountryCode,
    /// Letters or symbols that are not part of how numbers are written.
    BadCharacter,
    /// An extension: SMS cannot reach one.
    Extension,
    /// No country has this calling code.
    UnknownCountryCode,
    /// Too few or too many digits for the country's numbers.
    BadLength,
    /// The country's national prefix rules leave two readings: skipped
    /// rather than guessed.
    Ambiguous,
}

impl Invalid {
    pub fn describe(self) -> &'static str {
        match self {
            Self::NoCountryCode => "the number does not start with + (or 00) and a country code",
            Self::BadCharacter => {
                "the number has letters or symbols; digits, spaces, dashes, dots, slashes and parentheses are allowed"
            }
            Self::Extension => "the number has an extension, which SMS cannot reach",
            Self::UnknownCountryCode => "no country has this calling code",
            Self::BadLength => "the number has too few or too many digits for its country",
            Self::Ambiguous => {
                "the digits after the country code can be read two ways (a national prefix or not); write the number without it"
            }
        }
    }
}

/// Characters people paste that mean nothing: soft hyphen, zero-width
/// spaces and joiners, direction marks, embeddings and isolates, word
/// joiner and invisible operators, byte-order mark.
fn invisible(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Separators people write numbers with, as libphonenumber accepts them:
/// spaces of every width, dashes, dots, slashes, parentheses, brackets,
/// tildes, in their ASCII and full-width forms.
fn separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '.' | '/' | '(' | ')' | '[' | ']' | '~' | '\u{2010}'
                ..='\u{2015}'
                    | '\u{2212}'
                    | '\u{2053}'
                    | '\u{223c}'
                    | '\u{30fc}'
                    | '\u{fe58}'
                    | '\u{fe63}'
                    | '\u{ff08}'
                    | '\u{ff09}'
                    | '\u{ff0d}'
                    | '\u{ff0e}'
                    | '\u{ff0f}'
                    | '\u{ff3b}'
                    | '\u{ff3d}'
                    | '\u{ff5e}'
        )
}

/// The ASCII digit a Unicode decimal digit stands for.
fn digit(c: char) -> Option<char> {
    if c.is_ascii_digit() {
        return Some(c);
    }
    let cp = u32::from(c);
    crate::phone_table::ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&cp))
        .map(|zero| char::from(b'0' + (cp - zero) as u8))
}

fn country(code: &str) -> Option<(&'static Country, Rule)> {
    let code: u16 = code.parse().ok()?;
    let table = crate::phone_table::COUNTRIES;
    let country = &table[table.binary_search_by_key(&code, |c| c.code).ok()?];
    let rules = crate::phone_table::RULES;
    let rule = match rules.binary_search_by_key(&code, |r| r.code) {
        Ok(i) => rules[i],
        Err(_) => Rule::default(),
    };
    Some((country, rule))
}

/// Normalises a phone number as people type it to E.164, following
/// libphonenumber's parsing of international numbers: Unicode digits become
/// ASCII; separators and invisible characters are dropped; `tel:` before it
/// and `00` for `+` are accepted; the country's national (trunk) prefix
/// written after the country code is removed where that country's rules
/// say so; and the number must have a length possible in its country.
/// Anything doubtful is an [`Invalid`], never a guess.
pub fn normalize(raw: &str) -> Result<String, Invalid> {
    let text = raw.trim_matches(|c: char| c.is_whitespace() || invisible(c));
    let text = match text.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("tel:") => &text[4..],
        _ => text,
    };
    let mut digits = String::with_capacity(20);
    let mut plus = false;
    for (i, c) in text.char_indices() {
        if let Some(d) = digit(c) {
            digits.push(d);
            if digits.len() > 20 {
                return Err(Invalid::BadLength);
            }
        } else if c == '+' || c == '\u{ff0b}' {
            if plus || !digits.is_empty() {
                return Err(Invalid::BadCharacter);
            }
            plus = true;
        } else if separator(c) || invisible(c) {
        } else {
            let rest = text[i..].to_ascii_lowercase();
            let extension = ["ext", "x", "#", ";ext=", ",", "доб"]
                .iter()
                .any(|m| rest.starts_with(m));
            return Err(if extension && !digits.is_empty() {
                Invalid::Extension
            } else {
                Invalid::BadCharacter
            });
        }
    }
    if !plus {
        match digits.strip_prefix("00") {
            Some(rest) => digits = rest.to_owned(),
            None => return Err(Invalid::NoCountryCode),
        }
    }
    let (code, (country, rule)) = (1..=3)
        .filter(|&k| k <= digits.len())
        .find_map(|k| country(&digits[..k]).map(|c| (&digits[..k], c)))
        .ok_or(if digits.is_empty() {
            Invalid::BadLength
        } else {
            Invalid::UnknownCountryCode
        })?;
    let mut national = &digits[code.len()..];
    let possible = |n: &str| n.len() < 32 && country.lengths & (1 << n.len()) != 0;
    // A prefix rule that is a pattern, not just digits, may read more (or
    // other) digits than the table knows: before and after the literal
    // prefix, a start it could consume is skipped, not guessed.
    let pattern_may_consume = |n: &str| {
        let b = n.as_bytes();
        if b.len() < 2 {
            return false;
        }
        let two = u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0');
        let anchored = n.len() < 32 && rule.anchored_lengths & (1 << n.len()) != 0;
        let long_enough = n.len() >= usize::from(rule.shortest);
        long_enough && rule.starts & (1 << two) != 0
            || anchored && rule.anchored_starts & (1 << two) != 0
    };
    if pattern_may_consume(national) {
        return Err(Invalid::Ambiguous);
    }
    let starts_a_number = |n: &str| {
        let b = n.as_bytes();
        b.len() >= 2
            && rule.viable & (1 << (u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0'))) != 0
    };
    if !country.prefix.is_empty()
        && let Some(stripped) = national.strip_prefix(country.prefix)
        && possible(stripped)
    {
        if !possible(national) || !starts_a_number(national) {
            national = stripped;
        } else {
            return Err(Invalid::Ambiguous);
        }
    }
    if pattern_may_consume(national) {
        return Err(Invalid::Ambiguous);
    }
    if !possible(national) || code.len() + national.len() > MAX_DIGITS {
        return Err(Invalid::BadLength);
    }
    Ok(format!("+{code}{national}"))
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
        assert_eq!(normalize(" +12025550123 ").unwrap(), "+12025550123");
    }

    #[test]
    fn the_national_prefix_is_removed_where_the_country_says_so() {
        for (raw, want) in [
            ("+49 (0) 171 1234567", "+491711234567"),
            ("+44 (0)20 7946 0958", "+442079460958"),
            ("+44 07911 123456", "+447911123456"),
            ("+1 1 415 555 2671", "+14155552671"),
            ("+7 8 912 345 67 89", "+79123456789"),
            ("+7 800 123 45 67", "+78001234567"),
            ("+36 06 30 123 4567", "+36301234567"),
            // Italy's leading 0 is part of the number.
            ("+39 (0)6 1234 5678", "+390612345678"),
            ("+39 06 1234 5678", "+390612345678"),
        ] {
            assert_eq!(normalize(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn numbers_typed_anywhere_are_read() {
        for (raw, want) in [
            ("＋８１ ９０－１２３４－５６７８", "+819012345678"),
            ("+٩٧١ ٥٠ ١٢٣ ٤٥٦٧", "+971501234567"),
            ("+۹۸ ۹۱۲ ۳۴۵ ۶۷۸۹", "+989123456789"),
            ("+९१ ९८७६५ ४३२१०", "+919876543210"),
            ("\u{202a}+1 415 555 2671\u{202c}", "+14155552671"),
            (
                "\u{200e}+1\u{200b}415\u{2060}555\u{ad}2671\u{feff}",
                "+14155552671",
            ),
            ("+1\u{a0}415\u{202f}555\u{2009}2671", "+14155552671"),
            ("+1 415–555–2671", "+14155552671"),
            ("+1 （415） 555—2671", "+14155552671"),
            ("+49 171/1234567", "+491711234567"),
            ("+683 7012", "+6837012"),
            ("+290 8 1234", "+29081234"),
            ("tel:+1-415-555-2671", "+14155552671"),
            ("0049 171 1234567", "+491711234567"),
        ] {
            assert_eq!(normalize(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn doubtful_numbers_are_skipped_with_their_reason() {
        for (raw, why) in [
            ("4155552671", Invalid::NoCountryCode),
            ("+1 415 555 26711", Invalid::BadLength),
            ("+1 415 555 267", Invalid::BadLength),
            ("+999 1234 5678", Invalid::UnknownCountryCode),
            ("+1 415 555 2671 ext. 12", Invalid::Extension),
            ("+1 415 555 2671 x12", Invalid::Extension),
            ("+1 415 555 2671#12", Invalid::Extension),
            ("Mobile: +1 415 555 2671", Invalid::BadCharacter),
            ("+1-800-FLOWERS", Invalid::BadCharacter),
            ("++1 415 555 2671", Invalid::BadCharacter),
            ("+1 415 +555 2671", Invalid::BadCharacter),
            ("+", Invalid::BadLength),
            ("+54 11 15 1234 5678", Invalid::Ambiguous),
            ("+375 80 29 123 45 67", Invalid::Ambiguous),
        ] {
            assert_eq!(normalize(raw), Err(why), "{raw}");
        }
    }

    /// Numbers as people type them, with the E.164 form libphonenumber
    /// gives (`tools/phone_table.py` writes the corpus): never a different
    /// number; a skip only where the table cannot tell (a national prefix
    /// typed in a country whose prefix rule is a pattern: Argentina,
    /// Brazil, Colombia, Korea, Lithuania, Belarus, Bolivia) or E.164's 15
    /// digits are exceeded.
    #[test]
    fn the_corpus_agrees_with_libphonenumber() {
        let corpus = include_str!("../tests/fixtures/phone_numbers.tsv");
        let mut skipped = Vec::new();
        for line in corpus.lines().filter(|l| !l.starts_with('#')) {
            let (raw, want) = line.split_once('\t').unwrap();
            match (normalize(raw), want) {
                (Ok(got), want) => assert_eq!(got, want, "{raw}: a different number"),
                (Err(_), "invalid") => {}
                (Err(why @ (Invalid::Ambiguous | Invalid::BadLength)), want)
                    if why == Invalid::Ambiguous || want.len() > MAX_DIGITS + 1 =>
                {
                    skipped.push(raw)
                }
                (Err(why), want) => panic!("{raw}: skipped ({why:?}), libphonenumber reads {want}"),
            }
        }
        assert!(
            skipped.len() <= 25,
            "{} skipped: {skipped:?}",
            skipped.len()
        );
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
        assert!(why.contains("too few or too many digits"), "{why}");
    }

    #[test]
    fn masking_keeps_only_the_ends() {
        assert_eq!(mask("+12345678910"), "+12*******10");
        assert_eq!(mask("+1234"), "*****");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// The corpus's numbers libphonenumber accepts, in E.164.
        fn valid() -> Vec<&'static str> {
            include_str!("../tests/fixtures/phone_numbers.tsv")
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once('\t'))
                .map(|(_, want)| want)
                .filter(|want| *want != "invalid")
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

            #[test]
            fn any_way_of_typing_a_number_reads_the_same(
                number in prop::sample::select(valid()),
                separators in prop::collection::vec(prop::sample::select(vec![
                    "", "", "", " ", "-", ".", "/", "(", ")", "\u{a0}", "\u{200b}", "\u{2013}", "\u{ff0d}", "\u{2060}",
                ]), 20),
                script in prop::sample::select(vec![0x30u32, 0xff10, 0x660, 0x6f0, 0x966]),
                tel in any::<bool>(),
            ) {
                prop_assume!(normalize(number).as_deref() == Ok(number));
                let mut typed = String::from(if tel { "tel:+" } else { "+" });
                for (i, d) in number[1..].chars().enumerate() {
                    typed.push_str(separators[i % separators.len()]);
                    typed.push(char::from_u32(script + u32::from(d) - 0x30).unwrap());
                }
                let got = normalize(&typed);
                prop_assert_eq!(got.as_deref(), Ok(number), "{:?}", typed);
            }
        }
    }
}
