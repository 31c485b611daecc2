//! Contact numbers: finding the recipient's number in their metadata,
//! normalising it to E.164, and masking numbers for logs.

use crate::prelude::*;

mod shapes;
pub mod table;

pub use shapes::{Country, Pattern, Rule};

use crate::model::SkipReason;
use miniserde::json::{self, Value};

/// E.164 allows at most 15 digits, country code included.
const MAX_DIGITS: usize = 15;

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
    crate::contact::table::ZEROS
        .iter()
        .find(|&&zero| (zero..zero + 10).contains(&cp))
        .map(|zero| char::from(b'0' + (cp - zero) as u8))
}

fn country(code: &str) -> Option<(&'static Country, Rule, Option<&'static Pattern>)> {
    let code: u16 = code.parse().ok()?;
    let table = crate::contact::table::COUNTRIES;
    let country = &table[table.binary_search_by_key(&code, |c| c.code).ok()?];
    let rules = crate::contact::table::RULES;
    let rule = match rules.binary_search_by_key(&code, |r| r.code) {
        Ok(i) => rules[i],
        Err(_) => Rule::default(),
    };
    let patterns = crate::contact::table::PATTERNS;
    let pattern = patterns
        .binary_search_by_key(&code, |p| p.code)
        .ok()
        .map(|i| &patterns[i]);
    Some((country, rule, pattern))
}

/// Whether the digit `d` is in the class that begins `spec` (a digit, `d`
/// or `[..]`), and the class's length in `spec`.
fn in_class(spec: &[u8], d: u8) -> (bool, usize) {
    match spec[0] {
        b'd' => (true, 1),
        b'[' => {
            let end = spec.iter().position(|&c| c == b']').unwrap_or(spec.len());
            (spec[1..end].contains(&d), end + 1)
        }
        c => (c == d, 1),
    }
}

/// The spans of a match's groups, by number (0 unused).
type Groups = [Option<(usize, usize)>; 4];

/// Whether one way of a [`Pattern`] fits the start of `number`: how many
/// digits it reads, and where its groups are.
fn fit(way: &[u8], number: &[u8]) -> Option<(usize, Groups)> {
    let (mut i, mut at, mut groups) = (0, 0, Groups::default());
    let (mut group, mut start) = (0, 0);
    while let Some(&c) = way.get(i) {
        match c {
            b'{' => {
                group = usize::from(way.get(i + 1)?.wrapping_sub(b'0')).min(3);
                start = at;
                i += 2;
            }
            b'}' => {
                groups[group] = Some((start, at));
                i += 1;
            }
            b'$' if at == number.len() => i += 1,
            b'$' => return None,
            _ => {
                let (fits, len) = in_class(&way[i..], *number.get(at)?);
                if !fits {
                    return None;
                }
                (i, at) = (i + len, at + 1);
            }
        }
    }
    Some((at, groups))
}

/// Whether `number` is one of the shapes of [`Pattern::national`], whole.
fn national_number(shapes: &str, number: &[u8]) -> bool {
    shapes.split(',').any(|shape| {
        let Some((head, tail)) = shape.split_once(':') else {
            return false;
        };
        let mut tail = tail.chars().filter_map(|c| c.to_digit(16));
        let (Some(lo), Some(hi)) = (tail.next(), tail.next()) else {
            return false;
        };
        fit(head.as_bytes(), number)
            .is_some_and(|(at, _)| (lo as usize..=hi as usize).contains(&(number.len() - at)))
    })
}

/// libphonenumber's reading of a national number in a country whose
/// prefix rule is a [`Pattern`]: the rule's first fitting way is removed
/// (or rewritten by the transform), unless the number was one of the
/// country's national numbers and would no longer be; the result is kept
/// at a possible length, and refused when too long.
fn read_by_pattern(
    national: &str,
    pattern: &Pattern,
    possible: impl Fn(&str) -> bool,
    longest: usize,
) -> Result<String, Invalid> {
    let number = national.as_bytes();
    let (mut way, mut len) = ([0u8; 40], 0);
    let Some((end, groups)) = pattern.ways.split(',').find_map(|entry| {
        let (&shared, rest) = entry.as_bytes().split_first()?;
        let shared = usize::from(shared.wrapping_sub(b'0')).min(len);
        len = (shared + rest.len()).min(way.len());
        way[shared..len].copy_from_slice(&rest[..len - shared]);
        fit(&way[..len], number)
    }) else {
        return Ok(national.to_owned());
    };
    let mut read = String::with_capacity(national.len() + 2);
    match groups[usize::from(pattern.groups).min(3)] {
        Some(_) if !pattern.transform.is_empty() => {
            let mut rule = pattern.transform.bytes();
            while let Some(c) = rule.next() {
                if c == b'\\' {
                    let group = rule.next().map_or(0, |g| usize::from(g.wrapping_sub(b'0')));
                    if let Some(Some((from, to))) = groups.get(group) {
                        read.push_str(&national[*from..*to]);
                    }
                } else {
                    read.push(char::from(c));
                }
            }
        }
        _ => {}
    }
    read.push_str(&national[end..]);
    if national_number(pattern.national, number)
        && !national_number(pattern.national, read.as_bytes())
    {
        return Ok(national.to_owned());
    }
    if possible(&read) {
        Ok(read)
    } else if read.len() > longest {
        Err(Invalid::BadLength)
    } else {
        Ok(national.to_owned())
    }
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
    let (code, (country, rule, pattern)) = (1..=3)
        .filter(|&k| k <= digits.len())
        .find_map(|k| country(&digits[..k]).map(|c| (&digits[..k], c)))
        .ok_or(if digits.is_empty() {
            Invalid::BadLength
        } else {
            Invalid::UnknownCountryCode
        })?;
    let mut national = &digits[code.len()..];
    let possible = |n: &str| n.len() < 32 && country.lengths & (1 << n.len()) != 0;
    if let Some(pattern) = pattern {
        let longest = 31 - country.lengths.leading_zeros() as usize;
        let national = read_by_pattern(national, pattern, possible, longest)?;
        if !possible(&national) || code.len() + national.len() > MAX_DIGITS {
            return Err(Invalid::BadLength);
        }
        return Ok(format!("+{code}{national}"));
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
            // Where the prefix rule is a pattern: Argentina's 15 after the
            // area code becomes a 9 before it; Brazil's carrier code goes.
            ("+54 11 15 1234 5678", "+5491112345678"),
            ("+54 011 15 1234 5678", "+5491112345678"),
            ("+55 011 98765 4321", "+5511987654321"),
            ("+55 (011) 98765-4321", "+5511987654321"),
            ("+55 0 21 11 98765 4321", "+5511987654321"),
            ("+375 80 29 123 45 67", "+375291234567"),
            ("+82 010 2000 0000", "+821020000000"),
            ("+370 8 612 34567", "+37061234567"),
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
        ] {
            assert_eq!(normalize(raw), Err(why), "{raw}");
        }
    }

    /// Numbers as people type them, with the E.164 form libphonenumber
    /// gives (`tools/phone_table.py` writes the corpus, with every way each
    /// pattern-rule country's prefix can be read): never a different
    /// number, and never a skip of a number libphonenumber reads, but where
    /// it has more than E.164's 15 digits.
    #[test]
    fn the_corpus_agrees_with_libphonenumber() {
        let corpus = include_str!("../../tests/fixtures/phone_numbers.tsv");
        let (mut read, mut too_long) = (0, 0);
        for line in corpus.lines().filter(|l| !l.starts_with('#')) {
            let (raw, want) = line.split_once('\t').unwrap();
            match (normalize(raw), want) {
                (Ok(got), want) => {
                    assert_eq!(got, want, "{raw}: a different number");
                    read += 1;
                }
                (Err(_), "invalid") => {}
                (Err(Invalid::BadLength), want) if want.len() > MAX_DIGITS + 1 => too_long += 1,
                (Err(why), want) => panic!("{raw}: skipped ({why:?}), libphonenumber reads {want}"),
            }
        }
        assert!(read > 2_400, "only {read} numbers read");
        assert!(too_long < 40, "{too_long} numbers over 15 digits");
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
            include_str!("../../tests/fixtures/phone_numbers.tsv")
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
