#!/usr/bin/env bash
# Installs the build into a throwaway prefix and checks that the installed
# binary finds the installed built-in plugins (no build tree involved).
set -euo pipefail
build=$1
prefix=$(mktemp -d /tmp/parley-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
out=$("$prefix/bin/parley" plugins)
echo "$out"
for name in webhook sqlite dedupe; do
  grep -E "^$name .* $prefix/" <<<"$out" >/dev/null || { echo "FAIL: $name not found under $prefix"; exit 1; }
done
test -f "$prefix/include/parley/parley.h" || { echo "FAIL: parley.h not installed"; exit 1; }
echo "installed layout ok"
