//! What the API answers, as types: each handler returns one of these (or a
//! [`super::Failure`]), and the OpenAPI document's schemas are derived from
//! them. The component's records (`types::Preview`, `types::Inspection`,
//! …) are turned into these here, in one place, so their JSON names are
//! the API's, not the bindings'.

use serde::Serialize;
use serde_json::Value;
use sms_host::bindings::sms_notification::extension::types::{
    Encoding, Inspection, Preview, Problem,
};
use sms_host::call::CallRecord;
use utoipa::ToSchema;

/// Every refusal: what was wrong, in a sentence.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
}

/// Settings the component refused, one problem per field.
#[derive(Serialize, ToSchema)]
pub struct Problems {
    pub problems: Vec<ProblemView>,
}

#[derive(Serialize, ToSchema)]
pub struct ProblemView {
    /// The setting's name, as in the README's settings table.
    pub field: String,
    pub message: String,
}

impl Problems {
    pub fn of(problems: &[Problem]) -> Self {
        Self {
            problems: problems
                .iter()
                .map(|p| ProblemView {
                    field: p.field.clone(),
                    message: p.message.clone(),
                })
                .collect(),
        }
    }
}

/// A change was stored.
#[derive(Serialize, ToSchema)]
pub struct Saved {
    /// Always true: a change that was not stored is an error.
    pub saved: bool,
}

pub const SAVED: Saved = Saved { saved: true };

/// The settings as saved, without their secrets.
#[derive(Serialize, ToSchema)]
pub struct SettingsView {
    /// The settings table of the README, secrets left out.
    #[schema(value_type = Object)]
    pub settings: serde_json::Map<String, Value>,
    /// Which secrets are set (`twilioAuthToken`, `twilioApiKeySecret`).
    pub secrets_set: Vec<&'static str>,
}

/// The SMS a message would send under the settings.
#[derive(Serialize, ToSchema)]
pub struct PreviewView {
    /// The exact body.
    pub body: String,
    /// `gsm7` (160 characters a segment, 153 when split) or `ucs2` (70, 67).
    pub encoding: &'static str,
    /// Segments Twilio bills for it; never more than `max_segments`.
    pub segments: u32,
    /// The settings' `maxSegments`.
    pub max_segments: u32,
    /// Characters still free in the last segment.
    pub chars_left: u32,
    /// Whether the body had to be shortened to fit.
    pub shortened: bool,
}

impl From<&Preview> for PreviewView {
    fn from(p: &Preview) -> Self {
        Self {
            body: p.body.clone(),
            encoding: match p.encoding {
                Encoding::Gsm7 => "gsm7",
                Encoding::Ucs2 => "ucs2",
            },
            segments: p.segments,
            max_segments: p.max_segments,
            chars_left: p.chars_left,
            shortened: p.shortened,
        }
    }
}

/// A call's answer: which call, for which tenant, and exactly one of
/// `outcome` (what it did), `error` (what it refused) or `trap` (the
/// component failed).
#[derive(Serialize, ToSchema)]
pub struct CallView {
    /// `on-message`, `on-read`, `on-edit`, `on-delete`, `on-delivery-status`.
    pub call: &'static str,
    pub tenant: String,
    /// One key naming the outcome (`scheduled`, `updated`, `deferred`,
    /// `cancelled`, `delivery`, `skipped`, …) and its details, in the
    /// README's outcome table.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<Value>,
    /// One key naming the error (`invalid-settings`, `invalid-input`,
    /// `host`, `unauthenticated`) and what was wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trap: Option<String>,
}

impl From<&CallRecord> for CallView {
    fn from(record: &CallRecord) -> Self {
        use sms_host::call::Reply;
        let (mut outcome, mut error, mut trap) = (None, None, None);
        match &record.reply {
            Reply::Outcome(o) => outcome = Some(sms_host::json::outcome(o)),
            Reply::Error(e) => error = Some(sms_host::json::error(e)),
            Reply::Trap(t) => trap = Some(t.clone()),
        }
        Self {
            call: record.call,
            tenant: record.tenant.clone(),
            outcome,
            error,
            trap,
        }
    }
}

/// What an event route answers (`…/messages`, `…/receipts`, `…/edits`,
/// `…/deletions`), for the document: the handlers answer with a
/// [`CallView`] whose status comes from the call's typed reply.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum EventAnswers {
    /// The component's answer: what it did.
    #[response(status = 200)]
    Done(CallView),
    /// No such tenant: save its settings first.
    #[response(status = 404)]
    NoTenant(ErrorBody),
    /// The component refused the input or the settings (`error`).
    #[response(status = 422)]
    Refused(CallView),
    /// The tenant has had its most calls in flight for a while: try again
    /// shortly.
    #[response(status = 429)]
    Busy(ErrorBody),
    /// The component trapped (`trap`).
    #[response(status = 500)]
    Trapped(CallView),
    /// The tenant's state is full (--max-state-keys): the change was
    /// refused whole; trying again soon changes nothing.
    #[response(status = 507)]
    Full(CallView),
}

/// What a tenant's state holds, read by the component; numbers masked.
#[derive(Serialize, ToSchema)]
pub struct InspectionView {
    pub pending: Vec<PendingView>,
    /// Recent SMS, the newest few per recipient, with Twilio's status.
    pub sends: Vec<SendView>,
    pub suppressions: Vec<SuppressionView>,
    /// Set while the tenant's sending is paused (Twilio refused its
    /// credentials).
    pub paused: Option<PauseView>,
    /// Keys no layout this build knows reads (quarantined ones included).
    pub unreadable: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PendingView {
    pub conversation: String,
    pub recipient: String,
    pub unread: u32,
    /// When its timer fires, in milliseconds since the epoch.
    pub due_at: u64,
    pub attempts: u32,
    /// What holds it: `settings` (invalid at its due time) or `pause`.
    pub held: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SendView {
    pub conversation: String,
    pub recipient: String,
    pub sid: String,
    /// The number, masked (`+14*******71`).
    pub to: String,
    pub at: u64,
    /// Twilio's status: its answer first (`queued`), then the newest
    /// delivery report's.
    pub status: String,
    pub error_code: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct SuppressionView {
    pub recipient: String,
    /// The number, masked.
    pub number: String,
    /// `opted-out` (they replied STOP) or `undeliverable-number`.
    pub reason: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct PauseView {
    pub until: u64,
    pub error: TwilioErrorView,
    /// The setting to fix.
    pub setting: String,
}

/// What Twilio answered.
#[derive(Serialize, ToSchema)]
pub struct TwilioErrorView {
    pub status: u16,
    pub code: Option<u32>,
    pub message: String,
}

impl From<&Inspection> for InspectionView {
    fn from(i: &Inspection) -> Self {
        Self {
            pending: i
                .pending
                .iter()
                .map(|p| PendingView {
                    conversation: p.conversation.clone(),
                    recipient: p.recipient.clone(),
                    unread: p.unread,
                    due_at: p.due_at,
                    attempts: p.attempts,
                    held: p.held.clone(),
                })
                .collect(),
            sends: i
                .sends
                .iter()
                .map(|s| SendView {
                    conversation: s.conversation.clone(),
                    recipient: s.recipient.clone(),
                    sid: s.sid.clone(),
                    to: s.to.clone(),
                    at: s.at,
                    status: s.status.clone(),
                    error_code: s.error_code,
                })
                .collect(),
            suppressions: i
                .suppressions
                .iter()
                .map(|s| SuppressionView {
                    recipient: s.recipient.clone(),
                    number: s.number.clone(),
                    reason: sms_host::json::skip_reason(s.reason),
                })
                .collect(),
            paused: i.paused.as_ref().map(|p| PauseView {
                until: p.until,
                error: TwilioErrorView {
                    status: p.error.status,
                    code: p.error.code,
                    message: p.error.message.clone(),
                },
                setting: p.setting.clone(),
            }),
            unreadable: i.unreadable.clone(),
        }
    }
}

/// Records kept aside because the component could not read them.
#[derive(Serialize, ToSchema)]
pub struct Quarantine {
    pub records: Vec<QuarantinedRecord>,
}

#[derive(Serialize, ToSchema)]
pub struct QuarantinedRecord {
    /// Its key, under `quarantine/`.
    pub key: String,
    /// Its bytes, base64.
    pub bytes: String,
}

#[derive(Serialize, ToSchema)]
pub struct Cleared {
    /// The key cleared.
    pub cleared: String,
}

/// The tenant's recent log lines, oldest first.
#[derive(Serialize, ToSchema)]
pub struct LogLines {
    pub lines: Vec<LogEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct LogEntry {
    /// Its position: ask for `?after=N` to read on.
    pub n: u64,
    pub at: u64,
    /// `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The component's line: numbers masked, never a secret.
    pub line: String,
}

/// The recent calls that sent nothing, and why.
#[derive(Serialize, ToSchema)]
pub struct Unsent {
    /// Each call's line, oldest first, as the log prints it.
    #[schema(value_type = Vec<Object>)]
    pub calls: Vec<Value>,
    /// How many are kept per tenant.
    pub keep: usize,
}

/// Whether the service can work.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `reachable`.
    pub database: &'static str,
    /// The component's contract version (`0.4.0`, …).
    pub component: &'static str,
    pub delivery_reports: DeliveryReports,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryReports {
    /// The status callback URL given to Twilio when a tenant's settings
    /// name none (from `--public-url`).
    pub default_callback: Option<String>,
    /// Why there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<&'static str>,
}

/// A webhook event CometChat sent that asks nothing of this service.
#[derive(Serialize, ToSchema)]
pub struct Ignored {
    /// CometChat's trigger.
    pub ignored: String,
    pub why: String,
}

/// A presence CometChat reported.
#[derive(Serialize, ToSchema)]
pub struct PresenceApplied {
    /// `online` or `offline`.
    pub presence: &'static str,
    /// False when a newer presence was known already.
    pub applied: bool,
}

/// What the in-process fake Twilio received, oldest first.
#[derive(Serialize, ToSchema)]
pub struct FakeSms {
    #[schema(value_type = Vec<Object>)]
    pub sms: Vec<Value>,
}

/// The webhook's credentials were saved.
#[derive(Serialize, ToSchema)]
pub struct WebhookSaved {
    /// The URL to paste into CometChat's dashboard.
    pub url: String,
    pub user: String,
    /// Only when this service generated it: shown this once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The webhook's URL and user; never its password.
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    pub url: String,
    pub user: Option<String>,
    pub password_set: bool,
}

/// A token minted: shown this once.
#[derive(Serialize, ToSchema)]
pub struct Minted {
    pub id: String,
    pub token: String,
}

#[derive(Serialize, ToSchema)]
pub struct Tokens {
    pub tokens: Vec<TokenView>,
}

/// A token by id; never the token.
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub created_at: u64,
}

#[derive(Serialize, ToSchema)]
pub struct Revoked {
    /// The token's id.
    pub revoked: String,
}

/// The CometChat app users are read from, if any.
#[derive(Serialize, ToSchema)]
pub struct CometChatView {
    pub app: Option<CometChatAppView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CometChatAppView {
    pub app_id: String,
    /// `us`, `eu` or `in`.
    pub region: String,
    /// Always true: the key is write-only.
    pub rest_api_key_set: bool,
    /// Why users are not read (CometChat refused the key), if so.
    pub paused: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Removed {
    /// Whether there was an app to remove.
    pub removed: bool,
}
