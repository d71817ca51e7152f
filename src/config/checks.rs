//! Checks of single settings that need more than a parse: where the consent key comes from,
//! the HTTP address (host names resolved), and the collector that names each problem's source.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use super::{DEMO_CONSENT_SECRET, Origins, clip, read_limited};

/// Collects problems, each naming its key and the layer that set it.
pub(super) struct Problems<'a> {
    pub(super) origins: &'a Origins,
    pub(super) list: Vec<String>,
}

impl Problems<'_> {
    pub(super) fn add(&mut self, key: &str, message: impl fmt::Display) {
        let origin = self
            .origins
            .get(key)
            .map(String::as_str)
            .unwrap_or("built-in defaults")
            .to_owned();
        self.add_from(key, &origin, message);
    }

    /// Like [`Problems::add`] with the source given (a value that is not a key's, e.g. a secret).
    pub(super) fn add_from(&mut self, key: &str, origin: &str, message: impl fmt::Display) {
        self.list
            .push(clip(&format!("  {key} (from {origin}): {message}")));
    }

    pub(super) fn required<T: Clone>(&mut self, key: &str, v: &Option<T>) -> Option<T> {
        if v.is_none() {
            self.add(key, "is missing");
        }
        v.clone()
    }
}

/// The consent key and whether it is the demo one: `CPOR_CONSENT_SECRET`, else the file
/// `secrets.consent_secret_file` names, else the demo key. A key that is too short is blamed on
/// where it actually came from.
pub(super) fn consent_secret(
    p: &mut Problems<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&str>,
) -> (Option<String>, bool) {
    match env("CPOR_CONSENT_SECRET") {
        Some(s) => {
            if s.len() < 16 {
                p.add_from(
                    "CPOR_CONSENT_SECRET",
                    "the environment",
                    format!(
                        "the consent secret is {} bytes; it must be at least 16",
                        s.len()
                    ),
                );
            }
            (Some(s), false)
        }
        None => match file.map(str::trim) {
            None | Some("") => (Some(DEMO_CONSENT_SECRET.to_owned()), true),
            Some(file) => match read_limited(Path::new(file)) {
                Ok(s) => {
                    let s = s.trim().to_owned();
                    if s.len() < 16 {
                        p.add(
                            "secrets.consent_secret_file",
                            format!(
                                "the consent secret in `{file}` is {} bytes; it must be at least 16",
                                s.len()
                            ),
                        );
                    }
                    (Some(s), false)
                }
                Err(e) => {
                    p.add(
                        "secrets.consent_secret_file",
                        format!("cannot read `{file}`: {e}"),
                    );
                    (None, false)
                }
            },
        },
    }
}

/// Reads `host:port` (an IP address or a host name such as `localhost`, resolved now) as the
/// address to bind; an IPv4 address is preferred when a name has several.
pub(super) fn resolve_listen(a: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = a.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = a.rsplit_once(':') else {
        return Err(format!(
            "`{a}` is not host:port (e.g. 127.0.0.1:9464 or localhost:9464)"
        ));
    };
    if port.parse::<u16>().is_err() {
        return Err(format!("`{a}`: port `{port}` is not a number 0–65535"));
    }
    let addrs: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(a)
        .map_err(|e| format!("`{a}`: cannot resolve host `{host}`: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|s| s.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("`{a}`: host `{host}` has no address"))
}

/// The console's operator token: `CPOR_OPERATOR_TOKEN`, else the file `http.operator_token_file`;
/// none when neither is set (repairs are off). A token shorter than 16 bytes is refused.
pub(super) fn operator_token(
    p: &mut Problems<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&str>,
) -> Option<String> {
    let (token, key) = match env("CPOR_OPERATOR_TOKEN").filter(|s| !s.trim().is_empty()) {
        Some(s) => (s.trim().to_owned(), "CPOR_OPERATOR_TOKEN"),
        None => match file.map(str::trim) {
            None | Some("") => return None,
            Some(file) => match read_limited(Path::new(file)) {
                Ok(s) => (s.trim().to_owned(), "http.operator_token_file"),
                Err(e) => {
                    p.add(
                        "http.operator_token_file",
                        format!("cannot read `{file}`: {e}"),
                    );
                    return None;
                }
            },
        },
    };
    if token.len() < 16 {
        let why = format!(
            "the operator token is {} bytes; it must be at least 16",
            token.len()
        );
        if key == "CPOR_OPERATOR_TOKEN" {
            p.add_from(key, "the environment", why);
        } else {
            p.add(key, why);
        }
        return None;
    }
    Some(token)
}
