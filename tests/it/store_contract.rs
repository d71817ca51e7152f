//! The store methods a pass uses, each tested directly on both backends: change records, the
//! timer index, fire batches (the outbox has `store_outbox.rs`, with these fixtures).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, Duration, Utc};
use cpor_worker::claim::ClaimRow;
use cpor_worker::lifecycle::{Actor, ClaimStatus, HistoryEntry, RejectionReason, StatusChange};
use cpor_worker::mail::EmailKind;
use cpor_worker::store::{
    AnyStore, CALENDAR_FINGERPRINT_KEY, ChangePage, ClaimWrite, ConsoleReads, FireInput, Hold,
    Outbox, OutboxEmail, Repairs, Store, SyncedClaim, TimerIndex, TimerRecord, TimerRow,
    message_id,
};
use cpor_worker::timers::{ClaimFacts, StatusSeen, TimerKind};
use serde_json::json;

use crate::harness;

backend_tests!(
    change_records_stay_until_their_page_commits_and_catch_a_bare_version_bump,
    concurrent_sync_pages_take_each_change_record_once,
    a_page_takes_only_the_records_after_the_one_it_is_given,
    a_claim_known_only_by_an_update_record_is_computed_as_new,
    save_sync_replaces_pending_timers_only_from_the_current_version,
    a_run_saved_again_after_it_fired_or_twice_in_one_save_is_one_row,
    a_status_change_seen_twice_is_one_step_of_the_timeline,
    a_status_change_the_saved_timers_did_not_see_marks_the_claim_for_recomputation,
    a_fire_batch_hands_each_due_claim_once_and_writes_what_was_decided,
    a_fire_batch_without_due_timers_decides_nothing,
    what_a_fire_batch_writes_reads_back_as_written,
    an_email_given_twice_or_again_by_a_later_batch_is_one_row,
    concurrent_fire_batches_hand_a_due_claim_to_one_of_them,
    overview_counts_are_exact_up_to_the_cap_and_say_more_beyond,
    a_pass_has_work_exactly_when_sync_or_fire_would_act,
    a_claim_deleted_while_marked_for_recomputation_does_not_keep_passes_busy,
);

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

pub(crate) const T0: &str = "2027-01-11T09:00:00Z";

pub(crate) fn claim(id: &str, status: &str) -> ClaimRow {
    ClaimRow {
        id: id.into(),
        status: status.into(),
        partner_name: Some("Nordljus Konsult AB".into()),
        partner_email: Some("claims@nordljus.example".into()),
        customer_name: Some("Åkerlund & Söner AB".into()),
        customer_email: Some("it@akerlund.example".into()),
        products: Some("Dynamics 365 Sales".into()),
        country: Some("SE".into()),
        submitted_at: Some(t(T0) - Duration::days(9)),
        review_started_at: Some(t(T0) - Duration::days(8)),
        info_requested_at: Some(t(T0) - Duration::days(7)),
        info_request_reason: Some("missing_products".into()),
        updated_at: Some(t(T0) - Duration::days(7)),
        version: 1,
        ..ClaimRow::default()
    }
}

pub(crate) fn synced(id: &str, version: i64, pending: Vec<TimerRow>) -> SyncedClaim {
    SyncedClaim {
        claim_id: id.into(),
        version,
        pending,
        problem: None,
        dirty_gen: 0,
        requeue: None,
        held: Vec::new(),
    }
}

pub(crate) fn timer(kind: TimerKind, start: &str, due: &str) -> TimerRow {
    TimerRow {
        kind,
        start: t(start),
        due: t(due),
    }
}

pub(crate) fn email(
    id: &str,
    timer: TimerKind,
    start: DateTime<Utc>,
    kind: EmailKind,
) -> OutboxEmail {
    OutboxEmail {
        message_id: message_id(id, timer, start, kind),
        claim_id: id.into(),
        timer,
        start,
        email: kind,
        to_name: "Nordljus Konsult AB".into(),
        to_address: "claims@nordljus.example".into(),
        locale: "sv-SE".into(),
        payload: json!({"claim_id": id}).into(),
        not_after: None,
        announced: None,
        calendar_version: None,
        template_version: None,
    }
}

pub(crate) async fn migrated(store: &AnyStore) {
    store.migrate().await.expect("migrate");
}

/// Puts `c1` under review with one pending reminder due at T0 + 1 h, computed from version 1.
pub(crate) async fn with_due_timer(store: &AnyStore) -> TimerRow {
    migrated(store).await;
    store
        .put_claim_row(&claim("c1", "partner_action_required"))
        .await
        .unwrap();
    let row = timer(
        TimerKind::PartnerResponseDeadline,
        "2027-01-04T09:00:00Z",
        "2027-01-11T10:00:00Z",
    );
    store
        .save_sync(&[synced("c1", 1, vec![row.clone()])], "fp", t(T0))
        .await
        .unwrap();
    row
}

/// Runs one sync page, saving each claim with no timers; returns the page and the claims
/// (id, version) it was asked to compute.
pub(crate) async fn sync_page(store: &AnyStore, limit: i64) -> (ChangePage, Vec<(String, i64)>) {
    let (page, asked, _) = sync_page_given(store, limit).await;
    (page, asked)
}

/// [`sync_page`], also returning the facts the page's computation was given.
async fn sync_page_given(
    store: &AnyStore,
    limit: i64,
) -> (ChangePage, Vec<(String, i64)>, HashMap<String, ClaimFacts>) {
    let (page, asked, given) = page_from(store, limit, 0).await;
    let asked = asked.into_iter().map(|(id, v, _)| (id, v)).collect();
    (page, asked, given)
}

/// One sync page of at most `limit` records after `after_seq`, saving each claim with no
/// timers; returns the page, the claims it was asked to compute (id, version, seen first) in
/// the order asked, and the facts it was given.
pub(crate) async fn page_from(
    store: &AnyStore,
    limit: i64,
    after_seq: i64,
) -> (
    ChangePage,
    Vec<(String, i64, bool)>,
    HashMap<String, ClaimFacts>,
) {
    let mut asked = Vec::new();
    let mut given = HashMap::new();
    let page = store
        .sync_changes(limit, after_seq, "fp", t(T0), |claims, facts| {
            asked = claims
                .iter()
                .map(|c| (c.id.clone(), c.version, c.first_sight))
                .collect();
            given = facts;
            std::future::ready(
                claims
                    .iter()
                    .map(|c| synced(&c.id, c.version, Vec::new()))
                    .collect(),
            )
        })
        .await
        .unwrap();
    (page, asked, given)
}

/// [`page_from`] of up to 100 records, its claims by id.
async fn page_after(store: &AnyStore, after_seq: i64) -> (ChangePage, Vec<(String, i64, bool)>) {
    let (page, mut asked, _) = page_from(store, 100, after_seq).await;
    asked.sort();
    (page, asked)
}

/// The ids of [`page_after`]'s claims.
fn ids(asked: &[(String, i64, bool)]) -> Vec<&str> {
    asked.iter().map(|(id, _, _)| id.as_str()).collect()
}

/// A sync page takes the records after `after_seq` (a pass's later pages start after the last
/// record taken) and says the last it took; a record before it stays for a page that starts
/// earlier (the next pass).
async fn a_page_takes_only_the_records_after_the_one_it_is_given(store: AnyStore) {
    migrated(&store).await;
    for id in ["c1", "c2", "c3"] {
        store.put_claim_row(&claim(id, "submitted")).await.unwrap();
    }
    let c1_seq = harness::scalar(
        &store,
        "SELECT seq FROM cpor_claim_changes WHERE claim_id = 'c1'",
    )
    .await;
    let c3_seq = harness::scalar(
        &store,
        "SELECT seq FROM cpor_claim_changes WHERE claim_id = 'c3'",
    )
    .await;
    let (page, asked) = page_after(&store, c1_seq).await;
    assert_eq!(ids(&asked), ["c2", "c3"]);
    assert_eq!((page.records, page.last_seq), (2, c3_seq), "{page:?}");
    // Nothing after the last: the page says where it started.
    let (page, asked) = page_after(&store, c3_seq).await;
    assert!(asked.is_empty());
    assert_eq!((page.records, page.last_seq), (0, c3_seq), "{page:?}");
    // c1's record stayed for a page that starts before it.
    let (page, asked) = page_after(&store, 0).await;
    assert_eq!(ids(&asked), ["c1"]);
    assert_eq!((page.records, page.last_seq), (1, c1_seq), "{page:?}");
}

/// A page reads a claim it has only an update's record of, never seen by the worker (its insert's
/// record taken without it), as new; and one it has an insert's record of that it has seen
/// (deleted and inserted again) under its lock, as seen before.
async fn a_claim_known_only_by_an_update_record_is_computed_as_new(store: AnyStore) {
    migrated(&store).await;
    store
        .put_claim_row(&claim("c1", "submitted"))
        .await
        .unwrap();
    harness::exec(
        &store,
        "UPDATE claims SET status = 'under_review', version = 2 WHERE id = 'c1'",
    )
    .await;
    harness::exec(
        &store,
        "DELETE FROM cpor_claim_changes WHERE old_status IS NULL",
    )
    .await;
    store
        .put_claim_row(&claim("c2", "submitted"))
        .await
        .unwrap();
    let (page, seen) = page_after(&store, 0).await;
    assert_eq!(page.synced, 2, "{page:?}");
    assert_eq!(
        seen,
        [("c1".to_owned(), 2, true), ("c2".to_owned(), 1, true)]
    );
    // c2 deleted and inserted again: an insert's record of a claim seen before.
    harness::exec(&store, "DELETE FROM claims WHERE id = 'c2'").await;
    let (_, seen) = page_after(&store, 0).await;
    assert!(seen.is_empty(), "{seen:?}");
    let mut again = claim("c2", "submitted");
    again.version = 3;
    store.put_claim_row(&again).await.unwrap();
    let (page, seen) = page_after(&store, 0).await;
    assert_eq!(page.synced, 1, "{page:?}");
    assert_eq!(seen, [("c2".to_owned(), 3, false)]);
}

async fn change_records_stay_until_their_page_commits_and_catch_a_bare_version_bump(
    store: AnyStore,
) {
    migrated(&store).await;
    store
        .put_claim_row(&claim("c1", "submitted"))
        .await
        .unwrap();
    // A page that fails (here: one result short) commits nothing: its record stays.
    let failed = store
        .sync_changes(100, 0, "fp", t(T0), |_claims, _facts| {
            std::future::ready(Vec::new())
        })
        .await;
    assert!(failed.is_err(), "{failed:?}");
    let (page, asked) = sync_page(&store, 100).await;
    assert_eq!((page.records, page.synced), (1, 1), "{page:?}");
    assert_eq!(asked, vec![("c1".to_owned(), 1)]);
    // Consumed: the next page is empty.
    let (page, asked) = sync_page(&store, 100).await;
    assert_eq!((page.records, asked.len()), (0, 0));
    // The main system bumps the version and leaves updated_at as it was.
    let mut bumped = claim("c1", "under_review");
    bumped.version = 2;
    store.put_claim_row(&bumped).await.unwrap();
    let (page, asked) = sync_page(&store, 100).await;
    assert_eq!(page.records, 1);
    assert_eq!(asked, vec![("c1".to_owned(), 2)]);
    // A record of a claim whose timers are already those of its version asks nothing.
    let mut again = bumped.clone();
    again.status = "under_review".into();
    store.put_claim_row(&again).await.unwrap();
    let (page, asked) = sync_page(&store, 100).await;
    assert_eq!(
        (page.records, page.synced, asked.len()),
        (1, 0, 0),
        "{asked:?}"
    );
}

/// Two records of one claim in different pages (a backlog, pages side by side): the first
/// page computes the claim's current version from a timeline without the second record's
/// status change (here the answer to an information request, so the decision SLA looked
/// paused). The page that takes the second record finds the claim's timers current and writes
/// the step to the timeline; it also marks the claim for recomputation, as the computation
/// did not see that step. A record that changes no status marks nothing.
async fn a_status_change_the_saved_timers_did_not_see_marks_the_claim_for_recomputation(
    store: AnyStore,
) {
    migrated(&store).await;
    store
        .put_claim_row(&claim("c1", "submitted"))
        .await
        .unwrap();
    sync_page(&store, 100).await;
    let mut asked = claim("c1", "partner_action_required");
    asked.version = 2;
    store.put_claim_row(&asked).await.unwrap();
    let mut answered = claim("c1", "submitted");
    answered.version = 3;
    answered.submitted_at = Some(t(T0) - Duration::days(5));
    store.put_claim_row(&answered).await.unwrap();
    let stale = |store: AnyStore| async move {
        let stale = store.stale_claims("fp", false, "", 100).await.unwrap();
        stale.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };
    let (page, computed) = sync_page(&store, 1).await;
    assert_eq!(page.records, 1);
    assert_eq!(computed, vec![("c1".to_owned(), 3)]);
    assert!(stale(store.clone()).await.is_empty());
    let (page, computed) = sync_page(&store, 1).await;
    assert_eq!((page.records, computed.len()), (1, 0), "{page:?}");
    assert_eq!(
        stale(store.clone()).await,
        ["c1"],
        "the step the timers did not see"
    );
    let facts = store.facts(&["c1".to_owned()]).await.unwrap();
    assert_eq!(facts["c1"].timeline.len(), 3);
    // Recomputed (the mark's generation given back), then a record with no status change.
    let mut recomputed = synced("c1", 3, Vec::new());
    recomputed.dirty_gen = 1;
    store.save_sync(&[recomputed], "fp", t(T0)).await.unwrap();
    assert!(stale(store.clone()).await.is_empty());
    harness::exec(&store, "UPDATE claims SET version = 4 WHERE id = 'c1'").await;
    store
        .save_sync(&[synced("c1", 4, Vec::new())], "fp", t(T0))
        .await
        .unwrap();
    let (page, _) = sync_page(&store, 1).await;
    assert_eq!(page.records, 1);
    assert!(stale(store.clone()).await.is_empty(), "no status changed");
}

/// A resubmission that keeps `submitted_at` (and a second information request that keeps
/// `info_requested_at`) repeats a status change the timeline has already: whether the records
/// come in separate pages or in one, the claim's timeline has each change once, in order.
async fn a_status_change_seen_twice_is_one_step_of_the_timeline(store: AnyStore) {
    migrated(&store).await;
    let submitted = claim("c1", "submitted");
    let mut asked = claim("c1", "partner_action_required");
    let (submitted_at, asked_at) = (submitted.submitted_at, asked.info_requested_at);
    store.put_claim_row(&submitted).await.unwrap();
    sync_page(&store, 1).await;
    asked.version = 2;
    store.put_claim_row(&asked).await.unwrap();
    sync_page(&store, 1).await;
    // Resubmitted, asked again, resubmitted: three records in one page.
    for (version, row) in [(3, &submitted), (4, &asked), (5, &submitted)] {
        let mut row = row.clone();
        row.version = version;
        store.put_claim_row(&row).await.unwrap();
    }
    let (page, _, given) = sync_page_given(&store, 100).await;
    assert_eq!(page.records, 3, "{page:?}");
    let steps = |timeline: &[StatusSeen]| -> Vec<_> {
        timeline.iter().map(|s| (Some(s.at), s.new)).collect()
    };
    let expected = vec![
        (submitted_at, Some(ClaimStatus::Submitted)),
        (asked_at, Some(ClaimStatus::PartnerActionRequired)),
    ];
    // As the page's computation was given it, and as read afterwards.
    assert_eq!(steps(&given["c1"].timeline), expected);
    let facts = store.facts(&["c1".to_owned()]).await.unwrap();
    assert_eq!(steps(&facts["c1"].timeline), expected);
}

async fn concurrent_sync_pages_take_each_change_record_once(store: AnyStore) {
    migrated(&store).await;
    for i in 0..6 {
        store
            .put_claim_row(&claim(&format!("c{i}"), "submitted"))
            .await
            .unwrap();
    }
    let pages: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut taken = (0, Vec::new());
                loop {
                    let (page, asked) = sync_page(&store, 1).await;
                    if page.records == 0 {
                        return taken;
                    }
                    taken.0 += page.records;
                    taken.1.extend(asked.into_iter().map(|(id, _)| id));
                }
            })
        })
        .collect();
    let (mut records, mut computed) = (0, Vec::new());
    for p in pages {
        let (n, ids) = p.await.unwrap();
        records += n;
        computed.extend(ids);
    }
    computed.sort();
    assert_eq!(records, 6);
    assert_eq!(
        computed,
        (0..6).map(|i| format!("c{i}")).collect::<Vec<_>>()
    );
}

async fn save_sync_replaces_pending_timers_only_from_the_current_version(store: AnyStore) {
    let row = with_due_timer(&store).await;
    assert_eq!(
        store
            .count_due(row.due - Duration::seconds(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.count_due(row.due).await.unwrap(), 1);
    // The main system writes version 2; timers computed from version 2 replace the old ones.
    let mut v2 = claim("c1", "partner_action_required");
    v2.version = 2;
    store.put_claim_row(&v2).await.unwrap();
    let later = TimerRow {
        due: row.due + Duration::days(1),
        ..row.clone()
    };
    store
        .save_sync(&[synced("c1", 2, vec![later.clone()])], "fp", t(T0))
        .await
        .unwrap();
    assert_eq!(store.count_due(row.due).await.unwrap(), 0);
    assert_eq!(store.count_due(later.due).await.unwrap(), 1);
    // Timers computed from version 1 arrive late (a slow replica): they are not saved over
    // version 2's, and the claim is marked for recomputation.
    store
        .save_sync(&[synced("c1", 1, Vec::new())], "fp", t(T0))
        .await
        .unwrap();
    assert_eq!(store.count_due(later.due).await.unwrap(), 1);
    let stale = store.stale_claims("fp", false, "", 10).await.unwrap();
    assert_eq!(stale.len(), 1, "marked dirty: {stale:?}");
    assert_eq!(stale[0].id, "c1");
    store
        .save_sync(&[synced("c1", 2, Vec::new())], "fp", t(T0))
        .await
        .unwrap();
    assert_eq!(store.count_due(later.due).await.unwrap(), 0);
}

async fn a_run_saved_again_after_it_fired_or_twice_in_one_save_is_one_row(store: AnyStore) {
    // c1's reminder fired (with_pending_email); a recomputation that offers the same run as
    // pending again, and a new run twice, saves without error: the fired row stays fired, the
    // new run is one row.
    let fired_at = with_pending_email(&store).await;
    let fired = timer(
        TimerKind::PartnerResponseDeadline,
        "2027-01-04T09:00:00Z",
        "2027-01-11T10:00:00Z",
    );
    let new = timer(
        TimerKind::PartnerResponseDeadline,
        "2027-01-11T09:00:00Z",
        "2027-01-18T10:00:00Z",
    );
    store
        .save_sync(
            &[synced(
                "c1",
                1,
                vec![fired.clone(), new.clone(), new.clone()],
            )],
            "fp",
            t(T0),
        )
        .await
        .unwrap();
    assert_eq!(store.count_due(fired_at).await.unwrap(), 0, "still fired");
    assert_eq!(store.count_due(new.due).await.unwrap(), 1, "one row");
    // Saved again as it is: nothing changes, nothing fails.
    store
        .save_sync(&[synced("c1", 1, vec![fired, new.clone()])], "fp", t(T0))
        .await
        .unwrap();
    assert_eq!(store.count_due(new.due).await.unwrap(), 1);
}

async fn a_fire_batch_hands_each_due_claim_once_and_writes_what_was_decided(store: AnyStore) {
    let row = with_due_timer(&store).await;
    let now = row.due;
    let mut seen = Vec::new();
    let handled = store
        .fire_batch(
            now,
            10,
            "fp",
            each(|input| {
                seen.push((input.claim_id.clone(), input.synced_version));
                let history = HistoryEntry {
                    claim_id: "c1".into(),
                    occurred_at: now,
                    actor: Actor::System,
                    action: "auto_rejected".into(),
                    details: json!({"timer": row.kind.as_str()}).into(),
                };
                ClaimWrite {
                    status_change: Some(StatusChange {
                        to: ClaimStatus::Rejected,
                        rejection_reason: Some(RejectionReason::NoPartnerResponse),
                    }),
                    history: vec![history],
                    incentive: true,
                    emails: vec![email("c1", row.kind, row.start, EmailKind::ClaimRejected)],
                    fired: vec![(row.kind, row.start, row.due, "fired".into())],
                    resync: Some(synced("c1", 2, Vec::new())),
                    ..ClaimWrite::default()
                }
            }),
        )
        .await
        .unwrap();
    assert_eq!(handled, 1);
    assert_eq!(seen, [("c1".to_owned(), 1)]);
    let c = store.claim("c1").await.unwrap();
    assert_eq!(c.status, ClaimStatus::Rejected);
    assert_eq!(c.rejection_reason, Some(RejectionReason::NoPartnerResponse));
    assert_eq!(c.version, 2, "the status change bumps the version");
    assert_eq!(c.rejected_at, Some(now), "rejected at the batch's instant");
    assert_eq!(c.updated_at, Some(now));
    assert_eq!(harness::incentive_request(&store, "c1").await, Some(now));
    let history = store.history("c1").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].action, "auto_rejected");
    let emails = store.claim_emails("c1").await.unwrap();
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0].0.email, EmailKind::ClaimRejected);
    assert_eq!(emails[0].1, "pending");
    assert_eq!(store.count_due(now).await.unwrap(), 0);
    // The batch's own status change is in the timeline already, and its change record gone:
    // a page takes only the record of the claim's insert.
    let facts = store.facts(&["c1".to_owned()]).await.unwrap();
    let last = facts["c1"].timeline.last().map(|s| s.new);
    assert_eq!(last, Some(Some(ClaimStatus::Rejected)));
    let (page, _) = sync_page(&store, 100).await;
    assert_eq!(page.records, 1, "{page:?}");
    // Nothing is due any more: the next batch hands nothing to decide.
    let again = store
        .fire_batch(now, 10, "fp", each(|_| panic!("nothing is due")))
        .await
        .unwrap();
    assert_eq!(again, 0);
}

async fn a_fire_batch_without_due_timers_decides_nothing(store: AnyStore) {
    let row = with_due_timer(&store).await;
    let n = store
        .fire_batch(
            row.due - Duration::seconds(1),
            10,
            "fp",
            each(|_| panic!("not due yet")),
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert!(store.history("c1").await.unwrap().is_empty());
}

/// The rows a fire batch inserts (on PostgreSQL by `COPY` in binary) read back as they were
/// given: text with tabs, line breaks, backslashes, quotes and letters beyond ASCII, absent
/// values, instants to the microsecond, and a run fired that was never pending.
async fn what_a_fire_batch_writes_reads_back_as_written(store: AnyStore) {
    let row = with_due_timer(&store).await;
    let now = row.due + Duration::microseconds(123_457);
    let awkward = "Åsa \"Nordljus\"\tKonsult\\AB\r\nrad två ☃ \\N";
    let mut full = email("c1", row.kind, row.start, EmailKind::ClaimRejected);
    full.to_name = awkward.into();
    full.to_address = "åsa+tab\t@nordljus.example".into();
    full.payload = json!({"claim_id": "c1", "note": awkward, "n": 1.5, "none": null}).into();
    full.not_after = Some(t("2027-02-01T10:11:12.654321Z"));
    full.announced = Some((
        chrono::NaiveDate::from_ymd_opt(2027, 2, 1).unwrap(),
        t("2027-02-01T22:59:59.999999Z"),
    ));
    full.calendar_version = Some("2026.1+265d6ede321b13f0".into());
    full.template_version = Some("t\\1".into());
    // Every optional value absent.
    let bare = email(
        "c1",
        row.kind,
        row.start,
        EmailKind::PartnerResponseReminder,
    );
    // A run settled without ever having been pending gets a row of its own.
    let settled = timer(
        TimerKind::RejectionNotice,
        "1999-12-31T23:59:59.000001Z",
        "2027-01-11T09:30:00Z",
    );
    let (given, runs) = (
        vec![full.clone(), bare.clone()],
        vec![
            (row.kind, row.start, row.due, "fired".to_owned()),
            (
                settled.kind,
                settled.start,
                settled.due,
                format!("skipped: {awkward}"),
            ),
        ],
    );
    let handled = store
        .fire_batch(
            now,
            10,
            "fp",
            each(move |_| ClaimWrite {
                history: vec![HistoryEntry {
                    claim_id: "c1".into(),
                    occurred_at: now,
                    actor: Actor::System,
                    action: format!("noted {awkward}"),
                    details: json!({"timer": "rejection_notice", "why": awkward}).into(),
                }],
                emails: given.clone(),
                fired: runs.clone(),
                resync: Some(synced("c1", 1, Vec::new())),
                ..ClaimWrite::default()
            }),
        )
        .await
        .unwrap();
    assert_eq!(handled, 1);
    let emails = store.claim_emails("c1").await.unwrap();
    let states: Vec<&str> = emails.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(states, ["pending", "pending"]);
    let read: Vec<&OutboxEmail> = emails.iter().map(|(e, _)| e).collect();
    assert_eq!(read, [&full, &bare]);
    let history = store.history("c1").await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].occurred_at, now);
    assert_eq!(history[0].action, format!("noted {awkward}"));
    assert_eq!(
        history[0].details,
        json!({"timer": "rejection_notice", "why": awkward}).into()
    );
    let facts = store.facts(&["c1".to_owned()]).await.unwrap();
    let mut fired: Vec<(TimerKind, DateTime<Utc>, DateTime<Utc>, &str)> = facts["c1"]
        .fired
        .iter()
        .map(|f| (f.kind, f.start, f.at, f.outcome.as_str()))
        .collect();
    fired.sort_by_key(|f| f.1);
    let skipped = format!("skipped: {awkward}");
    let want = [
        (settled.kind, settled.start, now, skipped.as_str()),
        (row.kind, row.start, now, "fired"),
    ];
    assert_eq!(fired, want);
    assert_eq!(store.count_due(now).await.unwrap(), 0);
}

/// A batch inserts the emails it decided without a conflict check, having read the claims'
/// emails: one given twice in a batch, or again by a later batch (same Message-ID), is one row.
async fn an_email_given_twice_or_again_by_a_later_batch_is_one_row(store: AnyStore) {
    let row = with_due_timer(&store).await;
    let rejected = email("c1", row.kind, row.start, EmailKind::ClaimRejected);
    let fire = |run: &TimerRow, emails: Vec<OutboxEmail>| {
        let run = run.clone();
        each(move |_| ClaimWrite {
            emails: emails.clone(),
            fired: vec![(run.kind, run.start, run.due, "fired".into())],
            resync: Some(synced("c1", 1, Vec::new())),
            ..ClaimWrite::default()
        })
    };
    let first = store
        .fire_batch(
            row.due,
            10,
            "fp",
            fire(&row, vec![rejected.clone(), rejected.clone()]),
        )
        .await
        .unwrap();
    assert_eq!(first, 1);
    // A later run of the claim, due at once, decides the same email again and a new one.
    let later = timer(
        TimerKind::PartnerResponseDeadline,
        "2027-01-05T09:00:00Z",
        T0,
    );
    store
        .save_sync(&[synced("c1", 1, vec![later.clone()])], "fp", t(T0))
        .await
        .unwrap();
    let notice = email("c1", later.kind, later.start, EmailKind::ClaimRejected);
    let second = store
        .fire_batch(
            t(T0),
            10,
            "fp",
            fire(&later, vec![rejected.clone(), notice.clone()]),
        )
        .await
        .unwrap();
    assert_eq!(second, 1);
    let mut ids: Vec<String> = store
        .claim_emails("c1")
        .await
        .unwrap()
        .into_iter()
        .map(|(e, _)| e.message_id)
        .collect();
    ids.sort();
    let mut expected = vec![rejected.message_id, notice.message_id];
    expected.sort();
    assert_eq!(ids, expected);
}

/// Fires `c1`'s due timer with one rejection email; the instant it fired.
pub(crate) async fn with_pending_email(store: &AnyStore) -> DateTime<Utc> {
    let row = with_due_timer(store).await;
    store
        .fire_batch(
            row.due,
            10,
            "fp",
            each(|_| ClaimWrite {
                emails: vec![email("c1", row.kind, row.start, EmailKind::ClaimRejected)],
                fired: vec![(row.kind, row.start, row.due, "fired".into())],
                resync: Some(synced("c1", 1, Vec::new())),
                ..ClaimWrite::default()
            }),
        )
        .await
        .unwrap();
    row.due
}

async fn concurrent_fire_batches_hand_a_due_claim_to_one_of_them(store: AnyStore) {
    let row = with_due_timer(&store).await;
    let decided = Arc::new(AtomicUsize::new(0));
    let batches: Vec<_> = (0..4)
        .map(|_| {
            let (store, decided, row) = (store.clone(), decided.clone(), row.clone());
            tokio::spawn(async move {
                store
                    .fire_batch(
                        row.due,
                        10,
                        "fp",
                        each(|_| {
                            decided.fetch_add(1, Ordering::SeqCst);
                            ClaimWrite {
                                fired: vec![(row.kind, row.start, row.due, "fired".into())],
                                resync: Some(synced("c1", 1, Vec::new())),
                                ..ClaimWrite::default()
                            }
                        }),
                    )
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut handled = 0;
    for b in batches {
        handled += b.await.unwrap();
    }
    assert_eq!((handled, decided.load(Ordering::SeqCst)), (1, 1));
    assert_eq!(store.count_due(row.due).await.unwrap(), 0);
}

/// Five claims with one pending timer each: three due before T0, two on the next day.
async fn overview_counts_are_exact_up_to_the_cap_and_say_more_beyond(store: AnyStore) {
    migrated(&store).await;
    let mut synced_claims = Vec::new();
    for (i, due) in [
        "2027-01-10T09:00:00Z",
        "2027-01-10T10:00:00Z",
        "2027-01-11T08:00:00Z",
        "2027-01-12T01:00:00Z",
        "2027-01-12T23:59:59Z",
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("c{i}");
        store
            .put_claim_row(&claim(&id, "partner_action_required"))
            .await
            .unwrap();
        let row = timer(
            TimerKind::PartnerResponseDeadline,
            "2027-01-04T09:00:00Z",
            due,
        );
        synced_claims.push(synced(&id, 1, vec![row]));
    }
    store.save_sync(&synced_claims, "fp", t(T0)).await.unwrap();
    let days: Vec<DateTime<Utc>> = [
        "2027-01-11T00:00:00Z",
        "2027-01-12T00:00:00Z",
        "2027-01-13T00:00:00Z",
    ]
    .into_iter()
    .map(t)
    .collect();
    let exact = store.overview_counts(t(T0), &days, 10, 10).await.unwrap();
    assert_eq!(exact.due_now, 3, "{exact:?}");
    assert_eq!(exact.due_per_day, vec![1, 2], "{exact:?}");
    assert_eq!(
        (exact.problems, exact.dead_emails, exact.pending_emails),
        (0, 0, 0)
    );
    // With a cap of 2, a count of 3 comes back as 3 (= cap + 1, "more than 2"), 2 stays 2.
    let capped = store.overview_counts(t(T0), &days, 2, 2).await.unwrap();
    assert_eq!(capped.due_now, 3, "{capped:?}");
    assert_eq!(capped.due_per_day, vec![1, 2], "{capped:?}");
    let tight = store.overview_counts(t(T0), &days, 1, 1).await.unwrap();
    assert_eq!(tight.due_now, 2, "{tight:?}");
    assert_eq!(tight.due_per_day, vec![1, 2], "{tight:?}");
}

/// A fire batch's `decide` from one that decides a claim at a time.
pub(crate) fn each<F>(
    mut one: F,
) -> impl FnOnce(Vec<FireInput>) -> std::future::Ready<Vec<ClaimWrite>> + Send
where
    F: FnMut(FireInput) -> ClaimWrite + Send,
{
    move |inputs| std::future::ready(inputs.into_iter().map(&mut one).collect())
}

/// A history entry of `action` on claim `id` at `at` (the tests need no other actor).
fn entry(at: DateTime<Utc>, id: &str, action: &str) -> HistoryEntry {
    HistoryEntry {
        claim_id: id.into(),
        occurred_at: at,
        actor: Actor::System,
        action: action.into(),
        details: json!({}).into(),
    }
}

/// The probe that lets an idle pass skip its sync page and fire batch answers yes for each
/// thing one of them would act on, and no once each is dealt with.
async fn a_pass_has_work_exactly_when_sync_or_fire_would_act(store: AnyStore) {
    migrated(&store).await;
    let now = t(T0);
    // No calendars recorded yet: the first pass records them.
    assert!(store.has_work(now, "fp").await.unwrap());
    store
        .state_set(CALENDAR_FINGERPRINT_KEY, "fp", now)
        .await
        .unwrap();
    assert!(!store.has_work(now, "fp").await.unwrap());
    // Other calendars: every claim's timers are to be recomputed.
    assert!(store.has_work(now, "fp2").await.unwrap());
    // A change record, until its page commits.
    store
        .put_claim_row(&claim("c1", "partner_action_required"))
        .await
        .unwrap();
    assert!(store.has_work(now, "fp").await.unwrap());
    let (page, _) = sync_page(&store, 100).await;
    assert_eq!(page.records, 1);
    assert!(!store.has_work(now, "fp").await.unwrap());
    // A pending timer: from the instant it is due.
    let row = timer(
        TimerKind::PartnerResponseDeadline,
        "2027-01-04T09:00:00Z",
        "2027-01-11T10:00:00Z",
    );
    store
        .save_sync(&[synced("c1", 1, vec![row.clone()])], "fp", now)
        .await
        .unwrap();
    let before = row.due - Duration::seconds(1);
    assert!(!store.has_work(before, "fp").await.unwrap());
    assert!(store.has_work(row.due, "fp").await.unwrap());
    // Held by an operator, it is not the pass's to fire.
    let hold = Hold {
        claim_id: "c1".into(),
        reason: "checking".into(),
        held_by: "alice".into(),
        held_at: now,
    };
    assert!(
        store
            .hold_claim(&hold, Some(&entry(now, "c1", "held")))
            .await
            .unwrap()
    );
    assert!(!store.has_work(row.due, "fp").await.unwrap());
    // Marked for recomputation (an operator's resync): until the claim is computed again.
    store
        .resync_claim("c1", &entry(now, "c1", "resync"))
        .await
        .unwrap();
    assert!(store.has_work(before, "fp").await.unwrap());
    let stale = store.stale_claims("fp", false, "", 10).await.unwrap();
    assert_eq!(stale.len(), 1, "{stale:?}");
    let again = SyncedClaim {
        dirty_gen: stale[0].dirty_gen,
        ..synced("c1", 1, vec![row.clone()])
    };
    store.save_sync(&[again], "fp", now).await.unwrap();
    assert!(!store.has_work(before, "fp").await.unwrap());
}

/// A claim the main system deletes after it was marked for recomputation cannot be computed
/// again (it is gone): its mark no longer makes every pass busy, and the sync step clears it.
async fn a_claim_deleted_while_marked_for_recomputation_does_not_keep_passes_busy(store: AnyStore) {
    migrated(&store).await;
    let now = t(T0);
    store
        .state_set(CALENDAR_FINGERPRINT_KEY, "fp", now)
        .await
        .unwrap();
    for id in ["c1", "c2"] {
        store
            .put_claim_row(&claim(id, "partner_action_required"))
            .await
            .unwrap();
    }
    sync_page(&store, 100).await;
    let row = timer(
        TimerKind::PartnerResponseDeadline,
        "2027-01-04T09:00:00Z",
        "2027-01-11T10:00:00Z",
    );
    let before = row.due - Duration::seconds(1);
    store
        .save_sync(
            &[
                synced("c1", 1, vec![row.clone()]),
                synced("c2", 1, vec![row.clone()]),
            ],
            "fp",
            now,
        )
        .await
        .unwrap();
    for id in ["c1", "c2"] {
        store
            .resync_claim(id, &entry(now, id, "resync"))
            .await
            .unwrap();
    }
    harness::exec(&store, "DELETE FROM claims WHERE id = 'c1'").await;
    // c2 still exists: its mark is work, and only its own.
    assert!(store.has_work(before, "fp").await.unwrap());
    let stale = store.stale_claims("fp", false, "", 10).await.unwrap();
    let ids: Vec<&str> = stale.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c2"]);
    let again = SyncedClaim {
        dirty_gen: stale[0].dirty_gen,
        ..synced("c2", 1, vec![row.clone()])
    };
    store.save_sync(&[again], "fp", now).await.unwrap();
    // Only the deleted claim's mark is left: no pass can act on it.
    assert!(!store.has_work(before, "fp").await.unwrap());
    // Clearing it clears it once.
    assert_eq!(store.forget_gone_marks().await.unwrap(), 1);
    assert_eq!(store.forget_gone_marks().await.unwrap(), 0);
    // A pass with work (another claim changed) clears such a mark in its sync step.
    store
        .resync_claim("c2", &entry(now, "c2", "resync"))
        .await
        .unwrap();
    harness::exec(&store, "DELETE FROM claims WHERE id = 'c2'").await;
    store
        .put_claim_row(&claim("c3", "partner_action_required"))
        .await
        .unwrap();
    crate::never_miss::tick(&store, T0).await;
    assert_eq!(store.forget_gone_marks().await.unwrap(), 0);
    // A claim inserted again under that id is computed again: its old pending run gives way to
    // the timers of what it is now.
    let old_run = |timers: Vec<TimerRecord>| {
        timers
            .iter()
            .any(|r| r.state == "pending" && r.timer == TimerKind::PartnerResponseDeadline.as_str())
    };
    assert!(old_run(store.claim_timers("c1").await.unwrap()));
    store
        .put_claim_row(&claim("c1", "submitted"))
        .await
        .unwrap();
    crate::never_miss::tick(&store, T0).await;
    let timers = store.claim_timers("c1").await.unwrap();
    assert!(!old_run(timers.clone()), "{timers:?}");
}
