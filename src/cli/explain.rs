//! `cpor-worker explain CLAIM_ID`: one claim's timers, each deadline with the days counted and
//! skipped, then its history and emails. Reads only.

use std::path::Path;

use std::io::Write;

use anyhow::Context;

use crate::report::explain::explain;
use crate::store::{Outbox, Repairs, Store, StoreError};

/// Runs `explain`.
pub async fn run(config_path: Option<&Path>, args: super::ExplainArgs) -> anyhow::Result<()> {
    let config = super::load_config(config_path)?;
    let at = match &args.at {
        Some(t) => super::parse_time("--at", t)?,
        None => crate::clock::system().now(),
    };
    let engine = super::tick::engine(&config)?;
    let store = super::dry_run::open_read_only(&config).await?;
    let id = args.claim_id.as_str();
    let claim = match store.claim(id).await {
        Ok(c) => c,
        Err(StoreError::NotFound(_)) => anyhow::bail!("claim `{id}` not found"),
        Err(StoreError::BadClaim(bad)) => {
            anyhow::bail!("claim `{id}` cannot be processed: {}", bad.problem)
        }
        Err(e) => return Err(e).context("reading the claim"),
    };
    let cal = engine
        .calendars
        .for_country(&claim.country)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "claim `{id}` cannot be processed: no holiday calendar serves country {}",
                claim.country
            )
        })?;
    let facts = store
        .facts(std::slice::from_ref(&claim.id))
        .await
        .context("reading what the worker did")?
        .remove(&claim.id)
        .unwrap_or_default();
    let x = explain(&claim, cal, &facts, engine.settings, at)
        .map_err(|e| anyhow::anyhow!("claim `{id}` cannot be processed: {e}"))?;
    let history = store.history(id).await.context("reading the history")?;
    let emails = store.claim_emails(id).await.context("reading the emails")?;
    let x = x.with_records(history, emails);
    // A database not yet migrated to the holds table has no holds.
    let held = store
        .holds(Some(std::slice::from_ref(&claim.id)))
        .await
        .unwrap_or_default()
        .pop();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        let mut v = serde_json::to_value(&x)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("held".to_owned(), serde_json::to_value(&held)?);
        }
        serde_json::to_writer_pretty(&mut out, &v)?;
        std::io::Write::write_all(&mut out, b"\n")?;
    } else {
        if let Some(h) = &held {
            writeln!(
                out,
                "HELD by {} since {}: {}\n  none of its timers fire until `cpor-worker claim release {}`\n",
                h.held_by,
                h.held_at.to_rfc3339(),
                h.reason,
                claim.id
            )?;
        }
        crate::report::write_explanation(&mut out, &x)?;
    }
    Ok(())
}
