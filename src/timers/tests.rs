use super::*;

use crate::calendar::Calendars;
use crate::claim::ClaimRow;
use crate::lifecycle::RejectionReason;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn claim(status: &str, f: impl FnOnce(&mut ClaimRow)) -> Claim {
    let mut row = ClaimRow {
        id: "c1".into(),
        status: status.into(),
        country: Some("SE".into()),
        locale: Some("sv-SE".into()),
        partner_name: Some("Nordljus AB".into()),
        partner_email: Some("p@nordljus.example".into()),
        customer_name: Some("Åkerlund".into()),
        customer_email: Some("c@akerlund.example".into()),
        version: 4,
        ..ClaimRow::default()
    };
    f(&mut row);
    Claim::try_from(row).unwrap()
}

const LEAD0: TimerSettings = TimerSettings {
    reminder_lead_business_days: 0,
    max_first_sight_age: chrono::Duration::days(14),
    never_shorten_communicated: true,
};

fn eval_with(c: &Claim, facts: &ClaimFacts, settings: TimerSettings, now: &str) -> Vec<Timer> {
    let cals = Calendars::builtin().unwrap();
    evaluate(
        c,
        cals.for_country(&c.country).unwrap(),
        facts,
        settings,
        t(now),
    )
    .unwrap()
}

fn eval(c: &Claim, now: &str) -> Vec<Timer> {
    eval_with(c, &ClaimFacts::default(), LEAD0, now)
}

fn get(timers: &[Timer], kind: TimerKind) -> &Timer {
    timers.iter().find(|t| t.kind == kind).unwrap()
}

fn plan_at(c: &Claim, facts: &ClaimFacts, now: &str) -> ClaimPlan {
    let cals = Calendars::builtin().unwrap();
    let cal = cals.for_country(&c.country).unwrap();
    let timers = evaluate(c, cal, facts, LEAD0, t(now)).unwrap();
    plan(c, cal, &timers, t(now)).unwrap()
}

fn awaiting_partner() -> Claim {
    // 23 Dec 2026 15:00 in Stockholm: five business days skip Christmas and New Year.
    claim("partner_action_required", |r| {
        r.info_requested_at = Some(t("2026-12-23T14:00:00Z"));
        r.info_request_reason = Some("missing_products".into());
    })
}

#[test]
fn every_timer_is_listed_once_in_spec_order() {
    let timers = eval(&awaiting_partner(), "2026-12-24T00:00:00Z");
    let kinds: Vec<_> = timers.iter().map(|t| t.kind).collect();
    assert_eq!(kinds, TimerKind::ALL);
}

#[test]
fn partner_response_deadline_passes_at_the_end_of_its_last_local_day() {
    let c = awaiting_partner();
    let before = eval(&c, "2027-01-05T22:59:59Z");
    let d = get(&before, TimerKind::PartnerResponseDeadline);
    assert_eq!(d.state, TimerState::Pending);
    assert_eq!(d.due, Some(t("2027-01-05T23:00:00Z")));
    let info = d.deadline.as_ref().unwrap();
    assert_eq!(info.last_day.to_string(), "2027-01-05");
    assert_eq!((info.counting, info.days), ("business", 5));
    let at = eval(&c, "2027-01-05T23:00:00Z");
    assert_eq!(
        get(&at, TimerKind::PartnerResponseDeadline).state,
        TimerState::Due
    );
}

#[test]
fn reminder_is_due_at_the_start_of_the_last_day_or_lead_days_before() {
    let c = awaiting_partner();
    let timers = eval(&c, "2026-12-24T00:00:00Z");
    assert_eq!(
        get(&timers, TimerKind::PartnerResponseReminder).due,
        Some(t("2027-01-04T23:00:00Z"))
    );
    let lead1 = TimerSettings {
        reminder_lead_business_days: 1,
        max_first_sight_age: chrono::Duration::days(14),
        never_shorten_communicated: true,
    };
    let timers = eval_with(&c, &ClaimFacts::default(), lead1, "2026-12-24T00:00:00Z");
    // One business day earlier: Monday 4 January (Epiphany is the 6th).
    assert_eq!(
        get(&timers, TimerKind::PartnerResponseReminder).due,
        Some(t("2027-01-03T23:00:00Z"))
    );
}

#[test]
fn reminder_is_sent_on_the_last_day_with_the_deadline_named() {
    let p = plan_at(
        &awaiting_partner(),
        &ClaimFacts::default(),
        "2027-01-05T08:00:00Z",
    );
    assert_eq!(p.effects.len(), 1);
    let e = &p.effects[0];
    assert_eq!(
        (e.timer, &e.outcome),
        (TimerKind::PartnerResponseReminder, &Outcome::Fired)
    );
    let m = &e.emails[0];
    assert_eq!(m.kind, EmailKind::PartnerResponseReminder);
    assert_eq!(m.to.address, "p@nordljus.example");
    assert_eq!(m.last_day.unwrap().to_string(), "2027-01-05");
    assert_eq!(e.history.action, "reminder_sent");
}

#[test]
fn after_downtime_the_late_reminder_is_skipped_and_the_claim_rejected() {
    let p = plan_at(
        &awaiting_partner(),
        &ClaimFacts::default(),
        "2027-01-07T09:00:00Z",
    );
    let kinds: Vec<_> = p
        .effects
        .iter()
        .map(|e| (e.timer, e.outcome.clone()))
        .collect();
    assert_eq!(kinds[0].0, TimerKind::PartnerResponseReminder);
    assert!(matches!(kinds[0].1, Outcome::Skipped(_)));
    assert!(p.effects[0].emails.is_empty());
    let reject = &p.effects[1];
    assert_eq!(reject.timer, TimerKind::PartnerResponseDeadline);
    let sc = reject.status_change.as_ref().unwrap();
    assert_eq!(sc.to, ClaimStatus::Rejected);
    assert_eq!(
        sc.rejection_reason,
        Some(RejectionReason::NoPartnerResponse)
    );
    assert_eq!(reject.emails[0].kind, EmailKind::ClaimRejected);
    assert_eq!(
        reject.settles,
        vec![(TimerKind::RejectionNotice, t("2027-01-07T09:00:00Z"))]
    );
    assert_eq!(reject.history.details["calendar"]["id"], "SE");
    assert_eq!(reject.history.details["reason"], "no_partner_response");
    // 30 calendar days from 7 January to dispute.
    assert_eq!(reject.emails[0].last_day.unwrap().to_string(), "2027-02-06");
}

#[test]
fn a_resubmission_just_before_the_deadline_leaves_nothing_due() {
    let c = claim("submitted", |r| {
        r.info_requested_at = Some(t("2026-12-23T14:00:00Z"));
        r.submitted_at = Some(t("2027-01-05T22:59:59Z"));
    });
    let p = plan_at(&c, &ClaimFacts::default(), "2027-01-05T23:00:00Z");
    assert!(p.effects.is_empty());
}

#[test]
fn fired_timers_do_not_fire_again() {
    let c = awaiting_partner();
    let facts = ClaimFacts {
        fired: vec![FiredTimer {
            kind: TimerKind::PartnerResponseReminder,
            start: t("2026-12-23T14:00:00Z"),
            at: t("2027-01-05T08:00:00Z"),
            outcome: "fired".into(),
        }],
        consent_sent: vec![],
        consent_dead: vec![],
        communicated: vec![],
        timeline: vec![],
    };
    assert!(
        plan_at(&c, &facts, "2027-01-05T09:00:00Z")
            .effects
            .is_empty()
    );
}

#[test]
fn consent_flow_notifies_then_closes_seven_calendar_days_after_sending() {
    let c = claim("approved", |r| {
        r.approved_at = Some(t("2026-06-18T10:00:00Z"))
    });
    let p = plan_at(&c, &ClaimFacts::default(), "2026-06-18T10:00:30Z");
    assert_eq!(p.effects.len(), 1);
    let m = &p.effects[0].emails[0];
    assert_eq!(
        (m.kind, m.to.address.as_str()),
        (EmailKind::ConsentRequest, "c@akerlund.example")
    );
    assert_eq!(m.last_day.unwrap().to_string(), "2026-06-25");
    assert_eq!(m.window_end, Some(t("2026-06-25T22:00:00Z")));

    let sent = ClaimFacts {
        fired: vec![FiredTimer {
            kind: TimerKind::ConsentNotification,
            start: t("2026-06-18T10:00:00Z"),
            at: t("2026-06-18T10:00:30Z"),
            outcome: "fired".into(),
        }],
        consent_sent: vec![(t("2026-06-18T10:00:00Z"), t("2026-06-18T10:00:31Z"))],
        consent_dead: vec![],
        communicated: vec![],
        timeline: vec![],
    };
    let p = plan_at(&c, &sent, "2026-06-18T10:01:00Z");
    assert_eq!(p.effects.len(), 1);
    assert_eq!(
        p.effects[0].emails[0].kind,
        EmailKind::PartnerApprovalNotice
    );
    assert_eq!(
        p.effects[0].emails[0].last_day.unwrap().to_string(),
        "2026-06-25"
    );

    let timers = eval_with(&c, &sent, LEAD0, "2026-06-25T21:59:59Z");
    let close = get(&timers, TimerKind::ConsentWindowClose);
    assert_eq!(close.state, TimerState::Pending);
    assert_eq!(
        close.due,
        Some(t("2026-06-25T22:00:00Z")),
        "Midsummer does not matter"
    );
    let p = plan_at(&c, &sent, "2026-06-25T22:00:00Z");
    let close = p
        .effects
        .iter()
        .find(|e| e.timer == TimerKind::ConsentWindowClose)
        .unwrap();
    assert!(close.incentive);
    assert_eq!(
        close.emails[0].kind,
        EmailKind::ForwardedToIncentiveEvaluation
    );
}

#[test]
fn a_customer_decline_rejects_and_stops_the_consent_timers() {
    let c = claim("approved", |r| {
        r.approved_at = Some(t("2026-06-18T10:00:00Z"));
        r.customer_declined_at = Some(t("2026-06-20T10:00:00Z"));
    });
    let timers = eval(&c, "2026-06-20T10:01:00Z");
    for k in [
        TimerKind::ConsentNotification,
        TimerKind::ConsentWindowClose,
    ] {
        assert!(matches!(
            get(&timers, k).state,
            TimerState::NotApplicable { .. }
        ));
    }
    let p = plan_at(&c, &ClaimFacts::default(), "2026-06-20T10:01:00Z");
    assert_eq!(p.effects.len(), 1);
    let sc = p.effects[0].status_change.as_ref().unwrap();
    assert_eq!(sc.rejection_reason, Some(RejectionReason::CustomerDeclined));
}

#[test]
fn rejection_notice_names_the_last_day_to_dispute_or_is_skipped_when_too_late() {
    let c = claim("rejected", |r| {
        r.rejected_at = Some(t("2026-03-02T09:00:00Z"));
        r.rejection_reason = Some("insufficient_poe".into());
    });
    let p = plan_at(&c, &ClaimFacts::default(), "2026-03-02T09:01:00Z");
    let m = &p.effects[0].emails[0];
    assert_eq!(m.rejection_reason, Some(RejectionReason::InsufficientPoe));
    assert_eq!(m.last_day.unwrap().to_string(), "2026-04-01");
    let late = plan_at(&c, &ClaimFacts::default(), "2026-04-10T00:00:00Z");
    let notice = late
        .effects
        .iter()
        .find(|e| e.timer == TimerKind::RejectionNotice)
        .unwrap();
    assert!(matches!(notice.outcome, Outcome::Skipped(_)) && notice.emails.is_empty());
    assert!(
        late.effects
            .iter()
            .any(|e| e.history.action == "dispute_window_closed")
    );
}

#[test]
fn sla_timers_raise_alerts() {
    let c = claim("rejected", |r| {
        r.rejected_at = Some(t("2026-03-02T09:00:00Z"));
        r.dispute_opened_at = Some(t("2026-03-03T09:00:00Z"));
    });
    let timers = eval(&c, "2026-03-11T00:00:00Z");
    assert_eq!(
        get(&timers, TimerKind::DisputeReviewSla).state,
        TimerState::Due
    );
    assert!(matches!(
        get(&timers, TimerKind::DisputeWindowClose).state,
        TimerState::NotApplicable { .. }
    ));
    let p = plan_at(&c, &ClaimFacts::default(), "2026-03-11T00:00:00Z");
    assert!(
        p.effects
            .iter()
            .any(|e| e.sla_alert && e.timer == TimerKind::DisputeReviewSla)
    );
}

#[test]
fn a_missing_timestamp_the_status_needs_is_an_error() {
    let c = claim("under_review", |_| {});
    let cals = Calendars::builtin().unwrap();
    let err = evaluate(
        &c,
        cals.for_country("SE").unwrap(),
        &ClaimFacts::default(),
        LEAD0,
        t("2026-01-01T00:00:00Z"),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "status `under_review` needs `review_started_at`, which is empty"
    );
}

#[test]
fn an_event_more_than_the_tolerance_after_now_is_a_future_timestamp() {
    let cals = Calendars::builtin().unwrap();
    let cal = cals.for_country("SE").unwrap();
    let run = |status: &str, f: fn(&mut ClaimRow), now: &str| {
        evaluate(
            &claim(status, f),
            cal,
            &ClaimFacts::default(),
            LEAD0,
            t(now),
        )
    };
    // Exactly the tolerance ahead is accepted (clock skew); one second more is not.
    let at_edge = run(
        "rejected",
        |r| r.rejected_at = Some(t("2026-03-03T10:00:00Z")),
        "2026-03-02T10:00:00Z",
    );
    assert!(at_edge.is_ok(), "{at_edge:?}");
    type Edit = fn(&mut ClaimRow);
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "rejected",
            |r| r.rejected_at = Some(t("2026-03-03T10:00:01Z")),
            "rejected_at",
        ),
        (
            "submitted",
            |r| r.submitted_at = Some(t("2026-04-01T00:00:00Z")),
            "submitted_at",
        ),
        (
            "under_review",
            |r| r.review_started_at = Some(t("2026-04-01T00:00:00Z")),
            "review_started_at",
        ),
        (
            "partner_action_required",
            |r| r.info_requested_at = Some(t("2026-04-01T00:00:00Z")),
            "info_requested_at",
        ),
        (
            "approved",
            |r| r.approved_at = Some(t("2026-04-01T00:00:00Z")),
            "approved_at",
        ),
        (
            "approved",
            |r| {
                r.approved_at = Some(t("2026-03-01T00:00:00Z"));
                r.customer_declined_at = Some(t("2026-04-01T00:00:00Z"));
            },
            "customer_declined_at",
        ),
        (
            "rejected",
            |r| {
                r.rejected_at = Some(t("2026-03-01T00:00:00Z"));
                r.dispute_opened_at = Some(t("2026-04-01T00:00:00Z"));
            },
            "dispute_opened_at",
        ),
    ];
    for (status, f, column) in cases {
        let err = run(status, f, "2026-03-02T10:00:00Z").unwrap_err();
        assert!(
            matches!(err, TimerError::FutureTimestamp { column: c, .. } if c == column),
            "{status}/{column}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("timestamp `{column}`")) && msg.contains("is in the future"),
            "{msg}"
        );
    }
}

/// The store reads the status timeline only of claims in a status the decision SLA runs in:
/// every other status evaluates the same without it, and the timeline does matter where it
/// runs (so this test would notice a timer that starts reading it elsewhere).
#[test]
fn only_statuses_the_decision_sla_runs_in_read_the_timeline() {
    use crate::lifecycle::ClaimStatus as S;
    let seen = |at: &str, old: Option<S>, new: S| StatusSeen {
        at: t(at),
        old,
        new: Some(new),
    };
    let with = ClaimFacts {
        timeline: vec![
            seen("2026-11-02T09:00:00Z", Some(S::Draft), S::Submitted),
            seen("2026-11-03T09:00:00Z", Some(S::Submitted), S::UnderReview),
            seen(
                "2026-11-04T09:00:00Z",
                Some(S::UnderReview),
                S::PartnerActionRequired,
            ),
            seen(
                "2026-11-10T09:00:00Z",
                Some(S::PartnerActionRequired),
                S::Submitted,
            ),
        ],
        ..ClaimFacts::default()
    };
    let now = "2026-11-25T12:00:00Z";
    for status in S::ALL {
        let c = claim(status.as_str(), |r| {
            r.submitted_at = Some(t("2026-11-16T09:00:00Z"));
            r.review_started_at = Some(t("2026-11-17T09:00:00Z"));
            r.info_requested_at = Some(t("2026-11-18T09:00:00Z"));
            r.approved_at = Some(t("2026-11-19T09:00:00Z"));
            r.rejected_at = Some(t("2026-11-19T09:00:00Z"));
            r.rejection_reason = Some("insufficient_poe".into());
            r.dispute_opened_at = Some(t("2026-11-20T09:00:00Z"));
        });
        let without = eval_with(&c, &ClaimFacts::default(), LEAD0, now);
        let read = eval_with(&c, &with, LEAD0, now);
        if decision_sla_runs_in(*status) {
            assert_ne!(read, without, "{status}: the timeline changes nothing");
        } else {
            assert_eq!(read, without, "{status} reads the timeline");
        }
    }
}
