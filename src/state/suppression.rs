//! A recipient's numbers that must not be texted: they replied STOP from
//! it (Twilio 21610), or Twilio says it can never receive (invalid, not a
//! mobile, not SMS-capable). Kept per number: a recipient whose contact
//! number changes is texted at the new one, and never again at a refused
//! one, even if they change back to it.

use crate::prelude::*;

use crate::state::record::{Reader, Record, Writer};

/// Most numbers remembered per recipient; the oldest goes first.
pub const MAX_NUMBERS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    OptedOut,
    Undeliverable,
}

/// One refused number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The E.164 number.
    pub number: String,
    pub why: Why,
}

/// Stored under [`crate::state::keys::suppression`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    pub refused: Vec<Refused>,
}

/// Layout 1: the refused numbers, each with its reason (0 STOP, 1
/// undeliverable). A reason this build does not know makes the record
/// unreadable, and an unreadable suppression means "do not text" (see
/// [`crate::calls::deliver`]): never "no suppression".
impl Record for Suppression {
    const TAG: u8 = b'S';
    const VERSION: u8 = 1;

    fn write(&self, out: &mut Writer) {
        write_refused(self, out);
    }

    fn read(input: &mut Reader, _version: u8) -> Option<Self> {
        read_refused(input)
    }

    fn read_legacy(input: &mut Reader) -> Option<Self> {
        // The 0.2.0 layout had the same fields.
        read_refused(input)
    }
}

fn write_refused(s: &Suppression, out: &mut Writer) {
    out.list(&s.refused, |out, r| {
        out.str(&r.number);
        out.u32(match r.why {
            Why::OptedOut => 0,
            Why::Undeliverable => 1,
        });
    });
}

fn read_refused(input: &mut Reader) -> Option<Suppression> {
    let refused = input.list(|input| {
        let number = input.str()?;
        let why = match input.u32()? {
            0 => Why::OptedOut,
            1 => Why::Undeliverable,
            _ => return None,
        };
        Some(Refused { number, why })
    })?;
    Some(Suppression { refused })
}

impl Suppression {
    /// Why `number` must not be texted, if it must not.
    pub fn covers(&self, number: &str) -> Option<Why> {
        self.refused
            .iter()
            .find(|r| r.number == number)
            .map(|r| r.why)
    }

    /// These suppressions and `number`, refused for `why`.
    pub fn with(mut self, number: &str, why: Why) -> Self {
        self.refused.retain(|r| r.number != number);
        if self.refused.len() == MAX_NUMBERS {
            self.refused.remove(0);
        }
        self.refused.push(Refused {
            number: number.to_owned(),
            why,
        });
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_for_every_refused_number_and_only_those() {
        let s = Suppression { refused: vec![] }
            .with("+14155552671", Why::OptedOut)
            .with("+14155550000", Why::Undeliverable);
        assert_eq!(s.covers("+14155552671"), Some(Why::OptedOut));
        assert_eq!(s.covers("+14155550000"), Some(Why::Undeliverable));
        assert_eq!(s.covers("+14155559999"), None);
        assert_eq!(Suppression::decode(&s.encode()), Ok(s.clone()));
        // Golden bytes: layout 1, and what the 0.2.0 build wrote.
        let fields = "020c2b3134313535353532363731000c2b313431353535353030303001";
        assert_eq!(hex(&s.encode()), format!("5301{fields}"));
        assert_eq!(
            Suppression::decode(&unhex(&format!("01{fields}"))),
            Ok(s.clone())
        );
        // A reason this build does not know is unreadable, not a guess.
        let mut unknown = s.encode();
        let last = unknown.len() - 1;
        unknown[last] = 2;
        assert!(Suppression::decode(&unknown).is_err());
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn the_list_is_bounded() {
        let mut s = Suppression { refused: vec![] };
        for n in 0..(MAX_NUMBERS + 3) {
            s = s.with(&format!("+1415555{n:04}"), Why::OptedOut);
        }
        assert_eq!(s.refused.len(), MAX_NUMBERS);
        assert_eq!(s.covers("+14155550000"), None, "the oldest went first");
        assert!(
            s.covers(&format!("+1415555{:04}", MAX_NUMBERS + 2))
                .is_some()
        );
    }
}
