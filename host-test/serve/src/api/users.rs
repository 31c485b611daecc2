//! Users pushed by a chat server without a directory of its own: create or replace, presence.

use super::types::{SAVED, Saved};
use super::*;

/// A user, as the chat server knows them.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UserBody {
    /// Their display name (the SMS names the sender by it); the uid by default.
    #[serde(default)]
    name: Option<String>,
    /// Offline by default.
    #[serde(default)]
    presence: Option<PresenceBody>,
    /// A JSON object; `{"@private": {"contactNumber": "+1…", "timeZone": "…"}}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    metadata: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize, Clone, Copy, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum PresenceBody {
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
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/users/{uid}", tag = "users", params(UserPath), security(("operator" = []), ("tenant" = [])), request_body = UserBody, responses(
    (status = 200, description = "stored", body = Saved),
    (status = 404, description = "no such tenant: save its settings first", body = ErrorBody),
    (status = 413, description = "name and metadata over --max-user-bytes", body = ErrorBody),
    (status = 422, description = "the tenant has --max-users users", body = ErrorBody),
)
)]
pub async fn put_user(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    Path((_, uid)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
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
    ok(SAVED)
}

/// Whether the tenant may have one more user: a user it already has may
/// always be replaced; a new one only below `--max-users`.
pub(super) async fn room_for_user(app: &App, tenant: &str, uid: &str) -> Result<(), Failure> {
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

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PresenceChange {
    presence: PresenceBody,
}

/// `POST /v1/tenants/{tenant}/users/{uid}/presence`: `{"presence": "online"}`.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/users/{uid}/presence", tag = "users", params(UserPath), security(("operator" = []), ("tenant" = [])), request_body = PresenceChange, responses(
    (status = 200, description = "stored", body = Saved),
    (status = 404, description = "no such tenant or user", body = ErrorBody),
)
)]
pub async fn post_presence(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    Path((_, uid)): Path<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    known(&app, &tenant).await?;
    name("user", &uid)?;
    let change: PresenceChange = body(&bytes)?;
    set_presence(&app, &tenant, &uid, change.presence.into()).await?;
    ok(SAVED)
}

pub(super) async fn set_presence(
    app: &App,
    tenant: &str,
    uid: &str,
    p: Presence,
) -> Result<(), Failure> {
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

pub(super) fn presence_name(p: Presence) -> &'static str {
    match p {
        Presence::Online => "online",
        Presence::Offline => "offline",
    }
}
