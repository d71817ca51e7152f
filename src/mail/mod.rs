//! Emails: typed contexts, minijinja templates per locale, signed decline tokens, delivery
//! transports (SMTP or `.eml` files), the retry policy, and the outbox delivery that uses them.
//!
//! [`EmailKind`] is the one name of each email, from the timer that plans it to the template file.
//! A timer plans an [`EmailPlan`] (`plan.rs`), which the store keeps as JSON in its outbox; the
//! outbox delivery (`outbox.rs`, [`Mailer::deliver`]) takes due emails from a [`Queue`]
//! (`queue.rs`, implemented by the store), turns each plan into an [`EmailContext`] ([`EmailPlan::context`]), renders it with
//! [`Templates::render`], wraps the result in an [`OutgoingEmail`] and hands it to a
//! [`Transport`]; a [`DeliveryError::Temporary`] is retried at [`RetryPolicy::next_attempt`]
//! until [`RetryPolicy::max_attempts`], a [`DeliveryError::Permanent`] is dead-lettered at once.
//! `mail` reads no database: the store implements [`Queue`], so the arrow points from the store
//! to mail only.

pub mod context;
pub mod delivery;
pub mod format;
pub mod kind;
pub mod outbox;
pub mod plan;
pub mod queue;
pub mod retry;
pub mod samples;
mod smtp_pool;
pub mod templates;
pub mod token;

pub use context::{
    ClaimRejected, ConsentRequest, EmailContext, ForwardedToIncentiveEvaluation,
    PartnerApprovalNotice, PartnerResponseReminder, SlaAlertDigest, SlaBreach,
};
pub use delivery::{
    DeliveryError, FileTransport, OutgoingEmail, SmtpTransport, Transport, transport_from_config,
};
pub use kind::{Audience, EmailKind};
pub use outbox::{DeliverOutcome, Mailer, MailerSettings};
pub use plan::{CONSENT_WINDOW_DAYS, EmailPlan, Links, Recipient};
pub use queue::{DeliveryResult, Letter, Queue, Taken};
pub use retry::{RetryDecision, RetryPolicy};
pub use templates::{RenderedEmail, Templates, set_version as template_set_version};
pub use token::{DeclineToken, TokenError, decline_link, sign_decline_token, verify_decline_token};

/// Templates that could not be read or rendered; every message names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// A template failed to parse or render (syntax error, undefined variable, missing include).
    #[error("email template {file}: {message}")]
    Template {
        /// The file (on disk, or `built-in …` for an embedded default).
        file: String,
        /// minijinja's message, with the line.
        message: String,
    },
    /// The templates folder exists but could not be listed.
    #[error("cannot read email templates folder {path}: {source}")]
    Dir {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}
