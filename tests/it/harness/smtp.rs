//! A real SMTP server on loopback for tests: `tests/it/smtp/sink.py` (Python aiosmtpd) as a child
//! process, killed on drop, writing each message it accepts into a temp folder.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const HOW_TO: &str = "The SMTP tests need a Python 3 with aiosmtpd: run the tests with \
`scripts/test.sh` (it installs one and sets CPOR_TEST_PYTHON), or set CPOR_TEST_PYTHON to a Python \
that has it (Debian: apt-get install python3-aiosmtpd, then /usr/bin/python3), or skip them \
explicitly with CPOR_TEST_SKIP_SMTP=1.";

/// The Python that runs the sink: `CPOR_TEST_PYTHON` (set by `scripts/test.sh`), else the first
/// of `python3` and Debian's `/usr/bin/python3` that can import aiosmtpd; `None` when none can.
pub fn python() -> Option<&'static str> {
    static FOUND: OnceLock<Option<String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(p) = std::env::var("CPOR_TEST_PYTHON")
                .ok()
                .filter(|p| !p.is_empty())
            {
                return Some(p);
            }
            ["python3", "/usr/bin/python3"]
                .into_iter()
                .find(|p| {
                    Command::new(p)
                        .args(["-c", "import aiosmtpd"])
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success())
                })
                .map(str::to_owned)
        })
        .as_deref()
}

/// The sink script.
pub fn script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/smtp/sink.py"
    ))
}

/// A running sink; the process is killed when this is dropped.
pub struct SmtpSink {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: tempfile::TempDir,
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    l.local_addr().expect("local addr").port()
}

impl SmtpSink {
    /// Starts a sink with extra `args` (`--fail-first N`, `--reject ADDR`, `--discard`); `None`
    /// when CPOR_TEST_SKIP_SMTP=1; panics with how to install aiosmtpd when it cannot start.
    pub fn start(test: &str, args: &[&str]) -> Option<SmtpSink> {
        Self::start_on(test, free_port(), args)
    }

    /// Like [`SmtpSink::start`], on a given port (a server that comes up where a worker was
    /// already pointed).
    pub fn start_on(test: &str, port: u16, args: &[&str]) -> Option<SmtpSink> {
        if std::env::var("CPOR_TEST_SKIP_SMTP").is_ok_and(|v| v == "1") {
            eprintln!("!!!!!! SKIPPED SMTP test `{test}`: CPOR_TEST_SKIP_SMTP=1 !!!!!!");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let Some(python) = python() else {
            panic!("no Python 3 with aiosmtpd found (tried python3, /usr/bin/python3)\n{HOW_TO}");
        };
        let mut child = Command::new(python)
            .arg(script())
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir.path().join("mail"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}\n{HOW_TO}"));
        let started = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    std::io::Read::read_to_string(&mut e, &mut err).ok();
                }
                panic!("SMTP sink exited ({status}): {err}\n{HOW_TO}");
            }
            if started.elapsed() > Duration::from_secs(15) {
                child.kill().ok();
                panic!("SMTP sink did not listen on port {port} within 15 s\n{HOW_TO}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(SmtpSink { child, port, dir })
    }

    /// `smtp://127.0.0.1:PORT`.
    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("smtp://127.0.0.1:{}", self.port)).expect("url")
    }

    /// The messages received so far, in order: (raw message, envelope recipients).
    pub fn messages(&self) -> Vec<(Vec<u8>, Vec<String>)> {
        let folder = self.dir.path().join("mail");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&folder)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        names.retain(|p| p.extension().is_some_and(|e| e == "eml"));
        names.sort();
        names
            .into_iter()
            .map(|p| {
                let raw = std::fs::read(&p).expect("read message");
                let rcpt = std::fs::read_to_string(p.with_extension("rcpt")).unwrap_or_default();
                (raw, rcpt.lines().map(str::to_owned).collect())
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
