#!/usr/bin/env bash
# Installs the Debian packages Parley builds with (only what is missing);
# with --test also what the test suite runs against (mail servers, PostgreSQL, nats-server, clang-format, clang and libFuzzer, ...),
# with --bench what the benchmarks compare against (nginx).
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libnng-dev libyaml-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev libcjson-dev libmicrohttpd-dev libgnutls28-dev
      libpcre2-dev libargon2-dev tzdata libgmime-3.0-dev libxml2-dev libpq-dev libnats-dev python3 curl openssl ca-certificates)
for flag in "$@"; do
  case "$flag" in
    --test) pkgs+=(nng-utils dovecot-imapd python3-aiosmtpd python3-jsonschema python3-prometheus-client man-db postgresql nats-server clang-format git clang libfuzzer-14-dev
                   chromium fonts-nanum) ;; # chromium: tests/browser, with playwright-core from npm (below); a Korean font for its screenshots
    --bench) pkgs+=(nginx-light) ;; # bench/ingest's floor: nginx answering the same POSTs
    *) echo "usage: scripts/deps.sh [--test] [--bench]" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The tests' JavaScript tools, from the npm registry as locked: tests/api (the OpenAPI validator) and
# tests/browser (playwright-core driving Debian's chromium).  Debian's nodejs and npm when there are none.
if [[ " $* " == *" --test "* ]]; then
  if ! command -v npm >/dev/null; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  root="$(cd "$(dirname "$0")/.." && pwd)"
  for d in tests/api tests/browser; do
    (cd "$root/$d" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  done
fi
