/*
 * attachments.c: POST /attachments: the upload is checked on the HTTP
 * thread and queued; the instance's writer thread stores the bytes
 * (attachment_put blocks for the disk), then submits the message that
 * names them.
 */
#include "webchat.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The writer thread: keep the bytes, then submit the message that names them. */
static void write_attachment(struct webchat *w, struct job *j)
{
	const struct parley_host *h = w->h;
	char sha[65];
	if (h->attachment_put(w->inst, NULL, 0, j->data, j->len, j->content_type, sha) != 0) {
		wc_respond_error(w, j->req, j->origin, 503, "not_stored", "the file was not stored: send it again");
		return;
	}
	struct pending *p = calloc(1, sizeof(*p));
	parley_envelope *env = p ? wc_visitor_envelope(w, &j->s, j->client_id) : NULL;
	if (!env) {
		free(p);
		wc_respond_error(w, j->req, j->origin, 503, "unavailable", "out of memory");
		return;
	}
	p->w = w;
	p->req = j->req;
	snprintf(p->origin, sizeof(p->origin), "%s", j->origin);
	snprintf(p->client_id, sizeof(p->client_id), "%s", j->client_id);
	snprintf(p->sid, sizeof(p->sid), "%s", j->s.sid);
	char buf[600];
	cJSON *atts = cJSON_CreateArray();
	cJSON *a = cJSON_CreateObject();
	cJSON_AddItemToArray(atts, a);
	snprintf(buf, sizeof(buf), "attachments/%.2s/%s", sha, sha);
	cJSON_AddStringToObject(a, "ref", buf);
	cJSON_AddStringToObject(a, "sha256", sha);
	cJSON_AddNumberToObject(a, "size", (double)j->len);
	cJSON_AddStringToObject(a, "content_type", j->content_type);
	if (j->name[0])
		cJSON_AddStringToObject(a, "name", j->name);
	char *aj = cJSON_PrintUnformatted(atts);
	cJSON_Delete(atts);
	h->envelope_set_json(env, "attachments", aj ? aj : "[]");
	free(aj);
	cJSON *pub = cJSON_CreateObject();
	cJSON_AddStringToObject(pub, "name", j->name);
	cJSON_AddNumberToObject(pub, "size", (double)j->len);
	cJSON_AddStringToObject(pub, "content_type", j->content_type);
	p->attachment = cJSON_PrintUnformatted(pub);
	cJSON_Delete(pub);
	p->text = strdup("");
	const char *refused = h->envelope_error(env);
	parley_envelope *envs[1] = {env};
	if (refused || !p->text || h->submit_ids(w->inst, envs, 1, wc_committed, p) != 0) {
		h->envelope_free(env);
		wc_respond_error(w, j->req, j->origin, refused ? 400 : 503, refused ? "bad_request" : "unavailable",
		                 refused ? refused : "the gateway cannot take messages right now: retry later");
		free(p->text);
		free(p->attachment);
		free(p);
	}
}

void *wc_writer_main(void *arg)
{
	struct webchat *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->jobs && !w->writer_stop)
			pthread_cond_wait(&w->jobs_cv, &w->lock);
		struct job *j = w->jobs;
		if (!j)
			break; /* stopping, and nothing left */
		w->jobs = j->next;
		pthread_mutex_unlock(&w->lock);
		write_attachment(w, j);
		free(j->data);
		free(j);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* POST /attachments?name=<file name>[&client_id=...]: the body is the file, typed by Content-Type. */
void wc_on_post_attachment(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const struct parley_host *h = w->h;
	const char *origin = wc_check_origin(w, req);
	struct wc_session s;
	if (!origin || wc_bearer(w, req, origin, &s) != 0)
		return;
	size_t len;
	const void *body = h->http_body(req, &len);
	const char *ctype = h->http_header(req, "Content-Type");
	if (!w->max_attachment) {
		wc_respond_error(w, req, origin, 403, "no_attachments", "this chat takes no files (max_attachment: 0)");
		return;
	}
	if (len > w->max_attachment) {
		wc_respond_error(w, req, origin, 413, "too_large",
		                 "the file is larger than this chat's max_attachment");
		return;
	}
	if (!len || !ctype || !ctype[0] || strlen(ctype) >= 128 || strchr(ctype, '\n')) {
		wc_respond_error(w, req, origin, 400, "bad_request",
		                 "send the file as the body, typed by its Content-Type");
		return;
	}
	struct job *j = calloc(1, sizeof(*j));
	if (!j || !(j->data = malloc(len))) {
		free(j);
		wc_respond_error(w, req, origin, 503, "unavailable", "out of memory");
		return;
	}
	const char *q = h->http_query(req);
	for (const char *p = q; p && *p;) {
		size_t n = strcspn(p, "&");
		char *dst = strncmp(p, "name=", 5) == 0         ? j->name
		            : strncmp(p, "client_id=", 10) == 0 ? j->client_id
		                                                : NULL;
		size_t cap = dst == j->name ? sizeof(j->name) : sizeof(j->client_id);
		const char *v = dst ? strchr(p, '=') + 1 : NULL;
		/* percent-decode the value */
		for (size_t o = 0; v && v < p + n && o + 1 < cap; o++) {
			unsigned c = (unsigned char)*v;
			if (c == '%' && v + 2 < p + n + 1 && sscanf(v + 1, "%2x", &c) == 1)
				v += 3;
			else
				v += 1, c = c == '+' ? ' ' : c;
			dst[o] = (char)c;
			dst[o + 1] = '\0';
		}
		p += n + (p[n] == '&');
	}
	char why[160];
	if ((j->client_id[0] && !wc_client_id_ok(j->client_id)) ||
	    h->text_check("name", j->name, strlen(j->name), why, sizeof(why)) != 0) {
		free(j->data);
		free(j);
		wc_respond_error(w, req, origin, 400, "bad_request",
		                 "'name' must be UTF-8 and 'client_id' 1-64 of A-Z a-z 0-9 - _");
		return;
	}
	if (!wc_rate_ok(w, s.sid)) {
		free(j->data);
		free(j);
		wc_respond_error(w, req, origin, 429, "rate_limited", "too many messages this minute: wait a little");
		return;
	}
	memcpy(j->data, body, len);
	j->len = len;
	j->req = req;
	j->s = s;
	snprintf(j->origin, sizeof(j->origin), "%s", origin);
	snprintf(j->content_type, sizeof(j->content_type), "%s", ctype);
	pthread_mutex_lock(&w->lock);
	struct job **tail = &w->jobs;
	while (*tail)
		tail = &(*tail)->next;
	*tail = j;
	pthread_cond_signal(&w->jobs_cv);
	pthread_mutex_unlock(&w->lock);
}
