#!/usr/bin/env bash
# Build and run xdpsec's benchmark runner (docs/BENCHMARKS.md).
#
#   bash scripts/bench.sh                 # every scenario, default durations → docs/bench/
#   bash scripts/bench.sh pipeline --quick
#   OUT=/tmp/b bash scripts/bench.sh scale --sas 1,1000
#
# `e2e` (and so `all`) needs root: it builds network namespaces (prefix xb-) and runs
# `xdpsec run`. Run on an otherwise idle machine: two vCPUs are easily disturbed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p xdpsec-bench -p xdpsec-control
[ $# -eq 0 ] && set -- all
exec ./target/release/xdpsec-bench --out "${OUT:-docs/bench}" "$@"
