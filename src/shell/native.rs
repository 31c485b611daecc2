//! An in-memory [`Host`] for native tests and benchmarks: the same driver
//! and core the component runs, without WebAssembly. Not built into the
//! component.

use crate::model::{Change, Error, Level, Message, Millis, Outcome, Receipt, User};
use crate::shell::driver::{self, Cache, Host};
use crate::twilio::{Request, Response};
use std::collections::{BTreeMap, HashMap};

/// Answers a request; the default accepts everything with a fresh SID.
pub type Twilio = Box<dyn FnMut(&Request) -> Response>;

/// A fired timer: its key, when it fired, and the call's result.
pub type Fired = (String, Millis, Result<Outcome, Error>);

/// A tenant's host, kept in memory, with a clock that only moves when told.
pub struct NativeHost {
    pub settings: Option<String>,
    /// Must change whenever `settings` does (see [`Host::settings_revision`]).
    pub settings_revision: u64,
    pub cache: Cache,
    pub users: HashMap<String, User>,
    pub state: BTreeMap<String, Vec<u8>>,
    pub timers: BTreeMap<String, Millis>,
    pub logs: Vec<(Level, String)>,
    pub now: Millis,
    /// Every request sent: when, for which timer key, and the request.
    pub requests: Vec<(Millis, String, Request)>,
    /// The key of the timer being fired, while it is.
    pub firing: String,
    pub twilio: Twilio,
    /// Every commit is refused (a full quota) while set.
    pub refuse_commits: bool,
    /// The next this-many commits are refused (a crash before they land).
    pub refuse_next: std::rc::Rc<std::cell::Cell<u32>>,
    /// Failed calls per timer key, for re-delivery.
    pub redeliveries: HashMap<String, u32>,
    /// Every committed change, in order, while set (a benchmark's
    /// durable baseline writes them to a database).
    pub journal: Option<Vec<Change>>,
}

/// Re-delivery of a timer whose call failed, as the example host does it:
/// 1, 2, 4, 8, 16 s, then every 10 minutes.
fn redelivery_ms(tries: u32) -> Millis {
    if tries < 5 {
        1_000 << tries
    } else {
        10 * 60 * 1000
    }
}

impl Default for NativeHost {
    fn default() -> Self {
        let mut n = 0u64;
        Self {
            settings: None,
            settings_revision: 0,
            cache: Cache::default(),
            users: HashMap::new(),
            state: BTreeMap::new(),
            timers: BTreeMap::new(),
            logs: Vec::new(),
            now: 0,
            requests: Vec::new(),
            firing: String::new(),
            refuse_commits: false,
            refuse_next: Default::default(),
            redeliveries: HashMap::new(),
            journal: None,
            twilio: Box::new(move |_| {
                n += 1;
                Response::Http {
                    status: 201,
                    body: format!(r#"{{"sid":"SM{n:032x}","status":"queued"}}"#).into_bytes(),
                    retry_after: None,
                }
            }),
        }
    }
}

impl NativeHost {
    pub fn on_message(&mut self, message: &Message) -> Result<Outcome, Error> {
        driver::on_message(self, message)
    }

    pub fn on_read(&mut self, receipt: &Receipt) -> Result<Outcome, Error> {
        driver::on_read(self, receipt)
    }

    /// Moves the clock forward by `ms`, firing due timers in due order
    /// (ties by key); at most `max_fires` of them. Returns each fired key,
    /// the time it fired and what the driver answered. A call that fails
    /// because its changes could not be stored fires again later.
    pub fn advance(&mut self, ms: Millis, max_fires: usize) -> Vec<Fired> {
        let target = self.now.saturating_add(ms);
        let mut fired = Vec::new();
        while fired.len() < max_fires {
            let Some((key, due)) = self
                .timers
                .iter()
                .map(|(k, d)| (k.clone(), *d))
                .filter(|(_, d)| *d <= target)
                .min_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)))
            else {
                break;
            };
            self.now = self.now.max(due);
            self.timers.remove(&key);
            self.firing.clone_from(&key);
            let result = driver::on_timer(self, &key);
            if let Err(Error::Host(_)) = result {
                let tries = self.redeliveries.entry(key.clone()).or_default();
                let again = self.now + redelivery_ms(*tries);
                *tries += 1;
                self.timers.entry(key.clone()).or_insert(again);
            } else {
                self.redeliveries.remove(&key);
            }
            fired.push((key, self.now, result));
        }
        self.now = self.now.max(target);
        fired
    }
}

impl Host for NativeHost {
    fn settings(&mut self) -> Option<String> {
        self.settings.clone()
    }

    fn settings_revision(&mut self) -> u64 {
        self.settings_revision
    }

    fn cache(&mut self) -> &mut Cache {
        &mut self.cache
    }

    fn user(&mut self, uid: &str) -> Option<User> {
        self.users.get(uid).cloned()
    }

    fn state_get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.state.get(key).cloned()
    }

    fn commit(&mut self, changes: Vec<Change>) -> Result<(), String> {
        if self.refuse_commits {
            return Err("the tenant's state is full".into());
        }
        if self.refuse_next.get() > 0 {
            self.refuse_next.set(self.refuse_next.get() - 1);
            return Err("the host died before storing the changes".into());
        }
        if let Some(journal) = &mut self.journal {
            journal.extend(changes.iter().cloned());
        }
        for change in changes {
            match change {
                Change::Put { key, value } => {
                    self.state.insert(key, value);
                }
                Change::Delete { key } => {
                    self.state.remove(&key);
                }
                Change::SetTimer { key, due_at } => {
                    self.timers.insert(key, due_at);
                }
                Change::CancelTimer { key } => {
                    self.timers.remove(&key);
                }
            }
        }
        Ok(())
    }

    fn log(&mut self, level: Level, line: &str) {
        self.logs.push((level, line.to_owned()));
    }

    fn now(&mut self) -> Millis {
        self.now
    }

    fn send(&mut self, request: &Request) -> Response {
        self.requests
            .push((self.now, self.firing.clone(), request.clone()));
        (self.twilio)(request)
    }

    /// Only fixed zones: `UTC`, and `Etc/GMT±N` (whose sign is POSIX's,
    /// the opposite of ISO's). Zones with rules are the real host's (and
    /// its scenarios').
    fn utc_offset(&mut self, zone: &str, _at: Millis) -> Option<i32> {
        if zone == "UTC" {
            return Some(0);
        }
        let hours: i32 = zone.strip_prefix("Etc/GMT")?.parse().ok()?;
        (-14..=12).contains(&hours).then_some(-hours * 3600)
    }
}
