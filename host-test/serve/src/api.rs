//! The handlers: each checks who is asking, parses what was sent (a bad
//! body is a 400 naming the field), runs one call on the tenant's runtime
//! and answers with its JSON. Secrets are write-only: no response echoes
//! the auth token or the API key's secret.

use super::App;
use super::access;
use super::cometchat::{self, Event};
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sms_host::bindings::sms_notification::extension::types::{
    ConversationKind, Deletion, Error, Message, MessageFormat, Receipt, Sample,
};
use sms_host::call::{CallRecord, Logged, Reply};
use sms_host::json;
use sms_host::runtime::Call;
use sms_host::storage::StoreError;
use sms_host::storage::{Presence, User};
use std::sync::Arc;

pub(super) type ApiResult = Result<Response, Failure>;

/// An error response: a status and what went wrong.
pub struct Failure(pub StatusCode, pub Value);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

pub(super) fn fail(status: StatusCode, message: impl Into<String>) -> Failure {
    Failure(status, json!({ "error": message.into() }))
}

pub(super) fn ok(value: Value) -> ApiResult {
    Ok((StatusCode::OK, axum::Json(value)).into_response())
}

/// Settings fields no response may show.
const SECRETS: [&str; 2] = ["twilioAuthToken", "twilioApiKeySecret"];

/// A tenant or user id from the path: what a state key can hold.
pub(super) fn name(what: &str, value: &str) -> Result<(), Failure> {
    let fine = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
        // `.` and `..` (also sent as `%2e%2e`) name no tenant or user.
        && !value.bytes().all(|b| b == b'.');
    if fine {
        Ok(())
    } else {
        Err(fail(
            StatusCode::BAD_REQUEST,
            format!(
                "{what} {value:?} is not valid: 1 to 128 of A-Z, a-z, 0-9, - _ . @, not only dots"
            ),
        ))
    }
}

/// The tenant exists: it has saved settings (a revision above 0). Its
/// revision, not its settings: an event must not read and unseal them
/// twice (the component keeps them by revision).
pub(super) async fn known(app: &App, tenant: &str) -> Result<(), Failure> {
    name("tenant", tenant)?;
    match app.storage.revision(tenant).await {
        Ok(1..) => Ok(()),
        Ok(0) => Err(fail(
            StatusCode::NOT_FOUND,
            format!(
                "no tenant {tenant:?}: save its settings first (PUT /v1/tenants/{tenant}/settings)"
            ),
        )),
        Err(e) => Err(storage_error(e)),
    }
}

/// A query string as `T`, read after the caller was authenticated, or a
/// 400 naming what is wrong.
fn query<T: for<'de> Deserialize<'de>>(raw: Option<String>) -> Result<T, Failure> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).map_err(|e| {
        fail(
            StatusCode::BAD_REQUEST,
            format!("the query string is not what this route takes: {e}"),
        )
    })
}

/// A JSON body as `T`, or a 400 naming the field and why.
pub(super) fn body<T: for<'de> Deserialize<'de>>(bytes: &Bytes) -> Result<T, Failure> {
    serde_json::from_slice(bytes).map_err(|e| {
        fail(
            StatusCode::BAD_REQUEST,
            format!("the body is not what this route takes: {e}"),
        )
    })
}

/// A store failure as HTTP, by its kind: 503 when the database failed
/// (try again), 507 when the tenant's quota refused the change, 500 for a
/// record that cannot be read, 409 for a conflicting write.
pub(super) fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::Unavailable(_) | StoreError::Setup(_) => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
        StoreError::Corrupt(_) => StatusCode::INTERNAL_SERVER_ERROR,
        StoreError::Conflict(_) => StatusCode::CONFLICT,
    }
}

pub(super) fn storage_error(e: StoreError) -> Failure {
    fail(store_status(&e), e.to_string())
}

/// Runs `call` on the tenant's runtime, within its concurrency bound.
async fn on_tenant<T>(
    app: &App,
    tenant: &str,
    call: impl AsyncFnOnce(&mut sms_host::runtime::Runtime) -> T,
) -> Result<T, Failure> {
    let limit = app.limit(tenant);
    // At most TENANT_CONCURRENCY of one tenant's calls wait at its runtime:
    // another tenant's call never queues behind more than that. The rest
    // wait here, for a while.
    let waited = tokio::time::timeout(super::TENANT_WAIT, limit.acquire()).await;
    let Ok(Ok(_permit)) = waited else {
        return Err(fail(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "tenant {tenant:?} has had {} calls in flight for {:?}; try again shortly",
                super::TENANT_CONCURRENCY,
                super::TENANT_WAIT
            ),
        ));
    };
    let shard = app.shards.of(tenant);
    let mut rt = shard.lock().await;
    Ok(call(&mut rt).await)
}

/// An event call on the tenant's runtime ([`on_tenant`]), with why the
/// store failed it, if it did.
async fn event_call(
    app: &App,
    tenant: &str,
    call: impl AsyncFnOnce(&mut sms_host::runtime::Runtime) -> Call,
) -> Result<(Call, Option<StoreError>), Failure> {
    on_tenant(app, tenant, async |rt| {
        let result = call(rt).await;
        (result, rt.refused().cloned())
    })
    .await
}

/// A call's answer as HTTP: 200 with the outcome; 422 for settings or
/// input the component refused; 403 for an unverified report; when the
/// host's store failed, its kind's status ([`store_status`]: 503 for a
/// database down, 507 for a full quota); 500 for a trap.
fn answer(
    app: &App,
    tenant: &str,
    call: &'static str,
    result: Call,
    refused: Option<StoreError>,
) -> ApiResult {
    answered(app, tenant, call, result, refused).1
}

/// [`answer`], and what the call answered in one word (as `/metrics`
/// counts it). The call's record goes to the log (and from there to the
/// metrics and the tenant's page); the HTTP status comes from its typed
/// reply ([`CallAnswer`]).
fn answered(
    app: &App,
    tenant: &str,
    call: &'static str,
    result: Call,
    refused: Option<StoreError>,
) -> (String, ApiResult) {
    let mut record = CallRecord::new(tenant, call, now(), result);
    record.store = refused;
    let kind = record.kind();
    let answer = CallAnswer::of(&record);
    let _ = app.lines.send(Logged::Call(record));
    (kind, Ok(answer.into_response()))
}

/// A call's answer over HTTP: its line (without `at`) and the status its
/// reply means.
struct CallAnswer {
    status: StatusCode,
    body: Value,
}

impl CallAnswer {
    fn of(record: &CallRecord) -> Self {
        let stored = record.store.as_ref().map(store_status);
        let status = match &record.reply {
            Reply::Outcome(_) => StatusCode::OK,
            Reply::Trap(_) => stored.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            Reply::Error(Error::Host(_)) => stored.unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            Reply::Error(Error::Unauthenticated(_)) => StatusCode::FORBIDDEN,
            Reply::Error(Error::InvalidSettings(_) | Error::InvalidInput(_)) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
        };
        let mut body = record.to_json();
        if let Some(line) = body.as_object_mut() {
            line.remove("at");
        }
        Self { status, body }
    }
}

impl IntoResponse for CallAnswer {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

fn now() -> u64 {
    sms_host::clock::Clock::wall().now()
}

pub async fn not_found(uri: Uri) -> Failure {
    fail(StatusCode::NOT_FOUND, format!("no route {}", uri.path()))
}

/// The routes as an OpenAPI 3.1 document (`src/serve/openapi.json`; a
/// test keeps it and the router in step).
pub async fn openapi() -> Response {
    (
        [("content-type", "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

pub async fn healthz(State(app): State<Arc<App>>) -> ApiResult {
    match app.storage.next_due(0).await {
        Ok(_) => ok(json!({
            "database": "reachable",
            "component": app.contract,
            "delivery_reports": match &app.status_callback {
                Some(url) => json!({ "default_callback": url }),
                None => json!({ "default_callback": null, "why": "no --public-url: only tenants whose settings name a statusCallbackURL get delivery reports" }),
            },
        })),
        Err(e) => Err(fail(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the database is not reachable: {e}"),
        )),
    }
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    // Left out when the database does not answer.
    let timers = app.storage.timer_counts().await.ok();
    let twilio = app.stats.latency.lock().unwrap().clone();
    let mut text = app.metrics.render(&twilio, timers);
    let forged = app.forged.load(std::sync::atomic::Ordering::Relaxed);
    text.push_str(&format!(
        "# HELP sms_forged_reports_total Status callbacks refused: not signed with their tenant's auth token, or for no tenant.\n# TYPE sms_forged_reports_total counter\nsms_forged_reports_total {forged}\n"
    ));
    ([("content-type", "text/plain; version=0.0.4")], text).into_response()
}

/// The settings in `bytes` with the saved secrets they leave out (a
/// settings page never holds them); a secret given as `null` is removed.
async fn with_saved_secrets(app: &App, tenant: &str, bytes: &Bytes) -> Result<String, Failure> {
    let mut settings: serde_json::Map<String, Value> = body(bytes)?;
    let stored = app
        .storage
        .settings(tenant)
        .await
        .map_err(storage_error)?
        .0
        .and_then(|s| serde_json::from_str::<serde_json::Map<String, Value>>(&s).ok());
    for secret in SECRETS {
        match settings.get(secret) {
            Some(Value::Null) => {
                settings.remove(secret);
            }
            Some(_) => {}
            None => {
                if let Some(kept) = stored.as_ref().and_then(|s| s.get(secret)) {
                    settings.insert(secret.to_owned(), kept.clone());
                }
            }
        }
    }
    Ok(Value::Object(settings).to_string())
}

/// `validate-settings` on the tenant's runtime: its problems (none: valid).
async fn problems_of(
    app: &App,
    tenant: &str,
    text: &str,
) -> Result<Vec<sms_host::bindings::sms_notification::extension::types::Problem>, Failure> {
    let saved = matches!(app.storage.revision(tenant).await, Ok(1..));
    let result = on_tenant(app, tenant, async |rt| {
        let result = rt.validate_settings(tenant, text).await;
        // A name nobody saved settings for keeps no sandbox.
        if !saved {
            rt.evict(tenant);
        }
        result
    })
    .await?;
    match result {
        Ok(Ok(())) => Ok(Vec::new()),
        Ok(Err(problems)) => Ok(problems),
        Err(trap) => Err(fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the component trapped: {trap:#}"),
        )),
    }
}

/// `PUT /v1/tenants/{tenant}/settings`: validated by the component (422
/// with every problem), then stored. A secret left out of the body keeps
/// the stored one (a settings page never holds it); `null` removes it.
pub async fn put_settings(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    name("tenant", &tenant)?;
    let text = with_saved_secrets(&app, &tenant, &bytes).await?;
    let problems = problems_of(&app, &tenant, &text).await?;
    if !problems.is_empty() {
        return Err(Failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "problems": json::problems(&problems) }),
        ));
    }
    app.storage
        .save_settings(&tenant, &text)
        .await
        .map_err(storage_error)?;
    // The tenant's state may hold at most --max-state-keys records: a
    // commit past it is refused whole (the call's `host` error).
    app.storage
        .set_quota(&tenant, Some(app.options.quotas.state_keys))
        .await
        .map_err(storage_error)?;
    ok(json!({ "saved": true }))
}

/// `POST /v1/tenants/{tenant}/settings/validate`: what saving these
/// settings would say, without saving: `{"problems": [...]}`, empty when
/// they are valid. For a settings page, on every change.
pub async fn validate_settings(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    name("tenant", &tenant)?;
    let text = with_saved_secrets(&app, &tenant, &bytes).await?;
    let problems = problems_of(&app, &tenant, &text).await?;
    ok(json!({ "problems": json::problems(&problems) }))
}

/// `GET /tenants/{tenant}`: the dashboard page (static; it asks for the
/// operator token and calls the API with it).
pub async fn page() -> Response {
    (
        [
            ("content-type", "text/html; charset=utf-8"),
            (
                "content-security-policy",
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
            ),
            // For browsers without `frame-ancestors`: never in a frame.
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
        ],
        include_str!("page.html"),
    )
        .into_response()
}

/// `GET /v1/tenants/{tenant}/settings`: as saved, without secrets; which
/// secrets are set is listed instead.
pub async fn get_settings(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    known(&app, &tenant).await?;
    let text = app
        .storage
        .settings(&tenant)
        .await
        .map_err(storage_error)?
        .0
        .unwrap_or_default();
    let mut settings: serde_json::Map<String, Value> =
        serde_json::from_str(&text).unwrap_or_default();
    let set: Vec<&str> = SECRETS
        .into_iter()
        .filter(|s| settings.remove(*s).is_some())
        .collect();
    ok(json!({ "settings": settings, "secrets_set": set }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    presence: Option<PresenceBody>,
    /// A JSON object; `{"@private": {"contactNumber": "+1…", "timeZone": "…"}}`.
    #[serde(default)]
    metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum PresenceBody {
    Online,
    Offline,
}

impl From<PresenceBody> for Presence {
    fn from(p: PresenceBody) -> Self {
        match p {
            PresenceBody::Online => Presence::Online,
            PresenceBody::Offline => Presence::Offline,
        }
    }
}

/// `PUT /v1/tenants/{tenant}/users/{uid}`: creates or replaces a user.
pub async fn put_user(
    State(app): State<Arc<App>>,
    Path((tenant, uid)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    known(&app, &tenant).await?;
    name("user", &uid)?;
    let user: UserBody = body(&bytes)?;
    let record = User {
        name: user.name.unwrap_or_else(|| uid.clone()),
        presence: user.presence.unwrap_or(PresenceBody::Offline).into(),
        metadata: Value::Object(user.metadata.unwrap_or_default()).to_string(),
        uid,
    };
    let bytes = record.name.len() + record.metadata.len();
    let cap = app.options.quotas.user_bytes;
    if bytes > cap {
        return Err(fail(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the user's name and metadata are {bytes} bytes; this service keeps at most {cap} per user (--max-user-bytes)"
            ),
        ));
    }
    room_for_user(&app, &tenant, &record.uid).await?;
    app.storage
        .put_user(&tenant, &record)
        .await
        .map_err(storage_error)?;
    ok(json!({ "saved": true }))
}

/// Whether the tenant may have one more user: a user it already has may
/// always be replaced; a new one only below `--max-users`.
async fn room_for_user(app: &App, tenant: &str, uid: &str) -> Result<(), Failure> {
    let cap = app.options.quotas.users;
    let known = app
        .storage
        .find_user(tenant, uid)
        .await
        .map_err(storage_error)?
        .is_some();
    if known
        || app
            .storage
            .user_count(tenant)
            .await
            .map_err(storage_error)?
            < cap
    {
        return Ok(());
    }
    Err(fail(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("tenant {tenant:?} has {cap} users, the most this service keeps (--max-users)"),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PresenceChange {
    presence: PresenceBody,
}

/// `POST /v1/tenants/{tenant}/users/{uid}/presence`: `{"presence": "online"}`.
pub async fn post_presence(
    State(app): State<Arc<App>>,
    Path((tenant, uid)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    known(&app, &tenant).await?;
    name("user", &uid)?;
    let change: PresenceChange = body(&bytes)?;
    set_presence(&app, &tenant, &uid, change.presence.into()).await?;
    ok(json!({ "saved": true }))
}

async fn set_presence(app: &App, tenant: &str, uid: &str, p: Presence) -> Result<(), Failure> {
    match app
        .storage
        .set_presence(tenant, uid, p, now())
        .await
        .map_err(storage_error)?
    {
        Some(_) => Ok(()),
        None => Err(fail(
            StatusCode::NOT_FOUND,
            format!("no user {uid:?}: PUT /v1/tenants/{tenant}/users/{uid} first"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    id: String,
    conversation: String,
    sender: String,
    receiver: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    group: bool,
    /// `text` (default), `image`, `video`, `audio`, `file`, `custom`.
    #[serde(default)]
    format: Option<String>,
    /// Milliseconds since the epoch; now by default.
    #[serde(default)]
    sent_at: Option<u64>,
}

/// How far ahead of this server's clock a message's `sent_at` may be: a
/// notification due at the end of time would never come.
pub(super) const MAX_AHEAD_MS: u64 = 24 * 3_600_000;

impl MessageBody {
    /// The message, or a 400 naming its unknown format.
    fn message(self) -> Result<Message, Failure> {
        let m = self;
        let format = match m.format.as_deref().unwrap_or("text") {
            "text" => MessageFormat::Text,
            "image" => MessageFormat::Image,
            "video" => MessageFormat::Video,
            "audio" => MessageFormat::Audio,
            "file" => MessageFormat::File,
            "custom" => MessageFormat::Custom,
            other => {
                return Err(fail(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "format {other:?} is not one of text, image, video, audio, file, custom"
                    ),
                ));
            }
        };
        Ok(Message {
            id: m.id,
            conversation: m.conversation,
            kind: if m.group {
                ConversationKind::Group
            } else {
                ConversationKind::OneOnOne
            },
            format,
            sender: m.sender,
            receiver: m.receiver,
            text: m.text,
            sent_at: match m.sent_at {
                None => now(),
                Some(at) if at > now().saturating_add(MAX_AHEAD_MS) => {
                    return Err(fail(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "sent_at {at} is more than a day ahead of this server's clock ({}): \
                             milliseconds since the epoch, please",
                            now()
                        ),
                    ));
                }
                Some(at) => at,
            },
        })
    }
}

/// `POST /v1/tenants/{tenant}/edits`: a message edited (its id and new
/// text); answers with the outcome.
pub async fn post_edit(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    known(&app, &tenant).await?;
    let message = body::<MessageBody>(&bytes)?.message()?;
    let (result, refused) = event_call(&app, &tenant, async |rt| {
        rt.on_edit(&tenant, &message).await
    })
    .await?;
    answer(&app, &tenant, "on-edit", result, refused)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeletionBody {
    conversation: String,
    message: String,
    #[serde(default)]
    deleted_at: Option<u64>,
}

/// `POST /v1/tenants/{tenant}/deletions`: a message deleted; answers with
/// the outcome.
pub async fn post_deletion(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    known(&app, &tenant).await?;
    let d: DeletionBody = body(&bytes)?;
    let deletion = Deletion {
        conversation: d.conversation,
        message: d.message,
        deleted_at: d.deleted_at.unwrap_or_else(now),
    };
    let (result, refused) = event_call(&app, &tenant, async |rt| {
        rt.on_delete(&tenant, &deletion).await
    })
    .await?;
    answer(&app, &tenant, "on-delete", result, refused)
}

/// `POST /v1/tenants/{tenant}/messages`: answers with the outcome.
pub async fn post_message(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    known(&app, &tenant).await?;
    let message = body::<MessageBody>(&bytes)?.message()?;
    let (result, refused) = event_call(&app, &tenant, async |rt| {
        rt.on_message(&tenant, &message).await
    })
    .await?;
    answer(&app, &tenant, "on-message", result, refused)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptBody {
    conversation: String,
    reader: String,
    message: String,
    #[serde(default)]
    read_at: Option<u64>,
}

/// `POST /v1/tenants/{tenant}/receipts`: answers with the outcome.
pub async fn post_receipt(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    known(&app, &tenant).await?;
    let r: ReceiptBody = body(&bytes)?;
    let receipt = Receipt {
        conversation: r.conversation,
        reader: r.reader,
        message: r.message,
        read_at: r.read_at.unwrap_or_else(now),
    };
    let (result, refused) = event_call(&app, &tenant, async |rt| {
        rt.on_read(&tenant, &receipt).await
    })
    .await?;
    answer(&app, &tenant, "on-read", result, refused)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewBody {
    /// Settings to preview with; the saved ones by default (with their
    /// secrets, which never leave the server).
    #[serde(default)]
    settings: Option<serde_json::Map<String, Value>>,
    sender_name: String,
    text: String,
    #[serde(default)]
    unread: Option<u32>,
}

/// `POST /v1/tenants/{tenant}/preview`: the SMS the settings would send.
pub async fn post_preview(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    name("tenant", &tenant)?;
    let p: PreviewBody = body(&bytes)?;
    let settings = match p.settings {
        // A page previews unsaved settings without their secrets.
        Some(given) => {
            let given = Bytes::from(Value::Object(given).to_string());
            with_saved_secrets(&app, &tenant, &given).await?
        }
        None => app
            .storage
            .settings(&tenant)
            .await
            .map_err(storage_error)?
            .0
            .ok_or_else(|| {
                fail(
                    StatusCode::NOT_FOUND,
                    format!("no tenant {tenant:?}: save its settings first, or send settings"),
                )
            })?,
    };
    let sample = Sample {
        sender_name: p.sender_name,
        text: p.text,
        unread: p.unread.unwrap_or(1),
    };
    let saved = matches!(app.storage.revision(&tenant).await, Ok(1..));
    let result = on_tenant(&app, &tenant, async |rt| {
        let result = rt.preview(&tenant, &settings, &sample).await;
        if !saved {
            rt.evict(&tenant);
        }
        result
    })
    .await?;
    match result {
        Ok(Ok(preview)) => ok(json::preview(&preview)),
        Ok(Err(problems)) => Err(Failure(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({ "problems": json::problems(&problems) }),
        )),
        Err(trap) => Err(fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the component trapped: {trap:#}"),
        )),
    }
}

/// `GET /v1/tenants/{tenant}/state`: pending notifications, recent SMS with
/// Twilio's status, suppressed numbers, the pause, unreadable records;
/// read by the component (`inspect`), numbers masked.
pub async fn get_state(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    known(&app, &tenant).await?;
    let result = on_tenant(&app, &tenant, async |rt| rt.inspect(&tenant).await).await?;
    match result {
        Ok(Some(i)) => ok(json::inspection(&i)),
        Ok(None) => Err(fail(
            StatusCode::NOT_IMPLEMENTED,
            "this component's contract has no inspect",
        )),
        Err(e) => Err(fail(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))),
    }
}

/// `GET /v1/tenants/{tenant}/quarantine`: records the component could not
/// read and kept aside, with their bytes (base64), for an operator to look
/// at before clearing them.
pub async fn get_quarantine(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    use base64::Engine as _;
    access::tenant(&app, &headers, &tenant).await?;
    known(&app, &tenant).await?;
    let kept = app
        .storage
        .state_prefix(&tenant, sms_host::runtime::QUARANTINE)
        .await
        .map_err(storage_error)?;
    let records: Vec<Value> = kept
        .into_iter()
        .map(|(key, bytes)| {
            json!({ "key": key, "bytes": base64::engine::general_purpose::STANDARD.encode(bytes) })
        })
        .collect();
    ok(json!({ "records": records }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClearQuery {
    key: String,
}

/// `DELETE /v1/tenants/{tenant}/quarantine?key=KEY`: clears one kept-aside
/// record (only keys under `quarantine/`).
pub async fn delete_quarantine(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    let q: ClearQuery = query(q)?;
    known(&app, &tenant).await?;
    if !q.key.starts_with(sms_host::runtime::QUARANTINE) {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            format!(
                "only quarantined records can be cleared here: keys starting with {:?}",
                sms_host::runtime::QUARANTINE
            ),
        ));
    }
    let cleared = app
        .storage
        .state_delete(&tenant, &q.key)
        .await
        .map_err(storage_error)?;
    if cleared {
        ok(json!({ "cleared": q.key }))
    } else {
        Err(fail(
            StatusCode::NOT_FOUND,
            format!("no quarantined record {:?}", q.key),
        ))
    }
}

#[derive(Deserialize)]
pub struct LogsQuery {
    #[serde(default)]
    after: u64,
}

/// `GET /v1/tenants/{tenant}/logs?after=N`: the tenant's recent log lines
/// (numbers masked by the component), each with its position.
pub async fn get_logs(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult {
    access::tenant(&app, &headers, &tenant).await?;
    let q: LogsQuery = query(q)?;
    known(&app, &tenant).await?;
    let lines = app
        .storage
        .logs(&tenant, q.after, 200)
        .await
        .map_err(storage_error)?;
    let lines: Vec<Value> = lines
        .into_iter()
        .map(|(n, line)| {
            let mut v = json::log(&line)["log"].clone();
            v["n"] = json!(n);
            v
        })
        .collect();
    ok(json!({ "lines": lines }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FakeSmsQuery {
    #[serde(default)]
    tenant: Option<String>,
}

/// `GET /v1/fake-twilio/sms?tenant=T`: what the in-process fake Twilio
/// received (with `--fake-twilio`), oldest first: every tenant's for the
/// operator, one tenant's for that tenant's token.
pub async fn get_fake_sms(
    State(app): State<Arc<App>>,
    Query(q): Query<FakeSmsQuery>,
    headers: HeaderMap,
) -> ApiResult {
    match &q.tenant {
        Some(tenant) => {
            access::tenant(&app, &headers, tenant).await?;
        }
        None => access::operator(&app, &headers)?,
    }
    if !app.fake {
        return Err(fail(
            StatusCode::NOT_FOUND,
            "the fake Twilio is off: start serve with --fake-twilio",
        ));
    }
    let sms: Vec<Value> = app
        .fake_sms
        .lock()
        .unwrap()
        .iter()
        .filter(|sms| {
            q.tenant
                .as_ref()
                .is_none_or(|t| sms["tenant"] == t.as_str())
        })
        .cloned()
        .collect();
    ok(json!({ "sms": sms }))
}

/// `GET /fake-cometchat/{tenant}/v3/users/{uid}` (with `--fake-cometchat`):
/// an in-process stand-in for CometChat's REST API, answering in its shape
/// with the users pushed through this service's API, and only to the
/// tenant's saved REST API key (another gets 401, as CometChat answers).
pub async fn fake_cometchat(
    State(app): State<Arc<App>>,
    Path((tenant, uid)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult {
    if !app.options.fake_cometchat {
        return Err(fail(
            StatusCode::NOT_FOUND,
            "the fake CometChat is off: start serve with --fake-cometchat",
        ));
    }
    name("tenant", &tenant)?;
    let saved = access::load(&app, &tenant).await?.cometchat;
    let given = headers
        .get("apikey")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let matches = saved
        .as_ref()
        .is_some_and(|c| bool::from(subtle::ConstantTimeEq::ct_eq(given, c.api_key.as_bytes())));
    if !matches {
        return Err(Failure(
            StatusCode::UNAUTHORIZED,
            json!({ "error": { "code": "AUTH_ERR_APIKEY_NOT_FOUND", "message": "The apikey is not valid." } }),
        ));
    }
    let user = app
        .storage
        .find_user(&tenant, &uid)
        .await
        .map_err(storage_error)?
        .ok_or_else(|| {
            Failure(
                StatusCode::NOT_FOUND,
                json!({ "error": { "code": "ERR_UID_NOT_FOUND", "message": format!("The UID {uid} does not exist.") } }),
            )
        })?;
    let metadata: Value = serde_json::from_str(&user.metadata).unwrap_or(json!({}));
    ok(json!({ "data": {
        "uid": user.uid,
        "name": user.name,
        "status": presence_name(user.presence),
        "metadata": metadata,
        "role": "default",
    }}))
}

/// `POST /twilio/{tenant}/status`: Twilio's status callback. Its signature
/// is its authentication (checked by the component): 204 when recorded or
/// harmless, 403 when it does not verify.
pub async fn post_status(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    bytes: Bytes,
) -> ApiResult {
    // One answer for every report that is not taken, an unknown tenant's
    // included: tenant names cannot be probed without a token.
    let refused = || {
        Failure(
            StatusCode::FORBIDDEN,
            json!({ "error": "the report is not signed with this tenant's auth token" }),
        )
    };
    if name("tenant", &tenant).is_err() || !matches!(app.storage.revision(&tenant).await, Ok(1..)) {
        app.forged_report();
        return Err(refused());
    }
    let path = uri
        .path_and_query()
        .map_or(uri.path(), |p| p.as_str())
        .to_owned();
    let base = match &app.options.public_url {
        Some(base) => base.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            let scheme = headers
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("http");
            format!("{scheme}://{host}")
        }
    };
    let signature = headers
        .get("x-twilio-signature")
        .and_then(|h| h.to_str().ok());
    let report = sms_host::report::received(&format!("{base}{path}"), &bytes, signature);
    let (result, store) = event_call(&app, &tenant, async |rt| {
        rt.on_delivery_status(&tenant, &report).await
    })
    .await?;
    // A forged report is counted, not logged one line each: anyone can
    // post them.
    if matches!(
        result,
        Ok(Err(
            sms_host::bindings::sms_notification::extension::types::Error::Unauthenticated(_)
        ))
    ) {
        app.forged_report();
        return Err(refused());
    }
    let response = answer(&app, &tenant, "on-delivery-status", result, store)?;
    match response.status() {
        StatusCode::OK => Ok(StatusCode::NO_CONTENT.into_response()),
        StatusCode::FORBIDDEN => Err(refused()),
        _ => Ok(response),
    }
}

/// `POST /cometchat/{tenant}/webhook`: CometChat's webhooks, legacy and
/// current, with the Basic auth CometChat sends. Counted in `/metrics` by
/// system, trigger and answer.
pub async fn post_cometchat(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    let count = |system: Option<cometchat::System>, trigger: &str, answer: &str| {
        app.metrics
            .webhook(system.map_or("unknown", |s| s.as_str()), trigger, answer);
    };
    if let Err(refused) = access::webhook(&app, &headers, &tenant).await {
        count(None, "unknown", "unauthorized");
        return Err(refused);
    }
    known(&app, &tenant).await?;
    let payload: Value = body(&bytes).inspect_err(|_| count(None, "unknown", "malformed"))?;
    let webhook = match cometchat::parse(&payload, now()) {
        Ok(webhook) => webhook,
        Err(malformed) => {
            count(
                cometchat::system_of(&payload),
                &malformed.trigger,
                "malformed",
            );
            return Err(fail(StatusCode::BAD_REQUEST, malformed.to_string()));
        }
    };
    let (system, trigger) = (webhook.system, webhook.trigger);
    match webhook.event {
        Event::Ignored(why) => {
            count(system, &trigger, "ignored");
            ok(json!({ "ignored": trigger, "why": why }))
        }
        Event::Unknown => {
            count(system, &trigger, "unknown");
            app.unknown_trigger(&tenant, &trigger).await;
            ok(json!({ "ignored": trigger, "why": "a trigger this service does not know" }))
        }
        Event::Presence { uid, presence, at } => {
            app.directory.presence(&tenant, &uid, presence, at);
            let applied = app
                .storage
                .set_presence(&tenant, &uid, presence, at)
                .await
                .map_err(storage_error)?;
            let answer = match applied {
                None => "unknown-user",
                Some(true) => "presence",
                Some(false) => "stale",
            };
            count(system, &trigger, answer);
            ok(match applied {
                None => {
                    json!({ "ignored": trigger, "why": "a user this service was never told about" })
                }
                Some(applied) => json!({ "presence": presence_name(presence), "applied": applied }),
            })
        }
        Event::Edited(_) | Event::Deleted(_) if matches!(app.contract, "0.2.0" | "0.3.0") => {
            count(system, &trigger, "ignored");
            ok(json!({ "ignored": trigger, "why": format!(
                "this service runs a component of contract {}, which has no on-edit or on-delete",
                app.contract
            ) }))
        }
        Event::Edited(message) => {
            let (result, refused) = event_call(&app, &tenant, async |rt| {
                rt.on_edit(&tenant, &message).await
            })
            .await?;
            let (kind, answer) = answered(&app, &tenant, "on-edit", result, refused);
            count(system, &trigger, &kind);
            answer
        }
        Event::Deleted(deletion) => {
            let (result, refused) = event_call(&app, &tenant, async |rt| {
                rt.on_delete(&tenant, &deletion).await
            })
            .await?;
            let (kind, answer) = answered(&app, &tenant, "on-delete", result, refused);
            count(system, &trigger, &kind);
            answer
        }
        Event::Read(receipt) => {
            let (result, refused) = event_call(&app, &tenant, async |rt| {
                rt.on_read(&tenant, &receipt).await
            })
            .await?;
            let (kind, answer) = answered(&app, &tenant, "on-read", result, refused);
            count(system, &trigger, &kind);
            answer
        }
        Event::Message { message, users } => {
            for user in users {
                remember(&app, &tenant, user, message.sent_at).await?;
            }
            let (result, refused) = event_call(&app, &tenant, async |rt| {
                rt.on_message(&tenant, &message).await
            })
            .await?;
            let (kind, answer) = answered(&app, &tenant, "on-message", result, refused);
            count(system, &trigger, &kind);
            answer
        }
    }
}

fn presence_name(p: Presence) -> &'static str {
    match p {
        Presence::Online => "online",
        Presence::Offline => "offline",
    }
}

/// A user a message's payload describes: created if new (offline, no
/// number: the number comes from the chat server, never from a webhook),
/// renamed if their name changed, their presence set as of the message's
/// time (a newer presence event is kept).
async fn remember(
    app: &App,
    tenant: &str,
    user: cometchat::Profile,
    sent_at: u64,
) -> Result<(), Failure> {
    if self::name("user", &user.uid).is_err() {
        return Ok(());
    }
    let found = app
        .storage
        .find_user(tenant, &user.uid)
        .await
        .map_err(storage_error)?;
    // The same caps as the API's: a name past --max-user-bytes is not
    // kept (the uid stands in), and no user is created past --max-users.
    let name = user
        .name
        .clone()
        .filter(|n| n.len() <= app.options.quotas.user_bytes);
    let record = match found {
        None => {
            if room_for_user(app, tenant, &user.uid).await.is_err() {
                return Ok(());
            }
            Some(User {
                uid: user.uid.clone(),
                name: name.unwrap_or_else(|| user.uid.clone()),
                presence: Presence::Offline,
                metadata: "{}".into(),
            })
        }
        Some(known) => match name {
            Some(name) if name != known.name => Some(User { name, ..known }),
            _ => None,
        },
    };
    if let Some(record) = record {
        app.storage
            .put_user(tenant, &record)
            .await
            .map_err(storage_error)?;
    }
    if let Some(presence) = user.presence {
        app.storage
            .set_presence(tenant, &user.uid, presence, sent_at)
            .await
            .map_err(storage_error)?;
    }
    Ok(())
}
