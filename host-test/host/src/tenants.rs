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

/// When full, the least recently called sixteenth goes at once: one scan
/// per that many new tenants, not one per tenant.
const EVICT_SHARE: usize = 16;

/// Takes out up to `n` of the least recently called runtimes no call
/// holds, for the caller to drop once it has let go of the map.
fn evict_oldest(slots: &mut HashMap<String, Slot>, n: usize) -> Vec<Slot> {
    let unheld = slots
        .iter()
        .filter(|(_, s)| Arc::strong_count(&s.runtime) == 1)
        .map(|(t, s)| (s.touched, t.clone()));
    oldest(unheld, n)
        .into_iter()
        .filter_map(|t| slots.remove(&t))
        .collect()
}

/// The `n` names touched least recently (the smallest times), in no
/// order: what a bounded map forgets when full, a share at a time.
pub fn oldest<T: Ord>(entries: impl Iterator<Item = (T, String)>, n: usize) -> Vec<String> {
    let mut entries: Vec<(T, String)> = entries.collect();
    let n = n.min(entries.len());
    if n == 0 {
        return Vec::new();
    }
    if n < entries.len() {
        entries.select_nth_unstable(n - 1);
    }
    entries.truncate(n);
    entries.into_iter().map(|(_, t)| t).collect()
}

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

    /// A runtime of its own, kept by no one: for a call that commits
    /// nothing (`validate-settings`, `preview`, `inspect`), which need not
    /// wait for the tenant's other calls, such as a send waiting on Twilio.
    /// Its sandbox is made for the call (about 10 µs) and goes with it.
    pub fn spare(&self) -> Runtime {
        let mut runtime = Runtime::on(self.policy.clone(), self.pre.clone(), self.storage.clone());
        runtime.clock = crate::clock::Clock::wall();
        (self.configure)(&mut runtime);
        runtime
    }

    /// The runtime `tenant`'s calls run on: the one it has, or a new one.
    pub fn of(&self, tenant: &str) -> Arc<Mutex<Runtime>> {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap();
        if let Some(slot) = slots.get_mut(tenant) {
            slot.touched = now;
            return slot.runtime.clone();
        }
        // Dropped after the map is let go: a sandbox's drop resets its slot.
        let mut evicted = Vec::new();
        if slots.len() >= self.max_resident.max(1) {
            evicted = evict_oldest(&mut slots, self.max_resident.max(1).div_ceil(EVICT_SHARE));
        }
        let runtime = Arc::new(Mutex::new(self.spare()));
        slots.insert(
            tenant.to_owned(),
            Slot {
                runtime: runtime.clone(),
                touched: now,
            },
        );
        drop(slots);
        drop(evicted);
        runtime
    }

    /// Drops the runtimes (and their sandboxes) no call holds and none
    /// asked for within `idle`; how many went. Their data stays; the next
    /// call makes a new one (about 10 µs).
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap();
        let gone: Vec<(String, Slot)> = slots
            .extract_if(|_, s| {
                Arc::strong_count(&s.runtime) == 1 && now.duration_since(s.touched) >= idle
            })
            .collect();
        // Dropped after the map is let go.
        drop(slots);
        gone.len()
    }

    /// How many runtimes are kept now.
    pub fn resident(&self) -> usize {
        self.slots.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_touched_go_first() {
        let start = Instant::now();
        let entries = || {
            [5u64, 1, 9, 3, 7]
                .into_iter()
                .map(move |ms| (start + Duration::from_millis(ms), format!("t{ms}")))
        };
        let mut two = oldest(entries(), 2);
        two.sort();
        assert_eq!(two, ["t1", "t3"]);
        assert_eq!(oldest(entries(), 0), Vec::<String>::new());
        assert_eq!(oldest(entries(), 9).len(), 5, "no more than there are");
    }
}
