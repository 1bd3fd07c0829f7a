#!/usr/bin/env bash
# postgres.sh: a throwaway PostgreSQL server for tests, on 127.0.0.1 only.
#
#   postgres.sh start DIR   create a cluster in DIR (initdb), start it on a free
#                           loopback port, create role and database "parley",
#                           print postgres://parley@127.0.0.1:PORT/parley on
#                           stdout, return once the server accepts connections
#   postgres.sh stop DIR    stop it (fast shutdown: open sessions are ended)
#   postgres.sh url DIR     print the URL of the cluster running in DIR again
#   postgres.sh resume DIR  start a stopped cluster again, on the port it had
#
# PG_DURABLE=1 keeps fsync and synchronous_commit on (benchmarks measure a
# server that keeps what it acknowledges).
#
# DIR must not exist or be empty.  Nothing but the URL goes to stdout; the
# server's log is DIR/postgres.log, shown on stderr when starting fails.
# Authentication is "trust" (only loopback can reach it), and fsync is off: the
# data is thrown away, and tests need speed, not crash safety.
#
# The binaries are Debian's (/usr/lib/postgresql/<major>/bin, package
# "postgresql", installed by scripts/deps.sh --test); PG_BIN overrides.  initdb
# refuses to run as root, so under root the cluster belongs to the "postgres" OS
# user (DIR is chowned to it, and must be reachable by it).
set -euo pipefail

die() {
	echo "postgres.sh: $*" >&2
	exit 1
}

usage() {
	echo "usage: tests/servers/postgres.sh start|stop|url DIR" >&2
	exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2

if [ -z "${PG_BIN:-}" ]; then
	PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
	[ -n "$PG_BIN" ] || die "no PostgreSQL binaries in /usr/lib/postgresql/*/bin: run scripts/deps.sh --test (Debian package postgresql), or set PG_BIN"
fi
[ -x "$PG_BIN/initdb" ] || die "$PG_BIN/initdb is not executable: set PG_BIN to the directory holding initdb and pg_ctl"

# As root, every server command runs as the postgres OS user.
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
	id postgres >/dev/null 2>&1 || die "running as root needs the postgres OS user (Debian package postgresql creates it)"
	as_owner=(runuser -u postgres --)
fi
run() { "${as_owner[@]}" "$@"; }

free_port() {
	python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from ports import free_port; print(free_port())' "$(dirname "$0")/../e2e"
}

case "$cmd" in
start)
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	[ -z "$(ls -A "$dir")" ] || die "$dir is not empty: give a new or empty directory"
	if [ ${#as_owner[@]} -gt 0 ]; then
		chown postgres: "$dir"
		run test -w "$dir" || die "the postgres OS user cannot write $dir (a parent directory is closed to it): use a directory under /tmp made with mktemp -d"
	fi
	data="$dir/data"
	log="$dir/postgres.log"
	if ! run "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1; then
		cat "$dir/initdb.log" >&2
		die "initdb failed in $data (its output is above)"
	fi
	# The port is free when chosen; another process may take it before the server binds it, so try a few.
	started=0
	for _ in 1 2 3 4 5; do
		port=$(free_port)
		opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c max_connections=200"
		[ "${PG_DURABLE:-0}" = 1 ] || opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		if run "$PG_BIN/pg_ctl" -D "$data" -l "$log" -o "$opts" -w -t 60 start >/dev/null 2>&1; then
			started=1
			break
		fi
	done
	if [ "$started" -ne 1 ]; then
		[ -f "$log" ] && cat "$log" >&2
		die "the server in $data did not start (its log is above)"
	fi
	echo "$port" | run tee "$dir/port" >/dev/null
	echo "$opts" | run tee "$dir/opts" >/dev/null
	psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres)
	run "${psql[@]}" -c "CREATE ROLE parley LOGIN" -c "CREATE DATABASE parley OWNER parley" >&2 ||
		die "creating role and database parley failed on port $port"
	echo "postgres://parley@127.0.0.1:$port/parley"
	;;
stop)
	[ -d "$dir/data" ] || die "$dir/data does not exist: nothing to stop"
	if ! run "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1; then
		# Not running is stopped; still running is a failure.
		if run "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
			die "the server in $dir/data did not stop"
		fi
	fi
	;;
resume)
	[ -f "$dir/opts" ] || die "$dir/opts does not exist: start a server there first"
	run "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "$(cat "$dir/opts")" -w -t 60 start >/dev/null 2>&1 ||
		die "the server in $dir/data did not start again (see $dir/postgres.log)"
	;;
url)
	[ -f "$dir/port" ] || die "$dir/port does not exist: start a server there first"
	echo "postgres://parley@127.0.0.1:$(cat "$dir/port")/parley"
	;;
*)
	usage
	;;
esac
