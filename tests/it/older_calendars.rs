//! Issue 14: the dry-run report (every format) and the console (claim page, overview) flag the
//! claims whose stored pending timers were computed with calendars other than those in force —
//! the deadlines the next pass will move. Both backends.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use cpor_worker::claim::ClaimRow;
use cpor_worker::console::{Console, PassLog, router};
use cpor_worker::store::Store;
use serde_json::Value;

use crate::calendar_diff::{closure_dir, engine};
use crate::console_http::request;
use crate::harness::{self, TestStore};

backend_tests_db!(reports_flag_deadlines_computed_with_older_calendars);

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn builtin_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/calendars")
}

/// A claim waiting for the partner since Mon 4 Jan 2027 10:00 UTC (a 5-business-day window).
fn waiting(id: &str) -> ClaimRow {
    ClaimRow {
        status: "partner_action_required".into(),
        info_requested_at: Some(t("2027-01-04T10:00:00Z")),
        info_request_reason: Some("missing_products".into()),
        submitted_at: Some(t("2027-01-04T08:00:00Z")),
        updated_at: Some(t("2027-01-04T10:00:00Z")),
        ..harness::claim_row(id, "partner_action_required")
    }
}

/// `dry-run` at Mon 4 Jan 12:00 UTC over 14 days with the calendars of `dir`, in `format`.
fn dry_run(db: &TestStore, dir: &Path, format: &str) -> String {
    let work = tempfile::tempdir().unwrap();
    harness::ok(
        work.path(),
        &[
            "dry-run",
            "--at",
            "2027-01-04T12:00:00Z",
            "--horizon",
            "14d",
            "--format",
            format,
        ],
        &[
            ("CPOR_DATABASE_URL", db.url.as_str()),
            ("CPOR_CALENDARS_DIR", dir.to_str().unwrap()),
        ],
    )
}

/// Each claim's rows' flag, from the JSON report.
fn flags(json: &Value) -> Vec<(String, String, bool)> {
    let mut v: Vec<(String, String, bool)> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["claim_id"].as_str().unwrap().to_owned(),
                r["timer"].as_str().unwrap().to_owned(),
                r["computed_with_older_calendars"].as_bool().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

async fn reports_flag_deadlines_computed_with_older_calendars(db: &TestStore) {
    db.store.migrate().await.unwrap();
    db.store.put_claim_row(&waiting("a")).await.unwrap();
    db.store.put_claim_row(&waiting("b")).await.unwrap();
    // A pass with the built-in calendars computes both claims' timers.
    engine(&builtin_dir())
        .tick(&db.store, t("2027-01-04T11:00:00Z"))
        .await
        .unwrap();
    // Claim b's timers, as if recomputed with the new calendars (the closure) since.
    let closure = closure_dir();
    let new = engine(closure.path());
    harness::exec(
        &db.store,
        &format!(
            "UPDATE cpor_claim_sync SET fingerprint = '{}' WHERE claim_id = 'b'",
            new.fingerprint()
        ),
    )
    .await;

    // With the closure in force, a's rows are flagged and b's are not; the last day shown is
    // the new one: stored, Tue 5, Thu 7, Fri 8, Mon 11, Tue 12 Jan (Wed 6 is Epiphany); with
    // Tue 5 closed the fifth business day after Mon 4 is Wed 13 Jan.
    let json: Value = serde_json::from_str(&dry_run(db, closure.path(), "json")).unwrap();
    let row = |id: &str, timer: &str, flag| (id.to_owned(), timer.to_owned(), flag);
    assert_eq!(
        flags(&json),
        [
            row("a", "partner_response_deadline", true),
            row("a", "partner_response_reminder", true),
            row("b", "partner_response_deadline", false),
            row("b", "partner_response_reminder", false),
        ],
        "{json}"
    );
    assert_eq!(json["summary"]["claims_computed_with_older_calendars"], 1);
    let last_day = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["claim_id"] == "a" && r["timer"] == "partner_response_deadline")
        .unwrap()["last_day"]
        .clone();
    assert_eq!(last_day, "2027-01-13");

    let csv = dry_run(db, closure.path(), "csv");
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with(",problem,computed_with_older_calendars"),
        "{csv}"
    );
    let of = |id: &str| -> Vec<&str> {
        csv.lines()
            .filter(|l| l.starts_with(&format!("timer,horizon,{id},")))
            .collect()
    };
    assert_eq!(of("a").len(), 2, "{csv}");
    assert!(of("a").iter().all(|l| l.ends_with(",true")), "{csv}");
    assert!(of("b").iter().all(|l| l.ends_with(",false")), "{csv}");

    let table = dry_run(db, closure.path(), "table");
    assert_eq!(
        table
            .matches("computed with older calendars: the next pass recomputes")
            .count(),
        2,
        "{table}"
    );
    assert!(
        table.contains("claims whose pending timers were computed with older calendars 1"),
        "{table}"
    );
    let html = dry_run(db, closure.path(), "html");
    assert_eq!(
        html.matches(">computed with older calendars</small>")
            .count(),
        2,
        "{html}"
    );

    // With the built-in calendars in force it is the other way round: b's timers used others.
    let json: Value = serde_json::from_str(&dry_run(db, &builtin_dir(), "json")).unwrap();
    let flagged: Vec<String> = flags(&json)
        .into_iter()
        .filter(|f| f.2)
        .map(|f| f.0)
        .collect();
    assert_eq!(flagged, ["b", "b"], "{json}");

    // The console, with the closure in force: a's page says so, b's does not; the overview
    // counts one claim.
    let console = Console::new(
        db.store.clone(),
        new,
        None,
        None,
        PassLog::default(),
        None,
        Arc::new(cpor_worker::clock::FixedClock::new(t(
            "2027-01-04T12:00:00Z",
        ))),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        axum::serve(listener, router(Arc::new(console)))
            .await
            .unwrap();
    });
    let get = |path: &'static str, accept: &'static str| {
        tokio::task::spawn_blocking(move || request(port, "GET", path, &[("Accept", accept)], ""))
    };
    let json_of = |r: (u16, String, String)| -> Value {
        assert_eq!(r.0, 200, "{}", r.2);
        serde_json::from_str(&r.2).unwrap()
    };
    let a = json_of(get("/claims/a", "application/json").await.unwrap());
    assert_eq!(a["computed_with_older_calendars"], true, "{a}");
    let b = json_of(get("/claims/b", "application/json").await.unwrap());
    assert_eq!(b["computed_with_older_calendars"], false, "{b}");
    let overview = json_of(get("/", "application/json").await.unwrap());
    assert_eq!(
        overview["counts"]["computed_with_older_calendars"], 1,
        "{overview}"
    );
    let (status, _, page) = get("/claims/a", "text/html").await.unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("id=\"older-calendars\""), "{page}");
    let (_, _, page) = get("/claims/b", "text/html").await.unwrap();
    assert!(!page.contains("id=\"older-calendars\""), "{page}");
    let (_, _, page) = get("/", "text/html").await.unwrap();
    assert!(page.contains("id=\"count-older-calendars\""), "{page}");
    server.abort();
}
