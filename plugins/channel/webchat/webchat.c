/*
 * webchat.c: the `webchat` channel type: a chat window on the company's own
 * site, served by the gateway.
 *
 * One <script src="https://gw.example/webchat/<channel>/widget.js"> tag on
 * any page (an origin in allowed_origins) shows the button and the window.
 * The widget gets a signed session token (POST /session), keeps it in the
 * page's localStorage, opens a WebSocket (GET /ws) and sends the token as
 * its first message: the token never travels in a URL.  A visitor's message
 * becomes an inbound envelope from webchat:<session id>; the ack goes back
 * only after the commit.  Agents' replies (channel_send) go to every open
 * socket of that session; a visitor who comes back gets the conversation
 * from the store (GET /messages).  POST /messages does what the socket does,
 * for clients without one (and answers 413 over max_message).
 *
 * Public routes, under /webchat/<channel>: GET /widget.js, GET /settings, POST /session,
 * GET /ws, GET and POST /messages, POST /attachments, OPTIONS for CORS preflights.
 *
 * This file holds the plugin's table, its config keys and check, and the
 * instance's lifecycle (create, start: routes, writer thread and sweep
 * timer; stop; destroy).  The rest: http.c (CORS, Origin, Bearer, widget.js,
 * settings), session.c (POST /session), messages.c (a visitor's message
 * submitted), outbound.c (replies to visitors, the history), attachments.c,
 * ws.c (the sockets); webchat.h is the state they share.
 */
#include "webchat.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct parley_config_key config_map[] = {
        {"secret", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET,
         "HMAC-SHA256 key (at least 32 characters) that signs session tokens and checks the site's identity tokens"},
        {"allowed_origins", PARLEY_CFG_LIST, NULL, 0,
         "origins of the sites that embed the widget (https://shop.example); \"*\" allows any; none allows none"},
        {"rate_limit", PARLEY_CFG_INT, "20", 0, "messages a visitor session may send per minute"},
        {"max_message", PARLEY_CFG_SIZE, "4k", 0, "the longest message text a visitor may send, in bytes"},
        {"require_identity", PARLEY_CFG_BOOL, "false", 0,
         "refuse visitors without a valid identity_token signed by the site"},
        {"prechat", PARLEY_CFG_BOOL, "false", 0, "ask the visitor's name and e-mail (unverified) before the chat"},
        {"session_ttl", PARLEY_CFG_DURATION, "30d", 0, "how long a visitor's session token stays valid"},
        {"title", PARLEY_CFG_STRING, "Chat with us", 0, "the chat window's title"},
        {"max_attachment", PARLEY_CFG_SIZE, "1MiB", 0,
         "the largest file a visitor may attach (http.max_body bounds it too); 0 turns attachments off"},
        {"auth_timeout", PARLEY_CFG_DURATION, "10s", 0,
         "a socket that has not sent its session token within this time is closed"},
        {NULL, 0, NULL, 0, NULL},
};

static int wc_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	(void)errmsg;
	if (!PARLEY_HOST_HAS(h, ws_close))
		return PARLEY_ENOTSUP;
	struct webchat *w = calloc(1, sizeof(*w));
	if (!w)
		return PARLEY_ENOMEM;
	w->h = h;
	w->inst = inst;
	w->name = h->instance_name(inst);
	w->secret = h->config_str(inst, "secret");
	char *origins = h->config_json(inst, "allowed_origins");
	w->origins = cJSON_Parse(origins ? origins : "[]");
	free(origins);
	const cJSON *it;
	cJSON_ArrayForEach(it, w->origins)
	{
		if (cJSON_IsString(it) && strcmp(it->valuestring, "*") == 0)
			w->any_origin = 1;
	}
	h->config_int(inst, "rate_limit", &w->rate_per_min);
	h->config_size(inst, "max_message", &w->max_message);
	h->config_bool(inst, "require_identity", &w->require_identity);
	h->config_bool(inst, "prechat", &w->prechat);
	int64_t ttl_ms = 0;
	h->config_duration_ms(inst, "session_ttl", &ttl_ms);
	w->ttl_s = ttl_ms / 1000;
	w->title = h->config_str(inst, "title");
	h->config_duration_ms(inst, "auth_timeout", &w->auth_timeout_ms);
	h->config_size(inst, "max_attachment", &w->max_attachment);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->jobs_cv, NULL);
	*data = w;
	return 0;
}

static int wc_start(void *data, char **errmsg)
{
	struct webchat *w = data;
	const struct parley_host *h = w->h;
	(void)errmsg;
	static const struct {
		const char *method, *sub;
		parley_http_cb cb;
	} routes[] = {
	        {"GET", "/widget.js", wc_on_widget},          {"GET", "/settings", wc_on_settings},
	        {"OPTIONS", "/session", wc_on_preflight},     {"POST", "/session", wc_on_session},
	        {"OPTIONS", "/messages", wc_on_preflight},    {"GET", "/messages", wc_on_get_messages},
	        {"POST", "/messages", wc_on_post_message},    {"GET", "/ws", wc_on_ws},
	        {"OPTIONS", "/attachments", wc_on_preflight}, {"POST", "/attachments", wc_on_post_attachment},
	};
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		int rv = h->http_route_public(w->inst, routes[i].method, routes[i].sub, routes[i].cb);
		if (rv != 0)
			return rv;
	}
	if (pthread_create(&w->writer, NULL, wc_writer_main, w) != 0)
		return PARLEY_EIO;
	w->writer_started = 1;
	return h->timer_start(w->inst, 1000, 1000, wc_sweep, w, &w->sweeper);
}

static void wc_stop(void *data)
{
	struct webchat *w = data;
	if (w->sweeper)
		w->h->timer_stop(w->sweeper);
	w->sweeper = NULL;
	if (w->writer_started) {
		pthread_mutex_lock(&w->lock);
		w->writer_stop = 1;
		pthread_cond_signal(&w->jobs_cv);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->writer, NULL); /* it answers what was queued first */
		w->writer_started = 0;
	}
}

static void wc_destroy(void *data)
{
	struct webchat *w = data;
	/* The gateway closed every socket before stopping instances; what is left is unreferenced. */
	while (w->socks) {
		struct sock *sk = w->socks;
		w->socks = sk->next;
		free(sk);
	}
	strmap_free(&w->rates);
	strmap_free(&w->nonces);
	cJSON_Delete(w->origins);
	pthread_cond_destroy(&w->jobs_cv);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

static int fail(char **errmsg, const char *msg)
{
	*errmsg = strdup(msg);
	return PARLEY_EINVAL;
}

/* An origin is scheme://host[:port], nothing more: what a browser sends in Origin. */
static int origin_valid(const char *o)
{
	const char *rest = strncmp(o, "https://", 8) == 0 ? o + 8 : strncmp(o, "http://", 7) == 0 ? o + 7 : NULL;
	return rest && rest[0] && !strpbrk(rest, "/?#@ ") && rest[strlen(rest) - 1] != ':';
}

static int wc_check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	(void)h;
	cJSON *c = cJSON_Parse(config_json ? config_json : "{}");
	const char *secret = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "secret"));
	const cJSON *origins = cJSON_GetObjectItemCaseSensitive(c, "allowed_origins");
	const char *rate = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "rate_limit"));
	int rv = 0;
	char msg[400];
	if (!secret || strlen(secret) < 32) {
		rv = fail(errmsg, "secret: at least 32 characters are needed (it signs visitors' session tokens); "
		                  "generate one with `openssl rand -hex 32`");
	} else if (rate && atoll(rate) < 1) {
		rv = fail(errmsg, "rate_limit: must be at least 1 message per minute");
	} else if (origins) {
		const cJSON *it;
		cJSON_ArrayForEach(it, origins)
		{
			if (!cJSON_IsString(it) ||
			    (strcmp(it->valuestring, "*") != 0 && !origin_valid(it->valuestring))) {
				snprintf(msg, sizeof(msg),
				         "allowed_origins: '%.200s' is not an origin: write scheme://host[:port] with "
				         "no path, "
				         "e.g. https://shop.example, or \"*\"",
				         cJSON_IsString(it) ? it->valuestring : "?");
				rv = fail(errmsg, msg);
				break;
			}
		}
	}
	cJSON_Delete(c);
	return rv;
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "webchat",
        .version = "1.0.0",
        .description = "a chat window on your own site: one script tag, WebSocket, signed visitor sessions",
        .config = config_map,
        .instance_create = wc_create,
        .instance_start = wc_start,
        .instance_stop = wc_stop,
        .instance_destroy = wc_destroy,
        .channel_send = wc_send,
        .check_config = wc_check,
};

PARLEY_PLUGIN_DEFINE(plugin)
