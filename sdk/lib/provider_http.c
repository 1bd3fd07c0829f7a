/* provider_http.c: outbound HTTP to providers (libcurl), and what an answer means for a send. */
#include <parley/provider.h>

#include "fetch_internal.h"

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

void prov_classify_code(const struct prov_http *r, const char *code, const char *text, int transient,
                        struct parley_send_result *res)
{
	prov_classify(r, code, text, res);
	if (transient && res->outcome == PARLEY_SEND_PERMANENT)
		res->outcome = PARLEY_SEND_RETRY;
}
