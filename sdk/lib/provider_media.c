/* provider_media.c: the per-channel thread that fetches media after commit. */
#include <parley/provider.h>

#include <parley/fetch_policy.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* --------------------------------------------------------------- media */

struct media_job {
	struct media_job *next;
	char message_id[32];
	size_t index;
	char *spec;
	int tries;
};

struct prov_media {
	const struct parley_host *host;
	parley_instance *inst;
	prov_fetch_fn fetch;
	void *arg;
	struct prov_client client;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct media_job *head, *tail;
	int stop;
};

static void *media_main(void *p)
{
	struct prov_media *m = p;
	pthread_mutex_lock(&m->lock);
	for (;;) {
		while (!m->head && !m->stop)
			pthread_cond_wait(&m->cv, &m->lock);
		if (!m->head)
			break; /* stopping with nothing left */
		if (m->stop) {
			/* Jobs left at shutdown are logged: their messages keep the provider's reference. */
			struct media_job *j = m->head;
			m->head = j->next;
			m->host->log(m->inst, PARLEY_LOG_WARN, "not fetched before shutdown: attachment %zu of %s",
			             j->index, j->message_id);
			free(j->spec);
			free(j);
			continue;
		}
		struct media_job *j = m->head;
		m->head = j->next;
		if (!m->head)
			m->tail = NULL;
		pthread_mutex_unlock(&m->lock);

		struct prov_http r = {0};
		int rv = m->fetch(m->arg, &m->client, j->spec, &r);
		if (rv == PROV_FETCH_REFUSED) {
			/* The reference breaks the fetch policy: retrying cannot help, and the stored
			 * message keeps the provider's reference. */
			m->host->log(m->inst, PARLEY_LOG_WARN, "attachment %zu of %s not fetched: %s", j->index,
			             j->message_id, r.error);
			m->host->metric_add(m->inst, "media_refused_total", 1);
			free(j->spec);
			free(j);
		} else if (rv == 0 && r.status >= 200 && r.status < 300) {
			char sha[65];
			char ctype[128];
			snprintf(ctype, sizeof(ctype), "%.*s", (int)strcspn(r.content_type, ";"), r.content_type);
			rv = m->host->attachment_put(m->inst, j->message_id, j->index, r.body, r.len,
			                             ctype[0] ? ctype : NULL, sha);
			if (rv == 0)
				m->host->metric_add(m->inst, "media_fetched_total", 1);
			else
				m->host->log(m->inst, PARLEY_LOG_ERROR, "cannot keep attachment %zu of %s: %s",
				             j->index, j->message_id, m->host->strerror(rv));
			free(j->spec);
			free(j);
		} else {
			m->host->log(m->inst, PARLEY_LOG_WARN, "fetching attachment %zu of %s failed (try %d): %s",
			             j->index, j->message_id, j->tries + 1,
			             r.status ? "the provider refused" : (r.error[0] ? r.error : "error"));
			m->host->metric_add(m->inst, "media_fetch_failures_total", 1);
			if (++j->tries < 3) {
				struct timespec ts = {0, 200 * 1000000L * j->tries};
				nanosleep(&ts, NULL);
				pthread_mutex_lock(&m->lock);
				j->next = NULL;
				if (m->tail)
					m->tail->next = j;
				else
					m->head = j;
				m->tail = j;
				pthread_mutex_unlock(&m->lock);
			} else {
				free(j->spec);
				free(j);
			}
		}
		prov_http_free(&r);
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

int prov_media_start(struct prov_media **out, const struct parley_host *h, parley_instance *inst, prov_fetch_fn fetch,
                     void *arg, size_t max_bytes, int64_t timeout_ms)
{
	struct prov_media *m = calloc(1, sizeof(*m));
	if (!m)
		return PARLEY_ENOMEM;
	m->host = h;
	m->inst = inst;
	m->fetch = fetch;
	m->arg = arg;
	prov_client_init(&m->client, timeout_ms, max_bytes);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cv, NULL);
	if (pthread_create(&m->thread, NULL, media_main, m) != 0) {
		free(m);
		return PARLEY_EIO;
	}
	*out = m;
	return 0;
}

void prov_media_add(struct prov_media *m, const char *message_id, size_t index, const char *spec)
{
	struct media_job *j = calloc(1, sizeof(*j));
	if (!j)
		return;
	snprintf(j->message_id, sizeof(j->message_id), "%s", message_id);
	j->index = index;
	j->spec = strdup(spec);
	pthread_mutex_lock(&m->lock);
	if (m->tail)
		m->tail->next = j;
	else
		m->head = j;
	m->tail = j;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->lock);
}

void prov_media_stop(struct prov_media *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = 1;
	pthread_cond_signal(&m->cv);
	pthread_mutex_unlock(&m->lock);
	pthread_join(m->thread, NULL);
	prov_client_fini(&m->client);
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cv);
	free(m);
}
