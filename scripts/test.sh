#!/usr/bin/env bash
# The project's test command: installs what a fresh Debian machine lacks for the tests (the
# PostgreSQL server binaries, Chromium and its WebDriver, Python's aiosmtpd for the SMTP server
# the email tests talk to), then runs `cargo test` with any arguments given to it.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh --test it mail  # arguments go to cargo test
#
# Needs the Rust toolchain; the rest comes from Debian packages (apt-get, as root or through
# sudo) or, for aiosmtpd when apt-get cannot be used, a virtual environment in target/test-venv.
# Tells the tests which Python has aiosmtpd through CPOR_TEST_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'scripts/test.sh: %s\n' "$*" >&2; }

# apt-get as root, or through sudo; fails (status 1) when neither is possible.
APT_UPDATED=0
apt_install() {
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            return 1
        fi
    fi
    command -v apt-get >/dev/null 2>&1 || return 1
    if [ "$APT_UPDATED" = 0 ]; then
        "${sudo[@]}" apt-get update -q >&2
        APT_UPDATED=1
    fi
    say "installing $* (Debian packages)"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2
}

have_initdb() {
    command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

# PostgreSQL server binaries: the tests start a throwaway cluster with initdb/pg_ctl, unless
# CPOR_TEST_DATABASE_URL points at a server.
if [ -z "${CPOR_TEST_DATABASE_URL:-}" ] && ! have_initdb; then
    apt_install postgresql || say "cannot install postgresql (not root, no sudo): the PostgreSQL tests will say how to provide a server"
fi
# As root the cluster runs as user postgres (the server refuses root); the package creates it.
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql postgres
fi

# Chromium and its WebDriver: the HTML report is rendered (and clicked) headless.
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}" || say "cannot install ${missing[*]}: the browser checks will be skipped"
fi

# A Python 3 with aiosmtpd: the one given, the one on PATH, Debian's, or our venv.
has_aiosmtpd() { [ -n "$1" ] && "$1" -c 'import aiosmtpd' >/dev/null 2>&1; }
VENV="$PWD/target/test-venv"
python=""
for candidate in "${CPOR_TEST_PYTHON:-}" "$(command -v python3 || true)" /usr/bin/python3 "$VENV/bin/python"; do
    if has_aiosmtpd "$candidate"; then
        python=$candidate
        break
    fi
done
if [ -z "$python" ] && apt_install python3-aiosmtpd && has_aiosmtpd /usr/bin/python3; then
    python=/usr/bin/python3
fi
if [ -z "$python" ]; then
    base=$(command -v python3 || echo /usr/bin/python3)
    say "installing aiosmtpd into $VENV"
    if ! "$base" -m venv "$VENV" >&2; then
        apt_install python3-venv && "$base" -m venv "$VENV" >&2
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check aiosmtpd >&2
    python=$VENV/bin/python
fi
export CPOR_TEST_PYTHON="$python"
say "SMTP test server runs on $CPOR_TEST_PYTHON"

exec cargo test "$@"
