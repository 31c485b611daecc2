//! Scenario files: JSON Lines, one step per line, run against the real
//! component on the virtual clock. See the README for the format.
//!
//! Every line is parsed before anything runs, so a malformed step is
//! reported with its line number and nothing half-runs.

use crate::bindings::sms_notification::extension::types::{
    ConversationKind, Deletion, DeliveryReport, Message, MessageFormat, Receipt, Sample,
};
use crate::fake_twilio::{Answer, FakeTwilio};
use crate::json::{self, call_line, trap_line};
use crate::runtime::{MAX_FIRES, Runtime};
use crate::storage::{Presence, User};
use crate::test_runtime::TestRuntime;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// The tenant steps apply to until a `tenant` step picks another.
pub const DEFAULT_TENANT: &str = "default";

/// One step of a scenario.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Step {
    /// Later steps apply to this tenant (created on first use).
    Tenant(String),
    /// The app developer saves settings: validated, then stored as given.
    Settings(Value),
    /// Creates or replaces a user.
    User(UserStep),
    /// A message, sent at the current virtual time.
    Message(MessageStep),
    /// A read receipt, at the current virtual time.
    Read(ReadStep),
    /// A message edited: its id and new text (`on-edit`).
    Edit(MessageStep),
    /// A message deleted (`on-delete`).
    Delete(DeleteStep),
    /// Moves the clock forward this many seconds, firing due timers.
    Advance(u64),
    /// Scripts the fake Twilio's next answers to this tenant.
    Twilio(TwilioStep),
    /// Calls `on-timer` with this key now, as a host that delivers a timer
    /// twice (or a made-up key) would.
    Fire(String),
    /// The most state keys this tenant may keep (a chat server's quota);
    /// `null` lifts it. A commit past it is refused, all or none.
    Quota(Option<usize>),
    /// From now on, print the component's log lines (`true`) or not.
    Logs(bool),
    /// Moves the clock forward to this instant (RFC 3339, e.g.
    /// `2026-03-08T05:00:00Z`), firing due timers, as `advance` does.
    Time(String),
    /// Twilio's status callback for an SMS the fake Twilio took, signed
    /// with the tenant's `twilioAuthToken` unless told otherwise.
    Status(StatusStep),
    /// The SMS the component would send for a sample (`preview`).
    Preview(PreviewStep),
    /// Prints what the tenant's state holds (`inspect`).
    Inspect(bool),
    /// Prints the keys of the tenant's state and of its timers, as the
    /// host stores them (records that went are no longer listed).
    Keys(bool),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusStep {
    pub sid: String,
    pub status: String,
    #[serde(default)]
    pub error_code: Option<u32>,
    /// Sign with this token instead of the tenant's (a forger's).
    #[serde(default)]
    pub token: Option<String>,
    /// Parameters changed after signing (a replay with altered values).
    #[serde(default)]
    pub tamper: HashMap<String, String>,
    /// Send no signature at all.
    #[serde(default)]
    pub unsigned: bool,
    /// The URL Twilio calls; by default the `StatusCallback` the SMS was
    /// sent with (or the settings' `statusCallbackURL` for an SID the fake
    /// Twilio never issued).
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewStep {
    /// The settings to preview with; by default the tenant's saved ones.
    #[serde(default)]
    pub settings: Option<Value>,
    pub sender_name: String,
    pub text: String,
    #[serde(default = "one")]
    pub unread: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioStep {
    pub respond: Vec<Answer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserStep {
    pub uid: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "offline")]
    pub presence: PresenceStep,
    /// A JSON object, or a string passed as it is (to test bad metadata).
    #[serde(default)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStep {
    Online,
    Offline,
}

fn offline() -> PresenceStep {
    PresenceStep::Offline
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageStep {
    pub id: String,
    pub conversation: String,
    #[serde(default = "one_on_one")]
    pub kind: KindStep,
    #[serde(default = "text")]
    pub format: FormatStep,
    pub sender: String,
    pub receiver: String,
    #[serde(default)]
    pub text: String,
}

impl MessageStep {
    /// The message, sent at `now`.
    pub fn message(self, now: u64) -> Message {
        Message {
            id: self.id,
            conversation: self.conversation,
            kind: match self.kind {
                KindStep::OneOnOne => ConversationKind::OneOnOne,
                KindStep::Group => ConversationKind::Group,
            },
            format: match self.format {
                FormatStep::Text => MessageFormat::Text,
                FormatStep::Image => MessageFormat::Image,
                FormatStep::Video => MessageFormat::Video,
                FormatStep::Audio => MessageFormat::Audio,
                FormatStep::File => MessageFormat::File,
                FormatStep::Custom => MessageFormat::Custom,
            },
            sender: self.sender,
            receiver: self.receiver,
            text: self.text,
            sent_at: now,
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
pub enum KindStep {
    OneOnOne,
    Group,
}

fn one_on_one() -> KindStep {
    KindStep::OneOnOne
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum FormatStep {
    Text,
    Image,
    Video,
    Audio,
    File,
    Custom,
}

fn text() -> FormatStep {
    FormatStep::Text
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteStep {
    pub conversation: String,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadStep {
    pub conversation: String,
    pub reader: String,
    pub message: String,
}

/// A line that is not a valid step.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for Malformed {}

/// Parses a scenario: numbered steps, skipping blank lines and `#` comments.
pub fn parse(script: &str) -> Result<Vec<(usize, Step)>, Malformed> {
    script
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| {
            serde_json::from_str::<Step>(line)
                .map(|step| (n, step))
                .map_err(|e| Malformed {
                    line: n,
                    message: format!("not a scenario step: {e}"),
                })
        })
        .collect()
}

/// Runs parsed steps, handing each output line to `out` as it happens.
pub async fn run(
    runtime: &mut TestRuntime,
    steps: Vec<(usize, Step)>,
    out: &mut (dyn FnMut(Value) + Send),
) -> wasmtime::Result<()> {
    let mut runner = Runner::new(Some(runtime.traffic.clone()));
    for (_, step) in steps {
        runner.step(runtime, step, out).await?;
    }
    Ok(())
}

/// Runs steps one at a time, remembering the current tenant and which log
/// lines were printed.
#[derive(Default)]
pub struct Runner {
    tenant: Option<String>,
    logs: Logs,
}

/// What a status step needs of an SMS the fake Twilio took.
#[derive(Clone, Debug)]
struct Taken {
    callback: Option<String>,
    to: String,
    from: String,
}

impl Runner {
    /// A runner whose `twilio` steps script `twilio`, and which prints the
    /// SMS it took after each step (none: `twilio` steps are refused).
    pub fn new(twilio: Option<FakeTwilio>) -> Self {
        Self {
            tenant: None,
            logs: Logs {
                twilio,
                ..Logs::default()
            },
        }
    }

    /// The tenant steps apply to now.
    pub fn tenant(&self) -> &str {
        self.tenant.as_deref().unwrap_or(DEFAULT_TENANT)
    }

    /// Runs one step on `runtime` (the tenant's, for a host that has
    /// several).
    pub async fn step(
        &mut self,
        runtime: &mut Runtime,
        step: Step,
        out: &mut (dyn FnMut(Value) + Send),
    ) -> wasmtime::Result<()> {
        let tenant = self.tenant().to_owned();
        let logs = &mut self.logs;
        let now = runtime.clock.now();
        let storage = runtime.storage().clone();
        match step {
            Step::Tenant(name) => self.tenant = Some(name),
            Step::Quota(max) => storage.set_quota(&tenant, max).await?,
            Step::Logs(on) => {
                logs.on = on;
                logs.skip(runtime, &tenant).await?;
            }
            Step::Settings(settings) => {
                let text = settings.to_string();
                let result = runtime.validate_settings(&tenant, &text).await;
                storage.save_settings(&tenant, &text).await?;
                out(match result {
                    Ok(Ok(())) => {
                        json!({ "at": now, "call": "validate-settings", "outcome": "ok" })
                    }
                    Ok(Err(problems)) => json!({ "at": now, "call": "validate-settings",
                            "error": { "invalid-settings": json::problems(&problems) } }),
                    Err(trap) => trap_line(now, "validate-settings", &trap),
                });
            }
            Step::User(user) => {
                let metadata = match user.metadata {
                    None => "{}".to_owned(),
                    Some(Value::String(raw)) => raw,
                    Some(other) => other.to_string(),
                };
                let record = User {
                    name: user.name.unwrap_or_else(|| user.uid.clone()),
                    uid: user.uid.clone(),
                    presence: match user.presence {
                        PresenceStep::Online => Presence::Online,
                        PresenceStep::Offline => Presence::Offline,
                    },
                    metadata,
                };
                storage.put_user(&tenant, &record).await?;
            }
            Step::Message(m) => {
                let message = m.message(now);
                let result = runtime.on_message(&tenant, &message).await;
                out(call_line(now, "on-message", None, result));
            }
            Step::Edit(m) => {
                let message = m.message(now);
                let result = runtime.on_edit(&tenant, &message).await;
                out(call_line(now, "on-edit", None, result));
            }
            Step::Delete(d) => {
                let deletion = Deletion {
                    conversation: d.conversation,
                    message: d.message,
                    deleted_at: now,
                };
                let result = runtime.on_delete(&tenant, &deletion).await;
                out(call_line(now, "on-delete", None, result));
            }
            Step::Read(r) => {
                let receipt = Receipt {
                    conversation: r.conversation,
                    reader: r.reader,
                    message: r.message,
                    read_at: now,
                };
                let result = runtime.on_read(&tenant, &receipt).await;
                out(call_line(now, "on-read", None, result));
            }
            Step::Twilio(script) => match &logs.twilio {
                Some(twilio) => twilio.script(&tenant, script.respond),
                None => wasmtime::bail!(
                    "twilio steps script the fake Twilio, and this host sends elsewhere"
                ),
            },
            Step::Fire(key) => {
                let result = runtime.on_timer(&tenant, &key).await;
                out(call_line(now, "on-timer", Some(&key), result));
            }
            Step::Time(when) => {
                let instant: jiff::Timestamp = when
                    .parse()
                    .map_err(|e| wasmtime::format_err!("time {when:?}: {e}"))?;
                let target = u64::try_from(instant.as_millisecond())
                    .map_err(|_| wasmtime::format_err!("time {when:?} is before 1970"))?;
                if target < now {
                    wasmtime::bail!("time {when:?} is earlier than the clock ({now} ms)");
                }
                advance(runtime, logs, &tenant, target, out).await?;
            }
            Step::Status(step) => {
                let settings = storage.settings(&tenant).await?.0;
                let settings: Value = settings
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or(Value::Null);
                let taken = logs.taken.get(&step.sid).cloned();
                let url = step
                    .url
                    .clone()
                    .or_else(|| taken.as_ref().and_then(|t| t.callback.clone()))
                    .or_else(|| settings["statusCallbackURL"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let mut params = vec![
                    (
                        "AccountSid".to_owned(),
                        settings["twilioAccountSid"]
                            .as_str()
                            .unwrap_or("")
                            .to_owned(),
                    ),
                    ("ApiVersion".to_owned(), "2010-04-01".to_owned()),
                    ("MessageSid".to_owned(), step.sid.clone()),
                    ("MessageStatus".to_owned(), step.status.clone()),
                    ("SmsSid".to_owned(), step.sid.clone()),
                    ("SmsStatus".to_owned(), step.status.clone()),
                ];
                if let Some(t) = &taken {
                    params.push(("To".to_owned(), t.to.clone()));
                    params.push(("From".to_owned(), t.from.clone()));
                }
                if let Some(code) = step.error_code {
                    params.push(("ErrorCode".to_owned(), code.to_string()));
                }
                let token = step
                    .token
                    .clone()
                    .or_else(|| settings["twilioAuthToken"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                let signature = if step.unsigned {
                    String::new()
                } else {
                    crate::report::sign(&token, &url, &params)
                };
                for (name, value) in &step.tamper {
                    match params.iter_mut().find(|(n, _)| n == name) {
                        Some(p) => p.1 = value.clone(),
                        None => params.push((name.clone(), value.clone())),
                    }
                }
                let report = DeliveryReport {
                    url,
                    params,
                    signature,
                };
                let result = runtime.on_delivery_status(&tenant, &report).await;
                let mut line = call_line(now, "on-delivery-status", None, result);
                line["sid"] = Value::String(step.sid);
                out(line);
            }
            Step::Preview(step) => {
                let settings = match step.settings {
                    Some(v) => v.to_string(),
                    None => storage.settings(&tenant).await?.0.unwrap_or_default(),
                };
                let sample = Sample {
                    sender_name: step.sender_name,
                    text: step.text,
                    unread: step.unread,
                };
                out(match runtime.preview(&tenant, &settings, &sample).await {
                    Ok(Ok(p)) => {
                        json!({ "at": now, "call": "preview", "outcome": json::preview(&p) })
                    }
                    Ok(Err(problems)) => json!({ "at": now, "call": "preview",
                            "error": { "invalid-settings": json::problems(&problems) } }),
                    Err(trap) => trap_line(now, "preview", &trap),
                });
            }
            Step::Keys(_) => {
                let mut keys: Vec<String> = storage
                    .state_prefix(&tenant, "")
                    .await?
                    .into_iter()
                    .map(|(key, _)| key)
                    .collect();
                keys.sort();
                let mut timers = storage.timers(&tenant).await?;
                timers.sort();
                let timers: Vec<Value> = timers
                    .into_iter()
                    .map(|(key, due)| json!({ "key": key, "due_at": due }))
                    .collect();
                out(json!({ "at": now, "keys": keys, "timers": timers }));
            }
            Step::Inspect(_) => {
                out(match runtime.inspect(&tenant).await {
                    Ok(Some(i)) => {
                        json!({ "at": now, "call": "inspect", "outcome": json::inspection(&i) })
                    }
                    Ok(None) => {
                        json!({ "at": now, "call": "inspect", "error": "the component has no inspect" })
                    }
                    Err(trap) => trap_line(now, "inspect", &trap),
                });
            }
            Step::Advance(seconds) => {
                let target = now.saturating_add(seconds.saturating_mul(1000));
                advance(runtime, logs, &tenant, target, out).await?;
            }
        }
        logs.print(runtime, &tenant, out).await?;
        Ok(())
    }
}

/// Moves the clock to `target`, firing every timer due on the way.
async fn advance(
    runtime: &mut Runtime,
    logs: &mut Logs,
    tenant: &str,
    target: u64,
    out: &mut (dyn FnMut(Value) + Send),
) -> wasmtime::Result<()> {
    let mut fires = 0;
    while let Some(fired) = runtime.fire_next(target).await? {
        fires += 1;
        if fires > MAX_FIRES {
            wasmtime::bail!(
                "more than {MAX_FIRES} timers came due in one advance; a timer keeps re-arming"
            );
        }
        out(call_line(
            fired.at,
            "on-timer",
            Some(&fired.key),
            fired.result,
        ));
        logs.print(runtime, tenant, out).await?;
    }
    runtime.clock.set(target);
    Ok(())
}

/// The component's log lines printed so far (when `logs` is on) and the
/// SMS the fake Twilio received, printed after each call.
#[derive(Default)]
struct Logs {
    on: bool,
    /// Per tenant, the position of the last line printed or skipped.
    seen: HashMap<String, u64>,
    /// The SMS the fake Twilio took, by SID.
    taken: HashMap<String, Taken>,
    /// The fake Twilio, when requests go to it.
    twilio: Option<FakeTwilio>,
}

impl Logs {
    /// Skips the tenant's lines so far.
    async fn skip(&mut self, runtime: &mut Runtime, tenant: &str) -> wasmtime::Result<()> {
        let seen = self.seen.entry(tenant.to_owned()).or_default();
        while let Some((last, _)) = runtime.storage().logs(tenant, *seen, 1024).await?.pop() {
            *seen = last;
        }
        Ok(())
    }

    async fn print(
        &mut self,
        runtime: &mut Runtime,
        tenant: &str,
        out: &mut (dyn FnMut(Value) + Send),
    ) -> wasmtime::Result<()> {
        if self.on {
            let seen = self.seen.entry(tenant.to_owned()).or_default();
            loop {
                let lines = runtime.storage().logs(tenant, *seen, 1024).await?;
                let Some((last, _)) = lines.last() else { break };
                *seen = *last;
                for (_, line) in &lines {
                    out(json::log(line));
                }
            }
        }
        let taken = self.twilio.as_ref().map(FakeTwilio::take_sms);
        for sms in taken.unwrap_or_default() {
            if let Some(sid) = &sms.sid {
                let field = |name: &str| {
                    sms.form
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                };
                self.taken.insert(
                    sid.clone(),
                    Taken {
                        callback: field("StatusCallback"),
                        to: field("To").unwrap_or_default(),
                        from: field("From")
                            .or_else(|| field("MessagingServiceSid"))
                            .unwrap_or_default(),
                    },
                );
            }
            out(crate::fake_twilio::line(&sms));
        }
        Ok(())
    }
}

/// Parses and runs a whole script on `runtime`, returning the output lines.
pub async fn run_script(runtime: &mut TestRuntime, script: &str) -> wasmtime::Result<Vec<Value>> {
    let steps = parse(script)?;
    let mut lines = Vec::new();
    run(runtime, steps, &mut |line| lines.push(line)).await?;
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let script = "# a comment\n\n{\"advance\": 5}\n{\"advance\": \"soon\"}\n";
        let err = parse(script).unwrap_err();
        assert_eq!(err.line, 4);
        assert!(
            err.message.contains("not a scenario step"),
            "{}",
            err.message
        );
        assert!(parse("{\"dance\": 1}").is_err());
        assert!(parse("{\"message\": {\"id\":\"m\"}}").is_err());
    }

    #[test]
    fn defaults_fill_optional_fields() {
        let steps =
            parse(r#"{"message": {"id":"m1","conversation":"c","sender":"a","receiver":"b"}}"#)
                .unwrap();
        let Step::Message(m) = &steps[0].1 else {
            panic!("a message")
        };
        assert!(matches!(m.kind, KindStep::OneOnOne));
        assert!(matches!(m.format, FormatStep::Text));
    }
}
