/*
 * check_typed.c: the typed contract's write side: group commit and
 * deduplication, messages_since, owners of messages, contacts and
 * identities, conversations with their history and notes, merges, and a
 * rollback that keeps nothing.
 */
#include "suite.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

/* --------------------------------------------------------- messages */

struct since {
	int64_t last;
	size_t n;
	int ordered;
	char ids[8][64];
	char status[8][16];
};

static int since_row(void *arg, const void *row)
{
	const struct parley_stored_envelope *e = row;
	struct since *s = arg;
	if (e->seq <= s->last)
		s->ordered = 0;
	s->last = e->seq;
	if (s->n < 8) {
		snprintf(s->ids[s->n], sizeof(s->ids[0]), "%s", e->id);
		cJSON *env = cJSON_Parse(e->envelope);
		const char *id = suite_jstr(env, "id");
		/* The stored envelope is the message itself, under the same id. */
		if (!id || strcmp(id, e->id) != 0)
			s->ordered = 0;
		snprintf(s->status[s->n], sizeof(s->status[0]), "%s",
		         suite_jstr(env, "status") ? suite_jstr(env, "status") : "");
		cJSON_Delete(env);
	}
	s->n++;
	return 0;
}

static int collect_id(void *arg, const void *row)
{
	cJSON_AddItemToArray(arg, cJSON_CreateString(row));
	return 0;
}

void check_messages(struct suite *su)
{
	const struct parley_host *h = su->h;
	const struct parley_store_typed_ops *t = su->t;
	char ch[64], ch2[64], id[5][64], ext[3][64];
	suite_id(su, "chan", ch);
	suite_id(su, "chan", ch2);
	for (int i = 0; i < 5; i++)
		suite_id(su, "msg", id[i]);
	for (int i = 0; i < 3; i++)
		suite_id(su, "ext", ext[i]);

	/* One group commit: three new messages, a duplicate of the first inside the batch, and the same
	 * external id on another channel (not a duplicate). */
	parley_envelope *e[5] = {
	        suite_env(su, "inbound", id[0], ch, ext[0], "tel:+100", NULL),
	        suite_env(su, "inbound", id[1], ch, ext[1], "tel:+100", NULL),
	        suite_env(su, "inbound", id[2], ch, ext[2], "tel:+101", NULL),
	        suite_env(su, "inbound", id[3], ch, ext[0], "tel:+100", NULL),
	        suite_env(su, "inbound", id[4], ch2, ext[0], "tel:+100", NULL),
	};
	int res[5] = {-99, -99, -99, -99, -99};
	CHECK_RC(suite_insert(su, e, 5, res), 0);
	CHECK_RC(res[0], 0);
	CHECK_RC(res[1], 0);
	CHECK_RC(res[2], 0);
	CHECK_RC(res[3], PARLEY_EDUPLICATE);
	CHECK_RC(res[4], 0);
	/* The duplicate now carries the stored message's id. */
	CHECK_STR(h->envelope_get_str(e[3], "id"), id[0]);
	for (int i = 0; i < 5; i++)
		h->envelope_free(e[i]);
	cJSON *m = suite_message(su, id[3]);
	CHECK(m == NULL);
	cJSON_Delete(m);
	m = suite_message(su, id[0]);
	CHECK_STR(suite_jstr(m, "external_id"), ext[0]);
	CHECK_STR(suite_jstr(m, "from"), "tel:+100");
	CHECK_STR(suite_jstr(m, "text"), "hello");
	cJSON_Delete(m);

	/* A later batch redelivering a stored message: duplicate, with the stored id. */
	char again[64];
	suite_id(su, "msg", again);
	parley_envelope *d = suite_env(su, "inbound", again, ch, ext[1], "tel:+100", NULL);
	int r = -99;
	CHECK_RC(suite_insert(su, &d, 1, &r), 0);
	CHECK_RC(r, PARLEY_EDUPLICATE);
	CHECK_STR(h->envelope_get_str(d, "id"), id[1]);
	h->envelope_free(d);

	/* messages_since: everything after the suite's start, in commit order, with max respected. */
	struct since s = {.last = su->start_seq, .ordered = 1};
	CHECK_RC(t->messages_since(su->store, su->start_seq, 100, since_row, &s), 0);
	CHECK(s.ordered);
	CHECK(s.n == 4);
	CHECK_STR(s.ids[0], id[0]);
	CHECK_STR(s.ids[1], id[1]);
	CHECK_STR(s.ids[2], id[2]);
	CHECK_STR(s.ids[3], id[4]);
	struct since s2 = {.last = su->start_seq, .ordered = 1};
	CHECK_RC(t->messages_since(su->store, su->start_seq, 2, since_row, &s2), 0);
	CHECK(s2.n == 2);
	/* Starting after the first row's seq skips it. */
	struct since one = {.last = su->start_seq, .ordered = 1};
	CHECK_RC(t->messages_since(su->store, su->start_seq, 1, since_row, &one), 0);
	struct since rest = {.last = one.last, .ordered = 1};
	CHECK_RC(t->messages_since(su->store, one.last, 100, since_row, &rest), 0);
	CHECK(rest.n == 3);
	CHECK_STR(rest.ids[0], id[1]);

	/* messages_set_owner: rows and stored envelopes; messages_of_contact oldest first. */
	char contact[64], conv[64];
	suite_id(su, "contact", contact);
	suite_id(su, "conv", conv);
	parley_store_tx *tx;
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	const char *own[] = {id[2], id[0]};
	CHECK_RC(t->messages_set_owner(tx, own, 2, contact, conv), 0);
	cJSON *ids = cJSON_CreateArray();
	CHECK_RC(t->messages_of_contact(tx, contact, collect_id, ids), 0);
	CHECK(cJSON_GetArraySize(ids) == 2);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(ids, 0)), id[0]);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(ids, 1)), id[2]);
	cJSON_Delete(ids);
	/* Without a conversation id, the conversation stays as it was. */
	char contact2[64];
	suite_id(su, "contact", contact2);
	const char *own2[] = {id[0]};
	CHECK_RC(t->messages_set_owner(tx, own2, 1, contact2, NULL), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	m = suite_message(su, id[2]);
	CHECK_STR(suite_jstr(m, "contact_id"), contact);
	CHECK_STR(suite_jstr(m, "conversation_id"), conv);
	cJSON_Delete(m);
	m = suite_message(su, id[0]);
	CHECK_STR(suite_jstr(m, "contact_id"), contact2);
	CHECK_STR(suite_jstr(m, "conversation_id"), conv);
	cJSON_Delete(m);
	m = suite_message(su, id[1]);
	CHECK(m && !suite_jstr(m, "contact_id"));
	cJSON_Delete(m);
	/* The row moved too: messages.list finds them by conversation. */
	char req[256];
	snprintf(req, sizeof(req), "{\"conversation_id\":\"%s\"}", conv);
	int rc;
	cJSON *list = suite_query(su, "messages.list", req, &rc);
	CHECK_RC(rc, 0);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "messages")) == 2);
	cJSON_Delete(list);
}

/* -------------------------------------------- contacts, identities */

struct claim_arg {
	struct suite *su;
	const char *urn, *contact;
	int hold_ms;
	const char *owner; /* copied into buf */
	char buf[64];
	int rv;
};

/* Claim one URN in its own transaction, holding it open for hold_ms before committing. */
static void *claim_thread(void *p)
{
	struct claim_arg *a = p;
	const struct parley_store_typed_ops *t = a->su->t;
	parley_store_tx *tx;
	a->rv = t->tx_begin(a->su->store, &tx);
	if (a->rv != 0)
		return NULL;
	struct parley_contact_rec c = {.id = a->contact};
	struct parley_identity_rec in = {.urn = a->urn, .contact_id = a->contact};
	const char *owner = NULL;
	a->rv = t->contacts_insert(tx, &c, 1);
	if (a->rv == 0)
		a->rv = t->identities_claim(tx, &in, 1, &owner);
	if (a->rv == 0 && owner)
		snprintf(a->buf, sizeof(a->buf), "%s", owner);
	if (a->hold_ms)
		usleep((useconds_t)a->hold_ms * 1000);
	if (a->rv == 0)
		a->rv = t->tx_commit(tx);
	else
		t->tx_rollback(tx);
	return NULL;
}

static int collect_identity(void *arg, const void *row)
{
	const struct parley_identity_rec *r = row;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "urn", r->urn);
	cJSON_AddStringToObject(o, "contact_id", r->contact_id);
	if (r->display_name)
		cJSON_AddStringToObject(o, "display_name", r->display_name);
	cJSON_AddItemToArray(arg, o);
	return 0;
}

void check_contacts(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	char c1[64], c2[64], missing[64], u1[64], u2[64], u3[64];
	suite_id(su, "contact", c1);
	suite_id(su, "contact", c2);
	suite_id(su, "contact", missing);
	suite_id(su, "whatsapp:1", u1);
	suite_id(su, "whatsapp:2", u2);
	suite_id(su, "whatsapp:3", u3);
	parley_store_tx *tx;
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	struct parley_contact_rec in[2] = {{.id = c1, .name = "Ana"},
	                                   {.id = c2, .name = "Bo", .attributes = "{\"plan\":\"gold\"}"}};
	CHECK_RC(t->contacts_insert(tx, in, 2), 0);
	CHECK_RC(t->tx_commit(tx), 0);

	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	/* An existing contact is left as it is. */
	struct parley_contact_rec again = {.id = c1, .name = "Someone else", .attributes = "{\"x\":1}"};
	CHECK_RC(t->contacts_insert(tx, &again, 1), 0);
	const char *ids[] = {c1, missing, c2};
	struct parley_contact_rec out[3];
	int found[3] = {-1, -1, -1};
	CHECK_RC(t->contacts_lock(tx, ids, 3, out, found), 0);
	CHECK(found[0] == 1 && found[1] == 0 && found[2] == 1);
	CHECK_STR(out[0].id, c1);
	CHECK_STR(out[0].name, "Ana");
	cJSON *a = cJSON_Parse(out[0].attributes ? out[0].attributes : "null");
	CHECK(cJSON_IsObject(a) && cJSON_GetArraySize(a) == 0);
	cJSON_Delete(a);
	CHECK(out[0].merged_into == NULL);
	CHECK(out[0].created_at && out[0].updated_at);
	a = cJSON_Parse(out[2].attributes ? out[2].attributes : "null");
	CHECK_STR(suite_jstr(a, "plan"), "gold");
	cJSON_Delete(a);

	/* contact_update writes every field; an unknown contact is PARLEY_ENOENT. */
	struct parley_contact_rec up = {.id = c1,
	                                .name = "Ana B",
	                                .attributes = "{\"vip\":true}",
	                                .merged_into = c2,
	                                .created_at = out[0].created_at,
	                                .updated_at = "2030-01-01T00:00:00.000Z"};
	CHECK_RC(t->contact_update(tx, &up), 0);
	struct parley_contact_rec nope = {.id = missing, .name = "x"};
	CHECK_RC(t->contact_update(tx, &nope), PARLEY_ENOENT);
	CHECK_RC(t->contacts_lock(tx, ids, 1, out, found), 0);
	CHECK_STR(out[0].name, "Ana B");
	CHECK_STR(out[0].merged_into, c2);
	CHECK_STR(out[0].updated_at, "2030-01-01T00:00:00.000Z");
	a = cJSON_Parse(out[0].attributes ? out[0].attributes : "null");
	CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(a, "vip")));
	cJSON_Delete(a);
	up.merged_into = NULL;
	CHECK_RC(t->contact_update(tx, &up), 0);

	/* identities_claim: new URNs are taken as given. */
	struct parley_identity_rec claim1 = {.urn = u1, .contact_id = c1, .display_name = "Ana"};
	const char *owner = NULL;
	CHECK_RC(t->identities_claim(tx, &claim1, 1, &owner), 0);
	CHECK_STR(owner, c1);
	CHECK_RC(t->tx_commit(tx), 0);

	/* A stored URN keeps its contact; its display name follows a non-NULL different one. */
	usleep(5000); /* u2 is claimed a few milliseconds after u1: the order of identities is observable */
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	struct parley_identity_rec claim2[2] = {{.urn = u1, .contact_id = c2, .display_name = "Ana Two"},
	                                        {.urn = u2, .contact_id = c2}};
	const char *owners[2] = {NULL, NULL};
	CHECK_RC(t->identities_claim(tx, claim2, 2, owners), 0);
	CHECK_STR(owners[0], c1);
	CHECK_STR(owners[1], c2);
	struct parley_identity_rec claim3 = {.urn = u1, .contact_id = c2, .display_name = NULL};
	CHECK_RC(t->identities_claim(tx, &claim3, 1, owners), 0);
	CHECK_STR(owners[0], c1);
	const char *urns[] = {u1, u2, u3};
	const char *who[3] = {"x", "x", "x"};
	CHECK_RC(t->identities_owner(tx, urns, 3, who), 0);
	CHECK_STR(who[0], c1);
	CHECK_STR(who[1], c2);
	CHECK(who[2] == NULL);
	cJSON *list = cJSON_CreateArray();
	CHECK_RC(t->identities_of_contact(tx, c1, collect_identity, list), 0);
	CHECK(cJSON_GetArraySize(list) == 1);
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(list, 0), "display_name"), "Ana Two");
	cJSON_Delete(list);

	/* identities_move: u2 goes to c1, after u1 (oldest first). */
	const char *mv[] = {u2};
	CHECK_RC(t->identities_move(tx, mv, 1, c1), 0);
	list = cJSON_CreateArray();
	CHECK_RC(t->identities_of_contact(tx, c1, collect_identity, list), 0);
	CHECK(cJSON_GetArraySize(list) == 2);
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(list, 0), "urn"), u1);
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(list, 1), "urn"), u2);
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(list, 1), "contact_id"), c1);
	cJSON_Delete(list);
	list = cJSON_CreateArray();
	CHECK_RC(t->identities_of_contact(tx, c2, collect_identity, list), 0);
	CHECK(cJSON_GetArraySize(list) == 0);
	cJSON_Delete(list);
	CHECK_RC(t->tx_commit(tx), 0);

	/* Two transactions claiming one URN at once: the first to commit wins in both. */
	char race[64], ca[64], cb[64];
	suite_id(su, "telegram:race", race);
	suite_id(su, "contact", ca);
	suite_id(su, "contact", cb);
	struct claim_arg first = {.su = su, .urn = race, .contact = ca, .hold_ms = 300};
	struct claim_arg second = {.su = su, .urn = race, .contact = cb};
	pthread_t t1, t2;
	pthread_create(&t1, NULL, claim_thread, &first);
	usleep(100000);
	pthread_create(&t2, NULL, claim_thread, &second);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	CHECK_RC(first.rv, 0);
	CHECK_STR(first.buf, ca);
	/* The second either waited and saw the first's claim, or was told to retry (PARLEY_EBUSY). */
	CHECK(second.rv == 0 || second.rv == PARLEY_EBUSY);
	if (second.rv == 0)
		CHECK_STR(second.buf, ca);
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	const char *rurn[] = {race};
	CHECK_RC(t->identities_owner(tx, rurn, 1, who), 0);
	CHECK_STR(who[0], ca);
	t->tx_rollback(tx);
}

/* ---------------------------------------------------- conversations */

static int collect_conv(void *arg, const void *row)
{
	const struct parley_conversation_rec *c = row;
	cJSON_AddItemToArray(arg, cJSON_CreateString(c->id));
	return 0;
}

static int stop_at_first(void *arg, const void *row)
{
	(void)row;
	(*(int *)arg)++;
	return 7;
}

static cJSON *conversation_get(struct suite *su, const char *id)
{
	char req[160];
	snprintf(req, sizeof(req), "{\"conversation_id\":\"%s\"}", id);
	int rc;
	cJSON *r = suite_query(su, "conversation.get", req, &rc);
	cJSON *c = r ? cJSON_DetachItemFromObjectCaseSensitive(r, "conversation") : NULL;
	cJSON_Delete(r);
	return c;
}

void check_conversations(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	char c1[64], c2[64], v1[64], v2[64], v3[64], v4[64], ch[64];
	suite_id(su, "contact", c1);
	suite_id(su, "contact", c2);
	suite_id(su, "conv", v1);
	suite_id(su, "conv", v2);
	suite_id(su, "conv", v3);
	suite_id(su, "conv", v4);
	suite_id(su, "chan", ch);
	int64_t now = suite_now_ms();
	char t1[64], t2[64], past[64], future[64], nowt[64];
	suite_time(now - 60000, t1);
	suite_time(now - 30000, t2);
	suite_time(now - 10000, past);
	suite_time(now + 3600000, future);
	suite_time(now, nowt);

	parley_store_tx *tx;
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	struct parley_contact_rec cs[2] = {{.id = c1}, {.id = c2}};
	CHECK_RC(t->contacts_insert(tx, cs, 2), 0);
	struct parley_conversation_rec put[4] = {
	        {.id = v1,
	         .contact_id = c1,
	         .status = "open",
	         .last_channel = ch,
	         .first_inbound_at = t1,
	         .last_inbound_at = t1,
	         .created_at = t1,
	         .updated_at = t1},
	        {.id = v2,
	         .contact_id = c1,
	         .status = "resolved",
	         .labels = "[\"vip\"]",
	         .resolved_at = t2,
	         .resolutions = 2,
	         .first_response_at = t2,
	         .team = "sales",
	         .priority = "high",
	         .created_at = t2,
	         .updated_at = t2},
	        {.id = v3,
	         .contact_id = c2,
	         .status = "snoozed",
	         .snoozed_until = past,
	         .created_at = t1,
	         .updated_at = t1},
	        {.id = v4,
	         .contact_id = c2,
	         .status = "snoozed",
	         .snoozed_until = future,
	         .created_at = t2,
	         .updated_at = t2},
	};
	CHECK_RC(t->conversations_put(tx, put, 4), 0);
	CHECK_RC(t->tx_commit(tx), 0);

	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	/* The latest conversation of each contact; none for a contact without. */
	char none[64];
	suite_id(su, "contact", none);
	const char *who[] = {c1, none, c2};
	struct parley_conversation_rec cur[3];
	int found[3] = {-1, -1, -1};
	CHECK_RC(t->conversations_current(tx, who, 3, cur, found), 0);
	CHECK(found[0] == 1 && found[1] == 0 && found[2] == 1);
	CHECK_STR(cur[0].id, v2);
	CHECK_STR(cur[2].id, v4);
	/* Every field comes back as written. */
	CHECK_STR(cur[0].status, "resolved");
	CHECK_STR(cur[0].team, "sales");
	CHECK_STR(cur[0].priority, "high");
	CHECK_STR(cur[0].resolved_at, t2);
	CHECK_STR(cur[0].first_response_at, t2);
	CHECK(cur[0].resolutions == 2);
	cJSON *labels = cJSON_Parse(cur[0].labels ? cur[0].labels : "null");
	CHECK(cJSON_GetArraySize(labels) == 1 &&
	      strcmp(cJSON_GetStringValue(cJSON_GetArrayItem(labels, 0)), "vip") == 0);
	cJSON_Delete(labels);

	struct parley_conversation_rec one;
	CHECK_RC(t->conversation_lock(tx, v1, &one), 0);
	CHECK_STR(one.contact_id, c1);
	CHECK_STR(one.status, "open");
	CHECK_STR(one.last_channel, ch);
	CHECK_STR(one.first_inbound_at, t1);
	CHECK_STR(one.created_at, t1);
	CHECK(one.resolutions == 0 && one.assignee == NULL && one.resolved_at == NULL);
	labels = cJSON_Parse(one.labels ? one.labels : "null");
	CHECK(cJSON_IsArray(labels) && cJSON_GetArraySize(labels) == 0);
	cJSON_Delete(labels);
	char missing[64];
	suite_id(su, "conv", missing);
	CHECK_RC(t->conversation_lock(tx, missing, &one), PARLEY_ENOENT);

	/* conversations_put replaces the whole row. */
	struct parley_conversation_rec re = put[0];
	re.assignee = "bob";
	re.status = "pending";
	re.updated_at = nowt;
	CHECK_RC(t->conversations_put(tx, &re, 1), 0);
	CHECK_RC(t->conversation_lock(tx, v1, &one), 0);
	CHECK_STR(one.assignee, "bob");
	CHECK_STR(one.status, "pending");
	CHECK_STR(one.updated_at, nowt);
	CHECK_STR(one.created_at, t1);

	/* A message joining it: every column it changes is written (a store may write only those). */
	struct parley_conversation_rec join = re;
	join.last_channel = "joined-channel";
	join.last_inbound_at = t2;
	join.first_response_at = t2;
	join.priority = "low";
	join.labels = "[\"a\"]";
	join.resolutions = 3;
	join.resolved_at = t1;
	join.updated_at = future;
	CHECK_RC(t->conversations_put(tx, &join, 1), 0);
	CHECK_RC(t->conversation_lock(tx, v1, &one), 0);
	CHECK_STR(one.last_channel, "joined-channel");
	CHECK_STR(one.last_inbound_at, t2);
	CHECK_STR(one.first_inbound_at, t1);
	CHECK_STR(one.first_response_at, t2);
	CHECK_STR(one.priority, "low");
	CHECK_STR(one.labels, "[\"a\"]");
	CHECK(one.resolutions == 3);
	CHECK_STR(one.resolved_at, t1);
	CHECK_STR(one.updated_at, future);
	/* A change of one column alone, updated_at as it was, is written too. */
	join.last_channel = "joined-again";
	CHECK_RC(t->conversations_put(tx, &join, 1), 0);
	CHECK_RC(t->conversation_lock(tx, v1, &one), 0);
	CHECK_STR(one.last_channel, "joined-again");
	CHECK_STR(one.updated_at, future);
	CHECK_STR(one.created_at, t1);
	CHECK_STR(one.assignee, "bob");
	CHECK_STR(one.status, "pending");
	/* Changed and changed back in one transaction: the row ends as the last put says. */
	struct parley_conversation_rec back = join;
	back.status = "open";
	back.assignee = NULL;
	CHECK_RC(t->conversations_put(tx, &back, 1), 0); /* no read between the two puts */
	back.status = "pending";
	back.assignee = "bob";
	back.last_inbound_at = future;
	CHECK_RC(t->conversations_put(tx, &back, 1), 0);
	CHECK_RC(t->conversation_lock(tx, v1, &one), 0);
	CHECK_STR(one.status, "pending");
	CHECK_STR(one.assignee, "bob");
	CHECK_STR(one.last_inbound_at, future);

	/* Oldest first. */
	cJSON *list = cJSON_CreateArray();
	CHECK_RC(t->conversations_of_contact(tx, c1, collect_conv, list), 0);
	CHECK(cJSON_GetArraySize(list) == 2);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(list, 0)), v1);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(list, 1)), v2);
	cJSON_Delete(list);
	/* A visitor's non-zero return stops the visit and is returned. */
	int calls = 0;
	CHECK_RC(t->conversations_of_contact(tx, c1, stop_at_first, &calls), 7);
	CHECK(calls == 1);

	/* Due: snoozed and its time has come (v3), not v4 (later) nor v1 (not snoozed). */
	list = cJSON_CreateArray();
	CHECK_RC(t->conversations_due(tx, nowt, 1000, collect_conv, list), 0);
	int has3 = 0, has4 = 0, has1 = 0;
	cJSON *it;
	cJSON_ArrayForEach(it, list)
	{
		has3 |= strcmp(it->valuestring, v3) == 0;
		has4 |= strcmp(it->valuestring, v4) == 0;
		has1 |= strcmp(it->valuestring, v1) == 0;
	}
	CHECK(has3 && !has4 && !has1);
	cJSON_Delete(list);
	calls = 0;
	CHECK_RC(t->conversations_due(tx, future, 1, stop_at_first, &calls), 7);
	CHECK(calls == 1);
	list = cJSON_CreateArray();
	CHECK_RC(t->conversations_due(tx, future, 1, collect_conv, list), 0);
	CHECK(cJSON_GetArraySize(list) == 1);
	cJSON_Delete(list);

	/* History and notes, read back through conversation.get. */
	struct parley_conversation_event_rec ev[2] = {
	        {.conversation_id = v1, .type = "assigned", .data = "{\"assignee\":\"bob\"}", .at = t2},
	        {.conversation_id = v1, .type = "updated", .data = "{\"status\":\"pending\"}", .at = nowt},
	};
	CHECK_RC(t->conversation_events_append(tx, ev, 2), 0);
	char note[64];
	suite_id(su, "note", note);
	CHECK_RC(t->note_insert(tx, note, v1, "agent@example.com", "called back", nowt), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	cJSON *c = conversation_get(su, v1);
	CHECK(c != NULL);
	CHECK_STR(suite_jstr(c, "assignee"), "bob");
	cJSON *events = cJSON_GetObjectItemCaseSensitive(c, "events");
	CHECK(cJSON_GetArraySize(events) == 2);
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(events, 0), "type"), "assigned");
	CHECK_STR(suite_jstr(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(events, 0), "data"), "assignee"),
	          "bob");
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(events, 1), "type"), "updated");
	cJSON *notes = cJSON_GetObjectItemCaseSensitive(c, "notes");
	CHECK(cJSON_GetArraySize(notes) == 1);
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(notes, 0), "id"), note);
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(notes, 0), "text"), "called back");
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(notes, 0), "author"), "agent@example.com");
	cJSON_Delete(c);

	/* A conversation waiting in its team's queue keeps the time it began waiting when a message joins it. */
	char v5[64], team[64];
	suite_id(su, "conv", v5);
	suite_id(su, "team", team);
	struct parley_conversation_rec wq = {
	        .id = v5, .contact_id = c2, .status = "open", .team = team, .created_at = t1, .updated_at = t1};
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	CHECK_RC(t->conversations_put(tx, &wq, 1), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	CHECK_RC(t->conversation_lock(tx, v5, &one), 0);
	wq.last_inbound_at = t2;
	wq.updated_at = t2;
	CHECK_RC(t->conversations_put(tx, &wq, 1), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	c = conversation_get(su, v5);
	CHECK(c != NULL);
	CHECK_STR(suite_jstr(c, "queued_at"), t1);
	CHECK_STR(suite_jstr(c, "last_inbound_at"), t2);
	cJSON_Delete(c);

	/* The log tails in order: events.position names the last event, conversation_events.since what follows a seq.
	 */
	int qrc;
	cJSON *pos = suite_query(su, "events.position", "{}", &qrc);
	CHECK_RC(qrc, 0);
	const cJSON *position = cJSON_GetObjectItemCaseSensitive(pos, "position");
	double last = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(position, "event_seq"));
	CHECK(last >= 2 && cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(position, "message_seq")));
	char since[96];
	snprintf(since, sizeof(since), "{\"after\":%.0f}", last - 2);
	cJSON *tail = suite_query(su, "conversation_events.since", since, &qrc);
	CHECK_RC(qrc, 0);
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(tail, "events");
	CHECK(cJSON_GetArraySize(rows) == 2);
	const cJSON *r0 = cJSON_GetArrayItem(rows, 0), *r1 = cJSON_GetArrayItem(rows, 1);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r0, "seq")) == last - 1);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(r1, "seq")) == last);
	CHECK_STR(suite_jstr(r0, "type"), "assigned");
	CHECK_STR(suite_jstr(r0, "conversation_id"), v1);
	CHECK_STR(suite_jstr(cJSON_GetObjectItemCaseSensitive(r0, "data"), "assignee"), "bob");
	CHECK_STR(suite_jstr(r1, "type"), "updated");
	cJSON_Delete(tail);
	snprintf(since, sizeof(since), "{\"after\":%.0f,\"limit\":1}", last - 2);
	tail = suite_query(su, "conversation_events.since", since, &qrc);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tail, "events")) == 1);
	cJSON_Delete(tail);
	snprintf(since, sizeof(since), "{\"after\":%.0f}", last);
	tail = suite_query(su, "conversation_events.since", since, &qrc);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(tail, "events")) == 0);
	cJSON_Delete(tail);
	cJSON_Delete(pos);

	/* conversation_of_ref: the conversation of the latest message whose external id (or provider id) is ref. */
	char m1[64], m2[64], ref[64];
	suite_id(su, "msg", m1);
	suite_id(su, "msg", m2);
	suite_id(su, "ref", ref);
	parley_envelope *e[2] = {suite_env(su, "inbound", m1, ch, ref, "tel:+1", NULL),
	                         suite_env(su, "inbound", m2, ch, NULL, "tel:+1", NULL)};
	su->h->envelope_set_str(e[0], "conversation_id", v1);
	su->h->envelope_set_str(e[0], "contact_id", c1);
	int res[2];
	CHECK_RC(suite_insert(su, e, 2, res), 0);
	su->h->envelope_free(e[0]);
	su->h->envelope_free(e[1]);
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	CHECK_RC(t->conversation_of_ref(tx, ch, ref, &one), 0);
	CHECK_STR(one.id, v1);
	CHECK_RC(t->conversation_of_ref(tx, ch, "no-such-ref", &one), PARLEY_ENOENT);
	char other[64];
	suite_id(su, "chan", other);
	CHECK_RC(t->conversation_of_ref(tx, other, ref, &one), PARLEY_ENOENT);
	/* A second note under the same id is refused, and the transaction can still be rolled back. */
	CHECK(t->note_insert(tx, note, v1, NULL, "again", nowt) != 0);
	t->tx_rollback(tx);
}

/* ------------------------------------------------- merges, rollback */

void check_merges_rollback(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	char from[64], into[64], mid[64], missing[64];
	suite_id(su, "contact", from);
	suite_id(su, "contact", into);
	suite_id(su, "merge", mid);
	suite_id(su, "merge", missing);
	char moved[256], at[64], undone[64];
	snprintf(moved, sizeof(moved),
	         "{\"identities\":[\"tel:+9\"],\"conversations\":[],\"messages\":[],\"name\":null}");
	suite_time(suite_now_ms() - 1000, at);
	suite_time(suite_now_ms(), undone);
	parley_store_tx *tx;
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	struct parley_merge_rec m = {.id = mid, .from_id = from, .into_id = into, .moved = moved, .at = at};
	CHECK_RC(t->merge_insert(tx, &m), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	struct parley_merge_rec out;
	CHECK_RC(t->merge_lock(tx, mid, &out), 0);
	CHECK_STR(out.id, mid);
	CHECK_STR(out.from_id, from);
	CHECK_STR(out.into_id, into);
	CHECK_STR(out.at, at);
	CHECK(out.undone_at == NULL);
	cJSON *mv = cJSON_Parse(out.moved ? out.moved : "null");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(mv, "identities"), 0)),
	          "tel:+9");
	cJSON_Delete(mv);
	CHECK_RC(t->merge_lock(tx, missing, &out), PARLEY_ENOENT);
	CHECK_RC(t->merge_set_undone(tx, mid, undone), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	CHECK_RC(t->merge_lock(tx, mid, &out), 0);
	CHECK_STR(out.undone_at, undone);
	t->tx_rollback(tx);

	/* A rolled-back transaction keeps nothing, whatever it wrote. */
	char msg[64], ext[64], ch[64], contact[64], urn[64], conv[64], note[64];
	suite_id(su, "msg", msg);
	suite_id(su, "ext", ext);
	suite_id(su, "chan", ch);
	suite_id(su, "contact", contact);
	suite_id(su, "tel:rb", urn);
	suite_id(su, "conv", conv);
	suite_id(su, "note", note);
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	parley_envelope *e = suite_env(su, "inbound", msg, ch, ext, urn, NULL);
	int res = -1;
	CHECK_RC(t->messages_insert(tx, &e, 1, &res), 0);
	CHECK_RC(res, 0);
	struct parley_contact_rec c = {.id = contact, .name = "Gone"};
	CHECK_RC(t->contacts_insert(tx, &c, 1), 0);
	struct parley_identity_rec idn = {.urn = urn, .contact_id = contact};
	const char *owner;
	CHECK_RC(t->identities_claim(tx, &idn, 1, &owner), 0);
	struct parley_conversation_rec cv = {.id = conv, .contact_id = contact, .status = "open"};
	CHECK_RC(t->conversations_put(tx, &cv, 1), 0);
	CHECK_RC(t->note_insert(tx, note, conv, NULL, "gone", NULL), 0);
	struct parley_merge_rec m2 = {.id = missing, .from_id = contact, .into_id = into, .moved = "{}"};
	CHECK_RC(t->merge_insert(tx, &m2), 0);
	t->tx_rollback(tx);
	cJSON *got = suite_message(su, msg);
	CHECK(got == NULL);
	cJSON_Delete(got);
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	const char *ids[] = {contact};
	struct parley_contact_rec cr;
	int found = -1;
	CHECK_RC(t->contacts_lock(tx, ids, 1, &cr, &found), 0);
	CHECK(found == 0);
	const char *urns[] = {urn};
	const char *who = "x";
	CHECK_RC(t->identities_owner(tx, urns, 1, &who), 0);
	CHECK(who == NULL);
	struct parley_conversation_rec cvr;
	CHECK_RC(t->conversation_lock(tx, conv, &cvr), PARLEY_ENOENT);
	CHECK_RC(t->merge_lock(tx, missing, &out), PARLEY_ENOENT);
	/* The (channel, external_id) is free again: not a duplicate. */
	res = -1;
	CHECK_RC(t->messages_insert(tx, &e, 1, &res), 0);
	CHECK_RC(res, 0);
	CHECK_RC(t->tx_commit(tx), 0);
	su->h->envelope_free(e);
	got = suite_message(su, msg);
	CHECK(got != NULL);
	cJSON_Delete(got);
}
