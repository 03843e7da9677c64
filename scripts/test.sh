#!/usr/bin/env bash
# Runs every xdpsec test on a fresh Debian machine (installs what it needs first):
#   format and lints, unit/property/integration tests (scapy interop, network-namespace tests:
#   root required), the fuzz smoke run, and the demo.
# Each stage runs even if an earlier one failed; the last line counts them.
# FUZZ_SECONDS (default 8) sets the fuzz smoke time per target.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "test.sh: the namespace tests need root; run as root (CI does)" >&2
    exit 1
fi
bash scripts/setup.sh || { echo "test.sh: setup failed" >&2; exit 1; }

passed=0 failed=0 failures=()
stage() {
    local name=$1; shift
    echo "=== $name: $*"
    local t0=$SECONDS
    if "$@"; then
        passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED ($((SECONDS - t0)) s)"
    fi
}

stage fmt cargo fmt --all -- --check
stage clippy cargo clippy --workspace --all-targets -- -D warnings
stage cargo-test cargo test --workspace
stage fuzz-smoke env FUZZ_SECONDS="${FUZZ_SECONDS:-8}" bash scripts/fuzz-smoke.sh
stage pcap-demo bash scripts/pcap-demo.sh
stage demo bash scripts/demo.sh

[ ${#failures[@]} -eq 0 ] || echo "failed stages: ${failures[*]}"
echo "test.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
