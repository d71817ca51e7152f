//! Commands whose logic belongs to a later issue: they say so and fail, never pretend.

/// Fails with "not yet implemented", naming the command and the issue that brings it.
pub fn not_yet(command: &str, issue: u32) -> anyhow::Result<()> {
    anyhow::bail!("`{command}` is not yet implemented (tracked in issue {issue})")
}
