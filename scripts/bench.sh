#!/usr/bin/env bash
# Build and run xdpsec's benchmark runner (docs/BENCHMARKS.md).
#
#   bash scripts/bench.sh                 # every scenario, default durations → docs/bench/
#   bash scripts/bench.sh pipeline --quick
#   OUT=/tmp/b bash scripts/bench.sh scale --sas 1,1000
#   bash scripts/bench.sh ike --responders xdpsec,strongswan
#
# `e2e` and `ike` over the wire (and so `all`) need root: they build network namespaces
# (prefix xb-) and run `xdpsec run` (and strongSwan's charon, if installed); without root
# `all` skips e2e and runs ike in process only. Run on an otherwise idle machine: two vCPUs are
# easily disturbed. `./target/release/xdpsec-bench --help` lists scenarios and options.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p xdpsec-bench -p xdpsec-control
[ $# -eq 0 ] && set -- all
exec ./target/release/xdpsec-bench --out "${OUT:-docs/bench}" "$@"
