//! What was sent lately, for the limits: a cooldown between two SMS of one
//! conversation, and daily caps per conversation and per recipient.
//!
//! "Daily" is a rolling 24 hours, not a calendar day: it needs no time zone
//! and a burst at midnight cannot get twice the cap.

use crate::prelude::*;

use crate::model::Millis;
use crate::record::{Reader, Record, Writer};

pub const DAY_MS: Millis = 24 * 60 * 60 * 1000;

/// Send times within the last day, oldest first. Never longer than the
/// largest cap allowed, so it stays small.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub sent: Vec<Millis>,
}

impl Record for History {
    fn write(&self, out: &mut Writer) {
        out.list(&self.sent, |out, &t| out.u64(t));
    }

    fn read(input: &mut Reader) -> Option<Self> {
        Some(Self {
            sent: input.list(Reader::u64)?,
        })
    }
}

impl History {
    /// Decodes stored state; unreadable bytes count as no history (the
    /// limits then err on the side of sending one more SMS, never of
    /// losing a notification).
    pub fn load(bytes: Option<&[u8]>) -> Self {
        bytes.and_then(Self::decode).unwrap_or_default()
    }

    /// How many were sent in the day before `now`.
    pub fn in_last_day(&self, now: Millis) -> usize {
        self.sent.iter().filter(|&&t| t + DAY_MS > now).count()
    }

    pub fn last(&self) -> Option<Millis> {
        self.sent.last().copied()
    }

    /// Records a send at `now`, forgetting what is older than a day and
    /// keeping at most `keep` entries.
    pub fn record(&mut self, now: Millis, keep: usize) {
        self.sent.retain(|&t| t + DAY_MS > now);
        self.sent.push(now);
        let excess = self.sent.len().saturating_sub(keep.max(1));
        self.sent.drain(..excess);
    }
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
        assert_eq!(h.last(), Some(1_000));
    }

    #[test]
    fn old_entries_and_excess_are_forgotten() {
        let mut h = History { sent: vec![] };
        for t in 0..5 {
            h.record(t, 3);
        }
        assert_eq!(h.sent, [2, 3, 4]);
        h.record(DAY_MS + 10, 3);
        assert_eq!(h.sent, [DAY_MS + 10]);
    }

    #[test]
    fn garbage_is_no_history() {
        assert_eq!(History::load(Some(b"nope")), History { sent: vec![] });
        let h = History { sent: vec![1, 2] };
        assert_eq!(History::load(Some(&h.encode())), h);
    }
}
