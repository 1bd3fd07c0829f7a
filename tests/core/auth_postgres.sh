#!/usr/bin/env bash
# auth_postgres.sh AUTH_TEST PLUGIN_DIR: core.auth on a throwaway PostgreSQL server (tests/servers/postgres.sh),
# so that the test's two auth objects, standing for two gateway nodes, share sessions, tokens and failed-login
# counts through a real server.  Exits 77 (ctest's skip) when the plugin is not built or PostgreSQL is not installed.
set -euo pipefail
test=$1
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
"$test" "$plugins" "{type: postgres, config: {url: \"$url\"}}"
