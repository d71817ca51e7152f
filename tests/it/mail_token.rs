//! Decline tokens: round trip, tampering, wrong key, and `cpor-worker verify-token`.

use chrono::{DateTime, TimeZone, Utc};
use cpor_worker::config::Secret;
use cpor_worker::mail::{TokenError, decline_link, sign_decline_token, verify_decline_token};

use crate::harness::run_in;

fn key() -> Secret<String> {
    Secret::new("a-long-random-test-secret".to_owned())
}

fn end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 8, 23, 0, 0).unwrap()
}

#[test]
fn tokens_round_trip_for_any_claim_id() {
    for id in ["CLM-1", "a.b.c", "åäö/ÅÄÖ ?&=", "", &"x".repeat(500)] {
        let token = sign_decline_token(&key(), id, end());
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "URL-safe: {token}"
        );
        let got = verify_decline_token(&key(), &token).unwrap();
        assert_eq!((got.claim_id.as_str(), got.window_end), (id, end()));
    }
}

#[test]
fn any_changed_character_is_refused() {
    let token = sign_decline_token(&key(), "CLM-2027-0042", end());
    for i in 0..token.len() {
        let mut bytes = token.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        if tampered != token {
            assert!(
                verify_decline_token(&key(), &tampered).is_err(),
                "{tampered}"
            );
        }
    }
}

#[test]
fn garbled_truncated_foreign_and_spliced_tokens_are_refused() {
    let token = sign_decline_token(&key(), "CLM-1", end());
    let other = sign_decline_token(&key(), "CLM-2", end());
    let (p1, _) = token.split_once('.').unwrap();
    let (_, t2) = other.split_once('.').unwrap();
    let cases = [
        String::new(),
        ".".into(),
        "not-a-token".into(),
        "!!!.???".into(),
        token[..token.len() - 3].to_owned(),
        format!("{p1}.{t2}"),
        format!("{token}.extra"),
        "A".repeat(5000),
    ];
    for bad in &cases {
        assert!(verify_decline_token(&key(), bad).is_err(), "{bad:?}");
    }
    let wrong = Secret::new("another-key".to_owned());
    assert_eq!(
        verify_decline_token(&wrong, &token),
        Err(TokenError::BadSignature)
    );
}

#[test]
fn the_decline_link_carries_the_token_as_a_query_parameter() {
    let base = url::Url::parse("https://partner.example.com/cpor/decline?lang=sv").unwrap();
    let link = url::Url::parse(&decline_link(&base, &key(), "CLM-9", end())).unwrap();
    let pairs: Vec<(String, String)> = link.query_pairs().into_owned().collect();
    assert_eq!(pairs[0], ("lang".into(), "sv".into()));
    assert_eq!(pairs[1].0, "token");
    assert_eq!(
        verify_decline_token(&key(), &pairs[1].1).unwrap().claim_id,
        "CLM-9"
    );
}

#[test]
fn verify_token_prints_json_or_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("CPOR_CONSENT_SECRET", "a-long-random-test-secret")];
    let token = sign_decline_token(&key(), "CLM-2027-0042", end());
    let out = run_in(dir.path(), &["verify-token", &token], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["claim_id"], "CLM-2027-0042");
    assert_eq!(json["window_end"], "2027-01-08T23:00:00Z");

    let tampered = format!("{}x", &token[..token.len() - 1]);
    let out = run_in(dir.path(), &["verify-token", &tampered], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid"));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("a-long-random-test-secret"));
}
