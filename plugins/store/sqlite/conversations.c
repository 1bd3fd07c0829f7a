/*
 * conversations.c: contacts, identities and conversations in the SQLite
 * store: what the commit does for each stored message, and the ops that
 * steps and the control API call (contact.lookup, conversation.current,
 * conversations.list, conversation.get/.resolve/.reopen/.assign/.set/.note/
 * .route, contact.get, contacts.merge/.unmerge).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Columns holding JSON text, returned as JSON values. */
static int json_column(const char *name)
{
	return strcmp(name, "labels") == 0 || strcmp(name, "attributes") == 0 || strcmp(name, "data") == 0 ||
	       strcmp(name, "moved") == 0 || strcmp(name, "envelope") == 0;
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

/* ------------------------------------------------------------- commit */

int conv_commit(struct store *s, const parley_envelope *e)
{
	const struct parley_host *h = s->host;
	const char *kind = h->envelope_get_str(e, "kind");
	const char *dir = h->envelope_get_str(e, "direction");
	const char *cid = h->envelope_get_str(e, "contact_id");
	const char *conv = h->envelope_get_str(e, "conversation_id");
	if (!kind || strcmp(kind, "message") != 0 || !conv)
		return 0;
	char now[64];
	sq_now(now);
	if (strcmp(dir, "outbound") == 0) {
		const char *p[] = {conv, now};
		return run(
		        s, s->w,
		        "UPDATE conversations SET first_response_at = coalesce(first_response_at, ?2), updated_at = ?2"
		        " WHERE id = ?1",
		        p, 2, NULL);
	}
	if (!cid)
		return 0;
	const char *from = h->envelope_get_str(e, "from");
	const char *channel = h->envelope_get_str(e, "channel");
	const char *at = h->envelope_get_str(e, "received_at");
	char *meta = h->envelope_get_json(e, "meta");
	cJSON *m = meta ? cJSON_Parse(meta) : NULL;
	free(meta);
	const char *name = get(m, "contact_name");
	const char *p1[] = {cid, name, now};
	int rv = run(s, s->w,
	             "INSERT INTO contacts (id, name, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)"
	             " ON CONFLICT (id) DO UPDATE SET name = excluded.name, updated_at = ?3"
	             /* A known contact is written only when it gains a name, not on every message. */
	             " WHERE contacts.name IS NULL AND excluded.name IS NOT NULL",
	             p1, 3, NULL);
	if (rv == 0 && from) {
		/* An address belongs to the contact that first used it; its latest display name is kept. */
		const char *p2[] = {from, cid, name, now};
		rv = run(s, s->w,
		         "INSERT INTO identities (urn, contact_id, display_name, created_at) VALUES (?1, ?2, ?3, ?4)"
		         " ON CONFLICT (urn) DO UPDATE SET display_name = excluded.display_name"
		         " WHERE excluded.display_name IS NOT NULL AND display_name IS NOT excluded.display_name",
		         p2, 4, NULL);
	}
	if (rv == 0) {
		const char *p3[] = {conv, cid, channel, at, now};
		rv = run(s, s->w,
		         "INSERT INTO conversation_events (conversation_id, type, data, at)"
		         " SELECT id, 'reopened', json_object('by', 'contact', 'channel', ?3), ?5 FROM conversations"
		         " WHERE id = ?1 AND status = 'resolved'",
		         p3, 5, NULL);
		if (rv == 0)
			rv = run(s, s->w,
			         "INSERT INTO conversation_events (conversation_id, type, data, at)"
			         " SELECT ?1, 'opened', json_object('channel', ?3), ?5"
			         " WHERE NOT EXISTS (SELECT 1 FROM conversations WHERE id = ?1)",
			         p3, 5, NULL);
		if (rv == 0)
			rv = run(
			        s, s->w,
			        "INSERT INTO conversations (id, contact_id, status, last_channel, first_inbound_at,"
			        "  last_inbound_at, created_at, updated_at) VALUES (?1, ?2, 'open', ?3, ?4, ?4, ?5, ?5)"
			        " ON CONFLICT (id) DO UPDATE SET last_channel = excluded.last_channel,"
			        "  last_inbound_at = excluded.last_inbound_at, updated_at = excluded.updated_at,"
			        "  snoozed_until = NULL, status = CASE WHEN status IN ('resolved', 'pending', "
			        "'snoozed')"
			        "  THEN 'open' ELSE status END",
			        p3, 5, NULL);
	}
	char *route = rv == 0 ? h->envelope_get_json(e, "route") : NULL;
	cJSON *r = route ? cJSON_Parse(route) : NULL;
	free(route);
	if (cJSON_IsObject(r)) {
		/* A router's decision: team, agent, priority; labels are added to those the conversation has. */
		const cJSON *labels = cJSON_GetObjectItemCaseSensitive(r, "labels");
		char *ltext = cJSON_IsArray(labels) ? cJSON_PrintUnformatted(labels) : NULL;
		const char *p4[] = {conv, get(r, "team"), get(r, "agent"), get(r, "priority"), ltext, now};
		rv = run(s, s->w,
		         "INSERT INTO conversation_events (conversation_id, type, data, at)"
		         " SELECT id, 'assigned', json_object('assignee', ?3, 'team', coalesce(?2, team), 'by', "
		         "'router'), ?6"
		         " FROM conversations WHERE id = ?1 AND ?3 IS NOT NULL AND assignee IS NOT ?3",
		         p4, 6, NULL);
		if (rv == 0)
			rv = run(
			        s, s->w,
			        "UPDATE conversations SET team = coalesce(?2, team), assignee = coalesce(?3, assignee),"
			        " priority = coalesce(?4, priority), labels = CASE WHEN ?5 IS NULL THEN labels ELSE"
			        " (SELECT json_group_array(value) FROM (SELECT value FROM json_each(labels) UNION"
			        "  SELECT value FROM json_each(?5))) END WHERE id = ?1",
			        p4, 5, NULL);
		free(ltext);
	}
	cJSON_Delete(r);
	cJSON_Delete(m);
	return rv;
}

/* ---------------------------------------------------------------- ops */

static int write_tx(struct store *s, const char *const *sqls, const char *const *params, int n);

/* conversations.wake: snoozed conversations whose time has come are open again. */
static int op_conversations_wake(struct store *s, char **reply)
{
	char now[64];
	sq_now(now);
	const char *p[] = {now};
	cJSON *rows = read_all(s,
	                       "SELECT id FROM conversations WHERE status = 'snoozed' AND snoozed_until IS NOT NULL"
	                       " AND snoozed_until <= ?1",
	                       p, 1);
	cJSON *ids = cJSON_CreateArray();
	cJSON *row;
	cJSON_ArrayForEach(row, rows)
	{
		const char *pw[] = {get(row, "id"), now};
		const char *sql[] = {"UPDATE conversations SET status = 'open', snoozed_until = NULL, updated_at = ?2"
		                     " WHERE id = ?1 AND status = 'snoozed'",
		                     "INSERT INTO conversation_events (conversation_id, type, data, at)"
		                     " SELECT ?1, 'reopened', json_object('by', 'snooze'), ?2 WHERE changes() > 0",
		                     NULL};
		if (write_tx(s, sql, pw, 2) == 0)
			cJSON_AddItemToArray(ids, cJSON_CreateString(get(row, "id")));
	}
	cJSON_Delete(rows);
	return reply_obj(reply, "woken", ids);
}

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
	" c.updated_at"

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

static int op_conversations_list(struct store *s, const cJSON *req, char **reply)
{
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	char limit[16];
	snprintf(limit, sizeof(limit), "%d",
	         cJSON_IsNumber(lim) && lim->valueint > 0 && lim->valueint <= 1000 ? lim->valueint : 100);
	const char *p[] = {get(req, "status"),
	                   get(req, "team"),
	                   get(req, "assignee"),
	                   get(req, "label"),
	                   get(req, "channel"),
	                   get(req, "contact_id"),
	                   limit};
	cJSON *rows = read_all(s,
	                       "SELECT " CONVERSATION_COLUMNS " FROM conversations AS c"
	                       " WHERE (?1 IS NULL OR c.status = ?1) AND (?2 IS NULL OR c.team = ?2)"
	                       " AND (?3 IS NULL OR c.assignee = ?3)"
	                       " AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(c.labels) WHERE value = ?4))"
	                       " AND (?5 IS NULL OR EXISTS (SELECT 1 FROM messages AS m WHERE m.conversation_id = c.id"
	                       "  AND m.conversation_id IS NOT NULL AND m.channel = ?5))"
	                       " AND (?6 IS NULL OR c.contact_id = ?6)"
	                       " ORDER BY c.updated_at DESC LIMIT CAST(?7 AS INTEGER)",
	                       p, 7);
	return reply_obj(reply, "conversations", rows);
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

/* Run statements in one write transaction; params shared. */
static int write_tx(struct store *s, const char *const *sqls, const char *const *params, int n)
{
	pthread_mutex_lock(&s->wlock);
	int rv = sq_exec(s, s->w, "BEGIN IMMEDIATE");
	for (size_t i = 0; rv == 0 && sqls[i]; i++)
		rv = run(s, s->w, sqls[i], params, n, NULL);
	if (rv == 0)
		rv = sq_exec(s, s->w, "COMMIT");
	else
		sq_exec(s, s->w, "ROLLBACK");
	pthread_mutex_unlock(&s->wlock);
	return rv;
}

/* conversation.resolve / conversation.reopen / conversation.assign / conversation.set */
static int op_conversation_change(struct store *s, const char *op, const cJSON *req, char **reply)
{
	const char *id = get(req, "conversation_id");
	cJSON *before = id ? conversation_by_id(s, id) : NULL;
	if (!before)
		return fail(reply, PARLEY_ENOENT, "no conversation with that conversation_id");
	char now[64];
	sq_now(now);
	int rv;
	if (strcmp(op, "conversation.resolve") == 0) {
		const char *p[] = {id, now, get(req, "by")};
		const char *sql[] = {"UPDATE conversations SET status = 'resolved', resolved_at = ?2,"
		                     " resolutions = resolutions + 1, snoozed_until = NULL, updated_at = ?2"
		                     " WHERE id = ?1 AND status <> 'resolved'",
		                     "INSERT INTO conversation_events (conversation_id, type, data, at)"
		                     " SELECT ?1, 'resolved', json_object('by', ?3), ?2 WHERE changes() > 0",
		                     NULL};
		rv = write_tx(s, sql, p, 3);
	} else if (strcmp(op, "conversation.reopen") == 0) {
		const char *p[] = {id, now, get(req, "by")};
		const char *sql[] = {
		        "UPDATE conversations SET status = 'open', snoozed_until = NULL, updated_at = ?2"
		        " WHERE id = ?1 AND status = 'resolved'",
		        "INSERT INTO conversation_events (conversation_id, type, data, at)"
		        " SELECT ?1, 'reopened', json_object('by', coalesce(?3, 'agent')), ?2 WHERE changes() > 0",
		        NULL};
		rv = write_tx(s, sql, p, 3);
	} else if (strcmp(op, "conversation.assign") == 0) {
		const char *p[] = {id, now, get(req, "assignee"), get(req, "team")};
		const char *sql[] = {
		        "UPDATE conversations SET assignee = ?3, team = coalesce(?4, team), updated_at = ?2"
		        " WHERE id = ?1",
		        "INSERT INTO conversation_events (conversation_id, type, data, at)"
		        " VALUES (?1, 'assigned', json_object('assignee', ?3, 'team', ?4), ?2)",
		        NULL};
		rv = write_tx(s, sql, p, 4);
	} else {
		/* conversation.set: status (open, pending, snoozed), snoozed_until, priority, labels, team. */
		const char *status = get(req, "status");
		if (status && strcmp(status, "open") && strcmp(status, "pending") && strcmp(status, "snoozed")) {
			cJSON_Delete(before);
			return fail(reply, PARLEY_EINVAL,
			            "status must be open, pending or snoozed (resolve with conversation.resolve)");
		}
		if (status && strcmp(status, "snoozed") == 0 && !get(req, "snoozed_until")) {
			cJSON_Delete(before);
			return fail(reply, PARLEY_EINVAL, "snoozed needs snoozed_until (an RFC 3339 time)");
		}
		const cJSON *labels = cJSON_GetObjectItemCaseSensitive(req, "labels");
		char *ltext = cJSON_IsArray(labels) ? cJSON_PrintUnformatted(labels) : NULL;
		const char *p[] = {
		        id, now, status, get(req, "snoozed_until"), get(req, "priority"), ltext, get(req, "team")};
		const char *sql[] = {
		        "UPDATE conversations SET status = coalesce(?3, status),"
		        " snoozed_until = CASE WHEN ?3 = 'snoozed' THEN ?4 WHEN ?3 IS NULL THEN snoozed_until END,"
		        " priority = coalesce(?5, priority), labels = coalesce(?6, labels),"
		        " team = coalesce(?7, team), updated_at = ?2 WHERE id = ?1",
		        "INSERT INTO conversation_events (conversation_id, type, data, at)"
		        " VALUES (?1, 'updated', json_object('status', ?3, 'priority', ?5, 'labels', json(?6),"
		        " 'team', ?7), ?2)",
		        NULL};
		rv = write_tx(s, sql, p, 7);
		free(ltext);
	}
	cJSON_Delete(before);
	if (rv != 0)
		return fail(reply, rv, "the store could not record the change");
	cJSON *after = conversation_by_id(s, id);
	return reply_obj(reply, "conversation", after);
}

static int op_conversation_note(struct store *s, const cJSON *req, char **reply)
{
	const char *id = get(req, "conversation_id");
	const char *text = get(req, "text");
	const char *note_id = get(req, "note_id");
	if (!id || !text || !text[0] || !note_id)
		return fail(reply, PARLEY_EINVAL, "conversation.note needs conversation_id and text");
	cJSON *c = conversation_by_id(s, id);
	if (!c)
		return fail(reply, PARLEY_ENOENT, "no conversation with that conversation_id");
	cJSON_Delete(c);
	char now[64];
	sq_now(now);
	const char *p[] = {note_id, id, get(req, "author"), text, now};
	const char *sql[] = {
	        "INSERT INTO notes (id, conversation_id, author, text, created_at) VALUES (?1, ?2, ?3, ?4, ?5)", NULL};
	if (write_tx(s, sql, p, 5) != 0)
		return fail(reply, PARLEY_EIO, "the store could not record the note");
	cJSON *n = cJSON_CreateObject();
	cJSON_AddStringToObject(n, "id", note_id);
	cJSON_AddStringToObject(n, "conversation_id", id);
	cJSON_AddStringToObject(n, "text", text);
	if (get(req, "author"))
		cJSON_AddStringToObject(n, "author", get(req, "author"));
	cJSON_AddStringToObject(n, "created_at", now);
	return reply_obj(reply, "note", n);
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

/* contact.update {contact_id, name?, attributes?}: attributes are merged (RFC 7396; null removes a key). */
static int op_contact_update(struct store *s, const cJSON *req, char **reply)
{
	const char *id = get(req, "contact_id");
	const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(req, "attributes");
	if (!id || (attrs && !cJSON_IsObject(attrs)))
		return fail(reply, PARLEY_EINVAL, "contact.update needs contact_id, and attributes as an object");
	char now[64];
	sq_now(now);
	char *atext = attrs ? cJSON_PrintUnformatted(attrs) : NULL;
	const char *p[] = {id, get(req, "name"), atext, now};
	const char *sql[] = {
	        "UPDATE contacts SET name = coalesce(?2, name), attributes = CASE WHEN ?3 IS NULL THEN attributes"
	        " ELSE json_patch(attributes, ?3) END, updated_at = ?4 WHERE id = ?1",
	        NULL};
	int rv = write_tx(s, sql, p, 4);
	free(atext);
	if (rv != 0)
		return fail(reply, rv, "the store could not update the contact");
	return op_contact_get(s, req, reply);
}

/*
 * contacts.merge {from, into, merge_id}: every identity, conversation and
 * message of `from` moves to `into`; names and attributes are merged (into
 * wins); what moved is recorded so contacts.unmerge {merge_id} can undo it.
 */
static int op_contacts_merge(struct store *s, const cJSON *req, char **reply)
{
	const char *from = get(req, "from"), *into = get(req, "into"), *mid = get(req, "merge_id");
	if (!from || !into || !mid || strcmp(from, into) == 0)
		return fail(reply, PARLEY_EINVAL, "contacts.merge needs two different contact ids: from and into");
	const char *p[] = {from, into, mid};
	cJSON *a = read_one(s, "SELECT id FROM contacts WHERE id = ?1 AND merged_into IS NULL", p, 1);
	cJSON *b = read_one(s, "SELECT id FROM contacts WHERE id = ?2 AND merged_into IS NULL", p, 2);
	int ok = a && b;
	cJSON_Delete(a);
	cJSON_Delete(b);
	if (!ok)
		return fail(reply, PARLEY_ENOENT, "both contacts must exist and not be merged already");
	char now[64];
	sq_now(now);
	const char *pw[] = {from, into, mid, now};
	const char *sql[] = {
	        "INSERT INTO contact_merges (id, from_id, into_id, moved, at) VALUES (?3, ?1, ?2, json_object("
	        " 'identities', (SELECT json_group_array(urn) FROM identities WHERE contact_id = ?1),"
	        " 'conversations', (SELECT json_group_array(id) FROM conversations WHERE contact_id = ?1),"
	        " 'messages', (SELECT json_group_array(id) FROM messages WHERE contact_id = ?1 AND contact_id IS NOT "
	        "NULL),"
	        " 'name', (SELECT name FROM contacts WHERE id = ?2),"
	        " 'attributes', (SELECT json(attributes) FROM contacts WHERE id = ?2)), ?4)",
	        "UPDATE identities SET contact_id = ?2 WHERE contact_id = ?1",
	        "UPDATE conversations SET contact_id = ?2, updated_at = ?4 WHERE contact_id = ?1",
	        "UPDATE messages SET contact_id = ?2, envelope = json_set(envelope, '$.contact_id', ?2)"
	        " WHERE contact_id = ?1 AND contact_id IS NOT NULL",
	        "UPDATE contacts SET name = coalesce(name, (SELECT name FROM contacts WHERE id = ?1)),"
	        " attributes = json_patch((SELECT attributes FROM contacts WHERE id = ?1), attributes), updated_at = ?4"
	        " WHERE id = ?2",
	        "UPDATE contacts SET merged_into = ?2, updated_at = ?4 WHERE id = ?1",
	        NULL};
	if (write_tx(s, sql, pw, 4) != 0)
		return fail(reply, PARLEY_EIO, "the store could not merge the contacts");
	const char *pm[] = {mid};
	cJSON *m = read_one(s, "SELECT id, from_id, into_id, moved, at FROM contact_merges WHERE id = ?1", pm, 1);
	return reply_obj(reply, "merge", m);
}

static int op_contacts_unmerge(struct store *s, const cJSON *req, char **reply)
{
	const char *mid = get(req, "merge_id");
	const char *pm[] = {mid};
	cJSON *m = mid ? read_one(s,
	                          "SELECT id, from_id, into_id, moved FROM contact_merges WHERE id = ?1 AND undone_at "
	                          "IS NULL",
	                          pm, 1)
	               : NULL;
	if (!m)
		return fail(reply, PARLEY_ENOENT, "no merge with that merge_id to undo");
	char now[64];
	sq_now(now);
	const char *p[] = {mid, get(m, "from_id"), get(m, "into_id"), now};
	const char *sql[] = {
	        "UPDATE identities SET contact_id = ?2 WHERE urn IN (SELECT value FROM json_each("
	        " (SELECT json_extract(moved, '$.identities') FROM contact_merges WHERE id = ?1)))",
	        "UPDATE conversations SET contact_id = ?2, updated_at = ?4 WHERE id IN (SELECT value FROM json_each("
	        " (SELECT json_extract(moved, '$.conversations') FROM contact_merges WHERE id = ?1)))",
	        "UPDATE messages SET contact_id = ?2, envelope = json_set(envelope, '$.contact_id', ?2)"
	        " WHERE id IN (SELECT value FROM json_each("
	        " (SELECT json_extract(moved, '$.messages') FROM contact_merges WHERE id = ?1)))",
	        "UPDATE contacts SET name = (SELECT json_extract(moved, '$.name') FROM contact_merges WHERE id = ?1),"
	        " attributes = coalesce((SELECT json_extract(moved, '$.attributes') FROM contact_merges WHERE id = ?1),"
	        " '{}'), updated_at = ?4 WHERE id = ?3",
	        "UPDATE contacts SET merged_into = NULL, updated_at = ?4 WHERE id = ?2",
	        "UPDATE contact_merges SET undone_at = ?4 WHERE id = ?1",
	        NULL};
	int rv = write_tx(s, sql, p, 4);
	cJSON_Delete(m);
	if (rv != 0)
		return fail(reply, PARLEY_EIO, "the store could not undo the merge");
	return reply_obj(
	        reply, "merge",
	        read_one(s, "SELECT id, from_id, into_id, at, undone_at FROM contact_merges WHERE id = ?1", pm, 1));
}

int conv_query(struct store *s, const char *op, const cJSON *req, char **reply)
{
	if (strcmp(op, "contact.lookup") == 0)
		return op_contact_lookup(s, req, reply);
	if (strcmp(op, "conversation.of_ref") == 0)
		return op_conversation_of_ref(s, req, reply);
	if (strcmp(op, "conversation.current") == 0)
		return op_conversation_current(s, req, reply);
	if (strcmp(op, "conversations.list") == 0)
		return op_conversations_list(s, req, reply);
	if (strcmp(op, "conversation.get") == 0)
		return op_conversation_get(s, req, reply);
	if (strcmp(op, "conversation.resolve") == 0 || strcmp(op, "conversation.reopen") == 0 ||
	    strcmp(op, "conversation.assign") == 0 || strcmp(op, "conversation.set") == 0)
		return op_conversation_change(s, op, req, reply);
	if (strcmp(op, "conversation.note") == 0)
		return op_conversation_note(s, req, reply);
	if (strcmp(op, "conversation.route") == 0)
		return op_conversation_route(s, req, reply);
	if (strcmp(op, "contact.get") == 0)
		return op_contact_get(s, req, reply);
	if (strcmp(op, "contact.update") == 0)
		return op_contact_update(s, req, reply);
	if (strcmp(op, "contacts.merge") == 0)
		return op_contacts_merge(s, req, reply);
	if (strcmp(op, "contacts.unmerge") == 0)
		return op_contacts_unmerge(s, req, reply);
	if (strcmp(op, "agents.load") == 0)
		return op_agents_load(s, req, reply);
	if (strcmp(op, "conversations.wake") == 0)
		return op_conversations_wake(s, reply);
	return PARLEY_ENOTSUP;
}
