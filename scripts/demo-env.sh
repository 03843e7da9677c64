# Sourced by the demos (scripts/demo.sh, scripts/pcap-demo.sh) from the repository root: checks
# for root, runs the idempotent set-up, builds xdpsec (release) and sets XDPSEC (the binary)
# and OUT (a folder for the demo's files; DEMO_OUT picks it).
ROOT=$PWD
[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces)" >&2; exit 1; }

bash scripts/setup.sh
echo "demo: building xdpsec (release)"
cargo build --release -q -p xdpsec-control
XDPSEC=$ROOT/target/release/xdpsec
OUT=${DEMO_OUT:-$(mktemp -d /tmp/xdpsec-demo.XXXXXX)}
