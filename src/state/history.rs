//! What was sent lately to a recipient in any conversation, for the
//! per-recipient daily cap. (Each conversation keeps its own sends in its
//! record, for the cooldown and the per-conversation cap.)
//!
//! "Daily" is a rolling 24 hours, not a calendar day: it needs no time zone
//! and a burst at midnight cannot get twice the cap.
//!
//! It also keeps the recipient's last few SMS with their Twilio SID, number
//! and newest status: a delivery report finds its SMS here (the report's
//! URL names the recipient), and `inspect` lists them.

use crate::prelude::*;

use crate::model::Millis;
use crate::policy::limits::DAY_MS;
use crate::state::record::{Reader, Record, Writer};

/// Records an SMS (sent or maybe sent) at `now` in `sent`, forgetting what
/// is older than a day and keeping at most `keep`.
pub fn record_send(sent: &mut Vec<Millis>, now: Millis, keep: usize) {
    sent.retain(|&t| t.saturating_add(DAY_MS) > now);
    sent.push(now);
    let excess = sent.len().saturating_sub(keep.max(1));
    sent.drain(..excess);
}

/// Most SMS kept with their SID per recipient: delivery reports come
/// within minutes, long before this many more SMS could follow.
pub const MAX_SENDS: usize = 8;

/// Send times (SMS sent, or maybe sent) within the last day, oldest first.
/// Never longer than the largest cap allowed, so it stays small.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    pub sent: Vec<Millis>,
    /// The last [`MAX_SENDS`] SMS Twilio accepted, oldest first.
    pub sends: Vec<Send>,
}

/// An SMS Twilio accepted, with its newest status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Send {
    pub sid: String,
    pub conversation: String,
    /// The E.164 number it went to.
    pub to: String,
    pub at: Millis,
    /// Twilio's answer's status, then the newest delivery report's.
    pub status: String,
    pub error_code: Option<u32>,
}

/// Layout 1: the send times. Layout 2 (0.3.0) adds the recent SMS: SID,
/// conversation, number, time, status, error code (an option).
impl Record for History {
    const TAG: u8 = b'H';
    const VERSION: u8 = 2;

    fn write(&self, out: &mut Writer) {
        out.list(&self.sent, |out, &t| out.u64(t));
        out.list(&self.sends, |out, s| {
            out.str(&s.sid);
            out.str(&s.conversation);
            out.str(&s.to);
            out.u64(s.at);
            out.str(&s.status);
            out.option(s.error_code, Writer::u32);
        });
    }

    fn read(input: &mut Reader, version: u8) -> Option<Self> {
        let sent = input.list(Reader::u64)?;
        let sends = if version >= 2 {
            input.list(|input| {
                Some(Send {
                    sid: input.str()?,
                    conversation: input.str()?,
                    to: input.str()?,
                    at: input.u64()?,
                    status: input.str()?,
                    error_code: input.option(Reader::u32)?,
                })
            })?
        } else {
            Vec::new()
        };
        Some(Self { sent, sends })
    }

    /// The 0.2.0 layout: the send times (the same fields as layout 1).
    fn read_legacy(input: &mut Reader) -> Option<Self> {
        Some(History {
            sent: input.list(Reader::u64)?,
            sends: Vec::new(),
        })
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

    /// Keeps an SMS Twilio accepted, dropping the oldest past [`MAX_SENDS`].
    pub fn keep(&mut self, send: Send) {
        if self.sends.len() >= MAX_SENDS {
            self.sends.remove(0);
        }
        self.sends.push(send);
    }

    /// The SMS with this SID, if it is still kept.
    pub fn find_mut(&mut self, sid: &str) -> Option<&mut Send> {
        self.sends.iter_mut().find(|s| s.sid == sid)
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
    fn sends_are_kept_for_a_day_and_bounded() {
        let mut sent = vec![];
        for t in 0..5 {
            record_send(&mut sent, t, 3);
        }
        assert_eq!(sent, [2, 3, 4]);
        record_send(&mut sent, DAY_MS + 10, 3);
        assert_eq!(sent, [DAY_MS + 10]);
    }

    #[test]
    fn a_day_is_rolling() {
        let mut h = History::default();
        h.record(0, 10);
        h.record(1_000, 10);
        assert_eq!(h.in_last_day(DAY_MS - 1), 2);
        assert_eq!(h.in_last_day(DAY_MS), 1);
        assert_eq!(h.in_last_day(DAY_MS + 1_000), 0);
    }

    #[test]
    fn layout_2_keeps_the_sends() {
        let h = History {
            sent: vec![1_000],
            sends: vec![Send {
                sid: "SM1".into(),
                conversation: "c".into(),
                to: "+1555".into(),
                at: 1_000,
                status: "queued".into(),
                error_code: Some(30006),
            }],
        };
        // Golden bytes of layout 2.
        let golden = [
            b'H', 2, 1, 0xe8, 0x07, 1, 3, b'S', b'M', b'1', 1, b'c', 5, b'+', b'1', b'5', b'5',
            b'5', 0xe8, 0x07, 6, b'q', b'u', b'e', b'u', b'e', b'd', 1, 0xb6, 0xea, 0x01,
        ];
        assert_eq!(h.encode(), golden);
        assert_eq!(History::decode(&golden), Ok(h));
    }

    #[test]
    fn only_the_last_sends_are_kept() {
        let mut h = History::default();
        for i in 0..(MAX_SENDS as u64 + 3) {
            h.keep(Send {
                sid: format!("SM{i}"),
                at: i,
                ..Send::default()
            });
        }
        assert_eq!(h.sends.len(), MAX_SENDS);
        assert_eq!(h.sends[0].sid, "SM3");
        assert!(h.find_mut("SM2").is_none());
        assert!(h.find_mut("SM10").is_some());
    }

    #[test]
    fn layout_1_and_the_020_layout_decode() {
        let h = History {
            sent: vec![1_000, 3_600_000],
            sends: vec![],
        };
        // Golden bytes: layout 1, and what the 0.2.0 build wrote.
        assert_eq!(h.encode()[2..], [2, 0xe8, 0x07, 0x80, 0xdd, 0xdb, 0x01, 0]);
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
