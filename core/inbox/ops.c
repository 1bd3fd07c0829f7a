/*
 * ops.c: what changing a conversation means: resolve, reopen, assign, set
 * (status, snooze, priority, labels, team), a note, the wake-up of snoozed
 * conversations, and the first response.  Each change and its history
 * entry are written in one store transaction, on the conversation locked,
 * with what it does to the SLA clock (sla.h) and the survey (survey.h).
 * The history is what the KPIs are computed from (docs/kpis.md): each row
 * says who did it (data.by), and a change that makes the conversation wait
 * in its team's queue adds a `queued` row.
 */
#include "envelope.h"
#include "internal.h"
#include "sla.h"
#include "survey.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* What a change does to the locked conversation c; adds its history entry to ev (type NULL: no change). */
static int change(const char *op, const cJSON *req, struct parley_conversation_rec *c,
                  struct parley_conversation_event_rec *ev, struct arena *a, const char *now, const char **why)
{
	const char *by = jstr(req, "by");
	if (strcmp(op, "conversation.resolve") == 0) {
		if (same(c->status, "resolved"))
			return 0;
		c->status = "resolved";
		c->resolved_at = now;
		c->resolutions++;
		c->snoozed_until = NULL;
		*ev = (struct parley_conversation_event_rec){c->id, "resolved", event_data(a, "by", by, NULL), now};
	} else if (strcmp(op, "conversation.reopen") == 0) {
		if (!same(c->status, "resolved"))
			return 0;
		c->status = "open";
		c->snoozed_until = NULL;
		*ev = (struct parley_conversation_event_rec){c->id, "reopened",
		                                             event_data(a, "by", by ? by : "agent", NULL), now};
	} else if (strcmp(op, "conversation.assign") == 0) {
		c->assignee = arena_dup(a, jstr(req, "assignee"));
		if (jstr(req, "team"))
			c->team = arena_dup(a, jstr(req, "team"));
		*ev = (struct parley_conversation_event_rec){
		        c->id, "assigned",
		        event_data(a, "assignee", jstr(req, "assignee"), "team", jstr(req, "team"), "by", by, NULL),
		        now};
	} else {
		const char *status = jstr(req, "status"), *until = jstr(req, "snoozed_until");
		if (status && !same(status, "open") && !same(status, "pending") && !same(status, "snoozed")) {
			*why = "status must be open, pending or snoozed (resolve with conversation.resolve)";
			return PARLEY_EINVAL;
		}
		if (same(status, "snoozed") && (!until || time_parse_ms(until) == 0)) {
			*why = "snoozed needs snoozed_until (an RFC 3339 time)";
			return PARLEY_EINVAL;
		}
		const cJSON *labels = cJSON_GetObjectItemCaseSensitive(req, "labels");
		if (labels && !cJSON_IsArray(labels)) {
			*why = "labels must be an array of strings";
			return PARLEY_EINVAL;
		}
		if (status) {
			c->status = arena_dup(a, status);
			c->snoozed_until = same(status, "snoozed") ? arena_dup(a, until) : NULL;
		}
		if (jstr(req, "priority"))
			c->priority = arena_dup(a, jstr(req, "priority"));
		if (jstr(req, "team"))
			c->team = arena_dup(a, jstr(req, "team"));
		cJSON *data = cJSON_CreateObject();
		if (status)
			cJSON_AddStringToObject(data, "status", status);
		if (jstr(req, "priority"))
			cJSON_AddStringToObject(data, "priority", jstr(req, "priority"));
		if (labels) {
			c->labels = arena_json(a, cJSON_Duplicate(labels, 1));
			cJSON_AddItemToObject(data, "labels", cJSON_Duplicate(labels, 1));
		}
		if (jstr(req, "team"))
			cJSON_AddStringToObject(data, "team", jstr(req, "team"));
		if (by)
			cJSON_AddStringToObject(data, "by", by);
		*ev = (struct parley_conversation_event_rec){c->id, "updated", arena_json(a, data), now};
	}
	c->updated_at = now;
	return arena_ok(a) ? 0 : PARLEY_ENOMEM;
}

static int conversation_change(struct inbox *ib, const char *op, const cJSON *req, char **reply)
{
	const char *id = jstr(req, "conversation_id");
	if (!id)
		return inbox_fail(reply, PARLEY_EINVAL, "the op needs conversation_id");
	struct arena a = {0};
	char now[64];
	inbox_now(now);
	parley_store_tx *tx = NULL;
	int rv = ib->t->tx_begin(ib->data, &tx);
	if (rv != 0)
		return inbox_fail(reply, rv, "the store cannot record the change now");
	struct parley_conversation_rec c;
	struct parley_conversation_event_rec ev[2] = {{0}};
	const char *why = "the store could not record the change";
	rv = ib->t->conversation_lock(tx, id, &c);
	if (rv == PARLEY_ENOENT)
		why = "no conversation with that conversation_id";
	const char *before = rv == 0 ? c.status : NULL;
	int was_waiting = rv == 0 && inbox_waiting(&c);
	if (rv == 0)
		rv = change(op, req, &c, &ev[0], &a, now, &why);
	size_t nev = ev[0].type ? 1 : 0;
	if (rv == 0 && nev && !was_waiting && inbox_waiting(&c))
		ev[nev++] = (struct parley_conversation_event_rec){
		        c.id, "queued", event_data(&a, "team", c.team, "by", jstr(req, "by"), NULL), now};
	if (rv == 0 && nev)
		rv = ib->t->conversations_put(tx, &c, 1);
	if (rv == 0 && nev)
		rv = ib->t->conversation_events_append(tx, ev, nev);
	/* The SLA clock and the survey follow the status in the same transaction. */
	if (rv == 0 && nev)
		rv = sla_status_changed(ib->sla, ib->t, tx, &c, before, now);
	if (rv == 0 && nev && same(c.status, "resolved"))
		rv = survey_schedule(ib->surveys, ib->t, tx, &c, now);
	cJSON *after = rv == 0 ? inbox_conversation_json(&c) : NULL;
	if (rv == 0)
		rv = ib->t->tx_commit(tx);
	else
		ib->t->tx_rollback(tx);
	arena_free(&a);
	if (rv != 0) {
		cJSON_Delete(after);
		return inbox_fail(reply, rv, why);
	}
	ib->changed(ib->changed_arg);
	return inbox_reply(reply, "conversation", after);
}

static int conversation_note(struct inbox *ib, const cJSON *req, char **reply)
{
	const char *id = jstr(req, "conversation_id"), *text = jstr(req, "text"), *note_id = jstr(req, "note_id");
	if (!id || !text || !text[0] || !note_id)
		return inbox_fail(reply, PARLEY_EINVAL, "conversation.note needs conversation_id and text");
	char now[64];
	inbox_now(now);
	parley_store_tx *tx = NULL;
	int rv = ib->t->tx_begin(ib->data, &tx);
	struct parley_conversation_rec c;
	if (rv == 0 && (rv = ib->t->conversation_lock(tx, id, &c)) == 0)
		rv = ib->t->note_insert(tx, note_id, id, jstr(req, "author"), text, now);
	if (rv == 0)
		rv = ib->t->tx_commit(tx);
	else if (tx)
		ib->t->tx_rollback(tx);
	if (rv == PARLEY_ENOENT)
		return inbox_fail(reply, rv, "no conversation with that conversation_id");
	if (rv != 0)
		return inbox_fail(reply, rv, "the store could not record the note");
	cJSON *n = cJSON_CreateObject();
	cJSON_AddStringToObject(n, "id", note_id);
	cJSON_AddStringToObject(n, "conversation_id", id);
	cJSON_AddStringToObject(n, "text", text);
	if (jstr(req, "author"))
		cJSON_AddStringToObject(n, "author", jstr(req, "author"));
	cJSON_AddStringToObject(n, "created_at", now);
	return inbox_reply(reply, "note", n);
}

struct woken {
	struct parley_conversation_rec *c;
	size_t n, cap;
	struct arena a;
};

static int keep_due(void *arg, const void *row)
{
	struct woken *w = arg;
	const struct parley_conversation_rec *r = row;
	if (array_room(&w->c, w->n, &w->cap, sizeof(*w->c)) != 0)
		return PARLEY_ENOMEM;
	w->c[w->n++] = *r;
	return 0;
}

/* conversations.wake: snoozed conversations whose time has come are open again, once across nodes. */
static int conversations_wake(struct inbox *ib, char **reply)
{
	char now[64];
	inbox_now(now);
	struct woken w = {0};
	parley_store_tx *tx = NULL;
	int rv = ib->t->tx_begin(ib->data, &tx);
	if (rv == 0)
		rv = ib->t->conversations_due(tx, now, 500, keep_due, &w);
	struct parley_conversation_event_rec *ev = calloc(w.n ? w.n : 1, sizeof(*ev));
	rv = rv == 0 && !ev ? PARLEY_ENOMEM : rv;
	for (size_t i = 0; i < w.n && rv == 0; i++) {
		w.c[i].status = "open";
		w.c[i].snoozed_until = NULL;
		w.c[i].updated_at = now;
		/* Snoozed to open: an update, not a reopening (which is of a resolved conversation). */
		ev[i] = (struct parley_conversation_event_rec){w.c[i].id, "updated",
		                                               "{\"status\":\"open\",\"by\":\"snooze\"}", now};
	}
	if (rv == 0 && w.n > 0)
		rv = ib->t->conversations_put(tx, w.c, w.n);
	if (rv == 0 && w.n > 0)
		rv = ib->t->conversation_events_append(tx, ev, w.n);
	for (size_t i = 0; i < w.n && rv == 0; i++)
		rv = sla_track(ib->sla, ib->t, tx, &w.c[i], SLA_RESUMED, now);
	cJSON *ids = cJSON_CreateArray();
	for (size_t i = 0; i < w.n && rv == 0; i++)
		cJSON_AddItemToArray(ids, cJSON_CreateString(w.c[i].id));
	if (rv == 0)
		rv = ib->t->tx_commit(tx);
	else if (tx)
		ib->t->tx_rollback(tx);
	free(ev);
	free(w.c);
	arena_free(&w.a);
	if (rv != 0) {
		cJSON_Delete(ids);
		return inbox_fail(reply, rv, "the store could not wake snoozed conversations");
	}
	if (cJSON_GetArraySize(ids) > 0)
		ib->changed(ib->changed_arg);
	return inbox_reply(reply, "woken", ids);
}

int inbox_conversation_op(struct inbox *ib, const char *op, const cJSON *req, char **reply)
{
	if (strcmp(op, "conversation.resolve") == 0 || strcmp(op, "conversation.reopen") == 0 ||
	    strcmp(op, "conversation.assign") == 0 || strcmp(op, "conversation.set") == 0)
		return conversation_change(ib, op, req, reply);
	if (strcmp(op, "conversation.note") == 0)
		return conversation_note(ib, req, reply);
	if (strcmp(op, "conversations.wake") == 0)
		return conversations_wake(ib, reply);
	return PARLEY_ENOTSUP;
}

int inbox_sent(struct inbox *ib, const char *conversation_id, int64_t at_ms, const char *agent)
{
	if (!ib->t || !conversation_id)
		return 0;
	char at[64];
	time_format_ms(at_ms, at);
	parley_store_tx *tx = NULL;
	int rv = ib->t->tx_begin(ib->data, &tx);
	struct parley_conversation_rec c;
	if (rv == 0)
		rv = ib->t->conversation_lock(tx, conversation_id, &c);
	int first = rv == 0 && !c.first_response_at;
	struct parley_conversation_event_rec ev[2];
	size_t nev = 0;
	struct arena a = {0};
	if (first) {
		c.first_response_at = at;
		c.updated_at = at;
		ev[nev++] = (struct parley_conversation_event_rec){conversation_id, "first_response", "{}", at};
		rv = ib->t->conversations_put(tx, &c, 1);
	}
	/* A human reply (an agent's, accepted by the provider): what first response times are measured by. */
	if (rv == 0 && agent)
		ev[nev++] = (struct parley_conversation_event_rec){
		        conversation_id, "replied", event_data(&a, "by", agent, "kind", "agent", NULL), at};
	if (rv == 0 && nev)
		rv = arena_ok(&a) ? ib->t->conversation_events_append(tx, ev, nev) : PARLEY_ENOMEM;
	/* A reply keeps the response promises; what is sent on a resolved conversation (its survey) is no reply. */
	if (rv == 0 && !same(c.status, "resolved"))
		rv = sla_track(ib->sla, ib->t, tx, &c, SLA_REPLIED, at);
	if (rv == 0)
		rv = ib->t->tx_commit(tx);
	else if (tx)
		ib->t->tx_rollback(tx);
	arena_free(&a);
	return rv == PARLEY_ENOENT ? 0 : rv;
}

int inbox_log(struct inbox *ib, const char *conversation_id, const char *type, const char *data)
{
	if (!ib->t || !conversation_id || !type)
		return ib->t ? PARLEY_EINVAL : 0;
	char now[64];
	inbox_now(now);
	parley_store_tx *tx = NULL;
	int rv = ib->t->tx_begin(ib->data, &tx);
	struct parley_conversation_rec c;
	if (rv == 0)
		rv = ib->t->conversation_lock(tx, conversation_id, &c);
	struct parley_conversation_event_rec ev = {conversation_id, type, data ? data : "{}", now};
	if (rv == 0)
		rv = ib->t->conversation_events_append(tx, &ev, 1);
	if (rv == 0)
		rv = ib->t->tx_commit(tx);
	else if (tx)
		ib->t->tx_rollback(tx);
	return rv;
}
