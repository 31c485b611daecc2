//! The routes that set a tenant's credentials: its webhook's Basic auth,
//! its API tokens (the operator's to mint and revoke), and the CometChat
//! app its users are read from. Secrets are write-only: a response shows
//! one only when this service made it (a generated password, a minted
//! token), once.

use super::App;
use super::access::{self, CometChatApp, Operator, TenantCaller, Token, Webhook};
use super::api::types::{
    CometChatAppView, CometChatView, ErrorBody, Minted, Removed, Revoked, SAVED, Saved, TokenView,
    Tokens, WebhookSaved, WebhookView,
};
use super::api::{ApiResult, Failure, TenantPath, body, fail, name, ok};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use std::sync::Arc;

/// The public base of this service, for the URLs a tenant pastes into
/// CometChat's dashboard: `--public-url`, else the request's Host.
fn base(app: &App, headers: &HeaderMap) -> String {
    match &app.options.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let host = headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            format!("http://{host}")
        }
    }
}

/// A credential's text: printable ASCII without spaces or `:` (a Basic-auth
/// user cannot hold one), 1 to 128 characters.
fn credential(field: &str, value: &str, colon_ok: bool) -> Result<(), Failure> {
    let fine = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && (colon_ok || b != b':'));
    if fine {
        Ok(())
    } else {
        Err(fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{field} must be 1 to 128 printable ASCII characters without spaces{}",
                if colon_ok { "" } else { " or ':'" }
            ),
        ))
    }
}

/// The Basic auth CometChat is to send with the tenant's webhooks.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WebhookBody {
    /// 1 to 128 printable ASCII characters, no spaces or `:`.
    user: String,
    /// 16 to 128 printable ASCII characters; left out: a strong one is
    /// generated and returned once.
    #[serde(default)]
    #[schema(min_length = 16, max_length = 128)]
    password: Option<String>,
}

/// `PUT /v1/tenants/{tenant}/webhook`: the Basic-auth user and password
/// CometChat sends with this tenant's webhooks (set the same in CometChat's
/// dashboard). A password left out is generated and shown once.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/webhook", tag = "credentials", params(TenantPath), security(("operator" = []), ("tenant" = [])), request_body = WebhookBody, responses(
    (status = 200, description = "saved: the URL to paste into CometChat, and the password if this service made it (shown once)", body = WebhookSaved),
    (status = 422, description = "a user or password CometChat cannot send", body = ErrorBody),
)
)]
pub async fn put_webhook(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    let given: WebhookBody = body(&bytes)?;
    credential("user", &given.user, false)?;
    let generated = given.password.is_none();
    let password = given.password.unwrap_or_else(|| access::secret(24));
    credential("password", &password, true)?;
    if password.len() < 16 {
        return Err(fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "password must have at least 16 characters (leave it out to have one generated)",
        ));
    }
    let mut record = access::load(&app, &tenant).await?;
    record.webhook = Some(Webhook {
        user: given.user.clone(),
        password: password.clone(),
    });
    access::save(&app, &tenant, &record).await?;
    ok(WebhookSaved {
        url: format!("{}/cometchat/{tenant}/webhook", base(&app, &headers)),
        user: given.user,
        password: generated.then_some(password),
    })
}

/// `GET /v1/tenants/{tenant}/webhook`: the URL to paste into CometChat's
/// dashboard and the user; whether a password is set (never the password).
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/webhook", tag = "credentials", params(TenantPath), security(("operator" = []), ("tenant" = [])), responses(
    (status = 200, description = "the URL to paste into CometChat, the user, whether a password is set", body = WebhookView),
)
)]
pub async fn get_webhook(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    headers: HeaderMap,
) -> ApiResult {
    let record = access::load(&app, &tenant).await?;
    ok(WebhookView {
        url: format!("{}/cometchat/{tenant}/webhook", base(&app, &headers)),
        user: record.webhook.as_ref().map(|w| w.user.clone()),
        password_set: record.webhook.is_some(),
    })
}

/// `POST /v1/tenants/{tenant}/tokens`: mints an API token for the tenant
/// (operator only). The token is in this answer only.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/tokens", tag = "credentials", params(TenantPath), security(("operator" = [])), responses(
    (status = 200, description = "the new token, shown this once", body = Minted),
    (status = 422, description = "the tenant has its most tokens: revoke one first", body = ErrorBody),
)
)]
pub async fn post_token(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    _: Operator,
) -> ApiResult {
    name("tenant", &tenant)?;
    let mut record = access::load(&app, &tenant).await?;
    if record.tokens.len() >= MAX_TOKENS {
        return Err(fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("tenant {tenant:?} has {MAX_TOKENS} tokens: revoke one first"),
        ));
    }
    let token = format!("{}{}", access::TOKEN_PREFIX, access::secret(24));
    let id = hex(&access::random(6));
    record.tokens.push(Token {
        id: id.clone(),
        sha256: access::sha256_hex(&token),
        created_at: sms_host::clock::Clock::wall().now(),
    });
    access::save(&app, &tenant, &record).await?;
    ok(Minted { id, token })
}

/// Most API tokens one tenant may hold.
pub const MAX_TOKENS: usize = 32;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `GET /v1/tenants/{tenant}/tokens`: the tenant's tokens, by id (operator
/// only; never a token).
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/tokens", tag = "credentials", params(TenantPath), security(("operator" = [])), responses(
    (status = 200, description = "the tenant's tokens, by id", body = Tokens),
)
)]
pub async fn get_tokens(
    State(app): State<Arc<App>>,
    Path(tenant): Path<String>,
    _: Operator,
) -> ApiResult {
    name("tenant", &tenant)?;
    let record = access::load(&app, &tenant).await?;
    let tokens = record
        .tokens
        .iter()
        .map(|t| TokenView {
            id: t.id.clone(),
            created_at: t.created_at,
        })
        .collect();
    ok(Tokens { tokens })
}

/// `DELETE /v1/tenants/{tenant}/tokens/{id}`: revokes a token at once
/// (operator only).
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant}/tokens/{id}", tag = "credentials", params(TenantPath, ("id" = String, Path, description = "the token's id")), security(("operator" = [])), responses(
    (status = 200, description = "the token no longer opens anything", body = Revoked),
    (status = 404, description = "the tenant has no such token", body = ErrorBody),
)
)]
pub async fn delete_token(
    State(app): State<Arc<App>>,
    Path((tenant, id)): Path<(String, String)>,
    _: Operator,
) -> ApiResult {
    name("tenant", &tenant)?;
    let mut record = access::load(&app, &tenant).await?;
    let before = record.tokens.len();
    record.tokens.retain(|t| t.id != id);
    if record.tokens.len() == before {
        return Err(fail(
            StatusCode::NOT_FOUND,
            format!("tenant {tenant:?} has no token {id:?}"),
        ));
    }
    access::save(&app, &tenant, &record).await?;
    ok(Revoked { revoked: id })
}

/// The CometChat app the tenant's users are read from.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct CometChatBody {
    /// CometChat's App ID.
    app_id: String,
    /// `us`, `eu` or `in`.
    #[schema(pattern = "^(us|eu|in)$")]
    region: String,
    /// Write-only: left out keeps the saved one.
    #[serde(default)]
    rest_api_key: Option<String>,
}

/// `PUT /v1/tenants/{tenant}/cometchat`: the CometChat app this tenant's
/// users are read from (`{"appId", "region", "restApiKey"}`; the key is
/// write-only: left out, the saved one is kept). Saving lifts a pause
/// taken when CometChat refused the key.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/cometchat", tag = "credentials", params(TenantPath), security(("operator" = []), ("tenant" = [])), request_body = CometChatBody, responses(
    (status = 200, description = "stored", body = Saved),
    (status = 422, description = "an App ID, region or key CometChat would not take", body = ErrorBody),
)
)]
pub async fn put_cometchat(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    bytes: Bytes,
) -> ApiResult {
    let given: CometChatBody = body(&bytes)?;
    let id_like = |v: &str| {
        !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !id_like(&given.app_id) {
        return Err(fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "appId must be 1 to 64 letters, digits or '-' (CometChat's App ID)",
        ));
    }
    if !matches!(given.region.as_str(), "us" | "eu" | "in") {
        return Err(fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "region {:?} is not one of CometChat's: us, eu, in",
                given.region
            ),
        ));
    }
    let mut record = access::load(&app, &tenant).await?;
    let key = match given.rest_api_key {
        Some(key) => key,
        None => match &record.cometchat {
            Some(saved) => saved.api_key.clone(),
            None => {
                return Err(fail(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "restApiKey is required the first time (CometChat's REST API key, with the users scope)",
                ));
            }
        },
    };
    credential("restApiKey", &key, true)?;
    record.cometchat = Some(CometChatApp {
        app_id: given.app_id,
        region: given.region,
        api_key: key,
        paused: None,
    });
    access::save(&app, &tenant, &record).await?;
    app.directory.forget(&tenant);
    ok(SAVED)
}

/// `GET /v1/tenants/{tenant}/cometchat`: the app, whether a key is set
/// (never the key), and why users are not read, if CometChat refused it.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/cometchat", tag = "credentials", params(TenantPath), security(("operator" = []), ("tenant" = [])), responses(
    (status = 200, description = "the app users are read from, if any", body = CometChatView),
)
)]
pub async fn get_cometchat(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
) -> ApiResult {
    let record = access::load(&app, &tenant).await?;
    ok(CometChatView {
        app: record.cometchat.map(|c| CometChatAppView {
            app_id: c.app_id,
            region: c.region,
            rest_api_key_set: true,
            paused: c.paused,
        }),
    })
}

/// `DELETE /v1/tenants/{tenant}/cometchat`: users are no longer read from
/// CometChat (the users pushed through the API are used again).
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant}/cometchat", tag = "credentials", params(TenantPath), security(("operator" = []), ("tenant" = [])), responses(
    (status = 200, description = "users are read from this service again", body = Removed),
)
)]
pub async fn delete_cometchat(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
) -> ApiResult {
    let mut record = access::load(&app, &tenant).await?;
    let had = record.cometchat.take().is_some();
    access::save(&app, &tenant, &record).await?;
    app.directory.forget(&tenant);
    ok(Removed { removed: had })
}
