//! Delivery reports: Twilio's status callbacks for the SMS this extension
//! sent. Pure: the report, the settings and the recipient's records come
//! in, a [`Decision`] goes out.
//!
//! A report is believed only if its `X-Twilio-Signature` verifies: HMAC-SHA1
//! keyed with the account's auth token over the full URL Twilio called
//! followed by every form parameter sorted by name (name, then value),
//! base64; compared in constant time. Anyone can POST to a callback URL;
//! only Twilio (or whoever holds the token) can sign.
//!
//! The URL names the recipient (the extension adds `recipient=` to
//! `statusCallbackURL`), whose history keeps their last SMS with their
//! SID. A report records the SMS's newest status; `undelivered` or
//! `failed` with 30003 (unreachable), 30004 (blocked), 30005 (unknown
//! number) or 30006 (landline) suppresses the number for that recipient,
//! as Twilio's 21614 does at send time. Reports arrive out of order and
//! more than once: a final status is never replaced by an earlier stage,
//! and a report that changes nothing commits nothing.

use crate::prelude::*;

use crate::contact;
use crate::model::{Decision, Delivery, Error, Level, Outcome, Problem, SkipReason};
use crate::policy::settings::{Secret, Settings};
use crate::state::history::History;
use crate::state::keys;
use crate::state::record::{Record, Stored};
use crate::state::suppression::{Suppression, Why};
use crate::twilio::RECIPIENT_PARAM;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Twilio's status callback as the host received it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub url: String,
    pub params: Vec<(String, String)>,
    pub signature: String,
}

/// Twilio error codes that say a number will never receive SMS.
pub const UNDELIVERABLE: [u32; 4] = [30003, 30004, 30005, 30006];

/// Largest report accepted, URL and parameters together; Twilio's are
/// under 2 kB.
pub const MAX_REPORT_BYTES: usize = 16 * 1024;

/// The signature Twilio computes for `url` and `params` with `token`.
pub fn signature(token: &str, url: &str, params: &[(String, String)]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(mac(token, url, params).finalize().into_bytes())
}

fn mac(token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    // By name, then value. An insertion sort: a report has about twenty
    // parameters, and the standard library's sort costs the component 7 kB.
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    for i in 1..sorted.len() {
        let mut j = i;
        while j > 0 && sorted[j - 1] > sorted[j] {
            sorted.swap(j - 1, j);
            j -= 1;
        }
    }
    let mut mac = Hmac::<Sha1>::new_from_slice(token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// Whether `report` is signed with `token` (constant-time comparison).
pub fn verify(token: &Secret, report: &Report) -> bool {
    let Ok(given) = base64::engine::general_purpose::STANDARD.decode(report.signature.trim())
    else {
        return false;
    };
    mac(token.expose(), &report.url, &report.params)
        .verify_slice(&given)
        .is_ok()
}

/// The recipient the report's URL names, if any.
pub fn recipient(report: &Report) -> Option<String> {
    let (_, query) = report.url.split_once('?')?;
    let query = query.split('#').next().unwrap_or(query);
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == RECIPIENT_PARAM)
        .map(|(_, uid)| uid.into_owned())
        .filter(|uid| !uid.is_empty())
}

/// A form parameter's value.
fn param<'a>(report: &'a Report, name: &str) -> Option<&'a str> {
    report
        .params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The order of Twilio's statuses: a final one is never replaced.
fn stage(status: &str) -> u8 {
    match status {
        "delivered" | "undelivered" | "failed" | "read" | "canceled" => 3,
        "sent" => 2,
        "sending" => 1,
        _ => 0,
    }
}

/// Checks the report's shape and signature: the token to verify with, or
/// why the report is refused.
pub fn authenticate(settings: Result<&Settings, &[Problem]>, report: &Report) -> Result<(), Error> {
    let size = report.url.len()
        + report.signature.len()
        + report
            .params
            .iter()
            .map(|(n, v)| n.len() + v.len())
            .sum::<usize>();
    if size > MAX_REPORT_BYTES {
        return Err(Error::InvalidInput(format!(
            "the report is {size} bytes; Twilio's are under {MAX_REPORT_BYTES}"
        )));
    }
    let settings = settings.map_err(|ps| Error::InvalidSettings(ps.to_vec()))?;
    let Some(token) = &settings.report_token else {
        return Err(Error::Unauthenticated(
            "delivery reports are signed with the account's auth token; these settings use an API key without twilioAuthToken, so no report can be verified".into(),
        ));
    };
    if report.signature.is_empty() {
        return Err(Error::Unauthenticated(
            "the report has no X-Twilio-Signature".into(),
        ));
    }
    if !verify(token, report) {
        return Err(Error::Unauthenticated(
            "the report's X-Twilio-Signature does not match its URL and parameters: not from Twilio, altered, or signed with another auth token".into(),
        ));
    }
    Ok(())
}

/// Records a verified report. `uid` is [`recipient`]'s answer; `history`
/// and `suppression` are that recipient's records.
pub fn on_report(
    report: &Report,
    uid: Option<&str>,
    history: &Stored<History>,
    suppression: &Stored<Suppression>,
) -> Decision {
    let (Some(sid), Some(status)) = (
        param(report, "MessageSid").or_else(|| param(report, "SmsSid")),
        param(report, "MessageStatus").or_else(|| param(report, "SmsStatus")),
    ) else {
        return Decision::new(Err(Error::InvalidInput(
            "the report has no MessageSid or no MessageStatus".into(),
        )));
    };
    let error_code = match param(report, "ErrorCode").map(str::trim) {
        None | Some("") => None,
        Some(code) => match code.parse::<u32>() {
            Ok(code) => Some(code),
            Err(_) => {
                return Decision::new(Err(Error::InvalidInput(
                    "the report's ErrorCode is not a number".into(),
                )));
            }
        },
    };
    let unknown = |why: &str| {
        Decision::skip(SkipReason::UnknownSms).log(
            Level::Info,
            format!(
                "a delivery report for {} ({}) was ignored: {why}",
                cut(sid),
                cut(status)
            ),
        )
    };
    let Some(uid) = uid else {
        return unknown("its URL names no recipient (not an SMS this extension sent)");
    };
    let mut history = match history {
        Some(Ok(h)) => h.clone(),
        None => return unknown("no SMS to this recipient is on record"),
        Some(Err(why)) => {
            return Decision::skip(SkipReason::UnknownSms).log(
                Level::Error,
                format!(
                    "a delivery report for {} could not be matched: the history {:?} cannot be read ({})",
                    cut(sid),
                    keys::recipient_history(uid),
                    why.describe()
                ),
            );
        }
    };
    let Some(send) = history.find_mut(sid) else {
        return unknown(
            "no such SMS is on record for this recipient (never sent by this extension, or older than what it keeps)",
        );
    };
    let undeliverable = matches!(status, "undelivered" | "failed")
        && error_code.is_some_and(|c| UNDELIVERABLE.contains(&c));
    let newer = stage(status) >= stage(&send.status)
        && (send.status != status || send.error_code != error_code)
        && stage(&send.status) < 3;
    let to = send.to.clone();
    let mut delivery = Delivery {
        conversation: send.conversation.clone(),
        recipient: uid.to_owned(),
        sid: send.sid.clone(),
        status: send.status.clone(),
        error_code: send.error_code,
        suppressed: false,
    };
    let mut step = Decision::default();
    if newer {
        send.status = status.to_owned();
        send.error_code = error_code;
        delivery.status = status.to_owned();
        delivery.error_code = error_code;
        step.changes.push(crate::model::Change::Put {
            key: keys::recipient_history(uid),
            value: history.encode(),
        });
        let code = error_code.map_or(String::new(), |c| format!(", error {c}"));
        step.logs.push(crate::model::Log {
            level: if stage(status) == 3 && status != "delivered" && status != "read" {
                Level::Warn
            } else {
                Level::Info
            },
            line: format!(
                "SMS {} to {} is {status}{code}",
                delivery.sid,
                contact::mask(&to)
            ),
        });
    }
    if undeliverable && newer {
        match suppression {
            Some(Err(why)) => step.logs.push(crate::model::Log {
                level: Level::Error,
                line: format!(
                    "{} is undeliverable, but the suppression record {:?} cannot be read ({}); it stays in force and is not rewritten",
                    contact::mask(&to),
                    keys::suppression(uid),
                    why.describe()
                ),
            }),
            stored => {
                let current = match stored {
                    Some(Ok(s)) => s.clone(),
                    _ => Suppression {
                        refused: Vec::new(),
                    },
                };
                if current.covers(&to).is_none() {
                    step.changes.push(crate::model::Change::Put {
                        key: keys::suppression(uid),
                        value: current.with(&to, Why::Undeliverable).encode(),
                    });
                    step.logs.push(crate::model::Log {
                        level: Level::Warn,
                        line: format!(
                            "{} is not texted again for {uid:?}: Twilio reported error {} for SMS {}",
                            contact::mask(&to),
                            error_code.unwrap_or(0),
                            delivery.sid
                        ),
                    });
                }
            }
        }
    }
    delivery.suppressed = match suppression {
        Some(Err(_)) => true,
        Some(Ok(s)) => s.covers(&to).is_some() || (undeliverable && newer),
        None => undeliverable && newer,
    };
    step.result = Some(Ok(Outcome::Delivery(delivery)));
    step
}

/// Outside text in a log line: at most 40 characters of it.
fn cut(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::history::Send;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// Twilio's documented example ("Validating signatures"), in the two
    /// versions its documentation has shown.
    #[test]
    fn twilios_documented_examples_verify() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        for (caller, expected) in [
            ("+12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
            ("+14158675310", "GvWf1cFY/Q7PnoempGyD5oXAezc="),
        ] {
            let p = params(&[
                ("CallSid", "CA1234567890ABCDE"),
                ("Caller", caller),
                ("Digits", "1234"),
                ("From", caller),
                ("To", "+18005551212"),
            ]);
            assert_eq!(signature("12345", url, &p), expected);
            let report = Report {
                url: url.into(),
                params: p.clone(),
                signature: expected.into(),
            };
            assert!(verify(&Secret::new("12345"), &report));
            assert!(!verify(&Secret::new("12346"), &report));
            let mut changed = report.clone();
            changed.params[2].1 = "1235".into();
            assert!(!verify(&Secret::new("12345"), &changed));
            let mut moved = report;
            moved.url = "https://mycompany.com/myapp.php?foo=1&bar=3".into();
            assert!(!verify(&Secret::new("12345"), &moved));
        }
    }

    #[test]
    fn the_recipient_comes_from_the_query() {
        let r = |url: &str| Report {
            url: url.into(),
            ..Report::default()
        };
        assert_eq!(
            recipient(&r("https://h/s?recipient=bob%2F1")),
            Some("bob/1".into())
        );
        assert_eq!(
            recipient(&r("https://h/s?a=1&recipient=b+c")),
            Some("b c".into())
        );
        assert_eq!(recipient(&r("https://h/s")), None);
        assert_eq!(recipient(&r("https://h/s?recipient=")), None);
    }

    fn history() -> Stored<History> {
        let mut h = History::default();
        h.keep(Send {
            sid: "SM1".into(),
            conversation: "c".into(),
            to: "+14155552671".into(),
            at: 5,
            status: "queued".into(),
            error_code: None,
        });
        Some(Ok(h))
    }

    fn report(status: &str, code: Option<&str>) -> Report {
        let mut p = params(&[("MessageSid", "SM1"), ("MessageStatus", status)]);
        if let Some(code) = code {
            p.push(("ErrorCode".into(), code.into()));
        }
        Report {
            url: "https://h/s?recipient=bob".into(),
            params: p,
            signature: String::new(),
        }
    }

    #[test]
    fn an_undeliverable_report_suppresses_the_number() {
        let step = on_report(
            &report("undelivered", Some("30006")),
            Some("bob"),
            &history(),
            &None,
        );
        let Ok(Outcome::Delivery(d)) = step.result() else {
            panic!("{step:?}")
        };
        assert!(d.suppressed);
        assert_eq!(d.error_code, Some(30006));
        assert_eq!(step.changes.len(), 2);
        let crate::model::Change::Put { value, .. } = &step.changes[1] else {
            panic!()
        };
        let s = Suppression::decode(value).unwrap();
        assert_eq!(s.covers("+14155552671"), Some(Why::Undeliverable));
    }

    #[test]
    fn a_repeat_or_an_earlier_stage_changes_nothing() {
        let mut h = history();
        let first = on_report(&report("delivered", None), Some("bob"), &h, &None);
        assert_eq!(first.changes.len(), 1);
        let crate::model::Change::Put { value, .. } = &first.changes[0] else {
            panic!()
        };
        h = Some(History::decode(value));
        for late in ["delivered", "sent", "queued"] {
            let again = on_report(&report(late, None), Some("bob"), &h, &None);
            assert!(again.changes.is_empty(), "{late}");
            let Ok(Outcome::Delivery(d)) = again.result() else {
                panic!()
            };
            assert_eq!(d.status, "delivered");
        }
    }

    #[test]
    fn other_failures_do_not_suppress() {
        let step = on_report(
            &report("failed", Some("30007")),
            Some("bob"),
            &history(),
            &None,
        );
        let Ok(Outcome::Delivery(d)) = step.result() else {
            panic!()
        };
        assert!(!d.suppressed);
        assert_eq!(step.changes.len(), 1);
    }

    #[test]
    fn unknown_sms_are_harmless() {
        let mut r = report("delivered", None);
        r.params[0].1 = "SM2".into();
        for (uid, h) in [
            (Some("bob"), history()),
            (None, history()),
            (Some("bob"), None),
        ] {
            let step = on_report(&r, uid, &h, &None);
            assert_eq!(step.result(), &Ok(Outcome::Skipped(SkipReason::UnknownSms)));
            assert!(step.changes.is_empty());
        }
    }

    #[test]
    fn an_unreadable_suppression_is_not_overwritten() {
        let step = on_report(
            &report("undelivered", Some("30003")),
            Some("bob"),
            &history(),
            &Some(Err(crate::state::record::Unreadable::Malformed)),
        );
        assert_eq!(step.changes.len(), 1, "only the history");
        let Ok(Outcome::Delivery(d)) = step.result() else {
            panic!()
        };
        assert!(d.suppressed);
    }

    #[test]
    fn malformed_reports_are_input_errors() {
        let mut r = report("delivered", Some("abc"));
        assert!(matches!(
            on_report(&r, Some("bob"), &history(), &None).result(),
            Err(Error::InvalidInput(_))
        ));
        r.params.clear();
        assert!(matches!(
            on_report(&r, Some("bob"), &history(), &None).result(),
            Err(Error::InvalidInput(_))
        ));
    }
}
