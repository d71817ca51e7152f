//! Delivering the outbox: emails the timers queued are taken from a [`Queue`] (the store) with a
//! lease, each rendered from its stored facts ([`Letter::context`]), sent through the configured
//! [`Transport`] (SMTP or `.eml` files), and recorded as sent, retried later, or dead-lettered;
//! one past its "not after" instant expires, one whose claim moved on is withdrawn.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tokio::task::JoinSet;
use tracing::Instrument;
use url::Url;

use crate::config::Secret;
use crate::telemetry;

use super::{
    DeliveryError, DeliveryResult, EmailContext, EmailKind, Letter, Links, OutgoingEmail, Queue,
    Recipient, RetryDecision, RetryPolicy, Taken, Templates, Transport,
};

/// How long a taken email is reserved for one attempt before another sender may retry it.
const LEASE: Duration = Duration::minutes(5);
/// SLA breaches per digest email.
const PER_DIGEST: i64 = 500;

/// What the mailer needs of the settings (made from them at the edge, `cli::mailer_settings`).
#[derive(Clone, Debug)]
pub struct MailerSettings {
    /// The sender (`mail.from`).
    pub from: String,
    /// The partner dashboard the emails link to.
    pub dashboard_url: Url,
    /// Where a customer declines a consent request.
    pub decline_url: Url,
    /// Signs the decline links.
    pub secret: Secret<String>,
    /// Where SLA breach digests go, if anywhere (`mail.ops_alert_to`).
    pub ops_to: Option<String>,
}

/// Renders and sends outbox emails.
pub struct Mailer {
    templates: Arc<Templates>,
    transport: Arc<dyn Transport>,
    settings: MailerSettings,
    /// `settings.ops_to` as a recipient.
    ops: Option<Recipient>,
    retry: RetryPolicy,
    concurrency: usize,
}

/// What one delivery round did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeliverOutcome {
    /// Emails accepted by the server or written to the folder.
    pub sent: usize,
    /// Of those, consent emails (their claims' windows start now).
    pub consent_sent: usize,
    /// Temporary failures, to be retried later.
    pub retried: usize,
    /// Permanent failures or attempts used up: dead-lettered.
    pub dead: usize,
    /// Not sent because their "not after" instant passed first (recorded in the claim's history).
    pub expired: usize,
    /// Not sent because the claim moved on while they waited (recorded in the claim's history).
    pub withdrawn: usize,
}

impl std::ops::AddAssign for DeliverOutcome {
    /// Counts `other`'s round in as well (every field: a pass sums its rounds).
    fn add_assign(&mut self, other: Self) {
        let Self {
            sent,
            consent_sent,
            retried,
            dead,
            expired,
            withdrawn,
        } = other;
        self.sent += sent;
        self.consent_sent += consent_sent;
        self.retried += retried;
        self.dead += dead;
        self.expired += expired;
        self.withdrawn += withdrawn;
    }
}

impl Mailer {
    /// A mailer from settings, loaded templates and a transport.
    pub fn new(
        settings: MailerSettings,
        templates: Arc<Templates>,
        transport: Arc<dyn Transport>,
        concurrency: usize,
    ) -> Self {
        Mailer {
            templates,
            transport,
            ops: settings
                .ops_to
                .as_deref()
                .map(|to| Recipient::from_mailbox(to, "Operations")),
            settings,
            retry: RetryPolicy::default(),
            concurrency: concurrency.max(1),
        }
    }

    /// Where emails go, for logs (never with credentials).
    pub fn describe(&self) -> String {
        self.transport.describe()
    }

    /// The links the emails carry.
    fn links(&self) -> Links<'_> {
        Links {
            dashboard_url: &self.settings.dashboard_url,
            decline_url: &self.settings.decline_url,
            secret: &self.settings.secret,
        }
    }

    /// The template facts of an outbox email delivered at `now`, or why it cannot be written.
    pub fn context(&self, letter: &Letter, now: DateTime<Utc>) -> Result<EmailContext, String> {
        letter.context(self.links(), now)
    }

    /// The message an outbox email becomes: rendered in its locale, with its stable Message-ID.
    pub fn compose(&self, letter: &Letter, now: DateTime<Utc>) -> Result<OutgoingEmail, String> {
        let ctx = self.context(letter, now)?;
        let rendered = self
            .templates
            .render(&letter.locale, &ctx)
            .map_err(|e| format!("rendering: {e}"))?;
        let wanted = letter.locale.split('-').next().unwrap_or_default();
        if !wanted.eq_ignore_ascii_case(&rendered.locale_used) {
            metrics::counter!(telemetry::LOCALE_FALLBACKS).increment(1);
            tracing::warn!(
                claim_id = %letter.claim_id,
                email = %letter.kind,
                locale = %letter.locale,
                used = %rendered.locale_used,
                "no templates for locale {}: email falls back to {}",
                letter.locale,
                rendered.locale_used
            );
        }
        Ok(OutgoingEmail {
            message_id: letter.message_id.clone(),
            from: self.settings.from.clone(),
            to_name: letter.to.name.clone(),
            to_address: letter.to.address.clone(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        })
    }

    /// Writes SLA breaches no digest has reported yet into digest emails to `mail.ops_alert_to`
    /// (none when it is not set); returns how many breaches were reported.
    pub async fn queue_sla_digest<Q: Queue>(
        &self,
        queue: &Q,
        now: DateTime<Utc>,
    ) -> Result<usize, Q::Error> {
        let (Some(to), Some(ops)) = (&self.settings.ops_to, &self.ops) else {
            return Ok(0);
        };
        let mut total = 0;
        loop {
            let n = queue.queue_digest(ops, now, PER_DIGEST).await?;
            total += n;
            if n < PER_DIGEST as usize {
                break;
            }
        }
        if total > 0 {
            tracing::info!(breaches = total, to = %to, "SLA digest queued for operations");
        }
        Ok(total)
    }

    /// Delivers every outbox email due at `now`; failures are recorded, never dropped.
    pub async fn deliver<Q: Queue>(
        &self,
        queue: &Q,
        now: DateTime<Utc>,
    ) -> Result<DeliverOutcome, Q::Error> {
        let mut out = DeliverOutcome::default();
        let batch = i64::try_from(self.concurrency * 4).unwrap_or(64);
        loop {
            let taken = queue.take(now, now + LEASE, batch).await?;
            if taken.is_empty() {
                break;
            }
            // Each result is recorded the moment its send completes, so a crash forgets at
            // most the sends in flight (which are then re-sent with the same Message-ID).
            let mut sends = JoinSet::new();
            for pending in taken {
                let e = &pending.letter;
                if e.not_after.is_some_and(|end| now >= end) {
                    out.expired += 1;
                    metrics::counter!(telemetry::EMAILS_EXPIRED).increment(1);
                    tracing::warn!(claim_id = %e.claim_id, email = %e.kind, message_id = %e.message_id, "email expired unsent: the deadline it names passed before it could be delivered");
                    queue
                        .record(pending.id, &DeliveryResult::Expired, now)
                        .await?;
                    continue;
                }
                if let Some(why) = queue.withdrawn(&pending.entry).await? {
                    out.withdrawn += 1;
                    metrics::counter!(telemetry::EMAILS_WITHDRAWN).increment(1);
                    tracing::warn!(claim_id = %e.claim_id, email = %e.kind, message_id = %e.message_id, why = %why, "email withdrawn unsent: the claim moved on while it waited");
                    queue
                        .record(pending.id, &DeliveryResult::Withdrawn { why }, now)
                        .await?;
                    continue;
                }
                match self.compose(e, now) {
                    Err(problem) => {
                        let failed = Err(DeliveryError::Permanent(problem));
                        self.record(queue, &pending, failed, now, &mut out).await?;
                    }
                    Ok(msg) => {
                        while sends.len() >= self.concurrency {
                            if let Some(Ok((done, result))) = sends.join_next().await {
                                self.record(queue, &done, result, now, &mut out).await?;
                            }
                        }
                        let transport = self.transport.clone();
                        let span = tracing::info_span!(
                            "email",
                            claim_id = %e.claim_id,
                            timer = %e.timer,
                            email = %e.kind,
                            message_id = %e.message_id
                        );
                        sends.spawn(
                            async move {
                                let r = transport.send(&msg).await;
                                (pending, r)
                            }
                            .instrument(span),
                        );
                    }
                }
            }
            while let Some(done) = sends.join_next().await {
                if let Ok((done, result)) = done {
                    self.record(queue, &done, result, now, &mut out).await?;
                }
            }
        }
        Ok(out)
    }

    async fn record<Q: Queue>(
        &self,
        queue: &Q,
        pending: &Taken<Q::Entry>,
        result: Result<(), DeliveryError>,
        now: DateTime<Utc>,
        out: &mut DeliverOutcome,
    ) -> Result<(), Q::Error> {
        let e = &pending.letter;
        let attempt = pending.attempts + 1;
        let outcome = match result {
            Ok(()) => {
                out.sent += 1;
                if e.kind == EmailKind::ConsentRequest {
                    out.consent_sent += 1;
                }
                metrics::counter!(telemetry::EMAILS_SENT).increment(1);
                tracing::info!(claim_id = %e.claim_id, timer = %e.timer, email = %e.kind, message_id = %e.message_id, "email delivered");
                DeliveryResult::Sent
            }
            Err(err) => match self.retry.decide(attempt, &err, now, &mut fastrand::f64) {
                RetryDecision::RetryAt(at) => {
                    out.retried += 1;
                    metrics::counter!(telemetry::EMAILS_RETRIED).increment(1);
                    tracing::warn!(claim_id = %e.claim_id, email = %e.kind, attempt, retry_at = %at.to_rfc3339(), error = %err, "email delivery failed; will retry");
                    DeliveryResult::Retry {
                        at,
                        error: err.to_string(),
                    }
                }
                RetryDecision::DeadLetter => {
                    out.dead += 1;
                    metrics::counter!(telemetry::EMAILS_DEAD).increment(1);
                    tracing::error!(claim_id = %e.claim_id, email = %e.kind, attempt, error = %err, "email dead-lettered");
                    DeliveryResult::Dead {
                        error: err.to_string(),
                    }
                }
            },
        };
        queue.record(pending.id, &outcome, now).await
    }
}
