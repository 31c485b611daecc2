//! Who may call what. The operator's token opens everything. Each tenant
//! has its own credentials, kept in its access record (a JSON document the
//! store seals at rest, like settings):
//!
//! - **API tokens** the operator mints and revokes: a tenant token opens
//!   only `/v1/tenants/{that tenant}/…` and that tenant's page. Kept as
//!   SHA-256 hashes: a token is shown once, when it is minted.
//! - **Webhook credentials**: the Basic-auth user and password set in
//!   CometChat's dashboard for this tenant's webhook URL. Another tenant's
//!   credentials are refused.
//! - **The CometChat app** (app id, region, REST API key) users are read
//!   from, and whether CometChat refused its key (users are then not read
//!   until the key is saved again).
//!
//! Secrets are compared in constant time and never returned.

use super::App;
use super::api::{Failure, fail};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A tenant's access record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tokens: Vec<Token>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cometchat: Option<CometChatApp>,
}

/// The Basic-auth credentials CometChat sends with this tenant's webhooks.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub user: String,
    pub password: String,
}

/// A tenant API token: its id and the SHA-256 of the token.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    pub id: String,
    pub sha256: String,
    pub created_at: u64,
}

/// The CometChat app a tenant's users are read from.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CometChatApp {
    pub app_id: String,
    pub region: String,
    pub api_key: String,
    /// Why users are not read now (CometChat refused the key), until the
    /// key is saved again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<String>,
}

/// Who is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Operator,
    /// A token of the tenant named in the path.
    Tenant,
}

/// Tenant tokens start with this, so one is told from the operator's at a
/// glance (and in a leaked log).
pub const TOKEN_PREFIX: &str = "smst_";

/// `n` random bytes from the system.
pub fn random(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    getrandom::fill(&mut bytes).expect("the system's random source");
    bytes
}

/// A random secret: `n` bytes, base64url without padding.
pub fn secret(n: usize) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random(n))
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The bearer token of a request. The scheme is case-insensitive (RFC 9110).
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The decoded credentials of a Basic `Authorization` header.
fn basic(headers: &HeaderMap) -> Option<Vec<u8>> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
}

fn equal(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

fn unauthorized(what: &str) -> Failure {
    fail(StatusCode::UNAUTHORIZED, what.to_owned())
}

/// The tenant's access record (empty before the first save).
pub async fn load(app: &App, tenant: &str) -> Result<Access, Failure> {
    let stored = app
        .storage
        .access(tenant)
        .await
        .map_err(super::api::storage_error)?;
    match stored {
        None => Ok(Access::default()),
        Some(json) => serde_json::from_str(&json).map_err(|_| {
            fail(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the access record of tenant {tenant:?} is not readable"),
            )
        }),
    }
}

pub async fn save(app: &App, tenant: &str, access: &Access) -> Result<(), Failure> {
    let json = serde_json::to_string(access).expect("an access record serializes");
    app.storage
        .save_access(tenant, &json)
        .await
        .map_err(super::api::storage_error)
}

/// Whether the request carries the operator's token (always, when the
/// service runs without one: `--insecure-no-auth` on loopback).
pub fn is_operator(app: &App, headers: &HeaderMap) -> bool {
    match &app.options.token {
        None => true,
        Some(token) => {
            bearer(headers).is_some_and(|given| equal(given.as_bytes(), token.as_bytes()))
        }
    }
}

/// The operator, or else 401.
pub fn operator(app: &App, headers: &HeaderMap) -> Result<(), Failure> {
    if is_operator(app, headers) {
        Ok(())
    } else {
        Err(unauthorized(
            "this route needs the operator token: send Authorization: Bearer TOKEN",
        ))
    }
}

/// The operator, or a token of `tenant`; else 401 (the same answer for a
/// wrong token and for another tenant's).
pub async fn tenant(app: &App, headers: &HeaderMap, tenant: &str) -> Result<Caller, Failure> {
    if is_operator(app, headers) {
        return Ok(Caller::Operator);
    }
    let refused = || {
        unauthorized(
            "missing or wrong token: send Authorization: Bearer TOKEN (the operator's, or one minted for this tenant)",
        )
    };
    let Some(given) = bearer(headers).filter(|t| t.starts_with(TOKEN_PREFIX)) else {
        return Err(refused());
    };
    super::api::name("tenant", tenant).map_err(|_| refused())?;
    let hash = sha256_hex(given);
    let access = load(app, tenant).await?;
    // Every hash is compared, whichever matches.
    let found = access.tokens.iter().fold(false, |found, t| {
        found | equal(t.sha256.as_bytes(), hash.as_bytes())
    });
    if found {
        Ok(Caller::Tenant)
    } else {
        Err(refused())
    }
}

/// CometChat's Basic auth for `tenant`'s webhook, against the credentials
/// saved for that tenant. Without any (and without an operator token:
/// `--insecure-no-auth`), webhooks are open.
pub async fn webhook(app: &App, headers: &HeaderMap, tenant: &str) -> Result<(), Failure> {
    super::api::name("tenant", tenant)?;
    let access = load(app, tenant).await?;
    let Some(expected) = access.webhook else {
        if app.options.token.is_none() {
            return Ok(());
        }
        return Err(unauthorized(&format!(
            "no webhook credentials are set for tenant {tenant:?}: set them with PUT /v1/tenants/{tenant}/webhook, then in CometChat's dashboard"
        )));
    };
    let given = basic(headers).unwrap_or_default();
    let want = format!("{}:{}", expected.user, expected.password);
    if equal(&given, want.as_bytes()) {
        Ok(())
    } else {
        Err(unauthorized(
            "missing or wrong Basic auth: the user and password set for this tenant's webhook",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", "BEARER  abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn secrets_are_long_and_differ() {
        let (a, b) = (secret(24), secret(24));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}

/// Extractors: a handler names the caller it needs in its signature, and
/// the check runs before the handler (after the [`super::guard`] layer
/// checked the same from the headers alone).
mod extract {
    use super::super::App;
    use super::super::api::{Failure, fail};
    use axum::extract::{FromRequestParts, RawPathParams};
    use axum::http::StatusCode;
    use axum::http::request::Parts;
    use std::sync::Arc;

    /// The `{tenant}` of a `/v1/tenants/{tenant}/…` route, called by the
    /// operator or with one of that tenant's tokens (else 401).
    pub struct TenantCaller(pub String);

    /// The operator (else 401).
    pub struct Operator;

    async fn tenant_param(parts: &mut Parts, app: &Arc<App>) -> Result<String, Failure> {
        let params = RawPathParams::from_request_parts(parts, app)
            .await
            .map_err(|e| fail(StatusCode::BAD_REQUEST, e.to_string()))?;
        params
            .iter()
            .find(|(name, _)| *name == "tenant")
            .map(|(_, value)| value.to_owned())
            .ok_or_else(|| {
                fail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "this route names no tenant",
                )
            })
    }

    impl FromRequestParts<Arc<App>> for TenantCaller {
        type Rejection = Failure;

        async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Failure> {
            let tenant = tenant_param(parts, app).await?;
            super::tenant(app, &parts.headers, &tenant).await?;
            Ok(Self(tenant))
        }
    }

    impl FromRequestParts<Arc<App>> for Operator {
        type Rejection = Failure;

        async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Failure> {
            super::operator(app, &parts.headers)?;
            Ok(Self)
        }
    }
}

pub use extract::{Operator, TenantCaller};
