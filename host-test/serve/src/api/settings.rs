//! A tenant's settings: saving, validating, reading back without secrets, and the preview of an SMS under them.

use super::types::{PreviewView, Problems, SAVED, Saved, SettingsView};
use super::*;

/// Settings fields no response may show.
pub(super) const SECRETS: [&str; 2] = ["twilioAuthToken", "twilioApiKeySecret"];

/// The settings in `bytes` with the saved secrets they leave out (a
/// settings page never holds them); a secret given as `null` is removed.
pub(super) async fn with_saved_secrets(
    app: &App,
    tenant: &str,
    bytes: &Bytes,
) -> Result<String, Failure> {
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
pub(super) async fn problems_of(
    app: &App,
    tenant: &str,
    text: &str,
) -> Result<Vec<sms_host::bindings::sms_notification::extension::types::Problem>, Failure> {
    let result = on_spare(app, tenant, async |rt| {
        rt.validate_settings(tenant, text).await
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
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/settings", tag = "settings", params(TenantPath), security(("operator" = []), ("tenant" = [])), request_body(content = Object, description = "the settings table of the README; a secret left out keeps the saved one, `null` removes it"), responses(
    (status = 200, description = "stored", body = Saved),
    (status = 422, description = "every problem with the settings", body = Problems),
    (status = 429, description = "the tenant has had its most calls in flight for a while: try again shortly", body = ErrorBody),
)
)]
pub async fn put_settings(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    bytes: Bytes,
) -> ApiResult {
    name("tenant", &tenant)?;
    let text = with_saved_secrets(&app, &tenant, &bytes).await?;
    let problems = problems_of(&app, &tenant, &text).await?;
    if !problems.is_empty() {
        return Err(Failure::problems(&problems));
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
    ok(SAVED)
}

/// `POST /v1/tenants/{tenant}/settings/validate`: what saving these
/// settings would say, without saving: `{"problems": [...]}`, empty when
/// they are valid. For a settings page, on every change.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/settings/validate", tag = "settings", params(TenantPath), security(("operator" = []), ("tenant" = [])), request_body(content = Object, description = "the settings to check, as for PUT …/settings"), responses(
    (status = 200, description = "what saving them would say: no problems when valid", body = Problems),
    (status = 429, description = "the tenant has had its most calls in flight for a while: try again shortly", body = ErrorBody),
)
)]
pub async fn validate_settings(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    bytes: Bytes,
) -> ApiResult {
    name("tenant", &tenant)?;
    let text = with_saved_secrets(&app, &tenant, &bytes).await?;
    let problems = problems_of(&app, &tenant, &text).await?;
    ok(Problems::of(&problems))
}

/// `GET /v1/tenants/{tenant}/settings`: as saved, without secrets; which
/// secrets are set is listed instead.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/settings", tag = "settings", params(TenantPath), security(("operator" = []), ("tenant" = [])), responses(
    (status = 200, description = "the saved settings, secrets left out, and which secrets are set", body = SettingsView),
    (status = 404, description = "no such tenant: save its settings first", body = ErrorBody),
)
)]
pub async fn get_settings(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
) -> ApiResult {
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
    ok(SettingsView {
        settings,
        secrets_set: set,
    })
}

/// A sample message, and optionally the settings to preview it with.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PreviewBody {
    /// Settings to preview with; the saved ones by default (with their
    /// secrets, which never leave the server).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    settings: Option<serde_json::Map<String, Value>>,
    sender_name: String,
    text: String,
    /// Unread messages the SMS counts; 1 by default.
    #[serde(default)]
    #[schema(minimum = 1)]
    unread: Option<u32>,
}

/// `POST /v1/tenants/{tenant}/preview`: the SMS the settings would send.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/preview", tag = "settings", params(TenantPath), security(("operator" = []), ("tenant" = [])), request_body = PreviewBody, responses(
    (status = 200, description = "the SMS these settings would send for the sample", body = PreviewView),
    (status = 404, description = "no saved settings and none sent", body = ErrorBody),
    (status = 422, description = "every problem with the settings", body = Problems),
    (status = 429, description = "the tenant has had its most calls in flight for a while: try again shortly", body = ErrorBody),
)
)]
pub async fn post_preview(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    bytes: Bytes,
) -> ApiResult {
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
    let result = on_spare(&app, &tenant, async |rt| {
        rt.preview(&tenant, &settings, &sample).await
    })
    .await?;
    match result {
        Ok(Ok(preview)) => ok(PreviewView::from(&preview)),
        Ok(Err(problems)) => Err(Failure::problems(&problems)),
        Err(trap) => Err(fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the component trapped: {trap:#}"),
        )),
    }
}
