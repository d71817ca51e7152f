//! `cpor-worker dry-run`: what a pass would do at TIME and within the horizon after it. Reads
//! only: the store is opened without migrating, and nothing is written.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::Context;

use crate::config::{Config, DatabaseUrl};
use crate::lifecycle::ClaimStatus;
use crate::report::scan::ScanInput;
use crate::report::{Filter, Format, Window, parse_horizon, scan};
use crate::store::{AnyStore, Store};

/// The horizon when `--horizon` is not given.
const DEFAULT_HORIZON: &str = "7d";

/// Opens the configured store for reading: never creates an SQLite file, never migrates, and
/// refuses a schema whose migrations are not current.
pub async fn open_read_only(config: &Config) -> anyhow::Result<AnyStore> {
    if let DatabaseUrl::Sqlite(url) = &config.database.url {
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or(path);
        if !path.is_empty() && path != ":memory:" && !Path::new(path).exists() {
            anyhow::bail!(
                "database file {path} does not exist (reports never create one): run `cpor-worker migrate` first"
            );
        }
    }
    let store = super::store::open(config, false).await?;
    if !store
        .migrations_current()
        .await
        .context("checking the schema")?
    {
        anyhow::bail!(
            "the database schema is not current (migrations pending): run `cpor-worker migrate` first; reports never change the database"
        );
    }
    Ok(store)
}

/// Runs `dry-run`.
pub async fn run(config_path: Option<&Path>, args: super::DryRunArgs) -> anyhow::Result<()> {
    let config = super::load_config(config_path)?;
    let at = match &args.at {
        Some(t) => super::parse_time("--at", t)?,
        None => crate::clock::system().now(),
    };
    let horizon_text = args.horizon.as_deref().unwrap_or(DEFAULT_HORIZON);
    let horizon = parse_horizon(horizon_text).map_err(|e| anyhow::anyhow!("--horizon: {e}"))?;
    let format: Format = args
        .format
        .parse()
        .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    let filter = Filter {
        status: args
            .status
            .as_deref()
            .map(str::parse::<ClaimStatus>)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--status: {e}"))?,
        country: args
            .country
            .as_deref()
            .map(crate::claim::parse_country)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--country: {e}"))?,
    };
    let engine = super::tick::engine(&config)?;
    let store = open_read_only(&config).await?;
    let input = ScanInput {
        calendars: &engine.calendars,
        settings: engine.settings,
        window: Window {
            at,
            until: at + horizon,
        },
        horizon: horizon_text,
        filter: &filter,
    };
    let bar = if matches!(format, Format::Table | Format::Html) && std::io::stderr().is_terminal() {
        let total = store.count_claims().await.context("counting claims")?;
        let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(0));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bar:40} {pos}/{len} claims ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let stdout = std::io::stdout();
    let out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut sink = format.sink(out).context("preparing the report")?;
    let progress = |n: u64| {
        if let Some(b) = &bar {
            b.set_position(n);
        }
    };
    let result = scan(&store, &input, sink.as_mut(), &progress).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    result.context("writing the report")?;
    drop(sink);
    std::io::stdout().flush().ok();
    Ok(())
}
