//! Property tests of the product's promises: the oracle of
//! `tests/oracle/mod.rs` (a model of conversations and the laws) run on the
//! driver and core with the in-memory host, many cases. `tests/fuzz.rs`
//! runs the same generator and laws through the real `.wasm`.

#[path = "../tests/oracle/mod.rs"]
mod oracle;

use crate::model::{Error, Receipt};
use crate::shell::native::NativeHost;
use crate::twilio::{Response, Transport};
use oracle::{Fault, Request, System};
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::rc::Rc;

/// The in-memory host as the oracle's system.
struct Native {
    host: NativeHost,
    script: Rc<RefCell<VecDeque<Fault>>>,
    /// The fault applied to each request, in order.
    applied: Rc<RefCell<Vec<Option<Fault>>>>,
    seen: usize,
    outputs: String,
}

impl Native {
    fn new() -> Self {
        let mut host = NativeHost::default();
        let script: Rc<RefCell<VecDeque<Fault>>> = Rc::default();
        let applied: Rc<RefCell<Vec<Option<Fault>>>> = Rc::default();
        let mut accept = std::mem::replace(&mut host.twilio, Box::new(|_| unreachable!()));
        let (queue, log, crash) = (script.clone(), applied.clone(), host.refuse_next.clone());
        host.twilio = Box::new(move |request| {
            let fault = queue.borrow_mut().pop_front();
            log.borrow_mut().push(fault);
            let refusal = |status: u16, code: u32| Response::Http {
                status,
                body: format!(r#"{{"code":{code},"message":"scripted"}}"#).into_bytes(),
                retry_after: Some(5),
            };
            match fault {
                None => accept(request),
                Some(Fault::RateLimited) => refusal(429, 20429),
                Some(Fault::ServerError) => refusal(503, 0),
                Some(Fault::NotConnected) => {
                    Response::Transport(Transport::NotConnected("refused".into()))
                }
                Some(Fault::Stop) => refusal(400, 21610),
                Some(Fault::NotMobile) => refusal(400, 21614),
                Some(Fault::BadCredentials) => refusal(401, 20003),
                Some(Fault::WrongSender) => refusal(400, 21659),
                Some(Fault::Garbled) => Response::Http {
                    status: 201,
                    body: b"<html>".to_vec(),
                    retry_after: None,
                },
                Some(Fault::Reset) => {
                    Response::Transport(Transport::NoAnswer("connection reset".into()))
                }
                Some(Fault::Crash) => {
                    // Twilio takes it; the call dies before the answer lands.
                    crash.set(1);
                    accept(request)
                }
            }
        });
        Self {
            host,
            script,
            applied,
            seen: 0,
            outputs: String::new(),
        }
    }

    fn called(
        &mut self,
        what: &str,
        result: &Result<crate::model::Outcome, Error>,
    ) -> Result<bool, String> {
        let _ = writeln!(self.outputs, "{what}: {result:?}");
        match result {
            Ok(_) | Err(Error::InvalidSettings(_)) => Ok(true),
            Err(Error::Host(_)) => Ok(false),
            Err(e) => Err(format!("{e:?}")),
        }
    }
}

impl System for Native {
    fn now(&self) -> u64 {
        self.host.now
    }

    fn save_settings(&mut self, json: &str) {
        self.host.settings = Some(json.to_owned());
        self.host.settings_revision += 1;
    }

    fn put_user(&mut self, uid: &str, online: bool, number: Option<&str>) {
        let metadata = match number {
            Some(n) => format!(r#"{{"@private":{{"contactNumber":"{n}"}}}}"#),
            None => "{}".into(),
        };
        let presence = if online {
            crate::model::Presence::Online
        } else {
            crate::model::Presence::Offline
        };
        self.host.users.insert(
            uid.into(),
            crate::model::User {
                uid: uid.into(),
                name: uid.to_uppercase(),
                presence,
                metadata,
            },
        );
    }

    fn message(&mut self, m: &crate::model::Message) -> Result<bool, String> {
        let result = self.host.on_message(m);
        self.called("on-message", &result)
    }

    fn read(&mut self, r: &Receipt) -> Result<bool, String> {
        let result = self.host.on_read(r);
        self.called("on-read", &result)
    }

    fn script(&mut self, fault: Fault) {
        self.script.borrow_mut().push_back(fault);
    }

    fn clear_script(&mut self) {
        self.script.borrow_mut().clear();
    }

    fn quota(&mut self, full: bool) {
        self.host.refuse_commits = full;
    }

    fn advance(&mut self, ms: u64) -> Result<(), String> {
        for (key, _, result) in self.host.advance(ms, 100_000) {
            self.called(&key, &result)?;
        }
        Ok(())
    }

    fn take_requests(&mut self) -> Vec<Request> {
        let faults = self.applied.borrow();
        let requests = self.host.requests[self.seen..]
            .iter()
            .zip(&faults[self.seen..])
            .map(|((at, key, request), fault)| {
                let form: std::collections::HashMap<String, String> =
                    form_urlencoded::parse(request.body.as_bytes())
                        .into_owned()
                        .collect();
                Request {
                    at: *at,
                    to: form["To"].clone(),
                    body: form["Body"].clone(),
                    key: key.clone(),
                    fault: *fault,
                }
            })
            .collect::<Vec<_>>();
        self.seen = self.host.requests.len();
        requests
    }

    fn state(&self) -> Vec<(String, Vec<u8>)> {
        self.host
            .state
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn timers(&self) -> Vec<String> {
        self.host.timers.keys().cloned().collect()
    }

    fn outputs(&self) -> String {
        let mut all = self.outputs.clone();
        for (_, line) in &self.host.logs {
            all.push_str(line);
            all.push('\n');
        }
        all
    }
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_laws_hold_for_any_sequence(limits in oracle::limits(), ops in prop::collection::vec(oracle::op(), 1..60)) {
        let outcome = oracle::check(&mut Native::new(), &limits, ops);
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}
