//! The chat server's events as the JSON API takes them: messages, edits, deletions, receipts.

use super::types::EventAnswers;
use super::*;

/// A message: sent (`…/messages`) or edited (`…/edits`, the same id with
/// its new text).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct MessageBody {
    /// The chat server's id for the message.
    id: String,
    conversation: String,
    /// The sender's uid.
    sender: String,
    /// The receiver's uid (a group's id for a group message).
    receiver: String,
    #[serde(default)]
    text: String,
    /// A group's message: never texted.
    #[serde(default)]
    group: bool,
    /// `text` (default), `image`, `video`, `audio`, `file`, `custom`.
    #[serde(default)]
    #[schema(pattern = "^(text|image|video|audio|file|custom)$")]
    format: Option<String>,
    /// Milliseconds since the epoch; now by default; at most a day ahead.
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
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/edits", tag = "events", params(TenantPath), security(("operator" = []), ("tenant" = [])), request_body = MessageBody, responses(EventAnswers)
)]
pub async fn post_edit(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    bytes: Bytes,
) -> ApiResult {
    known(&app, &tenant).await?;
    let message = body::<MessageBody>(&bytes)?.message()?;
    event(
        &app,
        &tenant,
        &message.conversation,
        "on-edit",
        async |rt| rt.on_edit(&tenant, &message).await,
    )
    .await?
    .1
}

/// A message deleted.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DeletionBody {
    conversation: String,
    /// The deleted message's id.
    message: String,
    /// Milliseconds since the epoch; now by default.
    #[serde(default)]
    deleted_at: Option<u64>,
}

/// `POST /v1/tenants/{tenant}/deletions`: a message deleted; answers with
/// the outcome.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/deletions", tag = "events", params(TenantPath), security(("operator" = []), ("tenant" = [])), request_body = DeletionBody, responses(EventAnswers)
)]
pub async fn post_deletion(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    bytes: Bytes,
) -> ApiResult {
    known(&app, &tenant).await?;
    let d: DeletionBody = body(&bytes)?;
    let deletion = Deletion {
        conversation: d.conversation,
        message: d.message,
        deleted_at: d.deleted_at.unwrap_or_else(now),
    };
    event(
        &app,
        &tenant,
        &deletion.conversation,
        "on-delete",
        async |rt| rt.on_delete(&tenant, &deletion).await,
    )
    .await?
    .1
}

/// `POST /v1/tenants/{tenant}/messages`: answers with the outcome.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/messages", tag = "events", params(TenantPath), security(("operator" = []), ("tenant" = [])), request_body = MessageBody, responses(EventAnswers)
)]
pub async fn post_message(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    bytes: Bytes,
) -> ApiResult {
    known(&app, &tenant).await?;
    let message = body::<MessageBody>(&bytes)?.message()?;
    event(
        &app,
        &tenant,
        &message.conversation,
        "on-message",
        async |rt| rt.on_message(&tenant, &message).await,
    )
    .await?
    .1
}

/// A read receipt: `reader` read `message` and everything before it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReceiptBody {
    conversation: String,
    /// The reader's uid.
    reader: String,
    /// The newest message read.
    message: String,
    /// Milliseconds since the epoch; now by default.
    #[serde(default)]
    read_at: Option<u64>,
}

/// `POST /v1/tenants/{tenant}/receipts`: answers with the outcome.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/receipts", tag = "events", params(TenantPath), security(("operator" = []), ("tenant" = [])), request_body = ReceiptBody, responses(EventAnswers)
)]
pub async fn post_receipt(
    State(app): State<Arc<App>>,
    TenantCaller(tenant): TenantCaller,
    bytes: Bytes,
) -> ApiResult {
    known(&app, &tenant).await?;
    let r: ReceiptBody = body(&bytes)?;
    let receipt = Receipt {
        conversation: r.conversation,
        reader: r.reader,
        message: r.message,
        read_at: r.read_at.unwrap_or_else(now),
    };
    event(
        &app,
        &tenant,
        &receipt.conversation,
        "on-read",
        async |rt| rt.on_read(&tenant, &receipt).await,
    )
    .await?
    .1
}
