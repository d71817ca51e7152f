//! A throwaway PostgreSQL cluster in a temp folder (initdb + pg_ctl, as user `postgres` when
//! root), removed when the process that started it ends. Shared by the tests and the benches.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running cluster.
pub struct Cluster {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    pg_ctl: PathBuf,
    root: bool,
    opts: String,
}

fn find_bin(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .collect::<Vec<_>>()
    });
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join(name));
    on_path.chain(debian).find(|p| p.is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL program, as user `postgres` when we are root (the server refuses root).
fn pg_command(bin: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    }
}

impl Cluster {
    /// Starts a cluster; `durable` keeps PostgreSQL's defaults (fsync, synchronous_commit on),
    /// otherwise they are off for speed.
    pub fn start(durable: bool) -> Result<Cluster, String> {
        start_cluster(durable)
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown), keeping its data.
    #[allow(dead_code)]
    pub fn stop(&self) -> Result<(), String> {
        let out = pg_command(&self.pg_ctl, self.root)
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .map_err(|e| format!("pg_ctl stop: {e}"))?;
        out.status
            .success()
            .then_some(())
            .ok_or_else(|| String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Starts the stopped server again on the same port.
    #[allow(dead_code)]
    pub fn restart(&self) -> Result<(), String> {
        pg_start(&self.pg_ctl, self.root, &self.dir, &self.opts)
    }
}

fn start_cluster(durable: bool) -> Result<Cluster, String> {
    let initdb = find_bin("initdb").ok_or("`initdb` not found")?;
    let pg_ctl = find_bin("pg_ctl").ok_or("`pg_ctl` not found")?;
    let root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("cpor-test-pg-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?
        .keep();
    if root {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Err("cannot chown the cluster folder to user postgres".into());
        }
    }
    let data = dir.join("data");
    let out = pg_command(&initdb, root)
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        .output()
        .map_err(|e| format!("running initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("free port: {e}"))?
        .port();
    let mut opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
        dir.display()
    );
    if !durable {
        opts.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
    }
    pg_start(&pg_ctl, root, &dir, &opts)?;
    spawn_reaper(&pg_ctl, &data, &dir, root);
    Ok(Cluster {
        port,
        dir,
        pg_ctl,
        root,
        opts,
    })
}

fn pg_start(pg_ctl: &Path, root: bool, dir: &Path, opts: &str) -> Result<(), String> {
    let out = pg_command(pg_ctl, root)
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-o", opts, "-l"])
        .arg(dir.join("server.log"))
        .args(["-w", "-t", "60", "start"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running pg_ctl: {e}"))?;
    if !out.status.success() {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        return Err(format!(
            "pg_ctl start failed: {}\n{log}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Stops the cluster and removes its folder once this test process has ended, however it ends.
fn spawn_reaper(pg_ctl: &Path, data: &Path, dir: &Path, root: bool) {
    let stop = if root {
        format!(
            "runuser -u postgres -- {} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    } else {
        format!(
            "{} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        )
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        dir = dir.display()
    );
    let _ = Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
