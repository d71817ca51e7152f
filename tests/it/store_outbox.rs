//! The outbox on both backends: an email leased to one sender, retried at its time, sent,
//! dead-lettered or settled unsent with a history row; the SLA digest.

use chrono::Duration;
use cpor_worker::mail::EmailKind;
use cpor_worker::store::{
    AnyStore, ClaimWrite, DeliveryResult, Outbox, OutboxCounts, OutboxEmail, Store, TimerIndex,
};
use cpor_worker::timers::TimerKind;

use crate::store_contract::{T0, claim, email, migrated, synced, t, timer, with_pending_email};

backend_tests!(
    a_taken_email_is_leased_then_retried_at_its_time_then_sent,
    a_dead_email_is_listed_with_its_error,
    a_withdrawn_email_is_settled_with_its_history_row,
    each_sla_breach_is_reported_in_one_digest,
);

async fn a_taken_email_is_leased_then_retried_at_its_time_then_sent(store: AnyStore) {
    let now = with_pending_email(&store).await;
    let lease = Duration::minutes(5);
    let taken = store.take_emails(now, now + lease, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].attempts, 0);
    assert_eq!(taken[0].email.email, EmailKind::ClaimRejected);
    // Leased: another sender does not get it until the lease ends.
    let during = now + Duration::minutes(1);
    assert!(
        store
            .take_emails(during, during + lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let after = now + lease + Duration::seconds(1);
    let retaken = store.take_emails(after, after + lease, 10).await.unwrap();
    assert_eq!(retaken.len(), 1, "a lapsed lease frees the email");
    let id = retaken[0].id;
    let retry_at = now + Duration::hours(1);
    store
        .record_delivery(
            id,
            &DeliveryResult::Retry {
                at: retry_at,
                error: "421 try later".into(),
            },
            after,
        )
        .await
        .unwrap();
    let early = retry_at - Duration::seconds(1);
    assert!(
        store
            .take_emails(early, early + lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let due = store
        .take_emails(retry_at, retry_at + lease, 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, 1, "the failed attempt is counted");
    store
        .record_delivery(id, &DeliveryResult::Sent, retry_at)
        .await
        .unwrap();
    assert_eq!(store.claim_emails("c1").await.unwrap()[0].1, "sent");
    let far = retry_at + Duration::days(30);
    assert!(
        store
            .take_emails(far, far + lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_dead_email_is_listed_with_its_error(store: AnyStore) {
    let now = with_pending_email(&store).await;
    let taken = store
        .take_emails(now, now + Duration::minutes(5), 10)
        .await
        .unwrap();
    store
        .record_delivery(
            taken[0].id,
            &DeliveryResult::Dead {
                error: "550 no such mailbox".into(),
            },
            now,
        )
        .await
        .unwrap();
    let dead = store.dead_emails().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].email.claim_id, "c1");
    assert_eq!(dead[0].last_error.as_deref(), Some("550 no such mailbox"));
    assert_eq!(store.claim_emails("c1").await.unwrap()[0].1, "dead");
    assert_eq!(store.outbox_counts().await.unwrap().dead, 1);
    let later = now + Duration::days(1);
    assert!(
        store
            .take_emails(later, later + Duration::minutes(5), 10)
            .await
            .unwrap()
            .is_empty(),
        "a dead email is never retried"
    );
}

async fn a_withdrawn_email_is_settled_with_its_history_row(store: AnyStore) {
    let now = with_pending_email(&store).await;
    let taken = store
        .take_emails(now, now + Duration::minutes(5), 10)
        .await
        .unwrap();
    let why = "the claim was resubmitted while it waited";
    store
        .record_delivery(
            taken[0].id,
            &DeliveryResult::Withdrawn { why: why.into() },
            now,
        )
        .await
        .unwrap();
    assert_eq!(store.claim_emails("c1").await.unwrap()[0].1, "withdrawn");
    assert_eq!(
        store.outbox_counts().await.unwrap(),
        OutboxCounts::default()
    );
    let history = store.history("c1").await.unwrap();
    let last = history.last().expect("a history row");
    assert_eq!(
        (last.action.as_str(), last.occurred_at),
        ("email_withdrawn", now)
    );
    assert_eq!(last.details["outcome"], why);
    assert_eq!(last.details["email"], "claim_rejected");
}

async fn each_sla_breach_is_reported_in_one_digest(store: AnyStore) {
    migrated(&store).await;
    store
        .put_claim_row(&claim("c1", "submitted"))
        .await
        .unwrap();
    let sla = timer(
        TimerKind::ReviewStartSla,
        "2027-01-02T09:00:00Z",
        "2027-01-11T10:00:00Z",
    );
    store
        .save_sync(&[synced("c1", 1, vec![sla.clone()])], "fp", t(T0))
        .await
        .unwrap();
    let n = store
        .fire_batch(
            sla.due,
            10,
            "fp",
            crate::store_contract::each(|_| ClaimWrite {
                alerts: vec![(sla.kind, sla.start, sla.due)],
                fired: vec![(sla.kind, sla.start, sla.due, "fired".into())],
                resync: Some(synced("c1", 1, Vec::new())),
                ..ClaimWrite::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let mut reported = Vec::new();
    let digest_start = sla.due;
    let n = store
        .queue_sla_digest(sla.due, 10, |alerts| {
            reported.extend(alerts.iter().map(|a| (a.claim_id.clone(), a.timer)));
            OutboxEmail {
                to_address: "ops@example.com".into(),
                ..email(
                    "ops-digest",
                    TimerKind::ReviewStartSla,
                    digest_start,
                    EmailKind::SlaAlertDigest,
                )
            }
        })
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(reported, [("c1".to_owned(), TimerKind::ReviewStartSla)]);
    let again = store
        .queue_sla_digest(sla.due + Duration::minutes(1), 10, |_| {
            panic!("every breach was reported")
        })
        .await
        .unwrap();
    assert_eq!(again, 0);
    let taken = store
        .take_emails(sla.due, sla.due + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "the digest is in the outbox");
    assert_eq!(taken[0].email.email, EmailKind::SlaAlertDigest);
}
