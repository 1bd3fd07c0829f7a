/*
 * kpi_gauges.h: the parley_kpi_* gauges of /metrics, computed away from
 * the scrape.  The KPI report of the current month (reports.c) reads the
 * month's whole conversation history (about 0.8 s of CPU over a million
 * messages), so a scrape must not run it: one thread computes the figures
 * at start and then reports.metrics_interval after each computation ends,
 * and a scrape copies the last figures under a mutex.
 *
 * Before the first computation has finished a scrape shows no figures, and
 * parley_kpi_computed_timestamp_seconds is 0 (never).  A failed computation
 * keeps the figures of the last one that worked, counts
 * parley_kpi_errors_total and is logged once per streak of failures; a store
 * that computes no KPIs at all (PARLEY_ENOTSUP) is told once and not asked
 * again.
 *
 * Threads: kpi_gauges_render from any thread; start and stop from the
 * gateway's main thread (gateway_run), while the store is open.
 */
#ifndef PARLEY_CORE_KPI_GAUGES_H
#define PARLEY_CORE_KPI_GAUGES_H

#include <stdint.h>

struct gateway;
struct kpi_gauges;
struct strbuf;

/*
 * Start computing the gauges every interval_ms: 0 with *out set, or
 * PARLEY_ENOMEM / PARLEY_EIO.  An interval of 0 turns the gauges off: *out
 * is NULL and 0 is returned.  gw must outlive kpi_gauges_stop.
 */
int kpi_gauges_start(struct kpi_gauges **out, struct gateway *gw, int64_t interval_ms);
/* Append the last computed gauges (and their age, cost and error count) to out; nothing when kg is NULL. */
void kpi_gauges_render(struct kpi_gauges *kg, struct strbuf *out);
/* Wait for a computation under way, stop the thread and free kg (NULL is fine). */
void kpi_gauges_stop(struct kpi_gauges *kg);

#endif
