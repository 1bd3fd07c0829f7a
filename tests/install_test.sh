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
unit="$prefix/lib/systemd/system/parley.service"
test -f "$unit" || { echo "FAIL: the systemd unit is not installed"; exit 1; }
test -f "$prefix/etc/parley/parley.yaml" || { echo "FAIL: the unit's config is not installed"; exit 1; }
grep -q "^ExecStart=$prefix/bin/parley run -c $prefix/etc/parley/parley.yaml$" "$unit" ||
  { echo "FAIL: the unit names another binary or config:"; grep ExecStart "$unit"; exit 1; }
PARLEY_HOOKS_SECRET=s3cret-for-check "$prefix/bin/parley" check -c "$prefix/etc/parley/parley.yaml" >/dev/null ||
  { echo "FAIL: the installed config does not check"; exit 1; }
if command -v systemd-analyze >/dev/null && command -v man >/dev/null; then
  # Without warnings: any output is one.
  v=$(MANPATH="$prefix/share/man" systemd-analyze verify "$unit" 2>&1 || true)
  [ -z "$v" ] || { echo "FAIL: systemd-analyze verify: $v"; exit 1; }
  echo "systemd-analyze verify: clean"
fi
echo "installed layout ok"
