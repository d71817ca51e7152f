//! How the cost grows with claims and with replicas: for each size (100,000 / 1,000,000 /
//! 5,000,000 claims) and each replica count (1 / 2 / 4 processes of the real binary at once, on
//! one PostgreSQL with its durable defaults), the first pass over claims never seen, a pass with
//! 10 % of the claims due, and a pass with nothing due, each as wall-clock time until every
//! replica has finished, with the peak RSS of the largest replica process. Beside them, in the
//! same run: inserting the claims (the floor of first sight) and the same `tick` process on an
//! empty database (the floor of an idle pass: start-up, migrations check, one probe).
//! `cargo bench --bench scale`; `CPOR_BENCH_SIZES` (default `100000,1000000,5000000`) and
//! `CPOR_BENCH_REPLICAS` (default `1,2,4`) choose the table's rows and columns.

#[path = "support/pg.rs"]
mod pg;
#[path = "../tests/it/harness/pgcluster.rs"]
#[allow(dead_code)]
mod pgcluster;

use pg::{admin_exec, claims_sql, db_url, print_settings};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use cpor_worker::store::{PgStore, Store};

const FIRST_AT: &str = "2026-11-25T07:00:00Z";
const DUE_AT: &str = "2026-11-25T09:00:00Z";
const IDLE_AT: &str = "2026-11-25T09:01:00Z";

fn list(key: &str, default: &str) -> Vec<i64> {
    std::env::var(key)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().parse().expect("a list of whole numbers"))
        .collect()
}

/// What `replicas` processes of `cpor-worker tick --at AT` did together.
struct Run {
    seconds: f64,
    max_rss_mib: f64,
}

/// Starts `replicas` `tick` processes at once and waits for all; fails on any failure.
fn ticks(config: &std::path::Path, url: &str, at: &str, replicas: i64) -> Run {
    // Each replica's log goes to a file beside the config (a pipe nobody reads would stop it).
    let logs: Vec<std::path::PathBuf> = (0..replicas)
        .map(|i| config.with_file_name(format!("replica-{i}.log")))
        .collect();
    let started = Instant::now();
    let children: Vec<_> = logs
        .iter()
        .map(|log| {
            Command::new(env!("CARGO_BIN_EXE_cpor-worker"))
                .arg("--config")
                .arg(config)
                .args(["tick", "--no-send", "--at", at])
                .env("CPOR_DATABASE_URL", url)
                .env("CPOR_LOG_FORMAT", "json")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log).expect("log file"))
                .spawn()
                .expect("start cpor-worker tick")
        })
        .collect();
    let mut max_rss_kib = 0;
    for (child, log) in children.into_iter().zip(&logs) {
        let pid = i32::try_from(child.id()).expect("pid");
        let mut status = 0;
        // SAFETY: `rusage` is plain data the call fills in; `pid` is our own child, waited for once.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above; wait4 only writes to the two out-pointers.
        let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        assert_eq!(got, pid, "wait4");
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            let err = std::fs::read_to_string(log).unwrap_or_default();
            panic!("cpor-worker tick --at {at} failed: {err}");
        }
        max_rss_kib = max_rss_kib.max(usage.ru_maxrss);
    }
    Run {
        seconds: started.elapsed().as_secs_f64(),
        max_rss_mib: max_rss_kib as f64 / 1024.0,
    }
}

/// Creates `db` with the schema and `claims` claims, a tenth of them rejected at 08:00 (their
/// rejection notice is due at the 09:00 pass), the rest with timers far from due.
async fn seed(admin: &str, db: &str, claims: i64) -> f64 {
    admin_exec(admin, format!("CREATE DATABASE {db}")).await;
    let pg = PgStore::connect(&db_url(admin, db), 2).await.expect("open");
    pg.migrate().await.expect("migrate");
    let started = Instant::now();
    sqlx::query(sqlx::AssertSqlSafe(claims_sql(
        claims,
        "g % 10 = 0",
        "TIMESTAMPTZ '2026-11-25T08:00:00Z'",
    )))
    .execute(pg.pool())
    .await
    .expect("insert claims");
    let insert_s = started.elapsed().as_secs_f64();
    sqlx::query("ANALYZE")
        .execute(pg.pool())
        .await
        .expect("analyze");
    pg.pool().close().await;
    insert_s
}

#[tokio::main]
async fn main() {
    let sizes = list("CPOR_BENCH_SIZES", "100000,1000000,5000000");
    let replicas = list("CPOR_BENCH_REPLICAS", "1,2,4");
    let cluster = pgcluster::Cluster::start(true).expect("start PostgreSQL (durable defaults)");
    let admin = cluster.admin_url();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("cpor-worker.toml");
    let mut f = std::fs::File::create(&config).expect("config");
    writeln!(
        f,
        "[timers]\nbatch_size = 5000\n[database]\nmax_connections = 4"
    )
    .expect("config");
    drop(f);
    let admin_pool = sqlx::PgPool::connect(&admin).await.expect("connect");
    print_settings(&admin_pool).await;
    admin_pool.close().await;
    println!(
        "cpus {}, timers.batch_size 5000, database.max_connections 4 per replica",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // The idle floor: the same process on a database with the schema and no claims.
    seed(&admin, "cpor_scale_empty", 0).await;
    let empty = db_url(&admin, "cpor_scale_empty");
    ticks(&config, &empty, FIRST_AT, 1);
    let floor = ticks(&config, &empty, IDLE_AT, 1);
    println!(
        "floor: `tick` on an empty database {:.0} ms, peak RSS {:.0} MiB",
        floor.seconds * 1000.0,
        floor.max_rss_mib
    );

    println!(
        "| claims | replicas | insert (floor) | first sight | ratio | pass, 10 % due | pass, nothing due | idle / empty-db floor | peak RSS per replica |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in &sizes {
        let base = format!("cpor_scale_{n}");
        let insert_s = seed(&admin, &base, n).await;
        for &r in &replicas {
            let db = format!("{base}_r{r}");
            admin_exec(
                &admin,
                format!("CREATE DATABASE {db} TEMPLATE {base} STRATEGY FILE_COPY"),
            )
            .await;
            let url = db_url(&admin, &db);
            let first = ticks(&config, &url, FIRST_AT, r);
            let busy = ticks(&config, &url, DUE_AT, r);
            let idle = ticks(&config, &url, IDLE_AT, r);
            let pg = PgStore::connect(&url, 1).await.expect("open");
            let fired: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM cpor_timers WHERE state = 'fired' AND fired_at IS NOT NULL",
            )
            .fetch_one(pg.pool())
            .await
            .expect("count");
            pg.pool().close().await;
            assert_eq!(fired, n / 10, "every due timer fired exactly once");
            let rss = first
                .max_rss_mib
                .max(busy.max_rss_mib)
                .max(idle.max_rss_mib);
            println!(
                "| {n} | {r} | {insert_s:.1} s | {:.1} s | {:.1}x | {:.1} s | {:.0} ms | {:.1}x | {rss:.0} MiB |",
                first.seconds,
                first.seconds / insert_s,
                busy.seconds,
                idle.seconds * 1000.0,
                idle.seconds / floor.seconds
            );
            admin_exec(&admin, format!("DROP DATABASE {db}")).await;
        }
        admin_exec(&admin, format!("DROP DATABASE {base}")).await;
    }
}
