//! Hostile input end to end: claim rows written by the main system (with whatever a partner typed)
//! → `tick` → what arrives at a real SMTP server. No header injection through CR/LF, no
//! unbounded headers from 10,000-character values, HTML in names escaped, decline tokens from a
//! delivered email refused once tampered with, and secrets never in any output.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cpor_worker::claim::ClaimRow;
use cpor_worker::store::{AnyStore, Outbox, SqliteStore, Store};
use mail_parser::MessageParser;

use crate::cli_run::{http_get, start_daemon, stop, wait_for};
use crate::harness::{self, run_in, smtp::SmtpSink};

const NOW: &str = "2026-03-02T10:00:00Z";
const SECRET: &str = "consent-key-7f3a9c1e5b2d4068a1b3c5d7e9f0a2b4";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn row(id: &str, status: &str, f: impl FnOnce(&mut ClaimRow)) -> ClaimRow {
    let mut row = ClaimRow {
        id: id.into(),
        status: status.into(),
        partner_name: Some("Nordljus Konsult AB".into()),
        partner_email: Some(format!("{id}@partner.example")),
        customer_name: Some("Åkerlund & Söner AB".into()),
        customer_email: Some(format!("{id}@customer.example")),
        products: Some("Dynamics 365 Sales".into()),
        country: Some("SE".into()),
        locale: Some("en".into()),
        updated_at: Some(t("2026-03-02T09:00:00Z")),
        version: 1,
        ..ClaimRow::default()
    };
    if status == "rejected" {
        row.rejected_at = Some(t("2026-03-02T09:00:00Z"));
        row.rejection_reason = Some("insufficient_poe".into());
    } else if status == "approved" {
        row.approved_at = Some(t("2026-03-02T09:00:00Z"));
    }
    f(&mut row);
    row
}

async fn sqlite(dir: &std::path::Path) -> (AnyStore, String) {
    let url = format!("sqlite://{}", dir.join("cpor.db").display());
    let store = AnyStore::Sqlite(SqliteStore::connect(&url, 1).await.unwrap());
    store.migrate().await.unwrap();
    (store, url)
}

fn tick(dir: &std::path::Path, env: &[(&str, &str)]) -> (serde_json::Value, String) {
    let out = run_in(dir, &["tick", "--at", NOW, "--json"], env);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err}");
    (serde_json::from_slice(&out.stdout).unwrap(), err)
}

/// The header block of a raw message, unfolded: (lower-case name, value) per header.
fn headers(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push_str(line.trim_start());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        } else {
            panic!("a header line without a name: {line:?}");
        }
    }
    out
}

const INJECTION: &str = "Evil AB\r\nBcc: victim@evil.example\r\nX-Injected: yes";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_and_10000_character_values_never_inject_headers_and_html_is_escaped() {
    let Some(sink) = SmtpSink::start("hostile_headers", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = sqlite(dir.path()).await;
    let long = "Å".repeat(10_000);
    let rows = [
        row("crlf-name", "rejected", |r| {
            r.partner_name = Some(INJECTION.into());
            r.customer_name = Some(INJECTION.into());
        }),
        row("crlf-email", "rejected", |r| {
            r.partner_email = Some("p@partner.example\r\nBcc: victim@evil.example".into());
        }),
        row("long-values", "rejected", |r| {
            r.partner_name = Some(long.clone());
            r.customer_name = Some(long.clone());
            r.products = Some(long.clone());
        }),
        row("long-email", "rejected", |r| {
            r.partner_email = Some(format!("{}@partner.example", "a".repeat(10_000)));
        }),
        row("html-name", "approved", |r| {
            r.customer_name = Some("<script>alert('x')</script><b>Bold & Co</b>".into());
            r.partner_name = Some("<img src=x onerror=alert(1)>".into());
        }),
        row("good", "rejected", |_| {}),
    ];
    for r in &rows {
        store.put_claim_row(r).await.unwrap();
    }
    let url = sink.url().to_string();
    let (outcome, log) = tick(
        dir.path(),
        &[
            ("CPOR_DATABASE_URL", db.as_str()),
            ("CPOR_SMTP_URL", url.as_str()),
            ("CPOR_CONSENT_SECRET", SECRET),
        ],
    );
    eprintln!("{outcome}");
    // The two bad addresses are problems of their claims, named without echoing 10,000
    // characters; every other claim proceeds.
    let problems: BTreeSet<&str> = outcome["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["claim_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        problems,
        BTreeSet::from(["crlf-email", "long-email"]),
        "{outcome:#}"
    );
    for p in outcome["problems"].as_array().unwrap() {
        let text = p["problem"].as_str().unwrap();
        assert!(text.contains("column partner_email"), "{text}");
        assert!(text.len() < 400, "a problem echoes a long value: {text}");
    }

    let messages = sink.messages();
    let allowed: BTreeSet<&str> = [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    ]
    .into_iter()
    .collect();
    let mut arrived = BTreeSet::new();
    for (raw, rcpt) in &messages {
        for r in rcpt {
            assert!(
                !r.contains("evil") && !r.contains('\r') && !r.contains('\n'),
                "envelope recipient {r:?}"
            );
        }
        assert_eq!(rcpt.len(), 1, "one recipient per email: {rcpt:?}");
        let hs = headers(raw);
        for (name, value) in &hs {
            assert!(
                allowed.contains(name.as_str()),
                "unexpected header {name}: {value}"
            );
        }
        // A 10,000-character name is encoded and folded: no physical line over RFC 5322's 998.
        let text = String::from_utf8_lossy(raw);
        let head = text.split("\r\n\r\n").next().unwrap_or("");
        for line in head.split("\r\n") {
            assert!(line.len() <= 998, "a {}-byte header line", line.len());
        }
        assert_eq!(hs.iter().filter(|(n, _)| n == "to").count(), 1);
        let m = MessageParser::default().parse(raw).unwrap();
        let to = m.to().unwrap();
        assert_eq!(to.iter().count(), 1, "one To address");
        let id = m.message_id().unwrap().to_owned();
        let claim = rows
            .iter()
            .find(|r| id.contains(&format!(".{}.", r.id)))
            .unwrap_or_else(|| panic!("{id}"));
        arrived.insert(claim.id.clone());
        let html = m.body_html(0).unwrap().into_owned();
        let text = m.body_text(0).unwrap().into_owned();
        if claim.id == "html-name" {
            assert!(
                !html.contains("<script") && !html.contains("<img"),
                "HTML in a name must be escaped in the HTML part:\n{html}"
            );
            assert!(
                html.contains("&lt;script&gt;") || html.contains("&lt;img"),
                "{html}"
            );
            assert!(
                text.contains("<script>") || text.contains("<img"),
                "the text part shows names as written:\n{text}"
            );
        }
        if claim.id == "crlf-name" {
            let to_name = to.first().and_then(|a| a.name()).unwrap_or("");
            assert!(
                !to_name.contains('\n') && to_name.contains("Evil AB"),
                "{to_name:?}"
            );
        }
    }
    // The CR/LF name still gets its email (the name flattened); the long values too; the
    // approved claim gets its consent request and then the partner notice.
    for id in ["crlf-name", "long-values", "html-name", "good"] {
        assert!(arrived.contains(id), "{id} missing: {arrived:?}");
    }
    // An address with CR/LF or of 10,000 characters does not parse: nothing is recorded as
    // sent and nothing reaches the server until the address is fixed.
    for id in ["crlf-email", "long-email"] {
        assert!(!arrived.contains(id));
        assert!(store.history(id).await.unwrap().is_empty(), "{id}");
        assert!(store.claim_emails(id).await.unwrap().is_empty(), "{id}");
    }
    assert!(!log.contains("victim@evil.example\r\n"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_decline_token_of_a_delivered_consent_email_verifies_and_a_tampered_one_is_refused() {
    let Some(sink) = SmtpSink::start("hostile_token", &[]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (store, db) = sqlite(dir.path()).await;
    store
        .put_claim_row(&row("CLM-77", "approved", |_| {}))
        .await
        .unwrap();
    let url = sink.url().to_string();
    let env = [
        ("CPOR_DATABASE_URL", db.as_str()),
        ("CPOR_SMTP_URL", url.as_str()),
        ("CPOR_CONSENT_SECRET", SECRET),
    ];
    tick(dir.path(), &env);
    let consent = sink
        .messages()
        .into_iter()
        .map(|(raw, _)| raw)
        .find(|raw| {
            let m = MessageParser::default().parse(raw).unwrap();
            m.to().and_then(|a| a.first()).and_then(|a| a.address())
                == Some("CLM-77@customer.example")
        })
        .expect("the consent email");
    let m = MessageParser::default().parse(&consent).unwrap();
    let text = m.body_text(0).unwrap().into_owned();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("token="))
        .unwrap_or_else(|| panic!("no decline link in:\n{text}"));
    let link = url::Url::parse(link.trim_matches(['<', '>'])).unwrap();
    let token = link
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap();

    let ok = run_in(dir.path(), &["verify-token", &token], &env);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(json["claim_id"], "CLM-77");

    // Every single-character change is refused, with exit 2 and no secret in the message.
    let bytes = token.as_bytes();
    for i in (0..bytes.len()).step_by((bytes.len() / 12).max(1)) {
        let mut t = bytes.to_vec();
        t[i] = if t[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(t).unwrap();
        if tampered == token {
            continue;
        }
        let out = run_in(dir.path(), &["verify-token", &tampered], &env);
        assert_eq!(out.status.code(), Some(2), "position {i}: {tampered}");
        assert!(out.stdout.is_empty());
        assert!(!String::from_utf8_lossy(&out.stderr).contains(SECRET));
    }
    // The genuine token under another key is refused too.
    let other = run_in(
        dir.path(),
        &["verify-token", &token],
        &[(
            "CPOR_CONSENT_SECRET",
            "another-key-0123456789abcdef01234567",
        )],
    );
    assert_eq!(other.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_tick_run_or_check_config_output() {
    let Some(db) = harness::postgres_unmigrated("hostile_secrets").await else {
        return;
    };
    let Some(sink) = SmtpSink::start("hostile_secrets", &[]) else {
        return;
    };
    db.store.migrate().await.unwrap();
    db.store
        .put_claim_row(&row("s-1", "rejected", |_| {}))
        .await
        .unwrap();
    // The throwaway cluster trusts local connections, so a password in the URL is accepted and
    // ignored: it is only there to be leaked, or not.
    let db_password = "dbpass-93e1c0ffee5a";
    let smtp_password = "smtppass-4b1dfeed77";
    let db_url = db
        .url
        .replacen("postgres@", &format!("postgres:{db_password}@"), 1);
    assert!(db_url.contains(db_password), "{db_url}");
    // SMTP with credentials to a server without AUTH: delivery fails, and its error is logged.
    let smtp_url = format!("smtp://mailer:{smtp_password}@127.0.0.1:{}", sink.port);
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("CPOR_DATABASE_URL", db_url.as_str()),
        ("CPOR_SMTP_URL", smtp_url.as_str()),
        ("CPOR_CONSENT_SECRET", SECRET),
    ];
    let secrets = [db_password, smtp_password, SECRET];
    let check = |what: &str, out: &str| {
        for s in secrets {
            assert!(!out.contains(s), "{what} printed a secret:\n{out}");
        }
    };
    let mut all = String::new();
    for (args, log) in [
        (vec!["check-config"], "info"),
        (vec!["tick", "--at", NOW, "--json"], "debug"),
        (vec!["tick", "--at", NOW], "trace"),
    ] {
        let mut env = env.to_vec();
        env.push(("RUST_LOG", log));
        let out = run_in(dir.path(), &args, &env);
        let both = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        check(&format!("{args:?} (RUST_LOG={log})"), &both);
        all.push_str(&both);
    }
    let mut json_env = env.to_vec();
    json_env.push(("CPOR_LOG_FORMAT", "json"));
    let out = run_in(dir.path(), &["tick", "--at", NOW], &json_env);
    check("tick with JSON logs", &String::from_utf8_lossy(&out.stderr));

    // The daemon: its log, and what it serves over HTTP.
    let (child, port) = start_daemon(dir.path(), &[], &env);
    assert!(wait_for(20, || http_get(port, "/metrics")
        .is_some_and(|(_, b)| b.contains("cpor_passes_total"))));
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (_, body) = http_get(port, path).unwrap();
        check(path, &body);
    }
    let (code, log) = stop(child);
    assert_eq!(code, Some(0), "{log}");
    check("run", &log);
    all.push_str(&log);
    // The output did talk about the things the secrets belong to (so the check was not vacuous).
    assert!(all.contains("127.0.0.1"), "{all}");
}
