/* provider_batch.c: answering a webhook after its envelopes are committed. */
#include <parley/provider.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* --------------------------------------------------------------- batches */

struct prov_batch *prov_batch_new(const struct parley_host *h, parley_instance *inst, parley_http_request *req,
                                  struct prov_media *media)
{
	struct prov_batch *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->host = h;
	b->inst = inst;
	b->req = req;
	b->media = media;
	b->ok_status = 200;
	b->ok_type = "application/json";
	return b;
}

parley_envelope *prov_batch_envelope(struct prov_batch *b, const char *kind)
{
	if (b->n >= PROV_MAX_ENVS) {
		prov_batch_refuse(b, "more than %d messages and events in one request", PROV_MAX_ENVS);
		return NULL;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 8;
		parley_envelope **ne = realloc(b->envs, cap * sizeof(*ne));
		if (!ne) {
			prov_batch_refuse(b, "out of memory");
			return NULL;
		}
		b->envs = ne;
		b->cap = cap;
	}
	parley_envelope *e = b->host->envelope_new(b->inst, kind, "inbound");
	if (e)
		b->envs[b->n++] = e;
	else
		prov_batch_refuse(b, "out of memory");
	return e;
}

void prov_batch_media(struct prov_batch *b, parley_envelope *env, size_t index, const char *spec)
{
	if (!b->media || !spec)
		return;
	size_t at = b->n;
	while (at > 0 && b->envs[at - 1] != env)
		at--;
	if (at == 0)
		return;
	if (b->n_jobs == b->cap_jobs) {
		size_t cap = b->cap_jobs ? b->cap_jobs * 2 : 4;
		struct prov_job *nj = realloc(b->jobs, cap * sizeof(*nj));
		if (!nj) {
			prov_batch_refuse(b, "out of memory");
			return;
		}
		b->jobs = nj;
		b->cap_jobs = cap;
	}
	b->jobs[b->n_jobs].env = at - 1;
	b->jobs[b->n_jobs].index = index;
	b->jobs[b->n_jobs].spec = strdup(spec);
	b->n_jobs++;
}

static void batch_free(struct prov_batch *b)
{
	for (size_t i = 0; i < b->n_jobs; i++)
		free(b->jobs[i].spec);
	free(b->jobs);
	free(b->envs);
	free(b->ok_body);
	free(b->refused);
	free(b);
}

void prov_batch_refuse(struct prov_batch *b, const char *fmt, ...)
{
	if (b->refused)
		return;
	va_list ap;
	va_start(ap, fmt);
	char msg[400];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	b->refused = strdup(msg);
}

void prov_batch_ignore(struct prov_batch *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char msg[400];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	b->n_ignored++;
	b->host->log(b->inst, PARLEY_LOG_INFO, "acknowledged, not stored: %s", msg);
}

/* Why the host refused the batch's envelopes: the first setter failure (which one, when several), or a generic reason.
 */
static void refusal(const struct prov_batch *b, char *out, size_t cap)
{
	if (b->refused) {
		snprintf(out, cap, "%s", b->refused);
		return;
	}
	for (size_t i = 0; i < b->n && PARLEY_HOST_HAS(b->host, envelope_error); i++) {
		const char *e = b->host->envelope_error(b->envs[i]);
		if (e && b->n > 1) {
			snprintf(out, cap, "message %zu: %s", i, e);
			return;
		}
		if (e) {
			snprintf(out, cap, "%s", e);
			return;
		}
	}
	snprintf(out, cap, "the payload could not be turned into envelopes");
}

/* {"ok":true,"ids":[...]}, malloc'd, or NULL when out of memory. */
static char *ids_answer(const char *const *ids, size_t n)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON *list = cJSON_AddArrayToObject(o, "ids");
	for (size_t i = 0; list && ids && i < n; i++)
		cJSON_AddItemToArray(list, cJSON_CreateString(ids[i]));
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static void batch_committed(void *arg, int result, const char *const *ids, size_t n)
{
	struct prov_batch *b = arg;
	const struct parley_host *h = b->host;
	if (result != 0) {
		char msg[160];
		snprintf(msg, sizeof(msg), "not stored (%s): retry later", h->strerror(result));
		if (b->req)
			prov_respond_error(h, b->req, 503, msg);
		else if (b->done)
			b->done(b->done_arg, result);
		batch_free(b);
		return;
	}
	/*
	 * Jobs go to the id each message is stored under: a duplicate's is the
	 * first copy's, whose attachment a repeated job rewrites with the same
	 * content, harmlessly.
	 */
	for (size_t i = 0; i < b->n_jobs; i++)
		if (ids && b->jobs[i].env < n && ids[b->jobs[i].env][0])
			prov_media_add(b->media, ids[b->jobs[i].env], b->jobs[i].index, b->jobs[i].spec);
	if (b->ok_ids && b->req) {
		free(b->ok_body);
		b->ok_body = ids_answer(ids, n);
	}
	const char *body = b->ok_body ? b->ok_body : "{\"ok\":true}";
	if (b->req)
		h->http_respond(b->req, b->ok_status, b->ok_type, body, strlen(body));
	else if (b->done)
		b->done(b->done_arg, 0);
	batch_free(b);
}

void prov_batch_finish(struct prov_batch *b)
{
	const struct parley_host *h = b->host;
	if (b->refused) {
		/* Invalid input stores nothing, not even the valid part of it. */
		for (size_t i = 0; i < b->n; i++)
			h->envelope_free(b->envs[i]);
		b->n = 0;
		h->log(b->inst, PARLEY_LOG_WARN, "payload refused: %s", b->refused);
		if (b->req)
			prov_respond_error(h, b->req, 400, b->refused);
		else if (b->done)
			b->done(b->done_arg, PARLEY_EINVAL);
		batch_free(b);
		return;
	}
	if (b->n == 0) {
		/* Every path that stores nothing on purpose says why; this catches the ones that forgot. */
		if (b->req && b->n_ignored == 0)
			h->log(b->inst, PARLEY_LOG_WARN, "acknowledged a webhook with nothing in it to store");
		batch_committed(b, 0, NULL, 0);
		return;
	}
	int rv = h->submit_ids(b->inst, b->envs, b->n, batch_committed, b);
	if (rv != 0) {
		char msg[400];
		if (rv == PARLEY_EINVAL || rv == PARLEY_ETOOBIG)
			refusal(b, msg, sizeof(msg));
		else
			snprintf(msg, sizeof(msg), "the gateway cannot take messages right now: retry later");
		for (size_t i = 0; i < b->n; i++)
			h->envelope_free(b->envs[i]);
		b->n = 0;
		if (b->req)
			prov_respond_error(h, b->req, rv == PARLEY_EINVAL || rv == PARLEY_ETOOBIG ? 400 : 503, msg);
		else if (b->done)
			b->done(b->done_arg, rv);
		batch_free(b);
	}
}

void prov_batch_fail(struct prov_batch *b, int status, const char *msg)
{
	for (size_t i = 0; i < b->n; i++)
		b->host->envelope_free(b->envs[i]);
	prov_respond_error(b->host, b->req, status, msg);
	batch_free(b);
}
