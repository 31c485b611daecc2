//! Twilio's `CreateMessage`: building the request and reading the answer.
//!
//! `POST https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json`
//! with HTTP Basic auth and a form body of `To`, `From` (or
//! `MessagingServiceSid`) and `Body`; `201` with JSON carrying `sid`.

use crate::prelude::*;

pub mod redact;
pub mod transport;

use crate::model::TwilioError;
use crate::policy::settings::{Credentials, Sender, Settings};
use base64::Engine as _;
use miniserde::{Deserialize, json};

/// Where every request goes; the host should allow nothing else.
pub const HOST: &str = "api.twilio.com";
/// Request timeouts (connect, first byte, between bytes), in milliseconds.
/// Without them a stuck connection would hold the call for WASI's 600 s.
pub const TIMEOUT_MS: u64 = 5_000;
/// The most of a response body read; Twilio's answers are a few kB.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// An HTTP request ready to send. Its `Debug` hides the authorization.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// Path and query on [`HOST`], over HTTPS.
    pub path: String,
    /// The `Authorization` header value (carries the secret).
    pub authorization: String,
    /// `application/x-www-form-urlencoded` body.
    pub body: String,
}

impl core::fmt::Debug for Request {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Request")
            .field("path", &self.path)
            .field("authorization", &"<redacted>")
            .field("body", &self.body)
            .finish()
    }
}

pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The query parameter of a status callback URL that names the recipient,
/// so a delivery report finds its SMS among the recipient's records.
pub const RECIPIENT_PARAM: &str = "recipient";

/// `statusCallbackURL` with the recipient's uid added to its query.
pub fn report_url(base: &str, recipient: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    let uid: String = form_urlencoded::byte_serialize(recipient.as_bytes()).collect();
    format!("{base}{separator}{RECIPIENT_PARAM}={uid}")
}

/// The `CreateMessage` request texting `body` to `to` (the number of
/// `recipient`).
pub fn create_message(settings: &Settings, recipient: &str, to: &str, body: &str) -> Request {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("To", to);
    match &settings.from {
        Sender::Number(number) => form.append_pair("From", number),
        Sender::Service(sid) => form.append_pair("MessagingServiceSid", sid),
    };
    form.append_pair("Body", body);
    if let Some(url) = &settings.status_callback {
        form.append_pair("StatusCallback", &report_url(url, recipient));
    }
    let (user, secret) = match &settings.credentials {
        Credentials::AuthToken(token) => (settings.account_sid.as_str(), token),
        Credentials::ApiKey { sid, secret } => (sid.as_str(), secret),
    };
    let credentials = format!("{user}:{}", secret.expose());
    Request {
        path: format!(
            "/2010-04-01/Accounts/{}/Messages.json",
            settings.account_sid
        ),
        authorization: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        ),
        body: form.finish(),
    }
}

/// What came back: a response, or no response at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Http {
        status: u16,
        body: Vec<u8>,
        /// `Retry-After`, in seconds, when the response carried one.
        retry_after: Option<u64>,
    },
    /// The request got no HTTP answer.
    Transport(Transport),
}

/// Why a request got no answer, as far as it matters for a retry: only a
/// request Twilio cannot have seen may be sent again. The host's
/// `wasi:http` error codes are sorted into these by
/// [`crate::twilio::transport::meaning`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The host would not send it (its policy denied it, or it could not
    /// form it): trying again cannot help.
    Denied(String),
    /// The connection never opened (refused, timed out, DNS, TLS): Twilio
    /// never saw the request.
    NotConnected(String),
    /// The request went out, then no answer came in time or the connection
    /// dropped: Twilio may have taken the SMS.
    NoAnswer(String),
}

/// The longest `Retry-After` obeyed: Twilio never asks for more, and a
/// proxy asking for years must not mute a conversation.
pub const RETRY_AFTER_CAP_MS: u64 = 60 * 60 * 1000;

/// The settings a credential refusal names.
pub const CREDENTIAL_SETTINGS: &str =
    "twilioAccountSid and twilioAuthToken (or twilioApiKeySid and twilioApiKeySecret)";

/// What a response means for the notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Twilio accepted the message: its SID and status (`queued`, …).
    Accepted { sid: String, status: String },
    /// Worth another attempt later: rate limits (429, code 20429), a full
    /// queue (21611), server errors (5xx), connections that never opened.
    /// `after_ms` is the server's `Retry-After`, capped at
    /// [`RETRY_AFTER_CAP_MS`].
    Retry {
        error: TwilioError,
        after_ms: Option<u64>,
    },
    /// The number can never receive from us: invalid (21211), not a mobile
    /// (21614), not SMS-capable (21635). Remembered for the recipient.
    Undeliverable(TwilioError),
    /// The recipient replied STOP (21610). Remembered for the recipient.
    OptedOut(TwilioError),
    /// The tenant's own settings or account are refused: every notification
    /// would fail the same way until `setting` is fixed.
    TenantWide {
        error: TwilioError,
        setting: &'static str,
    },
    /// Refused for this message, and trying again would fail the same way
    /// (21612, 21408, 21617 body too long, other 4xx, a denied request), or
    /// might send it twice (`maybe_sent`: no answer to a request that went
    /// out, or a `201` without a readable SID).
    Rejected {
        error: TwilioError,
        maybe_sent: bool,
    },
}

/// Twilio's codes for problems of the tenant's own, with the setting to fix.
const TENANT_WIDE: &[(u32, &str)] = &[
    (20003, CREDENTIAL_SETTINGS),
    (20404, "twilioAccountSid"),
    (10001, "twilioAccountSid (the Twilio account is not active)"),
    (
        20005,
        "twilioAccountSid (the Twilio account is suspended or closed)",
    ),
    (21212, "fromMobileNo"),
    (21606, "fromMobileNo"),
    (21659, "fromMobileNo"),
    (21660, "fromMobileNo"),
    (21703, "messagingServiceSid"),
    (21704, "messagingServiceSid"),
    (21705, "messagingServiceSid"),
];

/// Refusals that concern one recipient or one message, whatever their
/// wording: 21612 (the `To` number unreachable from this sender), 21408
/// (the `To` number's region not enabled), 21617 (body too long).
const RECIPIENT_LEVEL: &[u32] = &[21408, 21612, 21617];

/// The setting a refusal names, for codes this build does not list: Twilio
/// words its refusals of a sender as "'From' number …" or "Messaging
/// Service …". A message about the `'To'` number concerns the recipient.
fn names_a_setting(code: Option<u32>, message: &str) -> Option<&'static str> {
    if code.is_some_and(|c| RECIPIENT_LEVEL.contains(&c)) || message.contains("'To'") {
        return None;
    }
    if message.contains("'From'")
        || message.contains("From number")
        || message.contains("From phone number")
    {
        Some("fromMobileNo")
    } else if message.contains("Messaging Service") {
        Some("messagingServiceSid")
    } else {
        None
    }
}

#[derive(Deserialize)]
struct Created {
    sid: String,
    status: Option<String>,
}

#[derive(Deserialize)]
struct Refusal {
    code: Option<u32>,
    message: Option<String>,
}

fn parse<T: Deserialize>(body: &[u8]) -> Option<T> {
    json::from_str(core::str::from_utf8(body).ok()?).ok()
}

/// Reads a response. Text in the errors comes from outside (Twilio, a
/// proxy, the host): [`crate::twilio::redact`] scrubs it before it goes anywhere.
pub fn classify(response: &Response) -> Verdict {
    let error = |status: u16, code: Option<u32>, message: String| TwilioError {
        status,
        code,
        message,
    };
    let (status, body, retry_after) = match response {
        Response::Transport(transport) => {
            return match transport {
                Transport::Denied(why) => Verdict::Rejected {
                    error: error(0, None, why.clone()),
                    maybe_sent: false,
                },
                Transport::NotConnected(why) => Verdict::Retry {
                    error: error(0, None, format!("could not connect to Twilio: {why}")),
                    after_ms: None,
                },
                // At most once: a retry could send it twice.
                Transport::NoAnswer(why) => Verdict::Rejected {
                    error: error(
                        0,
                        None,
                        format!("{why}; Twilio may have taken the SMS, so it is not sent again"),
                    ),
                    maybe_sent: true,
                },
            };
        }
        Response::Http {
            status,
            body,
            retry_after,
        } => (*status, body, *retry_after),
    };
    if status == 201 {
        return match parse::<Created>(body) {
            Some(created) if is_message_sid(&created.sid) => Verdict::Accepted {
                sid: created.sid,
                status: created.status.unwrap_or_else(|| "unknown".into()),
            },
            // Twilio took the request but the answer is unreadable: it may
            // well send it, so it must not be retried (at most once).
            _ => Verdict::Rejected {
                error: error(
                    status,
                    None,
                    "201 without a message SID in the body; not retried, to never send twice"
                        .into(),
                ),
                maybe_sent: true,
            },
        };
    }
    let refusal = parse::<Refusal>(body);
    let code = refusal.as_ref().and_then(|r| r.code);
    let error = error(
        status,
        code,
        refusal
            .and_then(|r| r.message)
            .unwrap_or_else(|| format!("HTTP {status} without a Twilio error body")),
    );
    if let Some(&(_, setting)) = TENANT_WIDE.iter().find(|(c, _)| Some(*c) == code) {
        return Verdict::TenantWide { error, setting };
    }
    match (status, code) {
        (_, Some(21610)) => Verdict::OptedOut(error),
        (_, Some(21211 | 21614 | 21635)) => Verdict::Undeliverable(error),
        (401, _) => Verdict::TenantWide {
            error,
            setting: CREDENTIAL_SETTINGS,
        },
        (404, None) => Verdict::TenantWide {
            error,
            setting: "twilioAccountSid",
        },
        (429, _) | (_, Some(20429 | 21611)) | (500..=599, _) => Verdict::Retry {
            error,
            after_ms: retry_after.map(|s| s.saturating_mul(1000).min(RETRY_AFTER_CAP_MS)),
        },
        _ => match names_a_setting(code, &error.message) {
            Some(setting) => Verdict::TenantWide { error, setting },
            None => Verdict::Rejected {
                error,
                maybe_sent: false,
            },
        },
    }
}

/// A message SID: `SM` or `MM` and 32 hexadecimal digits.
pub fn is_message_sid(sid: &str) -> bool {
    crate::policy::settings::is_sid(sid, "SM") || crate::policy::settings::is_sid(sid, "MM")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::settings::{Credentials, Secret};

    fn settings(from: Sender) -> Settings {
        Settings::new(
            "AC0123456789abcdef0123456789abcdef",
            Credentials::AuthToken(Secret::new("s3cret")),
            from,
        )
    }

    #[test]
    fn request_carries_path_auth_and_form() {
        let r = create_message(
            &settings(Sender::Number("+14155552671".into())),
            "bob",
            "+12345678910",
            "New message from Alice: a&b=c",
        );
        assert_eq!(
            r.path,
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
        );
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(r.authorization.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"AC0123456789abcdef0123456789abcdef:s3cret");
        let form: Vec<(String, String)> = form_urlencoded::parse(r.body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(
            form,
            [
                ("To".into(), "+12345678910".into()),
                ("From".into(), "+14155552671".into()),
                ("Body".into(), "New message from Alice: a&b=c".into()),
            ]
        );
        assert!(!format!("{r:?}").contains(&r.authorization));
    }

    #[test]
    fn an_api_key_replaces_the_account_in_basic_auth() {
        let mut s = settings(Sender::Number("+14155552671".into()));
        s.credentials = Credentials::ApiKey {
            sid: "SK0123456789abcdef0123456789abcdef".into(),
            secret: Secret::new("k3y"),
        };
        s.status_callback = Some("https://hooks.example.com/sms".into());
        let r = create_message(&s, "bob smith/1", "+12345678910", "x");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(r.authorization.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"SK0123456789abcdef0123456789abcdef:k3y");
        assert!(
            r.path
                .contains("/Accounts/AC0123456789abcdef0123456789abcdef/")
        );
        assert!(
            r.body
                .ends_with("&StatusCallback=https%3A%2F%2Fhooks.example.com%2Fsms%3Frecipient%3Dbob%2Bsmith%252F1"),
            "{}",
            r.body
        );
    }

    #[test]
    fn a_service_replaces_from() {
        let r = create_message(
            &settings(Sender::Service("MG0123456789abcdef0123456789abcdef".into())),
            "bob",
            "+12345678910",
            "x",
        );
        assert!(r.body.contains("MessagingServiceSid=MG0123"));
        assert!(!r.body.contains("From="));
    }

    #[test]
    fn the_report_url_names_the_recipient() {
        assert_eq!(
            report_url("https://h.example/s", "bob"),
            "https://h.example/s?recipient=bob"
        );
        assert_eq!(
            report_url("https://h.example/s?t=1", "a&b"),
            "https://h.example/s?t=1&recipient=a%26b"
        );
    }

    fn http(status: u16, body: &str) -> Response {
        Response::Http {
            status,
            body: body.as_bytes().to_vec(),
            retry_after: None,
        }
    }

    fn refusal(status: u16, code: u32) -> Response {
        http(
            status,
            &format!(r#"{{"code":{code},"message":"m","more_info":"x","status":{status}}}"#),
        )
    }

    #[test]
    fn success_carries_sid_and_status() {
        let sid = "SM0123456789abcdef0123456789abcdef";
        assert_eq!(
            classify(&http(
                201,
                &format!(r#"{{"sid":"{sid}","status":"queued"}}"#)
            )),
            Verdict::Accepted {
                sid: sid.into(),
                status: "queued".into()
            }
        );
        // Accepted but unreadable: never retried, and counted as maybe sent.
        for body in [
            "{}",
            r#"{"sid":"SM0123"}"#,
            r#"{"sid":"XX0123456789abcdef0123456789abcdef"}"#,
        ] {
            assert!(
                matches!(
                    classify(&http(201, body)),
                    Verdict::Rejected {
                        maybe_sent: true,
                        ..
                    }
                ),
                "{body}"
            );
        }
    }

    #[test]
    fn every_error_class() {
        let kind = |r: &Response| match classify(r) {
            Verdict::Accepted { .. } => "accepted",
            Verdict::Retry { .. } => "retry",
            Verdict::Undeliverable(_) => "undeliverable",
            Verdict::OptedOut(_) => "opted-out",
            Verdict::TenantWide { .. } => "tenant-wide",
            Verdict::Rejected {
                maybe_sent: false, ..
            } => "rejected",
            Verdict::Rejected {
                maybe_sent: true, ..
            } => "maybe-sent",
        };
        for (response, want) in [
            (refusal(429, 20429), "retry"),
            (http(429, ""), "retry"),
            (http(500, "<html>"), "retry"),
            (http(503, ""), "retry"),
            (refusal(400, 21211), "undeliverable"),
            (refusal(400, 21614), "undeliverable"),
            (refusal(400, 21635), "undeliverable"),
            (refusal(400, 21610), "opted-out"),
            (refusal(401, 20003), "tenant-wide"),
            (http(401, ""), "tenant-wide"),
            (refusal(404, 20404), "tenant-wide"),
            (http(404, ""), "tenant-wide"),
            (refusal(400, 21659), "tenant-wide"),
            (refusal(400, 21660), "tenant-wide"),
            (refusal(400, 21606), "tenant-wide"),
            (refusal(400, 21212), "tenant-wide"),
            (refusal(400, 21703), "tenant-wide"),
            (refusal(400, 21704), "tenant-wide"),
            (refusal(400, 21705), "tenant-wide"),
            (refusal(401, 10001), "tenant-wide"),
            (refusal(403, 20005), "tenant-wide"),
            (refusal(400, 21611), "retry"),
            (http(302, ""), "rejected"),
            (refusal(400, 21612), "rejected"),
            (refusal(400, 21408), "rejected"),
            (refusal(400, 21617), "rejected"),
            (http(404, "not json"), "tenant-wide"),
            (refusal(400, 21999), "rejected"),
            (
                http(
                    400,
                    r#"{"code":21612,"message":"The 'To' phone number: +1..., is not currently reachable using the 'From' phone number: +1... via SMS."}"#,
                ),
                "rejected",
            ),
            (
                http(
                    400,
                    r#"{"code":21998,"message":"The 'To' number is not reachable from the 'From' number"}"#,
                ),
                "rejected",
            ),
            (
                http(
                    400,
                    r#"{"code":21999,"message":"The 'From' number +15005550001 is not valid"}"#,
                ),
                "tenant-wide",
            ),
            (
                Response::Transport(Transport::NotConnected("timed out".into())),
                "retry",
            ),
            (
                Response::Transport(Transport::NoAnswer("no answer in 5 s".into())),
                "maybe-sent",
            ),
            (
                Response::Transport(Transport::Denied("denied".into())),
                "rejected",
            ),
        ] {
            assert_eq!(kind(&response), want, "{response:?}");
        }
    }

    #[test]
    fn retry_after_is_kept_and_errors_carry_twilios_words() {
        let r = Response::Http {
            status: 429,
            body: br#"{"code":20429,"message":"Too Many Requests"}"#.to_vec(),
            retry_after: Some(7),
        };
        assert_eq!(
            classify(&r),
            Verdict::Retry {
                error: TwilioError {
                    status: 429,
                    code: Some(20429),
                    message: "Too Many Requests".into()
                },
                after_ms: Some(7_000)
            }
        );
        // A silly Retry-After is capped at an hour.
        for seconds in [315_360_000, u64::MAX] {
            let r = Response::Http {
                status: 429,
                body: vec![],
                retry_after: Some(seconds),
            };
            assert!(
                matches!(
                    classify(&r),
                    Verdict::Retry {
                        after_ms: Some(RETRY_AFTER_CAP_MS),
                        ..
                    }
                ),
                "{seconds}"
            );
        }
    }
}
