/*
 * sqlite_ceiling.c: the machine's raw SQLite ceiling for the same work the
 * store does per webhook: insert a ~1 KiB message row with its two unique
 * indexes (id; channel + external_id) in WAL mode, BATCH rows per
 * transaction, synchronous FULL (as Parley's default) or NORMAL.
 *
 *   sqlite_ceiling DBFILE [ROWS] [BATCH] [full|normal]
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: sqlite_ceiling DBFILE [ROWS] [BATCH] [full|normal]\n");
		return 2;
	}
	int rows = argc > 2 ? atoi(argv[2]) : 200000, batch = argc > 3 ? atoi(argv[3]) : 1000;
	const char *sync = argc > 4 ? argv[4] : "full";
	remove(argv[1]);
	sqlite3 *db;
	if (sqlite3_open(argv[1], &db) != SQLITE_OK)
		return 1;
	char pragma[64];
	snprintf(pragma, sizeof(pragma), "PRAGMA synchronous=%s", strcmp(sync, "normal") == 0 ? "NORMAL" : "FULL");
	sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
	sqlite3_exec(db, pragma, NULL, NULL, NULL);
	sqlite3_exec(
	        db,
	        "CREATE TABLE m (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, channel TEXT NOT NULL,"
	        " external_id TEXT, received_at TEXT NOT NULL, envelope TEXT NOT NULL, UNIQUE (channel, external_id))",
	        NULL, NULL, NULL);
	sqlite3_stmt *st;
	sqlite3_prepare_v2(
	        db, "INSERT INTO m (id, channel, external_id, received_at, envelope) VALUES (?1, 'hooks', ?2, ?3, ?4)",
	        -1, &st, NULL);
	char env[1100];
	memset(env, 'x', sizeof(env) - 1);
	env[sizeof(env) - 1] = '\0';
	double t0 = now_s();
	for (int i = 0; i < rows; i += batch) {
		sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		for (int j = i; j < i + batch && j < rows; j++) {
			char id[32], ext[32];
			snprintf(id, sizeof(id), "01M8%022d", j);
			snprintf(ext, sizeof(ext), "ext-%d", j);
			sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 2, ext, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 3, "2026-11-22T10:00:00.000Z", -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 4, env, -1, SQLITE_STATIC);
			sqlite3_step(st);
			sqlite3_reset(st);
		}
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	double secs = now_s() - t0;
	printf("sqlite_ceiling rows=%d batch=%d synchronous=%s rows_per_s=%.0f\n", rows, batch, sync, rows / secs);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return 0;
}
