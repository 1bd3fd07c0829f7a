/*
 * pg_ceiling.c: the machine's raw PostgreSQL ceiling for the same work the
 * store does per webhook: insert a ~1 KiB message row (envelope jsonb) with
 * its two unique indexes (id; channel + external_id) and a bigserial seq,
 * BATCH rows per transaction in one statement (a prepared multi-row INSERT,
 * or COPY), synchronous_commit=on, from CONNS connections at once (one
 * thread each).  The server's own fsync and synchronous_commit settings
 * decide durability: run it against a durable server (tests/servers/postgres.sh
 * with PG_DURABLE=1).  Prints rows/s and the p99 of a batch's transaction.
 *
 *   pg_ceiling URL [ROWS] [BATCH] [CONNS] [insert|copy]
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *url;
static int rows = 200000, batch = 500, nconns = 4, use_copy;
static char envelope[1100];

struct worker {
	int idx, first, count, failed;
	double *lat; /* seconds per batch transaction */
	int nlat;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmd(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "pg_ceiling: %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* One batch as a prepared multi-row INSERT: 4 parameters a row. */
static int insert_batch(PGconn *c, int first, int n, char (*ids)[32], char (*exts)[32], const char **params)
{
	for (int j = 0; j < n; j++) {
		snprintf(ids[j], 32, "01M8%022d", first + j);
		snprintf(exts[j], 32, "ext-%d", first + j);
		params[4 * j] = ids[j];
		params[4 * j + 1] = exts[j];
		params[4 * j + 2] = "2026-11-22T10:00:00.000Z";
		params[4 * j + 3] = envelope;
	}
	char name[32];
	snprintf(name, sizeof(name), "ins%d", n);
	PGresult *r = PQexecPrepared(c, name, 4 * n, params, NULL, NULL, 0);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "pg_ceiling: insert: %s", PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

static int prepare_insert(PGconn *c, int n)
{
	size_t cap = 128 + (size_t)n * 64;
	char *sql = malloc(cap);
	size_t len = (size_t)snprintf(
	        sql, cap, "INSERT INTO ceiling_m (id, channel, external_id, received_at, envelope) VALUES ");
	for (int j = 0; j < n; j++)
		len += (size_t)snprintf(sql + len, cap - len, "%s($%d, 'hooks', $%d, $%d, $%d::jsonb)", j ? "," : "",
		                        4 * j + 1, 4 * j + 2, 4 * j + 3, 4 * j + 4);
	char name[32];
	snprintf(name, sizeof(name), "ins%d", n);
	PGresult *r = PQprepare(c, name, sql, 4 * n, NULL);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "pg_ceiling: prepare: %s", PQerrorMessage(c));
	PQclear(r);
	free(sql);
	return ok ? 0 : -1;
}

/* One batch as COPY ... FROM STDIN (text format). */
static int copy_batch(PGconn *c, int first, int n, char *buf, size_t cap)
{
	PGresult *st = PQexec(c, "COPY ceiling_m (id, channel, external_id, received_at, envelope) FROM STDIN");
	int copying = PQresultStatus(st) == PGRES_COPY_IN;
	PQclear(st);
	if (!copying) {
		fprintf(stderr, "pg_ceiling: copy: %s", PQerrorMessage(c));
		return -1;
	}
	size_t len = 0;
	for (int j = 0; j < n; j++) {
		len += (size_t)snprintf(buf + len, cap - len,
		                        "01M8%022d\thooks\text-%d\t2026-11-22T10:00:00.000Z\t%s\n", first + j,
		                        first + j, envelope);
		if (len > cap - 2048 || j == n - 1) {
			if (PQputCopyData(c, buf, (int)len) != 1)
				return -1;
			len = 0;
		}
	}
	if (PQputCopyEnd(c, NULL) != 1)
		return -1;
	PGresult *r;
	int ok = 1;
	while ((r = PQgetResult(c)) != NULL) {
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fprintf(stderr, "pg_ceiling: copy: %s", PQerrorMessage(c));
			ok = 0;
		}
		PQclear(r);
	}
	return ok ? 0 : -1;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	PGconn *c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pg_ceiling: connect: %s", PQerrorMessage(c));
		w->failed = 1;
		PQfinish(c);
		return NULL;
	}
	cmd(c, "SET synchronous_commit = on");
	char(*ids)[32] = malloc((size_t)batch * 32);
	char(*exts)[32] = malloc((size_t)batch * 32);
	const char **params = malloc(sizeof(*params) * 4 * (size_t)batch);
	size_t cap = (size_t)batch * 1300 + 4096;
	char *buf = malloc(cap);
	int last_n = w->count % batch;
	if (!use_copy && (prepare_insert(c, batch) != 0 || (last_n && prepare_insert(c, last_n) != 0)))
		w->failed = 1;
	w->lat = malloc(sizeof(double) * (size_t)(w->count / batch + 2));
	for (int i = 0; i < w->count && !w->failed; i += batch) {
		int n = w->count - i < batch ? w->count - i : batch;
		double t = now_s();
		if (cmd(c, "BEGIN") != 0) {
			w->failed = 1;
			break;
		}
		int rv = use_copy ? copy_batch(c, w->first + i, n, buf, cap)
		                  : insert_batch(c, w->first + i, n, ids, exts, params);
		if (rv != 0 || cmd(c, "COMMIT") != 0) {
			w->failed = 1;
			break;
		}
		w->lat[w->nlat++] = now_s() - t;
	}
	free(ids);
	free(exts);
	free(params);
	free(buf);
	PQfinish(c);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: pg_ceiling URL [ROWS] [BATCH] [CONNS] [insert|copy]\n");
		return 2;
	}
	url = argv[1];
	if (argc > 2)
		rows = atoi(argv[2]);
	if (argc > 3)
		batch = atoi(argv[3]);
	if (argc > 4)
		nconns = atoi(argv[4]);
	use_copy = argc > 5 && strcmp(argv[5], "copy") == 0;
	if (rows < 1 || batch < 1 || batch > 16000 || nconns < 1 || nconns > 64) {
		fprintf(stderr, "pg_ceiling: ROWS >= 1, BATCH 1-16000, CONNS 1-64\n");
		return 2;
	}
	/* A ~1 KiB JSON envelope, as the webhook's. */
	memset(envelope, 'x', sizeof(envelope));
	memcpy(envelope, "{\"text\":\"", 9);
	memcpy(envelope + sizeof(envelope) - 3, "\"}", 3);
	PGconn *c = PQconnectdb(url);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "pg_ceiling: connect: %s", PQerrorMessage(c));
		return 1;
	}
	if (cmd(c, "SET client_min_messages = warning") != 0 || cmd(c, "DROP TABLE IF EXISTS ceiling_m") != 0 ||
	    cmd(c, "CREATE TABLE ceiling_m (seq bigserial PRIMARY KEY, id text NOT NULL UNIQUE, channel text NOT NULL,"
	           " external_id text, received_at text NOT NULL, envelope jsonb NOT NULL,"
	           " UNIQUE (channel, external_id))") != 0)
		return 1;
	struct worker *ws = calloc((size_t)nconns, sizeof(*ws));
	pthread_t *th = calloc((size_t)nconns, sizeof(*th));
	double t0 = now_s();
	for (int i = 0; i < nconns; i++) {
		ws[i].idx = i;
		ws[i].first = (int)((int64_t)rows * i / nconns);
		ws[i].count = (int)((int64_t)rows * (i + 1) / nconns) - ws[i].first;
		pthread_create(&th[i], NULL, work, &ws[i]);
	}
	int failed = 0, nlat = 0;
	for (int i = 0; i < nconns; i++) {
		pthread_join(th[i], NULL);
		failed |= ws[i].failed;
		nlat += ws[i].nlat;
	}
	double secs = now_s() - t0;
	double *lat = malloc(sizeof(double) * (size_t)(nlat ? nlat : 1));
	int k = 0;
	for (int i = 0; i < nconns; i++)
		for (int j = 0; j < ws[i].nlat; j++)
			lat[k++] = ws[i].lat[j];
	qsort(lat, (size_t)nlat, sizeof(double), cmp_d);
	cmd(c, "DROP TABLE ceiling_m");
	PQfinish(c);
	if (failed)
		return 1;
	printf("pg_ceiling rows=%d batch=%d conns=%d mode=%s synchronous_commit=on rows_per_s=%.0f"
	       " batch_p50_ms=%.2f batch_p99_ms=%.2f\n",
	       rows, batch, nconns, use_copy ? "copy" : "insert", rows / secs, nlat ? lat[nlat / 2] * 1e3 : 0,
	       nlat ? lat[nlat * 99 / 100] * 1e3 : 0);
	return 0;
}
