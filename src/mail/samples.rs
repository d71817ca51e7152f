//! Sample data for every template: the start-up render check, `send-test-email` and tests.
//! Dates are in [`SAMPLE_ZONE`] (Stockholm).

use chrono::{NaiveDate, TimeZone, Utc};

use super::context::*;
use crate::lifecycle::{InfoRequestReason, RejectionReason};

/// The time zone of every sample's last day.
pub const SAMPLE_ZONE: chrono_tz::Tz = chrono_tz::Europe::Stockholm;

const DASHBOARD: &str = "https://partner.example.com/dashboard/incentives/claims/associations";

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn products() -> Vec<String> {
    vec!["Dynamics 365 Sales".into(), "Microsoft 365 E5".into()]
}

/// One context per template, in [`EmailKind::ALL`] order, with Swedish letters in the names.
pub fn all() -> Vec<EmailContext> {
    vec![
        partner_response_reminder(InfoRequestReason::MissingCustomerSignature),
        claim_rejected(RejectionReason::NoPartnerResponse),
        consent_request("https://partner.example.com/cpor/decline?token=SAMPLE"),
        EmailContext::PartnerApprovalNotice(PartnerApprovalNotice {
            claim_id: "CLM-2027-0042".into(),
            partner_name: "Ängsö Konsult AB".into(),
            customer_name: "Björkö Fastigheter AB".into(),
            products: products(),
            consent_last_day: day(2027, 1, 15),
            time_zone: SAMPLE_ZONE,
            dashboard_url: DASHBOARD.into(),
        }),
        EmailContext::ForwardedToIncentiveEvaluation(ForwardedToIncentiveEvaluation {
            claim_id: "CLM-2027-0042".into(),
            partner_name: "Ängsö Konsult AB".into(),
            customer_name: "Björkö Fastigheter AB".into(),
            products: products(),
            dashboard_url: DASHBOARD.into(),
        }),
        sla_alert_digest(),
    ]
}

/// A reminder sample with `reason`; last day Friday 8 January 2027.
pub fn partner_response_reminder(reason: InfoRequestReason) -> EmailContext {
    EmailContext::PartnerResponseReminder(PartnerResponseReminder {
        claim_id: "CLM-2027-0042".into(),
        partner_name: "Ängsö Konsult AB".into(),
        customer_name: "Björkö Fastigheter AB".into(),
        reason,
        last_day: day(2027, 1, 8),
        time_zone: SAMPLE_ZONE,
        dashboard_url: DASHBOARD.into(),
    })
}

/// A rejection sample with `reason`; last day to dispute Friday 8 January 2027.
pub fn claim_rejected(reason: RejectionReason) -> EmailContext {
    EmailContext::ClaimRejected(ClaimRejected {
        claim_id: "CLM-2027-0042".into(),
        partner_name: "Ängsö Konsult AB".into(),
        customer_name: "Björkö Fastigheter AB".into(),
        reason,
        dispute_last_day: day(2027, 1, 8),
        time_zone: SAMPLE_ZONE,
        dashboard_url: DASHBOARD.into(),
    })
}

/// A consent request sample with `decline_link`; last day Friday 8 January 2027.
pub fn consent_request(decline_link: &str) -> EmailContext {
    EmailContext::ConsentRequest(ConsentRequest {
        claim_id: "CLM-2027-0042".into(),
        customer_name: "Björkö Fastigheter AB".into(),
        partner_name: "Ängsö Konsult AB".into(),
        products: products(),
        last_day: day(2027, 1, 8),
        time_zone: SAMPLE_ZONE,
        decline_link: decline_link.into(),
    })
}

/// An SLA digest sample with two breaches.
pub fn sla_alert_digest() -> EmailContext {
    let at = |d, h| {
        Utc.with_ymd_and_hms(2027, 1, d, h, 0, 0)
            .single()
            .unwrap_or_default()
    };
    EmailContext::SlaAlertDigest(SlaAlertDigest {
        generated_at: at(8, 9),
        breaches: vec![
            SlaBreach {
                claim_id: "CLM-2027-0042".into(),
                timer: "review_start_sla".into(),
                deadline: at(7, 23),
                overdue_seconds: 10 * 3600,
            },
            SlaBreach {
                claim_id: "CLM-2027-0057".into(),
                timer: "dispute_review_sla".into(),
                deadline: at(5, 23),
                overdue_seconds: 2 * 86400 + 10 * 3600 + 15 * 60,
            },
        ],
    })
}
