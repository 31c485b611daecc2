//! The fake Twilio the scenarios, tests, benchmarks and demo run on: an
//! outbound [`Sender`] that answers in-process, `201` with a fresh SID
//! unless a test scripted another [`Answer`] (an error, a transport
//! failure, a delay, or a crash mid-send), and keeps every request it took
//! (without the auth token).

use crate::outbound::{Io, Received, Request, Sender, Sent, json_response, stand_in_sid};
use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions};

/// The most of a request body the fake Twilio reads.
const MAX_BODY: usize = 64 * 1024;

/// A request the fake Twilio received. The Basic-auth password (the auth
/// token) is never kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sms {
    pub tenant: String,
    /// Virtual time of arrival, in milliseconds.
    pub at: u64,
    pub method: String,
    pub url: String,
    pub content_type: Option<String>,
    /// The Basic-auth user name (the account SID).
    pub auth_user: Option<String>,
    pub form: Vec<(String, String)>,
    /// The timeouts the component asked for.
    pub options: Option<RequestOptions>,
    /// What the fake Twilio answered.
    pub answer: Answer,
    /// The timer whose call sent it (for tests that model notifications).
    pub timer: Option<String>,
    /// The SID the fake Twilio gave it, when it answered 201.
    pub sid: Option<String>,
}

/// What the fake Twilio answers to one request. The default is `201` with
/// a fresh SID; a test scripts others with [`FakeTwilio::script`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// HTTP status; 201 when absent.
    #[serde(default)]
    pub status: Option<u16>,
    /// Twilio's error code, put in a Twilio error body.
    #[serde(default)]
    pub code: Option<u32>,
    /// Twilio's error message.
    #[serde(default)]
    pub message: Option<String>,
    /// A `Retry-After` header, in seconds.
    #[serde(default)]
    pub retry_after: Option<u64>,
    /// The raw body, instead of a generated one.
    #[serde(default)]
    pub body: Option<String>,
    /// No HTTP answer at all: `refused` (connection refused), `timeout`
    /// (connecting timed out) or `reset` (the connection dropped after the
    /// request went out).
    #[serde(default)]
    pub transport: Option<Transport>,
    /// Twilio takes the SMS, then the sandbox dies before the answer
    /// arrives (the host kills the call): a crash mid-send.
    #[serde(default)]
    pub crash: bool,
    /// Answer only after this many milliseconds (real time). Past the
    /// first-byte timeout the component asked for, it gets that timeout
    /// instead, as from a real server that is too slow.
    #[serde(default)]
    pub delay_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Refused,
    Timeout,
    Reset,
}

/// The fake Twilio: cheap to clone (clones share everything).
#[derive(Clone, Debug, Default)]
pub struct FakeTwilio {
    /// Every request it took, until [`FakeTwilio::take_sms`].
    pub sms: Arc<Mutex<Vec<Sms>>>,
    /// Scripted answers per tenant, used in order, then the default.
    pub scripts: Arc<Mutex<HashMap<String, VecDeque<Answer>>>>,
    /// Signalled when a scripted crash should kill the call under way: the
    /// runtime's abort signal (see [`crate::TestRuntime`]).
    pub crash: Arc<tokio::sync::Notify>,
    /// The last SID given.
    sids: Arc<AtomicU64>,
    /// Where each SMS also goes as it is taken, as a JSON line (the
    /// wall-clock `host` prints them).
    /// Weak: the printer behind it ends when its host drops its own
    /// senders, whatever fakes are still around.
    tap: Arc<Mutex<Option<tokio::sync::mpsc::WeakUnboundedSender<serde_json::Value>>>>,
}

impl FakeTwilio {
    /// The fake Twilio's next answers to `tenant`'s requests.
    pub fn script(&self, tenant: &str, answers: impl IntoIterator<Item = Answer>) {
        self.scripts
            .lock()
            .unwrap()
            .entry(tenant.to_owned())
            .or_default()
            .extend(answers);
    }

    fn next_answer(&self, tenant: &str) -> Answer {
        self.scripts
            .lock()
            .unwrap()
            .get_mut(tenant)
            .and_then(VecDeque::pop_front)
            .unwrap_or_default()
    }

    /// Takes the SMS received since the last call.
    pub fn take_sms(&self) -> Vec<Sms> {
        std::mem::take(&mut self.sms.lock().unwrap())
    }

    /// Sends each SMS, as it is taken, to `lines` (as [`line`] writes
    /// it) instead of keeping it for [`FakeTwilio::take_sms`].
    pub fn tap(&self, lines: &tokio::sync::mpsc::UnboundedSender<serde_json::Value>) {
        *self.tap.lock().unwrap() = Some(lines.downgrade());
    }
}

impl Sender for FakeTwilio {
    fn send(&self, request: Request) -> Sent {
        let fake = self.clone();
        let sid = self.sids.fetch_add(1, Ordering::SeqCst) + 1;
        let answer = self.next_answer(&request.tenant);
        Box::new(async move {
            let options = request.options;
            let received = Received::read(request.http, MAX_BODY).await?;
            let taken = answer.body.is_none() && answer.status.unwrap_or(201) == 201;
            let sms = Sms {
                tenant: request.tenant,
                at: request.at,
                method: received.method.clone(),
                url: received.url.clone(),
                content_type: received.content_type.clone(),
                auth_user: received.auth_user.clone(),
                form: received.form.clone(),
                options: Some(options),
                answer: answer.clone(),
                timer: request.timer,
                sid: taken.then(|| stand_in_sid(sid)),
            };
            let response = respond(sid, &received, &answer);
            // Tapped, it is handed on, not kept (a long-running host would
            // keep every SMS otherwise).
            let tap = fake.tap.lock().unwrap().clone();
            match tap {
                Some(tap) => drop(tap.upgrade().map(|lines| lines.send(line(&sms)))),
                None => fake.sms.lock().unwrap().push(sms),
            }
            if answer.crash {
                fake.crash.notify_one();
                std::future::pending::<()>().await;
            }
            if let Some(delay) = answer.delay_ms.map(Duration::from_millis) {
                let limit = options
                    .first_byte_timeout
                    .unwrap_or(crate::outbound::MAX_TIMEOUT);
                tokio::time::sleep(delay.min(limit)).await;
                if delay > limit {
                    return Err(Error::ConnectionReadTimeout);
                }
            }
            Ok((response?, Box::new(async { Ok(()) }) as Io))
        })
    }

    fn describe(&self) -> String {
        "the in-process fake".into()
    }
}

/// The fake Twilio's answer to a received request.
fn respond(
    sid: u64,
    received: &Received,
    answer: &Answer,
) -> Result<http::Response<wasmtime_wasi_http::WasiBody>, Error> {
    match answer.transport {
        Some(Transport::Refused) => return Err(Error::ConnectionRefused),
        Some(Transport::Timeout) => return Err(Error::ConnectionTimeout),
        Some(Transport::Reset) => return Err(Error::ConnectionTerminated),
        None => {}
    }
    let status = answer.status.unwrap_or(201);
    let body = match (&answer.body, status) {
        (Some(body), _) => body.clone().into_bytes(),
        (None, 201) => received.created(&stand_in_sid(sid)),
        (None, _) => serde_json::to_vec(&serde_json::json!({
            "code": answer.code,
            "message": answer.message.clone().unwrap_or_else(|| format!("scripted HTTP {status}")),
            "more_info": answer.code.map(|c| format!("https://www.twilio.com/docs/errors/{c}")),
            "status": status,
        }))
        .expect("JSON"),
    };
    let headers: Vec<(&str, String)> = answer
        .retry_after
        .map(|s| ("retry-after", s.to_string()))
        .into_iter()
        .collect();
    json_response(status, body, &headers)
}

fn answer(a: &Answer) -> serde_json::Value {
    if a.crash {
        return serde_json::json!({ "crash": true });
    }
    if let Some(t) = a.transport {
        return serde_json::json!({ "transport": format!("{t:?}").to_lowercase() });
    }
    let mut v = serde_json::json!({ "status": a.status.unwrap_or(201) });
    if let Some(code) = a.code {
        v["code"] = serde_json::json!(code);
    }
    if let Some(s) = a.retry_after {
        v["retry_after"] = serde_json::json!(s);
    }
    if let Some(ms) = a.delay_ms {
        v["delay_ms"] = serde_json::json!(ms);
    }
    v
}

/// A request the fake Twilio received: never the auth token.
pub fn line(sms: &Sms) -> serde_json::Value {
    let form: serde_json::Map<String, serde_json::Value> = sms
        .form
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect();
    serde_json::json!({ "sms": {
        "at": sms.at,
        "tenant": sms.tenant,
        "method": sms.method,
        "url": sms.url,
        "auth_user": sms.auth_user,
        "form": form,
        "answer": answer(&sms.answer),
    }})
}
