//! Deadline computations per second on one core: `cargo bench --bench deadlines`.
//!
//! 10 million random (date, N) pairs over 2000–2100 and N in 0..=60, generated before the clock
//! starts; then the business-day hot path (date → index, add, index → date) alone, and the
//! whole SPEC §3 deadline (instant → local date in the zone, add, start of the next local day).

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use cpor_worker::calendar::{Calendars, DayCount, deadline};

const PAIRS: usize = 10_000_000;

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

    // Warm-up, then the measured pass.
    let mut sink = 0i64;
    for &(d, n) in pairs.iter().take(1_000_000) {
        sink += i64::from(black_box(se.add_business_days(d, n)).is_ok());
    }
    let t = Instant::now();
    for &(d, n) in &pairs {
        if let Ok(x) = black_box(se.add_business_days(black_box(d), black_box(n))) {
            sink = sink.wrapping_add(i64::from(x.num_days_from_ce()));
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "add_business_days: {PAIRS} in {secs:.3} s = {:.1} million/s on one core",
        PAIRS as f64 / secs / 1e6
    );

    let instants: Vec<(DateTime<Utc>, u32)> = pairs
        .iter()
        .map(|&(d, n)| (d.and_hms_opt(13, 37, 0).expect("time").and_utc(), n))
        .collect();
    let tz = se.time_zone();
    // Warm-up: builds the zone's midnight table (once per zone per process).
    for &(from, n) in instants.iter().take(1_000_000) {
        sink += i64::from(black_box(deadline(se, tz, from, DayCount::Business(n))).is_ok());
    }
    let t = Instant::now();
    for &(from, n) in &instants {
        if let Ok(x) = black_box(deadline(se, tz, black_box(from), DayCount::Business(n))) {
            sink = sink.wrapping_add(x.due.timestamp());
        }
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "deadline (Europe/Stockholm, instant → due instant): {PAIRS} in {secs:.3} s = {:.1} million/s on one core",
        PAIRS as f64 / secs / 1e6
    );
    println!("(checksum {sink})");
}
