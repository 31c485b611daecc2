//! What a tenant's state holds, read by the component; quarantined records; the log.

use super::*;

/// `GET /v1/tenants/{tenant}/state`: pending notifications, recent SMS with
/// Twilio's status, suppressed numbers, the pause, unreadable records;
/// read by the component (`inspect`), numbers masked.
pub async fn get_state(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
) -> ApiResult {
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
    TenantCaller(tenant): TenantCaller,
) -> ApiResult {
    use base64::Engine as _;
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
