use super::*;

use std::collections::HashMap;

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn load_text(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.toml");
    std::fs::write(&path, text).unwrap();
    load(Some(&path), &env(vars))
}

#[test]
fn defaults_alone_are_valid_and_embedded() {
    let c = load(None, &env(&[])).unwrap();
    assert_eq!(
        c.database.url,
        DatabaseUrl::Sqlite("sqlite://cpor.db".into())
    );
    assert!(c.mail.smtp_url.is_none());
    assert_eq!(c.mail.outbox_dir, PathBuf::from("outbox"));
    assert_eq!(c.schedule_time_zone, chrono_tz::UTC);
    assert!(c.consent_secret_is_demo);
    assert_eq!(c.http_listen.to_string(), "127.0.0.1:9464");
}

#[test]
fn unknown_key_names_key_file_and_line() {
    let err = load_text("[database]\nurl = \"sqlite://x.db\"\nbogus_key = 1\n", &[]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("settings.toml"), "{msg}");
    assert!(msg.contains("bogus_key"), "{msg}");
    assert!(msg.contains("line 3"), "{msg}");
}

#[test]
fn unknown_section_is_refused() {
    let msg = load_text("[databse]\nurl = \"x\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("databse"), "{msg}");
}

#[test]
fn bad_time_zone_names_key_value_and_file() {
    let msg = load_text("[schedule]\ntime_zone = \"Mars/Olympus\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("schedule.time_zone"), "{msg}");
    assert!(msg.contains("Mars/Olympus"), "{msg}");
    assert!(msg.contains("settings.toml"), "{msg}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let msg = load_text(
        "[schedule]\ntime_zone = \"Nowhere\"\ncron = \"* * *\"\n[http]\nlisten = \"nope\"\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    for key in ["schedule.time_zone", "schedule.cron", "http.listen"] {
        assert!(msg.contains(key), "{key} missing in {msg}");
    }
}

#[test]
fn environment_overrides_file_and_is_named_in_errors() {
    let c = load_text(
        "[database]\nurl = \"sqlite://file.db\"\n",
        &[("CPOR_DATABASE_URL", "postgres://u:pw@localhost:5432/cpor")],
    )
    .unwrap();
    assert!(matches!(c.database.url, DatabaseUrl::Postgres(_)));

    let msg = load_text("", &[("CPOR_SMTP_URL", "http://mail")])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("mail.smtp_url"), "{msg}");
    assert!(msg.contains("CPOR_SMTP_URL"), "{msg}");
}

#[test]
fn secrets_never_show_in_debug_or_errors() {
    let c = load_text(
        "",
        &[
            ("CPOR_DATABASE_URL", "postgres://u:hunter2pw@localhost/cpor"),
            ("CPOR_SMTP_URL", "smtp://user:smtp-pw-9@localhost:2525"),
            ("CPOR_CONSENT_SECRET", "a-very-long-consent-secret-value"),
        ],
    )
    .unwrap();
    let shown = format!("{c:?}");
    for secret in ["hunter2pw", "smtp-pw-9", "a-very-long-consent-secret-value"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    assert!(!c.consent_secret_is_demo);

    let msg = load_text("", &[("CPOR_DATABASE_URL", "mysql://u:hunter2pw@h/db")])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("database.url") && !msg.contains("hunter2pw"),
        "{msg}"
    );
}

#[test]
fn bad_mail_from_and_zero_values_are_refused() {
    let msg = load_text(
        "[mail]\nfrom = \"not an address\"\n[database]\nmax_connections = 0\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("mail.from"), "{msg}");
    assert!(msg.contains("database.max_connections"), "{msg}");
}
