/*
 * pg_reads.c: the read ops of the query table (messages.list, message.get,
 * conversations.list, conversation.get, contact.get, agents.load,
 * contact.lookup, conversation.current, conversation.of_ref,
 * conversation.route, conversations.counts: sdk/schemas/store/), each one statement or a few.  Their
 * replies have the keys and nesting of the SQLite store's, so the control
 * API answers the same whatever the store.  Other op names are
 * PARLEY_ENOTSUP: with the typed contract the gateway's conversation core
 * does the writes.
 */
#include "pg_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	return *reply ? 0 : PARLEY_ENOMEM;
}

static int fail(char **reply, int rv, const char *msg)
{
	*reply = strdup(msg);
	return rv;
}

/* Rows of a statement on c as a JSON array; NULL (and *rv) on an error. */
static cJSON *rows(struct pgstore *s, struct pg_conn *c, const char *sql, int n, const char *const *p, int *rv)
{
	PGresult *r = pg_exec(s, c, sql, n, p, rv);
	if (!r)
		return NULL;
	cJSON *a = pg_rows_json(r);
	PQclear(r);
	return a;
}

/* The first row, or NULL (with *rv 0 when there is none). */
static cJSON *row(struct pgstore *s, struct pg_conn *c, const char *sql, int n, const char *const *p, int *rv)
{
	cJSON *a = rows(s, c, sql, n, p, rv);
	cJSON *first = a ? cJSON_DetachItemFromArray(a, 0) : NULL;
	cJSON_Delete(a);
	return first;
}

static int query_list(struct pgstore *s, const cJSON *req, char **reply)
{
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	int limit = 100;
	if (lim) {
		if (!cJSON_IsNumber(lim) || lim->valuedouble < 1 || lim->valuedouble > 1000)
			return fail(reply, PARLEY_EINVAL, "limit must be a number from 1 to 1000");
		limit = (int)lim->valuedouble;
	}
	char ltext[16];
	snprintf(ltext, sizeof(ltext), "%d", limit);
	const char *p[] = {
	        get(req, "channel"), get(req, "conversation_id"), get(req, "direction"), get(req, "after_id"), ltext,
	        get(req, "address"), get(req, "status")};
	int rv;
	PGresult *r =
	        pg_run(s,
	               "SELECT id, " PG_ENVELOPE " FROM messages WHERE ($1::text IS NULL OR channel = $1)"
	               " AND ($2::text IS NULL OR conversation_id = $2) AND ($3::text IS NULL OR direction = $3)"
	               " AND ($4::text IS NULL OR seq > coalesce((SELECT seq FROM messages WHERE id = $4), -1))"
	               " AND ($6::text IS NULL OR from_urn = $6 OR to_urn = $6) AND ($7::text IS NULL OR status = $7)"
	               " ORDER BY seq LIMIT $5::int",
	               7, p, &rv);
	if (!r)
		return rv;
	/* Stored envelopes are already JSON: concatenate instead of re-parsing. */
	size_t cap = 4096, len = 0;
	int count = PQntuples(r);
	for (int i = 0; i < count; i++)
		cap += (size_t)PQgetlength(r, i, 1) + 1;
	char *buf = malloc(cap + 640);
	if (!buf) {
		PQclear(r);
		return PARLEY_ENOMEM;
	}
	memcpy(buf, "{\"messages\":[", 13);
	len = 13;
	for (int i = 0; i < count; i++) {
		if (i)
			buf[len++] = ',';
		size_t el = (size_t)PQgetlength(r, i, 1);
		memcpy(buf + len, PQgetvalue(r, i, 1), el);
		len += el;
	}
	char *last = NULL;
	if (count == limit && count > 0) {
		cJSON *id = cJSON_CreateString(PQgetvalue(r, count - 1, 0));
		last = cJSON_PrintUnformatted(id);
		cJSON_Delete(id);
	}
	PQclear(r);
	if (last)
		snprintf(buf + len, cap + 640 - len, "],\"count\":%d,\"next_after_id\":%.600s}", count, last);
	else
		snprintf(buf + len, cap + 640 - len, "],\"count\":%d}", count);
	free(last);
	*reply = buf;
	return 0;
}

static int query_get(struct pgstore *s, const cJSON *req, char **reply)
{
	const char *id = get(req, "id");
	if (!id)
		return fail(reply, PARLEY_EINVAL, "message.get needs 'id'");
	const char *p[] = {id};
	int rv;
	PGresult *r = pg_run(s, "SELECT " PG_ENVELOPE " FROM messages WHERE id = $1", 1, p, &rv);
	if (!r)
		return rv;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return fail(reply, PARLEY_ENOENT, "no message with that id");
	}
	const char *env = PQgetvalue(r, 0, 0);
	size_t n = strlen(env) + 16;
	*reply = malloc(n);
	if (*reply)
		snprintf(*reply, n, "{\"message\":%s}", env);
	PQclear(r);
	return *reply ? 0 : PARLEY_ENOMEM;
}

/* The contact's name and the latest message, as the SQLite store's list has them. */
#define PG_LIST_EXTRA_COLS                                                                                             \
	"(SELECT name FROM contacts AS ct WHERE ct.id = c.contact_id) AS contact_name,"                                \
	" (SELECT jsonb_build_object('id', m.id, 'direction', m.direction, 'channel', m.channel, 'channel_type',"      \
	" m.channel_type, 'text', left(coalesce(m.envelope->>'text', ''), 200), 'at', m.received_at)"                  \
	" FROM messages AS m WHERE m.conversation_id = c.id AND m.kind = 'message' ORDER BY m.seq DESC LIMIT 1)"       \
	" AS last_message"

/* conversations.counts: conversations of each status matching the list's filters (but status). */
static int op_conversations_counts(struct pgstore *s, const cJSON *req, char **reply)
{
	const cJSON *vis = cJSON_GetObjectItemCaseSensitive(req, "visible_to");
	const cJSON *tv = cJSON_GetObjectItemCaseSensitive(vis, "teams");
	char *teams = cJSON_IsArray(tv) ? cJSON_PrintUnformatted(tv) : NULL;
	const char *p[] = {get(req, "team"),
	                   get(req, "assignee"),
	                   get(req, "label"),
	                   get(req, "channel"),
	                   cJSON_IsObject(vis) ? "1" : NULL,
	                   cJSON_IsObject(vis) ? get(vis, "agent") : NULL,
	                   teams ? teams : "[]"};
	int rv;
	struct pg_conn *c;
	if ((rv = pg_acquire(s, &c)) != 0) {
		free(teams);
		return rv;
	}
	cJSON *a = rows(s, c,
	                "SELECT jsonb_build_object('open', count(*) FILTER (WHERE c.status = 'open'),"
	                " 'pending', count(*) FILTER (WHERE c.status = 'pending'),"
	                " 'snoozed', count(*) FILTER (WHERE c.status = 'snoozed'),"
	                " 'resolved', count(*) FILTER (WHERE c.status = 'resolved')) AS counts FROM conversations AS c"
	                " WHERE ($1::text IS NULL OR c.team = $1) AND ($2::text IS NULL OR c.assignee = $2)"
	                " AND ($3::text IS NULL OR c.labels ? $3)"
	                " AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM messages AS m WHERE m.conversation_id = c.id"
	                "  AND m.channel = $4))"
	                " AND ($5::text IS NULL OR c.assignee = $6 OR coalesce(c.team, '') = '' OR $7::jsonb ? c.team)",
	                7, p, &rv);
	pg_release(s, c);
	free(teams);
	if (!a)
		return rv;
	cJSON *counts = cJSON_DetachItemFromObjectCaseSensitive(cJSON_GetArrayItem(a, 0), "counts");
	cJSON_Delete(a);
	return counts ? reply_obj(reply, "counts", counts) : fail(reply, PARLEY_EIO, "no counts");
}

static int op_conversations_list(struct pgstore *s, const cJSON *req, char **reply)
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
	const cJSON *tv = cJSON_GetObjectItemCaseSensitive(vis, "teams");
	char *teams = cJSON_IsArray(tv) ? cJSON_PrintUnformatted(tv) : NULL;
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
	int rv;
	struct pg_conn *c;
	if ((rv = pg_acquire(s, &c)) != 0) {
		free(teams);
		return rv;
	}
	cJSON *a = rows(
	        s, c,
	        "SELECT " PG_CONV_COLS ", " PG_LIST_EXTRA_COLS " FROM conversations AS c"
	        " WHERE ($1::text IS NULL OR c.status = $1) AND ($2::text IS NULL OR c.team = $2)"
	        " AND ($3::text IS NULL OR c.assignee = $3) AND ($4::text IS NULL OR c.labels ? $4)"
	        " AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM messages AS m WHERE m.conversation_id = c.id"
	        "  AND m.channel = $5)) AND ($6::text IS NULL OR c.contact_id = $6)"
	        " AND ($9::text IS NULL OR c.assignee = $10 OR coalesce(c.team, '') = '' OR $11::jsonb ? c.team)"
	        " AND ($12::text IS NULL OR EXISTS (SELECT 1 FROM conversation_sla AS s WHERE s.conversation_id = c.id"
	        "  AND s.met_at IS NULL AND CASE $12::text WHEN 'breached' THEN s.breached_at IS NOT NULL"
	        "  ELSE s.warned_at IS NOT NULL AND s.breached_at IS NULL END))"
	        " ORDER BY c.updated_at DESC, c.id DESC LIMIT $7::int OFFSET $8::int",
	        12, p, &rv);
	pg_release(s, c);
	free(teams);
	return a ? reply_obj(reply, "conversations", a) : rv;
}

static int op_conversation_get(struct pgstore *s, const cJSON *req, char **reply)
{
	const char *id = get(req, "conversation_id") ? get(req, "conversation_id") : get(req, "id");
	if (!id)
		return fail(reply, PARLEY_ENOENT, "no conversation with that conversation_id");
	struct pg_conn *c;
	int rv;
	if ((rv = pg_acquire(s, &c)) != 0)
		return rv;
	const char *p[] = {id};
	cJSON *conv = row(s, c, "SELECT " PG_CONV_COLS " FROM conversations AS c WHERE c.id = $1", 1, p, &rv);
	if (!conv) {
		pg_release(s, c);
		return rv ? rv : fail(reply, PARLEY_ENOENT, "no conversation with that conversation_id");
	}
	const char *pc[] = {get(conv, "contact_id")};
	cJSON *contact = row(s, c, "SELECT id, name, attributes FROM contacts WHERE id = $1", 1, pc, &rv);
	cJSON *timeline = NULL, *notes = NULL, *events = NULL;
	if (rv == 0) {
		/* The timeline is the envelopes themselves, not rows around them. */
		PGresult *r =
		        pg_exec(s, c, "SELECT " PG_ENVELOPE " FROM messages WHERE conversation_id = $1 ORDER BY seq", 1,
		                p, &rv);
		if (r) {
			timeline = cJSON_CreateArray();
			for (int i = 0; i < PQntuples(r); i++) {
				cJSON *e = cJSON_Parse(PQgetvalue(r, i, 0));
				if (e)
					cJSON_AddItemToArray(timeline, e);
			}
			PQclear(r);
		}
	}
	if (rv == 0)
		notes = rows(s, c,
		             "SELECT id, author, text, created_at FROM notes WHERE conversation_id = $1"
		             " ORDER BY created_at, id",
		             1, p, &rv);
	if (rv == 0)
		events = rows(s, c,
		              "SELECT type, data, at FROM conversation_events WHERE conversation_id = $1 ORDER BY seq",
		              1, p, &rv);
	pg_release(s, c);
	if (rv != 0) {
		cJSON_Delete(conv);
		cJSON_Delete(contact);
		cJSON_Delete(timeline);
		cJSON_Delete(notes);
		return rv;
	}
	cJSON_AddItemToObject(conv, "contact", contact ? contact : cJSON_CreateNull());
	cJSON_AddItemToObject(conv, "timeline", timeline);
	cJSON_AddItemToObject(conv, "notes", notes);
	cJSON_AddItemToObject(conv, "events", events);
	return reply_obj(reply, "conversation", conv);
}

static int op_contact_get(struct pgstore *s, const cJSON *req, char **reply)
{
	const char *id = get(req, "contact_id") ? get(req, "contact_id") : get(req, "id");
	if (!id)
		return fail(reply, PARLEY_ENOENT, "no contact with that contact_id");
	struct pg_conn *c;
	int rv;
	if ((rv = pg_acquire(s, &c)) != 0)
		return rv;
	const char *p[] = {id};
	cJSON *contact = row(
	        s, c, "SELECT id, name, attributes, merged_into, created_at, updated_at FROM contacts WHERE id = $1", 1,
	        p, &rv);
	cJSON *ids = NULL, *convs = NULL;
	if (contact)
		ids = rows(s, c,
		           "SELECT urn, display_name, created_at FROM identities WHERE contact_id = $1"
		           " ORDER BY created_at, urn",
		           1, p, &rv);
	if (contact && rv == 0)
		convs = rows(s, c,
		             "SELECT " PG_CONV_COLS
		             " FROM conversations AS c WHERE c.contact_id = $1 ORDER BY c.created_at",
		             1, p, &rv);
	pg_release(s, c);
	if (!contact || rv != 0) {
		cJSON_Delete(contact);
		cJSON_Delete(ids);
		return rv ? rv : fail(reply, PARLEY_ENOENT, "no contact with that contact_id");
	}
	cJSON_AddItemToObject(contact, "identities", ids);
	cJSON_AddItemToObject(contact, "conversations", convs);
	return reply_obj(reply, "contact", contact);
}

/* One row of a single statement as {key: row}, or ENOENT with msg. */
static int one(struct pgstore *s, const char *sql, int n, const char *const *p, const char *key, const char *msg,
               char **reply)
{
	struct pg_conn *c;
	int rv;
	if ((rv = pg_acquire(s, &c)) != 0)
		return rv;
	cJSON *o = row(s, c, sql, n, p, &rv);
	pg_release(s, c);
	if (!o)
		return rv ? rv : fail(reply, PARLEY_ENOENT, msg);
	return reply_obj(reply, key, o);
}

/* contact.lookup {urns: [...]}: the contact owning any of the addresses (the first listed wins). */
static int op_contact_lookup(struct pgstore *s, const cJSON *req, char **reply)
{
	cJSON *urns = cJSON_CreateArray();
	const cJSON *u;
	cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(req, "urns")) if (cJSON_IsString(u))
	        cJSON_AddItemToArray(urns, cJSON_CreateString(u->valuestring));
	char *text = cJSON_PrintUnformatted(urns);
	cJSON_Delete(urns);
	const char *p[] = {text};
	int rv = text ? one(s,
	                    "SELECT c.id, c.name, c.attributes FROM jsonb_array_elements_text($1::jsonb)"
	                    " WITH ORDINALITY AS u(urn, k) JOIN identities AS i ON i.urn = u.urn"
	                    " JOIN contacts AS c ON c.id = i.contact_id ORDER BY u.k LIMIT 1",
	                    1, p, "contact", "no contact has any of these addresses", reply)
	              : PARLEY_ENOMEM;
	free(text);
	return rv;
}

/* conversation.current {contact_id}: the contact's latest conversation. */
static int op_conversation_current(struct pgstore *s, const cJSON *req, char **reply)
{
	const char *p[] = {get(req, "contact_id")};
	if (!p[0])
		return fail(reply, PARLEY_ENOENT, "the contact has no conversation");
	return one(s,
	           "SELECT " PG_CONV_COLS " FROM conversations AS c WHERE c.contact_id = $1"
	           " ORDER BY c.created_at DESC, c.id DESC LIMIT 1",
	           1, p, "conversation", "the contact has no conversation", reply);
}

/* conversation.of_ref {channel, ref}: the conversation of the message a reply names. */
static int op_conversation_of_ref(struct pgstore *s, const cJSON *req, char **reply)
{
	const char *p[] = {get(req, "channel"), get(req, "ref")};
	if (!p[0] || !p[1])
		return fail(reply, PARLEY_EINVAL, "conversation.of_ref needs channel and ref");
	return one(s,
	           "SELECT " PG_CONV_COLS " FROM messages AS m JOIN conversations AS c ON c.id = m.conversation_id"
	           " WHERE m.channel = $1 AND (m.external_id = $2 OR m.provider_id = $2) ORDER BY m.seq DESC LIMIT 1",
	           2, p, "conversation", "no stored message has that ref", reply);
}

/*
 * conversation.route {conversation_id, channel?, channel_types}: where a
 * reply goes: the channel named or used last, and the contact's latest
 * address there, else an identity of that channel's type.
 */
static int op_conversation_route(struct pgstore *s, const cJSON *req, char **reply)
{
	const char *id = get(req, "conversation_id");
	if (!id)
		return fail(reply, PARLEY_ENOENT, "no conversation with that conversation_id");
	struct pg_conn *c;
	int rv;
	if ((rv = pg_acquire(s, &c)) != 0)
		return rv;
	const char *p[] = {id};
	cJSON *conv = row(s, c, "SELECT contact_id, last_channel FROM conversations WHERE id = $1", 1, p, &rv);
	if (!conv) {
		pg_release(s, c);
		return rv ? rv : fail(reply, PARLEY_ENOENT, "no conversation with that conversation_id");
	}
	const char *channel = get(req, "channel") ? get(req, "channel") : get(conv, "last_channel");
	if (!channel) {
		pg_release(s, c);
		cJSON_Delete(conv);
		return fail(reply, PARLEY_EINVAL, "the conversation has no channel yet: name one");
	}
	const char *type = get(cJSON_GetObjectItemCaseSensitive(req, "channel_types"), channel);
	char scheme[80];
	snprintf(scheme, sizeof(scheme), "%s:%%", type ? type : "-");
	const char *pr[] = {get(conv, "contact_id"), channel, scheme};
	cJSON *to = row(s, c,
	                "SELECT urn FROM (SELECT from_urn AS urn, 0 AS k, seq AS o FROM messages WHERE contact_id = $1"
	                " AND channel = $2 AND direction = 'inbound' AND from_urn IS NOT NULL"
	                " UNION ALL SELECT urn, 1, 0 FROM identities WHERE contact_id = $1 AND urn LIKE $3) AS x"
	                " ORDER BY k, o DESC LIMIT 1",
	                3, pr, &rv);
	pg_release(s, c);
	if (!to) {
		cJSON_Delete(conv);
		return rv ? rv : fail(reply, PARLEY_EINVAL, "the contact has no address on that channel");
	}
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "channel", channel);
	cJSON_AddStringToObject(r, "to", get(to, "urn"));
	cJSON_AddStringToObject(r, "contact_id", get(conv, "contact_id"));
	cJSON_Delete(to);
	cJSON_Delete(conv);
	return reply_obj(reply, "route", r);
}

/* agents.load: open conversations per assignee. */
static int op_agents_load(struct pgstore *s, char **reply)
{
	int rv;
	PGresult *r = pg_run(s,
	                     "SELECT assignee, count(*) FROM conversations WHERE assignee IS NOT NULL"
	                     " AND status <> 'resolved' GROUP BY assignee",
	                     0, NULL, &rv);
	if (!r)
		return rv;
	cJSON *load = cJSON_CreateObject();
	for (int i = 0; i < PQntuples(r); i++)
		cJSON_AddNumberToObject(load, PQgetvalue(r, i, 0), (double)strtoll(PQgetvalue(r, i, 1), NULL, 10));
	PQclear(r);
	return reply_obj(reply, "load", load);
}

/* A read on a pooled connection answered as {"key": [rows]} (reply_rows) or {"key": row} (reply_row). */
static int reply_read(struct pgstore *s, char **reply, const char *key, const char *sql, int n, const char *const *p,
                      int one)
{
	int rv;
	struct pg_conn *c;
	if ((rv = pg_acquire(s, &c)) != 0)
		return rv;
	cJSON *v = one ? row(s, c, sql, n, p, &rv) : rows(s, c, sql, n, p, &rv);
	pg_release(s, c);
	return v ? reply_obj(reply, key, v) : rv;
}

static int reply_rows(struct pgstore *s, char **reply, const char *key, const char *sql, int n, const char *const *p)
{
	return reply_read(s, reply, key, sql, n, p, 0);
}

static int reply_row(struct pgstore *s, char **reply, const char *key, const char *sql, int n, const char *const *p)
{
	return reply_read(s, reply, key, sql, n, p, 1);
}

/* conversation_events.since {after, limit}: the log of conversation changes after seq `after`, in order. */
static int op_events_since(struct pgstore *s, const cJSON *req, char **reply)
{
	const cJSON *after = cJSON_GetObjectItemCaseSensitive(req, "after");
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	char a[24], limit[16];
	snprintf(a, sizeof(a), "%lld",
	         cJSON_IsNumber(after) && after->valuedouble > 0 ? (long long)after->valuedouble : 0LL);
	snprintf(limit, sizeof(limit), "%d",
	         cJSON_IsNumber(lim) && lim->valueint > 0 && lim->valueint <= 1000 ? lim->valueint : 500);
	const char *p[] = {a, limit};
	return reply_rows(s, reply, "events",
	                  "SELECT seq, conversation_id, type, data, at FROM conversation_events"
	                  " WHERE seq > $1::bigint ORDER BY seq LIMIT $2::int",
	                  2, p);
}

/*
 * queue.waiting {team?, limit?}: the conversations waiting in a team's
 * queue (every team's when absent, team by team), in queue order: priority
 * (urgent, high, normal, low), then how long they have waited.
 */
static int op_queue_waiting(struct pgstore *s, const cJSON *req, char **reply)
{
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	char limit[16];
	snprintf(limit, sizeof(limit), "%d",
	         cJSON_IsNumber(lim) && lim->valueint > 0 && lim->valueint <= 1000 ? lim->valueint : 100);
	const char *p[] = {get(req, "team"), limit};
	return reply_rows(s, reply, "waiting",
	                  "SELECT " PG_CONV_COLS " FROM conversations AS c"
	                  " WHERE c.queued_at IS NOT NULL AND ($1::text IS NULL OR c.team = $1)"
	                  " ORDER BY c.team, CASE c.priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 WHEN 'low' THEN 3"
	                  "  ELSE 2 END, c.queued_at, c.id LIMIT $2::int",
	                  2, p);
}

/*
 * queue.handling {team, limit?}: the team's latest resolutions (newest
 * first), each with when its last assignment before the resolution was
 * and who held it: what an expected wait is estimated from.
 */
static int op_queue_handling(struct pgstore *s, const cJSON *req, char **reply)
{
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	char limit[16];
	snprintf(limit, sizeof(limit), "%d",
	         cJSON_IsNumber(lim) && lim->valueint > 0 && lim->valueint <= 1000 ? lim->valueint : 50);
	const char *p[] = {get(req, "team"), limit};
	if (!p[0])
		return fail(reply, PARLEY_EINVAL, "queue.handling needs team");
	return reply_rows(s, reply, "resolved",
	                  "SELECT c.id, c.assignee, c.resolved_at, (SELECT max(e.at) FROM conversation_events AS e"
	                  "  WHERE e.conversation_id = c.id AND e.type = 'assigned' AND e.at <= c.resolved_at)"
	                  "  AS assigned_at FROM conversations AS c WHERE c.team = $1 AND c.resolved_at IS NOT NULL"
	                  " AND c.status = 'resolved' ORDER BY c.resolved_at DESC LIMIT $2::int",
	                  2, p);
}

/* outbox.counts: outbound messages waiting (queued, retry, sending) and dead-lettered (failed). */
static int op_outbox_counts(struct pgstore *s, char **reply)
{
	int rv;
	struct pg_conn *c;
	if ((rv = pg_acquire(s, &c)) != 0)
		return rv;
	cJSON *r = row(
	        s, c,
	        "SELECT (SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'queued') AS queued,"
	        " (SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'retry') AS retry,"
	        " (SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'sending') AS sending,"
	        " (SELECT count(*) FROM messages WHERE direction = 'outbound' AND status = 'failed') AS failed",
	        0, NULL, &rv);
	pg_release(s, c);
	return r ? reply_obj(reply, "counts", r) : rv;
}

/* events.position: the last message seq and the last conversation event seq (0 when none). */
static int op_events_position(struct pgstore *s, char **reply)
{
	return reply_row(s, reply, "position",
	                 "SELECT (SELECT coalesce(max(seq), 0) FROM messages) AS message_seq,"
	                 " (SELECT coalesce(max(seq), 0) FROM conversation_events) AS event_seq",
	                 0, NULL);
}

int pg_query(void *store, const char *op, const char *request_json, char **reply)
{
	struct pgstore *s = store;
	if (strcmp(op, "reports.kpis") == 0)
		return pg_reports_kpis(s, request_json, reply);
	static const char *const known[] = {"messages.list",
	                                    "message.get",
	                                    "conversations.list",
	                                    "conversation.get",
	                                    "contact.get",
	                                    "agents.load",
	                                    "contact.lookup",
	                                    "conversation.current",
	                                    "conversation.of_ref",
	                                    "conversation.route",
	                                    "conversation_events.since",
	                                    "events.position",
	                                    "queue.waiting",
	                                    "queue.handling",
	                                    "outbox.counts",
	                                    "conversations.counts"};
	size_t k = 0;
	while (k < sizeof(known) / sizeof(known[0]) && strcmp(op, known[k]) != 0)
		k++;
	if (k == sizeof(known) / sizeof(known[0]))
		return PARLEY_ENOTSUP;
	cJSON *req = cJSON_Parse(request_json ? request_json : "{}");
	if (!cJSON_IsObject(req)) {
		cJSON_Delete(req);
		return fail(reply, PARLEY_EINVAL, "the request must be a JSON object");
	}
	int rv;
	switch (k) {
	case 0:
		rv = query_list(s, req, reply);
		break;
	case 1:
		rv = query_get(s, req, reply);
		break;
	case 2:
		rv = op_conversations_list(s, req, reply);
		break;
	case 3:
		rv = op_conversation_get(s, req, reply);
		break;
	case 4:
		rv = op_contact_get(s, req, reply);
		break;
	case 5:
		rv = op_agents_load(s, reply);
		break;
	case 6:
		rv = op_contact_lookup(s, req, reply);
		break;
	case 7:
		rv = op_conversation_current(s, req, reply);
		break;
	case 8:
		rv = op_conversation_of_ref(s, req, reply);
		break;
	case 9:
		rv = op_conversation_route(s, req, reply);
		break;
	case 10:
		rv = op_events_since(s, req, reply);
		break;
	case 11:
		rv = op_events_position(s, reply);
		break;
	case 12:
		rv = op_queue_waiting(s, req, reply);
		break;
	case 13:
		rv = op_queue_handling(s, req, reply);
		break;
	case 14:
		rv = op_outbox_counts(s, reply);
		break;
	default:
		rv = op_conversations_counts(s, req, reply);
	}
	cJSON_Delete(req);
	return rv;
}
