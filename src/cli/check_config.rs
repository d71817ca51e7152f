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

/// Runs `check-config`.
pub fn run(path: Option<&Path>) -> anyhow::Result<()> {
    let config = load_config(path)?;
    println!("settings OK (read: {})", config.sources.join(", "));
    println!("database: {:?}", config.database.url);
    let templates =
        crate::mail::Templates::load(&config.templates_dir).context("email templates")?;
    println!("templates OK: {:?}", templates);
    match &config.mail.smtp_url {
        Some(_) => println!("mail: SMTP (URL from settings, not shown)"),
        None => println!("mail: .eml files in {}", config.mail.outbox_dir.display()),
    }
    if config.consent_secret_is_demo {
        println!("{DEMO_SECRET_WARNING}");
    }
    Ok(())
}
