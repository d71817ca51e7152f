//! The probe that lets a pass with nothing to do end at once stays a probe on PostgreSQL when
//! the planner's statistics are stale. Seen in `benches/scale.rs`: right after a first sight of
//! 1,000,000 claims, the planner looked for a claim marked for recomputation by walking every
//! claim and probing the marks' index for each (0.44–1.13 s a pass, every pass, until
//! autovacuum analysed the table).

use chrono::{DateTime, Utc};
use cpor_worker::store::{AnyStore, CALENDAR_FINGERPRINT_KEY, PgStore, Store, TimerIndex};

use crate::harness;
use crate::store_contract::{T0, migrated, t};

const CLAIMS: i64 = 20_000;

/// Rows of the claims and their sync rows the probe's backend has read (sequential scans,
/// index fetches, index scans begun), after forcing that backend to flush its statistics.
async fn rows_read(one: &AnyStore, pg: &PgStore) -> i64 {
    harness::exec(one, "SELECT pg_stat_force_next_flush()").await;
    sqlx::query_scalar(
        "SELECT sum(COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) \
         + COALESCE(idx_scan, 0))::bigint FROM pg_stat_user_tables \
         WHERE relname IN ('claims', 'cpor_claim_sync')",
    )
    .fetch_one(pg.pool())
    .await
    .unwrap()
}

/// No claim is marked, but the statistics were taken while every claim was: the probe answers
/// "nothing to do" without reading the claims. At this size the planner would choose a merge
/// join; joins by merge and hash are turned off for the probe's connection so that it plans
/// as it did at 1,000,000 claims (a nested loop), the plan the probe must not allow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_idle_probe_reads_no_claims_when_stale_statistics_say_all_are_marked() {
    let Some(db) = harness::postgres_unmigrated("an_idle_probe_with_stale_statistics").await else {
        return;
    };
    migrated(&db.store).await;
    // One connection: every statement below, the probe's too, runs in one backend, whose
    // settings it keeps and whose statistics the test flushes and reads.
    let pg = PgStore::connect(&db.url, 1).await.unwrap();
    let one = AnyStore::Postgres(pg.clone());
    let now: DateTime<Utc> = t(T0);
    one.state_set(CALENDAR_FINGERPRINT_KEY, "fp", now)
        .await
        .unwrap();
    for sql in [
        "ALTER TABLE claims SET (autovacuum_enabled = false)",
        "ALTER TABLE cpor_claim_sync SET (autovacuum_enabled = false)",
        &format!(
            "INSERT INTO claims (id, status, country, updated_at, version) \
             SELECT 'c' || lpad(g::text, 6, '0'), 'rejected', 'SE', now(), 1 \
             FROM generate_series(1, {CLAIMS}) g"
        ),
        "DELETE FROM cpor_claim_changes",
        "INSERT INTO cpor_claim_sync (claim_id, version, fingerprint, dirty, dirty_gen, \
         synced_at) SELECT id, 1, 'fp', TRUE, 1, now() FROM claims",
        "VACUUM ANALYZE claims, cpor_claim_sync",
        "UPDATE cpor_claim_sync SET dirty = FALSE",
        "SET enable_mergejoin = off",
        "SET enable_hashjoin = off",
    ] {
        harness::exec(&one, sql).await;
    }

    let before = rows_read(&one, &pg).await;
    assert!(!one.has_work(now, "fp").await.unwrap());
    let read = rows_read(&one, &pg).await - before;
    assert!(
        read < 100,
        "the probe read {read} rows of {CLAIMS} claims and their sync rows to find that none \
         is marked"
    );

    // The same probe still sees a marked claim, and only one whose claim exists.
    harness::exec(
        &one,
        "UPDATE cpor_claim_sync SET dirty = TRUE WHERE claim_id = 'c000002'",
    )
    .await;
    assert!(one.has_work(now, "fp").await.unwrap());
    harness::exec(&one, "DELETE FROM claims WHERE id = 'c000002'").await;
    assert!(!one.has_work(now, "fp").await.unwrap());
}
