//! Issue 14, provenance: every history row the worker writes names its deadline, the calendar
//! (id and version) and the days skipped; every outbox row that names a date keeps it, with the
//! calendar and template set versions. One claim per timer kind, on both backends.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use cpor_worker::calendar::Calendars;
use cpor_worker::claim::ClaimRow;
use cpor_worker::store::{AnyStore, DeliveryResult, Outbox, Store};
use cpor_worker::timers::{TimerKind, TimerSettings};
use cpor_worker::worker::Engine;
use serde_json::Value;

backend_tests!(every_timer_kind_records_its_provenance);

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn engine() -> Engine {
    Engine {
        calendars: Arc::new(Calendars::builtin().unwrap()),
        settings: TimerSettings {
            reminder_lead_business_days: 0,
            max_first_sight_age: Duration::days(14),
            never_shorten_communicated: true,
        },
        batch_size: 50,
        template_version: Some("tpl-test".into()),
        stop: tokio_util::sync::CancellationToken::new(),
    }
}

async fn tick(store: &AnyStore, at: &str) {
    engine().tick(store, t(at)).await.expect("tick");
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
        updated_at: Some(t("2026-12-01T10:00:00Z")),
        version: 1,
        ..ClaimRow::default()
    };
    f(&mut row);
    row
}

/// The history row of `claim` with `action`.
async fn row(store: &AnyStore, claim: &str, action: &str) -> Value {
    let h = store.history(claim).await.unwrap();
    h.into_iter()
        .find(|h| h.action == action)
        .unwrap_or_else(|| panic!("{claim} has no {action}"))
        .details
        .into_value()
}

async fn every_timer_kind_records_its_provenance(store: AnyStore) {
    store.migrate().await.unwrap();
    let at = |s: &str| Some(t(s));
    let rows = [
        claim("sla-start", "submitted", |r| {
            r.submitted_at = at("2026-12-01T10:00:00Z")
        }),
        claim("sla-review", "under_review", |r| {
            r.review_started_at = at("2026-12-01T10:00:00Z")
        }),
        claim("consent", "approved", |r| {
            r.approved_at = at("2026-12-01T10:00:00Z")
        }),
        claim("declined", "approved", |r| {
            r.approved_at = at("2026-12-01T10:00:00Z");
            r.customer_declined_at = at("2026-12-01T11:00:00Z");
        }),
        claim("rejected", "rejected", |r| {
            r.rejected_at = at("2026-12-01T10:00:00Z")
        }),
        claim("disputed", "rejected", |r| {
            r.rejected_at = at("2026-12-01T10:00:00Z");
            r.dispute_opened_at = at("2026-12-02T10:00:00Z");
        }),
    ];
    for r in &rows {
        store.put_claim_row(r).await.unwrap();
    }
    tick(&store, "2026-12-02T12:00:00Z").await;
    deliver_all(&store, "2026-12-02T12:01:00Z").await;
    tick(&store, "2026-12-02T12:02:00Z").await;
    let silent = claim("silent", "partner_action_required", |r| {
        r.info_requested_at = at("2026-12-23T14:00:00Z");
        r.updated_at = at("2026-12-23T14:00:00Z");
    });
    store.put_claim_row(&silent).await.unwrap();
    for at in [
        "2026-12-23T14:05:00Z",
        "2027-01-04T23:00:00Z",
        "2027-01-05T23:00:00Z",
        "2027-01-10T00:00:00Z",
    ] {
        tick(&store, at).await;
    }

    // Every row has the fields, whatever its timer.
    let se = Calendars::builtin().unwrap();
    let version = se.for_country("SE").unwrap().version();
    assert!(version.starts_with("2026.1+"), "{version}");
    let mut kinds = BTreeSet::new();
    for id in [
        "sla-start",
        "sla-review",
        "consent",
        "declined",
        "rejected",
        "disputed",
        "silent",
    ] {
        for h in store.history(id).await.unwrap() {
            let d = &h.details;
            let timer: TimerKind = d["timer"].as_str().unwrap().parse().unwrap();
            kinds.insert(timer);
            assert_eq!(d["calendar"]["id"], "SE", "{id} {d}");
            assert_eq!(d["calendar"]["version"], version.as_str(), "{id} {d}");
            assert!(d["skipped"].is_array(), "{id} {d}");
            let dl = &d["deadline"];
            for key in [
                "from",
                "from_date",
                "last_day",
                "passes_at",
                "time_zone",
                "counting",
                "days",
            ] {
                assert!(
                    !dl[key].is_null(),
                    "{id} {}: deadline.{key} missing: {d}",
                    h.action
                );
            }
        }
    }
    let all: BTreeSet<TimerKind> = TimerKind::ALL.iter().copied().collect();
    // customer_decline's run settles the rejection notice; every other kind wrote a row.
    assert_eq!(kinds, all, "kinds with history rows");

    // Hand-computed: 23 Dec 2026 + 5 business days in Sweden skips the eves, the holidays and
    // two weekends: last day Tue 5 Jan 2027.
    let d = row(&store, "silent", "auto_rejected").await;
    assert_eq!(d["deadline"]["from"], "2026-12-23T14:00:00Z");
    assert_eq!(d["deadline"]["from_date"], "2026-12-23");
    assert_eq!(d["deadline"]["last_day"], "2027-01-05");
    assert_eq!(d["deadline"]["passes_at"], "2027-01-05T23:00:00Z");
    assert_eq!(d["deadline"]["time_zone"], "Europe/Stockholm");
    assert_eq!(d["deadline"]["counting"], "business");
    assert_eq!(d["deadline"]["days"], 5);
    let skipped: Vec<(String, String)> = d["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["date"].as_str().unwrap().to_owned(),
                s["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(skipped.len(), 8, "{skipped:?}");
    assert_eq!(skipped[0], ("2026-12-24".into(), "Christmas Eve".into()));
    assert_eq!(skipped[2], ("2026-12-26".into(), "weekend".into()));
    // The rejection email it sent names the dispute window, counted from the rejection.
    assert_eq!(d["announced"]["last_day"], "2027-02-05");

    // Rows that had `"deadline": null` before: consent, approval notice, rejection notice.
    let d = row(&store, "consent", "consent_requested").await;
    assert_eq!(d["deadline"]["counting"], "calendar");
    assert_eq!(d["deadline"]["days"], 7);
    assert_eq!(d["deadline"]["last_day"], "2026-12-09");
    let d = row(&store, "consent", "approval_notice_sent").await;
    assert_eq!(d["deadline"]["from"], "2026-12-02T12:01:00Z");
    assert_eq!(d["deadline"]["last_day"], "2026-12-09");
    let d = row(&store, "rejected", "rejection_notice_sent").await;
    assert_eq!(d["deadline"]["days"], 30);
    assert_eq!(d["deadline"]["last_day"], "2026-12-31");
    let d = row(&store, "sla-start", "sla_breached").await;
    assert_eq!(d["deadline"]["last_day"], "2026-12-08");
    assert_eq!(d["skipped"][0]["why"], "weekend");

    // Outbox rows that name a date keep it, with the versions.
    let mut named = 0;
    for id in ["consent", "declined", "rejected", "silent"] {
        for (e, _) in store.claim_emails(id).await.unwrap() {
            assert_eq!(
                e.calendar_version.as_deref(),
                Some(version.as_str()),
                "{id}"
            );
            assert_eq!(e.template_version.as_deref(), Some("tpl-test"), "{id}");
            let last_day = e.payload["last_day"].as_str();
            match (last_day, e.announced) {
                (Some(day), Some((d, at))) => {
                    named += 1;
                    assert_eq!(day, d.to_string(), "{id} {}", e.email);
                    assert_eq!(e.payload["window_end"], serde_json::json!(at), "{id}");
                }
                (None, None) => {}
                other => panic!("{id} {}: {other:?}", e.email),
            }
        }
    }
    assert!(named >= 5, "{named}");
    let reminder = store
        .claim_emails("silent")
        .await
        .unwrap()
        .into_iter()
        .find(|(e, _)| e.email.to_string() == "partner_response_reminder")
        .unwrap()
        .0;
    assert_eq!(
        reminder.announced.map(|(d, _)| d.to_string()).as_deref(),
        Some("2027-01-05")
    );
}
