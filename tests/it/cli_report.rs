//! `dry-run` and `explain` driven through the binary after `demo` and `tick`, on both backends:
//! every format, the filters, read-only, holidays explained, bad claims, and an HTML screenshot.

use std::path::Path;

use cpor_worker::store::AnyStore;
use serde_json::Value;

use crate::harness::{self, Cmd, TestStore, text};

/// Runs each listed test once on SQLite and once on PostgreSQL, handing it the test database.
macro_rules! report_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = crate::harness::sqlite_unmigrated().await;
                    super::$name(&db).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = crate::harness::postgres_unmigrated(stringify!($name)).await else {
                        return;
                    };
                    super::$name(&db).await;
                }
            )+
        }
    };
}

report_tests!(
    table_has_a_summary_and_readable_rows,
    json_parses_with_the_documented_fields,
    csv_has_the_documented_header,
    html_has_the_chart_and_the_table,
    dry_run_changes_nothing,
    explain_names_the_skipped_christmas_holidays,
    status_and_country_filters_work,
    bad_and_unknown_claims_are_reported,
);

/// The demo's reference instant, and the report's (the next morning, UTC).
const DEMO_AT: &str = "2026-12-23T15:00:00Z";
pub(crate) const AT: &str = "2026-12-24T09:00:00Z";

/// A temp folder and the binary run in it on `db`, after `demo` and `tick --no-send`.
pub(crate) fn prepared(db: &TestStore) -> (tempfile::TempDir, Cmd) {
    let dir = tempfile::tempdir().unwrap();
    let cmd = Cmd::new(dir.path()).envs(&[("CPOR_DATABASE_URL", &db.url)]);
    cmd.ok(&["demo", "--at", DEMO_AT]);
    cmd.ok(&["tick", "--no-send", "--at", DEMO_AT]);
    (dir, cmd)
}

fn dry_run_json(cmd: &Cmd, extra: &[&str]) -> Value {
    let mut args = vec!["dry-run", "--at", AT, "--format", "json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&cmd.ok(&args)).expect("dry-run JSON parses")
}

async fn table_has_a_summary_and_readable_rows(db: &TestStore) {
    let (_dir, cmd) = prepared(db);
    let out = cmd.ok(&["dry-run", "--at", AT, "--horizon", "2w"]);
    let summary = out.find("SUMMARY BY ACTION").expect("summary");
    let rows = out.find("DUE WITHIN THE HORIZON").expect("horizon rows");
    assert!(summary < rows, "summary comes first:\n{out}");
    assert!(out.contains("SUMMARY BY DAY"), "{out}");
    assert!(out.contains("auto_rejected"), "{out}");
    assert!(
        out.contains("CPOR-100006") && out.contains("response_deadline"),
        "{out}"
    );
    assert!(out.contains("Europe/Stockholm"), "{out}");
    assert!(out.contains("email claim_rejected (sv-SE) -> claims@nordljus.example"));
    for line in out.lines() {
        assert!(line.chars().count() <= 100, "wider than 100: {line}");
    }
}

async fn json_parses_with_the_documented_fields(db: &TestStore) {
    let (_dir, cmd) = prepared(db);
    let j = dry_run_json(&cmd, &["--horizon", "2w"]);
    assert_eq!(j["report"], "dry-run");
    assert_eq!(j["version"], 1);
    let s = &j["summary"];
    for k in [
        "at",
        "until",
        "horizon",
        "claims_read",
        "rows_now",
        "rows_horizon",
        "emails",
        "sla_breaches_now",
        "problems",
        "dead_emails",
        "by_action",
        "due_now",
        "by_day",
    ] {
        assert!(!s[k].is_null(), "summary.{k} missing: {s}");
    }
    assert_eq!(s["claims_read"], 17);
    let rows = j["rows"].as_array().unwrap();
    assert_eq!(
        rows.len() as u64,
        s["rows_now"].as_u64().unwrap() + s["rows_horizon"].as_u64().unwrap()
    );
    let r = rows
        .iter()
        .find(|r| r["claim_id"] == "CPOR-100006" && r["timer"] == "partner_response_deadline")
        .expect("the SE response deadline is in the horizon");
    assert_eq!(r["when"], "horizon");
    assert_eq!(r["action"], "auto_rejected");
    assert_eq!(r["new_status"], "rejected");
    assert_eq!(r["last_day"], "2027-01-04");
    assert_eq!(r["deadline_utc"], "2027-01-04T23:00:00Z");
    assert_eq!(r["deadline_local"], "2027-01-05T00:00:00+01:00");
    assert_eq!(r["time_zone"], "Europe/Stockholm");
    assert_eq!(r["business_days_left"], 4);
    assert_eq!(r["emails"][0]["kind"], "claim_rejected");
    assert_eq!(r["emails"][0]["locale"], "sv-SE");
    // What `tick --at AT` does is exactly the `now` rows.
    let now: Vec<&Value> = rows.iter().filter(|r| r["when"] == "now").collect();
    assert!(
        now.iter()
            .any(|r| r["claim_id"] == "CPOR-100008" && r["action"] == "reminder_sent"),
        "{now:?}"
    );
    assert!(j["problems"].as_array().unwrap().is_empty());
    assert!(j["dead_emails"].as_array().unwrap().is_empty());
}

async fn csv_has_the_documented_header(db: &TestStore) {
    let (_dir, cmd) = prepared(db);
    let out = cmd.ok(&["dry-run", "--at", AT, "--format", "csv"]);
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "record,when,claim_id,status,country,timer,started_at,due_at,last_day,deadline_utc,\
         deadline_local,time_zone,business_days_left,action,outcome,new_status,sla_breach,emails,problem,\
         computed_with_older_calendars"
    );
    let rows: Vec<&str> = lines.collect();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|l| l.starts_with("timer,")), "{out}");
    assert!(rows.iter().any(|l| l.contains(",CPOR-100008,")), "{out}");
}

async fn html_has_the_chart_and_the_table(db: &TestStore) {
    let (dir, cmd) = prepared(db);
    let html = cmd.ok(&["dry-run", "--at", AT, "--format", "html", "--horizon", "2w"]);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg") && html.contains("<rect"), "chart");
    assert!(html.contains("<table") && html.contains("CPOR-100006"));
    assert!(html.contains("<style>"));
    assert!(
        html.matches("<script").count() == 1
            && html.contains("<script>")
            && !html.contains("http://")
            && !html.contains("https://"),
        "self-contained: one inline script (table sorting), nothing fetched"
    );
    // CPOR-100006's response deadline falls due after AT: a row of the horizon, not yet fired.
    let horizon = &html[html.find("<section id=\"horizon\">").expect("horizon rows")..];
    let horizon = &horizon[..horizon.find("</section>").unwrap()];
    let row = horizon
        .split("<tr")
        .find(|r| r.contains("CPOR-100006") && r.contains("partner_<wbr>response_<wbr>deadline"))
        .expect("the SE response deadline is in the horizon");
    assert!(
        row.contains("auto_<wbr>rejected → rejected") && row.contains(">will fire<"),
        "{row}"
    );
    assert!(!horizon.contains("fired"), "{horizon}");
    assert!(row.contains(">2027-01-04 23:00 UTC</time>"), "{row}");
    screenshot(dir.path(), &html);
}

/// Renders the page with Debian's chromium, when present, and checks a real PNG came out.
fn screenshot(dir: &Path, html: &str) {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(chromium) = chromium else {
        eprintln!(
            "!!!!!! SKIPPED HTML screenshot check: no chromium (apt-get install -y chromium) !!!!!!"
        );
        return;
    };
    let page = dir.join("report.html");
    std::fs::write(&page, html).unwrap();
    let png = dir.join("report.png");
    let profile = dir.join("chromium-profile");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,900",
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("run chromium");
    let bytes = std::fs::read(&png)
        .unwrap_or_else(|e| panic!("no screenshot ({e}); chromium said: {}", text(&out.stderr)));
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        bytes.len() > 20_000,
        "suspiciously small PNG: {} bytes",
        bytes.len()
    );
    if let Ok(keep) = std::env::var("CPOR_KEEP_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}

/// Every table's rows as text, in a stable order: equal before and after means nothing changed.
async fn snapshot(store: &AnyStore) -> Vec<(String, String)> {
    let tables = [
        "claims",
        "claim_history",
        "incentive_evaluation_requests",
        "cpor_worker_state",
        "cpor_timers",
        "cpor_claim_sync",
        "cpor_outbox",
        "cpor_sla_alerts",
    ];
    let mut snap = Vec::new();
    for t in tables {
        let dump: String = match store {
            AnyStore::Postgres(s) => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT count(*)::text || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM {t} x"
            )))
            .fetch_one(s.pool())
            .await
            .unwrap(),
            AnyStore::Sqlite(s) => {
                let cols: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT name FROM pragma_table_info('{t}') ORDER BY cid"
                )))
                .fetch_all(s.pool())
                .await
                .unwrap();
                let row = cols
                    .iter()
                    .map(|c| format!("quote({c})"))
                    .collect::<Vec<_>>()
                    .join("||','||");
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) || ':' || coalesce(group_concat(r, '|'), '') FROM (SELECT {row} AS r FROM {t} ORDER BY r)"
                )))
                .fetch_one(s.pool())
                .await
                .unwrap()
            }
        };
        snap.push((t.to_owned(), dump));
    }
    snap
}

async fn dry_run_changes_nothing(db: &TestStore) {
    let (_dir, cmd) = prepared(db);
    let before = snapshot(&db.store).await;
    assert!(before[0].1.starts_with("17:"), "{:?}", before[0]);
    assert!(!before[4].1.starts_with("0:"), "the tick indexed timers");
    for format in ["table", "json", "csv", "html"] {
        cmd.ok(&[
            "dry-run",
            "--at",
            "2027-03-01T00:00:00Z",
            "--format",
            format,
        ]);
    }
    cmd.ok(&["explain", "CPOR-100006", "--at", AT]);
    assert_eq!(snapshot(&db.store).await, before);
}

async fn explain_names_the_skipped_christmas_holidays(db: &TestStore) {
    let (_dir, cmd) = prepared(db);
    let out = cmd.ok(&["explain", "CPOR-100006", "--at", AT]);
    assert!(
        out.contains("Thu 24 Dec 2026 skipped: Julafton (Christmas Eve)"),
        "{out}"
    );
    assert!(
        out.contains("Fri 25 Dec 2026 skipped: Juldagen (Christmas Day)"),
        "{out}"
    );
    assert!(out.contains("Sun 27 Dec 2026 skipped: weekend"), "{out}");
    assert!(
        out.contains("Mon 4 Jan 2027 counted: business day 5 of 5"),
        "{out}"
    );
    assert!(out.contains("review_start_sla: not applicable: runs while the claim is submitted"));
    let j: Value =
        serde_json::from_str(&cmd.ok(&["explain", "CPOR-100006", "--at", AT, "--json"])).unwrap();
    let deadline = j["timers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["timer"] == "partner_response_deadline")
        .unwrap();
    assert_eq!(deadline["state"], "pending");
    assert_eq!(deadline["deadline"]["last_day"], "2027-01-04");
    let skipped: Vec<&str> = deadline["days"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["counted"] == false)
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 8, "{skipped:?}");
    // A claim the tick acted on shows its history and email.
    let out = cmd.ok(&["explain", "CPOR-100013", "--at", AT]);
    assert!(
        out.contains("rejection_notice_sent") && out.contains("claim_rejected"),
        "{out}"
    );
}

async fn status_and_country_filters_work(db: &TestStore) {
    let (_dir, cmd) = prepared(db);
    let all = dry_run_json(&cmd, &["--horizon", "30d"]);
    let rows = |j: &Value| j["rows"].as_array().unwrap().clone();
    let statuses: std::collections::BTreeSet<String> = rows(&all)
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect();
    assert!(statuses.len() > 1, "{statuses:?}");
    let pa = dry_run_json(
        &cmd,
        &["--horizon", "30d", "--status", "partner_action_required"],
    );
    assert!(!rows(&pa).is_empty());
    assert!(
        rows(&pa)
            .iter()
            .all(|r| r["status"] == "partner_action_required")
    );
    let se = dry_run_json(&cmd, &["--horizon", "30d", "--country", "se"]);
    assert!(!rows(&se).is_empty());
    assert!(rows(&se).iter().all(|r| r["country"] == "SE"));
    assert!(rows(&se).len() < rows(&all).len());
    let err = cmd.fails(&["dry-run", "--status", "pending"], 2);
    assert!(err.contains("--status"), "{err}");
}

async fn bad_and_unknown_claims_are_reported(db: &TestStore) {
    let (_dir, cmd) = prepared(db);
    harness::exec(
        &db.store,
        "UPDATE claims SET status = 'bogus' WHERE id = 'CPOR-100002'",
    )
    .await;
    harness::exec(
        &db.store,
        "UPDATE claims SET country = 'ZZ' WHERE id = 'CPOR-100003'",
    )
    .await;
    let j = dry_run_json(&cmd, &[]);
    let problems = j["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["claim_id"] == "CPOR-100002" && p["kind"] == "bad_row"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p["claim_id"] == "CPOR-100003" && p["kind"] == "unknown_country"),
        "{problems:?}"
    );
    assert_eq!(j["summary"]["problems"], 2);
    let err = cmd.fails(&["explain", "CPOR-100002"], 2);
    assert!(err.contains("bogus"), "{err}");
    let err = cmd.fails(&["explain", "NO-SUCH-CLAIM"], 2);
    assert!(err.contains("not found"), "{err}");
}

#[tokio::test]
async fn reports_refuse_a_database_whose_migrations_are_not_current() {
    let db = harness::sqlite_unmigrated().await;
    let dir = tempfile::tempdir().unwrap();
    let cmd = Cmd::new(dir.path()).envs(&[("CPOR_DATABASE_URL", &db.url)]);
    for args in [&["dry-run"][..], &["explain", "CPOR-100001"]] {
        let err = cmd.fails(args, 2);
        assert!(err.contains("migrate"), "{err}");
    }
    let missing = format!("sqlite://{}", dir.path().join("none.db").display());
    Cmd::new(dir.path())
        .envs(&[("CPOR_DATABASE_URL", missing)])
        .fails(&["dry-run"], 2);
    assert!(
        !dir.path().join("none.db").exists(),
        "a report never creates a database"
    );
}

#[test]
fn a_bad_horizon_or_format_is_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (args, flag) in [
        (&["dry-run", "--horizon", "7 days"][..], "--horizon"),
        (&["dry-run", "--format", "xml"], "--format"),
    ] {
        let err = Cmd::new(dir.path()).fails(args, 2);
        assert!(err.contains(flag), "{err}");
    }
}
