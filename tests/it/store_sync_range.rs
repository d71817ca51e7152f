//! A sync page of many claims new to the worker reads them by one id range (a first pass's
//! pages: their records in the order the claims were inserted). Each test checks, on both
//! backends, that the page computes exactly its own claims, each once, whatever else the range
//! holds: claims of later pages, more claims than the range scan reads, a claim seen before,
//! a claim gone, two rows of one id at the end of the scan; and, on PostgreSQL, that a claim
//! seen before is still read under its lock.

use cpor_worker::store::{AnyStore, ChangePage, Store, SyncedClaim, TimerIndex};

use crate::harness;
use crate::never_miss::insert as insert_sql;
use crate::never_miss_bad_rows::keyless_claims_table;
use crate::store_contract::{T0, claim, migrated, page_from, synced, t};

backend_tests!(
    a_page_reads_only_its_own_new_claims_among_the_later_pages_claims_of_its_range,
    a_range_of_more_claims_than_the_scan_reads_has_the_rest_read_by_id,
    a_claim_seen_before_or_gone_among_new_ones_is_read_as_seen_or_left_out,
    two_rows_of_one_id_at_the_end_of_the_range_scan_are_both_read,
);

/// A claim seen before among a page's new ones is read under its row lock, as it would be
/// alone: while another transaction holds it, the page leaves its record for a later page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_claim_seen_before_among_new_ones_held_elsewhere_is_left_for_a_later_page() {
    let Some(db) = harness::postgres_unmigrated("range_held_elsewhere").await else {
        return;
    };
    let store = db.store.clone();
    let AnyStore::Postgres(pg) = &store else {
        unreachable!("PostgreSQL test")
    };
    migrated(&store).await;
    insert(&store, 0..N).await;
    assert_eq!(page(&store, N, 0).await.0.synced, N);
    harness::exec(&store, "DELETE FROM claims WHERE id = 'r0010'").await;
    let mut again = claim(&id(10), "submitted");
    again.version = 2;
    store.put_claim_row(&again).await.unwrap();
    insert(&store, N..2 * N).await;
    let mut holder = pg.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM claims WHERE id = 'r0010' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let (held, asked) = page(&store, 4 * N, 0).await;
    assert_eq!(asked, new_ones(N..2 * N), "{held:?}");
    assert_eq!(held.left, 1, "{held:?}");
    holder.rollback().await.unwrap();
    let (later, asked) = page(&store, 4 * N, 0).await;
    assert_eq!(asked, vec![(id(10), 2, false)], "{later:?}");
}

/// More than the fewest claims a page reads by range.
const N: usize = 100;
const _: () = assert!(N >= cpor_worker::store::RANGE_READ_MIN);

fn id(i: usize) -> String {
    format!("r{i:04}")
}

async fn insert(store: &AnyStore, ids: impl IntoIterator<Item = usize>) {
    for i in ids {
        store
            .put_claim_row(&claim(&id(i), "submitted"))
            .await
            .unwrap();
    }
}

/// One page of up to `limit` records after `after`: the page, and the claims it asked to
/// compute (id, version, seen first), sorted, each as often as asked.
async fn page(
    store: &AnyStore,
    limit: usize,
    after: i64,
) -> (ChangePage, Vec<(String, i64, bool)>) {
    let (page, mut asked, _) = page_from(store, limit as i64, after).await;
    asked.sort();
    (page, asked)
}

fn new_ones(ids: impl IntoIterator<Item = usize>) -> Vec<(String, i64, bool)> {
    let mut v: Vec<_> = ids.into_iter().map(|i| (id(i), 1, true)).collect();
    v.sort();
    v
}

/// The even claims inserted first, the odd ones after: the first page's range holds both, and
/// computes only the even ones (the odd ones' records are the next page's).
async fn a_page_reads_only_its_own_new_claims_among_the_later_pages_claims_of_its_range(
    store: AnyStore,
) {
    migrated(&store).await;
    insert(&store, (0..2 * N).step_by(2)).await;
    insert(&store, (1..2 * N).step_by(2)).await;
    let (first, asked) = page(&store, N, 0).await;
    assert_eq!((first.records, first.synced), (N, N), "{first:?}");
    assert_eq!(asked, new_ones((0..2 * N).step_by(2)));
    let (second, asked) = page(&store, N, first.last_seq).await;
    assert_eq!((second.records, second.synced), (N, N), "{second:?}");
    assert_eq!(asked, new_ones((1..2 * N).step_by(2)));
    assert_eq!(page(&store, N, 0).await.0.records, 0);
}

/// Every third claim inserted first: their range holds three times as many claims, more than
/// the scan reads (twice the page's), so the page reads those past it by id.
async fn a_range_of_more_claims_than_the_scan_reads_has_the_rest_read_by_id(store: AnyStore) {
    migrated(&store).await;
    insert(&store, (0..3 * N).step_by(3)).await;
    insert(&store, (0..3 * N).filter(|i| i % 3 != 0)).await;
    let (first, asked) = page(&store, N, 0).await;
    assert_eq!((first.records, first.synced), (N, N), "{first:?}");
    assert_eq!(asked, new_ones((0..3 * N).step_by(3)));
    let (second, asked) = page(&store, 2 * N, first.last_seq).await;
    assert_eq!(second.synced, 2 * N, "{second:?}");
    assert_eq!(asked, new_ones((0..3 * N).filter(|i| i % 3 != 0)));
}

/// Among a page's new claims, one deleted and inserted again after the worker saw it (its
/// record is an insert's, its sync row stays) is computed as seen before, at its new version,
/// and one inserted and deleted before the page is not computed at all.
async fn a_claim_seen_before_or_gone_among_new_ones_is_read_as_seen_or_left_out(store: AnyStore) {
    migrated(&store).await;
    insert(&store, 0..N).await;
    let (seen, _) = page(&store, N, 0).await;
    assert_eq!(seen.synced, N, "{seen:?}");
    harness::exec(&store, "DELETE FROM claims WHERE id = 'r0010'").await;
    let mut again = claim(&id(10), "submitted");
    again.version = 2;
    store.put_claim_row(&again).await.unwrap();
    insert(&store, N..2 * N).await;
    harness::exec(&store, "DELETE FROM claims WHERE id = 'r0150'").await;
    let (page, asked) = page(&store, 4 * N, 0).await;
    let mut expected = new_ones((N..2 * N).filter(|i| *i != 150));
    expected.push((id(10), 2, false));
    expected.sort();
    assert_eq!(asked, expected, "{page:?}");
    assert_eq!(page.left, 0, "{page:?}");
    assert_eq!(self::page(&store, 4 * N, 0).await.0.records, 0);
}

/// A claims table without a key may have two rows with one id. When the range scan's last row
/// is one of them, the other lies past the scan: the claim is read by id, both rows, and
/// reported as two rows rather than computed from one of them.
async fn two_rows_of_one_id_at_the_end_of_the_range_scan_are_both_read(store: AnyStore) {
    keyless_claims_table(&store).await;
    migrated(&store).await;
    // 101 claims of the page, every third id: the scan reads 202 rows, ids 0 to 200 and the
    // first row of id 201.
    let page_ids: Vec<usize> = (0..303).step_by(3).collect();
    assert_eq!((page_ids.len(), page_ids[67]), (101, 201));
    for i in &page_ids {
        insert_sql(&store, &id(*i), "submitted", "", "").await;
    }
    insert_sql(&store, &id(201), "submitted", "", "").await;
    for i in (0..303).filter(|i| i % 3 != 0) {
        insert_sql(&store, &id(i), "submitted", "", "").await;
    }
    let mut asked: Vec<(String, Option<String>)> = Vec::new();
    let page = store
        .sync_changes(102, 0, "fp", t(T0), |claims, _| {
            asked = claims
                .iter()
                .map(|c| {
                    (
                        c.id.clone(),
                        c.claim.as_ref().err().map(|b| b.problem.clone()),
                    )
                })
                .collect();
            std::future::ready(
                claims
                    .iter()
                    .map(|c| synced(&c.id, c.version, Vec::new()))
                    .collect::<Vec<SyncedClaim>>(),
            )
        })
        .await
        .unwrap();
    assert_eq!(page.records, 102, "{page:?}");
    asked.sort();
    let mut expected: Vec<(String, Option<String>)> =
        page_ids.iter().map(|i| (id(*i), None)).collect();
    expected[67].1 = Some("2 rows of claims have this id: ids must be unique".to_owned());
    assert_eq!(asked, expected);
}
