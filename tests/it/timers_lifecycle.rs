//! Claims walked through the SPEC lifecycle with passes at chosen instants, on both backends.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use cpor_worker::calendar::Calendars;
use cpor_worker::claim::ClaimRow;
use cpor_worker::lifecycle::{ClaimStatus, RejectionReason};
use cpor_worker::store::{AnyStore, DeliveryResult, Outbox, Store};
use cpor_worker::timers::{EmailKind, TimerKind, TimerSettings};
use cpor_worker::worker::{Acted, Engine, TickOutcome};

use crate::harness;

backend_tests!(
    partner_silence_is_rejected_exactly_at_the_deadline,
    a_resubmission_one_second_before_the_deadline_is_left_alone,
    the_reminder_is_sent_once_at_the_start_of_the_last_day,
    consent_flow_forwards_to_incentive_evaluation_exactly_once,
    a_customer_decline_rejects_with_one_email,
    a_reviewer_rejection_gets_one_notice_and_the_dispute_window_closes,
    sla_breaches_are_raised_once,
    holidays_and_dst_inside_the_window_are_counted,
    a_claim_changed_after_its_timers_were_computed_is_left_alone,
    bad_claims_are_reported_and_the_rest_proceed,
);

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn engine() -> Engine {
    Engine {
        calendars: Arc::new(Calendars::builtin().unwrap()),
        settings: TimerSettings {
            reminder_lead_business_days: 0,
            max_first_sight_age: chrono::Duration::days(14),
            never_shorten_communicated: true,
        },
        batch_size: 3,
        template_version: None,
        stop: tokio_util::sync::CancellationToken::new(),
    }
}

fn claim(id: &str, status: &str, updated: &str, f: impl FnOnce(&mut ClaimRow)) -> ClaimRow {
    let mut row = ClaimRow {
        id: id.into(),
        status: status.into(),
        partner_name: Some("Nordljus Konsult AB".into()),
        partner_email: Some("claims@nordljus.example".into()),
        customer_name: Some("Åkerlund & Söner AB".into()),
        customer_email: Some("it@akerlund.example".into()),
        products: Some("Dynamics 365 Sales".into()),
        country: Some("SE".into()),
        locale: Some("sv-SE".into()),
        info_request_reason: Some("missing_products".into()),
        rejection_reason: Some("insufficient_poe".into()),
        updated_at: Some(t(updated)),
        version: 1,
        ..ClaimRow::default()
    };
    f(&mut row);
    row
}

async fn tick(store: &AnyStore, at: &str) -> TickOutcome {
    engine().tick(store, t(at)).await.expect("tick")
}

async fn status(store: &AnyStore, id: &str) -> ClaimStatus {
    store.claim(id).await.unwrap().status
}

async fn actions(store: &AnyStore, id: &str) -> Vec<String> {
    store
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.action)
        .collect()
}

async fn emails(store: &AnyStore, id: &str) -> Vec<String> {
    store
        .claim_emails(id)
        .await
        .unwrap()
        .into_iter()
        .map(|(e, _)| e.email.to_string())
        .collect()
}

/// Marks every pending outbox email delivered at `at`, as the sender would.
async fn deliver_all(store: &AnyStore, at: &str) {
    let now = t(at);
    for e in store
        .take_emails(now, now + Duration::minutes(5), 1000)
        .await
        .unwrap()
    {
        store
            .record_delivery(e.id, &DeliveryResult::Sent, now)
            .await
            .unwrap();
    }
}

fn fired_total(o: &TickOutcome) -> usize {
    o.fired.values().sum()
}

async fn partner_silence_is_rejected_exactly_at_the_deadline(store: AnyStore) {
    store.migrate().await.unwrap();
    // 23 Dec 2026 15:00 Stockholm: last day to respond is Tue 5 Jan 2027 (holidays skipped).
    store
        .put_claim_row(&claim(
            "c1",
            "partner_action_required",
            "2026-12-23T14:00:00Z",
            |r| {
                r.info_requested_at = Some(t("2026-12-23T14:00:00Z"));
                r.info_request_reason = Some("missing_products".into());
            },
        ))
        .await
        .unwrap();
    tick(&store, "2026-12-23T14:05:00Z").await;
    let before = tick(&store, "2027-01-05T22:59:59Z").await;
    assert_eq!(
        status(&store, "c1").await,
        ClaimStatus::PartnerActionRequired
    );
    assert_eq!(
        before
            .fired
            .get(&Acted::fired(TimerKind::PartnerResponseReminder)),
        Some(&1)
    );
    let at = tick(&store, "2027-01-05T23:00:00Z").await;
    assert_eq!(
        at.fired
            .get(&Acted::fired(TimerKind::PartnerResponseDeadline)),
        Some(&1)
    );
    let c = store.claim("c1").await.unwrap();
    assert_eq!(c.status, ClaimStatus::Rejected);
    assert_eq!(c.rejection_reason, Some(RejectionReason::NoPartnerResponse));
    assert_eq!(c.rejected_at, Some(t("2027-01-05T23:00:00Z")));
    assert_eq!(c.version, 2);
    assert_eq!(
        actions(&store, "c1").await,
        ["reminder_sent", "auto_rejected"]
    );
    assert_eq!(
        emails(&store, "c1").await,
        ["partner_response_reminder", "claim_rejected"]
    );
    let history = store.history("c1").await.unwrap();
    assert_eq!(history[1].details["timer"], "partner_response_deadline");
    assert_eq!(history[1].details["calendar"]["id"], "SE");
    assert_eq!(history[1].details["deadline"]["last_day"], "2027-01-05");
    // The same instant again, and later: nothing more (the rejection notice went with it).
    for at in ["2027-01-05T23:00:00Z", "2027-01-06T12:00:00Z"] {
        let again = tick(&store, at).await;
        assert_eq!(fired_total(&again), 0, "{again:?}");
    }
    assert_eq!(emails(&store, "c1").await.len(), 2);
}

async fn a_resubmission_one_second_before_the_deadline_is_left_alone(store: AnyStore) {
    store.migrate().await.unwrap();
    let row = claim(
        "c1",
        "partner_action_required",
        "2026-12-23T14:00:00Z",
        |r| {
            r.info_requested_at = Some(t("2026-12-23T14:00:00Z"));
        },
    );
    store.put_claim_row(&row).await.unwrap();
    tick(&store, "2026-12-23T14:05:00Z").await;
    let mut resubmitted = row.clone();
    resubmitted.status = "submitted".into();
    resubmitted.submitted_at = Some(t("2027-01-05T22:59:59Z"));
    resubmitted.updated_at = Some(t("2027-01-05T22:59:59Z"));
    resubmitted.version = 2;
    store.put_claim_row(&resubmitted).await.unwrap();
    let o = tick(&store, "2027-01-05T23:00:00Z").await;
    assert_eq!(fired_total(&o), 0, "{o:?}");
    assert_eq!(status(&store, "c1").await, ClaimStatus::Submitted);
    assert!(actions(&store, "c1").await.is_empty());
}

async fn the_reminder_is_sent_once_at_the_start_of_the_last_day(store: AnyStore) {
    store.migrate().await.unwrap();
    store
        .put_claim_row(&claim(
            "c1",
            "partner_action_required",
            "2026-12-23T14:00:00Z",
            |r| {
                r.info_requested_at = Some(t("2026-12-23T14:00:00Z"));
            },
        ))
        .await
        .unwrap();
    // Midnight starting 5 Jan in Stockholm is 4 Jan 23:00 UTC.
    assert_eq!(fired_total(&tick(&store, "2027-01-04T22:59:59Z").await), 0);
    let o = tick(&store, "2027-01-04T23:00:00Z").await;
    assert_eq!(
        o.fired
            .get(&Acted::fired(TimerKind::PartnerResponseReminder)),
        Some(&1)
    );
    assert_eq!(fired_total(&tick(&store, "2027-01-05T08:00:00Z").await), 0);
    assert_eq!(emails(&store, "c1").await, ["partner_response_reminder"]);
}

async fn consent_flow_forwards_to_incentive_evaluation_exactly_once(store: AnyStore) {
    store.migrate().await.unwrap();
    store
        .put_claim_row(&claim("c1", "approved", "2026-06-18T10:00:00Z", |r| {
            r.approved_at = Some(t("2026-06-18T10:00:00Z"));
        }))
        .await
        .unwrap();
    let o = tick(&store, "2026-06-18T10:00:30Z").await;
    assert_eq!(
        o.fired.get(&Acted::fired(TimerKind::ConsentNotification)),
        Some(&1)
    );
    assert_eq!(emails(&store, "c1").await, ["consent_request"]);
    // Not delivered yet: the window has not started, nothing else happens.
    assert_eq!(fired_total(&tick(&store, "2026-06-30T00:00:00Z").await), 0);
    deliver_all(&store, "2026-06-30T10:00:00Z").await;
    let o = tick(&store, "2026-06-30T10:00:01Z").await;
    assert_eq!(
        o.fired.get(&Acted::fired(TimerKind::PartnerApprovalNotice)),
        Some(&1),
        "{o:?}"
    );
    // Seven calendar days from 30 June: last day 7 July, ends at midnight Stockholm time.
    assert_eq!(fired_total(&tick(&store, "2026-07-07T21:59:59Z").await), 0);
    assert_eq!(harness::incentive_request(&store, "c1").await, None);
    let o = tick(&store, "2026-07-07T22:00:00Z").await;
    assert_eq!(
        o.fired.get(&Acted::fired(TimerKind::ConsentWindowClose)),
        Some(&1)
    );
    assert_eq!(
        harness::incentive_request(&store, "c1").await,
        Some(t("2026-07-07T22:00:00Z"))
    );
    assert_eq!(fired_total(&tick(&store, "2026-07-08T22:00:00Z").await), 0);
    assert_eq!(
        emails(&store, "c1").await,
        [
            "consent_request",
            "partner_approval_notice",
            "forwarded_to_incentive_evaluation"
        ]
    );
    assert_eq!(status(&store, "c1").await, ClaimStatus::Approved);
}

async fn a_customer_decline_rejects_with_one_email(store: AnyStore) {
    store.migrate().await.unwrap();
    let row = claim("c1", "approved", "2026-06-18T10:00:00Z", |r| {
        r.approved_at = Some(t("2026-06-18T10:00:00Z"));
    });
    store.put_claim_row(&row).await.unwrap();
    tick(&store, "2026-06-18T10:00:30Z").await;
    deliver_all(&store, "2026-06-18T10:00:31Z").await;
    tick(&store, "2026-06-18T10:01:00Z").await;
    let mut declined = row.clone();
    declined.customer_declined_at = Some(t("2026-06-20T09:00:00Z"));
    declined.updated_at = declined.customer_declined_at;
    declined.version = 2;
    store.put_claim_row(&declined).await.unwrap();
    let o = tick(&store, "2026-06-20T09:01:00Z").await;
    assert_eq!(
        o.fired.get(&Acted::fired(TimerKind::CustomerDecline)),
        Some(&1),
        "{o:?}"
    );
    let c = store.claim("c1").await.unwrap();
    assert_eq!(
        (c.status, c.rejection_reason),
        (
            ClaimStatus::Rejected,
            Some(RejectionReason::CustomerDeclined)
        )
    );
    // The window would have closed on 25 June: nothing is forwarded, no second rejection email.
    assert_eq!(fired_total(&tick(&store, "2026-06-26T00:00:00Z").await), 0);
    assert_eq!(harness::incentive_request(&store, "c1").await, None);
    let sent = emails(&store, "c1").await;
    assert_eq!(
        sent.iter().filter(|e| *e == "claim_rejected").count(),
        1,
        "{sent:?}"
    );
}

async fn a_reviewer_rejection_gets_one_notice_and_the_dispute_window_closes(store: AnyStore) {
    store.migrate().await.unwrap();
    store
        .put_claim_row(&claim("c1", "rejected", "2026-03-02T09:00:00Z", |r| {
            r.rejected_at = Some(t("2026-03-02T09:00:00Z"));
            r.rejection_reason = Some("insufficient_poe".into());
        }))
        .await
        .unwrap();
    let o = tick(&store, "2026-03-02T09:00:10Z").await;
    assert_eq!(
        o.fired.get(&Acted::fired(TimerKind::RejectionNotice)),
        Some(&1)
    );
    assert_eq!(fired_total(&tick(&store, "2026-03-10T00:00:00Z").await), 0);
    // 30 calendar days: last day 1 April, closes at midnight Stockholm (CEST) = 1 April 22:00 UTC.
    assert_eq!(fired_total(&tick(&store, "2026-04-01T21:59:59Z").await), 0);
    let o = tick(&store, "2026-04-01T22:00:00Z").await;
    assert_eq!(
        o.fired.get(&Acted::fired(TimerKind::DisputeWindowClose)),
        Some(&1)
    );
    assert_eq!(
        actions(&store, "c1").await,
        ["rejection_notice_sent", "dispute_window_closed"]
    );
    assert_eq!(emails(&store, "c1").await, ["claim_rejected"]);
}

async fn sla_breaches_are_raised_once(store: AnyStore) {
    store.migrate().await.unwrap();
    store
        .put_claim_row(&claim("s1", "submitted", "2026-03-02T09:00:00Z", |r| {
            r.submitted_at = Some(t("2026-03-02T09:00:00Z"));
        }))
        .await
        .unwrap();
    store
        .put_claim_row(&claim("r1", "under_review", "2026-03-02T09:00:00Z", |r| {
            r.submitted_at = Some(t("2026-02-27T09:00:00Z"));
            r.review_started_at = Some(t("2026-03-02T09:00:00Z"));
        }))
        .await
        .unwrap();
    store
        .put_claim_row(&claim("d1", "rejected", "2026-03-02T09:00:00Z", |r| {
            r.rejected_at = Some(t("2026-02-20T09:00:00Z"));
            r.dispute_opened_at = Some(t("2026-03-02T09:00:00Z"));
        }))
        .await
        .unwrap();
    // Five business days from Mon 2 March: last day Mon 9 March, passes at 9 March 23:00 UTC.
    let o = tick(&store, "2026-03-09T22:59:59Z").await;
    assert!(!o.fired.keys().any(|k| k.timer.is_sla()), "{o:?}");
    let o = tick(&store, "2026-03-09T23:00:00Z").await;
    for k in [
        TimerKind::ReviewStartSla,
        TimerKind::ReviewDecisionSla,
        TimerKind::DisputeReviewSla,
    ] {
        assert_eq!(o.fired.get(&Acted::fired(k)), Some(&1), "{k}: {o:?}");
    }
    assert_eq!(fired_total(&tick(&store, "2026-03-12T00:00:00Z").await), 0);
    assert_eq!(actions(&store, "s1").await, ["sla_breached"]);
    // Each breach goes into exactly one operations digest, however the digests are cut.
    let mut reported = Vec::new();
    for expected in [2, 1, 0] {
        let n = store
            .queue_sla_digest(t("2026-03-12T00:00:00Z"), 2, |alerts| {
                reported.extend(alerts.iter().map(|a| a.claim_id.clone()));
                let a = &alerts[0];
                cpor_worker::store::OutboxEmail {
                    message_id: cpor_worker::store::message_id(
                        &a.claim_id,
                        a.timer,
                        a.start,
                        EmailKind::SlaAlertDigest,
                    ),
                    claim_id: "(operations)".into(),
                    timer: a.timer,
                    start: a.raised_at,
                    email: EmailKind::SlaAlertDigest,
                    to_name: "Ops".into(),
                    to_address: "ops@cpor.example".into(),
                    locale: "en".into(),
                    payload: serde_json::json!({}).into(),
                    not_after: None,
                    announced: None,
                    calendar_version: None,
                    template_version: None,
                }
            })
            .await
            .unwrap();
        assert_eq!(n, expected);
    }
    reported.sort();
    assert_eq!(reported, ["d1", "r1", "s1"]);
    assert_eq!(store.claim_emails("(operations)").await.unwrap().len(), 2);
}

async fn holidays_and_dst_inside_the_window_are_counted(store: AnyStore) {
    store.migrate().await.unwrap();
    // Fri 27 Mar 2026; clocks go forward on 29 March; Good Friday 3 April and Easter Monday
    // 6 April are holidays: the fifth business day is Tue 7 April, ending 22:00 UTC (CEST).
    store
        .put_claim_row(&claim(
            "c1",
            "partner_action_required",
            "2026-03-27T10:00:00Z",
            |r| {
                r.info_requested_at = Some(t("2026-03-27T10:00:00Z"));
            },
        ))
        .await
        .unwrap();
    tick(&store, "2026-04-06T21:59:00Z").await;
    assert_eq!(
        status(&store, "c1").await,
        ClaimStatus::PartnerActionRequired
    );
    tick(&store, "2026-04-07T21:59:59Z").await;
    assert_eq!(
        status(&store, "c1").await,
        ClaimStatus::PartnerActionRequired
    );
    tick(&store, "2026-04-07T22:00:00Z").await;
    assert_eq!(status(&store, "c1").await, ClaimStatus::Rejected);
}

async fn a_claim_changed_after_its_timers_were_computed_is_left_alone(store: AnyStore) {
    store.migrate().await.unwrap();
    let row = claim(
        "c1",
        "partner_action_required",
        "2026-12-23T14:00:00Z",
        |r| {
            r.info_requested_at = Some(t("2026-12-23T14:00:00Z"));
        },
    );
    store.put_claim_row(&row).await.unwrap();
    tick(&store, "2026-12-23T14:05:00Z").await;
    // The main system resubmits in a transaction whose updated_at lies long before the last
    // pass (it committed very late): the change record still names the claim.
    let mut changed = row.clone();
    changed.status = "submitted".into();
    changed.submitted_at = Some(t("2026-12-23T14:01:00Z"));
    changed.updated_at = Some(t("2026-12-01T00:00:00Z"));
    changed.version = 2;
    store.put_claim_row(&changed).await.unwrap();
    let o = tick(&store, "2027-01-06T12:00:00Z").await;
    assert_eq!(status(&store, "c1").await, ClaimStatus::Submitted);
    // Recomputed from the new version in the same pass: no auto-rejection, but the review-start
    // SLA of the resubmission (overdue since 30 December) is raised.
    assert_eq!(
        o.fired.get(&Acted::fired(TimerKind::ReviewStartSla)),
        Some(&1),
        "{o:?}"
    );
    assert_eq!(actions(&store, "c1").await, ["sla_breached"]);
    assert!(emails(&store, "c1").await.is_empty());
}

async fn bad_claims_are_reported_and_the_rest_proceed(store: AnyStore) {
    store.migrate().await.unwrap();
    harness::exec(
        &store,
        "INSERT INTO claims (id, status, country, updated_at, version) \
         VALUES ('bad-status', 'bogus', 'SE', '2026-03-02T09:00:00Z', 1)",
    )
    .await;
    store
        .put_claim_row(&claim(
            "bad-country",
            "rejected",
            "2026-03-02T09:00:00Z",
            |r| {
                r.country = Some("ZZ".into());
                r.rejected_at = Some(t("2026-03-02T09:00:00Z"));
            },
        ))
        .await
        .unwrap();
    store
        .put_claim_row(&claim(
            "no-timestamp",
            "under_review",
            "2026-03-02T09:00:00Z",
            |_| {},
        ))
        .await
        .unwrap();
    store
        .put_claim_row(&claim("good", "rejected", "2026-03-02T09:00:00Z", |r| {
            r.rejected_at = Some(t("2026-03-02T09:00:00Z"));
        }))
        .await
        .unwrap();
    let o = tick(&store, "2026-03-02T10:00:00Z").await;
    let mut problems: Vec<_> = o
        .problems
        .iter()
        .map(|p| (p.claim_id.as_str(), p.problem.as_str()))
        .collect();
    problems.sort();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0].0 == "bad-country" && problems[0].1.contains("ZZ"),
        "{problems:?}"
    );
    assert!(
        problems[1].0 == "bad-status" && problems[1].1.contains("bogus"),
        "{problems:?}"
    );
    assert!(
        problems[2].0 == "no-timestamp" && problems[2].1.contains("review_started_at"),
        "{problems:?}"
    );
    assert_eq!(
        o.fired.get(&Acted::fired(TimerKind::RejectionNotice)),
        Some(&1)
    );
    assert_eq!(emails(&store, "good").await, ["claim_rejected"]);
}
