//! `inspect`: a tenant's stored records, read by the build that knows their
//! layouts, for dashboards and support tools that must not link the core.
//! Pure: the host hands over entries (all of them, or a page at a time),
//! each is decoded on its own, and lists come out in the entries' order.
//! Numbers come out masked.

use crate::prelude::*;

use crate::contact;
use crate::model::{Millis, SkipReason, TwilioError};
use crate::state::conversation::{Conversation, Held};
use crate::state::history::History;
use crate::state::keys;
use crate::state::pause::Pause;
use crate::state::record::Record;
use crate::state::suppression::{Suppression, Why};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingView {
    pub conversation: String,
    pub recipient: String,
    pub unread: u32,
    pub due_at: Millis,
    pub attempts: u32,
    pub held: Option<&'static str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendView {
    pub conversation: String,
    pub recipient: String,
    pub sid: String,
    pub to: String,
    pub at: Millis,
    pub status: String,
    pub error_code: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SuppressionView {
    pub recipient: String,
    pub number: String,
    pub reason: SkipReason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PauseView {
    pub until: Millis,
    pub error: TwilioError,
    pub setting: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inspection {
    pub pending: Vec<PendingView>,
    pub sends: Vec<SendView>,
    pub suppressions: Vec<SuppressionView>,
    pub paused: Option<PauseView>,
    pub unreadable: Vec<String>,
}

/// Reads `state`'s entries. Keys of other kinds (the 0.2.0 layout's, which
/// the next event on their conversation converts) are left out.
pub fn inspect(state: &[(String, Vec<u8>)]) -> Inspection {
    let mut out = Inspection::default();
    for (key, value) in state {
        if key.starts_with(keys::QUARANTINE) {
            out.unreadable.push(key.clone());
            continue;
        }
        let Some(parts) = keys::split(key) else {
            continue;
        };
        let readable = match parts.as_slice() {
            [kind, id] if kind == "conversation" => Conversation::decode(value)
                .map(|c| pending(&mut out, id, &c))
                .is_ok(),
            [kind, uid] if kind == "sent-to" => History::decode(value)
                .map(|h| sends(&mut out, uid, h))
                .is_ok(),
            [kind, uid] if kind == "suppressed" => Suppression::decode(value)
                .map(|s| suppressions(&mut out, uid, s))
                .is_ok(),
            [kind] if kind == "paused" => Pause::decode(value)
                .map(|p| {
                    out.paused = p.hold.map(|h| PauseView {
                        until: h.until,
                        error: h.error,
                        setting: h.setting,
                    })
                })
                .is_ok(),
            _ => true,
        };
        if !readable {
            out.unreadable.push(key.clone());
        }
    }
    // Unsorted: a host pages through the state and orders the whole (the
    // standard library's sorts would cost the component 12 kB).
    out
}

fn pending(out: &mut Inspection, id: &str, c: &Conversation) {
    for (p, part) in c.participants.iter().enumerate() {
        let Some(due_at) = part.due_at else { continue };
        out.pending.push(PendingView {
            conversation: id.to_owned(),
            recipient: part.uid.clone(),
            unread: c.unread(p),
            due_at,
            attempts: part.attempts,
            held: match part.held {
                Held::No => None,
                Held::Settings => Some("settings"),
                Held::Pause => Some("pause"),
            },
        });
    }
}

fn sends(out: &mut Inspection, uid: &str, history: History) {
    out.sends
        .extend(history.sends.into_iter().map(|s| SendView {
            conversation: s.conversation,
            recipient: uid.to_owned(),
            sid: s.sid,
            to: contact::mask(&s.to),
            at: s.at,
            status: s.status,
            error_code: s.error_code,
        }));
}

fn suppressions(out: &mut Inspection, uid: &str, s: Suppression) {
    out.suppressions
        .extend(s.refused.into_iter().map(|r| SuppressionView {
            recipient: uid.to_owned(),
            number: contact::mask(&r.number),
            reason: match r.why {
                Why::OptedOut => SkipReason::OptedOut,
                Why::Undeliverable => SkipReason::UndeliverableNumber,
            },
        }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::conversation::Participant;
    use crate::state::history::Send;

    #[test]
    fn every_record_type_is_read_and_numbers_masked() {
        let mut c = Conversation::default();
        let mut bob = Participant::new("bob");
        bob.due_at = Some(60_000);
        c.participants = vec![Participant::new("alice"), bob];
        let mut h = History::default();
        h.keep(Send {
            sid: "SM1".into(),
            conversation: "a_b".into(),
            to: "+14155552671".into(),
            at: 9,
            status: "delivered".into(),
            error_code: None,
        });
        let s = Suppression {
            refused: vec![crate::state::suppression::Refused {
                number: "+14155552672".into(),
                why: Why::OptedOut,
            }],
        };
        let state = vec![
            (keys::conversation("a_b"), c.encode()),
            (keys::recipient_history("bob"), h.encode()),
            (keys::suppression("bob"), s.encode()),
            (keys::conversation("broken"), b"C\x09".to_vec()),
            (keys::quarantine("conversation/x"), b"junk".to_vec()),
        ];
        let i = inspect(&state);
        assert_eq!(i.pending.len(), 1);
        assert_eq!(i.pending[0].recipient, "bob");
        assert_eq!(i.pending[0].due_at, 60_000);
        assert_eq!(i.sends[0].sid, "SM1");
        assert!(!i.sends[0].to.contains("2552671"), "{}", i.sends[0].to);
        assert_eq!(i.suppressions[0].reason, SkipReason::OptedOut);
        assert!(!i.suppressions[0].number.contains("2552672"));
        assert_eq!(
            i.unreadable,
            [
                keys::conversation("broken"),
                keys::quarantine("conversation/x")
            ]
        );
        assert_eq!(i.paused, None);
    }
}
