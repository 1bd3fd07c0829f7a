/*
 * conversations.c: the SQLite store's reads of contacts and conversations
 * (contact.lookup, conversation.of_ref, conversation.current,
 * conversations.list, conversations.counts, conversation.get, conversation.route, contact.get,
 * agents.load).  What changes them is decided by the gateway's
 * conversation core and written through the typed operations (typed.c).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Columns holding JSON text, returned as JSON values. */
static int json_column(const char *name)
{
	return strcmp(name, "labels") == 0 || strcmp(name, "attributes") == 0 || strcmp(name, "data") == 0 ||
	       strcmp(name, "moved") == 0 || strcmp(name, "envelope") == 0 || strcmp(name, "last_message") == 0;
}

static cJSON *row_object(sqlite3_stmt *st)
{
	cJSON *o = cJSON_CreateObject();
	int n = sqlite3_column_count(st);
	for (int i = 0; i < n; i++) {
		const char *name = sqlite3_column_name(st, i);
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_NULL:
			break;
		case SQLITE_INTEGER:
			cJSON_AddNumberToObject(o, name, (double)sqlite3_column_int64(st, i));
			break;
		case SQLITE_FLOAT:
			cJSON_AddNumberToObject(o, name, sqlite3_column_double(st, i));
			break;
		default: {
			const char *t = (const char *)sqlite3_column_text(st, i);
			cJSON *v = json_column(name) ? cJSON_Parse(t) : NULL;
			cJSON_AddItemToObject(o, name, v ? v : cJSON_CreateString(t));
		}
		}
	}
	return o;
}

/*
 * Run sql with text parameters ?1..?n (NULL binds NULL); rows (if any) are
 * appended to `rows` as objects.  Returns 0 or PARLEY_EIO.  The caller holds
 * the connection's lock.
 */
static int run(struct store *s, sqlite3 *db, const char *sql, const char *const *params, int n, cJSON *rows)
{
	/* Statements are prepared once per connection: the SQL here is static text. */
	struct stmt_cache *c = db == s->w ? &s->wcache : &s->rcache;
	sqlite3_stmt *st = NULL;
	for (size_t i = 0; i < c->n; i++)
		if (c->sql[i] == sql)
			st = c->st[i];
	if (!st) {
		if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
			s->host->log(s->inst, PARLEY_LOG_ERROR, "SQL error: %s", sqlite3_errmsg(db));
			return PARLEY_EIO;
		}
		if (c->n < sizeof(c->sql) / sizeof(c->sql[0])) {
			c->sql[c->n] = sql;
			c->st[c->n++] = st;
		}
	}
	for (int i = 0; i < n; i++)
		sq_bind(st, i + 1, params[i]);
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		if (rows)
			cJSON_AddItemToArray(rows, row_object(st));
	if (rc != SQLITE_DONE)
		s->host->log(s->inst, PARLEY_LOG_ERROR, "SQL error: %s", sqlite3_errmsg(db));
	int cached = 0;
	for (size_t i = 0; i < c->n; i++)
		cached |= c->st[i] == st;
	if (cached) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	} else {
		sqlite3_finalize(st);
	}
	return rc == SQLITE_DONE ? 0 : PARLEY_EIO;
}

void conv_close(struct store *s)
{
	struct stmt_cache *caches[] = {&s->wcache, &s->rcache};
	for (size_t k = 0; k < 2; k++) {
		for (size_t i = 0; i < caches[k]->n; i++)
			sqlite3_finalize(caches[k]->st[i]);
		caches[k]->n = 0;
	}
}

/* The first row of a read as an object (caller frees), or NULL. */
static cJSON *read_one(struct store *s, const char *sql, const char *const *params, int n)
{
	cJSON *rows = cJSON_CreateArray();
	pthread_mutex_lock(&s->rlock);
	run(s, s->r, sql, params, n, rows);
	pthread_mutex_unlock(&s->rlock);
	cJSON *first = cJSON_DetachItemFromArray(rows, 0);
	cJSON_Delete(rows);
	return first;
}

static cJSON *read_all(struct store *s, const char *sql, const char *const *params, int n)
{
	cJSON *rows = cJSON_CreateArray();
	pthread_mutex_lock(&s->rlock);
	run(s, s->r, sql, params, n, rows);
	pthread_mutex_unlock(&s->rlock);
	return rows;
}

static const char *get(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static int reply_obj(char **reply, const char *key, cJSON *value)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, key, value);
	*reply = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return 0;
}

static int fail(char **reply, int rv, const char *msg)
{
	*reply = strdup(msg);
	return rv;
}

/* ---------------------------------------------------------------- ops */

/* agents.load: open conversations per assignee. */
static int op_agents_load(struct store *s, const cJSON *req, char **reply)
{
	(void)req;
	cJSON *rows =
	        read_all(s,
	                 "SELECT assignee AS agent, count(*) AS open FROM conversations WHERE assignee IS NOT NULL"
	                 " AND status <> 'resolved' GROUP BY assignee",
	                 NULL, 0);
	cJSON *load = cJSON_CreateObject();
	cJSON *row;
	cJSON_ArrayForEach(row, rows) cJSON_AddNumberToObject(
	        load, get(row, "agent"), cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(row, "open")));
	cJSON_Delete(rows);
	return reply_obj(reply, "load", load);
}

#define CONVERSATION_COLUMNS                                                                                           \
	"c.id, c.contact_id, c.status, c.assignee, c.team, c.priority, c.labels, c.last_channel, c.snoozed_until,"     \
	" c.first_inbound_at, c.last_inbound_at, c.first_response_at, c.resolved_at, c.resolutions, c.created_at,"     \
	" c.updated_at, c.queued_at"

static cJSON *conversation_by_id(struct store *s, const char *id)
{
	const char *p[] = {id};
	return read_one(s, "SELECT " CONVERSATION_COLUMNS " FROM conversations AS c WHERE c.id = ?1", p, 1);
}

/* contact.lookup {urns: [...]}: the contact owning any of the addresses. */
static int op_contact_lookup(struct store *s, const cJSON *req, char **reply)
{
	const cJSON *u;
	cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(req, "urns"))
	{
		if (!cJSON_IsString(u))
			continue;
		const char *p[] = {u->valuestring};
		cJSON *c = read_one(s,
		                    "SELECT c.id, c.name, c.attributes FROM identities AS i JOIN contacts AS c"
		                    " ON c.id = i.contact_id WHERE i.urn = ?1",
		                    p, 1);
		if (c)
			return reply_obj(reply, "contact", c);
	}
	return fail(reply, PARLEY_ENOENT, "no contact has any of these addresses");
}

/* conversation.of_ref {channel, ref}: the conversation of the message a reply names (its id at the provider). */
static int op_conversation_of_ref(struct store *s, const cJSON *req, char **reply)
{
	const char *p[] = {get(req, "channel"), get(req, "ref")};
	if (!p[0] || !p[1])
		return fail(reply, PARLEY_EINVAL, "conversation.of_ref needs channel and ref");
	cJSON *c = read_one(s,
	                    "SELECT " CONVERSATION_COLUMNS " FROM messages AS m JOIN conversations AS c"
	                    " ON c.id = m.conversation_id WHERE m.channel = ?1 AND m.conversation_id IS NOT NULL"
	                    " AND (m.external_id = ?2 OR (m.provider_id IS NOT NULL AND m.provider_id = ?2))"
	                    " ORDER BY m.seq DESC LIMIT 1",
	                    p, 2);
	return c ? reply_obj(reply, "conversation", c) : fail(reply, PARLEY_ENOENT, "no stored message has that ref");
}

/* conversation.current {contact_id}: the contact's latest conversation. */
static int op_conversation_current(struct store *s, const cJSON *req, char **reply)
{
	const char *p[] = {get(req, "contact_id")};
	cJSON *c = read_one(s,
	                    "SELECT " CONVERSATION_COLUMNS " FROM conversations AS c WHERE c.contact_id = ?1"
	                    " ORDER BY c.created_at DESC, c.id DESC LIMIT 1",
	                    p, 1);
	return c ? reply_obj(reply, "conversation", c) : fail(reply, PARLEY_ENOENT, "the contact has no conversation");
}

/*
 * What a list shows of each conversation beside its row: the contact's name
 * and the latest message (its text cut to 200 characters).  One index step
 * each (messages_conversation backwards), so a page costs 25 of them.
 */
#define LIST_EXTRA_COLUMNS                                                                                             \
	"(SELECT name FROM contacts AS ct WHERE ct.id = c.contact_id) AS contact_name,"                                \
	" (SELECT json_object('id', m.id, 'direction', m.direction, 'channel', m.channel, 'channel_type',"             \
	" m.channel_type, 'text', substr(coalesce(json_extract(m.envelope, '$.text'), ''), 1, 200), 'at',"             \
	" m.received_at) FROM messages AS m WHERE m.conversation_id = c.id AND m.conversation_id IS NOT NULL"          \
	" AND m.kind = 'message' ORDER BY m.seq DESC LIMIT 1) AS last_message"

/* A JSON array of strings (the request's member) as text, or NULL when absent. */
static char *json_member(const cJSON *obj, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	return cJSON_IsArray(v) ? cJSON_PrintUnformatted(v) : NULL;
}

static int op_conversations_list(struct store *s, const cJSON *req, char **reply)
{
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	const cJSON *off = cJSON_GetObjectItemCaseSensitive(req, "offset");
	char limit[16], offset[24];
	snprintf(limit, sizeof(limit), "%d",
	         cJSON_IsNumber(lim) && lim->valueint > 0 && lim->valueint <= 1000 ? lim->valueint : 100);
	snprintf(offset, sizeof(offset), "%d",
	         cJSON_IsNumber(off) && off->valuedouble >= 0 && off->valuedouble <= 1e9 ? off->valueint : 0);
	/* visible_to {agent, teams}: only conversations of those teams or assigned to that agent. */
	const cJSON *vis = cJSON_GetObjectItemCaseSensitive(req, "visible_to");
	char *teams = cJSON_IsObject(vis) ? json_member(vis, "teams") : NULL;
	const char *p[] = {get(req, "status"),
	                   get(req, "team"),
	                   get(req, "assignee"),
	                   get(req, "label"),
	                   get(req, "channel"),
	                   get(req, "contact_id"),
	                   limit,
	                   offset,
	                   cJSON_IsObject(vis) ? "1" : NULL,
	                   cJSON_IsObject(vis) ? get(vis, "agent") : NULL,
	                   teams ? teams : "[]",
	                   get(req, "sla")};
	cJSON *rows = read_all(
	        s,
	        "SELECT " CONVERSATION_COLUMNS ", " LIST_EXTRA_COLUMNS " FROM conversations AS c"
	        " WHERE (?1 IS NULL OR c.status = ?1) AND (?2 IS NULL OR c.team = ?2)"
	        " AND (?3 IS NULL OR c.assignee = ?3)"
	        " AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(c.labels) WHERE value = ?4))"
	        " AND (?5 IS NULL OR EXISTS (SELECT 1 FROM messages AS m WHERE m.conversation_id = c.id"
	        "  AND m.conversation_id IS NOT NULL AND m.channel = ?5))"
	        " AND (?6 IS NULL OR c.contact_id = ?6)"
	        " AND (?9 IS NULL OR c.assignee = ?10 OR coalesce(c.team, '') = ''"
	        "  OR c.team IN (SELECT value FROM json_each(?11)))"
	        " AND (?12 IS NULL OR EXISTS (SELECT 1 FROM conversation_sla AS s WHERE s.conversation_id = c.id"
	        "  AND s.met_at IS NULL AND CASE ?12 WHEN 'breached' THEN s.breached_at IS NOT NULL"
	        "  ELSE s.warned_at IS NOT NULL AND s.breached_at IS NULL END))"
	        " ORDER BY c.updated_at DESC, c.id DESC LIMIT CAST(?7 AS INTEGER) OFFSET CAST(?8 AS INTEGER)",
	        p, 12);
	free(teams);
	return reply_obj(reply, "conversations", rows);
}

/*
 * conversations.counts: how many conversations of each status match the
 * filters of conversations.list (but status and paging), narrowed alike.
 */
static int op_conversations_counts(struct store *s, const cJSON *req, char **reply)
{
	const cJSON *vis = cJSON_GetObjectItemCaseSensitive(req, "visible_to");
	char *teams = cJSON_IsObject(vis) ? json_member(vis, "teams") : NULL;
	const char *p[] = {get(req, "team"),
	                   get(req, "assignee"),
	                   get(req, "label"),
	                   get(req, "channel"),
	                   cJSON_IsObject(vis) ? "1" : NULL,
	                   cJSON_IsObject(vis) ? get(vis, "agent") : NULL,
	                   teams ? teams : "[]"};
	cJSON *rows = read_all(s,
	                       "SELECT c.status AS status, count(*) AS n FROM conversations AS c"
	                       " WHERE (?1 IS NULL OR c.team = ?1) AND (?2 IS NULL OR c.assignee = ?2)"
	                       " AND (?3 IS NULL OR EXISTS (SELECT 1 FROM json_each(c.labels) WHERE value = ?3))"
	                       " AND (?4 IS NULL OR EXISTS (SELECT 1 FROM messages AS m WHERE m.conversation_id = c.id"
	                       "  AND m.conversation_id IS NOT NULL AND m.channel = ?4))"
	                       " AND (?5 IS NULL OR c.assignee = ?6 OR coalesce(c.team, '') = ''"
	                       "  OR c.team IN (SELECT value FROM json_each(?7)))"
	                       " GROUP BY c.status",
	                       p, 7);
	free(teams);
	cJSON *counts = cJSON_CreateObject();
	static const char *const statuses[] = {"open", "pending", "snoozed", "resolved"};
	for (size_t i = 0; i < 4; i++)
		cJSON_AddNumberToObject(counts, statuses[i], 0);
	const cJSON *row;
	cJSON_ArrayForEach(row, rows)
	{
		const char *st = get(row, "status");
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(row, "n");
		if (st && cJSON_IsNumber(n))
			cJSON_ReplaceItemInObjectCaseSensitive(counts, st, cJSON_CreateNumber(n->valuedouble));
	}
	cJSON_Delete(rows);
	return reply_obj(reply, "counts", counts);
}

static int op_conversation_get(struct store *s, const cJSON *req, char **reply)
{
	const char *id = get(req, "conversation_id") ? get(req, "conversation_id") : get(req, "id");
	cJSON *c = id ? conversation_by_id(s, id) : NULL;
	if (!c)
		return fail(reply, PARLEY_ENOENT, "no conversation with that conversation_id");
	const char *p[] = {id};
	const char *pc[] = {get(c, "contact_id")};
	cJSON *contact = read_one(s, "SELECT id, name, attributes FROM contacts WHERE id = ?1", pc, 1);
	cJSON *timeline = read_all(s,
	                           "SELECT " ENVELOPE_SQL " AS envelope FROM messages WHERE conversation_id = ?1"
	                           " AND conversation_id IS NOT NULL ORDER BY seq",
	                           p, 1);
	/* Rows come back as {"envelope": {...}}: the timeline is the envelopes. */
	cJSON *flat = cJSON_CreateArray();
	cJSON *row;
	cJSON_ArrayForEach(row, timeline)
	{
		cJSON *env = cJSON_DetachItemFromObjectCaseSensitive(row, "envelope");
		if (env)
			cJSON_AddItemToArray(flat, env);
	}
	cJSON_Delete(timeline);
	cJSON_AddItemToObject(c, "contact", contact ? contact : cJSON_CreateNull());
	cJSON_AddItemToObject(c, "timeline", flat);
	cJSON_AddItemToObject(c, "notes",
	                      read_all(s,
	                               "SELECT id, author, text, created_at FROM notes WHERE conversation_id = ?1"
	                               " ORDER BY created_at, id",
	                               p, 1));
	cJSON_AddItemToObject(c, "events",
	                      read_all(s,
	                               "SELECT type, data, at FROM conversation_events WHERE conversation_id = ?1"
	                               " ORDER BY seq",
	                               p, 1));
	return reply_obj(reply, "conversation", c);
}

/*
 * conversation.route {conversation_id, channel?, channel_types: {name: type}}:
 * where a reply goes.  The channel is the one named, else the one the
 * contact used last; the address is the contact's latest on that channel,
 * else an identity whose scheme is the channel's type.
 */
static int op_conversation_route(struct store *s, const cJSON *req, char **reply)
{
	const char *id = get(req, "conversation_id");
	cJSON *c = id ? conversation_by_id(s, id) : NULL;
	if (!c)
		return fail(reply, PARLEY_ENOENT, "no conversation with that conversation_id");
	const char *channel = get(req, "channel") ? get(req, "channel") : get(c, "last_channel");
	if (!channel) {
		cJSON_Delete(c);
		return fail(reply, PARLEY_EINVAL, "the conversation has no channel yet: name one");
	}
	const char *type = get(cJSON_GetObjectItemCaseSensitive(req, "channel_types"), channel);
	char scheme[64];
	snprintf(scheme, sizeof(scheme), "%s:%%", type ? type : "-");
	const char *p[] = {get(c, "contact_id"), channel, scheme};
	cJSON *to = read_one(s,
	                     "SELECT from_urn AS urn FROM messages WHERE contact_id = ?1 AND contact_id IS NOT NULL"
	                     " AND channel = ?2 AND direction = 'inbound' AND from_urn IS NOT NULL"
	                     " ORDER BY seq DESC LIMIT 1",
	                     p, 3);
	if (!to)
		to = read_one(
		        s,
		        "SELECT urn FROM identities WHERE contact_id = ?1 AND urn LIKE ?3 ORDER BY created_at LIMIT 1",
		        p, 3);
	if (!to) {
		cJSON_Delete(c);
		return fail(reply, PARLEY_EINVAL, "the contact has no address on that channel");
	}
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "channel", channel);
	cJSON_AddStringToObject(r, "to", get(to, "urn"));
	cJSON_AddStringToObject(r, "contact_id", get(c, "contact_id"));
	cJSON_Delete(to);
	cJSON_Delete(c);
	return reply_obj(reply, "route", r);
}

static int op_contact_get(struct store *s, const cJSON *req, char **reply)
{
	const char *id = get(req, "contact_id") ? get(req, "contact_id") : get(req, "id");
	const char *p[] = {id};
	cJSON *c = id ? read_one(s,
	                         "SELECT id, name, attributes, merged_into, created_at, updated_at FROM contacts"
	                         " WHERE id = ?1",
	                         p, 1)
	              : NULL;
	if (!c)
		return fail(reply, PARLEY_ENOENT, "no contact with that contact_id");
	cJSON_AddItemToObject(c, "identities",
	                      read_all(s,
	                               "SELECT urn, display_name, created_at FROM identities WHERE contact_id = ?1"
	                               " ORDER BY created_at, urn",
	                               p, 1));
	cJSON_AddItemToObject(c, "conversations",
	                      read_all(s,
	                               "SELECT " CONVERSATION_COLUMNS " FROM conversations AS c WHERE c.contact_id = ?1"
	                               " ORDER BY c.created_at",
	                               p, 1));
	return reply_obj(reply, "contact", c);
}

/* conversation_events.since {after, limit}: the log of conversation changes after seq `after`, in order. */
static int op_events_since(struct store *s, const cJSON *req, char **reply)
{
	const cJSON *after = cJSON_GetObjectItemCaseSensitive(req, "after");
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	char a[24], limit[16];
	snprintf(a, sizeof(a), "%lld",
	         cJSON_IsNumber(after) && after->valuedouble > 0 ? (long long)after->valuedouble : 0LL);
	snprintf(limit, sizeof(limit), "%d",
	         cJSON_IsNumber(lim) && lim->valueint > 0 && lim->valueint <= 1000 ? lim->valueint : 500);
	const char *p[] = {a, limit};
	cJSON *rows = read_all(s,
	                       "SELECT seq, conversation_id, type, data, at FROM conversation_events"
	                       " WHERE seq > CAST(?1 AS INTEGER) ORDER BY seq LIMIT CAST(?2 AS INTEGER)",
	                       p, 2);
	return reply_obj(reply, "events", rows);
}

/* events.position: the last message seq and the last conversation event seq (0 when none). */
static int op_events_position(struct store *s, char **reply)
{
	cJSON *r = read_one(s,
	                    "SELECT (SELECT coalesce(max(seq), 0) FROM messages) AS message_seq,"
	                    " (SELECT coalesce(max(seq), 0) FROM conversation_events) AS event_seq",
	                    NULL, 0);
	return r ? reply_obj(reply, "position", r) : fail(reply, PARLEY_EIO, "cannot read the positions");
}

/*
 * queue.waiting {team?, limit?}: the conversations waiting in a team's
 * queue (every team's when absent, team by team), in queue order: priority
 * (urgent, high, normal, low), then how long they have waited.
 */
static int op_queue_waiting(struct store *s, const cJSON *req, char **reply)
{
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	char limit[16];
	snprintf(limit, sizeof(limit), "%d",
	         cJSON_IsNumber(lim) && lim->valueint > 0 && lim->valueint <= 1000 ? lim->valueint : 100);
	const char *p[] = {get(req, "team"), limit};
	cJSON *rows =
	        read_all(s,
	                 "SELECT " CONVERSATION_COLUMNS " FROM conversations AS c"
	                 " WHERE c.queued_at IS NOT NULL AND (?1 IS NULL OR c.team = ?1)"
	                 " ORDER BY c.team, CASE c.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'low' THEN 3"
	                 "  ELSE 2 END, c.queued_at, c.id LIMIT CAST(?2 AS INTEGER)",
	                 p, 2);
	return reply_obj(reply, "waiting", rows);
}

/*
 * queue.handling {team, limit?}: the team's latest resolutions (newest
 * first), each with when its last assignment before the resolution was
 * and who held it: what an expected wait is estimated from.
 */
static int op_queue_handling(struct store *s, const cJSON *req, char **reply)
{
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	char limit[16];
	snprintf(limit, sizeof(limit), "%d",
	         cJSON_IsNumber(lim) && lim->valueint > 0 && lim->valueint <= 1000 ? lim->valueint : 50);
	const char *p[] = {get(req, "team"), limit};
	if (!p[0])
		return fail(reply, PARLEY_EINVAL, "queue.handling needs team");
	cJSON *rows =
	        read_all(s,
	                 "SELECT c.id, c.assignee, c.resolved_at, (SELECT max(e.at) FROM conversation_events AS e"
	                 "  WHERE e.conversation_id = c.id AND e.type = 'assigned' AND e.at <= c.resolved_at)"
	                 "  AS assigned_at FROM conversations AS c WHERE c.team = ?1 AND c.resolved_at IS NOT NULL"
	                 " AND c.status = 'resolved' ORDER BY c.resolved_at DESC LIMIT CAST(?2 AS INTEGER)",
	                 p, 2);
	return reply_obj(reply, "resolved", rows);
}

/* outbox.counts: outbound messages waiting (queued, retry, sending) and dead-lettered (failed). */
static int op_outbox_counts(struct store *s, char **reply)
{
	cJSON *r = read_one(
	        s,
	        "SELECT (SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'queued') AS queued,"
	        " (SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'retry') AS retry,"
	        " (SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'sending') AS sending,"
	        " (SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'failed') AS failed",
	        NULL, 0);
	return r ? reply_obj(reply, "counts", r) : fail(reply, PARLEY_EIO, "cannot count the outbox");
}

int conv_query(struct store *s, const char *op, const cJSON *req, char **reply)
{
	if (strcmp(op, "outbox.counts") == 0)
		return op_outbox_counts(s, reply);
	if (strcmp(op, "queue.handling") == 0)
		return op_queue_handling(s, req, reply);
	if (strcmp(op, "queue.waiting") == 0)
		return op_queue_waiting(s, req, reply);
	if (strcmp(op, "conversation_events.since") == 0)
		return op_events_since(s, req, reply);
	if (strcmp(op, "events.position") == 0)
		return op_events_position(s, reply);
	if (strcmp(op, "contact.lookup") == 0)
		return op_contact_lookup(s, req, reply);
	if (strcmp(op, "conversation.of_ref") == 0)
		return op_conversation_of_ref(s, req, reply);
	if (strcmp(op, "conversation.current") == 0)
		return op_conversation_current(s, req, reply);
	if (strcmp(op, "conversations.list") == 0)
		return op_conversations_list(s, req, reply);
	if (strcmp(op, "conversations.counts") == 0)
		return op_conversations_counts(s, req, reply);
	if (strcmp(op, "conversation.get") == 0)
		return op_conversation_get(s, req, reply);
	if (strcmp(op, "conversation.route") == 0)
		return op_conversation_route(s, req, reply);
	if (strcmp(op, "contact.get") == 0)
		return op_contact_get(s, req, reply);
	if (strcmp(op, "agents.load") == 0)
		return op_agents_load(s, req, reply);
	return PARLEY_ENOTSUP;
}
