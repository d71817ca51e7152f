//! The command line of SPEC §6: one `Cli`, one `Command` enum, one dispatch.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

mod calendar;
mod calendar_diff;
mod check_config;
mod deadline;
mod demo;
mod dry_run;
mod explain;
mod migrate;
mod repair;
mod run;
mod send_test_email;
mod store;
mod tick;
pub use tick::mailer_settings;
mod verify_token;

pub use check_config::{load_config, warn_if_demo_secret};

/// An error and its causes as one line, `outer: inner: …`, each cause said once: a cause whose
/// text the previous part already contains (a wrapper that prints its source) is left out.
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || parts.iter().any(|p| p.contains(text)) {
            continue;
        }
        parts.push(text.to_owned());
    }
    parts.join(": ")
}

/// Parses an RFC 3339 instant given for `flag`, saying which flag was wrong.
pub fn parse_time(flag: &str, value: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| {
            anyhow::anyhow!(
                "{flag} `{value}` is not an RFC 3339 time (e.g. 2026-12-23T15:00:00+01:00): {e}"
            )
        })
}

/// Keeps the clock for CPOR customer-association claims.
#[derive(Debug, Parser)]
#[command(
    name = "cpor-worker",
    version,
    long_version = long_version(),
    about,
    long_about = None
)]
pub struct Cli {
    /// Settings file (TOML) laid over the built-in defaults; environment variables override both.
    #[arg(long, global = true, value_name = "FILE", env = "CPOR_CONFIG")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--version`: the package version and the time-zone rules compiled in, which decide local
/// dates and midnights (a host's newer tzdata can disagree where a zone changed its rules).
fn long_version() -> &'static str {
    static TEXT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "{} (time-zone rules: IANA tzdata {}, compiled in)",
            env!("CARGO_PKG_VERSION"),
            chrono_tz::IANA_TZDB_VERSION
        )
    });
    &TEXT
}

/// One subcommand per SPEC §6 row.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The daemon: scheduled ticks, outbox delivery, HTTP health/readiness/metrics.
    Run(RunArgs),
    /// One pass as if the time were TIME: fire what is due, then deliver the outbox.
    Tick(TickArgs),
    /// What would fire at TIME and in the horizon after it; writes nothing.
    DryRun(DryRunArgs),
    /// One claim's timers, each deadline with how it was counted.
    Explain(ExplainArgs),
    /// The deadline arithmetic of SPEC §3 alone.
    Deadline(deadline::DeadlineArgs),
    /// Holiday calendars the worker uses.
    Calendar(calendar::CalendarArgs),
    /// Create or update the database schema.
    Migrate(MigrateArgs),
    /// Validate settings, calendars and templates; names the key and file at fault.
    CheckConfig,
    /// Send one sample of each email template to ADDR.
    SendTestEmail(SendTestEmailArgs),
    /// Load sample claims (every status, several countries) into the configured database.
    Demo(demo::DemoArgs),
    /// Check a decline link's token; print its claim id and window end as JSON (exit 2 if invalid).
    VerifyToken(verify_token::VerifyTokenArgs),
    /// The email outbox: list, retry a dead-lettered email, discard one.
    #[command(subcommand)]
    Outbox(repair::OutboxCommand),
    /// Operator repairs of one claim: hold, release, resync.
    #[command(subcommand)]
    Claim(repair::ClaimCommand),
}

/// Options of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Do not apply migrations at start.
    #[arg(long)]
    pub no_migrate: bool,
    /// Load the demo claims first if the database has no claims (to try the worker out).
    #[arg(long)]
    pub demo: bool,
    /// Wait for the first scheduled pass instead of running one at start.
    #[arg(long)]
    pub no_initial_pass: bool,
}

/// Options of `tick`.
#[derive(Debug, Args)]
pub struct TickArgs {
    /// The instant the pass acts as of (RFC 3339); default now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Deliver no email: the pass still acts on what is due (auto-rejections and other status
    /// changes, history rows) and queues its emails in the outbox table for a later pass.
    #[arg(long)]
    pub no_send: bool,
    /// Do not apply migrations at start.
    #[arg(long)]
    pub no_migrate: bool,
    /// Print what the pass did as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Options of `dry-run`.
#[derive(Debug, Args)]
pub struct DryRunArgs {
    /// The instant to evaluate at (RFC 3339); default now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// How far past TIME to look, e.g. `7d`, `36h`.
    #[arg(long, value_name = "DURATION")]
    pub horizon: Option<String>,
    /// Output format.
    #[arg(long, value_name = "FORMAT", default_value = "table")]
    pub format: String,
    /// Only claims in this status.
    #[arg(long, value_name = "S")]
    pub status: Option<String>,
    /// Only claims of this country (ISO 3166-1 alpha-2).
    #[arg(long, value_name = "CC")]
    pub country: Option<String>,
}

/// Options of `explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The claim's id.
    pub claim_id: String,
    /// The instant to evaluate at (RFC 3339); default now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {}

/// Options of `send-test-email`.
#[derive(Debug, Args)]
pub struct SendTestEmailArgs {
    /// Recipient address.
    #[arg(long, value_name = "ADDR")]
    pub to: String,
}

/// Runs the parsed command; an error means exit status 2 with the message on stderr.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config_path = cli.config.as_deref();
    match cli.command {
        Command::Run(args) => run::run(config_path, args).await,
        Command::Tick(args) => tick::run(config_path, args).await,
        Command::DryRun(args) => dry_run::run(config_path, args).await,
        Command::Explain(args) => explain::run(config_path, args).await,
        Command::SendTestEmail(args) => send_test_email::run(config_path, args).await,
        Command::Deadline(args) => deadline::run(config_path, args),
        Command::Calendar(args) => calendar::run(config_path, args).await,
        Command::Migrate(_) => migrate::run(config_path).await,
        Command::CheckConfig => check_config::run(config_path),
        Command::Demo(args) => demo::run(config_path, args).await,
        Command::VerifyToken(args) => verify_token::run(config_path, args),
        Command::Outbox(cmd) => repair::outbox(config_path, cmd).await,
        Command::Claim(cmd) => repair::claim(config_path, cmd).await,
    }
}
