#!/usr/bin/env bash
# Builds every cargo fuzz target and runs each for a short time from the checked-in seeds
# (CI's smoke run; a longer run is `FUZZ_SECONDS=600 fuzz/smoke.sh`). New corpus entries go to
# a temporary directory, so the checked-in corpus stays as it is. Prints executions per
# target; exits non-zero on any crash, with the reproducer under fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-15}"
targets=("$@")

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
# No sanitizer: the code under test is safe Rust, where libFuzzer's panics-as-crashes and
# the arithmetic-overflow checks of a debug build find what there is to find. Without a
# sanitizer cargo fuzz needs no nightly-only rustc flag, so the stable toolchain builds it.
# A debug build compiles in a third of the time; FUZZ_BUILD="-O -a" for long runs.
flags=(--sanitizer none ${FUZZ_BUILD:---dev})
cargo fuzz build "${flags[@]}"
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fuzzing each target for ${seconds}s"
printf '%-22s %12s %11s\n' target executions 'new inputs'
for t in "${targets[@]}"; do
  mkdir -p "$work/$t"
  log="$work/$t.log"
  # The example config seed is about 9 KB; everything else is small.
  max_len=4096
  [ "$t" != config_loader ] || max_len=16384
  if ! cargo fuzz run "${flags[@]}" "$t" "$work/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -max_len="$max_len" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz target $t failed: see above and fuzz/artifacts/$t/" >&2
    exit 1
  fi
  runs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')"
  printf '%-22s %12s %11s\n' "$t" "$runs" "$(find "$work/$t" -type f | wc -l)"
done
