//! CometChat's webhooks, both systems, mapped to the component's calls: a
//! CometChat app points its webhooks at `POST /cometchat/{tenant}/webhook`
//! and gets the SMS extension back, self-hosted.
//!
//! - **Legacy webhooks** ("Webhooks (Legacy) > Events"): `after_message`
//!   (the message is `data`), `message_read_receipt` and
//!   `message_delivery_receipt` (`data.receiptSender` is the reader,
//!   `data.messageSender` the author), the presence event
//!   `after_connection_status_changed` (documented under the heading
//!   `user_connection_status_change`, accepted under both names), and
//!   `before_message`.
//! - **Webhooks** ("Webhooks > Events", the ones CometChat tells new apps
//!   to use): `message_sent` (the message is `data.message`),
//!   `message_read_receipt` and `message_delivery_receipt` (`data.sender`
//!   is the reader, `data.body.{messageId, timestamp}`),
//!   `user_connection_status_changed`, `message_edited`,
//!   `message_deleted`, and the group, call, reaction and moderation
//!   events.
//!
//! Both systems name their read receipt `message_read_receipt`: the shape
//! tells them apart (`data.body` is the current system's). Payload shapes
//! follow CometChat's documented examples, kept as fixtures in
//! `host-test/tests/fixtures/cometchat/` with their source. CometChat wants
//! a 200 for what it sends, and retries what it does not get one for: a
//! trigger with nothing to do is acknowledged ([`Event::Ignored`]), an
//! unknown one too ([`Event::Unknown`], counted and logged by the caller);
//! a known trigger that lacks a field the extension needs is [`Malformed`],
//! naming it.

use serde_json::Value;
use sms_host::bindings::sms_notification::extension::types::{
    ConversationKind, Deletion, Message, MessageFormat, Receipt,
};
use sms_host::storage::Presence;

/// Which of CometChat's two webhook systems a payload came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    /// "Webhooks (Legacy)".
    Legacy,
    /// "Webhooks", the current system.
    Current,
}

impl System {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::Current => "current",
        }
    }
}

/// A webhook, read: which system and trigger, and what it asks for.
#[derive(Debug)]
pub struct Webhook {
    /// `None` for a trigger neither system documents.
    pub system: Option<System>,
    pub trigger: String,
    pub event: Event,
}

/// A user as a webhook describes them (a message's `entities`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub uid: String,
    pub name: Option<String>,
    pub presence: Option<Presence>,
}

/// What a webhook asks of the extension.
#[derive(Debug)]
pub enum Event {
    /// A message reached its recipient (`on-message`), with what the
    /// payload says about its sender and receiver.
    Message {
        message: Message,
        users: Vec<Profile>,
    },
    /// A read receipt (`on-read`).
    Read(Receipt),
    /// A message edited: its id and new text (`on-edit`).
    Edited(Message),
    /// A message deleted (`on-delete`).
    Deleted(Deletion),
    /// A user connected or disconnected, at `at` (milliseconds).
    Presence {
        uid: String,
        presence: Presence,
        at: u64,
    },
    /// A documented trigger with nothing for the extension to do, and why.
    Ignored(&'static str),
    /// A trigger neither system documents.
    Unknown,
}

/// A payload of a known trigger without what the extension needs from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub trigger: String,
    /// The JSON path of the field, e.g. `data.body.messageId`.
    pub field: String,
    pub why: &'static str,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: `{}` {}", self.trigger, self.field, self.why)
    }
}

/// The value at a dotted path.
fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

fn text<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    at(v, path)?.as_str()
}

/// A CometChat id: a non-empty string, or a number (message ids are
/// numeric strings in CometChat's examples; a number is read the same).
fn id(v: &Value, path: &str) -> Option<String> {
    match at(v, path)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A time: a number, or a string of digits (the legacy presence event
/// documents its times as strings). Anything else is absent.
fn time(v: &Value, path: &str) -> Option<u64> {
    match at(v, path)? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// CometChat's user statuses: `available` is what its message entities
/// say of a connected user.
fn presence(status: &str) -> Option<Presence> {
    match status {
        "online" | "available" => Some(Presence::Online),
        "offline" => Some(Presence::Offline),
        _ => None,
    }
}

/// The system a payload's trigger (and, for receipts, its shape) belongs
/// to, if either documents it.
pub fn system_of(body: &Value) -> Option<System> {
    let trigger = body.get("trigger").and_then(Value::as_str)?;
    match trigger {
        "after_message"
        | "before_message"
        | "user_connection_status_change"
        | "after_connection_status_changed" => Some(System::Legacy),
        "message_read_receipt" | "message_delivery_receipt" => Some(match at(body, "data.body") {
            Some(_) => System::Current,
            None => System::Legacy,
        }),
        t if documented(t) => Some(System::Current),
        _ => None,
    }
}

/// CometChat's id of a one-on-one conversation: both uids, sorted, joined
/// by `_user_` (`cometchat-uid-4_user_cometchat-uid-5`).
pub fn conversation_id(a: &str, b: &str) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    format!("{first}_user_{second}")
}

/// Reads a webhook body; `now` (milliseconds) stands in for a time the
/// payload does not carry.
pub fn parse(body: &Value, now: u64) -> Result<Webhook, Malformed> {
    let trigger = match body.get("trigger").and_then(Value::as_str) {
        Some(t) => t.to_owned(),
        None => {
            return Err(Malformed {
                trigger: "webhook".into(),
                field: "trigger".into(),
                why: "is missing or not a string",
            });
        }
    };
    let data = body.get("data").unwrap_or(&Value::Null);
    let need = |what: Option<String>, field: &str| {
        what.ok_or_else(|| Malformed {
            trigger: trigger.clone(),
            field: field.to_owned(),
            why: "is missing or empty",
        })
    };
    let webhook = |system, event| Webhook {
        system: Some(system),
        trigger: trigger.clone(),
        event,
    };
    use Event::Ignored;
    use System::{Current, Legacy};
    Ok(match trigger.as_str() {
        "after_message" => webhook(Legacy, message(data, "data", &need, now)?),
        "message_sent" => webhook(
            Current,
            message(
                data.get("message").unwrap_or(&Value::Null),
                "data.message",
                &need,
                now,
            )?,
        ),
        // A message moderation let through reaches its recipient: one
        // already seen as `message_sent` is the same message.
        "moderation_engine_approved" | "moderation_manual_approved" => webhook(
            Current,
            message(
                data.get("message").unwrap_or(&Value::Null),
                "data.message",
                &need,
                now,
            )?,
        ),
        "before_message" => webhook(
            Legacy,
            Ignored("a message in flight, not yet sent (after_message carries it)"),
        ),
        "message_read_receipt" | "message_delivery_receipt" => {
            let read = trigger == "message_read_receipt";
            let current = data.get("body").is_some();
            let system = if current { Current } else { Legacy };
            if !read {
                return Ok(webhook(system, Ignored("a delivery receipt is not a read")));
            }
            if text(data, "receiverType") == Some("group") {
                return Ok(webhook(system, Ignored("a receipt in a group")));
            }
            webhook(system, receipt(data, current, &need, now)?)
        }
        "message_delivered_to_all" | "message_read_by_all" => {
            webhook(Current, Ignored("a receipt in a group"))
        }
        "user_connection_status_change" | "after_connection_status_changed" => {
            let uid = need(id(data, "user.uid"), "data.user.uid")?;
            let status = need(
                text(data, "user.status").map(str::to_owned),
                "data.user.status",
            )?;
            let presence = presence(&status).ok_or_else(|| Malformed {
                trigger: trigger.clone(),
                field: "data.user.status".into(),
                why: "is neither online nor offline",
            })?;
            let at = time(data, "user.status_updated_at")
                .or_else(|| time(data, "event.at"))
                .unwrap_or(now);
            webhook(Legacy, Event::Presence { uid, presence, at })
        }
        "user_connection_status_changed" => {
            let uid = need(id(data, "user.uid"), "data.user.uid")?;
            let (field, status) = match (text(data, "status"), text(data, "user.status")) {
                (Some(status), _) => ("data.status", status.to_owned()),
                (None, status) => (
                    "data.user.status",
                    need(status.map(str::to_owned), "data.status")?,
                ),
            };
            let presence = presence(&status).ok_or_else(|| Malformed {
                trigger: trigger.clone(),
                field: field.into(),
                why: "is neither online nor offline",
            })?;
            let at = time(data, "timestamp").unwrap_or(now);
            webhook(Current, Event::Presence { uid, presence, at })
        }
        // The edited or deleted message is the action's `on` entity.
        // (An edit of a group message goes to the component, which skips
        // it as it skips the message.)
        "message_edited" | "message_deleted" => {
            let path = "data.message.data.entities.on.entity";
            let m = at(body, path).unwrap_or(&Value::Null);
            if trigger == "message_edited" {
                let Event::Message { message, .. } = message(m, path, &need, now)? else {
                    return Ok(webhook(Current, Ignored("an edit of an action message")));
                };
                webhook(Current, Event::Edited(message))
            } else {
                webhook(Current, deletion(m, path, "deletedAt", &need, now)?)
            }
        }
        // A blocked message is never quoted: if it was seen (as
        // `message_sent`), it is as deleted; if not, this changes nothing.
        "moderation_engine_blocked" => {
            let path = "data.message";
            let m = at(body, path).unwrap_or(&Value::Null);
            webhook(Current, deletion(m, path, "updatedAt", &need, now)?)
        }
        "message_reaction_added" | "message_reaction_removed" => {
            webhook(Current, Ignored("a reaction is not a message"))
        }
        "user_mentioned" => webhook(
            Current,
            Ignored("a mention: its message arrives as message_sent"),
        ),
        "user_blocked" | "user_unblocked" => {
            webhook(Current, Ignored("blocking changes no message's state"))
        }
        t if t.starts_with("group_") && DOCUMENTED_GROUP.contains(&t) => webhook(
            Current,
            Ignored("a group event: only one-on-one messages are texted"),
        ),
        t if DOCUMENTED_CALLS.contains(&t) => webhook(
            Current,
            Ignored("a call or meeting: only unread text messages are texted"),
        ),
        _ => Webhook {
            system: None,
            trigger: trigger.clone(),
            event: Event::Unknown,
        },
    })
}

/// The current system's group events.
const DOCUMENTED_GROUP: [&str; 10] = [
    "group_member_banned",
    "group_member_unbanned",
    "group_member_scope_changed",
    "group_created",
    "group_updated",
    "group_deleted",
    "group_member_joined",
    "group_member_left",
    "group_member_added",
    "group_member_kicked",
];

/// The current system's call and meeting events.
const DOCUMENTED_CALLS: [&str; 10] = [
    "call_initiated",
    "call_started",
    "call_participant_joined",
    "call_participant_left",
    "call_ended",
    "meeting_started",
    "meeting_participant_joined",
    "meeting_participant_left",
    "meeting_ended",
    "recording_generated",
];

/// Every trigger either system documents, for `/metrics` (an unknown
/// trigger's name comes from outside: only a bounded number are counted
/// by name).
pub fn documented(trigger: &str) -> bool {
    matches!(
        trigger,
        "after_message"
            | "before_message"
            | "message_sent"
            | "message_edited"
            | "message_deleted"
            | "message_read_receipt"
            | "message_delivery_receipt"
            | "message_delivered_to_all"
            | "message_read_by_all"
            | "user_connection_status_change"
            | "after_connection_status_changed"
            | "user_connection_status_changed"
            | "message_reaction_added"
            | "message_reaction_removed"
            | "user_mentioned"
            | "user_blocked"
            | "user_unblocked"
            | "moderation_engine_approved"
            | "moderation_engine_blocked"
            | "moderation_manual_approved"
            | "group_owner_transferred"
    ) || DOCUMENTED_GROUP.contains(&trigger)
        || DOCUMENTED_CALLS.contains(&trigger)
}

/// A message as both systems carry it (`m` is at `path`).
fn message(
    m: &Value,
    path: &str,
    need: &impl Fn(Option<String>, &str) -> Result<String, Malformed>,
    now: u64,
) -> Result<Event, Malformed> {
    let field = |name: &str| format!("{path}.{name}");
    if text(m, "category") == Some("action") {
        return Ok(Event::Ignored(
            "an action message (an edit, a deletion, a member change) is not a message between users",
        ));
    }
    let sender = need(id(m, "sender"), &field("sender"))?;
    let receiver = need(id(m, "receiver"), &field("receiver"))?;
    let group = text(m, "receiverType") == Some("group");
    let conversation =
        id(m, "conversationId").unwrap_or_else(|| conversation_id(&sender, &receiver));
    let category = text(m, "category").unwrap_or("message");
    let format = match (category, text(m, "type").unwrap_or("")) {
        ("message", "text") => MessageFormat::Text,
        ("message", "image") => MessageFormat::Image,
        ("message", "video") => MessageFormat::Video,
        ("message", "audio") => MessageFormat::Audio,
        ("message", "file") => MessageFormat::File,
        // Custom messages, calls (`category: call`), anything newer.
        _ => MessageFormat::Custom,
    };
    let body = match format {
        MessageFormat::Text => need(text(m, "data.text").map(str::to_owned), &field("data.text"))?,
        _ => String::new(),
    };
    let message = Message {
        id: need(id(m, "id"), &field("id"))?,
        conversation,
        kind: if group {
            ConversationKind::Group
        } else {
            ConversationKind::OneOnOne
        },
        format,
        text: body,
        sender,
        receiver,
        // A time ahead of this server's clock (CometChat's clock, or a
        // payload's) is taken as now: a notification must come due.
        sent_at: time(m, "sentAt").map_or(now, |s| s.saturating_mul(1000).min(now)),
    };
    let mut users = Vec::new();
    if !group {
        for side in ["sender", "receiver"] {
            let entity = at(m, "data.entities")
                .and_then(|e| e.get(side))
                .unwrap_or(&Value::Null);
            if entity.get("entityType").and_then(Value::as_str) != Some("user") {
                continue;
            }
            if let Some(uid) = id(entity, "entity.uid") {
                users.push(Profile {
                    uid,
                    name: text(entity, "entity.name").map(str::to_owned),
                    presence: text(entity, "entity.status").and_then(presence),
                });
            }
        }
    }
    Ok(Event::Message { message, users })
}

/// A message deleted (or blocked): its id and conversation. A group's is
/// acknowledged and ignored (a deletion names no conversation kind for the
/// component to skip it by).
fn deletion(
    m: &Value,
    path: &str,
    time_field: &str,
    need: &impl Fn(Option<String>, &str) -> Result<String, Malformed>,
    now: u64,
) -> Result<Event, Malformed> {
    if text(m, "receiverType") == Some("group") {
        return Ok(Event::Ignored("a group message"));
    }
    let id = need(id(m, "id"), &format!("{path}.id"))?;
    let conversation = match id_of_conversation(m) {
        Some(c) => c,
        None => need(None, &format!("{path}.conversationId"))?,
    };
    Ok(Event::Deleted(Deletion {
        conversation,
        message: id,
        deleted_at: time(m, time_field).map_or(now, |s| s.saturating_mul(1000)),
    }))
}

/// A message's conversation: its `conversationId`, else derived from its
/// sender and receiver.
fn id_of_conversation(m: &Value) -> Option<String> {
    id(m, "conversationId")
        .or_else(|| Some(conversation_id(&id(m, "sender")?, &id(m, "receiver")?)))
}

/// A read receipt: the reader is the receipt's sender, the other
/// participant the author of what was read.
fn receipt(
    data: &Value,
    current: bool,
    need: &impl Fn(Option<String>, &str) -> Result<String, Malformed>,
    now: u64,
) -> Result<Event, Malformed> {
    let (reader, message, seconds) = if current {
        (
            need(id(data, "sender"), "data.sender")?,
            need(id(data, "body.messageId"), "data.body.messageId")?,
            time(data, "body.timestamp"),
        )
    } else {
        (
            need(id(data, "receiptSender"), "data.receiptSender")?,
            need(id(data, "messageId"), "data.messageId")?,
            time(data, "readAt"),
        )
    };
    let (author, field) = if current {
        (
            id(data, "messageSender").or_else(|| id(data, "receiver")),
            "data.messageSender",
        )
    } else {
        (
            id(data, "messageSender").or_else(|| id(data, "receiptReceiver")),
            "data.messageSender",
        )
    };
    let author = need(author, field)?;
    Ok(Event::Read(Receipt {
        conversation: conversation_id(&reader, &author),
        reader,
        message,
        read_at: seconds.map_or(now, |s| s.saturating_mul(1000)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_read_receipts_name_the_reader_and_the_conversation() {
        let legacy = json!({ "trigger": "message_read_receipt", "data": {
            "messageId": "7", "readAt": 10, "messageSender": "bob",
            "receiptSender": "alice", "receiptReceiver": "bob", "receiverType": "user" } });
        let current = json!({ "trigger": "message_read_receipt", "data": {
            "receiver": "bob", "receiverType": "user", "sender": "alice", "messageSender": "bob",
            "body": { "action": "read", "messageId": "7", "timestamp": 10 } } });
        for (payload, system) in [(legacy, System::Legacy), (current, System::Current)] {
            let w = parse(&payload, 0).unwrap();
            assert_eq!(w.system, Some(system));
            let Event::Read(r) = w.event else {
                panic!("a read")
            };
            assert_eq!(
                (
                    r.reader.as_str(),
                    r.message.as_str(),
                    r.conversation.as_str(),
                    r.read_at
                ),
                ("alice", "7", "alice_user_bob", 10_000)
            );
        }
    }

    #[test]
    fn a_missing_field_is_named() {
        let e = parse(
            &json!({ "trigger": "message_read_receipt", "data": { "receiptSender": "a" } }),
            0,
        )
        .unwrap_err();
        assert_eq!(e.field, "data.messageId");
        let e = parse(
            &json!({ "trigger": "message_sent", "data": { "message": { "sender": "a" } } }),
            0,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "message_sent: `data.message.receiver` is missing or empty"
        );
        let e = parse(&json!({ "data": {} }), 0).unwrap_err();
        assert_eq!(e.field, "trigger");
    }

    #[test]
    fn presence_times_may_be_strings_of_digits() {
        let w = parse(
            &json!({ "trigger": "after_connection_status_changed", "data": { "user": {
                "uid": "u", "status": "offline", "status_updated_at": "1700000000123" } } }),
            5,
        )
        .unwrap();
        assert!(matches!(
            w.event,
            Event::Presence {
                at: 1_700_000_000_123,
                presence: Presence::Offline,
                ..
            }
        ));
    }

    #[test]
    fn unknown_triggers_are_not_errors() {
        let w = parse(&json!({ "trigger": "something_new", "data": {} }), 0).unwrap();
        assert!(matches!(w.event, Event::Unknown));
        assert_eq!(w.system, None);
        assert!(!documented("something_new"));
        assert!(documented("group_member_kicked") && documented("meeting_ended"));
    }
}
