/*
 * metrics.c: a small registry of counters.  Lookup takes a mutex; the set
 * of series is small (per channel and status code), so this stays cheap.
 */
#include "metrics.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct series {
	char *name, *label, *value;
	int64_t count;
};

static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BOUNDS (sizeof(bounds) / sizeof(bounds[0]))

struct hist {
	char *name, *help, *label, *value;
	int64_t buckets[N_BOUNDS + 1]; /* the last: above every bound */
	int64_t count;
	double sum;
};

struct metrics {
	pthread_mutex_t lock;
	struct series *s;
	size_t n, cap;
	struct hist *h;
	size_t nh, caph;
};

struct metrics *metrics_new(void)
{
	struct metrics *m = calloc(1, sizeof(*m));
	if (m)
		pthread_mutex_init(&m->lock, NULL);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->s[i].name);
		free(m->s[i].label);
		free(m->s[i].value);
	}
	free(m->s);
	for (size_t i = 0; i < m->nh; i++) {
		free(m->h[i].name);
		free(m->h[i].help);
		free(m->h[i].label);
		free(m->h[i].value);
	}
	free(m->h);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static int same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static struct series *find(struct metrics *m, const char *name, const char *label, const char *value, int create)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->s[i].name, name) == 0 && same(m->s[i].label, label) && same(m->s[i].value, value))
			return &m->s[i];
	if (!create)
		return NULL;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 32;
		struct series *ns = realloc(m->s, cap * sizeof(*ns));
		if (!ns)
			return NULL;
		m->s = ns;
		m->cap = cap;
	}
	struct series *s = &m->s[m->n++];
	s->name = strdup(name);
	s->label = str_dup(label);
	s->value = str_dup(value);
	s->count = 0;
	return s;
}

void metrics_add(struct metrics *m, const char *name, const char *label, const char *value, int64_t delta)
{
	pthread_mutex_lock(&m->lock);
	struct series *s = find(m, name, label, value, 1);
	if (s)
		s->count += delta;
	pthread_mutex_unlock(&m->lock);
}

int64_t metrics_get(struct metrics *m, const char *name, const char *label, const char *value)
{
	pthread_mutex_lock(&m->lock);
	struct series *s = find(m, name, label, value, 0);
	int64_t v = s ? s->count : 0;
	pthread_mutex_unlock(&m->lock);
	return v;
}

/* What each of the core's counters counts; a plugin's own are described by their name. */
static const struct {
	const char *name, *help;
} helps[] = {
        {"webhooks_received_total", "Webhook requests routed to a channel."},
        {"envelopes_stored_total", "Envelopes committed to the store."},
        {"envelopes_duplicate_total", "Envelopes already stored (a provider's redelivery), acknowledged once more."},
        {"commit_batches_total", "Group commits."},
        {"commit_failures_total", "Group commits that failed (their webhooks were answered 503)."},
        {"http_responses_total", "HTTP answers by status."},
        {"http_refused_total", "Requests refused before a handler, by reason."},
        {"outbound_sent_total", "Outbound messages the provider accepted."},
        {"outbound_failed_total", "Outbound messages dead-lettered."},
        {"outbound_retries_total", "Outbound sends retried after a transient failure."},
        {"outbound_rate_limited_total", "Outbound sends deferred by a channel's rate_limit."},
        {"bus_published_total", "Envelopes and events the durable bus took."},
        {"bus_failures_total", "Publishes the durable bus refused (retried)."},
        {"bus_skipped_total", "Stored rows the durable bus relay could not publish (not envelopes)."},
        {"bus_events_dropped_total", "Events dropped while the durable bus was down and its queue full."},
        {"queue_assignments_total", "Waiting conversations the queue assigned, by team."},
        {"queue_wait_ms_total", "Milliseconds the conversations the queue assigned had waited, by team."},
        {"websockets_opened_total", "WebSockets opened."},
        {"websockets_closed_total", "WebSockets closed."},
        {"isolated_crashes_total", "Deaths of an isolated plugin's child process, by instance."},
        {"isolated_restarts_total", "Restarts of an isolated plugin's child process, by instance."},
};

void metrics_label_value(struct strbuf *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			sb_printf(out, "\\%c", *v);
		else if (*v == '\n')
			sb_adds(out, "\\n");
		else
			sb_add(out, v, 1);
	}
}

void metrics_number(struct strbuf *out, double v)
{
	char text[40];
	for (int digits = 15; digits <= 17; digits++) {
		snprintf(text, sizeof(text), "%.*g", digits, v);
		if (strtod(text, NULL) == v)
			break;
	}
	sb_adds(out, text);
}

void metrics_observe(struct metrics *m, const char *name, const char *help, const char *label, const char *value,
                     double seconds)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	struct hist *h = NULL;
	for (size_t i = 0; i < m->nh && !h; i++)
		if (strcmp(m->h[i].name, name) == 0 && same(m->h[i].label, label) && same(m->h[i].value, value))
			h = &m->h[i];
	if (!h && m->nh == m->caph) {
		size_t cap = m->caph ? m->caph * 2 : 8;
		struct hist *nh = realloc(m->h, cap * sizeof(*nh));
		if (nh) {
			m->h = nh;
			m->caph = cap;
		}
	}
	if (!h && m->nh < m->caph) {
		h = &m->h[m->nh++];
		memset(h, 0, sizeof(*h));
		h->name = strdup(name);
		h->help = strdup(help ? help : name);
		h->label = label ? strdup(label) : NULL;
		h->value = value ? strdup(value) : NULL;
	}
	if (h) {
		size_t b = 0;
		while (b < N_BOUNDS && seconds > bounds[b])
			b++;
		h->buckets[b]++;
		h->count++;
		h->sum += seconds;
	}
	pthread_mutex_unlock(&m->lock);
}

/* One histogram family's lines: cumulative buckets per series, then _sum and _count. */
static void render_hists(struct metrics *m, struct strbuf *out);

void metrics_render(struct metrics *m, struct strbuf *out)
{
	pthread_mutex_lock(&m->lock);
	render_hists(m, out);
	/* A metric family's lines must be together: group by name. */
	for (size_t i = 0; i < m->n; i++) {
		int first = 1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->s[j].name, m->s[i].name) == 0)
				first = 0;
		if (!first)
			continue;
		const char *help = NULL;
		for (size_t h = 0; h < sizeof(helps) / sizeof(helps[0]) && !help; h++)
			if (strcmp(helps[h].name, m->s[i].name) == 0)
				help = helps[h].help;
		if (help)
			sb_printf(out, "# HELP parley_%s %s\n", m->s[i].name, help);
		else
			sb_printf(out, "# HELP parley_%s A plugin's counter: %s.\n", m->s[i].name, m->s[i].name);
		sb_printf(out, "# TYPE parley_%s counter\n", m->s[i].name);
		for (size_t j = i; j < m->n; j++) {
			struct series *s = &m->s[j];
			if (strcmp(s->name, m->s[i].name) != 0)
				continue;
			if (s->label) {
				sb_printf(out, "parley_%s{%s=\"", s->name, s->label);
				metrics_label_value(out, s->value);
				sb_printf(out, "\"} %lld\n", (long long)s->count);
			} else
				sb_printf(out, "parley_%s %lld\n", s->name, (long long)s->count);
		}
	}
	pthread_mutex_unlock(&m->lock);
}

static void render_hists(struct metrics *m, struct strbuf *out)
{
	for (size_t i = 0; i < m->nh; i++) {
		int first = 1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(m->h[j].name, m->h[i].name) == 0)
				first = 0;
		if (!first)
			continue;
		sb_printf(out, "# HELP parley_%s %s\n# TYPE parley_%s histogram\n", m->h[i].name, m->h[i].help,
		          m->h[i].name);
		for (size_t j = i; j < m->nh; j++) {
			struct hist *h = &m->h[j];
			if (strcmp(h->name, m->h[i].name) != 0)
				continue;
			int64_t cum = 0;
			for (size_t b = 0; b <= N_BOUNDS; b++) {
				cum += h->buckets[b];
				sb_printf(out, "parley_%s_bucket{", h->name);
				if (h->label) {
					sb_printf(out, "%s=\"", h->label);
					metrics_label_value(out, h->value);
					sb_adds(out, "\",");
				}
				if (b < N_BOUNDS)
					sb_printf(out, "le=\"%g\"} %lld\n", bounds[b], (long long)cum);
				else
					sb_printf(out, "le=\"+Inf\"} %lld\n", (long long)cum);
			}
			for (int k = 0; k < 2; k++) {
				sb_printf(out, "parley_%s_%s", h->name, k ? "count" : "sum");
				if (h->label) {
					sb_printf(out, "{%s=\"", h->label);
					metrics_label_value(out, h->value);
					sb_adds(out, "\"}");
				}
				if (k)
					sb_printf(out, " %lld\n", (long long)h->count);
				else
					sb_printf(out, " %.6f\n", h->sum);
			}
		}
	}
}
