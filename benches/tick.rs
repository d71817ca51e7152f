//! Pass throughput on PostgreSQL with its durable defaults (fsync and synchronous_commit on):
//! 1,000,000 claims of which 100,000 have a due timer; one pass fires them all (history and
//! outbox written), then a pass with nothing due. `cargo bench --bench tick`.
//! Uses CPOR_BENCH_DATABASE_URL if set, else starts a throwaway cluster with default settings.

#[path = "../tests/it/harness/pgcluster.rs"]
#[allow(dead_code)]
mod pgcluster;

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use cpor_worker::calendar::Calendars;
use cpor_worker::store::{AnyStore, PgStore, Store};
use cpor_worker::timers::TimerSettings;
use cpor_worker::worker::Engine;
use tokio_util::sync::CancellationToken;

const CLAIMS: i64 = 1_000_000;
const DUE: i64 = 100_000;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

#[tokio::main]
async fn main() {
    let (_cluster, admin) = match std::env::var("CPOR_BENCH_DATABASE_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let c = pgcluster::Cluster::start(true).expect("start PostgreSQL (durable defaults)");
            let url = c.admin_url();
            (Some(c), url)
        }
    };
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect");
    let db = format!("cpor_bench_{}", std::process::id());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = url::Url::parse(&admin).expect("url");
    url.set_path(&db);
    let pg = PgStore::connect(url.as_str(), 8).await.expect("open");
    let fsync: String = sqlx::query_scalar("SHOW fsync")
        .fetch_one(pg.pool())
        .await
        .expect("fsync");
    let sync_commit: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(pg.pool())
        .await
        .expect("synchronous_commit");
    println!("PostgreSQL fsync={fsync} synchronous_commit={sync_commit}");
    let store = AnyStore::Postgres(pg.clone());
    store.migrate().await.expect("migrate");

    // 900,000 claims with timers that are not due (submitted, under review, approved-and-notified
    // windows far away…), 100,000 rejected by a reviewer an hour before the pass: their rejection
    // notice is due (history row, outbox row, fired timer).
    let started = Instant::now();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO claims (id, status, partner_name, partner_email, customer_name, customer_email, \
         products, country, locale, submitted_at, review_started_at, rejected_at, rejection_reason, \
         updated_at, version) \
         SELECT 'c' || lpad(g::text, 7, '0'), \
           CASE WHEN g <= {DUE} THEN 'rejected' WHEN g % 3 = 0 THEN 'submitted' WHEN g % 3 = 1 THEN 'under_review' ELSE 'draft' END, \
           'Partner ' || g, 'p' || g || '@partner.example', 'Customer ' || g, 'c' || g || '@customer.example', \
           'Dynamics 365 Sales', (ARRAY['SE','US','GB','DE'])[1 + g % 4], 'en', \
           TIMESTAMPTZ '2026-11-23T09:00:00Z', TIMESTAMPTZ '2026-11-24T09:00:00Z', \
           CASE WHEN g <= {DUE} THEN TIMESTAMPTZ '2026-11-25T08:00:00Z' END, \
           CASE WHEN g <= {DUE} THEN 'insufficient_poe' END, \
           TIMESTAMPTZ '2026-06-01T00:00:00Z' + (g % 100000) * INTERVAL '1 minute', 1 \
         FROM generate_series(1, {CLAIMS}) g"
    )))
    .execute(pg.pool())
    .await
    .expect("insert claims");
    sqlx::query("ANALYZE")
        .execute(pg.pool())
        .await
        .expect("analyze");
    println!(
        "inserted {CLAIMS} claims in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let engine = Engine {
        calendars: Arc::new(Calendars::builtin().expect("calendars")),
        settings: TimerSettings {
            reminder_lead_business_days: 0,
            max_first_sight_age: chrono::Duration::days(14),
            never_shorten_communicated: true,
        },
        batch_size: 1000,
        template_version: None,
        stop: CancellationToken::new(),
    };
    // Before the rejections: the first pass only computes every claim's timers (a one-time cost
    // when the worker first meets a database).
    let started = Instant::now();
    let first = engine
        .tick(&store, t("2026-11-25T07:00:00Z"))
        .await
        .expect("first sync");
    println!(
        "initial sync of {} claims: {:.1} s (fired {})",
        first.synced,
        started.elapsed().as_secs_f64(),
        first.fired.values().sum::<usize>()
    );
    sqlx::query("VACUUM ANALYZE")
        .execute(pg.pool())
        .await
        .expect("vacuum");

    let started = Instant::now();
    let busy = engine
        .tick(&store, t("2026-11-25T09:00:00Z"))
        .await
        .expect("busy pass");
    let busy_s = started.elapsed().as_secs_f64();
    let fired: usize = busy.fired.values().sum();
    let history: i64 = sqlx::query_scalar("SELECT count(*) FROM claim_history")
        .fetch_one(pg.pool())
        .await
        .expect("count");
    let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM cpor_outbox")
        .fetch_one(pg.pool())
        .await
        .expect("count");
    println!(
        "pass with {fired} due timers: {busy_s:.2} s ({:.0} timers/s); history rows {history}, outbox rows {outbox}",
        fired as f64 / busy_s
    );

    // An idle pass and its floor, one due-index probe (the least any pass must ask), are
    // measured in turns so both see the same load on a shared machine.
    let (mut idle, mut probe) = (Vec::new(), Vec::new());
    for i in 0..9 {
        let at = t("2026-11-25T09:01:00Z") + Duration::seconds(i);
        let started = Instant::now();
        let o = engine.tick(&store, at).await.expect("idle pass");
        assert_eq!(o.fired.values().sum::<usize>(), 0);
        idle.push(started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        let due: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM cpor_timers WHERE state = 'pending' AND due_at <= $1 ORDER BY due_at LIMIT 1",
        )
        .bind(at)
        .fetch_optional(pg.pool())
        .await
        .expect("probe");
        assert!(due.is_none());
        probe.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    idle.sort_by(f64::total_cmp);
    probe.sort_by(f64::total_cmp);
    println!(
        "pass with nothing due: median {:.1} ms (min {:.1}, max {:.1}) over 9 passes; \
         floor (one due-index probe): median {:.2} ms (min {:.2}, max {:.2}); ratio {:.1}x",
        idle[4],
        idle[0],
        idle[8],
        probe[4],
        probe[0],
        probe[8],
        idle[4] / probe[4]
    );
}
