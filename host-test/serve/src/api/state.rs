//! What a tenant's state holds, read by the component; quarantined records; the log.

use super::types::{Cleared, InspectionView, LogEntry, LogLines, Quarantine, QuarantinedRecord};
use super::*;

/// `GET /v1/tenants/{tenant}/state`: pending notifications, recent SMS with
/// Twilio's status, suppressed numbers, the pause, unreadable records;
/// read by the component (`inspect`), numbers masked.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/state", tag = "state", params(TenantPath), security(("operator" = []), ("tenant" = [])), responses(
    (status = 200, description = "what the tenant's state holds, numbers masked", body = InspectionView),
    (status = 404, description = "no such tenant: save its settings first", body = ErrorBody),
    (status = 429, description = "the tenant has had its most calls in flight for a while: try again shortly", body = ErrorBody),
    (status = 500, description = "the component trapped", body = ErrorBody),
    (status = 501, description = "the component's contract has no inspect", body = ErrorBody),
)
)]
pub async fn get_state(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
) -> ApiResult {
    known(&app, &tenant).await?;
    let result = on_spare(&app, &tenant, async |rt| rt.inspect(&tenant).await).await?;
    match result {
        Ok(Some(i)) => ok(InspectionView::from(&i)),
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
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/quarantine", tag = "state", params(TenantPath), security(("operator" = []), ("tenant" = [])), responses(
    (status = 200, description = "the records kept aside, with their bytes", body = Quarantine),
    (status = 404, description = "no such tenant: save its settings first", body = ErrorBody),
)
)]
pub async fn get_quarantine(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
) -> ApiResult {
    use base64::Engine as _;
    known(&app, &tenant).await?;
    let kept = app
        .storage
        .state_prefix(&tenant, sms_host::runtime::QUARANTINE)
        .await
        .map_err(storage_error)?;
    let records = kept
        .into_iter()
        .map(|(key, bytes)| QuarantinedRecord {
            key,
            bytes: base64::engine::general_purpose::STANDARD.encode(bytes),
        })
        .collect();
    ok(Quarantine { records })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ClearQuery {
    /// The record's key, under `quarantine/`.
    key: String,
}

/// `DELETE /v1/tenants/{tenant}/quarantine?key=KEY`: clears one kept-aside
/// record (only keys under `quarantine/`).
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant}/quarantine", tag = "state", params(TenantPath, ClearQuery), security(("operator" = []), ("tenant" = [])), responses(
    (status = 200, description = "the record is gone", body = Cleared),
    (status = 404, description = "no such tenant or quarantined record", body = ErrorBody),
)
)]
pub async fn delete_quarantine(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    RawQuery(q): RawQuery,
) -> ApiResult {
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
        ok(Cleared { cleared: q.key })
    } else {
        Err(fail(
            StatusCode::NOT_FOUND,
            format!("no quarantined record {:?}", q.key),
        ))
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Lines after this position (0: from the oldest kept); 200 at most
    /// per answer.
    #[serde(default)]
    after: u64,
}

/// `GET /v1/tenants/{tenant}/logs?after=N`: the tenant's recent log lines
/// (numbers masked by the component), each with its position.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/logs", tag = "state", params(TenantPath, LogsQuery), security(("operator" = []), ("tenant" = [])), responses(
    (status = 200, description = "the log lines after `after`, oldest first, at most 200", body = LogLines),
    (status = 404, description = "no such tenant: save its settings first", body = ErrorBody),
)
)]
pub async fn get_logs(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let q: LogsQuery = query(q)?;
    known(&app, &tenant).await?;
    let lines = app
        .storage
        .logs(&tenant, q.after, 200)
        .await
        .map_err(storage_error)?;
    let lines = lines
        .into_iter()
        .map(|(n, line)| LogEntry {
            n,
            at: line.at,
            level: line.level.name(),
            line: line.line,
        })
        .collect();
    ok(LogLines { lines })
}
