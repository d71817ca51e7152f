//! Never miss, never misfire: the observations of the "never miss" issue, each reproduced on both
//! backends as the main system would write the data (raw SQL, odd timestamp formats, late
//! commits, bad rows, re-opened lifecycles), driven through the library's pass.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use cpor_worker::calendar::Calendars;
use cpor_worker::lifecycle::{ClaimStatus, RejectionReason};
use cpor_worker::store::{
    AnyStore, Backend, ClaimWrite, DeliveryResult, Outbox, Store, TimerIndex,
};
use cpor_worker::timers::TimerSettings;
use cpor_worker::worker::{Engine, TickOutcome};

use crate::harness::{self, exec};

backend_tests!(
    a_claim_written_behind_an_earlier_pass_is_picked_up,
    a_version_bump_with_updated_at_unchanged_is_picked_up,
    nanosecond_approval_runs_the_whole_consent_round,
    a_decline_after_the_consent_window_is_reported_not_acted_on,
    a_late_decline_seen_before_the_close_does_not_stop_forwarding,
    a_second_rejection_after_an_overturned_dispute_gets_its_notice_and_window,
    an_overturned_customer_decline_gets_a_new_consent_round,
    a_notice_without_a_reason_is_a_problem_until_fixed,
    a_consent_email_without_a_valid_address_is_a_problem_until_fixed,
    stale_obligations_on_first_sight_are_held_for_an_operator,
);

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub(crate) fn engine() -> Engine {
    Engine {
        calendars: Arc::new(Calendars::builtin().unwrap()),
        settings: TimerSettings {
            reminder_lead_business_days: 0,
            max_first_sight_age: chrono::Duration::days(14),
            never_shorten_communicated: true,
        },
        batch_size: 50,
        template_version: None,
        stop: tokio_util::sync::CancellationToken::new(),
    }
}

pub(crate) async fn tick(store: &AnyStore, at: &str) -> TickOutcome {
    engine().tick(store, t(at)).await.expect("tick")
}

/// Inserts a claim with SQL as the main system would: `cols` and `vals` are spliced verbatim.
pub(crate) async fn insert(store: &AnyStore, id: &str, status: &str, cols: &str, vals: &str) {
    exec(
        store,
        &format!(
            "INSERT INTO claims (id, status, partner_name, partner_email, customer_name, \
             customer_email, products, country, locale, version{cols}) VALUES ('{id}', '{status}', \
             'Nordljus Konsult AB', 'claims@nordljus.example', 'Åkerlund & Söner AB', \
             'it@akerlund.example', 'Dynamics 365 Sales', 'SE', 'sv-SE', 1{vals})"
        ),
    )
    .await;
}

pub(crate) async fn actions(store: &AnyStore, id: &str) -> Vec<String> {
    store
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.action)
        .collect()
}

pub(crate) async fn emails(store: &AnyStore, id: &str) -> Vec<String> {
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

pub(crate) fn problem_of(o: &TickOutcome, id: &str) -> Option<String> {
    o.problems
        .iter()
        .find(|p| p.claim_id == id)
        .map(|p| p.problem.clone())
}

async fn a_claim_written_behind_an_earlier_pass_is_picked_up(store: AnyStore) {
    store.migrate().await.unwrap();
    insert(
        &store,
        "first",
        "rejected",
        ", rejected_at, rejection_reason, updated_at",
        ", '2026-03-02T09:00:00Z', 'insufficient_poe', '2026-03-02T09:00:00Z'",
    )
    .await;
    tick(&store, "2026-03-02T12:00:00Z").await;
    assert_eq!(actions(&store, "first").await, ["rejection_notice_sent"]);
    // A transaction that wrote `updated_at` an hour before the newest change the last pass saw
    // commits only now.
    insert(
        &store,
        "late",
        "rejected",
        ", rejected_at, rejection_reason, updated_at",
        ", '2026-03-02T08:00:00Z', 'insufficient_poe', '2026-03-02T08:00:00Z'",
    )
    .await;
    if store.backend() == Backend::Sqlite {
        // The formats a main system writes into SQLite text columns, and Unix seconds.
        for (id, updated) in [
            ("spaced", "'2027-01-12 11:00:00'"),
            ("offset", "'2026-12-01T07:30:00-05:00'"),
            ("unix", "1764577800"),
        ] {
            insert(
                &store,
                id,
                "rejected",
                ", rejected_at, rejection_reason, updated_at",
                &format!(", '2026-03-02 10:00:00', 'insufficient_poe', {updated}"),
            )
            .await;
        }
    }
    let o = tick(&store, "2026-03-02T12:05:00Z").await;
    assert!(o.problems.is_empty(), "{o:#?}");
    assert_eq!(actions(&store, "late").await, ["rejection_notice_sent"]);
    if store.backend() == Backend::Sqlite {
        for id in ["spaced", "offset", "unix"] {
            assert_eq!(actions(&store, id).await, ["rejection_notice_sent"], "{id}");
        }
    }
    // On PostgreSQL, a transaction open across a pass is seen by the first pass after it commits.
    if let AnyStore::Postgres(pg) = &store {
        let mut tx = pg.pool().begin().await.unwrap();
        sqlx::query(
            "INSERT INTO claims (id, status, partner_name, partner_email, country, rejected_at, \
             rejection_reason, updated_at, version) VALUES ('open-tx', 'rejected', 'P', \
             'p@partner.example', 'SE', '2026-03-02T08:30:00Z', 'insufficient_poe', \
             '2026-03-02T08:30:00Z', 1)",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        tick(&store, "2026-03-02T12:30:00Z").await;
        assert!(actions(&store, "open-tx").await.is_empty());
        tx.commit().await.unwrap();
        tick(&store, "2026-03-02T13:30:00Z").await;
        assert_eq!(actions(&store, "open-tx").await, ["rejection_notice_sent"]);
    }
}

async fn a_version_bump_with_updated_at_unchanged_is_picked_up(store: AnyStore) {
    store.migrate().await.unwrap();
    insert(
        &store,
        "c1",
        "under_review",
        ", submitted_at, review_started_at, updated_at",
        ", '2026-03-02T08:00:00Z', '2026-03-02T09:00:00Z', '2026-03-02T09:00:00Z'",
    )
    .await;
    // Another claim changed later moves any notion of "changed since" past c1's updated_at.
    insert(
        &store,
        "other",
        "submitted",
        ", submitted_at, updated_at",
        ", '2026-03-02T09:50:00Z', '2026-03-02T09:50:00Z'",
    )
    .await;
    tick(&store, "2026-03-02T10:00:00Z").await;
    exec(
        &store,
        "UPDATE claims SET status = 'rejected', rejected_at = '2026-03-02T10:30:00Z', \
         rejection_reason = 'missing_products', version = 2 WHERE id = 'c1'",
    )
    .await;
    tick(&store, "2026-03-02T11:00:00Z").await;
    assert_eq!(actions(&store, "c1").await, ["rejection_notice_sent"]);
}

async fn nanosecond_approval_runs_the_whole_consent_round(store: AnyStore) {
    store.migrate().await.unwrap();
    insert(
        &store,
        "nano",
        "approved",
        ", approved_at, updated_at",
        ", '2027-01-04T10:00:00.123456789Z', '2027-01-04T10:00:00.123456789Z'",
    )
    .await;
    tick(&store, "2027-01-04T11:00:00Z").await;
    deliver_all(&store, "2027-01-04T11:00:00Z").await;
    tick(&store, "2027-01-04T11:01:00Z").await;
    // Sent Monday 4 January at noon Stockholm time: the window's last day is Monday 11 January.
    tick(&store, "2027-01-11T23:00:00Z").await;
    assert_eq!(
        actions(&store, "nano").await,
        [
            "consent_requested",
            "approval_notice_sent",
            "forwarded_to_incentive_evaluation"
        ]
    );
    assert!(harness::incentive_request(&store, "nano").await.is_some());
}

/// An approved claim whose consent email was delivered at `sent`; window ends 7 days later.
async fn approved_and_notified(store: &AnyStore, id: &str) {
    insert(
        store,
        id,
        "approved",
        ", approved_at, updated_at",
        ", '2027-01-04T10:00:00Z', '2027-01-04T10:00:00Z'",
    )
    .await;
    tick(store, "2027-01-04T10:00:00Z").await;
    deliver_all(store, "2027-01-04T10:00:00Z").await;
    tick(store, "2027-01-04T10:01:00Z").await;
}

async fn a_decline_after_the_consent_window_is_reported_not_acted_on(store: AnyStore) {
    store.migrate().await.unwrap();
    approved_and_notified(&store, "c1").await;
    // The window's last day is Monday 11 January (Stockholm): it ends 23:00Z.
    tick(&store, "2027-01-11T23:00:00Z").await;
    assert!(harness::incentive_request(&store, "c1").await.is_some());
    exec(
        &store,
        "UPDATE claims SET customer_declined_at = '2027-01-11T23:01:00Z', version = version + 1 \
         WHERE id = 'c1'",
    )
    .await;
    let o = tick(&store, "2027-01-11T23:02:00Z").await;
    let c = store.claim("c1").await.unwrap();
    assert_eq!(c.status, ClaimStatus::Approved, "{o:#?}");
    assert!(harness::incentive_request(&store, "c1").await.is_some());
    let h = store.history("c1").await.unwrap();
    let last = h.last().unwrap();
    assert_eq!(last.action, "customer_decline_ignored");
    assert!(
        last.details["outcome"]
            .as_str()
            .unwrap()
            .contains("after the consent window closed"),
        "{last:?}"
    );
    assert!(
        !emails(&store, "c1")
            .await
            .contains(&"claim_rejected".to_owned())
    );
    // Recorded once: later passes leave it alone.
    let again = tick(&store, "2027-01-12T08:00:00Z").await;
    assert!(again.fired.is_empty(), "{again:#?}");
}

async fn a_late_decline_seen_before_the_close_does_not_stop_forwarding(store: AnyStore) {
    store.migrate().await.unwrap();
    approved_and_notified(&store, "c1").await;
    exec(
        &store,
        "UPDATE claims SET customer_declined_at = '2027-01-11T23:30:00Z', version = version + 1 \
         WHERE id = 'c1'",
    )
    .await;
    tick(&store, "2027-01-12T00:00:00Z").await;
    assert_eq!(
        store.claim("c1").await.unwrap().status,
        ClaimStatus::Approved
    );
    assert!(harness::incentive_request(&store, "c1").await.is_some());
    let a = actions(&store, "c1").await;
    assert!(
        a.contains(&"forwarded_to_incentive_evaluation".to_owned()),
        "{a:?}"
    );
    assert!(a.contains(&"customer_decline_ignored".to_owned()), "{a:?}");
}

async fn a_second_rejection_after_an_overturned_dispute_gets_its_notice_and_window(
    store: AnyStore,
) {
    store.migrate().await.unwrap();
    insert(
        &store,
        "c1",
        "rejected",
        ", rejected_at, rejection_reason, updated_at",
        ", '2027-01-04T10:00:00Z', 'insufficient_poe', '2027-01-04T10:00:00Z'",
    )
    .await;
    tick(&store, "2027-01-04T10:05:00Z").await;
    // The partner disputes; a reviewer overturns it: approved again.
    exec(
        &store,
        "UPDATE claims SET dispute_opened_at = '2027-01-05T09:00:00Z', version = 2 WHERE id = 'c1'",
    )
    .await;
    tick(&store, "2027-01-05T09:05:00Z").await;
    exec(
        &store,
        "UPDATE claims SET status = 'approved', approved_at = '2027-01-07T09:00:00Z', \
         dispute_resolved_at = '2027-01-07T09:00:00Z', version = 3 WHERE id = 'c1'",
    )
    .await;
    tick(&store, "2027-01-07T09:05:00Z").await;
    // ...and the main system rejects it again.
    exec(
        &store,
        "UPDATE claims SET status = 'rejected', rejected_at = '2027-01-08T09:00:00Z', \
         rejection_reason = 'missing_products', version = 4 WHERE id = 'c1'",
    )
    .await;
    tick(&store, "2027-01-08T09:05:00Z").await;
    let a = actions(&store, "c1").await;
    assert_eq!(
        a.iter().filter(|a| *a == "rejection_notice_sent").count(),
        2,
        "{a:?}"
    );
    // 30 calendar days after Friday 8 January: last day Sunday 7 February, ends 23:00Z.
    let before = tick(&store, "2027-02-07T22:59:59Z").await;
    assert!(before.fired.is_empty(), "{before:#?}");
    tick(&store, "2027-02-07T23:00:00Z").await;
    assert_eq!(
        actions(&store, "c1").await.last().unwrap(),
        "dispute_window_closed"
    );
}

async fn an_overturned_customer_decline_gets_a_new_consent_round(store: AnyStore) {
    store.migrate().await.unwrap();
    approved_and_notified(&store, "c1").await;
    exec(
        &store,
        "UPDATE claims SET customer_declined_at = '2027-01-05T10:00:00Z', version = version + 1 \
         WHERE id = 'c1'",
    )
    .await;
    tick(&store, "2027-01-05T10:05:00Z").await;
    let c = store.claim("c1").await.unwrap();
    assert_eq!(c.rejection_reason, Some(RejectionReason::CustomerDeclined));
    exec(
        &store,
        "UPDATE claims SET dispute_opened_at = '2027-01-06T09:00:00Z', version = version + 1 \
         WHERE id = 'c1'",
    )
    .await;
    tick(&store, "2027-01-06T09:05:00Z").await;
    exec(
        &store,
        "UPDATE claims SET status = 'approved', approved_at = '2027-01-08T09:00:00Z', \
         dispute_resolved_at = '2027-01-08T09:00:00Z', version = version + 1 WHERE id = 'c1'",
    )
    .await;
    tick(&store, "2027-01-08T09:05:00Z").await;
    let sent = emails(&store, "c1").await;
    assert_eq!(
        sent.iter().filter(|e| *e == "consent_request").count(),
        2,
        "{sent:?}"
    );
}

async fn a_notice_without_a_reason_is_a_problem_until_fixed(store: AnyStore) {
    store.migrate().await.unwrap();
    insert(
        &store,
        "c1",
        "rejected",
        ", rejected_at, updated_at",
        ", '2027-01-04T10:00:00Z', '2027-01-04T10:00:00Z'",
    )
    .await;
    let o = tick(&store, "2027-01-04T10:05:00Z").await;
    let p = problem_of(&o, "c1").expect("a named problem");
    assert!(p.contains("rejection_reason"), "{p}");
    assert!(actions(&store, "c1").await.is_empty());
    assert!(emails(&store, "c1").await.is_empty());
    // Still a problem on the next pass's reports, and nothing recorded as sent.
    let problems = store.claim_problems().await.unwrap();
    assert!(problems.iter().any(|(id, _)| id == "c1"), "{problems:?}");
    exec(
        &store,
        "UPDATE claims SET rejection_reason = 'insufficient_poe', version = 2 WHERE id = 'c1'",
    )
    .await;
    tick(&store, "2027-01-04T11:00:00Z").await;
    assert_eq!(actions(&store, "c1").await, ["rejection_notice_sent"]);
    assert_eq!(emails(&store, "c1").await, ["claim_rejected"]);
}

async fn a_consent_email_without_a_valid_address_is_a_problem_until_fixed(store: AnyStore) {
    store.migrate().await.unwrap();
    insert(
        &store,
        "c1",
        "approved",
        ", approved_at, updated_at",
        ", '2027-01-04T10:00:00Z', '2027-01-04T10:00:00Z'",
    )
    .await;
    exec(
        &store,
        "UPDATE claims SET customer_email = 'it at akerlund', version = 2 WHERE id = 'c1'",
    )
    .await;
    let o = tick(&store, "2027-01-04T10:05:00Z").await;
    let p = problem_of(&o, "c1").expect("a named problem");
    assert!(p.contains("customer_email"), "{p}");
    assert!(actions(&store, "c1").await.is_empty());
    exec(
        &store,
        "UPDATE claims SET customer_email = 'it@akerlund.example', version = 3 WHERE id = 'c1'",
    )
    .await;
    tick(&store, "2027-01-04T11:00:00Z").await;
    assert_eq!(actions(&store, "c1").await, ["consent_requested"]);
}

async fn stale_obligations_on_first_sight_are_held_for_an_operator(store: AnyStore) {
    store.migrate().await.unwrap();
    // Deployed on 4 January 2027 onto a database with an approval from January 2025, a
    // rejection 20 days old, and an approval of yesterday.
    insert(
        &store,
        "ancient",
        "approved",
        ", approved_at, updated_at",
        ", '2025-01-10T10:00:00Z', '2025-01-10T10:00:00Z'",
    )
    .await;
    insert(
        &store,
        "rejected-20d",
        "rejected",
        ", rejected_at, rejection_reason, updated_at",
        ", '2026-12-15T10:00:00Z', 'insufficient_poe', '2026-12-15T10:00:00Z'",
    )
    .await;
    insert(
        &store,
        "fresh",
        "approved",
        ", approved_at, updated_at",
        ", '2027-01-03T10:00:00Z', '2027-01-03T10:00:00Z'",
    )
    .await;
    let o = tick(&store, "2027-01-04T10:00:00Z").await;
    for id in ["ancient", "rejected-20d"] {
        let p = problem_of(&o, id).unwrap_or_else(|| panic!("{id} not named: {o:#?}"));
        assert!(p.contains("held on first sight"), "{p}");
        assert!(actions(&store, id).await.is_empty(), "{id}");
        assert!(emails(&store, id).await.is_empty(), "{id}");
    }
    assert_eq!(actions(&store, "fresh").await, ["consent_requested"]);
    // Still held, and still shown as a problem, after the main system touches the claim.
    exec(
        &store,
        "UPDATE claims SET products = 'Dynamics 365 Sales, Copilot', version = 2 WHERE id = 'ancient'",
    )
    .await;
    let o = tick(&store, "2027-01-05T10:00:00Z").await;
    assert!(
        problem_of(&o, "ancient").is_some_and(|p| p.contains("held on first sight")),
        "{o:#?}"
    );
    assert!(emails(&store, "ancient").await.is_empty());
    let problems = store.claim_problems().await.unwrap();
    assert!(
        problems
            .iter()
            .any(|(id, p)| id == "rejected-20d" && p.contains("held")),
        "{problems:?}"
    );
}

/// A pass fires what is due behind claims another transaction holds (the main system
/// mid-update, a replica's batch), even when the held claims' timers fill whole batches: the
/// batch looks past them, so long-held claims do not stop every pass of every replica, and it
/// keeps none of their timer rows locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_due_claim_behind_one_held_elsewhere_fires() {
    // 10: the pass's first batch takes one timer row; 1: every batch does.
    for batch_size in [10, 1] {
        behind_one_held(batch_size).await;
    }
}

async fn behind_one_held(batch_size: i64) {
    let Some(db) = harness::postgres_unmigrated(&format!("behind_held_{batch_size}")).await else {
        return;
    };
    let store = db.store.clone();
    store.migrate().await.unwrap();
    // The held claims' notices fall due first.
    for (id, at) in [("held", "09:00"), ("held2", "09:30"), ("free", "10:00")] {
        insert(
            &store,
            id,
            "rejected",
            ", rejected_at, rejection_reason",
            &format!(", '2026-03-02T{at}:00Z', 'insufficient_poe'"),
        )
        .await;
    }
    let engine = Engine {
        batch_size,
        ..engine()
    };
    let now = t("2026-03-02T11:00:00Z");
    let mut out = TickOutcome::default();
    engine.sync(&store, now, &mut out).await.unwrap();
    assert_eq!(out.synced, 3, "{out:?}");
    let AnyStore::Postgres(pg) = &store else {
        unreachable!("PostgreSQL test")
    };
    let mut main_system = pg.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM claims WHERE id IN ('held', 'held2') FOR UPDATE")
        .execute(&mut *main_system)
        .await
        .unwrap();
    // A batch of one timer row meets the held claims first, one try each; the timer rows it
    // met under them are not kept locked while it goes on: the holder, deciding those claims
    // itself, can mark them at once.
    let holder = &mut main_system;
    let taken = store
        .fire_batch(now, 1, &engine.fingerprint(), |inputs| async move {
            let ids: Vec<&str> = inputs.iter().map(|i| i.claim_id.as_str()).collect();
            assert_eq!(ids, ["free"]);
            tokio::time::timeout(
                std::time::Duration::from_secs(10),
                sqlx::query(
                    "UPDATE cpor_timers SET outcome = outcome \
                     WHERE claim_id IN ('held', 'held2')",
                )
                .execute(&mut **holder),
            )
            .await
            .expect("the held claims' timer rows are not locked by the batch")
            .unwrap();
            inputs.iter().map(|_| ClaimWrite::default()).collect()
        })
        .await
        .unwrap();
    assert_eq!(taken, 1);
    engine.fire(&store, now, &mut out).await.unwrap();
    assert_eq!(emails(&store, "free").await, ["claim_rejected"], "{out:?}");
    for id in ["held", "held2"] {
        assert!(emails(&store, id).await.is_empty(), "{id}");
    }
    main_system.rollback().await.unwrap();
    let o = engine.tick(&store, now).await.unwrap();
    assert_eq!(o.fired.values().sum::<usize>(), 2, "{o:?}");
    for id in ["held", "held2", "free"] {
        assert_eq!(emails(&store, id).await, ["claim_rejected"], "{id}");
    }
}

/// Two claims whose reminder and response deadline are both due, synced, on PostgreSQL.
async fn two_claims_both_due(name: &str) -> Option<(harness::TestStore, Engine, DateTime<Utc>)> {
    let db = harness::postgres_unmigrated(name).await?;
    let store = db.store.clone();
    store.migrate().await.unwrap();
    for id in ["theirs", "ours"] {
        insert(
            &store,
            id,
            "partner_action_required",
            ", info_requested_at",
            ", '2026-02-20T09:00:00Z'",
        )
        .await;
    }
    let engine = Engine {
        batch_size: 100,
        ..engine()
    };
    let now = t("2026-03-02T11:00:00Z");
    let mut out = TickOutcome::default();
    engine.sync(&store, now, &mut out).await.unwrap();
    Some((db, engine, now))
}

/// The pass's fire, run on its own task.
fn fire_in_background(
    engine: &Engine,
    store: &AnyStore,
    now: DateTime<Utc>,
) -> tokio::task::JoinHandle<Result<TickOutcome, cpor_worker::store::StoreError>> {
    let (engine, store) = (engine.clone(), store.clone());
    tokio::spawn(async move {
        let mut out = TickOutcome::default();
        engine.fire(&store, now, &mut out).await.map(|()| out)
    })
}

/// Waits (up to 20 s) until a backend other than `other`'s waits on a lock: the pass, which
/// then holds what it took before it.
pub(crate) async fn until_the_pass_waits(pool: &sqlx::PgPool, other: &mut sqlx::PgConnection) {
    let mine: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *other)
        .await
        .unwrap();
    for _ in 0..400 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND pid <> $1 AND datname = current_database()",
        )
        .bind(mine)
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the pass never waited on the other side's lock");
}

/// Each claim fired once, with both its timers, by the pass and the tick after it.
async fn both_fired_once(engine: &Engine, store: &AnyStore, now: DateTime<Utc>) {
    let o = engine.tick(store, now).await.unwrap();
    for id in ["theirs", "ours"] {
        let mut a = actions(store, id).await;
        a.sort();
        assert_eq!(a, ["auto_rejected", "reminder_skipped"], "{id}: {o:?}");
    }
}

/// A fire batch locks the claims it takes and no timer row of a claim it did not take, so a
/// replica's batch holding another claim marks that claim's timers without waiting on it (a
/// due-timer select that locked timer rows made two batches wait on each other, seen with
/// three replicas in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_fire_batch_locks_no_timer_row_of_a_claim_it_did_not_take() {
    let Some((db, engine, now)) = two_claims_both_due("locks_no_timer_row").await else {
        return;
    };
    let store = db.store.clone();
    let AnyStore::Postgres(pg) = &store else {
        unreachable!("PostgreSQL test")
    };
    // The other side (a replica's batch) holds the claim `theirs` and one due timer row of
    // `ours`, which the pass takes: the pass waits to mark that row.
    let mut other = pg.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM claims WHERE id = 'theirs' FOR UPDATE")
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query(
        "SELECT 1 FROM cpor_timers WHERE claim_id = 'ours' \
         AND timer = 'partner_response_reminder' FOR UPDATE",
    )
    .execute(&mut *other)
    .await
    .unwrap();
    let pass = fire_in_background(&engine, &store, now);
    until_the_pass_waits(pg.pool(), &mut other).await;
    // Marking `theirs`'s timers meets no lock of the waiting pass: it ends well before the
    // database would look for a circle (`deadlock_timeout`, 1 s).
    sqlx::query("SET LOCAL lock_timeout = '200ms'")
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query("UPDATE cpor_timers SET outcome = outcome WHERE claim_id = 'theirs'")
        .execute(&mut *other)
        .await
        .expect("the pass holds no timer row of a claim it did not take");
    other.rollback().await.unwrap();
    let out = pass.await.unwrap().expect("the pass");
    assert_eq!(actions(&store, "ours").await.len(), 2, "{out:?}");
    both_fired_once(&engine, &store, now).await;
}

/// A fire batch the database ends to break a circle of waits runs again instead of failing
/// the pass: here the other side holds the sync row of the pass's claim, then asks for the
/// claim itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_fire_batch_ended_by_a_deadlock_runs_again() {
    let Some((db, engine, now)) = two_claims_both_due("deadlock_runs_again").await else {
        return;
    };
    let store = db.store.clone();
    let AnyStore::Postgres(pg) = &store else {
        unreachable!("PostgreSQL test")
    };
    let mut other = pg.pool().begin().await.unwrap();
    // The pass (1 s, the default) looks for the circle first, and is the one ended.
    sqlx::query("SET LOCAL deadlock_timeout = '20s'")
        .execute(&mut *other)
        .await
        .unwrap();
    sqlx::query("SELECT 1 FROM cpor_claim_sync WHERE claim_id = 'ours' FOR UPDATE")
        .execute(&mut *other)
        .await
        .unwrap();
    let pass = fire_in_background(&engine, &store, now);
    // The pass takes both claims and waits to write the sync row of `ours`; asking for that
    // claim closes the circle, and the database ends the pass.
    until_the_pass_waits(pg.pool(), &mut other).await;
    tokio::time::timeout(
        std::time::Duration::from_secs(20),
        sqlx::query("SELECT 1 FROM claims WHERE id = 'ours' FOR UPDATE").execute(&mut *other),
    )
    .await
    .expect("the database broke the circle")
    .expect("the database ended the pass, not the other side");
    other.rollback().await.unwrap();
    let out = pass
        .await
        .unwrap()
        .expect("the pass ran the ended batch again");
    for id in ["theirs", "ours"] {
        assert_eq!(actions(&store, id).await.len(), 2, "{id}: {out:?}");
    }
    both_fired_once(&engine, &store, now).await;
}
