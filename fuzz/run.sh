#!/usr/bin/env bash
# Fuzz cpor-worker's file parsers for a bounded time each: the holiday-calendar rule files and
# the settings file. Installs cargo-fuzz if it is missing. libFuzzer needs nightly-only compiler
# flags (-Zsanitizer, sancov); RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
#
#   fuzz/run.sh                 # every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=300 fuzz/run.sh calendar_rules
#   FUZZ_DEV=1 fuzz/run.sh      # debug build: compiles in a fraction of the time (CI)
#
# Exit status non-zero when a target finds a crash; the input is left in
# fuzz/artifacts/TARGET/ (replay: RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/FILE).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(calendar_rules config_load)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1
profile=()
if [ "${FUZZ_DEV:-0}" = 1 ]; then
    profile=(--dev)
fi
# Build once, then run each target: the build is not counted in FUZZ_SECONDS.
cargo fuzz build --fuzz-dir fuzz "${profile[@]}"
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    echo "== fuzzing $t for ${seconds}s"
    cargo fuzz run --fuzz-dir fuzz "${profile[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
