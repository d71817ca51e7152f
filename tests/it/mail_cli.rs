//! `send-test-email`, `check-config` and `tick` as an operator runs them (the built binary):
//! every template in every shipped language, and claims in `de-DE`, `en-US` and `en-GB` each
//! getting their own language, date order and time zone with no fallback.

use chrono::{DateTime, Utc};
use cpor_worker::claim::ClaimRow;
use cpor_worker::store::Store;
use mail_parser::MessageParser;

use crate::harness::smtp::SmtpSink;
use crate::harness::{self, run_in, text};

#[test]
fn send_test_email_writes_every_template_in_every_language_to_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["send-test-email", "--to", "ops@example.com"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("18 test emails sent"));
    let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(files.len(), 18, "6 templates in en, sv and de");
    for f in files {
        let raw = std::fs::read(f.path()).unwrap();
        let m = MessageParser::default().parse(&raw).unwrap();
        assert!(m.subject().unwrap().starts_with("[test] "));
        assert_eq!(m.text_body_count() + m.html_body_count(), 2);
    }
}

#[test]
fn send_test_email_uses_smtp_when_the_url_is_set() {
    let Some(sink) = SmtpSink::start("send_test_email_uses_smtp", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = sink.url().to_string();
    let out = run_in(
        dir.path(),
        &["send-test-email", "--to", "ops@example.com"],
        &[("CPOR_SMTP_URL", url.as_str())],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(sink.messages().len(), 18);
    assert!(!dir.path().join("outbox").exists());
}

#[test]
fn check_config_names_a_broken_template_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("templates/sv/claim_rejected.txt.j2");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "{{ reason_in_words }}").unwrap();
    let out = run_in(dir.path(), &["check-config"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("templates/sv/claim_rejected.txt.j2") && err.contains("undefined"),
        "{err}"
    );
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A claim rejected for `insufficient_poe` a moment before the pass, in `country` and `locale`.
fn rejected(id: &str, country: &str, locale: &str) -> ClaimRow {
    ClaimRow {
        id: id.into(),
        status: "rejected".into(),
        partner_name: Some("Nordljus Konsult AB".into()),
        partner_email: Some(format!("{id}@partner.example")),
        customer_name: Some("Åkerlund & Söner AB".into()),
        customer_email: Some("it@akerlund.example".into()),
        products: Some("Dynamics 365 Sales".into()),
        country: Some(country.into()),
        locale: Some(locale.into()),
        rejected_at: Some(t("2026-12-01T10:00:00Z")),
        rejection_reason: Some("insufficient_poe".into()),
        updated_at: Some(t("2026-12-01T10:00:00Z")),
        version: 1,
        ..ClaimRow::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn de_de_en_us_and_en_gb_claims_get_their_own_language_date_order_and_zone() {
    let db = harness::sqlite_unmigrated().await;
    db.store.migrate().await.unwrap();
    for row in [
        rejected("berlin", "DE", "de-DE"),
        rejected("new-york", "US", "en-US"),
        rejected("london", "GB", "en-GB"),
    ] {
        db.store.put_claim_row(&row).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["tick", "--at", "2026-12-01T11:00:00Z", "--json"],
        &[("CPOR_DATABASE_URL", db.url.as_str())],
    );
    let log = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["delivery"]["sent"], 3, "{outcome:#}");
    assert!(
        !log.to_ascii_lowercase().contains("falls back"),
        "no email should fall back to another language:\n{log}"
    );
    // Rejected 1 December 2026; 30 calendar days on is Thursday 31 December 2026.
    let want = [
        (
            "berlin@",
            "wurde abgelehnt",
            "Donnerstag, 31. Dezember 2026, 24:00 Uhr (Ortszeit Berlin)",
        ),
        (
            "new-york@",
            "has been rejected",
            "Thursday, December 31, 2026, end of day, New York time",
        ),
        (
            "london@",
            "has been rejected",
            "Thursday, 31 December 2026, end of day, London time",
        ),
    ];
    let mut seen = 0;
    for f in std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .flatten()
    {
        let raw = std::fs::read(f.path()).unwrap();
        let m = MessageParser::default().parse(&raw).unwrap();
        let to = m
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap()
            .to_owned();
        let (_, subject, last_day) = want.iter().find(|(p, _, _)| to.starts_with(p)).unwrap();
        let body = m.body_text(0).unwrap();
        assert!(
            m.subject().unwrap().contains(subject),
            "{to}: {:?}",
            m.subject()
        );
        assert!(body.contains(last_day), "{to}: {body}");
        seen += 1;
    }
    assert_eq!(seen, 3);
}
