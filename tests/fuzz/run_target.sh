#!/usr/bin/env bash
# Runs one fuzz target for a bounded time (ctest's fuzz.<target>):
#   run_target.sh BINARY SEED_CORPUS WORK_CORPUS SECONDS
# New inputs go to WORK_CORPUS (in the build tree, kept between runs); the
# committed seeds are only read.  A crash, leak, timeout or broken invariant
# fails the test, and the reproducer is printed with the command to replay it.
set -uo pipefail
bin=$1 seeds=$2 work=$3 secs=$4
name=$(basename "$bin")
artifacts=$(dirname "$work")/../fuzz-artifacts/${name#fuzz_}
mkdir -p "$work" "$artifacts"
dict=()
[ -f "$seeds.dict" ] && dict=(-dict="$seeds.dict")
log=$(mktemp)
started=$(mktemp) # reproducers newer than this are this run's
# Any UBSan report is a failure, except the reported findings in known.supp (unless PARLEY_FUZZ_STRICT=1).
supp=""
[ "${PARLEY_FUZZ_STRICT:-0}" = 1 ] || supp=":suppressions=$(dirname "$0")/known.supp"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1$supp"
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "${dict[@]}" "$work" "$seeds" >"$log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  tail -n 80 "$log"
  for f in $(find "$artifacts" -type f -newer "$started"); do
    echo "reproducer: $f ($(wc -c <"$f") bytes)"
    echo "replay:     UBSAN_OPTIONS=halt_on_error=1 $bin $f"
    echo "minimize:   $bin -minimize_crash=1 -runs=100000 $f"
  done
  rm -f "$log" "$started"
  exit 1
fi
# The figures libFuzzer prints last: executions, speed, coverage.
grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::average_exec_per_sec)' "$log" | tail -n 3
rm -f "$log" "$started"
