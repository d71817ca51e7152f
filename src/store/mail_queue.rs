//! The outbox as mail's [`Queue`]: every backend's [`Outbox`] is the queue the outbox delivery
//! ([`crate::mail::Mailer::deliver`]) takes its emails from. The store knows mail's types;
//! mail knows no store.

use chrono::{DateTime, Utc};

use super::applies::still_applies;
use super::{DeliveryResult, Outbox, OutboxEmail, SlaAlert, StoreError, message_id};
use crate::mail::{EmailKind, Letter, Queue, Recipient, SlaAlertDigest, SlaBreach, Taken};
use crate::timers::TimerKind;

/// The `claim_id` an operations digest has in the outbox (it belongs to no claim).
pub const OPS_CLAIM_ID: &str = "(operations)";

impl<S: Outbox> Queue for S {
    type Error = StoreError;
    type Entry = OutboxEmail;

    async fn take(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Taken<OutboxEmail>>, StoreError> {
        let taken = self.take_emails(now, lease_until, limit).await?;
        Ok(taken
            .into_iter()
            .map(|p| Taken {
                id: p.id,
                attempts: u32::try_from(p.attempts).unwrap_or(0),
                letter: Letter::from(&p.email),
                entry: p.email,
            })
            .collect())
    }

    /// A claim whose row cannot be read is not second-guessed: its email goes out as planned.
    async fn withdrawn(&self, email: &OutboxEmail) -> Result<Option<String>, StoreError> {
        if matches!(
            email.email,
            EmailKind::SlaAlertDigest | EmailKind::ForwardedToIncentiveEvaluation
        ) {
            return Ok(None);
        }
        match self.claim(&email.claim_id).await {
            Ok(claim) => {
                let consent_sent = match (email.email, claim.approved_at) {
                    (EmailKind::PartnerApprovalNotice, Some(approved)) => self
                        .facts(std::slice::from_ref(&email.claim_id))
                        .await?
                        .get(&email.claim_id)
                        .and_then(|f| f.consent_sent_at(approved)),
                    _ => None,
                };
                Ok(still_applies(email, &claim, consent_sent).err())
            }
            Err(StoreError::NotFound(_)) => {
                Ok(Some("not sent: the claim no longer exists".to_owned()))
            }
            Err(StoreError::BadClaim(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn record(
        &self,
        id: i64,
        result: &DeliveryResult,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.record_delivery(id, result, now).await
    }

    async fn queue_digest(
        &self,
        to: &Recipient,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<usize, StoreError> {
        self.queue_sla_digest(now, limit, |alerts| digest_email(to, alerts, now))
            .await
    }
}

impl From<&OutboxEmail> for Letter {
    fn from(e: &OutboxEmail) -> Self {
        Letter {
            message_id: e.message_id.clone(),
            claim_id: e.claim_id.clone(),
            timer: e.timer.as_str(),
            kind: e.email,
            to: Recipient {
                name: e.to_name.clone(),
                address: e.to_address.clone(),
            },
            locale: e.locale.clone(),
            facts: (*e.payload).clone(),
            not_after: e.not_after,
        }
    }
}

/// The outbox email of one SLA digest; its Message-ID comes from its first breach, which no
/// other digest reports.
fn digest_email(to: &Recipient, alerts: &[SlaAlert], now: DateTime<Utc>) -> OutboxEmail {
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
        to_name: to.name.clone(),
        to_address: to.address.clone(),
        locale: "en".to_owned(),
        payload: crate::json_text::JsonText::of(&digest),
        not_after: None,
        announced: None,
        calendar_version: None,
        template_version: None,
    }
}
