/* fake_host.c: the host table and the request checks of fake_host.h. */
#include "fake_host.h"

#include "config.h"
#include "crypto.h"
#include "envelope.h"
#include "payload.h"

#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "\n%s:%d: invariant broken: %s\n  ", file, line, cond);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void fuzz_known(const char *id, const char *file, int line, const char *cond, const char *fmt, ...)
{
	static char seen[16][32];
	const char *strict = getenv("PARLEY_FUZZ_STRICT");
	va_list ap;
	va_start(ap, fmt);
	if (strict && strcmp(strict, "1") == 0) {
		fprintf(stderr, "\n%s:%d: invariant broken (known finding %s): %s\n  ", file, line, id, cond);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		abort();
	}
	for (size_t i = 0; i < sizeof(seen) / sizeof(seen[0]); i++) {
		if (strcmp(seen[i], id) == 0)
			break;
		if (!seen[i][0]) {
			snprintf(seen[i], sizeof(seen[i]), "%s", id);
			fprintf(stderr,
			        "known finding %s (see docs/fuzzing.md; PARLEY_FUZZ_STRICT=1 fails on it): ", id);
			vfprintf(stderr, fmt, ap);
			fputc('\n', stderr);
			break;
		}
	}
	va_end(ap);
}

int fuzz_utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t more;
		unsigned cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			more = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			more = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			more = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (i + more >= n)
			return 0; /* truncated sequence */
		for (size_t k = 1; k <= more; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += more + 1;
	}
	return 1;
}

static int tree_utf8(const cJSON *v)
{
	for (; v; v = v->next) {
		if (v->string && !fuzz_utf8_valid(v->string, strlen(v->string)))
			return 0;
		if (cJSON_IsString(v) && !fuzz_utf8_valid(v->valuestring, strlen(v->valuestring)))
			return 0;
		if (v->child && !tree_utf8(v->child))
			return 0;
	}
	return 1;
}

int fuzz_json_utf8(const char *json)
{
	cJSON *j = cJSON_Parse(json);
	int ok = j && tree_utf8(j);
	cJSON_Delete(j);
	return ok;
}

uint32_t fuzz_hash(const uint8_t *data, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ data[i]) * 16777619u;
	return h;
}

/* ------------------------------------------------------- the instance */

struct parley_instance {
	char name[64];
	const struct parley_plugin *desc;
	const struct fake_kv *config, *settings;
	void *data;
};

struct route {
	char method[8], subpath[64];
	parley_http_cb cb;
};

/* What the request under way has done so far. */
struct parley_http_request {
	const char *method, *path, *query;
	const struct fake_kv *headers;
	const void *body;
	size_t len;
	int responses, status;
	char *answer;
	size_t answer_len;
	size_t envs_built, envs_sent;
	int submit_called, completing, committed, commit_result;
	int answered_before_completion;
};

/* The one channel under test and the request under way (single-threaded). */
static struct parley_instance channel;
static struct route routes[8];
static size_t n_routes;
static parley_http_request *current;
static long live_envelopes;

static const char *kv_find(const struct fake_kv *kv, const char *name)
{
	for (size_t i = 0; kv && kv[i].name; i++)
		if (strcmp(kv[i].name, name) == 0)
			return kv[i].value;
	return NULL;
}

/* The configured value, else the default the plugin's config map declares (as the real host does). */
static const char *scalar(parley_instance *inst, const char *key)
{
	const char *v = kv_find(inst->config, key);
	if (v)
		return v;
	for (const struct parley_config_key *k = inst->desc->config; k && k->name; k++)
		if (strcmp(k->name, key) == 0)
			return k->default_value;
	return NULL;
}

/* ------------------------------------------------------ the host table */

static const char *f_strerror(int err)
{
	return err == 0 ? "no error" : "error (fake host)";
}

static void f_log(parley_instance *inst, int level, const char *fmt, ...)
{
	/* Formatted and dropped: formatting still checks the arguments match the format. */
	char line[1024];
	va_list ap;
	(void)inst;
	(void)level;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
}

static const char *f_instance_name(parley_instance *inst)
{
	return inst->name;
}

static const char *f_config_str(parley_instance *inst, const char *key)
{
	return scalar(inst, key);
}

static int f_config_int(parley_instance *inst, const char *key, int64_t *out)
{
	char err[128];
	const char *s = scalar(inst, key);
	return !s ? PARLEY_ENOENT : cfg_parse_int(s, out, err) == 0 ? 0 : PARLEY_EINVAL;
}

static int f_config_bool(parley_instance *inst, const char *key, int *out)
{
	char err[128];
	const char *s = scalar(inst, key);
	return !s ? PARLEY_ENOENT : cfg_parse_bool(s, out, err) == 0 ? 0 : PARLEY_EINVAL;
}

static int f_config_size(parley_instance *inst, const char *key, uint64_t *out)
{
	char err[128];
	const char *s = scalar(inst, key);
	return !s ? PARLEY_ENOENT : cfg_parse_size(s, out, err) == 0 ? 0 : PARLEY_EINVAL;
}

static int f_config_duration_ms(parley_instance *inst, const char *key, int64_t *out)
{
	char err[128];
	const char *s = scalar(inst, key);
	return !s ? PARLEY_ENOENT : cfg_parse_duration_ms(s, out, err) == 0 ? 0 : PARLEY_EINVAL;
}

/* Lists and maps are given as JSON text in the fake config. */
static char *f_config_json(parley_instance *inst, const char *key)
{
	const char *s = kv_find(inst->config, key);
	return s ? strdup(s) : NULL;
}

static const char *f_setting(parley_instance *inst, const char *name)
{
	return kv_find(inst->settings, name);
}

static parley_envelope *f_envelope_new(parley_instance *inst, const char *kind, const char *direction)
{
	parley_envelope *env = envelope_create(kind, direction);
	if (!env)
		return NULL;
	envelope_set(env, "channel", inst->name);
	envelope_set(env, "channel_type", inst->desc->name);
	live_envelopes++;
	if (current)
		current->envs_built++;
	return env;
}

static void f_envelope_free(parley_envelope *env)
{
	if (!env)
		return;
	envelope_destroy(env);
	live_envelopes--;
}

/* The envelope functions are NULL-safe like the core's setters, so a plugin's missed check shows as a failed set. */
static int f_envelope_set_str(parley_envelope *env, const char *field, const char *value)
{
	return env ? envelope_set(env, field, value) : PARLEY_EINVAL;
}

static int f_envelope_set_json(parley_envelope *env, const char *field, const char *json)
{
	return env ? envelope_set_json_text(env, field, json) : PARLEY_EINVAL;
}

static const char *f_envelope_get_str(const parley_envelope *env, const char *field)
{
	return env ? envelope_get(env, field) : NULL;
}

static char *f_envelope_get_json(const parley_envelope *env, const char *field)
{
	return env ? envelope_get_json_text(env, field) : NULL;
}

static char *f_envelope_to_json(const parley_envelope *env)
{
	return env ? envelope_json(env) : NULL;
}

/* What a subscriber relies on in every envelope a channel submits. */
static void check_envelope(parley_envelope *env)
{
	char *json = envelope_json(env);
	FUZZ_ASSERT(json && fuzz_json_utf8(json), "an envelope is not UTF-8 JSON: %s", json ? json : "(null)");
	const char *dir = envelope_get(env, "direction");
	FUZZ_ASSERT(dir && strcmp(dir, "inbound") == 0, "a channel submitted a non-inbound envelope: %s", json);
	const char *ch = envelope_get(env, "channel"), *type = envelope_get(env, "channel_type");
	FUZZ_ASSERT(ch && strcmp(ch, channel.name) == 0 && type && strcmp(type, channel.desc->name) == 0,
	            "channel or channel_type was changed: %s", json);
	/* (channel, external_id) is what makes a provider's redelivery harmless. */
	const char *ext = envelope_get(env, "external_id");
	FUZZ_ASSERT(ext && ext[0], "an envelope without external_id cannot be deduplicated: %s", json);
	free(json);
}

/* submit() and submit_ids(): exactly one of done and ids_done is given. */
static int submit_any(parley_envelope **envs, size_t n, parley_submit_cb done, parley_submit_ids_cb ids_done, void *arg)
{
	char why[160];
	FUZZ_ASSERT(current, "submit() outside a request");
	FUZZ_ASSERT(current->responses == 0, "submit() after the request was answered");
	FUZZ_ASSERT(!current->submit_called, "submit() twice for one request");
	current->submit_called = 1;
	/* The real host's refusals, so a plugin's handling of them runs too. */
	if (!envs || n == 0 || (!done && !ids_done))
		return PARLEY_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (envelope_error(envs[i]) || envelope_validate(envs[i], why) != 0)
			return PARLEY_EINVAL;
	char(*stored)[32] = calloc(n, sizeof(*stored));
	const char **ids = calloc(n, sizeof(*ids));
	FUZZ_ASSERT(stored && ids, "out of memory");
	for (size_t i = 0; i < n; i++) {
		check_envelope(envs[i]);
		snprintf(stored[i], sizeof(stored[i]), "%s", envelope_get(envs[i], "id"));
		ids[i] = stored[i];
		f_envelope_free(envs[i]);
	}
	current->envs_sent += n;
	/* "Completes at once": on the caller's thread, before submit returns, which the contract allows. */
	current->committed = current->commit_result == 0;
	current->completing = 1;
	if (done)
		done(arg, current->commit_result);
	else
		ids_done(arg, current->commit_result, current->commit_result == 0 ? ids : NULL, n);
	free(ids);
	free(stored);
	return 0;
}

static int f_submit(parley_instance *inst, parley_envelope **envs, size_t n, parley_submit_cb done, void *arg)
{
	(void)inst;
	return submit_any(envs, n, done, NULL, arg);
}

static int f_submit_ids(parley_instance *inst, parley_envelope **envs, size_t n, parley_submit_ids_cb done, void *arg)
{
	(void)inst;
	return submit_any(envs, n, NULL, done, arg);
}

/* The real host's payload checks (core/payload.c), as the gateway runs them. */
static int f_json_check(const char *text, size_t len, char *why, size_t why_len)
{
	return payload_json_check(text, len, why, why_len) == 0 ? 0 : PARLEY_EINVAL;
}

static int f_text_check(const char *name, const char *s, size_t len, char *why, size_t why_len)
{
	return payload_text_check(name, s, len, why, why_len) == 0 ? 0 : PARLEY_EINVAL;
}

static int f_http_route(parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb)
{
	(void)inst;
	FUZZ_ASSERT(n_routes < sizeof(routes) / sizeof(routes[0]), "too many routes");
	struct route *r = &routes[n_routes++];
	snprintf(r->method, sizeof(r->method), "%s", method);
	snprintf(r->subpath, sizeof(r->subpath), "%s", subpath ? subpath : "");
	r->cb = cb;
	return 0;
}

static const char *f_http_method(parley_http_request *req)
{
	return req->method;
}

static const char *f_http_path(parley_http_request *req)
{
	return req->path;
}

static const char *f_http_query(parley_http_request *req)
{
	return req->query;
}

/* Header names are case-insensitive, as in HTTP. */
static const char *f_http_header(parley_http_request *req, const char *name)
{
	for (size_t i = 0; req->headers && req->headers[i].name; i++)
		if (strcasecmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

static const void *f_http_body(parley_http_request *req, size_t *len)
{
	*len = req->len;
	return req->body;
}

/* The statuses DESIGN.md documents for webhooks, and 403 of Meta's handshake. */
static int status_documented(int s)
{
	return s == 200 || s == 202 || s == 204 || s == 400 || s == 401 || s == 403 || s == 404 || s == 413 || s == 503;
}

static void f_http_respond(parley_http_request *req, int status, const char *content_type, const char *body, size_t len)
{
	FUZZ_ASSERT(req == current, "http_respond() for a request not under way");
	FUZZ_ASSERT(req->responses == 0, "a request was answered twice (first %d, then %d)", req->status, status);
	FUZZ_ASSERT(status_documented(status), "status %d is not one DESIGN.md documents", status);
	FUZZ_ASSERT(body || len == 0, "a NULL body of length %zu", len);
	req->responses++;
	req->status = status;
	req->answered_before_completion = req->submit_called && !req->completing;
	req->answer = malloc(len + 1);
	memcpy(req->answer, body ? body : "", len);
	req->answer[len] = '\0';
	req->answer_len = len;
	if (status >= 400) {
		/* "400 unparseable or invalid payload (reason in the body)": the provider's log shows it. */
		FUZZ_ASSERT(len > 0, "error %d with an empty body", status);
		if (content_type && strncmp(content_type, "application/json", 16) == 0)
			FUZZ_ASSERT(fuzz_json_utf8(req->answer), "error answer is not UTF-8 JSON: %s", req->answer);
	}
}

static int f_timer_start(parley_instance *inst, int64_t delay_ms, int64_t period_ms, parley_timer_cb cb, void *arg,
                         parley_timer **out)
{
	(void)inst, (void)delay_ms, (void)period_ms, (void)cb, (void)arg;
	*out = NULL;
	return PARLEY_ENOTSUP;
}

static void f_timer_stop(parley_timer *t)
{
	(void)t;
}

static int f_kv_get(parley_instance *inst, const char *key, char **val, size_t *len)
{
	(void)inst, (void)key;
	*val = NULL;
	*len = 0;
	return PARLEY_ENOENT;
}

static int f_kv_set(parley_instance *inst, const char *key, const void *val, size_t len)
{
	(void)inst, (void)key, (void)val, (void)len;
	return 0;
}

static void f_metric_add(parley_instance *inst, const char *name, int64_t delta)
{
	(void)inst, (void)name, (void)delta;
}

static int f_attachment_put(parley_instance *inst, const char *message_id, size_t index, const void *data, size_t len,
                            const char *content_type, char *sha256_hex)
{
	(void)inst, (void)message_id, (void)index, (void)data, (void)len, (void)content_type, (void)sha256_hex;
	return PARLEY_ENOTSUP;
}

static void f_publish(parley_instance *inst, const char *topic, const char *json)
{
	(void)inst;
	FUZZ_ASSERT(topic && json && fuzz_json_utf8(json), "published an event that is not UTF-8 JSON");
}

static int f_store_query(parley_instance *inst, const char *op, const char *request_json, char **reply)
{
	(void)inst, (void)op, (void)request_json;
	*reply = NULL;
	return PARLEY_ENOTSUP;
}

static uint64_t f_epoch(parley_instance *inst)
{
	(void)inst;
	return 0;
}

/*
 * The table declares itself only as large as the last function it fills:
 * a plugin testing PARLEY_HOST_HAS() for a later function then sees an
 * older host, never a NULL slot.  A function appended to struct
 * parley_host gets its fake below, and FAKE_HOST_LAST names it.
 */
#define FAKE_HOST_LAST submit_ids
static const struct parley_host fake_host = {
        .struct_size = offsetof(struct parley_host, FAKE_HOST_LAST) + sizeof(((struct parley_host *)0)->FAKE_HOST_LAST),
        .abi = (uint32_t)PARLEY_ABI_MAJOR << 16 | PARLEY_ABI_MINOR,
        .strerror = f_strerror,
        .log = f_log,
        .instance_name = f_instance_name,
        .config_str = f_config_str,
        .config_int = f_config_int,
        .config_bool = f_config_bool,
        .config_size = f_config_size,
        .config_duration_ms = f_config_duration_ms,
        .config_json = f_config_json,
        .setting = f_setting,
        .envelope_new = f_envelope_new,
        .envelope_free = f_envelope_free,
        .envelope_set_str = f_envelope_set_str,
        .envelope_set_json = f_envelope_set_json,
        .envelope_get_str = f_envelope_get_str,
        .envelope_get_json = f_envelope_get_json,
        .envelope_to_json = f_envelope_to_json,
        .submit = f_submit,
        .http_route = f_http_route,
        .http_method = f_http_method,
        .http_path = f_http_path,
        .http_query = f_http_query,
        .http_header = f_http_header,
        .http_body = f_http_body,
        .http_respond = f_http_respond,
        .timer_start = f_timer_start,
        .timer_stop = f_timer_stop,
        .kv_get = f_kv_get,
        .kv_set = f_kv_set,
        .metric_add = f_metric_add,
        .hmac_sha256 = crypto_hmac_sha256,
        .hmac_sha1 = crypto_hmac_sha1,
        .ct_equal = crypto_ct_equal,
        .hex_encode = crypto_hex,
        .attachment_put = f_attachment_put,
        .publish = f_publish,
        .store_query = f_store_query,
        .new_id = ulid_new,
        .epoch = f_epoch,
        .envelope_error = envelope_error,
        .json_check = f_json_check,
        .text_check = f_text_check,
        .submit_ids = f_submit_ids,
};

/* ---------------------------------------------------------- lifecycle */

void fake_channel_open(const char *file, const char *name, const struct fake_kv *config, const struct fake_kv *settings)
{
	char path[1024], *err = NULL;
	const char *dir = getenv("PARLEY_FUZZ_PLUGIN_DIR");
	snprintf(path, sizeof(path), "%s/%s", dir ? dir : PARLEY_FUZZ_PLUGIN_DIR, file);
	void *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	FUZZ_ASSERT(so, "cannot load %s: %s", path, dlerror());
	parley_plugin_entry_fn entry = (parley_plugin_entry_fn)dlsym(so, PARLEY_PLUGIN_ENTRY_SYMBOL);
	FUZZ_ASSERT(entry, "%s has no %s", path, PARLEY_PLUGIN_ENTRY_SYMBOL);
	const struct parley_plugin *desc = entry(fake_host.abi);
	FUZZ_ASSERT(desc && desc->kind == PARLEY_KIND_CHANNEL, "%s is not a channel plugin", path);

	snprintf(channel.name, sizeof(channel.name), "%s", name);
	channel.desc = desc;
	channel.config = config;
	channel.settings = settings;
	void *plugin_data = NULL;
	if (desc->init)
		FUZZ_ASSERT(desc->init(&fake_host, &plugin_data, &err) == 0, "init: %s", err ? err : "?");
	FUZZ_ASSERT(desc->instance_create(&fake_host, &channel, plugin_data, &channel.data, &err) == 0,
	            "instance_create: %s", err ? err : "?");
	FUZZ_ASSERT(desc->instance_start(channel.data, &err) == 0, "instance_start: %s", err ? err : "?");
	/*
	 * Media are fetched after commit by a thread per instance, over the
	 * network: not the parser's business, and a queue that a fuzzer would
	 * fill faster than any fetch ends.  Stopping the instance ends that
	 * thread and leaves the media queue unset, so batches record no media
	 * jobs; the routes registered by start stay callable, because the
	 * channels' stop() only ends their threads.
	 */
	if (desc->instance_stop)
		desc->instance_stop(channel.data);
	FUZZ_ASSERT(n_routes > 0, "%s registered no route", path);
}

const char *fake_channel_path(const char *subpath, char *buf, size_t len)
{
	snprintf(buf, len, "/webhooks/%s%s", channel.name, subpath);
	return buf;
}

void fake_channel_request(const char *method, const char *subpath, const void *body, size_t len,
                          const struct fake_kv *headers, const char *query, int commit_result, int signed_ok,
                          struct fake_outcome *out)
{
	const struct route *r = NULL;
	for (size_t i = 0; i < n_routes && !r; i++)
		if (strcmp(routes[i].method, method) == 0 && strcmp(routes[i].subpath, subpath) == 0)
			r = &routes[i];
	FUZZ_ASSERT(r, "the channel registered no %s route '%s'", method, subpath);

	char path[256];
	parley_http_request req = {
	        .method = method,
	        .path = fake_channel_path(subpath, path, sizeof(path)),
	        .query = query ? query : "",
	        .headers = headers,
	        .body = body,
	        .len = len,
	        .commit_result = commit_result,
	};
	current = &req;
	r->cb(channel.data, &req);
	current = NULL;

	/* Every submit completes at once here, so the answer must have been given by now. */
	FUZZ_ASSERT(req.responses == 1, "the request was answered %d times", req.responses);
	FUZZ_ASSERT(live_envelopes == 0, "%ld envelopes were neither submitted nor freed", live_envelopes);
	int ok = req.status >= 200 && req.status < 300;
	if (ok && req.envs_built > 0)
		FUZZ_ASSERT(req.committed && !req.answered_before_completion,
		            "answered %d with %zu envelopes built but not committed: the provider will not retry",
		            req.status, req.envs_built);
	if (req.completing && !req.committed)
		FUZZ_ASSERT(!ok, "answered %d though the commit failed", req.status);
	if (!signed_ok)
		FUZZ_ASSERT(req.status == 401 && !req.submit_called,
		            "an unsigned request got %d (submitted: %d), not 401", req.status, req.submit_called);
	if (out) {
		static char *last;
		free(last);
		last = req.answer;
		*out = (struct fake_outcome){req.status,    req.envs_built, req.envs_sent, req.submit_called,
		                             req.committed, req.answer,     req.answer_len};
	} else {
		free(req.answer);
	}
}
