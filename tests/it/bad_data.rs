//! Bad data from the main system: each bad claim is skipped with a log line naming it and the
//! problem, counted in a metric and shown as a dry-run row, while every other claim is processed
//! in the same pass. Both backends, through the binary where the operator would see it.
//!
//! Decisions these tests pin down:
//! - An event timestamp more than `timers::FUTURE_TOLERANCE` (1 day) after the pass's instant is
//!   a problem ("timestamp `rejected_at` (…) is in the future"); the claim is looked at again
//!   by itself once the timestamp comes within the tolerance, and then fires once.
//! - A recipient address that does not parse is a problem of the claim like any other bad column:
//!   the timer whose email it is records nothing (no history row says "sent" for an email that
//!   cannot be), and acts once the address is fixed.
//! - A locale without templates gets the English email (SPEC: fall back to `en`).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use cpor_worker::calendar::Calendars;
use cpor_worker::claim::ClaimRow;
use cpor_worker::store::{Outbox, Store};
use cpor_worker::timers::{TimerKind, TimerSettings};
use cpor_worker::worker::{Acted, Engine};

use crate::cli_run::{http_get, start_daemon, stop, wait_for};
use crate::harness::{self, TestStore};

backend_tests_db!(
    each_bad_row_is_named_by_tick_log_and_dry_run_and_the_rest_fire,
    a_future_timestamp_is_reported_then_fires_once_when_it_comes,
);

const NOW: &str = "2026-03-02T10:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn rejected(id: &str, f: impl FnOnce(&mut ClaimRow)) -> ClaimRow {
    let mut row = ClaimRow {
        id: id.into(),
        status: "rejected".into(),
        partner_name: Some("Nordljus Konsult AB".into()),
        partner_email: Some(format!("{id}@partner.example")),
        customer_name: Some("Åkerlund & Söner AB".into()),
        customer_email: Some("it@akerlund.example".into()),
        products: Some("Dynamics 365 Sales".into()),
        country: Some("SE".into()),
        locale: Some("sv-SE".into()),
        rejected_at: Some(t("2026-03-02T09:00:00Z")),
        rejection_reason: Some("insufficient_poe".into()),
        updated_at: Some(t("2026-03-02T09:00:00Z")),
        version: 1,
        ..ClaimRow::default()
    };
    f(&mut row);
    row
}

/// The bad claims, each with a word its problem must contain.
fn bad_rows() -> Vec<(ClaimRow, &'static str)> {
    vec![
        (
            rejected("bad-status", |r| r.status = "bogus".into()),
            "bogus",
        ),
        (
            rejected("missing-timestamp", |r| r.rejected_at = None),
            "rejected_at",
        ),
        (
            rejected("future-timestamp", |r| {
                r.rejected_at = Some(t("2026-03-05T09:00:00Z"))
            }),
            "in the future",
        ),
        (
            rejected("unknown-country", |r| r.country = Some("ZZ".into())),
            "ZZ",
        ),
        (
            rejected("unknown-zone", |r| {
                r.time_zone = Some("Mars/Olympus".into())
            }),
            "Mars/Olympus",
        ),
        (
            rejected("bad-locale", |r| r.locale = Some("not a locale".into())),
            "column locale",
        ),
        (
            rejected("bad-email", |r| {
                r.partner_email = Some("not an email address".into())
            }),
            "column partner_email",
        ),
    ]
}

/// Claims that must be processed in the same pass.
fn good_rows() -> Vec<ClaimRow> {
    vec![
        rejected("good-1", |_| {}),
        rejected("good-2", |r| r.locale = Some("en".into())),
        rejected("finnish", |r| r.locale = Some("fi-FI".into())),
    ]
}

async fn load(store: &impl Store) {
    store.migrate().await.unwrap();
    for (row, _) in bad_rows() {
        store.put_claim_row(&row).await.unwrap();
    }
    for row in good_rows() {
        store.put_claim_row(&row).await.unwrap();
    }
}

fn run(dir: &std::path::Path, db: &str, args: &[&str]) -> (serde_json::Value, String) {
    let out = harness::run_in(dir, args, &[("CPOR_DATABASE_URL", db)]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    (json, stderr)
}

/// `claim_id → problem` of a tick outcome or a dry-run report.
fn problems(v: &serde_json::Value) -> BTreeMap<String, String> {
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["claim_id"].as_str().unwrap().to_owned(),
                p["problem"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn assert_every_bad_claim_named(found: &BTreeMap<String, String>, what: &str) {
    let bad = bad_rows();
    assert_eq!(found.len(), bad.len(), "{what}: {found:#?}");
    for (row, word) in bad {
        let p = found
            .get(&row.id)
            .unwrap_or_else(|| panic!("{what}: {} silently dropped: {found:#?}", row.id));
        assert!(p.contains(word), "{what}: {}: `{p}` lacks `{word}`", row.id);
    }
}

async fn each_bad_row_is_named_by_tick_log_and_dry_run_and_the_rest_fire(db: &TestStore) {
    load(&db.store).await;
    let dir = tempfile::tempdir().unwrap();

    // Before the pass, dry-run shows every problem and the three due rejection notices.
    let (before, _) = run(
        dir.path(),
        &db.url,
        &["dry-run", "--at", NOW, "--format", "json"],
    );
    assert_every_bad_claim_named(&problems(&before), "dry-run before");
    let due: Vec<&str> = before["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["when"] == "now")
        .map(|r| r["claim_id"].as_str().unwrap())
        .collect();
    for id in ["good-1", "good-2", "finnish"] {
        assert!(due.contains(&id), "{id} not due in dry-run: {before:#}");
    }

    // explain agrees (the same evaluate): it names the problem of the claim asked about.
    for (row, word) in bad_rows() {
        let out = harness::run_in(
            dir.path(),
            &["explain", &row.id, "--at", NOW],
            &[("CPOR_DATABASE_URL", db.url.as_str())],
        );
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(said.contains(word), "explain {}: {said}", row.id);
    }

    let (outcome, log) = run(dir.path(), &db.url, &["tick", "--at", NOW, "--json"]);
    assert_every_bad_claim_named(&problems(&outcome), "tick");
    assert_eq!(
        outcome["fired"]["rejection_notice: fired"], 3,
        "the other claims fired in the same pass: {outcome:#}"
    );
    assert_eq!(outcome["delivery"]["sent"], 3, "{outcome:#}");
    assert_eq!(outcome["delivery"]["dead"], 0, "{outcome:#}");
    for (row, _) in bad_rows() {
        assert!(
            log.lines()
                .any(|l| l.contains("claim skipped") && l.contains(&row.id)),
            "no log line names {}:\n{log}",
            row.id
        );
    }
    // Nothing was written to the outbox for the bad address, so nothing is dead-lettered.
    assert!(db.store.dead_emails().await.unwrap().is_empty());
    assert!(db.store.claim_emails("bad-email").await.unwrap().is_empty());
    // A bad claim has no history at all.
    for (row, _) in bad_rows() {
        assert!(db.store.history(&row.id).await.unwrap().is_empty());
    }

    // After the pass: the problems are still listed.
    let (after, _) = run(
        dir.path(),
        &db.url,
        &["dry-run", "--at", NOW, "--format", "json"],
    );
    assert_every_bad_claim_named(&problems(&after), "dry-run after");

    // A locale without templates (fi-FI) gets the English email.
    let eml = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().contains("finnish"))
        .expect("the finnish claim's email");
    let text = std::fs::read_to_string(eml.path()).unwrap();
    assert!(
        text.contains("Subject: Your CPOR claim finnish has been rejected"),
        "{text}"
    );

    // A second pass at the same instant adds nothing and reports no new problem at sync.
    let (again, _) = run(dir.path(), &db.url, &["tick", "--at", NOW, "--json"]);
    assert!(again["fired"].as_object().unwrap().is_empty(), "{again:#}");
}

fn engine() -> Engine {
    Engine {
        calendars: Arc::new(Calendars::builtin().unwrap()),
        settings: TimerSettings {
            reminder_lead_business_days: 0,
            max_first_sight_age: chrono::Duration::days(14),
            never_shorten_communicated: true,
        },
        batch_size: 10,
        template_version: None,
        stop: tokio_util::sync::CancellationToken::new(),
    }
}

async fn a_future_timestamp_is_reported_then_fires_once_when_it_comes(db: &TestStore) {
    let store = &db.store;
    store.migrate().await.unwrap();
    // Rejected "on 5 March" according to a clock running three days ahead.
    let row = rejected("ahead", |r| r.rejected_at = Some(t("2026-03-05T09:00:00Z")));
    store.put_claim_row(&row).await.unwrap();
    store
        .put_claim_row(&rejected("good", |_| {}))
        .await
        .unwrap();
    let e = engine();
    let first = e.tick(store, t(NOW)).await.unwrap();
    assert_eq!(first.problems.len(), 1, "{first:?}");
    assert_eq!(first.problems[0].claim_id, "ahead");
    assert!(
        first.problems[0]
            .problem
            .contains("timestamp `rejected_at` (2026-03-05 09:00:00 UTC) is in the future"),
        "{first:?}"
    );
    assert_eq!(
        first.fired.get(&Acted::fired(TimerKind::RejectionNotice)),
        Some(&1)
    );

    // Nobody touches the claim. Within a day of the timestamp it is evaluated again by itself:
    // no longer a problem, its notice pending until the timestamp itself.
    let within = e.tick(store, t("2026-03-04T09:00:01Z")).await.unwrap();
    assert!(within.problems.is_empty(), "{within:?}");
    assert!(within.fired.is_empty(), "{within:?}");
    let at = e.tick(store, t("2026-03-05T09:00:00Z")).await.unwrap();
    assert_eq!(
        at.fired.get(&Acted::fired(TimerKind::RejectionNotice)),
        Some(&1),
        "the claim must not be dropped for good: {at:?}"
    );
    let later = e.tick(store, t("2026-03-06T09:00:00Z")).await.unwrap();
    assert!(later.fired.is_empty(), "{later:?}");
    let actions: Vec<String> = store
        .history("ahead")
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.action)
        .collect();
    assert_eq!(actions, ["rejection_notice_sent"]);
}

#[test]
fn the_daemon_counts_skipped_claims_in_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cpor.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = cpor_worker::store::SqliteStore::connect(&url, 1)
            .await
            .unwrap();
        load(&store).await;
    });
    // The daemon's passes run at the real time: move the claims' events to an hour ago.
    let now = Utc::now();
    rt.block_on(async {
        let store = cpor_worker::store::AnyStore::Sqlite(
            cpor_worker::store::SqliteStore::connect(&url, 1)
                .await
                .unwrap(),
        );
        let ago = (now - Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S%.6fZ");
        let ahead = (now + Duration::days(3)).format("%Y-%m-%dT%H:%M:%S%.6fZ");
        harness::exec(
            &store,
            &format!(
                "UPDATE claims SET rejected_at = '{ago}', updated_at = '{ago}' WHERE rejected_at IS NOT NULL"
            ),
        )
        .await;
        harness::exec(
            &store,
            &format!("UPDATE claims SET rejected_at = '{ahead}' WHERE id = 'future-timestamp'"),
        )
        .await;
    });
    let (child, port) = start_daemon(dir.path(), &[], &[("CPOR_DATABASE_URL", &url)]);
    let metric = |body: &str, name: &str| {
        body.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let ok = wait_for(30, || {
        http_get(port, "/metrics").is_some_and(|(_, b)| {
            metric(&b, "cpor_claims_skipped_total") >= bad_rows().len() as f64
        })
    });
    let body = http_get(port, "/metrics").map(|(_, b)| b);
    let (code, log) = stop(child);
    assert!(ok, "metrics never showed the problems: {body:?}\n{log}");
    assert_eq!(code, Some(0), "{log}");
    let body = body.unwrap();
    assert!(
        metric(&body, "cpor_emails_sent_total") >= 3.0,
        "the good claims' emails were sent: {body}"
    );
    for (row, _) in bad_rows() {
        assert!(
            log.contains(&row.id),
            "{} not named in the daemon's log:\n{log}",
            row.id
        );
    }
}

/// SPEC: a locale without templates falls back to `en`, and the fallback is logged (by
/// `Mailer::compose`, which knows the claim's locale and the language used).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locale_fallback_to_english_is_logged() {
    let db = harness::sqlite_unmigrated().await;
    db.store.migrate().await.unwrap();
    db.store
        .put_claim_row(&rejected("finnish", |r| r.locale = Some("fi-FI".into())))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (outcome, log) = run(dir.path(), &db.url, &["tick", "--at", NOW, "--json"]);
    assert_eq!(outcome["delivery"]["sent"], 1, "{outcome:#}");
    assert!(
        log.lines().any(|l| l.contains("finnish")
            && l.contains("fi-FI")
            && l.contains("en")
            && l.to_ascii_lowercase().contains("fall")),
        "no log line says finnish's email fell back from fi-FI to en:\n{log}"
    );
}
