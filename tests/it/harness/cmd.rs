//! The binary as the tests run it: one place for running a command in a folder with an
//! environment, asserting its exit status and reading its output.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The built binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cpor-worker"))
}

/// Output bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `cpor-worker` in a folder, with no inherited `CPOR_` settings but those given.
#[derive(Clone, Debug)]
pub struct Cmd {
    dir: PathBuf,
    env: Vec<(String, String)>,
}

impl Cmd {
    /// The binary, run in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            env: Vec::new(),
        }
    }

    /// With these environment variables set.
    pub fn envs<K: AsRef<str>, V: AsRef<str>>(mut self, env: &[(K, V)]) -> Self {
        self.env.extend(
            env.iter()
                .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())),
        );
        self
    }

    /// The command for `args`, to run as it is or to adjust first.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.current_dir(&self.dir).args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("CPOR_") || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `args`; whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run cpor-worker")
    }

    /// Runs `args` with `input` on stdin; whatever the exit status.
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cpor-worker");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        child.wait_with_output().expect("run cpor-worker")
    }

    /// Runs `args`, which must exit 0; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs `args`, which must exit with `code`; its stderr.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: stdout {} stderr {}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stderr)
    }
}

/// Runs the binary in `dir` with `args`, no inherited CPOR_ settings but those in `env`.
pub fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Cmd::new(dir).envs(env).run(args)
}

/// Runs a command in `dir` that must succeed; its stdout.
pub fn ok(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    Cmd::new(dir).envs(env).ok(args)
}
