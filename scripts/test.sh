#!/usr/bin/env bash
# The whole test suite, from a clean checkout on Debian with Rust and Node installed.
# Installs what the tests need (redis-server, chromium, s3s-fs, promtool, Node packages) and runs:
# format, lints, unit + property tests, end-to-end tests with real processes and the npm
# y-websocket client, browser tests (Debian's chromium through playwright-core), the check that
# the committed web bundle rebuilds byte for byte, benchmark compilation, deployment checks.
#
# Usage: scripts/test.sh            everything
#        SKIP_SLOW=1 scripts/test.sh   skip the fuzz smoke
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# A run from a clean checkout gains nothing from incremental compilation and its caches cost GBs of
# disk (CI once ran out of space); set CARGO_INCREMENTAL=1 to keep them for repeated local runs.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
unset RUST_LOG
started=$(date +%s)
step() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

step "prerequisites"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || { echo "installing redis-server"; apt_install redis-server redis-tools; }
# redis-server from the package starts a system service; the tests start their own.
# The browser tests drive Debian's chromium (playwright-core downloads no browser).
command -v chromium >/dev/null || { echo "installing chromium"; apt_install chromium fonts-dejavu-core; }
command -v node >/dev/null || { echo "Node.js is required (the interop tests drive the npm y-websocket client)"; exit 1; }
redis-server --version | head -1
chromium --version 2>/dev/null | head -1
# s3s-fs: a real S3-protocol server for the object storage tests (yws-objects; the version is
# yws_objects::testing::VERSION). Built from crates.io into Cargo's bin dir when missing —
# ~2.5 minutes on 2 cores (143 s measured), once per machine.
s3s_fs_version=0.14.1
s3s_fs="${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs"
if ! "$s3s_fs" --version 2>/dev/null | grep -qx "s3s-fs $s3s_fs_version"; then
  echo "installing s3s-fs $s3s_fs_version (cargo install; a few minutes, once)"
  cargo install "s3s-fs@$s3s_fs_version" --features binary --locked --quiet
fi
export S3S_FS="$s3s_fs"
"$s3s_fs" --version
node --version

step "npm ci (tests/interop, tests/browser, services/web/ui)"
for dir in tests/interop tests/browser services/web/ui; do
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
done

step "web bundle: unit tests, and a rebuild from package-lock.json matches the committed bytes"
(cd services/web/ui && node --test --test-reporter=spec test/ && node build.mjs --check)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo build (binaries for the end-to-end tests)"
cargo build --workspace --bins --locked

step "deployment checks (Helm chart, compose file, Prometheus rules, dashboard queries)"
deploy/check.sh

step "cargo test"
cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-4}"

step "chaos run, short: 3 gateways, 2 compactors, Redis (AOF); SIGKILLs, a Redis restart and pause under reconnecting clients; every room converges"
# Debug binaries (just built), a light load, about 100 s; the long run is in docs/scaling.md.
DURATION=60 KILL_EVERY=15 QUIET=15 ROOMS=20 CLIENTS=4 RATE=2 YWS_BIN_DIR=target/debug \
  YWS_LOAD_BIN=target/debug/yws-load OUT_DIR=target/chaos-short loadtest/scripts/chaos.sh

step "cargo bench --no-run (benchmarks compile; optimisation off to keep CI quick)"
CARGO_PROFILE_BENCH_OPT_LEVEL=0 CARGO_PROFILE_BENCH_DEBUG=false cargo bench --workspace --locked --no-run

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

if [ -z "${SKIP_SLOW:-}" ] && cargo +nightly --version >/dev/null 2>&1; then
  step "fuzz smoke: protocol decoder, live-message parser (20 s each)"
  if ! command -v cargo-fuzz >/dev/null; then cargo install cargo-fuzz --locked --quiet || true; fi
  if command -v cargo-fuzz >/dev/null; then
    # Huge virtual reservations that glibc would refuse are refused under ASan too
    # (allocator_may_return_null); memory actually touched is still capped by -rss_limit_mb.
    export ASAN_OPTIONS=allocator_may_return_null=1
    (cd services/protocol \
      && cargo +nightly fuzz run -O decode fuzz/regressions -- -runs=0 -rss_limit_mb=2048 -malloc_limit_mb=1000000 \
      && cargo +nightly fuzz run -O decode -- -max_total_time=20 -rss_limit_mb=2048 -malloc_limit_mb=1000000 2>&1 | tail -5)
    (cd services/redis \
      && cargo +nightly fuzz run -O live_message fuzz/regressions -- -runs=0 -rss_limit_mb=2048 -malloc_limit_mb=1000000 \
      && cargo +nightly fuzz run -O live_message -- -max_total_time=20 -rss_limit_mb=2048 -malloc_limit_mb=1000000 2>&1 | tail -5)
  else
    echo "cargo-fuzz unavailable; skipped"
  fi
fi

step "all tests passed"
