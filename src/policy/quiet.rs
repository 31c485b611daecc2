//! Quiet hours: no SMS between `quietHours.start` and `quietHours.end` in
//! the recipient's local time. A notification due inside them waits for
//! their end, then everything is checked again (still offline, still
//! unread, the limits).
//!
//! The recipient's zone is `@private.timeZone` in their metadata, else the
//! settings' `timeZone`. Zone rules come from the host (`utc-offset`), so
//! the component carries no time zone database; here they are a function
//! from an instant to its UTC offset.
//!
//! The window is on the local wall clock. Where daylight saving skips the
//! end (spring forward: 02:30 does not exist on that day), quiet hours end
//! at the transition, the first instant whose local time is past the end.
//! Where it repeats the end (fall back: 01:30 happens twice), they end at
//! the first occurrence.

use crate::prelude::*;

use crate::model::{Level, Log, Millis, Problem};
use crate::policy::settings::{QuietHours, Settings};
use miniserde::json::{self, Value};

const MINUTE_MS: i64 = 60_000;
const DAY_MINUTES: u32 = 24 * 60;

/// Minutes after local midnight at `at`, under `offset` seconds east of UTC.
pub fn local_minute(at: Millis, offset: i32) -> u32 {
    let local = at as i64 + i64::from(offset) * 1000;
    local
        .div_euclid(MINUTE_MS)
        .rem_euclid(i64::from(DAY_MINUTES)) as u32
}

/// Whether the local minute `minute` is inside the window.
pub fn inside(hours: QuietHours, minute: u32) -> bool {
    if hours.start < hours.end {
        (hours.start..hours.end).contains(&minute)
    } else {
        minute >= hours.start || minute < hours.end
    }
}

/// When the quiet hours `now` is in end: the first instant after `now`
/// whose local time is past the window; `None` if `now` is outside it (or
/// the zone's offset is unknown). `offset` gives the zone's UTC offset, in
/// seconds, at an instant.
pub fn end(
    hours: QuietHours,
    now: Millis,
    mut offset: impl FnMut(Millis) -> Option<i32>,
) -> Option<Millis> {
    let off = offset(now)?;
    let minute = local_minute(now, off);
    if !inside(hours, minute) {
        return None;
    }
    let wait = (hours.end + DAY_MINUTES - minute) % DAY_MINUTES;
    // The end on the local wall clock, as milliseconds of "local epoch".
    let local_now = now as i64 + i64::from(off) * 1000;
    let wall = local_now.div_euclid(MINUTE_MS) * MINUTE_MS + i64::from(wait) * MINUTE_MS;
    let at = |o: i32| (wall - i64::from(o) * 1000).max(0) as Millis;
    // Under the offset in force now; if that offset no longer holds there,
    // under the one that does.
    let first = at(off);
    let o1 = offset(first)?;
    if o1 == off {
        return Some(first);
    }
    let second = at(o1);
    let o2 = offset(second)?;
    if o2 == o1 {
        return Some(second);
    }
    // The end falls in a gap (the clock jumps over it): quiet hours end at
    // the jump, found to the minute.
    let (mut lo, mut hi) = (first.min(second), first.max(second));
    let before = offset(lo)?;
    while hi - lo > MINUTE_MS as u64 {
        let mid = lo + (hi - lo) / 2;
        if offset(mid)? == before {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(hi.div_ceil(MINUTE_MS as u64) * MINUTE_MS as u64)
}

/// The recipient's own zone, `@private.timeZone` in their metadata.
pub fn zone_in(metadata: &str) -> Option<String> {
    let Ok(Value::Object(root)) = json::from_str::<Value>(metadata) else {
        return None;
    };
    match root.get("@private") {
        Some(Value::Object(private)) => match private.get("timeZone") {
            Some(Value::String(zone)) => Some(zone.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// What quiet hours say about a notification due `now` for `uid`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// When they end, if the recipient is in them now.
    pub until: Option<Millis>,
    /// The zone applied.
    pub zone: String,
    /// A line for the operator (a recipient's zone the host does not
    /// know, so the default applied).
    pub note: Option<Log>,
}

/// Quiet hours for `uid` (with `metadata`) at `now`. `offset(zone, at)` is
/// the host's `utc-offset`.
pub fn check(
    settings: &Settings,
    uid: &str,
    metadata: &str,
    now: Millis,
    mut offset: impl FnMut(&str, Millis) -> Option<i32>,
) -> Verdict {
    let (Some(hours), Some(default)) = (settings.quiet_hours, settings.time_zone.as_deref()) else {
        return Verdict::default();
    };
    let mut note = None;
    let zone = match zone_in(metadata) {
        Some(own) if offset(&own, now).is_some() => own,
        Some(own) => {
            note = Some(Log {
                level: Level::Warn,
                line: format!(
                    "{uid:?}'s @private.timeZone {:?} is not a time zone the host knows; their quiet hours use timeZone {default:?}",
                    own.chars().take(64).collect::<String>()
                ),
            });
            default.to_owned()
        }
        None => default.to_owned(),
    };
    let until = end(hours, now, |at| offset(&zone, at));
    Verdict { until, zone, note }
}

/// The settings' `timeZone` is one the host knows.
pub fn check_zone(
    settings: &Settings,
    known: impl FnOnce(&str) -> bool,
) -> Result<(), Vec<Problem>> {
    match settings.time_zone.as_deref() {
        Some(zone) if !known(zone) => Err(vec![Problem {
            field: "timeZone".into(),
            message: format!(
                "{zone:?} is not a time zone the host knows; use an IANA name like America/New_York, Europe/Paris or UTC"
            ),
        }]),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3_600_000;
    /// 2026-03-08 00:00 UTC and 2026-11-01 00:00 UTC.
    const MARCH_8: u64 = 1_772_928_000_000;
    const NOV_1: u64 = 1_793_491_200_000;

    /// America/New_York in 2026: EDT (-4 h) from 2026-03-08 07:00 UTC to
    /// 2026-11-01 06:00 UTC, EST (-5 h) otherwise.
    fn new_york(at: Millis) -> Option<i32> {
        let edt = (MARCH_8 + 7 * H..NOV_1 + 6 * H).contains(&at);
        Some(if edt { -4 * 3600 } else { -5 * 3600 })
    }

    fn hours(start: u32, end: u32) -> QuietHours {
        QuietHours { start, end }
    }

    #[test]
    fn a_window_across_midnight() {
        let q = hours(22 * 60, 8 * 60);
        assert!(inside(q, 23 * 60));
        assert!(inside(q, 0));
        assert!(inside(q, 7 * 60 + 59));
        assert!(!inside(q, 8 * 60));
        assert!(!inside(q, 21 * 60 + 59));
        assert!(inside(q, 22 * 60));
        let day = hours(9 * 60, 17 * 60);
        assert!(inside(day, 12 * 60));
        assert!(!inside(day, 17 * 60));
        assert!(!inside(day, 3 * 60));
    }

    #[test]
    fn outside_the_window_nothing_waits() {
        let q = hours(22 * 60, 8 * 60);
        // 12:00 UTC is 07:00 EST on Jan 1: inside; 14:00 UTC is 09:00: outside.
        let jan1 = 1_767_225_600_000;
        assert_eq!(end(q, jan1 + 14 * H, new_york), None);
        assert_eq!(end(q, jan1 + 12 * H, new_york), Some(jan1 + 13 * H));
        // 23:30 EST, Jan 1 (04:30 UTC Jan 2): until 08:00 EST Jan 2.
        assert_eq!(
            end(q, jan1 + 28 * H + 30 * 60_000, new_york),
            Some(jan1 + 37 * H)
        );
    }

    #[test]
    fn spring_forward_ends_on_the_new_offset() {
        // 22:00-08:00; 2026-03-08 01:00 EST (06:00 UTC) is inside; 08:00
        // that morning is EDT: 12:00 UTC, not 13:00.
        let q = hours(22 * 60, 8 * 60);
        assert_eq!(end(q, MARCH_8 + 6 * H, new_york), Some(MARCH_8 + 12 * H));
    }

    #[test]
    fn an_end_the_clock_skips_ends_at_the_jump() {
        // 23:00-02:30: 02:30 does not exist on 2026-03-08 (02:00 EST jumps
        // to 03:00 EDT at 07:00 UTC): quiet hours end at 07:00 UTC.
        let q = hours(23 * 60, 2 * 60 + 30);
        assert_eq!(end(q, MARCH_8 + 5 * H, new_york), Some(MARCH_8 + 7 * H));
    }

    #[test]
    fn an_end_that_happens_twice_ends_at_the_first() {
        // 22:00-01:30 on 2026-11-01: 01:30 EDT (05:30 UTC) comes before
        // 01:30 EST (06:30 UTC).
        let q = hours(22 * 60, 60 + 30);
        assert_eq!(
            end(q, NOV_1 + 3 * H, new_york),
            Some(NOV_1 + 5 * H + 30 * 60_000)
        );
        // 22:00-08:00 across the fall back: 08:00 EST is 13:00 UTC.
        let q = hours(22 * 60, 8 * 60);
        assert_eq!(end(q, NOV_1 + 3 * H, new_york), Some(NOV_1 + 13 * H));
    }

    #[test]
    fn a_zone_far_from_utc() {
        // Asia/Kolkata, +05:30: 22:00-07:00 local is 16:30-01:30 UTC.
        let kolkata = |_| Some(5 * 3600 + 1800);
        let q = hours(22 * 60, 7 * 60);
        let jan1 = 1_767_225_600_000;
        assert_eq!(
            end(q, jan1 + 17 * H, kolkata),
            Some(jan1 + 25 * H + 30 * 60_000)
        );
        assert_eq!(end(q, jan1 + 2 * H, kolkata), None);
    }

    #[test]
    fn the_recipient_zone_is_read_from_metadata() {
        assert_eq!(
            zone_in(r#"{"@private":{"contactNumber":"+1","timeZone":"Asia/Tokyo"}}"#),
            Some("Asia/Tokyo".into())
        );
        assert_eq!(zone_in(r#"{"@private":{"timeZone":7}}"#), None);
        assert_eq!(zone_in("not json"), None);
    }
}
