//! One claim as the worker reads it (SPEC §5), parsed at the boundary from a database row.

use chrono::{DateTime, SubsecRound, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::lifecycle::{ClaimStatus, InfoRequestReason, RejectionReason};

/// A claim row exactly as stored, text where the database has text.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct ClaimRow {
    pub id: String,
    pub status: String,
    pub partner_id: Option<String>,
    pub partner_name: Option<String>,
    pub partner_email: Option<String>,
    pub customer_tenant_id: Option<String>,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub products: Option<String>,
    pub country: Option<String>,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub review_started_at: Option<DateTime<Utc>>,
    pub info_requested_at: Option<DateTime<Utc>>,
    pub info_request_reason: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<String>,
    pub customer_declined_at: Option<DateTime<Utc>>,
    pub dispute_opened_at: Option<DateTime<Utc>>,
    pub dispute_resolved_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// A claim whose row parsed: known status and reasons, a real time zone, a country code.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[allow(missing_docs)]
pub struct Claim {
    pub id: String,
    pub status: ClaimStatus,
    pub partner_id: String,
    pub partner_name: String,
    pub partner_email: String,
    pub customer_tenant_id: String,
    pub customer_name: String,
    pub customer_email: String,
    pub products: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
    /// The claim's own time zone, if set; else its calendar's applies.
    #[serde(serialize_with = "ser_tz")]
    pub time_zone: Option<Tz>,
    /// BCP 47 tag, e.g. `sv-SE`; `en` when the row has none.
    pub locale: String,
    /// The customer's own locale, from the optional `customer_locale` column when the main
    /// system has it (the consent email's language); else `locale` applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_locale: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub review_started_at: Option<DateTime<Utc>>,
    pub info_requested_at: Option<DateTime<Utc>>,
    pub info_request_reason: Option<InfoRequestReason>,
    pub approved_at: Option<DateTime<Utc>>,
    pub rejected_at: Option<DateTime<Utc>>,
    pub rejection_reason: Option<RejectionReason>,
    pub customer_declined_at: Option<DateTime<Utc>>,
    pub dispute_opened_at: Option<DateTime<Utc>>,
    pub dispute_resolved_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Bumped by every writer; the worker's changes are compare-and-set on it.
    pub version: i64,
}

fn ser_tz<S: serde::Serializer>(tz: &Option<Tz>, s: S) -> Result<S::Ok, S::Error> {
    match tz {
        Some(tz) => s.serialize_some(tz.name()),
        None => s.serialize_none(),
    }
}

/// Why a claim row cannot be used; the claim is skipped and reported, the rest go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("claim `{claim_id}`: {problem}")]
pub struct BadClaim {
    /// The row's id.
    pub claim_id: String,
    /// What is wrong with it.
    pub problem: String,
}

impl TryFrom<ClaimRow> for Claim {
    type Error = BadClaim;

    fn try_from(row: ClaimRow) -> Result<Self, BadClaim> {
        let bad = |problem: String| BadClaim {
            claim_id: row.id.clone(),
            problem,
        };
        let status = row
            .status
            .parse::<ClaimStatus>()
            .map_err(|e| bad(format!("column status: {e}")))?;
        let info_request_reason = row
            .info_request_reason
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::parse::<InfoRequestReason>)
            .transpose()
            .map_err(|e| bad(format!("column info_request_reason: {e}")))?;
        let rejection_reason = row
            .rejection_reason
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::parse::<RejectionReason>)
            .transpose()
            .map_err(|e| bad(format!("column rejection_reason: {e}")))?;
        let country = parse_country(row.country.as_deref().unwrap_or(""))
            .map_err(|e| bad(format!("column country: {e}")))?;
        let time_zone = row
            .time_zone
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(parse_time_zone)
            .transpose()
            .map_err(|e| bad(format!("column time_zone: {e}")))?;
        let locale = match row.locale.as_deref().map(str::trim) {
            None | Some("") => "en".to_owned(),
            Some(l) => parse_locale(l).map_err(|e| bad(format!("column locale: {e}")))?,
        };
        // The worker's own tables keep microseconds: an event is the same instant everywhere.
        let us = |t: Option<DateTime<Utc>>| t.map(|t| t.trunc_subsecs(6));
        Ok(Claim {
            status,
            info_request_reason,
            rejection_reason,
            country,
            time_zone,
            locale,
            customer_locale: None,
            partner_id: row.partner_id.unwrap_or_default(),
            partner_name: row.partner_name.unwrap_or_default(),
            partner_email: row.partner_email.unwrap_or_default(),
            customer_tenant_id: row.customer_tenant_id.unwrap_or_default(),
            customer_name: row.customer_name.unwrap_or_default(),
            customer_email: row.customer_email.unwrap_or_default(),
            products: row.products.unwrap_or_default(),
            submitted_at: us(row.submitted_at),
            review_started_at: us(row.review_started_at),
            info_requested_at: us(row.info_requested_at),
            approved_at: us(row.approved_at),
            rejected_at: us(row.rejected_at),
            customer_declined_at: us(row.customer_declined_at),
            dispute_opened_at: us(row.dispute_opened_at),
            dispute_resolved_at: us(row.dispute_resolved_at),
            updated_at: us(row.updated_at),
            version: row.version,
            id: row.id,
        })
    }
}

impl Claim {
    /// The locale of emails to the customer: `customer_locale`, else the claim's `locale`.
    pub fn customer_email_locale(&self) -> &str {
        self.customer_locale.as_deref().unwrap_or(&self.locale)
    }

    /// When a dispute of the current rejection was opened: a dispute opened before the claim was
    /// last rejected belongs to an earlier rejection and does not count.
    pub fn disputed_rejection(&self) -> Option<DateTime<Utc>> {
        self.dispute_opened_at
            .filter(|opened| self.rejected_at.is_none_or(|rejected| *opened >= rejected))
    }
}

/// Checks that `s` is an email address a message can be sent to (the same rule delivery applies).
pub fn check_address(s: &str) -> Result<(), String> {
    s.trim()
        .parse::<lettre::Address>()
        .map(|_| ())
        .map_err(|e| format!("`{}` is not an email address ({e})", shorten(s)))
}

/// A value as shown in a message: control characters escaped, at most 80 characters.
pub fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    let escaped: String = s.escape_debug().collect();
    match escaped.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}… ({} characters)", &escaped[..i], s.chars().count()),
        None => escaped,
    }
}

impl From<&Claim> for ClaimRow {
    fn from(c: &Claim) -> Self {
        ClaimRow {
            id: c.id.clone(),
            status: c.status.as_str().to_owned(),
            partner_id: Some(c.partner_id.clone()),
            partner_name: Some(c.partner_name.clone()),
            partner_email: Some(c.partner_email.clone()),
            customer_tenant_id: Some(c.customer_tenant_id.clone()),
            customer_name: Some(c.customer_name.clone()),
            customer_email: Some(c.customer_email.clone()),
            products: Some(c.products.clone()),
            country: Some(c.country.clone()),
            time_zone: c.time_zone.map(|tz| tz.name().to_owned()),
            locale: Some(c.locale.clone()),
            submitted_at: c.submitted_at,
            review_started_at: c.review_started_at,
            info_requested_at: c.info_requested_at,
            info_request_reason: c.info_request_reason.map(|r| r.as_str().to_owned()),
            approved_at: c.approved_at,
            rejected_at: c.rejected_at,
            rejection_reason: c.rejection_reason.map(|r| r.as_str().to_owned()),
            customer_declined_at: c.customer_declined_at,
            dispute_opened_at: c.dispute_opened_at,
            dispute_resolved_at: c.dispute_resolved_at,
            updated_at: c.updated_at,
            version: c.version,
        }
    }
}

/// Parses an IANA time zone name, saying what was wrong.
pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("`{name}` is not an IANA time zone (e.g. Europe/Stockholm)"))
}

/// Parses an ISO 3166-1 alpha-2 code (`se` → `SE`).
pub fn parse_country(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.len() == 2 && t.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(t.to_ascii_uppercase())
    } else {
        Err(format!("`{s}` is not an ISO 3166-1 alpha-2 country code"))
    }
}

/// Checks a BCP 47 tag's shape (`sv`, `sv-SE`, `en-GB`), normalising `_` to `-`.
pub fn parse_locale(s: &str) -> Result<String, String> {
    let t = s.trim().replace('_', "-");
    let mut parts = t.split('-');
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
    let rest_ok =
        parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if lang_ok && rest_ok {
        Ok(t)
    } else {
        Err(format!("`{s}` is not a BCP 47 language tag (e.g. sv-SE)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ClaimRow {
        ClaimRow {
            id: "c1".into(),
            status: "approved".into(),
            country: Some("se".into()),
            time_zone: Some("Europe/Stockholm".into()),
            locale: Some("sv_SE".into()),
            ..ClaimRow::default()
        }
    }

    #[test]
    fn a_good_row_parses_and_round_trips() {
        let claim = Claim::try_from(row()).unwrap();
        assert_eq!(claim.status, ClaimStatus::Approved);
        assert_eq!(claim.country, "SE");
        assert_eq!(claim.locale, "sv-SE");
        assert_eq!(claim.time_zone, Some(chrono_tz::Europe::Stockholm));
        assert_eq!(Claim::try_from(ClaimRow::from(&claim)).unwrap(), claim);
    }

    #[test]
    fn each_bad_column_is_named_with_the_claim() {
        type Edit = fn(&mut ClaimRow);
        let cases: Vec<(Edit, &str)> = vec![
            (
                |r| r.status = "bogus".into(),
                "column status: unknown status `bogus`",
            ),
            (
                |r| r.time_zone = Some("Mars/Olympus".into()),
                "column time_zone",
            ),
            (|r| r.country = Some("Sweden".into()), "column country"),
            (|r| r.country = None, "column country"),
            (|r| r.locale = Some("not a locale".into()), "column locale"),
            (
                |r| r.rejection_reason = Some("because".into()),
                "column rejection_reason",
            ),
            (
                |r| r.info_request_reason = Some("x".into()),
                "column info_request_reason",
            ),
        ];
        for (edit, expected) in cases {
            let mut r = row();
            edit(&mut r);
            let err = Claim::try_from(r).unwrap_err();
            assert_eq!(err.claim_id, "c1");
            assert!(err.to_string().contains(expected), "{err} lacks {expected}");
        }
    }

    #[test]
    fn missing_locale_means_english_and_empty_time_zone_means_calendar() {
        let mut r = row();
        r.locale = None;
        r.time_zone = Some(String::new());
        let c = Claim::try_from(r).unwrap();
        assert_eq!(c.locale, "en");
        assert_eq!(c.time_zone, None);
    }
}
