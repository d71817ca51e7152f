//! Checking the URL and address settings, and hiding the credentials a URL may carry (in its
//! user info or as a `password=` query parameter) before it is shown anywhere.

use url::Url;

use super::{DatabaseUrl, Secret};

/// Parses `database.url`: `sqlite://PATH` or `postgres://…`.
pub(super) fn parse_database_url(u: &str) -> Result<DatabaseUrl, String> {
    if u.starts_with("sqlite:") {
        let path = u
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        if path.is_empty() {
            return Err("`sqlite://` needs a file path, e.g. sqlite://cpor.db".to_owned());
        }
        Ok(DatabaseUrl::Sqlite(u.to_owned()))
    } else if u.starts_with("postgres://") || u.starts_with("postgresql://") {
        Url::parse(u).map_err(|e| format!("`{}` is not a URL: {e}", redact_url(u)))?;
        Ok(DatabaseUrl::Postgres(Secret::new(u.to_owned())))
    } else {
        Err(format!(
            "`{}` must start with sqlite:// or postgres://",
            redact_url(u)
        ))
    }
}

/// Parses `mail.smtp_url`: `smtp://…` or `smtps://…` with a host.
pub(super) fn parse_smtp_url(u: &str) -> Result<Url, String> {
    let url = Url::parse(u).map_err(|e| format!("`{}` is not a URL: {e}", redact_url(u)))?;
    if !matches!(url.scheme(), "smtp" | "smtps") {
        return Err(format!(
            "`{}` must be smtp://host:port or smtps://host:port",
            redact_url(u)
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{}` has no host", redact_url(u)));
    }
    Ok(url)
}

/// Splits a mailbox setting, `Name <addr>` or a bare `addr`, into its display name (unquoted,
/// trimmed; empty when there is none) and its address (as written between the brackets).
///
/// ```
/// use cpor_worker::config::split_mailbox;
/// assert_eq!(split_mailbox("\"On Call\" <oc@x.example>"), ("On Call", "oc@x.example"));
/// assert_eq!(split_mailbox(" ops@x.example "), ("", "ops@x.example"));
/// ```
pub fn split_mailbox(s: &str) -> (&str, &str) {
    match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => (s[..a].trim().trim_matches('"').trim(), &s[a + 1..b]),
        _ => ("", s.trim()),
    }
}

/// Checks `Name <addr>` or `addr` loosely: one `@`, no spaces or line breaks in the address.
pub(super) fn check_mailbox(s: &str) -> Result<(), String> {
    if s.contains(['\r', '\n']) {
        return Err("must not contain line breaks".to_owned());
    }
    let (_, addr) = split_mailbox(s);
    let ok = addr.split('@').count() == 2
        && addr.split('@').all(|p| !p.is_empty())
        && !addr.contains(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(format!("`{s}` is not an email address"))
    }
}

/// True for a query parameter that carries a credential (`password`, `sslpassword`, …).
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("password") || name.contains("secret") || name == "passfile"
}

/// Replaces a URL's password, and the value of any `password`-like query parameter, with `***`,
/// for messages and logs.
///
/// ```
/// use cpor_worker::config::redact_url;
/// assert_eq!(redact_url("postgres://u:pw@db/x"), "postgres://u:***@db/x");
/// assert_eq!(
///     redact_url("postgres://db/x?user=u&password=pw"),
///     "postgres://db/x?user=u&password=***"
/// );
/// ```
pub fn redact_url(u: &str) -> String {
    match Url::parse(u) {
        Ok(mut url) => {
            if url.password().is_some() {
                let _ = url.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
            if pairs.iter().any(|(k, _)| is_secret_param(k)) {
                let mut q = url.query_pairs_mut();
                q.clear();
                for (k, v) in &pairs {
                    q.append_pair(k, if is_secret_param(k) { "***" } else { v });
                }
            }
            url.to_string()
        }
        Err(_) if u.contains('@') || is_secret_param(u) => {
            "<unparsable URL with credentials>".to_owned()
        }
        Err(_) => u.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_credential_is_hidden() {
        for (raw, secret) in [
            ("postgres://u:s3cret@h/db", "s3cret"),
            ("postgres://h/db?password=s3cret", "s3cret"),
            (
                "postgres://h/db?user=u&password=s3cret&sslmode=disable",
                "s3cret",
            ),
            ("postgres://h/db?PassWord=s3cret", "s3cret"),
            ("postgres://h/db?sslpassword=s3cret", "s3cret"),
            ("not a url password=s3cret", "s3cret"),
        ] {
            let shown = redact_url(raw);
            assert!(!shown.contains(secret), "{raw} -> {shown}");
        }
        assert_eq!(
            redact_url("postgres://h/db?user=u&sslmode=disable"),
            "postgres://h/db?user=u&sslmode=disable"
        );
    }
}
