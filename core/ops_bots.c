/*
 * ops_bots.c: bots, and who owns a conversation.  A conversation is owned
 * by a bot, the queue or an agent, one at a time: an agent when it has an
 * assignee, the queue when it has a team and no assignee, a bot from its
 * conversation.claim until its handoff.  The bot's ownership is kept in the
 * store (key-value namespace "bot", key the conversation id): "bot:<name>"
 * while a bot owns it, "-" once handed off (no bot may claim it until an
 * agent hands it back with conversation.bot).  The server enforces it: a
 * bot's reply in a conversation it does not own is refused, and an agent's
 * reply or assignment ends a bot's ownership.  Each change of ownership
 * is logged in the conversation's history (bot.claimed, bot.handoff), for
 * the KPIs: bot containment, and no bot time in response times.
 */
#include "auth.h"
#include "bots.h"
#include "bus.h"
#include "gateway.h"
#include "inbox/inbox.h"
#include "log.h"
#include "ops.h"
#include "ops_handlers.h"
#include "queue.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS            "bot"
#define HANDED_OFF    "-"
#define BOT_PREFIX    "bot:"
#define BOT_PREFIX_SZ 4

/* The ops a bot may call; those from OWNED_FROM on need a conversation the bot owns. */
static char *const bot_scopes[] = {
        "conversation.get",   "messages.list",        "contact.get",           "queue.get",
        "conversation.claim", "conversation.handoff", "conversation.position", "message.send",
        "conversation.note",  "conversation.set",     "contact.update",        "conversation.resolve"};
#define OWNED_FROM 7

int bots_is_bot(const struct auth_principal *who)
{
	return who && who->role == AUTH_SERVICE && strncmp(who->name, BOT_PREFIX, BOT_PREFIX_SZ) == 0;
}

/* The owner mark of conversation id into out ("" when none); 0, or a store error. */
static int owner_of(struct gateway *gw, const char *id, char *out, size_t cap)
{
	char *v = NULL;
	size_t len = 0;
	out[0] = '\0';
	int rv = store_kv_get(gw->st, NS, id, &v, &len);
	if (rv == 0)
		snprintf(out, cap, "%s", v);
	free(v);
	return rv == PARLEY_ENOENT ? 0 : rv;
}

static int set_owner(struct gateway *gw, const char *id, const char *mark)
{
	return store_kv_set(gw->st, NS, id, mark, strlen(mark));
}

/*
 * The history row of an ownership change: bot.claimed (bot owns it from now)
 * or bot.handoff (it ends, to the queue of team or to the agent `by`).
 */
static void log_owner(struct gateway *gw, const char *id, const char *type, const char *bot, const char *to,
                      const char *team, const char *by)
{
	cJSON *d = cJSON_CreateObject();
	cJSON_AddStringToObject(d, "bot", bot);
	if (to)
		cJSON_AddStringToObject(d, "to", to);
	if (team)
		cJSON_AddStringToObject(d, "team", team);
	if (by)
		cJSON_AddStringToObject(d, "by", by);
	char *text = cJSON_PrintUnformatted(d);
	cJSON_Delete(d);
	if (!text || inbox_log(gw->inbox, id, type, text) != 0)
		log_warn("conversation %s: could not log %s in its history", id, type);
	free(text);
}

int bots_owns(struct gateway *gw, const char *conversation_id)
{
	char mark[160];
	return conversation_id && owner_of(gw, conversation_id, mark, sizeof(mark)) == 0 &&
	       strncmp(mark, BOT_PREFIX, BOT_PREFIX_SZ) == 0;
}

char *bots_check(struct gateway *gw, const struct auth_principal *who, const char *op, const cJSON *req)
{
	if (!bots_is_bot(who))
		return NULL;
	size_t n = sizeof(bot_scopes) / sizeof(bot_scopes[0]), i = OWNED_FROM;
	while (i < n && strcmp(bot_scopes[i], op) != 0)
		i++;
	if (i == n)
		return NULL; /* a read, or claim and handoff (which check for themselves) */
	const char *conv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	char mark[160];
	if (!conv)
		return ops_error("forbidden", "a bot acts in a conversation: give conversation_id");
	if (owner_of(gw, conv, mark, sizeof(mark)) != 0)
		return ops_error("unavailable", "the store cannot say who owns the conversation");
	if (strcmp(mark, who->name) != 0)
		return ops_error("conflict",
		                 "the conversation is not this bot's (not claimed, handed off, or an agent's)");
	return NULL;
}

void bots_after(struct gateway *gw, const struct auth_principal *who, const char *op, const cJSON *req)
{
	/* An agent who replies or assigns takes the conversation from its bot. */
	if (bots_is_bot(who) || (strcmp(op, "message.send") != 0 && strcmp(op, "conversation.assign") != 0))
		return;
	const char *conv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	if (!conv || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "private")))
		return;
	const char *by = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "by"));
	if (by && strcmp(by, "queue") == 0)
		return; /* the queue never assigns a bot's conversation */
	char mark[160];
	if (owner_of(gw, conv, mark, sizeof(mark)) != 0 || strncmp(mark, BOT_PREFIX, BOT_PREFIX_SZ) != 0)
		return;
	if (set_owner(gw, conv, HANDED_OFF) == 0) {
		log_info("conversation %s: an agent took it from its bot", conv);
		const char *agent = who ? who->name : by;
		log_owner(gw, conv, "bot.handoff", mark, "agent", NULL, agent && agent[0] ? agent : "control");
	}
}

void bots_principal(struct auth_principal *p, const char *instance)
{
	memset(p, 0, sizeof(*p));
	p->role = AUTH_SERVICE;
	snprintf(p->name, sizeof(p->name), BOT_PREFIX "%s", instance);
	p->scopes = (char **)bot_scopes; /* read only: a bot's principal is never cleared (auth_principal_clear) */
	p->n_scopes = sizeof(bot_scopes) / sizeof(bot_scopes[0]);
}

/* The stored conversation (conversation.get's), or NULL. */
static cJSON *conversation(struct gateway *gw, const char *id)
{
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "conversation_id", id);
	char *text = cJSON_PrintUnformatted(q), *reply = NULL;
	cJSON_Delete(q);
	int rv = text ? store_query(gw->st, "conversation.get", text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	cJSON *c = cJSON_DetachItemFromObjectCaseSensitive(r, "conversation");
	cJSON_Delete(r);
	return c;
}

/* conversation.claim {conversation_id}: the calling bot owns the conversation from now on. */
char *op_conversation_claim(struct op_call *call, const cJSON *req)
{
	if (!bots_is_bot(call->who))
		return ops_error("forbidden", "only a bot claims a conversation");
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	cJSON *c = conversation(call->gw, id);
	if (!c)
		return ops_error("not_found", "no conversation with that conversation_id");
	const char *assignee = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "assignee"));
	const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "status"));
	char mark[160];
	char *refusal = NULL;
	if (owner_of(call->gw, id, mark, sizeof(mark)) != 0)
		refusal = ops_error("unavailable", "the store cannot say who owns the conversation");
	else if (strcmp(mark, call->who->name) == 0)
		refusal = NULL; /* already this bot's */
	else if (strcmp(mark, HANDED_OFF) == 0)
		refusal = ops_error("conflict", "handed off: a bot takes it again only when an agent hands it back");
	else if (mark[0])
		refusal = ops_error("conflict", "another bot owns the conversation");
	else if (assignee)
		refusal = ops_error("conflict", "an agent owns the conversation");
	else if (status && strcmp(status, "resolved") == 0)
		refusal = ops_error("conflict", "the conversation is resolved");
	else if (set_owner(call->gw, id, call->who->name) != 0)
		refusal = ops_error("unavailable", "the store cannot record the claim");
	else
		log_owner(call->gw, id, "bot.claimed", call->who->name, NULL, NULL, call->who->name);
	cJSON_Delete(c);
	if (refusal)
		return refusal;
	return str_printf("{\"ok\":true,\"conversation_id\":\"%s\",\"owner\":\"%s\"}", id, call->who->name);
}

/* The conversation's place in its team's queue (1 first; 0 when it does not wait) and the estimated wait. */
static int position_of(struct gateway *gw, const char *id, const char *team, int64_t *wait_s)
{
	*wait_s = 0;
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "team", team);
	char *reply = queue_describe(gw, req);
	cJSON_Delete(req);
	cJSON *r = reply ? cJSON_Parse(reply) : NULL;
	free(reply);
	int pos = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(
	                              cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "queues"), 0), "waiting"))
	{
		const char *cid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "conversation_id"));
		if (cid && strcmp(cid, id) == 0) {
			pos = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "position"));
			const cJSON *w = cJSON_GetObjectItemCaseSensitive(e, "estimated_wait_s");
			*wait_s = cJSON_IsNumber(w) ? (int64_t)w->valuedouble : 0;
		}
	}
	cJSON_Delete(r);
	return pos;
}

/* Fill {{position}} and {{wait_minutes}} (the estimate, "?" when there is none) in tpl; malloc'd. */
static char *with_position(const char *tpl, int position, int64_t wait_s)
{
	struct strbuf sb;
	sb_init(&sb);
	sb_adds(&sb, "");
	for (const char *p = tpl; *p;) {
		const char *a = strstr(p, "{{position}}"), *w = strstr(p, "{{wait_minutes}}");
		const char *at = a && (!w || a < w) ? a : w;
		if (!at) {
			sb_adds(&sb, p);
			break;
		}
		sb_add(&sb, p, (size_t)(at - p));
		if (at == a) {
			sb_printf(&sb, "%d", position);
			p = at + 12;
		} else {
			if (wait_s > 0)
				sb_printf(&sb, "%lld", (long long)((wait_s + 59) / 60));
			else
				sb_adds(&sb, "?");
			p = at + 16;
		}
	}
	return sb_detach(&sb);
}

/*
 * conversation.handoff {conversation_id, team?, priority?, note?, message?}:
 * the bot gives the conversation to its team's queue (the team given, or
 * the one it has), with a private note of what it gathered; message, when
 * given, is sent to the customer with {{position}} filled.  Replies team
 * and position.
 */
char *op_conversation_handoff(struct op_call *call, const cJSON *req)
{
	struct gateway *gw = call->gw;
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	char mark[160];
	if (owner_of(gw, id, mark, sizeof(mark)) != 0)
		return ops_error("unavailable", "the store cannot say who owns the conversation");
	if (bots_is_bot(call->who) && strcmp(mark, call->who->name) != 0)
		return ops_error("conflict", "the conversation is not this bot's");
	cJSON *c = conversation(gw, id);
	if (!c)
		return ops_error("not_found", "no conversation with that conversation_id");
	const char *team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "team"));
	if (!team)
		team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "team"));
	if (!team) {
		cJSON_Delete(c);
		return ops_error("invalid_request", "a handoff needs a team: give 'team' (the conversation has none)");
	}
	char *team_copy = strdup(team);
	cJSON_Delete(c);
	if (!team_copy || set_owner(gw, id, HANDED_OFF) != 0) {
		free(team_copy);
		return ops_error("unavailable", "the store cannot record the handoff");
	}
	const char *note = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "note"));
	if (note) {
		cJSON *n = cJSON_CreateObject();
		cJSON_AddStringToObject(n, "conversation_id", id);
		cJSON_AddStringToObject(n, "text", note);
		cJSON_AddStringToObject(n, "author", call->who ? call->who->name : "control");
		free(ops_call(gw, NULL, "conversation.note", n));
		cJSON_Delete(n);
	}
	cJSON *set = cJSON_CreateObject();
	cJSON_AddStringToObject(set, "conversation_id", id);
	cJSON_AddStringToObject(set, "team", team_copy);
	const char *prio = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "priority"));
	if (prio)
		cJSON_AddStringToObject(set, "priority", prio);
	char *r = ops_call(gw, NULL, "conversation.set", set); /* kicks the queue */
	cJSON_Delete(set);
	int ok = r && strncmp(r, "{\"ok\":true", 10) == 0;
	if (!ok) {
		free(team_copy);
		return r;
	}
	free(r);
	if (strncmp(mark, BOT_PREFIX, BOT_PREFIX_SZ) == 0)
		log_owner(gw, id, "bot.handoff", mark, "queue", team_copy, call->who ? call->who->name : mark);
	int64_t wait_s;
	int position = position_of(gw, id, team_copy, &wait_s);
	const char *message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "message"));
	if (message) {
		/* An agent with room may have taken it already (the set kicked the queue): then it is first, not 0th.
		 */
		char *text = with_position(message, position > 0 ? position : 1, wait_s);
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "conversation_id", id);
		cJSON_AddStringToObject(m, "text", text ? text : message);
		cJSON_AddStringToObject(m, "by", "queue");
		free(ops_call(gw, NULL, "message.send", m));
		cJSON_Delete(m);
		free(text);
	}
	cJSON *out = cJSON_CreateObject();
	cJSON_AddBoolToObject(out, "ok", 1);
	cJSON_AddStringToObject(out, "conversation_id", id);
	cJSON_AddStringToObject(out, "team", team_copy);
	cJSON_AddNumberToObject(out, "position", position);
	if (wait_s > 0)
		cJSON_AddNumberToObject(out, "estimated_wait_s", (double)wait_s);
	free(team_copy);
	/* The op table names conversation.handed_off as this op's event: its reply, less ok, and who handed it off. */
	cJSON *ev = cJSON_Duplicate(out, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(ev, "ok");
	if (ev && call->who && call->who->name[0])
		cJSON_AddStringToObject(ev, "by", call->who->name);
	char *evs = ev ? cJSON_PrintUnformatted(ev) : NULL;
	if (evs)
		bus_publish(gw->bus, "conversation.handed_off", evs, strlen(evs));
	free(evs);
	cJSON_Delete(ev);
	char *s = cJSON_PrintUnformatted(out);
	cJSON_Delete(out);
	return s;
}

/*
 * conversation.position {conversation_id, message}: a bot tells a customer it
 * handed off their place in line again, when they ask: {{position}} and
 * {{wait_minutes}} filled, at most once a minute per conversation (each
 * message may cost money, or fall outside a channel's window).  Replies
 * position and whether it was told.
 */
char *op_conversation_position(struct op_call *call, const cJSON *req)
{
	struct gateway *gw = call->gw;
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	const char *message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "message"));
	char mark[160];
	if (owner_of(gw, id, mark, sizeof(mark)) != 0)
		return ops_error("unavailable", "the store cannot say who owns the conversation");
	if (bots_is_bot(call->who) && strcmp(mark, HANDED_OFF) != 0)
		return ops_error("conflict", "a bot tells the place in line of a conversation it handed off");
	cJSON *c = conversation(gw, id);
	const char *team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "team"));
	int64_t wait_s = 0;
	int position =
	        team && cJSON_GetObjectItemCaseSensitive(c, "queued_at") ? position_of(gw, id, team, &wait_s) : 0;
	cJSON_Delete(c);
	if (position == 0)
		return str_printf("{\"ok\":true,\"conversation_id\":\"%s\",\"position\":0,\"told\":false}", id);
	/* At most once a minute: the last time is kept with the owner mark's namespace. */
	char key[96], *last = NULL;
	size_t len;
	snprintf(key, sizeof(key), "told:%s", id);
	int64_t now = time_now_ms(), then = 0;
	if (store_kv_get(gw->st, NS, key, &last, &len) == 0)
		then = strtoll(last, NULL, 10);
	free(last);
	int told = 0;
	if (now - then >= 60000) {
		char stamp[24];
		snprintf(stamp, sizeof(stamp), "%lld", (long long)now);
		store_kv_set(gw->st, NS, key, stamp, strlen(stamp));
		char *text = with_position(message, position, wait_s);
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "conversation_id", id);
		cJSON_AddStringToObject(m, "text", text ? text : message);
		cJSON_AddStringToObject(m, "by", "queue");
		char *r = ops_call(gw, NULL, "message.send", m);
		told = r && strncmp(r, "{\"ok\":true", 10) == 0;
		free(r);
		cJSON_Delete(m);
		free(text);
	}
	return str_printf("{\"ok\":true,\"conversation_id\":\"%s\",\"position\":%d,\"told\":%s}", id, position,
	                  told ? "true" : "false");
}

/* conversation.bot {conversation_id, bot}: an agent hands the conversation back to a bot. */
char *op_conversation_bot(struct op_call *call, const cJSON *req)
{
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id"));
	const char *bot = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "bot"));
	cJSON *c = conversation(call->gw, id);
	if (!c)
		return ops_error("not_found", "no conversation with that conversation_id");
	cJSON_Delete(c);
	char mark[160];
	snprintf(mark, sizeof(mark), BOT_PREFIX "%s", bot);
	/* Unassigned, so neither an agent nor the queue holds it while the bot does. */
	cJSON *a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "conversation_id", id);
	cJSON_AddStringToObject(a, "by", "queue");
	char *r = set_owner(call->gw, id, mark) == 0 ? ops_call(call->gw, NULL, "conversation.assign", a) : NULL;
	cJSON_Delete(a);
	if (!r)
		return ops_error("unavailable", "the store cannot record who owns the conversation");
	free(r);
	log_owner(call->gw, id, "bot.claimed", mark, NULL, NULL, ops_caller_name(call));
	return str_printf("{\"ok\":true,\"conversation_id\":\"%s\",\"owner\":\"%s\"}", id, mark);
}
