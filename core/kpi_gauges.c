/*
 * kpi_gauges.c: the cache of the parley_kpi_* gauges (see kpi_gauges.h).
 *
 * Its own thread rather than a step of housekeeping.c's 2-second loop: that
 * loop publishes SLA warnings and breaches and wakes snoozed conversations,
 * and a KPI report that grows with the history (seconds on a large store,
 * longer on a slow PostgreSQL) would delay them.  The thread sleeps on a
 * condition variable between computations, so stopping it never waits
 * longer than a computation under way.  The next computation starts
 * interval_ms after the previous one ended: the figures are at most one
 * interval plus one computation old, and a report slower than the interval
 * still leaves the store idle between two.
 */
#include "kpi_gauges.h"
#include "log.h"
#include "reports.h"
#include "util.h"

#include <parley/parley.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct kpi_gauges {
	struct gateway *gw;
	int64_t interval_ms;
	pthread_t thread;
	pthread_mutex_t lock; /* guards everything below */
	pthread_cond_t cv;
	int stop;
	char *text;          /* the last computed gauges (NULL: none yet) */
	int64_t computed_ms; /* when they were computed (wall clock; 0: never) */
	double compute_s;    /* how long the last successful computation took */
	uint64_t errors;     /* failed computations */
};

/* Wait up to ms on kg->cv (kg->lock held); returns early when stop is asked. */
static void wait_ms(struct kpi_gauges *kg, int64_t ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!kg->stop && pthread_cond_timedwait(&kg->cv, &kg->lock, &until) == 0)
		;
}

static void *main_loop(void *arg)
{
	struct kpi_gauges *kg = arg;
	int failing = 0;
	pthread_mutex_lock(&kg->lock);
	while (!kg->stop) {
		pthread_mutex_unlock(&kg->lock);
		struct strbuf sb;
		sb_init(&sb);
		const char *why = NULL;
		int64_t at = time_now_ms(), started = time_mono_ms();
		int rv = reports_gauges(kg->gw, &sb, &why);
		double took = (double)(time_mono_ms() - started) / 1000.0;
		char *text = rv == 0 ? sb_detach(&sb) : NULL;
		sb_free(&sb);
		if (rv == 0 && !text)
			rv = PARLEY_ENOMEM, why = "out of memory";
		if (rv == 0) {
			if (failing)
				log_info("the parley_kpi_* gauges are computed again after %d failure(s)", failing);
			failing = 0;
		} else if (rv != PARLEY_ENOTSUP && failing++ == 0) {
			log_warn("the parley_kpi_* gauges were not computed (%s): /metrics keeps the last figures; "
			         "retrying every %lld ms",
			         why ? why : "unknown error", (long long)kg->interval_ms);
		}
		pthread_mutex_lock(&kg->lock);
		if (rv == 0) {
			free(kg->text);
			kg->text = text;
			kg->computed_ms = at;
			kg->compute_s = took;
		} else if (rv == PARLEY_ENOTSUP) {
			/* Not an error that passes: say so once and stop asking. */
			log_info("the store computes no KPIs (%s): /metrics has no parley_kpi_* figures", why);
			while (!kg->stop)
				pthread_cond_wait(&kg->cv, &kg->lock);
			break;
		} else {
			kg->errors++;
		}
		wait_ms(kg, kg->interval_ms);
	}
	pthread_mutex_unlock(&kg->lock);
	return NULL;
}

int kpi_gauges_start(struct kpi_gauges **out, struct gateway *gw, int64_t interval_ms)
{
	*out = NULL;
	if (interval_ms <= 0)
		return 0;
	struct kpi_gauges *kg = calloc(1, sizeof(*kg));
	if (!kg)
		return PARLEY_ENOMEM;
	kg->gw = gw;
	kg->interval_ms = interval_ms;
	pthread_mutex_init(&kg->lock, NULL);
	pthread_cond_init(&kg->cv, NULL);
	if (thread_start(&kg->thread, main_loop, kg, "parley:kpis") != 0) {
		pthread_cond_destroy(&kg->cv);
		pthread_mutex_destroy(&kg->lock);
		free(kg);
		return PARLEY_EIO;
	}
	*out = kg;
	return 0;
}

void kpi_gauges_render(struct kpi_gauges *kg, struct strbuf *out)
{
	if (!kg)
		return;
	pthread_mutex_lock(&kg->lock);
	if (kg->text)
		sb_adds(out, kg->text);
	sb_printf(out,
	          "# HELP parley_kpi_computed_timestamp_seconds When the computation of the parley_kpi_* figures "
	          "started: they are as of then (0: not yet).\n# TYPE parley_kpi_computed_timestamp_seconds gauge\n"
	          "parley_kpi_computed_timestamp_seconds %.3f\n"
	          "# HELP parley_kpi_compute_seconds How long the last computation of the parley_kpi_* figures "
	          "took.\n# TYPE parley_kpi_compute_seconds gauge\nparley_kpi_compute_seconds %.3f\n"
	          "# HELP parley_kpi_errors_total Computations of the parley_kpi_* figures that failed (the last "
	          "figures were kept).\n# TYPE parley_kpi_errors_total counter\nparley_kpi_errors_total %llu\n",
	          (double)kg->computed_ms / 1000.0, kg->compute_s, (unsigned long long)kg->errors);
	pthread_mutex_unlock(&kg->lock);
}

void kpi_gauges_stop(struct kpi_gauges *kg)
{
	if (!kg)
		return;
	pthread_mutex_lock(&kg->lock);
	kg->stop = 1;
	pthread_cond_broadcast(&kg->cv);
	pthread_mutex_unlock(&kg->lock);
	pthread_join(kg->thread, NULL);
	pthread_cond_destroy(&kg->cv);
	pthread_mutex_destroy(&kg->lock);
	free(kg->text);
	free(kg);
}
