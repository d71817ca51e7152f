//! Delivering the outbox: each email rendered from its stored facts, sent through the configured
//! transport (SMTP or `.eml` files), and recorded as sent, retried later, or dead-lettered.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tokio::task::JoinSet;
use url::Url;

use crate::config::{Config, Secret};
use crate::mail::context::{
    ClaimRejected, ConsentRequest, ForwardedToIncentiveEvaluation, PartnerApprovalNotice,
    PartnerResponseReminder, split_products,
};
use crate::mail::{
    DeliveryError, EmailContext, OutgoingEmail, RetryDecision, RetryPolicy, Templates, Transport,
    decline_link,
};
use crate::store::{DeliveryResult, OutboxEmail, PendingEmail, Store, StoreError};
use crate::telemetry;
use crate::timers::{EmailKind, EmailPlan};

/// How long a taken email is reserved for one attempt before another sender may retry it.
const LEASE: Duration = Duration::minutes(5);

/// Renders and sends outbox emails.
pub struct Mailer {
    templates: Arc<Templates>,
    transport: Arc<dyn Transport>,
    from: String,
    dashboard_url: Url,
    decline_url: Url,
    secret: Secret<String>,
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
}

impl Mailer {
    /// A mailer from settings, loaded templates and a transport.
    pub fn new(
        config: &Config,
        templates: Arc<Templates>,
        transport: Arc<dyn Transport>,
        concurrency: usize,
    ) -> Self {
        Mailer {
            templates,
            transport,
            from: config.mail.from.clone(),
            dashboard_url: config.dashboard_url.clone(),
            decline_url: config.decline_url.clone(),
            secret: config.consent_secret.clone(),
            retry: RetryPolicy::default(),
            concurrency: concurrency.max(1),
        }
    }

    /// Where emails go, for logs (never with credentials).
    pub fn describe(&self) -> String {
        self.transport.describe()
    }

    /// The template facts of an outbox email, or why it cannot be written.
    pub fn context(&self, email: &OutboxEmail) -> Result<EmailContext, String> {
        let p: EmailPlan = serde_json::from_value(email.payload.clone())
            .map_err(|e| format!("stored email facts are unreadable: {e}"))?;
        let dashboard_url = self.dashboard_url.to_string();
        let last_day = || {
            p.last_day
                .ok_or_else(|| format!("{} needs a last day", p.kind))
        };
        Ok(match p.kind {
            EmailKind::PartnerResponseReminder => {
                EmailContext::PartnerResponseReminder(PartnerResponseReminder {
                    reason: p
                        .info_request_reason
                        .ok_or("the claim has no info_request_reason to remind the partner of")?,
                    last_day: last_day()?,
                    claim_id: p.claim_id,
                    partner_name: p.partner_name,
                    customer_name: p.customer_name,
                    dashboard_url,
                })
            }
            EmailKind::ClaimRejected => EmailContext::ClaimRejected(ClaimRejected {
                reason: p
                    .rejection_reason
                    .ok_or("the claim has no rejection_reason to name")?,
                dispute_last_day: last_day()?,
                claim_id: p.claim_id,
                partner_name: p.partner_name,
                customer_name: p.customer_name,
                dashboard_url,
            }),
            EmailKind::ConsentRequest => {
                let end = p
                    .window_end
                    .ok_or("a consent request needs the window's end")?;
                EmailContext::ConsentRequest(ConsentRequest {
                    decline_link: decline_link(&self.decline_url, &self.secret, &p.claim_id, end),
                    last_day: last_day()?,
                    products: split_products(&p.products),
                    claim_id: p.claim_id,
                    customer_name: p.customer_name,
                    partner_name: p.partner_name,
                })
            }
            EmailKind::PartnerApprovalNotice => {
                EmailContext::PartnerApprovalNotice(PartnerApprovalNotice {
                    consent_last_day: last_day()?,
                    products: split_products(&p.products),
                    claim_id: p.claim_id,
                    partner_name: p.partner_name,
                    customer_name: p.customer_name,
                    dashboard_url,
                })
            }
            EmailKind::ForwardedToIncentiveEvaluation => {
                EmailContext::ForwardedToIncentiveEvaluation(ForwardedToIncentiveEvaluation {
                    products: split_products(&p.products),
                    claim_id: p.claim_id,
                    partner_name: p.partner_name,
                    customer_name: p.customer_name,
                    dashboard_url,
                })
            }
        })
    }

    /// The message an outbox email becomes: rendered in the claim's locale, with its stable Message-ID.
    pub fn compose(&self, email: &OutboxEmail) -> Result<OutgoingEmail, String> {
        let ctx = self.context(email)?;
        let rendered = self
            .templates
            .render(&email.locale, &ctx)
            .map_err(|e| format!("rendering: {e}"))?;
        Ok(OutgoingEmail {
            message_id: email.message_id.clone(),
            from: self.from.clone(),
            to_name: email.to_name.clone(),
            to_address: email.to_address.clone(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
        })
    }

    /// Delivers every outbox email due at `now`; failures are recorded, never dropped.
    pub async fn deliver<S: Store>(
        &self,
        store: &S,
        now: DateTime<Utc>,
    ) -> Result<DeliverOutcome, StoreError> {
        let mut out = DeliverOutcome::default();
        let batch = i64::try_from(self.concurrency * 4).unwrap_or(64);
        loop {
            let taken = store.take_emails(now, now + LEASE, batch).await?;
            if taken.is_empty() {
                break;
            }
            let mut sends = JoinSet::new();
            let mut results = Vec::with_capacity(taken.len());
            for pending in taken {
                match self.compose(&pending.email) {
                    Err(problem) => results.push((pending, Err(DeliveryError::Permanent(problem)))),
                    Ok(msg) => {
                        while sends.len() >= self.concurrency {
                            if let Some(Ok(done)) = sends.join_next().await {
                                results.push(done);
                            }
                        }
                        let transport = self.transport.clone();
                        sends.spawn(async move {
                            let r = transport.send(&msg).await;
                            (pending, r)
                        });
                    }
                }
            }
            while let Some(done) = sends.join_next().await {
                if let Ok(done) = done {
                    results.push(done);
                }
            }
            for (pending, result) in results {
                self.record(store, &pending, result, now, &mut out).await?;
            }
        }
        Ok(out)
    }

    async fn record<S: Store>(
        &self,
        store: &S,
        pending: &PendingEmail,
        result: Result<(), DeliveryError>,
        now: DateTime<Utc>,
        out: &mut DeliverOutcome,
    ) -> Result<(), StoreError> {
        let e = &pending.email;
        let attempt = u32::try_from(pending.attempts).unwrap_or(0) + 1;
        let outcome = match result {
            Ok(()) => {
                out.sent += 1;
                if e.email == EmailKind::ConsentRequest {
                    out.consent_sent += 1;
                }
                metrics::counter!(telemetry::EMAILS_SENT).increment(1);
                tracing::info!(claim_id = %e.claim_id, timer = %e.timer, email = %e.email, message_id = %e.message_id, "email delivered");
                DeliveryResult::Sent
            }
            Err(err) => match self.retry.decide(attempt, &err, now, &mut fastrand::f64) {
                RetryDecision::RetryAt(at) => {
                    out.retried += 1;
                    metrics::counter!(telemetry::EMAILS_RETRIED).increment(1);
                    tracing::warn!(claim_id = %e.claim_id, email = %e.email, attempt, retry_at = %at.to_rfc3339(), error = %err, "email delivery failed; will retry");
                    DeliveryResult::Retry {
                        at,
                        error: err.to_string(),
                    }
                }
                RetryDecision::DeadLetter => {
                    out.dead += 1;
                    metrics::counter!(telemetry::EMAILS_DEAD).increment(1);
                    tracing::error!(claim_id = %e.claim_id, email = %e.email, attempt, error = %err, "email dead-lettered");
                    DeliveryResult::Dead {
                        error: err.to_string(),
                    }
                }
            },
        };
        store.record_delivery(pending.id, &outcome, now).await
    }
}
