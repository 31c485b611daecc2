//! The tenant's settings: parsing and validation.
//!
//! Settings arrive as the JSON object the app developer saved. Validation
//! reports every problem at once, each naming its field, so the dashboard's
//! Save button can show them all. Unknown fields are problems too: a typo
//! must not pass silently. No message ever echoes the auth token.

use crate::contact;
use crate::model::Problem;
use serde_json::{Map, Value};

/// Default for `delaySeconds`: how long after a message the recipient must
/// still be offline with it unread before an SMS goes out.
pub const DEFAULT_DELAY_SECONDS: u64 = 60;
/// Upper bound for `delaySeconds`: one day.
pub const MAX_DELAY_SECONDS: u64 = 86_400;
/// Upper bound for `websiteURL`, so the link never crowds out the message.
pub const MAX_URL_CHARS: usize = 200;

/// Every field the settings accept; anything else is a problem.
const FIELDS: &[&str] = &[
    "twilioAccountSid",
    "twilioAuthToken",
    "fromMobileNo",
    "messagingServiceSid",
    "delaySeconds",
    "websiteURL",
];

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
    pub auth_token: Secret,
    pub from: Sender,
    pub delay_seconds: u64,
    pub website_url: Option<String>,
}

impl Settings {
    /// The delay in milliseconds.
    pub fn delay_ms(&self) -> u64 {
        self.delay_seconds * 1000
    }
}

/// Parses and validates settings JSON: the settings, or every problem.
pub fn parse(json: &str) -> Result<Settings, Vec<Problem>> {
    let value: Value = serde_json::from_str(json).map_err(|e| {
        vec![problem(
            "",
            format!("settings are not valid JSON ({e}); expected a JSON object"),
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
                format!("unknown setting; the settings are: {}", FIELDS.join(", ")),
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
    // The token is checked for presence and shape only, and never quoted.
    let auth_token = required_str(&map, "twilioAuthToken", &mut problems).and_then(|token| {
        if token.trim().is_empty() || token.chars().any(char::is_whitespace) {
            problems.push(problem(
                "twilioAuthToken",
                "must be the account's auth token: non-empty, without spaces",
            ));
            None
        } else {
            Some(Secret::new(token))
        }
    });
    let from = sender(&map, &mut problems);
    let delay_seconds = match map.get("delaySeconds") {
        None => Some(DEFAULT_DELAY_SECONDS),
        Some(v) => match v.as_u64() {
            Some(n) if n <= MAX_DELAY_SECONDS => Some(n),
            _ => {
                problems.push(problem(
                    "delaySeconds",
                    format!(
                        "{} is not allowed; use a whole number of seconds from 0 to {MAX_DELAY_SECONDS}",
                        short(v)
                    ),
                ));
                None
            }
        },
    };
    let website_url = match map.get("websiteURL") {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(url)) if is_web_url(url) => Some(Some(url.clone())),
        Some(v) => {
            problems.push(problem(
                "websiteURL",
                format!(
                    "{} is not allowed; use an http:// or https:// URL without spaces, at most {MAX_URL_CHARS} characters",
                    short(v)
                ),
            ));
            None
        }
    };

    match (account_sid, auth_token, from, delay_seconds, website_url) {
        (
            Some(account_sid),
            Some(auth_token),
            Some(from),
            Some(delay_seconds),
            Some(website_url),
        ) if problems.is_empty() => Ok(Settings {
            account_sid,
            auth_token,
            from,
            delay_seconds,
            website_url,
        }),
        _ => Err(problems),
    }
}

fn sender(map: &Map<String, Value>, problems: &mut Vec<Problem>) -> Option<Sender> {
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
        (Some(v), None) => match v.as_str().map(contact::normalize) {
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
        (None, Some(v)) => match v.as_str() {
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

fn required_str<'a>(
    map: &'a Map<String, Value>,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<&'a str> {
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
        && url.chars().count() <= MAX_URL_CHARS
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
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

/// A value quoted in an error, cut so a huge input cannot make a huge error.
fn short(v: &Value) -> String {
    let text = v.to_string();
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
        assert_eq!(s.auth_token.expose(), TOKEN);
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
    fn the_token_is_never_echoed() {
        let bad = "has space secret";
        let json = format!(
            r#"{{"twilioAccountSid":"{SID}","twilioAuthToken":"{bad}","fromMobileNo":"+14155552671"}}"#
        );
        let problems = parse(&json).unwrap_err();
        assert_eq!(fields(&problems), ["twilioAuthToken"]);
        assert!(problems.iter().all(|p| !p.message.contains("secret")));
        let ok = parse(&json.replace(bad, TOKEN)).unwrap();
        assert!(!format!("{ok:?}").contains(TOKEN));
    }
}
