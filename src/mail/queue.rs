//! What the outbox delivery needs of the queue its emails wait in ([`Queue`]), and the shapes
//! emails and results cross it in: a [`Taken`] email with its [`Letter`], a [`DeliveryResult`].
//! The store implements [`Queue`] (`store::mail_queue`); nothing here reads a database.

use std::future::Future;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{EmailContext, EmailKind, EmailPlan, Links, Recipient};

/// What the outbox delivery needs of the queue its emails wait in; the store implements it
/// for every backend (`store::mail_queue`).
pub trait Queue: Sync {
    /// What the queue fails with.
    type Error;
    /// The queue's own record of a taken email, handed back to ask about it.
    type Entry: Send + 'static;

    /// Takes up to `limit` emails due for an attempt at `now`, leased to this sender until
    /// `lease_until`, oldest first.
    fn take(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Taken<Self::Entry>>, Self::Error>> + Send;

    /// Why the email no longer applies to its claim as stored now, if it does not.
    fn withdrawn(
        &self,
        entry: &Self::Entry,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;

    /// Records what an attempt at email `id` came to.
    fn record(
        &self,
        id: i64,
        result: &DeliveryResult,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// In one transaction: writes a digest email to `to` of up to `limit` SLA breaches no
    /// digest has reported yet and marks them reported; returns how many it reported.
    fn queue_digest(
        &self,
        to: &Recipient,
        now: DateTime<Utc>,
        limit: i64,
    ) -> impl Future<Output = Result<usize, Self::Error>> + Send;
}

/// An email taken from the queue for one delivery attempt.
#[derive(Clone, Debug, PartialEq)]
pub struct Taken<E> {
    /// The queue's id of the email.
    pub id: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// The email.
    pub letter: Letter,
    /// The queue's own record of it.
    pub entry: E,
}

/// An outbox email as delivery sees it: where it goes, in which language, and the stored facts
/// its template shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Letter {
    /// Stable across retries and re-sends.
    pub message_id: String,
    /// The claim it is about (for logs).
    pub claim_id: String,
    /// The id of the timer that queued it (for logs).
    pub timer: &'static str,
    /// Which email.
    pub kind: EmailKind,
    /// The recipient.
    pub to: Recipient,
    /// The locale to write it in.
    pub locale: String,
    /// What the template shows, as stored: an [`EmailPlan`], or for a digest its context.
    pub facts: serde_json::Value,
    /// Never sent at or after this instant: it expires instead.
    pub not_after: Option<DateTime<Utc>>,
}

impl Letter {
    /// The template facts of this email delivered at `sent`, or why it cannot be written.
    pub fn context(&self, links: Links<'_>, sent: DateTime<Utc>) -> Result<EmailContext, String> {
        if self.kind == EmailKind::SlaAlertDigest {
            return serde_json::from_value(self.facts.clone())
                .map(EmailContext::SlaAlertDigest)
                .map_err(|e| format!("stored digest is unreadable: {e}"));
        }
        EmailPlan::deserialize(&self.facts)
            .map_err(|e| format!("stored email facts are unreadable: {e}"))?
            .context(links, sent)
    }
}

/// What a delivery attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryResult {
    /// Accepted by the server (or written to the outbox folder).
    Sent,
    /// A temporary failure: try again at this instant.
    Retry {
        /// When.
        at: DateTime<Utc>,
        /// The error.
        error: String,
    },
    /// A permanent failure (or too many attempts): dead-lettered, never retried.
    Dead {
        /// The error.
        error: String,
    },
    /// Not sent: its "not after" instant passed first. Recorded in the claim's history.
    Expired,
    /// Not sent: the claim moved on while it waited (a consent request for a claim since
    /// rejected). Recorded in the claim's history with why.
    Withdrawn {
        /// Why it no longer applies.
        why: String,
    },
}
