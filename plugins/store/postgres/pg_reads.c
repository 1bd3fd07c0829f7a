/*
 * pg_reads.c: the read ops of the query table (messages.list, message.get,
 * conversations.list, conversation.get, contact.get, agents.load).  Their
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
	const char *p[] = {get(req, "channel"), get(req, "conversation_id"), get(req, "direction"),
	                   get(req, "after_id"), ltext};
	int rv;
	PGresult *r = pg_run(s,
	                     "SELECT id, " PG_ENVELOPE " FROM messages WHERE ($1::text IS NULL OR channel = $1)"
	                     " AND ($2::text IS NULL OR conversation_id = $2) AND ($3::text IS NULL OR direction = $3)"
	                     " AND ($4::text IS NULL OR seq > coalesce((SELECT seq FROM messages WHERE id = $4), -1))"
	                     " ORDER BY seq LIMIT $5::int",
	                     5, p, &rv);
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

static int op_conversations_list(struct pgstore *s, const cJSON *req, char **reply)
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
	int rv;
	struct pg_conn *c;
	if ((rv = pg_acquire(s, &c)) != 0)
		return rv;
	cJSON *a = rows(s, c,
	                "SELECT " PG_CONV_COLS " FROM conversations AS c"
	                " WHERE ($1::text IS NULL OR c.status = $1) AND ($2::text IS NULL OR c.team = $2)"
	                " AND ($3::text IS NULL OR c.assignee = $3) AND ($4::text IS NULL OR c.labels ? $4)"
	                " AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM messages AS m WHERE m.conversation_id = c.id"
	                "  AND m.channel = $5)) AND ($6::text IS NULL OR c.contact_id = $6)"
	                " ORDER BY c.updated_at DESC LIMIT $7::int",
	                7, p, &rv);
	pg_release(s, c);
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

int pg_query(void *store, const char *op, const char *request_json, char **reply)
{
	struct pgstore *s = store;
	static const char *const known[] = {"messages.list",    "message.get", "conversations.list",
	                                    "conversation.get", "contact.get", "agents.load"};
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
	default:
		rv = op_agents_load(s, reply);
	}
	cJSON_Delete(req);
	return rv;
}
