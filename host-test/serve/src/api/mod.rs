//! The handlers: each checks who is asking, parses what was sent (a bad
//! body is a 400 naming the field), runs one call on the tenant's runtime
//! and answers with its JSON. Secrets are write-only: no response echoes
//! the auth token or the API key's secret.

use super::App;
use super::access::{self, TenantCaller};
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
use sms_host::runtime::Call;
use sms_host::storage::StoreError;
use sms_host::storage::{Presence, User};
use sms_host::tenants::conversation_lane;
use std::sync::Arc;

pub mod events;
pub mod fakes;
pub mod settings;
pub mod state;
pub mod types;
pub mod users;
pub mod webhooks;

use types::{CallView, ErrorBody, Health};

pub(super) type ApiResult = Result<Response, Failure>;

/// An error response: a status and what went wrong.
pub struct Failure(pub StatusCode, pub Value);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

impl Failure {
    /// Settings the component refused (422, every problem).
    pub(super) fn problems(
        problems: &[sms_host::bindings::sms_notification::extension::types::Problem],
    ) -> Self {
        Self(
            StatusCode::UNPROCESSABLE_ENTITY,
            serde_json::to_value(types::Problems::of(problems)).unwrap_or_default(),
        )
    }
}

pub(super) fn fail(status: StatusCode, message: impl Into<String>) -> Failure {
    let body = ErrorBody {
        error: message.into(),
    };
    Failure(status, serde_json::to_value(body).unwrap_or_default())
}

/// A 200 with `body`, one of [`types`].
pub(super) fn ok(body: impl serde::Serialize) -> ApiResult {
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// A path's tenant, as the OpenAPI document names it (the handlers read it
/// through [`TenantCaller`] or `Path`; this type only documents it).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct TenantPath {
    /// The tenant: 1 to 128 of A-Z, a-z, 0-9, `-`, `_`, `.`, `@`.
    #[param(pattern = "^[A-Za-z0-9._@-]{1,128}$")]
    tenant: String,
}

/// A path's tenant and user (documentation only, as [`TenantPath`]).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct UserPath {
    #[param(pattern = "^[A-Za-z0-9._@-]{1,128}$")]
    tenant: String,
    /// The user's id, as the chat server names them.
    #[param(pattern = "^[A-Za-z0-9._@-]{1,128}$")]
    uid: String,
}

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

/// Runs `call` on a runtime of the tenant's pool, within its concurrency
/// bound, in `lanes` (its conversation, or a report's URL): after the
/// calls before it in them (a send waiting on Twilio among them), beside
/// the tenant's other lanes' calls.
async fn on_tenant<T>(
    app: &App,
    tenant: &str,
    lanes: &[String],
    call: impl AsyncFnOnce(&mut sms_host::runtime::Runtime) -> T,
) -> Result<T, Failure> {
    let _permit = permit(app, tenant).await?;
    let mut rt = app.tenants.call(tenant, lanes).await;
    Ok(call(&mut rt).await)
}

/// Runs `call`, one that commits nothing, on a spare runtime within the
/// tenant's concurrency bound: it does not wait for the tenant's other
/// calls, and nothing of it is kept (a name nobody saved settings for
/// gets no sandbox).
async fn on_spare<T>(
    app: &App,
    tenant: &str,
    call: impl AsyncFnOnce(&mut sms_host::runtime::Runtime) -> T,
) -> Result<T, Failure> {
    let _permit = permit(app, tenant).await?;
    let mut rt = app.tenants.spare();
    Ok(call(&mut rt).await)
}

/// One of the tenant's [`super::TENANT_CONCURRENCY`] places for a call.
async fn permit(app: &App, tenant: &str) -> Result<tokio::sync::OwnedSemaphorePermit, Failure> {
    let limit = app.limit(tenant);
    // At most TENANT_CONCURRENCY of one tenant's calls wait at its runtime:
    // another tenant's call never queues behind more than that. The rest
    // wait here, for a while.
    let waited = tokio::time::timeout(super::TENANT_WAIT, limit.acquire_owned()).await;
    let Ok(Ok(permit)) = waited else {
        return Err(fail(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "tenant {tenant:?} has had {} calls in flight for {:?}; try again shortly",
                super::TENANT_CONCURRENCY,
                super::TENANT_WAIT
            ),
        ));
    };
    Ok(permit)
}

/// An event call on the tenant's runtime ([`on_tenant`]), with why the
/// store failed it, if it did.
async fn event_call(
    app: &App,
    tenant: &str,
    lanes: &[String],
    call: impl AsyncFnOnce(&mut sms_host::runtime::Runtime) -> Call,
) -> Result<(Call, Option<StoreError>), Failure> {
    on_tenant(app, tenant, lanes, async |rt| {
        let result = call(rt).await;
        (result, rt.refused().cloned())
    })
    .await
}

/// An event call ([`event_call`]) answered as HTTP ([`answered`]), with
/// what it answered in one word.
async fn event(
    app: &App,
    tenant: &str,
    conversation: &str,
    name: &'static str,
    call: impl AsyncFnOnce(&mut sms_host::runtime::Runtime) -> Call,
) -> Result<(String, ApiResult), Failure> {
    let lanes = [conversation_lane(conversation)];
    let (result, refused) = event_call(app, tenant, &lanes, call).await?;
    Ok(answered(app, tenant, name, result, refused))
}

/// A call's answer as HTTP, and what it answered in one word (as
/// `/metrics` counts it): 200 with the outcome; 422 for settings or input
/// the component refused; 403 for an unverified report; when the host's
/// store failed, its kind's status ([`store_status`]: 503 for a database
/// down, 507 for a full quota); 500 for a trap. The call's record goes to
/// the log (and from there to the metrics and the tenant's page); the HTTP
/// status comes from its typed reply ([`CallAnswer`]).
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

/// A call's answer over HTTP: what it answered and the status its reply
/// means.
struct CallAnswer {
    status: StatusCode,
    body: CallView,
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
        Self {
            status,
            body: CallView::from(record),
        }
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

/// `GET /openapi.json`: this document, generated from the handlers.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "the OpenAPI 3.1 document of every route", content_type = "application/json")))]
pub async fn openapi() -> Response {
    (
        [("content-type", "application/json")],
        super::openapi::document().as_str(),
    )
        .into_response()
}

/// `GET /healthz`: whether the database answers, which contract the
/// component speaks, and where delivery reports go.
#[utoipa::path(get, path = "/healthz", tag = "service", responses(
    (status = 200, description = "the database answers; the component and where delivery reports go", body = Health),
    (status = 503, description = "the database is not reachable", body = ErrorBody),
))]
pub async fn healthz(State(app): State<Arc<App>>) -> ApiResult {
    match app.storage.next_due(0).await {
        Ok(_) => ok(Health {
            database: "reachable",
            component: app.contract,
            delivery_reports: match &app.status_callback {
                Some(url) => types::DeliveryReports {
                    default_callback: Some(url.clone()),
                    why: None,
                },
                None => types::DeliveryReports {
                    default_callback: None,
                    why: Some(
                        "no --public-url: only tenants whose settings name a statusCallbackURL get delivery reports",
                    ),
                },
            },
        }),
        Err(e) => Err(fail(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the database is not reachable: {e}"),
        )),
    }
}

/// `GET /metrics`: calls, webhooks, timers and Twilio's latency, as
/// OpenMetrics text.
#[utoipa::path(get, path = "/metrics", tag = "service", responses(
    (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"),
))]
pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    // The last count stands when the database does not answer.
    let timers = app.storage.timer_counts().await.ok();
    let text = app.metrics.render(timers, app.tenants.resident());
    ([("content-type", super::metrics::CONTENT_TYPE)], text).into_response()
}

/// `GET /tenants/{tenant}`: the dashboard page (static; it asks for the
/// operator token and calls the API with it).
#[utoipa::path(get, path = "/tenants/{tenant}", tag = "page", params(TenantPath), responses(
    (status = 200, description = "the tenant's dashboard page", content_type = "text/html"),
))]
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
        include_str!("../page.html"),
    )
        .into_response()
}
