//! `cpor-worker tick`: one pass as if the time were TIME.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::calendar::Calendars;
use crate::config::Config;
use crate::mail::{Mailer, MailerSettings, Templates, transport_from_config};
use crate::timers::TimerSettings;
use crate::worker::{Engine, TickOutcome};

/// Loads the calendars and timer settings a pass needs.
pub fn engine(config: &Config) -> anyhow::Result<Engine> {
    let calendars = Calendars::load(&config.calendars_dir, &config.calendars_disabled_groups)
        .context("loading holiday calendars")?;
    Ok(Engine {
        calendars: Arc::new(calendars),
        settings: TimerSettings {
            reminder_lead_business_days: config.reminder_lead_business_days,
            max_first_sight_age: config.max_first_sight_age,
            never_shorten_communicated: config.never_shorten_communicated,
        },
        batch_size: i64::from(config.batch_size),
        template_version: Some(crate::mail::template_set_version(&config.templates_dir)),
        stop: CancellationToken::new(),
    })
}

/// What the mailer takes of the settings.
pub fn mailer_settings(config: &Config) -> MailerSettings {
    MailerSettings {
        from: config.mail.from.clone(),
        dashboard_url: config.dashboard_url.clone(),
        decline_url: config.decline_url.clone(),
        secret: config.consent_secret.clone(),
        ops_to: config.mail.ops_alert_to.clone(),
    }
}

/// Loads the templates and opens the configured transport (SMTP, or the outbox folder).
pub fn mailer(config: &Config) -> anyhow::Result<Mailer> {
    let templates = Templates::load(&config.templates_dir).context("loading email templates")?;
    let transport = transport_from_config(&config.mail).context("setting up email delivery")?;
    Ok(Mailer::new(
        mailer_settings(config),
        Arc::new(templates),
        Arc::from(transport),
        config.mail.smtp_pool_size as usize,
    ))
}

/// Runs `tick`.
pub async fn run(config_path: Option<&Path>, args: super::TickArgs) -> anyhow::Result<()> {
    let config = super::load_config(config_path)?;
    super::warn_if_demo_secret(&config);
    let now = match &args.at {
        Some(t) => super::parse_time("--at", t)?,
        None => crate::clock::system().now(),
    };
    let engine = engine(&config)?;
    let migrate = config.database.migrate_on_start && !args.no_migrate;
    let store = super::store::open(&config, migrate).await?;
    let mailer = if args.no_send {
        None
    } else {
        Some(mailer(&config)?)
    };
    let outcome = engine
        .pass(&store, mailer.as_ref(), now)
        .await
        .context("running the pass")?;
    print_outcome(&outcome, args.json)
}

/// Prints what a pass did: JSON, or a few lines of text.
pub fn print_outcome(outcome: &TickOutcome, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcome)?);
        return Ok(());
    }
    println!(
        "pass at {}: {} timer recomputations, {} timer runs acted on, {} emails queued, {} claims changed meanwhile, {} claims skipped",
        outcome.at.to_rfc3339(),
        outcome.synced,
        outcome.fired.values().sum::<usize>(),
        outcome.emails_queued,
        outcome.changed_meanwhile,
        outcome.problems.len()
    );
    let d = &outcome.delivery;
    println!(
        "delivery: {} sent, {} to retry later, {} dead-lettered",
        d.sent, d.retried, d.dead
    );
    if d.consent_sent > 0 {
        println!(
            "  ({} claim(s) whose consent email went out were recomputed again in this pass: \
             their consent window starts at delivery)",
            d.consent_sent
        );
    }
    for (what, n) in &outcome.fired {
        println!("  {n:>6}  {what}");
    }
    for p in &outcome.problems {
        println!("  skipped {}: {}", p.claim_id, p.problem);
    }
    Ok(())
}
