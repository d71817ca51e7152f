//! `deadline --batch` against its Python peer: `cargo bench --bench deadline_batch`.
//!
//! Writes 1,000,000 JSON lines (`CPOR_BENCH_LINES` to change; random countries, zones, instants
//! 2000–2100, 80 % business days) and the worker's holidays for the peer, then in each of three
//! rounds (`CPOR_BENCH_ROUNDS`) times: the floor (reading the file and parsing every line with
//! serde_json, one thread, in this process), the release binary `cpor-worker deadline --batch`,
//! and `python3 benches/peer_deadline_batch.py` (json + zoneinfo + numpy). It prints every
//! round, min/median/max per contestant, the ratios of the medians, the load before and after,
//! and whether the two outputs are byte-identical.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use chrono::{DateTime, Datelike, NaiveDate};
use cpor_worker::calendar::{Calendars, RANGE_END, RANGE_START};
use serde::Deserialize;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}

/// The input line shape, for the floor.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Line<'a> {
    country: &'a str,
    time_zone: Option<&'a str>,
    from: &'a str,
    business_days: Option<u32>,
    calendar_days: Option<u32>,
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| {
            format!(
                "load average {}",
                l.split_whitespace().take(3).collect::<Vec<_>>().join(", ")
            )
        })
        .unwrap_or_default()
}

/// Seconds `program args < input > output` takes, wall clock. The previous round's output is
/// removed before the clock starts: truncating 190 MB in the page cache is not the program's
/// work (it cost the second and third rounds about 0.1 s).
fn timed(program: &str, args: &[&str], input: &Path, output: &Path) -> f64 {
    match std::fs::remove_file(output) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("remove output: {e}"),
        _ => {}
    }
    let stdin = File::open(input).expect("input");
    let stdout = File::create(output).expect("output");
    let t = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .status()
        .expect("run");
    assert!(status.success(), "{program} {args:?} failed");
    t.elapsed().as_secs_f64()
}

/// (min, median, max).
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[0], s[s.len() / 2], s[s.len() - 1])
}

/// Stops the bench before any work when `python3` cannot run what the peer needs (numpy,
/// zoneinfo with its time-zone data), with Python's own error.
fn check_peer_python() {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import json, numpy, zoneinfo; zoneinfo.ZoneInfo('America/Havana')",
        ])
        .output();
    let error = match probe {
        Ok(out) if out.status.success() => return,
        Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
        Err(e) => e.to_string(),
    };
    eprintln!(
        "the Python peer needs python3 (3.9 or later) with numpy and time-zone data on PATH \
         (Debian: apt-get install python3-numpy tzdata; elsewhere: python3 -m pip install \
         numpy tzdata):\n{error}"
    );
    std::process::exit(2);
}

/// The IANA time-zone database version Python's zoneinfo reads (its first zone folder's
/// `tzdata.zi`, else the `tzdata` package), or what went wrong.
fn peer_tzdata() -> String {
    let probe = Command::new("python3")
        .args([
            "-c",
            "import os, zoneinfo\n\
             for p in zoneinfo.TZPATH:\n\
             \x20   f = os.path.join(p, 'tzdata.zi')\n\
             \x20   if os.path.exists(f):\n\
             \x20       print(open(f).readline().split()[-1], 'from', f); break\n\
             else:\n\
             \x20   import tzdata; print(tzdata.IANA_VERSION, 'from the tzdata package')",
        ])
        .output();
    match probe {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        Err(e) => e.to_string(),
    }
}

fn main() {
    check_peer_python();
    let lines = env("CPOR_BENCH_LINES", 1_000_000);
    let rounds = env("CPOR_BENCH_ROUNDS", 3).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("batch.jsonl");
    let holidays = dir.path().join("holidays.json");

    // The worker's calendars, for the peer.
    let cals = Calendars::builtin().expect("calendars");
    let mut spec = serde_json::Map::new();
    for cal in cals.iter() {
        let days: BTreeSet<NaiveDate> = (RANGE_START.year()..=RANGE_END.year())
            .flat_map(|y| cal.holidays_in_year(y))
            .map(|h| h.date)
            .collect();
        spec.insert(
            cal.id().to_owned(),
            serde_json::json!({
                "time_zone": cal.time_zone().name(),
                "countries": cal.countries(),
                "holidays": days.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            }),
        );
    }
    std::fs::write(&holidays, serde_json::to_vec(&spec).expect("json")).expect("write");

    // The input lines.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut text = String::with_capacity(lines * 110);
    let start = DateTime::from_timestamp(946_684_800, 0).expect("2000");
    for _ in 0..lines {
        let t = start + chrono::TimeDelta::seconds((rng.next() % (100 * 365 * 86_400)) as i64);
        let mut line = serde_json::Map::new();
        line.insert("country".into(), rng.pick(&["SE", "US", "GB", "DE"]).into());
        line.insert(
            "from".into(),
            t.format("%Y-%m-%dT%H:%M:%SZ").to_string().into(),
        );
        let zone = rng.pick(&[
            "",
            "Europe/Stockholm",
            "America/New_York",
            "America/Havana",
            "Asia/Tokyo",
        ]);
        if !zone.is_empty() {
            line.insert("time_zone".into(), zone.into());
        }
        let key = if rng.next() % 5 < 4 {
            "business_days"
        } else {
            "calendar_days"
        };
        line.insert(key.into(), (rng.next() % 40).into());
        text.push_str(&serde_json::Value::Object(line).to_string());
        text.push('\n');
    }
    std::fs::write(&input, &text).expect("write input");
    drop(text);

    let worker = env!("CARGO_BIN_EXE_cpor-worker");
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peer_deadline_batch.py");
    let peer = peer.to_str().expect("path");
    let ours_out = dir.path().join("ours.jsonl");
    let peer_out = dir.path().join("peer.jsonl");
    println!("{lines} lines, {rounds} rounds; before: {}", uptime());
    // Answers differ where the two databases disagree about a zone's rules.
    println!(
        "time-zone rules: cpor-worker tzdata {} (compiled in, chrono-tz); python peer tzdata {}",
        chrono_tz::IANA_TZDB_VERSION,
        peer_tzdata()
    );
    let (mut floor, mut ours, mut python) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        let t = Instant::now();
        let data = std::fs::read(&input).expect("read");
        let mut parsed = 0usize;
        for l in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            parsed += usize::from(serde_json::from_slice::<Line>(l).is_ok());
        }
        floor.push(t.elapsed().as_secs_f64());
        assert_eq!(parsed, lines);
        ours.push(timed(worker, &["deadline", "--batch"], &input, &ours_out));
        python.push(timed(
            "python3",
            &[peer, holidays.to_str().expect("path")],
            &input,
            &peer_out,
        ));
        println!(
            "round {round}: floor (read + serde_json parse, 1 thread) {:.3} s, cpor-worker {:.3} s, python peer {:.3} s",
            floor[round - 1],
            ours[round - 1],
            python[round - 1]
        );
    }
    let (fl, fm, fh) = spread(&floor);
    let (ol, om, oh) = spread(&ours);
    let (pl, pm, ph) = spread(&python);
    println!(
        "floor, read + parse the lines (1 thread): {fm:.3} s median (min {fl:.3}, max {fh:.3})"
    );
    println!("cpor-worker deadline --batch:           {om:.3} s median (min {ol:.3}, max {oh:.3})");
    println!("python peer (json + zoneinfo + numpy):  {pm:.3} s median (min {pl:.3}, max {ph:.3})");
    println!("ratio python / cpor-worker (medians): {:.1}x", pm / om);
    println!("ratio cpor-worker / floor (medians): {:.2}", om / fm);
    let a = std::fs::read(&ours_out).expect("ours");
    let b = std::fs::read(&peer_out).expect("peer");
    // The first differing line, and which zones the differing answers are in (the two tzdata
    // versions can disagree).
    let mut first = None;
    let mut zones = std::collections::BTreeMap::<String, usize>::new();
    let pairs = a.split(|&c| c == b'\n').zip(b.split(|&c| c == b'\n'));
    for (i, (x, y)) in pairs.enumerate() {
        if x != y {
            first.get_or_insert((i, x, y));
            let zone = serde_json::from_slice::<serde_json::Value>(x)
                .ok()
                .and_then(|v| Some(v.get("time_zone")?.as_str()?.to_owned()))
                .unwrap_or_else(|| "(no answer)".to_owned());
            *zones.entry(zone).or_default() += 1;
        }
    }
    match first {
        None if a.len() == b.len() => println!("outputs: byte-identical ({} bytes)", a.len()),
        None => println!(
            "outputs: differ in length ({} vs {} bytes)",
            a.len(),
            b.len()
        ),
        Some((i, x, y)) => {
            let input = std::fs::read(&input).expect("input");
            let input_line = input.split(|&c| c == b'\n').nth(i).unwrap_or_default();
            println!(
                "outputs: {} lines differ, by zone {zones:?}; the first at line {}",
                zones.values().sum::<usize>(),
                i + 1
            );
            println!("  input:       {}", String::from_utf8_lossy(input_line));
            println!("  cpor-worker: {}", String::from_utf8_lossy(x));
            println!("  python peer: {}", String::from_utf8_lossy(y));
        }
    }
    println!("after: {}", uptime());
}
