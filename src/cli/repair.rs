//! `cpor-worker outbox …` and `cpor-worker claim …`: the operator's repairs on the command line,
//! the same as the console's buttons (see [`crate::repair`]).

use std::path::Path;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::repair::{self, Operator};
use crate::store::{AnyStore, OutboxRow, Repairs};

/// `outbox` subcommands.
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Outbox emails, newest first.
    List(ListArgs),
    /// Send a dead-lettered email again, re-rendered from the claim's current data.
    Retry(RetryArgs),
    /// Never send this email (pending or dead-lettered).
    Discard(DiscardArgs),
}

/// Options of `outbox list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only emails in this state: pending, sending, sent, dead, expired, discarded.
    #[arg(long, value_name = "S")]
    pub state: Option<String>,
    /// Only this claim's emails.
    #[arg(long, value_name = "ID")]
    pub claim: Option<String>,
    /// At most this many.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// Print JSON (an array) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `outbox retry`.
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The outbox email's id (from `outbox list`).
    #[arg(required_unless_present = "all_dead", conflicts_with = "all_dead")]
    pub id: Option<i64>,
    /// Every dead-lettered email.
    #[arg(long)]
    pub all_dead: bool,
    /// Why (recorded in the claim's history).
    #[arg(long, value_name = "R")]
    pub reason: Option<String>,
    /// Who (recorded in the claim's history); default $USER.
    #[arg(long, value_name = "WHO")]
    pub by: Option<String>,
}

/// Options of `outbox discard`.
#[derive(Debug, Args)]
pub struct DiscardArgs {
    /// The outbox email's id.
    pub id: i64,
    /// Why (required; recorded in the claim's history).
    #[arg(long, value_name = "R")]
    pub reason: String,
    /// Who; default $USER.
    #[arg(long, value_name = "WHO")]
    pub by: Option<String>,
}

/// `claim` subcommands.
#[derive(Debug, Subcommand)]
pub enum ClaimCommand {
    /// Hold a claim: none of its timers fire until it is released.
    Hold(HoldArgs),
    /// Release a claim held by an operator or on first sight.
    Release(ClaimArgs),
    /// Recompute a claim's timers now.
    Resync(ClaimArgs),
}

/// Options of `claim hold`.
#[derive(Debug, Args)]
pub struct HoldArgs {
    /// The claim's id.
    pub id: String,
    /// Why (required; shown by dry-run, explain and the console).
    #[arg(long, value_name = "R")]
    pub reason: String,
    /// Who; default $USER.
    #[arg(long, value_name = "WHO")]
    pub by: Option<String>,
}

/// Options of `claim release` and `claim resync`.
#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// The claim's id.
    pub id: String,
    /// Why (recorded in the claim's history).
    #[arg(long, value_name = "R")]
    pub reason: Option<String>,
    /// Who; default $USER.
    #[arg(long, value_name = "WHO")]
    pub by: Option<String>,
}

fn operator(by: Option<String>, reason: Option<String>) -> Operator {
    let who = by
        .or_else(|| std::env::var("USER").ok())
        .filter(|w| !w.trim().is_empty())
        .unwrap_or_else(|| "cli".to_owned());
    Operator {
        who,
        reason,
        at: crate::clock::system().now(),
    }
}

async fn open(config_path: Option<&Path>) -> anyhow::Result<(crate::config::Config, AnyStore)> {
    let config = super::load_config(config_path)?;
    let store = super::store::open(&config, config.database.migrate_on_start).await?;
    Ok((config, store))
}

/// Runs an `outbox` subcommand.
pub async fn outbox(config_path: Option<&Path>, cmd: OutboxCommand) -> anyhow::Result<()> {
    let (_, store) = open(config_path).await?;
    match cmd {
        OutboxCommand::List(a) => {
            let rows = store
                .outbox_list(a.state.as_deref(), a.claim.as_deref(), a.limit)
                .await
                .context("reading the outbox")?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", table(&rows));
            }
        }
        OutboxCommand::Retry(a) => {
            let op = operator(a.by, a.reason);
            let ids: Vec<i64> = match a.id {
                Some(id) => vec![id],
                None => store
                    .outbox_list(Some("dead"), None, i64::MAX)
                    .await
                    .context("reading the outbox")?
                    .iter()
                    .rev()
                    .map(|r| r.id)
                    .collect(),
            };
            if ids.is_empty() {
                println!("no dead-lettered emails");
            }
            for id in ids {
                let done = repair::retry(&store, id, &op).await?;
                println!("{}", done.message);
            }
        }
        OutboxCommand::Discard(a) => {
            let done = repair::discard(&store, a.id, &operator(a.by, Some(a.reason))).await?;
            println!("{}", done.message);
        }
    }
    Ok(())
}

/// Runs a `claim` subcommand.
pub async fn claim(config_path: Option<&Path>, cmd: ClaimCommand) -> anyhow::Result<()> {
    let (config, store) = open(config_path).await?;
    let done = match cmd {
        ClaimCommand::Hold(a) => {
            repair::hold(&store, &a.id, &operator(a.by, Some(a.reason))).await?
        }
        ClaimCommand::Release(a) => {
            repair::release(&store, &a.id, &operator(a.by, a.reason)).await?
        }
        ClaimCommand::Resync(a) => {
            let engine = super::tick::engine(&config)?;
            repair::resync(&store, &engine, &a.id, &operator(a.by, a.reason)).await?
        }
    };
    println!("{}", done.message);
    Ok(())
}

fn table(rows: &[OutboxRow]) -> String {
    let mut out = format!(
        "{:>6}  {:<9}  {:>3}  {:<22}  {:<18}  {:<30}  {}\n",
        "ID", "STATE", "TRY", "EMAIL", "CLAIM", "TO", "LAST ERROR"
    );
    for r in rows {
        out.push_str(&format!(
            "{:>6}  {:<9}  {:>3}  {:<22}  {:<18}  {:<30}  {}\n",
            r.id,
            r.state,
            r.attempts,
            r.email.email.as_str(),
            r.email.claim_id,
            r.email.to_address,
            r.last_error.as_deref().unwrap_or("")
        ));
    }
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    out
}
