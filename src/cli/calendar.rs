//! `cpor-worker calendar …`: the holiday calendars the worker uses.

use std::path::Path;

use clap::{Args, Subcommand};

/// Options of `calendar`.
#[derive(Debug, Args)]
pub struct CalendarArgs {
    /// What to show.
    #[command(subcommand)]
    pub command: CalendarCommand,
}

/// Subcommands of `calendar`.
#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// The holidays of one country's calendar in one year.
    Holidays(HolidaysArgs),
}

/// Options of `calendar holidays`.
#[derive(Debug, Args)]
pub struct HolidaysArgs {
    /// Country (ISO 3166-1 alpha-2).
    #[arg(long, value_name = "CC")]
    pub country: String,
    /// Year.
    #[arg(long, value_name = "YYYY")]
    pub year: i32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `calendar`.
pub fn run(_config: Option<&Path>, _args: CalendarArgs) -> anyhow::Result<()> {
    super::pending::not_yet("calendar holidays", 3)
}
