//! Users read from CometChat, for tenants that saved their CometChat app
//! (`PUT /v1/tenants/{tenant}/cometchat`): the host's [`Directory`] asks
//! CometChat's REST API, `GET https://{appId}.api-{region}.cometchat.io/v3/users/{uid}`
//! with the header `apikey`, and reads `data.{uid, name, status, metadata}`.
//! Tenants without an app are answered from the users pushed through the
//! API.
//!
//! - A short cache ([`CACHE_MS`]) serves the names and numbers a message's
//!   handling needs; presence webhooks update it. The last check before an
//!   SMS (a due timer's call) always reads CometChat anew.
//! - Unreachable, slower than [`TIMEOUT`], or a 5xx: the call fails and its
//!   timer fires again later (with backoff): never a text on a guess.
//!   404: no such user (the component skips with `unknown-recipient`).
//!   401 or 403: CometChat refused the REST API key: the tenant's users are
//!   not read (each timer waits) until the key is saved again, and the
//!   reason is on the tenant's page and log. 429: nothing is asked of
//!   CometChat for that tenant until its `Retry-After` has passed.
//! - The REST API key goes only into the `apikey` header: no error, log
//!   line or response holds it.

use super::access::{self, Access};
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use sms_host::directory::Directory;
use sms_host::storage::{Level, Presence, User};
use sms_host::storage::{LogLine, Storage};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a user read from CometChat serves events (not the last check
/// before an SMS, which always reads anew).
pub const CACHE_MS: u64 = 60_000;
/// The longest a request to CometChat may take, connection included.
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// The longest `Retry-After` obeyed: a proxy asking for days does not
/// stop a tenant's SMS for days.
const MAX_RETRY_AFTER_MS: u64 = 3_600_000;
/// Most users cached, all tenants.
const CACHE_USERS: usize = 100_000;

/// Where CometChat's REST API is.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// `https://{appId}.api-{region}.cometchat.io`.
    CometChat,
    /// A stand-in at this base URL (`--cometchat-url`): `{base}/v3/users/{uid}`.
    At(String),
    /// The in-process stand-in (`--fake-cometchat`):
    /// `{base}/{tenant}/v3/users/{uid}`.
    Fake(String),
}

/// A user read from CometChat: when, and the time of the presence it holds
/// (a presence webhook may have set it since).
struct Cached {
    user: User,
    fetched_at: u64,
    presence_at: u64,
}

/// The host's directory for `serve`.
pub struct CometChatDirectory {
    storage: Arc<dyn Storage>,
    endpoint: Endpoint,
    cache: Mutex<HashMap<(String, String), Cached>>,
    /// Tenant → no request before this time (a 429).
    waiting: Mutex<HashMap<String, u64>>,
}

fn now() -> u64 {
    sms_host::clock::Clock::wall().now()
}

/// A path segment, percent-encoded (uids are short ASCII in practice).
fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl CometChatDirectory {
    pub fn new(storage: Arc<dyn Storage>, endpoint: Endpoint) -> Self {
        Self {
            storage,
            endpoint,
            cache: Mutex::default(),
            waiting: Mutex::default(),
        }
    }

    /// Forgets what was cached for `tenant` (its app changed).
    pub fn forget(&self, tenant: &str) {
        self.cache.lock().unwrap().retain(|(t, _), _| t != tenant);
        self.waiting.lock().unwrap().remove(tenant);
    }

    /// A presence webhook: a cached user's presence as of `at`, unless a
    /// later one is known.
    pub fn presence(&self, tenant: &str, uid: &str, presence: Presence, at: u64) {
        if let Some(cached) = self
            .cache
            .lock()
            .unwrap()
            .get_mut(&(tenant.to_owned(), uid.to_owned()))
            && cached.presence_at <= at
        {
            cached.user.presence = presence;
            cached.presence_at = at;
        }
    }

    fn url(&self, tenant: &str, app: &access::CometChatApp, uid: &str) -> String {
        match &self.endpoint {
            Endpoint::CometChat => format!(
                "https://{}.api-{}.cometchat.io/v3/users/{}",
                app.app_id,
                app.region,
                segment(uid)
            ),
            Endpoint::At(base) => {
                format!("{}/v3/users/{}", base.trim_end_matches('/'), segment(uid))
            }
            Endpoint::Fake(base) => format!("{base}/{}/v3/users/{}", segment(tenant), segment(uid)),
        }
    }

    /// Remembers that CometChat refused the tenant's key: no more requests
    /// until it is saved again.
    async fn pause(&self, tenant: &str, status: u16) -> String {
        let why = format!(
            "CometChat refused the REST API key (HTTP {status}): users are not read until the key is saved again (PUT /v1/tenants/{tenant}/cometchat)"
        );
        if let Ok(Some(json)) = self.storage.access(tenant).await
            && let Ok(mut record) = serde_json::from_str::<Access>(&json)
            && let Some(app) = &mut record.cometchat
        {
            app.paused = Some(why.clone());
            let json = serde_json::to_string(&record).expect("an access record serializes");
            if let Err(e) = self.storage.save_access(tenant, &json).await {
                tracing::error!(tenant, "could not record the CometChat pause: {e}");
            }
        }
        let line = LogLine {
            at: now(),
            level: Level::Error,
            line: why.clone(),
        };
        if let Err(e) = self.storage.log(tenant, line).await {
            tracing::error!(tenant, "a log line was lost: {e}");
        }
        why
    }

    /// One request to CometChat for `uid`.
    async fn fetch(
        &self,
        tenant: &str,
        app: &access::CometChatApp,
        uid: &str,
    ) -> Result<Option<User>, String> {
        if let Some(until) = self.waiting.lock().unwrap().get(tenant)
            && *until > now()
        {
            return Err(format!(
                "CometChat asked this service to wait (429) for another {} s",
                (until - now()).div_ceil(1000)
            ));
        }
        let request = http::Request::get(self.url(tenant, app, uid))
            .header("apikey", &app.api_key)
            .header("accept", "application/json")
            .body(Full::new(Bytes::new()).map_err(|e| match e {}))
            .map_err(|_| format!("user id {uid:?} does not make a valid URL"))?;
        let options = wasmtime_wasi_http::RequestOptions {
            connect_timeout: Some(TIMEOUT),
            first_byte_timeout: Some(TIMEOUT),
            between_bytes_timeout: Some(TIMEOUT),
        };
        let answer = tokio::time::timeout(TIMEOUT, async {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, Some(options))
                .await
                .map_err(|e| format!("CometChat could not be reached: {e}"))?;
            let connection = tokio::spawn(io);
            let (parts, body) = response.into_parts();
            let body = http_body_util::Limited::new(body, 1 << 20)
                .collect()
                .await
                .map_err(|_| "CometChat's answer was cut off or too large".to_owned())?
                .to_bytes();
            connection.abort();
            Ok::<_, String>((parts, body))
        })
        .await
        .map_err(|_| format!("CometChat did not answer within {TIMEOUT:?}"))??;
        let (parts, body) = answer;
        match parts.status.as_u16() {
            200 => user(uid, &body).map(Some),
            404 => Ok(None),
            status @ (401 | 403) => Err(self.pause(tenant, status).await),
            429 => {
                let wait_ms = parts
                    .headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map_or(60_000, |s| s.saturating_mul(1000))
                    .min(MAX_RETRY_AFTER_MS);
                self.waiting
                    .lock()
                    .unwrap()
                    .insert(tenant.to_owned(), now() + wait_ms);
                Err(format!(
                    "CometChat asked this service to wait (429) for {} s",
                    wait_ms / 1000
                ))
            }
            status => Err(format!("CometChat answered HTTP {status}")),
        }
    }
}

/// A user from CometChat's answer `{"data": {"uid", "name", "status",
/// "metadata"}}`; the metadata object becomes the JSON text the component
/// reads.
fn user(uid: &str, body: &[u8]) -> Result<User, String> {
    let json: Value =
        serde_json::from_slice(body).map_err(|_| "CometChat's answer is not JSON".to_owned())?;
    let data = json.get("data").ok_or("CometChat's answer has no `data`")?;
    let metadata = match data.get("metadata") {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    };
    Ok(User {
        uid: data
            .get("uid")
            .and_then(Value::as_str)
            .unwrap_or(uid)
            .to_owned(),
        name: data
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(uid)
            .to_owned(),
        presence: match data.get("status").and_then(Value::as_str) {
            Some("online" | "available") => Presence::Online,
            _ => Presence::Offline,
        },
        metadata,
    })
}

#[async_trait]
impl Directory for CometChatDirectory {
    async fn find_user(
        &self,
        tenant: &str,
        uid: &str,
        fresh: bool,
    ) -> Result<Option<User>, String> {
        let record = match self
            .storage
            .access(tenant)
            .await
            .map_err(|e| e.to_string())?
        {
            None => None,
            Some(json) => {
                serde_json::from_str::<Access>(&json)
                    .map_err(|_| format!("the access record of tenant {tenant:?} is not readable"))?
                    .cometchat
            }
        };
        let Some(app) = record else {
            return self
                .storage
                .find_user(tenant, uid)
                .await
                .map_err(|e| e.to_string());
        };
        if let Some(why) = &app.paused {
            return Err(why.clone());
        }
        let key = (tenant.to_owned(), uid.to_owned());
        if !fresh
            && let Some(cached) = self.cache.lock().unwrap().get(&key)
            && now().saturating_sub(cached.fetched_at) < CACHE_MS
        {
            return Ok(Some(cached.user.clone()));
        }
        let found = self.fetch(tenant, &app, uid).await?;
        let mut cache = self.cache.lock().unwrap();
        match &found {
            Some(user) => {
                if cache.len() >= CACHE_USERS {
                    cache.clear();
                }
                cache.insert(
                    key,
                    Cached {
                        user: user.clone(),
                        fetched_at: now(),
                        presence_at: now(),
                    },
                );
            }
            None => {
                cache.remove(&key);
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cometchats_user_answer_is_read() {
        let body = br#"{"data": {"uid": "bob", "name": "Bob", "status": "online",
            "metadata": {"@private": {"contactNumber": "+14155552671"}}, "lastActiveAt": 1}}"#;
        let u = user("bob", body).unwrap();
        assert_eq!(u.name, "Bob");
        assert!(matches!(u.presence, Presence::Online));
        assert_eq!(
            u.metadata,
            r#"{"@private":{"contactNumber":"+14155552671"}}"#
        );
        assert!(user("x", b"[]").is_err());
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
