//! Sharp edges against a real database (issue 17), both backends, through the binary: `demo`
//! never touches a claim it did not create, a `claims` table without the worker's columns is
//! refused naming them, a very long claim id still gets its email file, and a line break in a
//! claim id does not split a log line.

use chrono::{DateTime, Utc};
use cpor_worker::claim::ClaimRow;
use cpor_worker::store::{Outbox, Store};

use crate::harness::{self, TestStore, run_in, text};

backend_tests_db!(
    demo_refuses_a_table_with_claims_and_with_force_adds_only_free_ids,
    a_claims_table_without_the_workers_columns_is_refused_naming_them,
    a_5000_character_claim_id_gets_its_email_file,
    a_line_break_in_a_claim_id_stays_inside_one_log_line,
);

const NOW: &str = "2026-03-02T10:00:00Z";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A claim rejected an hour before [`NOW`]: its rejection email is due at once.
fn rejected(id: &str) -> ClaimRow {
    ClaimRow {
        id: id.into(),
        status: "rejected".into(),
        partner_name: Some("Nordljus Konsult AB".into()),
        partner_email: Some("claims@nordljus.example".into()),
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
    }
}

async fn demo_refuses_a_table_with_claims_and_with_force_adds_only_free_ids(db: &TestStore) {
    db.store.migrate().await.unwrap();
    let mut real = rejected("CPOR-100005");
    real.version = 42;
    real.partner_name = Some("A real partner".into());
    db.store.put_claim_row(&real).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [("CPOR_DATABASE_URL", db.url.as_str())];

    let out = run_in(dir.path(), &["demo"], &env);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--force") && err.contains("1 claim"), "{err}");
    assert_eq!(db.store.count_claims().await.unwrap(), 1, "nothing loaded");

    let out = run_in(dir.path(), &["demo", "--force"], &env);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("loaded 16 demo claims"), "{stdout}");
    assert!(
        stdout.contains("CPOR-100005"),
        "the taken id is named: {stdout}"
    );
    assert_eq!(db.store.count_claims().await.unwrap(), 17);
    let kept = db.store.claim("CPOR-100005").await.unwrap();
    assert_eq!(kept.version, 42, "the real claim is untouched");
    assert_eq!(kept.status.as_str(), "rejected");

    // Again with --force: every id is taken, nothing changes.
    let out = run_in(dir.path(), &["demo", "--force"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("loaded 0 demo claims"));
    assert_eq!(db.store.claim("CPOR-100005").await.unwrap().version, 42);
}

async fn a_claims_table_without_the_workers_columns_is_refused_naming_them(db: &TestStore) {
    // The main system's table, made before the worker came, without two columns.
    harness::exec(
        &db.store,
        "CREATE TABLE claims (id TEXT PRIMARY KEY, status TEXT NOT NULL, partner_id TEXT, \
         partner_name TEXT, partner_email TEXT, customer_tenant_id TEXT, customer_name TEXT, \
         customer_email TEXT, country TEXT, time_zone TEXT, submitted_at TIMESTAMPTZ, \
         review_started_at TIMESTAMPTZ, info_requested_at TIMESTAMPTZ, info_request_reason TEXT, \
         approved_at TIMESTAMPTZ, rejected_at TIMESTAMPTZ, rejection_reason TEXT, \
         customer_declined_at TIMESTAMPTZ, dispute_opened_at TIMESTAMPTZ, \
         dispute_resolved_at TIMESTAMPTZ, updated_at TIMESTAMPTZ NOT NULL, version BIGINT NOT NULL)",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("CPOR_DATABASE_URL", db.url.as_str())];
    for args in [&["migrate"][..], &["tick", "--no-send", "--at", NOW][..]] {
        let out = run_in(dir.path(), args, &env);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("claims table lacks columns products, locale"),
            "{args:?}: {err}"
        );
    }
    // Once the columns exist, both work.
    harness::exec(&db.store, "ALTER TABLE claims ADD COLUMN products TEXT").await;
    harness::exec(&db.store, "ALTER TABLE claims ADD COLUMN locale TEXT").await;
    let out = run_in(dir.path(), &["tick", "--no-send", "--at", NOW], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

async fn a_5000_character_claim_id_gets_its_email_file(db: &TestStore) {
    db.store.migrate().await.unwrap();
    let id = format!("CPOR-{}", "7".repeat(5000));
    db.store.put_claim_row(&rejected(&id)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [("CPOR_DATABASE_URL", db.url.as_str())];
    let out = run_in(dir.path(), &["tick", "--at", NOW, "--json"], &env);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["delivery"]["retried"], 0, "{stdout}");
    assert!(v["delivery"]["sent"].as_u64().unwrap() >= 1, "{stdout}");
    let files: Vec<String> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.is_empty());
    for f in &files {
        assert!(f.len() <= 200 && f.ends_with(".eml"), "{f}");
    }
    let emails = db.store.claim_emails(&id).await.unwrap();
    assert!(
        !emails.is_empty() && emails.iter().all(|(_, s)| s == "sent"),
        "{emails:?}"
    );
}

async fn a_line_break_in_a_claim_id_stays_inside_one_log_line(db: &TestStore) {
    db.store.migrate().await.unwrap();
    let mut row = rejected("INJ\r\nFAKE level=ERROR forged line");
    row.country = Some("ZZ".into());
    db.store.put_claim_row(&row).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let env = [("CPOR_DATABASE_URL", db.url.as_str())];
    let out = run_in(dir.path(), &["tick", "--no-send", "--at", NOW], &env);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("INJ\\r\\nFAKE") && l.contains("claim skipped")),
        "{err}"
    );
    assert!(!err.lines().any(|l| l.starts_with("FAKE")), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes into a pipe: {err:?}"
    );
}
