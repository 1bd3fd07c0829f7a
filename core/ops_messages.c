/*
 * ops_messages.c: message.send, the reply an agent or a service queues on a
 * customer's channel (a canned response filled in, the text given, or a
 * template: refused outside the channel's customer-service window without
 * one, see window.h), and the private note a reply with "private": true
 * becomes.
 */
#include "auth.h"
#include "bots.h"
#include "bus.h"
#include "envelope.h"
#include "gateway.h"
#include "ops.h"
#include "ops_handlers.h"
#include "outbox.h"
#include "store.h"
#include "util.h"
#include "window.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		return ops_error("invalid_request", "message.send needs 'channel' (a configured channel name) and 'to' "
		                                    "(a URN), or a 'conversation_id'");
	const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(req, "template");
	if (!text && !cJSON_IsArray(atts) && !tpl)
		return ops_error("invalid_request", "message.send needs 'text', 'attachments' or 'template'");
	const char *bad = tpl ? window_template_invalid(tpl) : NULL;
	if (bad)
		return ops_error("invalid_request", bad);
	/* The channel as the topology has it now, held until it has been asked (a reload may replace it). */
	struct topology *topo = topology_get(gw);
	parley_instance *ch = topology_channel(topo, chname);
	char channel_type[64] = "", *refusal = NULL;
	if (!ch) {
		refusal = ops_error("unknown_channel", "no channel of that name is configured under channels:");
	} else if (!ch->plugin->desc->channel_send) {
		refusal = ops_error("not_supported", "this channel type receives only; it cannot send");
	} else if (!strchr(to, ':')) {
		refusal = ops_error("invalid_request", "'to' must be a URN such as tel:+15551234567 or webhook:alice");
	} else if (tpl && !window_takes_templates(ch)) {
		char *m = str_printf("channel '%s' (type %s) takes no template messages: send 'text'", ch->name,
		                     ch->plugin->desc->name);
		refusal = ops_error("not_supported", m ? m : "this channel type takes no template messages");
		free(m);
	} else {
		/* Outside the customer-service window the provider would refuse it: say so now, not as a dead letter.
		 */
		refusal = window_refusal(gw, ch, to, tpl,
		                         cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "tag")));
	}
	if (ch)
		snprintf(channel_type, sizeof(channel_type), "%s", ch->plugin->desc->name);
	topology_put(topo);
	if (refusal)
		return refusal;
	parley_envelope *env = envelope_create("message", "outbound");
	envelope_set(env, "channel", chname);
	envelope_set(env, "channel_type", channel_type);
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
		char *r = ops_error("invalid_request", envelope_error(env));
		envelope_destroy(env);
		return r;
	}
	/* What the caller gave is checked as a plugin's setter would check it: 400 naming the field. */
	char why[320];
	if ((atts && envelope_check_json("attachments", atts, why, sizeof(why)) != 0) ||
	    (meta && envelope_check_json("meta", meta, why, sizeof(why)) != 0)) {
		envelope_destroy(env);
		return ops_error("invalid_request", why);
	}
	if (cJSON_IsArray(atts))
		cJSON_AddItemToObject(env->obj, "attachments", cJSON_Duplicate(atts, 1));
	if (cJSON_IsObject(meta))
		cJSON_AddItemToObject(env->obj, "meta", cJSON_Duplicate(meta, 1));
	if (tpl)
		cJSON_AddItemToObject(env->obj, "template", cJSON_Duplicate(tpl, 1));
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
		return ops_error("unavailable", parley_strerror(rv));
	}
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cv);
	if (w.result != 0)
		return ops_error("unavailable", parley_strerror(w.result));
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

static char *message_send(struct gateway *gw, const cJSON *req)
{
	const char *canned = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "canned"));
	if (canned) {
		struct topology *topo = topology_get(gw);
		const struct cfg_node *t = cfg_map_get(topo ? topo->canned : NULL, canned); /* kept: reload.c */
		topology_put(topo);
		if (!t || t->type != CFG_SCALAR)
			return ops_error("not_found", "no canned response of that name under canned_responses:");
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
		char *r = message_send(gw, copy);
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
	struct topology *topo = topology_get(gw);
	for (size_t i = 0; topo && i < topo->n_channels; i++)
		cJSON_AddStringToObject(types, topo->channels[i]->name, topo->channels[i]->plugin->desc->name);
	topology_put(topo);
	char *rtext = cJSON_PrintUnformatted(rq);
	cJSON_Delete(rq);
	char *rreply = NULL;
	int rv = store_query(gw->st, "conversation.route", rtext, &rreply);
	free(rtext);
	if (rv != 0) {
		char *r = ops_error(rv == PARLEY_ENOENT ? "not_found" : "invalid_request",
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
 * The soft lock: a signed-in agent or admin replying in a conversation
 * assigned to someone else must say so (confirm: true), so two people do not
 * answer one customer at once without knowing.  Services and the control
 * socket are not asked; notes are not replies.  NULL when the send may go on.
 */
static char *held_by_another(struct op_call *call, const cJSON *req)
{
	const struct auth_principal *who = call->who;
	const char *conv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	if (!who || who->role == AUTH_SERVICE || !conv ||
	    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "confirm")))
		return NULL;
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "conversation_id", conv);
	char *text = cJSON_PrintUnformatted(q), *reply = NULL;
	cJSON_Delete(q);
	int rv = text ? store_query(call->gw->st, "conversation.get", text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	const char *assignee = cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "conversation"), "assignee"));
	char *out = NULL;
	if (assignee && assignee[0] && strcmp(assignee, who->name) != 0) {
		char *m = str_printf(
		        "this conversation is assigned to %s: send again with confirm: true to reply anyway", assignee);
		out = ops_error("conflict", m ? m : "this conversation is assigned to another agent");
		free(m);
	}
	cJSON_Delete(r);
	return out;
}

/*
 * Who wrote the reply, in meta.sent_by {kind, name}, set here whatever the
 * request said: kind "agent" for a signed-in agent or admin (themselves),
 * or the agent a service or the control socket names in `by`; "bot" for a
 * bot; "system" otherwise (the queue's position messages, a service's
 * own).  The outbox logs an agent's accepted reply as a human reply.
 */
static void stamp_sender(const struct op_call *call, cJSON *req)
{
	const char *by = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "by"));
	const struct auth_principal *who = call->who;
	const char *kind = "system", *name = by;
	if (bots_is_bot(who))
		kind = "bot", name = who->name;
	else if (who && (who->role == AUTH_AGENT || who->role == AUTH_ADMIN))
		kind = "agent", name = who->name;
	else if (by && by[0] && strcmp(by, "queue") != 0)
		kind = "agent";
	cJSON *meta = cJSON_GetObjectItemCaseSensitive(req, "meta");
	if (!cJSON_IsObject(meta)) {
		cJSON_DeleteItemFromObjectCaseSensitive(req, "meta");
		meta = cJSON_AddObjectToObject(req, "meta");
	}
	cJSON_DeleteItemFromObjectCaseSensitive(meta, "sent_by");
	cJSON *s = cJSON_AddObjectToObject(meta, "sent_by");
	cJSON_AddStringToObject(s, "kind", kind);
	if (name && name[0])
		cJSON_AddStringToObject(s, "name", name);
}

char *op_message_send(struct op_call *call, const cJSON *req)
{
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "private"))) {
		/* A private note is never sent: it is the conversation's note, by the caller. */
		cJSON *note = cJSON_CreateObject();
		const char *conv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
		const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "text"));
		if (!conv || !text) {
			cJSON_Delete(note);
			return ops_error("invalid_request", "a private note needs conversation_id and text");
		}
		cJSON_AddStringToObject(note, "conversation_id", conv);
		cJSON_AddStringToObject(note, "text", text);
		const char *author = ops_caller_name(call);
		if (author)
			cJSON_AddStringToObject(note, "author", author);
		char *r = ops_call(call->gw, call->who, "conversation.note", note);
		cJSON_Delete(note);
		return r;
	}
	char *held = held_by_another(call, req);
	if (held)
		return held;
	cJSON *copy = cJSON_Duplicate(req, 1);
	if (!copy)
		return NULL;
	stamp_sender(call, copy);
	char *r = message_send(call->gw, copy);
	cJSON_Delete(copy);
	return r;
}

/* The outbound message id, when it is dead-lettered (status failed); else the refusal. */
static char *dead_letter(struct gateway *gw, const char *id, cJSON **out)
{
	*out = NULL;
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "id", id);
	char *text = cJSON_PrintUnformatted(q), *reply = NULL;
	cJSON_Delete(q);
	int rv = text ? store_query(gw->st, "message.get", text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	cJSON *m = cJSON_DetachItemFromObjectCaseSensitive(r, "message");
	cJSON_Delete(r);
	const char *dir = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "direction"));
	const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "status"));
	char *refusal = NULL;
	if (!m) {
		refusal = ops_error("not_found", "no message with that id");
	} else if (!dir || strcmp(dir, "outbound") != 0) {
		refusal = ops_error("invalid_request", "only an outbound message is sent again or dropped");
	} else if (!status || strcmp(status, "failed") != 0) {
		char *msg = str_printf("the message is %s, not dead-lettered (failed)",
		                       status ? status : "without a status");
		refusal = ops_error("conflict", msg ? msg : "not dead-lettered");
		free(msg);
	}
	if (refusal)
		cJSON_Delete(m);
	else
		*out = m;
	return refusal;
}

/*
 * The op's topic (outbox.retried, outbox.dropped: not message.*, which subscribers read as envelopes) with
 * the dead letter: its id, channel, address, conversation, the provider's last error and its new status.
 */
static void published(struct op_call *call, const cJSON *m, const char *status)
{
	static const char *const keep[] = {"id", "channel", "to", "conversation_id", "error"};
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; o && i < sizeof(keep) / sizeof(keep[0]); i++) {
		const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, keep[i]));
		if (v)
			cJSON_AddStringToObject(o, keep[i], v);
	}
	cJSON_AddStringToObject(o, "status", status);
	const char *by = ops_caller_name(call);
	if (by)
		cJSON_AddStringToObject(o, "by", by);
	char *text = o ? cJSON_PrintUnformatted(o) : NULL;
	if (text)
		bus_publish(call->gw->bus, call->def->topic, text, strlen(text));
	free(text);
	cJSON_Delete(o);
}

char *op_message_retry(struct op_call *call, const cJSON *req)
{
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "id"));
	cJSON *m;
	char *refusal = dead_letter(call->gw, id, &m);
	if (refusal)
		return refusal;
	/* Queued again, due now: the outbox sends it as any new reply, with its retries. */
	int rv = store_outbox_update(call->gw->st, id, "queued", NULL, NULL, time_now_ms());
	if (rv != 0) {
		cJSON_Delete(m);
		return ops_error("store_error", parley_strerror(rv));
	}
	outbox_wake(call->gw->outbox);
	published(call, m, "queued");
	cJSON_Delete(m);
	return str_printf("{\"ok\":true,\"id\":\"%s\",\"status\":\"queued\"}", id);
}

char *op_message_drop(struct op_call *call, const cJSON *req)
{
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "id"));
	cJSON *m;
	char *refusal = dead_letter(call->gw, id, &m);
	if (refusal)
		return refusal;
	const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "error"));
	int rv = store_outbox_update(call->gw->st, id, "dropped", NULL, err, 0);
	if (rv == 0)
		published(call, m, "dropped");
	cJSON_Delete(m);
	if (rv != 0)
		return ops_error("store_error", parley_strerror(rv));
	return str_printf("{\"ok\":true,\"id\":\"%s\",\"status\":\"dropped\"}", id);
}
