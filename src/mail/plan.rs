//! The email a timer plans, as the outbox stores it: the recipient, the locale and the facts its
//! template shows. [`EmailPlan::context`] is the one conversion from those stored facts to the
//! [`EmailContext`] a template renders, made when the email is delivered.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::calendar::deadline_in_calendar_days;
use crate::claim::parse_time_zone;
use crate::config::{Secret, split_mailbox};
use crate::lifecycle::{InfoRequestReason, RejectionReason};

use super::context::{
    ClaimRejected, ConsentRequest, EmailContext, ForwardedToIncentiveEvaluation,
    PartnerApprovalNotice, PartnerResponseReminder, split_products,
};
use super::kind::EmailKind;
use super::token::decline_link;

/// Calendar days the customer has to decline after the consent email was sent. The window opens
/// when that email is delivered, so delivery counts it too ([`EmailPlan::context`]).
pub const CONSENT_WINDOW_DAYS: u32 = 7;

/// Who an email goes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Display name.
    pub name: String,
    /// Address.
    pub address: String,
}

impl Recipient {
    /// The recipient a mailbox setting (`Name <addr>` or a bare `addr`) names, called
    /// `default_name` when the setting gives no name.
    pub fn from_mailbox(mailbox: &str, default_name: &str) -> Recipient {
        let (name, address) = split_mailbox(mailbox);
        Recipient {
            name: if name.is_empty() { default_name } else { name }.to_owned(),
            address: address.trim().to_owned(),
        }
    }
}

/// An email a timer sends, with the facts its template shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmailPlan {
    /// Which email.
    pub kind: EmailKind,
    /// The recipient.
    pub to: Recipient,
    /// The claim's locale (templates fall back to the language, then `en`).
    pub locale: String,
    /// The claim.
    pub claim_id: String,
    /// The partner's name.
    pub partner_name: String,
    /// The customer's name.
    pub customer_name: String,
    /// What the partner claims.
    pub products: String,
    /// Why more information was asked for (reminder).
    pub info_request_reason: Option<InfoRequestReason>,
    /// Why the claim was rejected (rejection email).
    pub rejection_reason: Option<RejectionReason>,
    /// The last day (inclusive, local) the email names: to respond, to decline, or to dispute.
    #[serde(serialize_with = "crate::rfc3339::opt_date")]
    pub last_day: Option<NaiveDate>,
    /// The instant that last day ends (the consent window's end signs the decline link).
    #[serde(serialize_with = "crate::rfc3339::opt_instant")]
    pub window_end: Option<DateTime<Utc>>,
    /// The zone `last_day` is in.
    pub time_zone: String,
}

/// The links an email carries and the key that signs its decline link.
#[derive(Clone, Copy, Debug)]
pub struct Links<'a> {
    /// The partner dashboard.
    pub dashboard_url: &'a Url,
    /// Where a customer declines a consent request.
    pub decline_url: &'a Url,
    /// Signs the decline links.
    pub secret: &'a Secret<String>,
}

impl EmailPlan {
    /// The instant after which the email must not be sent: the deadline or window it names
    /// (a reminder after its deadline, a dispute invitation after the window closed). The consent
    /// request has none: its window starts when it is delivered.
    pub fn not_after(&self) -> Option<DateTime<Utc>> {
        match self.kind {
            EmailKind::PartnerResponseReminder
            | EmailKind::ClaimRejected
            | EmailKind::PartnerApprovalNotice => self.window_end,
            EmailKind::ConsentRequest
            | EmailKind::ForwardedToIncentiveEvaluation
            | EmailKind::SlaAlertDigest => None,
        }
    }

    /// What the template of this email shows when it is delivered at `sent`, or why it cannot
    /// be written. A consent request names the window its delivery opens (SPEC §4): its last day
    /// is counted from `sent`, in the claim's zone, not from when it was planned.
    pub fn context(&self, links: Links<'_>, sent: DateTime<Utc>) -> Result<EmailContext, String> {
        let dashboard_url = links.dashboard_url.to_string();
        let time_zone = parse_time_zone(&self.time_zone)?;
        let last_day = || {
            self.last_day
                .ok_or_else(|| format!("{} needs a last day", self.kind))
        };
        Ok(match self.kind {
            EmailKind::PartnerResponseReminder => {
                EmailContext::PartnerResponseReminder(PartnerResponseReminder {
                    reason: self
                        .info_request_reason
                        .ok_or("the claim has no info_request_reason to remind the partner of")?,
                    last_day: last_day()?,
                    time_zone,
                    claim_id: self.claim_id.clone(),
                    partner_name: self.partner_name.clone(),
                    customer_name: self.customer_name.clone(),
                    dashboard_url,
                })
            }
            EmailKind::ClaimRejected => EmailContext::ClaimRejected(ClaimRejected {
                reason: self
                    .rejection_reason
                    .ok_or("the claim has no rejection_reason to name")?,
                dispute_last_day: last_day()?,
                time_zone,
                claim_id: self.claim_id.clone(),
                partner_name: self.partner_name.clone(),
                customer_name: self.customer_name.clone(),
                dashboard_url,
            }),
            EmailKind::ConsentRequest => {
                let window = deadline_in_calendar_days(time_zone, sent, CONSENT_WINDOW_DAYS)
                    .map_err(|e| e.to_string())?;
                EmailContext::ConsentRequest(ConsentRequest {
                    decline_link: decline_link(
                        links.decline_url,
                        links.secret,
                        &self.claim_id,
                        window.due,
                    ),
                    last_day: window.last_day,
                    time_zone,
                    products: split_products(&self.products),
                    claim_id: self.claim_id.clone(),
                    customer_name: self.customer_name.clone(),
                    partner_name: self.partner_name.clone(),
                })
            }
            EmailKind::PartnerApprovalNotice => {
                EmailContext::PartnerApprovalNotice(PartnerApprovalNotice {
                    consent_last_day: last_day()?,
                    time_zone,
                    products: split_products(&self.products),
                    claim_id: self.claim_id.clone(),
                    partner_name: self.partner_name.clone(),
                    customer_name: self.customer_name.clone(),
                    dashboard_url,
                })
            }
            EmailKind::SlaAlertDigest => return Err("a digest is not a claim's email".to_owned()),
            EmailKind::ForwardedToIncentiveEvaluation => {
                EmailContext::ForwardedToIncentiveEvaluation(ForwardedToIncentiveEvaluation {
                    products: split_products(&self.products),
                    claim_id: self.claim_id.clone(),
                    partner_name: self.partner_name.clone(),
                    customer_name: self.customer_name.clone(),
                    dashboard_url,
                })
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::start_of_local_day;

    #[test]
    fn mailboxes_name_their_recipient() {
        let r = |s: &str| {
            let r = Recipient::from_mailbox(s, "Operations");
            (r.name, r.address)
        };
        assert_eq!(
            r("Ops <ops@x.example>"),
            ("Ops".into(), "ops@x.example".into())
        );
        assert_eq!(
            r("\"On Call\" <oc@x.example>"),
            ("On Call".into(), "oc@x.example".into())
        );
        assert_eq!(
            r("ops@x.example"),
            ("Operations".into(), "ops@x.example".into())
        );
        assert_eq!(
            r(" <ops@x.example> "),
            ("Operations".into(), "ops@x.example".into())
        );
    }

    /// The consent window as delivery counted it by hand before it used the calendar's count.
    fn by_hand(tz: chrono_tz::Tz, sent: DateTime<Utc>) -> (NaiveDate, DateTime<Utc>) {
        let last = sent.with_timezone(&tz).date_naive()
            + chrono::Days::new(u64::from(CONSENT_WINDOW_DAYS));
        let end = start_of_local_day(last.succ_opt().unwrap(), tz).unwrap();
        (last, end)
    }

    fn consent(time_zone: &str) -> EmailPlan {
        EmailPlan {
            kind: EmailKind::ConsentRequest,
            to: Recipient {
                name: "C".into(),
                address: "c@x.example".into(),
            },
            locale: "en".into(),
            claim_id: "c1".into(),
            partner_name: "P".into(),
            customer_name: "C".into(),
            products: "A, B".into(),
            info_request_reason: None,
            rejection_reason: None,
            last_day: None,
            window_end: None,
            time_zone: time_zone.into(),
        }
    }

    #[test]
    fn the_consent_window_is_counted_from_delivery_as_before() {
        let dashboard_url: Url = "https://partners.example/claims".parse().unwrap();
        let decline_url: Url = "https://decline.example/d".parse().unwrap();
        let secret = Secret::new("plan-test-key-0123456789abcdef".to_owned());
        let links = Links {
            dashboard_url: &dashboard_url,
            decline_url: &decline_url,
            secret: &secret,
        };
        let zones = [
            "Europe/Stockholm",
            "America/Havana",
            "America/Santiago",
            "Asia/Beirut",
            "Pacific/Kiritimati",
            "UTC",
        ];
        // Every hour for two years: every DST change and new year in those zones.
        let start: DateTime<Utc> = "2026-01-01T00:30:00Z".parse().unwrap();
        for zone in zones {
            let tz: chrono_tz::Tz = zone.parse().unwrap();
            let plan = consent(zone);
            for h in (0..2 * 366 * 24).step_by(7) {
                let sent = start + chrono::Duration::hours(h);
                let EmailContext::ConsentRequest(c) = plan.context(links, sent).unwrap() else {
                    panic!("a consent request");
                };
                let (last, end) = by_hand(tz, sent);
                assert_eq!(c.last_day, last, "{zone} {sent}");
                assert_eq!(
                    c.decline_link,
                    decline_link(&decline_url, &secret, "c1", end),
                    "{zone} {sent}"
                );
            }
        }
    }
}
