//! What was sent lately to a recipient in any conversation, for the
//! per-recipient daily cap. (Each conversation keeps its own sends in its
//! record, for the cooldown and the per-conversation cap.)
//!
//! "Daily" is a rolling 24 hours, not a calendar day: it needs no time zone
//! and a burst at midnight cannot get twice the cap.

use crate::prelude::*;

use crate::conversation::record_send;
use crate::model::Millis;
use crate::record::{Reader, Record, Writer};

pub const DAY_MS: Millis = 24 * 60 * 60 * 1000;

/// Send times (SMS sent, or maybe sent) within the last day, oldest first.
/// Never longer than the largest cap allowed, so it stays small.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub sent: Vec<Millis>,
}

/// Layout 1: the send times.
impl Record for History {
    const TAG: u8 = b'H';
    const VERSION: u8 = 1;

    fn write(&self, out: &mut Writer) {
        out.list(&self.sent, |out, &t| out.u64(t));
    }

    fn read(input: &mut Reader, _version: u8) -> Option<Self> {
        Some(Self {
            sent: input.list(Reader::u64)?,
        })
    }

    fn read_legacy(input: &mut Reader) -> Option<Self> {
        crate::legacy::history(input)
    }
}

impl History {
    /// How many were sent in the day before `now`.
    pub fn in_last_day(&self, now: Millis) -> usize {
        in_last_day(&self.sent, now)
    }

    /// Records a send at `now`, keeping at most `keep` entries.
    pub fn record(&mut self, now: Millis, keep: usize) {
        record_send(&mut self.sent, now, keep);
    }
}

/// How many of `sent` are within the day before `now`.
pub fn in_last_day(sent: &[Millis], now: Millis) -> usize {
    sent.iter()
        .filter(|&&t| t.saturating_add(DAY_MS) > now)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_rolling() {
        let mut h = History { sent: vec![] };
        h.record(0, 10);
        h.record(1_000, 10);
        assert_eq!(h.in_last_day(DAY_MS - 1), 2);
        assert_eq!(h.in_last_day(DAY_MS), 1);
        assert_eq!(h.in_last_day(DAY_MS + 1_000), 0);
    }

    #[test]
    fn layout_1_and_the_020_layout_decode() {
        let h = History {
            sent: vec![1_000, 3_600_000],
        };
        // Golden bytes: layout 1, and what the 0.2.0 build wrote.
        assert_eq!(h.encode(), [b'H', 1, 2, 0xe8, 0x07, 0x80, 0xdd, 0xdb, 0x01]);
        assert_eq!(
            History::decode(&[b'H', 1, 2, 0xe8, 0x07, 0x80, 0xdd, 0xdb, 0x01]),
            Ok(h.clone())
        );
        assert_eq!(
            History::decode(&[0x01, 0x02, 0xe8, 0x07, 0x80, 0xdd, 0xdb, 0x01]),
            Ok(h)
        );
        assert!(History::decode(b"nope").is_err());
    }
}
