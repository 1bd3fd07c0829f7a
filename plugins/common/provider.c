/* provider.c: HTTP, signatures, media fetching and after-commit answers for provider plugins. */
#include "provider.h"

#include "fetch_policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int prov_plugin_init(const struct parley_host *host, void **plugin_data, char **errmsg)
{
	(void)host;
	(void)plugin_data;
	(void)errmsg;
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : PARLEY_EINTERNAL;
}

void prov_plugin_fini(void *plugin_data)
{
	(void)plugin_data;
	curl_global_cleanup();
}

void prov_client_init(struct prov_client *c, int64_t timeout_ms, size_t max_body)
{
	c->curl = NULL;
	c->timeout_ms = timeout_ms;
	c->max_body = max_body;
	c->abort = NULL;
	c->insecure = 0;
	c->use_ssl = 0;
	c->fetch = NULL;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	const volatile int *abort_flag = ud;
	return *abort_flag ? 1 : 0;
}

void prov_client_fini(struct prov_client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
}

struct sink {
	struct prov_http *r;
	size_t cap, max;
	int too_big;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb;
	if (s->r->len + n > s->max) {
		s->too_big = 1;
		return 0; /* aborts the transfer */
	}
	if (s->r->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->r->len + n + 1)
			cap *= 2;
		char *nb = realloc(s->r->body, cap);
		if (!nb)
			return 0;
		s->r->body = nb;
		s->cap = cap;
	}
	memcpy(s->r->body + s->r->len, ptr, n);
	s->r->len += n;
	s->r->body[s->r->len] = '\0';
	return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct prov_http *r = ud;
	size_t n = size * nmemb;
	if (n > 12 && strncasecmp(ptr, "Retry-After:", 12) == 0) {
		/* Seconds (an HTTP date is taken as "no hint"); a day at most, so the product cannot overflow. */
		char v[32];
		snprintf(v, sizeof(v), "%.*s", (int)strcspn(ptr + 12, "\r\n"), ptr + 12);
		long long secs;
		if (prov_parse_ll(v + strspn(v, " "), 0, 86400, &secs) == 0)
			r->retry_after_ms = secs * 1000;
	} else if (n > 13 && strncasecmp(ptr, "Content-Type:", 13) == 0) {
		const char *v = ptr + 13;
		while (*v == ' ')
			v++;
		size_t l = strcspn(v, "\r\n");
		if (l >= sizeof(r->content_type))
			l = sizeof(r->content_type) - 1;
		memcpy(r->content_type, v, l);
		r->content_type[l] = '\0';
	}
	return n;
}

int prov_request(struct prov_client *c, const char *method, const char *url, const char *const *headers,
                 const char *body, size_t body_len, const char *userpwd, struct prov_http *out)
{
	memset(out, 0, sizeof(*out));
	if (!c->curl && !(c->curl = curl_easy_init())) {
		snprintf(out->error, sizeof(out->error), "cannot create an HTTP client");
		return -1;
	}
	CURL *h = c->curl;
	curl_easy_reset(h);
	struct curl_slist *hl = NULL;
	for (size_t i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	struct sink sink = {out, 0, c->max_body ? c->max_body : (64u << 20), 0};
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(h, CURLOPT_URL, url);
	if (method)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (c->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->use_ssl)
		curl_easy_setopt(h, CURLOPT_USE_SSL, c->use_ssl);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)body_len);
	} else if (method && strcmp(method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	if (userpwd)
		curl_easy_setopt(h, CURLOPT_USERPWD, userpwd);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (c->fetch) {
		prov_fetch_prepare(c->fetch, h);
	} else {
		curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
		curl_easy_setopt(h, CURLOPT_MAXREDIRS, 3L);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, out);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	if (c->abort) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)c->abort);
	}
	CURLcode rc = curl_easy_perform(h);
	if (c->fetch)
		prov_fetch_finish(c->fetch, h);
	curl_slist_free_all(hl);
	if (!out->body) {
		out->body = calloc(1, 1);
	}
	if (rc != CURLE_OK) {
		snprintf(out->error, sizeof(out->error), "%s",
		         sink.too_big ? "answer larger than the limit" : (errbuf[0] ? errbuf : curl_easy_strerror(rc)));
		out->status = 0;
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	return 0;
}

void prov_http_free(struct prov_http *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

void prov_classify(const struct prov_http *r, const char *code, const char *text, struct parley_send_result *res)
{
	if (r->status >= 200 && r->status < 300)
		res->outcome = PARLEY_SEND_OK;
	else if (r->status == 0 || r->status == 408 || r->status == 429 || r->status >= 500)
		res->outcome = PARLEY_SEND_RETRY;
	else
		res->outcome = PARLEY_SEND_PERMANENT;
	res->retry_after_ms = r->retry_after_ms;
	if (res->outcome == PARLEY_SEND_OK)
		return;
	if (code && *code)
		snprintf(res->error_code, sizeof(res->error_code), "%s", code);
	else if (r->status)
		snprintf(res->error_code, sizeof(res->error_code), "http_%ld", r->status);
	if (text && *text)
		snprintf(res->error_text, sizeof(res->error_text), "%s", text);
	else if (r->status == 0)
		snprintf(res->error_text, sizeof(res->error_text), "%s", r->error);
	else
		snprintf(res->error_text, sizeof(res->error_text), "%.*s", (int)(r->len > 300 ? 300 : r->len),
		         r->body ? r->body : "");
}

void prov_base64(const unsigned char *in, size_t n, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
		             (i + 2 < n ? in[i + 2] : 0);
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? tab[v & 63] : '=';
	}
	out[o] = '\0';
}

static char *form_decode(const char *s, size_t n, size_t *out_len);

int prov_form_parse(const char *body, size_t len, struct prov_form *f)
{
	memset(f, 0, sizeof(*f));
	size_t i = 0;
	while (i < len) {
		size_t seg = 0;
		while (i + seg < len && body[i + seg] != '&')
			seg++;
		if (seg > 0) {
			size_t eq = 0;
			while (eq < seg && body[i + eq] != '=')
				eq++;
			char **nn = realloc(f->names, (f->n + 1) * sizeof(char *));
			if (nn)
				f->names = nn;
			char **nv = realloc(f->values, (f->n + 1) * sizeof(char *));
			if (nv)
				f->values = nv;
			size_t *nl = realloc(f->lens, (f->n + 1) * sizeof(size_t));
			if (nl)
				f->lens = nl;
			size_t *nnl = realloc(f->name_lens, (f->n + 1) * sizeof(size_t));
			if (nnl)
				f->name_lens = nnl;
			if (!nn || !nv || !nl || !nnl) {
				prov_form_free(f);
				return -1;
			}
			f->names[f->n] = form_decode(body + i, eq, &f->name_lens[f->n]);
			f->values[f->n] =
			        eq < seg ? form_decode(body + i + eq + 1, seg - eq - 1, &f->lens[f->n]) : strdup("");
			if (eq >= seg)
				f->lens[f->n] = 0;
			if (!f->names[f->n] || !f->values[f->n]) {
				free(f->names[f->n]);
				free(f->values[f->n]);
				prov_form_free(f);
				return -1;
			}
			f->n++;
		}
		i += seg + 1;
	}
	return 0;
}

const char *prov_form_get(const struct prov_form *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->names[i], name) == 0)
			return f->values[i];
	return NULL;
}

int prov_form_check(const struct parley_host *h, const struct prov_form *f, char *why, size_t why_len)
{
	for (size_t i = 0; i < f->n; i++) {
		/* The reason goes into a JSON answer: a name is quoted only when it is text, and never cut in a
		 * character. */
		char name[96];
		size_t nl = f->name_lens[i];
		if (h->text_check("a parameter name", f->names[i], nl, why, why_len) != 0)
			return PARLEY_EINVAL;
		if (nl > 64) {
			nl = 64;
			while (nl > 0 && ((unsigned char)f->names[i][nl] & 0xc0) == 0x80)
				nl--;
		}
		snprintf(name, sizeof(name), "parameter '%.*s'", (int)nl, f->names[i]);
		if (h->text_check(name, f->values[i], f->lens[i], why, why_len) != 0)
			return PARLEY_EINVAL;
	}
	return 0;
}

void prov_form_free(struct prov_form *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->names[i]);
		free(f->values[i]);
	}
	free(f->names);
	free(f->values);
	free(f->lens);
	free(f->name_lens);
	memset(f, 0, sizeof(*f));
}

char *prov_urlencode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(3 * n + 1), *o = out;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

int prov_check_hmac_sha256_hex(const struct parley_host *h, const char *secret, const char *header, const char *prefix,
                               const void *body, size_t len)
{
	size_t pl = strlen(prefix);
	if (!secret || !header || strncmp(header, prefix, pl) != 0 || strlen(header + pl) != 64)
		return 0;
	unsigned char mac[32];
	char want[65], given[65];
	h->hmac_sha256(secret, strlen(secret), body, len, mac);
	h->hex_encode(mac, 32, want);
	for (int i = 0; i < 64; i++)
		given[i] = (char)tolower((unsigned char)header[pl + i]);
	given[64] = '\0';
	return h->ct_equal(want, given, 64);
}

void prov_meta_handshake(const struct parley_host *h, parley_http_request *req, const char *verify_token)
{
	const char *q = h->http_query(req);
	char *mode = prov_query_get(q, "hub.mode");
	char *token = prov_query_get(q, "hub.verify_token");
	char *challenge = prov_query_get(q, "hub.challenge");
	int ok = mode && token && challenge && verify_token && strcmp(mode, "subscribe") == 0 &&
	         strlen(token) == strlen(verify_token) && h->ct_equal(token, verify_token, strlen(token));
	if (ok)
		h->http_respond(req, 200, "text/plain", challenge, strlen(challenge));
	else
		prov_respond_error(h, req, 403, "hub.verify_token does not match the channel's verify_token");
	free(mode);
	free(token);
	free(challenge);
}

cJSON *prov_json_parse(const struct parley_host *h, const char *text, size_t len, char *why, size_t why_len)
{
	if (h->json_check(text, len, why, why_len) != 0)
		return NULL;
	cJSON *doc = cJSON_ParseWithLength(text, len);
	if (!doc)
		snprintf(why, why_len, "the body is not valid JSON");
	return doc;
}

/* How much of a header value to quote in an error: printable ASCII only (the reason goes into a JSON answer). */
static int printable(const char *s, size_t max)
{
	size_t n = 0;
	while (s && n < max && s[n] >= 0x20 && s[n] < 0x7f)
		n++;
	return (int)n;
}

static int is_json_type(const char *ct)
{
	if (!ct)
		return 0;
	while (*ct == ' ')
		ct++;
	size_t n = strcspn(ct, "; ");
	/* application/json, or a structured type such as application/vnd.api+json */
	return (n == 16 && strncasecmp(ct, "application/json", 16) == 0) ||
	       (n > 17 && strncasecmp(ct, "application/", 12) == 0 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}

cJSON *prov_json_body(const struct parley_host *h, parley_http_request *req, const void *body, size_t len)
{
	const char *ct = h->http_header(req, "Content-Type");
	if (!is_json_type(ct)) {
		char msg[200];
		snprintf(msg, sizeof(msg), "Content-Type must be application/json, not '%.*s'", printable(ct, 80),
		         ct ? ct : "");
		prov_respond_error(h, req, 415, msg);
		return NULL;
	}
	char why[320];
	cJSON *doc = prov_json_parse(h, body, len, why, sizeof(why));
	if (!doc)
		prov_respond_error(h, req, 400, why);
	return doc;
}

int prov_require_form(const struct parley_host *h, parley_http_request *req)
{
	const char *ct = h->http_header(req, "Content-Type");
	size_t n = ct ? strcspn(ct, "; ") : 0;
	if (!ct || n != 33 || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
		char msg[200];
		snprintf(msg, sizeof(msg), "Content-Type must be application/x-www-form-urlencoded, not '%.*s'",
		         printable(ct, 80), ct ? ct : "");
		prov_respond_error(h, req, 415, msg);
		return -1;
	}
	return 0;
}

int prov_form_body(const struct parley_host *h, parley_http_request *req, const void *body, size_t len,
                   struct prov_form *f)
{
	if (prov_require_form(h, req) != 0)
		return -1;
	if (prov_form_parse(body, len, f) != 0) {
		prov_respond_error(h, req, 503, "out of memory: retry later");
		return -1;
	}
	return 0;
}

void prov_respond_error(const struct parley_host *h, parley_http_request *req, int status, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 0);
	cJSON_AddStringToObject(o, "error", msg);
	char *s = cJSON_PrintUnformatted(o);
	h->http_respond(req, status, "application/json", s, strlen(s));
	free(s);
	cJSON_Delete(o);
}

int prov_check_signing(const char *config_json, const char *key, const char *what, char **errmsg)
{
	cJSON *c = cJSON_Parse(config_json ? config_json : "{}");
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, key));
	const char *ins = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "insecure"));
	int ok = (v && v[0]) || (ins && (!strcmp(ins, "true") || !strcmp(ins, "yes") || !strcmp(ins, "on")));
	cJSON_Delete(c);
	if (ok)
		return 0;
	size_t n = strlen(key) + strlen(what) + 160;
	*errmsg = malloc(n);
	if (*errmsg)
		snprintf(*errmsg, n,
		         "no '%s': anyone who can reach the webhook could post messages; set %s, or say insecure: true "
		         "to accept unsigned requests",
		         key, what);
	return PARLEY_EINVAL;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

static char *form_decode(const char *v, size_t vl, size_t *out_len)
{
	char *out = malloc(vl + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < vl; i++) {
		if (v[i] == '+') {
			*o++ = ' ';
		} else if (v[i] == '%' && i + 2 < vl && hexval(v[i + 1]) >= 0 && hexval(v[i + 2]) >= 0) {
			*o++ = (char)(hexval(v[i + 1]) * 16 + hexval(v[i + 2]));
			i += 2;
		} else {
			*o++ = v[i];
		}
	}
	*o = '\0';
	if (out_len)
		*out_len = (size_t)(o - out);
	return out;
}

char *prov_query_get(const char *query, const char *name)
{
	size_t nl = strlen(name);
	const char *p = query;
	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t seg = amp ? (size_t)(amp - p) : strlen(p);
		if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t vl;
			char *v = form_decode(p + nl + 1, seg - nl - 1, &vl);
			if (v && strlen(v) != vl) {
				/* A %00 would cut the value short: treat it as absent. */
				free(v);
				return NULL;
			}
			return v;
		}
		p = amp ? amp + 1 : NULL;
	}
	return NULL;
}

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

/* Why the host refused the batch's envelopes: the first setter failure, or a generic reason. */
static const char *refusal(const struct prov_batch *b)
{
	if (b->refused)
		return b->refused;
	for (size_t i = 0; i < b->n && PARLEY_HOST_HAS(b->host, envelope_error); i++) {
		const char *e = b->host->envelope_error(b->envs[i]);
		if (e)
			return e;
	}
	return "the payload could not be turned into envelopes";
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
		batch_committed(b, 0, NULL, 0);
		return;
	}
	int rv = h->submit_ids(b->inst, b->envs, b->n, batch_committed, b);
	if (rv != 0) {
		char msg[400];
		snprintf(msg, sizeof(msg), "%s",
		         rv == PARLEY_EINVAL || rv == PARLEY_ETOOBIG
		                 ? refusal(b)
		                 : "the gateway cannot take messages right now: retry later");
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

int prov_set_json(const struct parley_host *h, parley_envelope *env, const char *field, cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	int rv = s ? h->envelope_set_json(env, field, s) : PARLEY_ENOMEM;
	free(s);
	cJSON_Delete(v);
	return rv;
}

int prov_set_fmt(const struct parley_host *h, parley_envelope *env, const char *field, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s)
		vsnprintf(s, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	if (!s)
		return PARLEY_ENOMEM;
	int rv = h->envelope_set_str(env, field, s);
	free(s);
	return rv;
}

int prov_set_from(const struct parley_host *h, parley_envelope *env, const char *field, const cJSON *obj,
                  const char *member)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, member));
	return v ? h->envelope_set_str(env, field, v) : 0;
}

/* 9999-12-31T23:59:59Z: the last second RFC 3339 can write with four digits. */
#define MAX_UNIX_SECONDS 253402300799.0

int prov_time_from_unix(const cJSON *v, double scale, char *out, size_t outlen)
{
	double t = 0;
	char *end = NULL;
	out[0] = '\0';
	if (cJSON_IsNumber(v)) {
		t = v->valuedouble;
	} else if (cJSON_IsString(v)) {
		t = strtod(v->valuestring, &end);
		if (end == v->valuestring || *end)
			return -1;
	} else {
		return -1;
	}
	t *= scale;
	/* Also false for NaN; the bound keeps the cast to time_t and gmtime_r defined. */
	if (!(t > 0 && t <= MAX_UNIX_SECONDS))
		return -1;
	time_t secs = (time_t)t;
	int ms = (int)((t - (double)secs) * 1000.0 + 0.5);
	if (ms >= 1000)
		ms = 999;
	struct tm tm;
	if (!gmtime_r(&secs, &tm))
		return -1;
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	return 0;
}

void prov_set_time(struct prov_batch *b, parley_envelope *env, const cJSON *obj, const char *name, double scale)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	char when[40];
	if (!v)
		return;
	if (prov_time_from_unix(v, scale, when, sizeof(when)) != 0) {
		prov_batch_refuse(b, "'%s' is not a Unix time between 1970 and 9999", name);
		return;
	}
	b->host->envelope_set_str(env, "sent_at", when);
}

/* n digits at s into *v; 0 when they are digits. */
static int digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

int prov_rfc3339_valid(const char *s)
{
	int y, mo, d, h, mi, se;
	if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) || s[13] != ':' ||
	    digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
		return 0;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return 0;
	const char *p = s + 19;
	if (*p == '.') {
		size_t n = strspn(p + 1, "0123456789");
		if (n == 0 || n > 9)
			return 0;
		p += 1 + n;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return 1;
	int oh, om;
	return (*p == '+' || *p == '-') && !digits(p + 1, 2, &oh) && p[3] == ':' && !digits(p + 4, 2, &om) &&
	       p[6] == '\0' && oh <= 23 && om <= 59;
}

int prov_parse_ll(const char *s, long long min, long long max, long long *out)
{
	if (!s)
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end || errno == ERANGE || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int prov_json_int(const cJSON *obj, const char *name, long long min, long long max, long long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (!cJSON_IsNumber(v))
		return -1;
	double d = v->valuedouble;
	/* The comparisons are false for NaN; the bounds keep the cast defined. */
	if (!(d >= (double)min && d <= (double)max) || d != (double)(long long)d)
		return -1;
	*out = (long long)d;
	return 0;
}
