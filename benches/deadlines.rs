//! Deadline computations per second on one core: `cargo bench --bench deadlines`.
//!
//! 10 million random (date, N) pairs over 2000–2100 and N in 0..=60, generated before the clock
//! starts. Each of five rounds times the business-day floor (`add_business_days`: date → index,
//! add, index → date) and then the whole SPEC §3 `deadline()` (instant → local date in the zone,
//! add, first instant of the next local day) on the same pairs, so both see the same machine
//! load; it prints every round, min/median/max of each, and the ratio of the medians.

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use cpor_worker::calendar::{Calendar, Calendars, DayCount, deadline};

const PAIRS: usize = 10_000_000;
const ROUNDS: usize = 5;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Nanoseconds this thread has spent on a CPU (Linux `/proc/thread-self/schedstat`), so that
/// a shared machine's waiting for a CPU is not counted as work; 0 where unavailable.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// (millions per second of wall-clock time, millions per second of on-CPU time) of `f`
/// over `len` items.
fn rate(len: usize, f: impl FnOnce()) -> (f64, f64) {
    let (t, c) = (Instant::now(), cpu_ns());
    f();
    let (wall, cpu) = (t.elapsed().as_secs_f64(), (cpu_ns() - c) as f64 / 1e9);
    (
        len as f64 / wall / 1e6,
        if cpu > 0.0 {
            len as f64 / cpu / 1e6
        } else {
            f64::NAN
        },
    )
}

/// `add_business_days` over `pairs`.
fn floor(se: &Calendar, pairs: &[(NaiveDate, u32)], sink: &mut i64) -> (f64, f64) {
    rate(pairs.len(), || {
        for &(d, n) in pairs {
            if let Ok(x) = black_box(se.add_business_days(black_box(d), black_box(n))) {
                *sink = sink.wrapping_add(i64::from(x.num_days_from_ce()));
            }
        }
    })
}

/// `deadline()` over `instants` in the calendar's own zone.
fn deadlines(se: &Calendar, instants: &[(DateTime<Utc>, u32)], sink: &mut i64) -> (f64, f64) {
    let tz = se.time_zone();
    rate(instants.len(), || {
        for &(from, n) in instants {
            if let Ok(x) = black_box(deadline(se, tz, black_box(from), DayCount::Business(n))) {
                *sink = sink.wrapping_add(x.due.timestamp());
            }
        }
    })
}

/// (min, median, max).
fn spread(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    (s[0], s[s.len() / 2], s[s.len() - 1])
}

fn main() {
    let cals = Calendars::builtin().expect("built-in calendars load");
    let se = cals.for_country("SE").expect("SE calendar");
    let start = NaiveDate::from_ymd_opt(2000, 1, 1).expect("date");
    let span = 101 * 365;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let pairs: Vec<(NaiveDate, u32)> = (0..PAIRS)
        .map(|_| {
            let d = start + Days::new(rng.next() % span);
            (d, (rng.next() % 61) as u32)
        })
        .collect();
    // Random times of day too, so the local date is not always the UTC date.
    let instants: Vec<(DateTime<Utc>, u32)> = pairs
        .iter()
        .map(|&(d, n)| {
            let secs = d.and_hms_opt(0, 0, 0).expect("time").and_utc().timestamp()
                + (rng.next() % 86_400) as i64;
            (DateTime::from_timestamp(secs, 0).expect("instant"), n)
        })
        .collect();

    // Warm-up: builds the calendar's table for its zone (once per process).
    let mut sink = 0i64;
    floor(se, &pairs[..1_000_000], &mut sink);
    deadlines(se, &instants[..1_000_000], &mut sink);

    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", load().trim());
    let (mut f, mut d, mut fc, mut dc) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let (fw, fcpu) = floor(se, &pairs, &mut sink);
        let (dw, dcpu) = deadlines(se, &instants, &mut sink);
        println!(
            "round {round}: add_business_days {fw:.1} M/s ({fcpu:.1} on-CPU), deadline {dw:.1} M/s ({dcpu:.1} on-CPU), ratio {:.2}",
            dw / fw
        );
        f.push(fw);
        d.push(dw);
        fc.push(fcpu);
        dc.push(dcpu);
    }
    println!("load average after: {}", load().trim());
    for (what, wall, cpu) in [
        ("add_business_days (floor)", &f, &fc),
        (
            "deadline (Europe/Stockholm, instant → due instant)",
            &d,
            &dc,
        ),
    ] {
        let (l, m, h) = spread(wall);
        let (cl, cm, ch) = spread(cpu);
        println!(
            "{what}: {m:.1} million/s median (min {l:.1}, max {h:.1}) wall clock; {cm:.1} (min {cl:.1}, max {ch:.1}) per second on a CPU; {ROUNDS} rounds of {PAIRS}, one thread"
        );
    }
    println!(
        "ratio deadline / add_business_days (medians): {:.2} wall clock, {:.2} on-CPU",
        spread(&d).1 / spread(&f).1,
        spread(&dc).1 / spread(&fc).1
    );
    println!("(checksum {sink})");
}
