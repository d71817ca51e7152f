//! A sync page and the transactions it meets on PostgreSQL (SQLite has one writer at a time):
//! a claim seen before is read under its row lock, a claim seen first without one, and its
//! sync row, inserted before its timers, decides which of two pages computes it (and reports
//! its problem); clearing the marks of deleted claims keeps a mark made while it waited.

use std::time::Duration;

use cpor_worker::claim::ClaimRow;
use cpor_worker::store::{AnyStore, PgStore, Store, TimerIndex};
use cpor_worker::worker::TickOutcome;

use crate::harness;
use crate::store_contract::{T0, claim, migrated, sync_page, synced, t};

fn pg(store: &AnyStore) -> &PgStore {
    let AnyStore::Postgres(pg) = store else {
        unreachable!("PostgreSQL tests")
    };
    pg
}

/// Waits until some statement of this database waits on a lock (the page on its rival).
async fn until_one_waits(pg: &PgStore) {
    for _ in 0..400 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND datname = current_database()",
        )
        .fetch_one(pg.pool())
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the page never waited on the other transaction");
}

/// A rival page that saw claim `c1` first, between its sync-row insert and its commit.
async fn rival_seeing_c1_first(store: &AnyStore) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut rival = pg(store).pool().begin().await.unwrap();
    sqlx::query(
        "INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, dirty, dirty_gen, \
         synced_at) VALUES ('c1', 1, 'fp', FALSE, 0, now())",
    )
    .execute(&mut *rival)
    .await
    .unwrap();
    rival
}

/// The status changes the timeline keeps for `id`.
async fn timeline_len(store: &AnyStore, id: &str) -> usize {
    let facts = store.facts(&[id.to_owned()]).await.unwrap();
    facts.get(id).map_or(0, |f| f.timeline.len())
}

async fn two_claims_submitted(test: &str) -> Option<harness::TestStore> {
    let db = harness::postgres_unmigrated(test).await?;
    migrated(&db.store).await;
    for id in ["c1", "c2"] {
        db.store
            .put_claim_row(&claim(id, "submitted"))
            .await
            .unwrap();
    }
    Some(db)
}

/// A page leaves the change record of a claim seen before that another transaction holds (the
/// main system mid-update, a replica's fire batch) in place: if the holder rolls back, nothing
/// else says the claim changed, and the next page computes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_seen_claim_held_elsewhere_keeps_its_change_record_for_a_later_page() {
    let Some(db) = two_claims_submitted("held_elsewhere").await else {
        return;
    };
    let store = db.store.clone();
    sync_page(&store, 100).await;
    for id in ["c1", "c2"] {
        let mut bumped = claim(id, "submitted");
        bumped.version = 2;
        store.put_claim_row(&bumped).await.unwrap();
    }
    let mut holder = pg(&store).pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM claims WHERE id = 'c1' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let (page, asked) = sync_page(&store, 100).await;
    assert_eq!(
        (page.records, page.synced, page.left),
        (2, 1, 1),
        "{page:?}"
    );
    assert_eq!(asked, vec![("c2".to_owned(), 2)]);
    holder.rollback().await.unwrap();
    let (page, asked) = sync_page(&store, 100).await;
    assert_eq!(
        (page.records, page.synced, page.left),
        (1, 1, 0),
        "{page:?}"
    );
    assert_eq!(asked, vec![("c1".to_owned(), 2)]);
    assert_eq!(sync_page(&store, 100).await.0.records, 0);
}

/// On first sight a page takes no row lock: a claim the main system is updating is computed
/// from its committed version without waiting, and the update's own record, once committed,
/// has the next page compute the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_first_sight_computes_the_committed_version_of_a_claim_being_updated() {
    let Some(db) = two_claims_submitted("first_sight_unlocked").await else {
        return;
    };
    let store = db.store.clone();
    let mut main_system = pg(&store).pool().begin().await.unwrap();
    sqlx::query("UPDATE claims SET version = 2, status = 'under_review' WHERE id = 'c1'")
        .execute(&mut *main_system)
        .await
        .unwrap();
    let (page, asked) = tokio::time::timeout(Duration::from_secs(30), sync_page(&store, 100))
        .await
        .expect("a first sight waits on no claim lock");
    assert_eq!(
        (page.records, page.synced, page.left),
        (2, 2, 0),
        "{page:?}"
    );
    assert_eq!(asked, vec![("c1".to_owned(), 1), ("c2".to_owned(), 1)]);
    main_system.commit().await.unwrap();
    let (page, asked) = sync_page(&store, 100).await;
    assert_eq!((page.records, page.synced), (1, 1), "{page:?}");
    assert_eq!(asked, vec![("c1".to_owned(), 2)]);
    assert_eq!(
        timeline_len(&store, "c1").await,
        2,
        "submitted, then under review"
    );
}

/// Two pages holding records of one claim it sees first compute it once: the second to
/// insert the claim's sync row waits for the first; if the first commits, the second drops
/// its result and leaves its record and status change to a later page (which finds the claim
/// up to date); if the first rolls back, the second computes the claim.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_pages_seeing_a_claim_first_compute_it_once() {
    for rival_commits in [true, false] {
        let Some(db) = two_claims_submitted("first_sight_rivals").await else {
            return;
        };
        let store = db.store.clone();
        let rival = rival_seeing_c1_first(&store).await;
        let page = tokio::spawn({
            let store = store.clone();
            async move { sync_page(&store, 100).await }
        });
        until_one_waits(pg(&store)).await;
        if rival_commits {
            rival.commit().await.unwrap();
        } else {
            rival.rollback().await.unwrap();
        }
        let (page, asked) = page.await.unwrap();
        assert_eq!(asked, vec![("c1".to_owned(), 1), ("c2".to_owned(), 1)]);
        if !rival_commits {
            assert_eq!(
                (page.records, page.synced, page.left),
                (2, 2, 0),
                "{page:?}"
            );
            assert!(page.lost.is_empty(), "{page:?}");
            assert_eq!(timeline_len(&store, "c1").await, 1);
            continue;
        }
        assert_eq!(
            (page.records, page.synced, page.left),
            (2, 1, 1),
            "{page:?}"
        );
        assert_eq!(page.lost, ["c1"]);
        assert_eq!(timeline_len(&store, "c1").await, 0, "left with its record");
        assert_eq!(timeline_len(&store, "c2").await, 1);
        let (page, asked) = sync_page(&store, 100).await;
        assert_eq!(
            (page.records, page.synced, page.left, asked.len()),
            (1, 0, 0, 0),
            "up to date: {page:?}"
        );
        assert_eq!(timeline_len(&store, "c1").await, 1);
    }
}

/// A sync row written while a first-sight page computes (here marking the claim for
/// recomputation) leaves the claim to a later page, which computes it under its lock and
/// clears the mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_sync_row_written_while_a_first_sight_computes_leaves_the_claim_to_a_later_page()
{
    let Some(db) = harness::postgres_unmigrated("sync_row_meanwhile").await else {
        return;
    };
    let store = db.store.clone();
    migrated(&store).await;
    store
        .put_claim_row(&claim("c1", "submitted"))
        .await
        .unwrap();
    let other = store.clone();
    let at = t(T0);
    let page = store
        .sync_changes(100, 0, "fp", at, {
            move |claims, _facts| async move {
                assert!(claims[0].first_sight);
                harness::exec(
                    &other,
                    "INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, dirty, \
                     dirty_gen, synced_at) VALUES ('c1', -1, 'fp', TRUE, 1, now())",
                )
                .await;
                claims
                    .iter()
                    .map(|c| synced(&c.id, c.version, Vec::new()))
                    .collect()
            }
        })
        .await
        .unwrap();
    assert_eq!(
        (page.records, page.synced, page.left),
        (1, 0, 1),
        "{page:?}"
    );
    assert_eq!(page.lost, ["c1"]);
    let row = || async {
        sqlx::query_as::<_, (i64, bool)>(
            "SELECT version, dirty FROM cpor_claim_sync WHERE claim_id = 'c1'",
        )
        .fetch_one(pg(&store).pool())
        .await
        .unwrap()
    };
    assert_eq!(row().await, (-1, true), "the mark, as written");
    let page = store
        .sync_changes(100, 0, "fp", at, |claims, _facts| {
            assert_eq!(claims.len(), 1);
            assert!(!claims[0].first_sight);
            let mut later = synced(&claims[0].id, claims[0].version, Vec::new());
            later.dirty_gen = claims[0].dirty_gen;
            std::future::ready(vec![later])
        })
        .await
        .unwrap();
    assert_eq!((page.records, page.synced), (1, 1), "{page:?}");
    assert_eq!(row().await, (1, false), "computed after the mark");
}

/// Clearing the marks of claims the main system deleted keeps a mark made meanwhile: a claim
/// inserted again under the id and marked again while the clearing waits on its sync row keeps
/// its new mark (the clearing judges the claim by its own snapshot, where it is missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_clearing_a_deleted_claims_mark_keeps_a_mark_made_meanwhile() {
    let Some(db) = two_claims_submitted("gone_mark_kept").await else {
        return;
    };
    let store = db.store.clone();
    sync_page(&store, 100).await;
    harness::exec(
        &store,
        "UPDATE cpor_claim_sync SET dirty = TRUE, dirty_gen = dirty_gen + 1 WHERE claim_id = 'c1'",
    )
    .await;
    harness::exec(&store, "DELETE FROM claims WHERE id = 'c1'").await;
    let mut holder = pg(&store).pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM cpor_claim_sync WHERE claim_id = 'c1' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let clearing = tokio::spawn({
        let store = store.clone();
        async move { store.forget_gone_marks().await.unwrap() }
    });
    until_one_waits(pg(&store)).await;
    // Meanwhile the main system inserts the claim again, and it is marked again.
    store
        .put_claim_row(&claim("c1", "submitted"))
        .await
        .unwrap();
    sqlx::query(
        "UPDATE cpor_claim_sync SET dirty = TRUE, dirty_gen = dirty_gen + 1 WHERE claim_id = 'c1'",
    )
    .execute(&mut *holder)
    .await
    .unwrap();
    holder.commit().await.unwrap();
    assert_eq!(clearing.await.unwrap(), 0);
    let stale = store.stale_claims("fp", false, "", 10).await.unwrap();
    let ids: Vec<&str> = stale.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["c1"]);
}

/// A claim another page (or replica) computed first is that page's to report: a pass whose page
/// lost a claim with a problem does not report it; the pass that computes the claim does, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_problem_of_a_claim_another_page_computed_first_is_reported_once() {
    let Some(db) = harness::postgres_unmigrated("lost_problem").await else {
        return;
    };
    let store = db.store.clone();
    migrated(&store).await;
    let bad = ClaimRow {
        country: Some("XX".into()),
        ..claim("c1", "submitted")
    };
    store.put_claim_row(&bad).await.unwrap();
    store
        .put_claim_row(&claim("c2", "submitted"))
        .await
        .unwrap();
    let rival = rival_seeing_c1_first(&store).await;
    let pass = tokio::spawn({
        let store = store.clone();
        async move { crate::never_miss::tick(&store, T0).await }
    });
    until_one_waits(pg(&store)).await;
    rival.commit().await.unwrap();
    let first = pass.await.unwrap();
    let about = |out: &TickOutcome| out.problems.iter().filter(|p| p.claim_id == "c1").count();
    assert_eq!(about(&first), 0, "{:?}", first.problems);
    let second = crate::never_miss::tick(&store, T0).await;
    assert_eq!(about(&second), 1, "{:?}", second.problems);
}
