//! The tenant's circuit breaker: when Twilio refuses the credentials,
//! sending pauses for a cool-off instead of failing every notification one
//! by one. Pending notifications wait and are tried again when it ends.

use crate::model::{Millis, TwilioError};
use crate::record::{Reader, Record, Writer};

/// How long sending pauses after the credentials are refused. Long enough
/// not to hammer Twilio with a revoked token, short enough that fixed
/// credentials take effect soon.
pub const COOL_OFF_MS: Millis = 15 * 60 * 1000;

/// Stored under [`crate::keys::pause`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pause {
    pub until: Millis,
    /// Twilio's refusal (status, code and message; never a credential).
    pub error: TwilioError,
}

impl Record for Pause {
    fn write(&self, out: &mut Writer) {
        out.u64(self.until);
        out.u32(self.error.status.into());
        match self.error.code {
            None => out.bool(false),
            Some(code) => {
                out.bool(true);
                out.u32(code);
            }
        }
        out.str(&self.error.message);
    }

    fn read(input: &mut Reader) -> Option<Self> {
        Some(Self {
            until: input.u64()?,
            error: TwilioError {
                status: input.u32()?.try_into().ok()?,
                code: match input.bool()? {
                    false => None,
                    true => Some(input.u32()?),
                },
                message: input.str()?,
            },
        })
    }
}

impl Pause {
    pub fn holds(&self, now: Millis) -> bool {
        now < self.until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_until_its_end() {
        let p = Pause {
            until: 1_000,
            error: TwilioError {
                status: 401,
                code: Some(20003),
                message: "Authenticate".into(),
            },
        };
        assert!(p.holds(999));
        assert!(!p.holds(1_000));
        assert_eq!(Pause::decode(&p.encode()), Some(p));
    }
}
