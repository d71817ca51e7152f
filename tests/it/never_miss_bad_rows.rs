//! Bad rows from the main system never stop a pass: a NULL id, a version that is not an
//! integer, two rows with one id. Each is named; every other claim proceeds. A claim deleted
//! and inserted again is not new to the worker, and one whose sync row an operator deleted
//! keeps what was done for it. Both backends. A `claim_history` of the main system's own
//! column types gets the worker's rows (PostgreSQL).

use cpor_worker::store::{AnyStore, Backend, Store};

use crate::harness::{self, TestStore, exec};
use crate::never_miss::emails;
use crate::never_miss::{actions, engine, insert, problem_of, t, tick, until_the_pass_waits};

backend_tests_db!(
    bad_rows_never_stop_a_pass,
    a_claim_deleted_and_inserted_again_keeps_what_was_done_for_it,
    a_claim_whose_sync_row_was_deleted_keeps_what_was_done_for_it
);

/// A claims table the main system made without a key, before the worker's migrations.
pub(crate) async fn keyless_claims_table(store: &AnyStore) {
    let ts = match store.backend() {
        Backend::Postgres => "TIMESTAMPTZ",
        Backend::Sqlite => "TEXT",
    };
    let version = match store.backend() {
        Backend::Postgres => "BIGINT",
        Backend::Sqlite => "",
    };
    exec(
        store,
        &format!(
            "CREATE TABLE claims (id TEXT, status TEXT, partner_id TEXT, partner_name TEXT, \
             partner_email TEXT, customer_tenant_id TEXT, customer_name TEXT, customer_email TEXT, \
             products TEXT, country TEXT, time_zone TEXT, locale TEXT, submitted_at {ts}, \
             review_started_at {ts}, info_requested_at {ts}, info_request_reason TEXT, \
             approved_at {ts}, rejected_at {ts}, rejection_reason TEXT, customer_declined_at {ts}, \
             dispute_opened_at {ts}, dispute_resolved_at {ts}, updated_at {ts}, version {version})"
        ),
    )
    .await;
}

/// Inserts claim `id`, rejected by a reviewer on 2 March 2026 at 09:00 UTC (its rejection
/// notice is due at once, its dispute window closes 30 days later).
async fn rejected_on_2_march(store: &AnyStore, id: &str) {
    let rejected = ", rejected_at, rejection_reason, updated_at";
    let at = ", '2026-03-02T09:00:00Z', 'insufficient_poe', '2026-03-02T09:00:00Z'";
    insert(store, id, "rejected", rejected, at).await;
}

async fn bad_rows_never_stop_a_pass(db: &TestStore) {
    let store = &db.store;
    keyless_claims_table(store).await;
    store.migrate().await.unwrap();
    let rejected = ", rejected_at, rejection_reason, updated_at";
    let at = ", '2026-03-02T09:00:00Z', 'insufficient_poe', '2026-03-02T09:00:00Z'";
    insert(store, "good", "rejected", rejected, at).await;
    exec(
        store,
        "INSERT INTO claims (id, status, partner_email, country, rejected_at, rejection_reason, \
         version) VALUES (NULL, 'rejected', 'p@partner.example', 'SE', '2026-03-02T09:00:00Z', \
         'insufficient_poe', 1)",
    )
    .await;
    insert(store, "twice", "rejected", rejected, at).await;
    insert(store, "twice", "rejected", rejected, at).await;
    if store.backend() == Backend::Sqlite {
        insert(store, "abc", "rejected", rejected, at).await;
        exec(store, "UPDATE claims SET version = 'abc' WHERE id = 'abc'").await;
    }
    let o = tick(store, "2026-03-02T10:00:00Z").await;
    assert_eq!(actions(store, "good").await, ["rejection_notice_sent"]);
    assert!(actions(store, "twice").await.is_empty());
    assert!(
        problem_of(&o, "twice").is_some_and(|p| p.contains("2 rows")),
        "{o:#?}"
    );
    assert!(
        problem_of(&o, "<NULL id>").is_some_and(|p| p.contains("NULL")),
        "{o:#?}"
    );
    if store.backend() == Backend::Sqlite {
        assert!(
            problem_of(&o, "abc").is_some_and(|p| p.contains("version")),
            "{o:#?}"
        );
    }
    // dry-run over the same data works and names the duplicate.
    let dir = tempfile::tempdir().unwrap();
    let out = harness::run_in(
        dir.path(),
        &[
            "dry-run",
            "--at",
            "2026-03-02T10:00:00Z",
            "--format",
            "json",
        ],
        &[("CPOR_DATABASE_URL", db.url.as_str())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("twice") && report.contains("2 rows"),
        "{report}"
    );
    // A later pass is not stopped either.
    let again = engine()
        .tick(store, t("2026-03-02T11:00:00Z"))
        .await
        .expect("the next pass runs");
    assert!(again.fired.is_empty(), "{again:#?}");
}

/// A claim the main system deletes and inserts again under its id (restored from a backup) is
/// the claim the worker already acted on: its notice is not sent again, its dispute window
/// closes once. (The worker keeps the claim's sync row when the claim is deleted, so the claim
/// is seen before, not first, and its timers and emails are read. With that row deleted too,
/// PostgreSQL refuses the pass on the timer's key; SQLite's insert of fired runs would not.)
async fn a_claim_deleted_and_inserted_again_keeps_what_was_done_for_it(db: &TestStore) {
    let store = &db.store;
    store.migrate().await.unwrap();
    rejected_on_2_march(store, "c1").await;
    tick(store, "2026-03-02T10:00:00Z").await;
    assert_eq!(actions(store, "c1").await, ["rejection_notice_sent"]);
    assert_eq!(emails(store, "c1").await.len(), 1);
    exec(store, "DELETE FROM claims WHERE id = 'c1'").await;
    tick(store, "2026-03-02T11:00:00Z").await;
    rejected_on_2_march(store, "c1").await;
    let o = tick(store, "2026-03-02T12:00:00Z").await;
    assert!(o.problems.is_empty(), "{o:#?}");
    assert!(o.fired.is_empty(), "{o:#?}");
    assert_eq!(actions(store, "c1").await, ["rejection_notice_sent"]);
    assert_eq!(emails(store, "c1").await.len(), 1);
    // The dispute window (30 days from 2 March) closes once.
    tick(store, "2026-04-10T00:00:00Z").await;
    tick(store, "2026-04-11T00:00:00Z").await;
    assert_eq!(
        actions(store, "c1").await,
        ["rejection_notice_sent", "dispute_window_closed"]
    );
}

/// Has `c1` rejected on 2 March and its notice sent, then deletes every sync row and changes
/// `c1` (version 2), so its next pass sees it first again.
async fn notified_then_sync_rows_deleted(store: &AnyStore) {
    rejected_on_2_march(store, "c1").await;
    tick(store, "2026-03-02T10:00:00Z").await;
    assert_eq!(actions(store, "c1").await, ["rejection_notice_sent"]);
    exec(store, "DELETE FROM cpor_claim_sync").await;
    exec(
        store,
        "UPDATE claims SET version = 2, updated_at = '2026-03-02T10:30:00Z' WHERE id = 'c1'",
    )
    .await;
}

/// The worker's sync rows deleted (by an operator, or a restore of the main system's tables
/// without the worker's): a claim the worker had acted on, changed afterwards, looks new to
/// it, though its timers and emails are still there. Its next pass goes through, and the
/// claim keeps what was done for it: nothing is done twice, and its dispute window still
/// closes once.
async fn a_claim_whose_sync_row_was_deleted_keeps_what_was_done_for_it(db: &TestStore) {
    let store = &db.store;
    store.migrate().await.unwrap();
    insert(store, "c2", "submitted", "", "").await;
    notified_then_sync_rows_deleted(store).await;
    rejected_on_2_march(store, "c3").await;
    let o = tick(store, "2026-03-02T12:00:00Z").await;
    assert!(o.problems.is_empty(), "{o:#?}");
    assert_eq!(o.fired.len(), 1, "c3's notice only: {o:#?}");
    assert_eq!(actions(store, "c1").await, ["rejection_notice_sent"]);
    assert_eq!(emails(store, "c1").await.len(), 1);
    assert_eq!(actions(store, "c3").await, ["rejection_notice_sent"]);
    // The dispute window (30 days from 2 March) closes once.
    tick(store, "2026-04-10T00:00:00Z").await;
    tick(store, "2026-04-11T00:00:00Z").await;
    assert_eq!(
        actions(store, "c1").await,
        ["rejection_notice_sent", "dispute_window_closed"]
    );
}

/// The claim of the test above is locked before its stored rows are read and written again,
/// as any claim seen before: while another transaction holds it (a fire batch takes that
/// lock, not the sync row), the pass waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_claim_whose_sync_row_was_deleted_is_written_under_its_lock() {
    let Some(db) = harness::postgres_unmigrated("sync_row_deleted_locked").await else {
        return;
    };
    let store = &db.store;
    store.migrate().await.unwrap();
    notified_then_sync_rows_deleted(store).await;
    let AnyStore::Postgres(pg) = store else {
        unreachable!("PostgreSQL test")
    };
    let mut holder = pg.pool().begin().await.unwrap();
    sqlx::query("SELECT 1 FROM claims WHERE id = 'c1' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let pass = {
        let store = store.clone();
        tokio::spawn(async move { engine().tick(&store, t("2026-03-02T12:00:00Z")).await })
    };
    until_the_pass_waits(pg.pool(), &mut holder).await;
    holder.commit().await.unwrap();
    let o = pass.await.unwrap().unwrap();
    assert!(o.problems.is_empty(), "{o:#?}");
    assert!(o.fired.is_empty(), "{o:#?}");
    assert_eq!(actions(store, "c1").await, ["rejection_notice_sent"]);
}

/// The main system made `claim_history` with its details as `text` or `json`, an actor as
/// `varchar`, or with a rule (the contract says JSON, not which type): the worker's rows go in
/// as JSON all the same, stay readable, and the rule applies.
#[tokio::test]
async fn postgres_a_claim_history_of_other_column_types_gets_json_details() {
    for (details, actor, rule) in [
        ("TEXT", "VARCHAR(16)", false),
        ("JSON", "TEXT", false),
        ("JSONB", "TEXT", true),
    ] {
        let test = "postgres_a_claim_history_of_other_column_types_gets_json_details";
        let Some(db) = harness::postgres_unmigrated(test).await else {
            return;
        };
        let store = &db.store;
        exec(
            store,
            &format!(
                "CREATE TABLE claim_history (id BIGSERIAL PRIMARY KEY, claim_id TEXT NOT NULL, \
                 occurred_at TIMESTAMPTZ NOT NULL, actor {actor} NOT NULL, \
                 action TEXT NOT NULL, details {details} NOT NULL)"
            ),
        )
        .await;
        exec(store, "CREATE TABLE history_audit (claim_id TEXT)").await;
        if rule {
            exec(
                store,
                "CREATE RULE audit AS ON INSERT TO claim_history \
                 DO ALSO INSERT INTO history_audit VALUES (NEW.claim_id)",
            )
            .await;
        }
        store.migrate().await.unwrap();
        rejected_on_2_march(store, "c1").await;
        let o = tick(store, "2026-03-02T10:00:00Z").await;
        let case = format!("details {details}, actor {actor}, rule {rule}");
        assert!(o.problems.is_empty(), "{case}: {o:#?}");
        assert_eq!(
            actions(store, "c1").await,
            ["rejection_notice_sent"],
            "{case}"
        );
        let timer = harness::scalar(
            store,
            "SELECT count(*) FROM claim_history WHERE claim_id = 'c1' \
             AND details::text::jsonb ->> 'timer' = 'rejection_notice'",
        )
        .await;
        assert_eq!(timer, 1, "{case}: the details are the worker's JSON");
        let audited = harness::scalar(store, "SELECT count(*) FROM history_audit").await;
        assert_eq!(
            audited,
            i64::from(rule),
            "{case}: the rule applies to the worker's row"
        );
    }
}

/// The main system changes `claim_history`'s details to `text` while the worker runs: the next
/// batch sees it and writes JSON text (each batch asks, in its transaction, how to write).
#[tokio::test]
async fn postgres_a_claim_history_changed_while_the_worker_runs_gets_json_details() {
    let test = "postgres_a_claim_history_changed_while_the_worker_runs_gets_json_details";
    let Some(db) = harness::postgres_unmigrated(test).await else {
        return;
    };
    let store = &db.store;
    store.migrate().await.unwrap();
    rejected_on_2_march(store, "c1").await;
    tick(store, "2026-03-02T10:00:00Z").await;
    exec(
        store,
        "ALTER TABLE claim_history ALTER COLUMN details TYPE TEXT USING details::text",
    )
    .await;
    // The dispute window (30 days from 2 March) closes.
    let o = tick(store, "2026-04-11T00:00:00Z").await;
    assert!(o.problems.is_empty(), "{o:#?}");
    assert_eq!(
        actions(store, "c1").await,
        ["rejection_notice_sent", "dispute_window_closed"]
    );
    let json = harness::scalar(
        store,
        "SELECT count(*) FROM claim_history WHERE claim_id = 'c1' \
         AND details::jsonb ->> 'timer' IS NOT NULL",
    )
    .await;
    assert_eq!(json, 2, "both rows' details are the worker's JSON");
}

/// A `claim_history` of the types the worker's migration gives it, with a trigger of the main
/// system's, gets the worker's rows by `COPY` (the trigger applies, and sees the statement).
#[tokio::test]
async fn postgres_a_claim_history_of_the_migrations_types_gets_rows_by_copy() {
    let test = "postgres_a_claim_history_of_the_migrations_types_gets_rows_by_copy";
    let Some(db) = harness::postgres_unmigrated(test).await else {
        return;
    };
    let store = &db.store;
    store.migrate().await.unwrap();
    for sql in [
        "CREATE TABLE history_audit (claim_id TEXT, statement TEXT)",
        "CREATE FUNCTION audit_history() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         INSERT INTO history_audit VALUES (NEW.claim_id, current_query()); RETURN NEW; END $$",
        "CREATE TRIGGER audit AFTER INSERT ON claim_history FOR EACH ROW \
         EXECUTE FUNCTION audit_history()",
    ] {
        exec(store, sql).await;
    }
    rejected_on_2_march(store, "c1").await;
    let o = tick(store, "2026-03-02T10:00:00Z").await;
    assert!(o.problems.is_empty(), "{o:#?}");
    assert_eq!(actions(store, "c1").await, ["rejection_notice_sent"]);
    let by_copy = harness::scalar(
        store,
        "SELECT count(*) FROM history_audit WHERE claim_id = 'c1' \
         AND statement LIKE 'COPY claim_history %'",
    )
    .await;
    assert_eq!(by_copy, 1, "the trigger saw the worker's COPY");
}
