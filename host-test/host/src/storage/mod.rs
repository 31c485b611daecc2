//! Where a host keeps each tenant's durable data: settings and their
//! revision, the component's state, its timers, a user directory (for hosts
//! with no chat-server database of their own) and recent log lines.
//!
//! [`Storage`] is one trait per concern ([`SettingsStore`], [`UserStore`],
//! [`StateStore`], [`TimerStore`], [`LogStore`]) over the store's own
//! types ([`Change`], [`User`], [`Presence`], [`Level`]), and one module
//! per backend, chosen by URL ([`open`]):
//!
//! - `memory:` keeps everything in the process ([`memory`]): scenarios,
//!   the demo, benchmarks;
//! - `sqlite:PATH` keeps one file ([`sqlite`]): one host process, every
//!   commit on disk (WAL, `synchronous=FULL`) before the call goes on;
//!   concurrent commits share one transaction and one fsync;
//! - `postgres://…` ([`postgres`]): several host processes on one
//!   database. Due timers are claimed with `FOR UPDATE SKIP LOCKED` and a
//!   lease; calls into one tenant run at once in every process, their
//!   commits compare-and-set ([`StateStore::commit_if`]).
//!
//! Timers are rows. [`TimerStore::claim`] leases due rows to the caller (the
//! row stays, so a process that dies mid-call leaves it to fire again when
//! the lease ends); [`TimerStore::finish`] deletes the row, or re-arms it for a
//! retry, only if the lease is still the caller's: a component that set the
//! same timer again during the call keeps its new due time.

use async_trait::async_trait;
use std::sync::Arc;

pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod sealed;
pub mod sqlite;
mod types;

pub use memory::Memory;
pub use types::{Change, Level, Presence, User};

/// The schema version this build writes (see `migrations/`).
pub const SCHEMA_VERSION: i64 = 3;

/// A log line the component wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub at: u64,
    pub level: Level,
    pub line: String,
}

/// Why the store could not do what was asked, by what the caller should
/// do about it. The text names no secret: a database URL appears without
/// its password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The database did not answer, or failed: try again soon.
    Unavailable(String),
    /// The tenant's quota refuses the change: trying again soon changes
    /// nothing until the operator raises it or the state shrinks.
    Full(String),
    /// A stored record cannot be read (sealed under another key, damaged):
    /// an operator must look.
    Corrupt(String),
    /// Another writer changed what the call read: run it again.
    Conflict(String),
    /// The store cannot be opened as asked: a bad URL, a newer schema, a
    /// file another process holds, a missing key. Found at start-up.
    Setup(String),
}

/// What to do with a call that failed on a [`StoreError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Again shortly, with backoff.
    Soon,
    /// Only at the slow sweep: nothing will change by itself.
    Later,
}

impl StoreError {
    /// What was wrong, in words.
    pub fn message(&self) -> &str {
        match self {
            Self::Unavailable(m)
            | Self::Full(m)
            | Self::Corrupt(m)
            | Self::Conflict(m)
            | Self::Setup(m) => m,
        }
    }

    /// When a failed call is worth making again.
    pub fn retry(&self) -> Retry {
        match self {
            Self::Unavailable(_) | Self::Conflict(_) => Retry::Soon,
            Self::Full(_) | Self::Corrupt(_) | Self::Setup(_) => Retry::Later,
        }
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for StoreError {}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A due timer leased to one caller until `lease_until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub tenant: String,
    pub key: String,
    pub due_at: u64,
    /// Calls of this timer that failed since it was last set.
    pub attempts: u32,
    /// The lease: only its holder may finish the row.
    pub token: i64,
}

/// What becomes of a claimed timer after its call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The call answered: the row goes (unless the component set it again).
    Done,
    /// The call failed: fire again at this time, one more attempt counted.
    Retry { at: u64 },
}

/// A tenant's durable data, whichever backend keeps it: one trait per
/// concern, so a wrapper takes only its own (sealing wraps
/// [`SettingsStore`], see [`WithSettings`]). Every backend implements all
/// five; callers hold an `Arc<dyn Storage>`.
pub trait Storage: SettingsStore + UserStore + StateStore + TimerStore + LogStore {}

impl<T: SettingsStore + UserStore + StateStore + TimerStore + LogStore + ?Sized> Storage for T {}

/// The tenant's settings and access record (both secret-bearing).
#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The settings JSON as saved, if any, and its revision (0 before the
    /// first save; bumped by every save).
    async fn settings(&self, tenant: &str) -> Result<(Option<String>, u64)>;

    /// The revision alone: what every call asks first (the component keeps
    /// parsed settings until it changes).
    async fn revision(&self, tenant: &str) -> Result<u64> {
        Ok(self.settings(tenant).await?.1)
    }

    /// Saves settings as given (validating them is the caller's business);
    /// the new revision.
    async fn save_settings(&self, tenant: &str, json: &str) -> Result<u64>;

    /// The tenant's access record (its webhook credentials, API token
    /// hashes, CometChat app): a JSON document the host reads and writes
    /// whole; `None` before the first save. Sealed at rest like settings.
    async fn access(&self, tenant: &str) -> Result<Option<String>>;

    async fn save_access(&self, tenant: &str, json: &str) -> Result<()>;
}

/// The user directory of hosts that keep users themselves.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn find_user(&self, tenant: &str, uid: &str) -> Result<Option<User>>;

    /// Creates or replaces a user (their presence too, keeping the time
    /// of the last [`UserStore::set_presence`]).
    async fn put_user(&self, tenant: &str, user: &User) -> Result<()>;

    /// How many users the tenant has (for a quota).
    async fn user_count(&self, tenant: &str) -> Result<u64>;

    /// Sets a known user's presence as of `at` (milliseconds), unless a
    /// presence of a later time is already recorded: a presence event that
    /// arrives late (a webhook retried) never overwrites a newer one.
    /// `None`: no such user; `Some(false)`: ignored as older.
    async fn set_presence(
        &self,
        tenant: &str,
        uid: &str,
        presence: Presence,
        at: u64,
    ) -> Result<Option<bool>>;
}

/// The component's state, committed with its timers all or none.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// The most state keys the tenant may keep; `None` for no limit.
    async fn set_quota(&self, tenant: &str, max_keys: Option<usize>) -> Result<()>;

    async fn state_get(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>>;

    /// The tenant's state under `prefix`, in key order.
    async fn state_prefix(&self, tenant: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;

    /// Deletes one state key; whether it was there.
    async fn state_delete(&self, tenant: &str, key: &str) -> Result<bool>;

    /// Applies the changes all or none, durably before it returns. Setting
    /// a timer clears its lease and attempts.
    async fn commit(&self, tenant: &str, changes: &[Change]) -> Result<()> {
        self.commit_if(tenant, &[], changes).await
    }

    /// [`StateStore::commit`], only if every key in `read` still holds the
    /// value given (`None`: absent), checked and applied as one: else
    /// [`StoreError::Conflict`] and nothing written. A call that read
    /// those values commits only what it decided from them.
    async fn commit_if(&self, tenant: &str, read: &[Read], changes: &[Change]) -> Result<()>;
}

/// A key a call read, and what it held then (`None`: absent).
pub type Read = (String, Option<Vec<u8>>);

/// The conflict [`StateStore::commit_if`] answers with: which key changed.
pub(crate) fn changed(key: &str) -> StoreError {
    StoreError::Conflict(format!(
        "{key:?} changed since the call read it; nothing was written"
    ))
}

/// Timers as rows, claimed with a lease.
#[async_trait]
pub trait TimerStore: Send + Sync {
    /// The tenant's timers: key and due time, in key order.
    async fn timers(&self, tenant: &str) -> Result<Vec<(String, u64)>>;

    /// The earliest due time of a timer no one holds a lease on.
    async fn next_due(&self, now: u64) -> Result<Option<u64>>;

    /// How many timers are set, all tenants, by kind (a key's text before
    /// its first `/`: `deliver` for notifications, retries and waits,
    /// `expire` for records that may go), in kind order: for a service's
    /// metrics.
    async fn timer_counts(&self) -> Result<Vec<(String, u64)>>;

    /// Leases up to `limit` timers due by `until` that no live lease holds,
    /// earliest first (then by tenant and key), until `now + lease_ms`.
    async fn claim(&self, until: u64, now: u64, limit: usize, lease_ms: u64) -> Result<Vec<Claim>> {
        self.claim_skipping(until, now, limit, lease_ms, &[]).await
    }

    /// [`TimerStore::claim`], leaving out the timers of the tenants in
    /// `skip` (those with as many calls running as they may have), so one
    /// tenant's backlog does not fill every claim.
    async fn claim_skipping(
        &self,
        until: u64,
        now: u64,
        limit: usize,
        lease_ms: u64,
        skip: &[String],
    ) -> Result<Vec<Claim>>;

    /// Ends a lease (see [`Finish`]); a lease that is no longer the
    /// caller's is left alone.
    async fn finish(&self, claim: &Claim, finish: Finish) -> Result<()>;

    /// Extends the leases still held under `tokens` to `until`: a process
    /// renews its claims while their calls run, so a lease can be short
    /// and a dead process's timers are taken over within it. A lease that
    /// ended (finished, or taken over) is left alone. How many were renewed.
    async fn renew(&self, tokens: &[i64], until: u64) -> Result<u64>;
}

/// The component's recent log lines.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Keeps a log line, without waiting for it to be written. Not part
    /// of any commit: a line may be lost in a crash.
    async fn log(&self, tenant: &str, line: LogLine) -> Result<()>;

    /// The tenant's log lines after position `after` (0 for all), with
    /// their positions, oldest first, at most `limit`; every line this
    /// process logged before the call is among them.
    async fn logs(&self, tenant: &str, after: u64, limit: usize) -> Result<Vec<(u64, LogLine)>>;
}

/// A lease token no other process will draw: a random start per process,
/// then counted up.
pub(crate) fn lease_token() -> i64 {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicI64, Ordering};
    static NEXT: OnceLock<AtomicI64> = OnceLock::new();
    NEXT.get_or_init(|| {
        let start = RandomState::new().hash_one((std::process::id(), std::time::SystemTime::now()));
        AtomicI64::new((start >> 1) as i64)
    })
    .fetch_add(1, Ordering::Relaxed)
}

/// Opens the backend a URL names: `memory:`, `sqlite:PATH` or
/// `postgres://…` (also `postgresql://…`), migrating its schema.
pub async fn open(url: &str) -> Result<Arc<dyn Storage>> {
    if url == "memory:" {
        Ok(Arc::new(Memory::default()))
    } else if let Some(path) = url.strip_prefix("sqlite:") {
        Ok(Arc::new(sqlite::Sqlite::open(
            path.trim_start_matches("//"),
        )?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(Arc::new(postgres::Postgres::connect(url).await?));
        #[cfg(not(feature = "postgres"))]
        Err(StoreError::Setup(
            "this build has no PostgreSQL backend (the sms-host feature `postgres`)".into(),
        ))
    } else {
        Err(StoreError::Setup(format!(
            "unknown database URL {:?}: expected memory:, sqlite:PATH or postgres://…",
            without_password(url)
        )))
    }
}

/// Opens the store a host serves from: [`open`], with settings sealed
/// ([`sealed`]) on every durable backend. Without a `key`, a SQLite file
/// gets one beside it (`PATH.key`, created owner-only on first use; keep it
/// with the database's backups: the settings cannot be read without it);
/// PostgreSQL needs one given, since every process must share it.
pub async fn open_sealed(url: &str, key: Option<sealed::Key>) -> Result<Arc<dyn Storage>> {
    if url == "memory:" {
        return open(url).await;
    }
    let key = match (key, url.strip_prefix("sqlite:")) {
        (Some(key), _) => key,
        (None, Some(path)) if !path.is_empty() => {
            let file = std::path::PathBuf::from(format!("{}.key", path.trim_start_matches("//")));
            let new = !file.exists();
            let key = sealed::Key::from_file(&file, true).map_err(StoreError::Setup)?;
            if new {
                tracing::info!(
                    "created the settings key {} (keep it with the database: the settings cannot be read without it)",
                    file.display()
                );
            }
            key
        }
        (None, Some(_)) => return open(url).await,
        (None, None) => {
            return Err(StoreError::Setup(format!(
                "{} needs a settings key (SMS_SETTINGS_KEY or --settings-key-file): \
                 every process must seal and open settings with the same one",
                without_password(url)
            )));
        }
    };
    let store = open(url).await?;
    Ok(Arc::new(WithSettings {
        settings: Arc::new(sealed::Sealed::new(store.clone(), key)),
        rest: store,
    }))
}

/// A store whose settings go through another [`SettingsStore`] (one that
/// seals them, say), and everything else to `rest` as it is.
pub struct WithSettings {
    pub settings: Arc<dyn SettingsStore>,
    pub rest: Arc<dyn Storage>,
}

#[async_trait]
impl SettingsStore for WithSettings {
    async fn settings(&self, tenant: &str) -> Result<(Option<String>, u64)> {
        self.settings.settings(tenant).await
    }
    async fn revision(&self, tenant: &str) -> Result<u64> {
        self.settings.revision(tenant).await
    }
    async fn save_settings(&self, tenant: &str, json: &str) -> Result<u64> {
        self.settings.save_settings(tenant, json).await
    }
    async fn access(&self, tenant: &str) -> Result<Option<String>> {
        self.settings.access(tenant).await
    }
    async fn save_access(&self, tenant: &str, json: &str) -> Result<()> {
        self.settings.save_access(tenant, json).await
    }
}

#[async_trait]
impl UserStore for WithSettings {
    async fn find_user(&self, tenant: &str, uid: &str) -> Result<Option<User>> {
        self.rest.find_user(tenant, uid).await
    }
    async fn put_user(&self, tenant: &str, user: &User) -> Result<()> {
        self.rest.put_user(tenant, user).await
    }
    async fn user_count(&self, tenant: &str) -> Result<u64> {
        self.rest.user_count(tenant).await
    }
    async fn set_presence(
        &self,
        tenant: &str,
        uid: &str,
        presence: Presence,
        at: u64,
    ) -> Result<Option<bool>> {
        self.rest.set_presence(tenant, uid, presence, at).await
    }
}

#[async_trait]
impl StateStore for WithSettings {
    async fn set_quota(&self, tenant: &str, max_keys: Option<usize>) -> Result<()> {
        self.rest.set_quota(tenant, max_keys).await
    }
    async fn state_get(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.rest.state_get(tenant, key).await
    }
    async fn state_prefix(&self, tenant: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.rest.state_prefix(tenant, prefix).await
    }
    async fn state_delete(&self, tenant: &str, key: &str) -> Result<bool> {
        self.rest.state_delete(tenant, key).await
    }
    async fn commit_if(&self, tenant: &str, read: &[Read], changes: &[Change]) -> Result<()> {
        self.rest.commit_if(tenant, read, changes).await
    }
}

#[async_trait]
impl TimerStore for WithSettings {
    async fn timers(&self, tenant: &str) -> Result<Vec<(String, u64)>> {
        self.rest.timers(tenant).await
    }
    async fn next_due(&self, now: u64) -> Result<Option<u64>> {
        self.rest.next_due(now).await
    }
    async fn timer_counts(&self) -> Result<Vec<(String, u64)>> {
        self.rest.timer_counts().await
    }
    async fn claim_skipping(
        &self,
        until: u64,
        now: u64,
        limit: usize,
        lease_ms: u64,
        skip: &[String],
    ) -> Result<Vec<Claim>> {
        self.rest
            .claim_skipping(until, now, limit, lease_ms, skip)
            .await
    }
    async fn finish(&self, claim: &Claim, finish: Finish) -> Result<()> {
        self.rest.finish(claim, finish).await
    }
    async fn renew(&self, tokens: &[i64], until: u64) -> Result<u64> {
        self.rest.renew(tokens, until).await
    }
}

#[async_trait]
impl LogStore for WithSettings {
    async fn log(&self, tenant: &str, line: LogLine) -> Result<()> {
        self.rest.log(tenant, line).await
    }
    async fn logs(&self, tenant: &str, after: u64, limit: usize) -> Result<Vec<(u64, LogLine)>> {
        self.rest.logs(tenant, after, limit).await
    }
}

/// The URL with any password replaced by `***`, for error messages.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// How many keys a tenant with `present(key)` keys among `count` would
/// hold after `changes`.
pub(crate) fn keys_after(
    count: usize,
    changes: &[Change],
    mut present: impl FnMut(&str) -> bool,
) -> usize {
    let mut touched = std::collections::HashMap::new();
    for change in changes {
        match change {
            Change::Put { key, .. } => touched.insert(key.as_str(), true),
            Change::Delete(key) => touched.insert(key.as_str(), false),
            Change::SetTimer { .. } | Change::CancelTimer(_) => None,
        };
    }
    touched
        .into_iter()
        .fold(count, |n, (key, after)| match (present(key), after) {
            (false, true) => n + 1,
            (true, false) => n - 1,
            _ => n,
        })
}

/// Opens `db` as a host process does: [`open_sealed`] with the settings
/// key `SMS_SETTINGS_KEY` holds (base64), else the one in `key_file`,
/// else the store's default. The error is a sentence for the operator.
pub async fn open_configured(
    db: &str,
    key_file: Option<&std::path::Path>,
) -> std::result::Result<Arc<dyn Storage>, String> {
    let key = match std::env::var("SMS_SETTINGS_KEY") {
        Ok(text) => Some(sealed::Key::from_base64(&text)?),
        Err(_) => key_file
            .map(|path| sealed::Key::from_file(path, false))
            .transpose()?,
    };
    open_sealed(db, key).await.map_err(|e| e.to_string())
}

/// The error for a commit past a quota.
pub(crate) fn full(after: usize, max: usize) -> StoreError {
    StoreError::Full(format!(
        "the tenant's state is full ({after} keys; at most {max})"
    ))
}

pub(crate) fn level_code(level: types::Level) -> i64 {
    match level {
        types::Level::Debug => 0,
        types::Level::Info => 1,
        types::Level::Warn => 2,
        types::Level::Error => 3,
    }
}

pub(crate) fn level_from(code: i64) -> types::Level {
    match code {
        0 => types::Level::Debug,
        1 => types::Level::Info,
        2 => types::Level::Warn,
        _ => types::Level::Error,
    }
}

pub(crate) fn presence_code(presence: Presence) -> i64 {
    match presence {
        Presence::Online => 1,
        Presence::Offline => 0,
    }
}

pub(crate) fn presence_from(code: i64) -> Presence {
    if code == 1 {
        Presence::Online
    } else {
        Presence::Offline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_urls_we_print() {
        assert_eq!(
            without_password("postgres://sms:hunter2@db.internal:5432/sms"),
            "postgres://sms:***@db.internal:5432/sms"
        );
        assert_eq!(
            without_password("postgres://sms@db/sms"),
            "postgres://sms@db/sms"
        );
        assert_eq!(without_password("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
        assert_eq!(
            without_password("postgresql://u:p@h/d?sslmode=disable"),
            "postgresql://u:***@h/d?sslmode=disable"
        );
    }
}
