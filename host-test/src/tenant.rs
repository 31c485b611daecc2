//! A tenant: its durable data (what a chat server keeps in its database) and
//! its sandbox (the `Store` data the component's imports act on).

use crate::bindings::sms_notification::extension::{host, types};
use crate::clock::Clock;
use crate::outbound::Outbound;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Memory one sandbox may use.
pub const MEMORY_LIMIT: usize = 16 << 20;

/// The most user metadata handed to a sandbox; real metadata is a few kB.
pub const MAX_METADATA_BYTES: usize = 64 << 10;
/// The most of a display name handed to a sandbox (an SMS shows 40
/// characters of it); a longer name is cut at a character boundary.
pub const MAX_NAME_BYTES: usize = 1024;

/// A log line the component wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub at: u64,
    pub level: types::Level,
    pub line: String,
}

/// What the chat server keeps for one tenant. It outlives any instance of
/// the component: a sandbox can be thrown away and re-created at any time.
#[derive(Debug, Default)]
pub struct Tenant {
    /// Settings JSON as the app developer saved it (see [`Tenant::save_settings`]).
    settings: Option<String>,
    /// Bumped by every save.
    settings_revision: u64,
    pub users: HashMap<String, types::User>,
    pub state: BTreeMap<String, Vec<u8>>,
    /// Timer key → due time (ms).
    pub timers: BTreeMap<String, u64>,
    pub logs: Vec<LogLine>,
    /// The most state keys the tenant may keep (a chat server's quota);
    /// `None` for no limit.
    pub max_keys: Option<usize>,
}

/// How many keys `state` would hold after `changes`, without applying
/// them: one look-up per key the changes touch.
fn keys_after(state: &BTreeMap<String, Vec<u8>>, changes: &[host::Change]) -> usize {
    let mut present = HashMap::new();
    for change in changes {
        match change {
            host::Change::Put(entry) => present.insert(entry.key.as_str(), true),
            host::Change::Delete(key) => present.insert(key.as_str(), false),
            host::Change::SetTimer(_) | host::Change::CancelTimer(_) => None,
        };
    }
    present.into_iter().fold(state.len(), |n, (key, after)| {
        match (state.contains_key(key), after) {
            (false, true) => n + 1,
            (true, false) => n - 1,
            _ => n,
        }
    })
}

impl Tenant {
    /// Saves the tenant's settings as given (validating them is the
    /// caller's business), under a new revision.
    pub fn save_settings(&mut self, json: String) {
        self.settings = Some(json);
        self.settings_revision += 1;
    }
}

pub type Shared = Arc<Mutex<Tenant>>;

/// The `T` of a tenant's `Store`: WASI contexts plus the tenant's data.
pub struct Sandbox {
    pub tenant: Shared,
    pub clock: Clock,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub outbound: Outbound,
    pub limits: StoreLimits,
}

impl Sandbox {
    pub fn new(tenant: Shared, clock: Clock, outbound: Outbound) -> Self {
        // Nothing but clocks: no filesystem, environment, stdio or sockets.
        let wasi = WasiCtx::builder()
            .wall_clock(clock.clone())
            .monotonic_clock(clock.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            tenant,
            clock,
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound,
            limits: StoreLimitsBuilder::new()
                .memory_size(MEMORY_LIMIT)
                .trap_on_grow_failure(true)
                .build(),
        }
    }

    fn data(&self) -> std::sync::MutexGuard<'_, Tenant> {
        self.tenant.lock().unwrap()
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Sandbox {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl types::Host for Sandbox {}

/// The `host` interface. A chat server would reach its database here, so
/// the functions are async; this one answers from memory.
impl host::Host for Sandbox {
    async fn settings(&mut self) -> Option<String> {
        self.data().settings.clone()
    }

    async fn settings_revision(&mut self) -> u64 {
        self.data().settings_revision
    }

    /// Users edit their profiles: metadata over [`MAX_METADATA_BYTES`] is
    /// withheld (handed over as empty) and a name over [`MAX_NAME_BYTES`] is
    /// cut, so no user's profile can make a sandbox trap.
    async fn find_user(&mut self, uid: String) -> Option<types::User> {
        let data = self.data();
        let user = data.users.get(&uid)?;
        let mut end = user.name.len().min(MAX_NAME_BYTES);
        while !user.name.is_char_boundary(end) {
            end -= 1;
        }
        Some(types::User {
            uid: user.uid.clone(),
            name: user.name[..end].to_owned(),
            presence: user.presence,
            metadata: if user.metadata.len() > MAX_METADATA_BYTES {
                String::new()
            } else {
                user.metadata.clone()
            },
        })
    }

    async fn state_get(&mut self, key: String) -> Option<Vec<u8>> {
        self.data().state.get(&key).cloned()
    }

    /// All or none: changes that would take the tenant past its
    /// [`Tenant::max_keys`] are refused before any is applied.
    async fn commit(&mut self, changes: Vec<host::Change>) -> Result<(), String> {
        let mut data = self.data();
        if let Some(max) = data.max_keys {
            let after = keys_after(&data.state, &changes);
            if after > max {
                return Err(format!(
                    "the tenant's state is full ({after} keys; at most {max})"
                ));
            }
        }
        for change in changes {
            match change {
                host::Change::Put(host::Entry { key, value }) => {
                    data.state.insert(key, value);
                }
                host::Change::Delete(key) => {
                    data.state.remove(&key);
                }
                host::Change::SetTimer(host::Timer { key, due_at }) => {
                    data.timers.insert(key, due_at);
                }
                host::Change::CancelTimer(key) => {
                    data.timers.remove(&key);
                }
            }
        }
        Ok(())
    }

    async fn log(&mut self, level: types::Level, line: String) {
        let at = self.clock.now();
        self.data().logs.push(LogLine { at, level, line });
    }
}
