//! The store's repairs on both backends: a hold keeps a claim's due timers out of the fire batch
//! and the overdue count; releasing it (or a run held on first sight) lets them fire; every
//! repair that changes something writes exactly one history row, and one that changes nothing
//! writes none.

use cpor_worker::claim::ClaimRow;
use cpor_worker::repair::{self, Operator, RepairError};
use cpor_worker::store::{AnyStore, Outbox, Repairs, Store, StoreError, TimerIndex};

use crate::harness::exec;
use crate::never_miss::t;

backend_tests!(
    a_hold_keeps_due_timers_from_firing_until_released,
    a_run_held_on_first_sight_is_released_to_pending,
    repairs_on_a_missing_claim_or_email_change_nothing,
    a_discarded_email_is_never_taken_for_delivery,
);

fn op(reason: Option<&str>) -> Operator {
    Operator {
        who: "alice".into(),
        reason: reason.map(str::to_owned),
        at: t("2027-01-10T09:00:00Z"),
    }
}

async fn operator_rows(store: &AnyStore, id: &str) -> Vec<serde_json::Value> {
    store
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.action.starts_with("operator_"))
        .map(|h| h.details.into_value())
        .collect()
}

async fn claim_with_due_timer(store: &AnyStore, id: &str, state: &str) {
    store.migrate().await.unwrap();
    store
        .put_claim_row(&ClaimRow {
            id: id.into(),
            status: "submitted".into(),
            country: Some("SE".into()),
            locale: Some("en".into()),
            submitted_at: Some(t("2027-01-01T09:00:00Z")),
            updated_at: Some(t("2027-01-01T09:00:00Z")),
            version: 1,
            ..ClaimRow::default()
        })
        .await
        .unwrap();
    exec(
        store,
        &format!(
            "INSERT INTO cpor_timers (claim_id, timer, started_at, due_at, claim_version, state) \
             VALUES ('{id}', 'review_start_sla', '2027-01-01T09:00:00.000000Z', \
             '2027-01-08T23:00:00.000000Z', 1, '{state}')"
        ),
    )
    .await;
    exec(
        store,
        &format!(
            "INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, synced_at) \
             VALUES ('{id}', 1, 'x', '2027-01-01T09:00:00.000000Z')"
        ),
    )
    .await;
}

async fn a_hold_keeps_due_timers_from_firing_until_released(store: AnyStore) {
    claim_with_due_timer(&store, "c1", "pending").await;
    let now = t("2027-01-10T09:00:00Z");
    assert_eq!(store.count_due(now).await.unwrap(), 1);
    repair::hold(&store, "c1", &op(Some("checking the PoE")))
        .await
        .unwrap();
    assert!(matches!(
        repair::hold(&store, "c1", &op(Some("again"))).await,
        Err(RepairError::AlreadyHeld(_))
    ));
    assert_eq!(store.count_due(now).await.unwrap(), 0, "held: not overdue");
    let mut seen = Vec::new();
    let n = store
        .fire_batch(
            now,
            10,
            "x",
            crate::store_contract::each(|input| {
                seen.push(input.claim_id);
                Default::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!((n, seen.len()), (0, 0), "a held claim is not in the batch");
    let holds = store.holds(None).await.unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].reason, "checking the PoE");
    assert_eq!(holds[0].held_by, "alice");
    let rows = operator_rows(&store, "c1").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["operator_action"], "hold");
    assert_eq!(rows[0]["by"], "alice");
    assert_eq!(rows[0]["reason"], "checking the PoE");

    repair::release(&store, "c1", &op(Some("PoE fine")))
        .await
        .unwrap();
    assert_eq!(store.count_due(now).await.unwrap(), 1);
    assert!(store.holds(None).await.unwrap().is_empty());
    assert!(matches!(
        repair::release(&store, "c1", &op(None)).await,
        Err(RepairError::NotHeld(_))
    ));
    let rows = operator_rows(&store, "c1").await;
    assert_eq!(
        rows.len(),
        2,
        "one row per repair that changed something: {rows:?}"
    );
    assert_eq!(rows[1]["operator_action"], "release");
}

async fn a_run_held_on_first_sight_is_released_to_pending(store: AnyStore) {
    claim_with_due_timer(&store, "c1", "held").await;
    let now = t("2027-01-10T09:00:00Z");
    assert_eq!(store.count_due(now).await.unwrap(), 0);
    let done = repair::release(&store, "c1", &op(Some("go-live checked")))
        .await
        .unwrap();
    assert!(done.message.contains("first sight"), "{}", done.message);
    assert_eq!(store.count_due(now).await.unwrap(), 1);
    // Marked for recomputation by the next pass.
    let stale = store.stale_claims("x", false, "", 10).await.unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(operator_rows(&store, "c1").await.len(), 1);
}

async fn repairs_on_a_missing_claim_or_email_change_nothing(store: AnyStore) {
    store.migrate().await.unwrap();
    assert!(matches!(
        repair::hold(&store, "nope", &op(Some("x"))).await,
        Err(RepairError::Store(StoreError::NotFound(_)))
    ));
    assert!(matches!(
        repair::release(&store, "nope", &op(None)).await,
        Err(RepairError::Store(StoreError::NotFound(_)))
    ));
    assert!(matches!(
        repair::retry(&store, 42, &op(None)).await,
        Err(RepairError::NoEmail(42))
    ));
    claim_with_due_timer(&store, "c1", "pending").await;
    assert!(matches!(
        repair::hold(&store, "c1", &op(Some("  "))).await,
        Err(RepairError::NoReason)
    ));
    assert!(store.holds(None).await.unwrap().is_empty());
    assert!(operator_rows(&store, "c1").await.is_empty());
}

async fn a_discarded_email_is_never_taken_for_delivery(store: AnyStore) {
    store.migrate().await.unwrap();
    exec(
        &store,
        "INSERT INTO cpor_outbox (message_id, claim_id, timer, started_at, email, to_name, \
         to_address, locale, payload, state, attempts, next_attempt_at, created_at) VALUES \
         ('<m1>', 'c1', 'rejection_notice', '2027-01-01T09:00:00.000000Z', 'claim_rejected', \
         'P', 'p@example.com', 'en', '{}', 'pending', 0, '2027-01-01T09:00:00.000000Z', \
         '2027-01-01T09:00:00.000000Z')",
    )
    .await;
    let rows = store.outbox_list(Some("pending"), None, 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    let id = rows[0].id;
    assert!(matches!(
        repair::discard(&store, id, &op(None)).await,
        Err(RepairError::NoReason)
    ));
    assert!(matches!(
        repair::retry(&store, id, &op(None)).await,
        Err(RepairError::WrongState { .. })
    ));
    repair::discard(&store, id, &op(Some("sent by hand")))
        .await
        .unwrap();
    let taken = store
        .take_emails(t("2027-01-10T09:00:00Z"), t("2027-01-10T09:05:00Z"), 10)
        .await
        .unwrap();
    assert!(taken.is_empty());
    let row = store.outbox_row(id).await.unwrap().unwrap();
    assert_eq!(row.state, "discarded");
    let rows = operator_rows(&store, "c1").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["outbox_id"], id);
}
