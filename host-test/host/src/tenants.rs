//! Each tenant's pool of runtimes, grown on demand and shrunk when idle,
//! and its lanes: calls in one lane run one at a time, calls in different
//! lanes (and different tenants) run at once, up to the tenant's
//! [`Tenants::per_tenant`] calls, so a send waiting on a slow Twilio holds
//! up only the calls of its own lane.
//!
//! A lane is a name the caller gives: the conversation for events
//! ([`conversation_lane`]), the conversation and the recipient for a
//! notification's timer ([`timer_lanes`]), the report's URL for a
//! delivery report. A call may be in several lanes.
//! It only keeps calls that would write the same records apart, so that
//! they seldom conflict; correctness does not rest on it. Every commit is
//! compare-and-set ([`crate::storage::StateStore::commit_if`]): a call that
//! read a key another call changed meanwhile runs again from the start.
//!
//! A runtime holds at most one sandbox here; [`Tenants::max_resident`]
//! bounds how many are kept (the idle ones of the least recently called
//! tenants go first), and [`Tenants::evict_idle`] drops those unused for a
//! while, so memory follows the calls made lately.

use crate::contract::Pre;
use crate::outbound::Policy;
use crate::runtime::Runtime;
use crate::storage::Storage;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex as Plain};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

type Configure = Box<dyn Fn(&mut Runtime) + Send + Sync>;

/// When full, the idle runtimes of the least recently called sixteenth of
/// the tenants go at once: one scan per that many new runtimes, not one
/// per runtime.
const EVICT_SHARE: usize = 16;

/// A tenant's calls at once by default (`--calls-per-tenant`): each may
/// hold one request to Twilio, whose account concurrency is commonly 100
/// requests (error 20429 past it, which the component retries later). At
/// 250 ms a request, 64 send up to 256 SMS a second.
pub const PER_TENANT: usize = 64;

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

/// The lane of an event in `conversation` (a message, an edit, a
/// deletion, a receipt).
pub fn conversation_lane(conversation: &str) -> String {
    format!("conversation {conversation}")
}

/// The lanes of a timer's call, from the component's timer keys
/// (`deliver/{conversation}/{recipient}`, `expire/{conversation}`, parts
/// percent-encoded): its conversation's, so a due notification waits for
/// that conversation's events and they for it, and its recipient's, so
/// two conversations' SMS to one person (both writing that person's
/// history) go one after the other. A key of another shape is a lane of
/// its own (a hint only: see the module's doc).
pub fn timer_lanes(key: &str) -> Vec<String> {
    let part = |p: &str| {
        percent_encoding::percent_decode_str(p)
            .decode_utf8_lossy()
            .into_owned()
    };
    let parts: Vec<&str> = key.split('/').collect();
    match parts.as_slice() {
        [_, conversation] => vec![conversation_lane(&part(conversation))],
        [_, conversation, recipient] => vec![
            conversation_lane(&part(conversation)),
            format!("recipient {}", part(recipient)),
        ],
        _ => vec![key.to_owned()],
    }
}

/// The tenants' runtimes, on the wall clock over one store.
pub struct Tenants {
    storage: Arc<dyn Storage>,
    policy: Policy,
    pre: Pre,
    /// Applied to every runtime made (a directory, a status callback, a
    /// crash signal for tests).
    configure: Configure,
    pools: Arc<Plain<Pools>>,
    /// Most runtimes kept at once over all tenants (`--max-sandboxes`);
    /// past it, the idle ones of the least recently called tenants go.
    pub max_resident: usize,
    /// Most calls of one tenant at once (`--calls-per-tenant`), each in
    /// its own lane; more wait.
    pub per_tenant: usize,
}

#[derive(Default)]
struct Pools {
    tenants: HashMap<String, Pool>,
    /// Runtimes made and not yet dropped: idle and in use.
    resident: usize,
}

struct Pool {
    /// Runtimes no call holds, the most recently used last.
    idle: Vec<(Instant, Runtime)>,
    /// The lanes some call holds or waits for.
    lanes: HashMap<String, Arc<Mutex<()>>>,
    /// The tenant's places for calls at once.
    calls: Arc<Semaphore>,
    /// Calls holding or waiting for one of its runtimes.
    held: usize,
    touched: Instant,
}

impl Pools {
    /// Takes out the idle runtimes of the least recently called tenants
    /// (a share of `max`), for the caller to drop once it has let go of
    /// the map (a sandbox's drop resets its slot).
    fn evict_oldest(&mut self, max: usize) -> Vec<Runtime> {
        let with_idle = self
            .tenants
            .iter()
            .filter(|(_, p)| !p.idle.is_empty())
            .map(|(t, p)| (p.touched, t.clone()));
        let mut gone = Vec::new();
        for tenant in oldest(with_idle, max.div_ceil(EVICT_SHARE)) {
            let pool = self.tenants.get_mut(&tenant).expect("listed above");
            gone.extend(pool.idle.drain(..).map(|(_, rt)| rt));
            if pool.held == 0 {
                self.tenants.remove(&tenant);
            }
        }
        self.resident -= gone.len();
        gone
    }
}

/// A runtime of the tenant's pool, held for one call in its lanes: the
/// lanes' other calls wait until it is dropped, when the runtime goes
/// back to the pool.
pub struct Lease {
    runtime: Option<Runtime>,
    // Let go in this order, after the runtime is back in the pool.
    _permit: OwnedSemaphorePermit,
    _lanes: Vec<OwnedMutexGuard<()>>,
    hold: Hold,
}

/// A call's claim on its tenant's pool and lanes, from when it asks for
/// them (a call given up while waiting lets them go too).
struct Hold {
    pools: Arc<Plain<Pools>>,
    tenant: String,
    lanes: Vec<String>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut pools = self.pools.lock().unwrap();
        if let Some(pool) = pools.tenants.get_mut(&self.tenant) {
            pool.held -= 1;
            pool.touched = Instant::now();
            for name in &self.lanes {
                if pool
                    .lanes
                    .get(name)
                    .is_some_and(|lane| Arc::strong_count(lane) == 1)
                {
                    pool.lanes.remove(name);
                }
            }
        }
    }
}

impl Deref for Lease {
    type Target = Runtime;
    fn deref(&self) -> &Runtime {
        self.runtime.as_ref().expect("held until dropped")
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Runtime {
        self.runtime.as_mut().expect("held until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let runtime = self.runtime.take().expect("held until dropped");
        let mut pools = self.hold.pools.lock().unwrap();
        match pools.tenants.get_mut(&self.hold.tenant) {
            Some(pool) => pool.idle.push((Instant::now(), runtime)),
            None => {
                pools.resident -= 1;
                drop(pools);
                drop(runtime);
            }
        }
    }
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
            pools: Arc::default(),
            max_resident: usize::MAX,
            per_tenant: PER_TENANT,
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

    /// A runtime for one of `tenant`'s calls in `lanes`, once the calls
    /// before it in any of them are done and the tenant has fewer than
    /// [`Tenants::per_tenant`] running: an idle one of its pool, or a new
    /// one.
    pub async fn call(&self, tenant: &str, lanes: &[String]) -> Lease {
        // Taken in one order by every call: no two wait for each other.
        let mut lanes = lanes.to_vec();
        lanes.sort_unstable();
        lanes.dedup();
        let (locks, calls) = {
            let mut pools = self.pools.lock().unwrap();
            let per_tenant = self.per_tenant.max(1);
            let pool = pools
                .tenants
                .entry(tenant.to_owned())
                .or_insert_with(|| Pool {
                    idle: Vec::new(),
                    lanes: HashMap::new(),
                    calls: Arc::new(Semaphore::new(per_tenant)),
                    held: 0,
                    touched: Instant::now(),
                });
            pool.held += 1;
            pool.touched = Instant::now();
            let locks: Vec<Arc<Mutex<()>>> = lanes
                .iter()
                .map(|lane| pool.lanes.entry(lane.clone()).or_default().clone())
                .collect();
            (locks, pool.calls.clone())
        };
        let hold = Hold {
            pools: self.pools.clone(),
            tenant: tenant.to_owned(),
            lanes,
        };
        let mut held = Vec::with_capacity(locks.len());
        for lock in locks {
            held.push(lock.lock_owned().await);
        }
        let permit = calls.acquire_owned().await.expect("never closed");
        let (runtime, evicted) = {
            let mut pools = self.pools.lock().unwrap();
            let pool = pools.tenants.get_mut(tenant).expect("held");
            match pool.idle.pop() {
                Some((_, runtime)) => (Some(runtime), Vec::new()),
                None => {
                    let max = self.max_resident.max(1);
                    let evicted = if pools.resident >= max {
                        pools.evict_oldest(max)
                    } else {
                        Vec::new()
                    };
                    pools.resident += 1;
                    (None, evicted)
                }
            }
        };
        // Dropped after the map is let go.
        drop(evicted);
        Lease {
            runtime: Some(runtime.unwrap_or_else(|| self.spare())),
            _permit: permit,
            _lanes: held,
            hold,
        }
    }

    /// Drops the runtimes (and their sandboxes) no call used within
    /// `idle`, and the pools of tenants left with none; how many runtimes
    /// went. Their data stays; the next call makes a new one (about 10 µs).
    pub fn evict_idle(&self, idle: Duration) -> usize {
        let now = Instant::now();
        let mut pools = self.pools.lock().unwrap();
        let mut gone = Vec::new();
        pools.tenants.retain(|_, pool| {
            let stale = pool
                .idle
                .iter()
                .take_while(|(at, _)| now.duration_since(*at) >= idle)
                .count();
            gone.extend(pool.idle.drain(..stale).map(|(_, rt)| rt));
            // A lane left by a call given up while it waited (the map
            // lock is held: no one takes a lane meanwhile).
            pool.lanes.retain(|_, lane| Arc::strong_count(lane) > 1);
            pool.held > 0 || !pool.idle.is_empty()
        });
        pools.resident -= gone.len();
        // Dropped after the map is let go.
        drop(pools);
        gone.len()
    }

    /// How many runtimes are kept now, idle or in use.
    pub fn resident(&self) -> usize {
        self.pools.lock().unwrap().resident
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

    #[test]
    fn a_timer_runs_in_its_conversations_and_recipients_lanes() {
        assert_eq!(
            timer_lanes("deliver/c%2F1/b%20b"),
            [conversation_lane("c/1"), "recipient b b".to_owned()]
        );
        assert_eq!(timer_lanes("expire/c%2F1"), [conversation_lane("c/1")]);
        assert_eq!(timer_lanes("odd"), ["odd"]);
    }
}
