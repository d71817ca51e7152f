//! Settings: the built-in `config/default.toml`, an optional file over it, then the environment;
//! validated all at once into a typed [`Config`], every problem naming its key and source.

mod checks;
mod layer;
mod raw;
mod secret;
mod urls;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use url::Url;

pub use layer::{MAX_FILE_BYTES, clip, read_limited};
pub use raw::{Origins, RawConfig};
pub use secret::Secret;
pub use urls::{redact_url, split_mailbox};

use checks::{Problems, consent_secret, operator_token, resolve_listen};
use layer::parse_layer;
use urls::{check_mailbox, parse_database_url, parse_smtp_url};

/// The defaults, compiled in so the binary runs from any folder.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// The key that signs decline links when none is configured; never for production.
pub const DEMO_CONSENT_SECRET: &str = "cpor-demo-consent-secret-do-not-use-in-production";

/// Settings that failed to load or validate; each line names the key and where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A settings file could not be read.
    #[error("cannot read settings file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A settings file is not valid TOML or has an unknown key or a value of the wrong type.
    #[error("settings file {origin}: {message}")]
    Parse {
        /// The file.
        origin: String,
        /// The parser's message, with line, column and key.
        message: String,
    },
    /// One or more values are invalid.
    #[error("invalid settings:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
}

/// Which database the worker uses.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file (embedded default).
    Sqlite(String),
    /// A PostgreSQL server (production); the URL may carry a password.
    Postgres(Secret<String>),
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(u) => write!(f, "Sqlite({u:?})"),
            Self::Postgres(u) => write!(f, "Postgres({})", redact_url(u.expose())),
        }
    }
}

impl fmt::Display for DatabaseUrl {
    /// `SQLite file PATH` or `PostgreSQL URL` with any password hidden, for people.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(u) => write!(
                f,
                "SQLite file {}",
                u.trim_start_matches("sqlite://")
                    .trim_start_matches("sqlite:")
            ),
            Self::Postgres(u) => write!(f, "PostgreSQL {}", redact_url(u.expose())),
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[database]`
#[derive(Clone, Debug)]
pub struct DatabaseConfig {
    /// Where the database is.
    pub url: DatabaseUrl,
    /// Pool size.
    pub max_connections: u32,
    /// Apply migrations when `run`/`tick` start.
    pub migrate_on_start: bool,
}

/// `[mail]`
#[derive(Clone, Debug)]
pub struct MailConfig {
    /// Sender of every email.
    pub from: String,
    /// SMTP server, or `None` for the outbox folder.
    pub smtp_url: Option<Secret<Url>>,
    /// SMTP connections kept open (and emails sent at once).
    pub smtp_pool_size: u32,
    /// Extra CA certificate(s) (PEM) trusted for the SMTP server's TLS.
    pub smtp_ca_file: Option<PathBuf>,
    /// Folder for `.eml` files.
    pub outbox_dir: PathBuf,
    /// Recipient of SLA alert digests.
    pub ops_alert_to: Option<String>,
}

/// Validated, typed settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// `[database]`
    pub database: DatabaseConfig,
    /// `[mail]`
    pub mail: MailConfig,
    /// Where partners see their claims.
    pub dashboard_url: Url,
    /// Page a customer opens to decline.
    pub decline_url: Url,
    /// Key that signs decline links.
    pub consent_secret: Secret<String>,
    /// True when `consent_secret` is the unsafe built-in demo key.
    pub consent_secret_is_demo: bool,
    /// Cron expression of `run` (with seconds).
    pub schedule_cron: String,
    /// Time zone the cron fields are read in.
    pub schedule_time_zone: Tz,
    /// Business days before the deadline's last day that the reminder is due.
    pub reminder_lead_business_days: u32,
    /// Claims per transaction batch.
    pub batch_size: u32,
    /// On first sight of a claim, obligations due longer ago than this are held, not acted on.
    pub max_first_sight_age: chrono::Duration,
    /// Folder of extra holiday calendars.
    pub calendars_dir: PathBuf,
    /// Holiday rule groups switched off, as `CALENDAR/GROUP` (e.g. `SE/eves`).
    pub calendars_disabled_groups: Vec<String>,
    /// `calendar.never_shorten_communicated`: a last day named in a sent email never moves
    /// earlier when a calendar changes (default true).
    pub never_shorten_communicated: bool,
    /// Folder of email templates.
    pub templates_dir: PathBuf,
    /// Address of the HTTP endpoints.
    pub http_listen: SocketAddr,
    /// The token the console's repairs need (`CPOR_OPERATOR_TOKEN`, else
    /// `http.operator_token_file`); `None`: repairs are off.
    pub operator_token: Option<Secret<String>>,
    /// Log line format.
    pub log_format: LogFormat,
    /// tracing filter directives.
    pub log_filter: String,
    /// The files read, in order ("built-in defaults" first).
    pub sources: Vec<String>,
}

/// Loads settings: defaults, then `path` if given, then the environment as read by `env`.
pub fn load(
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut origins = Origins::new();
    let defaults = parse_layer(DEFAULT_TOML, "built-in defaults (config/default.toml)")?;
    let mut raw = RawConfig::default();
    raw.merge(defaults, "built-in defaults", &mut origins);
    let mut sources = vec!["built-in defaults".to_owned()];
    if let Some(path) = path {
        let text = read_limited(path).map_err(|reason| ConfigError::Read {
            path: path.to_owned(),
            reason,
        })?;
        let origin = path.display().to_string();
        let layer = parse_layer(&text, &origin)?;
        raw.merge(layer, &format!("file {origin}"), &mut origins);
        sources.push(origin);
    }
    raw.apply_env(env, &mut origins);
    let mut config = validate(raw, &origins, env)?;
    config.sources = sources;
    Ok(config)
}

/// Loads settings from the process environment.
pub fn load_from_process_env(path: Option<&Path>) -> Result<Config, ConfigError> {
    load(path, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

fn validate(
    raw: RawConfig,
    origins: &Origins,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut p = Problems {
        origins,
        list: Vec::new(),
    };

    let database_url = p.required("database.url", &raw.database.url).and_then(|u| {
        parse_database_url(&u)
            .map_err(|e| p.add("database.url", e))
            .ok()
    });
    let max_connections = p.required("database.max_connections", &raw.database.max_connections);
    if max_connections == Some(0) {
        p.add("database.max_connections", "must be at least 1");
    }
    let migrate_on_start = raw.database.migrate_on_start.unwrap_or(true);

    let from = p.required("mail.from", &raw.mail.from).unwrap_or_default();
    if let Err(e) = check_mailbox(&from) {
        p.add("mail.from", e);
    }
    let smtp_url = match raw.mail.smtp_url.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(u) => match parse_smtp_url(u) {
            Ok(url) => Some(Secret::new(url)),
            Err(e) => {
                p.add("mail.smtp_url", e);
                None
            }
        },
    };
    let smtp_pool_size = p
        .required("mail.smtp_pool_size", &raw.mail.smtp_pool_size)
        .unwrap_or(1);
    if !(1..=256).contains(&smtp_pool_size) {
        p.add("mail.smtp_pool_size", "must be 1–256");
    }
    let smtp_ca_file = raw
        .mail
        .smtp_ca_file
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(PathBuf::from);
    if let Some(f) = &smtp_ca_file
        && !f.is_file()
    {
        p.add(
            "mail.smtp_ca_file",
            format!("`{}` is not a readable file", f.display()),
        );
    }
    let outbox_dir = PathBuf::from(
        p.required("mail.outbox_dir", &raw.mail.outbox_dir)
            .unwrap_or_default(),
    );
    let ops_alert_to = raw.mail.ops_alert_to.filter(|s| !s.trim().is_empty());
    if let Some(addr) = &ops_alert_to
        && let Err(e) = check_mailbox(addr)
    {
        p.add("mail.ops_alert_to", e);
    }

    let mut url_key = |key: &str, v: &Option<String>| {
        p.required(key, v).and_then(|u| match Url::parse(&u) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            Ok(_) => {
                p.add(key, format!("`{u}` must be an http or https URL"));
                None
            }
            Err(e) => {
                p.add(key, format!("`{u}` is not a URL: {e}"));
                None
            }
        })
    };
    let dashboard_url = url_key("links.dashboard_url", &raw.links.dashboard_url);
    let decline_url = url_key("links.decline_url", &raw.links.decline_url);

    let (consent_secret, consent_secret_is_demo) =
        consent_secret(&mut p, env, raw.secrets.consent_secret_file.as_deref());
    let operator_token = operator_token(&mut p, env, raw.http.operator_token_file.as_deref());
    let cron = p
        .required("schedule.cron", &raw.schedule.cron)
        .unwrap_or_default();
    if cron.split_whitespace().count() != 6 {
        p.add(
            "schedule.cron",
            format!("`{cron}` must have 6 fields: sec min hour day month weekday"),
        );
    } else {
        match crate::schedule::Schedule::parse(&cron, chrono_tz::UTC) {
            Err(e) => p.add("schedule.cron", e),
            Ok(s) if !s.ever_fires() => p.add(
                "schedule.cron",
                format!("`{cron}` never fires (no such date), so no pass would ever run"),
            ),
            Ok(_) => {}
        }
    }
    let schedule_time_zone = p
        .required("schedule.time_zone", &raw.schedule.time_zone)
        .and_then(|tz| {
            parse_time_zone(&tz)
                .map_err(|e| p.add("schedule.time_zone", e))
                .ok()
        });

    let reminder_lead = p
        .required(
            "timers.reminder_lead_business_days",
            &raw.timers.reminder_lead_business_days,
        )
        .unwrap_or_default();
    if reminder_lead > 4 {
        p.add(
            "timers.reminder_lead_business_days",
            "must be 0–4: the response window is 5 business days",
        );
    }
    let max_first_sight_age = p
        .required(
            "timers.max_first_sight_age",
            &raw.timers.max_first_sight_age,
        )
        .and_then(|s| {
            parse_age(&s)
                .map_err(|e| p.add("timers.max_first_sight_age", e))
                .ok()
        })
        .unwrap_or_default();
    let batch_size = p
        .required("timers.batch_size", &raw.timers.batch_size)
        .unwrap_or(1);
    if batch_size == 0 {
        p.add("timers.batch_size", "must be at least 1");
    }

    let calendars_dir = PathBuf::from(
        p.required("calendars.dir", &raw.calendars.dir)
            .unwrap_or_default(),
    );
    let templates_dir = PathBuf::from(
        p.required("templates.dir", &raw.templates.dir)
            .unwrap_or_default(),
    );
    // A folder the operator named must exist; the defaults' folders are optional (built-ins).
    for (key, dir) in [
        ("calendars.dir", &calendars_dir),
        ("templates.dir", &templates_dir),
    ] {
        let named = origins.get(key).is_some_and(|o| o != "built-in defaults");
        if named && !dir.is_dir() {
            p.add(key, format!("`{}` is not a folder", dir.display()));
        }
    }
    let http_listen = p
        .required("http.listen", &raw.http.listen)
        .and_then(|a| resolve_listen(&a).map_err(|e| p.add("http.listen", e)).ok());
    let log_format = match raw.log.format.as_deref() {
        Some("text") | None => Some(LogFormat::Text),
        Some("json") => Some(LogFormat::Json),
        Some(other) => {
            p.add("log.format", format!("`{other}` must be `text` or `json`"));
            None
        }
    };
    let log_filter = raw.log.filter.unwrap_or_else(|| "info".to_owned());

    if !p.list.is_empty() {
        return Err(ConfigError::Invalid(p.list));
    }
    match (
        database_url,
        max_connections,
        dashboard_url,
        decline_url,
        consent_secret,
        schedule_time_zone,
        http_listen,
        log_format,
    ) {
        (
            Some(url),
            Some(max_connections),
            Some(dashboard_url),
            Some(decline_url),
            Some(consent_secret),
            Some(schedule_time_zone),
            Some(http_listen),
            Some(log_format),
        ) => Ok(Config {
            database: DatabaseConfig {
                url,
                max_connections,
                migrate_on_start,
            },
            mail: MailConfig {
                from,
                smtp_url,
                smtp_pool_size,
                smtp_ca_file,
                outbox_dir,
                ops_alert_to,
            },
            dashboard_url,
            decline_url,
            consent_secret: Secret::new(consent_secret),
            consent_secret_is_demo,
            schedule_cron: cron,
            schedule_time_zone,
            reminder_lead_business_days: reminder_lead,
            batch_size,
            max_first_sight_age,
            calendars_dir,
            calendars_disabled_groups: raw.calendars.disabled_groups.unwrap_or_default(),
            never_shorten_communicated: raw.calendar.never_shorten_communicated.unwrap_or(true),
            templates_dir,
            http_listen,
            operator_token: operator_token.map(Secret::new),
            log_format,
            log_filter,
            sources: Vec::new(),
        }),
        _ => Err(ConfigError::Invalid(vec![
            "  settings incomplete (a required value failed to parse)".to_owned(),
        ])),
    }
}

pub use crate::claim::parse_time_zone;

/// Parses an age in whole days or hours: `14d`, `36h`.
fn parse_age(s: &str) -> Result<chrono::Duration, String> {
    let t = s.trim();
    let (n, unit) = t.split_at(t.len() - t.chars().last().map_or(0, char::len_utf8));
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| (0..=36_500).contains(n))
        .ok_or_else(|| format!("`{s}` is not an age such as `14d` or `36h`"))?;
    match unit {
        "d" => Ok(chrono::Duration::days(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        _ => Err(format!("`{s}` is not an age such as `14d` or `36h`")),
    }
}

#[cfg(test)]
mod tests;
