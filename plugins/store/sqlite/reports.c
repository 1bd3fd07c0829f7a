/*
 * reports.c: the SQLite store's reports.kpis, the KPIs aggregated in SQL
 * over the conversation history (the statement is kpis_sql.h, shared with
 * the PostgreSQL store), and the two SQL functions it needs: parley_ms and
 * parley_business_ms (business time is computed per interval in C, with the
 * calendar of plugins/common/business_hours.c read once per report; the
 * medians and percentiles over it are SQL's).
 */
#include "store.h"

#include "business_hours.h"

#define KPI_MEDIAN(x) "parley_median(" x ")"
#define KPI_P90(x)    "parley_p90(" x ")"
#include "kpis_sql.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Milliseconds since 1970 of an RFC 3339 UTC time ("...Z", the fraction optional); -1 when it is not one. */
static int64_t parse_ms(const char *s)
{
	int y, mo, d, h, mi, sec, n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
		return -1;
	int64_t ms = 0;
	const char *p = s + n;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if (*p != 'Z' && *p != 'z')
		return -1;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
	return (int64_t)timegm(&tm) * 1000 + ms;
}

static void fn_ms(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	int64_t ms = parse_ms((const char *)sqlite3_value_text(argv[0]));
	if (ms < 0)
		sqlite3_result_null(ctx);
	else
		sqlite3_result_int64(ctx, ms);
}

/*
 * parley_business_ms(a, b, tz, days, from_m, to_m): the calendar is the one reports_kpis parsed for
 * the statement (the function's user data), so the zone is read once per report, not per row; the
 * arguments after b are the calendar PostgreSQL's function takes.  NULL without a calendar.
 */
static void fn_business_ms(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	const struct business_hours *bh = sqlite3_user_data(ctx);
	if (!bh || sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL ||
	    sqlite3_value_type(argv[2]) == SQLITE_NULL) {
		sqlite3_result_null(ctx);
		return;
	}
	sqlite3_result_int64(ctx, bh_business_ms(bh, sqlite3_value_int64(argv[0]), sqlite3_value_int64(argv[1])));
}

/*
 * parley_median(x) and parley_p90(x), aggregates: the values of the group (NULLs left out) gathered, sorted
 * once, and the one at rank ceil(p * n) answered; NULL for none.  As PostgreSQL's percentile_disc.
 */
struct ranked {
	sqlite3_int64 *v;
	size_t n, cap;
};

static void rank_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	(void)argc;
	if (sqlite3_value_type(argv[0]) == SQLITE_NULL)
		return;
	struct ranked *a = sqlite3_aggregate_context(ctx, sizeof(*a));
	if (!a) {
		sqlite3_result_error_nomem(ctx);
		return;
	}
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 64;
		sqlite3_int64 *v = realloc(a->v, cap * sizeof(*v));
		if (!v) {
			sqlite3_result_error_nomem(ctx);
			return;
		}
		a->v = v;
		a->cap = cap;
	}
	a->v[a->n++] = sqlite3_value_int64(argv[0]);
}

static int cmp_int64(const void *x, const void *y)
{
	sqlite3_int64 a = *(const sqlite3_int64 *)x, b = *(const sqlite3_int64 *)y;
	return (a > b) - (a < b);
}

static void rank_final(sqlite3_context *ctx)
{
	struct ranked *a = sqlite3_aggregate_context(ctx, 0);
	int tenths = (int)(intptr_t)sqlite3_user_data(ctx);
	if (!a || a->n == 0) {
		sqlite3_result_null(ctx);
	} else {
		qsort(a->v, a->n, sizeof(*a->v), cmp_int64);
		size_t k = ((size_t)tenths * a->n + 9) / 10; /* ceil(tenths / 10 * n) */
		sqlite3_result_int64(ctx, a->v[k - 1]);
	}
	if (a)
		free(a->v);
}

/* The calendar of a reports.kpis request ({timezone, days, from_m, to_m}) into bh: 0, or -1 (*why set). */
static int calendar(const cJSON *c, struct business_hours *bh, char **why)
{
	cJSON *z = cJSON_CreateObject();
	cJSON_AddStringToObject(z, "timezone", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "timezone")));
	cJSON_AddStringToObject(z, "from", "00:00");
	cJSON_AddStringToObject(z, "to", "00:00");
	int rv = bh_parse(z, bh, why);
	cJSON_Delete(z);
	if (rv != 0)
		return -1;
	bh->days = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "days"));
	bh->from_m = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "from_m"));
	bh->to_m = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(c, "to_m"));
	return 0;
}

/* parley_business_ms on db with the calendar bh (NULL: none; borrowed until the next call). */
static int business_function(sqlite3 *db, const struct business_hours *bh)
{
	return sqlite3_create_function(db, "parley_business_ms", 6, SQLITE_UTF8 | SQLITE_DETERMINISTIC, (void *)bh,
	                               fn_business_ms, NULL, NULL) == SQLITE_OK
	               ? 0
	               : PARLEY_EIO;
}

int reports_register(sqlite3 *db)
{
	if (sqlite3_create_function(db, "parley_ms", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, fn_ms, NULL, NULL) !=
	            SQLITE_OK ||
	    sqlite3_create_function(db, "parley_median", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, (void *)(intptr_t)5,
	                            NULL, rank_step, rank_final) != SQLITE_OK ||
	    sqlite3_create_function(db, "parley_p90", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, (void *)(intptr_t)9, NULL,
	                            rank_step, rank_final) != SQLITE_OK)
		return PARLEY_EIO;
	return business_function(db, NULL);
}

static int bind_text(sqlite3_stmt *st, const char *name, const char *v)
{
	int i = sqlite3_bind_parameter_index(st, name);
	return i > 0 && (v ? sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i)) == SQLITE_OK
	               ? 0
	               : -1;
}

static int bind_int(sqlite3_stmt *st, const char *name, const cJSON *v)
{
	int i = sqlite3_bind_parameter_index(st, name);
	return i > 0 && (cJSON_IsNumber(v) ? sqlite3_bind_int64(st, i, (sqlite3_int64)v->valuedouble)
	                                   : sqlite3_bind_null(st, i)) == SQLITE_OK
	               ? 0
	               : -1;
}

/* reports.kpis {from, to, by, reopen_window_ms, business_hours?: {timezone, days, from_m, to_m}}: {kpis: [rows]}. */
int reports_kpis(struct store *s, const cJSON *req, char **reply)
{
	const cJSON *bh = cJSON_GetObjectItemCaseSensitive(req, "business_hours");
	const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "from"));
	const char *to = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "to"));
	const char *by = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "by"));
	if (!from || !to || !by) {
		*reply = strdup("reports.kpis needs from, to and by");
		return PARLEY_EINVAL;
	}
	struct business_hours hours;
	char *why = NULL;
	if (bh && calendar(bh, &hours, &why) != 0) {
		*reply = why ? why : strdup("reports.kpis: the business_hours calendar is not valid");
		return PARLEY_EINVAL;
	}
	pthread_mutex_lock(&s->replock);
	sqlite3_stmt *st = NULL;
	int rv = business_function(s->rep, bh ? &hours : NULL);
	if (rv == 0)
		rv = sqlite3_prepare_v2(s->rep, kpis_sql, -1, &st, NULL) == SQLITE_OK ? 0 : PARLEY_EIO;
	if (rv != 0)
		s->host->log(s->inst, PARLEY_LOG_ERROR, "reports.kpis: %s", sqlite3_errmsg(s->rep));
	if (rv == 0 && (bind_text(st, "$1", from) || bind_text(st, "$2", to) || bind_text(st, "$3", by) ||
	                bind_int(st, "$4", cJSON_GetObjectItemCaseSensitive(req, "reopen_window_ms")) ||
	                bind_text(st, "$5", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bh, "timezone"))) ||
	                bind_int(st, "$6", cJSON_GetObjectItemCaseSensitive(bh, "days")) ||
	                bind_int(st, "$7", cJSON_GetObjectItemCaseSensitive(bh, "from_m")) ||
	                bind_int(st, "$8", cJSON_GetObjectItemCaseSensitive(bh, "to_m"))))
		rv = PARLEY_EIO;
	cJSON *rows = cJSON_CreateArray();
	int rc;
	while (rv == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		cJSON *o = cJSON_CreateObject();
		for (int i = 0; i < sqlite3_column_count(st); i++) {
			const char *name = sqlite3_column_name(st, i);
			if (sqlite3_column_type(st, i) == SQLITE_INTEGER)
				cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, i));
			else if (sqlite3_column_type(st, i) == SQLITE_TEXT)
				cJSON_AddStringToObject(o, name, (const char *)sqlite3_column_text(st, i));
		}
		cJSON_AddItemToArray(rows, o);
	}
	if (rv == 0 && rc != SQLITE_DONE) {
		s->host->log(s->inst, PARLEY_LOG_ERROR, "reports.kpis: %s", sqlite3_errmsg(s->rep));
		rv = PARLEY_EIO;
	}
	sqlite3_finalize(st);
	business_function(s->rep, NULL);
	pthread_mutex_unlock(&s->replock);
	if (bh)
		bh_free(&hours);
	if (rv != 0) {
		cJSON_Delete(rows);
		*reply = strdup("the store could not compute the KPIs");
		return rv;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "kpis", rows);
	*reply = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return *reply ? 0 : PARLEY_ENOMEM;
}
