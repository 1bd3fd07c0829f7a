/* ops.c: the one way to call an op of the table (ops_table.c): role, fields, view, handler, topic (see ops.h). */
#include "ops.h"
#include "auth.h"
#include "bots.h"
#include "bus.h"
#include "envelope.h"
#include "gateway.h"
#include "log.h"
#include "ops_handlers.h"
#include "queue.h"
#include "store.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

const struct op_def *ops_find(const char *name)
{
	size_t n;
	const struct op_def *table = ops_table(&n);
	for (size_t i = 0; name && i < n; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

int ops_known(const char *name)
{
	return ops_find(name) != NULL;
}

/* ----------------------------------------------------------- replies */

char *ops_error(const char *code, const char *message)
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

char *ops_ok_merge(const char *json)
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

int ops_error_status(const char *code)
{
	static const struct {
		const char *code;
		int status;
	} map[] = {{"invalid_request", 400}, {"unknown_channel", 400}, {"unauthorized", 401},   {"forbidden", 403},
	           {"not_found", 404},       {"unknown_op", 404},      {"conflict", 409},       {"too_large", 413},
	           {"not_supported", 422},   {"invalid_config", 422},  {"outside_window", 422}, {"locked", 429},
	           {"rate_limited", 429},    {"not_implemented", 501}, {"unavailable", 503}};
	for (size_t i = 0; code && i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(code, map[i].code) == 0)
			return map[i].status;
	return 500;
}

const char *ops_caller_name(const struct op_call *call)
{
	return call->who && call->who->name[0] ? call->who->name : NULL;
}

/* ------------------------------------------------------------- views */

/*
 * 1 when the agent who sees conversation c (a stored conversation object):
 * assigned to them, or their team's, or of no team (auth_sees_team).
 */
static int agent_sees(const struct auth_principal *who, const cJSON *c)
{
	const char *team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "team"));
	const char *assignee = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "assignee"));
	return (assignee && strcmp(assignee, who->name) == 0) || auth_sees_team(who, team);
}

/* The stored object `member` of a read op's reply, or NULL. */
static cJSON *read_one(struct gateway *gw, const char *op, const char *field, const char *id, const char *member)
{
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, field, id);
	char *text = cJSON_PrintUnformatted(q), *reply = NULL;
	cJSON_Delete(q);
	int rv = text ? store_query(gw->st, op, text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	cJSON *o = cJSON_DetachItemFromObjectCaseSensitive(r, member);
	cJSON_Delete(r);
	return o;
}

static int sees_conversation(struct gateway *gw, const struct auth_principal *who, const char *id)
{
	cJSON *c = id ? read_one(gw, "conversation.get", "conversation_id", id, "conversation") : NULL;
	int ok = c && agent_sees(who, c);
	cJSON_Delete(c);
	return ok;
}

static int sees_contact(struct gateway *gw, const struct auth_principal *who, const char *id)
{
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "contact_id", id);
	cJSON_AddNumberToObject(q, "limit", 1000);
	char *text = cJSON_PrintUnformatted(q), *reply = NULL;
	cJSON_Delete(q);
	int rv = text ? store_query(gw->st, "conversations.list", text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	int ok = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(r, "conversations")) ok |= agent_sees(who, c);
	cJSON_Delete(r);
	return ok;
}

/*
 * Narrow req to what the agent who sees, or refuse: NULL when the call may
 * go on, else the reply.  What an agent may not see is answered as absent
 * (not_found), so an agent cannot tell another team's conversation exists.
 */
static char *narrow(struct gateway *gw, const struct op_def *d, const struct auth_principal *who, cJSON *req)
{
	const char *conv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	switch (d->view) {
	case OP_VIEW_ALL:
		return NULL;
	case OP_VIEW_CONVERSATION:
		if (!conv)
			return ops_error("forbidden", "an agent names the conversation: give conversation_id");
		if (!sees_conversation(gw, who, conv))
			return ops_error("not_found", "no conversation with that conversation_id");
		/* A reply goes to the conversation's customer, never to an address the agent typed. */
		cJSON_DeleteItemFromObjectCaseSensitive(req, "to");
		return NULL;
	case OP_VIEW_MESSAGE: {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "id"));
		cJSON *m = id ? read_one(gw, "message.get", "id", id, "message") : NULL;
		const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "conversation_id"));
		int ok = c && sees_conversation(gw, who, c);
		cJSON_Delete(m);
		return ok ? NULL : ops_error("not_found", "no message with that id");
	}
	case OP_VIEW_CONTACT: {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "contact_id"));
		if (!id || !sees_contact(gw, who, id))
			return ops_error("not_found", "no contact with that contact_id");
		return NULL;
	}
	case OP_VIEW_LIST: {
		/* The store lists only the agent's: their teams' and those assigned to them. */
		cJSON_DeleteItemFromObjectCaseSensitive(req, "visible_to");
		cJSON *v = cJSON_AddObjectToObject(req, "visible_to");
		cJSON_AddStringToObject(v, "agent", who->name);
		cJSON *teams = cJSON_AddArrayToObject(v, "teams");
		for (size_t i = 0; i < who->n_teams; i++)
			cJSON_AddItemToArray(teams, cJSON_CreateString(who->teams[i]));
		return NULL;
	}
	}
	return NULL;
}

/* NULL when who may call d, else the refusal (auth_may: roles, and a service token's scopes). */
static char *permitted(const struct op_def *d, const struct auth_principal *who)
{
	if (!who)
		return NULL; /* the control socket: its own token or a local socket decided */
	static const enum auth_role needed[] = {
	        [OP_ANYONE] = AUTH_NONE, [OP_AGENT] = AUTH_AGENT, [OP_ADMIN] = AUTH_ADMIN};
	if (auth_may(who, d->name, needed[d->role]))
		return NULL;
	if (who->role == AUTH_SERVICE)
		return ops_error("forbidden",
		                 d->role == OP_ADMIN
		                         ? "this op manages the gateway: a token needs it named in its scopes"
		                         : "this token's scopes do not include this op");
	return ops_error("forbidden", "this op needs an admin");
}

/* NULL when every field present has its declared type (and, for a strict op, is declared), else the refusal. */
static char *typed(const struct op_def *d, const cJSON *req)
{
	const cJSON *member;
	cJSON_ArrayForEach(member, req)
	{
		const struct op_field *f = d->fields;
		while (d->strict && f->name && strcmp(f->name, member->string) != 0)
			f++;
		if (d->strict && !f->name) {
			char *msg = str_printf("%s has no member '%.60s' (an unknown filter is refused, not ignored)",
			                       d->name, member->string);
			char *r = ops_error("invalid_request", msg ? msg : "unknown member");
			free(msg);
			return r;
		}
	}
	for (const struct op_field *f = d->fields; f->name; f++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, f->name);
		if (!v || cJSON_IsNull(v)) {
			if (f->required) {
				char *m = str_printf("%s needs '%s'", d->name, f->name);
				char *r = ops_error("invalid_request", m ? m : "a required field is missing");
				free(m);
				return r;
			}
			continue;
		}
		int ok = f->type == OP_STRING ? cJSON_IsString(v)
		         : f->type == OP_INTEGER
		                 ? cJSON_IsNumber(v) && v->valuedouble == (double)(int64_t)v->valuedouble
		         : f->type == OP_BOOLEAN ? cJSON_IsBool(v)
		         : f->type == OP_OBJECT  ? cJSON_IsObject(v)
		                                 : cJSON_IsArray(v);
		if (!ok) {
			static const char *const names[] = {"a string", "an integer", "true or false", "an object",
			                                    "an array"};
			char *m = str_printf("'%s' must be %s", f->name, names[f->type]);
			char *r = ops_error("invalid_request", m ? m : "a field has the wrong type");
			free(m);
			return r;
		}
	}
	return NULL;
}

char *ops_call(struct gateway *gw, const struct auth_principal *who, const char *name, cJSON *req)
{
	const struct op_def *d = ops_find(name);
	if (!d) {
		char *m = str_printf("unknown op '%s'", name ? name : "");
		char *r = ops_error("unknown_op", m ? m : "unknown op");
		free(m);
		return r;
	}
	const cJSON *given_id = cJSON_GetObjectItemCaseSensitive(req, "id");
	if (d->id_alias && cJSON_IsString(given_id) && !cJSON_GetObjectItemCaseSensitive(req, d->id_alias))
		cJSON_AddStringToObject(req, d->id_alias, given_id->valuestring);
	char *refusal = permitted(d, who);
	if (!refusal)
		refusal = typed(d, req);
	if (!refusal && who && who->role == AUTH_AGENT)
		refusal = narrow(gw, d, who, req);
	if (!refusal)
		refusal = bots_check(gw, who, d->name, req);
	if (refusal)
		return refusal;
	/* Members the op always has (conversation.snooze is conversation.set with status snoozed). */
	for (const char *const *f = d->http_fixed; f && f[0] && f[1]; f += 2) {
		cJSON_DeleteItemFromObjectCaseSensitive(req, f[0]);
		cJSON_AddStringToObject(req, f[0], f[1]);
	}
	if (d->id_field) {
		char id[32];
		ulid_new(id);
		cJSON_DeleteItemFromObjectCaseSensitive(req, d->id_field);
		cJSON_AddStringToObject(req, d->id_field, id);
	}
	struct op_call call = {gw, d, who};
	char *reply = d->handler(&call, req);
	if (reply && strncmp(reply, "{\"ok\":true", 10) == 0)
		bots_after(gw, who, d->name, req);
	/* A change that may give an agent room, or make one available: the queue offers again. */
	static const char *const kicks[] = {"conversation.resolve", "conversation.assign", "conversation.set",
	                                    "conversation.snooze",  "conversation.reopen", "state.set"};
	for (size_t i = 0; reply && i < sizeof(kicks) / sizeof(kicks[0]); i++)
		if (strcmp(d->name, kicks[i]) == 0 && strncmp(reply, "{\"ok\":true", 10) == 0)
			queue_kick(gw->queue);
	return reply;
}
