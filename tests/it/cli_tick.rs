//! `demo` then `tick` as a user runs them: one email per due action, in the outbox folder or at a
//! real SMTP server, and nothing more on a second pass; SMTP trouble delays mail, never timers.

use std::collections::BTreeSet;

use cpor_worker::store::{AnyStore, Outbox, SqliteStore, Store};

use crate::harness::smtp::{SmtpSink, free_port};
use crate::harness::{self, ok, run_in, text};

const T: &str = "2026-11-25T09:00:00Z";
const LATER: &str = "2026-11-25T12:00:00Z";

async fn store(dir: &std::path::Path) -> AnyStore {
    let url = format!("sqlite://{}", dir.join("cpor.db").display());
    AnyStore::Sqlite(SqliteStore::connect(&url, 1).await.unwrap())
}

/// Message-IDs of every outbox row in `state`.
async fn outbox_ids(store: &AnyStore, state: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for c in harness::claims(store).await.into_iter().flatten() {
        for (e, s) in store.claim_emails(&c.id).await.unwrap() {
            if s == state {
                ids.insert(e.message_id);
            }
        }
    }
    ids
}

fn message_id(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let line = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
        .expect("Message-ID header");
    line["message-id:".len()..].trim().to_owned()
}

#[tokio::test]
async fn demo_then_tick_writes_one_eml_per_action_and_a_second_tick_nothing() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["demo", "--at", T], &[]);
    let first = ok(dir.path(), &["tick", "--at", T], &[]);
    assert!(first.contains("0 dead-lettered"), "{first}");
    let store = store(dir.path()).await;
    let sent = outbox_ids(&store, "sent").await;
    assert!(sent.len() >= 8, "{sent:?}");
    let files: BTreeSet<String> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), sent.len(), "{files:?}");
    for id in &sent {
        let name = format!("{}.eml", id.trim_matches(['<', '>']));
        assert!(files.contains(&name), "{name} missing from {files:?}");
    }
    let second = ok(dir.path(), &["tick", "--at", T], &[]);
    assert!(
        second.contains("0 timer runs acted on") && second.contains("0 sent"),
        "{second}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .count(),
        files.len()
    );
}

#[tokio::test]
async fn demo_then_tick_delivers_each_email_once_over_smtp() {
    let Some(sink) = SmtpSink::start("demo_then_tick_over_smtp", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = sink.url().to_string();
    let env = [("CPOR_SMTP_URL", url.as_str())];
    ok(dir.path(), &["demo", "--at", T], &env);
    ok(dir.path(), &["tick", "--at", T], &env);
    ok(dir.path(), &["tick", "--at", T], &env);
    let store = store(dir.path()).await;
    let sent = outbox_ids(&store, "sent").await;
    let received: Vec<String> = sink
        .messages()
        .iter()
        .map(|(raw, _)| message_id(raw))
        .collect();
    let unique: BTreeSet<String> = received.iter().cloned().collect();
    assert_eq!(
        received.len(),
        unique.len(),
        "a message arrived twice: {received:?}"
    );
    assert_eq!(unique, sent);
    assert!(
        !dir.path().join("outbox").exists(),
        "SMTP set: no .eml files"
    );
}

#[tokio::test]
async fn a_server_that_answers_4xx_then_recovers_gets_everything_once() {
    let Some(sink) = SmtpSink::start("4xx_then_recovers", &["--fail-first", "3"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = sink.url().to_string();
    let env = [("CPOR_SMTP_URL", url.as_str())];
    ok(dir.path(), &["demo", "--at", T], &env);
    let first = ok(dir.path(), &["tick", "--at", T], &env);
    assert!(first.contains("3 to retry later"), "{first}");
    ok(dir.path(), &["tick", "--at", LATER], &env);
    let store = store(dir.path()).await;
    assert!(outbox_ids(&store, "pending").await.is_empty());
    let received: Vec<String> = sink
        .messages()
        .iter()
        .map(|(raw, _)| message_id(raw))
        .collect();
    let unique: BTreeSet<String> = received.iter().cloned().collect();
    assert_eq!(received.len(), unique.len());
    assert_eq!(unique, outbox_ids(&store, "sent").await);
}

#[tokio::test]
async fn an_smtp_outage_delays_emails_but_not_timers() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let down = format!("smtp://127.0.0.1:{port}");
    ok(dir.path(), &["demo", "--at", T], &[]);
    let first = ok(
        dir.path(),
        &["tick", "--at", T],
        &[("CPOR_SMTP_URL", down.as_str())],
    );
    assert!(
        first.contains("0 sent") && !first.contains(" 0 to retry later"),
        "{first}"
    );
    let store = store(dir.path()).await;
    assert_eq!(
        store.claim("CPOR-100007").await.unwrap().status.as_str(),
        "rejected",
        "the auto-rejection happened while SMTP was down"
    );
    let queued = outbox_ids(&store, "pending").await;
    assert!(!queued.is_empty());
    let Some(sink) = SmtpSink::start("smtp_outage", &[]) else {
        return;
    };
    let up = sink.url().to_string();
    ok(
        dir.path(),
        &["tick", "--at", LATER],
        &[("CPOR_SMTP_URL", up.as_str())],
    );
    let received: BTreeSet<String> = sink
        .messages()
        .iter()
        .map(|(raw, _)| message_id(raw))
        .collect();
    assert!(
        queued.is_subset(&received),
        "queued {queued:?} received {received:?}"
    );
}

#[tokio::test]
async fn a_changed_calendar_file_moves_pending_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["migrate"], &[]);
    let store = store(dir.path()).await;
    let at = |s: &str| Some(s.parse().unwrap());
    store
        .put_claim_row(&cpor_worker::claim::ClaimRow {
            id: "c1".into(),
            status: "partner_action_required".into(),
            partner_email: Some("p@partner.example".into()),
            country: Some("SE".into()),
            info_requested_at: at("2026-03-02T09:00:00Z"),
            info_request_reason: Some("missing_products".into()),
            updated_at: at("2026-03-02T09:00:00Z"),
            version: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    ok(
        dir.path(),
        &["tick", "--no-send", "--at", "2026-03-02T10:00:00Z"],
        &[],
    );
    // The operator adds a company closure on Thursday 5 March: the fifth business day after
    // Monday 2 March moves from Monday 9 to Tuesday 10 March.
    let cals = dir.path().join("calendars");
    std::fs::create_dir(&cals).unwrap();
    let se = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/calendars/se.toml"
    ))
    .unwrap();
    std::fs::write(
        cals.join("se.toml"),
        format!(
            "{se}\n[[date]]\ndate = 2026-03-05\nname = \"Company closure\"\nkind = \"closure\"\n"
        ),
    )
    .unwrap();
    let env = [("CPOR_CALENDARS_DIR", cals.to_str().unwrap())];
    ok(
        dir.path(),
        &["tick", "--no-send", "--at", "2026-03-09T23:00:00Z"],
        &env,
    );
    assert_eq!(
        store.claim("c1").await.unwrap().status.as_str(),
        "partner_action_required"
    );
    ok(
        dir.path(),
        &["tick", "--no-send", "--at", "2026-03-10T23:00:00Z"],
        &env,
    );
    assert_eq!(store.claim("c1").await.unwrap().status.as_str(), "rejected");
    let h = store.history("c1").await.unwrap();
    let reject = h.iter().find(|h| h.action == "auto_rejected").unwrap();
    assert_eq!(reject.details["deadline"]["last_day"], "2026-03-10");
}

#[tokio::test]
async fn sla_breaches_reach_operations_in_one_digest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ops.toml"),
        "[mail]\nops_alert_to = \"Ops <ops@cpor.example>\"\n",
    )
    .unwrap();
    let cfg = ["--config", "ops.toml"];
    ok(dir.path(), &[&["demo", "--at", T][..], &cfg].concat(), &[]);
    ok(dir.path(), &[&["tick", "--at", T][..], &cfg].concat(), &[]);
    ok(
        dir.path(),
        &[&["tick", "--at", LATER][..], &cfg].concat(),
        &[],
    );
    let digests: Vec<String> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("sla_alert_digest"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(
        digests.len(),
        1,
        "one digest for the pass, none for the next"
    );
    let d = &digests[0];
    assert!(d.contains("ops@cpor.example"), "{d}");
    for claim in ["CPOR-100003", "CPOR-100005", "CPOR-100015"] {
        assert!(d.contains(claim), "{claim} missing from the digest");
    }
    for timer in [
        "review_start_sla",
        "review_decision_sla",
        "dispute_review_sla",
    ] {
        assert!(d.contains(timer), "{timer} missing from the digest");
    }
}

#[test]
fn json_logs_carry_one_event_per_action_with_claim_and_timer() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["demo", "--at", T], &[]);
    let out = run_in(
        dir.path(),
        &["tick", "--at", T],
        &[("CPOR_LOG_FORMAT", "json")],
    );
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = text(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let fired: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "timer fired")
        .collect();
    assert!(fired.len() >= 10, "{lines:?}");
    for f in &fired {
        assert!(
            f["claim_id"].is_string() && f["timer"].is_string() && f["action"].is_string(),
            "{f}"
        );
        // The event sits in a claim span and a timer span naming the deadline it acted on.
        assert_eq!(f["span"]["name"], "timer", "{f}");
        assert!(f["span"]["deadline"].is_string(), "{f}");
        let spans = f["spans"].as_array().expect("span list");
        assert!(
            spans
                .iter()
                .any(|s| s["name"] == "claim" && s["claim_id"] == f["claim_id"]),
            "{f}"
        );
    }
    assert!(
        fired
            .iter()
            .any(|f| f["claim_id"] == "CPOR-100007" && f["timer"] == "partner_response_deadline"),
        "{fired:?}"
    );
}

/// The decoded text part of an `.eml` file.
fn body_text(path: &std::path::Path) -> String {
    let raw = std::fs::read(path).unwrap();
    let msg = mail_parser::MessageParser::default().parse(&raw).unwrap();
    msg.body_text(0).unwrap().into_owned()
}

#[tokio::test]
async fn the_consent_window_counts_from_the_delivery_even_after_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    ok(dir.path(), &["migrate"], &[]);
    let store = store(dir.path()).await;
    let at = |s: &str| Some(s.parse().unwrap());
    store
        .put_claim_row(&cpor_worker::claim::ClaimRow {
            id: "c1".into(),
            status: "approved".into(),
            partner_name: Some("Nordljus Konsult AB".into()),
            partner_email: Some("p@partner.example".into()),
            customer_name: Some("Cedar Valley Health".into()),
            customer_email: Some("c@customer.example".into()),
            products: Some("Power BI Pro".into()),
            country: Some("SE".into()),
            locale: Some("en-GB".into()), // day-month order (bare `en` is CLDR's US order)
            approved_at: at("2026-11-27T10:00:00Z"),
            updated_at: at("2026-11-27T10:00:00Z"),
            version: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let down = format!("smtp://127.0.0.1:{}", free_port());
    ok(
        dir.path(),
        &["tick", "--at", "2026-11-27T10:00:00Z"],
        &[("CPOR_SMTP_URL", down.as_str())],
    );
    // Delivered four days late: the customer still gets seven full days from the delivery.
    ok(dir.path(), &["tick", "--at", "2026-12-01T10:00:00Z"], &[]);
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let find = |what: &str| {
        files
            .iter()
            .find(|p| p.to_string_lossy().contains(what))
            .unwrap_or_else(|| panic!("no {what} in {files:?}"))
    };
    let consent = body_text(find("consent_request"));
    let notice = body_text(find("partner_approval_notice"));
    assert!(consent.contains("8 December 2026"), "{consent}");
    assert!(notice.contains("8 December 2026"), "{notice}");
    // And the window closes exactly then: 8 December ends at 23:00 UTC (midnight in Stockholm).
    ok(
        dir.path(),
        &["tick", "--no-send", "--at", "2026-12-08T22:59:59Z"],
        &[],
    );
    assert_eq!(harness::incentive_request(&store, "c1").await, None);
    ok(
        dir.path(),
        &["tick", "--no-send", "--at", "2026-12-08T23:00:00Z"],
        &[],
    );
    assert!(harness::incentive_request(&store, "c1").await.is_some());
}
