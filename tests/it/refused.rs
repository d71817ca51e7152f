//! A claim whose writes the database refuses (a constraint or trigger of the main system's
//! schema): held for an operator with the database's reason, while every other due claim
//! fires in the same pass.

use cpor_worker::lifecycle::{Actor, HistoryEntry};
use cpor_worker::store::{AnyStore, Repairs, Store, TimerIndex};
use cpor_worker::worker::Engine;

use crate::harness::exec;
use crate::never_miss::{actions, engine, insert, t};

backend_tests!(
    a_claim_whose_writes_the_database_refuses_is_held_and_the_rest_fire,
    a_hold_of_a_claim_deleted_since_can_be_released,
    a_claim_whose_status_change_is_refused_is_held_with_a_history_row,
    a_schema_refusing_every_claim_fails_the_pass_after_a_few_holds,
);

/// A trigger `name` of the main system, `BEFORE {event}` (`INSERT ON claim_history`), that
/// refuses the rows `when` (an SQL test of `NEW`) says with `message`.
async fn refusing_trigger(store: &AnyStore, name: &str, event: &str, when: &str, message: &str) {
    let sql = match store {
        AnyStore::Postgres(_) => vec![
            format!(
                "CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 RAISE EXCEPTION '{message}'; END $$"
            ),
            format!(
                "CREATE TRIGGER {name} BEFORE {event} FOR EACH ROW WHEN ({when}) \
                 EXECUTE FUNCTION {name}()"
            ),
        ],
        AnyStore::Sqlite(_) => vec![format!(
            "CREATE TRIGGER {name} BEFORE {event} WHEN {when} BEGIN \
             SELECT RAISE(ABORT, '{message}'); END"
        )],
    };
    for statement in sql {
        exec(store, &statement).await;
    }
}

/// A trigger on `claim_history` that refuses rows of claims whose id starts with `bad`.
async fn refuse_history_of_bad(store: &AnyStore) {
    let message = "claim is archived: history is closed";
    let when = "NEW.claim_id LIKE 'bad%'";
    refusing_trigger(
        store,
        "refuse_bad",
        "INSERT ON claim_history",
        when,
        message,
    )
    .await;
}

/// Claims `ids`, each with its response deadline and reminder due at [`NOW`].
async fn due_claims(store: &AnyStore, ids: &[String]) {
    for id in ids {
        insert(
            store,
            id,
            "partner_action_required",
            ", info_requested_at",
            ", '2026-02-20T09:00:00Z'",
        )
        .await;
    }
}

/// A trigger on `claims` that refuses updates of the claim `bad`.
async fn refuse_updates_of_bad(store: &AnyStore) {
    let message = "claim bad is under audit";
    refusing_trigger(
        store,
        "refuse_update",
        "UPDATE ON claims",
        "NEW.id = 'bad'",
        message,
    )
    .await;
}

const NOW: &str = "2026-03-02T11:00:00Z";

/// The history row of an operator's release of the claim `bad`.
fn release_of_bad() -> HistoryEntry {
    HistoryEntry {
        claim_id: "bad".to_owned(),
        occurred_at: t(NOW),
        actor: Actor::System,
        action: "operator_release".to_owned(),
        details: serde_json::json!({}).into(),
    }
}

fn small_batches() -> Engine {
    Engine {
        batch_size: 4,
        ..engine()
    }
}

async fn a_claim_whose_writes_the_database_refuses_is_held_and_the_rest_fire(store: AnyStore) {
    store.migrate().await.unwrap();
    // 24 claims due at once, `bad` among them; batches of 4, so it shares a batch.
    let mut ids: Vec<String> = (0..24).map(|i| format!("c{i:02}")).collect();
    ids.insert(9, "bad".to_owned());
    due_claims(&store, &ids).await;
    refuse_history_of_bad(&store).await;
    let (engine, now) = (small_batches(), t(NOW));
    let out = engine.tick(&store, now).await.expect("the pass goes on");
    for id in ids.iter().filter(|id| *id != "bad") {
        let mut a = actions(&store, id).await;
        a.sort();
        assert_eq!(a, ["auto_rejected", "reminder_skipped"], "{id}: {out:?}");
    }
    assert!(actions(&store, "bad").await.is_empty());
    let holds = store.holds(Some(&["bad".to_owned()])).await.unwrap();
    assert_eq!(holds.len(), 1, "{holds:?}");
    assert!(holds[0].reason.contains("history is closed"), "{holds:?}");
    // What the database named, not sqlx's wording around it.
    let named = match &store {
        AnyStore::Postgres(_) => "(SQLSTATE P0001)",
        AnyStore::Sqlite(_) => "(code 1811)",
    };
    assert!(holds[0].reason.contains(named), "{holds:?}");
    assert!(!holds[0].reason.contains(" at line "), "{holds:?}");
    assert_eq!(holds[0].held_by, "cpor-worker");
    let problems: Vec<&str> = out.problems.iter().map(|p| p.claim_id.as_str()).collect();
    assert_eq!(problems, ["bad"], "{out:?}");
    // Held, it is left alone by later passes.
    let again = engine.tick(&store, now).await.expect("a later pass");
    assert!(again.fired.is_empty(), "{again:?}");
    assert!(again.problems.is_empty(), "{again:?}");
    // Once the cause is fixed and the claim released, it fires.
    let drop = match &store {
        AnyStore::Postgres(_) => "DROP TRIGGER refuse_bad ON claim_history",
        AnyStore::Sqlite(_) => "DROP TRIGGER refuse_bad",
    };
    exec(&store, drop).await;
    store.release_claim("bad", &release_of_bad()).await.unwrap();
    engine
        .tick(&store, now)
        .await
        .expect("the pass after the release");
    let mut a = actions(&store, "bad").await;
    a.sort();
    assert_eq!(a, ["auto_rejected", "operator_release", "reminder_skipped"]);
}

async fn a_schema_refusing_every_claim_fails_the_pass_after_a_few_holds(store: AnyStore) {
    store.migrate().await.unwrap();
    let ids: Vec<String> = (0..14).map(|i| format!("bad{i:02}")).collect();
    due_claims(&store, &ids).await;
    refuse_history_of_bad(&store).await;
    let err = small_batches()
        .tick(&store, t(NOW))
        .await
        .expect_err("every claim refused");
    let text = err.to_string();
    assert!(text.contains("history is closed"), "{text}");
    assert!(text.contains("claims are held already"), "{text}");
    assert!(
        text.contains("the database refused the writes of claim bad"),
        "{text}"
    );
    // Ten (batches side by side that counted nine at once may each have held one), not all
    // fourteen.
    let most = 9 + store.parallel_batches();
    let holds = store.holds(None).await.unwrap();
    assert!((10..=most).contains(&holds.len()), "{holds:?}");
    // Nor more in later passes, until they are released.
    small_batches()
        .tick(&store, t(NOW))
        .await
        .expect_err("still refused");
    assert_eq!(store.holds(None).await.unwrap().len(), holds.len());
}

async fn a_claim_whose_status_change_is_refused_is_held_with_a_history_row(store: AnyStore) {
    store.migrate().await.unwrap();
    let ids: Vec<String> = ["a", "bad", "c"].map(str::to_owned).to_vec();
    due_claims(&store, &ids).await;
    refuse_updates_of_bad(&store).await;
    let out = small_batches()
        .tick(&store, t(NOW))
        .await
        .expect("the pass");
    assert_eq!(out.problems.len(), 1, "{out:?}");
    assert!(out.problems[0].problem.contains("under audit"), "{out:?}");
    for id in ["a", "c"] {
        assert_eq!(actions(&store, id).await.len(), 2, "{id}");
    }
    let h = store.history("bad").await.unwrap();
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0].action, "held_writes_refused");
    assert!(
        h[0].details["reason"]
            .as_str()
            .unwrap()
            .contains("under audit"),
        "{h:?}"
    );
}

/// A trigger that ends SQLite's transaction itself (`RAISE(ROLLBACK)`) is a refusal like
/// `RAISE(ABORT)`: the claim is held, the others fire, and the connection whose rollback then
/// failed is not used again (it would refuse every later `BEGIN`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_trigger_that_rolls_back_is_held_like_one_that_aborts() {
    let db = crate::harness::sqlite_unmigrated().await;
    let store = db.store.clone();
    store.migrate().await.unwrap();
    let ids: Vec<String> = ["a", "bad", "c"].map(str::to_owned).to_vec();
    due_claims(&store, &ids).await;
    exec(
        &store,
        "CREATE TRIGGER refuse_bad BEFORE INSERT ON claim_history \
         WHEN NEW.claim_id = 'bad' BEGIN SELECT RAISE(ROLLBACK, 'claim bad is archived'); END",
    )
    .await;
    let (engine, now) = (small_batches(), t(NOW));
    let out = engine.tick(&store, now).await.expect("the pass");
    assert_eq!(out.problems.len(), 1, "{out:?}");
    for id in ["a", "c"] {
        assert_eq!(actions(&store, id).await.len(), 2, "{id}");
    }
    assert_eq!(store.holds(None).await.unwrap().len(), 1);
    for _ in 0..3 {
        engine.tick(&store, now).await.expect("later passes");
    }
}

/// A refusal that passes (a trigger that looks at other rows, here one that refuses once) does
/// not hold the claim: refused alone, it is tried once more before it is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_claim_refused_once_is_tried_again_not_held() {
    let Some(db) = crate::harness::postgres_unmigrated("refused_once").await else {
        return;
    };
    let store = db.store.clone();
    store.migrate().await.unwrap();
    due_claims(&store, &["bad".to_owned()]).await;
    exec(&store, "CREATE SEQUENCE once").await;
    exec(
        &store,
        "CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF nextval('once') = 1 THEN RAISE EXCEPTION 'busy, try again'; END IF; \
         RETURN NEW; END $$",
    )
    .await;
    exec(
        &store,
        "CREATE TRIGGER refuse_once BEFORE INSERT ON claim_history FOR EACH ROW \
         EXECUTE FUNCTION refuse_once()",
    )
    .await;
    let out = small_batches()
        .tick(&store, t(NOW))
        .await
        .expect("the pass");
    assert!(out.problems.is_empty(), "{out:?}");
    assert!(store.holds(None).await.unwrap().is_empty());
    let mut a = actions(&store, "bad").await;
    a.sort();
    assert_eq!(a, ["auto_rejected", "reminder_skipped"]);
}

/// The daemon says how many claims it holds for refused writes (`cpor_claims_held{by="worker"}`,
/// which the alert rules read): such a claim fires no more and is not counted overdue.
#[test]
fn the_daemon_exports_the_claims_it_held_for_refused_writes() {
    use crate::cli_run::{http_get, start_daemon, stop, wait_for};
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cpor.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = AnyStore::Sqlite(
            cpor_worker::store::SqliteStore::connect(&url, 1)
                .await
                .unwrap(),
        );
        store.migrate().await.unwrap();
        // Asked for information nine days before the real time the daemon runs at: the
        // reminder and the response deadline have passed, within the first-sight window.
        let asked = (chrono::Utc::now() - chrono::Duration::days(9)).format("%Y-%m-%dT%H:%M:%SZ");
        for id in ["a", "bad"] {
            let at = format!(", '{asked}'");
            insert(
                &store,
                id,
                "partner_action_required",
                ", info_requested_at",
                &at,
            )
            .await;
        }
        refuse_history_of_bad(&store).await;
    });
    let (child, port) = start_daemon(dir.path(), &[], &[("CPOR_DATABASE_URL", &url)]);
    let line = "cpor_claims_held{by=\"worker\"} 1";
    let ok = wait_for(30, || {
        http_get(port, "/metrics").is_some_and(|(_, b)| b.lines().any(|l| l == line))
    });
    let body = http_get(port, "/metrics").map(|(_, b)| b);
    let (code, log) = stop(child);
    assert!(ok, "no `{line}`: {body:?}\n{log}");
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("claim held: the database refused its writes"),
        "{log}"
    );
}

/// A claim the worker held for refused writes and the main system then deleted can still be
/// released: its hold would otherwise count against the worker's ten for good.
async fn a_hold_of_a_claim_deleted_since_can_be_released(store: AnyStore) {
    store.migrate().await.unwrap();
    due_claims(&store, &["bad".to_owned()]).await;
    refuse_history_of_bad(&store).await;
    small_batches()
        .tick(&store, t(NOW))
        .await
        .expect("the pass");
    assert_eq!(store.holds(None).await.unwrap().len(), 1);
    exec(&store, "DELETE FROM claims WHERE id = 'bad'").await;
    let release = release_of_bad();
    let released = store.release_claim("bad", &release).await.unwrap();
    assert!(released.hold, "{released:?}");
    assert!(store.holds(None).await.unwrap().is_empty());
    // A second release of a claim that is gone finds nothing.
    let again = store.release_claim("bad", &release).await;
    assert!(
        matches!(again, Err(cpor_worker::store::StoreError::NotFound(_))),
        "{again:?}"
    );
}
