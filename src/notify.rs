//! The notification state machine: every product decision about messages,
//! receipts and timers. Pure: records and the time come in as arguments,
//! effects and the outcome go out as a [`Step`]; the shell executes them.

use crate::contact;
use crate::history::History;
use crate::keys;
use crate::model::Presence;
use crate::model::{
    ConversationKind, Effect, Error, Format, Level, Message, Millis, Outcome, PendingSummary,
    Receipt, SkipReason, User,
};
use crate::pending::Pending;
use crate::render::{self, Notice, Style};
use crate::settings::{MAX_CONVERSATION_SMS_PER_DAY, MAX_RECIPIENT_SMS_PER_DAY, Settings};
use crate::timer::Timer;
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

/// What to do when a delivery timer comes due.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing to send now: the step says why.
    Done(Step),
    /// Send this request, then pass the response to [`on_response`].
    Send { request: Request, to: String },
}

/// Everything a due notification is decided on, fresh from the host.
pub struct Check<'a> {
    pub now: Millis,
    pub settings: &'a Settings,
    pub pending: &'a Pending,
    /// The recipient as they are now; `None` if the chat server has no
    /// such user.
    pub recipient: Option<&'a User>,
    pub sender_name: &'a str,
    /// SMS sent lately in this conversation to this recipient.
    pub conversation_history: &'a History,
    /// SMS sent lately to this recipient in any conversation.
    pub recipient_history: &'a History,
}

/// A delivery timer came due. The fresh records decide, in this order:
/// something still unread; the recipient known, offline, with a valid
/// number; the conversation's cooldown over (else the notification waits
/// for its end); the daily limits not reached (else it is dropped, with
/// its reason in the outcome and the log).
pub fn on_timer(timer: &Timer, check: &Check<'_>) -> Delivery {
    let Timer::Deliver {
        conversation,
        recipient: uid,
    } = timer;
    let (now, settings, pending) = (check.now, check.settings, check.pending);
    let key = keys::pending(conversation, uid);
    let wait_until = |due_at: Millis, outcome: fn(PendingSummary) -> Outcome| {
        let mut pending = pending.clone();
        pending.due_at = due_at;
        Delivery::Done(
            Step::new(Ok(outcome(summary(conversation, uid, &pending))))
                .effect(Effect::Put {
                    key: key.clone(),
                    value: pending.encode(),
                })
                .effect(Effect::SetTimer {
                    key: timer.key(),
                    due_at,
                }),
        )
    };
    if now < pending.due_at {
        // Fired early (a host's clock skew): wait for the real due time.
        return wait_until(pending.due_at, Outcome::Scheduled);
    }
    let drop = |reason: SkipReason, level: Level, detail: String| {
        Delivery::Done(
            Step::skip(reason)
                .effect(Effect::Delete { key: key.clone() })
                .log(
                    level,
                    format!(
                        "no SMS for {uid:?} in {conversation:?}: {} ({detail})",
                        reason.as_str()
                    ),
                ),
        )
    };
    let unread = pending.unread();
    let Some(latest_text) = pending.latest_text().filter(|_| unread > 0) else {
        return drop(
            SkipReason::NothingPending,
            Level::Debug,
            "everything was read".into(),
        );
    };
    let Some(user) = check.recipient else {
        return drop(
            SkipReason::UnknownRecipient,
            Level::Info,
            "the chat server has no such user".into(),
        );
    };
    if user.presence == Presence::Online {
        return drop(
            SkipReason::RecipientOnline,
            Level::Debug,
            "they will see the messages".into(),
        );
    }
    let to = match contact::from_metadata(&user.metadata) {
        Ok(to) => to,
        Err((reason, why)) => return drop(reason, Level::Info, why.into()),
    };
    if let Some(last) = check.conversation_history.last() {
        let cooldown_ends = last.saturating_add(settings.cooldown_ms());
        if now < cooldown_ends {
            return wait_until(cooldown_ends, Outcome::Deferred);
        }
    }
    let per_conversation = check.conversation_history.in_last_day(now) as u64;
    if per_conversation >= settings.conversation_sms_per_day {
        return drop(
            SkipReason::ConversationDailyLimit,
            Level::Warn,
            format!(
                "{unread} unread message(s) dropped: {per_conversation} SMS in this conversation in the last 24 h, the limit is {}",
                settings.conversation_sms_per_day
            ),
        );
    }
    let per_recipient = check.recipient_history.in_last_day(now) as u64;
    if per_recipient >= settings.recipient_sms_per_day {
        return drop(
            SkipReason::RecipientDailyLimit,
            Level::Warn,
            format!(
                "{unread} unread message(s) dropped: {per_recipient} SMS to this recipient in the last 24 h, the limit is {}",
                settings.recipient_sms_per_day
            ),
        );
    }
    let body = render::body(
        &Style {
            template: &settings.template,
            link: settings.website_url.as_deref(),
            include_text: settings.include_text,
            max_segments: settings.max_segments as usize,
        },
        &Notice {
            sender_name: check.sender_name,
            unread,
            latest_text,
        },
    );
    Delivery::Send {
        request: twilio::create_message(settings, &to, &body),
        to,
    }
}

/// Twilio answered (or did not) the request [`on_timer`] asked for. A sent
/// SMS is recorded in both histories, for the limits.
pub fn on_response(timer: &Timer, check: &Check<'_>, to: &str, response: &Response) -> Step {
    let Timer::Deliver {
        conversation,
        recipient,
    } = timer;
    let key = keys::pending(conversation, recipient);
    let unread = check.pending.unread();
    match twilio::classify(response) {
        Verdict::Accepted { sid } => {
            let mut per_conversation = check.conversation_history.clone();
            per_conversation.record(check.now, MAX_CONVERSATION_SMS_PER_DAY as usize);
            let mut per_recipient = check.recipient_history.clone();
            per_recipient.record(check.now, MAX_RECIPIENT_SMS_PER_DAY as usize);
            Step::new(Ok(Outcome::Sent {
                conversation: conversation.clone(),
                recipient: recipient.clone(),
                sid: sid.clone(),
                unread,
            }))
            .effect(Effect::Put {
                key: keys::conversation_history(conversation, recipient),
                value: per_conversation.encode(),
            })
            .effect(Effect::Put {
                key: keys::recipient_history(recipient),
                value: per_recipient.encode(),
            })
            .effect(Effect::Delete { key })
            .log(
                Level::Info,
                format!(
                    "sent SMS {sid} to {} about {unread} unread message(s) in {conversation:?}",
                    contact::mask(to)
                ),
            )
        }
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
    use crate::history::DAY_MS;
    use crate::settings::{Secret, Sender};

    fn settings() -> Settings {
        Settings::new(
            "AC0123456789abcdef0123456789abcdef",
            Secret::new("s3cret"),
            Sender::Number("+14155552671".into()),
        )
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

    /// A due check at `now` with `history` for both limits.
    fn due<'a>(
        now: Millis,
        settings: &'a Settings,
        pending: &'a Pending,
        user: Option<&'a User>,
        history: &'a History,
    ) -> Delivery {
        on_timer(
            &timer(),
            &Check {
                now,
                settings,
                pending,
                recipient: user,
                sender_name: "Alice",
                conversation_history: history,
                recipient_history: history,
            },
        )
    }

    fn skipped(delivery: &Delivery) -> Option<SkipReason> {
        match delivery {
            Delivery::Done(Step {
                result: Ok(Outcome::Skipped(reason)),
                ..
            }) => Some(*reason),
            _ => None,
        }
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
        let s = settings();
        let pending = stored(&on_message(&s, &message("m1", 0), None));
        let none = History::default();
        let online = bob(Presence::Online);
        assert_eq!(
            skipped(&due(60_000, &s, &pending, Some(&online), &none)),
            Some(SkipReason::RecipientOnline)
        );
        let mut no_number = bob(Presence::Offline);
        no_number.metadata = "{}".into();
        assert_eq!(
            skipped(&due(60_000, &s, &pending, Some(&no_number), &none)),
            Some(SkipReason::NoContactNumber)
        );
        assert_eq!(
            skipped(&due(60_000, &s, &pending, None, &none)),
            Some(SkipReason::UnknownRecipient)
        );
        let offline = bob(Presence::Offline);
        let Delivery::Send { request, to } = due(60_000, &s, &pending, Some(&offline), &none)
        else {
            panic!("expected a send");
        };
        assert_eq!(to, "+12345678910");
        assert!(
            request
                .body
                .contains("Body=1+new+message+from+Alice%3A+text+m1"),
            "{}",
            request.body
        );
    }

    #[test]
    fn early_timer_waits() {
        let s = settings();
        let pending = stored(&on_message(&s, &message("m1", 0), None));
        let offline = bob(Presence::Offline);
        let Delivery::Done(step) = due(59_999, &s, &pending, Some(&offline), &History::default())
        else {
            panic!("must not send early")
        };
        assert!(step.effects.contains(&Effect::SetTimer {
            key: timer().key(),
            due_at: 60_000
        }));
    }

    #[test]
    fn a_cooldown_defers_to_its_end() {
        let s = settings();
        let pending = stored(&on_message(&s, &message("m1", 0), None));
        let offline = bob(Presence::Offline);
        let history = History { sent: vec![10_000] };
        let ends = 10_000 + s.cooldown_ms();
        let Delivery::Done(step) = due(60_000, &s, &pending, Some(&offline), &history) else {
            panic!("must wait for the cooldown")
        };
        assert!(matches!(&step.result, Ok(Outcome::Deferred(p)) if p.due_at == ends));
        assert!(step.effects.contains(&Effect::SetTimer {
            key: timer().key(),
            due_at: ends
        }));
        let moved = stored(&step);
        let Delivery::Send { .. } = due(ends, &s, &moved, Some(&offline), &history) else {
            panic!("sends when the cooldown ends")
        };
    }

    #[test]
    fn daily_limits_drop_with_a_reason() {
        let mut s = settings();
        s.cooldown_minutes = 0;
        let pending = stored(&on_message(&s, &message("m1", 0), None));
        let offline = bob(Presence::Offline);
        let two = History { sent: vec![1, 2] };
        let delivery = due(60_000, &s, &pending, Some(&offline), &two);
        assert_eq!(skipped(&delivery), Some(SkipReason::ConversationDailyLimit));
        let Delivery::Done(step) = delivery else {
            unreachable!()
        };
        assert!(step.effects.iter().any(
            |e| matches!(e, Effect::Log { level: Level::Warn, line } if line.contains("limit is 2"))
        ));
        // A day later the window is free again.
        assert!(matches!(
            due(DAY_MS + 2, &s, &pending, Some(&offline), &two),
            Delivery::Send { .. }
        ));
        s.conversation_sms_per_day = 100;
        s.recipient_sms_per_day = 2;
        assert_eq!(
            skipped(&due(60_000, &s, &pending, Some(&offline), &two)),
            Some(SkipReason::RecipientDailyLimit)
        );
    }

    #[test]
    fn response_decides_sent_or_error_and_never_logs_the_number() {
        let s = settings();
        let pending = stored(&on_message(&s, &message("m1", 0), None));
        let none = History::default();
        let check = Check {
            now: 60_000,
            settings: &s,
            pending: &pending,
            recipient: None,
            sender_name: "Alice",
            conversation_history: &none,
            recipient_history: &none,
        };
        let ok = Response::Http {
            status: 201,
            body: br#"{"sid":"SM1"}"#.to_vec(),
        };
        let step = on_response(&timer(), &check, "+12345678910", &ok);
        assert!(matches!(&step.result, Ok(Outcome::Sent { sid, unread: 1, .. }) if sid == "SM1"));
        let recorded = History { sent: vec![60_000] }.encode();
        assert!(step.effects.contains(&Effect::Put {
            key: keys::conversation_history("c1", "bob"),
            value: recorded.clone()
        }));
        assert!(step.effects.contains(&Effect::Put {
            key: keys::recipient_history("bob"),
            value: recorded
        }));
        let bad = Response::Http {
            status: 400,
            body: br#"{"code":21211,"message":"Invalid"}"#.to_vec(),
        };
        let step = on_response(&timer(), &check, "+12345678910", &bad);
        assert!(matches!(&step.result, Err(Error::Twilio(e)) if e.code == Some(21211)));
        for effect in &step.effects {
            if let Effect::Log { line, .. } = effect {
                assert!(!line.contains("+12345678910"), "{line}");
            }
        }
    }
}
