//! Contract 0.2.0: its bindings, its host interface answered by the newest
//! one's, and its types converted to and from the newest. Frozen: the WIT
//! is `host-test/host/wit/v0.2.0/`, as released.

use crate::bindings::sms_notification::extension::{host as new_host, types as new};
use crate::sandbox::Sandbox;

wasmtime::component::bindgen!({
    path: "wit/v0.2.0",
    world: "sms-notification",
    imports: { default: async | trappable },
    exports: { default: async },
});

use self::sms_notification::extension::{host, types as old};

impl old::Host for Sandbox {}

/// The 0.2.0 host interface is the newest one less `utc-offset`.
impl host::Host for Sandbox {
    async fn settings(&mut self) -> wasmtime::Result<Option<String>> {
        new_host::Host::settings(self).await
    }

    async fn settings_revision(&mut self) -> wasmtime::Result<u64> {
        new_host::Host::settings_revision(self).await
    }

    async fn find_user(&mut self, uid: String) -> wasmtime::Result<Option<old::User>> {
        Ok(new_host::Host::find_user(self, uid)
            .await?
            .map(|u| old::User {
                uid: u.uid,
                name: u.name,
                presence: match u.presence {
                    new::Presence::Online => old::Presence::Online,
                    new::Presence::Offline => old::Presence::Offline,
                },
                metadata: u.metadata,
            }))
    }

    async fn state_get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        new_host::Host::state_get(self, key).await
    }

    async fn commit(&mut self, changes: Vec<host::Change>) -> wasmtime::Result<Result<(), String>> {
        let changes = changes
            .into_iter()
            .map(|c| match c {
                host::Change::Put(e) => new_host::Change::Put(new_host::Entry {
                    key: e.key,
                    value: e.value,
                }),
                host::Change::Delete(key) => new_host::Change::Delete(key),
                host::Change::SetTimer(t) => new_host::Change::SetTimer(new_host::Timer {
                    key: t.key,
                    due_at: t.due_at,
                }),
                host::Change::CancelTimer(key) => new_host::Change::CancelTimer(key),
            })
            .collect();
        new_host::Host::commit(self, changes).await
    }

    async fn log(&mut self, level: old::Level, line: String) -> wasmtime::Result<()> {
        let level = match level {
            old::Level::Debug => new::Level::Debug,
            old::Level::Info => new::Level::Info,
            old::Level::Warn => new::Level::Warn,
            old::Level::Error => new::Level::Error,
        };
        new_host::Host::log(self, level, line).await
    }
}

pub fn message(m: &new::Message) -> old::Message {
    old::Message {
        id: m.id.clone(),
        conversation: m.conversation.clone(),
        kind: match m.kind {
            new::ConversationKind::OneOnOne => old::ConversationKind::OneOnOne,
            new::ConversationKind::Group => old::ConversationKind::Group,
        },
        format: match m.format {
            new::MessageFormat::Text => old::MessageFormat::Text,
            new::MessageFormat::Image => old::MessageFormat::Image,
            new::MessageFormat::Video => old::MessageFormat::Video,
            new::MessageFormat::Audio => old::MessageFormat::Audio,
            new::MessageFormat::File => old::MessageFormat::File,
            new::MessageFormat::Custom => old::MessageFormat::Custom,
        },
        sender: m.sender.clone(),
        receiver: m.receiver.clone(),
        text: m.text.clone(),
        sent_at: m.sent_at,
    }
}

pub fn receipt(r: &new::Receipt) -> old::Receipt {
    old::Receipt {
        conversation: r.conversation.clone(),
        reader: r.reader.clone(),
        message: r.message.clone(),
        read_at: r.read_at,
    }
}

pub fn problems(ps: Vec<old::Problem>) -> Vec<new::Problem> {
    ps.into_iter()
        .map(|p| new::Problem {
            field: p.field,
            message: p.message,
        })
        .collect()
}

fn pending(p: old::Pending) -> new::Pending {
    new::Pending {
        conversation: p.conversation,
        recipient: p.recipient,
        unread: p.unread,
        due_at: p.due_at,
    }
}

fn twilio_error(e: old::TwilioError) -> new::TwilioError {
    new::TwilioError {
        status: e.status,
        code: e.code,
        message: e.message,
    }
}

fn skip(reason: old::SkipReason) -> new::SkipReason {
    use new::SkipReason as N;
    use old::SkipReason as O;
    match reason {
        O::GroupConversation => N::GroupConversation,
        O::NotText => N::NotText,
        O::SelfMessage => N::SelfMessage,
        O::RecipientOnline => N::RecipientOnline,
        O::UnknownRecipient => N::UnknownRecipient,
        O::NoContactNumber => N::NoContactNumber,
        O::InvalidContactNumber => N::InvalidContactNumber,
        O::NothingPending => N::NothingPending,
        O::UnknownTimer => N::UnknownTimer,
        O::ConversationDailyLimit => N::ConversationDailyLimit,
        O::RecipientDailyLimit => N::RecipientDailyLimit,
        O::OptedOut => N::OptedOut,
        O::UndeliverableNumber => N::UndeliverableNumber,
    }
}

/// A 0.2.0 call's answer as the newest contract's. 0.2.0 deferred only
/// for the cooldown.
pub fn result(r: Result<old::Outcome, old::Error>) -> Result<new::Outcome, new::Error> {
    match r {
        Ok(outcome) => Ok(match outcome {
            old::Outcome::Scheduled(p) => new::Outcome::Scheduled(pending(p)),
            old::Outcome::Updated(p) => new::Outcome::Updated(pending(p)),
            old::Outcome::Deferred(p) => new::Outcome::Deferred(new::Deferral {
                conversation: p.conversation,
                recipient: p.recipient,
                unread: p.unread,
                due_at: p.due_at,
                why: new::DeferReason::Cooldown,
            }),
            old::Outcome::Cancelled(c) => new::Outcome::Cancelled(new::Cancelled {
                conversation: c.conversation,
                recipient: c.recipient,
                read: c.read,
            }),
            old::Outcome::Sent(s) => new::Outcome::Sent(new::Sent {
                conversation: s.conversation,
                recipient: s.recipient,
                sid: s.sid,
                status: s.status,
                unread: s.unread,
            }),
            old::Outcome::Retrying(r) => new::Outcome::Retrying(new::Retry {
                conversation: r.conversation,
                recipient: r.recipient,
                attempt: r.attempt,
                due_at: r.due_at,
                error: twilio_error(r.error),
            }),
            old::Outcome::Failed(f) => new::Outcome::Failed(new::Failure {
                conversation: f.conversation,
                recipient: f.recipient,
                attempts: f.attempts,
                error: twilio_error(f.error),
            }),
            old::Outcome::Paused(p) => new::Outcome::Paused(new::Pause {
                conversation: p.conversation,
                recipient: p.recipient,
                until: p.until,
                error: twilio_error(p.error),
            }),
            old::Outcome::Skipped(reason) => new::Outcome::Skipped(skip(reason)),
        }),
        Err(error) => Err(match error {
            old::Error::InvalidSettings(ps) => new::Error::InvalidSettings(problems(ps)),
            old::Error::InvalidInput(what) => new::Error::InvalidInput(what),
            old::Error::Host(what) => new::Error::Host(what),
        }),
    }
}
