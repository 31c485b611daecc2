//! `--fake-twilio`: a stand-in for Twilio inside the service, for trying it
//! without an account. It answers every SMS `201` with a fresh SID, as
//! Twilio does, and hands each to the call log as an `sms` line (kept for
//! `GET /v1/fake-twilio/sms`, printed with the number masked). The auth
//! token never leaves the request.

use serde_json::{Value, json};
use sms_host::call::Logged;
use sms_host::outbound::{Io, Received, Request, Sender, Sent, json_response, stand_in_sid};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc::{UnboundedSender, WeakUnboundedSender};

/// The most of a request body it reads.
const MAX_BODY: usize = 64 * 1024;

pub struct TryOut {
    /// Weak: the call log ends at shutdown when the service drops its own
    /// senders, however long runtimes holding this outlive it.
    lines: WeakUnboundedSender<Logged>,
    sids: AtomicU64,
}

impl TryOut {
    pub fn new(lines: &UnboundedSender<Logged>) -> Self {
        Self {
            lines: lines.downgrade(),
            sids: AtomicU64::new(0),
        }
    }
}

impl Sender for TryOut {
    fn send(&self, request: Request) -> Sent {
        let sid = stand_in_sid(self.sids.fetch_add(1, Ordering::Relaxed) + 1);
        let lines = self.lines.clone();
        Box::new(async move {
            let received = Received::read(request.http, MAX_BODY).await?;
            let form: serde_json::Map<String, Value> = received
                .form
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            if let Some(lines) = lines.upgrade() {
                let _ = lines.send(Logged::Line(json!({ "sms": {
                    "at": request.at,
                    "tenant": request.tenant,
                    "method": received.method,
                    "url": received.url,
                    "auth_user": received.auth_user,
                    "form": form,
                    "answer": { "status": 201 },
                }})));
            }
            let response = json_response(201, received.created(&sid), &[])?;
            Ok((response, Box::new(async { Ok(()) }) as Io))
        })
    }

    fn describe(&self) -> String {
        "the in-process try-out stand-in (--fake-twilio)".into()
    }
}
