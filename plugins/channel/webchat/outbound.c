/*
 * outbound.c: what goes to visitors: agents' replies (channel_send) pushed
 * to the session's open sockets, and the conversation so far from the
 * store (GET /messages).
 */
#include "webchat.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Send json to every open, authenticated socket of session sid except `but` (w->lock held). */
void wc_push_locked(struct webchat *w, const char *sid, const struct sock *but, const char *json)
{
	for (struct sock *sk = w->socks; sk; sk = sk->next)
		if (sk != but && sk->ws && sk->authed && strcmp(sk->s.sid, sid) == 0)
			w->h->ws_send(sk->ws, json, strlen(json));
}

/* The session's messages from the store, oldest first (at most HISTORY_MAX, the latest). */
static cJSON *history(struct webchat *w, const char *sid)
{
	char urn[64];
	snprintf(urn, sizeof(urn), "webchat:%s", sid);
	cJSON *out = cJSON_CreateArray();
	char after[64] = "";
	for (int page = 0; page < 20; page++) {
		cJSON *q = cJSON_CreateObject();
		cJSON_AddStringToObject(q, "channel", w->name);
		cJSON_AddStringToObject(q, "address", urn);
		cJSON_AddNumberToObject(q, "limit", 500);
		if (after[0])
			cJSON_AddStringToObject(q, "after_id", after);
		char *qs = cJSON_PrintUnformatted(q);
		cJSON_Delete(q);
		char *reply = NULL;
		int rv = qs ? w->h->store_query(w->inst, "messages.list", qs, &reply) : PARLEY_ENOMEM;
		free(qs);
		cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
		free(reply);
		if (!r) {
			cJSON_Delete(out);
			return NULL;
		}
		const cJSON *m;
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(r, "messages"))
		{
			const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "from"));
			const char *to = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "to"));
			const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "kind"));
			const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "text"));
			/* The store filters by address; this filter holds even with a store that does not. */
			const cJSON *atts = cJSON_GetObjectItemCaseSensitive(m, "attachments");
			if (!kind || strcmp(kind, "message") != 0 || (!text && !cJSON_GetArraySize(atts)) ||
			    !((from && strcmp(from, urn) == 0) || (to && strcmp(to, urn) == 0)))
				continue;
			cJSON *e = cJSON_CreateObject();
			const cJSON *a0 = cJSON_GetArrayItem(atts, 0);
			if (a0) {
				cJSON *a = cJSON_AddObjectToObject(e, "attachment");
				static const char *const af[] = {"name", "content_type", NULL};
				for (size_t i = 0; af[i]; i++) {
					const char *v =
					        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a0, af[i]));
					if (v)
						cJSON_AddStringToObject(a, af[i], v);
				}
				const cJSON *size = cJSON_GetObjectItemCaseSensitive(a0, "size");
				if (cJSON_IsNumber(size))
					cJSON_AddNumberToObject(a, "size", size->valuedouble);
			}
			static const char *const keep[] = {"id", "direction", "text", "received_at", "status", NULL};
			if (!text)
				cJSON_AddStringToObject(e, "text", "");
			for (size_t i = 0; keep[i]; i++) {
				const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, keep[i]));
				if (v)
					cJSON_AddStringToObject(e, keep[i], v);
			}
			cJSON_AddItemToArray(out, e);
			if (cJSON_GetArraySize(out) > HISTORY_MAX)
				cJSON_DeleteItemFromArray(out, 0);
		}
		const char *next = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "next_after_id"));
		int more = next && strlen(next) < sizeof(after);
		if (more)
			snprintf(after, sizeof(after), "%s", next);
		cJSON_Delete(r);
		if (!more)
			break;
	}
	return out;
}

/* GET /messages with Authorization: Bearer <session token>: the visitor's conversation so far. */
void wc_on_get_messages(void *data, parley_http_request *req)
{
	struct webchat *w = data;
	const char *origin = wc_check_origin(w, req);
	struct wc_session s;
	if (!origin || wc_bearer(w, req, origin, &s) != 0)
		return;
	cJSON *list = history(w, s.sid);
	if (!list) {
		wc_respond_error(w, req, origin, 503, "unavailable",
		                 "the history cannot be read right now: retry later");
		return;
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "ok", 1);
	cJSON_AddStringToObject(o, "session_id", s.sid);
	cJSON_AddItemToObject(o, "messages", list);
	wc_respond_json(w, req, origin, 200, o);
}

int wc_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct webchat *w = data;
	const struct parley_host *h = w->h;
	const char *to = h->envelope_get_str(env, "to");
	const char *text = h->envelope_get_str(env, "text");
	if (!to || strncmp(to, "webchat:", 8) != 0 || !to[8]) {
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text),
		         "'to' must be a web chat visitor, webchat:<session id>");
		return 0;
	}
	const char *id = h->envelope_get_str(env, "id");
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "type", "message");
	cJSON_AddStringToObject(o, "direction", "outbound");
	if (id)
		cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "text", text ? text : "");
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	/* No open socket is no failure: the message is stored, and the visitor sees it in the history. */
	pthread_mutex_lock(&w->lock);
	if (s)
		wc_push_locked(w, to + 8, NULL, s);
	pthread_mutex_unlock(&w->lock);
	free(s);
	res->outcome = PARLEY_SEND_OK;
	if (id)
		snprintf(res->provider_id, sizeof(res->provider_id), "%s", id);
	return 0;
}
