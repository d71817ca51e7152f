//! Issue 14: an optional `customer_locale` column of the main system's `claims` table chooses
//! the language of the customer's consent email (else the claim's `locale`); a table without
//! it works as before. Both backends.

use chrono::{DateTime, Utc};
use cpor_worker::mail::Letter;
use cpor_worker::store::{AnyStore, Repairs, Store};

use crate::harness;

backend_tests!(
    a_customer_locale_column_picks_the_consent_emails_language,
    without_the_column_the_consent_email_uses_the_claims_locale
);

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// An `en` (Swedish) partner's claim approved on Mon 1 Feb 2027 09:00 UTC.
async fn approved(store: &AnyStore, id: &str) {
    let row = cpor_worker::claim::ClaimRow {
        approved_at: Some(t("2027-02-01T09:00:00Z")),
        submitted_at: Some(t("2027-01-25T09:00:00Z")),
        updated_at: Some(t("2027-02-01T09:00:00Z")),
        ..harness::claim_row(id, "approved")
    };
    store.put_claim_row(&row).await.unwrap();
}

/// The locale of each email the worker wrote for `id`: (email, locale).
async fn locales(store: &AnyStore, id: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = store
        .outbox_list(None, Some(id), 50)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.email.email.to_string(), r.email.locale))
        .collect();
    v.sort();
    v
}

/// Renders outbox emails with the shipped templates (nothing is sent).
fn mailer() -> cpor_worker::mail::Mailer {
    use cpor_worker::mail::{Templates, transport_from_config};
    let env = |k: &str| match k {
        "CPOR_DATABASE_URL" => Some("sqlite://unused.db".to_owned()),
        "CPOR_SMTP_URL" => Some("smtp://127.0.0.1:25".to_owned()),
        "CPOR_CONSENT_SECRET" => Some("customer-locale-test-key-0123456789abcdef".to_owned()),
        _ => None,
    };
    let config = cpor_worker::config::load(None, &env).expect("settings");
    let templates = Templates::load(&config.templates_dir).expect("templates");
    let transport = transport_from_config(&config.mail).expect("transport");
    cpor_worker::mail::Mailer::new(
        cpor_worker::cli::mailer_settings(&config),
        std::sync::Arc::new(templates),
        std::sync::Arc::from(transport),
        4,
    )
}

async fn a_customer_locale_column_picks_the_consent_emails_language(store: AnyStore) {
    store.migrate().await.unwrap();
    harness::exec(&store, "ALTER TABLE claims ADD COLUMN customer_locale TEXT").await;
    // Start-up (migrate, or opening the store for a command) finds the column.
    store.migrate().await.unwrap();
    approved(&store, "de").await;
    approved(&store, "unset").await;
    harness::exec(
        &store,
        "UPDATE claims SET customer_locale = 'de-DE' WHERE id = 'de'",
    )
    .await;
    crate::never_miss::engine()
        .tick(&store, t("2027-02-01T09:05:00Z"))
        .await
        .unwrap();
    // The customer reads German (the partner's emails keep the claim's `en`; the approval
    // notice follows the consent email's delivery).
    assert_eq!(
        locales(&store, "de").await,
        [("consent_request".to_owned(), "de-DE".to_owned())]
    );
    // No customer_locale: the claim's locale, as before.
    assert_eq!(
        locales(&store, "unset").await,
        [("consent_request".to_owned(), "en-SE".to_owned())]
    );
    // Rendered from the German templates, the date in German.
    let consent = store
        .outbox_list(None, Some("de"), 50)
        .await
        .unwrap()
        .remove(0)
        .email;
    let out = mailer()
        .compose(&Letter::from(&consent), t("2027-02-01T09:06:00Z"))
        .unwrap();
    assert!(out.subject.contains("Widerspruch bis"), "{}", out.subject);
    assert!(out.subject.contains("Februar 2027"), "{}", out.subject);
    // explain and the reports read the same claim.
    let claim = store.claim("de").await.unwrap();
    assert_eq!(claim.customer_locale.as_deref(), Some("de-DE"));
}

async fn without_the_column_the_consent_email_uses_the_claims_locale(store: AnyStore) {
    store.migrate().await.unwrap();
    approved(&store, "c1").await;
    crate::never_miss::engine()
        .tick(&store, t("2027-02-01T09:05:00Z"))
        .await
        .unwrap();
    assert_eq!(
        locales(&store, "c1").await,
        [("consent_request".to_owned(), "en-SE".to_owned())]
    );
    assert_eq!(store.claim("c1").await.unwrap().customer_locale, None);
}
