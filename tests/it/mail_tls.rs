//! SMTP over TLS against a real server on loopback: STARTTLS with AUTH and implicit TLS
//! (`smtps://`), the server's certificate checked against a private CA given in settings.

use std::path::Path;
use std::process::Command;

use cpor_worker::mail::{DeliveryError, OutgoingEmail, SmtpTransport, Transport};

use crate::harness::smtp::SmtpSink;

/// A CA and a `localhost` server certificate it signed (CA:FALSE, as rustls requires).
fn certificates(dir: &Path) -> bool {
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n\
         extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n",
    )
    .unwrap();
    let steps: [&[&str]; 3] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=cpor-worker test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    ];
    for args in steps {
        match Command::new("openssl").current_dir(dir).args(args).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!("openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => {
                eprintln!("!!!!!! SKIPPED TLS test: openssl not runnable: {e} !!!!!!");
                return false;
            }
        }
    }
    true
}

fn email() -> OutgoingEmail {
    OutgoingEmail {
        message_id: "<tls-1@cpor.example>".into(),
        from: "CPOR Claims <noreply@cpor.example>".into(),
        to_name: "Åsa Öberg".into(),
        to_address: "asa@customer.example".into(),
        subject: "Över TLS".into(),
        text: "text".into(),
        html: "<p>html</p>".into(),
    }
}

fn transport(url: &str, ca: Option<&[u8]>) -> SmtpTransport {
    SmtpTransport::from_url_with_ca(&url::Url::parse(url).unwrap(), 2, ca).unwrap()
}

#[tokio::test]
async fn starttls_with_auth_delivers_and_checks_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    if !certificates(dir.path()) {
        return;
    }
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    let Some(sink) = SmtpSink::start(
        "starttls_with_auth",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--auth",
            "mailer:s3cret",
        ],
    ) else {
        return;
    };
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let port = sink.port;
    transport(&format!("smtp://mailer:s3cret@localhost:{port}"), Some(&ca))
        .send(&email())
        .await
        .expect("delivered over STARTTLS with AUTH");
    assert_eq!(sink.messages().len(), 1);

    let untrusted = transport(&format!("smtp://mailer:s3cret@localhost:{port}"), None)
        .send(&email())
        .await
        .unwrap_err();
    assert!(
        matches!(untrusted, DeliveryError::Temporary(_)),
        "an unknown CA is refused (and retried later): {untrusted:?}"
    );
    assert_eq!(
        sink.messages().len(),
        1,
        "nothing went out without a trusted certificate"
    );
}

#[tokio::test]
async fn implicit_tls_delivers() {
    let dir = tempfile::tempdir().unwrap();
    if !certificates(dir.path()) {
        return;
    }
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    let Some(sink) = SmtpSink::start(
        "implicit_tls",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--implicit-tls",
        ],
    ) else {
        return;
    };
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    transport(&format!("smtps://localhost:{}", sink.port), Some(&ca))
        .send(&email())
        .await
        .expect("delivered over implicit TLS");
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert!(String::from_utf8_lossy(&msgs[0].0).contains("tls-1@cpor.example"));
}
