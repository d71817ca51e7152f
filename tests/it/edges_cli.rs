//! Sharp edges a new user hits with odd but plausible input (issue 17), through the binary:
//! panics on a multi-byte horizon, secrets in messages, log lines, settings problems.

use std::time::{Duration, Instant};

use crate::harness::{run_in, text};

/// `check-config` with `file` as settings: (exit status, stdout, stderr).
fn check(dir: &std::path::Path, file: &str, env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    std::fs::write(dir.join("s.toml"), file).unwrap();
    let out = run_in(dir, &["check-config", "--config", "s.toml"], env);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_multi_byte_horizon_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["migrate"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for horizon in ["1é", "€", "7d€"] {
        let out = run_in(dir.path(), &["dry-run", "--horizon", horizon], &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{horizon}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(err.contains("--horizon") && err.contains(horizon), "{err}");
    }
}

#[test]
fn a_password_in_the_query_string_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "postgres://127.0.0.1:1/x?password=s3cret-q",
        "postgres://127.0.0.1:1/x?user=u&password=s3cret-q",
        "postgres://u:s3cret-q@127.0.0.1:1/x?sslmode=disable",
    ] {
        let env = [("CPOR_DATABASE_URL", url)];
        let out = run_in(dir.path(), &["check-config"], &env);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(!all.contains("s3cret"), "{all}");
        assert!(
            all.contains("127.0.0.1:1"),
            "the rest of the URL is shown: {all}"
        );
        // Nothing listens on port 1: the connection error must not show it either.
        let out = run_in(dir.path(), &["migrate"], &env);
        assert_eq!(out.status.code(), Some(2));
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(!all.contains("s3cret"), "{all}");
    }
}

#[test]
fn a_refused_database_connection_is_said_at_once_and_once() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = run_in(
        dir.path(),
        &["migrate"],
        &[("CPOR_DATABASE_URL", "postgres://u@127.0.0.1:1/x")],
    );
    let took = started.elapsed();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.to_lowercase().contains("connection refused"), "{err}");
    assert!(!err.contains("pool timed out"), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
    assert_each_cause_once(&err);
}

/// No `: `-separated part of the error line appears twice.
fn assert_each_cause_once(err: &str) {
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or(err);
    let parts: Vec<&str> = line.split(": ").map(str::trim).collect();
    for (i, p) in parts.iter().enumerate() {
        assert!(
            p.len() < 8 || !parts[i + 1..].contains(p),
            "`{p}` twice in {line}"
        );
    }
}

#[test]
fn a_settings_file_that_is_not_text_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bin.toml"),
        b"[database]\nurl = \"\xff\xfe\"\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["check-config", "--config", "bin.toml"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bin.toml") && err.contains("UTF-8"), "{err}");
    assert_each_cause_once(&err);
}

#[test]
fn check_config_speaks_words_and_checks_the_templates_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["check-config"], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for debug in ["Sqlite(", "Templates {", "Some(", "\"cpor.db\""] {
        assert!(!stdout.contains(debug), "`{debug}` in {stdout}");
    }
    assert!(stdout.contains("database: SQLite file cpor.db"), "{stdout}");
    assert!(
        stdout.contains("does not exist"),
        "the missing default folder is said: {stdout}"
    );
    // A folder the operator named must exist.
    let out = run_in(
        dir.path(),
        &["check-config"],
        &[("CPOR_TEMPLATES_DIR", "no/such/folder")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        err.contains("templates.dir")
            && err.contains("no/such/folder")
            && err.contains("CPOR_TEMPLATES_DIR"),
        "{err}"
    );
}

#[test]
fn every_bad_key_and_type_is_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = check(
        dir.path(),
        "[database]\nmax_connections = \"eight\"\nurll = \"x\"\n[mail]\nfrm = 1\n[htp]\nlisten = 1\n",
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    for want in [
        "database.max_connections",
        "urll",
        "mail.frm",
        "htp",
        "s.toml",
    ] {
        assert!(err.contains(want), "{want} missing: {err}");
    }
}

#[test]
fn a_huge_value_is_not_echoed_in_full() {
    let dir = tempfile::tempdir().unwrap();
    // Just under the file size limit; bigger files are refused whole (next test).
    let huge = "x".repeat(900_000);
    for file in [
        format!("[schedule]\ntime_zone = \"{huge}\"\n"),
        format!("[schedule]\ntime_zone = 7\nbogus = \"{huge}\"\n"),
        format!("[schedule]\ntime_zone = \"{huge}"),
    ] {
        let (code, _, err) = check(dir.path(), &file, &[]);
        assert_eq!(code, Some(2));
        assert!(err.contains("s.toml"), "{}", &err[..err.len().min(500)]);
        assert!(err.len() < 5_000, "{} bytes of error", err.len());
    }
    // An environment variable can hold 128 KiB.
    let big = format!("postgres://h/{}", "y".repeat(120_000));
    let out = run_in(dir.path(), &["check-config"], &[("CPOR_MAIL_FROM", &big)]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("mail.from") && err.len() < 5_000,
        "{} bytes",
        err.len()
    );
}

#[test]
fn an_endless_or_huge_settings_file_is_refused_with_a_limit() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = run_in(dir.path(), &["check-config", "--config", "/dev/zero"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("/dev/zero") && err.contains("limit"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    std::fs::write(dir.path().join("big.toml"), "#".repeat(3 * 1024 * 1024)).unwrap();
    let out = run_in(dir.path(), &["check-config", "--config", "big.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("limit"), "{}", text(&out.stderr));
}

#[test]
fn a_cron_that_never_fires_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = check(dir.path(), "[schedule]\ncron = \"0 0 0 30 2 *\"\n", &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("schedule.cron") && err.contains("never fires"),
        "{err}"
    );
    let (code, _, err) = check(dir.path(), "[schedule]\ncron = \"0 0 0 29 2 *\"\n", &[]);
    assert_eq!(code, Some(0), "leap days do come: {err}");
}

#[test]
fn a_host_name_is_accepted_for_http_listen() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = check(dir.path(), "[http]\nlisten = \"localhost:9464\"\n", &[]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(":9464"), "{out}");
    let (code, _, err) = check(dir.path(), "[http]\nlisten = \"localhost:http\"\n", &[]);
    assert_eq!(code, Some(2));
    assert!(err.contains("http.listen") && err.contains("port"), "{err}");
}

#[test]
fn a_short_consent_key_blames_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["check-config"],
        &[("CPOR_CONSENT_SECRET", "short")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("CPOR_CONSENT_SECRET"), "{err}");
    assert!(!err.contains("consent_secret_file"), "{err}");
    std::fs::write(dir.path().join("key"), "tiny\n").unwrap();
    let (code, _, err) = check(
        dir.path(),
        "[secrets]\nconsent_secret_file = \"key\"\n",
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains("secrets.consent_secret_file") && err.contains("s.toml"),
        "{err}"
    );
}

#[test]
fn tick_help_says_what_no_send_still_does() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["tick", "--help"], &[]);
    let help = text(&out.stdout);
    assert!(!help.contains("without sending anything"), "{help}");
    assert!(
        help.contains("auto-rejections") && help.contains("history"),
        "{help}"
    );
}
