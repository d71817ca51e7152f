//! Fuzzes the holiday-calendar rule files: `Calendars::load` over a folder holding one fuzzed
//! `*.toml` (parse, validate, generate the holidays, index by country), then a few day
//! computations on whatever loaded. Any panic, hang or runaway allocation is a bug: a bad file
//! must come back as a `CalendarError`.
#![no_main]

use std::cell::RefCell;

use chrono::NaiveDate;
use cpor_worker::calendar::Calendars;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static DIR: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The parser alone, as the loader calls it.
    let _ = cpor_worker::calendar::rules::parse(text, "fuzz");
    DIR.with(|d| {
        let mut d = d.borrow_mut();
        let dir = d.get_or_insert_with(|| tempfile::tempdir().expect("temp dir"));
        std::fs::write(dir.path().join("fuzz.toml"), text).expect("write");
        let Ok(cals) = Calendars::load(dir.path(), &[]) else {
            return;
        };
        let day = NaiveDate::from_ymd_opt(2026, 12, 23).expect("date");
        for cal in cals.iter() {
            let _ = cal.is_business_day(day);
            let _ = cal.add_business_days(day, 5);
        }
    });
});
