/*
 * plugin_test_provider.c: the fake provider of `parley test`: an HTTP server
 * (libmicrohttpd) on 127.0.0.1 and a free port, at the base URL a fixture's
 * config names as ${PROVIDER_URL}.  It answers each request with the next
 * answer the fixture scripts (404 beyond them) and records what the plugin
 * asked, for the fixture's expected requests.
 */
#include "plugin_test.h"
#include "util.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ptest_provider {
	struct MHD_Daemon *d;
	char url[64];
	pthread_mutex_t lock;
	cJSON *answers; /* array */
	int next;
	cJSON *requests; /* array */
};

/* One request's body as it arrives. */
struct upload {
	struct strbuf body;
};

static enum MHD_Result add_value(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	cJSON_AddStringToObject(cls, key, value ? value : "");
	return MHD_YES;
}

static void record(struct ptest_provider *p, struct MHD_Connection *mc, const char *url, const char *method,
                   const struct strbuf *body)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "method", method);
	cJSON_AddStringToObject(r, "path", url);
	cJSON *q = cJSON_CreateObject();
	MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, add_value, q);
	if (cJSON_GetArraySize(q) > 0)
		cJSON_AddItemToObject(r, "query", q);
	else
		cJSON_Delete(q);
	cJSON *hd = cJSON_AddObjectToObject(r, "headers");
	MHD_get_connection_values(mc, MHD_HEADER_KIND, add_value, hd);
	char *text = strndup(body->len ? body->buf : "", body->len);
	cJSON_AddStringToObject(r, "body", text ? text : "");
	free(text);
	cJSON_AddItemToArray(p->requests, r);
}

static enum MHD_Result on_provider(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                   const char *version, const char *data, size_t *size, void **con_cls)
{
	(void)version;
	struct ptest_provider *p = cls;
	struct upload *u = *con_cls;
	if (!u) {
		u = calloc(1, sizeof(*u));
		if (!u)
			return MHD_NO;
		sb_init(&u->body);
		*con_cls = u;
		return MHD_YES;
	}
	if (*size) {
		sb_add(&u->body, data, *size);
		*size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&p->lock);
	record(p, mc, url, method, &u->body);
	const cJSON *a = cJSON_GetArrayItem(p->answers, p->next);
	if (a)
		p->next++;
	int status = 404;
	char *text = NULL;
	struct MHD_Response *resp;
	if (a) {
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(a, "status");
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(a, "body");
		status = cJSON_IsNumber(st) ? (int)st->valuedouble : 200;
		text = cJSON_IsString(b) ? strdup(b->valuestring) : b ? cJSON_PrintUnformatted(b) : strdup("");
	} else {
		text = strdup("{\"error\":\"parley test: the fixture scripts no answer for this request\"}");
	}
	resp = MHD_create_response_from_buffer(text ? strlen(text) : 0, text, MHD_RESPMEM_MUST_FREE);
	const cJSON *h;
	int typed = 0;
	cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(a, "headers"))
	{
		if (cJSON_IsString(h)) {
			MHD_add_response_header(resp, h->string, h->valuestring);
			typed |= strcasecmp(h->string, "Content-Type") == 0;
		}
	}
	if (!typed)
		MHD_add_response_header(resp, "Content-Type", "application/json");
	pthread_mutex_unlock(&p->lock);
	enum MHD_Result rv = MHD_queue_response(mc, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return rv;
}

static void on_done(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode why)
{
	(void)cls;
	(void)mc;
	(void)why;
	struct upload *u = *con_cls;
	if (u) {
		sb_free(&u->body);
		free(u);
		*con_cls = NULL;
	}
}

struct ptest_provider *ptest_provider_start(char *why, size_t why_len)
{
	struct ptest_provider *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(why, why_len, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	p->answers = cJSON_CreateArray();
	p->requests = cJSON_CreateArray();
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	p->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_provider, p, MHD_OPTION_SOCK_ADDR,
	                        (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
	const union MHD_DaemonInfo *info = p->d ? MHD_get_daemon_info(p->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	if (!info) {
		snprintf(why, why_len, "the fake provider cannot listen on 127.0.0.1");
		ptest_provider_stop(p);
		return NULL;
	}
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%u", (unsigned)info->port);
	return p;
}

void ptest_provider_stop(struct ptest_provider *p)
{
	if (!p)
		return;
	if (p->d)
		MHD_stop_daemon(p->d);
	cJSON_Delete(p->answers);
	cJSON_Delete(p->requests);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

const char *ptest_provider_url(const struct ptest_provider *p)
{
	return p->url;
}

void ptest_provider_script(struct ptest_provider *p, const cJSON *answers)
{
	pthread_mutex_lock(&p->lock);
	cJSON_Delete(p->answers);
	cJSON_Delete(p->requests);
	p->answers = cJSON_IsArray(answers) ? cJSON_Duplicate(answers, 1) : cJSON_CreateArray();
	p->requests = cJSON_CreateArray();
	p->next = 0;
	pthread_mutex_unlock(&p->lock);
}

cJSON *ptest_provider_requests(struct ptest_provider *p)
{
	pthread_mutex_lock(&p->lock);
	cJSON *a = cJSON_Duplicate(p->requests, 1);
	pthread_mutex_unlock(&p->lock);
	return a;
}
