//! `send-test-email` and `check-config` as an operator runs them (the built binary).

use mail_parser::MessageParser;

use crate::harness::run_in;
use crate::harness::smtp::SmtpSink;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn send_test_email_writes_every_template_in_both_languages_to_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["send-test-email", "--to", "ops@example.com"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("12 test emails sent"));
    let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(files.len(), 12);
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
    assert_eq!(sink.messages().len(), 12);
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
