//! SMTP connections with `TCP_NODELAY`, kept in a pool: lettre's own SMTP client
//! ([`AsyncSmtpConnection`]: EHLO, STARTTLS, implicit TLS, AUTH, MAIL/RCPT/DATA, replies and
//! errors) over a socket we open ourselves.
//!
//! Why not `AsyncSmtpTransport`'s pool: lettre 0.11.23 (the newest release) opens its sockets
//! without `TCP_NODELAY` and offers no hook to set it (its `Executor` trait is sealed). lettre
//! writes a message's body and the closing `\r\n.\r\n` as two writes; Nagle holds the second until
//! the server ACKs the first, and the server delays that ACK by 40 ms because it has nothing to
//! answer yet, so every message cost ~44 ms per connection (docs/benchmarks-mail.md). Upstream has
//! the fix (set `TCP_NODELAY`) but no release carries it; when one does, `SmtpTransport` can go
//! back to `AsyncSmtpTransport` and this file can be deleted.
//!
//! The pool behaves like lettre's: a connection is made when none is idle (callers bound the
//! concurrency), an idle one is checked with `NOOP` before reuse, a broken one is dropped, at most
//! `max_idle` are kept, and one idle longer than [`IDLE_TIMEOUT`] is closed with `QUIT`.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS, Mechanism};
#[allow(deprecated)] // public in 0.11 and the only way to reuse lettre's implicit-TLS upgrade
use lettre::transport::smtp::client::AsyncNetworkStream;
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, Tls};
use lettre::transport::smtp::extension::ClientId;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

/// How long a connection may sit idle in the pool (lettre's default).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Where and how to connect: the settings lettre's transport builder held.
pub(crate) struct Connector {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    /// Limit on the TCP connect to each resolved address (as lettre's `timeout`).
    pub timeout: Option<Duration>,
    pub credentials: Option<Credentials>,
}

/// What went wrong while connecting or sending.
#[derive(Debug)]
pub(crate) enum SmtpFailure {
    /// The TCP connect itself (refused, unreachable, timed out, no address).
    Connect(io::Error),
    /// Anything lettre's client reports: replies, TLS, I/O on an open connection.
    Smtp(lettre::transport::smtp::Error),
}

impl From<lettre::transport::smtp::Error> for SmtpFailure {
    fn from(e: lettre::transport::smtp::Error) -> Self {
        Self::Smtp(e)
    }
}

impl Connector {
    async fn tcp(&self) -> io::Result<TcpStream> {
        let mut last = None;
        for addr in tokio::net::lookup_host((self.host.as_str(), self.port)).await? {
            let attempt = TcpStream::connect(addr);
            let result = match self.timeout {
                Some(limit) => tokio::time::timeout(limit, attempt)
                    .await
                    .unwrap_or_else(|_| {
                        Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "connection timed out",
                        ))
                    }),
                None => attempt.await,
            };
            match result {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Ok(stream);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "could not resolve to any supported address",
            )
        }))
    }

    /// A connection ready to send: greeted, TLS as configured, authenticated.
    async fn open(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        let tcp = self.tcp().await.map_err(SmtpFailure::Connect)?;
        let hello = ClientId::default();
        let stream: Box<dyn AsyncTokioStream> = match &self.tls {
            Tls::Wrapper(params) => {
                #[allow(deprecated)]
                let mut tls = AsyncNetworkStream::use_existing_tokio1(Box::new(tcp));
                tls.upgrade_tls(params.clone()).await?;
                Box::new(ImplicitTls(tls.compat()))
            }
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &hello).await?;
        match &self.tls {
            Tls::Opportunistic(params) if conn.can_starttls() => {
                conn.starttls(params.clone(), &hello).await?;
            }
            Tls::Required(params) => conn.starttls(params.clone(), &hello).await?,
            _ => {}
        }
        if let Some(credentials) = &self.credentials {
            let mechanisms: &[Mechanism] = DEFAULT_MECHANISMS;
            conn.auth(mechanisms, credentials).await?;
        }
        Ok(conn)
    }
}

/// lettre's TLS stream (futures-io traits) seen as a tokio stream, so that
/// [`AsyncSmtpConnection::connect_with_transport`] can greet over it.
#[allow(deprecated)]
#[derive(Debug)]
struct ImplicitTls(Compat<AsyncNetworkStream>);

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().peer_addr()
    }
}

impl AsyncRead for ImplicitTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

struct Parked {
    conn: AsyncSmtpConnection,
    since: Instant,
}

/// Idle connections to one server.
pub(crate) struct Pool {
    connector: Connector,
    max_idle: usize,
    idle: Mutex<Vec<Parked>>,
}

impl Pool {
    pub(crate) fn new(connector: Connector, max_idle: u32) -> Self {
        Self {
            connector,
            max_idle: max_idle.max(1) as usize,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<Parked>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection that still answers `NOOP`, or a new one.
    pub(crate) async fn checkout(&self) -> Result<AsyncSmtpConnection, SmtpFailure> {
        loop {
            let (parked, expired) = {
                let mut idle = self.idle();
                let (expired, fresh): (Vec<_>, Vec<_>) = idle
                    .drain(..)
                    .partition(|p| p.since.elapsed() > IDLE_TIMEOUT);
                *idle = fresh;
                (idle.pop(), expired)
            };
            if !expired.is_empty() {
                tokio::spawn(quit_all(expired.into_iter().map(|p| p.conn).collect()));
            }
            let Some(Parked { mut conn, .. }) = parked else {
                return self.connector.open().await;
            };
            if conn.test_connected().await {
                return Ok(conn);
            }
            conn.abort().await;
        }
    }

    /// Gives a connection back after a send: kept if healthy and there is room, else closed.
    pub(crate) async fn checkin(&self, mut conn: AsyncSmtpConnection) {
        if conn.has_broken() {
            conn.abort().await;
            return;
        }
        let surplus = {
            let mut idle = self.idle();
            if idle.len() >= self.max_idle {
                Some(conn)
            } else {
                idle.push(Parked {
                    conn,
                    since: Instant::now(),
                });
                None
            }
        };
        if let Some(mut conn) = surplus {
            conn.abort().await;
        }
    }
}

async fn quit_all(conns: Vec<AsyncSmtpConnection>) {
    for mut conn in conns {
        conn.abort().await;
    }
}

impl Drop for Pool {
    /// Says `QUIT` on the idle connections when a runtime is there to do it; else they close.
    fn drop(&mut self) {
        let conns: Vec<_> = self.idle().drain(..).map(|p| p.conn).collect();
        if let (false, Ok(runtime)) = (conns.is_empty(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(quit_all(conns));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sockets_are_opened_with_tcp_nodelay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let connector = Connector {
            host: "127.0.0.1".into(),
            port: listener.local_addr().unwrap().port(),
            tls: Tls::None,
            timeout: Some(Duration::from_secs(5)),
            credentials: None,
        };
        let stream = connector.tcp().await.unwrap();
        assert!(stream.nodelay().unwrap());
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_failure() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let connector = Connector {
            host: "127.0.0.1".into(),
            port,
            tls: Tls::None,
            timeout: Some(Duration::from_secs(5)),
            credentials: None,
        };
        assert!(matches!(
            connector.open().await,
            Err(SmtpFailure::Connect(_))
        ));
    }
}
