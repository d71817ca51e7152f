use super::*;

use ClaimStatus as S;
use RejectionReason as R;
use Transition as T;

/// Every transition a caller could ask for: each reason counts as its own transition.
fn all_transitions() -> Vec<Transition> {
    let mut all = vec![T::Submit, T::StartReview, T::Approve, T::OverturnDispute];
    all.extend(InfoRequestReason::ALL.iter().map(|r| T::RequestInfo(*r)));
    all.extend(RejectionReason::ALL.iter().map(|r| T::Reject(*r)));
    all
}

/// The SPEC §2 table written out by hand, independent of the `match` under test.
fn allowed() -> Vec<(ClaimStatus, Transition, Actor, ClaimStatus)> {
    let mut v = vec![
        (S::Draft, T::Submit, Actor::Partner, S::Submitted),
        (
            S::PartnerActionRequired,
            T::Submit,
            Actor::Partner,
            S::Submitted,
        ),
        (
            S::Submitted,
            T::StartReview,
            Actor::Reviewer,
            S::UnderReview,
        ),
        (S::UnderReview, T::Approve, Actor::Reviewer, S::Approved),
        (
            S::Rejected,
            T::OverturnDispute,
            Actor::Reviewer,
            S::Approved,
        ),
        (
            S::PartnerActionRequired,
            T::Reject(R::NoPartnerResponse),
            Actor::System,
            S::Rejected,
        ),
        (
            S::Approved,
            T::Reject(R::CustomerDeclined),
            Actor::Customer,
            S::Rejected,
        ),
        (
            S::Approved,
            T::Reject(R::CustomerDeclined),
            Actor::System,
            S::Rejected,
        ),
    ];
    for reason in InfoRequestReason::ALL {
        v.push((
            S::UnderReview,
            T::RequestInfo(*reason),
            Actor::Reviewer,
            S::PartnerActionRequired,
        ));
    }
    for from in [S::Submitted, S::UnderReview, S::PartnerActionRequired] {
        v.push((
            from,
            T::Reject(R::PartnerRequest),
            Actor::Partner,
            S::Rejected,
        ));
    }
    for from in [S::UnderReview, S::PartnerActionRequired] {
        for reason in [
            R::InsufficientPoe,
            R::CustomerConsentMissingInPoe,
            R::MissingProducts,
            R::PoeNotAvailable,
        ] {
            v.push((from, T::Reject(reason), Actor::Reviewer, S::Rejected));
        }
    }
    v
}

#[test]
fn every_allowed_transition_leads_where_the_spec_says() {
    for (from, t, actor, to) in allowed() {
        assert_eq!(
            next_status(from, t, actor),
            Ok(to),
            "{from} {t:?} by {actor}"
        );
    }
}

#[test]
fn every_other_combination_is_refused() {
    let allowed = allowed();
    let mut refused = 0;
    for from in ClaimStatus::ALL {
        for t in all_transitions() {
            for actor in Actor::ALL {
                if allowed
                    .iter()
                    .any(|(f, tt, a, _)| f == from && *tt == t && a == actor)
                {
                    continue;
                }
                let err = next_status(*from, t, *actor).expect_err("must be refused");
                assert_eq!(err.from, *from);
                refused += 1;
            }
        }
    }
    // 6 statuses × 16 transitions × 4 actors, less the allowed ones.
    assert_eq!(refused, 6 * 16 * 4 - allowed.len());
}

#[test]
fn nothing_leaves_draft_but_submission() {
    for t in all_transitions() {
        for actor in Actor::ALL {
            let r = next_status(S::Draft, t, *actor);
            assert_eq!(r.is_ok(), t == T::Submit && *actor == Actor::Partner);
        }
    }
}

#[test]
fn partners_edit_only_submitted_or_action_required() {
    let editable: Vec<_> = ClaimStatus::ALL
        .iter()
        .filter(|s| partner_may_edit(**s))
        .collect();
    assert_eq!(editable, [&S::Submitted, &S::PartnerActionRequired]);
}

#[test]
fn ids_round_trip_and_unknown_ids_name_the_value() {
    for s in ClaimStatus::ALL {
        assert_eq!(s.as_str().parse::<ClaimStatus>(), Ok(*s));
        assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{s}\""));
    }
    for r in RejectionReason::ALL {
        assert_eq!(r.as_str().parse::<RejectionReason>(), Ok(*r));
    }
    for r in InfoRequestReason::ALL {
        assert_eq!(r.as_str().parse::<InfoRequestReason>(), Ok(*r));
    }
    let err = "bogus".parse::<ClaimStatus>().unwrap_err();
    assert_eq!(err.value, "bogus");
    assert!(err.to_string().contains("unknown status `bogus`"), "{err}");
    assert!(err.to_string().contains("partner_action_required"), "{err}");
}
