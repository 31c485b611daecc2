//! The demo: a short story told through the real component.
//!
//! Alice writes to Bob, who is offline; the delay passes on the virtual
//! clock and Twilio receives one SMS. Alice writes again; Bob reads it in
//! time, and no SMS goes out.

use crate::TestRuntime;
use crate::bindings::sms_notification::extension::types::{
    ConversationKind, Message, MessageFormat, Outcome, Receipt,
};
use crate::json;
use crate::outbound::Policy;
use crate::storage::{Presence, User};
use serde_json::json;
use std::io::Write;
use wasmtime::Result;

const TENANT: &str = "demo-app";
/// The demo's Twilio account: a well-formed SID, and a token that only the
/// fake Twilio ever sees.
const DEMO_ACCOUNT: &str = "ACdeadbeefdeadbeefdeadbeefdeadbeef";
const DEMO_TOKEN: &str = "demo-auth-token";
const DEMO_FROM: &str = "+15005550006";
const DEMO_TO: &str = "+14155552671";

/// Where and from whom the SMS goes.
pub struct Twilio {
    pub account_sid: String,
    pub auth_token: String,
    pub from: String,
    pub to: String,
    /// The real Twilio (else the fake).
    pub live: bool,
}

impl Twilio {
    /// The fake Twilio and made-up numbers.
    pub fn fake() -> Self {
        Self {
            account_sid: DEMO_ACCOUNT.into(),
            auth_token: DEMO_TOKEN.into(),
            from: DEMO_FROM.into(),
            to: DEMO_TO.into(),
            live: false,
        }
    }

    /// The real Twilio, from `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`,
    /// `TWILIO_FROM` and `SMS_TO`; the error names every one missing.
    pub fn live(env: impl Fn(&str) -> Option<String>) -> std::result::Result<Self, String> {
        let names = [
            "TWILIO_ACCOUNT_SID",
            "TWILIO_AUTH_TOKEN",
            "TWILIO_FROM",
            "SMS_TO",
        ];
        let values: Vec<Option<String>> = names
            .iter()
            .map(|name| env(name).filter(|v| !v.trim().is_empty()))
            .collect();
        let missing: Vec<&str> = names
            .iter()
            .zip(&values)
            .filter(|(_, v)| v.is_none())
            .map(|(name, _)| *name)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "--live sends one real SMS and needs these environment variables, which are not set: {}",
                missing.join(", ")
            ));
        }
        let mut values = values.into_iter().map(Option::unwrap);
        let mut next = || values.next().expect("four values");
        Ok(Self {
            account_sid: next(),
            auth_token: next(),
            from: next(),
            to: next(),
            live: true,
        })
    }
}

fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("[{:02}:{:02}]", s / 60, s % 60)
}

/// Tells the story to `out`. Fails if the component did not do what the
/// story says (so the demo doubles as a smoke test).
pub async fn story(out: &mut dyn Write, twilio: Twilio) -> Result<()> {
    let mut rt = match twilio.live {
        true => {
            TestRuntime::with_policy(Policy::new(std::sync::Arc::new(crate::outbound::Twilio)))?
        }
        false => TestRuntime::new()?,
    };
    writeln!(
        out,
        "sms-notification demo: the real component in a wasmtime sandbox, on a virtual clock"
    )?;
    writeln!(out, "  component: {}", crate::COMPONENT)?;
    match twilio.live {
        false => writeln!(
            out,
            "  Twilio: the in-process fake (nothing leaves this machine)\n"
        )?,
        true => writeln!(
            out,
            "  Twilio: LIVE, https://api.twilio.com (one real SMS)\n"
        )?,
    }

    let settings = json!({
        "twilioAccountSid": twilio.account_sid,
        "twilioAuthToken": twilio.auth_token,
        "fromMobileNo": twilio.from,
        "delaySeconds": 60,
        "websiteURL": "https://chat.example.com",
    })
    .to_string();
    writeln!(
        out,
        "The app developer saves settings: delay 60 s, from {}.",
        twilio.from
    )?;
    match rt.validate_settings(TENANT, &settings).await? {
        Ok(()) => writeln!(out, "  validate-settings -> ok")?,
        Err(problems) => {
            writeln!(out, "  validate-settings -> {}", json::problems(&problems))?;
            wasmtime::bail!("the settings were refused; nothing to demonstrate");
        }
    }
    {
        let tenant = rt.tenant(TENANT);
        let mut tenant = tenant.lock().unwrap();
        tenant.save_settings(settings);
        for (uid, name, metadata) in [
            ("alice", "Alice", json!({})),
            (
                "bob",
                "Bob",
                json!({ "@private": { "contactNumber": twilio.to } }),
            ),
        ] {
            tenant.users.insert(
                uid.into(),
                User {
                    uid: uid.into(),
                    name: name.into(),
                    presence: Presence::Offline,
                    metadata: metadata.to_string(),
                },
            );
        }
    }
    writeln!(
        out,
        "Bob is offline. His metadata has @private.contactNumber.\n"
    )?;

    let message = |id: &str, text: &str, at: u64| Message {
        id: id.into(),
        conversation: "alice_bob".into(),
        kind: ConversationKind::OneOnOne,
        format: MessageFormat::Text,
        sender: "alice".into(),
        receiver: "bob".into(),
        text: text.into(),
        sent_at: at,
    };

    let now = rt.clock.now();
    let first = message("m1", "Are we still on for dinner at 8?", now);
    writeln!(out, "{} Alice -> Bob: {:?}", clock(now), first.text)?;
    let outcome = rt.on_message(TENANT, &first).await?;
    writeln!(out, "        on-message -> {}", result_json(&outcome))?;

    writeln!(out, "        ... 60 s pass; Bob stays offline ...")?;
    let fired = rt.advance(60_000).await?;
    for f in &fired {
        writeln!(out, "{} timer {:?} fires", clock(f.at), f.key)?;
        match &f.result {
            Ok(result) => writeln!(out, "        on-timer -> {}", result_json(result))?,
            Err(trap) => writeln!(out, "        on-timer trapped: {trap:#}")?,
        }
    }
    for sms in rt.traffic.take_sms() {
        writeln!(out, "        Twilio received {} {}", sms.method, sms.url)?;
        for (name, value) in &sms.form {
            let value = value.replace('\n', "\n                ");
            writeln!(out, "          {name:<4}: {value}")?;
        }
    }
    let sent = fired
        .iter()
        .filter(|f| matches!(f.result, Ok(Ok(Outcome::Sent(_)))))
        .count();
    if sent != 1 {
        wasmtime::bail!("expected exactly one SMS after the delay, got {sent}");
    }

    rt.advance(30_000).await?;
    let now = rt.clock.now();
    let second = message("m2", "Shall I bring the wine?", now);
    writeln!(out, "\n{} Alice -> Bob: {:?}", clock(now), second.text)?;
    writeln!(
        out,
        "        on-message -> {}",
        result_json(&rt.on_message(TENANT, &second).await?)
    )?;
    rt.advance(20_000).await?;
    let now = rt.clock.now();
    writeln!(out, "{} Bob opens the chat and reads it", clock(now))?;
    let receipt = Receipt {
        conversation: "alice_bob".into(),
        reader: "bob".into(),
        message: "m2".into(),
        read_at: now,
    };
    writeln!(
        out,
        "        on-read -> {}",
        result_json(&rt.on_read(TENANT, &receipt).await?)
    )?;
    let fired = rt.advance(60_000).await?;
    let later = rt.traffic.take_sms().len();
    writeln!(
        out,
        "{} {} timer(s) fired, {later} SMS sent: Bob already read it.",
        clock(rt.clock.now()),
        fired.len()
    )?;
    if later != 0 || !fired.is_empty() {
        wasmtime::bail!("no SMS was expected for a message read in time");
    }
    writeln!(out, "\nLog lines the component wrote (numbers masked):")?;
    for line in &rt.tenant(TENANT).lock().unwrap().logs {
        let level = format!("{:?}", line.level)
            .replace("Level::", "")
            .to_lowercase();
        writeln!(out, "  {} {level:<5} {}", clock(line.at), line.line)?;
    }
    Ok(())
}

fn result_json(
    result: &std::result::Result<
        crate::bindings::sms_notification::extension::types::Outcome,
        crate::bindings::sms_notification::extension::types::Error,
    >,
) -> serde_json::Value {
    match result {
        Ok(outcome) => json::outcome(outcome),
        Err(error) => json!({ "error": json::error(error) }),
    }
}
