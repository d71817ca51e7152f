//! Log output through tracing (text on a terminal, JSON lines when asked) and the metrics the
//! daemon exports in Prometheus format; every metric name lives here.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Passes run, by result (`ok` / `error`).
pub const PASSES: &str = "cpor_passes_total";
/// Timer runs acted on, by `timer` and `outcome` (`fired` / `skipped`).
pub const TIMERS_FIRED: &str = "cpor_timers_fired_total";
/// Emails delivered.
pub const EMAILS_SENT: &str = "cpor_emails_sent_total";
/// Delivery attempts that failed temporarily and will be retried.
pub const EMAILS_RETRIED: &str = "cpor_emails_retried_total";
/// Emails dead-lettered.
pub const EMAILS_DEAD: &str = "cpor_emails_dead_lettered_total";
/// Seconds a pass took.
pub const PASS_SECONDS: &str = "cpor_pass_duration_seconds";
/// Timers due but not yet fired at the end of the last pass.
pub const OVERDUE_TIMERS: &str = "cpor_overdue_timers";
/// Unix time of the last pass that completed without error.
pub const LAST_SUCCESS: &str = "cpor_last_successful_pass_timestamp_seconds";
/// SLA breaches raised, by `timer`.
pub const SLA_BREACHES: &str = "cpor_sla_breaches_total";
/// Claims skipped because their row or timers are unusable, per pass.
pub const CLAIMS_SKIPPED: &str = "cpor_claims_skipped_total";
/// Emails not sent because the deadline they name passed first.
pub const EMAILS_EXPIRED: &str = "cpor_emails_expired_total";
/// Claims left alone because the main system changed them meanwhile.
pub const CLAIMS_CHANGED_MEANWHILE: &str = "cpor_claims_changed_meanwhile_total";
/// Emails written in a fallback language because the claim's locale has no templates.
pub const LOCALE_FALLBACKS: &str = "cpor_email_locale_fallbacks_total";
/// Emails waiting in the outbox / dead-lettered, by `state`.
pub const OUTBOX: &str = "cpor_outbox_emails";

/// Installs the global subscriber writing to stderr; a second call does nothing.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// The metrics exporter could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("metrics: {0}")]
pub struct MetricsError(String);

/// Installs the Prometheus recorder (once per process) and returns the handle that renders it.
pub fn install_metrics() -> Result<PrometheusHandle, MetricsError> {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(PASS_SECONDS.to_owned()),
            &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0],
        )
        .map_err(|e| MetricsError(e.to_string()))?
        .install_recorder()
        .map_err(|e| MetricsError(e.to_string()))?;
    Ok(HANDLE.get_or_init(|| handle).clone())
}
