//! The notification state machine for messages and receipts; timers and
//! Twilio's answers are [`crate::deliver`]'s. Pure: records and the time
//! come in as arguments, effects and the outcome go out as a [`Step`]; the
//! shell executes them.

use crate::prelude::*;

use crate::keys;
use crate::model::{
    ConversationKind, Effect, Error, Format, Level, Message, Outcome, PendingSummary, Receipt,
    SkipReason,
};
use crate::pending::Pending;
use crate::record::Record;
use crate::settings::Settings;
use crate::timer::Timer;

/// What a call decided: its result and the effects to execute, in order.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    pub result: Result<Outcome, Error>,
    pub effects: Vec<Effect>,
}

impl Step {
    pub(crate) fn new(result: Result<Outcome, Error>) -> Self {
        Self {
            result,
            effects: Vec::new(),
        }
    }

    pub(crate) fn skip(reason: SkipReason) -> Self {
        Self::new(Ok(Outcome::Skipped(reason)))
    }

    pub(crate) fn effect(mut self, effect: Effect) -> Self {
        self.effects.push(effect);
        self
    }

    pub(crate) fn log(self, level: Level, line: String) -> Self {
        self.effect(Effect::Log { level, line })
    }
}

/// Longest id (message, conversation, user) accepted, in bytes. Ids become
/// parts of state and timer keys, so they must stay short.
pub const MAX_ID_BYTES: usize = 256;

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

/// The state key of the pending notification a message concerns, or why it
/// concerns none. The shell loads that key before calling [`on_message`].
pub fn admit(message: &Message) -> Result<String, SkipReason> {
    if message.kind == ConversationKind::Group {
        return Err(SkipReason::GroupConversation);
    }
    if message.sender == message.receiver {
        return Err(SkipReason::SelfMessage);
    }
    Ok(keys::pending(&message.conversation, &message.receiver))
}

/// A message reached its recipient. A text message starts a pending
/// notification (timer at sent-at + delay) or joins the one waiting; the
/// timer stays anchored at the first unread message, so a chatty sender
/// cannot postpone the SMS forever. Other formats never start one but are
/// remembered in one that waits, so a receipt naming them still counts.
pub fn on_message(settings: &Settings, message: &Message, pending: Option<Pending>) -> Step {
    let key = keys::pending(&message.conversation, &message.receiver);
    let text = (message.format == Format::Text).then_some(message.text.as_str());
    let Some(text) = text else {
        return match pending {
            Some(mut pending) => {
                pending.push(&message.sender, &message.id, None);
                Step::skip(SkipReason::NotText).effect(Effect::Put {
                    key,
                    value: pending.encode(),
                })
            }
            None => Step::skip(SkipReason::NotText),
        };
    };
    // A notification already past due when a message joins it has lost its
    // timer (its call failed: settings turned invalid, a refused state write,
    // a trap the host gave up on). Re-arming it here keeps it from waiting
    // forever; a timer that is merely late just fires a little sooner.
    let arm = pending.as_ref().is_none_or(|p| p.due_at < message.sent_at);
    let mut pending = pending.unwrap_or_else(|| {
        Pending::new(
            &message.sender,
            message.sent_at.saturating_add(settings.delay_ms()),
        )
    });
    pending.due_at = pending.due_at.max(message.sent_at);
    pending.push(&message.sender, &message.id, Some(text));
    let summary = summary(&message.conversation, &message.receiver, &pending);
    let step = Step::new(Ok(Outcome::Scheduled(summary))).effect(Effect::Put {
        key,
        value: pending.encode(),
    });
    if !arm {
        return step;
    }
    let timer = Timer::Deliver {
        conversation: message.conversation.clone(),
        recipient: message.receiver.clone(),
    };
    step.effect(Effect::SetTimer {
        key: timer.key(),
        due_at: pending.due_at,
    })
}

/// A read receipt. Clears the message and every earlier one; when nothing
/// unread is left, the notification and its timer are gone.
pub fn on_read(receipt: &Receipt, pending: Option<Pending>) -> Step {
    let Some(mut pending) = pending else {
        return Step::skip(SkipReason::NothingPending);
    };
    let key = keys::pending(&receipt.conversation, &receipt.reader);
    let read = pending.read_through(&receipt.message);
    if pending.unread() == 0 {
        let timer = Timer::Deliver {
            conversation: receipt.conversation.clone(),
            recipient: receipt.reader.clone(),
        };
        return Step::new(Ok(Outcome::Cancelled {
            conversation: receipt.conversation.clone(),
            recipient: receipt.reader.clone(),
            read,
        }))
        .effect(Effect::Delete { key })
        .effect(Effect::CancelTimer { key: timer.key() });
    }
    let summary = summary(&receipt.conversation, &receipt.reader, &pending);
    let step = Step::new(Ok(Outcome::Updated(summary)));
    if read == 0 {
        return step;
    }
    step.effect(Effect::Put {
        key,
        value: pending.encode(),
    })
}

fn summary(conversation: &str, recipient: &str, pending: &Pending) -> PendingSummary {
    PendingSummary {
        conversation: conversation.to_owned(),
        recipient: recipient.to_owned(),
        unread: pending.unread(),
        due_at: pending.due_at,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::Millis;
    use crate::settings::{Credentials, Secret, Sender};

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

    pub(crate) fn timer() -> Timer {
        Timer::Deliver {
            conversation: "c1".into(),
            recipient: "bob".into(),
        }
    }

    pub(crate) fn stored(step: &Step) -> Pending {
        step.effects
            .iter()
            .find_map(|e| match e {
                Effect::Put { value, .. } => Pending::decode(value),
                _ => None,
            })
            .expect("a stored pending notification")
    }

    #[test]
    fn first_message_schedules_at_sent_at_plus_delay() {
        let step = on_message(&settings(), &message("m1", 1_000), None);
        assert_eq!(
            step.result,
            Ok(Outcome::Scheduled(PendingSummary {
                conversation: "c1".into(),
                recipient: "bob".into(),
                unread: 1,
                due_at: 61_000
            }))
        );
        assert!(step.effects.contains(&Effect::SetTimer {
            key: timer().key(),
            due_at: 61_000
        }));
    }

    #[test]
    fn later_messages_join_without_moving_the_timer() {
        let first = on_message(&settings(), &message("m1", 1_000), None);
        let second = on_message(&settings(), &message("m2", 30_000), Some(stored(&first)));
        assert!(
            matches!(&second.result, Ok(Outcome::Scheduled(s)) if s.unread == 2 && s.due_at == 61_000)
        );
        assert!(
            !second
                .effects
                .iter()
                .any(|e| matches!(e, Effect::SetTimer { .. }))
        );
    }

    #[test]
    fn a_message_rearms_a_notification_that_lost_its_timer() {
        // Due at 61 s, but its timer call failed; a message at 90 s re-arms it.
        let first = on_message(&settings(), &message("m1", 1_000), None);
        let late = on_message(&settings(), &message("m2", 90_000), Some(stored(&first)));
        assert!(
            matches!(&late.result, Ok(Outcome::Scheduled(s)) if s.unread == 2 && s.due_at == 90_000)
        );
        assert!(late.effects.contains(&Effect::SetTimer {
            key: timer().key(),
            due_at: 90_000
        }));
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
        let step = on_message(&settings(), &image, None);
        assert_eq!(step.result, Ok(Outcome::Skipped(SkipReason::NotText)));
        assert!(step.effects.is_empty());
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
        m.id = "m1".into();
        m.receiver = String::new();
        assert!(
            matches!(check_message(&m), Err(Error::InvalidInput(w)) if w.contains("message.receiver is empty"))
        );
    }

    #[test]
    fn reading_everything_cancels() {
        let first = on_message(&settings(), &message("m1", 0), None);
        let receipt = Receipt {
            conversation: "c1".into(),
            reader: "bob".into(),
            message: "m1".into(),
            read_at: 10,
        };
        let step = on_read(&receipt, Some(stored(&first)));
        assert!(matches!(
            step.result,
            Ok(Outcome::Cancelled { read: 1, .. })
        ));
        assert!(
            step.effects
                .contains(&Effect::CancelTimer { key: timer().key() })
        );
        assert_eq!(
            on_read(&receipt, None).result,
            Ok(Outcome::Skipped(SkipReason::NothingPending))
        );
    }
}
