//! The emails the worker sends: one vocabulary for the timers that plan them, the outbox that
//! stores them and the templates that render them.

crate::lifecycle::id_enum!(
    /// The emails the worker sends; the snake_case id names the template files and the outbox rows.
    EmailKind, "email", {
        /// To the partner: answer the reviewer's information request before the last day.
        PartnerResponseReminder => "partner_response_reminder",
        /// To the partner: the claim was rejected (any reason); why, and how to dispute.
        ClaimRejected => "claim_rejected",
        /// To the customer: a partner claims an association; how to decline.
        ConsentRequest => "consent_request",
        /// To the partner: approved; the customer may decline until the window's last day.
        PartnerApprovalNotice => "partner_approval_notice",
        /// To the partner: the consent window passed; forwarded to incentive evaluation.
        ForwardedToIncentiveEvaluation => "forwarded_to_incentive_evaluation",
        /// To operations: the SLA breaches of a pass (sent per pass, not by a claim's timer).
        SlaAlertDigest => "sla_alert_digest",
    }
);

/// Who an email is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// The claim's partner (`partner_name`, `partner_email`).
    Partner,
    /// The claim's customer (`customer_name`, `customer_email`).
    Customer,
    /// The operations address (`mail.ops_alert_to`).
    Operations,
}

impl EmailKind {
    /// Who receives this email.
    pub const fn audience(self) -> Audience {
        match self {
            Self::ConsentRequest => Audience::Customer,
            Self::SlaAlertDigest => Audience::Operations,
            _ => Audience::Partner,
        }
    }
}
