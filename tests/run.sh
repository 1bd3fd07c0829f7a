#!/usr/bin/env bash
# Runs the test suite: installs dependencies, builds, runs ctest once normally,
# once under AddressSanitizer + UndefinedBehaviorSanitizer, then runs every fuzz
# target for $FUZZ_SECONDS (default 30) in a clang/libFuzzer build (build-fuzz).
# Warnings are errors.
#   tests/run.sh          all three
#   tests/run.sh --quick  the normal build only
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

if [ "${1:-}" != "--quick" ]; then
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPARLEY_SANITIZE=ON -DPARLEY_WERROR=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  (cd build-asan && ctest --output-on-failure -j"$jobs")

  # Each inbound parser under libFuzzer for a bounded time (docs/fuzzing.md); a crash prints its reproducer.
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPARLEY_FUZZ=ON -DPARLEY_TESTS=OFF \
    -DPARLEY_WERROR=ON -DFUZZ_SECONDS="${FUZZ_SECONDS:-30}" >/dev/null
  cmake --build build-fuzz -j"$jobs"
  (cd build-fuzz && ctest --output-on-failure -j"$jobs")
fi
