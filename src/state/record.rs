//! How records are stored in the tenant's state.
//!
//! Every record starts with two bytes: its type's **tag** (an ASCII letter,
//! one per record type) and its **layout version**. Then come its fields in
//! a fixed order: integers as LEB128 varints, strings and lists prefixed by
//! their length. Every event decodes and encodes a record or two, so a fixed
//! layout keeps that cheap and small in code (the `.wasm` size is a tracked
//! figure).
//!
//! Released layouts, each kept decodable (golden bytes in the tests):
//!
//! | tag | record | versions |
//! | --- | --- | --- |
//! | `C` | [`crate::state::conversation::Conversation`] | 1; 2 adds the newest message's time and the expiry timer's due time ([`crate::calls::expiry`]) |
//! | `H` | [`crate::state::history::History`] (a recipient's recent SMS) | 1; 2 (0.3.0) adds the last SMS with SID and status |
//! | `S` | [`crate::state::suppression::Suppression`] | 1 |
//! | `P` | [`crate::state::pause::Pause`] | 1 |
//! | — | the earliest 0.2.0 builds' layout: one format byte `0x01` for every type, no tag | decoded by [`crate::state::v020`] |
//!
//! A record's decoder reads every version of its type up to the current
//! one (old → current in one place: the type's [`Record::read`]); bytes
//! with another tag, a version newer than this build knows, or fields that
//! do not parse are [`Unreadable`] — never a trap, and never silently "no
//! record": each caller decides what an unreadable record means, and the
//! ones that guard a promise fail closed.

use crate::prelude::*;

/// The first byte of every record written by the 0.2.0 layout, which had
/// no per-type tag. No tag takes this value.
pub const LEGACY_FORMAT: u8 = 1;

/// Why stored bytes are not a record of the expected type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// Another record type's tag (or no tag at all).
    Tag(u8),
    /// A layout version this build does not know (written by a newer one).
    Version(u8),
    /// The fields do not parse (truncated, trailing bytes, bad values).
    Malformed,
}

impl Unreadable {
    pub fn describe(self) -> String {
        match self {
            Self::Tag(tag) => format!("it starts with byte {tag:#04x}, not this record type's tag"),
            Self::Version(v) => {
                format!("layout version {v} is not one this build reads (written by a newer one?)")
            }
            Self::Malformed => "its fields do not parse".to_owned(),
        }
    }
}

/// What a key held: nothing, a record, or bytes that are not one.
pub type Stored<T> = Option<Result<T, Unreadable>>;

/// A record kept in the host's state.
pub trait Record: Sized {
    /// The type's tag: the first byte of every encoding.
    const TAG: u8;
    /// The layout [`Record::write`] writes.
    const VERSION: u8;

    /// Appends the record's fields in layout [`Record::VERSION`].
    fn write(&self, out: &mut Writer);
    /// Reads the fields of layout `version` (1 to [`Record::VERSION`]).
    fn read(input: &mut Reader, version: u8) -> Option<Self>;
    /// Reads the fields of the 0.2.0 layout, for types that had one.
    fn read_legacy(_input: &mut Reader) -> Option<Self> {
        None
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(64));
        out.0.extend([Self::TAG, Self::VERSION]);
        self.write(&mut out);
        out.0
    }

    /// The record in `bytes`, or why they are not one.
    fn decode(bytes: &[u8]) -> Result<Self, Unreadable> {
        let (record, rest) = match bytes {
            [LEGACY_FORMAT, rest @ ..] => {
                let mut input = Reader(rest);
                (Self::read_legacy(&mut input), input)
            }
            [tag, version, rest @ ..] if *tag == Self::TAG => {
                if *version == 0 || *version > Self::VERSION {
                    return Err(Unreadable::Version(*version));
                }
                let mut input = Reader(rest);
                (Self::read(&mut input, *version), input)
            }
            [tag, ..] => return Err(Unreadable::Tag(*tag)),
            [] => return Err(Unreadable::Malformed),
        };
        match record {
            Some(record) if rest.0.is_empty() => Ok(record),
            _ => Err(Unreadable::Malformed),
        }
    }

    /// What `bytes` (a key's value, if any) hold.
    fn load(bytes: Option<&[u8]>) -> Stored<Self> {
        bytes.map(Self::decode)
    }
}

/// The bytes of a record being encoded.
pub struct Writer(Vec<u8>);

impl Writer {
    pub fn u64(&mut self, mut n: u64) {
        while n >= 0x80 {
            self.0.push(n as u8 | 0x80);
            n >>= 7;
        }
        self.0.push(n as u8);
    }

    pub fn u32(&mut self, n: u32) {
        self.u64(n.into());
    }

    pub fn bool(&mut self, b: bool) {
        self.0.push(b.into());
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub fn option<T>(&mut self, value: Option<T>, each: impl FnOnce(&mut Self, T)) {
        match value {
            None => self.bool(false),
            Some(v) => {
                self.bool(true);
                each(self, v);
            }
        }
    }

    /// A length, then each item.
    pub fn list<T>(&mut self, items: &[T], mut each: impl FnMut(&mut Self, &T)) {
        self.u64(items.len() as u64);
        for item in items {
            each(self, item);
        }
    }
}

/// The unread rest of a record being decoded.
pub struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// A varint of at most 10 bytes whose value fits in 64 bits.
    pub fn u64(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return None;
            }
            n |= bits << shift;
            if b < 0x80 {
                return Some(n);
            }
        }
        None
    }

    pub fn u32(&mut self) -> Option<u32> {
        self.u64()?.try_into().ok()
    }

    pub fn bool(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.u64()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(bytes)
    }

    pub fn str(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    pub fn option<T>(&mut self, each: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.bool()? {
            false => Some(None),
            true => each(self).map(Some),
        }
    }

    /// A length, then that many items. Every item takes at least a byte, so
    /// a length past the end fails before anything is allocated for it.
    pub fn list<T>(&mut self, mut each: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        let len = usize::try_from(self.u64()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let mut items = Vec::with_capacity(len);
        for _ in 0..len {
            items.push(each(self)?);
        }
        Some(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of every kind of field, with a second layout that added one.
    #[derive(Debug, PartialEq)]
    struct Sample {
        n: u64,
        small: u32,
        flag: bool,
        text: String,
        list: Vec<String>,
        /// Added in layout 2; layout 1 reads it as `None`.
        extra: Option<u64>,
    }

    impl Record for Sample {
        const TAG: u8 = b'Z';
        const VERSION: u8 = 2;

        fn write(&self, out: &mut Writer) {
            out.u64(self.n);
            out.u32(self.small);
            out.bool(self.flag);
            out.str(&self.text);
            out.list(&self.list, |out, s| out.str(s));
            out.option(self.extra, Writer::u64);
        }

        fn read(input: &mut Reader, version: u8) -> Option<Self> {
            Some(Self {
                n: input.u64()?,
                small: input.u32()?,
                flag: input.bool()?,
                text: input.str()?,
                list: input.list(Reader::str)?,
                extra: match version {
                    1 => None,
                    _ => input.option(Reader::u64)?,
                },
            })
        }
    }

    fn sample(n: u64) -> Sample {
        Sample {
            n,
            small: u32::MAX,
            flag: true,
            text: "ü/€ 😀".into(),
            list: vec!["a".into(), String::new()],
            extra: Some(7),
        }
    }

    #[test]
    fn fields_round_trip_at_their_limits() {
        for n in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let s = sample(n);
            assert_eq!(Sample::decode(&s.encode()), Ok(s));
        }
        assert_eq!(sample(0).encode()[..4], [b'Z', 2, 0, 0xff]);
    }

    #[test]
    fn an_older_layout_still_decodes() {
        // Layout 1: the same fields without `extra`.
        let mut v1 = sample(5).encode();
        v1[1] = 1;
        v1.truncate(v1.len() - 2);
        let got = Sample::decode(&v1).unwrap();
        assert_eq!(got.extra, None);
        assert_eq!(got.n, 5);
    }

    #[test]
    fn anything_else_is_unreadable_with_its_reason() {
        let good = sample(300).encode();
        for end in 2..good.len() {
            assert_eq!(
                Sample::decode(&good[..end]),
                Err(Unreadable::Malformed),
                "cut at {end}"
            );
        }
        assert_eq!(Sample::decode(&[]), Err(Unreadable::Malformed));
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(Sample::decode(&longer), Err(Unreadable::Malformed));
        let mut newer = good.clone();
        newer[1] = 3;
        assert_eq!(Sample::decode(&newer), Err(Unreadable::Version(3)));
        newer[1] = 0;
        assert_eq!(Sample::decode(&newer), Err(Unreadable::Version(0)));
        let mut other = good.clone();
        other[0] = b'Y';
        assert_eq!(Sample::decode(&other), Err(Unreadable::Tag(b'Y')));
        assert_eq!(
            Sample::decode(br#"{"s":"alice"}"#),
            Err(Unreadable::Tag(b'{'))
        );
        // No legacy layout for this type.
        assert_eq!(
            Sample::decode(&[LEGACY_FORMAT, 0]),
            Err(Unreadable::Malformed)
        );
        assert_eq!(Sample::load(None), None);
    }

    #[test]
    fn lengths_past_the_end_allocate_nothing() {
        let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        let mut list = vec![b'Z', 2, 0, 0, 1, 0];
        list.extend(huge);
        assert_eq!(Sample::decode(&list), Err(Unreadable::Malformed));
        let mut text = vec![b'Z', 2, 0, 0, 1];
        text.extend(huge);
        assert_eq!(Sample::decode(&text), Err(Unreadable::Malformed));
        let mut long = vec![0x80; 10];
        long.push(0);
        assert_eq!(Reader(&long).u64(), None);
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Reader(&over).u64(), None);
    }
}
