//! The in-process stand-ins' routes: what the fake Twilio took, and a fake CometChat REST API.

use super::types::FakeSms;
use super::users::presence_name;
use super::*;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FakeSmsQuery {
    /// One tenant's SMS (a tenant's token names its own); every tenant's
    /// for the operator by default.
    #[serde(default)]
    tenant: Option<String>,
}

/// `GET /v1/fake-twilio/sms?tenant=T`: what the in-process fake Twilio
/// received (with `--fake-twilio`), oldest first: every tenant's for the
/// operator, one tenant's for that tenant's token.
#[utoipa::path(
    get, path = "/v1/fake-twilio/sms", tag = "fakes", params(FakeSmsQuery), security(("operator" = []), ("tenant" = [])), responses(
    (status = 200, description = "what the fake Twilio took, oldest first", body = FakeSms),
    (status = 404, description = "the fake Twilio is off (--fake-twilio)", body = ErrorBody),
)
)]
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
    let sms = app
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
    ok(FakeSms { sms })
}

/// `GET /fake-cometchat/{tenant}/v3/users/{uid}` (with `--fake-cometchat`):
/// an in-process stand-in for CometChat's REST API, answering in its shape
/// with the users pushed through this service's API, and only to the
/// tenant's saved REST API key (another gets 401, as CometChat answers).
#[utoipa::path(
    get, path = "/fake-cometchat/{tenant}/v3/users/{uid}", tag = "fakes", params(UserPath), responses(
    (status = 200, description = "the user, in CometChat's shape (`data`: uid, name, status, metadata, role)", body = Object),
    (status = 401, description = "not the tenant's saved REST API key (header `apikey`), in CometChat's shape", body = Object),
    (status = 404, description = "no such user, in CometChat's shape; or the fake is off (--fake-cometchat)", body = Object),
)
)]
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
