//! The notification state machine: every product decision about messages,
//! receipts and timers. Pure: records and the time come in as arguments,
//! effects and the outcome go out as a [`Step`]; the shell executes them.

use crate::contact;
use crate::model::Presence;
use crate::model::{
    ConversationKind, Effect, Error, Format, Level, Message, Millis, Outcome, PendingSummary,
    Receipt, SkipReason, User,
};
use crate::pending::Pending;
use crate::render::{self, Notice};
use crate::settings::Settings;
use crate::timer::{Timer, pending_key};
use crate::twilio::{self, Request, Response, Verdict};

/// What a call decided: its result and the effects to execute, in order.
#[derive(Debug, PartialEq, Eq)]
pub struct Step {
    pub result: Result<Outcome, Error>,
    pub effects: Vec<Effect>,
}

impl Step {
    fn new(result: Result<Outcome, Error>) -> Self {
        Self {
            result,
            effects: Vec::new(),
        }
    }

    fn skip(reason: SkipReason) -> Self {
        Self::new(Ok(Outcome::Skipped(reason)))
    }

    fn effect(mut self, effect: Effect) -> Self {
        self.effects.push(effect);
        self
    }

    fn log(self, level: Level, line: String) -> Self {
        self.effect(Effect::Log { level, line })
    }
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
    Ok(pending_key(&message.conversation, &message.receiver))
}

/// A message reached its recipient. A text message starts a pending
/// notification (timer at sent-at + delay) or joins the one waiting; the
/// timer stays anchored at the first unread message, so a chatty sender
/// cannot postpone the SMS forever. Other formats never start one but are
/// remembered in one that waits, so a receipt naming them still counts.
pub fn on_message(settings: &Settings, message: &Message, pending: Option<Pending>) -> Step {
    let key = pending_key(&message.conversation, &message.receiver);
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
    let is_new = pending.is_none();
    let mut pending = pending.unwrap_or_else(|| {
        Pending::new(
            &message.sender,
            message.sent_at.saturating_add(settings.delay_ms()),
        )
    });
    pending.push(&message.sender, &message.id, Some(text));
    let summary = summary(&message.conversation, &message.receiver, &pending);
    let step = Step::new(Ok(Outcome::Scheduled(summary))).effect(Effect::Put {
        key,
        value: pending.encode(),
    });
    if !is_new {
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
    let key = pending_key(&receipt.conversation, &receipt.reader);
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

/// What to do when a delivery timer comes due.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing to send: the step says why.
    Done(Step),
    /// Send this request, then pass the response to [`on_response`].
    Send { request: Request, to: String },
}

/// A delivery timer came due for `pending`. The fresh `recipient` record
/// decides: still offline, still unread, and a valid number, or no SMS.
pub fn on_timer(
    now: Millis,
    settings: &Settings,
    timer: &Timer,
    pending: &Pending,
    recipient: Option<&User>,
    sender_name: &str,
) -> Delivery {
    let Timer::Deliver {
        conversation,
        recipient: uid,
    } = timer;
    let key = pending_key(conversation, uid);
    if now < pending.due_at {
        // Fired early (a host's clock skew): wait for the real due time.
        return Delivery::Done(
            Step::new(Ok(Outcome::Scheduled(summary(conversation, uid, pending)))).effect(
                Effect::SetTimer {
                    key: timer.key(),
                    due_at: pending.due_at,
                },
            ),
        );
    }
    let drop = |reason: SkipReason, detail: &str| {
        Delivery::Done(
            Step::skip(reason)
                .effect(Effect::Delete { key: key.clone() })
                .log(
                    Level::Info,
                    format!(
                        "no SMS for {uid:?} in {conversation:?}: {} ({detail})",
                        reason.as_str()
                    ),
                ),
        )
    };
    let unread = pending.unread();
    let Some(latest_text) = pending.latest_text().filter(|_| unread > 0) else {
        return drop(SkipReason::NothingPending, "everything was read");
    };
    let Some(user) = recipient else {
        return drop(
            SkipReason::UnknownRecipient,
            "the chat server has no such user",
        );
    };
    if user.presence == Presence::Online {
        return drop(SkipReason::RecipientOnline, "they will see the messages");
    }
    let to = match contact::from_metadata(&user.metadata) {
        Ok(to) => to,
        Err(reason) => return drop(reason, "see @private.contactNumber in their metadata"),
    };
    let body = render::body(&Notice {
        sender_name,
        unread,
        latest_text,
        website_url: settings.website_url.as_deref(),
    });
    Delivery::Send {
        request: twilio::create_message(settings, &to, &body),
        to,
    }
}

/// Twilio answered (or did not) the request [`on_timer`] asked for.
pub fn on_response(timer: &Timer, pending: &Pending, to: &str, response: &Response) -> Step {
    let Timer::Deliver {
        conversation,
        recipient,
    } = timer;
    let key = pending_key(conversation, recipient);
    let unread = pending.unread();
    match twilio::classify(response) {
        Verdict::Accepted { sid } => Step::new(Ok(Outcome::Sent {
            conversation: conversation.clone(),
            recipient: recipient.clone(),
            sid: sid.clone(),
            unread,
        }))
        .effect(Effect::Delete { key })
        .log(
            Level::Info,
            format!(
                "sent SMS {sid} to {} about {unread} unread message(s) in {conversation:?}",
                contact::mask(to)
            ),
        ),
        Verdict::Failed(error) => Step::new(Err(Error::Twilio(error.clone())))
            .effect(Effect::Delete { key })
            .log(
                Level::Error,
                format!(
                    "Twilio refused the SMS to {} (HTTP {}, code {:?}): {}",
                    contact::mask(to),
                    error.status,
                    error.code,
                    error.message
                ),
            ),
    }
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
mod tests {
    use super::*;
    use crate::settings::{Secret, Sender};

    fn settings() -> Settings {
        Settings {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: Secret::new("s3cret"),
            from: Sender::Number("+14155552671".into()),
            delay_seconds: 60,
            website_url: None,
        }
    }

    fn message(id: &str, at: Millis) -> Message {
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

    fn bob(presence: Presence) -> User {
        User {
            uid: "bob".into(),
            name: "Bob".into(),
            presence,
            metadata: r#"{"@private":{"contactNumber":"+12345678910"}}"#.into(),
        }
    }

    fn timer() -> Timer {
        Timer::Deliver {
            conversation: "c1".into(),
            recipient: "bob".into(),
        }
    }

    fn stored(step: &Step) -> Pending {
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

    #[test]
    fn timer_sends_only_to_an_offline_recipient_with_a_number() {
        let pending = stored(&on_message(&settings(), &message("m1", 0), None));
        let online = on_timer(
            60_000,
            &settings(),
            &timer(),
            &pending,
            Some(&bob(Presence::Online)),
            "Alice",
        );
        assert!(matches!(
            online,
            Delivery::Done(Step {
                result: Ok(Outcome::Skipped(SkipReason::RecipientOnline)),
                ..
            })
        ));
        let mut no_number = bob(Presence::Offline);
        no_number.metadata = "{}".into();
        let skipped = on_timer(
            60_000,
            &settings(),
            &timer(),
            &pending,
            Some(&no_number),
            "Alice",
        );
        assert!(matches!(
            skipped,
            Delivery::Done(Step {
                result: Ok(Outcome::Skipped(SkipReason::NoContactNumber)),
                ..
            })
        ));
        let Delivery::Send { request, to } = on_timer(
            60_000,
            &settings(),
            &timer(),
            &pending,
            Some(&bob(Presence::Offline)),
            "Alice",
        ) else {
            panic!("expected a send");
        };
        assert_eq!(to, "+12345678910");
        assert!(
            request
                .body
                .contains("Body=New+message+from+Alice%3A+text+m1"),
            "{}",
            request.body
        );
    }

    #[test]
    fn early_timer_waits() {
        let pending = stored(&on_message(&settings(), &message("m1", 0), None));
        let early = on_timer(
            59_999,
            &settings(),
            &timer(),
            &pending,
            Some(&bob(Presence::Offline)),
            "Alice",
        );
        let Delivery::Done(step) = early else {
            panic!("must not send early")
        };
        assert!(step.effects.contains(&Effect::SetTimer {
            key: timer().key(),
            due_at: 60_000
        }));
    }

    #[test]
    fn response_decides_sent_or_error_and_never_logs_the_number() {
        let pending = stored(&on_message(&settings(), &message("m1", 0), None));
        let ok = Response::Http {
            status: 201,
            body: br#"{"sid":"SM1"}"#.to_vec(),
        };
        let step = on_response(&timer(), &pending, "+12345678910", &ok);
        assert!(matches!(&step.result, Ok(Outcome::Sent { sid, unread: 1, .. }) if sid == "SM1"));
        let bad = Response::Http {
            status: 400,
            body: br#"{"code":21211,"message":"Invalid"}"#.to_vec(),
        };
        let step = on_response(&timer(), &pending, "+12345678910", &bad);
        assert!(matches!(&step.result, Err(Error::Twilio(e)) if e.code == Some(21211)));
        for effect in &step.effects {
            if let Effect::Log { line, .. } = effect {
                assert!(!line.contains("+12345678910"), "{line}");
            }
        }
    }
}
