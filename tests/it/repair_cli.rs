//! The repair commands through the binary, on both backends: a dead-lettered email listed as
//! JSON, retried to the corrected address and delivered by the next pass; a held claim whose
//! deadline passes does not fire until released; resync and discard; each repair leaves
//! exactly one history row.

use cpor_worker::claim::ClaimRow;
use cpor_worker::store::Store;

use crate::harness::smtp::SmtpSink;
use crate::harness::{TestStore, ok, run_in};
use crate::never_miss::t;

backend_tests_db!(
    a_dead_email_is_listed_retried_and_delivered,
    a_held_claim_fires_only_after_release,
);

async fn operator_actions(db: &TestStore, id: &str) -> Vec<String> {
    db.store
        .history(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.action.starts_with("operator_"))
        .map(|h| h.action)
        .collect()
}

fn rejected(id: &str, email: &str) -> ClaimRow {
    ClaimRow {
        id: id.into(),
        status: "rejected".into(),
        partner_name: Some("Nordljus Konsult AB".into()),
        partner_email: Some(email.into()),
        customer_name: Some("Åkerlund & Söner AB".into()),
        customer_email: Some("it@akerlund.example".into()),
        country: Some("SE".into()),
        locale: Some("en".into()),
        rejected_at: Some(t("2027-01-04T10:00:00Z")),
        rejection_reason: Some("insufficient_poe".into()),
        updated_at: Some(t("2027-01-04T10:00:00Z")),
        version: 1,
        ..ClaimRow::default()
    }
}

async fn a_dead_email_is_listed_retried_and_delivered(db: &TestStore) {
    db.store.migrate().await.unwrap();
    db.store
        .put_claim_row(&rejected("c1", "gone@nordljus.example"))
        .await
        .unwrap();
    let Some(sink) = SmtpSink::start("repair_retry", &["--reject", "gone@nordljus.example"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let smtp = sink.url().to_string();
    let env = [
        ("CPOR_DATABASE_URL", db.url.as_str()),
        ("CPOR_SMTP_URL", smtp.as_str()),
    ];
    ok(dir.path(), &["tick", "--at", "2027-01-04T10:05:00Z"], &env);
    let listed: serde_json::Value = serde_json::from_str(&ok(
        dir.path(),
        &["outbox", "list", "--state", "dead", "--json"],
        &env,
    ))
    .unwrap();
    let rows = listed.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{listed:#}");
    assert_eq!(rows[0]["state"], "dead");
    assert_eq!(rows[0]["email"], "claim_rejected");
    assert_eq!(rows[0]["to_address"], "gone@nordljus.example");
    assert!(rows[0]["last_error"].is_string(), "{listed:#}");
    let id = rows[0]["id"].as_i64().unwrap().to_string();
    // The main system corrects the partner's address; the retry uses it.
    crate::harness::exec(
        &db.store,
        "UPDATE claims SET partner_email = 'claims@nordljus.example', version = 2 WHERE id = 'c1'",
    )
    .await;
    let said = ok(
        dir.path(),
        &[
            "outbox",
            "retry",
            &id,
            "--reason",
            "address fixed",
            "--by",
            "alice",
        ],
        &env,
    );
    assert!(said.contains("claims@nordljus.example"), "{said}");
    // Retrying it again is refused: it is no longer dead.
    let again = run_in(dir.path(), &["outbox", "retry", &id], &env);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("pending"));
    ok(dir.path(), &["tick", "--at", "2027-01-04T10:10:00Z"], &env);
    let rcpts: Vec<String> = sink.messages().into_iter().flat_map(|(_, r)| r).collect();
    assert!(
        rcpts.contains(&"claims@nordljus.example".to_owned()),
        "{rcpts:?}"
    );
    let sent = ok(
        dir.path(),
        &["outbox", "list", "--state", "sent", "--json"],
        &env,
    );
    assert!(sent.contains("claims@nordljus.example"), "{sent}");
    let h = db.store.history("c1").await.unwrap();
    let retry: Vec<_> = h.iter().filter(|h| h.action == "operator_retry").collect();
    assert_eq!(retry.len(), 1, "{h:#?}");
    assert_eq!(retry[0].details["by"], "alice");
    assert_eq!(retry[0].details["reason"], "address fixed");
    assert_eq!(retry[0].details["previous_to"], "gone@nordljus.example");
    assert_eq!(retry[0].actor.as_str(), "system");
    // --all-dead with nothing dead says so.
    let none = ok(dir.path(), &["outbox", "retry", "--all-dead"], &env);
    assert!(none.contains("no dead-lettered"), "{none}");
}

async fn a_held_claim_fires_only_after_release(db: &TestStore) {
    db.store.migrate().await.unwrap();
    // Asked Wed 23 Dec 2026: the response deadline passes 5 Jan 2027 23:00Z (Stockholm).
    db.store
        .put_claim_row(&ClaimRow {
            info_requested_at: Some(t("2026-12-23T14:00:00Z")),
            info_request_reason: Some("missing_products".into()),
            updated_at: Some(t("2026-12-23T14:00:00Z")),
            ..crate::harness::claim_row("c2", "partner_action_required")
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [("CPOR_DATABASE_URL", db.url.as_str())];
    let tick = |at: &str| -> serde_json::Value {
        serde_json::from_str(&ok(
            dir.path(),
            &["tick", "--at", at, "--no-send", "--json"],
            &env,
        ))
        .unwrap()
    };
    tick("2026-12-23T15:00:00Z");
    ok(
        dir.path(),
        &[
            "claim",
            "hold",
            "c2",
            "--reason",
            "partner phoned",
            "--by",
            "bob",
        ],
        &env,
    );
    let refused = run_in(dir.path(), &["claim", "hold", "c2", "--reason", "x"], &env);
    assert_eq!(refused.status.code(), Some(2));
    let o = tick("2027-01-06T08:00:00Z");
    assert!(o["fired"].as_object().unwrap().is_empty(), "held: {o:#}");
    let x = ok(
        dir.path(),
        &["explain", "c2", "--at", "2027-01-06T08:00:00Z"],
        &env,
    );
    assert!(
        x.contains("HELD by bob") && x.contains("partner phoned"),
        "{x}"
    );
    let xj: serde_json::Value = serde_json::from_str(&ok(
        dir.path(),
        &["explain", "c2", "--json", "--at", "2027-01-06T08:00:00Z"],
        &env,
    ))
    .unwrap();
    assert_eq!(xj["held"]["reason"], "partner phoned");
    let dry = ok(
        dir.path(),
        &[
            "dry-run",
            "--at",
            "2027-01-06T08:00:00Z",
            "--format",
            "json",
        ],
        &env,
    );
    assert!(
        dry.contains("\"held\"") && dry.contains("partner phoned"),
        "dry-run shows the claim as held: {dry}"
    );
    ok(
        dir.path(),
        &["claim", "release", "c2", "--reason", "no answer after all"],
        &env,
    );
    let o = tick("2027-01-06T08:05:00Z");
    assert_eq!(o["fired"]["partner_response_deadline: fired"], 1, "{o:#}");
    assert!(
        o["fired"].get("partner_response_reminder: fired").is_none(),
        "a reminder past its deadline is not sent: {o:#}"
    );
    ok(
        dir.path(),
        &["claim", "resync", "c2", "--reason", "check"],
        &env,
    );
    assert_eq!(
        operator_actions(db, "c2").await,
        ["operator_hold", "operator_release", "operator_resync"]
    );
    let missing = run_in(dir.path(), &["claim", "resync", "nope"], &env);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found"));
}
