/*
 * reports.h: the KPIs (docs/kpis.md), computed by the store in SQL over
 * the conversation history (the store read op reports.kpis) and shaped
 * here: the op reports.kpis (GET /api/v1/reports/kpis, parley stats) and
 * the /metrics gauges of the current month.
 */
#ifndef PARLEY_CORE_REPORTS_H
#define PARLEY_CORE_REPORTS_H

#include <cjson/cJSON.h>

struct gateway;
struct op_call;
struct strbuf;

/*
 * reports.kpis {from?, to?, by?}: the figures per key of `by` (channel,
 * team or agent; channel when absent) and in total, for the rows with
 * from <= at < to (dates YYYY-MM-DD or RFC 3339 times; the last 30 days
 * when absent).  The reply is malloc'd.
 */
char *op_reports_kpis(struct op_call *call, const cJSON *req);

/*
 * Compute the gauges parley_kpi_* of the current calendar month (UTC, by the
 * history clock), per channel and in total (channel=""), and append them to
 * out: 0, or PARLEY_ENOTSUP (this store computes no KPIs) / PARLEY_EIO with
 * *why (static text) and out untouched.  It runs the whole KPI report: call
 * it from kpi_gauges.c's thread, never from a scrape.
 */
int reports_gauges(struct gateway *gw, struct strbuf *out, const char **why);

#endif
