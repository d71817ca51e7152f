//! The console through `run`, as scripts and browsers reach it, on both backends: every page
//! answers as HTML and as JSON, values are escaped, repairs need the operator token (403 and
//! nothing changed without it), a retried dead letter is delivered by the next pass, and each
//! repair leaves one history row. Without a configured token every repair is refused.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cpor_worker::claim::ClaimRow;
use cpor_worker::store::{Repairs, Store};

use crate::cli_run::{start_daemon, stop, wait_for};
use crate::harness::TestStore;
use crate::harness::smtp::SmtpSink;
use crate::never_miss::t;

backend_tests_db!(console_pages_and_repairs, without_a_token_repairs_are_off);

/// A `run` child that is killed if the test fails before stopping it.
pub struct Running(pub Option<std::process::Child>);

impl Running {
    /// Stops it with SIGTERM: (exit code, stderr).
    pub fn stop(mut self) -> (Option<i32>, String) {
        stop(self.0.take().expect("running"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The operator token the tests configure.
pub const TOKEN: &str = "test-operator-token-0123456789";

/// One HTTP/1.1 request on loopback: (status, response headers, body).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

fn json(port: u16, path: &str) -> serde_json::Value {
    let (status, _, body) = request(port, "GET", path, &[("Accept", "application/json")], "");
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// A rejected claim whose rejection email goes to an address the SMTP sink refuses, and a
/// submitted claim whose partner name is markup.
pub async fn seed(db: &TestStore) {
    db.store.migrate().await.unwrap();
    let now = chrono::Utc::now();
    db.store
        .put_claim_row(&ClaimRow {
            id: "c1".into(),
            status: "rejected".into(),
            partner_id: Some("P-77".into()),
            partner_name: Some("Nordljus Konsult AB".into()),
            partner_email: Some("gone@nordljus.example".into()),
            customer_name: Some("Åkerlund & Söner AB".into()),
            customer_email: Some("it@akerlund.example".into()),
            country: Some("SE".into()),
            locale: Some("en".into()),
            rejected_at: Some(now - chrono::Duration::hours(1)),
            rejection_reason: Some("insufficient_poe".into()),
            updated_at: Some(now),
            version: 1,
            ..ClaimRow::default()
        })
        .await
        .unwrap();
    db.store
        .put_claim_row(&ClaimRow {
            id: "c2".into(),
            status: "submitted".into(),
            partner_name: Some("<script>alert('x')</script>".into()),
            partner_email: Some("p@example.com".into()),
            customer_name: Some("Cust".into()),
            customer_email: Some("c@example.com".into()),
            country: Some("SE".into()),
            locale: Some("en".into()),
            submitted_at: Some(now - chrono::Duration::hours(2)),
            updated_at: Some(now),
            version: 1,
            ..ClaimRow::default()
        })
        .await
        .unwrap();
    let _ = t;
}

/// Waits for the rejection email to be dead-lettered and returns its outbox id.
pub fn dead_id(port: u16) -> i64 {
    assert!(
        wait_for(30, || crate::cli_run::http_get(port, "/healthz").is_some()),
        "run did not answer"
    );
    let mut id = None;
    assert!(
        wait_for(30, || {
            let v = json(port, "/outbox?state=dead&format=json");
            id = v["rows"][0]["id"].as_i64();
            id.is_some()
        }),
        "no dead letter appeared"
    );
    id.unwrap_or_default()
}

async fn console_pages_and_repairs(db: &TestStore) {
    seed(db).await;
    let Some(sink) = SmtpSink::start("console_http", &["--reject", "gone@nordljus.example"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let smtp = sink.url().to_string();
    let env = [
        ("CPOR_DATABASE_URL", db.url.as_str()),
        ("CPOR_SMTP_URL", smtp.as_str()),
        ("CPOR_OPERATOR_TOKEN", TOKEN),
    ];
    let (child, port) = start_daemon(dir.path(), &[], &env);
    let child = Running(Some(child));
    let id = dead_id(port);
    let path = format!("/outbox/{id}/retry");

    // Overview, as JSON and HTML.
    let o = json(port, "/?format=json");
    assert_eq!(o["counts"]["outbox"]["dead"], 1, "{o:#}");
    assert_eq!(o["due_per_day"].as_array().unwrap().len(), 7, "{o:#}");
    assert!(!o["passes"].as_array().unwrap().is_empty(), "{o:#}");
    assert!(o["next_pass"].is_string(), "{o:#}");
    let (status, head, html) = request(port, "GET", "/", &[], "");
    assert_eq!(status, 200);
    assert!(head.to_ascii_lowercase().contains("text/html"), "{head}");
    assert!(
        html.contains("href=\"/outbox?state=dead\"") && html.contains("<svg"),
        "{html}"
    );
    // Search, claim page, lists.
    let found = json(port, "/claims?q=nordljus");
    assert_eq!(found["claims"][0]["id"], "c1", "{found:#}");
    assert_eq!(json(port, "/claims?q=P-77")["claims"][0]["id"], "c1");
    let c1 = json(port, "/claims/c1");
    assert_eq!(c1["emails"][0]["state"], "dead", "{c1:#}");
    assert!(c1["emails"][0]["preview_subject"].is_string(), "{c1:#}");
    assert!(!c1["history"].as_array().unwrap().is_empty(), "{c1:#}");
    assert!(!c1["timers"].as_array().unwrap().is_empty(), "{c1:#}");
    assert!(
        c1["explain_text"]
            .as_str()
            .unwrap()
            .contains("dispute_window_close"),
        "{c1:#}"
    );
    let (status, _, c1html) = request(port, "GET", "/claims/c1", &[], "");
    assert_eq!(status, 200, "{c1html}");
    assert!(
        c1html.contains("id=\"history\"") && c1html.contains("id=\"timers\""),
        "{c1html}"
    );
    let (_, _, c2) = request(port, "GET", "/claims/c2", &[], "");
    assert!(
        c2.contains("&lt;script&gt;") && !c2.contains("<script>alert"),
        "not escaped"
    );
    for p in [
        "/problems",
        "/outbox",
        "/outbox?state=sent",
        "/sla",
        "/held",
        "/claims",
    ] {
        assert_eq!(request(port, "GET", p, &[], "").0, 200, "{p}");
        json(
            port,
            &format!("{p}{}format=json", if p.contains('?') { '&' } else { '?' }),
        );
    }
    assert_eq!(request(port, "GET", "/claims/nope", &[], "").0, 404);

    // Refused without the token, with a wrong one, and from a form without its CSRF token.
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let refused = [
        request(port, "POST", &path, &[], ""),
        request(
            port,
            "POST",
            &path,
            &[("Authorization", "Bearer wrong-token-0000000000")],
            "",
        ),
        request(
            port,
            "POST",
            &path,
            &form,
            &format!("token={TOKEN}&reason=x"),
        ),
    ];
    for (status, _, body) in &refused {
        assert_eq!(*status, 403, "{body}");
    }
    let row = db.store.outbox_row(id).await.unwrap().unwrap();
    assert_eq!(row.state, "dead", "a refused repair changes nothing");

    // The main system fixes the address; a script retries with the token.
    crate::harness::exec(
        &db.store,
        "UPDATE claims SET partner_email = 'claims@nordljus.example', version = 2 WHERE id = 'c1'",
    )
    .await;
    let bearer = format!("Bearer {TOKEN}");
    let auth = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (status, _, body) = request(
        port,
        "POST",
        &path,
        &auth,
        r#"{"reason":"address fixed","by":"ops-bot"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let done: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(done["action"], "retry");
    assert!(
        wait_for(30, || sink
            .messages()
            .iter()
            .any(|(_, r)| r.contains(&"claims@nordljus.example".to_owned()))),
        "the retried email was not delivered by a later pass"
    );
    assert!(wait_for(
        10,
        || json(port, "/claims/c1")["emails"][0]["state"] == "sent"
    ));

    // Hold, release, resync through the endpoints.
    let c2hold = request(port, "POST", "/claims/c2/hold", &auth, "{}");
    assert_eq!(c2hold.0, 400, "a hold needs a reason: {}", c2hold.2);
    let (s, _, b) = request(
        port,
        "POST",
        "/claims/c2/hold",
        &auth,
        r#"{"reason":"checking"}"#,
    );
    assert_eq!(s, 200, "{b}");
    assert_eq!(json(port, "/claims/c2")["hold"]["reason"], "checking");
    assert_eq!(json(port, "/held")["total"], 1);
    assert_eq!(
        request(
            port,
            "POST",
            "/claims/c2/hold",
            &auth,
            r#"{"reason":"again"}"#
        )
        .0,
        409
    );
    assert_eq!(
        request(port, "POST", "/claims/c2/release", &auth, "{}").0,
        200
    );
    assert_eq!(
        request(port, "POST", "/claims/c2/resync", &auth, "{}").0,
        200
    );
    assert_eq!(
        request(port, "POST", "/claims/nope/resync", &auth, "{}").0,
        404
    );
    let (code, err) = child.stop();
    assert_eq!(code, Some(0), "{err}");
    assert!(!err.contains(TOKEN), "the token is never logged");

    let count = |h: &[cpor_worker::store::HistoryEntry], a: &str| {
        h.iter().filter(|e| e.action == a).count()
    };
    let h1 = db.store.history("c1").await.unwrap();
    assert_eq!(count(&h1, "operator_retry"), 1, "{h1:#?}");
    let h2 = db.store.history("c2").await.unwrap();
    for a in ["operator_hold", "operator_release", "operator_resync"] {
        assert_eq!(count(&h2, a), 1, "{a}: {h2:#?}");
    }
}

async fn without_a_token_repairs_are_off(db: &TestStore) {
    seed(db).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("CPOR_DATABASE_URL", db.url.as_str())];
    let (child, port) = start_daemon(dir.path(), &[], &env);
    let child = Running(Some(child));
    assert!(wait_for(20, || crate::cli_run::http_get(port, "/healthz").is_some()));
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = request(
        port,
        "POST",
        "/claims/c2/hold",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
        ],
        r#"{"reason":"x"}"#,
    );
    assert_eq!(status, 403);
    assert!(body.contains("repairs are off"), "{body}");
    let (_, _, page) = request(port, "GET", "/claims/c2", &[], "");
    assert!(page.contains("Repairs are off"), "{page}");
    assert!(db.store.holds(None).await.unwrap().is_empty());
    child.stop();
}
