//! The dry-run report over 1,000,000 claims: `cargo bench --bench report`.
//!
//! Fills a fresh SQLite file (and PostgreSQL when `CPOR_BENCH_DATABASE_URL` names an empty,
//! writable database) with a mix of every status over the last 60 days, never ticked — so most
//! approved and rejected claims have timers due: a worst case for rows shown. Then, for each
//! format, runs the report in a child process (this binary again, `--child`) so that its peak
//! RSS (`VmHWM` of /proc/self/status) is the report's alone, and prints seconds and MB.
//! `CPOR_BENCH_CLAIMS` changes the count.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use cpor_worker::calendar::Calendars;
use cpor_worker::report::scan::ScanInput;
use cpor_worker::report::{Filter, Format, Window, scan};
use cpor_worker::store::{AnyStore, PgStore, SqliteStore, Store};
use cpor_worker::timers::TimerSettings;

const AT: &str = "2026-12-23T15:00:00Z";

/// The claim columns the fill writes, and each one's SQL expression of `i` and `{at}` (epoch).
const COLUMNS: &str = "id, status, partner_id, partner_name, partner_email, customer_tenant_id, \
customer_name, customer_email, products, country, locale, submitted_at, review_started_at, \
info_requested_at, info_request_reason, approved_at, rejected_at, rejection_reason, \
customer_declined_at, dispute_opened_at, updated_at, version";

fn status_case() -> &'static str {
    "CASE WHEN i % 20 < 2 THEN 'draft' WHEN i % 20 < 5 THEN 'submitted' \
     WHEN i % 20 < 7 THEN 'under_review' WHEN i % 20 < 9 THEN 'partner_action_required' \
     WHEN i % 20 < 14 THEN 'approved' ELSE 'rejected' END"
}

/// `SELECT` list producing one claim per `i`; `ts(expr)` turns epoch seconds into a timestamp.
fn select_list(at: i64, ts: &dyn Fn(String) -> String) -> String {
    let o = "((i * 7919) % 5184000)"; // seconds before AT, spread over 60 days
    let when = |num: &str, cond: &str| {
        format!(
            "CASE WHEN {cond} THEN {} END",
            ts(format!("{at} - {o} * {num}"))
        )
    };
    let st = "(i % 20)";
    format!(
        "printf_id, {status}, 'P-' || (i % 997), 'Partner ' || (i % 997), 'p' || (i % 997) || '@partner.example', \
         'T-' || (i % 4999), 'Customer ' || (i % 4999), 'c' || (i % 4999) || '@customer.example', 'Dynamics 365 Sales', \
         CASE i % 4 WHEN 0 THEN 'SE' WHEN 1 THEN 'US' WHEN 2 THEN 'GB' ELSE 'DE' END, \
         CASE i % 4 WHEN 0 THEN 'sv-SE' ELSE 'en' END, \
         {sub}, {rev}, {info}, CASE WHEN {st} IN (7, 8) THEN 'missing_products' END, {appr}, {rej}, \
         CASE WHEN {st} >= 14 THEN 'insufficient_poe' END, {decl}, {disp}, {upd}, 1",
        status = status_case(),
        sub = when("1", &format!("{st} >= 2")),
        rev = when("3 / 4", &format!("{st} >= 5")),
        info = when("1 / 2", &format!("{st} IN (7, 8)")),
        appr = when("1 / 2", &format!("{st} BETWEEN 9 AND 13")),
        rej = when("1 / 2", &format!("{st} >= 14")),
        decl = when("1 / 4", &format!("{st} BETWEEN 9 AND 13 AND i % 100 = 9")),
        disp = when("1 / 4", &format!("{st} >= 14 AND i % 7 = 0")),
        upd = ts(format!("{at} - {o} / 4")),
    )
}

async fn fill(store: &AnyStore, n: i64, at: DateTime<Utc>) {
    store.migrate().await.expect("migrate");
    let at = at.timestamp();
    let t = Instant::now();
    let sql = match store {
        AnyStore::Sqlite(_) => format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
             INSERT INTO claims ({COLUMNS}) SELECT {} FROM s",
            select_list(at, &|e| format!(
                "strftime('%Y-%m-%dT%H:%M:%SZ', {e}, 'unixepoch')"
            ))
            .replace("printf_id", "printf('B-%08d', i)")
        ),
        AnyStore::Postgres(_) => format!(
            "INSERT INTO claims ({COLUMNS}) SELECT {} FROM generate_series(1::bigint, {n}) AS s(i)",
            select_list(at, &|e| format!("to_timestamp({e})"))
                .replace("printf_id", "'B-' || lpad(i::text, 8, '0')")
        ),
    };
    let sql = sqlx::AssertSqlSafe(sql);
    match store {
        AnyStore::Sqlite(s) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
        AnyStore::Postgres(s) => sqlx::query(sql).execute(s.pool()).await.map(|_| ()),
    }
    .expect("fill claims");
    println!("  filled {n} claims in {:.1} s", t.elapsed().as_secs_f64());
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The child: one report of `format` over `url`, to /dev/null; prints seconds and peak RSS.
async fn child(url: &str, format: &str) {
    let store = if url.starts_with("sqlite:") {
        AnyStore::Sqlite(SqliteStore::connect(url, 4).await.expect("open"))
    } else {
        AnyStore::Postgres(PgStore::connect(url, 4).await.expect("open"))
    };
    let cals = Arc::new(Calendars::builtin().expect("calendars"));
    let at: DateTime<Utc> = AT.parse().expect("AT");
    let filter = Filter::default();
    let input = ScanInput {
        calendars: &cals,
        settings: TimerSettings {
            reminder_lead_business_days: 0,
            max_first_sight_age: chrono::Duration::days(14),
            never_shorten_communicated: true,
        },
        window: Window {
            at,
            until: at + Duration::days(7),
        },
        horizon: "7d",
        filter: &filter,
    };
    let format: Format = format.parse().expect("format");
    let out = std::io::BufWriter::new(std::fs::File::create("/dev/null").expect("/dev/null"));
    let mut sink = format.sink(out).expect("sink");
    let t = Instant::now();
    let s = scan(&store, &input, sink.as_mut(), &|_| {})
        .await
        .expect("report");
    println!(
        "{:.2} {:.1} {} {}",
        t.elapsed().as_secs_f64(),
        peak_rss_mb(),
        s.claims_read,
        s.rows_now + s.rows_horizon
    );
}

fn measure(label: &str, url: &str) {
    for format in ["csv", "json", "table", "html"] {
        let exe = std::env::current_exe().expect("own path");
        let out = std::process::Command::new(exe)
            .args(["--child", url, format])
            .output()
            .expect("run child");
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = text.split_whitespace().collect();
        if !out.status.success() || f.len() < 4 {
            println!(
                "  {label} {format}: FAILED {}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        println!(
            "  {label} --format {format:<5}: {:>6} s, peak RSS {:>6} MB ({} claims, {} rows)",
            f[0], f[1], f[2], f[3]
        );
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1], &args[i + 2]).await;
        return;
    }
    let n: i64 = std::env::var("CPOR_BENCH_CLAIMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let at: DateTime<Utc> = AT.parse().expect("AT");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    println!("dry-run report over {n} claims at {AT}, horizon 7d");
    {
        let store = AnyStore::Sqlite(SqliteStore::connect(&url, 1).await.expect("sqlite"));
        fill(&store, n, at).await;
    }
    measure("sqlite", &url);
    match std::env::var("CPOR_BENCH_DATABASE_URL") {
        Ok(pg) if !pg.is_empty() => {
            let store = AnyStore::Postgres(PgStore::connect(&pg, 2).await.expect("postgres"));
            fill(&store, n, at).await;
            measure("postgres", &pg);
        }
        _ => println!("  postgres: skipped (set CPOR_BENCH_DATABASE_URL to an empty database)"),
    }
}
