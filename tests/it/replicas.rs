//! Several workers on one PostgreSQL database: every due timer fires exactly once and every
//! email is delivered exactly once, whichever replica takes it.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use cpor_worker::store::{AnyStore, Store};

use crate::harness::{self, smtp::SmtpSink};

const CLAIMS: usize = 2000;
const AT: &str = "2026-02-02T12:00:00Z";

async fn count(store: &AnyStore, sql: &str) -> i64 {
    let AnyStore::Postgres(pg) = store else {
        unreachable!("PostgreSQL only")
    };
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(pg.pool())
        .await
        .unwrap()
}

/// Inserts `n` claims (ids `prefix` + number) asked for information on Thu 22 January: the
/// response window ended with Thu 29 January, four days before the pass (well inside the
/// first-sight age, so nothing is held).
async fn insert_asked_claims(store: &AnyStore, prefix: &str, n: usize) {
    harness::exec(
        store,
        &format!(
            "INSERT INTO claims (id, status, partner_name, partner_email, customer_name, customer_email, \
             products, country, locale, info_requested_at, info_request_reason, updated_at, version) \
             SELECT '{prefix}' || lpad(g::text, 5, '0'), 'partner_action_required', 'Partner ' || g, \
             'p' || g || '@partner.example', 'Customer ' || g, 'c' || g || '@customer.example', \
             'Power BI Pro', 'SE', 'sv-SE', '2026-01-22T10:00:00Z', 'missing_products', \
             '2026-01-22T10:00:00Z', 1 FROM generate_series(1, {n}) g"
        ),
    )
    .await;
}

/// Every one of `n` claims was auto-rejected once: no action written twice, each claim rejected
/// at version 2, one rejection notice each in the outbox.
async fn each_claim_rejected_once(store: &AnyStore, n: usize) {
    assert_eq!(
        count(store, "SELECT count(*) FROM (SELECT claim_id, action FROM claim_history GROUP BY 1, 2 HAVING count(*) > 1) d").await,
        0,
        "an action was written twice"
    );
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM claims WHERE status = 'rejected' AND version = 2"
        )
        .await,
        n as i64
    );
    assert_eq!(
        count(store, "SELECT count(*) FROM cpor_outbox").await,
        n as i64
    );
}

/// Runs `n` `tick` processes at once; returns each one's JSON outcome.
fn ticks(n: usize, db: &str, extra_env: &[(&str, &str)], args: &[&str]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..n)
        .map(|_| {
            let mut cmd = Command::new(harness::bin());
            cmd.current_dir(dir.path())
                .args(["tick", "--at", AT, "--json"])
                .args(args)
                .env("CPOR_DATABASE_URL", db)
                .env_remove("CPOR_SMTP_URL")
                .envs(extra_env.iter().copied())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect()
}

fn fired(outcomes: &[serde_json::Value], key: &str) -> Vec<u64> {
    outcomes
        .iter()
        .map(|o| o["fired"][key].as_u64().unwrap_or(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_fire_and_deliver_each_once() {
    let Some(db) = harness::postgres_unmigrated("three_replicas_fire_and_deliver_each_once").await
    else {
        return;
    };
    db.store.migrate().await.unwrap();
    insert_asked_claims(&db.store, "r-", CLAIMS).await;

    let outcomes = ticks(3, &db.url, &[], &["--no-send"]);
    let per_replica = fired(&outcomes, "partner_response_deadline: fired");
    eprintln!("auto-rejections per replica: {per_replica:?}");
    assert_eq!(
        per_replica.iter().sum::<u64>(),
        CLAIMS as u64,
        "{per_replica:?}"
    );
    let store = &db.store;
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM claim_history WHERE action = 'auto_rejected'"
        )
        .await,
        CLAIMS as i64
    );
    each_claim_rejected_once(store, CLAIMS).await;

    // Delivery by three replicas at once: each email reaches the server once.
    let Some(sink) = SmtpSink::start("three_replicas_deliver", &[]) else {
        return;
    };
    let url = sink.url().to_string();
    let outcomes = ticks(3, &db.url, &[("CPOR_SMTP_URL", url.as_str())], &[]);
    let sent: Vec<u64> = outcomes
        .iter()
        .map(|o| o["delivery"]["sent"].as_u64().unwrap())
        .collect();
    eprintln!("emails sent per replica: {sent:?}");
    assert_eq!(sent.iter().sum::<u64>(), CLAIMS as u64, "{sent:?}");
    let mut per_id: BTreeMap<String, usize> = BTreeMap::new();
    for (raw, _) in sink.messages() {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let id = text
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
            .map(|l| l[11..].trim().to_owned())
            .unwrap();
        *per_id.entry(id).or_default() += 1;
    }
    assert_eq!(per_id.len(), CLAIMS);
    assert!(per_id.values().all(|n| *n == 1), "an email arrived twice");
    assert_eq!(
        count(
            store,
            "SELECT count(*) FROM cpor_outbox WHERE state = 'sent'"
        )
        .await,
        CLAIMS as i64
    );

    // And again: nothing left to do.
    let outcomes = ticks(1, &db.url, &[("CPOR_SMTP_URL", url.as_str())], &[]);
    assert!(
        outcomes[0]["fired"].as_object().unwrap().is_empty(),
        "{}",
        outcomes[0]
    );
    assert_eq!(outcomes[0]["delivery"]["sent"], 0);
}

/// Claims over several sync pages (5,000 change records each), so each replica runs its pages
/// side by side and the replicas lease pages from one another.
const MANY: usize = 12_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_split_a_first_sight_of_many_pages_and_fire_each_once() {
    let Some(db) = harness::postgres_unmigrated("replicas_split_a_first_sight_of_many_pages").await
    else {
        return;
    };
    db.store.migrate().await.unwrap();
    insert_asked_claims(&db.store, "m-", MANY).await;

    let outcomes = ticks(3, &db.url, &[], &["--no-send"]);
    let synced: Vec<u64> = outcomes
        .iter()
        .map(|o| o["synced"].as_u64().unwrap())
        .collect();
    let per_replica = fired(&outcomes, "partner_response_deadline: fired");
    eprintln!("claims computed per replica: {synced:?}; auto-rejections: {per_replica:?}");
    assert_eq!(
        per_replica.iter().sum::<u64>(),
        MANY as u64,
        "{per_replica:?}"
    );
    // Each page of change records went to one replica: a claim is computed once, again only
    // if another replica's fire batch held it when its change record came up.
    assert!(
        synced.iter().sum::<u64>() < (MANY + MANY / 2) as u64,
        "replicas computed the same claims: {synced:?}"
    );
    let store = &db.store;
    each_claim_rejected_once(store, MANY).await;
    // The next pass finds everything up to date: the fire batches' own change records are
    // consumed and nothing fires again.
    let outcomes = ticks(1, &db.url, &[], &["--no-send"]);
    assert!(
        outcomes[0]["fired"].as_object().unwrap().is_empty(),
        "{}",
        outcomes[0]
    );
    assert_eq!(
        count(store, "SELECT count(*) FROM cpor_claim_changes").await,
        0
    );
    assert_eq!(
        count(store, "SELECT count(*) FROM cpor_claim_sync WHERE dirty").await,
        0
    );
}
