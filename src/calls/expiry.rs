//! State that shrinks: a conversation record outlives its use and goes.
//!
//! A record remembers message ids (a redelivered message is one event),
//! sends (the cooldown and the per-conversation cap) and pending
//! notifications. Once nothing in it is pending or unread, its sends are
//! out of every limit's window and its newest message is older than any
//! redelivery, it holds nothing a promise needs: it is removed, and a
//! later message starts a new one exactly as the old one would have gone on.
//! STOP and undeliverable numbers live in their own records
//! ([`crate::state::suppression`]) and are never expired.
//!
//! Each record arms one timer ([`Timer::Expire`]) when a message first
//! reaches it, due [`QUIET_MS`] after that message; when it fires, the
//! record is removed or the timer moved to when it may be. So an event
//! costs nothing more, and a busy conversation's timer fires about once a
//! day. The recipients' send histories go the same way once their newest
//! send is a day old: they count only the last day, and Twilio reports an
//! SMS's fate within its validity period (at most 10 hours).

use crate::prelude::*;

use crate::model::{Change, Decision, Level, Millis, Outcome, SkipReason};
use crate::policy::limits::DAY_MS;
use crate::state::conversation::Conversation;
use crate::state::history::History;
use crate::state::keys;
use crate::state::record::Stored;
use crate::state::timer::Timer;

/// How long a record is kept after its newest message, at the least:
/// longer than CometChat's retries (10 s and 30 s after a failed webhook)
/// by far, and as long as the daily limits look back.
pub const QUIET_MS: Millis = DAY_MS;

/// The record's expiry timer.
pub fn timer(conversation: &str) -> String {
    Timer::Expire {
        conversation: conversation.to_owned(),
    }
    .key()
}

/// A message reached the conversation at `now` (the host's clock): noted,
/// and the expiry timer armed if the record has none (a new record, or one
/// written before records expired).
pub fn on_message(id: &str, c: &mut Conversation, now: Millis) -> Option<Change> {
    c.last_message_at = c.last_message_at.max(now);
    if c.expire_at != 0 {
        return None;
    }
    c.expire_at = c.last_message_at.saturating_add(QUIET_MS);
    Some(Change::SetTimer {
        key: timer(id),
        due_at: c.expire_at,
    })
}

/// When the record may go: `None` while a notification is pending or in
/// flight, or a text is unread; else once its newest message is
/// [`QUIET_MS`] old and its newest send a day old.
pub fn expires_at(c: &Conversation) -> Option<Millis> {
    let mut at = c.last_message_at.saturating_add(QUIET_MS);
    for (p, part) in c.participants.iter().enumerate() {
        if part.due_at.is_some() || part.in_flight != 0 || c.unread(p) > 0 {
            return None;
        }
        if let Some(&newest) = part.sent.last() {
            at = at.max(newest.saturating_add(DAY_MS));
        }
    }
    Some(at)
}

/// The expiry timer of conversation `id` fired at `now`. `histories` are
/// its participants' send histories, by uid. The record goes (with the
/// histories whose newest send is a day old), or the timer moves to when
/// it may: a day from now while something is pending or unread.
pub fn on_timer(
    id: &str,
    conversation: Option<Conversation>,
    histories: &[(String, Stored<History>)],
    now: Millis,
) -> Decision {
    let Some(mut c) = conversation else {
        return Decision::skip(SkipReason::NothingPending);
    };
    match expires_at(&c) {
        Some(at) if at <= now => {
            let mut step = Decision::skip(SkipReason::NothingPending).change(Change::Delete {
                key: keys::conversation(id),
            });
            for (uid, history) in histories {
                let spent = match history {
                    Some(Ok(h)) => h
                        .sent
                        .iter()
                        .chain(h.sends.iter().map(|s| &s.at))
                        .all(|&t| t.saturating_add(DAY_MS) <= now),
                    _ => false,
                };
                if spent {
                    step = step.change(Change::Delete {
                        key: keys::recipient_history(uid),
                    });
                }
            }
            step.log(
                Level::Debug,
                format!("expired: {id:?}: nothing pending or unread, no message for a day"),
            )
        }
        later => {
            c.expire_at = later.unwrap_or(now.saturating_add(QUIET_MS)).max(now + 1);
            Decision::new(Ok(Outcome::Skipped(SkipReason::NothingPending)))
                .change(Change::Put {
                    key: keys::conversation(id),
                    value: crate::state::record::Record::encode(&c),
                })
                .change(Change::SetTimer {
                    key: timer(id),
                    due_at: c.expire_at,
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::notify::tests::{after, message, receipt};
    use crate::state::history::Send;
    use crate::state::record::Record;

    const HOUR: Millis = 3_600_000;

    /// Alice wrote to Bob at `at`; Bob read it: nothing pending or unread.
    fn read_at(at: Millis) -> Conversation {
        let mut c = after(&[message("m1", at)]);
        let seq = c.last_seq();
        c.read_through(1, seq);
        c.participants[1].due_at = None;
        c.last_message_at = at;
        c.expire_at = at + QUIET_MS;
        c
    }

    fn fire(c: Conversation, histories: &[(String, Stored<History>)], now: Millis) -> Decision {
        on_timer("c1", Some(c), histories, now)
    }

    fn deleted(step: &Decision) -> Vec<&str> {
        step.changes
            .iter()
            .filter_map(|c| match c {
                Change::Delete { key } => Some(key.as_str()),
                _ => None,
            })
            .collect()
    }

    fn moved_to(step: &Decision) -> Option<Millis> {
        step.changes.iter().find_map(|c| match c {
            Change::SetTimer { key, due_at } if key == "expire/c1" => Some(*due_at),
            _ => None,
        })
    }

    #[test]
    fn the_first_message_arms_the_timer_and_later_ones_only_move_the_mark() {
        let mut c = Conversation::default();
        let armed = on_message("c1", &mut c, 5_000);
        assert_eq!(
            armed,
            Some(Change::SetTimer {
                key: "expire/c1".into(),
                due_at: 5_000 + QUIET_MS
            })
        );
        assert_eq!(on_message("c1", &mut c, 9_000), None);
        assert_eq!((c.last_message_at, c.expire_at), (9_000, 5_000 + QUIET_MS));
        // A record written before records expired gets its timer on its
        // next message.
        let mut old = Conversation::default();
        assert_eq!(
            (old.last_message_at, old.expire_at),
            (0, 0),
            "as layout 1 reads"
        );
        assert!(on_message("c1", &mut old, 7).is_some());
    }

    #[test]
    fn a_quiet_record_goes_a_day_after_its_newest_message() {
        let step = fire(read_at(HOUR), &[], QUIET_MS + HOUR);
        assert_eq!(deleted(&step), ["conversation/c1"]);
        assert_eq!(
            step.result(),
            &Ok(Outcome::Skipped(SkipReason::NothingPending))
        );
    }

    #[test]
    fn a_newer_message_moves_the_timer_to_a_day_after_it() {
        // Armed by the first message, fired while a redelivery of the
        // newest could still come: kept, and the timer moved.
        let step = fire(read_at(HOUR), &[], QUIET_MS);
        assert!(deleted(&step).is_empty());
        assert_eq!(moved_to(&step), Some(QUIET_MS + HOUR));
        let kept = crate::calls::notify::tests::stored(&step);
        assert_eq!(kept.expire_at, QUIET_MS + HOUR);
    }

    #[test]
    fn anything_pending_unread_or_in_flight_keeps_it_another_day() {
        let now = 3 * QUIET_MS;
        let mut pending = read_at(0);
        pending.participants[1].due_at = Some(now + 1);
        let mut unread = after(&[message("m1", 0)]);
        unread.participants[1].due_at = None;
        let mut in_flight = read_at(0);
        in_flight.participants[1].in_flight = 1;
        for c in [pending, unread, in_flight] {
            let step = fire(c, &[], now);
            assert!(deleted(&step).is_empty());
            assert_eq!(moved_to(&step), Some(now + QUIET_MS));
        }
    }

    #[test]
    fn a_send_keeps_it_while_the_limits_still_count_it() {
        let mut c = read_at(0);
        c.participants[1].sent = vec![5 * HOUR];
        let step = fire(c.clone(), &[], QUIET_MS);
        assert_eq!(moved_to(&step), Some(QUIET_MS + 5 * HOUR));
        assert_eq!(
            deleted(&fire(c, &[], QUIET_MS + 5 * HOUR)),
            ["conversation/c1"]
        );
    }

    #[test]
    fn send_histories_go_with_it_only_when_a_day_old() {
        let history = |at: Millis| {
            let mut h = History::default();
            h.record(at, 8);
            h.keep(Send {
                sid: "SM1".into(),
                at,
                ..Send::default()
            });
            Some(Ok(History::decode(&h.encode()).unwrap()))
        };
        let now = 2 * QUIET_MS;
        let histories = [
            ("alice".to_owned(), history(now - QUIET_MS)),
            ("bob".to_owned(), history(now - HOUR)),
        ];
        let step = fire(read_at(0), &histories, now);
        assert_eq!(deleted(&step), ["conversation/c1", "sent-to/alice"]);
        // Unreadable or missing: left alone.
        let unreadable = [
            ("alice".to_owned(), Some(History::decode(b"??"))),
            ("bob".to_owned(), None),
        ];
        let step = fire(read_at(0), &unreadable, now);
        assert_eq!(deleted(&step), ["conversation/c1"]);
    }

    #[test]
    fn a_receipt_for_a_message_of_an_expired_record_changes_nothing() {
        let step = crate::calls::notify::on_read(&receipt("bob", "m1"), None);
        assert!(step.changes.is_empty());
        assert_eq!(on_timer("c1", None, &[], 0).changes, []);
    }
}
