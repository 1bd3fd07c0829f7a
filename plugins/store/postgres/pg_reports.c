/*
 * pg_reports.c: the PostgreSQL store's reports.kpis: the KPIs aggregated
 * in SQL over the conversation history, with the statement the SQLite
 * store runs too (kpis_sql.h); business time is SQL here as well
 * (parley_business_ms, pg_store.h).
 */
#include "pg_store.h"

/* Nearest rank, as parley_median and parley_p90 on SQLite: the value at rank ceil(p * n). */
#define KPI_MEDIAN(x) "percentile_disc(0.5) WITHIN GROUP (ORDER BY " x ")"
#define KPI_P90(x)    "percentile_disc(0.9) WITHIN GROUP (ORDER BY " x ")"
#include "kpis_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A number member as the text of an integer, or NULL. */
static const char *int_text(const cJSON *o, const char *k, char out[24])
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (!cJSON_IsNumber(v))
		return NULL;
	snprintf(out, 24, "%lld", (long long)v->valuedouble);
	return out;
}

int pg_reports_kpis(struct pgstore *s, const char *request_json, char **reply)
{
	cJSON *req = cJSON_Parse(request_json ? request_json : "{}");
	const cJSON *bh = cJSON_GetObjectItemCaseSensitive(req, "business_hours");
	char w[24], days[24], from_m[24], to_m[24];
	const char *p[] = {cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "from")),
	                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "to")),
	                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "by")),
	                   int_text(req, "reopen_window_ms", w),
	                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bh, "timezone")),
	                   int_text(bh, "days", days),
	                   int_text(bh, "from_m", from_m),
	                   int_text(bh, "to_m", to_m)};
	if (!p[0] || !p[1] || !p[2]) {
		cJSON_Delete(req);
		*reply = strdup("reports.kpis needs from, to and by");
		return PARLEY_EINVAL;
	}
	int rv;
	PGresult *r = pg_run(s, kpis_sql, 8, p, &rv);
	cJSON_Delete(req);
	if (!r) {
		*reply = strdup("the store could not compute the KPIs");
		return rv ? rv : PARLEY_EIO;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "kpis", pg_rows_json(r));
	PQclear(r);
	*reply = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return *reply ? 0 : PARLEY_ENOMEM;
}
