//! `cpor-worker check-config`: load and validate every setting; report all problems.

use std::path::Path;

use anyhow::Context;

use crate::config::{self, Config};

/// Loads settings for a command (file given or none, then the environment) and starts logging.
pub fn load_config(path: Option<&Path>) -> anyhow::Result<Config> {
    let config = config::load_from_process_env(path).context("settings")?;
    crate::telemetry::init(config.log_format, &config.log_filter);
    Ok(config)
}

/// Logs a warning when decline links would be signed with the built-in demo key.
pub fn warn_if_demo_secret(config: &Config) {
    if config.consent_secret_is_demo {
        tracing::warn!("{DEMO_SECRET_WARNING}");
    }
}

/// Said wherever the built-in demo key would sign decline links.
pub const DEMO_SECRET_WARNING: &str = "consent secret: the built-in demo key is in use, which is UNSAFE \
outside a demo: set CPOR_CONSENT_SECRET or secrets.consent_secret_file";

/// Runs `check-config`: prints what the worker would use, in words, or fails naming each problem.
pub fn run(path: Option<&Path>) -> anyhow::Result<()> {
    let config = load_config(path)?;
    println!("settings OK (read: {})", config.sources.join(", "));
    println!("database: {}", config.database.url);
    let templates =
        crate::mail::Templates::load(&config.templates_dir).context("email templates")?;
    println!("{}", describe_templates(&config, &templates));
    match &config.mail.smtp_url {
        Some(_) => println!("mail: SMTP (URL from settings, not shown)"),
        None => println!("mail: .eml files in {}", config.mail.outbox_dir.display()),
    }
    println!(
        "schedule: `{}` in {}; HTTP on {}",
        config.schedule_cron, config.schedule_time_zone, config.http_listen
    );
    if config.consent_secret_is_demo {
        println!("{DEMO_SECRET_WARNING}");
    }
    Ok(())
}

/// `templates: …`: the languages, and whether the folder's files are laid over the built-in ones.
fn describe_templates(config: &Config, templates: &crate::mail::Templates) -> String {
    let langs = templates.languages().collect::<Vec<_>>().join(", ");
    let dir = config.templates_dir.display();
    if config.templates_dir.is_dir() {
        format!("templates OK: {langs} (built in, with the files in folder {dir} over them)")
    } else {
        format!(
            "templates OK: {langs} (built in; folder {dir} does not exist, so nothing overrides them)"
        )
    }
}
