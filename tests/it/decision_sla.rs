//! Issue 14, the end-to-end decision SLA: 10 business days from submission to a decision, the
//! clock paused while the claim waits for the partner. The status timeline comes from the change
//! capture; two partner-action rounds, days counted by hand. Both backends.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use cpor_worker::calendar::Calendars;
use cpor_worker::claim::ClaimRow;
use cpor_worker::report::explain::explain;
use cpor_worker::store::{AnyStore, ConsoleReads, Store};
use cpor_worker::timers::TimerSettings;
use cpor_worker::worker::Engine;

backend_tests!(
    decision_sla_fires_on_the_exact_day_with_two_rounds_paused,
    an_answer_whose_record_falls_in_a_later_page_still_resumes_the_decision_sla,
);

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
        template_version: None,
        stop: tokio_util::sync::CancellationToken::new(),
    }
}

async fn tick(store: &AnyStore, at: &str) {
    engine().tick(store, t(at)).await.expect("tick");
}

/// Writes the claim as the main system would when it enters `status` at `at`: the status's
/// event column (`submitted_at`, `review_started_at`, `info_requested_at`) is `at`.
async fn put(store: &AnyStore, row: &mut ClaimRow, status: &str, at: &str) {
    let event = match status {
        "submitted" => &mut row.submitted_at,
        "under_review" => &mut row.review_started_at,
        "partner_action_required" => &mut row.info_requested_at,
        other => panic!("no event column for {other}"),
    };
    *event = Some(t(at));
    row.status = status.into();
    row.updated_at = Some(t(at));
    row.version += 1;
    store.put_claim_row(row).await.unwrap();
}

/// Claim `c1` in Sweden before the main system first writes it (version 0): the scenarios'
/// parties ([`crate::harness::claim_row`]), Swedish emails.
fn unwritten_claim() -> ClaimRow {
    ClaimRow {
        products: Some("Dynamics 365 Sales".into()),
        locale: Some("sv-SE".into()),
        info_request_reason: Some("missing_products".into()),
        version: 0,
        ..crate::harness::claim_row("c1", "")
    }
}

async fn decision_breaches(store: &AnyStore) -> Vec<serde_json::Value> {
    store
        .history("c1")
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.details["timer"] == "decision_sla")
        .map(|h| h.details.into_value())
        .collect()
}

async fn decision_sla_fires_on_the_exact_day_with_two_rounds_paused(store: AnyStore) {
    store.migrate().await.unwrap();
    let mut row = unwritten_claim();
    // Submitted Mon 1 Feb 2027 (d0). Round 1: asked Wed 3 Feb, answered Fri 5 Feb: Thu 4 and
    // Fri 5 are the partner's (2 days). Round 2: asked Tue 9 Feb, answered Mon 15 Feb: Wed 10,
    // Thu 11, Fri 12, Mon 15 (4 days). The reviewer's days: 2, 3 Feb, 8, 9 Feb, 16, 17, 18, 19,
    // 22, 23 Feb: the tenth is Tue 23 Feb (no Swedish holidays in February), which ends at
    // 2027-02-23T23:00Z (CET).
    put(&store, &mut row, "submitted", "2027-02-01T09:00:00Z").await;
    tick(&store, "2027-02-01T09:05:00Z").await;
    put(&store, &mut row, "under_review", "2027-02-02T09:00:00Z").await;
    put(
        &store,
        &mut row,
        "partner_action_required",
        "2027-02-03T10:00:00Z",
    )
    .await;
    tick(&store, "2027-02-04T09:00:00Z").await;
    put(&store, &mut row, "submitted", "2027-02-05T10:00:00Z").await;
    put(&store, &mut row, "under_review", "2027-02-08T09:00:00Z").await;
    tick(&store, "2027-02-08T10:00:00Z").await;
    put(
        &store,
        &mut row,
        "partner_action_required",
        "2027-02-09T10:00:00Z",
    )
    .await;
    tick(&store, "2027-02-10T10:00:00Z").await;
    put(&store, &mut row, "submitted", "2027-02-15T10:00:00Z").await;
    put(&store, &mut row, "under_review", "2027-02-16T09:00:00Z").await;
    tick(&store, "2027-02-16T10:00:00Z").await;

    // Explain shows the run, its deadline and both pauses.
    let claim = store.claim("c1").await.unwrap();
    let facts = store
        .facts(&["c1".to_owned()])
        .await
        .unwrap()
        .remove("c1")
        .unwrap_or_default();
    let cals = Calendars::builtin().unwrap();
    let x = explain(
        &claim,
        cals.for_country("SE").unwrap(),
        &facts,
        engine().settings,
        t("2027-02-16T10:00:00Z"),
    )
    .unwrap();
    let json = serde_json::to_value(&x).unwrap();
    let timer = json["timers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["timer"] == "decision_sla")
        .unwrap()
        .clone();
    assert_eq!(timer["state"], "pending", "{timer}");
    assert_eq!(timer["start"], "2027-02-01T09:00:00Z");
    assert_eq!(timer["deadline"]["last_day"], "2027-02-23");
    assert_eq!(timer["deadline"]["days"], 16);
    let paused: Vec<(String, String, u64)> = timer["paused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["from"].as_str().unwrap().to_owned(),
                p["to"].as_str().unwrap().to_owned(),
                p["business_days"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        paused,
        [
            (
                "2027-02-03T10:00:00Z".to_owned(),
                "2027-02-05T10:00:00Z".to_owned(),
                2
            ),
            (
                "2027-02-09T10:00:00Z".to_owned(),
                "2027-02-15T10:00:00Z".to_owned(),
                4
            ),
        ]
    );
    // The days from d0+1 to the last day, by hand: the partner's days are paused, not
    // counted, and the reviewer's are numbered 1..=10 of 10.
    let days: Vec<(String, bool, Option<u64>, Option<String>)> = timer["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["date"].as_str().unwrap().to_owned(),
                d["counted"].as_bool().unwrap(),
                d["number"].as_u64(),
                d["skipped_because"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let n = |date: &str, k: u64| (date.to_owned(), true, Some(k), None);
    let skip = |date: &str, why: &str| (date.to_owned(), false, None, Some(why.to_owned()));
    assert_eq!(
        days,
        [
            n("2027-02-02", 1),
            n("2027-02-03", 2),
            skip("2027-02-04", "paused"),
            skip("2027-02-05", "paused"),
            skip("2027-02-06", "weekend"),
            skip("2027-02-07", "weekend"),
            n("2027-02-08", 3),
            n("2027-02-09", 4),
            skip("2027-02-10", "paused"),
            skip("2027-02-11", "paused"),
            skip("2027-02-12", "paused"),
            skip("2027-02-13", "weekend"),
            skip("2027-02-14", "weekend"),
            skip("2027-02-15", "paused"),
            n("2027-02-16", 5),
            n("2027-02-17", 6),
            n("2027-02-18", 7),
            n("2027-02-19", 8),
            skip("2027-02-20", "weekend"),
            skip("2027-02-21", "weekend"),
            n("2027-02-22", 9),
            n("2027-02-23", 10),
        ]
    );
    let mut text = Vec::new();
    cpor_worker::report::write_explanation(&mut text, &x).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("decision_sla"), "{text}");
    assert!(text.contains("paused"), "{text}");
    assert!(
        text.contains("Thu 4 Feb 2027 skipped: paused (partner action required)"),
        "{text}"
    );
    assert!(
        text.contains("Tue 23 Feb 2027 counted: business day 10 of 10"),
        "{text}"
    );
    assert!(!text.contains("of 16"), "{text}");

    // Not a second early; exactly at the end of the tenth day.
    tick(&store, "2027-02-23T22:59:59Z").await;
    assert!(decision_breaches(&store).await.is_empty());
    tick(&store, "2027-02-23T23:00:00Z").await;
    let fired = decision_breaches(&store).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["deadline"]["last_day"], "2027-02-23");
    assert_eq!(fired[0]["paused"].as_array().unwrap().len(), 2);
    let h = store.history("c1").await.unwrap();
    assert!(
        h.iter()
            .any(|h| h.action == "sla_breached" && h.details["timer"] == "decision_sla"),
        "{h:?}"
    );
    tick(&store, "2027-02-24T10:00:00Z").await;
    assert_eq!(decision_breaches(&store).await.len(), 1);
}

/// The claim's information request and its answer land in different sync pages (4,998 claims
/// changed before it: a backlog). The first page computes the claim's current version from a
/// timeline that still shows it waiting for the partner, so no decision SLA ran; the page that
/// took the answer found the timers current and left them so: the console, `dry-run` and the
/// index showed no decision deadline until another timer of the claim happened to fire. After
/// the pass the deadline is there, on its day: Wed 17 Feb (10 reviewer days from Mon 1 Feb,
/// Thu 4 and Fri 5 the partner's), and the breach is flagged then.
async fn an_answer_whose_record_falls_in_a_later_page_still_resumes_the_decision_sla(
    store: AnyStore,
) {
    store.migrate().await.unwrap();
    crate::harness::exec(
        &store,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4998) \
         INSERT INTO claims (id, status, partner_name, partner_email, customer_name, \
         customer_email, products, country, locale, version) SELECT 'f' || i, 'draft', \
         'Nordljus Konsult AB', 'claims@nordljus.example', 'Åkerlund & Söner AB', \
         'it@akerlund.example', 'Dynamics 365 Sales', 'SE', 'sv-SE', 1 FROM n",
    )
    .await;
    let mut row = unwritten_claim();
    // Change records 4,999 and 5,000 (the first page), then 5,001 (a later one).
    put(&store, &mut row, "submitted", "2027-02-01T09:00:00Z").await;
    put(
        &store,
        &mut row,
        "partner_action_required",
        "2027-02-03T10:00:00Z",
    )
    .await;
    put(&store, &mut row, "submitted", "2027-02-05T10:00:00Z").await;
    tick(&store, "2027-02-08T10:00:00Z").await;
    let decision: Vec<_> = store
        .claim_timers("c1")
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.timer == "decision_sla" && r.state == "pending")
        .map(|r| r.due_at)
        .collect();
    assert_eq!(decision, [t("2027-02-17T23:00:00Z")]);
    tick(&store, "2027-02-17T22:00:00Z").await;
    assert!(
        decision_breaches(&store).await.is_empty(),
        "not due before 23:00Z"
    );
    tick(&store, "2027-02-18T09:00:00Z").await;
    let breaches = decision_breaches(&store).await;
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(breaches[0]["due"], "2027-02-17T23:00:00Z", "{breaches:?}");
}
