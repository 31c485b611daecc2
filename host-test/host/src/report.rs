//! Twilio's status callbacks on the host's side: the report handed to
//! `on-delivery-status`, and signing one as Twilio does (for the fake
//! Twilio and the scenario runner; the component verifies).

use crate::bindings::sms_notification::extension::types::DeliveryReport;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// `X-Twilio-Signature` for `url` and `params`: HMAC-SHA1 keyed with the
/// auth token over the URL, then each parameter's name and value sorted by
/// name; base64.
pub fn sign(token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// A report as a host received it: the URL Twilio called, its decoded form
/// body, and the signature header.
pub fn received(url: &str, form: &[u8], signature: Option<&str>) -> DeliveryReport {
    DeliveryReport {
        url: url.to_owned(),
        params: form_urlencoded::parse(form).into_owned().collect(),
        signature: signature.unwrap_or_default().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilios_documented_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675310"),
            ("Digits", "1234"),
            ("From", "+14158675310"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            sign(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "GvWf1cFY/Q7PnoempGyD5oXAezc="
        );
    }
}
