//! Text that came from outside (Twilio's error messages, a proxy's, the
//! host's transport errors) is scrubbed before it reaches an outcome, a log
//! line or a stored record: a secret of the tenant's settings it quotes,
//! in any of the forms it travels in, becomes `[redacted]`, and the
//! recipient's number is masked. It is also cut to a bounded length.

use crate::prelude::*;

use crate::contact;
use crate::policy::settings::{Credentials, Settings};
use base64::Engine as _;

/// Longest outside text kept, in characters.
pub const MAX_OUTSIDE_CHARS: usize = 300;

const REDACTED: &str = "[redacted]";

/// The forms a secret travels in: as it is, base64 alone and with its
/// Basic-auth user (the `Authorization` header), percent-encoded.
fn forms(settings: &Settings) -> Vec<String> {
    let (user, secret) = match &settings.credentials {
        Credentials::AuthToken(token) => (settings.account_sid.as_str(), token.expose()),
        Credentials::ApiKey { sid, secret } => (sid.as_str(), secret.expose()),
    };
    let b64 = &base64::engine::general_purpose::STANDARD;
    let mut forms = vec![
        b64.encode(format!("{user}:{secret}")),
        b64.encode(secret),
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
        secret.to_owned(),
    ];
    // With an API key, the auth token saved for delivery reports too.
    if let Some(token) = &settings.report_token
        && token.expose() != secret
    {
        let token = token.expose();
        forms.push(b64.encode(token));
        forms.push(
            percent_encoding::utf8_percent_encode(token, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
        );
        forms.push(token.to_owned());
    }
    forms.retain(|f| !f.is_empty());
    forms
}

/// `text` without the settings' secrets, with `number` (if any) masked,
/// cut to [`MAX_OUTSIDE_CHARS`].
pub fn scrub(text: &str, settings: &Settings, number: Option<&str>) -> String {
    let mut out = text.to_owned();
    for form in forms(settings) {
        if out.contains(form.as_str()) {
            out = out.replace(form.as_str(), REDACTED);
        }
    }
    if let Some(number) = number.filter(|n| !n.is_empty())
        && out.contains(number)
    {
        out = out.replace(number, &contact::mask(number));
    }
    match out.char_indices().nth(MAX_OUTSIDE_CHARS) {
        Some((cut, _)) => format!("{}…", &out[..cut]),
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_token_beside_an_api_key_is_scrubbed_too() {
        let mut s = Settings::new(
            "AC0123456789abcdef0123456789abcdef",
            Credentials::ApiKey {
                sid: "SK0123456789abcdef0123456789abcdef".into(),
                secret: Secret::new("key-secret"),
            },
            Sender::Number("+14155552671".into()),
        );
        s.report_token = Some(Secret::new("account-auth-token"));
        let out = scrub("echo: account-auth-token and key-secret", &s, None);
        assert_eq!(out, "echo: [redacted] and [redacted]");
    }
    use crate::policy::settings::{Secret, Sender};

    #[test]
    fn every_form_of_the_secret_is_redacted() {
        let s = Settings::new(
            "AC0123456789abcdef0123456789abcdef",
            Credentials::AuthToken(Secret::new("s3cret/+=")),
            Sender::Number("+14155552671".into()),
        );
        let header = base64::engine::general_purpose::STANDARD
            .encode("AC0123456789abcdef0123456789abcdef:s3cret/+=");
        let text = format!(
            "bad token s3cret/+= (Basic {header}), s3cret%2F%2B%3D, {} for +12345678910",
            base64::engine::general_purpose::STANDARD.encode("s3cret/+=")
        );
        let got = scrub(&text, &s, Some("+12345678910"));
        assert!(!got.contains("s3cret"), "{got}");
        assert!(!got.contains(&header), "{got}");
        assert!(!got.contains("+12345678910"), "{got}");
        assert!(got.contains("+12*******10"), "{got}");
        assert_eq!(
            scrub(&"x".repeat(1000), &s, None).chars().count(),
            MAX_OUTSIDE_CHARS + 1
        );
    }
}
