//! A pending notification: the unread messages of one conversation for one
//! recipient, waiting for their timer. Stored (see [`crate::record`]) under
//! [`crate::keys::pending`].

use crate::prelude::*;

use crate::model::Millis;
use crate::record::{Reader, Record, Writer};

/// How many messages one pending notification remembers. Past this, the
/// oldest are forgotten but still counted, so a flood cannot grow state
/// without bound.
pub const MAX_ENTRIES: usize = 256;

/// Most characters of the latest text kept: no SMS body is longer.
pub const MAX_TEXT_CHARS: usize = crate::segments::MAX_CHARS;

/// One message of the conversation that reached the recipient since the
/// notification started, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The chat server's message id.
    pub id: String,
    /// Not a text message: remembered only for its position (a receipt may
    /// name it), never counted as unread.
    pub other: bool,
}

/// The stored record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Uid of who wrote the latest message (the other participant).
    pub sender: String,
    /// When the timer fires: the first unread message's time plus the delay.
    pub due_at: Millis,
    /// Messages in arrival order.
    pub entries: Vec<Entry>,
    /// The newest text, cut to [`MAX_TEXT_CHARS`]: the preview needs no
    /// more, and no earlier text is ever shown.
    pub latest: String,
    /// Unread text messages forgotten because of [`MAX_ENTRIES`]; they are
    /// older than every entry.
    pub forgotten: u32,
    /// Attempts made to send it so far.
    pub attempts: u32,
    /// An attempt started and has not finished: written before the request
    /// leaves, cleared when its answer is recorded. Found set, it means the
    /// call was cut off mid-send and Twilio may have the SMS already.
    pub in_flight: bool,
}

impl Pending {
    pub fn new(sender: &str, due_at: Millis) -> Self {
        Self {
            sender: sender.to_owned(),
            due_at,
            entries: Vec::new(),
            latest: String::new(),
            forgotten: 0,
            attempts: 0,
            in_flight: false,
        }
    }

    /// Adds a message at the end: a text message with its text, any other
    /// format with `None`.
    pub fn push(&mut self, sender: &str, id: &str, text: Option<&str>) {
        if self.entries.len() == MAX_ENTRIES {
            let oldest = self.entries.remove(0);
            if !oldest.other {
                self.forgotten = self.forgotten.saturating_add(1);
            }
        }
        sender.clone_into(&mut self.sender);
        if let Some(text) = text {
            // No more bytes than the limit in characters: no need to count.
            let end = if text.len() <= MAX_TEXT_CHARS {
                text.len()
            } else {
                text.char_indices()
                    .nth(MAX_TEXT_CHARS)
                    .map_or(text.len(), |(end, _)| end)
            };
            self.latest.clear();
            self.latest.push_str(&text[..end]);
        }
        self.entries.push(Entry {
            id: id.to_owned(),
            other: text.is_none(),
        });
    }

    /// How many text messages are unread.
    pub fn unread(&self) -> u32 {
        let remembered = self.entries.iter().filter(|e| !e.other).count();
        self.forgotten
            .saturating_add(u32::try_from(remembered).unwrap_or(u32::MAX))
    }

    /// The newest unread text, if any text is unread (receipts clear from
    /// the oldest, so the newest text stays the newest unread one).
    pub fn latest_text(&self) -> Option<&str> {
        (self.unread() > 0).then_some(self.latest.as_str())
    }

    /// Marks `id` and every earlier message read; returns how many unread
    /// text messages that cleared. An id the notification does not hold is
    /// older than all of it (every later message joined it), so it clears
    /// nothing.
    pub fn read_through(&mut self, id: &str) -> u32 {
        let Some(position) = self.entries.iter().position(|e| e.id == id) else {
            return 0;
        };
        let before = self.unread();
        self.entries.drain(..=position);
        self.forgotten = 0;
        before - self.unread()
    }
}

/// Bytes that are not a pending notification count as nothing pending.
impl Record for Pending {
    fn write(&self, out: &mut Writer) {
        out.str(&self.sender);
        out.u64(self.due_at);
        out.list(&self.entries, |out, e| {
            out.str(&e.id);
            out.bool(e.other);
        });
        out.str(&self.latest);
        out.u32(self.forgotten);
        out.u32(self.attempts);
        out.bool(self.in_flight);
    }

    fn read(input: &mut Reader) -> Option<Self> {
        Some(Self {
            sender: input.str()?,
            due_at: input.u64()?,
            entries: input.list(|input| {
                Some(Entry {
                    id: input.str()?,
                    other: input.bool()?,
                })
            })?,
            latest: input.str()?,
            forgotten: input.u32()?,
            attempts: input.u32()?,
            in_flight: input.bool()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Pending {
        let mut p = Pending::new("alice", 60_000);
        p.push("alice", "m1", Some("one"));
        p.push("alice", "m2", None);
        p.push("alice", "m3", Some("three"));
        p
    }

    #[test]
    fn reading_clears_the_message_and_everything_before() {
        let mut p = three();
        assert_eq!(p.unread(), 2);
        assert_eq!(p.read_through("m2"), 1);
        assert_eq!(p.unread(), 1);
        assert_eq!(p.latest_text(), Some("three"));
        assert_eq!(p.read_through("m3"), 1);
        assert_eq!(p.unread(), 0);
    }

    #[test]
    fn reading_an_unknown_or_older_message_clears_nothing() {
        let mut p = three();
        assert_eq!(p.read_through("m0"), 0);
        assert_eq!(p.unread(), 2);
    }

    #[test]
    fn ids_are_compared_by_position_not_string_order() {
        let mut p = Pending::new("alice", 0);
        p.push("alice", "9", Some("nine"));
        p.push("alice", "10", Some("ten"));
        assert_eq!(p.read_through("9"), 1);
        assert_eq!(p.latest_text(), Some("ten"));
    }

    #[test]
    fn a_flood_is_bounded_but_counted() {
        let mut p = Pending::new("alice", 0);
        for i in 0..(MAX_ENTRIES + 10) {
            p.push("alice", &i.to_string(), Some("x"));
        }
        assert_eq!(p.entries.len(), MAX_ENTRIES);
        assert_eq!(p.unread() as usize, MAX_ENTRIES + 10);
        let last = (MAX_ENTRIES + 9).to_string();
        assert_eq!(p.read_through(&last) as usize, MAX_ENTRIES + 10);
    }

    #[test]
    fn only_the_latest_text_is_kept_and_cut() {
        let mut p = Pending::new("alice", 0);
        p.push("alice", "m1", Some(&"x".repeat(10_000)));
        assert_eq!(p.latest.chars().count(), MAX_TEXT_CHARS);
        p.push("alice", "m2", Some("newest"));
        p.push("alice", "m3", None);
        assert_eq!(p.latest_text(), Some("newest"));
        assert!(p.encode().len() < 160, "{}", p.encode().len());
    }

    #[test]
    fn state_round_trips_and_garbage_is_nothing() {
        let p = three();
        assert_eq!(Pending::decode(&p.encode()), Some(p));
        assert_eq!(Pending::decode(b"\xff not json"), None);
    }
}
