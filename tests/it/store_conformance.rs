//! The store contract, written once and run against both backends (same tests, same count).

use chrono::{DateTime, Duration, TimeZone, Utc};
use cpor_worker::claim::ClaimRow;
use cpor_worker::lifecycle::{Actor, ClaimStatus, RejectionReason};
use cpor_worker::store::{AnyStore, HistoryEntry, StatusChange, Store, StoreError};
use serde_json::json;

use crate::harness::{self, ApplyOutcome, ClaimChange};

backend_tests!(
    migrations_apply_twice_and_report_current,
    existing_claims_table_is_kept,
    claim_row_round_trips_every_column,
    putting_a_claim_again_replaces_it,
    unknown_claim_is_not_found,
    bogus_status_is_a_clear_error_for_that_claim,
    bad_rows_are_reported_in_place_and_the_rest_load,
    rejection_changes_status_bumps_version_and_writes_history,
    stale_version_or_status_writes_nothing,
    vanished_claim_is_gone,
    incentive_request_is_written_once,
    concurrent_actions_on_one_version_apply_once,
    claims_page_reads_every_claim_in_id_order,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 23, 14, 0, 0).unwrap() + Duration::microseconds(123_456)
}

fn sample(id: &str, status: &str) -> ClaimRow {
    ClaimRow {
        id: id.to_owned(),
        status: status.to_owned(),
        partner_id: Some("P-1".into()),
        partner_name: Some("Nordljus Konsult AB".into()),
        partner_email: Some("claims@nordljus.example".into()),
        customer_tenant_id: Some("T-1".into()),
        customer_name: Some("Åkerlund & Söner AB".into()),
        customer_email: Some("it@akerlund.example".into()),
        products: Some("Dynamics 365 Sales".into()),
        country: Some("SE".into()),
        time_zone: Some("Europe/Stockholm".into()),
        locale: Some("sv-SE".into()),
        submitted_at: Some(t0() - Duration::days(9)),
        review_started_at: Some(t0() - Duration::days(8)),
        info_requested_at: Some(t0() - Duration::days(7)),
        info_request_reason: Some("missing_products".into()),
        approved_at: None,
        rejected_at: None,
        rejection_reason: None,
        customer_declined_at: None,
        dispute_opened_at: None,
        dispute_resolved_at: None,
        updated_at: Some(t0() - Duration::days(7)),
        version: 3,
    }
}

fn auto_reject(claim_id: &str, version: i64) -> ClaimChange {
    ClaimChange {
        claim_id: claim_id.to_owned(),
        expected_status: ClaimStatus::PartnerActionRequired,
        expected_version: version,
        at: t0(),
        status_change: Some(StatusChange {
            to: ClaimStatus::Rejected,
            rejection_reason: Some(RejectionReason::NoPartnerResponse),
        }),
        history: HistoryEntry {
            claim_id: claim_id.to_owned(),
            occurred_at: t0(),
            actor: Actor::System,
            action: "auto_rejected".into(),
            details: json!({"timer": "partner_response_deadline", "calendar": "SE"}).into(),
        },
        request_incentive_evaluation: false,
    }
}

async fn migrated(store: &AnyStore) {
    store.migrate().await.expect("migrate");
}

async fn migrations_apply_twice_and_report_current(store: AnyStore) {
    assert!(!store.migrations_current().await.unwrap());
    migrated(&store).await;
    assert!(store.migrations_current().await.unwrap());
    migrated(&store).await;
    assert!(store.migrations_current().await.unwrap());
    assert_eq!(store.count_claims().await.unwrap(), 0);
}

async fn existing_claims_table_is_kept(store: AnyStore) {
    harness::exec(
        &store,
        "CREATE TABLE claims (id TEXT PRIMARY KEY, status TEXT NOT NULL, partner_id TEXT, \
         partner_name TEXT, partner_email TEXT, customer_tenant_id TEXT, customer_name TEXT, \
         customer_email TEXT, products TEXT, country TEXT, time_zone TEXT, locale TEXT, \
         submitted_at TIMESTAMP, review_started_at TIMESTAMP, info_requested_at TIMESTAMP, \
         info_request_reason TEXT, approved_at TIMESTAMP, rejected_at TIMESTAMP, \
         rejection_reason TEXT, customer_declined_at TIMESTAMP, dispute_opened_at TIMESTAMP, \
         dispute_resolved_at TIMESTAMP, updated_at TIMESTAMP, version INTEGER NOT NULL, \
         main_system_only TEXT)",
    )
    .await;
    harness::exec(
        &store,
        "INSERT INTO claims (id, status, country, version, main_system_only) \
         VALUES ('pre-1', 'draft', 'SE', 7, 'kept')",
    )
    .await;
    // PostgreSQL's TIMESTAMP (without zone) is not the contract's type: convert it as the
    // main system's own migration would before the worker reads it.
    if let AnyStore::Postgres(_) = store {
        harness::exec(
            &store,
            "ALTER TABLE claims ALTER COLUMN updated_at TYPE TIMESTAMPTZ, \
             ALTER COLUMN submitted_at TYPE TIMESTAMPTZ, ALTER COLUMN review_started_at TYPE TIMESTAMPTZ, \
             ALTER COLUMN info_requested_at TYPE TIMESTAMPTZ, ALTER COLUMN approved_at TYPE TIMESTAMPTZ, \
             ALTER COLUMN rejected_at TYPE TIMESTAMPTZ, ALTER COLUMN customer_declined_at TYPE TIMESTAMPTZ, \
             ALTER COLUMN dispute_opened_at TYPE TIMESTAMPTZ, ALTER COLUMN dispute_resolved_at TYPE TIMESTAMPTZ",
        )
        .await;
    }
    migrated(&store).await;
    let claim = store
        .claim("pre-1")
        .await
        .expect("pre-existing claim readable");
    assert_eq!(claim.status, ClaimStatus::Draft);
    assert_eq!(claim.version, 7, "an INTEGER version column is read too");
}

async fn claim_row_round_trips_every_column(store: AnyStore) {
    migrated(&store).await;
    let mut row = sample("c-1", "rejected");
    row.approved_at = Some(t0() - Duration::days(3));
    row.rejected_at = Some(t0() - Duration::days(2));
    row.rejection_reason = Some("customer_declined".into());
    row.customer_declined_at = Some(t0() - Duration::days(2));
    row.dispute_opened_at = Some(t0() - Duration::days(1));
    row.dispute_resolved_at = Some(t0());
    store.put_claim_row(&row).await.unwrap();
    let claim = store.claim("c-1").await.unwrap();
    assert_eq!(ClaimRow::from(&claim), row);
    assert_eq!(store.count_claims().await.unwrap(), 1);
}

async fn putting_a_claim_again_replaces_it(store: AnyStore) {
    migrated(&store).await;
    store
        .put_claim_row(&sample("c-1", "submitted"))
        .await
        .unwrap();
    let mut row = sample("c-1", "under_review");
    row.version = 4;
    store.put_claim_row(&row).await.unwrap();
    let claim = store.claim("c-1").await.unwrap();
    assert_eq!((claim.status, claim.version), (ClaimStatus::UnderReview, 4));
    assert_eq!(store.count_claims().await.unwrap(), 1);
}

async fn unknown_claim_is_not_found(store: AnyStore) {
    migrated(&store).await;
    let err = store.claim("nope").await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(ref id) if id == "nope"),
        "{err}"
    );
}

async fn bogus_status_is_a_clear_error_for_that_claim(store: AnyStore) {
    migrated(&store).await;
    harness::exec(
        &store,
        "INSERT INTO claims (id, status, country, updated_at, version) \
         VALUES ('bad-1', 'bogus', 'SE', '2026-01-05T10:00:00Z', 1)",
    )
    .await;
    let err = store.claim("bad-1").await.unwrap_err();
    let StoreError::BadClaim(bad) = &err else {
        panic!("expected BadClaim, got {err:?}");
    };
    assert_eq!(bad.claim_id, "bad-1");
    assert_eq!(
        err.to_string(),
        "claim `bad-1`: column status: unknown status `bogus` (expected one of: draft, \
         submitted, under_review, partner_action_required, approved, rejected)"
    );
}

async fn bad_rows_are_reported_in_place_and_the_rest_load(store: AnyStore) {
    migrated(&store).await;
    store
        .put_claim_row(&sample("a-good", "submitted"))
        .await
        .unwrap();
    let mut tz = sample("b-tz", "submitted");
    tz.time_zone = Some("Mars/Olympus".into());
    store.put_claim_row(&tz).await.unwrap();
    harness::exec(
        &store,
        "INSERT INTO claims (id, status, country, updated_at, version) \
         VALUES ('c-status', 'bogus', 'SE', '2026-01-05T10:00:00Z', 1)",
    )
    .await;
    store
        .put_claim_row(&sample("d-good", "approved"))
        .await
        .unwrap();
    let loaded = harness::claims(&store).await;
    let summary: Vec<(String, bool)> = loaded
        .iter()
        .map(|r| match r {
            Ok(c) => (c.id.clone(), true),
            Err(b) => (b.claim_id.clone(), false),
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("a-good".to_owned(), true),
            ("b-tz".to_owned(), false),
            ("c-status".to_owned(), false),
            ("d-good".to_owned(), true)
        ]
    );
    let problem = loaded[1].as_ref().unwrap_err().problem.clone();
    assert!(
        problem.contains("time_zone") && problem.contains("Mars/Olympus"),
        "{problem}"
    );
}

async fn rejection_changes_status_bumps_version_and_writes_history(store: AnyStore) {
    migrated(&store).await;
    store
        .put_claim_row(&sample("c-1", "partner_action_required"))
        .await
        .unwrap();
    let change = auto_reject("c-1", 3);
    assert_eq!(
        harness::apply(&store, &change).await,
        ApplyOutcome::Applied { version: 4 }
    );
    let claim = store.claim("c-1").await.unwrap();
    assert_eq!(claim.status, ClaimStatus::Rejected);
    assert_eq!(
        claim.rejection_reason,
        Some(RejectionReason::NoPartnerResponse)
    );
    assert_eq!(claim.rejected_at, Some(t0()));
    assert_eq!(claim.updated_at, Some(t0()));
    assert_eq!(claim.version, 4);
    assert_eq!(store.history("c-1").await.unwrap(), vec![change.history]);
    assert_eq!(harness::incentive_request(&store, "c-1").await, None);
}

async fn stale_version_or_status_writes_nothing(store: AnyStore) {
    migrated(&store).await;
    store
        .put_claim_row(&sample("c-1", "partner_action_required"))
        .await
        .unwrap();
    // The main system resubmitted the claim after the worker decided.
    let mut resubmitted = sample("c-1", "submitted");
    resubmitted.version = 4;
    store.put_claim_row(&resubmitted).await.unwrap();
    let outcome = harness::apply(&store, &auto_reject("c-1", 3)).await;
    assert_eq!(
        outcome,
        ApplyOutcome::Conflict {
            status: "submitted".into(),
            version: 4
        }
    );
    // Same version, other status: still a conflict.
    let mut other = auto_reject("c-1", 4);
    other.request_incentive_evaluation = true;
    assert!(matches!(
        harness::apply(&store, &other).await,
        ApplyOutcome::Conflict { .. }
    ));
    let claim = store.claim("c-1").await.unwrap();
    assert_eq!((claim.status, claim.version), (ClaimStatus::Submitted, 4));
    assert!(store.history("c-1").await.unwrap().is_empty());
    assert_eq!(harness::incentive_request(&store, "c-1").await, None);
}

async fn vanished_claim_is_gone(store: AnyStore) {
    migrated(&store).await;
    assert_eq!(
        harness::apply(&store, &auto_reject("ghost", 1)).await,
        ApplyOutcome::Gone
    );
    assert!(store.history("ghost").await.unwrap().is_empty());
}

async fn incentive_request_is_written_once(store: AnyStore) {
    migrated(&store).await;
    let mut row = sample("c-1", "approved");
    row.approved_at = Some(t0() - Duration::days(8));
    store.put_claim_row(&row).await.unwrap();
    let forward = |at: DateTime<Utc>| ClaimChange {
        claim_id: "c-1".into(),
        expected_status: ClaimStatus::Approved,
        expected_version: 3,
        at,
        status_change: None,
        history: HistoryEntry {
            claim_id: "c-1".into(),
            occurred_at: at,
            actor: Actor::System,
            action: "forwarded_to_incentive_evaluation".into(),
            details: json!({"timer": "consent_window_close"}).into(),
        },
        request_incentive_evaluation: true,
    };
    assert_eq!(
        harness::apply(&store, &forward(t0())).await,
        ApplyOutcome::Applied { version: 3 },
        "no status change: version stays"
    );
    harness::apply(&store, &forward(t0() + Duration::hours(1))).await;
    assert_eq!(harness::incentive_request(&store, "c-1").await, Some(t0()));
}

async fn concurrent_actions_on_one_version_apply_once(store: AnyStore) {
    migrated(&store).await;
    store
        .put_claim_row(&sample("c-1", "partner_action_required"))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { harness::apply(&store, &auto_reject("c-1", 3)).await })
        })
        .collect();
    let mut applied = 0;
    for t in tasks {
        if let ApplyOutcome::Applied { .. } = t.await.unwrap() {
            applied += 1;
        }
    }
    assert_eq!(applied, 1);
    assert_eq!(store.history("c-1").await.unwrap().len(), 1);
    assert_eq!(store.claim("c-1").await.unwrap().version, 4);
}

async fn claims_page_reads_every_claim_in_id_order(store: AnyStore) {
    migrated(&store).await;
    for i in (0..7).rev() {
        store
            .put_claim_row(&sample(&format!("c-{i}"), "submitted"))
            .await
            .unwrap();
    }
    harness::exec(
        &store,
        "INSERT INTO claims (id, status, country, updated_at, version) \
         VALUES ('c-3a', 'bogus', 'SE', '2026-01-05T10:00:00Z', 1)",
    )
    .await;
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.claims_page(&after, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.id.clone();
        seen.extend(page.into_iter().map(|c| (c.id, c.claim.is_ok())));
    }
    let ids: Vec<&str> = seen.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        ["c-0", "c-1", "c-2", "c-3", "c-3a", "c-4", "c-5", "c-6"]
    );
    assert_eq!(seen.iter().filter(|(_, ok)| !ok).count(), 1);
}
