//! Outages under the daemon (`run`, real time, passes every second): an SMTP server that comes
//! up only after the timers fired gets the queued mail from the daemon by itself, once; and a
//! timer that falls due while PostgreSQL is down fires after it returns, once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use cpor_worker::claim::ClaimRow;
use cpor_worker::store::{AnyStore, PgStore, SqliteStore, Store};

use crate::cli_run::{http_get, start_daemon, stop, wait_for};
use crate::harness::{
    self,
    smtp::{SmtpSink, free_port},
};

fn rejected(id: &str, at: chrono::DateTime<Utc>) -> ClaimRow {
    ClaimRow {
        id: id.into(),
        status: "rejected".into(),
        partner_name: Some("Nordljus Konsult AB".into()),
        partner_email: Some(format!("{id}@partner.example")),
        customer_name: Some("Åkerlund & Söner AB".into()),
        products: Some("Dynamics 365 Sales".into()),
        country: Some("SE".into()),
        locale: Some("en".into()),
        rejected_at: Some(at),
        rejection_reason: Some("insufficient_poe".into()),
        updated_at: Some(Utc::now()),
        version: 1,
        ..ClaimRow::default()
    }
}

/// Whether `child` still runs, or how it ended and what it wrote to stderr (for a failure's
/// message: /readyz once gave no answer at all for 15 s in CI with PostgreSQL stopped).
fn daemon_state(child: &mut std::process::Child) -> String {
    match child.try_wait() {
        Ok(None) => "is still running (its HTTP did not answer)".to_owned(),
        Ok(Some(status)) => {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_string(&mut e, &mut err).ok();
            }
            format!("exited ({status}); its stderr:\n{err}")
        }
        Err(e) => format!("cannot be asked: {e}"),
    }
}

fn message_ids(sink: &SmtpSink) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for (raw, _) in sink.messages() {
        let text = String::from_utf8_lossy(&raw);
        let id = text
            .lines()
            .take_while(|l| !l.is_empty())
            .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
            .map(|l| l["message-id:".len()..].trim().to_owned())
            .expect("Message-ID");
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

/// The first delivery attempt fails (connection refused) and is retried 30 s ± 20 % later, so
/// this test takes about half a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_delivers_queued_mail_by_itself_once_the_smtp_server_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cpor.db").display());
    let store = AnyStore::Sqlite(SqliteStore::connect(&db, 1).await.unwrap());
    store.migrate().await.unwrap();
    let now = Utc::now();
    for i in 0..5 {
        store
            .put_claim_row(&rejected(
                &format!("c{i}"),
                now - chrono::Duration::minutes(5),
            ))
            .await
            .unwrap();
    }
    let port = free_port();
    let smtp = format!("smtp://127.0.0.1:{port}");
    let (child, http) = start_daemon(
        dir.path(),
        &[],
        &[("CPOR_DATABASE_URL", &db), ("CPOR_SMTP_URL", &smtp)],
    );
    // The timers fire with the server down: history written, emails queued for a retry.
    let fired = wait_for(20, || {
        http_get(http, "/metrics").is_some_and(|(_, b)| b.contains("cpor_emails_retried_total"))
    });
    assert!(fired, "no failed attempt: {:?}", http_get(http, "/metrics"));
    for i in 0..5 {
        assert_eq!(
            store.history(&format!("c{i}")).await.unwrap().len(),
            1,
            "c{i} fired while SMTP was down"
        );
    }
    let Some(sink) = SmtpSink::start_on("smtp_comes_up_later", port, &[]) else {
        stop(child);
        return;
    };
    let up = Instant::now();
    let delivered = wait_for(60, || sink.messages().len() >= 5);
    let waited = up.elapsed();
    // A few more passes: nothing is sent twice.
    std::thread::sleep(Duration::from_secs(3));
    let (code, log) = stop(child);
    assert!(
        delivered,
        "queued mail not delivered after the server came up:\n{log}"
    );
    assert_eq!(code, Some(0), "{log}");
    eprintln!("delivered {waited:?} after the SMTP server came up");
    let ids = message_ids(&sink);
    assert_eq!(ids.len(), 5, "{ids:?}");
    assert!(
        ids.values().all(|n| *n == 1),
        "an email arrived twice: {ids:?}"
    );
    for i in 0..5 {
        assert_eq!(store.history(&format!("c{i}")).await.unwrap().len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_due_while_postgres_is_down_fires_once_after_it_returns() {
    if harness::postgres::skipped("a_timer_due_while_postgres_is_down") {
        return;
    }
    let Some(sink) = SmtpSink::start("postgres_down_timer", &[]) else {
        return;
    };
    let cluster = harness::pgcluster::Cluster::start(false).expect("own PostgreSQL cluster");
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let store = AnyStore::Postgres(PgStore::connect(&url, 2).await.unwrap());
    store.migrate().await.unwrap();
    let now = Utc::now();
    // One claim due at once; one due 8 s from now, which will be in the outage.
    store
        .put_claim_row(&rejected("before", now - chrono::Duration::minutes(1)))
        .await
        .unwrap();
    store
        .put_claim_row(&rejected("during", now + chrono::Duration::seconds(8)))
        .await
        .unwrap();
    let smtp = sink.url().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, http) = start_daemon(
        dir.path(),
        &[],
        &[("CPOR_DATABASE_URL", &url), ("CPOR_SMTP_URL", &smtp)],
    );
    assert!(
        wait_for(20, || sink.messages().len() == 1),
        "the first claim's email"
    );
    drop(store); // no pool of ours keeps connections across the restart

    cluster.stop().expect("stop PostgreSQL");
    let stopped = Instant::now();
    let mut last = None;
    assert!(
        wait_for(15, || {
            last = http_get(http, "/readyz");
            last.as_ref().is_some_and(|(s, _)| *s == 503)
        }),
        "still ready with the database stopped: /readyz last answered {last:?} (None: no \
         answer within 5 s); the daemon {}",
        daemon_state(&mut child)
    );
    // Stay down until well after the second claim fell due.
    while stopped.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        sink.messages().len(),
        1,
        "nothing can fire without the database"
    );
    cluster.restart().expect("start PostgreSQL again");
    let back = Instant::now();
    assert!(
        wait_for(30, || sink.messages().len() >= 2),
        "the timer due during the outage never fired"
    );
    eprintln!(
        "the timer due during the outage fired {:?} after PostgreSQL returned",
        back.elapsed()
    );
    std::thread::sleep(Duration::from_secs(3));
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");

    let ids = message_ids(&sink);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(
        ids.values().all(|n| *n == 1),
        "an email arrived twice: {ids:?}"
    );
    let store = AnyStore::Postgres(PgStore::connect(&url, 2).await.unwrap());
    for id in ["before", "during"] {
        let h = store.history(id).await.unwrap();
        assert_eq!(h.len(), 1, "{id}: {h:?}");
        assert_eq!(h[0].action, "rejection_notice_sent");
    }
}
