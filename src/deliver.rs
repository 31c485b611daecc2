//! Delivery: what happens when a notification's timer comes due, and what
//! Twilio's answer means. Pure, like [`crate::notify`]: the records come in,
//! a [`Step`] (or a request to send) goes out.
//!
//! At most once: before a request leaves, the notification is stored with
//! `in_flight` set; the answer clears it. A call cut off in between (a trap,
//! a recycled instance, a host that replays the call or fires the timer
//! again) finds the flag set and gives the notification up rather than
//! risk a second SMS, since Twilio may already have the first.

use crate::prelude::*;

use crate::contact;
use crate::history::History;
use crate::keys;
use crate::model::{
    Effect, Level, Millis, Outcome, PendingSummary, Presence, SkipReason, TwilioError, User,
};
use crate::notify::Step;
use crate::pause::{COOL_OFF_MS, Pause};
use crate::pending::Pending;
use crate::record::Record;
use crate::render::{self, Notice, Style};
use crate::settings::{MAX_CONVERSATION_SMS_PER_DAY, MAX_RECIPIENT_SMS_PER_DAY, Settings};
use crate::suppression::{Suppression, Why};
use crate::timer::Timer;
use crate::twilio::{self, Request, Response, Verdict};

/// First retry after this long; each further one waits twice as long.
pub const RETRY_BASE_MS: Millis = 30_000;
/// No retry waits longer than this (a `Retry-After` may ask for more).
pub const RETRY_CAP_MS: Millis = 30 * 60 * 1000;

/// What to do when a delivery timer comes due.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing to send now: the step says why.
    Done(Step),
    /// Execute `before` (it marks the attempt in flight), send `request`,
    /// then pass the answer to [`on_response`].
    Send {
        before: Vec<Effect>,
        request: Request,
        to: String,
    },
}

/// Everything a due notification is decided on, fresh from the host.
pub struct Check<'a> {
    pub now: Millis,
    pub settings: &'a Settings,
    pub pending: &'a Pending,
    /// The recipient as they are now; `None` if the chat server has no
    /// such user.
    pub recipient: Option<&'a User>,
    /// Who wrote the latest message, as they are now (for their name).
    pub sender: Option<&'a User>,
    /// SMS sent lately in this conversation to this recipient.
    pub conversation_history: &'a History,
    /// SMS sent lately to this recipient in any conversation.
    pub recipient_history: &'a History,
    /// Whether the recipient's number must not be texted.
    pub suppression: Option<&'a Suppression>,
    /// The tenant's pause, if its credentials were refused lately.
    pub pause: Option<&'a Pause>,
}

/// A delivery timer came due. The fresh records decide, in this order:
/// nothing cut off mid-send; something still unread; the recipient known,
/// offline, with a valid number nobody stopped; sending not paused (else
/// wait for the pause's end); the conversation's cooldown over (else wait
/// for its end); the daily limits not reached (else drop, with the reason
/// in the outcome and the log).
pub fn on_timer(timer: &Timer, check: &Check<'_>) -> Delivery {
    let Timer::Deliver {
        conversation,
        recipient: uid,
    } = timer;
    let (now, settings, pending) = (check.now, check.settings, check.pending);
    let key = keys::pending(conversation, uid);
    let done = Delivery::Done;
    let wait_until = |due_at: Millis, outcome: Outcome| {
        let mut pending = pending.clone();
        pending.due_at = due_at;
        Step::new(Ok(outcome))
            .effect(Effect::Put {
                key: key.clone(),
                value: pending.encode(),
            })
            .effect(Effect::SetTimer {
                key: timer.key(),
                due_at,
            })
    };
    let summary = |due_at| PendingSummary {
        conversation: conversation.clone(),
        recipient: uid.clone(),
        unread: pending.unread(),
        due_at,
    };
    if now < pending.due_at {
        // Fired early (a host's clock skew): wait for the real due time.
        return done(wait_until(
            pending.due_at,
            Outcome::Scheduled(summary(pending.due_at)),
        ));
    }
    if pending.in_flight {
        let error = TwilioError {
            status: 0,
            code: None,
            message: "an earlier attempt was cut off mid-send; not sent again, so the recipient never gets it twice".into(),
        };
        return done(give_up_logged(timer, pending.attempts, error, Level::Warn));
    }
    let drop = |reason: SkipReason, level: Level, detail: String| {
        done(
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
    let Some(latest_text) = pending.latest_text() else {
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
    if let Some(why) = check.suppression.and_then(|s| s.covers(&to)) {
        let (reason, said) = match why {
            Why::OptedOut => (SkipReason::OptedOut, "they replied STOP from this number"),
            Why::Undeliverable => (
                SkipReason::UndeliverableNumber,
                "Twilio cannot deliver to this number",
            ),
        };
        return drop(
            reason,
            Level::Info,
            format!("{said}; texting resumes at another number"),
        );
    }
    if let Some(pause) = check.pause.filter(|p| p.holds(now)) {
        return done(wait_until(
            pause.until,
            Outcome::Paused {
                conversation: conversation.clone(),
                recipient: uid.clone(),
                until: pause.until,
                error: pause.error.clone(),
            },
        ));
    }
    if let Some(last) = check.conversation_history.last() {
        let cooldown_ends = last.saturating_add(settings.cooldown_ms());
        if now < cooldown_ends {
            return done(wait_until(
                cooldown_ends,
                Outcome::Deferred(summary(cooldown_ends)),
            ));
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
            // Without a display name, the uid stands in.
            sender_name: check
                .sender
                .map(|u| u.name.as_str())
                .filter(|name| !name.trim().is_empty())
                .unwrap_or(&pending.sender),
            unread,
            latest_text,
        },
    );
    let mut attempt = pending.clone();
    attempt.attempts = attempt.attempts.saturating_add(1);
    attempt.in_flight = true;
    let before = vec![Effect::Put {
        key,
        value: attempt.encode(),
    }];
    Delivery::Send {
        before,
        request: twilio::create_message(settings, &to, &body),
        to,
    }
}

/// Twilio answered (or did not) the attempt [`on_timer`] asked for.
pub fn on_response(timer: &Timer, check: &Check<'_>, to: &str, response: &Response) -> Step {
    let Timer::Deliver {
        conversation,
        recipient,
    } = timer;
    let now = check.now;
    let key = keys::pending(conversation, recipient);
    let unread = check.pending.unread();
    let attempt = check.pending.attempts.saturating_add(1);
    let masked = contact::mask(to);
    match twilio::classify(response) {
        Verdict::Accepted { sid, status } => {
            let mut per_conversation = check.conversation_history.clone();
            per_conversation.record(now, MAX_CONVERSATION_SMS_PER_DAY as usize);
            let mut per_recipient = check.recipient_history.clone();
            per_recipient.record(now, MAX_RECIPIENT_SMS_PER_DAY as usize);
            let mut step = Step::new(Ok(Outcome::Sent {
                conversation: conversation.clone(),
                recipient: recipient.clone(),
                sid: sid.clone(),
                status: status.clone(),
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
            .effect(Effect::Delete { key });
            if check.pause.is_some() {
                step = step.effect(Effect::Delete { key: keys::pause() });
            }
            step.log(
                Level::Info,
                format!("sent SMS {sid} ({status}) to {masked} about {unread} unread message(s) in {conversation:?}, attempt {attempt}"),
            )
        }
        Verdict::Retry { error, after_ms } => {
            if u64::from(attempt) >= check.settings.max_attempts {
                return give_up_logged(timer, attempt, error, Level::Error);
            }
            let due_at = now.saturating_add(backoff(&key, attempt, after_ms));
            let mut pending = check.pending.clone();
            pending.attempts = attempt;
            pending.in_flight = false;
            pending.due_at = due_at;
            Step::new(Ok(Outcome::Retrying {
                conversation: conversation.clone(),
                recipient: recipient.clone(),
                attempt,
                due_at,
                error: error.clone(),
            }))
            .effect(Effect::Put {
                key,
                value: pending.encode(),
            })
            .effect(Effect::SetTimer {
                key: timer.key(),
                due_at,
            })
            .log(
                Level::Warn,
                format!(
                    "attempt {attempt} to text {masked} failed ({}); trying again in {} s",
                    describe(&error),
                    (due_at - now).div_ceil(1000)
                ),
            )
        }
        Verdict::OptedOut(error) => suppress(timer, check, to, Why::OptedOut, error),
        Verdict::Undeliverable(error) => suppress(timer, check, to, Why::Undeliverable, error),
        Verdict::Unauthorized(error) => {
            let until = now.saturating_add(COOL_OFF_MS);
            let mut pending = check.pending.clone();
            // Not the notification's fault: the attempt does not count.
            pending.in_flight = false;
            pending.due_at = until;
            let pause = Pause {
                until,
                error: error.clone(),
            };
            Step::new(Ok(Outcome::Paused {
                conversation: conversation.clone(),
                recipient: recipient.clone(),
                until,
                error: error.clone(),
            }))
            .effect(Effect::Put {
                key: keys::pause(),
                value: pause.encode(),
            })
            .effect(Effect::Put {
                key,
                value: pending.encode(),
            })
            .effect(Effect::SetTimer {
                key: timer.key(),
                due_at: until,
            })
            .log(
                Level::Error,
                format!(
                    "Twilio refused the tenant's credentials ({}): sending is paused for {} minutes; pending notifications are kept. Check twilioAccountSid and the auth token or API key.",
                    describe(&error),
                    COOL_OFF_MS / 60_000
                ),
            )
        }
        Verdict::Rejected(error) => give_up_logged(timer, attempt, error, Level::Error),
    }
}

/// The notification is given up: its record goes, the outcome says why.
fn give_up(timer: &Timer, attempts: u32, error: TwilioError) -> Step {
    let Timer::Deliver {
        conversation,
        recipient,
    } = timer;
    Step::new(Ok(Outcome::Failed {
        conversation: conversation.clone(),
        recipient: recipient.clone(),
        attempts,
        error,
    }))
    .effect(Effect::Delete {
        key: keys::pending(conversation, recipient),
    })
}

/// [`give_up`], with a log line saying so.
fn give_up_logged(timer: &Timer, attempts: u32, error: TwilioError, level: Level) -> Step {
    let Timer::Deliver {
        conversation,
        recipient,
    } = timer;
    let line = format!(
        "gave up the SMS for {recipient:?} in {conversation:?} after {attempts} attempt(s): {}",
        describe(&error)
    );
    give_up(timer, attempts, error).log(level, line)
}

/// Remembers that `to` must not be texted, and gives the notification up.
fn suppress(timer: &Timer, check: &Check<'_>, to: &str, why: Why, error: TwilioError) -> Step {
    let Timer::Deliver { recipient, .. } = timer;
    let record = check
        .suppression
        .cloned()
        .unwrap_or(Suppression { refused: vec![] })
        .with(to, why);
    let said = match why {
        Why::OptedOut => "replied STOP",
        Why::Undeliverable => "cannot receive SMS",
    };
    let line = format!(
        "{} {said} ({}): no more SMS to {recipient:?} at this number",
        contact::mask(to),
        describe(&error)
    );
    give_up(timer, check.pending.attempts.saturating_add(1), error)
        .effect(Effect::Put {
            key: keys::suppression(recipient),
            value: record.encode(),
        })
        .log(Level::Warn, line)
}

/// Exponential backoff with jitter: `RETRY_BASE_MS · 2^(attempt-1)`, capped,
/// then scaled into [50 %, 100 %] by a jitter derived from the key and the
/// attempt (deterministic: the core draws no random numbers), and never
/// sooner than Twilio's `Retry-After`.
pub fn backoff(key: &str, attempt: u32, retry_after_ms: Option<Millis>) -> Millis {
    let exponential = RETRY_BASE_MS.saturating_mul(1 << attempt.saturating_sub(1).min(20));
    let capped = exponential.min(RETRY_CAP_MS);
    let jitter = fnv1a(key.as_bytes(), attempt) % 1000;
    let jittered = capped / 2 + capped / 2 * jitter / 1000;
    jittered.max(retry_after_ms.unwrap_or(0))
}

fn fnv1a(bytes: &[u8], salt: u32) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes.iter().chain(&salt.to_le_bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn describe(error: &TwilioError) -> String {
    match (error.status, error.code) {
        (0, _) => error.message.clone(),
        (status, Some(code)) => format!("HTTP {status}, code {code}: {}", error.message),
        (status, None) => format!("HTTP {status}: {}", error.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::DAY_MS;
    use crate::notify::on_message;
    use crate::notify::tests::{message, settings, stored, timer};

    fn bob(presence: Presence) -> User {
        User {
            uid: "bob".into(),
            name: "Bob".into(),
            presence,
            metadata: r#"{"@private":{"contactNumber":"+12345678910"}}"#.into(),
        }
    }

    /// The records around one due check, with defaults for everything.
    struct World {
        now: Millis,
        settings: Settings,
        pending: Pending,
        user: Option<User>,
        alice: User,
        history: History,
        suppression: Option<Suppression>,
        pause: Option<Pause>,
    }

    impl World {
        fn new() -> Self {
            let settings = settings();
            let pending = stored(&on_message(&settings, &message("m1", 0), None));
            Self {
                now: 60_000,
                settings,
                pending,
                user: Some(bob(Presence::Offline)),
                alice: User {
                    uid: "alice".into(),
                    name: "Alice".into(),
                    presence: Presence::Online,
                    metadata: "{}".into(),
                },
                history: History { sent: vec![] },
                suppression: None,
                pause: None,
            }
        }

        fn check(&self) -> Check<'_> {
            Check {
                now: self.now,
                settings: &self.settings,
                pending: &self.pending,
                recipient: self.user.as_ref(),
                sender: Some(&self.alice),
                conversation_history: &self.history,
                recipient_history: &self.history,
                suppression: self.suppression.as_ref(),
                pause: self.pause.as_ref(),
            }
        }

        fn due(&self) -> Delivery {
            on_timer(&timer(), &self.check())
        }

        fn answer(&self, response: Response) -> Step {
            on_response(&timer(), &self.check(), "+12345678910", &response)
        }
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

    fn http(status: u16, body: &str) -> Response {
        Response::Http {
            status,
            body: body.as_bytes().to_vec(),
            retry_after: None,
        }
    }

    #[test]
    fn sends_only_to_an_offline_recipient_with_a_number() {
        let mut w = World::new();
        w.user = Some(bob(Presence::Online));
        assert_eq!(skipped(&w.due()), Some(SkipReason::RecipientOnline));
        let mut no_number = bob(Presence::Offline);
        no_number.metadata = "{}".into();
        w.user = Some(no_number);
        assert_eq!(skipped(&w.due()), Some(SkipReason::NoContactNumber));
        w.user = None;
        assert_eq!(skipped(&w.due()), Some(SkipReason::UnknownRecipient));
        w.user = Some(bob(Presence::Offline));
        let Delivery::Send {
            before,
            request,
            to,
        } = w.due()
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
        // The attempt is recorded as in flight before the request leaves.
        let marked = before
            .iter()
            .find_map(|e| match e {
                Effect::Put { value, .. } => Pending::decode(value),
                _ => None,
            })
            .unwrap();
        assert!(marked.in_flight);
        assert_eq!(marked.attempts, 1);
    }

    #[test]
    fn early_timer_waits() {
        let mut w = World::new();
        w.now = 59_999;
        let Delivery::Done(step) = w.due() else {
            panic!("must not send early")
        };
        assert!(step.effects.contains(&Effect::SetTimer {
            key: timer().key(),
            due_at: 60_000
        }));
    }

    #[test]
    fn a_cooldown_defers_to_its_end() {
        let mut w = World::new();
        w.history = History { sent: vec![10_000] };
        let ends = 10_000 + w.settings.cooldown_ms();
        let Delivery::Done(step) = w.due() else {
            panic!("must wait for the cooldown")
        };
        assert!(matches!(&step.result, Ok(Outcome::Deferred(p)) if p.due_at == ends));
        assert!(step.effects.contains(&Effect::SetTimer {
            key: timer().key(),
            due_at: ends
        }));
        w.pending = stored(&step);
        w.now = ends;
        assert!(matches!(w.due(), Delivery::Send { .. }));
    }

    #[test]
    fn daily_limits_drop_with_a_reason() {
        let mut w = World::new();
        w.settings.cooldown_minutes = 0;
        w.history = History { sent: vec![1, 2] };
        let delivery = w.due();
        assert_eq!(skipped(&delivery), Some(SkipReason::ConversationDailyLimit));
        let Delivery::Done(step) = delivery else {
            unreachable!()
        };
        assert!(step.effects.iter().any(
            |e| matches!(e, Effect::Log { level: Level::Warn, line } if line.contains("limit is 2"))
        ));
        w.now = DAY_MS + 2;
        assert!(matches!(w.due(), Delivery::Send { .. }));
        w.now = 60_000;
        w.settings.conversation_sms_per_day = 100;
        w.settings.recipient_sms_per_day = 2;
        assert_eq!(skipped(&w.due()), Some(SkipReason::RecipientDailyLimit));
    }

    #[test]
    fn success_records_both_histories_and_never_logs_the_number() {
        let w = World::new();
        let step = w.answer(http(201, r#"{"sid":"SM1","status":"queued"}"#));
        assert!(
            matches!(&step.result, Ok(Outcome::Sent { sid, status, unread: 1, .. }) if sid == "SM1" && status == "queued")
        );
        let recorded = History { sent: vec![60_000] }.encode();
        assert!(step.effects.contains(&Effect::Put {
            key: keys::conversation_history("c1", "bob"),
            value: recorded.clone()
        }));
        assert!(step.effects.contains(&Effect::Put {
            key: keys::recipient_history("bob"),
            value: recorded
        }));
        assert!(step.effects.contains(&Effect::Delete {
            key: keys::pending("c1", "bob")
        }));
        for effect in &step.effects {
            if let Effect::Log { line, .. } = effect {
                assert!(!line.contains("+12345678910"), "{line}");
            }
        }
    }

    #[test]
    fn retryable_failures_back_off_until_the_last_attempt() {
        let mut w = World::new();
        let step = w.answer(Response::Http {
            status: 429,
            body: br#"{"code":20429,"message":"Too Many Requests"}"#.to_vec(),
            retry_after: Some(600),
        });
        let Ok(Outcome::Retrying {
            attempt, due_at, ..
        }) = step.result
        else {
            panic!("{:?}", step.result)
        };
        assert_eq!(attempt, 1);
        assert_eq!(
            due_at,
            60_000 + 600_000,
            "Retry-After wins over a shorter backoff"
        );
        let kept = stored(&step);
        assert!(!kept.in_flight);
        assert_eq!(kept.attempts, 1);

        w.pending.attempts = 4;
        let last = w.answer(http(503, ""));
        assert!(
            matches!(&last.result, Ok(Outcome::Failed { attempts: 5, error, .. }) if error.status == 503)
        );
        assert!(last.effects.contains(&Effect::Delete {
            key: keys::pending("c1", "bob")
        }));
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        for attempt in 1..12 {
            let full = (RETRY_BASE_MS << (attempt - 1)).min(RETRY_CAP_MS);
            let got = backoff("k", attempt, None);
            assert!((full / 2..=full).contains(&got), "attempt {attempt}: {got}");
        }
        assert_ne!(
            backoff("a", 3, None),
            backoff("b", 3, None),
            "keys spread out"
        );
        assert_eq!(backoff("k", 1, Some(3_600_000)), 3_600_000);
    }

    #[test]
    fn stop_suppresses_that_number_for_good() {
        let mut w = World::new();
        let step = w.answer(http(
            400,
            r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient"}"#,
        ));
        assert!(
            matches!(&step.result, Ok(Outcome::Failed { error, .. }) if error.code == Some(21610))
        );
        let record = step
            .effects
            .iter()
            .find_map(|e| match e {
                Effect::Put { key, value } if *key == keys::suppression("bob") => {
                    Suppression::decode(value)
                }
                _ => None,
            })
            .expect("a suppression");
        w.suppression = Some(record);
        assert_eq!(skipped(&w.due()), Some(SkipReason::OptedOut));
        // A new number is texted; the refused one stays refused.
        let mut moved = bob(Presence::Offline);
        moved.metadata = r#"{"@private":{"contactNumber":"+12345670000"}}"#.into();
        w.user = Some(moved);
        assert!(
            matches!(w.due(), Delivery::Send { .. }),
            "a new number is texted"
        );
        w.user = Some(bob(Presence::Offline));
        assert_eq!(
            skipped(&w.due()),
            Some(SkipReason::OptedOut),
            "changing back does not lift a STOP"
        );
    }

    #[test]
    fn undeliverable_numbers_are_remembered() {
        let mut w = World::new();
        let step = w.answer(http(
            400,
            r#"{"code":21614,"message":"not a mobile number"}"#,
        ));
        let record = step
            .effects
            .iter()
            .find_map(|e| match e {
                Effect::Put { value, .. } => Suppression::decode(value),
                _ => None,
            })
            .unwrap();
        assert_eq!(record.covers("+12345678910"), Some(Why::Undeliverable));
        w.suppression = Some(record);
        assert_eq!(skipped(&w.due()), Some(SkipReason::UndeliverableNumber));
    }

    #[test]
    fn refused_credentials_pause_the_tenant_and_keep_the_notification() {
        let mut w = World::new();
        let step = w.answer(http(401, r#"{"code":20003,"message":"Authenticate"}"#));
        let until = 60_000 + COOL_OFF_MS;
        assert!(matches!(&step.result, Ok(Outcome::Paused { until: u, .. }) if *u == until));
        let logs = step
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::Log { .. }))
            .count();
        assert_eq!(logs, 1);
        let kept = stored(&step);
        assert_eq!(
            kept.attempts, 0,
            "a refused credential does not use up attempts"
        );
        assert_eq!(kept.due_at, until);
        // Another notification due during the pause waits, without a log line.
        w.pause = Some(Pause {
            until,
            error: TwilioError {
                status: 401,
                code: Some(20003),
                message: "Authenticate".into(),
            },
        });
        let Delivery::Done(waiting) = w.due() else {
            panic!("nothing is sent while paused")
        };
        assert!(matches!(waiting.result, Ok(Outcome::Paused { .. })));
        assert!(
            !waiting
                .effects
                .iter()
                .any(|e| matches!(e, Effect::Log { .. }))
        );
        // After the pause it is tried again; success lifts the pause.
        w.now = until;
        assert!(matches!(w.due(), Delivery::Send { .. }));
        let sent = w.answer(http(201, r#"{"sid":"SM2","status":"queued"}"#));
        assert!(
            sent.effects
                .contains(&Effect::Delete { key: keys::pause() })
        );
    }

    #[test]
    fn an_attempt_cut_off_mid_send_is_never_repeated() {
        let mut w = World::new();
        w.pending.in_flight = true;
        w.pending.attempts = 1;
        let Delivery::Done(step) = w.due() else {
            panic!("must not send again")
        };
        assert!(
            matches!(&step.result, Ok(Outcome::Failed { attempts: 1, error, .. }) if error.message.contains("cut off"))
        );
    }
}
