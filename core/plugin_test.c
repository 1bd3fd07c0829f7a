/*
 * plugin_test.c: `parley test`, the fixture runner (docs/plugin-testing.md).
 *
 * Each fixture is one JSON file: the channel's config, then either an HTTP
 * request the provider would send (with the status, body and envelopes the
 * plugin must answer and submit) or an envelope to send (with the requests
 * the provider must get and the outcome its scripted answers lead to).  A
 * fixture gets a fresh instance of the plugin; what it produced is compared
 * with what the fixture expects, exactly, and every difference is printed
 * as FILE: PATH: expected X, got Y.  --update writes what was produced into
 * the fixture's "expect" for review instead.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "plugin_test.h"
#include "config.h"
#include "envelope.h"
#include "gateway.h"
#include "instance.h"
#include "loader.h"
#include "log.h"
#include "util.h"

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define ANSWER_TIMEOUT_MS 10000
#define SHOWN_MAX         160

struct run {
	struct plugin_registry reg;
	const struct plugin_entry *e;
	struct ptest_host *host;
	struct ptest_provider *provider;
	int update;
	int failed, passed;
};

/* One fixture being run: its file, its JSON, and its differences so far. */
struct fixture {
	const char *path;
	cJSON *doc;
	int diffs;
};

static void problem(struct fixture *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct fixture *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stdout, "%s: ", f->path);
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	f->diffs++;
}

/* ----------------------------------------------------------- diffs */

/* v as short JSON text for a message (malloc'd). */
static char *shown(const cJSON *v)
{
	if (!v)
		return strdup("(absent)");
	char *s = cJSON_PrintUnformatted(v);
	if (s && strlen(s) > SHOWN_MAX)
		memcpy(s + SHOWN_MAX - 3, "...", 4);
	return s ? s : strdup("?");
}

static void differs(struct fixture *f, const char *path, const cJSON *want, const cJSON *got)
{
	char *w = shown(want), *g = shown(got);
	problem(f, "%s: expected %s, got %s", path, w, g);
	free(w);
	free(g);
}

/* Report every difference between want and got under path. */
static void diff(struct fixture *f, const char *path, const cJSON *want, const cJSON *got)
{
	if (cJSON_IsObject(want) && cJSON_IsObject(got)) {
		const cJSON *item;
		cJSON_ArrayForEach(item, want)
		{
			char *sub = str_printf("%s.%s", path, item->string);
			diff(f, sub, item, cJSON_GetObjectItemCaseSensitive(got, item->string));
			free(sub);
		}
		cJSON_ArrayForEach(item, got)
		{
			if (!cJSON_GetObjectItemCaseSensitive(want, item->string)) {
				char *sub = str_printf("%s.%s", path, item->string);
				differs(f, sub, NULL, item);
				free(sub);
			}
		}
		return;
	}
	if (cJSON_IsArray(want) && cJSON_IsArray(got)) {
		int nw = cJSON_GetArraySize(want), ng = cJSON_GetArraySize(got);
		for (int i = 0; i < nw || i < ng; i++) {
			char *sub = str_printf("%s[%d]", path, i);
			diff(f, sub, cJSON_GetArrayItem(want, i), cJSON_GetArrayItem(got, i));
			free(sub);
		}
		return;
	}
	if (!cJSON_Compare(want, got, 1))
		differs(f, path, want, got);
}

/* ------------------------------------------------------- the inputs */

static char *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return NULL;
	struct strbuf sb;
	sb_init(&sb);
	char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
		sb_add(&sb, buf, n);
	fclose(fp);
	*len = sb.len;
	if (!sb.buf)
		return strdup("");
	return sb_detach(&sb);
}

/*
 * The request body: "body" as text (a string) or as compact JSON (anything
 * else), or the bytes of "body_file" (relative to the fixture).  malloc'd.
 */
static char *request_body(struct fixture *f, const cJSON *req, size_t *len)
{
	const cJSON *file = cJSON_GetObjectItemCaseSensitive(req, "body_file");
	const cJSON *body = cJSON_GetObjectItemCaseSensitive(req, "body");
	*len = 0;
	if (cJSON_IsString(file)) {
		char *dir = path_dirname(f->path);
		char *p = path_resolve(dir, file->valuestring);
		char *text = read_file(p, len);
		if (!text)
			problem(f, "request.body_file: cannot read %s", p);
		/* Files end with a newline; the requests they hold do not. */
		else if (*len && text[*len - 1] == '\n')
			text[--*len] = '\0';
		free(dir);
		free(p);
		return text;
	}
	char *text = !body                  ? strdup("")
	             : cJSON_IsString(body) ? strdup(body->valuestring)
	                                    : cJSON_PrintUnformatted(body);
	*len = text ? strlen(text) : 0;
	return text;
}

/* A body as a fixture shows it: JSON when it is JSON, else text. */
static cJSON *body_value(const char *text, size_t len)
{
	cJSON *j = len ? cJSON_ParseWithLength(text, len) : NULL;
	if (j && (cJSON_IsObject(j) || cJSON_IsArray(j)))
		return j;
	cJSON_Delete(j);
	char *s = strndup(text ? text : "", len);
	cJSON *v = cJSON_CreateString(s ? s : "");
	free(s);
	return v;
}

/* ------------------------------------------------------- the cases */

/*
 * expect[name] compared with got (consumed), or replaced by it with --update.
 * Only the answer's body may be left out of a fixture (a plugin whose wording
 * is not the point); a missing status, envelopes, requests or outcome fails.
 */
static void expect(struct run *r, struct fixture *f, const char *name, cJSON *got)
{
	cJSON *ex = cJSON_GetObjectItemCaseSensitive(f->doc, "expect");
	if (!ex)
		ex = cJSON_AddObjectToObject(f->doc, "expect");
	if (r->update) {
		cJSON_DeleteItemFromObjectCaseSensitive(ex, name);
		cJSON_AddItemToObject(ex, name, got);
		return;
	}
	const cJSON *want = cJSON_GetObjectItemCaseSensitive(ex, name);
	if (!want && strcmp(name, "body") != 0) {
		problem(f, "expect.%s is missing: write it (parley test --update fills it in for review)", name);
	} else if (want) {
		char *path = str_printf("expect.%s", name);
		diff(f, path, want, got);
		free(path);
	}
	cJSON_Delete(got);
}

static void run_request(struct run *r, struct fixture *f, parley_instance *inst, const cJSON *req)
{
	const char *method = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "method"));
	const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "path"));
	const char *query = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "query"));
	char *dflt = str_printf("/webhooks/%s", inst->name);
	size_t len;
	char *body = request_body(f, req, &len);
	cJSON *headers = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(req, "headers"), 1);
	if (!cJSON_IsObject(headers)) {
		cJSON_Delete(headers);
		headers = cJSON_CreateObject();
	}
	struct ptest_answer a;
	char why[512];
	struct ptest_signed sig = {
	        .path = path ? path : dflt, .query = query, .body = body, .len = len, .now = time_now_ms() / 1000};
	if (body && ptest_sign(cJSON_GetObjectItemCaseSensitive(req, "sign"), headers, &sig, why, sizeof(why)) != 0) {
		problem(f, "request.%s", why);
	} else if (body && ptest_host_request(r->host, method ? method : "POST", path ? path : dflt, query, headers,
	                                      body, len, ANSWER_TIMEOUT_MS, &a, why, sizeof(why)) != 0) {
		problem(f, "request: %s", why);
	} else if (body) {
		if (a.status == 0)
			problem(f, "the plugin did not answer the request within %d s", ANSWER_TIMEOUT_MS / 1000);
		expect(r, f, "status", cJSON_CreateNumber(a.status));
		expect(r, f, "body", body_value(a.body, a.len));
		expect(r, f, "envelopes", ptest_host_envelopes(r->host));
		ptest_answer_free(&a);
	}
	cJSON_Delete(headers);
	free(body);
	free(dflt);
}

/* The request as the fixture expects it: headers only those it names (or Content-Type), body as body_value. */
static cJSON *request_view(const cJSON *got, const cJSON *want)
{
	cJSON *v = cJSON_CreateObject();
	cJSON_AddItemToObject(v, "method", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(got, "method"), 1));
	cJSON_AddItemToObject(v, "path", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(got, "path"), 1));
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(got, "query");
	if (q)
		cJSON_AddItemToObject(v, "query", cJSON_Duplicate(q, 1));
	const cJSON *have = cJSON_GetObjectItemCaseSensitive(got, "headers");
	const cJSON *named = cJSON_GetObjectItemCaseSensitive(want, "headers");
	cJSON *hv = cJSON_AddObjectToObject(v, "headers");
	const cJSON *h;
	cJSON_ArrayForEach(h, have)
	{
		/* The headers the fixture names (any case), or Content-Type when it names none. */
		const cJSON *name = NULL;
		if (cJSON_IsObject(named)) {
			const cJSON *n;
			cJSON_ArrayForEach(n, named)
			{
				if (strcasecmp(n->string, h->string) == 0)
					name = n;
			}
		}
		if (name)
			cJSON_AddStringToObject(hv, name->string, h->valuestring);
		else if (!cJSON_IsObject(named) && strcasecmp(h->string, "Content-Type") == 0)
			cJSON_AddStringToObject(hv, "Content-Type", h->valuestring);
	}
	const char *body = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(got, "body"));
	cJSON_AddItemToObject(v, "body", body_value(body, body ? strlen(body) : 0));
	return v;
}

static const char *outcome_name(int outcome)
{
	switch (outcome) {
	case PARLEY_SEND_OK:
		return "sent";
	case PARLEY_SEND_RETRY:
		return "retry";
	case PARLEY_SEND_PERMANENT:
		return "dead_letter";
	default:
		return "unknown";
	}
}

static void run_send(struct run *r, struct fixture *f, parley_instance *inst, const cJSON *send)
{
	const struct parley_plugin *d = inst->plugin->desc;
	if (!d->channel_send) {
		problem(f, "send: the channel type %s receives only (no channel_send)", d->name);
		return;
	}
	parley_envelope *env = ptest_host_outbound(r->host);
	char why[320];
	const cJSON *item;
	cJSON_ArrayForEach(item, send)
	{
		if (envelope_check_json(item->string, item, why, sizeof(why)) != 0) {
			problem(f, "send.%s: %s", item->string, why);
			envelope_destroy(env);
			return;
		}
		cJSON_DeleteItemFromObjectCaseSensitive(env->obj, item->string);
		cJSON_AddItemToObject(env->obj, item->string, cJSON_Duplicate(item, 1));
	}
	struct parley_send_result res;
	memset(&res, 0, sizeof(res));
	res.struct_size = sizeof(res);
	res.outcome = PARLEY_SEND_RETRY; /* as the outbox: a send that says nothing is tried again */
	d->channel_send(inst->data, env, &res);
	envelope_destroy(env);
	res.provider_id[sizeof(res.provider_id) - 1] = '\0';
	res.error_code[sizeof(res.error_code) - 1] = '\0';
	res.error_text[sizeof(res.error_text) - 1] = '\0';

	cJSON *got = ptest_provider_requests(r->provider);
	const cJSON *ex =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(f->doc, "expect"), "requests");
	cJSON *views = cJSON_CreateArray();
	int i = 0;
	cJSON_ArrayForEach(item, got)
	{
		cJSON_AddItemToArray(views, request_view(item, cJSON_GetArrayItem(ex, i++)));
	}
	cJSON_Delete(got);
	expect(r, f, "requests", views);

	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "result", outcome_name(res.outcome));
	if (res.provider_id[0])
		cJSON_AddStringToObject(o, "provider_id", res.provider_id);
	if (res.error_code[0])
		cJSON_AddStringToObject(o, "error_code", res.error_code);
	if (res.error_text[0])
		cJSON_AddStringToObject(o, "error_text", res.error_text);
	if (res.retry_after_ms)
		cJSON_AddNumberToObject(o, "retry_after_ms", (double)res.retry_after_ms);
	expect(r, f, "outcome", o);
}

/* The fixture's config as the config tree a gateway would hand the instance; NULL after reporting. */
static struct cfg_node *fixture_config(struct run *r, struct fixture *f)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(f->doc, "config");
	char *text = c ? cJSON_PrintUnformatted(c) : strdup("{}");
	struct cfg_errors errs = {0};
	/* JSON is YAML: the same parser, ${ENV} substitution (${PROVIDER_URL}) and checks as `parley check`. */
	struct cfg_node *n = cfg_parse(f->path, text, strlen(text), &errs);
	free(text);
	if (n)
		loader_check_config(r->e, n, n, f->path, "config", &errs);
	if (n && !errs.n)
		instance_check_config(f->path, r->e, n, n, "config", &errs);
	for (size_t i = 0; i < errs.n; i++)
		problem(f, "config: %s", errs.msgs[i]);
	if (errs.n) {
		cfg_node_free(n);
		n = NULL;
	}
	cfg_errors_free(&errs);
	return n;
}

static int submit_result(struct fixture *f)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f->doc, "submit_result"));
	if (!s || strcmp(s, "ok") == 0)
		return 0;
	if (strcmp(s, "io_error") == 0)
		return PARLEY_EIO;
	if (strcmp(s, "closed") == 0)
		return PARLEY_ECLOSED;
	problem(f, "submit_result: '%s' is not ok, io_error or closed", s);
	return 0;
}

/* Create and start a fresh instance, run the fixture's case, stop and destroy it. */
static void run_case(struct run *r, struct fixture *f)
{
	const cJSON *req = cJSON_GetObjectItemCaseSensitive(f->doc, "request");
	const cJSON *send = cJSON_GetObjectItemCaseSensitive(f->doc, "send");
	if (!cJSON_IsObject(req) == !cJSON_IsObject(send)) {
		problem(f, "a fixture has either \"request\" (an HTTP request) or \"send\" (an envelope), as objects");
		return;
	}
	struct cfg_node *config = fixture_config(r, f);
	if (!config)
		return;
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f->doc, "channel"));
	parley_instance *inst = instance_new(NULL, r->e, name ? name : "test", config, config);
	const struct parley_plugin *d = r->e->desc;
	ptest_provider_script(r->provider, cJSON_GetObjectItemCaseSensitive(f->doc, "provider"));
	ptest_host_begin(r->host, inst, submit_result(f));
	char *err = NULL;
	if (loader_init_plugin(&r->reg, r->e, ptest_host_table(), &err) != 0) {
		problem(f, "the plugin failed to initialize: %s", err ? err : "no reason given");
	} else if (d->instance_create(ptest_host_table(), inst, r->e->plugin_data, &inst->data, &err) != 0) {
		problem(f, "instance_create failed: %s", err ? err : "no reason given");
	} else {
		inst->created = 1;
		if (d->instance_start && d->instance_start(inst->data, &err) != 0) {
			problem(f, "instance_start failed: %s", err ? err : "no reason given");
		} else {
			inst->started = 1;
			if (req)
				run_request(r, f, inst, req);
			else
				run_send(r, f, inst, send);
		}
	}
	free(err);
	instance_free(inst);
	ptest_host_end(r->host);
	cfg_node_free(config);
}

/* v as a fixture shows it: two spaces per level, a value that fits in a short line on that line. */
static void pretty(struct strbuf *sb, const cJSON *v, int depth)
{
	char *flat = cJSON_PrintUnformatted(v);
	int composite = cJSON_IsObject(v) || cJSON_IsArray(v);
	if (!composite || !v->child || (flat && strlen(flat) + (size_t)depth * 2 <= 72 && depth > 0)) {
		sb_adds(sb, flat ? flat : "null");
		free(flat);
		return;
	}
	free(flat);
	int object = cJSON_IsObject(v);
	sb_adds(sb, object ? "{\n" : "[\n");
	for (const cJSON *item = v->child; item; item = item->next) {
		sb_printf(sb, "%*s", (depth + 1) * 2, "");
		if (object) {
			cJSON *key = cJSON_CreateString(item->string);
			char *k = cJSON_PrintUnformatted(key);
			sb_printf(sb, "%s: ", k ? k : "\"\"");
			free(k);
			cJSON_Delete(key);
		}
		pretty(sb, item, depth + 1);
		sb_adds(sb, item->next ? ",\n" : "\n");
	}
	sb_printf(sb, "%*s%s", depth * 2, "", object ? "}" : "]");
}

static int write_fixture(const char *path, const cJSON *doc)
{
	struct strbuf sb;
	sb_init(&sb);
	pretty(&sb, doc, 0);
	sb_adds(&sb, "\n");
	char *tmp = str_printf("%s.tmp", path);
	FILE *fp = fopen(tmp, "wb");
	int rv = -1;
	if (fp) {
		int ok = fwrite(sb.buf, 1, sb.len, fp) == sb.len;
		if (fclose(fp) == 0 && ok)
			rv = rename(tmp, path);
		if (rv != 0)
			remove(tmp);
	}
	free(tmp);
	sb_free(&sb);
	return rv;
}

static void run_fixture(struct run *r, const char *path)
{
	struct fixture f = {.path = path};
	size_t len;
	char *text = read_file(path, &len);
	int readable = text != NULL;
	f.doc = text ? cJSON_ParseWithLength(text, len) : NULL;
	free(text);
	if (!cJSON_IsObject(f.doc))
		problem(&f, "%s", readable ? "not a JSON object (see docs/plugin-testing.md)" : "cannot be read");
	else
		run_case(r, &f);
	if (r->update && f.doc && !f.diffs) {
		if (write_fixture(path, f.doc) != 0)
			problem(&f, "cannot be written");
		else
			printf("updated %s\n", path);
	}
	const char *what = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f.doc, "description"));
	if (f.diffs) {
		printf("FAIL %s%s%s\n", path, what ? ": " : "", what ? what : "");
		r->failed++;
	} else {
		if (!r->update)
			printf("ok   %s%s%s\n", path, what ? ": " : "", what ? what : "");
		r->passed++;
	}
	cJSON_Delete(f.doc);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A fixture file, or every *.json of a directory in name order. */
static void run_path(struct run *r, const char *path)
{
	DIR *dir = opendir(path);
	if (!dir) {
		run_fixture(r, path);
		return;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(dir))) {
		size_t l = strlen(de->d_name);
		if (l > 5 && strcmp(de->d_name + l - 5, ".json") == 0) {
			char **grown = realloc(names, (n + 1) * sizeof(*names));
			if (!grown)
				break;
			names = grown;
			size_t pl = strlen(path);
			names[n++] = str_printf("%.*s/%s", (int)(pl > 1 && path[pl - 1] == '/' ? pl - 1 : pl), path,
			                        de->d_name);
		}
	}
	closedir(dir);
	if (n) {
		qsort(names, n, sizeof(*names), by_name);
	} else {
		printf("FAIL %s: no *.json fixtures in this directory\n", path);
		r->failed++;
	}
	for (size_t i = 0; i < n; i++) {
		run_fixture(r, names[i]);
		free(names[i]);
	}
	free(names);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static const char usage[] = "usage: parley test [--update] [-v] PLUGIN.so FIXTURE.json|DIR...\n\n"
                            "Runs one channel plugin in-process against a fake host, from fixture files:\n"
                            "an HTTP request with the status, body and envelopes expected, or an envelope\n"
                            "to send with the provider requests and outcome expected (a local HTTP server\n"
                            "plays the provider at ${PROVIDER_URL}).  Prints FILE: PATH: expected X, got Y\n"
                            "for every difference; exits 1 when a fixture fails.  --update writes what the\n"
                            "plugin did into each fixture's \"expect\" instead, for review.  -v shows the\n"
                            "plugin's info logs.  See docs/plugin-testing.md.\n";

int plugin_test_main(int argc, char **argv)
{
	struct run r = {0};
	const char *so = NULL;
	int first = 0, verbose = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--update") == 0) {
			r.update = 1;
		} else if (strcmp(argv[i], "-v") == 0) {
			verbose = 1;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			return 0;
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "parley test: unknown option '%s'\n\n%s", argv[i], usage);
			return 2;
		} else if (!so) {
			so = argv[i];
		} else if (!first) {
			first = i;
		}
	}
	if (!so || !first) {
		fputs(usage, stderr);
		return 2;
	}
	log_set_level(verbose ? PARLEY_LOG_DEBUG : PARLEY_LOG_WARN);
	if (loader_open(&r.reg, so) != 0) {
		fprintf(stderr, "parley test: %s was refused: %s\n", so,
		        r.reg.n_refused ? r.reg.refused[0].reason : "it cannot be loaded");
		loader_free(&r.reg);
		return 2;
	}
	r.e = &r.reg.items[0];
	if (r.e->desc->kind != PARLEY_KIND_CHANNEL) {
		fprintf(stderr, "parley test: %s is a %s plugin; parley test runs channel plugins\n", so,
		        loader_kind_name(r.e->desc->kind));
		loader_free(&r.reg);
		return 2;
	}
	char why[160];
	char dir[] = "/tmp/parley-test-XXXXXX";
	r.provider = ptest_provider_start(why, sizeof(why));
	if (!r.provider || !mkdtemp(dir) || !(r.host = ptest_host_new(dir))) {
		fprintf(stderr, "parley test: %s\n", r.provider ? "cannot make a data directory" : why);
		ptest_provider_stop(r.provider);
		loader_free(&r.reg);
		return 2;
	}
	setenv("PROVIDER_URL", ptest_provider_url(r.provider), 1);
	for (int i = first; i < argc; i++)
		if (argv[i][0] != '-')
			run_path(&r, argv[i]);
	ptest_host_free(r.host);
	ptest_provider_stop(r.provider);
	loader_free(&r.reg);
	if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "parley test: could not remove %s\n", dir);
	printf("%d fixture%s, %d failed%s\n", r.passed + r.failed, r.passed + r.failed == 1 ? "" : "s", r.failed,
	       r.update ? " (the passing ones were updated)" : "");
	return r.failed ? 1 : 0;
}
