//! Issue 14, calendar changes with a plan: `calendar diff` lists exactly the pending deadlines a
//! candidate calendar set moves (hand-computed days), and under
//! `calendar.never_shorten_communicated` a removed holiday never moves a communicated last day
//! earlier — in the diff and in what the worker then does. Both backends.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use cpor_worker::calendar::Calendars;
use cpor_worker::claim::ClaimRow;
use cpor_worker::store::{AnyStore, DeliveryResult, Outbox, Store};
use cpor_worker::timers::TimerSettings;
use cpor_worker::worker::Engine;
use serde_json::Value;

use crate::harness::{self, TestStore};

backend_tests_db!(a_candidate_holiday_moves_exactly_the_windows_it_falls_in);

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A calendar folder with Sweden plus a one-off closure on Tue 5 January 2027.
pub(crate) fn closure_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let se = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/calendars/se.toml"),
    )
    .unwrap();
    let extra = "\n[[date]]\ndate = 2027-01-05\nname = \"Office move\"\ngroup = \"closures\"\nkind = \"closure\"\n";
    std::fs::write(dir.path().join("se.toml"), se + extra).unwrap();
    dir
}

pub(crate) fn engine(dir: &Path) -> Engine {
    Engine {
        calendars: Arc::new(Calendars::load(dir, &[]).unwrap()),
        settings: TimerSettings {
            reminder_lead_business_days: 0,
            max_first_sight_age: Duration::days(14),
            never_shorten_communicated: true,
        },
        batch_size: 50,
        template_version: None,
        stop: tokio_util::sync::CancellationToken::new(),
    }
}

fn claim(id: &str, status: &str, f: impl FnOnce(&mut ClaimRow)) -> ClaimRow {
    let mut row = ClaimRow {
        id: id.into(),
        status: status.into(),
        partner_name: Some("Nordljus Konsult AB".into()),
        partner_email: Some("claims@nordljus.example".into()),
        customer_name: Some("Åkerlund & Söner AB".into()),
        customer_email: Some("it@akerlund.example".into()),
        products: Some("Dynamics 365 Sales".into()),
        country: Some("SE".into()),
        locale: Some("sv-SE".into()),
        info_request_reason: Some("missing_products".into()),
        rejection_reason: Some("insufficient_poe".into()),
        updated_at: Some(t("2027-01-02T10:00:00Z")),
        version: 1,
        ..ClaimRow::default()
    };
    f(&mut row);
    row
}

/// `calendar diff` as JSON, with the configured calendars in `current`.
fn diff(db: &TestStore, current: &Path, candidate: &Path, at: &str) -> Vec<(String, String)> {
    let work = tempfile::tempdir().unwrap();
    let out = harness::run_in(
        work.path(),
        &[
            "calendar",
            "diff",
            "--calendars-dir",
            candidate.to_str().unwrap(),
            "--format",
            "json",
            "--at",
            at,
        ],
        &[
            ("CPOR_DATABASE_URL", db.url.as_str()),
            ("CPOR_CALENDARS_DIR", current.to_str().unwrap()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    rows.iter()
        .map(|r| {
            let key = format!(
                "{}/{}",
                r["claim_id"].as_str().unwrap(),
                r["timer"].as_str().unwrap()
            );
            let val = format!(
                "{} -> {} {} communicated={} applied={}",
                r["old_last_day"].as_str().unwrap(),
                r["new_last_day"].as_str().unwrap(),
                r["direction"].as_str().unwrap(),
                r["communicated"],
                r["applied_last_day"].as_str().unwrap()
            );
            (key, val)
        })
        .collect()
}

async fn deliver_all(store: &AnyStore, at: &str) {
    let now = t(at);
    for e in store
        .take_emails(now, now + Duration::minutes(5), 1000)
        .await
        .unwrap()
    {
        store
            .record_delivery(e.id, &DeliveryResult::Sent, now)
            .await
            .unwrap();
    }
}

async fn a_candidate_holiday_moves_exactly_the_windows_it_falls_in(db: &TestStore) {
    let store = &db.store;
    store.migrate().await.unwrap();
    let at = |s: &str| Some(t(s));
    for r in [
        // d0 23 Dec: 28, 29, 30 Dec, 4, 5 Jan (eves, holidays, weekends skipped) -> Tue 5 Jan;
        // with 5 Jan closed: 4 Jan, then 6 Jan is Epiphany -> Thu 7 Jan.
        claim("a", "partner_action_required", |r| {
            r.info_requested_at = at("2026-12-23T14:00:00Z")
        }),
        // d0 30 Dec: 4, 5, 7, 8, 11 Jan -> Mon 11 Jan; with 5 Jan closed -> Tue 12 Jan.
        claim("b", "submitted", |r| {
            r.submitted_at = at("2026-12-30T10:00:00Z")
        }),
        // d0 5 Jan: counting starts after the closure -> unaffected.
        claim("c", "submitted", |r| {
            r.submitted_at = at("2027-01-05T08:00:00Z")
        }),
        // Calendar days: holidays do not matter.
        claim("d", "rejected", |r| {
            r.rejected_at = at("2027-01-02T10:00:00Z")
        }),
    ] {
        store.put_claim_row(&r).await.unwrap();
    }
    let builtin = tempfile::tempdir().unwrap();
    let closed = closure_dir();

    // Adding the closure: exactly a's and b's windows move, later; nothing was communicated yet.
    let rows = diff(db, builtin.path(), closed.path(), "2027-01-04T12:00:00Z");
    assert_eq!(
        rows,
        [
            (
                "a/partner_response_deadline".to_owned(),
                "2027-01-05 -> 2027-01-07 later communicated=false applied=2027-01-07".to_owned()
            ),
            (
                "b/review_start_sla".to_owned(),
                "2027-01-11 -> 2027-01-12 later communicated=false applied=2027-01-12".to_owned()
            ),
            // Ten business days after 30 Dec: 4, 5, 7, 8, 11, 12, 13, 14, 15, 18 Jan.
            (
                "b/decision_sla".to_owned(),
                "2027-01-18 -> 2027-01-19 later communicated=false applied=2027-01-19".to_owned()
            ),
        ]
    );

    // The closure is put in force; a's reminder names Thu 7 January and is sent.
    let with_closure = engine(closed.path());
    with_closure
        .tick(store, t("2027-01-04T12:00:00Z"))
        .await
        .unwrap();
    with_closure
        .tick(store, t("2027-01-06T23:00:00Z"))
        .await
        .unwrap();
    deliver_all(store, "2027-01-06T23:01:00Z").await;
    let reminder = store.history("a").await.unwrap();
    assert_eq!(reminder[0].action, "reminder_sent");
    assert_eq!(reminder[0].details["deadline"]["last_day"], "2027-01-07");

    // Removing it again: both move earlier; a's day was communicated and is kept.
    let rows = diff(db, closed.path(), builtin.path(), "2027-01-07T10:00:00Z");
    assert_eq!(
        rows,
        [
            (
                "a/partner_response_deadline".to_owned(),
                "2027-01-07 -> 2027-01-05 earlier communicated=true applied=2027-01-07".to_owned()
            ),
            (
                "b/review_start_sla".to_owned(),
                "2027-01-12 -> 2027-01-11 earlier communicated=false applied=2027-01-11".to_owned()
            ),
            (
                "b/decision_sla".to_owned(),
                "2027-01-19 -> 2027-01-18 earlier communicated=false applied=2027-01-18".to_owned()
            ),
        ]
    );

    // The worker under the old calendar: a is not rejected before the day it was told.
    let without = engine(builtin.path());
    without
        .tick(store, t("2027-01-07T10:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        store.claim("a").await.unwrap().status.as_str(),
        "partner_action_required"
    );
    // b's SLA (now 11 Jan) follows the calendar; a is rejected when 7 January ends.
    without
        .tick(store, t("2027-01-07T23:00:00Z"))
        .await
        .unwrap();
    let h = store.history("a").await.unwrap();
    let rejected = h.iter().find(|h| h.action == "auto_rejected").unwrap();
    assert_eq!(rejected.occurred_at, t("2027-01-07T23:00:00Z"));
    let d = &rejected.details["deadline"];
    assert_eq!(d["last_day"], "2027-01-07");
    assert_eq!(d["rule"], "never_shorten_communicated");
    assert_eq!(d["counted_last_day"], "2027-01-05");
}
