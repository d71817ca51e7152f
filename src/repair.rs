//! Operator repairs, shared by the command line (`outbox …`, `claim …`) and the console's POST
//! endpoints: each checks what it may do, then writes the change and one `claim_history` row
//! (actor `system`, `details.operator_action`, who and why) in one transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;

use crate::claim::Claim;
use crate::lifecycle::Actor;
use crate::store::{
    HistoryEntry, Hold, OutboxEmail, OutboxRow, Released, Repairs, StoreError, TimerIndex,
};
use crate::timers::EmailKind;
use crate::worker::{Engine, TickOutcome};

/// Why a repair was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// The database failed, or the claim does not exist.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No outbox email has this id.
    #[error("outbox email {0} not found")]
    NoEmail(i64),
    /// The email is not in a state the repair applies to.
    #[error("outbox email {id} is {state}: {what}")]
    WrongState {
        /// The email.
        id: i64,
        /// Its state now.
        state: String,
        /// What the repair needs.
        what: &'static str,
    },
    /// The repair needs a reason and none was given.
    #[error("a reason is required (--reason, or the form's reason field)")]
    NoReason,
    /// The claim is already held.
    #[error("claim `{0}` is already held")]
    AlreadyHeld(String),
    /// Nothing holds the claim.
    #[error("claim `{0}` is not held (neither by an operator nor on first sight)")]
    NotHeld(String),
}

/// Who asks for a repair and why.
#[derive(Clone, Debug)]
pub struct Operator {
    /// Who (a user name, `console`).
    pub who: String,
    /// Why, as the operator wrote it.
    pub reason: Option<String>,
    /// When (the history row's `occurred_at`).
    pub at: DateTime<Utc>,
}

impl Operator {
    fn reason(&self) -> Result<&str, RepairError> {
        match self.reason.as_deref().map(str::trim) {
            Some(r) if !r.is_empty() => Ok(r),
            _ => Err(RepairError::NoReason),
        }
    }

    /// The history row of `action` on `claim_id`, with `extra` details merged in.
    pub fn history(&self, claim_id: &str, action: &str, extra: serde_json::Value) -> HistoryEntry {
        let mut details = json!({
            "operator_action": action,
            "by": self.who,
            "reason": self.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()),
        });
        if let (Some(d), serde_json::Value::Object(extra)) = (details.as_object_mut(), extra) {
            d.extend(extra);
        }
        HistoryEntry {
            claim_id: claim_id.to_owned(),
            occurred_at: self.at,
            actor: Actor::System,
            action: format!("operator_{action}"),
            details: details.into(),
        }
    }
}

/// What a repair did, for the CLI's and the console's answer.
#[derive(Clone, Debug, Serialize)]
pub struct Done {
    /// The repair (`retry`, `discard`, `hold`, `release`, `resync`).
    pub action: &'static str,
    /// The claim it touched.
    pub claim_id: String,
    /// The outbox email, for outbox repairs.
    pub outbox_id: Option<i64>,
    /// One line for people.
    pub message: String,
}

/// The email re-rendered from the claim as it is now: recipient, locale, names and products
/// (a corrected address is used); deadlines stay those of its timer run. A digest is unchanged.
pub fn refresh(email: &OutboxEmail, claim: &Claim) -> OutboxEmail {
    let mut e = email.clone();
    let (name, address) = match email.email {
        EmailKind::SlaAlertDigest => return e,
        EmailKind::ConsentRequest => (&claim.customer_name, &claim.customer_email),
        _ => (&claim.partner_name, &claim.partner_email),
    };
    e.to_name = name.clone();
    e.to_address = address.trim().to_owned();
    e.locale = if email.email == EmailKind::ConsentRequest {
        claim.customer_email_locale().to_owned()
    } else {
        claim.locale.clone()
    };
    let mut payload = std::mem::take(&mut e.payload).into_value();
    if let Some(p) = payload.as_object_mut() {
        p.insert(
            "to".into(),
            json!({"name": e.to_name, "address": e.to_address}),
        );
        p.insert("locale".into(), json!(e.locale));
        p.insert("partner_name".into(), json!(claim.partner_name));
        p.insert("customer_name".into(), json!(claim.customer_name));
        p.insert("products".into(), json!(claim.products));
    }
    e.payload = payload.into();
    e
}

async fn email<S: Repairs>(store: &S, id: i64) -> Result<OutboxRow, RepairError> {
    store.outbox_row(id).await?.ok_or(RepairError::NoEmail(id))
}

/// Puts a dead-lettered email back in the outbox, re-rendered from the claim's current data.
pub async fn retry<S: Repairs>(store: &S, id: i64, op: &Operator) -> Result<Done, RepairError> {
    let row = email(store, id).await?;
    let wrong = |state: String| RepairError::WrongState {
        id,
        state,
        what: "only a dead-lettered email can be retried",
    };
    if row.state != "dead" {
        return Err(wrong(row.state));
    }
    let refreshed = match store.claim(&row.email.claim_id).await {
        Ok(claim) => refresh(&row.email, &claim),
        // A digest has no claim; a claim gone or unreadable keeps the email as it was.
        Err(_) => row.email.clone(),
    };
    let history = op.history(
        &row.email.claim_id,
        "retry",
        json!({
            "outbox_id": id,
            "email": row.email.email,
            "message_id": row.email.message_id,
            "to": refreshed.to_address,
            "previous_to": row.email.to_address,
            "last_error": row.last_error,
        }),
    );
    if !store.retry_email(id, &refreshed, &history, op.at).await? {
        return Err(wrong(email(store, id).await?.state));
    }
    Ok(Done {
        action: "retry",
        claim_id: row.email.claim_id,
        outbox_id: Some(id),
        message: format!(
            "outbox email {id} ({}) queued again for {}; the next pass delivers it",
            row.email.email, refreshed.to_address
        ),
    })
}

/// Marks a pending or dead email discarded: it is never delivered.
pub async fn discard<S: Repairs>(store: &S, id: i64, op: &Operator) -> Result<Done, RepairError> {
    op.reason()?;
    let row = email(store, id).await?;
    let history = op.history(
        &row.email.claim_id,
        "discard",
        json!({"outbox_id": id, "email": row.email.email, "message_id": row.email.message_id}),
    );
    if !store.discard_email(id, &history).await? {
        return Err(RepairError::WrongState {
            id,
            state: email(store, id).await?.state,
            what: "only a pending or dead-lettered email can be discarded",
        });
    }
    Ok(Done {
        action: "discard",
        claim_id: row.email.claim_id,
        outbox_id: Some(id),
        message: format!("outbox email {id} discarded; it will not be sent"),
    })
}

/// Holds a claim: none of its timers fire until it is released.
pub async fn hold<S: Repairs>(
    store: &S,
    claim_id: &str,
    op: &Operator,
) -> Result<Done, RepairError> {
    let reason = op.reason()?.to_owned();
    let h = Hold {
        claim_id: claim_id.to_owned(),
        reason,
        held_by: op.who.clone(),
        held_at: op.at,
    };
    if !store
        .hold_claim(&h, Some(&op.history(claim_id, "hold", json!({}))))
        .await?
    {
        return Err(RepairError::AlreadyHeld(claim_id.to_owned()));
    }
    Ok(Done {
        action: "hold",
        claim_id: claim_id.to_owned(),
        outbox_id: None,
        message: format!("claim {claim_id} held: its timers do not fire until it is released"),
    })
}

/// Releases a claim held by an operator or on first sight; what fell due fires on the next pass.
pub async fn release<S: Repairs>(
    store: &S,
    claim_id: &str,
    op: &Operator,
) -> Result<Done, RepairError> {
    let history = op.history(claim_id, "release", json!({}));
    let released: Released = store.release_claim(claim_id, &history).await?;
    if released.is_empty() {
        return Err(RepairError::NotHeld(claim_id.to_owned()));
    }
    let mut what = Vec::new();
    if released.hold {
        what.push("its hold".to_owned());
    }
    if released.first_sight > 0 {
        what.push(format!(
            "{} timer run(s) held on first sight",
            released.first_sight
        ));
    }
    Ok(Done {
        action: "release",
        claim_id: claim_id.to_owned(),
        outbox_id: None,
        message: format!(
            "claim {claim_id}: released {}; what fell due fires on the next pass",
            what.join(" and ")
        ),
    })
}

/// Recomputes a claim's timers now (and anything else waiting for recomputation).
pub async fn resync<S: Repairs + TimerIndex>(
    store: &S,
    engine: &Engine,
    claim_id: &str,
    op: &Operator,
) -> Result<Done, RepairError> {
    store
        .resync_claim(claim_id, &op.history(claim_id, "resync", json!({})))
        .await?;
    engine
        .sync(store, op.at, &mut TickOutcome::default())
        .await?;
    Ok(Done {
        action: "resync",
        claim_id: claim_id.to_owned(),
        outbox_id: None,
        message: format!("claim {claim_id}: timers recomputed"),
    })
}
