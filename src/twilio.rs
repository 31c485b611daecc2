//! Twilio's `CreateMessage`: building the request and reading the answer.
//!
//! `POST https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages.json`
//! with HTTP Basic auth and a form body of `To`, `From` (or
//! `MessagingServiceSid`) and `Body`; `201` with JSON carrying `sid`.

use crate::model::TwilioError;
use crate::settings::{Sender, Settings};
use base64::Engine as _;
use serde::Deserialize;

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
    let credentials = format!("{}:{}", settings.account_sid, settings.auth_token.expose());
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
    },
    /// The request never got an answer (denied, refused, timed out…).
    Transport(String),
}

/// What a response means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Twilio accepted the message.
    Accepted { sid: String },
    /// Anything else, with Twilio's code when it gave one.
    Failed(TwilioError),
}

#[derive(Deserialize)]
struct Created {
    sid: String,
}

#[derive(Deserialize)]
struct Refusal {
    code: Option<u32>,
    message: Option<String>,
}

/// Reads a response.
pub fn classify(response: &Response) -> Verdict {
    match response {
        Response::Transport(why) => Verdict::Failed(TwilioError {
            status: 0,
            code: None,
            message: why.clone(),
        }),
        Response::Http { status: 201, body } => match serde_json::from_slice::<Created>(body) {
            Ok(created) if created.sid.starts_with("SM") || created.sid.starts_with("MM") => {
                Verdict::Accepted { sid: created.sid }
            }
            _ => Verdict::Failed(TwilioError {
                status: 201,
                code: None,
                message: "201 without a message SID in the body".into(),
            }),
        },
        Response::Http { status, body } => {
            let refusal = serde_json::from_slice::<Refusal>(body).ok();
            Verdict::Failed(TwilioError {
                status: *status,
                code: refusal.as_ref().and_then(|r| r.code),
                message: refusal
                    .and_then(|r| r.message)
                    .unwrap_or_else(|| format!("HTTP {status} without a Twilio error body")),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Secret;

    fn settings(from: Sender) -> Settings {
        Settings::new(
            "AC0123456789abcdef0123456789abcdef",
            Secret::new("s3cret"),
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
    fn a_service_replaces_from() {
        let r = create_message(
            &settings(Sender::Service("MG0123456789abcdef0123456789abcdef".into())),
            "+12345678910",
            "x",
        );
        assert!(r.body.contains("MessagingServiceSid=MG0123"));
        assert!(!r.body.contains("From="));
    }

    #[test]
    fn responses_are_classified() {
        let ok = Response::Http {
            status: 201,
            body: br#"{"sid":"SM0123","status":"queued"}"#.to_vec(),
        };
        assert_eq!(
            classify(&ok),
            Verdict::Accepted {
                sid: "SM0123".into()
            }
        );
        let refused = Response::Http {
            status: 400,
            body: br#"{"code":21211,"message":"Invalid 'To' Phone Number","more_info":"x","status":400}"#.to_vec(),
        };
        assert_eq!(
            classify(&refused),
            Verdict::Failed(TwilioError {
                status: 400,
                code: Some(21211),
                message: "Invalid 'To' Phone Number".into()
            })
        );
        let garbage = Response::Http {
            status: 503,
            body: b"<html>".to_vec(),
        };
        assert!(matches!(
            classify(&garbage),
            Verdict::Failed(TwilioError {
                status: 503,
                code: None,
                ..
            })
        ));
        let no_sid = Response::Http {
            status: 201,
            body: b"{}".to_vec(),
        };
        assert!(matches!(classify(&no_sid), Verdict::Failed(_)));
    }
}
