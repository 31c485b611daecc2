//! Delivery: what happens when a notification's timer comes due, and what
//! Twilio's answer means. Pure, like [`crate::calls::notify`]: the records come in,
//! a [`Decision`] (or a request to send) goes out.
//!
//! At most once: before a request leaves, the participant's record is
//! stored with `in_flight` set to the last message the SMS covers; the
//! answer clears it. A call cut off in between (a trap, a recycled
//! instance, a host that replays the call or fires the timer again) finds
//! it set and settles those messages without sending again, since Twilio
//! may already have the SMS. Whatever arrived after the attempt began
//! stays pending as a notification of its own.
//!
//! Limits count every SMS Twilio may have taken: one sent, one whose answer
//! was lost or unreadable, one cut off mid-send. The count is reserved in
//! the same commit as the in-flight mark, before the request leaves, so no
//! other notification can slip past a limit while an answer is pending or
//! lost; an answer that says Twilio did not take it releases it.

use crate::prelude::*;

use crate::calls::notify::summary;
use crate::contact;
use crate::model::{
    Change, Decision, DeferReason, Error, Level, Millis, Outcome, PendingSummary, Presence,
    Problem, SkipReason, TwilioError, User,
};
use crate::policy::limits::MAX_RECIPIENT_SMS_PER_DAY;
use crate::policy::settings::Settings;
use crate::state::conversation::{Conversation, Held, MAX_SENT};
use crate::state::history::record_send;
use crate::state::history::{History, Send, in_last_day};
use crate::state::keys;
use crate::state::pause::{COOL_OFF_MS, Hold, Pause, Refusal};
use crate::state::record::{Record, Stored};
use crate::state::suppression::{Suppression, Why};
use crate::state::timer::Timer;
use crate::text::render::{self, Notice, Style};
use crate::twilio::redact;
use crate::twilio::{self, Request, Response, Verdict};

/// First retry after this long; each further one waits twice as long.
pub const RETRY_BASE_MS: Millis = 30_000;
/// No retry waits longer than this (a `Retry-After` may ask for up to
/// [`twilio::RETRY_AFTER_CAP_MS`]).
pub const RETRY_CAP_MS: Millis = 30 * 60 * 1000;
/// A notification due while the settings are invalid is tried again this
/// much later, until they are fixed: it never waits forever.
pub const INVALID_SETTINGS_RETRY_MS: Millis = 5 * 60 * 1000;

/// What to do when a delivery timer comes due.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Nothing to send now: the step says why.
    Done(Decision),
    /// Commit `before` (it marks the attempt in flight), send `request`,
    /// then pass the answer to [`on_response`].
    Send {
        before: Vec<Change>,
        request: Request,
        to: String,
    },
}

/// Everything a due notification is decided on, fresh from the host.
pub struct Check<'a> {
    pub now: Millis,
    /// The tenant's settings, or their problems.
    pub settings: Result<&'a Settings, &'a [Problem]>,
    /// The settings' revision: a pause taken under another one is lifted.
    pub revision: u64,
    pub conversation: &'a Conversation,
    /// The recipient as they are now; `None` if the chat server has no
    /// such user.
    pub recipient: Option<&'a User>,
    /// The other participant as they are now (for their name).
    pub sender: Option<&'a User>,
    /// SMS sent lately to this recipient in any conversation.
    pub recipient_history: &'a Stored<History>,
    /// Numbers of the recipient not to text.
    pub suppression: &'a Stored<Suppression>,
    /// The tenant's pause.
    pub pause: &'a Stored<Pause>,
    /// When the recipient's quiet hours end, if they are in them now (see
    /// [`crate::policy::quiet::check`]).
    pub quiet_until: Option<Millis>,
}

/// One participant's notification being decided.
struct Case<'a> {
    timer: &'a Timer,
    id: &'a str,
    uid: &'a str,
    check: &'a Check<'a>,
    c: Conversation,
    p: usize,
}

impl Case<'_> {
    fn now(&self) -> Millis {
        self.check.now
    }

    fn put(&self) -> Change {
        Change::Put {
            key: keys::conversation(self.id),
            value: self.c.encode(),
        }
    }

    fn set_timer(&self, due_at: Millis) -> Change {
        Change::SetTimer {
            key: self.timer.key(),
            due_at,
        }
    }

    fn summary(&self) -> PendingSummary {
        summary(self.id, &self.c, self.p)
    }

    /// The notification waits until `due_at`, then is decided again.
    fn wait(mut self, due_at: Millis, outcome: impl FnOnce(PendingSummary) -> Outcome) -> Decision {
        self.c.participants[self.p].due_at = Some(due_at);
        Decision::new(Ok(outcome(self.summary())))
            .change(self.put())
            .change(self.set_timer(due_at))
    }

    /// Settles everything up to `through` and ends the attempt; whatever
    /// arrived later stays pending, due one delay from now.
    fn settle(&mut self, through: u64, step: &mut Decision) {
        let now = self.now();
        let delay = match self.check.settings {
            Ok(s) => s.delay_ms(),
            Err(_) => INVALID_SETTINGS_RETRY_MS,
        };
        self.c.settle(self.p, through);
        let left = self.c.unread(self.p);
        let part = &mut self.c.participants[self.p];
        part.in_flight = 0;
        part.attempts = 0;
        part.held = Held::No;
        let due = (left > 0).then(|| now.saturating_add(delay));
        part.due_at = due;
        step.changes.push(self.put());
        if let Some(due) = due {
            step.changes.push(self.set_timer(due));
        }
    }

    /// The notification is dropped: everything unread is settled, the
    /// outcome and the log say why.
    fn drop(mut self, reason: SkipReason, level: Level, detail: &str) -> Decision {
        let mut step = Decision::skip(reason).log(
            level,
            format!(
                "no SMS for {:?} in {:?}: {} ({detail})",
                self.uid,
                self.id,
                reason.as_str()
            ),
        );
        let last = self.c.last_seq();
        self.settle(last, &mut step);
        step
    }

    /// Records an SMS Twilio took, or may have taken, for the limits; and,
    /// when Twilio accepted it, the SMS itself for its delivery reports.
    fn count_send(&mut self, step: &mut Decision, accepted: Option<Send>) {
        let now = self.now();
        record_send(&mut self.c.participants[self.p].sent, now, MAX_SENT);
        let mut history = recipient_history(self.check.recipient_history, now);
        history.record(now, MAX_RECIPIENT_SMS_PER_DAY as usize);
        if let Some(send) = accepted {
            history.keep(send);
        }
        step.changes.push(Change::Put {
            key: keys::recipient_history(self.uid),
            value: history.encode(),
        });
    }

    /// The attempt was not taken: the reservation made before the request
    /// left is released (the recipient's history as it was before).
    fn release(&self, step: &mut Decision) {
        let key = keys::recipient_history(self.uid);
        step.changes.push(match self.check.recipient_history {
            None => Change::Delete { key },
            Some(Ok(h)) => Change::Put {
                key,
                value: h.encode(),
            },
            // Unreadable before: the reservation stands in for it.
            Some(Err(_)) => return,
        });
    }

    /// Gives up the attempt covering everything up to `through`.
    fn give_up(
        mut self,
        through: u64,
        attempts: u32,
        error: TwilioError,
        // After an answer: whether Twilio may have taken it (the reservation
        // is kept and its time refreshed) or not (released). `None` before
        // any request of this call.
        maybe_sent: Option<bool>,
        level: Level,
    ) -> Decision {
        let line = format!(
            "gave up the SMS for {:?} in {:?} after {attempts} attempt(s): {}",
            self.uid,
            self.id,
            describe(&error)
        );
        let mut step = Decision::new(Ok(Outcome::Failed {
            conversation: self.id.to_owned(),
            recipient: self.uid.to_owned(),
            attempts,
            error,
        }))
        .log(level, line);
        match maybe_sent {
            Some(true) => self.count_send(&mut step, None),
            Some(false) => self.release(&mut step),
            None => {}
        }
        self.settle(through, &mut step);
        step
    }
}

/// The recipient's history for the limits. An unreadable one counts as an
/// SMS sent just now: the limits fail closed (at worst one SMS fewer).
fn recipient_history(stored: &Stored<History>, now: Millis) -> History {
    match stored {
        None => History::default(),
        Some(Ok(h)) => h.clone(),
        Some(Err(_)) => History {
            sent: vec![now],
            sends: Vec::new(),
        },
    }
}

/// A delivery timer came due. The fresh records decide, in this order:
/// due yet; nothing cut off mid-send; valid settings (else try again in
/// [`INVALID_SETTINGS_RETRY_MS`]); something still unread; the recipient
/// known, offline, with a valid number nobody stopped; sending not paused
/// (else wait for the pause's end); attempts left under `maxAttempts`; the
/// conversation's cooldown over (else wait for its end);
/// outside the recipient's quiet hours (else wait for their end); the daily
/// limits not reached (else drop, with the reason in the outcome and the
/// log).
pub fn on_timer(timer: &Timer, check: &Check<'_>) -> Delivery {
    let done = Delivery::Done;
    let Timer::Deliver {
        conversation: id,
        recipient: uid,
    } = timer
    else {
        return done(Decision::skip(SkipReason::NothingPending));
    };
    let Some(p) = check.conversation.index_of(uid) else {
        return done(Decision::skip(SkipReason::NothingPending));
    };
    let case = Case {
        timer,
        id,
        uid,
        check,
        c: check.conversation.clone(),
        p,
    };
    let part = &case.c.participants[p];
    let Some(due) = part.due_at else {
        return done(Decision::skip(SkipReason::NothingPending));
    };
    let now = check.now;
    let holding = match check.pause {
        Some(Ok(pause)) => pause.holding(now, check.revision).is_some(),
        _ => false,
    };
    // Fired early (a host's clock skew): wait for the real due time; unless
    // it waited for a pause that a settings change has lifted.
    let lifted = part.held == Held::Pause && !holding;
    if now < due && !lifted {
        return done(case.wait(due, Outcome::Scheduled));
    }
    if part.in_flight != 0 {
        let (through, attempts) = (part.in_flight, part.attempts);
        let error = TwilioError {
            status: 0,
            code: None,
            message: "an earlier attempt was cut off mid-send; not sent again, so the recipient never gets it twice".into(),
        };
        // Counted when the attempt began (its reservation stands).
        return done(case.give_up(through, attempts, error, None, Level::Warn));
    }
    let settings = match check.settings {
        Ok(settings) => settings,
        Err(problems) => {
            let again = now.saturating_add(INVALID_SETTINGS_RETRY_MS);
            let mut case = case;
            case.c.participants[p].held = Held::Settings;
            let mut step = case.wait(again, Outcome::Scheduled);
            step.result = Some(Err(Error::InvalidSettings(problems.to_vec())));
            return done(step.log(
                Level::Warn,
                format!(
                    "the settings are invalid; the SMS for {uid:?} in {id:?} is tried again in {} minutes",
                    INVALID_SETTINGS_RETRY_MS / 60_000
                ),
            ));
        }
    };
    let mut case = case;
    case.c.participants[p].held = Held::No;
    let part = &case.c.participants[p];
    let unread = case.c.unread(p);
    if unread == 0 {
        return done(case.drop(
            SkipReason::NothingPending,
            Level::Debug,
            "everything was read",
        ));
    }
    let Some(user) = check.recipient else {
        return done(case.drop(
            SkipReason::UnknownRecipient,
            Level::Info,
            "the chat server has no such user",
        ));
    };
    if user.presence == Presence::Online {
        return done(case.drop(
            SkipReason::RecipientOnline,
            Level::Debug,
            "they will see the messages",
        ));
    }
    let to = match contact::from_metadata(&user.metadata) {
        Ok(to) => to,
        Err((reason, why)) => return done(case.drop(reason, Level::Info, why)),
    };
    match check.suppression {
        Some(Err(why)) => {
            // Fail closed: a suppression that cannot be read means "do not
            // text", never "no suppression".
            let detail = format!(
                "its suppression record {:?} cannot be read ({}); not texted until an operator clears it",
                keys::suppression(uid),
                why.describe()
            );
            return done(case.drop(SkipReason::OptedOut, Level::Error, &detail));
        }
        Some(Ok(s)) => {
            if let Some(why) = s.covers(&to) {
                let (reason, said) = match why {
                    Why::OptedOut => (SkipReason::OptedOut, "they replied STOP from this number"),
                    Why::Undeliverable => (
                        SkipReason::UndeliverableNumber,
                        "Twilio cannot deliver to this number",
                    ),
                };
                let detail = format!("{said}; texting resumes at another number");
                return done(case.drop(reason, Level::Info, &detail));
            }
        }
        None => {}
    }
    match check.pause {
        Some(Err(why)) => {
            // Fail closed: keep the tenant paused, under a readable record.
            let hold = Hold {
                until: now.saturating_add(COOL_OFF_MS),
                revision: Some(check.revision),
                error: TwilioError {
                    status: 0,
                    code: None,
                    message: "the tenant's pause record could not be read".into(),
                },
                setting: "none (an operator should check the host's state)".into(),
                waiting: vec![timer.key()],
            };
            let line = format!(
                "the pause record {:?} cannot be read ({}): sending stays paused for {} minutes",
                keys::pause(),
                why.describe(),
                COOL_OFF_MS / 60_000
            );
            return done(pause(case, hold, None, line));
        }
        Some(Ok(pause)) => {
            if let Some(hold) = pause.holding(now, check.revision) {
                let until = hold.until;
                let error = hold.error.clone();
                let mut case = case;
                case.c.participants[p].held = Held::Pause;
                let mut step = case.wait(until, |s| Outcome::Paused {
                    conversation: s.conversation,
                    recipient: s.recipient,
                    until,
                    error,
                });
                // Remembered, so that a settings change re-arms it at once.
                let key = timer.key();
                if !hold.waiting.contains(&key)
                    && hold.waiting.len() < crate::state::pause::MAX_WAITING
                {
                    let mut record = pause.clone();
                    if let Some(h) = record.hold.as_mut() {
                        h.waiting.push(key);
                    }
                    step.changes.push(Change::Put {
                        key: keys::pause(),
                        value: record.encode(),
                    });
                }
                return done(step);
            }
        }
        None => {}
    }
    if u64::from(part.attempts) >= settings.max_attempts {
        let attempts = part.attempts;
        let error = TwilioError {
            status: 0,
            code: None,
            message: format!(
                "maxAttempts is now {}; {attempts} attempt(s) were made",
                settings.max_attempts
            ),
        };
        let last = case.c.last_seq();
        return done(case.give_up(last, attempts, error, None, Level::Warn));
    }
    if let Some(last) = part.sent.last() {
        let cooldown_ends = last.saturating_add(settings.cooldown_ms());
        if now < cooldown_ends {
            return done(case.wait(cooldown_ends, |s| {
                Outcome::Deferred(s, DeferReason::Cooldown)
            }));
        }
    }
    if let Some(until) = check.quiet_until {
        let line = format!("the SMS for {uid:?} in {id:?} waits for the end of their quiet hours");
        return done(
            case.wait(until, |s| Outcome::Deferred(s, DeferReason::QuietHours))
                .log(Level::Info, line),
        );
    }
    let per_conversation = in_last_day(&part.sent, now) as u64;
    if per_conversation >= settings.conversation_sms_per_day {
        let detail = format!(
            "{unread} unread message(s) dropped: {per_conversation} SMS in this conversation in the last 24 h, the limit is {}",
            settings.conversation_sms_per_day
        );
        return done(case.drop(SkipReason::ConversationDailyLimit, Level::Warn, &detail));
    }
    let per_recipient = recipient_history(check.recipient_history, now).in_last_day(now) as u64;
    if per_recipient >= settings.recipient_sms_per_day {
        let detail = format!(
            "{unread} unread message(s) dropped: {per_recipient} SMS to this recipient in the last 24 h, the limit is {}",
            settings.recipient_sms_per_day
        );
        return done(case.drop(SkipReason::RecipientDailyLimit, Level::Warn, &detail));
    }
    let other = case.c.other(p).map_or(uid.as_str(), |o| o.uid.as_str());
    let body = render::body(
        &Style {
            template: settings.template_for(&part.latest),
            link: settings.website_url.as_deref(),
            include_text: settings.include_text,
            max_segments: settings.max_segments as usize,
        },
        &Notice {
            sender_name: check
                .sender
                .map(|u| u.name.as_str())
                .filter(|name| !name.trim().is_empty())
                .unwrap_or(other),
            sender_uid: other,
            unread,
            latest_text: &part.latest,
            text_cut: part.latest_cut,
        },
    );
    // Counted for the limits before the request leaves: whatever happens
    // to the answer, this SMS may reach the recipient.
    let mut reserve = Decision::default();
    let mut attempt = case;
    attempt.count_send(&mut reserve, None);
    let last = attempt.c.last_seq();
    let part = &mut attempt.c.participants[p];
    part.attempts = part.attempts.saturating_add(1);
    part.in_flight = last;
    let mut before = vec![attempt.put()];
    before.extend(reserve.changes);
    Delivery::Send {
        before,
        request: twilio::create_message(settings, uid, &to, &body),
        to,
    }
}

/// The tenant's sending pauses under `hold`; the notification waits for
/// its end (its attempt does not count).
fn pause(mut case: Case<'_>, hold: Hold, last_refusal: Option<Refusal>, line: String) -> Decision {
    let until = hold.until;
    let error = hold.error.clone();
    let record = Pause {
        hold: Some(hold),
        last_refusal,
    };
    let part = &mut case.c.participants[case.p];
    part.in_flight = 0;
    part.held = Held::Pause;
    case.wait(until, |s| Outcome::Paused {
        conversation: s.conversation,
        recipient: s.recipient,
        until,
        error,
    })
    .change(Change::Put {
        key: keys::pause(),
        value: record.encode(),
    })
    .log(Level::Error, line)
}

/// Twilio answered (or did not) the attempt [`on_timer`] asked for.
/// `check` is the one `on_timer` decided on, with valid settings.
pub fn on_response(
    timer: &Timer,
    check: &Check<'_>,
    settings: &Settings,
    to: &str,
    response: &Response,
) -> Decision {
    let Timer::Deliver {
        conversation: id,
        recipient: uid,
    } = timer
    else {
        return Decision::skip(SkipReason::NothingPending);
    };
    let Some(p) = check.conversation.index_of(uid) else {
        return Decision::skip(SkipReason::NothingPending);
    };
    let mut case = Case {
        timer,
        id,
        uid,
        check,
        c: check.conversation.clone(),
        p,
    };
    let now = check.now;
    let through = case.c.last_seq();
    let unread = case.c.unread(p);
    let attempt = case.c.participants[p].attempts.saturating_add(1);
    let masked = contact::mask(to);
    let scrub = |mut e: TwilioError| {
        e.message = redact::scrub(&e.message, settings, Some(to));
        e
    };
    let stored_pause = match check.pause {
        Some(Ok(p)) => Some(p.clone()),
        _ => None,
    };
    match twilio::classify(response) {
        Verdict::Accepted { sid, status } => {
            let sid = redact::scrub(&sid, settings, Some(to));
            let status = redact::scrub(&status, settings, Some(to));
            let mut step = Decision::new(Ok(Outcome::Sent {
                conversation: id.clone(),
                recipient: uid.clone(),
                sid: sid.clone(),
                status: status.clone(),
                unread,
            }))
            .log(
                Level::Info,
                format!("sent SMS {sid} ({status}) to {masked} about {unread} unread message(s) in {id:?}, attempt {attempt}"),
            );
            let send = Send {
                sid,
                conversation: id.clone(),
                to: to.to_owned(),
                at: now,
                status,
                error_code: None,
            };
            case.count_send(&mut step, Some(send));
            case.settle(through, &mut step);
            if check.pause.is_some() {
                step.changes.push(Change::Delete { key: keys::pause() });
            }
            step
        }
        Verdict::Retry { error, after_ms } => {
            let error = scrub(error);
            if u64::from(attempt) >= settings.max_attempts {
                return case.give_up(through, attempt, error, Some(false), Level::Error);
            }
            let due_at = now.saturating_add(backoff(&timer.key(), attempt, after_ms));
            let mut released = Decision::default();
            case.release(&mut released);
            let part = &mut case.c.participants[p];
            part.attempts = attempt;
            part.in_flight = 0;
            let line = format!(
                "attempt {attempt} to text {masked} failed ({}); trying again in {} s",
                describe(&error),
                (due_at - now).div_ceil(1000)
            );
            let retry = |s: PendingSummary| Outcome::Retrying {
                conversation: s.conversation,
                recipient: s.recipient,
                attempt,
                due_at,
                error,
            };
            let mut step = case.wait(due_at, retry).log(Level::Warn, line);
            step.changes.extend(released.changes);
            step
        }
        Verdict::OptedOut(error) => {
            suppress(case, through, attempt, to, Why::OptedOut, scrub(error))
        }
        Verdict::Undeliverable(error) => {
            suppress(case, through, attempt, to, Why::Undeliverable, scrub(error))
        }
        Verdict::TenantWide { error, setting } => refused_by_tenant(case, scrub(error), setting),
        Verdict::Rejected { error, maybe_sent } => {
            let error = scrub(error);
            let repeated = match (error.code, &stored_pause) {
                (
                    Some(code),
                    Some(Pause {
                        last_refusal: Some(last),
                        ..
                    }),
                ) => !maybe_sent && last.code == code && last.recipient != *uid,
                _ => false,
            };
            if repeated {
                let setting = "the tenant's settings (the same refusal for two different recipients in a row)";
                return refused_by_tenant(case, error, setting);
            }
            let code = error.code;
            let mut step = case.give_up(through, attempt, error, Some(maybe_sent), Level::Error);
            if let (Some(code), false) = (code, maybe_sent) {
                let record = Pause {
                    hold: stored_pause.and_then(|p| p.hold),
                    last_refusal: Some(Refusal {
                        code,
                        recipient: uid.clone(),
                    }),
                };
                step.changes.push(Change::Put {
                    key: keys::pause(),
                    value: record.encode(),
                });
            }
            step
        }
    }
}

/// Twilio refused the tenant's own `setting`: sending pauses, the attempt's
/// count for the limits is released (it was not taken) and the
/// notification waits for the pause's end or a settings change.
fn refused_by_tenant(case: Case<'_>, error: TwilioError, setting: &str) -> Decision {
    let line = paused_line(&error, setting);
    let hold = Hold {
        until: case.now().saturating_add(COOL_OFF_MS),
        revision: Some(case.check.revision),
        error,
        setting: setting.to_owned(),
        waiting: vec![case.timer.key()],
    };
    let mut released = Decision::default();
    case.release(&mut released);
    let mut step = pause(case, hold, None, line);
    step.changes.extend(released.changes);
    step
}

fn paused_line(error: &TwilioError, setting: &str) -> String {
    format!(
        "Twilio refused the tenant's own settings ({}): sending is paused for {} minutes or until the settings change; pending notifications are kept. Check {setting}.",
        describe(error),
        COOL_OFF_MS / 60_000
    )
}

/// Remembers that `to` must not be texted, and gives the notification up.
fn suppress(
    case: Case<'_>,
    through: u64,
    attempt: u32,
    to: &str,
    why: Why,
    error: TwilioError,
) -> Decision {
    let uid = case.uid.to_owned();
    let record = match case.check.suppression {
        Some(Ok(s)) => s.clone(),
        _ => Suppression { refused: vec![] },
    }
    .with(to, why);
    let said = match why {
        Why::OptedOut => "replied STOP",
        Why::Undeliverable => "cannot receive SMS",
    };
    let line = format!(
        "{} {said} ({}): no more SMS to {uid:?} at this number",
        contact::mask(to),
        describe(&error)
    );
    case.give_up(through, attempt, error, Some(false), Level::Warn)
        .change(Change::Put {
            key: keys::suppression(&uid),
            value: record.encode(),
        })
        .log(Level::Warn, line)
}

/// Exponential backoff with jitter: `RETRY_BASE_MS · 2^(attempt-1)`, capped,
/// then scaled into [50 %, 100 %] by a jitter derived from the key and the
/// attempt (deterministic: the core draws no random numbers), and never
/// sooner than Twilio's `Retry-After` (itself capped at an hour).
pub fn backoff(key: &str, attempt: u32, retry_after_ms: Option<Millis>) -> Millis {
    let exponential = RETRY_BASE_MS.saturating_mul(1 << attempt.saturating_sub(1).min(20));
    let capped = exponential.min(RETRY_CAP_MS);
    let jitter = fnv1a(key.as_bytes(), attempt) % 1000;
    let jittered = capped / 2 + capped / 2 * jitter / 1000;
    jittered.max(retry_after_ms.unwrap_or(0).min(twilio::RETRY_AFTER_CAP_MS))
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
#[path = "deliver_tests.rs"]
mod tests;
