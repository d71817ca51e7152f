//! Emails off the happy path: a reminder held up by an SMTP outage is never delivered after its
//! deadline (it expires, recorded in the claim's history); a consent email the server refuses
//! leaves a named problem until the address is fixed, then goes to the new address; a partner's
//! approval notice is not withdrawn when the main system's clock runs ahead of the worker's.
//! Both backends, through the binary and a real SMTP server on loopback.

use cpor_worker::claim::ClaimRow;
use cpor_worker::store::{Outbox, Store, TimerIndex};

use crate::harness::smtp::{SmtpSink, free_port};
use crate::harness::{self, TestStore, run_in};
use crate::never_miss::t;

backend_tests_db!(
    a_reminder_held_up_by_an_outage_expires_at_its_deadline,
    a_dead_lettered_consent_email_is_a_problem_until_the_address_is_fixed,
    an_approval_notice_goes_out_when_the_main_systems_clock_runs_ahead,
);

fn tick(dir: &std::path::Path, at: &str, env: &[(&str, &str)]) -> serde_json::Value {
    let out = run_in(dir, &["tick", "--at", at, "--json"], env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {err}"))
}

/// The environment of the binary: the test's database and the SMTP server at `smtp`.
fn env<'a>(db: &'a TestStore, smtp: &'a str) -> [(&'static str, &'a str); 2] {
    [
        ("CPOR_DATABASE_URL", db.url.as_str()),
        ("CPOR_SMTP_URL", smtp),
    ]
}

/// Migrates, writes claim `c1` approved at `approved_at` with a customer address the SMTP
/// server refuses, and starts that server (`None` when it cannot run here).
async fn approved_with_refused_address(
    db: &TestStore,
    name: &str,
    approved_at: &str,
) -> Option<SmtpSink> {
    db.store.migrate().await.unwrap();
    db.store
        .put_claim_row(&ClaimRow {
            customer_email: Some("gone@akerlund.example".into()),
            locale: Some("sv-SE".into()),
            approved_at: Some(t(approved_at)),
            updated_at: Some(t(approved_at)),
            ..crate::harness::claim_row("c1", "approved")
        })
        .await
        .unwrap();
    SmtpSink::start(name, &["--reject", "gone@akerlund.example"])
}

/// The main system corrects claim `c1`'s customer address.
async fn correct_address(db: &TestStore) {
    crate::harness::exec(
        &db.store,
        "UPDATE claims SET customer_email = 'it@akerlund.example', version = 2 WHERE id = 'c1'",
    )
    .await;
}

async fn a_reminder_held_up_by_an_outage_expires_at_its_deadline(db: &TestStore) {
    db.store.migrate().await.unwrap();
    // Asked on Wed 23 Dec 2026: last day to respond Tue 5 Jan 2027 (Stockholm); the reminder is
    // due at the start of that day (4 Jan 23:00Z), the deadline passes 5 Jan 23:00Z.
    db.store
        .put_claim_row(&ClaimRow {
            info_requested_at: Some(t("2026-12-23T14:00:00Z")),
            info_request_reason: Some("missing_products".into()),
            updated_at: Some(t("2026-12-23T14:00:00Z")),
            ..crate::harness::claim_row("c1", "partner_action_required")
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let smtp = format!("smtp://127.0.0.1:{port}");
    let env = env(db, &smtp);
    // SMTP is down when the reminder fires: it waits for a retry.
    let o = tick(dir.path(), "2027-01-04T23:00:00Z", &env);
    assert_eq!(o["fired"]["partner_response_reminder: fired"], 1, "{o:#}");
    assert_eq!(o["delivery"]["sent"], 0, "{o:#}");
    // SMTP is back only after the deadline: the rejection goes out, the reminder does not.
    let Some(sink) = SmtpSink::start_on("reminder_expires", port, &[]) else {
        return;
    };
    let o = tick(dir.path(), "2027-01-05T23:00:00Z", &env);
    assert_eq!(o["fired"]["partner_response_deadline: fired"], 1, "{o:#}");
    assert_eq!(o["delivery"]["expired"], 1, "{o:#}");
    assert_eq!(o["delivery"]["sent"], 1, "{o:#}");
    let subjects: Vec<String> = sink
        .messages()
        .iter()
        .map(|(raw, _)| {
            String::from_utf8_lossy(raw)
                .lines()
                .find(|l| l.starts_with("Subject:"))
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(subjects.len(), 1, "{subjects:?}");
    assert!(subjects[0].contains("rejected"), "{subjects:?}");
    let emails = db.store.claim_emails("c1").await.unwrap();
    let states: Vec<(String, String)> = emails
        .iter()
        .map(|(e, state)| (e.email.to_string(), state.clone()))
        .collect();
    assert!(
        states.contains(&("partner_response_reminder".into(), "expired".into())),
        "{states:?}"
    );
    let h = db.store.history("c1").await.unwrap();
    let expired = h
        .iter()
        .find(|h| h.action == "email_expired")
        .unwrap_or_else(|| panic!("no email_expired row: {h:#?}"));
    assert_eq!(expired.details["email"], "partner_response_reminder");
    assert_eq!(expired.details["not_after"], "2027-01-05T23:00:00Z");
    // Nothing is tried again later.
    let o = tick(dir.path(), "2027-01-07T08:00:00Z", &env);
    assert_eq!(o["delivery"]["expired"], 0, "{o:#}");
    assert_eq!(sink.messages().len(), 1);
}

async fn a_dead_lettered_consent_email_is_a_problem_until_the_address_is_fixed(db: &TestStore) {
    let Some(sink) =
        approved_with_refused_address(db, "dead_consent", "2027-01-04T10:00:00Z").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let smtp = sink.url().to_string();
    let env = env(db, &smtp);
    let o = tick(dir.path(), "2027-01-04T10:05:00Z", &env);
    assert_eq!(o["delivery"]["dead"], 1, "{o:#}");
    // The next pass names the claim's problem; nothing else happens to it.
    let o = tick(dir.path(), "2027-01-04T10:10:00Z", &env);
    let problems = o["problems"].to_string();
    assert!(
        problems.contains("c1") && problems.contains("dead-lettered"),
        "{o:#}"
    );
    let listed = db.store.claim_problems().await.unwrap();
    assert!(listed.iter().any(|(id, _)| id == "c1"), "{listed:?}");
    // The main system corrects the address: the consent email goes to it, and the round runs.
    correct_address(db).await;
    let o = tick(dir.path(), "2027-01-04T11:00:00Z", &env);
    assert_eq!(o["delivery"]["consent_sent"], 1, "{o:#}");
    assert!(o["problems"].as_array().unwrap().is_empty(), "{o:#}");
    let rcpts: Vec<String> = sink.messages().into_iter().flat_map(|(_, r)| r).collect();
    assert!(
        rcpts.contains(&"it@akerlund.example".to_owned()),
        "{rcpts:?}"
    );
    let actions: Vec<String> = db
        .store
        .history("c1")
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.action)
        .collect();
    assert_eq!(
        actions,
        [
            "consent_requested",
            "consent_request_resent",
            "approval_notice_sent"
        ]
    );
    // Sent Monday 4 January 12:00 Stockholm: the window closes at the end of Monday 11 January.
    tick(dir.path(), "2027-01-11T23:00:00Z", &env);
    assert!(harness::incentive_request(&db.store, "c1").await.is_some());
}

/// A consent request refused by the customer's server is sent again, once the address is
/// corrected, by a replica whose clock runs behind the main system's: delivered at 10:05 for an
/// approval stamped 10:09. The partner's approval notice, whose run starts at that delivery,
/// belongs to this approval and goes out; it was withdrawn as if it announced an earlier
/// approval (a model run found it: seed 6151025436762718047).
async fn an_approval_notice_goes_out_when_the_main_systems_clock_runs_ahead(db: &TestStore) {
    let Some(sink) = approved_with_refused_address(db, "clock_ahead", "2027-01-04T10:09:00Z").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let smtp = sink.url().to_string();
    let env = env(db, &smtp);
    let o = tick(dir.path(), "2027-01-04T10:10:00Z", &env);
    assert_eq!(o["delivery"]["dead"], 1, "{o:#}");
    correct_address(db).await;
    // The resent consent and then the notice go out in one pass.
    let o = tick(dir.path(), "2027-01-04T10:05:00Z", &env);
    assert_eq!(o["delivery"]["consent_sent"], 1, "{o:#}");
    assert_eq!(o["fired"]["partner_approval_notice: fired"], 1, "{o:#}");
    assert_eq!(o["delivery"]["withdrawn"], 0, "{o:#}");
    assert_eq!(o["delivery"]["sent"], 2, "{o:#}");
    let notices: Vec<String> = db
        .store
        .claim_emails("c1")
        .await
        .unwrap()
        .iter()
        .filter(|(e, _)| e.email.to_string() == "partner_approval_notice")
        .map(|(_, state)| state.clone())
        .collect();
    assert_eq!(notices, ["sent"], "{o:#}");
    let rcpts: Vec<String> = sink.messages().into_iter().flat_map(|(_, r)| r).collect();
    assert!(
        rcpts.contains(&"claims@nordljus.example".to_owned()),
        "{rcpts:?}"
    );
    // History is in the order of its instants, and the resend's is the earlier clock's.
    let mut actions: Vec<String> = db
        .store
        .history("c1")
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.action)
        .collect();
    actions.sort();
    assert_eq!(
        actions,
        [
            "approval_notice_sent",
            "consent_request_resent",
            "consent_requested"
        ]
    );
}
