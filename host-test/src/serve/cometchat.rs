//! CometChat's legacy webhooks, mapped to the component's calls: a
//! CometChat app points its `after_message`, `message_read_receipt` and
//! `user_connection_status_change` webhooks at `POST
//! /cometchat/{tenant}/webhook` and gets the SMS extension back, self-hosted.
//!
//! Payload shapes follow CometChat's documented legacy events
//! (cometchat.com/docs/webhooks/webhooks-legacy-events; fixtures in
//! `host-test/tests/fixtures/cometchat/`). CometChat retries what is not
//! acknowledged, so other triggers are acknowledged and ignored; a payload
//! that is not one of these shapes is a 400 naming what is missing.

use crate::bindings::sms_notification::extension::types::{
    ConversationKind, Message, MessageFormat, Presence, Receipt,
};
use serde_json::Value;

/// What a webhook asks of the extension.
#[derive(Debug)]
pub enum Event {
    Message {
        message: Message,
        /// Names and presence CometChat sent along (`entities`).
        users: Vec<(String, Option<String>, Option<Presence>)>,
    },
    Read(Receipt),
    Presence {
        uid: String,
        presence: Presence,
    },
    /// Another trigger: acknowledged, nothing done.
    Ignored(String),
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, key| v.get(key))?.as_str()
}

/// A CometChat id: a string, or a number (message ids are numeric strings
/// in some payloads, numbers in others).
fn id(v: &Value, path: &[&str]) -> Option<String> {
    let v = path.iter().try_fold(v, |v, key| v.get(key))?;
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Seconds (CometChat's unit) as milliseconds, or `now`.
fn millis(v: &Value, path: &[&str], now: u64) -> u64 {
    path.iter()
        .try_fold(v, |v, key| v.get(key))
        .and_then(Value::as_u64)
        .map_or(now, |s| s.saturating_mul(1000))
}

fn presence(status: &str) -> Option<Presence> {
    match status {
        "online" | "available" => Some(Presence::Online),
        "offline" => Some(Presence::Offline),
        _ => None,
    }
}

/// CometChat's id of a one-on-one conversation: both uids, sorted, joined
/// by `_user_`.
pub fn conversation_id(a: &str, b: &str) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    format!("{first}_user_{second}")
}

/// The event a webhook body carries, or what is wrong with it.
pub fn parse(body: &Value, now: u64) -> Result<Event, String> {
    let trigger = body
        .get("trigger")
        .and_then(Value::as_str)
        .ok_or("`trigger` is missing or not a string")?;
    let data = body.get("data").ok_or("`data` is missing")?;
    let need = |what: Option<String>, name: &str| {
        what.ok_or_else(|| format!("{trigger}: `data.{name}` is missing or empty"))
    };
    match trigger {
        "after_message" => {
            let sender = need(id(data, &["sender"]), "sender")?;
            let receiver = need(id(data, &["receiver"]), "receiver")?;
            let group = text(data, &["receiverType"]) == Some("group");
            let conversation = id(data, &["conversationId"])
                .unwrap_or_else(|| conversation_id(&sender, &receiver));
            let category = text(data, &["category"]).unwrap_or("message");
            let format = match (category, text(data, &["type"]).unwrap_or("")) {
                ("message", "text") => MessageFormat::Text,
                ("message", "image") => MessageFormat::Image,
                ("message", "video") => MessageFormat::Video,
                ("message", "audio") => MessageFormat::Audio,
                ("message", "file") => MessageFormat::File,
                _ => MessageFormat::Custom,
            };
            let message = Message {
                id: need(id(data, &["id"]), "id")?,
                conversation,
                kind: if group {
                    ConversationKind::Group
                } else {
                    ConversationKind::OneOnOne
                },
                format,
                text: text(data, &["data", "text"]).unwrap_or("").to_owned(),
                sender,
                receiver,
                sent_at: millis(data, &["sentAt"], now),
            };
            let mut users = Vec::new();
            if let Some(entities) = data.get("data").and_then(|d| d.get("entities")) {
                for side in ["sender", "receiver"] {
                    let entity = &entities[side];
                    if entity["entityType"] != "user" {
                        continue;
                    }
                    if let Some(uid) = id(entity, &["entity", "uid"]) {
                        users.push((
                            uid,
                            text(entity, &["entity", "name"]).map(str::to_owned),
                            text(entity, &["entity", "status"]).and_then(presence),
                        ));
                    }
                }
            }
            Ok(Event::Message { message, users })
        }
        "message_read_receipt" => {
            // The receipt's sender is the reader; its receiver the other
            // participant (the author of what was read).
            let reader = need(id(data, &["sender"]), "sender")?;
            let other = need(id(data, &["receiver"]), "receiver")?;
            if text(data, &["receiverType"]) == Some("group") {
                return Ok(Event::Ignored(format!("{trigger} in a group")));
            }
            let conversation =
                id(data, &["conversationId"]).unwrap_or_else(|| conversation_id(&reader, &other));
            Ok(Event::Read(Receipt {
                conversation,
                message: need(id(data, &["messageId"]), "messageId")?,
                reader,
                read_at: millis(data, &["readAt"], now),
            }))
        }
        "user_connection_status_change" => {
            let user = data.get("user").unwrap_or(data);
            let uid = need(id(user, &["uid"]), "user.uid")?;
            let status = text(user, &["status"])
                .or_else(|| text(data, &["status"]))
                .ok_or_else(|| format!("{trigger}: `data.user.status` is missing"))?;
            let presence = presence(status).ok_or_else(|| {
                format!("{trigger}: status {status:?} is neither online nor offline")
            })?;
            Ok(Event::Presence { uid, presence })
        }
        other => Ok(Event::Ignored(other.to_owned())),
    }
}
