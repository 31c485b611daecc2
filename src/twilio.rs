//! Twilio's `CreateMessage`: building the request and reading the answer.
//!
//! `POST https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json`
//! with HTTP Basic auth and a form body of `To`, `From` (or
//! `MessagingServiceSid`) and `Body`; `201` with JSON carrying `sid`.

use crate::prelude::*;

use crate::model::TwilioError;
use crate::settings::{Credentials, Sender, Settings};
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

/// The `CreateMessage` request texting `body` to `to`.
pub fn create_message(settings: &Settings, to: &str, body: &str) -> Request {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("To", to);
    match &settings.from {
        Sender::Number(number) => form.append_pair("From", number),
        Sender::Service(sid) => form.append_pair("MessagingServiceSid", sid),
    };
    form.append_pair("Body", body);
    if let Some(url) = &settings.status_callback {
        form.append_pair("StatusCallback", url);
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
/// request Twilio cannot have seen may be sent again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The host would not send it (its policy denied it, or it could not
    /// form it): trying again cannot help.
    Refused(String),
    /// The connection never opened (refused, timed out, DNS, TLS): Twilio
    /// never saw the request.
    NotConnected(String),
    /// The request went out, then no answer came in time or the connection
    /// dropped: Twilio may have taken the SMS.
    NoAnswer(String),
}

/// What a response means for the notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Twilio accepted the message: its SID and status (`queued`, …).
    Accepted { sid: String, status: String },
    /// Worth another attempt later: rate limits (429, code 20429), server
    /// errors (5xx), connections that never opened. `after_ms` is the
    /// server's `Retry-After`, when it gave one.
    Retry {
        error: TwilioError,
        after_ms: Option<u64>,
    },
    /// The number can never receive from us: invalid (21211), not a mobile
    /// (21614), not SMS-capable (21635). Remembered for the recipient.
    Undeliverable(TwilioError),
    /// The recipient replied STOP (21610). Remembered for the recipient.
    OptedOut(TwilioError),
    /// The tenant's credentials are wrong (401, code 20003): nothing can be
    /// sent until they are fixed.
    Unauthorized(TwilioError),
    /// Refused for this message; trying again would fail the same way
    /// (21612, 21408, 21617 body too long, other 4xx, a denied request),
    /// or might send it twice (no answer to a request that went out).
    Rejected(TwilioError),
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

/// Reads a response.
pub fn classify(response: &Response) -> Verdict {
    let (status, body, retry_after) = match response {
        Response::Transport(transport) => {
            let error = |message: String| TwilioError {
                status: 0,
                code: None,
                message,
            };
            return match transport {
                Transport::Refused(why) => Verdict::Rejected(error(why.clone())),
                Transport::NotConnected(why) => Verdict::Retry {
                    error: error(format!("could not connect to Twilio: {why}")),
                    after_ms: None,
                },
                // At most once: a retry could send it twice.
                Transport::NoAnswer(why) => Verdict::Rejected(error(format!(
                    "{why}; Twilio may have taken the SMS, so it is not sent again"
                ))),
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
            Some(created) if created.sid.starts_with("SM") || created.sid.starts_with("MM") => {
                Verdict::Accepted {
                    sid: created.sid,
                    status: created.status.unwrap_or_else(|| "unknown".into()),
                }
            }
            // Twilio took the request but the answer is unreadable: it may
            // well send it, so it must not be retried (at most once).
            _ => Verdict::Rejected(TwilioError {
                status,
                code: None,
                message: "201 without a message SID in the body; not retried, to never send twice"
                    .into(),
            }),
        };
    }
    let refusal = parse::<Refusal>(body);
    let code = refusal.as_ref().and_then(|r| r.code);
    let error = TwilioError {
        status,
        code,
        message: refusal
            .and_then(|r| r.message)
            .unwrap_or_else(|| format!("HTTP {status} without a Twilio error body")),
    };
    match (status, code) {
        (_, Some(21610)) => Verdict::OptedOut(error),
        (_, Some(21211 | 21614 | 21635)) => Verdict::Undeliverable(error),
        (401, _) | (_, Some(20003)) => Verdict::Unauthorized(error),
        (429, _) | (_, Some(20429)) | (500..=599, _) => Verdict::Retry {
            error,
            after_ms: retry_after.map(|s| s.saturating_mul(1000)),
        },
        _ => Verdict::Rejected(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Credentials, Secret};

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
        let r = create_message(&s, "+12345678910", "x");
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
                .ends_with("&StatusCallback=https%3A%2F%2Fhooks.example.com%2Fsms"),
            "{}",
            r.body
        );
    }

    #[test]
    fn a_service_replaces_from() {
        let r = create_message(
            &settings(Sender::Service("MG0123456789abcdef0123456789abcdef".into())),
            "+12345678910",
            "x",
        );
        assert!(r.body.contains("MessagingServiceSid=MG0123"));
        assert!(!r.body.contains("From="));
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
        assert_eq!(
            classify(&http(201, r#"{"sid":"SM0123","status":"queued"}"#)),
            Verdict::Accepted {
                sid: "SM0123".into(),
                status: "queued".into()
            }
        );
        // Accepted but unreadable: never retried.
        assert!(matches!(classify(&http(201, "{}")), Verdict::Rejected(_)));
    }

    #[test]
    fn every_error_class() {
        let kind = |r: &Response| match classify(r) {
            Verdict::Accepted { .. } => "accepted",
            Verdict::Retry { .. } => "retry",
            Verdict::Undeliverable(_) => "undeliverable",
            Verdict::OptedOut(_) => "opted-out",
            Verdict::Unauthorized(_) => "unauthorized",
            Verdict::Rejected(_) => "rejected",
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
            (refusal(401, 20003), "unauthorized"),
            (http(401, ""), "unauthorized"),
            (refusal(400, 21612), "rejected"),
            (refusal(400, 21408), "rejected"),
            (refusal(400, 21617), "rejected"),
            (http(404, "not json"), "rejected"),
            (
                Response::Transport(Transport::NotConnected("timed out".into())),
                "retry",
            ),
            (
                Response::Transport(Transport::NoAnswer("no answer in 5 s".into())),
                "rejected",
            ),
            (
                Response::Transport(Transport::Refused("denied".into())),
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
    }
}
