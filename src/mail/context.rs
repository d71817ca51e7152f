//! What each email says, as typed data: one struct per template, one [`EmailContext`] enum over
//! them that serialises to JSON (tagged by `template`) so the outbox can store it and render later.
//!
//! Dates are local calendar dates already resolved in the claim's time zone (the deadline's last
//! day, inclusive); every context that names one also carries that zone (`time_zone`, an IANA
//! name in JSON), so the email can say whose end of day it means. The templates format both
//! per locale.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::claim::Claim;
use crate::lifecycle::{InfoRequestReason, RejectionReason};

use super::kind::EmailKind;

/// `partner_response_reminder`: the reviewer asked for more information.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartnerResponseReminder {
    /// The claim's id.
    pub claim_id: String,
    /// Greeted by name.
    pub partner_name: String,
    /// Which customer the claim is about.
    pub customer_name: String,
    /// What the reviewer asked for.
    pub reason: InfoRequestReason,
    /// Last day to respond, inclusive, in `time_zone`.
    pub last_day: NaiveDate,
    /// The claim's time zone, which `last_day` is in.
    #[serde(with = "tz_name")]
    pub time_zone: Tz,
    /// Where to respond.
    pub dashboard_url: String,
}

/// `claim_rejected`: rejected for any reason; may be disputed until `dispute_last_day`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimRejected {
    /// The claim's id.
    pub claim_id: String,
    /// Greeted by name.
    pub partner_name: String,
    /// Which customer the claim is about.
    pub customer_name: String,
    /// Why it was rejected.
    pub reason: RejectionReason,
    /// Last day to dispute (30 calendar days after the rejection), inclusive, in `time_zone`.
    pub dispute_last_day: NaiveDate,
    /// The claim's time zone, which `dispute_last_day` is in.
    #[serde(with = "tz_name")]
    pub time_zone: Tz,
    /// Where to see the claim and dispute it.
    pub dashboard_url: String,
}

/// `consent_request`: tells the customer who claims an association and how to decline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsentRequest {
    /// The claim's id.
    pub claim_id: String,
    /// Greeted by name.
    pub customer_name: String,
    /// The partner that claims the association.
    pub partner_name: String,
    /// Products the association covers.
    pub products: Vec<String>,
    /// Last day to decline, inclusive, in `time_zone`.
    pub last_day: NaiveDate,
    /// The claim's time zone, which `last_day` is in.
    #[serde(with = "tz_name")]
    pub time_zone: Tz,
    /// The signed decline link ([`crate::mail::decline_link`]).
    pub decline_link: String,
}

/// `partner_approval_notice`: approved; the customer may decline until `consent_last_day`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartnerApprovalNotice {
    /// The claim's id.
    pub claim_id: String,
    /// Greeted by name.
    pub partner_name: String,
    /// Which customer the claim is about.
    pub customer_name: String,
    /// Products the association covers.
    pub products: Vec<String>,
    /// Last day of the customer's consent window, inclusive, in `time_zone`.
    pub consent_last_day: NaiveDate,
    /// The claim's time zone, which `consent_last_day` is in.
    #[serde(with = "tz_name")]
    pub time_zone: Tz,
    /// Where to follow the claim.
    pub dashboard_url: String,
}

/// `forwarded_to_incentive_evaluation`: the consent window passed without a decline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForwardedToIncentiveEvaluation {
    /// The claim's id.
    pub claim_id: String,
    /// Greeted by name.
    pub partner_name: String,
    /// Which customer the claim is about.
    pub customer_name: String,
    /// Products the association covers.
    pub products: Vec<String>,
    /// Where to follow the claim.
    pub dashboard_url: String,
}

/// One SLA breach in a digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlaBreach {
    /// The claim's id.
    pub claim_id: String,
    /// The timer id, e.g. `review_start_sla`.
    pub timer: String,
    /// The instant the SLA ended.
    pub deadline: DateTime<Utc>,
    /// How long past `deadline` the digest was made, in seconds.
    pub overdue_seconds: i64,
}

/// `sla_alert_digest`: a list of SLA breaches for operations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlaAlertDigest {
    /// When the digest was made.
    pub generated_at: DateTime<Utc>,
    /// The breaches, in the order given.
    pub breaches: Vec<SlaBreach>,
}

/// Everything one email needs; JSON form `{"template": "<id>", …fields}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum EmailContext {
    /// See [`PartnerResponseReminder`].
    PartnerResponseReminder(PartnerResponseReminder),
    /// See [`ClaimRejected`].
    ClaimRejected(ClaimRejected),
    /// See [`ConsentRequest`].
    ConsentRequest(ConsentRequest),
    /// See [`PartnerApprovalNotice`].
    PartnerApprovalNotice(PartnerApprovalNotice),
    /// See [`ForwardedToIncentiveEvaluation`].
    ForwardedToIncentiveEvaluation(ForwardedToIncentiveEvaluation),
    /// See [`SlaAlertDigest`].
    SlaAlertDigest(SlaAlertDigest),
}

impl EmailContext {
    /// Which template renders this context.
    pub fn template_id(&self) -> EmailKind {
        match self {
            Self::PartnerResponseReminder(_) => EmailKind::PartnerResponseReminder,
            Self::ClaimRejected(_) => EmailKind::ClaimRejected,
            Self::ConsentRequest(_) => EmailKind::ConsentRequest,
            Self::PartnerApprovalNotice(_) => EmailKind::PartnerApprovalNotice,
            Self::ForwardedToIncentiveEvaluation(_) => EmailKind::ForwardedToIncentiveEvaluation,
            Self::SlaAlertDigest(_) => EmailKind::SlaAlertDigest,
        }
    }

    /// The time zone of the last day this email names (`None` for emails that name none).
    pub fn time_zone(&self) -> Option<Tz> {
        match self {
            Self::PartnerResponseReminder(c) => Some(c.time_zone),
            Self::ClaimRejected(c) => Some(c.time_zone),
            Self::ConsentRequest(c) => Some(c.time_zone),
            Self::PartnerApprovalNotice(c) => Some(c.time_zone),
            Self::ForwardedToIncentiveEvaluation(_) | Self::SlaAlertDigest(_) => None,
        }
    }

    /// The fields as a minijinja value (the struct inside, without the tag).
    pub(crate) fn fields(&self) -> minijinja::Value {
        use minijinja::Value;
        use minijinja::value::Serde;
        match self {
            Self::PartnerResponseReminder(c) => Value::from(Serde(c)),
            Self::ClaimRejected(c) => Value::from(Serde(c)),
            Self::ConsentRequest(c) => Value::from(Serde(c)),
            Self::PartnerApprovalNotice(c) => Value::from(Serde(c)),
            Self::ForwardedToIncentiveEvaluation(c) => Value::from(Serde(c)),
            Self::SlaAlertDigest(c) => Value::from(Serde(c)),
        }
    }

    /// `partner_response_reminder` for `claim` (its info-request reason; `last_day` from the
    /// calendar, in `time_zone`).
    pub fn partner_response_reminder(
        claim: &Claim,
        reason: InfoRequestReason,
        last_day: NaiveDate,
        time_zone: Tz,
        dashboard_url: &Url,
    ) -> Self {
        Self::PartnerResponseReminder(PartnerResponseReminder {
            claim_id: claim.id.clone(),
            partner_name: claim.partner_name.clone(),
            customer_name: claim.customer_name.clone(),
            reason,
            last_day,
            time_zone,
            dashboard_url: dashboard_url.to_string(),
        })
    }

    /// `claim_rejected` for `claim` with `reason`; `dispute_last_day` is 30 calendar days on, in
    /// `time_zone`.
    pub fn claim_rejected(
        claim: &Claim,
        reason: RejectionReason,
        dispute_last_day: NaiveDate,
        time_zone: Tz,
        dashboard_url: &Url,
    ) -> Self {
        Self::ClaimRejected(ClaimRejected {
            claim_id: claim.id.clone(),
            partner_name: claim.partner_name.clone(),
            customer_name: claim.customer_name.clone(),
            reason,
            dispute_last_day,
            time_zone,
            dashboard_url: dashboard_url.to_string(),
        })
    }

    /// `consent_request` for `claim`, `last_day` in `time_zone`; `decline_link` from
    /// [`crate::mail::decline_link`].
    pub fn consent_request(
        claim: &Claim,
        last_day: NaiveDate,
        time_zone: Tz,
        decline_link: String,
    ) -> Self {
        Self::ConsentRequest(ConsentRequest {
            claim_id: claim.id.clone(),
            customer_name: claim.customer_name.clone(),
            partner_name: claim.partner_name.clone(),
            products: split_products(&claim.products),
            last_day,
            time_zone,
            decline_link,
        })
    }

    /// `partner_approval_notice` for `claim`, naming the consent window's last day (in `time_zone`).
    pub fn partner_approval_notice(
        claim: &Claim,
        consent_last_day: NaiveDate,
        time_zone: Tz,
        dashboard_url: &Url,
    ) -> Self {
        Self::PartnerApprovalNotice(PartnerApprovalNotice {
            claim_id: claim.id.clone(),
            partner_name: claim.partner_name.clone(),
            customer_name: claim.customer_name.clone(),
            products: split_products(&claim.products),
            consent_last_day,
            time_zone,
            dashboard_url: dashboard_url.to_string(),
        })
    }

    /// `forwarded_to_incentive_evaluation` for `claim`.
    pub fn forwarded_to_incentive_evaluation(claim: &Claim, dashboard_url: &Url) -> Self {
        Self::ForwardedToIncentiveEvaluation(ForwardedToIncentiveEvaluation {
            claim_id: claim.id.clone(),
            partner_name: claim.partner_name.clone(),
            customer_name: claim.customer_name.clone(),
            products: split_products(&claim.products),
            dashboard_url: dashboard_url.to_string(),
        })
    }
}

/// Serialises a [`Tz`] as its IANA name (`Europe/Stockholm`) and reads it back.
mod tz_name {
    use chrono_tz::Tz;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse()
            .map_err(|_| D::Error::custom(format!("`{name}` is not an IANA time zone")))
    }
}

/// Splits the claims table's `products` text (comma, semicolon or newline separated) into names.
pub fn split_products(products: &str) -> Vec<String> {
    products
        .split([',', ';', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_json_is_tagged_by_template_id_and_round_trips() {
        for ctx in crate::mail::samples::all() {
            let json = serde_json::to_value(&ctx).unwrap();
            assert_eq!(json["template"], ctx.template_id().as_str());
            let back: EmailContext = serde_json::from_value(json).unwrap();
            assert_eq!(back, ctx);
        }
    }

    #[test]
    fn the_time_zone_is_stored_by_its_iana_name_and_checked_when_read() {
        let ctx = crate::mail::samples::claim_rejected(RejectionReason::InsufficientPoe);
        let mut json = serde_json::to_value(&ctx).unwrap();
        assert_eq!(json["time_zone"], "Europe/Stockholm");
        assert_eq!(ctx.time_zone(), Some(chrono_tz::Europe::Stockholm));
        json["time_zone"] = "Mars/Olympus".into();
        let err = serde_json::from_value::<EmailContext>(json).unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"), "{err}");
        assert_eq!(crate::mail::samples::sla_alert_digest().time_zone(), None);
    }

    #[test]
    fn products_split_on_common_separators() {
        assert_eq!(
            split_products(" Dynamics 365 Sales, Microsoft 365 E5;;Teams\n"),
            vec!["Dynamics 365 Sales", "Microsoft 365 E5", "Teams"]
        );
    }
}
