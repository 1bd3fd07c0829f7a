/*
 * echo_channel.c: a minimal channel plugin to copy from.
 *
 *   cc $(pkg-config --cflags parley-plugin) -shared -fPIC echo_channel.c $(pkg-config --libs parley-plugin) -o echo.so
 *
 * (or CMakeLists.txt beside it: find_package(Parley)).  Put echo.so in a
 * directory named by `plugins.path` in the config (echo.yaml) and add
 *   channels: [{ name: my-echo, type: echo, config: { prefix: "you said: " } }]
 * POST /webhooks/my-echo with a text body: it becomes one inbound envelope,
 * answered 200 once committed (503 when not: the sender retries), 400 when
 * it is not UTF-8.  Outbound sends are logged and accepted.
 *
 * The webhook is answered through the helper library's prov_batch
 * (parley/provider.h): build envelopes, finish, and the library answers
 * after the commit.  A provider channel adds the signature check before and
 * the parsing in between.
 */
#include <parley/parley.h>
#include <parley/provider.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Per-instance state: no globals, so two channels of this type never share. */
struct echo {
	const struct parley_host *host;
	parley_instance *inst;
	const char *prefix;
};

static const struct parley_config_key config_map[] = {
        {"prefix", PARLEY_CFG_STRING, "", 0, "text put before each inbound body"},
        {NULL, 0, NULL, 0, NULL},
};

static void on_post(void *data, parley_http_request *req)
{
	struct echo *e = data;
	const struct parley_host *h = e->host;
	size_t len;
	const char *body = h->http_body(req, &len);
	struct prov_batch *b = prov_batch_new(h, e->inst, req, NULL);
	if (!b) {
		prov_respond_error(h, req, 503, "out of memory: retry later");
		return;
	}
	parley_envelope *env = prov_batch_envelope(b, "message");
	size_t plen = strlen(e->prefix);
	char *text = malloc(plen + len + 1);
	if (!text) {
		prov_batch_fail(b, 503, "out of memory: retry later");
		return;
	}
	memcpy(text, e->prefix, plen);
	memcpy(text + plen, body, len);
	text[plen + len] = '\0';
	if (memchr(body, '\0', len))
		prov_batch_refuse(b, "the body holds a NUL byte");
	else if (env && h->envelope_set_str(env, "from", "webhook:echo-user") == 0)
		/* A refusal (text that is not UTF-8) is remembered: prov_batch_finish answers 400 with the reason. */
		h->envelope_set_str(env, "text", text);
	free(text);
	prov_batch_finish(b);
}

static int create(const struct parley_host *host, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	(void)errmsg;
	struct echo *e = calloc(1, sizeof(*e));
	if (!e)
		return PARLEY_ENOMEM;
	e->host = host;
	e->inst = inst;
	e->prefix = host->config_str(inst, "prefix");
	*data = e;
	return 0;
}

static int start(void *data, char **errmsg)
{
	struct echo *e = data;
	(void)errmsg;
	return e->host->http_route(e->inst, "POST", "", on_post);
}

static void destroy(void *data)
{
	free(data);
}

static int send_msg(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct echo *e = data;
	e->host->log(e->inst, PARLEY_LOG_INFO, "would send to %s: %s", e->host->envelope_get_str(env, "to"),
	             e->host->envelope_get_str(env, "text"));
	res->outcome = PARLEY_SEND_OK;
	return 0;
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "echo",
        .version = "0.1.0",
        .description = "template: text bodies in, logged sends out",
        .config = config_map,
        .instance_create = create,
        .instance_start = start,
        .instance_destroy = destroy,
        .channel_send = send_msg,
};

PARLEY_PLUGIN_DEFINE(plugin)
