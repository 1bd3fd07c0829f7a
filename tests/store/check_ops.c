/*
 * check_ops.c: the outbox (claims, retries, dead letters, a dead sender's
 * claim expiring), receipts moving status only forward, key-value state,
 * attachments, the classic group commit, the read ops (messages.list,
 * conversations.list) and leases.
 */
#include "suite.h"

#include <stdlib.h>
#include <unistd.h>

/* ----------------------------------------------------------- outbox */

/* Claim everything due at now; the claimed envelopes (never NULL; caller deletes). */
static cJSON *claim(struct suite *su, int64_t now)
{
	char *json = NULL;
	CHECK_RC(su->ops->outbox_claim(su->store, now, 1000, &json), 0);
	cJSON *a = json ? cJSON_Parse(json) : NULL;
	free(json);
	return a ? a : cJSON_CreateArray();
}

static const cJSON *find(const cJSON *arr, const char *id)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
	{
		const char *v = suite_jstr(it, "id");
		if (v && strcmp(v, id) == 0)
			return it;
	}
	return NULL;
}

/* 1 when a claim at now gets id (with *attempts), 0 when not. */
static int claims(struct suite *su, int64_t now, const char *id, int *attempts)
{
	cJSON *a = claim(su, now);
	const cJSON *e = find(a, id);
	if (e && attempts)
		*attempts = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(e, "attempts"));
	cJSON_Delete(a);
	return e != NULL;
}

static void queue(struct suite *su, const char *id, const char *channel)
{
	parley_envelope *e = suite_env(su, "outbound", id, channel, NULL, NULL, "tel:+15550001");
	su->h->envelope_set_str(e, "status", "queued");
	int res = -1;
	CHECK_RC(suite_insert(su, &e, 1, &res), 0);
	CHECK_RC(res, 0);
	su->h->envelope_free(e);
}

static const char *status_of(struct suite *su, const char *id, char buf[32])
{
	cJSON *m = suite_message(su, id);
	snprintf(buf, 32, "%s", suite_jstr(m, "status") ? suite_jstr(m, "status") : "(none)");
	cJSON_Delete(m);
	return buf;
}

struct find_status {
	const char *id;
	char status[32];
};

static int since_status(void *arg, const void *row)
{
	const struct parley_stored_envelope *e = row;
	struct find_status *f = arg;
	if (strcmp(e->id, f->id) == 0) {
		cJSON *env = cJSON_Parse(e->envelope);
		snprintf(f->status, sizeof(f->status), "%s",
		         suite_jstr(env, "status") ? suite_jstr(env, "status") : "");
		cJSON_Delete(env);
	}
	return 0;
}

void check_outbox(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	char ch[64], q1[64], q2[64], q3[64], q4[64], buf[32];
	suite_id(su, "chan", ch);
	suite_id(su, "out", q1);
	suite_id(su, "out", q2);
	suite_id(su, "out", q3);
	suite_id(su, "out", q4);
	int64_t now = suite_now_ms();
	const int64_t far = now + 1000LL * 86400 * 365;

	/* A queued message is due now, claimed once, with its attempts. */
	queue(su, q1, ch);
	int attempts = -1;
	CHECK(claims(su, now, q1, &attempts));
	CHECK(attempts == 0);
	CHECK(!claims(su, now, q1, NULL));

	/* A retry waits for its time; each settled attempt counts. */
	CHECK_RC(su->ops->outbox_update(su->store, q1, "retry", NULL, "HTTP 503", now + 60000), 0);
	CHECK(!claims(su, now + 1000, q1, NULL));
	attempts = -1;
	CHECK(claims(su, now + 61000, q1, &attempts));
	CHECK(attempts == 1);
	CHECK_RC(su->ops->outbox_update(su->store, q1, "sent", "prov-q1", NULL, 0), 0);
	CHECK_STR(status_of(su, q1, buf), "sent");
	CHECK(!claims(su, far, q1, NULL));

	/* A dead letter keeps its error and is never sent again. */
	queue(su, q2, ch);
	CHECK(claims(su, now, q2, NULL));
	CHECK_RC(su->ops->outbox_update(su->store, q2, "failed", NULL, "invalid number", 0), 0);
	cJSON *m = suite_message(su, q2);
	CHECK_STR(suite_jstr(m, "status"), "failed");
	CHECK_STR(suite_jstr(m, "error"), "invalid number");
	cJSON_Delete(m);
	CHECK(!claims(su, far, q2, NULL));

	/* Back in the queue for a rate limit: not an attempt, due at its slot. */
	queue(su, q4, ch);
	CHECK(claims(su, now, q4, NULL));
	CHECK_RC(su->ops->outbox_update(su->store, q4, "queued", NULL, NULL, now + 5000), 0);
	CHECK(!claims(su, now + 1000, q4, NULL));
	attempts = -1;
	CHECK(claims(su, now + 6000, q4, &attempts));
	CHECK(attempts == 0);
	CHECK_RC(su->ops->outbox_update(su->store, q4, "sent", NULL, NULL, 0), 0);

	/* A claim never settled (its sender died) is claimable again once the claim timeout has passed. */
	queue(su, q3, ch);
	CHECK(claims(su, suite_now_ms(), q3, NULL));
	CHECK(!claims(su, suite_now_ms(), q3, NULL));
	usleep((useconds_t)(su->claim_ms + 500) * 1000);
	attempts = -1;
	CHECK(claims(su, suite_now_ms(), q3, &attempts));
	CHECK(attempts == 0);
	CHECK(!claims(su, suite_now_ms(), q3, NULL));
	CHECK_RC(su->ops->outbox_update(su->store, q3, "sent", "prov-q3", NULL, 0), 0);

	/* Receipts move a sent message forward only: read, then a late delivered changes nothing; failed still
	 * counts.  An unknown provider id is not an error. */
	char r1[64], r2[64], rcpt[64];
	suite_id(su, "out", r1);
	suite_id(su, "out", r2);
	suite_id(su, "rcpt", rcpt);
	queue(su, r1, ch);
	CHECK(claims(su, suite_now_ms(), r1, NULL));
	CHECK_RC(su->ops->outbox_update(su->store, r1, "sent", "prov-r1", NULL, 0), 0);
	parley_store_tx *tx;
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	CHECK_RC(t->message_status_advance(tx, ch, "prov-r1", "delivered", NULL), 0);
	CHECK_RC(t->message_status_advance(tx, ch, "prov-r1", "read", NULL), 0);
	CHECK_RC(t->message_status_advance(tx, ch, "prov-r1", "delivered", NULL), 0);
	CHECK_RC(t->message_status_advance(tx, ch, "prov-none", "read", NULL), 0);
	/* The same provider id on another channel is another message. */
	CHECK_RC(t->message_status_advance(tx, q1, "prov-r1", "failed", "wrong channel"), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	CHECK_STR(status_of(su, r1, buf), "read");
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	CHECK_RC(t->message_status_advance(tx, ch, "prov-r1", "failed", "expired"), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	m = suite_message(su, r1);
	CHECK_STR(suite_jstr(m, "status"), "failed");
	CHECK_STR(suite_jstr(m, "error"), "expired");
	cJSON_Delete(m);
	/* The relay sees the current status too. */
	struct find_status f = {.id = r1};
	CHECK_RC(t->messages_since(su->store, su->start_seq, 100000, since_status, &f), 0);
	CHECK_STR(f.status, "failed");

	/* A receipt stored before its message's send was recorded: the send result picks it up. */
	parley_envelope *e = su->h->envelope_new(NULL, "status", "inbound");
	su->h->envelope_set_str(e, "channel", ch);
	su->h->envelope_set_str(e, "channel_type", "webhook");
	su->h->envelope_set_str(e, "external_id", rcpt);
	su->h->envelope_set_str(e, "thread_ref", "prov-r2");
	su->h->envelope_set_str(e, "status", "delivered");
	int res = -1;
	CHECK_RC(suite_insert(su, &e, 1, &res), 0);
	su->h->envelope_free(e);
	queue(su, r2, ch);
	CHECK(claims(su, suite_now_ms(), r2, NULL));
	CHECK_RC(su->ops->outbox_update(su->store, r2, "sent", "prov-r2", NULL, 0), 0);
	CHECK_STR(status_of(su, r2, buf), "delivered");
}

/* ------------------------------------------------------- classic ops */

void check_classic(struct suite *su)
{
	const struct parley_host *h = su->h;
	char key[64];
	suite_id(su, "key", key);
	char *val = NULL;
	size_t len = 0;
	CHECK_RC(su->ops->kv_get(su->store, "suite", key, &val, &len), PARLEY_ENOENT);
	/* Values are bytes: an embedded NUL survives, and the value comes back NUL-terminated. */
	CHECK_RC(su->ops->kv_set(su->store, "suite", key, "a\0b", 3), 0);
	CHECK_RC(su->ops->kv_get(su->store, "suite", key, &val, &len), 0);
	CHECK(val && len == 3 && memcmp(val, "a\0b", 3) == 0 && val[3] == '\0');
	free(val);
	val = NULL;
	CHECK_RC(su->ops->kv_set(su->store, "suite", key, "offset=42", 9), 0);
	CHECK_RC(su->ops->kv_get(su->store, "suite", key, &val, &len), 0);
	CHECK(val && len == 9 && strcmp(val, "offset=42") == 0);
	free(val);
	val = NULL;
	/* Namespaces (plugin instances) do not see each other's keys. */
	CHECK_RC(su->ops->kv_get(su->store, "other", key, &val, &len), PARLEY_ENOENT);
	free(val);

	/* attachment_set merges fields into one attachment of a stored message. */
	char id[64], ch[64], missing[64];
	suite_id(su, "msg", id);
	suite_id(su, "chan", ch);
	suite_id(su, "msg", missing);
	parley_envelope *e = suite_env(su, "inbound", id, ch, id, "tel:+7", NULL);
	CHECK_RC(h->envelope_set_json(e, "attachments",
	                              "[{\"type\":\"image\",\"url\":\"https://cdn.example/1.jpg\"},"
	                              "{\"type\":\"file\",\"url\":\"https://cdn.example/2.pdf\"}]"),
	         0);
	int res = -1;
	CHECK_RC(suite_insert(su, &e, 1, &res), 0);
	h->envelope_free(e);
	CHECK_RC(su->ops->attachment_set(su->store, id, 1,
	                                 "{\"ref\":\"attachments/ab/abc\",\"sha256\":\"abc\",\"size\":3,"
	                                 "\"content_type\":\"application/pdf\"}"),
	         0);
	CHECK_RC(su->ops->attachment_set(su->store, id, 5, "{\"sha256\":\"x\"}"), PARLEY_ENOENT);
	CHECK_RC(su->ops->attachment_set(su->store, missing, 0, "{\"sha256\":\"x\"}"), PARLEY_ENOENT);
	cJSON *m = suite_message(su, id);
	cJSON *att = cJSON_GetObjectItemCaseSensitive(m, "attachments");
	CHECK(cJSON_GetArraySize(att) == 2);
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(att, 1), "sha256"), "abc");
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(att, 1), "url"), "https://cdn.example/2.pdf");
	CHECK_STR(suite_jstr(cJSON_GetArrayItem(att, 1), "ref"), "attachments/ab/abc");
	CHECK(suite_jstr(cJSON_GetArrayItem(att, 0), "sha256") == NULL);
	cJSON_Delete(m);

	/* The classic group commit (ABI 1.0/1.1 cores), when the store still offers it. */
	if (!su->ops->commit)
		return;
	char a[64], b[64], dup[64], ea[64], eb[64], contact[64], conv[64];
	suite_id(su, "msg", a);
	suite_id(su, "msg", b);
	suite_id(su, "msg", dup);
	suite_id(su, "ext", ea);
	suite_id(su, "ext", eb);
	suite_id(su, "contact", contact);
	suite_id(su, "conv", conv);
	parley_envelope *batch[2] = {suite_env(su, "inbound", a, ch, ea, "tel:+8", NULL),
	                             suite_env(su, "inbound", b, ch, eb, "tel:+8", NULL)};
	h->envelope_set_str(batch[0], "contact_id", contact);
	h->envelope_set_str(batch[0], "conversation_id", conv);
	int rs[2] = {-99, -99};
	CHECK_RC(su->ops->commit(su->store, batch, 2, rs), 0);
	CHECK(rs[0] == 0 && rs[1] == 0);
	h->envelope_free(batch[0]);
	h->envelope_free(batch[1]);
	parley_envelope *d = suite_env(su, "inbound", dup, ch, eb, "tel:+8", NULL);
	CHECK_RC(su->ops->commit(su->store, &d, 1, rs), 0);
	CHECK_RC(rs[0], PARLEY_EDUPLICATE);
	CHECK_STR(h->envelope_get_str(d, "id"), b);
	h->envelope_free(d);
}

/* ------------------------------------------------------------- reads */

static cJSON *list(struct suite *su, const char *op, const char *key, const char *req_json)
{
	int rc;
	cJSON *r = suite_query(su, op, req_json, &rc);
	if (rc != 0)
		fprintf(stderr, "%s %s returned %d\n", op, req_json, rc);
	CHECK_RC(rc, 0);
	cJSON *items = r ? cJSON_DetachItemFromObjectCaseSensitive(r, key) : NULL;
	cJSON_Delete(r);
	return items ? items : cJSON_CreateArray();
}

/* The ids of a list, comma-separated, for comparing with what is expected. */
static void ids_of(const cJSON *items, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = '\0';
	const cJSON *it;
	cJSON_ArrayForEach(it, items)
	{
		int n = snprintf(out + len, cap - len, "%s%s", len ? "," : "", suite_jstr(it, "id"));
		if (n < 0 || (size_t)n >= cap - len)
			return;
		len += (size_t)n;
	}
}

void check_reads(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	char ch[64], conv[64], id[7][64], want[1024], got[1024], req[512];
	suite_id(su, "chan", ch);
	suite_id(su, "conv", conv);
	parley_envelope *e[7];
	for (int i = 0; i < 7; i++) {
		suite_id(su, "msg", id[i]);
		e[i] = suite_env(su, i < 5 ? "inbound" : "outbound", id[i], ch, i < 5 ? id[i] : NULL,
		                 i < 5 ? "tel:+3" : NULL, i < 5 ? NULL : "tel:+3");
		if (i == 1 || i == 3 || i == 6)
			su->h->envelope_set_str(e[i], "conversation_id", conv);
	}
	int res[7];
	CHECK_RC(suite_insert(su, e, 7, res), 0);
	for (int i = 0; i < 7; i++)
		su->h->envelope_free(e[i]);

	snprintf(req, sizeof(req), "{\"channel\":\"%s\"}", ch);
	cJSON *items = list(su, "messages.list", "messages", req);
	ids_of(items, got, sizeof(got));
	snprintf(want, sizeof(want), "%s,%s,%s,%s,%s,%s,%s", id[0], id[1], id[2], id[3], id[4], id[5], id[6]);
	CHECK_STR(got, want);
	cJSON_Delete(items);
	snprintf(req, sizeof(req), "{\"channel\":\"%s\",\"direction\":\"outbound\"}", ch);
	items = list(su, "messages.list", "messages", req);
	ids_of(items, got, sizeof(got));
	snprintf(want, sizeof(want), "%s,%s", id[5], id[6]);
	CHECK_STR(got, want);
	cJSON_Delete(items);
	snprintf(req, sizeof(req), "{\"conversation_id\":\"%s\"}", conv);
	items = list(su, "messages.list", "messages", req);
	ids_of(items, got, sizeof(got));
	snprintf(want, sizeof(want), "%s,%s,%s", id[1], id[3], id[6]);
	CHECK_STR(got, want);
	cJSON_Delete(items);
	snprintf(req, sizeof(req), "{\"channel\":\"%s-none\"}", ch);
	items = list(su, "messages.list", "messages", req);
	CHECK(cJSON_GetArraySize(items) == 0);
	cJSON_Delete(items);
	/* address: from or to (a web chat visitor's messages in both directions). */
	snprintf(req, sizeof(req), "{\"channel\":\"%s\",\"address\":\"tel:+3\"}", ch);
	items = list(su, "messages.list", "messages", req);
	ids_of(items, got, sizeof(got));
	snprintf(want, sizeof(want), "%s,%s,%s,%s,%s,%s,%s", id[0], id[1], id[2], id[3], id[4], id[5], id[6]);
	CHECK_STR(got, want);
	cJSON_Delete(items);
	snprintf(req, sizeof(req), "{\"channel\":\"%s\",\"address\":\"tel:+9\"}", ch);
	items = list(su, "messages.list", "messages", req);
	CHECK(cJSON_GetArraySize(items) == 0);
	cJSON_Delete(items);

	/* Pages of 3 through after_id / next_after_id: every message once, in order, then no next page. */
	char after[64] = "", all[2048] = "";
	int pages = 0;
	for (;;) {
		if (after[0])
			snprintf(req, sizeof(req), "{\"channel\":\"%s\",\"limit\":3,\"after_id\":\"%s\"}", ch, after);
		else
			snprintf(req, sizeof(req), "{\"channel\":\"%s\",\"limit\":3}", ch);
		int rc;
		cJSON *r = suite_query(su, "messages.list", req, &rc);
		CHECK_RC(rc, 0);
		ids_of(cJSON_GetObjectItemCaseSensitive(r, "messages"), got, sizeof(got));
		if (got[0])
			snprintf(all + strlen(all), sizeof(all) - strlen(all), "%s%s", all[0] ? "," : "", got);
		const char *next = suite_jstr(r, "next_after_id");
		int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "messages"));
		pages++;
		if (!next || pages > 5) {
			CHECK(n < 3);
			cJSON_Delete(r);
			break;
		}
		CHECK(n == 3);
		snprintf(after, sizeof(after), "%s", next);
		cJSON_Delete(r);
	}
	CHECK(pages == 3);
	snprintf(want, sizeof(want), "%s,%s,%s,%s,%s,%s,%s", id[0], id[1], id[2], id[3], id[4], id[5], id[6]);
	CHECK_STR(all, want);
	int rc;
	cJSON *bad = suite_query(su, "messages.list", "{\"limit\":0}", &rc);
	CHECK_RC(rc, PARLEY_EINVAL);
	cJSON_Delete(bad);

	const cJSON *it;
	/* conversations.list: each filter keeps exactly the matching conversations, newest update first. */
	char k[64], ca[64], cb[64], cc[64], chc[64], m[64];
	suite_id(su, "contact", k);
	suite_id(su, "conv", ca);
	suite_id(su, "conv", cb);
	suite_id(su, "conv", cc);
	suite_id(su, "chan", chc);
	suite_id(su, "msg", m);
	int64_t now = suite_now_ms();
	char t1[64], t2[64], t3[64];
	suite_time(now - 3000, t1);
	suite_time(now - 2000, t2);
	suite_time(now - 1000, t3);
	parley_store_tx *tx;
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	struct parley_contact_rec c = {.id = k};
	CHECK_RC(t->contacts_insert(tx, &c, 1), 0);
	struct parley_conversation_rec cs[3] = {
	        {.id = ca,
	         .contact_id = k,
	         .status = "open",
	         .team = "t1",
	         .assignee = "amy",
	         .labels = "[\"x\"]",
	         .created_at = t1,
	         .updated_at = t3},
	        {.id = cb,
	         .contact_id = k,
	         .status = "resolved",
	         .team = "t2",
	         .resolutions = 1,
	         .created_at = t1,
	         .updated_at = t2},
	        {.id = cc,
	         .contact_id = k,
	         .status = "pending",
	         .assignee = "amy",
	         .labels = "[\"y\",\"x\"]",
	         .created_at = t1,
	         .updated_at = t1},
	};
	CHECK_RC(t->conversations_put(tx, cs, 3), 0);
	parley_envelope *me = suite_env(su, "inbound", m, chc, m, "tel:+4", NULL);
	su->h->envelope_set_str(me, "conversation_id", cb);
	su->h->envelope_set_str(me, "contact_id", k);
	CHECK_RC(t->messages_insert(tx, &me, 1, res), 0);
	su->h->envelope_free(me);
	CHECK_RC(t->tx_commit(tx), 0);
	struct {
		const char *filter;
		const char *a, *b, *c;
	} cases[] = {
	        {"", ca, cb, cc},
	        {",\"status\":\"open\"", ca, NULL, NULL},
	        {",\"team\":\"t2\"", cb, NULL, NULL},
	        {",\"assignee\":\"amy\"", ca, cc, NULL},
	        {",\"label\":\"x\"", ca, cc, NULL},
	        {",\"label\":\"y\"", cc, NULL, NULL},
	        {",\"status\":\"resolved\",\"team\":\"t1\"", NULL, NULL, NULL},
	        {",\"limit\":1", ca, NULL, NULL},
	        {",\"limit\":1,\"offset\":1", cb, NULL, NULL},
	        {",\"limit\":2,\"offset\":1", cb, cc, NULL},
	        {",\"offset\":3", NULL, NULL, NULL},
	        /* An agent's view: their teams', those assigned to them, and those of no team (the shared queue). */
	        {",\"visible_to\":{\"agent\":\"bo\",\"teams\":[\"t2\"]}", cb, cc, NULL},
	        {",\"visible_to\":{\"agent\":\"amy\",\"teams\":[]}", ca, cc, NULL},
	        {",\"visible_to\":{\"agent\":\"bo\",\"teams\":[\"t1\",\"t2\"]}", ca, cb, cc},
	        {",\"visible_to\":{\"agent\":\"bo\"}", cc, NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(req, sizeof(req), "{\"contact_id\":\"%s\"%s}", k, cases[i].filter);
		items = list(su, "conversations.list", "conversations", req);
		ids_of(items, got, sizeof(got));
		snprintf(want, sizeof(want), "%s%s%s%s%s", cases[i].a ? cases[i].a : "", cases[i].b ? "," : "",
		         cases[i].b ? cases[i].b : "", cases[i].c ? "," : "", cases[i].c ? cases[i].c : "");
		if (strcmp(got, want) != 0)
			fprintf(stderr, "conversations.list %s\n", req);
		CHECK_STR(got, want);
		cJSON_Delete(items);
	}
	snprintf(req, sizeof(req), "{\"channel\":\"%s\"}", chc);
	items = list(su, "conversations.list", "conversations", req);
	ids_of(items, got, sizeof(got));
	CHECK_STR(got, cb);
	cJSON_Delete(items);
	/* Each listed conversation has its latest message (what the inbox's list shows); one without none. */
	snprintf(req, sizeof(req), "{\"contact_id\":\"%s\"}", k);
	items = list(su, "conversations.list", "conversations", req);
	cJSON_ArrayForEach(it, items)
	{
		const cJSON *last = cJSON_GetObjectItemCaseSensitive(it, "last_message");
		if (strcmp(suite_jstr(it, "id"), cb) == 0) {
			CHECK_STR(suite_jstr(last, "id"), m);
			CHECK_STR(suite_jstr(last, "channel"), chc);
			CHECK_STR(suite_jstr(last, "direction"), "inbound");
			CHECK(suite_jstr(last, "at") != NULL);
		} else {
			CHECK(last == NULL);
		}
	}
	cJSON_Delete(items);
	/* conversations.counts: per status, with the list's filters and an agent's view. */
	static const struct {
		const char *filter, *want;
	} counts[] = {
	        {"", "{\"open\":0,\"pending\":0,\"snoozed\":0,\"resolved\":1}"},
	        {",\"visible_to\":{\"agent\":\"bo\",\"teams\":[]}",
	         "{\"open\":0,\"pending\":0,\"snoozed\":0,\"resolved\":0}"},
	        {",\"visible_to\":{\"agent\":\"bo\",\"teams\":[\"t2\"]}",
	         "{\"open\":0,\"pending\":0,\"snoozed\":0,\"resolved\":1}"},
	        {",\"team\":\"t1\"", "{\"open\":0,\"pending\":0,\"snoozed\":0,\"resolved\":0}"},
	};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		snprintf(req, sizeof(req), "{\"channel\":\"%s\"%s}", chc, counts[i].filter);
		cJSON *r = suite_query(su, "conversations.counts", req, &rc);
		CHECK_RC(rc, 0);
		char *text = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(r, "counts"));
		CHECK_STR(text ? text : "", counts[i].want);
		free(text);
		cJSON_Delete(r);
	}
	/* A status filter alone: ours is there, and nothing of another status is. */
	items = list(su, "conversations.list", "conversations", "{\"status\":\"resolved\",\"limit\":1000}");
	int ours = 0, other = 0;
	cJSON_ArrayForEach(it, items)
	{
		ours |= strcmp(suite_jstr(it, "id"), cb) == 0;
		other |= strcmp(suite_jstr(it, "status"), "resolved") != 0;
	}
	CHECK(ours && !other);
	cJSON_Delete(items);
}

/* ------------------------------------------------------------ leases */

void check_leases(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	char name[64];
	suite_id(su, "lease", name);
	const int64_t now = suite_now_ms();
	char *holder = NULL;
	CHECK_RC(t->lease_acquire(su->store, name, "node-1", now, 1000, &holder), 0);
	CHECK_STR(holder, "node-1");
	free(holder);
	holder = NULL;
	/* Busy for another holder, who learns who has it. */
	CHECK_RC(t->lease_acquire(su->store, name, "node-2", now + 10, 1000, &holder), PARLEY_EBUSY);
	CHECK_STR(holder, "node-1");
	free(holder);
	holder = NULL;
	/* The holder renews: held until now + 500 + 1000. */
	CHECK_RC(t->lease_acquire(su->store, name, "node-1", now + 500, 1000, NULL), 0);
	CHECK_RC(t->lease_acquire(su->store, name, "node-2", now + 1200, 1000, NULL), PARLEY_EBUSY);
	/* Expired: the next one gets it. */
	CHECK_RC(t->lease_acquire(su->store, name, "node-2", now + 1600, 1000, &holder), 0);
	CHECK_STR(holder, "node-2");
	free(holder);
	holder = NULL;
	CHECK_RC(t->lease_acquire(su->store, name, "node-1", now + 1700, 1000, NULL), PARLEY_EBUSY);
	/* Only the holder's release frees it. */
	t->lease_release(su->store, name, "node-1");
	CHECK_RC(t->lease_acquire(su->store, name, "node-3", now + 1800, 1000, NULL), PARLEY_EBUSY);
	CHECK_RC(t->lease_release(su->store, name, "node-2"), 0);
	CHECK_RC(t->lease_acquire(su->store, name, "node-3", now + 1800, 1000, &holder), 0);
	CHECK_STR(holder, "node-3");
	free(holder);
	/* Leases are by name. */
	char other[64];
	suite_id(su, "lease", other);
	CHECK_RC(t->lease_acquire(su->store, other, "node-1", now + 1800, 1000, NULL), 0);
}

struct counting {
	const struct parley_store_typed_ops *t;
	void *store;
	const char *name;
	int64_t seen[200];
};

static void *count_thread(void *p)
{
	struct counting *c = p;
	for (int i = 0; i < 100; i++)
		if (c->t->counter_add(c->store, c->name, 1, &c->seen[i]) != 0)
			c->seen[i] = -1;
	return NULL;
}

void check_counters(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	CHECK(t->counter_add != NULL);
	if (!t->counter_add)
		return;
	char name[64];
	suite_id(su, "counter", name);
	int64_t v = 0;
	CHECK_RC(t->counter_add(su->store, name, 1, &v), 0);
	CHECK(v == 1);
	CHECK_RC(t->counter_add(su->store, name, 5, &v), 0);
	CHECK(v == 6);
	/* Two threads advancing one counter see every value once: the addition is atomic. */
	struct counting a = {t, su->store, name, {0}}, b = {t, su->store, name, {0}};
	pthread_t ta, tb;
	pthread_create(&ta, NULL, count_thread, &a);
	pthread_create(&tb, NULL, count_thread, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	int seen[207] = {0}, bad = 0;
	for (int i = 0; i < 100; i++) {
		int64_t x[2] = {a.seen[i], b.seen[i]};
		for (int k = 0; k < 2; k++) {
			if (x[k] < 7 || x[k] > 206 || seen[x[k]]++)
				bad++;
		}
	}
	CHECK(bad == 0);
	CHECK_RC(t->counter_add(su->store, name, 0, &v), 0);
	CHECK(v == 206);
}

/* ------------------------------------------------------------ the queue */

/* The queued_at of conversation id as conversation.get gives it, into out ("" when absent). */
static void queued_at_of(struct suite *su, const char *id, char *out, size_t cap)
{
	char req[128];
	snprintf(req, sizeof(req), "{\"conversation_id\":\"%s\"}", id);
	int rc;
	cJSON *r = suite_query(su, "conversation.get", req, &rc);
	const char *q = suite_jstr(cJSON_GetObjectItemCaseSensitive(r, "conversation"), "queued_at");
	snprintf(out, cap, "%s", q ? q : "");
	cJSON_Delete(r);
}

/*
 * conversations_put keeps queued_at: set when a conversation begins to wait
 * (a team, no assignee, open or pending), kept while it waits, gone when it
 * is assigned or resolved; queue.waiting lists a team's waiting ones by
 * priority, then by how long they have waited.
 */
void check_queue(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	char k[64], team[64], a[64], b[64], c[64], d[64];
	suite_id(su, "contact", k);
	suite_id(su, "team", team);
	suite_id(su, "conv", a);
	suite_id(su, "conv", b);
	suite_id(su, "conv", c);
	suite_id(su, "conv", d);
	int64_t now = suite_now_ms();
	char t1[64], t2[64], t3[64], t4[64];
	suite_time(now - 4000, t1);
	suite_time(now - 3000, t2);
	suite_time(now - 2000, t3);
	suite_time(now - 1000, t4);
	parley_store_tx *tx;
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	struct parley_contact_rec ct = {.id = k};
	CHECK_RC(t->contacts_insert(tx, &ct, 1), 0);
	struct parley_conversation_rec cs[4] = {
	        {.id = a, .contact_id = k, .status = "open", .team = team, .created_at = t1, .updated_at = t1},
	        {.id = b, .contact_id = k, .status = "pending", .team = team, .created_at = t2, .updated_at = t2},
	        {.id = c,
	         .contact_id = k,
	         .status = "open",
	         .team = team,
	         .priority = "high",
	         .created_at = t3,
	         .updated_at = t3},
	        {.id = d,
	         .contact_id = k,
	         .status = "open",
	         .team = team,
	         .assignee = "amy",
	         .created_at = t1,
	         .updated_at = t1},
	};
	CHECK_RC(t->conversations_put(tx, cs, 4), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	char q[64];
	queued_at_of(su, a, q, sizeof(q));
	CHECK_STR(q, t1);
	queued_at_of(su, d, q, sizeof(q));
	CHECK_STR(q, "");
	char req[160], got[512], want[512];
	snprintf(req, sizeof(req), "{\"team\":\"%s\"}", team);
	cJSON *items = list(su, "queue.waiting", "waiting", req);
	ids_of(items, got, sizeof(got));
	snprintf(want, sizeof(want), "%s,%s,%s", c, a, b); /* high first, then the longest waiting */
	CHECK_STR(got, want);
	cJSON_Delete(items);

	/* Still waiting after another change: the time it began is kept. Assigned: no longer waiting. */
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	cs[0].updated_at = t4;
	cs[0].labels = "[\"vip\"]";
	cs[1].assignee = "amy";
	cs[1].updated_at = t4;
	CHECK_RC(t->conversations_put(tx, cs, 2), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	queued_at_of(su, a, q, sizeof(q));
	CHECK_STR(q, t1);
	queued_at_of(su, b, q, sizeof(q));
	CHECK_STR(q, "");
	/* Unassigned again: it waits from then on, behind those that waited longer. */
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	cs[1].assignee = NULL;
	cs[1].updated_at = t4;
	cs[2].status = "resolved";
	cs[2].updated_at = t4;
	CHECK_RC(t->conversations_put(tx, &cs[1], 2), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	queued_at_of(su, b, q, sizeof(q));
	CHECK_STR(q, t4);
	queued_at_of(su, c, q, sizeof(q));
	CHECK_STR(q, "");
	items = list(su, "queue.waiting", "waiting", req);
	ids_of(items, got, sizeof(got));
	snprintf(want, sizeof(want), "%s,%s", a, b);
	CHECK_STR(got, want);
	cJSON_Delete(items);
	snprintf(req, sizeof(req), "{\"team\":\"%s\",\"limit\":1}", team);
	items = list(su, "queue.waiting", "waiting", req);
	ids_of(items, got, sizeof(got));
	CHECK_STR(got, a);
	cJSON_Delete(items);
}
