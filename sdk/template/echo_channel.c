/*
 * echo_channel.c: a minimal channel plugin to copy from.
 *
 *   cc -shared -fPIC -fvisibility=hidden -I/usr/local/include echo_channel.c -o echo.so
 *
 * Put echo.so in a directory named by `plugins.path` in the config and add
 *   channels: [{ name: my-echo, type: echo, config: { prefix: "you said: " } }]
 * POST /webhooks/my-echo with a text body: it becomes one inbound envelope,
 * answered 200 once committed.  Outbound sends are logged and accepted.
 */
#include <parley/parley.h>

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

struct pending {
	const struct parley_host *host;
	parley_http_request *req;
};

static void done(void *arg, int result)
{
	struct pending *p = arg;
	if (result == 0)
		p->host->http_respond(p->req, 200, "text/plain", "stored\n", 7);
	else
		p->host->http_respond(p->req, 503, "text/plain", "retry later\n", 12);
	free(p);
}

static void on_post(void *data, parley_http_request *req)
{
	struct echo *e = data;
	const struct parley_host *h = e->host;
	size_t len;
	const char *body = h->http_body(req, &len);
	char *text = malloc(strlen(e->prefix) + len + 1);
	memcpy(text, e->prefix, strlen(e->prefix));
	memcpy(text + strlen(e->prefix), body, len);
	text[strlen(e->prefix) + len] = '\0';

	parley_envelope *env = h->envelope_new(e->inst, "message", "inbound");
	h->envelope_set_str(env, "from", "webhook:echo-user");
	if (h->envelope_set_str(env, "text", text) != 0) {
		free(text);
		h->envelope_free(env);
		h->http_respond(req, 400, "text/plain", "body must be UTF-8\n", 19);
		return;
	}
	free(text);
	struct pending *p = malloc(sizeof(*p));
	p->host = h;
	p->req = req;
	if (h->submit(e->inst, &env, 1, done, p) != 0) {
		h->envelope_free(env);
		free(p);
		h->http_respond(req, 503, "text/plain", "retry later\n", 12);
	}
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
