//! `cpor-worker run`: the daemon.

use std::path::Path;

use anyhow::Context;

use crate::daemon::{Daemon, Schedule, shutdown_signal};
use crate::store::Store;

/// Runs `run`.
pub async fn run(config_path: Option<&Path>, args: super::RunArgs) -> anyhow::Result<()> {
    let config = super::load_config(config_path)?;
    let clock = crate::clock::system();
    super::warn_if_demo_secret(&config);
    let schedule = Schedule::parse(&config.schedule_cron, config.schedule_time_zone)
        .context("settings: schedule.cron")?;
    let engine = super::tick::engine(&config)?;
    let mailer = super::tick::mailer(&config)?;
    let migrate = config.database.migrate_on_start && !args.no_migrate;
    let store = super::store::open(&config, migrate).await?;
    if args.demo {
        let existing = store.count_claims().await.context("counting claims")?;
        if existing == 0 {
            let loaded = crate::demo::load_free(&store, clock.now())
                .await
                .context("writing the demo claims")?;
            tracing::info!(
                "--demo: loaded {} demo claims into the empty database",
                loaded.inserted.len()
            );
        } else {
            tracing::info!(
                "--demo: loaded nothing, the database already has {existing} claim(s) (demo claims go only into an empty one)"
            );
        }
    }
    let metrics = crate::telemetry::install_metrics()?;
    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding http.listen {}", config.http_listen))?;
    tracing::info!(
        http = %listener.local_addr()?,
        database = %config.database.url,
        mail = %mailer.describe(),
        cron = %config.schedule_cron,
        time_zone = %config.schedule_time_zone,
        "cpor-worker running"
    );
    let stop = engine.stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stop signal received: finishing the batch in hand");
        stop.cancel();
    });
    if config.operator_token.is_none() && !config.http_listen.ip().is_loopback() {
        tracing::warn!(
            http = %config.http_listen,
            "the console listens on a non-loopback address and no operator token is set: \
             its pages (claims, emails, history) are readable by anyone who reaches it; \
             repairs stay off until http.operator_token_file or CPOR_OPERATOR_TOKEN is set"
        );
    }
    let daemon = Daemon {
        engine,
        store,
        mailer: std::sync::Arc::new(mailer),
        schedule,
        metrics,
        clock,
        operator_token: config.operator_token.clone(),
        passes: Default::default(),
    };
    if !args.no_initial_pass {
        daemon.one_pass().await;
    }
    daemon.run(listener).await?;
    Ok(())
}
