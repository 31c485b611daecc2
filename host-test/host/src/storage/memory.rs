//! The in-memory backend: today's data structures behind the [`Storage`]
//! trait. Tests may also reach a tenant's data directly ([`Memory::tenant`]).

use super::{
    Change, Claim, Finish, LogLine, LogStore, Presence, Read, Result, SettingsStore, StateStore,
    TimerStore, User, UserStore, full, keys_after,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// What the chat server keeps for one tenant. It outlives any instance of
/// the component: a sandbox can be thrown away and re-created at any time.
#[derive(Debug, Default)]
pub struct Tenant {
    /// Settings JSON as the app developer saved it (see [`Tenant::save_settings`]).
    pub settings: Option<String>,
    /// Bumped by every save.
    pub settings_revision: u64,
    /// The access record (see `SettingsStore::access`).
    pub access: Option<String>,
    pub users: HashMap<String, User>,
    /// When each user's presence was last set (see `set_presence`).
    pub presence_at: HashMap<String, u64>,
    pub state: BTreeMap<String, Vec<u8>>,
    /// Timer key → due time (ms).
    pub timers: BTreeMap<String, u64>,
    /// Timer key → (lease token, lease end) while a caller holds it.
    pub leases: HashMap<String, (i64, u64)>,
    /// Timer key → failed calls since it was set.
    pub attempts: HashMap<String, u32>,
    pub logs: Vec<LogLine>,
    /// The most state keys the tenant may keep (a chat server's quota);
    /// `None` for no limit.
    pub max_keys: Option<usize>,
}

impl Tenant {
    /// Saves the tenant's settings as given (validating them is the
    /// caller's business), under a new revision.
    pub fn save_settings(&mut self, json: String) {
        self.settings = Some(json);
        self.settings_revision += 1;
    }

    fn leased(&self, key: &str, now: u64) -> bool {
        self.leases.get(key).is_some_and(|(_, until)| *until > now)
    }
}

pub type Shared = Arc<Mutex<Tenant>>;

/// Every tenant's data, in the process.
#[derive(Debug, Default)]
pub struct Memory {
    tenants: Mutex<BTreeMap<String, Shared>>,
    tokens: std::sync::atomic::AtomicI64,
}

impl Memory {
    /// The tenant's data, created empty on first use.
    pub fn tenant(&self, tenant: &str) -> Shared {
        self.tenants
            .lock()
            .unwrap()
            .entry(tenant.to_owned())
            .or_default()
            .clone()
    }

    fn with<T>(&self, tenant: &str, f: impl FnOnce(&mut Tenant) -> T) -> T {
        f(&mut self.tenant(tenant).lock().unwrap())
    }

    fn all(&self) -> Vec<(String, Shared)> {
        self.tenants
            .lock()
            .unwrap()
            .iter()
            .map(|(name, data)| (name.clone(), data.clone()))
            .collect()
    }
}

#[async_trait]
impl SettingsStore for Memory {
    async fn settings(&self, tenant: &str) -> Result<(Option<String>, u64)> {
        Ok(self.with(tenant, |t| (t.settings.clone(), t.settings_revision)))
    }

    async fn save_settings(&self, tenant: &str, json: &str) -> Result<u64> {
        Ok(self.with(tenant, |t| {
            t.save_settings(json.to_owned());
            t.settings_revision
        }))
    }

    async fn access(&self, tenant: &str) -> Result<Option<String>> {
        Ok(self.with(tenant, |t| t.access.clone()))
    }

    async fn save_access(&self, tenant: &str, json: &str) -> Result<()> {
        self.with(tenant, |t| t.access = Some(json.to_owned()));
        Ok(())
    }
}

#[async_trait]
impl UserStore for Memory {
    async fn find_user(&self, tenant: &str, uid: &str) -> Result<Option<User>> {
        Ok(self.with(tenant, |t| t.users.get(uid).cloned()))
    }

    async fn put_user(&self, tenant: &str, user: &User) -> Result<()> {
        self.with(tenant, |t| t.users.insert(user.uid.clone(), user.clone()));
        Ok(())
    }

    async fn user_count(&self, tenant: &str) -> Result<u64> {
        Ok(self.with(tenant, |t| t.users.len() as u64))
    }

    async fn set_presence(
        &self,
        tenant: &str,
        uid: &str,
        presence: Presence,
        at: u64,
    ) -> Result<Option<bool>> {
        Ok(self.with(tenant, |t| {
            let user = t.users.get_mut(uid)?;
            let last = t.presence_at.entry(uid.to_owned()).or_default();
            if at < *last {
                return Some(false);
            }
            *last = at;
            user.presence = presence;
            Some(true)
        }))
    }
}

#[async_trait]
impl StateStore for Memory {
    async fn set_quota(&self, tenant: &str, max_keys: Option<usize>) -> Result<()> {
        self.with(tenant, |t| t.max_keys = max_keys);
        Ok(())
    }

    async fn state_get(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.with(tenant, |t| t.state.get(key).cloned()))
    }

    async fn state_prefix(&self, tenant: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(self.with(tenant, |t| {
            t.state
                .range(prefix.to_owned()..)
                .take_while(|(key, _)| key.starts_with(prefix))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        }))
    }

    async fn state_delete(&self, tenant: &str, key: &str) -> Result<bool> {
        Ok(self.with(tenant, |t| t.state.remove(key).is_some()))
    }

    async fn commit_if(&self, tenant: &str, read: &[Read], changes: &[Change]) -> Result<()> {
        self.with(tenant, |t| {
            if let Some((key, _)) = read.iter().find(|(k, v)| t.state.get(k) != v.as_ref()) {
                return Err(super::changed(key));
            }
            if let Some(max) = t.max_keys {
                let after = keys_after(t.state.len(), changes, |k| t.state.contains_key(k));
                if after > max {
                    return Err(full(after, max));
                }
            }
            for change in changes {
                match change {
                    Change::Put { key, value } => {
                        t.state.insert(key.clone(), value.clone());
                    }
                    Change::Delete(key) => {
                        t.state.remove(key);
                    }
                    Change::SetTimer { key, due_at } => {
                        t.timers.insert(key.clone(), *due_at);
                        t.leases.remove(key);
                        t.attempts.remove(key);
                    }
                    Change::CancelTimer(key) => {
                        t.timers.remove(key);
                        t.leases.remove(key);
                        t.attempts.remove(key);
                    }
                }
            }
            Ok(())
        })
    }
}

#[async_trait]
impl TimerStore for Memory {
    async fn timers(&self, tenant: &str) -> Result<Vec<(String, u64)>> {
        Ok(self.with(tenant, |t| {
            t.timers.iter().map(|(k, due)| (k.clone(), *due)).collect()
        }))
    }

    async fn timer_counts(&self) -> Result<Vec<(String, u64)>> {
        let mut kinds = BTreeMap::<String, u64>::new();
        for (_, data) in self.all() {
            for key in data.lock().unwrap().timers.keys() {
                let kind = key.split('/').next().unwrap_or_default();
                match kinds.get_mut(kind) {
                    Some(n) => *n += 1,
                    None => {
                        kinds.insert(kind.to_owned(), 1);
                    }
                }
            }
        }
        Ok(kinds.into_iter().collect())
    }

    async fn next_due(&self, now: u64) -> Result<Option<u64>> {
        Ok(self
            .all()
            .into_iter()
            .filter_map(|(_, data)| {
                let t = data.lock().unwrap();
                t.timers
                    .iter()
                    .filter(|(key, _)| !t.leased(key, now))
                    .map(|(_, due)| *due)
                    .min()
            })
            .min())
    }

    async fn claim_skipping(
        &self,
        until: u64,
        now: u64,
        limit: usize,
        lease_ms: u64,
        skip: &[String],
    ) -> Result<Vec<Claim>> {
        // The `limit` earliest, kept in a max-heap: a timer is copied only
        // when it is among them so far, so a sweep over a million timers
        // in batches costs a scan per batch, not a sort of every due one.
        let mut earliest: std::collections::BinaryHeap<(u64, String, String)> =
            std::collections::BinaryHeap::with_capacity(limit.min(4096) + 1);
        for (name, data) in self.all() {
            if skip.contains(&name) {
                continue;
            }
            let t = data.lock().unwrap();
            for (key, &at) in &t.timers {
                if at > until || (!t.leases.is_empty() && t.leased(key, now)) {
                    continue;
                }
                if earliest.len() == limit {
                    match earliest.peek() {
                        Some(top)
                            if (at, name.as_str(), key.as_str()) < (top.0, &top.1, &top.2) =>
                        {
                            earliest.pop();
                        }
                        _ => continue,
                    }
                }
                earliest.push((at, name.clone(), key.clone()));
            }
        }
        let due = earliest.into_sorted_vec();
        Ok(due
            .into_iter()
            .map(|(due_at, tenant, key)| {
                let token = 1 + self
                    .tokens
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.with(&tenant, |t| {
                    t.leases
                        .insert(key.clone(), (token, now.saturating_add(lease_ms)));
                    Claim {
                        attempts: t.attempts.get(&key).copied().unwrap_or(0),
                        tenant: tenant.clone(),
                        key,
                        due_at,
                        token,
                    }
                })
            })
            .collect())
    }

    async fn finish(&self, claim: &Claim, finish: Finish) -> Result<()> {
        self.with(&claim.tenant, |t| {
            if t.leases.get(&claim.key).map(|(token, _)| *token) != Some(claim.token) {
                return;
            }
            t.leases.remove(&claim.key);
            match finish {
                Finish::Done => {
                    t.timers.remove(&claim.key);
                    t.attempts.remove(&claim.key);
                }
                Finish::Retry { at } => {
                    t.timers.insert(claim.key.clone(), at);
                    t.attempts.insert(claim.key.clone(), claim.attempts + 1);
                }
            }
        });
        Ok(())
    }

    async fn renew(&self, tokens: &[i64], until: u64) -> Result<u64> {
        let mut renewed = 0;
        for (_, data) in self.all() {
            for (token, lease_until) in data.lock().unwrap().leases.values_mut() {
                if tokens.contains(token) {
                    *lease_until = until;
                    renewed += 1;
                }
            }
        }
        Ok(renewed)
    }
}

#[async_trait]
impl LogStore for Memory {
    async fn log(&self, tenant: &str, line: LogLine) -> Result<()> {
        self.with(tenant, |t| t.logs.push(line));
        Ok(())
    }

    async fn logs(&self, tenant: &str, after: u64, limit: usize) -> Result<Vec<(u64, LogLine)>> {
        Ok(self.with(tenant, |t| {
            t.logs
                .iter()
                .enumerate()
                .skip(after as usize)
                .take(limit)
                .map(|(i, line)| (i as u64 + 1, line.clone()))
                .collect()
        }))
    }
}
