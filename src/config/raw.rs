//! `RawConfig`: the TOML file's shape, every key optional, unknown keys refused; layers merge key by key.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Where the value of a key came from: a file or an environment variable.
pub type Origins = BTreeMap<String, String>;

/// Declares a section struct of optional keys and its key-by-key merge.
macro_rules! section {
    ($(#[$meta:meta])* $name:ident, $section:literal { $($key:ident: $ty:ty),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Default, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(
                #[allow(missing_docs)]
                pub $key: Option<$ty>,
            )+
        }

        impl $name {
            /// Lays `other` over `self`, recording `origin` for each key it sets.
            pub fn merge(&mut self, other: $name, origin: &str, origins: &mut Origins) {
                $(
                    if let Some(v) = other.$key {
                        self.$key = Some(v);
                        origins.insert(concat!($section, ".", stringify!($key)).to_owned(), origin.to_owned());
                    }
                )+
            }
        }
    };
}

section!(
    /// `[database]`
    RawDatabase, "database" { url: String, max_connections: u32, migrate_on_start: bool }
);
section!(
    /// `[mail]`
    RawMail, "mail" { from: String, smtp_url: String, smtp_pool_size: u32, smtp_ca_file: String, outbox_dir: String, ops_alert_to: String }
);
section!(
    /// `[links]`
    RawLinks, "links" { dashboard_url: String, decline_url: String }
);
section!(
    /// `[secrets]`
    RawSecrets, "secrets" { consent_secret_file: String }
);
section!(
    /// `[schedule]`
    RawSchedule, "schedule" { cron: String, time_zone: String }
);
section!(
    /// `[timers]`
    RawTimers, "timers" { reminder_lead_business_days: u32, batch_size: u32, max_first_sight_age: String }
);
section!(
    /// `[calendars]`
    RawCalendars, "calendars" { dir: String, disabled_groups: Vec<String> }
);
section!(
    /// `[calendar]`: how calendar changes apply to deadlines already running
    RawCalendar, "calendar" { never_shorten_communicated: bool }
);
section!(
    /// `[templates]`
    RawTemplates, "templates" { dir: String }
);
section!(
    /// `[http]`
    RawHttp, "http" { listen: String, operator_token_file: String }
);
section!(
    /// `[log]`
    RawLog, "log" { format: String, filter: String }
);

/// One settings file as written, before validation.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawConfig {
    #[serde(default)]
    pub database: RawDatabase,
    #[serde(default)]
    pub mail: RawMail,
    #[serde(default)]
    pub links: RawLinks,
    #[serde(default)]
    pub secrets: RawSecrets,
    #[serde(default)]
    pub schedule: RawSchedule,
    #[serde(default)]
    pub timers: RawTimers,
    #[serde(default)]
    pub calendars: RawCalendars,
    #[serde(default)]
    pub calendar: RawCalendar,
    #[serde(default)]
    pub templates: RawTemplates,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub log: RawLog,
}

impl RawConfig {
    /// Lays every key `other` sets over `self`.
    pub fn merge(&mut self, other: RawConfig, origin: &str, origins: &mut Origins) {
        self.database.merge(other.database, origin, origins);
        self.mail.merge(other.mail, origin, origins);
        self.links.merge(other.links, origin, origins);
        self.secrets.merge(other.secrets, origin, origins);
        self.schedule.merge(other.schedule, origin, origins);
        self.timers.merge(other.timers, origin, origins);
        self.calendars.merge(other.calendars, origin, origins);
        self.calendar.merge(other.calendar, origin, origins);
        self.templates.merge(other.templates, origin, origins);
        self.http.merge(other.http, origin, origins);
        self.log.merge(other.log, origin, origins);
    }

    /// Applies the environment overrides of SPEC §6; `get` reads one variable.
    pub fn apply_env(&mut self, get: &dyn Fn(&str) -> Option<String>, origins: &mut Origins) {
        let mut set = |var: &str, key: &str, slot: &mut Option<String>| {
            if let Some(v) = get(var) {
                *slot = Some(v);
                origins.insert(key.to_owned(), format!("environment variable {var}"));
            }
        };
        set("CPOR_DATABASE_URL", "database.url", &mut self.database.url);
        set("CPOR_SMTP_URL", "mail.smtp_url", &mut self.mail.smtp_url);
        set(
            "CPOR_SMTP_CA_FILE",
            "mail.smtp_ca_file",
            &mut self.mail.smtp_ca_file,
        );
        set("CPOR_MAIL_FROM", "mail.from", &mut self.mail.from);
        set("CPOR_LOG_FORMAT", "log.format", &mut self.log.format);
        set(
            "CPOR_OUTBOX_DIR",
            "mail.outbox_dir",
            &mut self.mail.outbox_dir,
        );
        set("CPOR_HTTP_LISTEN", "http.listen", &mut self.http.listen);
        set(
            "CPOR_CALENDARS_DIR",
            "calendars.dir",
            &mut self.calendars.dir,
        );
        set(
            "CPOR_TEMPLATES_DIR",
            "templates.dir",
            &mut self.templates.dir,
        );
        set("RUST_LOG", "log.filter", &mut self.log.filter);
    }
}
