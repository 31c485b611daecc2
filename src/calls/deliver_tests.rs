use super::*;
use crate::calls::notify::tests::{after, message, settings, timer};
use crate::policy::limits::DAY_MS;

fn bob(presence: Presence) -> User {
    User {
        uid: "bob".into(),
        name: "Bob".into(),
        presence,
        metadata: r#"{"@private":{"contactNumber":"+12025550123"}}"#.into(),
    }
}

/// The records around one due check, with defaults for everything.
struct World {
    now: Millis,
    settings: Settings,
    revision: u64,
    conversation: Conversation,
    user: Option<User>,
    alice: User,
    history: Stored<History>,
    suppression: Stored<Suppression>,
    pause: Stored<Pause>,
    quiet_until: Option<Millis>,
}

impl World {
    fn new() -> Self {
        Self {
            now: 60_000,
            settings: settings(),
            revision: 1,
            conversation: after(&[message("m1", 0)]),
            user: Some(bob(Presence::Offline)),
            alice: User {
                uid: "alice".into(),
                name: "Alice".into(),
                presence: Presence::Online,
                metadata: "{}".into(),
            },
            history: None,
            suppression: None,
            pause: None,
            quiet_until: None,
        }
    }

    fn check(&self) -> Check<'_> {
        Check {
            now: self.now,
            settings: Ok(&self.settings),
            revision: self.revision,
            conversation: &self.conversation,
            recipient: self.user.as_ref(),
            sender: Some(&self.alice),
            recipient_history: &self.history,
            suppression: &self.suppression,
            pause: &self.pause,
            quiet_until: self.quiet_until,
        }
    }

    fn due(&self) -> Delivery {
        on_timer(&timer(), &self.check())
    }

    fn answer(&self, response: Response) -> Decision {
        on_response(
            &timer(),
            &self.check(),
            &self.settings,
            "+12025550123",
            &response,
        )
    }

    /// Applies a step's puts to the world's records.
    fn apply(&mut self, changes: &[Change]) {
        for change in changes {
            match change {
                Change::Put { key, value } if key.starts_with("conversation/") => {
                    self.conversation = Conversation::decode(value).unwrap();
                }
                Change::Put { key, value } if key.starts_with("sent-to/") => {
                    self.history = Some(History::decode(value));
                }
                Change::Put { key, value } if key.starts_with("suppressed/") => {
                    self.suppression = Some(Suppression::decode(value));
                }
                Change::Put { key, value } if key == "paused" => {
                    self.pause = Some(Pause::decode(value));
                }
                Change::Delete { key } if key == "paused" => self.pause = None,
                _ => {}
            }
        }
    }

    fn bob(&self) -> &crate::state::conversation::Participant {
        &self.conversation.participants[self.conversation.index_of("bob").unwrap()]
    }
}

fn skipped(delivery: &Delivery) -> Option<SkipReason> {
    match delivery {
        Delivery::Done(step) => match step.result() {
            Ok(Outcome::Skipped(reason)) => Some(*reason),
            _ => None,
        },
        _ => None,
    }
}

fn http(status: u16, body: &str) -> Response {
    Response::Http {
        status,
        body: body.as_bytes().to_vec(),
        retry_after: None,
    }
}

const SID: &str = "SM0123456789abcdef0123456789abcdef";

fn created() -> Response {
    http(201, &format!(r#"{{"sid":"{SID}","status":"queued"}}"#))
}

fn logs(step: &Decision) -> Vec<&str> {
    step.logs.iter().map(|l| l.line.as_str()).collect()
}

#[test]
fn sends_only_to_an_offline_recipient_with_a_number() {
    let mut w = World::new();
    w.user = Some(bob(Presence::Online));
    assert_eq!(skipped(&w.due()), Some(SkipReason::RecipientOnline));
    let mut no_number = bob(Presence::Offline);
    no_number.metadata = "{}".into();
    w.user = Some(no_number);
    assert_eq!(skipped(&w.due()), Some(SkipReason::NoContactNumber));
    w.user = None;
    assert_eq!(skipped(&w.due()), Some(SkipReason::UnknownRecipient));
    w.user = Some(bob(Presence::Offline));
    let Delivery::Send {
        before,
        request,
        to,
    } = w.due()
    else {
        panic!("expected a send");
    };
    assert_eq!(to, "+12025550123");
    assert!(
        request
            .body
            .contains("Body=1+new+message+from+Alice%3A+text+m1"),
        "{}",
        request.body
    );
    // The attempt is recorded as in flight, and counted for the limits,
    // before the request leaves.
    w.apply(&before);
    assert_eq!(w.bob().in_flight, 1);
    assert_eq!(w.bob().attempts, 1);
    assert_eq!(w.bob().sent, [60_000]);
    assert!(matches!(&w.history, Some(Ok(h)) if h.sent == [60_000]));
    // An answer that says Twilio did not take it releases the count.
    let refused = World::new().answer(http(503, ""));
    assert!(refused.changes.contains(&Change::Delete {
        key: keys::recipient_history("bob")
    }));
}

#[test]
fn early_timer_waits() {
    let mut w = World::new();
    w.now = 59_999;
    let Delivery::Done(step) = w.due() else {
        panic!("must not send early")
    };
    assert!(step.changes.contains(&Change::SetTimer {
        key: timer().key(),
        due_at: 60_000
    }));
}

#[test]
fn a_cooldown_defers_to_its_end() {
    let mut w = World::new();
    let bob = w.conversation.index_of("bob").unwrap();
    w.conversation.participants[bob].sent = vec![10_000];
    let ends = 10_000 + w.settings.cooldown_ms();
    let Delivery::Done(step) = w.due() else {
        panic!("must wait for the cooldown")
    };
    assert!(matches!(
        step.result(),
        Ok(Outcome::Deferred(p, DeferReason::Cooldown)) if p.due_at == ends
    ));
    w.apply(&step.changes);
    w.now = ends;
    assert!(matches!(w.due(), Delivery::Send { .. }));
}

#[test]
fn quiet_hours_defer_to_their_end_then_everything_is_checked_again() {
    let mut w = World::new();
    let ends = w.now + 3_600_000;
    w.quiet_until = Some(ends);
    let Delivery::Done(step) = w.due() else {
        panic!("must wait for the quiet hours' end")
    };
    assert!(matches!(
        step.result(),
        Ok(Outcome::Deferred(p, DeferReason::QuietHours)) if p.due_at == ends
    ));
    assert!(step.changes.contains(&Change::SetTimer {
        key: timer().key(),
        due_at: ends
    }));
    w.apply(&step.changes);
    w.now = ends;
    w.quiet_until = None;
    // Online by then: no SMS.
    w.user = Some(bob(Presence::Online));
    let Delivery::Done(step) = w.due() else {
        panic!("online: nothing to send")
    };
    assert_eq!(
        step.result(),
        &Ok(Outcome::Skipped(SkipReason::RecipientOnline))
    );
}

#[test]
fn daily_limits_drop_with_a_reason() {
    let mut w = World::new();
    w.settings.cooldown_minutes = 0;
    let bob = w.conversation.index_of("bob").unwrap();
    w.conversation.participants[bob].sent = vec![1, 2];
    let delivery = w.due();
    assert_eq!(skipped(&delivery), Some(SkipReason::ConversationDailyLimit));
    let Delivery::Done(step) = delivery else {
        unreachable!()
    };
    assert!(logs(&step).iter().any(|l| l.contains("limit is 2")));
    w.now = DAY_MS + 2;
    assert!(matches!(w.due(), Delivery::Send { .. }));
    w.now = 60_000;
    w.settings.conversation_sms_per_day = 100;
    w.settings.recipient_sms_per_day = 2;
    w.history = Some(Ok(History {
        sent: vec![1, 2],
        sends: vec![],
    }));
    assert_eq!(skipped(&w.due()), Some(SkipReason::RecipientDailyLimit));
}

#[test]
fn success_records_both_histories_and_never_logs_the_number() {
    let mut w = World::new();
    let step = w.answer(created());
    assert!(
        matches!(step.result(), Ok(Outcome::Sent { sid, status, unread: 1, .. }) if sid == SID && status == "queued")
    );
    assert!(
        step.changes.contains(&Change::Put {
            key: keys::recipient_history("bob"),
            value: History {
                sent: vec![60_000],
                // Kept for its delivery reports.
                sends: vec![crate::state::history::Send {
                    sid: SID.into(),
                    conversation: "c1".into(),
                    to: "+12025550123".into(),
                    at: 60_000,
                    status: "queued".into(),
                    error_code: None,
                }]
            }
            .encode()
        })
    );
    for line in logs(&step) {
        assert!(!line.contains("+12025550123"), "{line}");
    }
    w.apply(&step.changes);
    assert_eq!(w.bob().sent, [60_000]);
    assert_eq!(w.bob().due_at, None);
    assert_eq!(w.conversation.unread(1), 0);
    assert_eq!(
        skipped(&w.due()),
        Some(SkipReason::NothingPending),
        "a timer that fires twice finds nothing pending"
    );
}

#[test]
fn retryable_failures_back_off_until_the_last_attempt() {
    let mut w = World::new();
    let step = w.answer(Response::Http {
        status: 429,
        body: br#"{"code":20429,"message":"Too Many Requests"}"#.to_vec(),
        retry_after: Some(600),
    });
    let Ok(Outcome::Retrying {
        attempt, due_at, ..
    }) = step.result()
    else {
        panic!("{:?}", step.result())
    };
    assert_eq!(*attempt, 1);
    assert_eq!(
        *due_at,
        60_000 + 600_000,
        "Retry-After wins over a shorter backoff"
    );
    w.apply(&step.changes);
    assert_eq!((w.bob().in_flight, w.bob().attempts), (0, 1));
    let bob = w.conversation.index_of("bob").unwrap();
    w.conversation.participants[bob].attempts = 4;
    let last = w.answer(http(503, ""));
    assert!(
        matches!(last.result(), Ok(Outcome::Failed { attempts: 5, error, .. }) if error.status == 503)
    );
}

#[test]
fn a_lowered_max_attempts_applies_to_attempts_already_scheduled() {
    let mut w = World::new();
    let bob = w.conversation.index_of("bob").unwrap();
    w.conversation.participants[bob].attempts = 3;
    w.settings.max_attempts = 2;
    let Delivery::Done(step) = w.due() else {
        panic!("no further attempt")
    };
    assert!(
        matches!(step.result(), Ok(Outcome::Failed { attempts: 3, error, .. }) if error.message.contains("maxAttempts is now 2"))
    );
}

#[test]
fn backoff_doubles_with_jitter_and_caps() {
    for attempt in 1..12 {
        let full = (RETRY_BASE_MS << (attempt - 1)).min(RETRY_CAP_MS);
        let got = backoff("k", attempt, None);
        assert!((full / 2..=full).contains(&got), "attempt {attempt}: {got}");
    }
    assert_ne!(
        backoff("a", 3, None),
        backoff("b", 3, None),
        "keys spread out"
    );
    assert_eq!(backoff("k", 1, Some(3_600_000)), 3_600_000);
    assert_eq!(backoff("k", 1, Some(u64::MAX)), twilio::RETRY_AFTER_CAP_MS);
}

#[test]
fn stop_suppresses_that_number_for_good() {
    let mut w = World::new();
    let step = w.answer(http(
        400,
        r#"{"code":21610,"message":"Attempt to send to unsubscribed recipient"}"#,
    ));
    assert!(
        matches!(step.result(), Ok(Outcome::Failed { error, .. }) if error.code == Some(21610))
    );
    w.apply(&step.changes);
    w.conversation = after(&[message("m1", 0)]);
    assert_eq!(skipped(&w.due()), Some(SkipReason::OptedOut));
    let mut moved = bob(Presence::Offline);
    moved.metadata = r#"{"@private":{"contactNumber":"+12025550199"}}"#.into();
    w.user = Some(moved);
    assert!(
        matches!(w.due(), Delivery::Send { .. }),
        "a new number is texted"
    );
    w.user = Some(bob(Presence::Offline));
    assert_eq!(
        skipped(&w.due()),
        Some(SkipReason::OptedOut),
        "changing back does not lift a STOP"
    );
}

#[test]
fn an_unreadable_suppression_fails_closed() {
    let mut w = World::new();
    w.suppression = Some(Err(crate::state::record::Unreadable::Malformed));
    let delivery = w.due();
    assert_eq!(skipped(&delivery), Some(SkipReason::OptedOut));
    let Delivery::Done(step) = delivery else {
        unreachable!()
    };
    assert!(
        step.logs
            .iter()
            .any(|l| l.level == Level::Error && l.line.contains("suppressed/bob"))
    );
}

#[test]
fn an_unreadable_pause_keeps_the_tenant_paused() {
    let mut w = World::new();
    w.pause = Some(Err(crate::state::record::Unreadable::Version(9)));
    let Delivery::Done(step) = w.due() else {
        panic!("nothing is sent")
    };
    assert!(
        matches!(step.result(), Ok(Outcome::Paused { until, .. }) if *until == 60_000 + COOL_OFF_MS)
    );
    w.apply(&step.changes);
    assert!(
        matches!(&w.pause, Some(Ok(p)) if p.hold.is_some()),
        "a readable pause replaced it"
    );
}

#[test]
fn tenant_wide_refusals_pause_until_their_end_or_a_settings_change() {
    for (status, code, setting) in [
        (401, 20003, "twilioAuthToken"),
        (400, 21659, "fromMobileNo"),
        (404, 20404, "twilioAccountSid"),
        (400, 21703, "messagingServiceSid"),
    ] {
        let mut w = World::new();
        let step = w.answer(http(
            status,
            &format!(r#"{{"code":{code},"message":"refused"}}"#),
        ));
        let until = 60_000 + COOL_OFF_MS;
        assert!(
            matches!(step.result(), Ok(Outcome::Paused { until: u, .. }) if *u == until),
            "{code}"
        );
        assert_eq!(step.logs.len(), 1);
        assert!(step.logs[0].line.contains(setting), "{}", step.logs[0].line);
        w.apply(&step.changes);
        assert_eq!(w.bob().attempts, 0, "not the notification's fault");
        assert_eq!(w.bob().due_at, Some(until));
        // A notification due meanwhile waits, without a log line.
        w.now = 120_000;
        let bob = w.conversation.index_of("bob").unwrap();
        w.conversation.participants[bob].due_at = Some(120_000);
        let Delivery::Done(waiting) = w.due() else {
            panic!("nothing is sent while paused")
        };
        assert!(matches!(waiting.result(), Ok(Outcome::Paused { .. })));
        assert!(waiting.logs.is_empty());
        // A settings change lifts it at once.
        w.revision += 1;
        assert!(matches!(w.due(), Delivery::Send { .. }), "{code}");
        w.revision -= 1;
        w.now = until;
        assert!(matches!(w.due(), Delivery::Send { .. }));
        let sent = w.answer(created());
        assert!(
            sent.changes
                .contains(&Change::Delete { key: keys::pause() })
        );
    }
}

#[test]
fn one_code_refusing_two_recipients_in_a_row_pauses() {
    let mut w = World::new();
    let refusal = || http(400, r#"{"code":21999,"message":"something new"}"#);
    let first = w.answer(refusal());
    assert!(matches!(first.result(), Ok(Outcome::Failed { .. })));
    w.apply(&first.changes);
    // The same recipient again: still only that notification.
    w.conversation = after(&[message("m1", 0)]);
    let again = w.answer(refusal());
    assert!(matches!(again.result(), Ok(Outcome::Failed { .. })));
    w.apply(&again.changes);
    // Another recipient, same code: the tenant pauses.
    let mut carol = message("m9", 0);
    carol.conversation = "c1".into();
    carol.receiver = "bob".into();
    let mut other = w.pause.clone().unwrap().unwrap();
    other.last_refusal.as_mut().unwrap().recipient = "carol".into();
    w.pause = Some(Ok(other));
    w.conversation = after(&[message("m1", 0)]);
    let third = w.answer(refusal());
    assert!(
        matches!(third.result(), Ok(Outcome::Paused { .. })),
        "{:?}",
        third.result()
    );
    assert!(third.logs[0].line.contains("two different recipients"));
}

#[test]
fn a_queue_full_refusal_is_retried() {
    let w = World::new();
    let step = w.answer(http(400, r#"{"code":21611,"message":"queue full"}"#));
    assert!(matches!(step.result(), Ok(Outcome::Retrying { .. })));
}

#[test]
fn an_attempt_cut_off_mid_send_is_never_repeated_and_counts_for_the_limits() {
    let mut w = World::new();
    let Delivery::Send { before, .. } = w.due() else {
        panic!("a send")
    };
    w.apply(&before);
    // The call dies; meanwhile Alice writes again.
    let c = crate::calls::notify::on_message(
        Ok(&w.settings),
        &message("m2", 61_000),
        Some(w.conversation.clone()),
        61_000,
    );
    // Its answer speaks of the next notification: m2 alone, due one delay
    // after the attempt's due time at the earliest.
    assert!(
        matches!(c.result(), Ok(Outcome::Scheduled(p)) if p.unread == 1 && p.due_at == 61_000 + w.settings.delay_ms()),
        "{:?}",
        c.result()
    );
    w.apply(&c.changes);
    w.now = 62_000;
    let Delivery::Done(step) = w.due() else {
        panic!("must not send again")
    };
    assert!(
        matches!(step.result(), Ok(Outcome::Failed { attempts: 1, error, .. }) if error.message.contains("cut off"))
    );
    w.apply(&step.changes);
    assert_eq!(w.bob().sent, [60_000], "counted when the attempt began");
    assert!(matches!(&w.history, Some(Ok(h)) if h.sent == [60_000]));
    // m2 arrived after the attempt began: it stays pending on its own.
    assert_eq!(w.conversation.unread(1), 1);
    assert_eq!(w.bob().due_at, Some(62_000 + w.settings.delay_ms()));
    assert!(
        step.changes
            .iter()
            .any(|c| matches!(c, Change::SetTimer { .. }))
    );
}

#[test]
fn no_answer_after_sending_counts_as_maybe_sent() {
    let mut w = World::new();
    for response in [
        Response::Transport(twilio::Transport::NoAnswer("no answer in time".into())),
        http(201, "<html>"),
    ] {
        w.history = None;
        let step = w.answer(response);
        assert!(matches!(step.result(), Ok(Outcome::Failed { .. })));
        assert!(
            step.changes
                .iter()
                .any(|c| matches!(c, Change::Put { key, .. } if key == "sent-to/bob")),
            "counted for the limits"
        );
    }
}

#[test]
fn secrets_and_numbers_twilio_quotes_are_scrubbed() {
    let w = World::new();
    let header = "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjpzM2NyZXQ=";
    let step = w.answer(http(
        400,
        &format!(r#"{{"code":21999,"message":"token s3cret / {header} for +12025550123"}}"#),
    ));
    let Ok(Outcome::Failed { error, .. }) = step.result() else {
        panic!()
    };
    assert!(!error.message.contains("s3cret"), "{}", error.message);
    assert!(!error.message.contains("QUMw"), "{}", error.message);
    assert!(!error.message.contains("+12025550123"), "{}", error.message);
    for line in logs(&step) {
        assert!(
            !line.contains("s3cret") && !line.contains("+12025550123"),
            "{line}"
        );
    }
    // And in a stored pause.
    let step = w.answer(http(
        401,
        r#"{"code":20003,"message":"Authenticate s3cret"}"#,
    ));
    for change in &step.changes {
        if let Change::Put { value, .. } = change {
            assert!(!String::from_utf8_lossy(value).contains("s3cret"));
        }
    }
}

#[test]
fn invalid_settings_at_due_time_re_arm_instead_of_stranding() {
    let w = World::new();
    let problems = [Problem {
        field: "twilioAccountSid".into(),
        message: "required".into(),
    }];
    let check = Check {
        settings: Err(&problems),
        ..w.check()
    };
    let Delivery::Done(step) = on_timer(&timer(), &check) else {
        panic!()
    };
    assert!(matches!(step.result(), Err(Error::InvalidSettings(_))));
    assert!(step.changes.contains(&Change::SetTimer {
        key: timer().key(),
        due_at: 60_000 + INVALID_SETTINGS_RETRY_MS
    }));
}

#[test]
fn a_settings_change_fires_notifications_waiting_for_the_pause_at_once() {
    let mut w = World::new();
    let step = w.answer(http(400, r#"{"code":21659,"message":"not your number"}"#));
    w.apply(&step.changes);
    let Some(Ok(pause)) = &w.pause else {
        panic!("paused")
    };
    assert_eq!(pause.hold.as_ref().unwrap().waiting, [timer().key()]);
    // The settings change; the driver lifts the pause and re-arms the timer.
    w.revision += 1;
    let lift = crate::state::pause::on_new_revision(pause, w.revision, 61_000).unwrap();
    assert!(lift.changes.contains(&Change::SetTimer {
        key: timer().key(),
        due_at: 61_000
    }));
    w.apply(&lift.changes);
    w.now = 61_000;
    assert!(
        matches!(w.due(), Delivery::Send { .. }),
        "fired before the pause's end, and sent"
    );
}
