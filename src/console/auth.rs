//! Who may repair: a script with `Authorization: Bearer TOKEN`, or a browser posting the page's
//! form with the operator token and the CSRF token of its session (a random cookie, `HttpOnly`,
//! `SameSite=Strict`; the CSRF token is its HMAC under a key made at start-up).

use std::io::Read;

use axum::http::{HeaderMap, header};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::Secret;

/// The session cookie's name.
const COOKIE: &str = "cpor_console_session";

/// The key that signs CSRF tokens; made at random when the console starts.
pub struct CsrfKey([u8; 32]);

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if filled.is_err() {
        // No /dev/urandom: fall back to the process's random source (not for secrets alone:
        // the key only binds a form to its session).
        for x in &mut b {
            *x = fastrand::u8(..);
        }
    }
    b
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl CsrfKey {
    /// A fresh random key.
    pub fn random() -> CsrfKey {
        CsrfKey(random_bytes())
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length; 32 bytes cannot fail.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }

    /// The request's session id, and a `Set-Cookie` value when a new one was made.
    pub fn session(&self, headers: &HeaderMap) -> (String, Option<String>) {
        match session_cookie(headers) {
            Some(s) => (s, None),
            None => {
                let s = hex(&random_bytes::<16>());
                let cookie = format!("{COOKIE}={s}; Path=/; HttpOnly; SameSite=Strict");
                (s, Some(cookie))
            }
        }
    }

    /// The CSRF token of a session.
    pub fn token(&self, session: &str) -> String {
        let mut m = self.mac();
        m.update(session.as_bytes());
        hex(&m.finalize().into_bytes())
    }

    /// True when `csrf` is the token of the request's session cookie.
    pub fn verify(&self, headers: &HeaderMap, csrf: &str) -> bool {
        let Some(session) = session_cookie(headers) else {
            return false;
        };
        constant_eq(self.token(&session).as_bytes(), csrf.trim().as_bytes())
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Compares without stopping at the first difference.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of a request, if it sent one.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// True when `given` is the operator token.
pub fn token_ok(token: &Secret<String>, given: &str) -> bool {
    constant_eq(token.expose().as_bytes(), given.trim().as_bytes())
}
