//! The imperative shell's sequencing, independent of WIT: load what the core
//! needs through a [`Host`], call the core, execute its effects. It makes no
//! product decision. The component's glue implements [`Host`] with the WIT
//! imports; native tests and benchmarks implement it in memory.

use crate::prelude::*;

use crate::deliver::{self, Check, Delivery};
use crate::history::History;
use crate::keys;
use crate::model::{
    Effect, Error, Level, Message, Millis, Outcome, Problem, Receipt, SkipReason, User,
};
use crate::notify::{self, Step};
use crate::pause::Pause;
use crate::pending::Pending;
use crate::record::Record;
use crate::settings::{self, Settings};
use crate::suppression::Suppression;
use crate::timer::Timer;
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
    /// Applies changes to state and timers (every [`Effect`] but
    /// [`Effect::Log`]), in order and all or none.
    fn commit(&mut self, changes: Vec<Effect>) -> Result<(), String>;
    fn log(&mut self, level: Level, line: &str);
    /// The current time.
    fn now(&mut self) -> Millis;
    /// Sends a request to Twilio and waits for the answer.
    fn send(&mut self, request: &Request) -> Response;
}

pub fn validate_settings(json: &str) -> Result<(), Vec<Problem>> {
    settings::parse(json).map(|_| ())
}

pub fn on_message(host: &mut impl Host, message: &Message) -> Result<Outcome, Error> {
    notify::check_message(message)?;
    let settings = load_settings(host)?;
    let key = match notify::admit(message) {
        Ok(key) => key,
        Err(reason) => return Ok(Outcome::Skipped(reason)),
    };
    let pending = load_pending(host, &key);
    apply(host, notify::on_message(&settings, message, pending))
}

pub fn on_read(host: &mut impl Host, receipt: &Receipt) -> Result<Outcome, Error> {
    notify::check_receipt(receipt)?;
    let pending = load_pending(host, &keys::pending(&receipt.conversation, &receipt.reader));
    apply(host, notify::on_read(receipt, pending))
}

pub fn on_timer(host: &mut impl Host, key: &str) -> Result<Outcome, Error> {
    let Some(timer) = Timer::parse(key) else {
        return Ok(Outcome::Skipped(SkipReason::UnknownTimer));
    };
    let Timer::Deliver {
        conversation,
        recipient,
    } = &timer;
    let Some(pending) = load_pending(host, &keys::pending(conversation, recipient)) else {
        return Ok(Outcome::Skipped(SkipReason::NothingPending));
    };
    let settings = load_settings(host)?;
    let user = host.user(recipient);
    let sender = host.user(&pending.sender);
    let conversation_history = History::load(
        host.state_get(&keys::conversation_history(conversation, recipient))
            .as_deref(),
    );
    let recipient_history = History::load(
        host.state_get(&keys::recipient_history(recipient))
            .as_deref(),
    );
    let suppression = host
        .state_get(&keys::suppression(recipient))
        .and_then(|b| Suppression::decode(&b));
    let pause = host
        .state_get(&keys::pause())
        .and_then(|b| Pause::decode(&b));
    let check = Check {
        now: host.now(),
        settings: &settings,
        pending: &pending,
        recipient: user.as_ref(),
        sender: sender.as_ref(),
        conversation_history: &conversation_history,
        recipient_history: &recipient_history,
        suppression: suppression.as_ref(),
        pause: pause.as_ref(),
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
            execute(host, before)?;
            let response = host.send(&request);
            apply(host, deliver::on_response(&timer, &check, &to, &response))
        }
    }
}

type Parsed = Result<Rc<Settings>, Vec<Problem>>;

/// What an instance remembers between calls: derived data only, so a
/// recycled instance simply starts again with an empty one.
#[derive(Default)]
pub struct Cache {
    /// The settings last read, parsed, with their revision. Reading and
    /// parsing them (template, numbers, URLs) costs more than the rest of
    /// an event, and they rarely change.
    settings: Option<(u64, Parsed)>,
}

fn load_settings(host: &mut impl Host) -> Result<Rc<Settings>, Error> {
    let revision = host.settings_revision();
    let parsed = match &host.cache().settings {
        Some((seen, parsed)) if *seen == revision => parsed.clone(),
        _ => {
            let parsed = match host.settings() {
                Some(json) => settings::parse(&json).map(Rc::new),
                None => Err(vec![Problem {
                    field: String::new(),
                    message: "the tenant has not saved settings for this extension".into(),
                }]),
            };
            host.cache().settings = Some((revision, parsed.clone()));
            parsed
        }
    };
    parsed.map_err(Error::InvalidSettings)
}

fn load_pending(host: &mut impl Host, key: &str) -> Option<Pending> {
    host.state_get(key)
        .and_then(|bytes| Pending::decode(&bytes))
}

/// Executes effects: the changes to state and timers in one commit, then
/// the log lines. A refused commit becomes the call's error, with nothing
/// changed and nothing logged: the log tells only what was recorded.
fn execute(host: &mut impl Host, effects: Vec<Effect>) -> Result<(), Error> {
    let (logs, changes): (Vec<_>, Vec<_>) = effects
        .into_iter()
        .partition(|e| matches!(e, Effect::Log { .. }));
    if !changes.is_empty() {
        host.commit(changes)
            .map_err(|why| Error::Host(format!("the host refused to store the changes: {why}")))?;
    }
    for log in logs {
        if let Effect::Log { level, line } = log {
            host.log(level, &line);
        }
    }
    Ok(())
}

/// Executes a step's effects, then returns its result.
fn apply(host: &mut impl Host, step: Step) -> Result<Outcome, Error> {
    execute(host, step.effects)?;
    step.result
}
