/*
 * check_broadcasts.c: the customer-service window and broadcasts (store.h,
 * ABI 1.4): what core/window.c and core/broadcast*.c rely on, in every
 * store.  Segments select by label, attribute and channel (and-ed); a
 * recipient moves only from pending, or from the state it is asked to move
 * from; broadcast messages are claimed after every other due message.
 */
#include "suite.h"

#include <stdlib.h>

struct rows {
	int n;
	char contact[8][64], channel[8][64], urn[8][128], status[8][32], conv[8][64];
	int opted[8];
};

static void keep(char *dst, size_t n, const char *v)
{
	snprintf(dst, n, "%s", v ? v : "(null)");
}

static int see_recipient(void *arg, const void *row)
{
	struct rows *r = arg;
	const struct parley_broadcast_recipient_rec *x = row;
	if (r->n < 8) {
		keep(r->contact[r->n], 64, x->contact_id);
		keep(r->channel[r->n], 64, x->channel);
		keep(r->urn[r->n], 128, x->urn);
		keep(r->status[r->n], 32, x->status ? x->status : x->state);
		keep(r->conv[r->n], 64, x->conversation_id);
		r->opted[r->n] = x->opted_out;
	}
	r->n++;
	return 0;
}

struct counts {
	int64_t queued, sent, skipped, cancelled, other;
};

static int see_count(void *arg, const void *row)
{
	struct counts *c = arg;
	const struct parley_broadcast_count *x = row;
	int64_t *slot = strcmp(x->status, "queued") == 0      ? &c->queued
	                : strcmp(x->status, "sent") == 0      ? &c->sent
	                : strcmp(x->status, "skipped") == 0   ? &c->skipped
	                : strcmp(x->status, "cancelled") == 0 ? &c->cancelled
	                                                      : &c->other;
	*slot += x->n;
	return 0;
}

static int see_state(void *arg, const void *row)
{
	keep(arg, 32, ((const struct parley_broadcast_rec *)row)->state);
	return 0;
}

static struct counts counts_of(struct suite *su, const char *id)
{
	struct counts c = {0};
	CHECK_RC(su->t->broadcast_counts(su->store, id, see_count, &c), 0);
	return c;
}

/* Three contacts: A wrote on ch1 two days ago (conversation labelled), B on ch2 now, C never (gold, opted out). */
struct world {
	char a[64], b[64], c[64], ch1[64], ch2[64], label[64], attr[64], conv_a[64], urn_a[128], urn_b[128];
	char old[64], other_urn[128];
};

static void make_world(struct suite *su, struct world *w)
{
	const struct parley_store_typed_ops *t = su->t;
	suite_id(su, "bc-a", w->a);
	suite_id(su, "bc-b", w->b);
	suite_id(su, "bc-c", w->c);
	suite_id(su, "bc-ch1", w->ch1);
	suite_id(su, "bc-ch2", w->ch2);
	suite_id(su, "bc-label", w->label);
	suite_id(su, "bc-tier", w->attr);
	suite_id(su, "bc-conv", w->conv_a);
	snprintf(w->urn_a, sizeof(w->urn_a), "webhook:%s", w->a);
	snprintf(w->urn_b, sizeof(w->urn_b), "webhook:%s", w->b);
	snprintf(w->other_urn, sizeof(w->other_urn), "tel:%s", w->a);
	char now[64], attrs[256];
	suite_time(suite_now_ms(), now);
	suite_time(suite_now_ms() - 2 * 86400000LL, w->old);
	snprintf(attrs, sizeof(attrs), "{\"%s\": \"gold\", \"opt_out\": true}", w->attr);
	struct parley_contact_rec cs[] = {{.id = w->a, .created_at = now, .updated_at = now},
	                                  {.id = w->b, .created_at = now, .updated_at = now},
	                                  {.id = w->c, .attributes = attrs, .created_at = now, .updated_at = now}};
	char labels[128];
	snprintf(labels, sizeof(labels), "[\"%s\"]", w->label);
	struct parley_conversation_rec conv = {.id = w->conv_a,
	                                       .contact_id = w->a,
	                                       .status = "open",
	                                       .labels = labels,
	                                       .created_at = now,
	                                       .updated_at = now};
	parley_store_tx *tx;
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	CHECK_RC(t->contacts_insert(tx, cs, 3), 0);
	CHECK_RC(t->conversations_put(tx, &conv, 1), 0);
	/* A's other address, never written from. */
	struct parley_identity_rec other = {.urn = w->other_urn, .contact_id = w->a, .created_at = now};
	const char *owner = NULL;
	CHECK_RC(t->identities_claim(tx, &other, 1, &owner), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	char ida[64], idb[64], exa[64], exb[64];
	suite_id(su, "msg", ida);
	suite_id(su, "msg", idb);
	suite_id(su, "bc-ext", exa);
	suite_id(su, "bc-ext", exb);
	parley_envelope *e[2] = {suite_env(su, "inbound", ida, w->ch1, exa, w->urn_a, "webhook:us"),
	                         suite_env(su, "inbound", idb, w->ch2, exb, w->urn_b, "webhook:us")};
	su->h->envelope_set_str(e[0], "contact_id", w->a);
	su->h->envelope_set_str(e[0], "sent_at", w->old);
	su->h->envelope_set_str(e[1], "contact_id", w->b);
	int res[2];
	CHECK_RC(suite_insert(su, e, 2, res), 0);
	su->h->envelope_free(e[0]);
	su->h->envelope_free(e[1]);
}

static void check_window(struct suite *su, const struct world *w)
{
	char *at = NULL;
	CHECK_RC(su->t->window_last_inbound(su->store, w->ch1, w->urn_a, &at), 0);
	CHECK_STR(at, w->old); /* the provider's time, the earlier of the two */
	free(at);
	at = NULL;
	CHECK_RC(su->t->window_last_inbound(su->store, w->ch2, w->urn_a, &at), PARLEY_ENOENT);
	CHECK(at == NULL);
	/* A send to the contact's other address: the contact's last message counts. */
	CHECK_RC(su->t->window_last_inbound(su->store, w->ch1, w->other_urn, &at), 0);
	CHECK_STR(at, w->old);
	free(at);
}

static void check_segments(struct suite *su, const struct world *w)
{
	const struct parley_store_typed_ops *t = su->t;
	struct parley_segment_term label = {"label", w->label, NULL}, gold = {"attr", w->attr, "gold"},
	                           has = {"attr", w->attr, NULL}, ch2 = {"channel", w->ch2, NULL};
	struct rows r = {0};
	CHECK_RC(t->broadcast_candidates(su->store, &label, 1, NULL, see_recipient, &r), 0);
	CHECK(r.n == 1);
	CHECK_STR(r.contact[0], w->a);
	CHECK_STR(r.channel[0], w->ch1); /* where the contact wrote last */
	CHECK_STR(r.urn[0], w->urn_a);
	CHECK(r.opted[0] == 0);
	memset(&r, 0, sizeof(r));
	CHECK_RC(t->broadcast_candidates(su->store, &gold, 1, NULL, see_recipient, &r), 0);
	CHECK(r.n == 1 && r.opted[0] == 1);
	CHECK_STR(r.contact[0], w->c);
	CHECK_STR(r.channel[0], "(null)"); /* never wrote */
	memset(&r, 0, sizeof(r));
	CHECK_RC(t->broadcast_candidates(su->store, &has, 1, NULL, see_recipient, &r), 0);
	CHECK(r.n == 1);
	memset(&r, 0, sizeof(r));
	CHECK_RC(t->broadcast_candidates(su->store, &ch2, 1, NULL, see_recipient, &r), 0);
	CHECK(r.n == 1);
	CHECK_STR(r.contact[0], w->b);
	struct parley_segment_term both[] = {label, ch2};
	memset(&r, 0, sizeof(r));
	CHECK_RC(t->broadcast_candidates(su->store, both, 2, NULL, see_recipient, &r), 0);
	CHECK(r.n == 0); /* terms are and-ed */
	/* A named channel: the address there, or none. */
	memset(&r, 0, sizeof(r));
	CHECK_RC(t->broadcast_candidates(su->store, &label, 1, w->ch2, see_recipient, &r), 0);
	CHECK(r.n == 1);
	CHECK_STR(r.channel[0], "(null)");
	struct parley_segment_term bad = {"colour", "blue", NULL};
	CHECK_RC(t->broadcast_candidates(su->store, &bad, 1, NULL, see_recipient, &r), PARLEY_EINVAL);
}

void check_broadcasts(struct suite *su)
{
	const struct parley_store_typed_ops *t = su->t;
	CHECK(t->struct_size >= offsetof(struct parley_store_typed_ops, broadcast_set_state) + sizeof(void *));
	if (!t->broadcast_set_state || !t->window_last_inbound) {
		CHECK(!"the store has the ABI 1.4 broadcast operations");
		return;
	}
	struct world w;
	make_world(su, &w);
	check_window(su, &w);
	check_segments(su, &w);

	char bid[64], now[64];
	suite_id(su, "bc", bid);
	suite_time(suite_now_ms(), now);
	struct parley_broadcast_rec b = {bid, "running", "{\"text\": \"hi\"}", "admin", now, now};
	struct parley_broadcast_recipient_rec rs[] = {
	        {.contact_id = w.a, .channel = w.ch1, .urn = w.urn_a, .state = "pending"},
	        {.contact_id = w.b, .channel = w.ch2, .urn = w.urn_b, .state = "pending"},
	        {.contact_id = w.c, .state = "skipped", .reason = "opted out"},
	};
	CHECK_RC(t->broadcast_insert(su->store, &b, rs, 3), 0);
	CHECK_RC(t->broadcast_insert(su->store, &b, rs, 3), PARLEY_EEXIST);
	char state[32] = "";
	CHECK_RC(t->broadcast_get(su->store, bid, see_state, state), 0);
	CHECK_STR(state, "running");
	struct counts c = counts_of(su, bid);
	CHECK(c.queued == 2 && c.skipped == 1 && c.sent == 0);

	struct rows p = {0};
	CHECK_RC(t->broadcast_pending(su->store, bid, w.ch1, 10, see_recipient, &p), 0);
	CHECK(p.n == 1);
	CHECK_STR(p.contact[0], w.a);
	CHECK_STR(p.conv[0], w.conv_a); /* the contact's latest conversation */

	/* A's message and its move to queued, in one transaction; a second move finds it no longer pending. */
	char mid[64], reply[64];
	suite_id(su, "msg", mid);
	suite_id(su, "msg", reply);
	parley_envelope *out = suite_env(su, "outbound", mid, w.ch1, NULL, NULL, w.urn_a);
	su->h->envelope_set_str(out, "status", "queued");
	struct parley_broadcast_recipient_rec move = {
	        .broadcast_id = bid, .contact_id = w.a, .state = "queued", .message_id = mid};
	parley_store_tx *tx;
	int res;
	int64_t moved = -1;
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	CHECK_RC(t->messages_insert(tx, &out, 1, &res), 0);
	CHECK_RC(t->broadcast_recipients_set(tx, &move, 1, &moved), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	CHECK(moved == 1);
	CHECK_RC(t->tx_begin(su->store, &tx), 0);
	CHECK_RC(t->broadcast_recipients_set(tx, &move, 1, &moved), 0);
	CHECK_RC(t->tx_commit(tx), 0);
	CHECK(moved == 0);
	su->h->envelope_free(out);

	/* A reply queued after it is claimed before it: broadcast traffic is the lower class. */
	parley_envelope *r = suite_env(su, "outbound", reply, w.ch1, NULL, NULL, w.urn_a);
	su->h->envelope_set_str(r, "status", "queued");
	CHECK_RC(suite_insert(su, &r, 1, &res), 0);
	su->h->envelope_free(r);
	char *json = NULL;
	CHECK_RC(su->ops->outbox_claim(su->store, suite_now_ms() + 1000, 1000, &json), 0);
	const char *at_reply = json ? strstr(json, reply) : NULL, *at_bc = json ? strstr(json, mid) : NULL;
	CHECK(at_reply && at_bc && at_reply < at_bc);
	free(json);
	CHECK_RC(su->ops->outbox_update(su->store, reply, "sent", NULL, NULL, 0), 0);

	/* The outbox's guard: queued → sending once; sending → sent. */
	CHECK_RC(t->broadcast_recipient_advance(su->store, mid, "queued", "sending", NULL), 0);
	CHECK_RC(t->broadcast_recipient_advance(su->store, mid, "queued", "sending", NULL), PARLEY_ENOENT);
	CHECK_RC(t->broadcast_recipient_advance(su->store, mid, "sending", "sent", NULL), 0);
	CHECK_RC(su->ops->outbox_update(su->store, mid, "sent", NULL, NULL, 0), 0);
	c = counts_of(su, bid);
	CHECK(c.queued == 1 && c.sent == 1 && c.skipped == 1);

	struct rows all = {0};
	CHECK_RC(t->broadcast_recipients(su->store, bid, NULL, 2, see_recipient, &all), 0);
	CHECK(all.n == 2);
	struct rows rest = {0};
	CHECK_RC(t->broadcast_recipients(su->store, bid, all.contact[1], 10, see_recipient, &rest), 0);
	CHECK(rest.n == 1);

	/* Cancel: who is pending is cancelled; who was sent to stays sent. */
	int64_t n = -1;
	CHECK_RC(t->broadcast_set_state(su->store, bid, "cancelled", now, &n), 0);
	CHECK(n == 1);
	c = counts_of(su, bid);
	CHECK(c.cancelled == 1 && c.sent == 1 && c.queued == 0);
	CHECK_RC(t->broadcast_get(su->store, bid, see_state, state), 0);
	CHECK_STR(state, "cancelled");
	char none[64];
	suite_id(su, "bc-none", none);
	CHECK_RC(t->broadcast_set_state(su->store, none, "done", now, NULL), PARLEY_ENOENT);
	CHECK_RC(t->broadcast_get(su->store, none, see_state, state), PARLEY_ENOENT);
}
