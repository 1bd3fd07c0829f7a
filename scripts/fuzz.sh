#!/usr/bin/env bash
# Runs the fuzz targets for longer than the test suite does, keeping what they learn:
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default 600 s for every target
# Builds build-fuzz (CC=clang, -DPARLEY_FUZZ=ON) first.  Targets run $FUZZ_PARALLEL at a time (default:
# the number of cores).  The working corpus is build-fuzz/corpus/<target> (seeded from the committed
# tests/fuzz/corpus/<target>, never written back), logs and reproducers are under build-fuzz/fuzz-logs and
# build-fuzz/fuzz-artifacts/<target>.  Prints, per target: executions, exec/s, coverage (cov: and ft:
# from libFuzzer's last status line), corpus size and new crashes.  Exit 1 when any target found one.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
[ $# -gt 0 ] && shift
root=$PWD
build=$root/build-fuzz
if [ ! -f "$build/CMakeCache.txt" ]; then
  CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_FUZZ=ON -DPARLEY_TESTS=OFF \
    -DPARLEY_WERROR=ON >/dev/null
fi
cmake --build "$build" -j"$(nproc)" >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in tests/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi
mkdir -p "$build/fuzz-logs"

supp=""
[ "${PARLEY_FUZZ_STRICT:-0}" = 1 ] || supp=":suppressions=$root/tests/fuzz/known.supp"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1$supp"
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1"

run_one() {
  local t=$1 seeds=$root/tests/fuzz/corpus/$1 work=$build/corpus/$1 art=$build/fuzz-artifacts/$1
  mkdir -p "$work" "$art"
  local dict=()
  [ -f "$seeds.dict" ] && dict=(-dict="$seeds.dict")
  touch "$build/fuzz-logs/$t.start"
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$art/" "${dict[@]}" "$work" "$seeds" >"$build/fuzz-logs/$t.log" 2>&1 || true
}
export -f run_one
export root build secs

printf '%s\n' "${targets[@]}" | xargs -P "${FUZZ_PARALLEL:-$(nproc)}" -I{} bash -c 'run_one {}'

found=0
printf '%-10s %12s %8s %6s %7s %8s %9s %s\n' target executions exec/s cov ft corpus KiB crashes
for t in "${targets[@]}"; do
  log=$build/fuzz-logs/$t.log
  # A target killed without its final stats (OOM, timeout) shows "?" rather than stopping the summary.
  execs=$(grep -a '^stat::number_of_executed_units' "$log" | awk '{print $2}' | head -n 1 || true)
  rate=$(grep -a '^stat::average_exec_per_sec' "$log" | awk '{print $2}' | head -n 1 || true)
  last=$(grep -aE '^#[0-9]+' "$log" | grep -a 'cov:' | tail -n 1 || true)
  cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
  ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
  files=$(find "$build/corpus/$t" -type f | wc -l)
  kib=$(du -sk "$build/corpus/$t" | awk '{print $1}')
  crashes=$(find "$build/fuzz-artifacts/$t" -type f -newer "$build/fuzz-logs/$t.start" | wc -l)
  printf '%-10s %12s %8s %6s %7s %8s %9s %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$files" \
    "$kib" "$crashes"
  if [ "$crashes" -gt 0 ]; then
    found=1
    find "$build/fuzz-artifacts/$t" -type f -newer "$build/fuzz-logs/$t.start" -printf '    reproducer: %p\n'
  fi
done
grep -ahE '^known finding' "$build"/fuzz-logs/*.log | cut -c1-160 | sort -u || true
exit $found
