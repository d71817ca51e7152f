//! `cpor-worker verify-token TOKEN`: check a decline link's token with the configured secret and
//! print what it says as JSON; exit status 2 when it is not valid.

use std::path::Path;

use anyhow::Context;
use clap::Args;

use crate::mail::verify_decline_token;

/// Options of `verify-token`.
#[derive(Debug, Args)]
pub struct VerifyTokenArgs {
    /// The token (the `token` query parameter of a decline link).
    pub token: String,
}

/// Runs `verify-token`: prints `{"claim_id": …, "window_end": …}` or fails.
pub fn run(config_path: Option<&Path>, args: VerifyTokenArgs) -> anyhow::Result<()> {
    let config = super::load_config(config_path)?;
    let token = verify_decline_token(&config.consent_secret, &args.token)
        .context("the decline token is not valid")?;
    println!("{}", serde_json::to_string(&token)?);
    Ok(())
}
