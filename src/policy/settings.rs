//! The tenant's settings: parsing and validation.
//!
//! Settings arrive as the JSON object the app developer saved. Validation
//! reports every problem at once, each naming its field, so the dashboard's
//! Save button can show them all. Unknown fields are problems too: a typo
//! must not pass silently. No message ever echoes the auth token.

use crate::prelude::*;

use crate::contact;
use crate::model::Problem;
use crate::text::segments;
use crate::text::template::{self, Template, Values};
use miniserde::json::{self, Number, Object, Value};

use crate::policy::limits::*;

/// Every field the settings accept; anything else is a problem.
const FIELDS: &[&str] = &[
    "twilioAccountSid",
    "twilioAuthToken",
    "twilioApiKeySid",
    "twilioApiKeySecret",
    "fromMobileNo",
    "messagingServiceSid",
    "delaySeconds",
    "cooldownMinutes",
    "conversationSmsPerDay",
    "recipientSmsPerDay",
    "maxSegments",
    "template",
    "includeMessageText",
    "websiteURL",
    "statusCallbackURL",
    "maxAttempts",
    "replyMeansRead",
    "quietHours",
    "timeZone",
];

/// [`FIELDS`] as a problem lists them (a constant: joining at run time
/// costs the component more bytes than the text).
const LIST: &str = "twilioAccountSid, twilioAuthToken, twilioApiKeySid, twilioApiKeySecret, \
    fromMobileNo, messagingServiceSid, delaySeconds, cooldownMinutes, conversationSmsPerDay, \
    recipientSmsPerDay, maxSegments, template, includeMessageText, websiteURL, statusCallbackURL, \
    maxAttempts, replyMeansRead, quietHours, timeZone";

/// The Twilio auth token. Its `Debug` never shows it, so a settings value can
/// be logged or asserted on without leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; only the Twilio request builder calls this.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// How requests authenticate: the account's auth token, or an API key
/// (`SK…` and its secret), which can be revoked on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    AuthToken(Secret),
    ApiKey { sid: String, secret: Secret },
}

/// Who the SMS comes from: a phone number, or a Twilio Messaging Service
/// that picks one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sender {
    Number(String),
    Service(String),
}

/// Validated settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub account_sid: String,
    pub credentials: Credentials,
    pub from: Sender,
    /// Passed to Twilio as `StatusCallback`.
    pub status_callback: Option<String>,
    pub max_attempts: u64,
    pub delay_seconds: u64,
    pub website_url: Option<String>,
    pub cooldown_minutes: u64,
    pub conversation_sms_per_day: u64,
    pub recipient_sms_per_day: u64,
    pub max_segments: u64,
    pub template: Template,
    /// The template for a notification with no text to quote (its newest
    /// message was deleted, or was empty): the default without the
    /// preview, when the tenant kept the default template; `None` when
    /// they wrote their own (it is used as written).
    pub without_text: Option<Template>,
    pub include_text: bool,
    /// Writing in a conversation means having read it.
    pub reply_means_read: bool,
    /// The token Twilio signs delivery reports with (the account's auth
    /// token): the credentials' own, or `twilioAuthToken` saved beside an
    /// API key. `None`: reports cannot be verified and are refused.
    pub report_token: Option<Secret>,
    /// When no SMS goes out, in the recipient's local time.
    pub quiet_hours: Option<QuietHours>,
    /// The IANA zone of recipients who do not say theirs (required with
    /// `quietHours`; checked against the host's zones by the driver).
    pub time_zone: Option<String>,
}

/// `quietHours`: from `start` to `end`, minutes after local midnight; the
/// window crosses midnight when `end` is earlier than `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub start: u32,
    pub end: u32,
}

/// Longest IANA zone name accepted (the longest real one has 32 bytes).
pub const MAX_ZONE_CHARS: usize = 64;

impl Settings {
    /// Settings with every default, for the given credentials and sender.
    pub fn new(account_sid: &str, credentials: Credentials, from: Sender) -> Self {
        Self {
            account_sid: account_sid.to_owned(),
            report_token: match &credentials {
                Credentials::AuthToken(token) => Some(token.clone()),
                Credentials::ApiKey { .. } => None,
            },
            credentials,
            from,
            status_callback: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            delay_seconds: DEFAULT_DELAY_SECONDS,
            website_url: None,
            cooldown_minutes: DEFAULT_COOLDOWN_MINUTES,
            conversation_sms_per_day: DEFAULT_CONVERSATION_SMS_PER_DAY,
            recipient_sms_per_day: DEFAULT_RECIPIENT_SMS_PER_DAY,
            max_segments: 1,
            template: Template::parse(template::DEFAULT).expect("the default template parses"),
            without_text: Some(
                Template::parse(template::DEFAULT_PRIVATE).expect("the default template parses"),
            ),
            include_text: true,
            reply_means_read: true,
            quiet_hours: None,
            time_zone: None,
        }
    }

    /// The template for a notification whose newest unread text is
    /// `latest`: [`Settings::without_text`] when there is none to quote.
    pub fn template_for(&self, latest: &str) -> &Template {
        match &self.without_text {
            Some(without) if latest.trim().is_empty() => without,
            _ => &self.template,
        }
    }

    /// The delay in milliseconds.
    pub fn delay_ms(&self) -> u64 {
        self.delay_seconds * 1000
    }

    pub fn cooldown_ms(&self) -> u64 {
        self.cooldown_minutes * 60 * 1000
    }
}

/// Largest settings document accepted; real ones are well under 2 kB.
pub const MAX_SETTINGS_BYTES: usize = 64 * 1024;

/// Parses and validates settings JSON: the settings, or every problem.
pub fn parse(json: &str) -> Result<Settings, Vec<Problem>> {
    if json.len() > MAX_SETTINGS_BYTES {
        return Err(vec![problem(
            "",
            format!(
                "settings are {} bytes; at most {MAX_SETTINGS_BYTES} are accepted",
                json.len()
            ),
        )]);
    }
    let value: Value = json::from_str(json).map_err(|_| {
        vec![problem(
            "",
            "settings are not valid JSON; expected a JSON object",
        )]
    })?;
    let Value::Object(map) = value else {
        return Err(vec![problem(
            "",
            format!("settings must be a JSON object, not {}", json_kind(&value)),
        )]);
    };
    let mut problems = Vec::new();
    for key in map.keys() {
        if !FIELDS.contains(&key.as_str()) {
            problems.push(problem(
                key,
                format!("unknown setting; the settings are: {LIST}"),
            ));
        }
    }

    let account_sid = required_str(&map, "twilioAccountSid", &mut problems).and_then(|sid| {
        if is_sid(sid, "AC") {
            Some(sid.to_owned())
        } else {
            problems.push(problem(
                "twilioAccountSid",
                "must be \"AC\" followed by 32 hexadecimal digits, as shown in the Twilio console",
            ));
            None
        }
    });
    let (credentials, report_token) = match credentials(&map, &mut problems) {
        Some((c, r)) => (Some(c), Some(r)),
        None => (None, None),
    };
    let quiet_hours = quiet_hours(&map, &mut problems);
    let time_zone = match map.get("timeZone") {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(zone)) if is_zone_name(zone) => Some(Some(zone.clone())),
        Some(v) => {
            problems.push(problem(
                "timeZone",
                format!(
                    "{} is not an IANA time zone name; use one like America/New_York, Europe/Paris or UTC",
                    short(v)
                ),
            ));
            None
        }
    };
    if matches!(quiet_hours, Some(Some(_))) && matches!(time_zone, Some(None)) {
        problems.push(problem(
            "timeZone",
            "required with quietHours: the IANA zone (like America/New_York) of recipients whose metadata has no @private.timeZone",
        ));
    }
    let from = sender(&map, &mut problems);
    let delay_seconds = number(
        &map,
        "delaySeconds",
        DEFAULT_DELAY_SECONDS,
        0,
        MAX_DELAY_SECONDS,
        "seconds",
        &mut problems,
    );
    let cooldown_minutes = number(
        &map,
        "cooldownMinutes",
        DEFAULT_COOLDOWN_MINUTES,
        0,
        MAX_COOLDOWN_MINUTES,
        "minutes",
        &mut problems,
    );
    let conversation_sms_per_day = number(
        &map,
        "conversationSmsPerDay",
        DEFAULT_CONVERSATION_SMS_PER_DAY,
        1,
        MAX_CONVERSATION_SMS_PER_DAY,
        "SMS per conversation and day",
        &mut problems,
    );
    let recipient_sms_per_day = number(
        &map,
        "recipientSmsPerDay",
        DEFAULT_RECIPIENT_SMS_PER_DAY,
        1,
        MAX_RECIPIENT_SMS_PER_DAY,
        "SMS per recipient and day",
        &mut problems,
    );
    let max_segments = number(
        &map,
        "maxSegments",
        1,
        1,
        MAX_SEGMENTS,
        "segments",
        &mut problems,
    );
    let include_text = boolean(&map, "includeMessageText", true, &mut problems);
    let reply_means_read = boolean(&map, "replyMeansRead", true, &mut problems);
    let website_url = url(&map, "websiteURL", &mut problems);
    let status_callback = url(&map, "statusCallbackURL", &mut problems);
    let max_attempts = number(
        &map,
        "maxAttempts",
        DEFAULT_MAX_ATTEMPTS,
        1,
        MAX_ATTEMPTS,
        "attempts",
        &mut problems,
    );
    let template = match map.get("template") {
        None => Some(
            Template::parse(match include_text {
                Some(false) => template::DEFAULT_PRIVATE,
                _ => template::DEFAULT,
            })
            .expect("the default templates parse"),
        ),
        Some(Value::String(source)) if source.chars().count() > segments::MAX_CHARS => {
            problems.push(problem(
                "template",
                format!("is longer than {} characters", segments::MAX_CHARS),
            ));
            None
        }
        Some(Value::String(source)) => match Template::parse(source) {
            Ok(t) => Some(t),
            Err(why) => {
                problems.push(problem("template", why));
                None
            }
        },
        Some(v) => {
            problems.push(problem(
                "template",
                format!("must be a string, not {}", json_kind(v)),
            ));
            None
        }
    };
    // The fixed part of every body (the template, the link, the largest
    // count and the shortest sender a body may show) must leave room
    // within the segment budget: the fitter then never cuts the link.
    if let (Some(t), Some(url), Some(max)) = (&template, &website_url, max_segments) {
        let bare = t.render(&Values {
            sender: crate::text::render::SHORTEST_SENDER,
            count: u32::MAX,
            preview: "",
            link: url.as_deref().unwrap_or(""),
        });
        let used = segments::count(&bare).segments as u64;
        if !segments::fits(&bare, max as usize) {
            problems.push(problem(
                "template",
                format!(
                    "with the link, the template alone takes {used} segments before any name or text; maxSegments is {max}"
                ),
            ));
        }
    }

    if !problems.is_empty() {
        return Err(problems);
    }
    let settings = || {
        Some(Settings {
            account_sid: account_sid?,
            credentials: credentials?,
            from: from?,
            status_callback: status_callback?,
            max_attempts: max_attempts?,
            delay_seconds: delay_seconds?,
            website_url: website_url?,
            cooldown_minutes: cooldown_minutes?,
            conversation_sms_per_day: conversation_sms_per_day?,
            recipient_sms_per_day: recipient_sms_per_day?,
            max_segments: max_segments?,
            template: template?,
            without_text: match (map.contains_key("template"), include_text?) {
                (false, true) => Some(
                    Template::parse(template::DEFAULT_PRIVATE)
                        .expect("the default templates parse"),
                ),
                _ => None,
            },
            include_text: include_text?,
            reply_means_read: reply_means_read?,
            report_token: report_token?,
            quiet_hours: quiet_hours?,
            time_zone: time_zone?,
        })
    };
    // Every missing value recorded a problem above; never trap on it.
    settings().ok_or_else(|| vec![problem("", "incomplete settings")])
}

/// A boolean, or `default` when absent.
fn boolean(map: &Object, field: &str, default: bool, problems: &mut Vec<Problem>) -> Option<bool> {
    match map.get(field) {
        None => Some(default),
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => {
            problems.push(problem(
                field,
                format!("must be true or false, not {}", json_kind(v)),
            ));
            None
        }
    }
}

/// A whole number in `min..=max`, or `default` when absent.
fn number(
    map: &Object,
    field: &str,
    default: u64,
    min: u64,
    max: u64,
    unit: &str,
    problems: &mut Vec<Problem>,
) -> Option<u64> {
    match map.get(field) {
        None => Some(default),
        Some(v) => match as_u64(v) {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                problems.push(problem(
                    field,
                    format!(
                        "{} is not allowed; use a whole number of {unit} from {min} to {max}",
                        short(v)
                    ),
                ));
                None
            }
        },
    }
}

/// The auth token, or an API key and its secret; secrets are checked for
/// presence and shape only, and never quoted. With both, requests use the
/// key and the auth token only verifies delivery reports (Twilio signs
/// them with the account's auth token, never with a key). Also the token
/// that verifies reports, if any.
fn credentials(map: &Object, problems: &mut Vec<Problem>) -> Option<(Credentials, Option<Secret>)> {
    let secret = |field: &str, problems: &mut Vec<Problem>| {
        required_str(map, field, problems).and_then(|value| {
            if value.is_empty() || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                problems.push(problem(field, "must be non-empty, without spaces"));
                None
            } else {
                Some(Secret::new(value))
            }
        })
    };
    let key = map.contains_key("twilioApiKeySid") || map.contains_key("twilioApiKeySecret");
    match (map.contains_key("twilioAuthToken"), key) {
        (token, true) => {
            // Checked first, but every field's problems are reported.
            let report = if token {
                secret("twilioAuthToken", problems).map(Some)
            } else {
                Some(None)
            };
            let sid = required_str(map, "twilioApiKeySid", problems).and_then(|sid| {
                if is_sid(sid, "SK") {
                    Some(sid.to_owned())
                } else {
                    problems.push(problem(
                        "twilioApiKeySid",
                        "must be \"SK\" followed by 32 hexadecimal digits",
                    ));
                    None
                }
            });
            let secret = secret("twilioApiKeySecret", problems);
            Some((
                Credentials::ApiKey {
                    sid: sid?,
                    secret: secret?,
                },
                report?,
            ))
        }
        _ => secret("twilioAuthToken", problems)
            .map(|token| (Credentials::AuthToken(token.clone()), Some(token))),
    }
}

/// `quietHours`: `{"start": "HH:MM", "end": "HH:MM"}`, or absent.
fn quiet_hours(map: &Object, problems: &mut Vec<Problem>) -> Option<Option<QuietHours>> {
    let hint = "use {\"start\": \"22:00\", \"end\": \"08:00\"}: local times on a 24-hour clock, the window may cross midnight";
    let value = match map.get("quietHours") {
        None | Some(Value::Null) => return Some(None),
        Some(Value::Object(o)) => o,
        Some(v) => {
            problems.push(problem(
                "quietHours",
                format!("{} is not allowed; {hint}", short(v)),
            ));
            return None;
        }
    };
    let mut time = |field: &str| {
        let path = format!("quietHours.{field}");
        match value.get(field).and_then(as_str).and_then(clock_time) {
            Some(minutes) => Some(minutes),
            None => {
                let what = match value.get(field) {
                    Some(v) => short(v),
                    None => "a missing time".into(),
                };
                problems.push(problem(
                    &path,
                    format!("{what} is not a time like \"22:00\" (00:00 to 23:59)"),
                ));
                None
            }
        }
    };
    let (start, end) = (time("start"), time("end"));
    if let Some(key) = value.keys().find(|k| *k != "start" && *k != "end") {
        problems.push(problem(
            &format!("quietHours.{key}"),
            "unknown; quietHours has only start and end",
        ));
        return None;
    }
    let (start, end) = (start?, end?);
    if start == end {
        problems.push(problem(
            "quietHours",
            "start and end are the same time; remove quietHours for none",
        ));
        return None;
    }
    Some(Some(QuietHours { start, end }))
}

/// Minutes after midnight of `HH:MM`.
fn clock_time(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Whether `zone` looks like an IANA zone name (`Area/City`, `UTC`); the
/// host says whether it knows it.
fn is_zone_name(zone: &str) -> bool {
    !zone.is_empty()
        && zone.len() <= MAX_ZONE_CHARS
        && zone
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'))
        && !zone.starts_with('/')
        && !zone.contains("..")
}

/// An optional http(s) URL.
fn url(map: &Object, field: &str, problems: &mut Vec<Problem>) -> Option<Option<String>> {
    match map.get(field) {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(url)) if is_web_url(url) => Some(Some(url.clone())),
        Some(v) => {
            problems.push(problem(
                field,
                format!(
                    "{} is not allowed; use an http:// or https:// URL of printable ASCII without spaces, at most {MAX_URL_CHARS} characters",
                    short(v)
                ),
            ));
            None
        }
    }
}

fn sender(map: &Object, problems: &mut Vec<Problem>) -> Option<Sender> {
    match (map.get("fromMobileNo"), map.get("messagingServiceSid")) {
        (Some(_), Some(_)) => {
            problems.push(problem(
                "fromMobileNo",
                "set either fromMobileNo or messagingServiceSid, not both",
            ));
            None
        }
        (None, None) => {
            problems.push(problem(
                "fromMobileNo",
                "required: the Twilio number to send from, in E.164 form like +14155552671 (or set messagingServiceSid instead)",
            ));
            None
        }
        (Some(v), None) => match as_str(v).map(contact::normalize) {
            Some(Ok(number)) => Some(Sender::Number(number)),
            _ => {
                problems.push(problem(
                    "fromMobileNo",
                    format!(
                        "{} is not a phone number in E.164 form with its country code, like +14155552671",
                        short(v)
                    ),
                ));
                None
            }
        },
        (None, Some(v)) => match as_str(v) {
            Some(sid) if is_sid(sid, "MG") => Some(Sender::Service(sid.to_owned())),
            _ => {
                problems.push(problem(
                    "messagingServiceSid",
                    "must be \"MG\" followed by 32 hexadecimal digits",
                ));
                None
            }
        },
    }
}

fn required_str<'a>(map: &'a Object, field: &str, problems: &mut Vec<Problem>) -> Option<&'a str> {
    match map.get(field) {
        Some(Value::String(s)) => Some(s),
        None => {
            problems.push(problem(field, "required"));
            None
        }
        Some(v) => {
            problems.push(problem(
                field,
                format!("must be a string, not {}", json_kind(v)),
            ));
            None
        }
    }
}

/// Twilio's SID shape: a two-letter prefix and 32 hexadecimal digits.
pub fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_web_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    matches!(rest, Some(host) if !host.is_empty())
        && url.len() <= MAX_URL_CHARS
        && url.bytes().all(|b| b.is_ascii_graphic())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(Number::U64(n)) => Some(*n),
        Value::Number(Number::I64(n)) => u64::try_from(*n).ok(),
        _ => None,
    }
}

fn as_str(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

/// A value quoted in an error, cut so a huge input cannot make a huge error.
fn short(v: &Value) -> String {
    let text = match v {
        Value::String(s) => format!("{s:?}"),
        Value::Number(Number::U64(n)) => n.to_string(),
        Value::Number(Number::I64(n)) => n.to_string(),
        Value::Number(Number::F64(_)) => "a fractional number".into(),
        other => json_kind(other).into(),
    };
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

fn problem(field: &str, message: impl Into<String>) -> Problem {
    Problem {
        field: field.to_owned(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_of_settings_names_every_field() {
        assert_eq!(LIST, FIELDS.join(", "));
    }

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "tok3n-secret-value";

    fn fields(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn minimal_settings_take_defaults() {
        let s = parse(&format!(
            r#"{{"twilioAccountSid":"{SID}","twilioAuthToken":"{TOKEN}","fromMobileNo":"+1 (415) 555-2671"}}"#
        ))
        .unwrap();
        assert_eq!(s.account_sid, SID);
        assert_eq!(s.credentials, Credentials::AuthToken(Secret::new(TOKEN)));
        assert_eq!(s.max_attempts, DEFAULT_MAX_ATTEMPTS);
        assert_eq!(s.from, Sender::Number("+14155552671".into()));
        assert_eq!(s.delay_seconds, DEFAULT_DELAY_SECONDS);
        assert_eq!(s.website_url, None);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let problems = parse(
            r#"{"twilioAccountSid":"AC12","delaySeconds":-5,"websiteURL":"ftp://x","colour":"red"}"#,
        )
        .unwrap_err();
        let mut got = fields(&problems);
        got.sort();
        assert_eq!(
            got,
            [
                "colour",
                "delaySeconds",
                "fromMobileNo",
                "twilioAccountSid",
                "twilioAuthToken",
                "websiteURL"
            ]
        );
        let delay = problems.iter().find(|p| p.field == "delaySeconds").unwrap();
        assert!(delay.message.contains("-5"), "{}", delay.message);
        assert!(delay.message.contains("0 to 86400"), "{}", delay.message);
    }

    #[test]
    fn not_an_object_is_one_problem() {
        assert_eq!(
            parse("[1]").unwrap_err()[0].message,
            "settings must be a JSON object, not an array"
        );
        assert!(
            parse("{").unwrap_err()[0]
                .message
                .contains("not valid JSON")
        );
    }

    #[test]
    fn sender_is_a_number_or_a_service_not_both() {
        let base = format!(r#""twilioAccountSid":"{SID}","twilioAuthToken":"{TOKEN}""#);
        let service = "MG0123456789abcdef0123456789abcdef";
        let s = parse(&format!(r#"{{{base},"messagingServiceSid":"{service}"}}"#)).unwrap();
        assert_eq!(s.from, Sender::Service(service.into()));
        let both = parse(&format!(
            r#"{{{base},"messagingServiceSid":"{service}","fromMobileNo":"+14155552671"}}"#
        ))
        .unwrap_err();
        assert_eq!(fields(&both), ["fromMobileNo"]);
        let local = parse(&format!(r#"{{{base},"fromMobileNo":"4155552671"}}"#)).unwrap_err();
        assert!(local[0].message.contains("E.164"), "{}", local[0].message);
    }

    #[test]
    fn limits_templates_and_privacy() {
        let base = format!(
            r#""twilioAccountSid":"{SID}","twilioAuthToken":"{TOKEN}","fromMobileNo":"+14155552671""#
        );
        let s = parse(&format!("{{{base}}}")).unwrap();
        assert_eq!(
            (
                s.cooldown_minutes,
                s.conversation_sms_per_day,
                s.recipient_sms_per_day,
                s.max_segments
            ),
            (120, 2, 20, 1)
        );
        assert!(s.include_text);
        let private = parse(&format!(r#"{{{base},"includeMessageText":false}}"#)).unwrap();
        assert!(!private.template.uses(crate::text::template::Field::Preview));

        let problems = parse(&format!(
            r#"{{{base},"cooldownMinutes":1441,"conversationSmsPerDay":0,"recipientSmsPerDay":2.5,"maxSegments":11,"template":"Hi {{name}}","includeMessageText":"no"}}"#
        ))
        .unwrap_err();
        let mut got = fields(&problems);
        got.sort();
        assert_eq!(
            got,
            [
                "conversationSmsPerDay",
                "cooldownMinutes",
                "includeMessageText",
                "maxSegments",
                "recipientSmsPerDay",
                "template"
            ]
        );
        let template = problems.iter().find(|p| p.field == "template").unwrap();
        assert!(
            template.message.contains("unknown placeholder {name}"),
            "{}",
            template.message
        );
        let segments = problems.iter().find(|p| p.field == "maxSegments").unwrap();
        assert!(
            segments.message.contains("from 1 to 10"),
            "{}",
            segments.message
        );
    }

    #[test]
    fn a_template_must_leave_room_in_the_budget() {
        let base = format!(
            r#""twilioAccountSid":"{SID}","twilioAuthToken":"{TOKEN}","fromMobileNo":"+14155552671""#
        );
        let long = "x".repeat(150);
        let problems = parse(&format!(
            r#"{{{base},"template":"{long} {{preview}}\n{{link}}","websiteURL":"https://chat.example.com"}}"#
        ))
        .unwrap_err();
        assert_eq!(fields(&problems), ["template"]);
        assert!(
            problems[0].message.contains("takes 2 segments"),
            "{}",
            problems[0].message
        );
        assert!(parse(&format!(
            r#"{{{base},"template":"{long} {{preview}}\n{{link}}","websiteURL":"https://chat.example.com","maxSegments":2}}"#
        ))
        .is_ok());
    }

    #[test]
    fn the_token_is_never_echoed() {
        let bad = "has space secret";
        let json = format!(
            r#"{{"twilioAccountSid":"{SID}","twilioAuthToken":"{bad}","fromMobileNo":"+14155552671"}}"#
        );
        let problems = parse(&json).unwrap_err();
        assert_eq!(fields(&problems), ["twilioAuthToken"]);
        assert!(problems.iter().all(|p| !p.message.contains("secret")));
        let key_sid = "SK0123456789abcdef0123456789abcdef";
        let key = parse(&format!(
            r#"{{"twilioAccountSid":"{SID}","twilioApiKeySid":"{key_sid}","twilioApiKeySecret":"k-secret","fromMobileNo":"+14155552671","statusCallbackURL":"https://hooks.example.com/s"}}"#
        ))
        .unwrap();
        assert_eq!(
            key.credentials,
            Credentials::ApiKey {
                sid: key_sid.into(),
                secret: Secret::new("k-secret")
            }
        );
        assert!(!format!("{key:?}").contains("k-secret"));
        let half = parse(&format!(
            r#"{{"twilioAccountSid":"{SID}","twilioApiKeySid":"SKnope","fromMobileNo":"+14155552671"}}"#
        ))
        .unwrap_err();
        let mut got = fields(&half);
        got.sort();
        assert_eq!(got, ["twilioApiKeySecret", "twilioApiKeySid"]);
        let ok = parse(&json.replace(bad, TOKEN)).unwrap();
        assert!(!format!("{ok:?}").contains(TOKEN));
    }
}
