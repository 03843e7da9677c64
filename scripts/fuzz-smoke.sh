#!/usr/bin/env bash
# Smoke-run every cargo-fuzz target (dataplane/fuzz: wire, classification, replay, ESP decap;
# control/fuzz: the IKEv2 parser) for a few seconds each.
#
#   scripts/fuzz-smoke.sh                 # all targets listed by `cargo fuzz list`
#   scripts/fuzz-smoke.sh replay classify # only these
#   FUZZ_SECONDS=60 scripts/fuzz-smoke.sh # longer runs (default 10 s per target)
#
# Idempotent: installs cargo-fuzz only if missing, reuses the corpus under
# CRATE/fuzz/corpus/TARGET (git-ignored). Prints one line per target; exits non-zero if
# any target fails to build or finds a crash (the reproducer lands in
# CRATE/fuzz/artifacts/TARGET/; replay it from CRATE/ with `cargo +nightly fuzz run TARGET FILE`).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${FUZZ_SECONDS:-10}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"
logdir="${FUZZ_LOGDIR:-$root/target/fuzz-smoke-logs}"

# libFuzzer needs a nightly toolchain (-Z sanitizer); one is preinstalled on the dev machine.
if ! rustup toolchain list | grep -q "^${toolchain}"; then
  echo "fuzz-smoke: installing the ${toolchain} toolchain"
  rustup toolchain install "${toolchain}" --profile minimal
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

mkdir -p "$logdir"
failed=()
ran=0
for crate in dataplane control; do
  cd "$root/$crate"
  mapfile -t all < <(cargo "+${toolchain}" fuzz list)
  targets=()
  for t in "${all[@]}"; do
    if [ "$#" -eq 0 ] || printf '%s\n' "$@" | grep -qx "$t"; then targets+=("$t"); fi
  done
  for t in "${targets[@]}"; do
    ran=$((ran + 1))
    log="$logdir/$t.log"
    rc=0
    # Default cargo-fuzz build: optimised, with debug assertions and overflow checks on.
    cargo "+${toolchain}" fuzz run "$t" -- \
      -max_total_time="$seconds" -rss_limit_mb=2048 >"$log" 2>&1 || rc=$?
    # libFuzzer ends a clean run with "Done N runs in S second(s)"; after a crash the last
    # status line "#N ..." gives the count so far.
    execs="$(grep -oE '^Done [0-9]+ runs' "$log" | tail -n1 | grep -oE '[0-9]+' || true)"
    if [ -z "$execs" ]; then
      execs="$(grep -oE '^#[0-9]+' "$log" | tail -n1 | tr -d '#' || true)"
    fi
    if [ "$rc" -eq 0 ]; then
      printf 'fuzz-smoke: %-12s ok      %12s execs in %ss\n' "$t" "${execs:-?}" "$seconds"
    elif ! grep -q '^INFO: Seed:' "$log"; then
      printf 'fuzz-smoke: %-12s BUILD FAILED (exit %s), see %s\n' "$t" "$rc" "$log"
      grep -E '^error' "$log" | head -n 5 | sed 's/^/    /' || true
      failed+=("$t")
    else
      artifact="$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n1 | sed 's/^Test unit written to //' || true)"
      printf 'fuzz-smoke: %-12s CRASH   %12s execs (exit %s) %s, see %s\n' \
        "$t" "${execs:-?}" "$rc" "${artifact:-}" "$log"
      failed+=("$t")
    fi
  done
done
if [ "$ran" -eq 0 ]; then
  echo "fuzz-smoke: no fuzz targets found" >&2
  exit 1
fi

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz-smoke: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz-smoke: all $ran targets clean"
