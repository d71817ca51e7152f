//! `cpor-worker deadline`: the arithmetic of SPEC §3 alone, one deadline or a batch.

use std::path::Path;

use clap::Args;

/// Options of `deadline`.
#[derive(Debug, Args)]
pub struct DeadlineArgs {
    /// Country whose calendar counts (ISO 3166-1 alpha-2).
    #[arg(long, value_name = "CC", required_unless_present = "batch")]
    pub country: Option<String>,
    /// IANA time zone; default the calendar's.
    #[arg(long, value_name = "TZ")]
    pub time_zone: Option<String>,
    /// The event's instant (RFC 3339).
    #[arg(long, value_name = "TIME", required_unless_present = "batch")]
    pub from: Option<String>,
    /// Count N business days.
    #[arg(long, value_name = "N", conflicts_with = "calendar_days")]
    pub business_days: Option<u32>,
    /// Count N calendar days.
    #[arg(long, value_name = "N")]
    pub calendar_days: Option<u32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Read JSON lines on stdin, write one JSON line per input line.
    #[arg(long, conflicts_with_all = ["country", "from", "business_days", "calendar_days"])]
    pub batch: bool,
}

/// Runs `deadline`.
pub fn run(_config: Option<&Path>, _args: DeadlineArgs) -> anyhow::Result<()> {
    super::pending::not_yet("deadline", 3)
}
