//! The binary as a new user runs it: settings, migrate, demo, help, exit statuses.

use cpor_worker::store::{AnyStore, SqliteStore, Store};

use crate::harness::{self, Cmd, run_in, text};

#[test]
fn version_names_the_time_zone_rules_compiled_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["--version"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let version = text(&out.stdout);
    let want = format!(
        "cpor-worker {} (time-zone rules: IANA tzdata {}, compiled in)",
        env!("CARGO_PKG_VERSION"),
        chrono_tz::IANA_TZDB_VERSION
    );
    assert_eq!(version.trim(), want);
}

#[test]
fn check_config_accepts_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["check-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("settings OK"));
    assert!(
        text(&out.stdout).contains("UNSAFE"),
        "demo consent key must be flagged"
    );
}

#[test]
fn check_config_names_an_unknown_key_and_its_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[mail]\nfrom = \"a@b.example\"\nfrm = 1\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["check-config", "--config", "bad.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("frm") && err.contains("line 3"),
        "{err}"
    );
}

#[test]
fn check_config_names_an_unknown_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[schedule]\ntime_zone = \"Mars/Olympus\"\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["check-config", "--config", "bad.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("schedule.time_zone")
            && err.contains("Mars/Olympus")
            && err.contains("bad.toml"),
        "{err}"
    );
}

#[test]
fn check_config_never_prints_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["check-config"],
        &[
            (
                "CPOR_SMTP_URL",
                "smtp://mailer:s3cret-smtp-pw@127.0.0.1:2525",
            ),
            ("CPOR_CONSENT_SECRET", "s3cret-consent-key-0123456789"),
            (
                "CPOR_DATABASE_URL",
                "postgres://u:s3cret-db-pw@127.0.0.1:1/x",
            ),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!all.contains("s3cret"), "{all}");
}

#[test]
fn a_missing_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["check-config", "--config", "nowhere.toml"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nowhere.toml"));
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in [
        "run",
        "tick",
        "dry-run",
        "explain",
        "deadline",
        "calendar",
        "migrate",
        "check-config",
        "send-test-email",
        "demo",
    ] {
        let out = run_in(dir.path(), &[cmd, "--help"], &[]);
        assert_eq!(out.status.code(), Some(0), "{cmd} --help");
        assert!(text(&out.stdout).contains("Usage: cpor-worker"), "{cmd}");
    }
}

#[test]
fn a_bad_time_is_exit_2_with_the_flag_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = Cmd::new(dir.path()).fails(&["demo", "--at", "yesterday"], 2);
    assert!(err.contains("--at `yesterday`"), "{err}");
}

#[tokio::test]
async fn demo_fills_the_default_sqlite_file_and_a_second_run_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cpor = Cmd::new(dir.path());
    cpor.ok(&["demo"]);
    // The table now has claims: refused without --force, and with it every id is taken.
    cpor.fails(&["demo"], 2);
    assert!(
        cpor.ok(&["demo", "--force"])
            .contains("loaded 0 demo claims")
    );
    let url = format!("sqlite://{}", dir.path().join("cpor.db").display());
    let store = AnyStore::Sqlite(SqliteStore::connect(&url, 1).await.unwrap());
    assert!(store.migrations_current().await.unwrap());
    let claims = harness::claims(&store).await;
    assert_eq!(claims.len(), 17);
    assert!(claims.iter().all(Result::is_ok));
}

#[tokio::test]
async fn migrate_and_demo_work_on_postgres() {
    let Some(db) = harness::postgres_unmigrated("migrate_and_demo_work_on_postgres").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = [("CPOR_DATABASE_URL", db.url.as_str())];
    let out = run_in(dir.path(), &["migrate"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(db.store.migrations_current().await.unwrap());
    let out = run_in(dir.path(), &["demo"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(db.store.count_claims().await.unwrap(), 17);
    assert!(!dir.path().join("cpor.db").exists());
}
