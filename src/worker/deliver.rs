//! Delivering the outbox: each email rendered from its stored facts, sent through the configured
//! transport (SMTP or `.eml` files), and recorded as sent, retried later, or dead-lettered.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tokio::task::JoinSet;
use tracing::Instrument;
use url::Url;

use crate::calendar::start_of_local_day;
use crate::config::Secret;
use crate::mail::context::{
    ClaimRejected, ConsentRequest, ForwardedToIncentiveEvaluation, PartnerApprovalNotice,
    PartnerResponseReminder, SlaAlertDigest, SlaBreach, split_products,
};
use crate::mail::{
    DeliveryError, EmailContext, OutgoingEmail, RetryDecision, RetryPolicy, Templates, Transport,
    decline_link,
};
use crate::store::{
    DeliveryResult, Outbox, OutboxEmail, PendingEmail, SlaAlert, StoreError, message_id,
};
use crate::telemetry;

use crate::timers::{CONSENT_WINDOW_DAYS, EmailKind, EmailPlan, TimerKind};

/// How long a taken email is reserved for one attempt before another sender may retry it.
const LEASE: Duration = Duration::minutes(5);

/// What the mailer needs of the settings (made from them at the edge, `cli::tick::mailer_settings`).
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
    /// Where SLA breach digests go, if anywhere.
    pub ops_to: Option<String>,
}

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
    ops_to: Option<String>,
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
            from: settings.from,
            dashboard_url: settings.dashboard_url,
            decline_url: settings.decline_url,
            secret: settings.secret,
            retry: RetryPolicy::default(),
            concurrency: concurrency.max(1),
            ops_to: settings.ops_to,
        }
    }

    /// Where emails go, for logs (never with credentials).
    pub fn describe(&self) -> String {
        self.transport.describe()
    }

    /// The consent window of a consent request sent at `sent`: it starts when the email is
    /// actually sent (SPEC §4), so its last day is counted from the delivery, in the claim's zone.
    fn consent_window(
        p: &EmailPlan,
        sent: DateTime<Utc>,
    ) -> Result<(chrono::NaiveDate, DateTime<Utc>), String> {
        let tz = crate::claim::parse_time_zone(&p.time_zone)?;
        let last = sent.with_timezone(&tz).date_naive()
            + chrono::Days::new(u64::from(CONSENT_WINDOW_DAYS));
        let end = last
            .succ_opt()
            .ok_or("date out of range")
            .and_then(|d| start_of_local_day(d, tz).map_err(|_| "no local midnight"))?;
        Ok((last, end))
    }

    /// The template facts of an outbox email delivered at `now`, or why it cannot be written.
    pub fn context(&self, email: &OutboxEmail, now: DateTime<Utc>) -> Result<EmailContext, String> {
        if email.email == EmailKind::SlaAlertDigest {
            return serde_json::from_value(email.payload.clone())
                .map(EmailContext::SlaAlertDigest)
                .map_err(|e| format!("stored digest is unreadable: {e}"));
        }
        let p: EmailPlan = serde_json::from_value(email.payload.clone())
            .map_err(|e| format!("stored email facts are unreadable: {e}"))?;
        let dashboard_url = self.dashboard_url.to_string();
        let time_zone = crate::claim::parse_time_zone(&p.time_zone)?;
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
                    time_zone,
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
                time_zone,
                claim_id: p.claim_id,
                partner_name: p.partner_name,
                customer_name: p.customer_name,
                dashboard_url,
            }),
            EmailKind::ConsentRequest => {
                let (last, end) = Self::consent_window(&p, now)?;
                EmailContext::ConsentRequest(ConsentRequest {
                    decline_link: decline_link(&self.decline_url, &self.secret, &p.claim_id, end),
                    last_day: last,
                    time_zone,
                    products: split_products(&p.products),
                    claim_id: p.claim_id,
                    customer_name: p.customer_name,
                    partner_name: p.partner_name,
                })
            }
            EmailKind::PartnerApprovalNotice => {
                EmailContext::PartnerApprovalNotice(PartnerApprovalNotice {
                    consent_last_day: last_day()?,
                    time_zone,
                    products: split_products(&p.products),
                    claim_id: p.claim_id,
                    partner_name: p.partner_name,
                    customer_name: p.customer_name,
                    dashboard_url,
                })
            }
            EmailKind::SlaAlertDigest => return Err("a digest is not a claim's email".to_owned()),
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
    pub fn compose(
        &self,
        email: &OutboxEmail,
        now: DateTime<Utc>,
    ) -> Result<OutgoingEmail, String> {
        let ctx = self.context(email, now)?;
        let rendered = self
            .templates
            .render(&email.locale, &ctx)
            .map_err(|e| format!("rendering: {e}"))?;
        let wanted = email.locale.split('-').next().unwrap_or_default();
        if !wanted.eq_ignore_ascii_case(&rendered.locale_used) {
            metrics::counter!(telemetry::LOCALE_FALLBACKS).increment(1);
            tracing::warn!(
                claim_id = %email.claim_id,
                email = %email.email,
                locale = %email.locale,
                used = %rendered.locale_used,
                "no templates for locale {}: email falls back to {}",
                email.locale,
                rendered.locale_used
            );
        }
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

    /// Writes SLA breaches no digest has reported yet into digest emails to `mail.ops_alert_to`
    /// (none when it is not set); returns how many breaches were reported.
    pub async fn queue_sla_digest<S: Outbox>(
        &self,
        store: &S,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        const PER_DIGEST: i64 = 500;
        let Some(to) = &self.ops_to else {
            return Ok(0);
        };
        let mut total = 0;
        loop {
            let n = store
                .queue_sla_digest(now, PER_DIGEST, |alerts| digest_email(to, alerts, now))
                .await?;
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
    pub async fn deliver<S: Outbox>(
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
            // Each result is recorded the moment its send completes, so a crash forgets at
            // most the sends in flight (which are then re-sent with the same Message-ID).
            let mut sends = JoinSet::new();
            for pending in taken {
                if pending.email.not_after.is_some_and(|end| now >= end) {
                    out.expired += 1;
                    metrics::counter!(telemetry::EMAILS_EXPIRED).increment(1);
                    tracing::warn!(claim_id = %pending.email.claim_id, email = %pending.email.email, message_id = %pending.email.message_id, "email expired unsent: the deadline it names passed before it could be delivered");
                    store
                        .record_delivery(pending.id, &DeliveryResult::Expired, now)
                        .await?;
                    continue;
                }
                if let Some(why) = withdrawn(store, &pending.email).await? {
                    out.withdrawn += 1;
                    metrics::counter!(telemetry::EMAILS_WITHDRAWN).increment(1);
                    tracing::warn!(claim_id = %pending.email.claim_id, email = %pending.email.email, message_id = %pending.email.message_id, why = %why, "email withdrawn unsent: the claim moved on while it waited");
                    store
                        .record_delivery(pending.id, &DeliveryResult::Withdrawn { why }, now)
                        .await?;
                    continue;
                }
                match self.compose(&pending.email, now) {
                    Err(problem) => {
                        let failed = Err(DeliveryError::Permanent(problem));
                        self.record(store, &pending, failed, now, &mut out).await?;
                    }
                    Ok(msg) => {
                        while sends.len() >= self.concurrency {
                            if let Some(Ok((done, result))) = sends.join_next().await {
                                self.record(store, &done, result, now, &mut out).await?;
                            }
                        }
                        let transport = self.transport.clone();
                        let span = tracing::info_span!(
                            "email",
                            claim_id = %pending.email.claim_id,
                            timer = %pending.email.timer,
                            email = %pending.email.email,
                            message_id = %pending.email.message_id
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
                    self.record(store, &done, result, now, &mut out).await?;
                }
            }
        }
        Ok(out)
    }

    async fn record<S: Outbox>(
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

/// The outbox email of one SLA digest; its Message-ID comes from its first breach, which no
/// other digest reports.
fn digest_email(to: &str, alerts: &[SlaAlert], now: DateTime<Utc>) -> OutboxEmail {
    let digest = SlaAlertDigest {
        generated_at: now,
        breaches: alerts
            .iter()
            .map(|a| SlaBreach {
                claim_id: a.claim_id.clone(),
                timer: a.timer.to_string(),
                deadline: a.due,
                overdue_seconds: (now - a.due).num_seconds().max(0),
            })
            .collect(),
    };
    let (name, address) = split_mailbox(to);
    let (first_claim, first_timer, first_start) = alerts
        .first()
        .map(|a| (a.claim_id.as_str(), a.timer, a.start))
        .unwrap_or(("ops", TimerKind::ReviewStartSla, now));
    OutboxEmail {
        message_id: message_id(
            first_claim,
            first_timer,
            first_start,
            EmailKind::SlaAlertDigest,
        ),
        claim_id: OPS_CLAIM_ID.to_owned(),
        timer: first_timer,
        start: now,
        email: EmailKind::SlaAlertDigest,
        to_name: name,
        to_address: address,
        locale: "en".to_owned(),
        payload: serde_json::to_value(&digest).unwrap_or_default(),
        not_after: None,
        announced: None,
        calendar_version: None,
        template_version: None,
    }
}

/// The `claim_id` an operations digest has in the outbox (it belongs to no claim).
pub const OPS_CLAIM_ID: &str = "(operations)";

/// Splits `Name <addr>` into its name and address; a bare address is named "Operations".
fn split_mailbox(s: &str) -> (String, String) {
    match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => {
            let name = s[..a].trim().trim_matches('"').trim();
            let name = if name.is_empty() { "Operations" } else { name };
            (name.to_owned(), s[a + 1..b].trim().to_owned())
        }
        _ => ("Operations".to_owned(), s.trim().to_owned()),
    }
}

/// Why `email` no longer applies to its claim as stored now, if it does not (a claim whose row
/// cannot be read is not second-guessed: its email goes out as planned).
async fn withdrawn<S: Outbox>(
    store: &S,
    email: &OutboxEmail,
) -> Result<Option<String>, StoreError> {
    if matches!(
        email.email,
        EmailKind::SlaAlertDigest | EmailKind::ForwardedToIncentiveEvaluation
    ) {
        return Ok(None);
    }
    match store.claim(&email.claim_id).await {
        Ok(claim) => Ok(super::applies::still_applies(email, &claim).err()),
        Err(StoreError::NotFound(_)) => Ok(Some("not sent: the claim no longer exists".to_owned())),
        Err(StoreError::BadClaim(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::split_mailbox;

    #[test]
    fn mailboxes_split_into_name_and_address() {
        assert_eq!(
            split_mailbox("Ops <ops@x.example>"),
            ("Ops".into(), "ops@x.example".into())
        );
        assert_eq!(
            split_mailbox("\"On Call\" <oc@x.example>"),
            ("On Call".into(), "oc@x.example".into())
        );
        assert_eq!(
            split_mailbox("ops@x.example"),
            ("Operations".into(), "ops@x.example".into())
        );
    }
}
