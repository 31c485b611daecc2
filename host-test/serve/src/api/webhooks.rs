//! Outside systems' webhooks: Twilio's status callbacks and CometChat's events.

use super::types::{Ignored, PresenceApplied};
use super::users::{presence_name, room_for_user};
use super::*;

/// `POST /twilio/{tenant}/status`: Twilio's status callback. Its signature
/// is its authentication (checked by the component): 204 when recorded or
/// harmless, 403 when it does not verify.
#[utoipa::path(
    post, path = "/twilio/{tenant}/status", tag = "webhooks", params(TenantPath), security(("twilio" = [])), request_body(content_type = "application/x-www-form-urlencoded", description = "Twilio's status callback: MessageSid, MessageStatus, ErrorCode, …"), responses(
    (status = 204, description = "recorded, or harmless"),
    (status = 403, description = "not signed with this tenant's auth token (the same answer for a tenant that does not exist)", body = ErrorBody),
    (status = 507, description = "the tenant's state is full", body = CallView),
)
)]
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
    // Its URL names its recipient: reports of one number wait for each
    // other, not for conversations.
    let (result, store) = event_call(
        &app,
        &tenant,
        std::slice::from_ref(&report.url),
        async |rt| rt.on_delivery_status(&tenant, &report).await,
    )
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
    let response = answered(&app, &tenant, "on-delivery-status", result, store).1?;
    match response.status() {
        StatusCode::OK => Ok(StatusCode::NO_CONTENT.into_response()),
        StatusCode::FORBIDDEN => Err(refused()),
        _ => Ok(response),
    }
}

/// `POST /cometchat/{tenant}/webhook`: CometChat's webhooks, legacy and
/// current, with the Basic auth CometChat sends. Counted in `/metrics` by
/// system, trigger and answer.
#[utoipa::path(
    post, path = "/cometchat/{tenant}/webhook", tag = "webhooks", params(TenantPath), security(("cometchat" = [])), request_body(content = Object, description = "CometChat's webhook, current (`trigger`, `data`, `appId`, …) or legacy; see tests/fixtures/cometchat for the documented shapes"), responses(
    (status = 200, description = "the component's answer to the event, or `{ignored, why}` for a trigger that asks nothing, or `{presence, applied}`", body = CallView),
    (status = 400, description = "the payload is not one CometChat documents", body = ErrorBody),
    (status = 401, description = "not the Basic auth saved for the tenant's webhook", body = ErrorBody),
    (status = 404, description = "no such tenant", body = ErrorBody),
    (status = 422, description = "the component refused the event", body = CallView),
    (status = 429, description = "the tenant has had its most calls in flight for a while", body = ErrorBody),
    (status = 503, description = "the database failed: CometChat retries", body = ErrorBody),
    (status = 507, description = "the tenant's state is full", body = CallView),
)
)]
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
            ok(Ignored {
                ignored: trigger,
                why: why.to_string(),
            })
        }
        Event::Unknown => {
            count(system, &trigger, "unknown");
            app.unknown_trigger(&tenant, &trigger).await;
            ok(Ignored {
                ignored: trigger,
                why: "a trigger this service does not know".into(),
            })
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
            match applied {
                None => ok(Ignored {
                    ignored: trigger,
                    why: "a user this service was never told about".into(),
                }),
                Some(applied) => ok(PresenceApplied {
                    presence: presence_name(presence),
                    applied,
                }),
            }
        }
        Event::Edited(_) | Event::Deleted(_) if matches!(app.contract, "0.2.0" | "0.3.0") => {
            count(system, &trigger, "ignored");
            ok(Ignored {
                ignored: trigger,
                why: format!(
                    "this service runs a component of contract {}, which has no on-edit or on-delete",
                    app.contract
                ),
            })
        }
        Event::Edited(message) => {
            let (kind, answer) = event(
                &app,
                &tenant,
                &message.conversation,
                "on-edit",
                async |rt| rt.on_edit(&tenant, &message).await,
            )
            .await?;
            count(system, &trigger, &kind);
            answer
        }
        Event::Deleted(deletion) => {
            let (kind, answer) = event(
                &app,
                &tenant,
                &deletion.conversation,
                "on-delete",
                async |rt| rt.on_delete(&tenant, &deletion).await,
            )
            .await?;
            count(system, &trigger, &kind);
            answer
        }
        Event::Read(receipt) => {
            let (kind, answer) = event(
                &app,
                &tenant,
                &receipt.conversation,
                "on-read",
                async |rt| rt.on_read(&tenant, &receipt).await,
            )
            .await?;
            count(system, &trigger, &kind);
            answer
        }
        Event::Message { message, users } => {
            for user in users {
                remember(&app, &tenant, user, message.sent_at).await?;
            }
            let (kind, answer) = event(
                &app,
                &tenant,
                &message.conversation,
                "on-message",
                async |rt| rt.on_message(&tenant, &message).await,
            )
            .await?;
            count(system, &trigger, &kind);
            answer
        }
    }
}

/// A user a message's payload describes: created if new (offline, no
/// number: the number comes from the chat server, never from a webhook),
/// renamed if their name changed, their presence set as of the message's
/// time (a newer presence event is kept).
pub(super) async fn remember(
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
