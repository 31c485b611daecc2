//! The shapes of the generated table ([`super::table`]): what the core
//! knows of each country calling code and its national-prefix rule.

/// What the core knows of a country calling code (see
/// [`crate::contact::table`], generated from libphonenumber's metadata).
#[derive(Clone, Copy, Debug)]
pub struct Country {
    pub code: u16,
    /// The national (trunk) prefix people insert after the country code,
    /// as digits (`0`, `1`, `8`, `06`), or empty.
    pub prefix: &'static str,
    /// Bit n: a national significant number of n digits is possible.
    pub lengths: u32,
}

/// A country whose national prefix can begin a real number (see
/// [`crate::contact::table::RULES`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Rule {
    pub code: u16,
    /// Bit nn: a national number may itself begin with the two digits nn,
    /// which begin with the prefix (so the prefix may be part of it).
    pub viable: u128,
}

/// A country whose national-prefix rule is a pattern (libphonenumber's
/// `national_prefix_for_parsing` is a regular expression: Argentina's 15,
/// Brazil's carrier codes, Colombia, Korea, …), spelled out by
/// `tools/phone_table.py` so the core reads it as libphonenumber does,
/// without a regular expression engine (see [`crate::contact::table::PATTERNS`]).
#[derive(Clone, Copy, Debug)]
pub struct Pattern {
    pub code: u16,
    /// Every way the rule can read the start of a number, comma separated,
    /// in the order a regular expression engine tries them (so the first
    /// that fits is its match): a digit; `d`, any digit; `[..]`, one of
    /// those; `{g` and `}` around group g; `$`, the number's end. Each way
    /// begins with how much of the way before it it repeats (a character,
    /// `0` + n), then the rest of it.
    pub ways: &'static str,
    /// How many groups the rule has.
    pub groups: u8,
    /// What replaces the match when its last group took part in it (`\g`:
    /// group g's digits); empty, or that group absent: the match is removed.
    pub transform: &'static str,
    /// The country's national numbers (libphonenumber's general pattern) as
    /// shapes `HEAD:mn`, comma separated: the digits HEAD spells, then m to
    /// n more digits (m and n in hex).
    pub national: &'static str,
}
