#!/usr/bin/env bash
# The fuzz targets of fuzz/fuzz_targets, each for a bounded time (FUZZ_SECONDS, default
# 10), with cargo-fuzz (installed when missing, pinned) on the stable toolchain without a
# sanitizer (the code under test is safe Rust: what we look for are panics and broken
# invariants). Each target's corpus grows across runs in ~/.cache/flash-sale/fuzz-corpus,
# seeded from fuzz/seeds. A crash stops the run, prints the input and exits non-zero; its
# input lands in fuzz/artifacts/<target>/ (turn it into a regression test and a seed).
#
#   fuzz/run.sh                            # every target, 10 s each (CI)
#   FUZZ_SECONDS=600 fuzz/run.sh order_body   # a longer run of one target
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/lib.sh"
CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
cd "$REPO_ROOT/fuzz"
if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install -q cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi
export CARGO_TARGET_DIR=$HOME/.cache/flash-sale/fuzz-target
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
say "building ${#targets[@]} fuzz targets (coverage-instrumented release build)"
build_log=$(mktemp)
cargo fuzz build -s none >"$build_log" 2>&1 || { tail -n 40 "$build_log" >&2; die "the fuzz targets do not build"; }
rm -f "$build_log"
total=0
for t in "${targets[@]}"; do
  corpus=$HOME/.cache/flash-sale/fuzz-corpus/$t
  mkdir -p "$corpus"
  log=$(mktemp)
  if ! cargo fuzz run -s none "$t" "$corpus" "seeds/$t" -- -max_total_time="$FUZZ_SECONDS" \
      >"$log" 2>&1; then
    grep -E "panicked|ERROR|Test unit written|Base64" "$log" >&2 || tail -n 30 "$log" >&2
    rm -f "$log"
    die "fuzz target $t crashed (input in fuzz/artifacts/$t/; reproduce: cargo fuzz run -s none $t <file>)"
  fi
  runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
  rm -f "$log"
  total=$((total + ${runs:-0}))
  printf '  %-16s %10s runs in %s s, %s, corpus %s inputs\n' "$t" "${runs:-?}" "$FUZZ_SECONDS" \
    "${cov:-cov: ?}" "$(find "$corpus" -type f | wc -l)"
done
say "fuzzing: ${#targets[@]} targets, $total runs, no crash"
