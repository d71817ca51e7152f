//! `cpor-worker migrate`.
use std::path::Path;
/// Runs `migrate`.
pub async fn run(_c: Option<&Path>) -> anyhow::Result<()> {
    super::pending::not_yet("migrate", 2)
}
