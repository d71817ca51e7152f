//! Pass throughput on PostgreSQL with its durable defaults (fsync and synchronous_commit on):
//! 1,000,000 claims of which 100,000 have a timer due at each of three firing rounds. Prints each
//! figure beside its floor, in the same run: the first pass (every claim's timers computed)
//! beside inserting the claims; in each round, a pass firing that round's 100,000 due timers
//! beside set-based SQL doing the same writes (claim lock and version check, history row, outbox
//! row, timer marked fired) in batches of 5,000 per transaction, on copies of the same database
//! (twice: the worker's sample documents parsed once per batch and written to every row, and a
//! document of its own parsed per row), then the median and range of the rounds' ratios (the
//! spread a shared machine gives); a pass with nothing due beside one index probe.
//! `cargo bench --bench tick`. `CPOR_BENCH_CLAIMS`, `CPOR_BENCH_DUE` (per round),
//! `CPOR_BENCH_ROUNDS` and `CPOR_BENCH_BATCH` (the worker's `timers.batch_size`, default 5000
//! like the floor) change the sizes.
//! Uses CPOR_BENCH_DATABASE_URL (an admin URL) if set, else starts a throwaway cluster with
//! PostgreSQL's default settings.

/// The allocator the `cpor-worker` binary uses (src/main.rs), so the pass here allocates as
/// the shipped worker does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/pg.rs"]
mod pg;
#[path = "../tests/it/harness/pgcluster.rs"]
#[allow(dead_code)]
mod pgcluster;
#[path = "support/engine.rs"]
mod support_engine;

use pg::{admin_exec, claims_sql, db_url, print_settings, server_cpu_s};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use cpor_worker::store::{AnyStore, PgStore, Store};
use sqlx::PgPool;

/// The floor's batch: the set-based reference writes 5,000 claims per transaction.
const FLOOR_BATCH: i64 = 5000;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("time")
}

fn env_num(key: &str, default: i64) -> i64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn scalar_i64(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(pool)
        .await
        .expect("count")
}

/// How the floor writes its JSON documents.
#[derive(Clone, Copy, PartialEq)]
enum Docs {
    /// The worker's sample `details` and `payload` as one parameter each, parsed into `jsonb`
    /// once per batch and written to every row (the floor as the issue measured it).
    Shared,
    /// A document of its own per row, each parsed: the sample with the claim's id put in (the
    /// payload's `claim_id` replaced, a `claim_id` key added to the details), as the worker
    /// writes a document per claim.
    PerRow,
}

/// The floor's statement for one batch; `$3` the details and `$4` the payload text, `$5` the
/// sample's claim id as it appears in the payload (`"c…"`).
macro_rules! floor_sql {
    ($details:literal, $payload:literal) => {
        concat!(
            "WITH due AS (
               SELECT t.claim_id, t.timer, t.started_at, t.claim_version FROM cpor_timers t
               WHERE t.state = 'pending' AND t.due_at <= $1
                 AND NOT EXISTS (SELECT 1 FROM cpor_claim_holds h WHERE h.claim_id = t.claim_id)
               ORDER BY t.due_at, t.claim_id LIMIT $2 FOR UPDATE OF t SKIP LOCKED),
             ok AS (
               SELECT c.id, c.partner_name, c.partner_email, c.locale, d.timer, d.started_at
               FROM claims c JOIN due d ON d.claim_id = c.id AND c.version = d.claim_version
               FOR UPDATE OF c SKIP LOCKED),
             h AS (
               INSERT INTO claim_history (claim_id, occurred_at, actor, action, details)
               SELECT id, $1, 'system', 'rejection_notice_sent', ",
            $details,
            " FROM ok),
             o AS (
               INSERT INTO cpor_outbox (message_id, claim_id, timer, started_at, email, to_name,
                 to_address, locale, payload, state, attempts, next_attempt_at, created_at)
               SELECT 'floor.' || id || '.' || timer || '@cpor.example', id, timer, started_at,
                 'rejection_notice', partner_name, partner_email, locale, ",
            $payload,
            ", 'pending', 0,
                 $1, $1 FROM ok),
             f AS (
               UPDATE cpor_timers t SET state = 'fired', fired_at = $1, outcome = 'sent'
               FROM ok WHERE t.claim_id = ok.id AND t.timer = ok.timer AND t.started_at = ok.started_at)
             SELECT count(*) FROM due"
        )
    };
}

/// The floor: the same writes as the firing pass in set-based SQL, `FLOOR_BATCH` claims per
/// transaction, with the worker's own history `details` and outbox `payload` (taken from its
/// pass) as the written values, so both write rows of the same size.
async fn floor_pass(
    pool: &PgPool,
    now: DateTime<Utc>,
    (details, payload, sample_id): (&str, &str, &str),
    docs: Docs,
) -> i64 {
    let sql = match docs {
        Docs::Shared => floor_sql!("$3::jsonb", "$4::jsonb"),
        Docs::PerRow => floor_sql!(
            "(left($3, -1) || ',\"claim_id\":\"' || id || '\"}')::jsonb",
            "replace($4, $5, '\"' || id || '\"')::jsonb"
        ),
    };
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await.expect("begin");
        let n: i64 = sqlx::query_scalar(sql)
            .bind(now)
            .bind(FLOOR_BATCH)
            .bind(details)
            .bind(payload)
            .bind(sample_id)
            .fetch_one(&mut *tx)
            .await
            .expect("floor batch");
        tx.commit().await.expect("commit");
        if n == 0 {
            return total;
        }
        total += n;
    }
}

/// The median of `ratios` with their range, as printed.
fn spread(ratios: &mut [f64]) -> String {
    ratios.sort_by(f64::total_cmp);
    match ratios {
        [] => "none".to_owned(),
        [only] => format!("{only:.2}x"),
        _ => format!(
            "median {:.2}x (range {:.2}x to {:.2}x)",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        ),
    }
}

/// Starts counting statements afresh (`CPOR_BENCH_STATEMENTS`).
async fn reset_statements(pool: &PgPool) {
    for sql in [
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
        "SELECT pg_stat_statements_reset()",
    ] {
        sqlx::query(sql)
            .execute(pool)
            .await
            .expect("CPOR_BENCH_STATEMENTS needs pg_stat_statements preloaded");
    }
}

/// The first and the busy pass's statements by total execution time (`CPOR_BENCH_STATEMENTS`, on a server
/// with `pg_stat_statements` in `shared_preload_libraries`).
async fn print_statements(pool: &PgPool) {
    let rows: Vec<(f64, i64, i64, String)> = sqlx::query_as(
        "SELECT total_exec_time, calls, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 110) \
         FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 15",
    )
    .fetch_all(pool)
    .await
    .expect("pg_stat_statements");
    for (ms, calls, n, q) in rows {
        println!("  {ms:8.0} ms {calls:5} calls {n:7} rows  {q}");
    }
}

/// The cluster's WAL so far: its position in bytes (`pg_current_wal_lsn`, exact at once, every
/// process of the cluster included: autovacuum, the checkpointer) and the full-page images
/// `pg_stat_wal` has counted (a connection reports its counts up to 10 s late, so a phase's
/// last batches may count in the next phase's).
async fn wal(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, wal_fpi FROM pg_stat_wal",
    )
    .fetch_one(pool)
    .await
    .expect("pg_stat_wal")
}

/// A checkpoint before a timed phase: the cluster checkpoints about every half GiB of WAL
/// (`max_wal_size` 1 GB by default) and a round writes about 0.9 GiB, so without one a
/// checkpoint, and the full-page images after it, fell in whichever phase came next (most
/// often a third round's floor). False when the server refuses it (`CHECKPOINT` needs a
/// superuser, or from PostgreSQL 15 the `pg_checkpoint` role).
async fn checkpoint(pool: &PgPool) -> bool {
    sqlx::query("CHECKPOINT").execute(pool).await.is_ok()
}

/// What a phase wrote to the WAL, from two [`wal`] readings, with its range of positions
/// (for `pg_waldump --stats=record -s FROM -e TO`, on a cluster that keeps its WAL).
fn wal_text(from: (i64, i64), to: (i64, i64)) -> String {
    let lsn = |pos: i64| format!("{:X}/{:X}", pos >> 32, pos & 0xffff_ffff);
    format!(
        "{:.0} MiB WAL ({} to {}), {} full-page images",
        (to.0 - from.0) as f64 / 1048576.0,
        lsn(from.0),
        lsn(to.0),
        to.1 - from.1
    )
}

/// A phase's CPU seconds: the server's (from two [`server_cpu_s`] readings) and the worker's
/// (`worker`, this process's threads; 0 for a floor, whose client work is one statement at a
/// time), and their sum.
fn cpu_text(from: Option<f64>, to: Option<f64>, worker: f64) -> String {
    match (from, to) {
        (Some(a), Some(b)) if worker > 0.0 => format!(
            "{:.1} s (PostgreSQL {:.1} + worker {worker:.1})",
            b - a + worker,
            b - a
        ),
        (Some(a), Some(b)) => format!("{:.1} s (PostgreSQL)", b - a),
        _ => format!("worker {worker:.1} s (PostgreSQL's processes are not on this machine)"),
    }
}

/// CPU seconds this process (the worker's side of a pass) has used so far, user and system.
fn cpu_s() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given; RUSAGE_SELF is always valid.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

#[tokio::main]
async fn main() {
    let claims = env_num("CPOR_BENCH_CLAIMS", 1_000_000);
    let due = env_num("CPOR_BENCH_DUE", 100_000);
    let batch = env_num("CPOR_BENCH_BATCH", FLOOR_BATCH);
    let (_cluster, admin) = match std::env::var("CPOR_BENCH_DATABASE_URL") {
        Ok(url) => (None, url),
        Err(_) => {
            let c = pgcluster::Cluster::start(true).expect("start PostgreSQL (durable defaults)");
            let url = c.admin_url();
            (Some(c), url)
        }
    };
    let db = format!("cpor_bench_{}", std::process::id());
    let copy = format!("{db}_floor");
    let copy_docs = format!("{db}_floor_docs");
    admin_exec(&admin, format!("CREATE DATABASE {db}")).await;
    let pg = PgStore::connect(&db_url(&admin, &db), 8)
        .await
        .expect("open");
    print_settings(pg.pool()).await;
    println!("claims {claims}, due {due}, worker batch_size {batch}, floor batch {FLOOR_BATCH}");
    let store = AnyStore::Postgres(pg.clone());
    store.migrate().await.expect("migrate");

    // `claims - due * rounds` claims with timers that are not due (submitted, under review,
    // drafts); in each round's group, `due` claims rejected by a reviewer an hour before that
    // round's pass (rounds two hours apart): their rejection notice is due (history row, outbox
    // row, fired timer).
    let rounds = env_num("CPOR_BENCH_ROUNDS", 3).max(1);
    assert!(
        due * rounds <= claims,
        "CPOR_BENCH_DUE × CPOR_BENCH_ROUNDS must not exceed CPOR_BENCH_CLAIMS"
    );
    let wal0 = wal(pg.pool()).await;
    let server0 = server_cpu_s(pg.pool()).await;
    let started = Instant::now();
    sqlx::query(sqlx::AssertSqlSafe(claims_sql(
        claims,
        &format!("g <= {}", due * rounds),
        &format!("TIMESTAMPTZ '2026-11-25T08:00:00Z' + ((g - 1) / {due}) * INTERVAL '2 hours'"),
    )))
    .execute(pg.pool())
    .await
    .expect("insert claims");
    let insert_s = started.elapsed().as_secs_f64();
    let server1 = server_cpu_s(pg.pool()).await;
    let wal1 = wal(pg.pool()).await;
    sqlx::query("ANALYZE")
        .execute(pg.pool())
        .await
        .expect("analyze");

    let engine = support_engine::engine(batch);
    let statements = std::env::var_os("CPOR_BENCH_STATEMENTS").is_some();
    if statements {
        reset_statements(pg.pool()).await;
    }
    // Before the rejections: the first pass only computes every claim's timers (a one-time cost
    // when the worker first meets a database).
    let first_cpu0 = cpu_s();
    let server2 = server_cpu_s(pg.pool()).await;
    let started = Instant::now();
    let first = engine
        .tick(&store, t("2026-11-25T07:00:00Z"))
        .await
        .expect("first sync");
    let first_s = started.elapsed().as_secs_f64();
    let first_cpu = cpu_s() - first_cpu0;
    let server3 = server_cpu_s(pg.pool()).await;
    let wal2 = wal(pg.pool()).await;
    println!(
        "first pass over {} claims never seen: {first_s:.1} s; floor (inserting the claims): \
         {insert_s:.1} s; ratio {:.1}x",
        first.synced,
        first_s / insert_s
    );
    println!(
        "  first pass wrote {}; the insert {}",
        wal_text(wal1, wal2),
        wal_text(wal0, wal1)
    );
    println!(
        "  CPU time: first pass {}; the insert {}",
        cpu_text(server2, server3, first_cpu),
        cpu_text(server0, server1, 0.0)
    );
    if statements {
        print_statements(pg.pool()).await;
    }
    sqlx::query("VACUUM ANALYZE")
        .execute(pg.pool())
        .await
        .expect("vacuum");

    // The floor runs on a copy of the database as it is now, so both start from the same rows.
    pg.pool().close().await;
    for c in [&copy, &copy_docs] {
        admin_exec(
            &admin,
            format!("CREATE DATABASE {c} TEMPLATE {db} STRATEGY FILE_COPY"),
        )
        .await;
    }
    let pg = PgStore::connect(&db_url(&admin, &db), 8)
        .await
        .expect("reopen");
    let store = AnyStore::Postgres(pg.clone());
    // As the worker does at start-up.
    store
        .detect_optional_columns()
        .await
        .expect("optional columns");
    let floor_pool = PgPool::connect(&db_url(&admin, &copy))
        .await
        .expect("open copy");
    let docs_pool = PgPool::connect(&db_url(&admin, &copy_docs))
        .await
        .expect("open copy");

    // Round k's group falls due at 08:00 + 2k hours; its pass runs an hour later. Each round
    // runs the worker's pass and both floors one after another, so each ratio compares runs
    // seconds apart; the rounds show how much a shared machine moves them.
    let mut sample: Option<(String, String, String)> = None;
    let (mut ratios, mut docs_ratios) = (Vec::new(), Vec::new());
    let round_at = |round: i64| t("2026-11-25T09:00:00Z") + Duration::hours(2 * (round - 1));
    for round in 1..=rounds {
        let at = round_at(round);
        // Before the statements are counted afresh: not one of the pass's.
        let mut checkpoints = checkpoint(pg.pool()).await;
        if statements {
            reset_statements(pg.pool()).await;
        }
        let cpu0 = cpu_s();
        let server4 = server_cpu_s(pg.pool()).await;
        let wal4 = wal(pg.pool()).await;
        let started = Instant::now();
        let busy = engine.tick(&store, at).await.expect("busy pass");
        let busy_s = started.elapsed().as_secs_f64();
        let busy_cpu = cpu_s() - cpu0;
        let server5 = server_cpu_s(pg.pool()).await;
        let wal5 = wal(pg.pool()).await;
        if statements {
            print_statements(pg.pool()).await;
        }
        let fired: usize = busy.fired.values().sum();
        let history = scalar_i64(pg.pool(), "SELECT count(*) FROM claim_history").await;
        let outbox = scalar_i64(pg.pool(), "SELECT count(*) FROM cpor_outbox").await;
        if sample.is_none() {
            sample = Some(
                sqlx::query_as(
                    "SELECT h.details::text, o.payload::text, to_jsonb(o.claim_id)::text \
                     FROM claim_history h JOIN cpor_outbox o ON o.claim_id = h.claim_id \
                     ORDER BY h.claim_id LIMIT 1",
                )
                .fetch_one(pg.pool())
                .await
                .expect("sample rows"),
            );
        }
        let Some((details, payload, sample_id)) = &sample else {
            unreachable!("taken above")
        };
        let sample = (details.as_str(), payload.as_str(), sample_id.as_str());
        let mut floors = Vec::new();
        for (pool, docs) in [(&floor_pool, Docs::Shared), (&docs_pool, Docs::PerRow)] {
            checkpoints &= checkpoint(pool).await;
            let server0 = server_cpu_s(pool).await;
            let wal0 = wal(pool).await;
            let started = Instant::now();
            let fired = floor_pass(pool, at, sample, docs).await;
            let s = started.elapsed().as_secs_f64();
            let server1 = server_cpu_s(pool).await;
            let wal1 = wal(pool).await;
            let history = scalar_i64(pool, "SELECT count(*) FROM claim_history").await;
            floors.push((
                s,
                fired,
                history,
                cpu_text(server0, server1, 0.0),
                wal_text(wal0, wal1),
            ));
        }
        let (floor_s, floor_fired, floor_history, floor_cpu, floor_wal) = &floors[0];
        let (docs_s, docs_fired, docs_history, docs_cpu, docs_wal) = &floors[1];
        ratios.push(busy_s / floor_s);
        docs_ratios.push(busy_s / docs_s);
        println!(
            "round {round}/{rounds}: pass firing {fired} due timers: {busy_s:.2} s ({:.0}/s; \
             history rows {history}, outbox rows {outbox}); floor (set-based SQL, same writes, \
             {FLOOR_BATCH} per transaction): {floor_s:.2} s for {floor_fired} ({floor_history} \
             history rows); ratio {:.2}x",
            fired as f64 / busy_s,
            busy_s / floor_s
        );
        println!(
            "  CPU time: firing pass {}; floor {floor_cpu}",
            cpu_text(server4, server5, busy_cpu),
        );
        if !checkpoints && round == 1 {
            println!(
                "  CHECKPOINT refused (needs a superuser or pg_checkpoint): a checkpoint may \
                 fall inside a timed phase"
            );
        }
        println!(
            "  the firing pass wrote {}; the floor {floor_wal}",
            wal_text(wal4, wal5)
        );
        println!(
            "  floor with a JSON document parsed per row (history details and outbox payload, \
             as the worker writes them): {docs_s:.2} s for {docs_fired} ({docs_history} history \
             rows); ratio {:.2}x; CPU time {docs_cpu}; {docs_wal}",
            busy_s / docs_s
        );
    }
    println!(
        "pass firing {due} due timers, {rounds} rounds: ratio to the floor {}; to the floor with \
         a document per row {}",
        spread(&mut ratios),
        spread(&mut docs_ratios)
    );
    docs_pool.close().await;
    floor_pool.close().await;

    // An idle pass and its floor, one due-index probe (the least any pass must ask), are
    // measured in turns so both see the same load on a shared machine.
    let (mut idle, mut probe) = (Vec::new(), Vec::new());
    for i in 0..9 {
        let at = round_at(rounds) + Duration::minutes(1) + Duration::seconds(i);
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
    // A server given by URL keeps running: leave it as found.
    pg.pool().close().await;
    for d in [&copy, &copy_docs, &db] {
        admin_exec(&admin, format!("DROP DATABASE {d}")).await;
    }
}
