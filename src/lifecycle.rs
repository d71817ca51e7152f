//! Claim statuses, reasons and the transitions SPEC §2 allows: pure domain rules, no I/O.

/// A value read from outside did not name a known status, reason or actor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}` (expected one of: {expected})")]
pub struct UnknownId {
    /// What was being parsed ("status", "rejection reason", …).
    pub kind: &'static str,
    /// The text that did not parse.
    pub value: String,
    /// The accepted ids, comma-separated.
    pub expected: String,
}

/// Declares a domain enum whose snake_case ids are the SPEC's, with `as_str`, `ALL`, `Display`, `FromStr`.
macro_rules! id_enum {
    ($(#[$meta:meta])* $name:ident, $kind:literal, { $($(#[$vmeta:meta])* $variant:ident => $id:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in SPEC order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The canonical id used in the database, JSON and templates.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $id),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::lifecycle::UnknownId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($id => Ok($name::$variant),)+
                    _ => Err($crate::lifecycle::UnknownId {
                        kind: $kind,
                        value: s.to_owned(),
                        expected: [$($id),+].join(", "),
                    }),
                }
            }
        }
    };
}

pub(crate) use id_enum;

id_enum!(
    /// Where a claim stands (SPEC §2).
    ClaimStatus, "status", {
        /// Created; stays until proof of execution is uploaded and submitted.
        Draft => "draft",
        /// Submitted by the partner; review not started.
        Submitted => "submitted",
        /// A reviewer is verifying the proof of execution.
        UnderReview => "under_review",
        /// The reviewer asked the partner for more information.
        PartnerActionRequired => "partner_action_required",
        /// Approved; the customer may still decline during the consent window.
        Approved => "approved",
        /// Rejected with a reason; may be disputed within 30 days.
        Rejected => "rejected",
    }
);

id_enum!(
    /// Why a reviewer asked the partner for more information.
    InfoRequestReason, "info request reason", {
        /// No usable proof of execution was uploaded.
        MissingAllPoe => "missing_all_poe",
        /// The customer's signature is missing from the proof.
        MissingCustomerSignature => "missing_customer_signature",
        /// Dates on the proof are missing or too old.
        MissingOrOldDates => "missing_or_old_dates",
        /// The partner's solution or service is not described well enough.
        MissingPartnerSolution => "missing_partner_solution",
        /// The proof does not cover a claimed product.
        MissingProducts => "missing_products",
    }
);

id_enum!(
    /// Why a claim was rejected.
    RejectionReason, "rejection reason", {
        /// The partner asked for the association to be rejected.
        PartnerRequest => "partner_request",
        /// The customer declined consent.
        CustomerDeclined => "customer_declined",
        /// The proof of execution was not sufficient.
        InsufficientPoe => "insufficient_poe",
        /// The proof lacks the customer's consent.
        CustomerConsentMissingInPoe => "customer_consent_missing_in_poe",
        /// The proof does not cover the claimed products.
        MissingProducts => "missing_products",
        /// The partner did not answer an information request in time.
        NoPartnerResponse => "no_partner_response",
        /// The proof of execution is not available.
        PoeNotAvailable => "poe_not_available",
    }
);

id_enum!(
    /// Who did something to a claim.
    Actor, "actor", {
        /// The partner who made the claim.
        Partner => "partner",
        /// A reviewer.
        Reviewer => "reviewer",
        /// The customer named in the claim.
        Customer => "customer",
        /// This worker.
        System => "system",
    }
);

/// A status change someone asks for, with what the SPEC requires to go with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// draft → submitted, or partner_action_required → submitted (resubmission); by the partner.
    Submit,
    /// submitted → under_review; by a reviewer.
    StartReview,
    /// under_review → partner_action_required; by a reviewer, with the reason.
    RequestInfo(InfoRequestReason),
    /// under_review → approved; by a reviewer.
    Approve,
    /// Any status that allows it → rejected, with the reason.
    Reject(RejectionReason),
    /// rejected → approved when a dispute is overturned; by a reviewer.
    OverturnDispute,
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{actor} may not {transition:?} a claim in status `{from}`")]
pub struct TransitionRefused {
    /// The claim's status when the transition was asked for.
    pub from: ClaimStatus,
    /// What was asked.
    pub transition: Transition,
    /// Who asked.
    pub actor: Actor,
}

/// The status `transition` leads to when `actor` applies it to a claim in `from`, or why not.
///
/// ```
/// use cpor_worker::lifecycle::{next_status, Actor, ClaimStatus, RejectionReason, Transition};
/// let to = next_status(
///     ClaimStatus::PartnerActionRequired,
///     Transition::Reject(RejectionReason::NoPartnerResponse),
///     Actor::System,
/// );
/// assert_eq!(to, Ok(ClaimStatus::Rejected));
/// ```
pub fn next_status(
    from: ClaimStatus,
    transition: Transition,
    actor: Actor,
) -> Result<ClaimStatus, TransitionRefused> {
    use Actor as A;
    use ClaimStatus as S;
    use RejectionReason as R;
    use Transition as T;

    let to = match (from, transition, actor) {
        (S::Draft | S::PartnerActionRequired, T::Submit, A::Partner) => Some(S::Submitted),
        (S::Submitted, T::StartReview, A::Reviewer) => Some(S::UnderReview),
        (S::UnderReview, T::RequestInfo(_), A::Reviewer) => Some(S::PartnerActionRequired),
        (S::UnderReview, T::Approve, A::Reviewer) => Some(S::Approved),
        // The partner may withdraw while the claim is still being looked at.
        (
            S::Submitted | S::UnderReview | S::PartnerActionRequired,
            T::Reject(R::PartnerRequest),
            A::Partner,
        ) => Some(S::Rejected),
        // A reviewer rejects on the evidence while reviewing or waiting for the partner.
        (
            S::UnderReview | S::PartnerActionRequired,
            T::Reject(
                R::InsufficientPoe
                | R::CustomerConsentMissingInPoe
                | R::MissingProducts
                | R::PoeNotAvailable,
            ),
            A::Reviewer,
        ) => Some(S::Rejected),
        // The worker rejects when the partner response window passes.
        (S::PartnerActionRequired, T::Reject(R::NoPartnerResponse), A::System) => Some(S::Rejected),
        // The customer declines during the consent window; recorded by the customer or the worker.
        (S::Approved, T::Reject(R::CustomerDeclined), A::Customer | A::System) => Some(S::Rejected),
        (S::Rejected, T::OverturnDispute, A::Reviewer) => Some(S::Approved),
        _ => None,
    };
    to.ok_or(TransitionRefused {
        from,
        transition,
        actor,
    })
}

/// Whether the partner may edit the claim's fields in this status (SPEC §2).
pub fn partner_may_edit(status: ClaimStatus) -> bool {
    matches!(
        status,
        ClaimStatus::Submitted | ClaimStatus::PartnerActionRequired
    )
}

/// One row of `claim_history`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct HistoryEntry {
    /// The claim.
    pub claim_id: String,
    /// When it happened.
    pub occurred_at: chrono::DateTime<chrono::Utc>,
    /// Who did it.
    pub actor: Actor,
    /// What was done, e.g. `auto_rejected`.
    pub action: String,
    /// Timer, deadline, calendar, reason.
    pub details: crate::json_text::JsonText,
}

/// A status change the worker makes, compare-and-set on the claim's status and version.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusChange {
    /// The new status.
    pub to: ClaimStatus,
    /// The rejection reason, when `to` is `rejected`.
    pub rejection_reason: Option<RejectionReason>,
}

#[cfg(test)]
mod tests;
