//! The imperative shell's sequencing, independent of WIT: load what the core
//! needs through a [`Host`], call the core, commit its changes and write its
//! log lines. It makes no product decision. The component's glue implements
//! [`Host`] with the WIT imports; native tests and benchmarks implement it in
//! memory.

use crate::prelude::*;

use crate::calls::deliver::{self, Check, Delivery};
use crate::calls::notify;
use crate::calls::preview;
use crate::calls::status;
use crate::model::{
    Change, Decision, Deletion, Error, Level, Message, Millis, Outcome, Problem, Receipt,
    SkipReason, User,
};
use crate::policy::quiet;
use crate::policy::settings::{self, Settings};
use crate::state::conversation::Conversation;
use crate::state::history::History;
use crate::state::keys;
use crate::state::pause::Pause;
use crate::state::record::{Record, Stored};
use crate::state::suppression::Suppression;
use crate::state::timer::Timer;
use crate::state::v020::{self, Found};
use crate::twilio::{Request, Response};
use alloc::rc::Rc;

/// What the chat server provides, as the core's types.
pub trait Host {
    fn settings(&mut self) -> Option<String>;
    /// Changes whenever the settings are saved.
    fn settings_revision(&mut self) -> u64;
    /// What the component remembers between calls (derived data only).
    fn cache(&mut self) -> &mut Cache;
    fn user(&mut self, uid: &str) -> Option<User>;
    fn state_get(&mut self, key: &str) -> Option<Vec<u8>>;
    /// Applies changes to state and timers, in order and all or none.
    fn commit(&mut self, changes: Vec<Change>) -> Result<(), String>;
    fn log(&mut self, level: Level, line: &str);
    /// The current time.
    fn now(&mut self) -> Millis;
    /// Sends a request to Twilio and waits for the answer.
    fn send(&mut self, request: &Request) -> Response;
    /// The UTC offset of the IANA zone `zone` at `at`, in seconds east;
    /// `None` for a zone the host does not know.
    fn utc_offset(&mut self, zone: &str, at: Millis) -> Option<i32>;
}

/// Parses and validates settings, the time zone against the host's.
fn parse_settings(host: &mut impl Host, json: &str) -> Result<Settings, Vec<Problem>> {
    let settings = settings::parse(json)?;
    let now = host.now();
    quiet::check_zone(&settings, |zone| host.utc_offset(zone, now).is_some())?;
    Ok(settings)
}

pub fn validate_settings(host: &mut impl Host, json: &str) -> Result<(), Vec<Problem>> {
    parse_settings(host, json).map(|_| ())
}

pub fn preview(
    host: &mut impl Host,
    json: &str,
    sample: &preview::Sample,
) -> Result<preview::Preview, Vec<Problem>> {
    let settings = parse_settings(host, json)?;
    Ok(preview::preview(&settings, sample))
}

pub fn on_delivery_status(host: &mut impl Host, report: &status::Report) -> Result<Outcome, Error> {
    let (_, settings) = load_settings(host)?;
    status::authenticate(borrow(&settings), report)?;
    let uid = status::recipient(report);
    let (history, suppression) = match &uid {
        Some(uid) => (history(host, uid), suppression(host, uid)),
        None => (None, None),
    };
    apply(
        host,
        status::on_report(report, uid.as_deref(), &history, &suppression),
    )
}

type Parsed = Result<Rc<Settings>, Vec<Problem>>;

fn borrow(parsed: &Parsed) -> Result<&Settings, &[Problem]> {
    parsed.as_deref().map_err(Vec::as_slice)
}

pub fn on_message(host: &mut impl Host, message: &Message) -> Result<Outcome, Error> {
    notify::check_message(message)?;
    if let Err(reason) = notify::admit(message) {
        return Ok(Outcome::Skipped(reason));
    }
    let (_, settings) = load_settings(host)?;
    let conversation = load_conversation(host, &message.conversation, &message.receiver)?;
    let now = host.now();
    apply(
        host,
        notify::on_message(borrow(&settings), message, conversation, now),
    )
}

pub fn on_read(host: &mut impl Host, receipt: &Receipt) -> Result<Outcome, Error> {
    notify::check_receipt(receipt)?;
    // A new revision may lift a pause before the receipt is decided.
    let _ = load_settings(host)?;
    let conversation = load_conversation(host, &receipt.conversation, &receipt.reader)?;
    apply(host, notify::on_read(receipt, conversation))
}

pub fn on_edit(host: &mut impl Host, message: &Message) -> Result<Outcome, Error> {
    notify::check_message(message)?;
    if let Err(reason) = notify::admit(message) {
        return Ok(Outcome::Skipped(reason));
    }
    let _ = load_settings(host)?;
    let conversation = load_conversation(host, &message.conversation, &message.receiver)?;
    apply(host, notify::on_edit(message, conversation))
}

pub fn on_delete(host: &mut impl Host, deletion: &Deletion) -> Result<Outcome, Error> {
    notify::check_deletion(deletion)?;
    let _ = load_settings(host)?;
    // Whom the message was to is in the record: a 0.2.0 conversation (no
    // record yet) is converted by the next event that names its recipient.
    let conversation = load_conversation(host, &deletion.conversation, "")?;
    apply(host, notify::on_delete(deletion, conversation))
}

pub fn on_timer(host: &mut impl Host, key: &str) -> Result<Outcome, Error> {
    let Some(timer) = Timer::parse(key) else {
        return Ok(Outcome::Skipped(SkipReason::UnknownTimer));
    };
    let (id, recipient) = match &timer {
        Timer::Deliver {
            conversation,
            recipient,
        } => (conversation, recipient),
        Timer::Expire { conversation } => return expire(host, conversation),
    };
    let Some(conversation) = load_conversation(host, id, recipient)? else {
        return Ok(Outcome::Skipped(SkipReason::NothingPending));
    };
    let Some(p) = conversation
        .index_of(recipient)
        .filter(|&p| conversation.participants[p].due_at.is_some())
    else {
        return Ok(Outcome::Skipped(SkipReason::NothingPending));
    };
    let (revision, settings) = load_settings(host)?;
    let user = host.user(recipient);
    let sender = conversation
        .other(p)
        .and_then(|other| host.user(&other.uid));
    let recipient_history = history(host, recipient);
    let suppression = suppression(host, recipient);
    let pause = pause(host);
    let now = host.now();
    let quiet = match (&settings, &user) {
        (Ok(settings), Some(user)) if settings.quiet_hours.is_some() => {
            quiet::check(settings, recipient, &user.metadata, now, |zone, at| {
                host.utc_offset(zone, at)
            })
        }
        _ => quiet::Verdict::default(),
    };
    if let Some(note) = &quiet.note {
        host.log(note.level, &note.line);
    }
    let check = Check {
        quiet_until: quiet.until,
        now,
        settings: borrow(&settings),
        revision,
        conversation: &conversation,
        recipient: user.as_ref(),
        sender: sender.as_ref(),
        recipient_history: &recipient_history,
        suppression: &suppression,
        pause: &pause,
    };
    match deliver::on_timer(&timer, &check) {
        Delivery::Done(step) => apply(host, step),
        Delivery::Send {
            before,
            request,
            to,
        } => {
            // The attempt is on record before the request leaves; if that
            // write fails, nothing is sent.
            commit(host, before)?;
            let response = host.send(&request);
            let settings = check
                .settings
                .map_err(|_| Error::Host("settings vanished during a send".into()))?;
            apply(
                host,
                deliver::on_response(&timer, &check, settings, &to, &response),
            )
        }
    }
}

/// A conversation's expiry timer: its record and its participants' send
/// histories, for the core to decide.
fn expire(host: &mut impl Host, id: &str) -> Result<Outcome, Error> {
    let conversation = load_conversation(host, id, "")?;
    let mut histories = Vec::new();
    for p in conversation.iter().flat_map(|c| &c.participants) {
        histories.push((p.uid.clone(), history(host, &p.uid)));
    }
    let now = host.now();
    apply(
        host,
        crate::calls::expiry::on_timer(id, conversation, &histories, now),
    )
}

/// `uid`'s send history (the per-recipient cap, recent SMS).
#[inline(never)]
fn history(host: &mut impl Host, uid: &str) -> Stored<History> {
    History::load(host.state_get(&keys::recipient_history(uid)).as_deref())
}

/// The numbers not to text for `uid`.
#[inline(never)]
fn suppression(host: &mut impl Host, uid: &str) -> Stored<Suppression> {
    Suppression::load(host.state_get(&keys::suppression(uid)).as_deref())
}

/// The tenant's pause. (Loaders are kept out of line: inlined, each call
/// site would carry its own copy of the decoder.)
#[inline(never)]
fn pause(host: &mut impl Host) -> Stored<Pause> {
    Pause::load(host.state_get(&keys::pause()).as_deref())
}

/// What an instance remembers between calls: derived data only, so a
/// recycled instance simply starts again with an empty one.
#[derive(Default)]
pub struct Cache {
    /// The settings last read, parsed, with their revision. Reading and
    /// parsing them (template, numbers, URLs) costs more than the rest of
    /// an event, and they rarely change.
    settings: Option<(u64, Parsed)>,
}

/// The settings' revision and the settings, or their problems. When the
/// revision is one this instance has not seen, a pause taken under another
/// revision is lifted first (its waiting timers come due at once), in a
/// commit of its own.
fn load_settings(host: &mut impl Host) -> Result<(u64, Parsed), Error> {
    let revision = host.settings_revision();
    if let Some((seen, parsed)) = &host.cache().settings
        && *seen == revision
    {
        return Ok((revision, parsed.clone()));
    }
    let parsed = match host.settings() {
        Some(json) => parse_settings(host, &json).map(Rc::new),
        None => Err(vec![Problem {
            field: String::new(),
            message: "the tenant has not saved settings for this extension".into(),
        }]),
    };
    if let Some(Ok(pause)) = pause(host) {
        let now = host.now();
        if let Some(step) = crate::state::pause::on_new_revision(&pause, revision, now) {
            execute(host, step.changes, step.logs)?;
        }
    }
    host.cache().settings = Some((revision, parsed.clone()));
    Ok((revision, parsed))
}

/// The conversation record, made current first (a 0.2.0 layout converted,
/// unreadable bytes kept aside) in a commit of its own. When the record is
/// missing, the 0.2.0 pending notification of `uid` (the participant the
/// event concerns) is looked for, and its sends only if it exists: one
/// extra get on a conversation's first event.
fn load_conversation(
    host: &mut impl Host,
    id: &str,
    uid: &str,
) -> Result<Option<Conversation>, Error> {
    let bytes = host.state_get(&keys::conversation(id));
    let mut old = None;
    if bytes.is_none() {
        let keys = [keys::legacy_pending(id, uid), keys::legacy_history(id, uid)];
        if let Some(pending) = host.state_get(&keys[0]) {
            let history = host.state_get(&keys[1]);
            old = Some((pending, history, keys));
        }
    }
    let found: Vec<(Found<'_>, [String; 2])> = old
        .iter()
        .map(|(pending, history, keys)| {
            (
                Found {
                    uid,
                    pending: Some(pending.as_slice()),
                    history: history.as_deref(),
                },
                keys.clone(),
            )
        })
        .collect();
    let (conversation, step) = v020::load(id, bytes.as_deref(), &found);
    execute(host, step.changes, step.logs)?;
    Ok(conversation)
}

fn commit(host: &mut impl Host, changes: Vec<Change>) -> Result<(), Error> {
    if changes.is_empty() {
        return Ok(());
    }
    host.commit(changes)
        .map_err(|why| Error::Host(format!("the host refused to store the changes: {why}")))
}

/// Commits the changes, then writes the log lines. A refused commit becomes
/// the call's error, with nothing changed and nothing logged: the log tells
/// only what was recorded.
fn execute(
    host: &mut impl Host,
    changes: Vec<Change>,
    logs: Vec<crate::model::Log>,
) -> Result<(), Error> {
    commit(host, changes)?;
    for log in logs {
        host.log(log.level, &log.line);
    }
    Ok(())
}

/// Executes a step, then returns its result.
fn apply(host: &mut impl Host, step: Decision) -> Result<Outcome, Error> {
    let Decision {
        result,
        changes,
        logs,
    } = step;
    execute(host, changes, logs)?;
    result.expect("every step has a result")
}
