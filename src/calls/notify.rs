//! The notification state machine for messages and receipts; timers and
//! Twilio's answers are [`crate::calls::deliver`]'s. Pure: records and the time
//! come in as arguments, changes, log lines and the outcome go out as a
//! [`Decision`]; the shell executes them.
//!
//! The rules, on the conversation record ([`crate::state::conversation`]):
//! - every message, in either direction and of any format, takes the next
//!   position, whatever the settings (so a receipt naming it is understood
//!   later);
//! - a message id seen before is the same message: a redelivery changes
//!   nothing and gets the answer the conversation gives now;
//! - writing in a conversation means having read it (`replyMeansRead`,
//!   on by default): the author's own pending notification there ends;
//! - a text starts a pending notification for the recipient, due one
//!   delay after it, or joins the one waiting (whose due time stays
//!   anchored at its first message);
//! - a receipt for any message marks it and everything before it read.

use crate::prelude::*;

use crate::model::{
    Change, ConversationKind, Decision, Deletion, Error, Format, Level, Message, Millis, Outcome,
    PendingSummary, Problem, Receipt, SkipReason,
};
use crate::policy::limits::MAX_ID_BYTES;
use crate::policy::settings::Settings;
use crate::state::conversation::{Conversation, Held, id_hash};
use crate::state::keys;
use crate::state::record::Record;
use crate::state::timer::Timer;

/// Checks the ids a message carries: the error names the field and says
/// what is allowed.
pub fn check_message(message: &Message) -> Result<(), Error> {
    check_id("message.id", &message.id)?;
    check_id("message.conversation", &message.conversation)?;
    check_id("message.sender", &message.sender)?;
    check_id("message.receiver", &message.receiver)
}

/// Checks the ids a receipt carries.
pub fn check_receipt(receipt: &Receipt) -> Result<(), Error> {
    check_id("receipt.conversation", &receipt.conversation)?;
    check_id("receipt.reader", &receipt.reader)?;
    check_id("receipt.message", &receipt.message)
}

/// Checks the ids a deletion carries.
pub fn check_deletion(deletion: &Deletion) -> Result<(), Error> {
    check_id("deletion.conversation", &deletion.conversation)?;
    check_id("deletion.message", &deletion.message)
}

fn check_id(field: &str, id: &str) -> Result<(), Error> {
    let problem = if id.is_empty() {
        "is empty".to_owned()
    } else if id.len() > MAX_ID_BYTES {
        format!("is {} bytes long", id.len())
    } else if id.chars().any(char::is_control) {
        "contains control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::InvalidInput(format!(
        "{field} {problem}; ids are 1 to {MAX_ID_BYTES} bytes without control characters"
    )))
}

/// Why a message concerns no conversation record at all, if it does not.
pub fn admit(message: &Message) -> Result<(), SkipReason> {
    if message.kind == ConversationKind::Group {
        return Err(SkipReason::GroupConversation);
    }
    if message.sender == message.receiver {
        return Err(SkipReason::SelfMessage);
    }
    Ok(())
}

/// The timer of `recipient`'s pending notification in `conversation`.
pub fn deliver_timer(conversation: &str, recipient: &str) -> String {
    Timer::Deliver {
        conversation: conversation.to_owned(),
        recipient: recipient.to_owned(),
    }
    .key()
}

/// The summary of participant `p`'s pending notification.
pub fn summary(conversation: &str, c: &Conversation, p: usize) -> PendingSummary {
    let part = &c.participants[p];
    PendingSummary {
        conversation: conversation.to_owned(),
        recipient: part.uid.clone(),
        unread: c.unread(p),
        due_at: part.due_at.unwrap_or(0),
    }
}

/// Ends participant `p`'s pending notification when nothing of it is
/// unread any more; an attempt in flight is left for its timer, which
/// settles it (its SMS may have gone out).
fn end_if_read(conversation: &str, c: &mut Conversation, p: usize, step: &mut Decision) -> bool {
    let part = &c.participants[p];
    if part.due_at.is_none() || part.in_flight != 0 || c.unread(p) > 0 {
        return false;
    }
    let part = &mut c.participants[p];
    part.due_at = None;
    part.attempts = 0;
    step.changes.push(Change::CancelTimer {
        key: deliver_timer(conversation, &part.uid),
    });
    true
}

fn put(conversation: &str, c: &Conversation) -> Change {
    Change::Put {
        key: keys::conversation(conversation),
        value: c.encode(),
    }
}

/// A message reached its recipient. `settings` are the tenant's, or their
/// problems: the message's position is recorded either way.
pub fn on_message(
    settings: Result<&Settings, &[Problem]>,
    message: &Message,
    conversation: Option<Conversation>,
    now: Millis,
) -> Decision {
    let id = &message.conversation;
    let mut c = conversation.unwrap_or_default();
    let hash = id_hash(&message.id);
    if c.seq_of(hash).is_some() {
        // A redelivery: the same event, answered as things stand now.
        return Decision::new(Ok(match c.index_of(&message.receiver) {
            Some(r) if c.participants[r].due_at.is_some() => Outcome::Scheduled(summary(id, &c, r)),
            _ => Outcome::Skipped(SkipReason::NothingPending),
        }));
    }
    let (Some(s), Some(r)) = (c.join(&message.sender), c.join(&message.receiver)) else {
        let who: Vec<&str> = c.participants.iter().map(|p| p.uid.as_str()).collect();
        return Decision::new(Err(Error::InvalidInput(format!(
            "message.conversation {id:?} is between {}; a message from {:?} to {:?} cannot belong to it",
            who.join(" and "),
            message.sender,
            message.receiver
        ))));
    };
    let text = (message.format == Format::Text).then_some(message.text.as_str());
    let seq = c.push(s, r, hash, text);
    let mut step = Decision::default();
    step.changes
        .extend(crate::calls::expiry::on_message(id, &mut c, now));
    // With settings that cannot be read, the default holds.
    if settings.map_or(true, |s| s.reply_means_read) {
        c.read_through(s, seq);
        if end_if_read(id, &mut c, s, &mut step) {
            step = step.log(
                Level::Info,
                format!(
                    "ended: replied: {:?} wrote in {id:?}, so their pending notification there ends",
                    message.sender
                ),
            );
        }
    }
    let settings = match settings {
        Ok(settings) => settings,
        Err(problems) => {
            step.changes.push(put(id, &c));
            step.result = Some(Err(Error::InvalidSettings(problems.to_vec())));
            return step;
        }
    };
    if text.is_none() {
        step.changes.push(put(id, &c));
        step.result = Some(Ok(Outcome::Skipped(SkipReason::NotText)));
        return step;
    }
    let part = &mut c.participants[r];
    let arm = match part.due_at {
        None => Some(message.sent_at.saturating_add(settings.delay_ms())),
        // Past due when a message joins it: its timer was lost (a call that
        // failed, a trap the host gave up on, an attempt cut off). Re-armed
        // now, so it never waits forever; a timer merely late fires sooner.
        // Held back while the settings were invalid: they are valid again.
        Some(due) if due < message.sent_at || part.held == Held::Settings => Some(message.sent_at),
        Some(_) => None,
    };
    if part.held == Held::Settings {
        part.held = Held::No;
    }
    if let Some(due) = arm {
        part.due_at = Some(due);
        step.changes.push(Change::SetTimer {
            key: deliver_timer(id, &message.receiver),
            due_at: due,
        });
    }
    step.changes.insert(0, put(id, &c));
    let mut answer = summary(id, &c, r);
    let part = &c.participants[r];
    if part.in_flight != 0 {
        // An SMS is on its way (or was cut off) without this message: it
        // starts the next notification, due one delay after that attempt
        // ends, at the earliest one delay after the attempt's due time.
        answer.unread = c.unread_after(r, part.in_flight);
        answer.due_at = answer
            .due_at
            .max(message.sent_at)
            .saturating_add(settings.delay_ms());
    }
    step.result = Some(Ok(Outcome::Scheduled(answer)));
    step
}

/// A read receipt: the reader has read the message named and everything
/// before it, whoever wrote it. When nothing unread is left, their pending
/// notification and its timer are gone.
pub fn on_read(receipt: &Receipt, conversation: Option<Conversation>) -> Decision {
    let id = &receipt.conversation;
    let nothing = || Decision::skip(SkipReason::NothingPending);
    let Some(mut c) = conversation else {
        return nothing();
    };
    let Some(p) = c.index_of(&receipt.reader) else {
        return nothing();
    };
    let pending = c.participants[p].due_at.is_some();
    // An id the conversation does not know (never seen, or long forgotten)
    // changes nothing.
    let Some(seq) = c.seq_of(id_hash(&receipt.message)) else {
        return match pending {
            true => Decision::new(Ok(Outcome::Updated(summary(id, &c, p)))),
            false => nothing(),
        };
    };
    if seq <= c.participants[p].read {
        return match pending {
            true => Decision::new(Ok(Outcome::Updated(summary(id, &c, p)))),
            false => nothing(),
        };
    }
    let read = c.read_through(p, seq);
    let mut step = Decision::default();
    let outcome = if end_if_read(id, &mut c, p, &mut step) {
        Outcome::Cancelled {
            conversation: id.clone(),
            recipient: receipt.reader.clone(),
            read,
        }
    } else if pending {
        Outcome::Updated(summary(id, &c, p))
    } else {
        Outcome::Skipped(SkipReason::NothingPending)
    };
    step.changes.insert(0, put(id, &c));
    step.result = Some(Ok(outcome));
    step
}

/// A message was edited: when it is the newest text to its recipient, the
/// record keeps the new text for their SMS. Its place, and what was read,
/// stay as they were.
pub fn on_edit(message: &Message, conversation: Option<Conversation>) -> Decision {
    let id = &message.conversation;
    let Some(mut c) = conversation else {
        return Decision::skip(SkipReason::NothingPending);
    };
    let Some(p) = c.edit(id_hash(&message.id), &message.text) else {
        return Decision::skip(SkipReason::NothingPending);
    };
    let waiting = c.participants[p].due_at.is_some() && c.unread(p) > 0;
    Decision::new(Ok(if waiting {
        Outcome::Updated(summary(id, &c, p))
    } else {
        Outcome::Skipped(SkipReason::NothingPending)
    }))
    .change(put(id, &c))
}

/// A message was deleted: it no longer counts as unread and is never
/// quoted. A pending notification left with nothing unread ends (unless an
/// attempt is in flight: its timer settles it).
pub fn on_delete(deletion: &Deletion, conversation: Option<Conversation>) -> Decision {
    let id = &deletion.conversation;
    let Some(mut c) = conversation else {
        return Decision::skip(SkipReason::NothingPending);
    };
    let Some(p) = c.delete(id_hash(&deletion.message)) else {
        return Decision::skip(SkipReason::NothingPending);
    };
    let pending = c.participants[p].due_at.is_some();
    let mut step = Decision::default();
    let outcome = if end_if_read(id, &mut c, p, &mut step) {
        step = step.log(
            Level::Info,
            format!(
                "ended: deleted: {:?}'s last waiting message in {id:?} was deleted",
                c.participants[p].uid
            ),
        );
        Outcome::Cancelled {
            conversation: id.clone(),
            recipient: c.participants[p].uid.clone(),
            read: 0,
        }
    } else if pending {
        Outcome::Updated(summary(id, &c, p))
    } else {
        Outcome::Skipped(SkipReason::NothingPending)
    };
    step.changes.insert(0, put(id, &c));
    step.result = Some(Ok(outcome));
    step
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Millis;
    use crate::policy::settings::{Credentials, Secret, Sender};

    pub(crate) fn settings() -> Settings {
        Settings::new(
            "AC0123456789abcdef0123456789abcdef",
            Credentials::AuthToken(Secret::new("s3cret")),
            Sender::Number("+14155552671".into()),
        )
    }

    pub(crate) fn message(id: &str, at: Millis) -> Message {
        Message {
            id: id.into(),
            conversation: "c1".into(),
            kind: ConversationKind::OneOnOne,
            format: Format::Text,
            sender: "alice".into(),
            receiver: "bob".into(),
            text: format!("text {id}"),
            sent_at: at,
        }
    }

    pub(crate) fn reply(id: &str, at: Millis) -> Message {
        Message {
            sender: "bob".into(),
            receiver: "alice".into(),
            ..message(id, at)
        }
    }

    pub(crate) fn receipt(reader: &str, id: &str) -> Receipt {
        Receipt {
            conversation: "c1".into(),
            reader: reader.into(),
            message: id.into(),
            read_at: 0,
        }
    }

    pub(crate) fn timer() -> Timer {
        Timer::Deliver {
            conversation: "c1".into(),
            recipient: "bob".into(),
        }
    }

    pub(crate) fn stored(step: &Decision) -> Conversation {
        step.changes
            .iter()
            .find_map(|e| match e {
                Change::Put { key, value } if key.starts_with("conversation/") => {
                    Conversation::decode(value).ok()
                }
                _ => None,
            })
            .expect("a stored conversation")
    }

    /// Runs messages through `on_message`, threading the record.
    pub(crate) fn after(messages: &[Message]) -> Conversation {
        let s = settings();
        let mut c = None;
        for m in messages {
            c = Some(stored(&on_message(Ok(&s), m, c, 0)));
        }
        c.unwrap()
    }

    fn unread_of(step: &Decision) -> Option<u32> {
        match step.result() {
            Ok(Outcome::Scheduled(p) | Outcome::Updated(p)) => Some(p.unread),
            _ => None,
        }
    }

    #[test]
    fn first_message_schedules_at_sent_at_plus_delay() {
        let step = on_message(Ok(&settings()), &message("m1", 1_000), None, 0);
        assert_eq!(
            step.result(),
            &Ok(Outcome::Scheduled(PendingSummary {
                conversation: "c1".into(),
                recipient: "bob".into(),
                unread: 1,
                due_at: 61_000
            }))
        );
        assert!(step.changes.contains(&Change::SetTimer {
            key: timer().key(),
            due_at: 61_000
        }));
    }

    #[test]
    fn later_messages_join_without_moving_the_timer() {
        let c = after(&[message("m1", 1_000)]);
        let second = on_message(Ok(&settings()), &message("m2", 30_000), Some(c), 0);
        assert!(
            matches!(second.result(), Ok(Outcome::Scheduled(s)) if s.unread == 2 && s.due_at == 61_000)
        );
        assert!(
            !second
                .changes
                .iter()
                .any(|e| matches!(e, Change::SetTimer { .. }))
        );
    }

    #[test]
    fn a_message_rearms_a_notification_that_lost_its_timer() {
        let c = after(&[message("m1", 1_000)]);
        let late = on_message(Ok(&settings()), &message("m2", 90_000), Some(c), 0);
        assert!(
            matches!(late.result(), Ok(Outcome::Scheduled(s)) if s.unread == 2 && s.due_at == 90_000)
        );
        assert!(late.changes.contains(&Change::SetTimer {
            key: timer().key(),
            due_at: 90_000
        }));
    }

    #[test]
    fn a_reply_means_read() {
        let c = after(&[message("m1", 0), reply("m2", 10)]);
        let bob = c.index_of("bob").unwrap();
        assert_eq!(c.unread(bob), 0);
        assert_eq!(c.participants[bob].due_at, None);
        // The reply cancelled Bob's timer in the same step.
        let c1 = after(&[message("m1", 0)]);
        let step = on_message(Ok(&settings()), &reply("m2", 10), Some(c1), 0);
        assert!(
            step.changes
                .contains(&Change::CancelTimer { key: timer().key() })
        );
        // Turned off, a reply reads nothing.
        let mut off = settings();
        off.reply_means_read = false;
        let c1 = after(&[message("m1", 0)]);
        let c = stored(&on_message(Ok(&off), &reply("m2", 10), Some(c1), 0));
        assert_eq!(c.unread(c.index_of("bob").unwrap()), 1);
    }

    #[test]
    fn a_receipt_for_ones_own_reply_reads_what_came_before() {
        let mut off = settings();
        off.reply_means_read = false;
        let c1 = after(&[message("m1", 0)]);
        let c = stored(&on_message(Ok(&off), &reply("m2", 10), Some(c1), 0));
        let step = on_read(&receipt("bob", "m2"), Some(c));
        assert!(
            matches!(step.result(), Ok(Outcome::Cancelled { read: 1, .. })),
            "{:?}",
            step.result()
        );
    }

    #[test]
    fn a_redelivered_message_counts_once() {
        let c = after(&[message("m1", 0)]);
        let again = on_message(Ok(&settings()), &message("m1", 0), Some(c.clone()), 0);
        assert_eq!(unread_of(&again), Some(1));
        assert!(again.changes.is_empty(), "a redelivery changes nothing");
        let c = after(&[message("m1", 0), message("m2", 5)]);
        let read = on_read(&receipt("bob", "m1"), Some(c));
        assert_eq!(unread_of(&read), Some(1));
    }

    #[test]
    fn messages_are_recorded_while_the_settings_are_invalid() {
        let problems = [Problem {
            field: "twilioAccountSid".into(),
            message: "required".into(),
        }];
        let step = on_message(Err(&problems), &message("m1", 0), None, 0);
        assert!(matches!(step.result(), Err(Error::InvalidSettings(_))));
        let c = stored(&step);
        assert!(c.seq_of(id_hash("m1")).is_some());
        assert_eq!(c.participants[c.index_of("bob").unwrap()].due_at, None);
        // Later, a receipt naming it is understood.
        let c = stored(&on_message(Ok(&settings()), &message("m2", 5), Some(c), 0));
        let read = on_read(&receipt("bob", "m1"), Some(c));
        assert_eq!(unread_of(&read), Some(1));
    }

    #[test]
    fn a_third_party_cannot_join_a_conversation() {
        let c = after(&[message("m1", 0)]);
        let mut carol = message("m2", 0);
        carol.sender = "carol".into();
        let step = on_message(Ok(&settings()), &carol, Some(c), 0);
        assert!(
            matches!(step.result(), Err(Error::InvalidInput(w)) if w.contains("between alice and bob"))
        );
        assert!(step.changes.is_empty());
    }

    #[test]
    fn groups_self_messages_and_media_are_skipped() {
        let mut group = message("m1", 0);
        group.kind = ConversationKind::Group;
        assert_eq!(admit(&group), Err(SkipReason::GroupConversation));
        let mut own = message("m1", 0);
        own.receiver = "alice".into();
        assert_eq!(admit(&own), Err(SkipReason::SelfMessage));
        let mut image = message("m1", 0);
        image.format = Format::Image;
        let step = on_message(Ok(&settings()), &image, None, 0);
        assert_eq!(step.result(), &Ok(Outcome::Skipped(SkipReason::NotText)));
        // No notification; only the new record's expiry timer.
        let timers: Vec<_> = step
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::SetTimer { key, .. } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(timers, ["expire/c1"]);
    }

    #[test]
    fn hostile_ids_are_typed_errors() {
        let mut m = message("m1", 0);
        assert_eq!(check_message(&m), Ok(()));
        m.id = "x".repeat(65_536);
        let Err(Error::InvalidInput(why)) = check_message(&m) else {
            panic!("a 64 kB id must be refused")
        };
        assert!(why.contains("message.id is 65536 bytes long"), "{why}");
        m.id = "m\u{0}1".into();
        assert!(matches!(check_message(&m), Err(Error::InvalidInput(w)) if w.contains("control")));
    }

    #[test]
    fn reading_everything_cancels() {
        let c = after(&[message("m1", 0)]);
        let step = on_read(&receipt("bob", "m1"), Some(c));
        assert!(matches!(
            step.result(),
            Ok(Outcome::Cancelled { read: 1, .. })
        ));
        assert!(
            step.changes
                .contains(&Change::CancelTimer { key: timer().key() })
        );
        assert_eq!(
            on_read(&receipt("bob", "m1"), None).result(),
            &Ok(Outcome::Skipped(SkipReason::NothingPending))
        );
    }
}
