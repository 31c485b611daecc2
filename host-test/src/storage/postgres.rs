//! The PostgreSQL backend: several host processes sharing one database.
//!
//! - Calls into one tenant are serialised across every process by a
//!   session advisory lock ([`Storage::lock`]), held on a connection of its
//!   own for the length of the call: the component's at-most-once relies on
//!   one call at a time per tenant. A process that dies ends its session,
//!   and PostgreSQL releases the lock.
//! - Due timers are claimed with `FOR UPDATE SKIP LOCKED` and a lease, so a
//!   due timer fires on one process; a process that dies mid-call leaves the
//!   row to fire again when its lease ends (the component then gives the
//!   notification up as cut off mid-send: never a second SMS).
//! - Each commit is one transaction on a pooled connection, durable when it
//!   returns (`synchronous_commit` on, the server's default). Concurrent
//!   commits from different connections share WAL flushes: PostgreSQL's own
//!   group commit.

use super::{
    Claim, Finish, LogLine, Result, SCHEMA_VERSION, Storage, StoreError, full, keys_after,
    level_code, level_from, presence_code, presence_from, without_password,
};
use crate::bindings::sms_notification::extension::{host, types};
use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

/// Every released schema, in order; the version is the position + 1.
const MIGRATIONS: [&str; 2] = [
    include_str!("migrations/postgres/0001_initial.sql"),
    include_str!("migrations/postgres/0002_leases_and_logs.sql"),
];

/// Connections for commits and reads.
pub const POOL: usize = 8;
/// Log lines kept per tenant.
pub const KEEP_LOGS: i64 = 1000;
/// The advisory lock key every migrating process takes first.
const MIGRATION_LOCK: i64 = 0x736d_735f_6d69_6772;

pub struct Postgres {
    /// The URL as given (it may hold a password: never shown).
    dsn: String,
    /// The URL without its password, for messages.
    url: String,
    pool: Vec<Mutex<Client>>,
    next: AtomicUsize,
    /// The session that holds tenant locks.
    locks: Mutex<Client>,
}

fn error(url: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError(format!("PostgreSQL database {url}: {e}"))
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

async fn connect(url: &str, shown: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| StoreError(format!("cannot connect to {shown}: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("PostgreSQL connection closed: {e}");
        }
    });
    Ok(client)
}

impl Postgres {
    /// Connects, and migrates the schema (one process at a time).
    pub async fn connect(url: &str) -> Result<Self> {
        let shown = without_password(url);
        let mut pool = Vec::with_capacity(POOL);
        for _ in 0..POOL {
            pool.push(Mutex::new(connect(url, &shown).await?));
        }
        let locks = Mutex::new(connect(url, &shown).await?);
        let this = Self {
            dsn: url.to_owned(),
            url: shown,
            pool,
            next: AtomicUsize::new(0),
            locks,
        };
        this.migrate().await?;
        Ok(this)
    }

    async fn migrate(&self) -> Result<()> {
        let url = &self.url;
        let mut client = self.pool[0].lock().await;
        let tx = client.transaction().await.map_err(|e| error(url, e))?;
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
            return Err(StoreError(format!(
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
    async fn client(&self) -> tokio::sync::MutexGuard<'_, Client> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        let mut client = self.pool[i].lock().await;
        self.revive(&mut client).await;
        client
    }

    async fn revive(&self, client: &mut Client) {
        if client.is_closed()
            && let Ok(fresh) = connect(&self.dsn, &self.url).await
        {
            *client = fresh;
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        error(&self.url, e)
    }
}

#[async_trait]
impl Storage for Postgres {
    async fn settings(&self, tenant: &str) -> Result<(Option<String>, u64)> {
        let row = self
            .client()
            .await
            .query_opt(
                "SELECT settings, revision FROM tenants WHERE tenant = $1",
                &[&tenant],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map_or((None, 0), |r| (r.get(0), r.get::<_, i64>(1) as u64)))
    }

    async fn save_settings(&self, tenant: &str, json: &str) -> Result<u64> {
        let row = self
            .client()
            .await
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

    async fn set_quota(&self, tenant: &str, max_keys: Option<usize>) -> Result<()> {
        let max = max_keys.map(|n| n as i64);
        self.client()
            .await
            .execute(
                "INSERT INTO tenants (tenant, max_keys) VALUES ($1, $2)
                 ON CONFLICT (tenant) DO UPDATE SET max_keys = excluded.max_keys",
                &[&tenant, &max],
            )
            .await
            .map(drop)
            .map_err(|e| self.err(e))
    }

    async fn find_user(&self, tenant: &str, uid: &str) -> Result<Option<types::User>> {
        let row = self
            .client()
            .await
            .query_opt(
                "SELECT name, presence, metadata FROM users WHERE tenant = $1 AND uid = $2",
                &[&tenant, &uid],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| types::User {
            uid: uid.to_owned(),
            name: r.get(0),
            presence: presence_from(i64::from(r.get::<_, i16>(1))),
            metadata: r.get(2),
        }))
    }

    async fn put_user(&self, tenant: &str, user: &types::User) -> Result<()> {
        let presence = presence_code(user.presence) as i16;
        self.client()
            .await
            .execute(
                "INSERT INTO users (tenant, uid, name, presence, metadata) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant, uid) DO UPDATE SET name = excluded.name,
                   presence = excluded.presence, metadata = excluded.metadata",
                &[&tenant, &user.uid, &user.name, &presence, &user.metadata],
            )
            .await
            .map(drop)
            .map_err(|e| self.err(e))
    }

    async fn state_get(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let row = self
            .client()
            .await
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
            .client()
            .await
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
        self.client()
            .await
            .execute(
                "DELETE FROM state WHERE tenant = $1 AND key = $2",
                &[&tenant, &key],
            )
            .await
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    async fn commit(&self, tenant: &str, changes: &[host::Change]) -> Result<()> {
        let mut client = self.client().await;
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        let max: Option<i64> = tx
            .query_opt("SELECT max_keys FROM tenants WHERE tenant = $1", &[&tenant])
            .await
            .map_err(|e| self.err(e))?
            .and_then(|r| r.get(0));
        if let Some(max) = max {
            let count: i64 = tx
                .query_one("SELECT count(*) FROM state WHERE tenant = $1", &[&tenant])
                .await
                .map_err(|e| self.err(e))?
                .get(0);
            let keys: Vec<&str> = changes
                .iter()
                .filter_map(|c| match c {
                    host::Change::Put(e) => Some(e.key.as_str()),
                    host::Change::Delete(k) => Some(k.as_str()),
                    _ => None,
                })
                .collect();
            let present: Vec<String> = tx
                .query(
                    "SELECT key FROM state WHERE tenant = $1 AND key = ANY($2)",
                    &[&tenant, &keys],
                )
                .await
                .map_err(|e| self.err(e))?
                .into_iter()
                .map(|r| r.get(0))
                .collect();
            let after = keys_after(count as usize, changes, |k| present.iter().any(|p| p == k));
            let max = max.max(0) as usize;
            if after > max {
                return Err(full(after, max));
            }
        }
        for change in changes {
            let done = match change {
                host::Change::Put(host::Entry { key, value }) => {
                    tx.execute(
                        "INSERT INTO state (tenant, key, value) VALUES ($1, $2, $3)
                         ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value",
                        &[&tenant, key, value],
                    )
                    .await
                }
                host::Change::Delete(key) => {
                    tx.execute(
                        "DELETE FROM state WHERE tenant = $1 AND key = $2",
                        &[&tenant, key],
                    )
                    .await
                }
                host::Change::SetTimer(host::Timer { key, due_at }) => {
                    tx.execute(
                        "INSERT INTO timers (tenant, key, due_at) VALUES ($1, $2, $3)
                         ON CONFLICT (tenant, key) DO UPDATE SET due_at = excluded.due_at,
                           lease = NULL, lease_until = NULL, attempts = 0",
                        &[&tenant, key, &ms(*due_at)],
                    )
                    .await
                }
                host::Change::CancelTimer(key) => {
                    tx.execute(
                        "DELETE FROM timers WHERE tenant = $1 AND key = $2",
                        &[&tenant, key],
                    )
                    .await
                }
            };
            done.map_err(|e| self.err(e))?;
        }
        tx.commit()
            .await
            .map_err(|e| self.err(format!("commit failed, nothing was written: {e}")))
    }

    async fn timers(&self, tenant: &str) -> Result<Vec<(String, u64)>> {
        let rows = self
            .client()
            .await
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

    async fn next_due(&self, now: u64) -> Result<Option<u64>> {
        let row = self
            .client()
            .await
            .query_one(
                "SELECT min(due_at) FROM timers WHERE lease_until IS NULL OR lease_until <= $1",
                &[&ms(now)],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.get::<_, Option<i64>>(0).map(|d| d as u64))
    }

    async fn claim(&self, until: u64, now: u64, limit: usize, lease_ms: u64) -> Result<Vec<Claim>> {
        let token = super::lease_token();
        let rows = self
            .client()
            .await
            .query(
                "UPDATE timers SET lease = $4, lease_until = $5
                 WHERE (tenant, key) IN (
                   SELECT tenant, key FROM timers
                   WHERE due_at <= $1 AND (lease_until IS NULL OR lease_until <= $2)
                   ORDER BY due_at, tenant COLLATE \"C\", key COLLATE \"C\" LIMIT $3
                   FOR UPDATE SKIP LOCKED)
                 RETURNING tenant, key, due_at, attempts",
                &[
                    &ms(until),
                    &ms(now),
                    &(limit as i64),
                    &token,
                    &ms(now.saturating_add(lease_ms)),
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

    async fn finish(&self, claim: &Claim, finish: Finish) -> Result<()> {
        let client = self.client().await;
        let done = match finish {
            Finish::Done => {
                client
                    .execute(
                        "DELETE FROM timers WHERE tenant = $1 AND key = $2 AND lease = $3",
                        &[&claim.tenant, &claim.key, &claim.token],
                    )
                    .await
            }
            Finish::Retry { at } => {
                client
                    .execute(
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

    async fn log(&self, tenant: &str, line: LogLine) -> Result<()> {
        let client = self.client().await;
        let row = client
            .query_one(
                "INSERT INTO logs (tenant, at, level, line) VALUES ($1, $2, $3, $4) RETURNING id",
                &[
                    &tenant,
                    &ms(line.at),
                    &(level_code(line.level) as i16),
                    &line.line,
                ],
            )
            .await
            .map_err(|e| self.err(e))?;
        if row.get::<_, i64>(0) % 64 == 0 {
            client
                .execute(
                    "DELETE FROM logs WHERE tenant = $1 AND id < (
                       SELECT id FROM logs WHERE tenant = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                    &[&tenant, &KEEP_LOGS],
                )
                .await
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    async fn logs(&self, tenant: &str, after: u64, limit: usize) -> Result<Vec<(u64, LogLine)>> {
        let rows = self
            .client()
            .await
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

    /// Waits for the tenant's advisory lock, polling with `pg_try_…` so the
    /// lock session never blocks (a blocked session would hold up this
    /// process's unlocks of other tenants).
    async fn lock(&self, tenant: &str) -> Result<()> {
        let key = lock_key(tenant);
        let mut wait = Duration::from_millis(1);
        loop {
            let mut locks = self.locks.lock().await;
            self.revive(&mut locks).await;
            let got: bool = locks
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .await
                .map_err(|e| self.err(e))?
                .get(0);
            drop(locks);
            if got {
                return Ok(());
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(20));
        }
    }

    async fn unlock(&self, tenant: &str) -> Result<()> {
        self.locks
            .lock()
            .await
            .execute("SELECT pg_advisory_unlock($1)", &[&lock_key(tenant)])
            .await
            .map(drop)
            .map_err(|e| self.err(e))
    }
}
