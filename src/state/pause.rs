//! The tenant's circuit breaker. When Twilio refuses something that is the
//! tenant's own (its credentials, its sender, its account), every
//! notification would be refused the same way: sending pauses for a
//! cool-off instead, pending notifications wait, and the first attempt
//! after it tries again. A settings change lifts the pause at once: the
//! pause remembers the settings revision it was taken under.
//!
//! The record also remembers the last recipient-level refusal, so that a
//! code Twilio uses for a tenant-wide problem this build does not know
//! (Twilio refines its codes over time) is recognised when it refuses two
//! different recipients in a row.

use crate::prelude::*;

use crate::model::{Change, Decision, Level, Millis, TwilioError};
use crate::state::keys;
use crate::state::record::{Reader, Record, Writer};

/// How long sending pauses. Long enough not to hammer Twilio with a
/// revoked token, short enough that a fix made outside the settings (a
/// topped-up account) takes effect soon. A settings change lifts it at once.
pub const COOL_OFF_MS: Millis = 15 * 60 * 1000;

/// Sending is paused until `until`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub until: Millis,
    /// The settings revision it was taken under: a new revision lifts it.
    /// `None` for a pause written by the 0.2.0 layout, which did not know it.
    pub revision: Option<u64>,
    /// Twilio's refusal (never a credential: redacted before it is stored).
    pub error: TwilioError,
    /// The setting to fix, as the settings name it.
    pub setting: String,
    /// Timers of notifications waiting for its end (at most
    /// [`MAX_WAITING`]): a settings change re-arms them at once. Others
    /// wait for the end.
    pub waiting: Vec<String>,
}

/// Most waiting timers a pause remembers.
pub const MAX_WAITING: usize = 256;

/// A refusal of one recipient's notification, remembered to spot a code
/// that refuses everyone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: u32,
    pub recipient: String,
}

/// Stored under [`crate::state::keys::pause`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pause {
    pub hold: Option<Hold>,
    pub last_refusal: Option<Refusal>,
}

impl Pause {
    /// The settings changed to `revision`: a hold taken under another one is
    /// lifted, and the timers waiting for it are due at once. `None` when
    /// nothing changes.
    pub fn lift(&self, revision: u64, now: Millis) -> Option<(Pause, Vec<(String, Millis)>)> {
        let hold = self.hold.as_ref()?;
        if hold.revision.is_none_or(|r| r == revision) {
            return None;
        }
        let due = hold.waiting.iter().map(|k| (k.clone(), now)).collect();
        let lifted = Pause {
            hold: None,
            last_refusal: self.last_refusal.clone(),
        };
        Some((lifted, due))
    }

    /// The hold in force at `now` under settings `revision`, if any.
    pub fn holding(&self, now: Millis, revision: u64) -> Option<&Hold> {
        self.hold
            .as_ref()
            .filter(|h| now < h.until && h.revision.is_none_or(|r| r == revision))
    }
}

/// What a new settings revision does to the stored pause: lifts a hold taken
/// under another revision and re-arms its waiting timers now, with a log
/// line. `None` when nothing changes.
pub fn on_new_revision(pause: &Pause, revision: u64, now: Millis) -> Option<Decision> {
    let (lifted, due) = pause.lift(revision, now)?;
    let mut step = Decision::default().log(
        Level::Info,
        format!(
            "the settings changed: sending resumes; {} waiting notification(s) are tried now",
            due.len()
        ),
    );
    step.changes.push(Change::Put {
        key: keys::pause(),
        value: lifted.encode(),
    });
    for (key, due_at) in due {
        step.changes.push(Change::SetTimer { key, due_at });
    }
    Some(step)
}

fn write_error(out: &mut Writer, error: &TwilioError) {
    out.u32(error.status.into());
    out.option(error.code, Writer::u32);
    out.str(&error.message);
}

fn read_error(input: &mut Reader) -> Option<TwilioError> {
    Some(TwilioError {
        status: input.u32()?.try_into().ok()?,
        code: input.option(Reader::u32)?,
        message: input.str()?,
    })
}

/// Layout 1: the hold (until, revision, error, setting), then the last
/// refusal (code, recipient), each optional.
impl Record for Pause {
    const TAG: u8 = b'P';
    const VERSION: u8 = 1;

    fn write(&self, out: &mut Writer) {
        out.option(self.hold.as_ref(), |out, h| {
            out.u64(h.until);
            out.option(h.revision, Writer::u64);
            write_error(out, &h.error);
            out.str(&h.setting);
            out.list(&h.waiting, |out, k| out.str(k));
        });
        out.option(self.last_refusal.as_ref(), |out, r| {
            out.u32(r.code);
            out.str(&r.recipient);
        });
    }

    fn read(input: &mut Reader, _version: u8) -> Option<Self> {
        Some(Self {
            hold: input.option(|input| {
                Some(Hold {
                    until: input.u64()?,
                    revision: input.option(Reader::u64)?,
                    error: read_error(input)?,
                    setting: input.str()?,
                    waiting: input.list(Reader::str)?,
                })
            })?,
            last_refusal: input.option(|input| {
                Some(Refusal {
                    code: input.u32()?,
                    recipient: input.str()?,
                })
            })?,
        })
    }

    /// The 0.2.0 layout: a credential pause (until, status, code, message).
    fn read_legacy(input: &mut Reader) -> Option<Self> {
        Some(Self {
            hold: Some(Hold {
                until: input.u64()?,
                revision: None,
                error: read_error(input)?,
                setting: crate::twilio::CREDENTIAL_SETTINGS.to_owned(),
                waiting: Vec::new(),
            }),
            last_refusal: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error() -> TwilioError {
        TwilioError {
            status: 401,
            code: Some(20003),
            message: "Authenticate".into(),
        }
    }

    #[test]
    fn holds_until_its_end_or_a_settings_change() {
        let p = Pause {
            hold: Some(Hold {
                until: 1_000,
                revision: Some(7),
                error: error(),
                setting: "fromMobileNo".into(),
                waiting: vec!["deliver/c/bob".into()],
            }),
            last_refusal: None,
        };
        assert!(p.holding(999, 7).is_some());
        assert_eq!(p.lift(7, 5), None);
        let (lifted, due) = p.lift(8, 5).unwrap();
        assert_eq!(lifted.hold, None);
        assert_eq!(due, [("deliver/c/bob".to_owned(), 5)]);
        assert!(p.holding(1_000, 7).is_none());
        assert!(p.holding(999, 8).is_none(), "a new revision lifts it");
        assert_eq!(Pause::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn layout_1_and_the_020_layout_decode() {
        let p = Pause {
            hold: Some(Hold {
                until: 900_000,
                revision: Some(3),
                error: error(),
                setting: "fromMobileNo".into(),
                waiting: vec![],
            }),
            last_refusal: Some(Refusal {
                code: 21212,
                recipient: "bob".into(),
            }),
        };
        let golden: &[u8] = &[
            b'P', 1, 1, 0xa0, 0xf7, 0x36, 1, 3, 0x91, 0x03, 1, 0xa3, 0x9c, 0x01, 12, b'A', b'u',
            b't', b'h', b'e', b'n', b't', b'i', b'c', b'a', b't', b'e', 12, b'f', b'r', b'o', b'm',
            b'M', b'o', b'b', b'i', b'l', b'e', b'N', b'o', 0, 1, 0xdc, 0xa5, 0x01, 3, b'b', b'o',
            b'b',
        ];
        assert_eq!(p.encode(), golden);
        assert_eq!(Pause::decode(golden), Ok(p));
        // What the 0.2.0 build wrote for a credential pause: it holds until
        // its end whatever the revision.
        let legacy = [
            0x01, 0xa0, 0xf7, 0x36, 0x91, 0x03, 0x01, 0xa3, 0x9c, 0x01, 0x0c, b'A', b'u', b't',
            b'h', b'e', b'n', b't', b'i', b'c', b'a', b't', b'e',
        ];
        let old = Pause::decode(&legacy).unwrap();
        let hold = old.holding(899_999, 42).expect("held");
        assert_eq!(hold.error, error());
        assert_eq!(hold.revision, None);
    }
}
