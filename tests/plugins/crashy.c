/*
 * crashy.c: a test channel that dereferences NULL on a message whose text
 * is "crash", as a buggy plugin would, to drive isolate: true
 * (tests/e2e/test_isolation.py).  Any other POST to /webhooks/<name> is a
 * message: the body is its text, X-Message-Id its external id; it is
 * answered 200 after its commit, 503 when the commit failed.
 */
#include <parley/parley.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct crashy {
	const struct parley_host *host;
	parley_instance *inst;
};

static const struct parley_config_key keys[] = {{NULL, 0, NULL, 0, NULL}};

static int create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **err)
{
	(void)pd;
	(void)err;
	struct crashy *c = calloc(1, sizeof(*c));
	c->host = h;
	c->inst = inst;
	*data = c;
	return 0;
}

static void committed(void *arg, int result)
{
	void **a = arg;
	const struct parley_host *h = a[0];
	parley_http_request *req = a[1];
	free(a);
	if (result == 0)
		h->http_respond(req, 200, "application/json", "{\"ok\":true}", 11);
	else
		h->http_respond(req, 503, "application/json", "{\"ok\":false}", 12);
}

static void on_post(void *data, parley_http_request *req)
{
	struct crashy *c = data;
	const struct parley_host *h = c->host;
	size_t len;
	const char *body = h->http_body(req, &len);
	const char *id = h->http_header(req, "X-Message-Id");
	if (len == 5 && memcmp(body, "crash", 5) == 0) {
#if defined(__SANITIZE_ADDRESS__)
		raise(SIGSEGV); /* under the sanitizers a NULL store is a report and an exit, not the signal */
#else
		volatile int *nowhere = NULL;
		*nowhere = 1; /* the bug this channel exists for */
#endif
	}
	char text[256];
	if (!id || len >= sizeof(text)) {
		h->http_respond(req, 400, "text/plain", "X-Message-Id and a short body, please", 37);
		return;
	}
	memcpy(text, body, len);
	text[len] = '\0';
	parley_envelope *env = h->envelope_new(c->inst, "message", "inbound");
	h->envelope_set_str(env, "external_id", id);
	h->envelope_set_str(env, "from", "test:crashy");
	h->envelope_set_str(env, "text", text);
	void **a = malloc(2 * sizeof(void *));
	a[0] = (void *)h;
	a[1] = req;
	if (h->submit(c->inst, &env, 1, committed, a) != 0) {
		free(a);
		h->envelope_free(env);
		h->http_respond(req, 503, "text/plain", "not submitted", 13);
	}
}

static int start(void *data, char **err)
{
	(void)err;
	struct crashy *c = data;
	return c->host->http_route(c->inst, "POST", "", on_post);
}

static void destroy(void *data)
{
	free(data);
}

static const struct parley_plugin desc = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "crashy",
        .version = "1.0.0",
        .description = "test channel: crashes on a message whose text is \"crash\"",
        .config = keys,
        .instance_create = create,
        .instance_start = start,
        .instance_destroy = destroy,
};

PARLEY_PLUGIN_DEFINE(desc)
