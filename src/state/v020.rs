//! The 0.2.0 layout, read for the last time: records that build wrote are
//! converted to the current ones here, in one place, like a host's adapter
//! for an older WIT.
//!
//! 0.2.0 stored one record per (conversation, recipient) under
//! `pending/{conversation}/{recipient}` (the unread messages to that
//! recipient, by id) and their sends under `sent/{conversation}/{recipient}`.
//! When an event finds no conversation record, the driver reads the pending
//! notification of the participant it concerns (the recipient of a
//! message, the reader of a receipt, the timer's recipient) and, if there
//! is one, its sends; this module turns them into one [`Conversation`],
//! and the same commit deletes them. A conversation's first event after
//! the upgrade therefore costs one extra get. Not converted: 0.2.0 sends
//! of a conversation with nothing pending (its cooldown and per-conversation
//! cap start afresh: for at most a day after the upgrade, one SMS could
//! come sooner than the cooldown; the per-recipient cap is kept), and a
//! sender's own 0.2.0 notification when they reply before its timer
//! converts it (their reply then reads nothing of it). A pending
//! notification keeps its due time, attempts and in-flight mark, so its
//! timer (whose key did not change) delivers it once. Where both sides had
//! one, the two directions' messages are numbered one direction after the
//! other: their interleaving was never recorded.

use crate::prelude::*;

use crate::model::{Change, Decision, Level, Log};
use crate::state::conversation::{Conversation, id_hash};
use crate::state::history::History;
use crate::state::keys;
use crate::state::record::{LEGACY_FORMAT, Reader, Record};
use crate::text::line::one_line;

/// What 0.2.0 kept under `pending/{conversation}/{recipient}`.
struct Pending {
    sender: String,
    due_at: u64,
    /// (id, not text)
    entries: Vec<(String, bool)>,
    latest: String,
    forgotten: u32,
    attempts: u32,
    in_flight: bool,
}

fn pending(bytes: &[u8]) -> Option<Pending> {
    let [LEGACY_FORMAT, rest @ ..] = bytes else {
        return None;
    };
    let mut input = Reader(rest);
    let p = Pending {
        sender: input.str()?,
        due_at: input.u64()?,
        entries: input.list(|input| Some((input.str()?, input.bool()?)))?,
        latest: input.str()?,
        forgotten: input.u32()?,
        attempts: input.u32()?,
        in_flight: input.bool()?,
    };
    input.0.is_empty().then_some(p)
}

/// One participant's 0.2.0 records, as found.
pub struct Found<'a> {
    pub uid: &'a str,
    pub pending: Option<&'a [u8]>,
    pub history: Option<&'a [u8]>,
}

/// Which of a participant's 0.2.0 records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Pending,
    History,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending notification",
            Self::History => "history",
        }
    }
}

/// A participant's 0.2.0 record that could not be read.
pub struct Unconverted {
    pub uid: String,
    pub part: Part,
}

/// The conversation the 0.2.0 records describe, if any were found, and the
/// records that could not be read.
pub fn conversation(found: &[Found<'_>]) -> (Option<Conversation>, Vec<Unconverted>) {
    let mut conversation = Conversation::default();
    let mut any = false;
    let mut bad = Vec::new();
    for f in found {
        let history = match f.history.map(History::decode) {
            None => None,
            Some(Ok(h)) => Some(h),
            Some(Err(_)) => {
                bad.push(Unconverted {
                    uid: f.uid.to_owned(),
                    part: Part::History,
                });
                None
            }
        };
        let old = match f.pending {
            None => None,
            Some(bytes) => match pending(bytes) {
                Some(p) => Some(p),
                None => {
                    bad.push(Unconverted {
                        uid: f.uid.to_owned(),
                        part: Part::Pending,
                    });
                    None
                }
            },
        };
        if history.is_none() && old.is_none() {
            continue;
        }
        // Both were stored by the same (valid) build: ids fit.
        let (Some(to), sender) = (
            conversation.join(f.uid),
            old.as_ref().map(|p| conversation.join(&p.sender)),
        ) else {
            continue;
        };
        any = true;
        if let Some(h) = history {
            conversation.participants[to].sent = h.sent;
        }
        let (Some(p), Some(Some(from))) = (old, sender) else {
            continue;
        };
        for (id, other) in &p.entries {
            conversation.push(from, to, id_hash(id), (!other).then_some(""));
        }
        let (latest, cut) = one_line(&p.latest);
        let last = conversation.last_seq();
        let part = &mut conversation.participants[to];
        part.latest = latest;
        part.latest_cut = cut;
        part.forgotten = p.forgotten;
        part.due_at = Some(p.due_at);
        part.attempts = p.attempts;
        if p.in_flight {
            // 0.2.0 counted an attempt only after its answer: the one cut
            // off is counted here, at its due time.
            part.in_flight = last;
            crate::state::history::record_send(
                &mut part.sent,
                p.due_at,
                crate::state::conversation::MAX_SENT,
            );
        }
    }
    (any.then_some(conversation), bad)
}

/// What a conversation key's bytes mean, and what makes the stored state
/// current before the event is decided: the conversation, and the changes
/// and log lines to commit first. `legacy` are the 0.2.0 records of the
/// participants concerned, read only when the key held nothing.
///
/// - A current record is used as it is.
/// - Bytes that are not a readable record are kept aside under
///   [`keys::quarantine`] for an operator, with an error log line, and the
///   conversation starts afresh: never silently skipped forever.
/// - 0.2.0 records become one conversation record; the same commit deletes
///   them (and quarantines any that cannot be read).
pub fn load(
    id: &str,
    bytes: Option<&[u8]>,
    legacy: &[(Found<'_>, [String; 2])],
) -> (Option<Conversation>, Decision) {
    let key = keys::conversation(id);
    let mut step = Decision::default();
    let quarantine = |step: &mut Decision, key: &str, bytes: &[u8], why: String| {
        let aside = keys::quarantine(key);
        step.changes.push(Change::Put {
            key: aside.clone(),
            value: bytes.to_vec(),
        });
        step.changes.push(Change::Delete {
            key: key.to_owned(),
        });
        step.logs.push(Log {
            level: Level::Error,
            line: format!("the record {key:?} cannot be read ({why}); it is kept aside as {aside:?} for an operator"),
        });
    };
    if let Some(bytes) = bytes {
        return match Conversation::decode(bytes) {
            Ok(c) => (Some(c), step),
            Err(why) => {
                quarantine(&mut step, &key, bytes, why.describe());
                (None, step)
            }
        };
    }
    let found: Vec<Found<'_>> = legacy
        .iter()
        .map(|(f, _)| Found {
            uid: f.uid,
            pending: f.pending,
            history: f.history,
        })
        .collect();
    let (conversation, bad) = conversation(&found);
    for b in &bad {
        let (f, keys) = legacy.iter().find(|(f, _)| f.uid == b.uid).expect("found");
        let (key, bytes) = match b.part {
            Part::History => (&keys[1], f.history),
            Part::Pending => (&keys[0], f.pending),
        };
        quarantine(
            &mut step,
            key,
            bytes.unwrap_or_default(),
            format!("a 0.2.0 {} that does not parse", b.part.name()),
        );
    }
    if let Some(c) = &conversation {
        step.changes.push(Change::Put {
            key,
            value: c.encode(),
        });
        for (f, keys) in legacy {
            let unconverted = |part: Part| bad.iter().any(|b| b.uid == f.uid && b.part == part);
            if f.pending.is_some() && !unconverted(Part::Pending) {
                step.changes.push(Change::Delete {
                    key: keys[0].clone(),
                });
            }
            if f.history.is_some() && !unconverted(Part::History) {
                step.changes.push(Change::Delete {
                    key: keys[1].clone(),
                });
            }
        }
        step.logs.push(Log {
            level: Level::Info,
            line: format!(
                "converted the 0.2.0 records of conversation {id:?} to the current layout"
            ),
        });
    }
    (conversation, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of `tests/fixtures/records-0.2.0.txt`, the bytes the 0.2.0
    /// build wrote.
    fn golden(name: &str) -> Vec<u8> {
        let hex = include_str!("../../tests/fixtures/records-0.2.0.txt")
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .expect("a golden record");
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn a_020_pending_notification_becomes_a_conversation() {
        let (pending, history) = (golden("pending"), golden("history"));
        let (c, bad) = conversation(&[Found {
            uid: "bob",
            pending: Some(&pending),
            history: Some(&history),
        }]);
        assert!(bad.is_empty());
        let c = c.unwrap();
        let bob = c.index_of("bob").unwrap();
        assert_eq!(c.participants[c.index_of("alice").unwrap()].uid, "alice");
        assert_eq!(c.unread(bob), 2);
        assert_eq!(c.participants[bob].due_at, Some(60_000));
        assert_eq!(c.participants[bob].latest, "see you at 8?");
        assert_eq!(c.participants[bob].sent, [1_000, 3_600_000]);
        assert_eq!(c.participants[bob].in_flight, 0);
        // A receipt for m2 (the image) still reads m1.
        let mut c = c;
        c.read_through(bob, c.seq_of(id_hash("m2")).unwrap());
        assert_eq!(c.unread(bob), 1);
    }

    #[test]
    fn an_attempt_in_flight_stays_in_flight() {
        let pending = golden("in-flight");
        let (c, _) = conversation(&[Found {
            uid: "bob",
            pending: Some(&pending),
            history: None,
        }]);
        let c = c.unwrap();
        let bob = c.index_of("bob").unwrap();
        assert_eq!(c.participants[bob].in_flight, 3);
        assert_eq!(c.participants[bob].attempts, 1);
    }

    #[test]
    fn nothing_found_is_no_conversation_and_garbage_is_reported() {
        let (c, bad) = conversation(&[Found {
            uid: "bob",
            pending: None,
            history: None,
        }]);
        assert!(c.is_none() && bad.is_empty());
        let (c, bad) = conversation(&[Found {
            uid: "bob",
            pending: Some(b"\x01garbage"),
            history: None,
        }]);
        assert!(c.is_none());
        assert_eq!(bad[0].part, Part::Pending);
    }
}
