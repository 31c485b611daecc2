//! A recipient's numbers that must not be texted: they replied STOP from
//! it (Twilio 21610), or Twilio says it can never receive (invalid, not a
//! mobile, not SMS-capable). Kept per number: a recipient whose contact
//! number changes is texted at the new one, and never again at a refused
//! one, even if they change back to it.

use crate::prelude::*;

use crate::record::{Reader, Record, Writer};

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

/// Stored under [`crate::keys::suppression`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suppression {
    pub refused: Vec<Refused>,
}

impl Record for Suppression {
    fn write(&self, out: &mut Writer) {
        out.list(&self.refused, |out, r| {
            out.str(&r.number);
            out.u32(match r.why {
                Why::OptedOut => 0,
                Why::Undeliverable => 1,
            });
        });
    }

    fn read(input: &mut Reader) -> Option<Self> {
        let refused = input.list(|input| {
            let number = input.str()?;
            let why = match input.u32()? {
                0 => Why::OptedOut,
                1 => Why::Undeliverable,
                _ => return None,
            };
            Some(Refused { number, why })
        })?;
        Some(Self { refused })
    }
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
        assert_eq!(Suppression::decode(&s.encode()), Some(s.clone()));
        assert_eq!(Suppression::decode(b"[]"), None);
        // A reason this build does not know is no record, not a guess.
        let mut unknown = s.encode();
        let last = unknown.len() - 1;
        unknown[last] = 2;
        assert_eq!(Suppression::decode(&unknown), None);
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
