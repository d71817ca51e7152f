//! What the randomized model found in the worker, each as a focused test that failed before
//! the fix.

use chrono::Duration;
use cpor_worker::store::{Outbox, Store};

use super::{calendars, mailer};
use crate::harness::smtp::{SmtpSink, free_port};
use crate::harness::{self, exec};
use crate::never_miss::{insert, t};

/// A consent email that waits out an SMTP outage was delivered after the main system had
/// rejected the claim (the customer was told the claim was approved and may be declined); it is
/// withdrawn instead, with a history row saying why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consent_email_queued_through_an_outage_is_not_sent_after_the_claim_was_rejected() {
    let db = harness::sqlite_unmigrated().await;
    let store = &db.store;
    store.migrate().await.unwrap();
    insert(
        store,
        "c1",
        "approved",
        ", approved_at, updated_at",
        ", '2027-01-04T10:00:00Z', '2027-01-04T10:00:00Z'",
    )
    .await;
    let port = free_port();
    let engine = cpor_worker::worker::Engine {
        calendars: calendars(),
        ..crate::never_miss::engine()
    };
    let mailer = mailer(&db.url, port);
    // SMTP is down: the consent email is queued for a retry.
    let o = engine
        .pass(store, Some(&mailer), t("2027-01-04T10:05:00Z"))
        .await
        .unwrap();
    assert_eq!(o.delivery.retried, 1, "{o:#?}");
    // A reviewer rejects the claim meanwhile.
    exec(
        store,
        "UPDATE claims SET status = 'rejected', rejected_at = '2027-01-04T11:00:00Z', \
         rejection_reason = 'insufficient_poe', version = version + 1 WHERE id = 'c1'",
    )
    .await;
    let Some(sink) = SmtpSink::start_on("stale_consent", port, &[]) else {
        return;
    };
    let o = engine
        .pass(
            store,
            Some(&mailer),
            t("2027-01-04T11:05:00Z") + Duration::minutes(1),
        )
        .await
        .unwrap();
    // The pass's outcome (what `tick --json` prints) counts it.
    assert_eq!(o.delivery.withdrawn, 1, "{o:#?}");
    let subjects: Vec<String> = sink
        .messages()
        .iter()
        .filter_map(|(raw, _)| {
            String::from_utf8_lossy(raw)
                .lines()
                .find(|l| l.starts_with("Subject:"))
                .map(str::to_owned)
        })
        .collect();
    let states: Vec<(String, String)> = store
        .claim_emails("c1")
        .await
        .unwrap()
        .into_iter()
        .map(|(e, s)| (e.email.to_string(), s))
        .collect();
    assert!(
        !states.contains(&("consent_request".to_owned(), "sent".to_owned())),
        "the consent request went out after the claim was rejected: {states:?}, {subjects:?}"
    );
    assert!(
        states.contains(&("consent_request".to_owned(), "withdrawn".to_owned())),
        "{states:?}"
    );
    let history = store.history("c1").await.unwrap();
    let withdrawn: Vec<_> = history
        .iter()
        .filter(|h| h.action == "email_withdrawn")
        .collect();
    assert_eq!(withdrawn.len(), 1, "{history:#?}");
    assert_eq!(withdrawn[0].details["email"], "consent_request");
    assert!(
        withdrawn[0].details["outcome"]
            .as_str()
            .is_some_and(|o| o.contains("now rejected")),
        "{:?}",
        withdrawn[0].details
    );
}
