//! A tenant's sandbox: the `Store` data the component's imports act on, and
//! those imports, answered from the tenant's [`Storage`].

use crate::bindings::sms_notification::extension::{host, types};
use crate::clock::Clock;
use crate::directory::Directory;
use crate::outbound::Outbound;
use crate::storage::{Change, LogLine, Storage, StoreError};
use std::sync::Arc;
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

/// The `T` of a tenant's `Store`: WASI contexts plus the tenant's data.
pub struct Sandbox {
    pub tenant: String,
    pub storage: Arc<dyn Storage>,
    /// Where users are found (`find-user`).
    pub directory: Arc<dyn Directory>,
    /// Set while a due timer's call runs: users are then read fresh (the
    /// last check before an SMS).
    pub firing: bool,
    pub clock: Clock,
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub outbound: Outbound,
    pub limits: StoreLimits,
    /// Why the store refused this call's commit, if it did: the component
    /// sees only its text (the contract's `host` error), the runtime and
    /// the service its kind (whether to retry, which HTTP status).
    pub refused: Option<StoreError>,
    /// The status callback URL every SMS asks for unless the settings name
    /// one (see [`crate::runtime::Runtime::set_status_callback`]).
    pub status_callback: Option<Arc<str>>,
    /// What this call read (and wrote), key by key: its commits apply only
    /// while those keys hold the same ([`crate::storage::StateStore::commit_if`]).
    pub read: std::collections::HashMap<String, Option<Vec<u8>>>,
    /// This call's log lines, written once it is known not to be run
    /// again (see [`Sandbox::begin`]).
    pub lines: Vec<LogLine>,
}

impl Sandbox {
    pub fn new(
        tenant: String,
        storage: Arc<dyn Storage>,
        directory: Arc<dyn Directory>,
        clock: Clock,
        outbound: Outbound,
    ) -> Self {
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
            storage,
            directory,
            firing: false,
            clock,
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound,
            limits: StoreLimitsBuilder::new()
                .memory_size(MEMORY_LIMIT)
                .trap_on_grow_failure(true)
                .build(),
            refused: None,
            status_callback: None,
            read: std::collections::HashMap::new(),
            lines: Vec::new(),
        }
    }

    /// A call begins: nothing read yet, no line kept, no refusal.
    pub fn begin(&mut self) {
        self.read.clear();
        self.lines.clear();
        self.refused = None;
    }

    /// Whether the store refused this call's commit because a key it read
    /// changed meanwhile: the call is to be run again from the start.
    pub fn conflicted(&self) -> bool {
        matches!(self.refused, Some(StoreError::Conflict(_)))
    }

    /// Writes the call's log lines (a line the store cannot keep goes to
    /// stderr instead).
    pub async fn write_lines(&mut self) {
        for line in std::mem::take(&mut self.lines) {
            if let Err(e) = self.storage.log(&self.tenant, line).await {
                tracing::error!(tenant = %self.tenant, "a log line was lost: {e}");
            }
        }
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

/// The `host` interface, answered from the tenant's storage. A read the
/// store cannot answer traps the call (answering "nothing stored" could make
/// the component text someone twice); a commit it cannot make is the
/// component's `host` error, with nothing written.
impl host::Host for Sandbox {
    /// The tenant's settings, with the host's status callback when they
    /// name none (see [`with_status_callback`]).
    async fn settings(&mut self) -> wasmtime::Result<Option<String>> {
        let stored = self.storage.settings(&self.tenant).await?.0;
        Ok(match (stored, &self.status_callback) {
            (Some(json), Some(template)) => Some(with_status_callback(
                json,
                &template.replace("{tenant}", &self.tenant),
            )),
            (stored, _) => stored,
        })
    }

    async fn settings_revision(&mut self) -> wasmtime::Result<u64> {
        Ok(self.storage.revision(&self.tenant).await?)
    }

    /// Users edit their profiles: metadata over [`MAX_METADATA_BYTES`] is
    /// withheld (handed over as empty) and a name over [`MAX_NAME_BYTES`] is
    /// cut, so no user's profile can make a sandbox trap.
    async fn find_user(&mut self, uid: String) -> wasmtime::Result<Option<types::User>> {
        let found = self
            .directory
            .find_user(&self.tenant, &uid, self.firing)
            .await
            .map_err(|why| wasmtime::format_err!("finding user {uid:?}: {why}"))?;
        let Some(mut user) = found else {
            return Ok(None);
        };
        let mut end = user.name.len().min(MAX_NAME_BYTES);
        while !user.name.is_char_boundary(end) {
            end -= 1;
        }
        user.name.truncate(end);
        if user.metadata.len() > MAX_METADATA_BYTES {
            user.metadata = String::new();
        }
        Ok(Some(user.into()))
    }

    async fn state_get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        let value = self.storage.state_get(&self.tenant, &key).await?;
        self.read.entry(key).or_insert_with(|| value.clone());
        Ok(value)
    }

    /// All or none, durable when it returns; changes that would take the
    /// tenant past its quota are refused before any is applied.
    async fn commit(&mut self, changes: Vec<host::Change>) -> wasmtime::Result<Result<(), String>> {
        let changes: Vec<Change> = changes.into_iter().map(Change::from).collect();
        let read: Vec<crate::storage::Read> = self
            .read
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        match self.storage.commit_if(&self.tenant, &read, &changes).await {
            Ok(()) => {
                // Its later commits follow from what it wrote.
                for change in changes {
                    match change {
                        Change::Put { key, value } => {
                            self.read.insert(key, Some(value));
                        }
                        Change::Delete(key) => {
                            self.read.insert(key, None);
                        }
                        Change::SetTimer { .. } | Change::CancelTimer(_) => {}
                    }
                }
                Ok(Ok(()))
            }
            Err(e) => {
                let text = e.to_string();
                self.refused = Some(e);
                Ok(Err(text))
            }
        }
    }

    /// From the time zone database bundled with the host (`jiff`'s copy of
    /// IANA's), the same on every machine.
    async fn utc_offset(&mut self, zone: String, at: u64) -> wasmtime::Result<Option<i32>> {
        Ok(utc_offset(&zone, at))
    }

    /// Kept until the call ends (see [`Sandbox::write_lines`]).
    async fn log(&mut self, level: types::Level, line: String) -> wasmtime::Result<()> {
        let at = self.clock.now();
        self.lines.push(LogLine {
            at,
            level: level.into(),
            line,
        });
        Ok(())
    }
}

/// The longest URL the component takes in its settings.
const MAX_URL_CHARS: usize = 200;

/// `settings` with `statusCallbackURL` set to `url` when the key is absent.
/// A tenant's own URL, or its `null` (no reports), is kept; text that is
/// not a JSON object is handed on as it is, for the component to refuse;
/// a URL longer than the component takes is not added (the settings stay
/// valid, the tenant goes without reports: see `/healthz`).
pub fn with_status_callback(settings: String, url: &str) -> String {
    if url.len() > MAX_URL_CHARS {
        return settings;
    }
    match serde_json::from_str::<serde_json::Value>(&settings) {
        Ok(serde_json::Value::Object(mut map)) if !map.contains_key("statusCallbackURL") => {
            map.insert("statusCallbackURL".into(), url.into());
            serde_json::Value::Object(map).to_string()
        }
        _ => settings,
    }
}

/// The UTC offset, in seconds east, of the IANA zone `zone` at `at`
/// (milliseconds since the epoch); `None` for a zone the database lacks.
pub fn utc_offset(zone: &str, at: u64) -> Option<i32> {
    let tz = jiff::tz::TimeZone::get(zone).ok()?;
    let at = jiff::Timestamp::from_millisecond(i64::try_from(at).ok()?).ok()?;
    Some(tz.to_offset(at).seconds())
}

#[cfg(test)]
mod tests {
    use super::with_status_callback;

    #[test]
    fn the_default_status_callback_fills_only_an_absent_key() {
        let url = "https://sms.example.com/twilio/acme/status";
        let filled = with_status_callback(r#"{"fromMobileNo":"+14155552671"}"#.into(), url);
        let filled: serde_json::Value = serde_json::from_str(&filled).unwrap();
        assert_eq!(filled["statusCallbackURL"], url);
        assert_eq!(filled["fromMobileNo"], "+14155552671");
        for kept in [
            r#"{"statusCallbackURL":"https://hooks.example.com/s"}"#,
            r#"{"statusCallbackURL":null}"#,
            "not JSON",
            "[1]",
        ] {
            assert_eq!(with_status_callback(kept.into(), url), kept);
        }
        let long = format!("https://sms.example.com/{}", "x".repeat(200));
        assert_eq!(with_status_callback("{}".into(), &long), "{}");
    }
}
