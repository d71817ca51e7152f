//! Sample claims for trying the worker out: every status, several countries and locales, with
//! timestamps relative to `now` so that some deadlines have already passed. Loading them never
//! touches a claim that is already there.

use chrono::{DateTime, Duration, Utc};

use crate::claim::ClaimRow;
use crate::store::{Store, StoreError};

/// What [`load_free`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DemoLoad {
    /// Sample claims written (their ids were free).
    pub inserted: Vec<String>,
    /// Sample ids already taken by a claim, which was left as it was.
    pub taken: Vec<String>,
}

/// Writes the sample claims whose ids no claim has yet; an existing claim (even an unreadable
/// one) is never changed. Not atomic against a writer adding the same id meanwhile: meant for
/// a database nobody else is filling.
pub async fn load_free<S: Store>(store: &S, now: DateTime<Utc>) -> Result<DemoLoad, StoreError> {
    let mut out = DemoLoad::default();
    for row in demo_claims(now) {
        match store.claim(&row.id).await {
            Err(StoreError::NotFound(_)) => {
                store.put_claim_row(&row).await?;
                out.inserted.push(row.id);
            }
            Ok(_) | Err(StoreError::BadClaim(_)) => out.taken.push(row.id),
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// A partner or customer of the sample set.
struct Party {
    id: &'static str,
    name: &'static str,
    email: &'static str,
}

const PARTNERS: [Party; 4] = [
    Party {
        id: "P-1001",
        name: "Nordljus Konsult AB",
        email: "claims@nordljus.example",
    },
    Party {
        id: "P-1002",
        name: "Harbor Point Solutions LLC",
        email: "cpor@harborpoint.example",
    },
    Party {
        id: "P-1003",
        name: "Thames Digital Ltd",
        email: "partners@thamesdigital.example",
    },
    Party {
        id: "P-1004",
        name: "Rheinwerk IT GmbH",
        email: "vertrieb@rheinwerk.example",
    },
];

const CUSTOMERS: [Party; 4] = [
    Party {
        id: "T-5001",
        name: "Åkerlund & Söner AB",
        email: "it@akerlund.example",
    },
    Party {
        id: "T-5002",
        name: "Cedar Valley Health",
        email: "admin@cedarvalley.example",
    },
    Party {
        id: "T-5003",
        name: "Brighton Foods plc",
        email: "it-ops@brightonfoods.example",
    },
    Party {
        id: "T-5004",
        name: "Müller Logistik KG",
        email: "edv@mueller-logistik.example",
    },
];

/// Country, time zone (None: the calendar's) and locale of each market in the set.
const MARKETS: [(&str, Option<&str>, &str); 4] = [
    ("SE", Some("Europe/Stockholm"), "sv-SE"),
    ("US", Some("America/Los_Angeles"), "en-US"),
    ("GB", None, "en-GB"),
    ("DE", Some("Europe/Berlin"), "de-DE"),
];

/// The sample claims as rows, every timestamp `now` minus some hours.
pub fn demo_claims(now: DateTime<Utc>) -> Vec<ClaimRow> {
    let ago = |hours: i64| Some(now - Duration::hours(hours));
    let day = 24;
    // (status, market, hours since submission, then per-status fields)
    let mut rows = Vec::new();
    let mut add = |n: usize, status: &str, market: usize, f: &dyn Fn(&mut ClaimRow)| {
        let (country, tz, locale) = MARKETS[market];
        let p = &PARTNERS[market];
        let c = &CUSTOMERS[(market + n) % CUSTOMERS.len()];
        let mut row = ClaimRow {
            id: format!("CPOR-{:06}", 100_000 + n),
            status: status.to_owned(),
            partner_id: Some(p.id.to_owned()),
            partner_name: Some(p.name.to_owned()),
            partner_email: Some(p.email.to_owned()),
            customer_tenant_id: Some(c.id.to_owned()),
            customer_name: Some(c.name.to_owned()),
            customer_email: Some(c.email.to_owned()),
            products: Some(
                ["Dynamics 365 Sales", "Microsoft 365 E5", "Power BI Pro"][n % 3].to_owned(),
            ),
            country: Some(country.to_owned()),
            time_zone: tz.map(str::to_owned),
            locale: Some(locale.to_owned()),
            version: 1,
            ..ClaimRow::default()
        };
        f(&mut row);
        row.updated_at = [
            row.submitted_at,
            row.review_started_at,
            row.info_requested_at,
            row.approved_at,
            row.rejected_at,
            row.customer_declined_at,
            row.dispute_opened_at,
            row.dispute_resolved_at,
        ]
        .into_iter()
        .flatten()
        .max()
        .or(Some(now - Duration::hours(1)));
        rows.push(row);
    };

    add(1, "draft", 0, &|_| {});
    add(2, "submitted", 1, &|r| r.submitted_at = ago(5));
    add(3, "submitted", 2, &|r| r.submitted_at = ago(9 * day));
    add(4, "under_review", 3, &|r| {
        r.submitted_at = ago(3 * day);
        r.review_started_at = ago(2 * day);
    });
    add(5, "under_review", 0, &|r| {
        r.submitted_at = ago(12 * day);
        r.review_started_at = ago(10 * day);
    });
    add(6, "partner_action_required", 0, &|r| {
        r.submitted_at = ago(6 * day);
        r.review_started_at = ago(5 * day);
        r.info_requested_at = ago(day);
        r.info_request_reason = Some("missing_customer_signature".into());
    });
    add(7, "partner_action_required", 1, &|r| {
        r.submitted_at = ago(15 * day);
        r.review_started_at = ago(13 * day);
        r.info_requested_at = ago(10 * day);
        r.info_request_reason = Some("missing_or_old_dates".into());
    });
    add(8, "partner_action_required", 2, &|r| {
        r.submitted_at = ago(9 * day);
        r.review_started_at = ago(8 * day);
        r.info_requested_at = ago(6 * day);
        r.info_request_reason = Some("missing_products".into());
    });
    add(9, "approved", 0, &|r| {
        r.submitted_at = ago(4 * day);
        r.review_started_at = ago(3 * day);
        r.approved_at = ago(2);
    });
    add(10, "approved", 1, &|r| {
        r.submitted_at = ago(8 * day);
        r.review_started_at = ago(7 * day);
        r.approved_at = ago(3 * day);
    });
    add(11, "approved", 3, &|r| {
        r.submitted_at = ago(16 * day);
        r.review_started_at = ago(14 * day);
        r.approved_at = ago(10 * day);
    });
    add(12, "approved", 2, &|r| {
        r.submitted_at = ago(9 * day);
        r.review_started_at = ago(8 * day);
        r.approved_at = ago(4 * day);
        r.customer_declined_at = ago(6);
    });
    add(13, "rejected", 0, &|r| {
        r.submitted_at = ago(5 * day);
        r.review_started_at = ago(4 * day);
        r.rejected_at = ago(3);
        r.rejection_reason = Some("insufficient_poe".into());
    });
    add(14, "rejected", 1, &|r| {
        r.submitted_at = ago(50 * day);
        r.review_started_at = ago(48 * day);
        r.rejected_at = ago(40 * day);
        r.rejection_reason = Some("poe_not_available".into());
    });
    add(15, "rejected", 0, &|r| {
        r.submitted_at = ago(20 * day);
        r.review_started_at = ago(18 * day);
        r.rejected_at = ago(15 * day);
        r.rejection_reason = Some("missing_products".into());
        r.dispute_opened_at = ago(9 * day);
    });
    add(16, "rejected", 2, &|r| {
        r.submitted_at = ago(30 * day);
        r.review_started_at = ago(28 * day);
        r.rejected_at = ago(20 * day);
        r.rejection_reason = Some("customer_consent_missing_in_poe".into());
        r.dispute_opened_at = ago(12 * day);
        r.dispute_resolved_at = ago(8 * day);
    });
    add(17, "rejected", 3, &|r| {
        r.submitted_at = ago(2 * day);
        r.rejected_at = ago(day);
        r.rejection_reason = Some("partner_request".into());
    });
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claim::Claim;
    use crate::lifecycle::ClaimStatus;

    #[test]
    fn every_status_and_market_appears_and_every_row_parses() {
        let now: chrono::DateTime<Utc> = "2027-01-12T08:00:00Z".parse().unwrap();
        let claims: Vec<Claim> = demo_claims(now)
            .into_iter()
            .map(|r| Claim::try_from(r).unwrap())
            .collect();
        for s in ClaimStatus::ALL {
            assert!(claims.iter().any(|c| c.status == *s), "{s} missing");
        }
        for (cc, _, _) in MARKETS {
            assert!(claims.iter().any(|c| c.country == cc), "{cc} missing");
        }
        assert!(
            claims
                .iter()
                .all(|c| c.updated_at.is_some_and(|t| t <= now))
        );
    }
}
