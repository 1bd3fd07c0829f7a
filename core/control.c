/* control.c: the control API over nng REP. */
#include "control.h"
#include "auth_ops.h"
#include "bus.h"
#include "crypto.h"
#include "envelope.h"
#include "gateway.h"
#include "inbox/inbox.h"
#include "log.h"
#include "metrics.h"
#include "payload.h"
#include "relay.h"
#include "store.h"
#include "util.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct control {
	struct gateway *gw;
	nng_socket sock;
	pthread_t thread;
};

static char *error_reply(const char *code, const char *message)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 0);
	cJSON *e = cJSON_AddObjectToObject(r, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return s;
}

/* Merge the store's reply object into {"ok":true,...}. */
static char *ok_merge(const char *json)
{
	if (!json || json[0] != '{')
		return strdup("{\"ok\":true}");
	const char *rest = json + 1;
	while (*rest == ' ')
		rest++;
	if (*rest == '}')
		return strdup("{\"ok\":true}");
	return str_printf("{\"ok\":true,%s", rest);
}

static char *op_health(struct gateway *gw)
{
	cJSON *r = cJSON_CreateObject();
	int store_ok = store_ping(gw->st) == 0;
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON_AddStringToObject(r, "status", store_ok && !atomic_load(&gw->draining) ? "ok" : "unavailable");
	cJSON_AddStringToObject(r, "store", store_ok ? "up" : "down");
	cJSON_AddStringToObject(r, "version", PARLEY_VERSION);
	cJSON *chs = cJSON_AddArrayToObject(r, "channels");
	for (size_t i = 0; i < gw->n_channels; i++) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "name", gw->channels[i]->name);
		cJSON_AddStringToObject(c, "type", gw->channels[i]->plugin->desc->name);
		cJSON_AddBoolToObject(c, "can_send", gw->channels[i]->plugin->desc->channel_send != NULL);
		cJSON_AddItemToArray(chs, c);
	}
	cJSON_AddNumberToObject(r, "inflight", (double)bus_inflight(gw->bus));
	relay_health(gw->relay, r);
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return s;
}

static char *op_stats(struct gateway *gw)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON_AddNumberToObject(r, "envelopes_stored",
	                        (double)metrics_get(gw->metrics, "envelopes_stored_total", NULL, NULL));
	cJSON_AddNumberToObject(r, "envelopes_duplicate",
	                        (double)metrics_get(gw->metrics, "envelopes_duplicate_total", NULL, NULL));
	cJSON_AddNumberToObject(r, "commit_batches",
	                        (double)metrics_get(gw->metrics, "commit_batches_total", NULL, NULL));
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return s;
}

struct send_wait {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int done, result;
};

static void send_committed(void *arg, int result)
{
	struct send_wait *w = arg;
	pthread_mutex_lock(&w->lock);
	w->done = 1;
	w->result = result;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->lock);
}

/* Queue one outbound message: the common part of message.send. */
static char *send_envelope(struct gateway *gw, const cJSON *req, const char *chname, const char *to, const char *conv,
                           const char *contact)
{
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "text"));
	const cJSON *atts = cJSON_GetObjectItemCaseSensitive(req, "attachments");
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(req, "meta");
	if (!chname || !to)
		return error_reply("invalid_request",
		                   "message.send needs 'channel' (a configured channel name) and 'to' "
		                   "(a URN), or a 'conversation_id'");
	if (!text && !cJSON_IsArray(atts))
		return error_reply("invalid_request", "message.send needs 'text' or 'attachments'");
	parley_instance *ch = gateway_channel(gw, chname);
	if (!ch)
		return error_reply("unknown_channel", "no channel of that name is configured under channels:");
	if (!ch->plugin->desc->channel_send)
		return error_reply("not_supported", "this channel type receives only; it cannot send");
	if (!strchr(to, ':'))
		return error_reply("invalid_request", "'to' must be a URN such as tel:+15551234567 or webhook:alice");
	parley_envelope *env = envelope_create("message", "outbound");
	envelope_set(env, "channel", ch->name);
	envelope_set(env, "channel_type", ch->plugin->desc->name);
	envelope_set(env, "to", to);
	envelope_set(env, "status", "queued");
	if (conv)
		envelope_set(env, "conversation_id", conv);
	if (contact)
		envelope_set(env, "contact_id", contact);
	if (text)
		envelope_set(env, "text", text);
	static const char *const copied[] = {"thread_ref", "subject", NULL};
	for (size_t i = 0; copied[i]; i++) {
		const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, copied[i]));
		if (v)
			envelope_set(env, copied[i], v);
	}
	/* Every setter above remembers its first refusal (an address too long, text not UTF-8): one check. */
	if (envelope_error(env)) {
		char *r = error_reply("invalid_request", envelope_error(env));
		envelope_destroy(env);
		return r;
	}
	if (cJSON_IsArray(atts))
		cJSON_AddItemToObject(env->obj, "attachments", cJSON_Duplicate(atts, 1));
	if (cJSON_IsObject(meta))
		cJSON_AddItemToObject(env->obj, "meta", cJSON_Duplicate(meta, 1));
	char id[32];
	snprintf(id, sizeof(id), "%s", envelope_get(env, "id"));
	struct send_wait w = {.done = 0};
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cv, NULL);
	int rv = bus_submit(gw->bus, &env, 1, send_committed, NULL, &w);
	if (rv != 0) {
		envelope_destroy(env);
		pthread_mutex_destroy(&w.lock);
		pthread_cond_destroy(&w.cv);
		return error_reply("unavailable", parley_strerror(rv));
	}
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cv);
	if (w.result != 0)
		return error_reply("unavailable", parley_strerror(w.result));
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON_AddStringToObject(r, "id", id);
	cJSON_AddStringToObject(r, "status", "queued");
	cJSON_AddStringToObject(r, "channel", chname);
	cJSON_AddStringToObject(r, "to", to);
	if (conv)
		cJSON_AddStringToObject(r, "conversation_id", conv);
	char *out = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return out;
}

/* The value of a placeholder name, from the conversation (may be NULL). */
static const char *placeholder(const cJSON *conv, const char *channel, const char *name, size_t len)
{
	const cJSON *contact = cJSON_GetObjectItemCaseSensitive(conv, "contact");
	static const struct {
		const char *name, *field;
		int in_contact;
	} map[] = {{"contact.name", "name", 1},
	           {"contact.id", "id", 1},
	           {"conversation.id", "id", 0},
	           {"agent", "assignee", 0},
	           {"team", "team", 0}};
	if (len == 7 && strncmp(name, "channel", 7) == 0)
		return channel;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strlen(map[i].name) == len && strncmp(name, map[i].name, len) == 0)
			return cJSON_GetStringValue(
			        cJSON_GetObjectItemCaseSensitive(map[i].in_contact ? contact : conv, map[i].field));
	return NULL;
}

/* Fill {{name}} and {{name|default}} in a canned response; malloc'd. */
static char *render_canned(const char *tpl, const cJSON *conv, const char *channel)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "");
	const char *p = tpl;
	while (*p) {
		const char *open = strstr(p, "{{");
		const char *close = open ? strstr(open, "}}") : NULL;
		if (!open || !close) {
			sb_adds(&sb, p);
			break;
		}
		sb_add(&sb, p, (size_t)(open - p));
		const char *name = open + 2;
		size_t nlen = strcspn(name, "|}");
		const char *value = placeholder(conv, channel, name, nlen);
		if (value && *value)
			sb_adds(&sb, value);
		else if (name[nlen] == '|')
			sb_add(&sb, name + nlen + 1, (size_t)(close - name - nlen - 1));
		p = close + 2;
	}
	return sb_detach(&sb);
}

static char *op_message_send(struct gateway *gw, const cJSON *req)
{
	const char *canned = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "canned"));
	if (canned) {
		const struct cfg_node *t = cfg_map_get(gw->cfg.canned, canned);
		if (!t || t->type != CFG_SCALAR)
			return error_reply("not_found", "no canned response of that name under canned_responses:");
		const char *conv_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
		cJSON *conv = NULL;
		if (conv_id) {
			cJSON *q = cJSON_CreateObject();
			cJSON_AddStringToObject(q, "conversation_id", conv_id);
			char *rq = cJSON_PrintUnformatted(q), *rp = NULL;
			cJSON_Delete(q);
			if (store_query(gw->st, "conversation.get", rq, &rp) == 0) {
				cJSON *j = cJSON_Parse(rp);
				conv = cJSON_DetachItemFromObjectCaseSensitive(j, "conversation");
				cJSON_Delete(j);
			}
			free(rq);
			free(rp);
		}
		const char *ch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "channel"));
		if (!ch)
			ch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(conv, "last_channel"));
		char *text = render_canned(t->value, conv, ch);
		cJSON_Delete(conv);
		cJSON *copy = cJSON_Duplicate(req, 1);
		cJSON_DeleteItemFromObjectCaseSensitive(copy, "canned");
		cJSON_DeleteItemFromObjectCaseSensitive(copy, "text");
		cJSON_AddStringToObject(copy, "text", text);
		free(text);
		char *r = op_message_send(gw, copy);
		cJSON_Delete(copy);
		return r;
	}
	const char *chname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "channel"));
	const char *to = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "to"));
	const char *conv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	if (!conv || to)
		return send_envelope(gw, req, chname, to, conv, NULL);
	/* The store knows where the customer is: the channel used last (or the one named) and the address there. */
	cJSON *rq = cJSON_CreateObject();
	cJSON_AddStringToObject(rq, "conversation_id", conv);
	if (chname)
		cJSON_AddStringToObject(rq, "channel", chname);
	cJSON *types = cJSON_AddObjectToObject(rq, "channel_types");
	for (size_t i = 0; i < gw->n_channels; i++)
		cJSON_AddStringToObject(types, gw->channels[i]->name, gw->channels[i]->plugin->desc->name);
	char *rtext = cJSON_PrintUnformatted(rq);
	cJSON_Delete(rq);
	char *rreply = NULL;
	int rv = store_query(gw->st, "conversation.route", rtext, &rreply);
	free(rtext);
	if (rv != 0) {
		char *r = error_reply(rv == PARLEY_ENOENT ? "not_found" : "invalid_request",
		                      rreply ? rreply : "cannot route a reply for that conversation");
		free(rreply);
		return r;
	}
	cJSON *route = cJSON_Parse(rreply);
	free(rreply);
	const cJSON *rt = cJSON_GetObjectItemCaseSensitive(route, "route");
	char *r = send_envelope(gw, req, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rt, "channel")),
	                        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rt, "to")), conv,
	                        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rt, "contact_id")));
	cJSON_Delete(route);
	return r;
}

/*
 * Store ops the core adds to: a generated id the request needs, and the bus
 * event published once the op succeeded (its payload: the store's reply).
 */
static const struct {
	const char *op, *id_field, *topic;
} store_events[] = {
        {"contacts.merge", "merge_id", "contact.merged"},
        {"contacts.unmerge", NULL, "contact.unmerged"},
        {"conversation.note", "note_id", NULL},
        {"conversation.resolve", NULL, "conversation.resolved"},
        {"conversation.reopen", NULL, "conversation.reopened"},
        {"conversation.assign", NULL, "conversation.assigned"},
        {"conversation.set", NULL, "conversation.updated"},
        {"contact.update", NULL, "contact.updated"},
};

/* state.get / state.set {instance, key, value}: a plugin instance's key-value state. */
static char *op_state(struct gateway *gw, const cJSON *req, int set)
{
	const char *inst = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "instance"));
	const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "key"));
	const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "value"));
	if (!inst || !key || (set && !value))
		return error_reply("invalid_request", set ? "state.set needs instance, key and value (strings)"
		                                          : "state.get needs instance and key");
	if (set) {
		int rv = store_kv_set(gw->st, inst, key, value, strlen(value));
		if (rv == 0)
			gateway_changed(gw); /* plugins caching their state look again */
		return rv == 0 ? strdup("{\"ok\":true}") : error_reply("store_error", parley_strerror(rv));
	}
	char *val = NULL;
	size_t len = 0;
	int rv = store_kv_get(gw->st, inst, key, &val, &len);
	if (rv == PARLEY_ENOENT)
		return error_reply("not_found", "no such key in that instance's state");
	if (rv != 0)
		return error_reply("store_error", parley_strerror(rv));
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON_AddStringToObject(r, "value", val);
	free(val);
	char *out = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return out;
}

/* Whoever reaches the control socket (its file mode, or control.token) operates the gateway: an admin. */
static const struct auth_principal control_operator = {.role = AUTH_ADMIN, .name = "control"};

/* 1 when req carries control.token (when one is set); the token is then removed from req. */
static int authorized(struct gateway *gw, cJSON *req)
{
	const char *want = gw->cfg.control_token;
	if (!want)
		return 1;
	const char *given = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "token"));
	int ok = given && strlen(given) == strlen(want) && crypto_ct_equal(given, want, strlen(want));
	cJSON_DeleteItemFromObjectCaseSensitive(req, "token");
	return ok;
}

char *control_handle(struct gateway *gw, const char *text, size_t len)
{
	char why[320];
	/* Refused on any verdict: what the check cannot read, cJSON must not read differently. */
	if (payload_json_check(text, len, why, sizeof(why)) != 0)
		return error_reply("invalid_request", why);
	cJSON *req = cJSON_ParseWithLength(text, len);
	if (!cJSON_IsObject(req)) {
		cJSON_Delete(req);
		return error_reply("invalid_request", "the request must be a JSON object with an \"op\"");
	}
	if (!authorized(gw, req)) {
		cJSON_Delete(req);
		log_warn("control: a request without the right control.token was refused");
		return error_reply("unauthorized", "this gateway's control socket needs \"token\": control.token");
	}
	const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "op"));
	char *reply = NULL;
	if (!op) {
		reply = error_reply("invalid_request", "the request has no \"op\"");
	} else if (strcmp(op, "health") == 0) {
		reply = op_health(gw);
	} else if (strcmp(op, "stats") == 0) {
		reply = op_stats(gw);
	} else if (strcmp(op, "message.send") == 0) {
		reply = op_message_send(gw, req);
	} else if (strcmp(op, "state.get") == 0 || strcmp(op, "state.set") == 0) {
		reply = op_state(gw, req, strcmp(op, "state.set") == 0);
	} else if ((reply = auth_ops_handle(gw, &control_operator, op, req)) != NULL) {
		/* agent.* and token.*: answered */
	} else {
		const char *topic = NULL;
		for (size_t i = 0; i < sizeof(store_events) / sizeof(store_events[0]); i++) {
			if (strcmp(op, store_events[i].op) != 0)
				continue;
			topic = store_events[i].topic;
			if (store_events[i].id_field) {
				char id[32];
				ulid_new(id);
				cJSON_DeleteItemFromObjectCaseSensitive(req, store_events[i].id_field);
				cJSON_AddStringToObject(req, store_events[i].id_field, id);
			}
		}
		char *store_reply = NULL;
		char *reqtext = cJSON_PrintUnformatted(req);
		int rv = inbox_op(gw->inbox, op, reqtext, &store_reply);
		free(reqtext);
		if (rv == 0) {
			/* The conversation core told the caches of any change (inbox.h); the op is published here. */
			if (topic && store_reply)
				bus_publish(gw->bus, topic, store_reply, strlen(store_reply));
			reply = ok_merge(store_reply);
		} else if (rv == PARLEY_ENOTSUP) {
			static const char *const later[] = {"conversations.list",  "conversation.get",
			                                    "conversation.assign", "conversation.resolve",
			                                    "conversation.reopen", "contact.get",
			                                    "contacts.merge",      NULL};
			int planned = 0;
			for (size_t i = 0; later[i]; i++)
				if (strcmp(op, later[i]) == 0)
					planned = 1;
			char *m = str_printf(planned ? "'%s' is not implemented yet by this store" : "unknown op '%s'",
			                     op);
			reply = error_reply(planned ? "not_implemented" : "unknown_op", m);
			free(m);
		} else if (rv == PARLEY_ENOENT) {
			reply = error_reply("not_found", store_reply ? store_reply : "no such object");
		} else if (rv == PARLEY_EINVAL) {
			reply = error_reply("invalid_request", store_reply ? store_reply : "invalid request");
		} else {
			reply = error_reply("store_error", parley_strerror(rv));
		}
		free(store_reply);
	}
	cJSON_Delete(req);
	return reply;
}

static void *control_main(void *arg)
{
	struct control *c = arg;
	for (;;) {
		nng_msg *m;
		if (nng_recvmsg(c->sock, &m, 0) != 0)
			break;
		char *reply = control_handle(c->gw, nng_msg_body(m), nng_msg_len(m));
		nng_msg_free(m);
		if (!reply)
			reply = error_reply("internal", "out of memory");
		if (nng_send(c->sock, reply, strlen(reply), 0) != 0) {
			free(reply);
			break;
		}
		free(reply);
	}
	return NULL;
}

int control_start(struct control **out, struct gateway *gw, char **errmsg)
{
	struct control *c = calloc(1, sizeof(*c));
	int rv;
	if (!c)
		return PARLEY_ENOMEM;
	c->gw = gw;
	if ((rv = nng_rep0_open(&c->sock)) != 0 || (rv = bus_listen_private(c->sock, gw->cfg.control_listen)) != 0) {
		*errmsg = str_printf(
		        "cannot listen on control.listen %s: %s (is another gateway running with the same config?)",
		        gw->cfg.control_listen, nng_strerror(rv));
		nng_close(c->sock);
		free(c);
		return PARLEY_EIO;
	}
	if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
		nng_close(c->sock);
		free(c);
		return PARLEY_EIO;
	}
	*out = c;
	return 0;
}

void control_stop(struct control *c)
{
	if (!c)
		return;
	nng_close(c->sock);
	pthread_join(c->thread, NULL);
	free(c);
}
