/*
 * reports.c: the KPIs as the op reports.kpis answers them.  The store
 * aggregates (reports.kpis, plugins/store/common/kpis_sql.h: one row per
 * kind and key with counts, medians and 90th percentiles); this file asks
 * it with the configured calendar and reopen window, and shapes the rows
 * into figures: rates are computed here from the store's counts.
 */
#include "reports.h"
#include "business_hours.h"
#include "gateway.h"
#include "host.h"
#include "inbox/inbox.h"
#include "metrics.h"
#include "ops.h"
#include "ops_handlers.h"
#include "store.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

/* A date (YYYY-MM-DD, midnight UTC) or an RFC 3339 time as ms; 0 when it is neither. */
static int64_t parse_when(const char *s)
{
	if (!s)
		return 0;
	if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
		char t[32];
		snprintf(t, sizeof(t), "%sT00:00:00Z", s);
		return time_parse_ms(t);
	}
	return time_parse_ms(s);
}

/* The calendar of reports.business_hours as the store takes it, or NULL when none is configured. */
static cJSON *calendar(const struct gateway *gw)
{
	if (!gw->cfg.reports_hours)
		return NULL;
	char *text = host_config_json(gw->cfg.reports_hours);
	cJSON *conf = text ? cJSON_Parse(text) : NULL;
	free(text);
	struct business_hours bh;
	char *err = NULL;
	cJSON *c = NULL;
	if (conf && bh_parse(conf, &bh, &err) == 0) {
		c = cJSON_CreateObject();
		cJSON_AddItemToObject(c, "timezone",
		                      cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(conf, "timezone"), 1));
		cJSON_AddNumberToObject(c, "days", bh.days);
		cJSON_AddNumberToObject(c, "from_m", bh.from_m);
		cJSON_AddNumberToObject(c, "to_m", bh.to_m);
		bh_free(&bh);
	}
	free(err);
	cJSON_Delete(conf);
	return c;
}

static double num(const cJSON *row, const char *k)
{
	return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, k));
}

/* A member copied from the store's row (null when absent). */
static void copy_ms(cJSON *to, const char *name, const cJSON *row, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, k);
	cJSON_AddItemToObject(to, name, cJSON_IsNumber(v) ? cJSON_CreateNumber(v->valuedouble) : cJSON_CreateNull());
}

/* 100 * a / n rounded to 2 decimals (half away from zero), or null when n is 0. */
static void add_pct(cJSON *to, const char *name, double a, double n)
{
	cJSON_AddItemToObject(to, name,
	                      n > 0 ? cJSON_CreateNumber(round(100.0 * a / n * 100) / 100) : cJSON_CreateNull());
}

static cJSON *durations(const cJSON *row, int business)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "count", row ? num(row, "n") : 0);
	copy_ms(o, "median_ms", row, "median_ms");
	copy_ms(o, "p90_ms", row, "p90_ms");
	if (business) {
		copy_ms(o, "business_median_ms", row, "business_median_ms");
		copy_ms(o, "business_p90_ms", row, "business_p90_ms");
	}
	return o;
}

/* The figures of one key from its rows (kind -> row; absent kinds count 0). */
static cJSON *figures(const cJSON *const *k)
{
	enum { OPENED, FRT, TTR, FCR, REOPEN, CSAT, NPS, BOT, QUEUE, SLA_FR, SLA_NR, SLA_RES };
	cJSON *f = cJSON_CreateObject();
	cJSON_AddNumberToObject(f, "conversations_opened", k[OPENED] ? num(k[OPENED], "n") : 0);
	cJSON_AddItemToObject(f, "first_response", durations(k[FRT], 1));
	cJSON_AddItemToObject(f, "resolution", durations(k[TTR], 1));
	double n = k[REOPEN] ? num(k[REOPEN], "n") : 0, hits = k[REOPEN] ? num(k[REOPEN], "hits") : 0;
	cJSON *r = cJSON_AddObjectToObject(f, "resolutions");
	cJSON_AddNumberToObject(r, "count", n);
	cJSON_AddNumberToObject(r, "by_bot_or_inactivity", k[REOPEN] ? num(k[REOPEN], "hits2") : 0);
	cJSON_AddNumberToObject(r, "reopened", hits);
	add_pct(r, "reopen_rate", hits, n);
	n = k[FCR] ? num(k[FCR], "n") : 0, hits = k[FCR] ? num(k[FCR], "hits") : 0;
	cJSON *fcr = cJSON_AddObjectToObject(f, "fcr");
	cJSON_AddNumberToObject(fcr, "count", n);
	cJSON_AddNumberToObject(fcr, "first_contact", hits);
	add_pct(fcr, "rate", hits, n);
	n = k[CSAT] ? num(k[CSAT], "n") : 0, hits = k[CSAT] ? num(k[CSAT], "hits") : 0;
	cJSON *csat = cJSON_AddObjectToObject(f, "csat");
	cJSON_AddNumberToObject(csat, "count", n);
	cJSON_AddNumberToObject(csat, "satisfied", hits);
	add_pct(csat, "score", hits, n);
	n = k[NPS] ? num(k[NPS], "n") : 0, hits = k[NPS] ? num(k[NPS], "hits") : 0;
	double det = k[NPS] ? num(k[NPS], "hits2") : 0;
	cJSON *nps = cJSON_AddObjectToObject(f, "nps");
	cJSON_AddNumberToObject(nps, "count", n);
	cJSON_AddNumberToObject(nps, "promoters", hits);
	cJSON_AddNumberToObject(nps, "detractors", det);
	add_pct(nps, "score", hits - det, n);
	n = k[BOT] ? num(k[BOT], "n") : 0, hits = k[BOT] ? num(k[BOT], "hits") : 0;
	cJSON *bot = cJSON_AddObjectToObject(f, "bot");
	cJSON_AddNumberToObject(bot, "handled", n);
	cJSON_AddNumberToObject(bot, "contained", hits);
	add_pct(bot, "containment_rate", hits, n);
	cJSON_AddItemToObject(f, "queue", durations(k[QUEUE], 0));
	cJSON *sla = cJSON_AddObjectToObject(f, "sla");
	static const char *const targets[] = {"first_response", "next_response", "resolution"};
	for (int t = 0; t < 3; t++) {
		const cJSON *row = k[SLA_FR + t];
		if (!row) {
			cJSON_AddNullToObject(sla, targets[t]);
			continue;
		}
		cJSON *g = cJSON_AddObjectToObject(sla, targets[t]);
		cJSON_AddNumberToObject(g, "count", num(row, "n"));
		copy_ms(g, "median_gap_ms", row, "median_ms");
		copy_ms(g, "p90_gap_ms", row, "p90_ms");
		cJSON_AddNumberToObject(g, "breached", num(row, "hits"));
		add_pct(g, "breached_pct", num(row, "hits"), num(row, "n"));
	}
	return f;
}

static int kind_index(const char *kind)
{
	static const char *const kinds[] = {
	        "opened", "first_response",     "resolution",        "fcr",           "reopen", "csat", "nps", "bot",
	        "queue",  "sla.first_response", "sla.next_response", "sla.resolution"};
	for (int i = 0; kind && i < (int)(sizeof(kinds) / sizeof(kinds[0])); i++)
		if (strcmp(kind, kinds[i]) == 0)
			return i;
	return -1;
}

/* The store's rows (ordered by total, key, kind) as {groups: [{key, ...figures}], total: figures}. */
static void shape(cJSON *out, const cJSON *rows)
{
	cJSON *groups = cJSON_AddArrayToObject(out, "groups");
	const cJSON *k[12] = {0};
	const cJSON *row, *prev = NULL;
	int have = 0;
	cJSON_ArrayForEach(row, rows)
	{
		const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "grp"));
		int total = num(row, "total") == 1;
		const char *pkey = prev ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(prev, "grp")) : NULL;
		int same_group = prev && (num(prev, "total") == 1) == total &&
		                 ((!key && !pkey) || (key && pkey && strcmp(key, pkey) == 0));
		if (have && !same_group && num(prev, "total") != 1) {
			cJSON *g = figures(k);
			cJSON_AddItemToObject(g, "key", pkey ? cJSON_CreateString(pkey) : cJSON_CreateNull());
			cJSON_AddItemToArray(groups, g);
			memset(k, 0, sizeof(k));
		}
		int i = kind_index(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "kind")));
		if (i >= 0)
			k[i] = row;
		have = 1;
		prev = row;
	}
	if (have && num(prev, "total") != 1) {
		const char *pkey = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(prev, "grp"));
		cJSON *g = figures(k);
		cJSON_AddItemToObject(g, "key", pkey ? cJSON_CreateString(pkey) : cJSON_CreateNull());
		cJSON_AddItemToArray(groups, g);
		memset(k, 0, sizeof(k));
	}
	cJSON_AddItemToObject(out, "total", figures(k));
}

/*
 * The figures for [from_ms, to_ms) by `by`, as the op's reply members; NULL with *why (and *rv, when rv is
 * not NULL: PARLEY_ENOTSUP for a store that computes no KPIs) when the store cannot.
 */
static cJSON *compute(struct gateway *gw, int64_t from_ms, int64_t to_ms, const char *by, const char **why, int *rv_out)
{
	char from[64], to[64];
	time_format_ms(from_ms, from);
	time_format_ms(to_ms, to);
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "from", from);
	cJSON_AddStringToObject(q, "to", to);
	cJSON_AddStringToObject(q, "by", by);
	int64_t window = gw->cfg.reports_reopen_ms > 0 ? gw->cfg.reports_reopen_ms : inbox_reopen_ms(gw->inbox);
	cJSON_AddNumberToObject(q, "reopen_window_ms", (double)window);
	cJSON *cal = calendar(gw);
	if (cal)
		cJSON_AddItemToObject(q, "business_hours", cJSON_Duplicate(cal, 1));
	char *text = cJSON_PrintUnformatted(q), *reply = NULL;
	cJSON_Delete(q);
	int rv = text ? store_query(gw->st, "reports.kpis", text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(r, "kpis");
	if (!cJSON_IsArray(rows)) {
		*why = rv == PARLEY_ENOTSUP ? "this store does not compute KPIs"
		                            : "the store cannot compute the KPIs now";
		if (rv_out)
			*rv_out = rv == PARLEY_ENOTSUP ? PARLEY_ENOTSUP : PARLEY_EIO;
		cJSON_Delete(r);
		cJSON_Delete(cal);
		return NULL;
	}
	cJSON *out = cJSON_CreateObject();
	cJSON_AddStringToObject(out, "from", from);
	cJSON_AddStringToObject(out, "to", to);
	cJSON_AddStringToObject(out, "by", by);
	cJSON_AddNumberToObject(out, "reopen_window_ms", (double)window);
	cJSON_AddItemToObject(out, "business_hours", cal ? cal : cJSON_CreateNull());
	shape(out, rows);
	cJSON_Delete(r);
	return out;
}

char *op_reports_kpis(struct op_call *call, const cJSON *req)
{
	if (cJSON_GetObjectItemCaseSensitive(req, "reopen_window_ms"))
		return op_inbox(call, req); /* the store's rows as they are, for tools and the schema tests */
	const char *by = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "by"));
	const char *fs = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "from"));
	const char *ts = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "to"));
	if (!by)
		by = "channel";
	if (strcmp(by, "channel") != 0 && strcmp(by, "team") != 0 && strcmp(by, "agent") != 0)
		return ops_error("invalid_request", "'by' must be channel, team or agent");
	int64_t to = ts ? parse_when(ts) : clock_now_ms();
	if (to <= 0)
		return ops_error("invalid_request", "'to' must be a date (2026-12-01) or an RFC 3339 time");
	int64_t from = fs ? parse_when(fs) : to - 30 * DAY_MS;
	if (from <= 0)
		return ops_error("invalid_request", "'from' must be a date (2026-11-01) or an RFC 3339 time");
	if (from >= to)
		return ops_error("invalid_request", "'from' must be before 'to'");
	const char *why = NULL;
	cJSON *out = compute(call->gw, from, to, by, &why, NULL);
	if (!out)
		return ops_error("unavailable", why);
	cJSON *reply = cJSON_CreateObject();
	cJSON_AddBoolToObject(reply, "ok", 1);
	cJSON *m;
	while ((m = out->child) != NULL)
		cJSON_AddItemToObject(reply, m->string, cJSON_DetachItemViaPointer(out, m));
	cJSON_Delete(out);
	char *s = cJSON_PrintUnformatted(reply);
	cJSON_Delete(reply);
	return s;
}

/* One gauge line per channel (and the total, channel=""), the figure divided by div, when it is known. */
static void gauge(struct strbuf *out, const char *name, const cJSON *groups, const cJSON *total, const char *a,
                  const char *b, double div)
{
	const cJSON *g;
	cJSON_ArrayForEach(g, groups)
	{
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g, a), b);
		const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(g, "key"));
		if (cJSON_IsNumber(v) && key) {
			sb_printf(out, "parley_kpi_%s{channel=\"", name);
			metrics_label_value(out, key);
			sb_adds(out, "\"} ");
			metrics_number(out, v->valuedouble / div);
			sb_adds(out, "\n");
		}
	}
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(total, a), b);
	if (cJSON_IsNumber(v)) {
		sb_printf(out, "parley_kpi_%s{channel=\"\"} ", name);
		metrics_number(out, v->valuedouble / div);
		sb_adds(out, "\n");
	}
}

int reports_gauges(struct gateway *gw, struct strbuf *out, const char **why)
{
	int64_t now = clock_now_ms();
	char month[64];
	time_format_ms(now, month);
	snprintf(month + 8, sizeof(month) - 8, "01T00:00:00Z");
	int rv = 0;
	cJSON *r = compute(gw, time_parse_ms(month), now + 1, "channel", why, &rv);
	if (!r)
		return rv;
	const cJSON *groups = cJSON_GetObjectItemCaseSensitive(r, "groups");
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(r, "total");
	/* The store speaks milliseconds; Prometheus seconds. */
	static const struct {
		const char *name, *a, *b, *help;
		double div;
	} g[] = {
	        {"first_response_median_seconds", "first_response", "median_ms",
	         "Median first response time this month (calendar time; docs/kpis.md).", 1000},
	        {"resolution_median_seconds", "resolution", "median_ms", "Median time to resolution this month.", 1000},
	        {"fcr_percent", "fcr", "rate", "First-contact resolution this month, percent.", 1},
	        {"reopen_percent", "resolutions", "reopen_rate", "Resolutions reopened within the window, percent.", 1},
	        {"csat_percent", "csat", "score", "CSAT this month: ratings of 4 and 5 of 5, percent.", 1},
	        {"nps", "nps", "score", "NPS this month: promoters minus detractors, percent of answers.", 1},
	        {"bot_containment_percent", "bot", "containment_rate", "Bot conversations resolved without a human.",
	         1}};
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		sb_printf(out, "# HELP parley_kpi_%s %s\n# TYPE parley_kpi_%s gauge\n", g[i].name, g[i].help,
		          g[i].name);
		gauge(out, g[i].name, groups, total, g[i].a, g[i].b, g[i].div);
	}
	cJSON_Delete(r);
	return 0;
}
