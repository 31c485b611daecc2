//! Each tenant's runtime, made on its first call and dropped when idle:
//! calls into one tenant run one at a time (its runtime's lock), calls
//! into different tenants never wait on each other, so a tenant whose SMS
//! waits on a slow Twilio holds up only its own later calls.
//!
//! A runtime holds at most one sandbox here; [`Tenants::max_resident`]
//! bounds how many are kept (the least recently called unused one goes
//! first), and [`Tenants::evict_idle`] drops those idle for a while, so
//! memory follows the tenants active lately.

use crate::contract::Pre;
use crate::outbound::Policy;
use crate::runtime::Runtime;
use crate::storage::Storage;
use std::collections::HashMap;
use std::sync::{Arc, Mutex as Plain};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

type Configure = Box<dyn Fn(&mut Runtime) + Send + Sync>;

/// The tenants' runtimes, on the wall clock over one store.
pub struct Tenants {
    storage: Arc<dyn Storage>,
    policy: Policy,
    pre: Pre,
    /// Applied to every runtime made (a directory, a status callback, a
    /// crash signal for tests).
    configure: Configure,
    slots: Plain<HashMap<String, Slot>>,
    /// Most runtimes kept at once (`--max-sandboxes`); past it, the least
    /// recently called one no call holds is dropped.
    pub max_resident: usize,
}

struct Slot {
    runtime: Arc<Mutex<Runtime>>,
    touched: Instant,
}

impl Tenants {
    /// Runtimes running `pre` over `storage`, each set up by `configure`
    /// when made.
    pub fn new(
        storage: &Arc<dyn Storage>,
        policy: &Policy,
        pre: Pre,
        configure: impl Fn(&mut Runtime) + Send + Sync + 'static,
    ) -> Self {
        Self {
            storage: storage.clone(),
            policy: policy.clone(),
            pre,
            configure: Box::new(configure),
            slots: Plain::new(HashMap::new()),
            max_resident: usize::MAX,
        }
    }

    /// The runtime `tenant`'s calls run on: the one it has, or a new one.
    pub fn of(&self, tenant: &str) -> Arc<Mutex<Runtime>> {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap();
        if let Some(slot) = slots.get_mut(tenant) {
            slot.touched = now;
            return slot.runtime.clone();
        }
        if slots.len() >= self.max_resident.max(1) {
            let oldest = slots
                .iter()
                .filter(|(_, s)| Arc::strong_count(&s.runtime) == 1)
                .min_by_key(|(_, s)| s.touched)
                .map(|(t, _)| t.clone());
            if let Some(t) = oldest {
                slots.remove(&t);
            }
        }
        let mut runtime = Runtime::on(self.policy.clone(), self.pre.clone(), self.storage.clone());
        runtime.clock = crate::clock::Clock::wall();
        (self.configure)(&mut runtime);
        let runtime = Arc::new(Mutex::new(runtime));
        slots.insert(
            tenant.to_owned(),
            Slot {
                runtime: runtime.clone(),
                touched: now,
            },
        );
        runtime
    }

    /// Drops the runtimes (and their sandboxes) no call holds and none
    /// asked for within `idle`; how many went. Their data stays; the next
    /// call makes a new one (about 10 µs).
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap();
        let before = slots.len();
        slots.retain(|_, s| {
            Arc::strong_count(&s.runtime) > 1 || now.duration_since(s.touched) < idle
        });
        before - slots.len()
    }

    /// How many runtimes are kept now.
    pub fn resident(&self) -> usize {
        self.slots.lock().unwrap().len()
    }
}
