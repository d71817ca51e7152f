//! Whether a queued email still applies to its claim when it is about to be sent: an email
//! waits in the outbox through SMTP outages, and meanwhile the main system may have moved the
//! claim on (a consent request for a claim since rejected, a rejection notice for a rejection
//! since overturned). Such an email is withdrawn, never sent (pure).

use chrono::{DateTime, Utc};

use super::OutboxEmail;
use crate::claim::Claim;
use crate::lifecycle::ClaimStatus;
use crate::mail::EmailKind;
use crate::timers::TimerKind;

/// `Ok` when `email` still belongs to the claim as it stands; otherwise why it no longer does.
/// `consent_sent`: when the consent request of the claim's current approval was delivered, if
/// known (a partner approval notice belongs to the approval whose consent went out at its start).
pub fn still_applies(
    email: &OutboxEmail,
    claim: &Claim,
    consent_sent: Option<DateTime<Utc>>,
) -> Result<(), String> {
    let status = claim.status;
    let start = email.start;
    let approval_stands = || {
        claim
            .customer_declined_at
            .is_none_or(|d| claim.approved_at.is_some_and(|a| d < a))
    };
    let ok = match email.email {
        EmailKind::ConsentRequest => {
            status == ClaimStatus::Approved && claim.approved_at == Some(start) && approval_stands()
        }
        // The notice's run starts when the approval's consent request was delivered, by the
        // worker's clock: with the main system's clock ahead (tolerated up to a day), that can
        // be before `approved_at`, so the notice is matched by that delivery when it is known.
        EmailKind::PartnerApprovalNotice => {
            status == ClaimStatus::Approved
                && approval_stands()
                && match consent_sent {
                    Some(sent) => (sent - start).abs() < chrono::Duration::milliseconds(1),
                    None => claim.approved_at.is_some_and(|a| a <= start),
                }
        }
        EmailKind::PartnerResponseReminder => {
            status == ClaimStatus::PartnerActionRequired && claim.info_requested_at == Some(start)
        }
        EmailKind::ClaimRejected => {
            status == ClaimStatus::Rejected
                && (email.timer != TimerKind::RejectionNotice || claim.rejected_at == Some(start))
        }
        // Forwarding is final, and the digest is not a claim's email.
        EmailKind::ForwardedToIncentiveEvaluation | EmailKind::SlaAlertDigest => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "not sent: the claim moved on before it could be delivered (now {status}); \
             the {} of {} no longer applies",
            email.email,
            start.to_rfc3339()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim::ClaimRow;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn claim(status: &str, f: impl FnOnce(&mut ClaimRow)) -> Claim {
        let mut r = ClaimRow {
            id: "c1".into(),
            status: status.into(),
            partner_name: Some("P".into()),
            partner_email: Some("p@example.com".into()),
            customer_name: Some("C".into()),
            customer_email: Some("c@example.com".into()),
            products: Some("X".into()),
            country: Some("SE".into()),
            submitted_at: Some(t("2027-01-01T09:00:00Z")),
            updated_at: Some(t("2027-01-01T09:00:00Z")),
            version: 1,
            ..ClaimRow::default()
        };
        f(&mut r);
        Claim::try_from(r).unwrap()
    }

    fn email(kind: EmailKind, timer: TimerKind, start: &str) -> OutboxEmail {
        OutboxEmail {
            message_id: "m".into(),
            claim_id: "c1".into(),
            timer,
            start: t(start),
            email: kind,
            to_name: "C".into(),
            to_address: "c@example.com".into(),
            locale: "sv".into(),
            payload: crate::json_text::JsonText::default(),
            not_after: None,
            announced: None,
            calendar_version: None,
            template_version: None,
        }
    }

    const APPROVED: &str = "2027-01-04T10:00:00Z";

    fn approved(f: impl FnOnce(&mut ClaimRow)) -> Claim {
        claim("approved", |r| {
            r.approved_at = Some(t(APPROVED));
            f(r);
        })
    }

    #[test]
    fn a_consent_request_applies_only_to_its_standing_approval() {
        let e = email(
            EmailKind::ConsentRequest,
            TimerKind::ConsentNotification,
            APPROVED,
        );
        assert!(still_applies(&e, &approved(|_| {}), None).is_ok());
        let rejected = claim("rejected", |r| {
            r.approved_at = Some(t(APPROVED));
            r.rejected_at = Some(t("2027-01-05T10:00:00Z"));
            r.rejection_reason = Some("customer_declined".into());
            r.customer_declined_at = Some(t("2027-01-05T09:00:00Z"));
        });
        let why = still_applies(&e, &rejected, None).unwrap_err();
        assert!(why.contains("now rejected"), "{why}");
        let declined = approved(|r| r.customer_declined_at = Some(t("2027-01-05T09:00:00Z")));
        assert!(still_applies(&e, &declined, None).is_err());
        // Approved again later: the old approval's email is not the new one's.
        let again = approved(|r| r.approved_at = Some(t("2027-02-01T10:00:00Z")));
        assert!(still_applies(&e, &again, None).is_err());
        // A decline of an earlier approval does not withdraw this one's email.
        let earlier = approved(|r| r.customer_declined_at = Some(t("2027-01-02T09:00:00Z")));
        assert!(still_applies(&e, &earlier, None).is_ok());
    }

    #[test]
    fn a_rejection_notice_is_withdrawn_once_the_rejection_is_overturned() {
        let rejected_at = "2027-01-05T10:00:00Z";
        let e = email(
            EmailKind::ClaimRejected,
            TimerKind::RejectionNotice,
            rejected_at,
        );
        let rejected = claim("rejected", |r| {
            r.rejected_at = Some(t(rejected_at));
            r.rejection_reason = Some("insufficient_poe".into());
        });
        assert!(still_applies(&e, &rejected, None).is_ok());
        assert!(still_applies(&e, &approved(|_| {}), None).is_err());
        // The worker's own rejection (its start is the information request) needs only the status.
        let own = email(
            EmailKind::ClaimRejected,
            TimerKind::PartnerResponseDeadline,
            "2027-01-01T10:00:00Z",
        );
        assert!(still_applies(&own, &rejected, None).is_ok());
    }

    #[test]
    fn a_reminder_is_withdrawn_once_the_partner_answered() {
        let asked = "2027-01-04T10:00:00Z";
        let e = email(
            EmailKind::PartnerResponseReminder,
            TimerKind::PartnerResponseReminder,
            asked,
        );
        let waiting = claim("partner_action_required", |r| {
            r.info_requested_at = Some(t(asked));
            r.info_request_reason = Some("missing_products".into());
        });
        assert!(still_applies(&e, &waiting, None).is_ok());
        let answered = claim("under_review", |r| {
            r.info_requested_at = Some(t(asked));
            r.review_started_at = Some(t("2027-01-02T10:00:00Z"));
        });
        assert!(still_applies(&e, &answered, None).is_err());
    }

    #[test]
    fn forwarding_news_is_always_sent() {
        let e = email(
            EmailKind::ForwardedToIncentiveEvaluation,
            TimerKind::ConsentWindowClose,
            APPROVED,
        );
        let rejected = claim("rejected", |r| {
            r.rejected_at = Some(t("2027-01-20T10:00:00Z"));
            r.rejection_reason = Some("insufficient_poe".into());
        });
        assert!(still_applies(&e, &rejected, None).is_ok());
    }

    #[test]
    fn an_approval_notice_belongs_to_the_approval_whose_consent_went_out_at_its_start() {
        // The consent went out at 10:00 by the worker's clock; the main system's clock, ahead,
        // stamped the approval 10:09.
        let sent = "2027-01-04T10:00:00Z";
        let e = email(
            EmailKind::PartnerApprovalNotice,
            TimerKind::PartnerApprovalNotice,
            sent,
        );
        let skewed = approved(|r| r.approved_at = Some(t("2027-01-04T10:09:00Z")));
        assert!(still_applies(&e, &skewed, Some(t(sent))).is_ok());
        // Approved again, and that approval's consent went out later: the old notice is stale.
        let again = approved(|r| r.approved_at = Some(t("2027-01-04T11:00:00Z")));
        let why = still_applies(&e, &again, Some(t("2027-01-04T11:00:05Z"))).unwrap_err();
        assert!(why.contains("no longer applies"), "{why}");
        // Without the delivery known, the notice must not predate the approval.
        assert!(still_applies(&e, &skewed, None).is_err());
        assert!(still_applies(&e, &approved(|_| {}), None).is_ok());
        // Declined: withdrawn whatever the delivery.
        let declined = approved(|r| r.customer_declined_at = Some(t("2027-01-05T09:00:00Z")));
        assert!(still_applies(&e, &declined, Some(t(sent))).is_err());
    }
}
