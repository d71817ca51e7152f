//! Decline tokens: the signed value in a consent email's decline link.
//!
//! Format: `B64(payload) "." B64(tag)`, both URL-safe base64 without padding, where
//! `payload = 0x01 (version) ‖ window_end as i64 Unix seconds, big-endian ‖ claim id (UTF-8)` and
//! `tag = HMAC-SHA256(key = consent secret, "cpor-decline-token" ‖ payload)`. The tag is checked
//! in constant time before the payload is read. Sub-second parts of `window_end` are dropped.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::Serialize;
use sha2::Sha256;
use url::Url;

use crate::config::Secret;

const VERSION: u8 = 1;
const DOMAIN: &[u8] = b"cpor-decline-token";
/// Longer tokens are refused before any decoding.
const MAX_TOKEN_LEN: usize = 2048;

/// What a valid decline token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeclineToken {
    /// The claim the customer may decline.
    pub claim_id: String,
    /// The instant the consent window ends (whole seconds).
    pub window_end: DateTime<Utc>,
}

/// Why a decline token was refused; deliberately vague to the outside (all mean "invalid").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not two base64 parts, too long, or a payload that does not decode.
    #[error("decline token is malformed")]
    Malformed,
    /// The signature does not match (tampered, or signed with another key).
    #[error("decline token signature does not match")]
    BadSignature,
    /// Signed, but by a token version this build does not read.
    #[error("decline token version {0} is not supported")]
    UnsupportedVersion(u8),
}

fn mac(secret: &Secret<String>) -> Hmac<Sha256> {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(DOMAIN);
    mac
}

/// Signs `claim_id` and `window_end` with the consent secret.
pub fn sign_decline_token(
    secret: &Secret<String>,
    claim_id: &str,
    window_end: DateTime<Utc>,
) -> String {
    let mut payload = Vec::with_capacity(9 + claim_id.len());
    payload.push(VERSION);
    payload.extend_from_slice(&window_end.timestamp().to_be_bytes());
    payload.extend_from_slice(claim_id.as_bytes());
    let mut m = mac(secret);
    m.update(&payload);
    let tag = m.finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Checks `token`'s signature (constant time) and returns what it says.
pub fn verify_decline_token(
    secret: &Secret<String>,
    token: &str,
) -> Result<DeclineToken, TokenError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (payload_b64, tag_b64) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| TokenError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag_b64)
        .map_err(|_| TokenError::Malformed)?;
    let mut m = mac(secret);
    m.update(&payload);
    m.verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;
    let (&version, rest) = payload.split_first().ok_or(TokenError::Malformed)?;
    if version != VERSION {
        return Err(TokenError::UnsupportedVersion(version));
    }
    let (secs, id) = rest.split_first_chunk::<8>().ok_or(TokenError::Malformed)?;
    let window_end =
        DateTime::from_timestamp(i64::from_be_bytes(*secs), 0).ok_or(TokenError::Malformed)?;
    let claim_id = String::from_utf8(id.to_vec()).map_err(|_| TokenError::Malformed)?;
    Ok(DeclineToken {
        claim_id,
        window_end,
    })
}

/// `decline_url` with `token=<signed token>` added to its query (other parameters kept).
pub fn decline_link(
    decline_url: &Url,
    secret: &Secret<String>,
    claim_id: &str,
    window_end: DateTime<Utc>,
) -> String {
    let mut url = decline_url.clone();
    url.query_pairs_mut()
        .append_pair("token", &sign_decline_token(secret, claim_id, window_end));
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let key = Secret::new("k".to_owned());
        let end = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let t = sign_decline_token(&key, "CLM-1", end);
        let got = verify_decline_token(&key, &t).unwrap();
        assert_eq!((got.claim_id.as_str(), got.window_end), ("CLM-1", end));
        let other = Secret::new("other".to_owned());
        assert_eq!(
            verify_decline_token(&other, &t),
            Err(TokenError::BadSignature)
        );
    }
}
