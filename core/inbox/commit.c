/*
 * commit.c: the group commit, decided by the conversation core.
 *
 * In one store transaction: insert the messages (dedupe), apply receipts,
 * then decide for the new inbound messages, in batch order:
 *   contacts:      each sender address is claimed for the contact the
 *                  identify step proposed; an address another transaction
 *                  claimed first keeps its owner, and the message follows
 *                  it.  The owners are locked, so every decision about one
 *                  contact is serialized across threads and nodes.
 *   conversations: the message joins the conversation its thread step
 *                  proposed when that exists; a proposed new conversation
 *                  gives way to the contact's latest one when that is not
 *                  resolved, or was resolved within the reopen window
 *                  (another node opened it meanwhile); else it opens.
 * Then the router's decision (team, agent, priority, labels) is recorded,
 * and every change gets its history entry in the same transaction (opened,
 * reopened, a pending or snoozed one open again, assigned, queued: it
 * starts waiting in its team's queue), as do the SLA clocks the changes
 * start, run again or stop (sla.h).  A message to a resolved conversation
 * that answers its survey (survey.h) is the rating and reopens nothing.
 */
#include "envelope.h"
#include "internal.h"
#include "sla.h"
#include "store.h"
#include "survey.h"

#include <stdlib.h>
#include <string.h>

/* One contact touched by the batch, with its latest conversation as the batch leaves it. */
struct touched {
	const char *contact_id;
	struct parley_contact_rec contact;
	int contact_found, contact_dirty;
	struct parley_conversation_rec conv;
	int conv_found, conv_dirty;
};

struct decision {
	struct inbox *ib;
	parley_store_tx *tx;
	struct arena a;
	struct touched *t;
	size_t nt;
	/* Conversations the batch touched other than a contact's latest (thread_ref joins). */
	struct parley_conversation_rec *older;
	size_t n_older;
	struct parley_conversation_event_rec *events;
	size_t n_events, cap_events;
	/* What the batch did to conversations' SLA clocks, applied once the conversations are written. */
	struct clock_cause {
		const char *conversation_id;
		enum sla_cause cause;
	} * causes;
	size_t n_causes, cap_causes;
	char now[64];
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int add_event(struct decision *d, const char *conv, const char *type, const char *data)
{
	if (array_room(&d->events, d->n_events, &d->cap_events, sizeof(*d->events)) != 0)
		return PARLEY_ENOMEM;
	d->events[d->n_events++] = (struct parley_conversation_event_rec){conv, type, data ? data : "{}", d->now};
	return 0;
}

static int add_cause(struct decision *d, const char *conv, enum sla_cause cause)
{
	if (array_room(&d->causes, d->n_causes, &d->cap_causes, sizeof(*d->causes)) != 0)
		return PARLEY_ENOMEM;
	d->causes[d->n_causes++] = (struct clock_cause){conv, cause};
	return 0;
}

static int cmp_touched(const void *key, const void *elem)
{
	return strcmp(key, ((const struct touched *)elem)->contact_id);
}

/* The batch's contacts are sorted by id (the order they are locked in). */
static struct touched *touched_of(struct decision *d, const char *contact_id)
{
	return contact_id && d->nt ? bsearch(contact_id, d->t, d->nt, sizeof(*d->t), cmp_touched) : NULL;
}

/* An inbound message whose contact and conversation the core decides. */
static int decided_here(const parley_envelope *e, int result)
{
	return result == 0 && same(envelope_get(e, "direction"), "inbound") && envelope_get(e, "contact_id") &&
	       envelope_get(e, "from") && !same(envelope_get(e, "kind"), "status");
}

static const char *contact_name(struct decision *d, const parley_envelope *e)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(e->obj, "meta");
	return arena_dup(&d->a, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "contact_name")));
}

/* One sender address of the batch: which envelope, in batch order. */
struct claim {
	const char *urn;
	size_t env;
};

static int cmp_claim(const void *a, const void *b)
{
	const struct claim *x = a, *y = b;
	int c = strcmp(x->urn, y->urn);
	return c ? c : (x->env > y->env) - (x->env < y->env);
}

/*
 * Claim the senders' addresses, and lock and create the contacts that own
 * them.  Sorting does the grouping, so a batch of n costs n log n, not n².
 */
static int decide_contacts(struct decision *d, parley_envelope *const *envs, size_t n, const int *results)
{
	const struct parley_store_typed_ops *t = d->ib->t;
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		m += decided_here(envs[i], results[i]);
	if (m == 0)
		return 0;
	struct claim *cl = calloc(m, sizeof(*cl));
	struct parley_identity_rec *ids = calloc(m, sizeof(*ids));
	const char **owners = calloc(m, sizeof(*owners));
	const char **contacts = calloc(m, sizeof(*contacts));
	size_t *of = calloc(m, sizeof(*of)); /* claim -> its address's entry in ids */
	int rv = cl && ids && owners && contacts && of ? 0 : PARLEY_ENOMEM;
	size_t k = 0, nc = 0;
	for (size_t i = 0, j = 0; i < n && rv == 0; i++)
		if (decided_here(envs[i], results[i]))
			cl[j++] = (struct claim){envelope_get(envs[i], "from"), i};
	if (rv == 0) {
		/* One claim per address, the batch's first proposal for it, in address order. */
		qsort(cl, m, sizeof(*cl), cmp_claim);
		for (size_t j = 0; j < m; j++) {
			if (j == 0 || strcmp(cl[j].urn, cl[j - 1].urn) != 0) {
				const parley_envelope *e = envs[cl[j].env];
				ids[k++] = (struct parley_identity_rec){arena_dup(&d->a, cl[j].urn),
				                                        arena_dup(&d->a, envelope_get(e, "contact_id")),
				                                        contact_name(d, e), d->now};
			}
			of[j] = k - 1;
		}
		rv = arena_ok(&d->a) ? t->identities_claim(d->tx, ids, k, owners) : PARLEY_ENOMEM;
	}
	/* Each message follows its address's owner. */
	for (size_t j = 0; j < m && rv == 0; j++) {
		const char *o = owners[of[j]] ? owners[of[j]] : ids[of[j]].contact_id;
		if (!same(o, envelope_get(envs[cl[j].env], "contact_id")))
			rv = envelope_set(envs[cl[j].env], "contact_id", o);
	}
	/* Lock the owners in id order; create those that are new. */
	for (size_t j = 0; j < k && rv == 0; j++)
		contacts[j] = owners[j] ? owners[j] : ids[j].contact_id;
	if (rv == 0) {
		qsort(contacts, k, sizeof(*contacts), cmp_str);
		for (size_t j = 0; j < k; j++)
			if (nc == 0 || strcmp(contacts[j], contacts[nc - 1]) != 0)
				contacts[nc++] = contacts[j];
		d->t = calloc(nc, sizeof(*d->t));
		struct parley_contact_rec *recs = calloc(nc, sizeof(*recs));
		int *found = calloc(nc, sizeof(*found));
		rv = d->t && recs && found ? t->contacts_lock(d->tx, contacts, nc, recs, found) : PARLEY_ENOMEM;
		for (size_t x = 0; x < nc && rv == 0; x++) {
			d->t[x].contact_id = contacts[x];
			d->t[x].contact = recs[x];
			d->t[x].contact_found = found[x];
		}
		d->nt = rv == 0 ? nc : 0;
		free(recs);
		free(found);
	}
	/* A new contact is named from its first message; a known one gains a name it lacked. */
	for (size_t i = 0; i < n && rv == 0; i++) {
		if (!decided_here(envs[i], results[i]))
			continue;
		struct touched *tc = touched_of(d, envelope_get(envs[i], "contact_id"));
		const char *name = tc && !tc->contact.name ? contact_name(d, envs[i]) : NULL;
		if (!name)
			continue;
		tc->contact.name = name;
		tc->contact_dirty = 1;
	}
	struct parley_contact_rec *fresh = calloc(d->nt ? d->nt : 1, sizeof(*fresh));
	size_t nf = 0;
	rv = rv == 0 && !fresh ? PARLEY_ENOMEM : rv;
	for (size_t x = 0; x < d->nt && rv == 0; x++) {
		struct touched *tc = &d->t[x];
		if (!tc->contact_found) {
			tc->contact.id = tc->contact_id;
			tc->contact.created_at = tc->contact.updated_at = d->now;
			fresh[nf++] = tc->contact;
			tc->contact_found = 1;
		} else if (tc->contact_dirty) {
			tc->contact.updated_at = d->now;
			rv = t->contact_update(d->tx, &tc->contact);
		}
	}
	if (rv == 0 && nf > 0)
		rv = t->contacts_insert(d->tx, fresh, nf);
	free(fresh);
	free(cl);
	free(ids);
	free(owners);
	free(contacts);
	free(of);
	return rv;
}

/* A conversation the batch touched, by id: a contact's latest or an older one. */
static struct parley_conversation_rec *conv_by_id(struct decision *d, const char *id)
{
	for (size_t x = 0; x < d->nt; x++)
		if (d->t[x].conv_found && same(d->t[x].conv.id, id))
			return &d->t[x].conv;
	for (size_t x = 0; x < d->n_older; x++)
		if (same(d->older[x].id, id))
			return &d->older[x];
	return NULL;
}

/* The proposed conversation when it exists and is the contact's (a thread_ref join). */
static int older_conversation(struct decision *d, const char *id, const char *contact_id,
                              struct parley_conversation_rec **out)
{
	*out = conv_by_id(d, id);
	if (*out)
		return 0;
	struct parley_conversation_rec c;
	int rv = d->ib->t->conversation_lock(d->tx, id, &c);
	if (rv == PARLEY_ENOENT)
		return 0;
	if (rv != 0)
		return rv;
	if (!same(c.contact_id, contact_id))
		return 0;
	struct parley_conversation_rec *o = realloc(d->older, (d->n_older + 1) * sizeof(*o));
	if (!o)
		return PARLEY_ENOMEM;
	d->older = o;
	d->older[d->n_older] = c;
	*out = &d->older[d->n_older++];
	return 0;
}

/* The router's decision, recorded on the conversation the message joined. */
static int apply_route(struct decision *d, const parley_envelope *e, struct parley_conversation_rec *c)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(e->obj, "route");
	if (!cJSON_IsObject(r))
		return 0;
	const char *team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "team"));
	const char *agent = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "agent"));
	const char *priority = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "priority"));
	const cJSON *labels = cJSON_GetObjectItemCaseSensitive(r, "labels");
	if (agent && !same(c->assignee, agent)) {
		int rv = add_event(
		        d, c->id, "assigned",
		        event_data(&d->a, "assignee", agent, "team", team ? team : c->team, "by", "router", NULL));
		if (rv != 0)
			return rv;
	}
	if (team)
		c->team = arena_dup(&d->a, team);
	if (agent)
		c->assignee = arena_dup(&d->a, agent);
	if (priority)
		c->priority = arena_dup(&d->a, priority);
	if (cJSON_IsArray(labels)) {
		/* Labels add to those the conversation has, each once, sorted. */
		cJSON *have = cJSON_Parse(c->labels ? c->labels : "[]");
		if (!cJSON_IsArray(have)) {
			cJSON_Delete(have);
			have = cJSON_CreateArray();
		}
		const cJSON *l;
		cJSON_ArrayForEach(l, labels)
		{
			if (!cJSON_IsString(l))
				continue;
			int dup = 0;
			const cJSON *h;
			cJSON_ArrayForEach(h, have) dup |= same(cJSON_GetStringValue(h), l->valuestring);
			if (!dup)
				cJSON_AddItemToArray(have, cJSON_CreateString(l->valuestring));
		}
		c->labels = arena_json(&d->a, have);
	}
	return arena_ok(&d->a) ? 0 : PARLEY_ENOMEM;
}

/* One inbound message joins, reopens or opens its conversation. */
static int decide_one(struct decision *d, parley_envelope *e, int *moved)
{
	const char *contact = envelope_get(e, "contact_id");
	const char *proposed = envelope_get(e, "conversation_id");
	const char *at = envelope_get(e, "received_at");
	const char *channel = envelope_get(e, "channel");
	struct touched *tc = touched_of(d, contact);
	if (!tc || !proposed)
		return 0;
	struct parley_conversation_rec *c = NULL;
	int rv = 0;
	if (tc->conv_found && same(tc->conv.id, proposed))
		c = &tc->conv;
	else if (tc->conv_found && (rv = older_conversation(d, proposed, contact, &c)) != 0)
		return rv; /* a contact without conversations has no older one to join: no lookup for new customers */
	int opened = 0, was_waiting = c && !same(c->status, "resolved") && inbox_waiting(c);
	if (!c) {
		/* A new conversation was proposed: the latest one may have been made meanwhile. */
		enum inbox_choice ch = inbox_choose(&d->ib->rules, tc->conv_found ? &tc->conv : NULL, at);
		if (ch == INBOX_OPEN) {
			tc->conv = (struct parley_conversation_rec){.id = arena_dup(&d->a, proposed),
			                                            .contact_id = tc->contact_id,
			                                            .status = "open",
			                                            .labels = "[]",
			                                            .created_at = d->now};
			tc->conv_found = 1;
			opened = 1;
			rv = add_event(d, tc->conv.id, "opened",
			               event_data(&d->a, "channel", channel, "by", "contact", NULL));
			if (rv != 0)
				return rv;
		}
		c = &tc->conv;
		was_waiting = !opened && !same(c->status, "resolved") && inbox_waiting(c);
	}
	if (!opened && same(c->status, "resolved")) {
		/* The answer to the survey asked after the resolve is a rating, not a reason to reopen. */
		const char *type = NULL;
		cJSON *data = NULL;
		rv = survey_answer(d->ib->surveys, d->ib->t, d->tx, c, e, d->now, &type, &data);
		if (rv == 1) {
			rv = add_event(d, c->id, type, arena_json(&d->a, data));
			if (rv == 0 && !same(c->id, proposed)) {
				*moved = 1;
				rv = envelope_set(e, "conversation_id", c->id);
			}
			return rv;
		}
		cJSON_Delete(data);
		if (rv != 0)
			return rv;
		rv = add_event(d, c->id, "reopened", event_data(&d->a, "by", "contact", "channel", channel, NULL));
		if (rv != 0)
			return rv;
	}
	if (!opened && (same(c->status, "pending") || same(c->status, "snoozed"))) {
		rv = add_event(d, c->id, "updated", event_data(&d->a, "status", "open", "by", "contact", NULL));
		if (rv != 0)
			return rv;
	}
	rv = add_cause(d, c->id,
	               opened                        ? SLA_OPENED
	               : same(c->status, "resolved") ? SLA_REOPENED
	               : !same(c->status, "open")    ? SLA_RESUMED
	                                             : SLA_CUSTOMER_WROTE);
	if (rv == 0 && !opened && !same(c->status, "open"))
		rv = add_cause(d, c->id, SLA_CUSTOMER_WROTE);
	if (rv != 0)
		return rv;
	if (!same(c->status, "open")) {
		/* Resolved, pending (waiting on the customer) and snoozed conversations are open again. */
		c->status = "open";
		c->snoozed_until = NULL;
	}
	c->last_channel = arena_dup(&d->a, channel);
	c->last_inbound_at = arena_dup(&d->a, at);
	if (!c->first_inbound_at)
		c->first_inbound_at = c->last_inbound_at;
	c->updated_at = d->now;
	if (c == &tc->conv)
		tc->conv_dirty = 1;
	if ((rv = apply_route(d, e, c)) != 0)
		return rv;
	if (!was_waiting && inbox_waiting(c) &&
	    (rv = add_event(d, c->id, "queued", event_data(&d->a, "team", c->team, "by", "router", NULL))) != 0)
		return rv;
	if (!same(c->id, proposed)) {
		*moved = 1;
		rv = envelope_set(e, "conversation_id", c->id);
	}
	return rv;
}

static int decide_conversations(struct decision *d, parley_envelope *const *envs, size_t n, const int *results,
                                int *moved)
{
	const struct parley_store_typed_ops *t = d->ib->t;
	if (d->nt == 0)
		return 0;
	const char **ids = calloc(d->nt, sizeof(*ids));
	struct parley_conversation_rec *cur = calloc(d->nt, sizeof(*cur));
	int *found = calloc(d->nt, sizeof(*found));
	int rv = ids && cur && found ? 0 : PARLEY_ENOMEM;
	for (size_t x = 0; x < d->nt && rv == 0; x++)
		ids[x] = d->t[x].contact_id;
	if (rv == 0)
		rv = t->conversations_current(d->tx, ids, d->nt, cur, found);
	for (size_t x = 0; x < d->nt && rv == 0; x++) {
		d->t[x].conv = cur[x];
		d->t[x].conv_found = found[x];
	}
	free(ids);
	free(cur);
	free(found);
	for (size_t i = 0; i < n && rv == 0; i++)
		if (decided_here(envs[i], results[i]) && same(envelope_get(envs[i], "kind"), "message"))
			rv = decide_one(d, envs[i], &moved[i]);
	/* Write what changed: every latest conversation the batch touched, and older ones it joined. */
	size_t nw = 0;
	struct parley_conversation_rec *w = calloc(d->nt + d->n_older + 1, sizeof(*w));
	rv = rv == 0 && !w ? PARLEY_ENOMEM : rv;
	for (size_t x = 0; x < d->nt && rv == 0; x++)
		if (d->t[x].conv_dirty)
			w[nw++] = d->t[x].conv;
	for (size_t x = 0; x < d->n_older && rv == 0; x++)
		w[nw++] = d->older[x];
	if (rv == 0 && nw > 0)
		rv = t->conversations_put(d->tx, w, nw);
	free(w);
	if (rv == 0 && d->n_events > 0)
		rv = t->conversation_events_append(d->tx, d->events, d->n_events);
	for (size_t i = 0; i < d->n_causes && rv == 0; i++)
		rv = sla_track(d->ib->sla, t, d->tx, conv_by_id(d, d->causes[i].conversation_id), d->causes[i].cause,
		               d->now);
	return rv;
}

/* Messages whose contact or conversation the decision changed get it in their rows too. */
static int fix_owners(struct decision *d, parley_envelope *const *envs, size_t n, const int *results,
                      const char *const *proposed_contact, const int *moved)
{
	int rv = 0;
	for (size_t i = 0; i < n && rv == 0; i++) {
		if (results[i] != 0 || (!moved[i] && (!proposed_contact[i] ||
		                                      same(proposed_contact[i], envelope_get(envs[i], "contact_id")))))
			continue;
		const char *id = envelope_get(envs[i], "id");
		rv = d->ib->t->messages_set_owner(d->tx, &id, 1, envelope_get(envs[i], "contact_id"),
		                                  envelope_get(envs[i], "conversation_id"));
	}
	return rv;
}

static int apply_receipts(struct decision *d, parley_envelope *const *envs, size_t n, const int *results)
{
	int rv = 0;
	for (size_t i = 0; i < n && rv == 0; i++) {
		const parley_envelope *e = envs[i];
		if (results[i] != 0 || !same(envelope_get(e, "kind"), "status") ||
		    !same(envelope_get(e, "direction"), "inbound") || !envelope_get(e, "thread_ref") ||
		    !envelope_get(e, "status"))
			continue;
		rv = d->ib->t->message_status_advance(d->tx, envelope_get(e, "channel"), envelope_get(e, "thread_ref"),
		                                      envelope_get(e, "status"), envelope_get(e, "error"));
	}
	return rv;
}

int inbox_commit(struct inbox *ib, parley_envelope *const *envs, size_t n, int *results)
{
	if (!ib->t)
		return store_commit_classic(ib->st, envs, n, results);
	struct decision d = {.ib = ib};
	inbox_now(d.now);
	/* The steps' proposals, to know afterwards which messages the decision moved. */
	const char **proposed = calloc(n ? n : 1, sizeof(*proposed));
	int *moved = calloc(n ? n : 1, sizeof(*moved));
	if (!proposed || !moved) {
		free(proposed);
		free(moved);
		return PARLEY_ENOMEM;
	}
	int rv = ib->t->tx_begin(ib->data, &d.tx);
	if (rv == 0) {
		rv = ib->t->messages_insert(d.tx, envs, n, results);
		for (size_t i = 0; i < n && rv == 0; i++)
			proposed[i] = arena_dup(&d.a, envelope_get(envs[i], "contact_id"));
		if (rv == 0)
			rv = apply_receipts(&d, envs, n, results);
		if (rv == 0)
			rv = decide_contacts(&d, envs, n, results);
		if (rv == 0)
			rv = decide_conversations(&d, envs, n, results, moved);
		if (rv == 0)
			rv = fix_owners(&d, envs, n, results, proposed, moved);
		if (rv == 0)
			rv = ib->t->tx_commit(d.tx);
		else
			ib->t->tx_rollback(d.tx);
	}
	arena_free(&d.a);
	free(d.t);
	free(d.older);
	free(d.events);
	free(d.causes);
	free(proposed);
	free(moved);
	return rv;
}
