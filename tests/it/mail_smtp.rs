//! The email layer against a real SMTP server on loopback (aiosmtpd, `harness::smtp`): what
//! arrives, how failures are classified, header injection, and the `.eml` folder transport.

use chrono::{TimeZone, Utc};
use cpor_worker::config::Secret;
use cpor_worker::mail::{
    DeliveryError, EmailContext, FileTransport, OutgoingEmail, SmtpTransport, Templates, Transport,
    decline_link, samples, verify_decline_token,
};
use mail_parser::{MessageParser, MimeHeaders};

use crate::harness::smtp::{SmtpSink, free_port};

fn templates() -> Templates {
    Templates::load(std::path::Path::new("/nonexistent-templates-dir")).expect("templates")
}

fn email(id: &str, to: &str) -> OutgoingEmail {
    OutgoingEmail {
        message_id: id.to_owned(),
        from: "CPOR Claims <noreply@cpor.example>".into(),
        to_name: "Åsa Öberg".into(),
        to_address: to.to_owned(),
        subject: "Hej".into(),
        text: "text".into(),
        html: "<p>html</p>".into(),
    }
}

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    MessageParser::default().parse(raw).expect("parse message")
}

#[tokio::test]
async fn a_rendered_swedish_consent_request_arrives_intact() {
    let Some(sink) = SmtpSink::start("a_rendered_swedish_consent_request_arrives_intact", &[])
    else {
        return;
    };
    let secret = Secret::new("test-secret".to_owned());
    let window_end = Utc.with_ymd_and_hms(2027, 1, 8, 23, 0, 0).unwrap();
    let base = url::Url::parse("https://partner.example.com/cpor/decline").unwrap();
    let link = decline_link(&base, &secret, "CLM-2027-0042", window_end);
    let rendered = templates()
        .render("sv-SE", &samples::consent_request(&link))
        .unwrap();
    assert_eq!(rendered.locale_used, "sv");
    let mut out = email("outbox-7.1@cpor.example", "kund@example.se");
    out.to_name = "Björkö Fastigheter AB".into();
    out.subject = rendered.subject.clone();
    out.text = rendered.text;
    out.html = rendered.html;
    let transport = SmtpTransport::from_url(&sink.url(), 2).unwrap();
    transport.send(&out).await.expect("delivered");

    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    let (raw, rcpt) = &msgs[0];
    assert_eq!(rcpt, &["kund@example.se"]);
    let m = parse(raw);
    let from = m.from().and_then(|a| a.first()).unwrap();
    assert_eq!(from.name(), Some("CPOR Claims"));
    assert_eq!(from.address(), Some("noreply@cpor.example"));
    let to = m.to().and_then(|a| a.first()).unwrap();
    assert_eq!(to.name(), Some("Björkö Fastigheter AB"));
    assert_eq!(to.address(), Some("kund@example.se"));
    assert_eq!(m.subject(), Some(rendered.subject.as_str()));
    assert!(m.subject().unwrap().contains("fredag 8 januari 2027"));
    assert_eq!(m.message_id(), Some("outbox-7.1@cpor.example"));
    assert!(m.date().is_some(), "Date header");

    let raw_text = String::from_utf8_lossy(raw);
    assert!(raw_text.contains("multipart/alternative"), "{raw_text}");
    let text = m.body_text(0).unwrap().into_owned();
    // minijinja's HTML escaping also encodes `/`; a browser decodes entities in href values.
    let html = m
        .body_html(0)
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    for body in [&text, &html] {
        assert!(body.contains("Ängsö Konsult AB"), "{body}");
        assert!(
            body.contains("kan ni neka associationen till och med"),
            "{body}"
        );
        assert!(body.contains("å") && body.contains("ä") && body.contains("ö"));
        assert!(body.contains(&link), "decline link in {body}");
    }
    assert!(html.contains("<html lang=\"sv\">"));
    assert!(!text.contains("<p"));
    let token = link.split("token=").nth(1).unwrap();
    let t = verify_decline_token(&secret, token).unwrap();
    assert_eq!(
        (t.claim_id.as_str(), t.window_end),
        ("CLM-2027-0042", window_end)
    );
}

#[tokio::test]
async fn every_template_in_both_languages_goes_through_one_pooled_transport() {
    let Some(sink) = SmtpSink::start("every_template_in_both_languages", &[]) else {
        return;
    };
    let t = templates();
    let transport = SmtpTransport::from_url(&sink.url(), 4).unwrap();
    let mut sent = Vec::new();
    for lang in ["en", "sv"] {
        for ctx in samples::all() {
            let r = t.render(lang, &ctx).unwrap();
            let mut e = email(&format!("{}-{lang}", ctx.template_id()), "ops@example.com");
            (e.subject, e.text, e.html) = (r.subject.clone(), r.text, r.html);
            transport.send(&e).await.unwrap();
            sent.push(r.subject);
        }
    }
    let got: Vec<String> = sink
        .messages()
        .iter()
        .map(|(raw, _)| {
            let m = parse(raw);
            assert_eq!(m.text_body_count(), 1);
            assert_eq!(m.html_body_count(), 1);
            assert!(m.parts.iter().any(|p| {
                p.content_type()
                    .is_some_and(|c| c.subtype() == Some("html"))
            }));
            m.subject().unwrap().to_owned()
        })
        .collect();
    assert_eq!(got, sent);
}

/// With Nagle on (lettre 0.11.23's own sockets) every message on a connection waited ~44 ms for
/// the server's delayed ACK: 50 messages took over 2.2 s. With `TCP_NODELAY` they take a few ms
/// each, even in a debug build on a busy machine.
#[tokio::test]
async fn one_connection_is_not_held_to_one_message_per_delayed_ack() {
    let Some(sink) = SmtpSink::start("one_connection_is_not_held_to_one_message", &[]) else {
        return;
    };
    let transport = SmtpTransport::from_url(&sink.url(), 1).unwrap();
    transport
        .send(&email("warm", "a@example.com"))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    for i in 0..50 {
        let e = email(&format!("nodelay-{i}"), "a@example.com");
        transport.send(&e).await.unwrap();
    }
    let took = started.elapsed();
    assert!(
        took < std::time::Duration::from_millis(1500),
        "50 messages took {took:?}"
    );
    assert_eq!(sink.messages().len(), 51);
}

#[tokio::test]
async fn a_4xx_is_temporary_and_the_next_attempt_succeeds() {
    let Some(sink) = SmtpSink::start("a_4xx_is_temporary", &["--fail-first", "1"]) else {
        return;
    };
    let transport = SmtpTransport::from_url(&sink.url(), 1).unwrap();
    let e = email("retry-1", "partner@example.com");
    match transport.send(&e).await {
        Err(DeliveryError::Temporary(reason)) => assert!(reason.contains("451"), "{reason}"),
        other => panic!("expected Temporary, got {other:?}"),
    }
    assert!(sink.messages().is_empty());
    transport.send(&e).await.expect("second attempt");
    assert_eq!(sink.messages().len(), 1);
}

#[tokio::test]
async fn a_5xx_is_permanent_and_other_recipients_still_work() {
    let Some(sink) = SmtpSink::start("a_5xx_is_permanent", &["--reject", "gone@example.com"])
    else {
        return;
    };
    let transport = SmtpTransport::from_url(&sink.url(), 2).unwrap();
    match transport.send(&email("p-1", "gone@example.com")).await {
        Err(DeliveryError::Permanent(reason)) => assert!(reason.contains("550"), "{reason}"),
        other => panic!("expected Permanent, got {other:?}"),
    }
    transport
        .send(&email("p-2", "here@example.com"))
        .await
        .unwrap();
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].1, ["here@example.com"]);
}

#[tokio::test]
async fn connection_refused_is_temporary() {
    let url = url::Url::parse(&format!("smtp://127.0.0.1:{}", free_port())).unwrap();
    let transport = SmtpTransport::from_url(&url, 1).unwrap();
    let got = transport.send(&email("r-1", "a@example.com")).await;
    assert!(matches!(got, Err(DeliveryError::Temporary(_))), "{got:?}");
}

#[tokio::test]
async fn header_injection_through_names_subjects_or_addresses_adds_no_header() {
    let Some(sink) = SmtpSink::start("header_injection", &[]) else {
        return;
    };
    let transport = SmtpTransport::from_url(&sink.url(), 1).unwrap();

    // A partner name with CR/LF reaches the subject through a template, and the recipient name.
    let evil = "Evil AB\r\nBcc: victim@example.com\r\nX-Injected: yes";
    let ctx = match samples::consent_request("https://x.example/d?token=T") {
        EmailContext::ConsentRequest(mut c) => {
            c.partner_name = evil.into();
            EmailContext::ConsentRequest(c)
        }
        other => panic!("unexpected sample {other:?}"),
    };
    let r = templates().render("en", &ctx).unwrap();
    assert!(!r.subject.contains('\r') && !r.subject.contains('\n'));
    let mut e = email("inj-1", "partner@example.com");
    e.to_name = evil.into();
    e.subject = format!("{}\r\nBcc: victim2@example.com", r.subject);
    let want_subject = format!("{} Bcc: victim2@example.com", r.subject);
    (e.text, e.html) = (r.text, r.html);
    transport.send(&e).await.unwrap();

    // A CR/LF in the address itself is refused before anything is sent.
    let mut bad = email("inj-2", "partner@example.com\r\nBcc: victim@example.com");
    bad.to_name = "x".into();
    let got = transport.send(&bad).await;
    assert!(matches!(got, Err(DeliveryError::Permanent(_))), "{got:?}");

    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1, "only the neutralised message arrives");
    let (raw, rcpt) = &msgs[0];
    assert_eq!(
        rcpt,
        &["partner@example.com"],
        "no extra envelope recipient"
    );
    let m = parse(raw);
    let names: Vec<String> = m
        .headers()
        .iter()
        .map(|h| h.name().to_ascii_lowercase())
        .collect();
    assert!(
        !names.iter().any(|n| n == "bcc" || n == "x-injected"),
        "{names:?}"
    );
    assert_eq!(names.iter().filter(|n| *n == "to").count(), 1);
    assert_eq!(m.subject(), Some(want_subject.as_str()));
    assert!(
        want_subject.starts_with("Evil AB Bcc: victim@example.com X-Injected: yes is registered")
    );
    let to = m.to().and_then(|a| a.first()).unwrap();
    assert_eq!(
        to.name(),
        Some("Evil AB Bcc: victim@example.com X-Injected: yes")
    );
}

#[tokio::test]
async fn the_file_transport_writes_a_parsable_eml_per_message_id() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("nested/outbox");
    let transport = FileTransport::new(&outbox);
    let r = templates()
        .render("sv", &samples::sla_alert_digest())
        .unwrap();
    let mut e = email("<digest/../1@cpor.example>", "ops@example.com");
    (e.subject, e.text, e.html) = (r.subject.clone(), r.text, r.html);
    transport.send(&e).await.unwrap();
    let files: Vec<_> = std::fs::read_dir(&outbox).unwrap().flatten().collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].file_name(), "digest_.._1@cpor.example.eml");
    let raw = std::fs::read(files[0].path()).unwrap();
    let m = parse(&raw);
    assert_eq!(m.subject(), Some(r.subject.as_str()));
    assert_eq!(m.message_id(), Some("digest/../1@cpor.example"));
    assert!(
        m.body_text(0)
            .unwrap()
            .contains("försenat med 2 dagar 10 timmar")
    );
}
