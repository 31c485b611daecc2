//! The PostgreSQL backend: several host processes sharing one database.
//!
//! - Calls into one tenant run at once, in this process and in others:
//!   each commit is compare-and-set ([`crate::storage::StateStore::commit_if`]),
//!   checked and applied in one transaction under a transaction-scoped
//!   advisory lock of the tenant's, so a call that read a key another
//!   changed meanwhile writes nothing and runs again. No lock outlives a
//!   commit: a process that dies holds none.
//! - Due timers are claimed with `FOR UPDATE SKIP LOCKED` and a lease, so a
//!   due timer fires on one process; a process that dies mid-call leaves the
//!   row to fire again when its lease ends (the component then gives the
//!   notification up as cut off mid-send: never a second SMS).
//! - Each commit is one transaction on a pooled connection, durable when it
//!   returns (`synchronous_commit` on, the server's default). Concurrent
//!   commits from different connections share WAL flushes: PostgreSQL's own
//!   group commit.

use super::{
    Change, Claim, Finish, LogLine, LogStore, Presence, Read, Result, SCHEMA_VERSION,
    SettingsStore, StateStore, StoreError, TimerStore, User, UserStore, full, keys_after,
    level_code, level_from, presence_code, presence_from, without_password,
};
use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

mod tls;
pub use tls::{Mode as TlsMode, Target};

/// Every released schema, in order; the version is the position + 1.
const MIGRATIONS: [&str; 3] = [
    include_str!("../migrations/postgres/0001_initial.sql"),
    include_str!("../migrations/postgres/0002_leases_and_logs.sql"),
    include_str!("../migrations/postgres/0003_presence_and_access.sql"),
];

/// Connections for commits and reads. A commit waits for its WAL flush;
/// commits in flight together share one, so more connections mean more
/// commits per flush (PostgreSQL's group commit). Three processes with
/// these stay under the server's default 100
/// connections.
pub const POOL: usize = 24;
/// Log lines kept per tenant.
pub const KEEP_LOGS: i64 = 1000;
/// The advisory lock key every migrating process takes first.
const MIGRATION_LOCK: i64 = 0x736d_735f_6d69_6772;

type Pg<T> = std::result::Result<T, tokio_postgres::Error>;

/// A pooled connection and the statements prepared on it (each SQL text is
/// parsed and planned once per connection, not per call).
struct Conn {
    client: Client,
    prepared: std::collections::HashMap<&'static str, Statement>,
}

impl Conn {
    fn new(client: Client) -> Self {
        Self {
            client,
            prepared: Default::default(),
        }
    }

    async fn prepared(&mut self, sql: &'static str) -> Pg<Statement> {
        if let Some(statement) = self.prepared.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await?;
        self.prepared.insert(sql, statement.clone());
        Ok(statement)
    }
}

pub struct Postgres {
    /// Where to connect, as the URL said (it may hold a password: never
    /// shown).
    target: Target,
    /// The URL without its password, for messages.
    url: String,
    pool: Vec<Mutex<Conn>>,
    next: AtomicUsize,
    /// Log lines on their way to the database, written in order, in batches.
    logs: tokio::sync::mpsc::UnboundedSender<Logged>,
}

fn error(url: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("PostgreSQL database {url}: {e}"))
}

/// A time as stored (times past `i64::MAX` never come due anyway).
fn ms(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

/// The advisory lock key of a tenant (FNV-1a of its name).
fn lock_key(tenant: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

async fn connect(target: &Target, shown: &str) -> Result<Client> {
    target
        .connect()
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot connect to {shown}: {}", reason(&e))))
}

/// A connection error with its cause (tokio-postgres's own message for a
/// TLS failure is only "error performing TLS handshake").
fn reason(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match e.source() {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

impl Postgres {
    /// Connects, and migrates the schema (one process at a time).
    pub async fn connect(url: &str) -> Result<Self> {
        let shown = without_password(url);
        let target = Target::parse(url, &shown)?;
        let mut pool = Vec::with_capacity(POOL);
        for _ in 0..POOL {
            pool.push(Mutex::new(Conn::new(connect(&target, &shown).await?)));
        }
        let (logs, lines) = tokio::sync::mpsc::unbounded_channel();
        let writer = connect(&target, &shown).await?;
        tokio::spawn(write_logs(writer, (target.clone(), shown.clone()), lines));
        let this = Self {
            target,
            url: shown,
            pool,
            next: AtomicUsize::new(0),
            logs,
        };
        this.migrate().await?;
        Ok(this)
    }

    async fn migrate(&self) -> Result<()> {
        let url = &self.url;
        let mut conn = self.pool[0].lock().await;
        let tx = conn.client.transaction().await.map_err(|e| error(url, e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| error(url, e))?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .await
            .map_err(|e| error(url, e))?;
        let at: i64 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
            .await
            .map_err(|e| error(url, e))?
            .get(0);
        if at > SCHEMA_VERSION {
            return Err(StoreError::Setup(format!(
                "PostgreSQL database {url} has schema version {at}, newer than this build's \
                 {SCHEMA_VERSION}: run a newer host-test (nothing was changed)"
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(at as usize) {
            let version = i as i64 + 1;
            tx.batch_execute(sql)
                .await
                .map_err(|e| error(url, format!("migrating to schema version {version}: {e}")))?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(|e| error(url, e))?;
        }
        tx.commit().await.map_err(|e| error(url, e))
    }

    /// A pooled connection, taken in turn; one the server closed (a
    /// restart, a network cut) is replaced, so calls work again once the
    /// database is back.
    async fn client(&self) -> tokio::sync::MutexGuard<'_, Conn> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        let mut conn = self.pool[i].lock().await;
        if conn.client.is_closed()
            && let Ok(fresh) = connect(&self.target, &self.url).await
        {
            *conn = Conn::new(fresh);
        }
        conn
    }

    async fn query(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Pg<Vec<Row>> {
        let mut conn = self.client().await;
        let statement = conn.prepared(sql).await?;
        conn.client.query(&statement, params).await
    }

    async fn query_one(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Pg<Row> {
        let mut conn = self.client().await;
        let statement = conn.prepared(sql).await?;
        conn.client.query_one(&statement, params).await
    }

    async fn query_opt(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Pg<Option<Row>> {
        let mut conn = self.client().await;
        let statement = conn.prepared(sql).await?;
        conn.client.query_opt(&statement, params).await
    }

    async fn execute(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Pg<u64> {
        let mut conn = self.client().await;
        let statement = conn.prepared(sql).await?;
        conn.client.execute(&statement, params).await
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        error(&self.url, e)
    }
}

#[async_trait]
impl SettingsStore for Postgres {
    async fn settings(&self, tenant: &str) -> Result<(Option<String>, u64)> {
        let row = self
            .query_opt(
                "SELECT settings, revision FROM tenants WHERE tenant = $1",
                &[&tenant],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map_or((None, 0), |r| (r.get(0), r.get::<_, i64>(1) as u64)))
    }

    async fn access(&self, tenant: &str) -> Result<Option<String>> {
        let row = self
            .query_opt("SELECT data FROM access WHERE tenant = $1", &[&tenant])
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn save_access(&self, tenant: &str, json: &str) -> Result<()> {
        self.execute(
            "INSERT INTO access (tenant, data) VALUES ($1, $2)
             ON CONFLICT (tenant) DO UPDATE SET data = excluded.data",
            &[&tenant, &json],
        )
        .await
        .map(drop)
        .map_err(|e| self.err(e))
    }

    async fn revision(&self, tenant: &str) -> Result<u64> {
        let row = self
            .query_opt("SELECT revision FROM tenants WHERE tenant = $1", &[&tenant])
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    async fn save_settings(&self, tenant: &str, json: &str) -> Result<u64> {
        let row = self
            .query_one(
                "INSERT INTO tenants (tenant, settings, revision) VALUES ($1, $2, 1)
                 ON CONFLICT (tenant) DO UPDATE SET settings = excluded.settings,
                   revision = tenants.revision + 1
                 RETURNING revision",
                &[&tenant, &json],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}

#[async_trait]
impl UserStore for Postgres {
    async fn find_user(&self, tenant: &str, uid: &str) -> Result<Option<User>> {
        let row = self
            .query_opt(
                "SELECT name, presence, metadata FROM users WHERE tenant = $1 AND uid = $2",
                &[&tenant, &uid],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| User {
            uid: uid.to_owned(),
            name: r.get(0),
            presence: presence_from(i64::from(r.get::<_, i16>(1))),
            metadata: r.get(2),
        }))
    }

    async fn put_user(&self, tenant: &str, user: &User) -> Result<()> {
        let presence = presence_code(user.presence) as i16;
        self.execute(
            "INSERT INTO users (tenant, uid, name, presence, metadata) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant, uid) DO UPDATE SET name = excluded.name,
                   presence = excluded.presence, metadata = excluded.metadata",
            &[&tenant, &user.uid, &user.name, &presence, &user.metadata],
        )
        .await
        .map(drop)
        .map_err(|e| self.err(e))
    }

    async fn user_count(&self, tenant: &str) -> Result<u64> {
        let row = self
            .query_opt("SELECT count(*) FROM users WHERE tenant = $1", &[&tenant])
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    async fn set_presence(
        &self,
        tenant: &str,
        uid: &str,
        presence: Presence,
        at: u64,
    ) -> Result<Option<bool>> {
        let code = presence_code(presence) as i16;
        let at = ms(at);
        // One statement: the update if not older, and whether the user exists.
        let row = self
            .query_opt(
                "WITH updated AS (UPDATE users SET presence = $3, presence_at = $4
                   WHERE tenant = $1 AND uid = $2 AND presence_at <= $4 RETURNING 1)
                 SELECT EXISTS (SELECT 1 FROM updated),
                        EXISTS (SELECT 1 FROM users WHERE tenant = $1 AND uid = $2)",
                &[&tenant, &uid, &code, &at],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.and_then(|r| r.get::<_, bool>(1).then(|| r.get::<_, bool>(0))))
    }
}

#[async_trait]
impl StateStore for Postgres {
    async fn set_quota(&self, tenant: &str, max_keys: Option<usize>) -> Result<()> {
        let max = max_keys.map(|n| n as i64);
        self.execute(
            "INSERT INTO tenants (tenant, max_keys) VALUES ($1, $2)
                 ON CONFLICT (tenant) DO UPDATE SET max_keys = excluded.max_keys",
            &[&tenant, &max],
        )
        .await
        .map(drop)
        .map_err(|e| self.err(e))
    }

    async fn state_get(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let row = self
            .query_opt(
                "SELECT value FROM state WHERE tenant = $1 AND key = $2",
                &[&tenant, &key],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn state_prefix(&self, tenant: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let rows = self
            .query(
                "SELECT key, value FROM state WHERE tenant = $1 AND left(key, length($2)) = $2
                 ORDER BY key COLLATE \"C\"",
                &[&tenant, &prefix],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn state_delete(&self, tenant: &str, key: &str) -> Result<bool> {
        self.execute(
            "DELETE FROM state WHERE tenant = $1 AND key = $2",
            &[&tenant, &key],
        )
        .await
        .map(|n| n > 0)
        .map_err(|e| self.err(e))
    }

    /// One statement (atomic and durable on its own) when the tenant has
    /// no quota; a transaction that counts keys first when it has one.
    async fn commit_if(&self, tenant: &str, read: &[Read], changes: &[Change]) -> Result<()> {
        // The tenant's keys are counted only under a quota.
        const QUOTA: &str = "SELECT max_keys, CASE WHEN max_keys IS NULL THEN 0 \
                             ELSE (SELECT count(*) FROM state WHERE tenant = $1) END \
                             FROM tenants WHERE tenant = $1";
        const HELD: &str = "SELECT key, value FROM state WHERE tenant = $1 AND key = ANY($2)";
        const LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
        let net = Net::of(changes);
        let mut conn = self.client().await;
        let statements = async {
            Ok::<_, tokio_postgres::Error>((
                conn.prepared(QUOTA).await?,
                conn.prepared(HELD).await?,
                conn.prepared(LOCK).await?,
                conn.prepared(APPLY).await?,
            ))
        };
        let (quota, held, lock, apply) = statements.await.map_err(|e| self.err(e))?;
        // The keys read (to compare) and those the changes touch (whether
        // each is there, for the quota), in one query.
        let keys: Vec<&str> = read
            .iter()
            .map(|(k, _)| k.as_str())
            .chain(net.deletes.iter().chain(&net.put_keys).copied())
            .collect();
        let lock_key = lock_key(&format!("commit\u{0}{tenant}"));
        let tx = conn.client.transaction().await.map_err(|e| self.err(e))?;
        // Sent together, run in order: the tenant's checked commits one at
        // a time for as long as this transaction lasts (no other comes
        // between the check and the changes), then what the check and the
        // quota need, read after the lock is held.
        let lock_params: [&(dyn ToSql + Sync); 1] = [&lock_key];
        let quota_params: [&(dyn ToSql + Sync); 1] = [&tenant];
        let held_params: [&(dyn ToSql + Sync); 2] = [&tenant, &keys];
        let (_, quota, held) = tokio::try_join!(
            tx.execute(&lock, &lock_params),
            tx.query_opt(&quota, &quota_params),
            tx.query(&held, &held_params),
        )
        .map_err(|e| self.err(e))?;
        let held: Vec<(String, Vec<u8>)> = held.into_iter().map(|r| (r.get(0), r.get(1))).collect();
        for (key, value) in read {
            let now = held.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            if now != value.as_ref() {
                return Err(super::changed(key));
            }
        }
        let (max, count): (Option<i64>, i64) = quota.map_or((None, 0), |r| (r.get(0), r.get(1)));
        if let Some(max) = max {
            let present = |k: &str| held.iter().any(|(p, _)| p == k);
            let after = keys_after(count as usize, changes, present);
            let max = max.max(0) as usize;
            if after > max {
                return Err(full(after, max));
            }
        }
        tx.execute(&apply, &net.params(&tenant))
            .await
            .map_err(|e| self.err(e))?;
        tx.commit()
            .await
            .map_err(|e| self.err(format!("commit failed, nothing was written: {e}")))
    }
}

#[async_trait]
impl TimerStore for Postgres {
    async fn timers(&self, tenant: &str) -> Result<Vec<(String, u64)>> {
        let rows = self
            .query(
                "SELECT key, due_at FROM timers WHERE tenant = $1 ORDER BY key COLLATE \"C\"",
                &[&tenant],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get::<_, i64>(1) as u64))
            .collect())
    }

    /// Walks the due-time index to the first unleased row.
    async fn timer_counts(&self) -> Result<Vec<(String, u64)>> {
        let rows = self
            .query(
                "SELECT split_part(key, '/', 1) AS kind, COUNT(*) FROM timers GROUP BY kind",
                &[],
            )
            .await
            .map_err(|e| self.err(e))?;
        let mut kinds: Vec<(String, u64)> = rows
            .iter()
            .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
            .collect();
        // In byte order, as the other backends give them.
        kinds.sort();
        Ok(kinds)
    }

    async fn next_due(&self, now: u64) -> Result<Option<u64>> {
        let row = self
            .query_opt(
                "SELECT due_at FROM timers WHERE lease_until IS NULL OR lease_until <= $1
                 ORDER BY due_at LIMIT 1",
                &[&ms(now)],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    async fn claim_skipping(
        &self,
        until: u64,
        now: u64,
        limit: usize,
        lease_ms: u64,
        skip: &[String],
    ) -> Result<Vec<Claim>> {
        let token = super::lease_token();
        let rows = self
            .query(
                "UPDATE timers SET lease = $4, lease_until = $5
                 WHERE (tenant, key) IN (
                   SELECT tenant, key FROM timers
                   WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until <= $2)
                     AND tenant <> ALL($6::text[])
                   ORDER BY due_at, tenant COLLATE \"C\", key COLLATE \"C\" LIMIT $3
                   FOR UPDATE SKIP LOCKED)
                 RETURNING tenant, key, due_at, attempts",
                &[
                    &ms(until),
                    &ms(now),
                    &(limit as i64),
                    &token,
                    &ms(now.saturating_add(lease_ms)),
                    &skip,
                ],
            )
            .await
            .map_err(|e| self.err(e))?;
        let mut claims: Vec<Claim> = rows
            .into_iter()
            .map(|r| Claim {
                tenant: r.get(0),
                key: r.get(1),
                due_at: r.get::<_, i64>(2) as u64,
                attempts: r.get::<_, i32>(3) as u32,
                token,
            })
            .collect();
        claims.sort_by(|a, b| (a.due_at, &a.tenant, &a.key).cmp(&(b.due_at, &b.tenant, &b.key)));
        Ok(claims)
    }

    async fn renew(&self, tokens: &[i64], until: u64) -> Result<u64> {
        self.execute(
            "UPDATE timers SET lease_until = $2 WHERE lease = ANY($1) AND lease_until IS NOT NULL",
            &[&tokens, &ms(until)],
        )
        .await
        .map_err(|e| self.err(e))
    }

    async fn finish(&self, claim: &Claim, finish: Finish) -> Result<()> {
        let done = match finish {
            Finish::Done => {
                self.execute(
                    "DELETE FROM timers WHERE tenant = $1 AND key = $2 AND lease = $3",
                    &[&claim.tenant, &claim.key, &claim.token],
                )
                .await
            }
            Finish::Retry { at } => {
                self.execute(
                    "UPDATE timers SET due_at = $4, lease = NULL, lease_until = NULL,
                           attempts = attempts + 1
                         WHERE tenant = $1 AND key = $2 AND lease = $3",
                    &[&claim.tenant, &claim.key, &claim.token, &ms(at)],
                )
                .await
            }
        };
        done.map(drop).map_err(|e| self.err(e))
    }
}

#[async_trait]
impl LogStore for Postgres {
    /// Detached: lines go to one writer task, in order, batched into one
    /// insert; a log line never waits for the database.
    async fn log(&self, tenant: &str, line: LogLine) -> Result<()> {
        self.logs
            .send(Logged::Line(tenant.to_owned(), line))
            .map_err(|_| self.err("the log writer stopped"))
    }

    /// This process's lines sent before the call are written first.
    async fn logs(&self, tenant: &str, after: u64, limit: usize) -> Result<Vec<(u64, LogLine)>> {
        let (done, flushed) = tokio::sync::oneshot::channel();
        if self.logs.send(Logged::Flush(done)).is_ok() {
            let _ = flushed.await;
        }
        let rows = self
            .query(
                "SELECT id, at, level, line FROM logs WHERE tenant = $1 AND id > $2
                 ORDER BY id LIMIT $3",
                &[&tenant, &ms(after), &(limit as i64)],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.get::<_, i64>(0) as u64,
                    LogLine {
                        at: r.get::<_, i64>(1) as u64,
                        level: level_from(i64::from(r.get::<_, i16>(2))),
                        line: r.get(3),
                    },
                )
            })
            .collect())
    }
}

/// What the log writer is sent.
enum Logged {
    Line(String, LogLine),
    /// Answered once every line sent before it is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The log writer: takes every line waiting, inserts them in one
/// statement, and drops a tenant's lines past [`KEEP_LOGS`] every few
/// hundred of its lines.
async fn write_logs(
    mut client: Client,
    (target, shown): (Target, String),
    mut received: tokio::sync::mpsc::UnboundedReceiver<Logged>,
) {
    let mut since_prune: std::collections::HashMap<String, usize> = Default::default();
    while let Some(first) = received.recv().await {
        let mut batch = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Logged::Line(tenant, line) => batch.push((tenant, line)),
                Logged::Flush(done) => flushes.push(done),
            }
            if batch.len() < 1024 {
                next = received.try_recv().ok();
            }
        }
        if client.is_closed()
            && let Ok(fresh) = connect(&target, &shown).await
        {
            client = fresh;
        }
        if !batch.is_empty() {
            let tenants: Vec<&str> = batch.iter().map(|(t, _)| t.as_str()).collect();
            let ats: Vec<i64> = batch.iter().map(|(_, l)| ms(l.at)).collect();
            let levels: Vec<i16> = batch
                .iter()
                .map(|(_, l)| level_code(l.level) as i16)
                .collect();
            let texts: Vec<&str> = batch.iter().map(|(_, l)| l.line.as_str()).collect();
            let inserted = client
                .execute(
                    "INSERT INTO logs (tenant, at, level, line)
                     SELECT * FROM unnest($1::text[], $2::bigint[], $3::smallint[], $4::text[])",
                    &[&tenants, &ats, &levels, &texts],
                )
                .await;
            if let Err(e) = inserted {
                tracing::error!("{} log lines were lost: {e}", batch.len());
            }
            for (tenant, _) in &batch {
                *since_prune.entry(tenant.clone()).or_default() += 1;
            }
            let due: Vec<String> = since_prune
                .iter()
                .filter(|(_, n)| **n >= 256)
                .map(|(t, _)| t.clone())
                .collect();
            for tenant in due {
                since_prune.remove(&tenant);
                let _ = client
                    .execute(
                        "DELETE FROM logs WHERE tenant = $1 AND id < (
                           SELECT id FROM logs WHERE tenant = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                        &[&tenant, &KEEP_LOGS],
                    )
                    .await;
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// A commit as one statement: deletes and puts of state, cancels and sets
/// of timers, each list free of repeated keys (see [`Net`]), so no row is
/// touched twice.
const APPLY: &str = "WITH
  deleted AS (DELETE FROM state WHERE tenant = $1 AND key = ANY($2)),
  put AS (INSERT INTO state (tenant, key, value)
          SELECT $1, k, v FROM unnest($3::text[], $4::bytea[]) AS u(k, v)
          ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value),
  cancelled AS (DELETE FROM timers WHERE tenant = $1 AND key = ANY($5)),
  armed AS (INSERT INTO timers (tenant, key, due_at)
          SELECT $1, k, d FROM unnest($6::text[], $7::bigint[]) AS u(k, d)
          ON CONFLICT (tenant, key) DO UPDATE SET due_at = excluded.due_at,
            lease = NULL, lease_until = NULL, attempts = 0)
SELECT 1";

/// What a list of changes leaves behind, per key: the last change to a
/// state key or a timer wins, as if they were applied in order.
struct Net<'a> {
    deletes: Vec<&'a str>,
    put_keys: Vec<&'a str>,
    put_values: Vec<&'a [u8]>,
    cancels: Vec<&'a str>,
    timer_keys: Vec<&'a str>,
    timer_dues: Vec<i64>,
}

impl<'a> Net<'a> {
    fn of(changes: &'a [Change]) -> Self {
        use std::collections::BTreeMap;
        let mut state: BTreeMap<&str, Option<&[u8]>> = BTreeMap::new();
        let mut timers: BTreeMap<&str, Option<i64>> = BTreeMap::new();
        for change in changes {
            match change {
                Change::Put { key, value } => state.insert(key, Some(value)).map(drop),
                Change::Delete(k) => state.insert(k, None).map(drop),
                Change::SetTimer { key, due_at } => timers.insert(key, Some(ms(*due_at))).map(drop),
                Change::CancelTimer(k) => timers.insert(k, None).map(drop),
            };
        }
        let mut net = Self {
            deletes: Vec::new(),
            put_keys: Vec::new(),
            put_values: Vec::new(),
            cancels: Vec::new(),
            timer_keys: Vec::new(),
            timer_dues: Vec::new(),
        };
        for (key, value) in state {
            match value {
                Some(value) => {
                    net.put_keys.push(key);
                    net.put_values.push(value);
                }
                None => net.deletes.push(key),
            }
        }
        for (key, due) in timers {
            match due {
                Some(due) => {
                    net.timer_keys.push(key);
                    net.timer_dues.push(due);
                }
                None => net.cancels.push(key),
            }
        }
        net
    }

    fn params<'b>(
        &'b self,
        tenant: &'b &str,
    ) -> [&'b (dyn tokio_postgres::types::ToSql + Sync); 7] {
        [
            tenant,
            &self.deletes,
            &self.put_keys,
            &self.put_values,
            &self.cancels,
            &self.timer_keys,
            &self.timer_dues,
        ]
    }
}
