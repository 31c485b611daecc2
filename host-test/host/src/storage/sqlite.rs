//! The SQLite backend: one file, one host process.
//!
//! Durability: WAL with `synchronous=FULL`, so a commit is on disk (the WAL
//! fsynced) before [`crate::storage::StateStore::commit`] returns, and so before the component
//! lets a request to Twilio leave. (`synchronous=NORMAL` would lose the last
//! commits on power loss, and with them in-flight marks: an SMS could go
//! twice. It is not offered.)
//!
//! Group commit: every write goes to one writer thread, which takes all
//! the writes waiting, runs each in a savepoint of one transaction (a write
//! that fails rolls back alone) and commits them with one fsync; each
//! caller hears back only after that commit. Concurrent tenants' commits
//! thus share the fsync. Reads run on the caller's thread on a small pool
//! of connections (WAL readers never wait for the writer).

use super::{
    Change, Claim, Finish, LogLine, LogStore, Presence, Read, Result, SCHEMA_VERSION,
    SettingsStore, StateStore, StoreError, TimerStore, User, UserStore, full, keys_after,
    level_code, level_from, presence_code, presence_from,
};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Every released schema, in order; the version is the position + 1.
const MIGRATIONS: [&str; 3] = [
    include_str!("migrations/sqlite/0001_initial.sql"),
    include_str!("migrations/sqlite/0002_leases_and_logs.sql"),
    include_str!("migrations/sqlite/0003_presence_and_access.sql"),
];

/// Log lines kept per tenant; older ones are dropped as new ones come.
pub const KEEP_LOGS: i64 = 1000;

/// The most writes one transaction takes.
const MAX_BATCH: usize = 512;

type Reply = Box<dyn FnOnce(Result<()>) + Send>;
/// A write: runs inside the batch's transaction (or is told why there is
/// none), says whether it succeeded (a failed one is rolled back to its
/// savepoint) and how to answer its caller once the batch is committed.
type Job = Box<dyn FnOnce(Result<&Connection>) -> (bool, Reply) + Send>;

pub struct Sqlite {
    path: String,
    /// An exclusive lock on `PATH.lock` while this store is open: a second
    /// process on the same file is refused (it would release this one's
    /// timer leases at open). The OS drops it when the process dies.
    _exclusive: std::fs::File,
    writer: Mutex<mpsc::Sender<Job>>,
    readers: Mutex<Vec<Connection>>,
    /// Each tenant with a quota's number of state keys, as the writer's
    /// jobs last counted them (they alone write): a checked commit needs
    /// it, and `count(*)` costs time in the number of keys, on the one
    /// writer thread. Forgotten when a batch fails to commit.
    counts: Counts,
}

type Counts = Arc<Mutex<std::collections::HashMap<String, usize>>>;

fn error(path: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("SQLite database {path}: {e}"))
}

fn connect(path: &str) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| error(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| error(path, e))?;
    Ok(conn)
}

/// How long a held lock is waited for: a process that is exiting (or a
/// child forked by this one, between its fork and its exec) may hold it a
/// moment longer.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Takes `PATH.lock` for this process alone.
fn exclusive(path: &str) -> Result<std::fs::File> {
    let lock = format!("{path}.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(|e| error(path, format!("cannot open {lock}: {e}")))?;
    let started = std::time::Instant::now();
    let mut held = file.try_lock();
    while matches!(held, Err(std::fs::TryLockError::WouldBlock)) && started.elapsed() < LOCK_WAIT {
        std::thread::sleep(std::time::Duration::from_millis(50));
        held = file.try_lock();
    }
    match held {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Setup(format!(
            "SQLite database {path} is in use by another host process (it holds {lock}); \
             a SQLite file serves one process: use PostgreSQL for several"
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(error(path, format!("locking {lock}: {e}"))),
    }
}

/// The schema version a database is at (0 for a new one).
fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
    Ok(conn
        .query_row("SELECT max(version) FROM schema_version", [], |r| {
            r.get::<_, Option<i64>>(0)
        })?
        .unwrap_or(0))
}

/// Brings the schema to [`SCHEMA_VERSION`], each step in its own
/// transaction; refuses a database a newer build wrote.
fn migrate(path: &str, conn: &mut Connection) -> Result<()> {
    let at = version(conn).map_err(|e| error(path, e))?;
    if at > SCHEMA_VERSION {
        return Err(StoreError::Setup(format!(
            "SQLite database {path} has schema version {at}, newer than this build's \
             {SCHEMA_VERSION}: run a newer host-test (nothing was changed)"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(at as usize) {
        let tx = conn.transaction().map_err(|e| error(path, e))?;
        tx.execute_batch(sql)
            .and_then(|()| {
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    [i as i64 + 1],
                )
            })
            .and_then(|_| tx.commit())
            .map_err(|e| error(path, format!("migrating to schema version {}: {e}", i + 1)))?;
    }
    Ok(())
}

/// A `u64` time as SQLite stores it (times past `i64::MAX` are kept as
/// that: they never come due anyway).
fn ms(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

impl Sqlite {
    /// Opens (creating if needed) and migrates the database at `path`.
    /// Leases left by a process that died are released: one process uses
    /// a SQLite file at a time.
    pub fn open(path: &str) -> Result<Self> {
        if path.is_empty() {
            return Err(StoreError::Setup(
                "sqlite: needs a file path, e.g. sqlite:sms.db".into(),
            ));
        }
        let exclusive = exclusive(path)?;
        let mut conn = connect(path)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .map_err(|e| error(path, e))?;
        migrate(path, &mut conn)?;
        conn.execute(
            "UPDATE timers SET lease = NULL, lease_until = NULL WHERE lease IS NOT NULL",
            [],
        )
        .map_err(|e| error(path, e))?;
        let (send, receive) = mpsc::channel::<Job>();
        let owned = path.to_owned();
        let counts = Counts::default();
        let forget = counts.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_batches(&owned, &conn, &receive, &forget))
            .map_err(|e| error(path, e))?;
        Ok(Self {
            path: path.to_owned(),
            _exclusive: exclusive,
            writer: Mutex::new(send),
            readers: Mutex::new(Vec::new()),
            counts,
        })
    }

    /// Runs `f` in the writer's next batch; answers once it is committed.
    async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (send, receive) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = conn.and_then(f);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |committed| {
                let _ = send.send(committed.and(result));
            });
            (ok, reply)
        });
        self.send(job)?;
        receive
            .await
            .map_err(|_| error(&self.path, "the writer thread stopped"))?
    }

    /// Runs `f` in the writer's next batch without waiting for it.
    fn write_detached(
        &self,
        f: impl FnOnce(&Connection) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        self.send(Box::new(move |conn| {
            let ok = conn.and_then(f).is_ok();
            (ok, Box::new(|_| {}))
        }))
    }

    fn send(&self, job: Job) -> Result<()> {
        self.writer
            .lock()
            .unwrap()
            .send(job)
            .map_err(|_| error(&self.path, "the writer thread stopped"))
    }

    /// Runs `f` on a reader connection.
    fn read<R>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R>) -> Result<R> {
        let conn = self.readers.lock().unwrap().pop();
        let conn = match conn {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let result = f(&conn).map_err(|e| error(&self.path, e));
        self.readers.lock().unwrap().push(conn);
        result
    }
}

/// The writer thread: batches of waiting writes, one transaction each.
fn write_batches(path: &str, conn: &Connection, jobs: &mpsc::Receiver<Job>, counts: &Counts) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(batch.len());
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let why = error(path, format!("cannot begin a transaction: {e}"));
            for job in batch {
                let (_, reply) = job(Err(why.clone()));
                reply(Err(why.clone()));
            }
            continue;
        }
        for job in batch {
            let saved = conn.execute_batch("SAVEPOINT job");
            let (ok, reply) = match saved {
                Ok(()) => job(Ok(conn)),
                Err(e) => job(Err(error(path, e))),
            };
            if !ok {
                let _ = conn.execute_batch("ROLLBACK TO job");
            }
            let _ = conn.execute_batch("RELEASE job");
            replies.push(reply);
        }
        let committed = conn
            .execute_batch("COMMIT")
            .map_err(|e| error(path, format!("commit failed, nothing was written: {e}")));
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
            // The jobs' counts went with their changes.
            counts.lock().unwrap().clear();
        }
        for reply in replies {
            reply(committed.clone());
        }
    }
}

fn apply(conn: &Connection, tenant: &str, changes: &[Change]) -> rusqlite::Result<()> {
    for change in changes {
        match change {
            Change::Put { key, value } => {
                conn.prepare_cached(
                    "INSERT INTO state (tenant, key, value) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![tenant, key, value])?;
            }
            Change::Delete(key) => {
                conn.prepare_cached("DELETE FROM state WHERE tenant = ?1 AND key = ?2")?
                    .execute(params![tenant, key])?;
            }
            Change::SetTimer { key, due_at } => {
                conn.prepare_cached(
                    "INSERT INTO timers (tenant, key, due_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (tenant, key) DO UPDATE SET due_at = excluded.due_at,
                       lease = NULL, lease_until = NULL, attempts = 0",
                )?
                .execute(params![tenant, key, ms(*due_at)])?;
            }
            Change::CancelTimer(key) => {
                conn.prepare_cached("DELETE FROM timers WHERE tenant = ?1 AND key = ?2")?
                    .execute(params![tenant, key])?;
            }
        }
    }
    Ok(())
}

fn quota(conn: &Connection, tenant: &str) -> rusqlite::Result<Option<usize>> {
    Ok(conn
        .prepare_cached("SELECT max_keys FROM tenants WHERE tenant = ?1")?
        .query_row([tenant], |r| r.get::<_, Option<i64>>(0))
        .optional()?
        .flatten()
        .map(|n| n.max(0) as usize))
}

fn ensure_tenant(conn: &Connection, tenant: &str) -> rusqlite::Result<()> {
    conn.prepare_cached("INSERT INTO tenants (tenant) VALUES (?1) ON CONFLICT DO NOTHING")?
        .execute([tenant])?;
    Ok(())
}

#[async_trait]
impl SettingsStore for Sqlite {
    async fn settings(&self, tenant: &str) -> Result<(Option<String>, u64)> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT settings, revision FROM tenants WHERE tenant = ?1")?
                .query_row([tenant], |r| {
                    Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)? as u64))
                })
                .optional()?
                .unwrap_or((None, 0)))
        })
    }

    async fn access(&self, tenant: &str) -> Result<Option<String>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT data FROM access WHERE tenant = ?1")?
                .query_row([tenant], |r| r.get::<_, String>(0))
                .optional()
        })
    }

    async fn save_access(&self, tenant: &str, json: &str) -> Result<()> {
        let (tenant, json, path) = (tenant.to_owned(), json.to_owned(), self.path.clone());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO access (tenant, data) VALUES (?1, ?2)
                 ON CONFLICT (tenant) DO UPDATE SET data = excluded.data",
            )
            .and_then(|mut s| s.execute(params![tenant, json]))
            .map(drop)
            .map_err(|e| error(&path, e))
        })
        .await
    }

    async fn revision(&self, tenant: &str) -> Result<u64> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached("SELECT revision FROM tenants WHERE tenant = ?1")?
                .query_row([tenant], |r| r.get::<_, i64>(0))
                .optional()?
                .map_or(0, |r| r as u64))
        })
    }

    async fn save_settings(&self, tenant: &str, json: &str) -> Result<u64> {
        let (tenant, json, path) = (tenant.to_owned(), json.to_owned(), self.path.clone());
        self.write(move |conn| {
            ensure_tenant(conn, &tenant)
                .and_then(|()| {
                    conn.query_row(
                        "UPDATE tenants SET settings = ?2, revision = revision + 1
                         WHERE tenant = ?1 RETURNING revision",
                        params![tenant, json],
                        |r| r.get::<_, i64>(0),
                    )
                })
                .map(|r| r as u64)
                .map_err(|e| error(&path, e))
        })
        .await
    }
}

#[async_trait]
impl UserStore for Sqlite {
    async fn find_user(&self, tenant: &str, uid: &str) -> Result<Option<User>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT name, presence, metadata FROM users WHERE tenant = ?1 AND uid = ?2",
            )?
            .query_row([tenant, uid], |r| {
                Ok(User {
                    uid: uid.to_owned(),
                    name: r.get(0)?,
                    presence: presence_from(r.get(1)?),
                    metadata: r.get(2)?,
                })
            })
            .optional()
        })
    }

    async fn put_user(&self, tenant: &str, user: &User) -> Result<()> {
        let (tenant, user, path) = (tenant.to_owned(), user.clone(), self.path.clone());
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO users (tenant, uid, name, presence, metadata) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant, uid) DO UPDATE SET name = excluded.name,
                   presence = excluded.presence, metadata = excluded.metadata",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant,
                    user.uid,
                    user.name,
                    presence_code(user.presence),
                    user.metadata
                ])
            })
            .map(drop)
            .map_err(|e| error(&path, e))
        })
        .await
    }

    async fn user_count(&self, tenant: &str) -> Result<u64> {
        self.read(|conn| {
            conn.prepare_cached("SELECT count(*) FROM users WHERE tenant = ?1")?
                .query_row([tenant], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
        })
    }

    async fn set_presence(
        &self,
        tenant: &str,
        uid: &str,
        presence: Presence,
        at: u64,
    ) -> Result<Option<bool>> {
        let (tenant, uid, path) = (tenant.to_owned(), uid.to_owned(), self.path.clone());
        let code = presence_code(presence);
        self.write(move |conn| {
            let applied = conn
                .prepare_cached(
                    "UPDATE users SET presence = ?3, presence_at = ?4
                     WHERE tenant = ?1 AND uid = ?2 AND presence_at <= ?4",
                )
                .and_then(|mut s| s.execute(params![tenant, uid, code, ms(at)]))
                .map_err(|e| error(&path, e))?;
            if applied > 0 {
                return Ok(Some(true));
            }
            let known = conn
                .prepare_cached("SELECT 1 FROM users WHERE tenant = ?1 AND uid = ?2")
                .and_then(|mut s| s.exists(params![tenant, uid]))
                .map_err(|e| error(&path, e))?;
            Ok(known.then_some(false))
        })
        .await
    }
}

#[async_trait]
impl StateStore for Sqlite {
    async fn set_quota(&self, tenant: &str, max_keys: Option<usize>) -> Result<()> {
        let (tenant, path) = (tenant.to_owned(), self.path.clone());
        let counts = self.counts.clone();
        self.write(move |conn| {
            counts.lock().unwrap().remove(&tenant);
            ensure_tenant(conn, &tenant)
                .and_then(|()| {
                    conn.execute(
                        "UPDATE tenants SET max_keys = ?2 WHERE tenant = ?1",
                        params![tenant, max_keys.map(|n| n as i64)],
                    )
                })
                .map(drop)
                .map_err(|e| error(&path, e))
        })
        .await
    }

    async fn state_get(&self, tenant: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT value FROM state WHERE tenant = ?1 AND key = ?2")?
                .query_row([tenant, key], |r| r.get(0))
                .optional()
        })
    }

    async fn state_prefix(&self, tenant: &str, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT key, value FROM state WHERE tenant = ?1 AND substr(key, 1, length(?2)) = ?2
                 ORDER BY key",
            )?
            .query_map([tenant, prefix], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
        })
    }

    async fn state_delete(&self, tenant: &str, key: &str) -> Result<bool> {
        let (tenant, key, path) = (tenant.to_owned(), key.to_owned(), self.path.clone());
        let counts = self.counts.clone();
        self.write(move |conn| {
            let gone = conn
                .execute(
                    "DELETE FROM state WHERE tenant = ?1 AND key = ?2",
                    [&tenant, &key],
                )
                .map(|n| n > 0)
                .map_err(|e| error(&path, e))?;
            if gone && let Some(n) = counts.lock().unwrap().get_mut(&tenant) {
                *n -= 1;
            }
            Ok(gone)
        })
        .await
    }

    async fn commit_if(&self, tenant: &str, read: &[Read], changes: &[Change]) -> Result<()> {
        let (tenant, changes, path) = (tenant.to_owned(), changes.to_vec(), self.path.clone());
        let (read, counts) = (read.to_vec(), self.counts.clone());
        self.write(move |conn| {
            // On the writer's connection, inside its transaction: no other
            // write comes between this check and the changes.
            if !read.is_empty() {
                let mut get = conn
                    .prepare_cached("SELECT value FROM state WHERE tenant = ?1 AND key = ?2")
                    .map_err(|e| error(&path, e))?;
                for (key, value) in &read {
                    let now: Option<Vec<u8>> = get
                        .query_row([&tenant, key], |r| r.get(0))
                        .optional()
                        .map_err(|e| error(&path, e))?;
                    if now != *value {
                        return Err(super::changed(key));
                    }
                }
            }
            let Some(max) = quota(conn, &tenant).map_err(|e| error(&path, e))? else {
                counts.lock().unwrap().remove(&tenant);
                return apply(conn, &tenant, &changes).map_err(|e| error(&path, e));
            };
            let known = counts.lock().unwrap().get(&tenant).copied();
            let count = match known {
                Some(n) => n,
                None => conn
                    .query_row(
                        "SELECT count(*) FROM state WHERE tenant = ?1",
                        [&tenant],
                        |r| r.get::<_, i64>(0),
                    )
                    .map_err(|e| error(&path, e))? as usize,
            };
            let mut present = conn
                .prepare_cached("SELECT 1 FROM state WHERE tenant = ?1 AND key = ?2")
                .map_err(|e| error(&path, e))?;
            let after = keys_after(count, &changes, |key| {
                present.exists([&tenant, key]).unwrap_or(false)
            });
            if after > max {
                return Err(full(after, max));
            }
            apply(conn, &tenant, &changes).map_err(|e| error(&path, e))?;
            counts.lock().unwrap().insert(tenant, after);
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl TimerStore for Sqlite {
    async fn timers(&self, tenant: &str) -> Result<Vec<(String, u64)>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT key, due_at FROM timers WHERE tenant = ?1 ORDER BY key")?
                .query_map([tenant], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect()
        })
    }

    /// Walks the due-time index to the first unleased row (an idle
    /// scheduler asks often; `min()` with this filter would scan them all).
    async fn timer_counts(&self) -> Result<Vec<(String, u64)>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT CASE WHEN instr(key, '/') > 0 THEN substr(key, 1, instr(key, '/') - 1)
                             ELSE key END AS kind, COUNT(*)
                 FROM timers GROUP BY kind ORDER BY kind",
            )?
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?
            .collect()
        })
    }

    async fn next_due(&self, now: u64) -> Result<Option<u64>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT due_at FROM timers WHERE lease_until IS NULL OR lease_until <= ?1
                 ORDER BY due_at LIMIT 1",
            )?
            .query_row([ms(now)], |r| r.get::<_, i64>(0))
            .optional()
            .map(|due| due.map(|d| d as u64))
        })
    }

    async fn claim_skipping(
        &self,
        until: u64,
        now: u64,
        limit: usize,
        lease_ms: u64,
        skip: &[String],
    ) -> Result<Vec<Claim>> {
        let path = self.path.clone();
        let token = super::lease_token();
        // The tenants to leave out, as a JSON array SQLite reads with json_each.
        let skip = serde_json::to_string(skip).unwrap_or_else(|_| "[]".into());
        self.write(move |conn| {
            conn.prepare_cached(
                "UPDATE timers SET lease = ?4, lease_until = ?5
                 WHERE rowid IN (
                   SELECT rowid FROM timers
                   WHERE due_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?2)
                     AND tenant NOT IN (SELECT value FROM json_each(?6))
                   ORDER BY due_at, tenant, key LIMIT ?3)
                 RETURNING tenant, key, due_at, attempts",
            )
            .and_then(|mut s| {
                let mut claims = s
                    .query_map(
                        params![
                            ms(until),
                            ms(now),
                            limit as i64,
                            token,
                            ms(now.saturating_add(lease_ms)),
                            skip
                        ],
                        |r| {
                            Ok(Claim {
                                tenant: r.get(0)?,
                                key: r.get(1)?,
                                due_at: r.get::<_, i64>(2)? as u64,
                                attempts: r.get::<_, i64>(3)? as u32,
                                token,
                            })
                        },
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                // RETURNING gives no order.
                claims.sort_by(|a, b| {
                    (a.due_at, &a.tenant, &a.key).cmp(&(b.due_at, &b.tenant, &b.key))
                });
                Ok(claims)
            })
            .map_err(|e| error(&path, e))
        })
        .await
    }

    async fn finish(&self, claim: &Claim, finish: Finish) -> Result<()> {
        let (claim, path) = (claim.clone(), self.path.clone());
        self.write(move |conn| {
            match finish {
                Finish::Done => conn.execute(
                    "DELETE FROM timers WHERE tenant = ?1 AND key = ?2 AND lease = ?3",
                    params![claim.tenant, claim.key, claim.token],
                ),
                Finish::Retry { at } => conn.execute(
                    "UPDATE timers SET due_at = ?4, lease = NULL, lease_until = NULL,
                       attempts = attempts + 1
                     WHERE tenant = ?1 AND key = ?2 AND lease = ?3",
                    params![claim.tenant, claim.key, claim.token, ms(at)],
                ),
            }
            .map(drop)
            .map_err(|e| error(&path, e))
        })
        .await
    }

    async fn renew(&self, tokens: &[i64], until: u64) -> Result<u64> {
        let (tokens, path) = (tokens.to_vec(), self.path.clone());
        self.write(move |conn| {
            let renew = || -> rusqlite::Result<u64> {
                let mut update = conn.prepare_cached(
                    "UPDATE timers SET lease_until = ?2 WHERE lease = ?1 AND lease_until IS NOT NULL",
                )?;
                let mut renewed = 0;
                for token in tokens {
                    renewed += update.execute(params![token, ms(until)])? as u64;
                }
                Ok(renewed)
            };
            renew().map_err(|e| error(&path, e))
        })
        .await
    }
}

#[async_trait]
impl LogStore for Sqlite {
    /// Detached: a log line never waits for an fsync.
    async fn log(&self, tenant: &str, line: LogLine) -> Result<()> {
        let (tenant, path) = (tenant.to_owned(), self.path.clone());
        self.write_detached(move |conn| {
            conn.prepare_cached(
                "INSERT INTO logs (tenant, at, level, line) VALUES (?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    tenant,
                    ms(line.at),
                    level_code(line.level),
                    line.line
                ])
            })
            .and_then(|_| {
                // Now and then, drop the tenant's lines past the last KEEP_LOGS.
                if conn.last_insert_rowid() % 64 == 0 {
                    conn.prepare_cached(
                        "DELETE FROM logs WHERE tenant = ?1 AND id < (
                               SELECT id FROM logs WHERE tenant = ?1
                               ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    )?
                    .execute(params![tenant, KEEP_LOGS])?;
                }
                Ok(())
            })
            .map_err(|e| error(&path, e))
        })
    }

    /// The lines sent before the call are written first.
    async fn logs(&self, tenant: &str, after: u64, limit: usize) -> Result<Vec<(u64, LogLine)>> {
        self.write(|_| Ok(())).await?;
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT id, at, level, line FROM logs WHERE tenant = ?1 AND id > ?2
                 ORDER BY id LIMIT ?3",
            )?
            .query_map(params![tenant, ms(after), limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    LogLine {
                        at: r.get::<_, i64>(1)? as u64,
                        level: level_from(r.get(2)?),
                        line: r.get(3)?,
                    },
                ))
            })?
            .collect()
        })
    }
}
