//! How records are stored in the tenant's state: a format byte, then the
//! record's fields in a fixed order; integers as LEB128 varints, strings and
//! lists prefixed by their length. Every event decodes one record and most
//! encode one, so this is on every event's path: a fixed layout decodes
//! without a parser, in a few hundred bytes of code (the `.wasm` size is a
//! tracked figure). Bytes that do not decode (another format, truncated,
//! trailing bytes, a length past the end, text that is not UTF-8) count as
//! no record, never as a trap.

use crate::prelude::*;

/// The first byte of every record in this layout. A later layout takes
/// another value, and old bytes can still be told apart.
pub const FORMAT: u8 = 1;

/// A record kept in the host's state.
pub trait Record: Sized {
    /// Appends the record's fields.
    fn write(&self, out: &mut Writer);
    /// Reads the record's fields, in the order [`Record::write`] wrote them.
    fn read(input: &mut Reader) -> Option<Self>;

    fn encode(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(64));
        out.0.push(FORMAT);
        self.write(&mut out);
        out.0
    }

    /// The record in `bytes`, or `None` for bytes that are not one.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let (&FORMAT, rest) = bytes.split_first()? else {
            return None;
        };
        let mut input = Reader(rest);
        let record = Self::read(&mut input)?;
        input.0.is_empty().then_some(record)
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

    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
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
pub struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
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

    pub fn str(&mut self) -> Option<String> {
        let len = usize::try_from(self.u64()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8(text.to_vec()).ok()
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

    /// A record of every kind of field.
    #[derive(Debug, PartialEq)]
    struct Sample {
        n: u64,
        small: u32,
        flag: bool,
        text: String,
        list: Vec<String>,
    }

    impl Record for Sample {
        fn write(&self, out: &mut Writer) {
            out.u64(self.n);
            out.u32(self.small);
            out.bool(self.flag);
            out.str(&self.text);
            out.list(&self.list, |out, s| out.str(s));
        }

        fn read(input: &mut Reader) -> Option<Self> {
            Some(Self {
                n: input.u64()?,
                small: input.u32()?,
                flag: input.bool()?,
                text: input.str()?,
                list: input.list(Reader::str)?,
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
        }
    }

    #[test]
    fn fields_round_trip_at_their_limits() {
        for n in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let s = sample(n);
            assert_eq!(Sample::decode(&s.encode()), Some(s));
        }
        assert_eq!(sample(0).encode()[..3], [FORMAT, 0, 0xff]);
    }

    #[test]
    fn anything_else_is_no_record() {
        let good = sample(300).encode();
        // Every cut short, and one byte too many.
        for end in 0..good.len() {
            assert_eq!(Sample::decode(&good[..end]), None, "cut at {end}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(Sample::decode(&longer), None);
        // Another format; an old JSON record.
        let mut other = good.clone();
        other[0] = FORMAT + 1;
        assert_eq!(Sample::decode(&other), None);
        assert_eq!(Sample::decode(br#"{"s":"alice"}"#), None);
        // A bool that is not 0 or 1; a u32 past its range; text not UTF-8.
        let mut flag = vec![FORMAT, 0, 0, 2];
        assert_eq!(Sample::decode(&flag), None);
        flag = vec![FORMAT, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 1, 0, 0];
        assert_eq!(Sample::decode(&flag), None);
        assert_eq!(Sample::decode(&[FORMAT, 0, 0, 1, 1, 0xff, 0]), None);
    }

    #[test]
    fn lengths_past_the_end_allocate_nothing() {
        // A list claiming 2^63 items, a string claiming 2^63 bytes.
        let huge = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        let mut list = vec![FORMAT, 0, 0, 1, 0];
        list.extend(huge);
        assert_eq!(Sample::decode(&list), None);
        let mut text = vec![FORMAT, 0, 0, 1];
        text.extend(huge);
        assert_eq!(Sample::decode(&text), None);
        // Varints longer than 10 bytes, or past 64 bits.
        let mut long = vec![FORMAT];
        long.extend([0x80; 10]);
        long.push(0);
        assert_eq!(Reader(&long[1..]).u64(), None);
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(Reader(&over).u64(), None);
    }
}
