#!/usr/bin/env bash
# postgres_test.sh CONFORMANCE PLUGIN_DIR: the store conformance suite against the postgres store plugin, on a
# throwaway PostgreSQL server (tests/servers/postgres.sh) in a temporary directory.  Exits 77 (ctest's skip,
# SKIP_RETURN_CODE) when the plugin is not built or PostgreSQL is not installed.
# The plugin's storage config is {url: ..., claim_timeout: 1s}: the suite waits for an outbox claim to expire.
set -euo pipefail
suite=$1
plugins=$2
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$plugins/store_postgres.so" ]; then
	echo "SKIP: $plugins/store_postgres.so is not built"
	exit 77
fi
if ! ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 && [ -z "${PG_BIN:-}" ]; then
	echo "SKIP: PostgreSQL is not installed (scripts/deps.sh --test)"
	exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/parley-pg-XXXXXX")
chmod 755 "$dir"
cleanup() {
	"$here/../servers/postgres.sh" stop "$dir/pg" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT
url=$("$here/../servers/postgres.sh" start "$dir/pg")
"$suite" "$plugins" postgres "{url: \"$url\", claim_timeout: 1s}"
