//! Sending a rendered email: [`OutgoingEmail`] → a lettre `multipart/alternative` message, sent by
//! a [`Transport`]: [`SmtpTransport`] (pooled, STARTTLS or implicit TLS) or [`FileTransport`]
//! (`.eml` files in the outbox folder). Failures say whether retrying can help.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Address, Message};
use sha2::Digest as _;
use url::Url;

use super::smtp_pool::{Connector, Pool, SmtpFailure};
use super::templates::sanitize_header;
use crate::config::MailConfig;

/// One email ready to send; `subject`, `text`, `html` come from [`super::Templates::render`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Unique id, e.g. `outbox-42.1767225600@cpor.example`; `@` + the sender's domain is added
    /// when it has none. Becomes the `Message-ID` header and the `.eml` file name.
    pub message_id: String,
    /// Sender mailbox, `Name <addr>` or `addr` (the `mail.from` setting).
    pub from: String,
    /// Recipient's display name (may be empty); line breaks are neutralised.
    pub to_name: String,
    /// Recipient's address; anything that is not one address (e.g. with CR/LF) is refused.
    pub to_address: String,
    /// Subject; line breaks are neutralised.
    pub subject: String,
    /// `text/plain` part.
    pub text: String,
    /// `text/html` part.
    pub html: String,
}

/// Why a send failed, and whether a later attempt may succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Try again later: a 4xx reply, connection refused or lost, a timeout, a full disk.
    #[error("temporary delivery failure: {0}")]
    Temporary(String),
    /// Retrying cannot help: a 5xx reply, an invalid address or message.
    #[error("permanent delivery failure: {0}")]
    Permanent(String),
}

/// The future a [`Transport`] returns (boxed, so `dyn Transport` works).
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// Something that delivers emails; shared by the outbox loop (`Send + Sync`).
pub trait Transport: Send + Sync {
    /// Delivers `email` once; `Ok` means the server (or the folder) accepted it.
    fn send<'a>(&'a self, email: &'a OutgoingEmail) -> SendFuture<'a>;
    /// Where emails go, for logs: never contains credentials.
    fn describe(&self) -> String;
}

/// Builds the MIME message: From, To, Subject, Date, Message-ID, text and HTML alternatives.
pub fn build_message(email: &OutgoingEmail) -> Result<Message, DeliveryError> {
    let from: Mailbox = email
        .from
        .parse()
        .map_err(|e| DeliveryError::Permanent(format!("invalid sender `{}`: {e}", email.from)))?;
    let address: Address = email.to_address.trim().parse().map_err(|e| {
        DeliveryError::Permanent(format!(
            "invalid recipient address {:?}: {e}",
            email.to_address
        ))
    })?;
    let name = sanitize_header(&email.to_name);
    let to = Mailbox::new((!name.is_empty()).then_some(name), address);
    let message_id = message_id_header(&email.message_id, &from)?;
    Message::builder()
        .from(from)
        .to(to)
        .subject(sanitize_header(&email.subject))
        .message_id(Some(message_id))
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|e| DeliveryError::Permanent(format!("cannot build message: {e}")))
}

/// `<id@domain>` from an outbox id; refuses characters that do not belong in a msg-id.
fn message_id_header(id: &str, from: &Mailbox) -> Result<String, DeliveryError> {
    let bare = id.trim().trim_start_matches('<').trim_end_matches('>');
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>\"(),;:\\[]".contains(c);
    if bare.is_empty() || bare.chars().any(bad) || bare.matches('@').count() > 1 {
        return Err(DeliveryError::Permanent(format!(
            "invalid message id {id:?}"
        )));
    }
    Ok(if bare.contains('@') {
        format!("<{bare}>")
    } else {
        format!("<{bare}@{}>", from.email.domain())
    })
}

/// Delivery through an SMTP server with a connection pool (lettre's SMTP client on sockets with
/// `TCP_NODELAY`; see `smtp_pool`).
#[derive(Clone)]
pub struct SmtpTransport {
    pool: Arc<Pool>,
    described: String,
}

impl SmtpTransport {
    /// From `smtp://[user:pass@]host[:port]` (STARTTLS when offered, else plain; port 587) or
    /// `smtps://…` (implicit TLS; port 465); at most `pool_size` connections.
    pub fn from_url(url: &Url, pool_size: u32) -> Result<Self, DeliveryError> {
        Self::from_url_with_ca(url, pool_size, None)
    }

    /// Like [`SmtpTransport::from_url`], also trusting the CA certificate(s) in `ca_pem` (for a
    /// relay with a private CA) besides the public roots.
    pub fn from_url_with_ca(
        url: &Url,
        pool_size: u32,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, DeliveryError> {
        let bad = |m: &str| DeliveryError::Permanent(format!("SMTP URL: {m}"));
        let host = url.host_str().ok_or_else(|| bad("no host"))?.to_owned();
        let (default_port, implicit) = match url.scheme() {
            "smtp" => (587, false),
            "smtps" => (465, true),
            other => return Err(bad(&format!("scheme `{other}` is not smtp or smtps"))),
        };
        let mut tls_builder = TlsParameters::builder(host.clone());
        if let Some(pem) = ca_pem {
            let cert = lettre::transport::smtp::client::Certificate::from_pem(pem)
                .map_err(|e| bad(&format!("CA certificate: {e}")))?;
            tls_builder = tls_builder.add_root_certificate(cert);
        }
        let tls_params = tls_builder
            .build()
            .map_err(|e| bad(&format!("TLS setup: {e}")))?;
        let port = url.port().unwrap_or(default_port);
        let tls = if implicit {
            Tls::Wrapper(tls_params)
        } else {
            Tls::Opportunistic(tls_params)
        };
        let mut credentials = None;
        if !url.username().is_empty() {
            let decode =
                |s: &str| percent_decode(s).map_err(|_| bad("user or password is not valid UTF-8"));
            let user = decode(url.username())?;
            let pass = decode(url.password().unwrap_or(""))?;
            credentials = Some(Credentials::new(user, pass));
        }
        let connector = Connector {
            host: host.clone(),
            port,
            tls,
            timeout: Some(Duration::from_secs(30)),
            credentials,
        };
        Ok(Self {
            pool: Arc::new(Pool::new(connector, pool_size)),
            described: format!("{}://{host}:{port}", url.scheme()),
        })
    }
}

fn percent_decode(s: &str) -> Result<String, std::str::Utf8Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&out).map(str::to_owned)
}

fn classify(e: SmtpFailure) -> DeliveryError {
    let e = match e {
        SmtpFailure::Smtp(e) => e,
        // Refused, unreachable, timed out: the server may be back later.
        SmtpFailure::Connect(e) => {
            return DeliveryError::Temporary(format!("Connection error: {e}"));
        }
    };
    if e.is_permanent() {
        DeliveryError::Permanent(e.to_string())
    } else {
        // 4xx, timeouts, refused or dropped connections, TLS trouble: a later try may work.
        DeliveryError::Temporary(e.to_string())
    }
}

impl Transport for SmtpTransport {
    fn send<'a>(&'a self, email: &'a OutgoingEmail) -> SendFuture<'a> {
        Box::pin(async move {
            let message = build_message(email)?;
            let raw = message.formatted();
            let mut conn = self.pool.checkout().await.map_err(classify)?;
            let sent = conn.send(message.envelope(), &raw).await;
            self.pool.checkin(conn).await;
            sent.map(|_| ()).map_err(|e| classify(SmtpFailure::Smtp(e)))
        })
    }

    fn describe(&self) -> String {
        format!("SMTP {}", self.described)
    }
}

/// Delivery into a folder: one `<message id>.eml` file per email (the folder is created; a long
/// id is shortened with a hash, see `file_stem`).
#[derive(Clone, Debug)]
pub struct FileTransport {
    dir: PathBuf,
}

impl FileTransport {
    /// Writes into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The file `email` is written to.
    pub fn path_for(&self, email: &OutgoingEmail) -> PathBuf {
        self.dir
            .join(format!("{}.eml", file_stem(&email.message_id)))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The longest file stem written as the message id itself; most file systems allow 255 bytes.
const MAX_STEM: usize = 120;

/// The message id with anything but letters, digits and `.-_@+` replaced by `_`; an id longer
/// than [`MAX_STEM`] becomes its first 64 characters, `~` and the SHA-256 of the whole id, so
/// every name fits the file system and distinct ids keep distinct names.
fn file_stem(message_id: &str) -> String {
    let stem = readable_stem(message_id);
    if stem.len() <= MAX_STEM {
        return stem;
    }
    let digest = sha2::Sha256::digest(message_id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}~{hex}", &stem[..64])
}

fn readable_stem(message_id: &str) -> String {
    let stem: String = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_@+".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = stem.trim_start_matches('.').to_owned();
    if stem.is_empty() {
        "message".to_owned()
    } else {
        stem
    }
}

impl Transport for FileTransport {
    fn send<'a>(&'a self, email: &'a OutgoingEmail) -> SendFuture<'a> {
        Box::pin(async move {
            let bytes = build_message(email)?.formatted();
            let io = |what: &str, e: std::io::Error| {
                DeliveryError::Temporary(format!("{what} {}: {e}", self.dir.display()))
            };
            tokio::fs::create_dir_all(&self.dir)
                .await
                .map_err(|e| io("cannot create", e))?;
            let path = self.path_for(email);
            let tmp = path.with_extension("eml.tmp");
            tokio::fs::write(&tmp, bytes)
                .await
                .map_err(|e| io("cannot write into", e))?;
            tokio::fs::rename(&tmp, &path)
                .await
                .map_err(|e| io("cannot rename in", e))
        })
    }

    fn describe(&self) -> String {
        format!(".eml files in {}", self.dir.display())
    }
}

/// SMTP connections [`transport_from_config`] keeps open, polite for a shared relay. With
/// `TCP_NODELAY` one connection is no longer held to ~22 messages/s by delayed ACKs; see
/// docs/benchmarks-mail.md for what 1 and 8 connections send on loopback (one reaches 1,000/s).
pub const DEFAULT_SMTP_POOL_SIZE: u32 = 8;

/// The transport the settings ask for: SMTP when `mail.smtp_url` is set, else the outbox folder.
pub fn transport_from_config(mail: &MailConfig) -> Result<Box<dyn Transport>, DeliveryError> {
    Ok(match &mail.smtp_url {
        Some(url) => {
            let ca = match &mail.smtp_ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    DeliveryError::Permanent(format!("mail.smtp_ca_file {}: {e}", path.display()))
                })?),
                None => None,
            };
            Box::new(SmtpTransport::from_url_with_ca(
                url.expose(),
                mail.smtp_pool_size,
                ca.as_deref(),
            )?)
        }
        None => Box::new(FileTransport::new(&mail.outbox_dir)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            message_id: "outbox-1".into(),
            from: "CPOR <noreply@cpor.example>".into(),
            to_name: "Åsa Öberg".into(),
            to_address: "asa@example.se".into(),
            subject: "Hej\r\nBcc: evil@example.com".into(),
            text: "text".into(),
            html: "<p>html</p>".into(),
        }
    }

    #[test]
    fn message_id_gets_the_sender_domain_and_subject_stays_one_line() {
        let raw = String::from_utf8(build_message(&email()).unwrap().formatted()).unwrap();
        assert!(raw.contains("Message-ID: <outbox-1@cpor.example>"), "{raw}");
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
    }

    #[test]
    fn bad_addresses_and_ids_are_permanent() {
        let mut e = email();
        e.to_address = "a@example.com\r\nBcc: evil@example.com".into();
        assert!(matches!(
            build_message(&e),
            Err(DeliveryError::Permanent(_))
        ));
        let mut e = email();
        e.message_id = "a b".into();
        assert!(matches!(
            build_message(&e),
            Err(DeliveryError::Permanent(_))
        ));
    }

    #[test]
    fn file_names_are_sanitised() {
        assert_eq!(file_stem("<../x/y@z>"), "_x_y@z");
        let long = |c: &str| format!("<cpor.{}.x@cpor-worker.invalid>", c.repeat(5000));
        let (a, b) = (file_stem(&long("A")), file_stem(&long("B")));
        assert!(a.len() < 200 && b.len() < 200, "{a}");
        assert_ne!(a, b);
        assert!(a.starts_with("cpor.AAAA"), "{a}");
        assert_eq!(percent_decode("p%40ss%3A").unwrap(), "p@ss:");
    }
}
