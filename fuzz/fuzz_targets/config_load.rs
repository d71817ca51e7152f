//! Fuzzes settings loading: `cpor_worker::config::load` with a fuzzed `--config` file and an
//! empty environment (defaults, file, validation). Any panic is a bug: a bad file must come back
//! as a `ConfigError` naming the problem.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;

thread_local! {
    static DIR: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

fuzz_target!(|data: &[u8]| {
    DIR.with(|d| {
        let mut d = d.borrow_mut();
        let dir = d.get_or_insert_with(|| tempfile::tempdir().expect("temp dir"));
        let path = dir.path().join("fuzz.toml");
        std::fs::write(&path, data).expect("write");
        let _ = cpor_worker::config::load(Some(&path), &|_| None);
    });
});
