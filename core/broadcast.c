/*
 * broadcast.c: the feeder, which moves pending broadcast recipients into
 * the outbox at each channel's rate, and the outbox's guard around each
 * broadcast send (see broadcast.h).
 */
#include "broadcast.h"
#include "broadcast_ops.h"
#include "bus.h"
#include "envelope.h"
#include "gateway.h"
#include "log.h"
#include "ops.h"
#include "outbox.h"
#include "store.h"
#include "util.h"
#include "window.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS      200
#define MAX_FEED     200   /* recipients per channel and pass at most */
#define DEFAULT_RATE 100.0 /* sends per second fed to a channel without a rate_limit */
#define LEASE_MS     10000 /* one node feeds; its turn lapses this long after its last pass */
#define ORPHANS_MS   10000 /* a stalled broadcast is searched for recipients of removed channels this often */

struct reply {
	struct reply *next;
	char *channel, *to, *conv, *text;
};

struct broadcast {
	struct gateway *gw;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int wake, stop;
	struct reply *replies; /* confirmations to send, under lock */
	/* Feeder thread only: each channel's budget (in the order of the topology's channels; a reload that
	 * changes their number starts them again). */
	double *tokens;
	size_t n_tokens;
	int64_t tokens_at, orphans_at;
};

/* ---------------------------------------------------------- feeding */

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct rows {
	struct parley_broadcast_recipient_rec *v;
	size_t n, cap;
	int oom;
};

static int collect_pending(void *arg, const void *row)
{
	struct rows *rs = arg;
	const struct parley_broadcast_recipient_rec *r = row;
	if (rs->n == rs->cap) {
		size_t nc = rs->cap ? rs->cap * 2 : 64;
		struct parley_broadcast_recipient_rec *nv = realloc(rs->v, nc * sizeof(*nv));
		if (!nv) {
			rs->oom = 1;
			return 1;
		}
		rs->v = nv;
		rs->cap = nc;
	}
	struct parley_broadcast_recipient_rec *w = &rs->v[rs->n++];
	memset(w, 0, sizeof(*w));
	w->broadcast_id = dup_or_null(r->broadcast_id);
	w->contact_id = dup_or_null(r->contact_id);
	w->channel = dup_or_null(r->channel);
	w->urn = dup_or_null(r->urn);
	w->conversation_id = dup_or_null(r->conversation_id);
	w->opted_out = r->opted_out;
	return 0;
}

static void rows_free(struct rows *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free((char *)rs->v[i].broadcast_id);
		free((char *)rs->v[i].contact_id);
		free((char *)rs->v[i].channel);
		free((char *)rs->v[i].urn);
		free((char *)rs->v[i].conversation_id);
		free((char *)rs->v[i].reason);
	}
	free(rs->v);
	memset(rs, 0, sizeof(*rs));
}

/* What one recipient gets: an envelope (*env), or a reason to skip it (malloc'd). */
static char *decide(struct gateway *gw, parley_instance *ch, const cJSON *spec, const char *bid,
                    const struct parley_broadcast_recipient_rec *r, parley_envelope **env)
{
	*env = NULL;
	if (r->opted_out)
		return strdup("opted out");
	const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "text"));
	const cJSON *tpl = cJSON_GetObjectItemCaseSensitive(spec, "template");
	const char *tag = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(spec, "tag"));
	int64_t len, tag_ms;
	enum window_rule rule = window_rule_of(ch, &len, &tag_ms);
	int use_template = 0, use_tag = 0;
	if (rule != WINDOW_NONE) {
		int64_t last;
		int open = window_open(gw, ch, r->urn, &last);
		if (open < 0)
			return str_printf("the store did not answer: %s", parley_strerror(open));
		char hours[32];
		window_say(len, hours);
		if (open) {
			use_template = !text && rule == WINDOW_TEMPLATES && tpl;
			if (!text && !use_template)
				return str_printf("channel '%s' takes no templates: give the broadcast a text",
				                  ch->name);
		} else if (rule == WINDOW_TEMPLATES) {
			if (!tpl)
				return str_printf("outside the %s window", hours);
			use_template = 1;
		} else {
			int64_t age = last > 0 ? time_now_ms() - last : -1;
			if (!tag || !text || (strcmp(tag, "HUMAN_AGENT") == 0 && (age < 0 || age >= tag_ms)))
				return str_printf("outside the %s window", hours);
			use_tag = 1;
		}
	} else if (!text && !window_takes_templates(ch)) {
		return str_printf("channel '%s' takes no templates: give the broadcast a text", ch->name);
	} else if (!text) {
		use_template = 1;
	}
	char id[27];
	broadcast_message_id(bid, r->contact_id, id);
	parley_envelope *e = envelope_create("message", "outbound");
	if (!e)
		return strdup("out of memory");
	envelope_set(e, "id", id);
	envelope_set(e, "channel", ch->name);
	envelope_set(e, "channel_type", ch->plugin->desc->name);
	envelope_set(e, "to", r->urn);
	envelope_set(e, "status", "queued");
	envelope_set(e, "contact_id", r->contact_id);
	if (r->conversation_id)
		envelope_set(e, "conversation_id", r->conversation_id);
	if (use_template)
		cJSON_AddItemToObject(e->obj, "template", cJSON_Duplicate(tpl, 1));
	else
		envelope_set(e, "text", text);
	cJSON *meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "broadcast_id", bid);
	if (use_tag)
		cJSON_AddStringToObject(meta, "tag", tag);
	cJSON_AddItemToObject(e->obj, "meta", meta);
	if (envelope_error(e)) {
		char *why = str_printf("cannot build its message: %s", envelope_error(e));
		envelope_destroy(e);
		return why;
	}
	*env = e;
	return NULL;
}

/*
 * Feed up to max pending recipients of broadcast bid on ch: one
 * transaction inserts their messages and moves them.  Returns how many
 * went to the outbox (0 when none were pending), or a negative error.
 */
static int feed(struct broadcast *b, parley_instance *ch, const char *bid, const cJSON *spec, size_t max)
{
	struct gateway *gw = b->gw;
	const struct parley_store_typed_ops *t = store_typed(gw->st);
	struct rows rs = {0};
	int rv = store_broadcast_pending(gw->st, bid, ch->name, max, collect_pending, &rs);
	if (rs.oom)
		rv = PARLEY_ENOMEM;
	if (rv != 0 || rs.n == 0) {
		rows_free(&rs);
		return rv;
	}
	parley_envelope **envs = calloc(rs.n, sizeof(*envs));
	int *results = calloc(rs.n, sizeof(*results));
	size_t ne = 0;
	for (size_t i = 0; envs && results && i < rs.n; i++) {
		struct parley_broadcast_recipient_rec *r = &rs.v[i];
		parley_envelope *e;
		char *why = decide(gw, ch, spec, bid, r, &e);
		if (why) {
			r->state = "skipped";
			r->reason = why;
		} else {
			r->state = "queued";
			r->message_id = envelope_get(e, "id");
			envs[ne++] = e;
		}
	}
	parley_store_tx *tx = NULL;
	if (!envs || !results)
		rv = PARLEY_ENOMEM;
	else if ((rv = t->tx_begin(store_data(gw->st), &tx)) == 0) {
		if ((ne == 0 || (rv = t->messages_insert(tx, envs, ne, results)) == 0) &&
		    (rv = t->broadcast_recipients_set(tx, rs.v, rs.n, NULL)) == 0)
			rv = t->tx_commit(tx);
		else
			t->tx_rollback(tx);
	}
	if (rv == 0) {
		for (size_t i = 0; i < ne; i++) {
			char topic[256];
			size_t len;
			const char *json = envelope_text(envs[i], &len);
			if (results[i] == 0 && json && envelope_topic(envs[i], topic, sizeof(topic)) == 0)
				bus_publish_stored(gw->bus, topic, json, len);
		}
		if (ne)
			outbox_wake(gw->outbox);
	} else {
		log_warn("broadcast %s: could not queue %zu recipient(s) on channel %s (%s): will try again", bid, rs.n,
		         ch->name, parley_strerror(rv));
	}
	for (size_t i = 0; i < rs.n; i++)
		rs.v[i].message_id = NULL; /* borrowed from envs */
	for (size_t i = 0; envs && i < ne; i++)
		envelope_destroy(envs[i]);
	free(envs);
	free(results);
	rows_free(&rs);
	return rv == 0 ? (int)ne : rv;
}

struct orphans {
	const struct topology *topo;
	struct rows rs;
	char last[128];
	int n;
};

static int collect_orphan(void *arg, const void *row)
{
	struct orphans *o = arg;
	const struct parley_broadcast_recipient_rec *r = row;
	snprintf(o->last, sizeof(o->last), "%s", r->contact_id);
	o->n++;
	parley_instance *ch = r->channel ? topology_channel(o->topo, r->channel) : NULL;
	if (!r->state || strcmp(r->state, "pending") != 0 || (ch && ch->plugin->desc->channel_send))
		return 0;
	return collect_pending(&o->rs, row);
}

/*
 * Pending recipients of a channel no longer configured (the config changed
 * since the broadcast began) would wait for ever: skipped, saying why.
 */
static void skip_orphans(struct broadcast *b, const struct topology *topo, const char *bid)
{
	struct gateway *gw = b->gw;
	const struct parley_store_typed_ops *t = store_typed(gw->st);
	struct orphans o = {.topo = topo};
	int rv;
	do {
		o.n = 0;
		rv = store_broadcast_recipients(gw->st, bid, o.last[0] ? o.last : NULL, 500, collect_orphan, &o);
	} while (rv == 0 && o.n == 500 && !o.rs.oom);
	for (size_t i = 0; i < o.rs.n; i++) {
		o.rs.v[i].state = "skipped";
		o.rs.v[i].reason = str_printf("channel '%s' is not configured any more", o.rs.v[i].channel);
	}
	parley_store_tx *tx;
	if (rv == 0 && !o.rs.oom && o.rs.n && (rv = t->tx_begin(store_data(gw->st), &tx)) == 0) {
		if ((rv = t->broadcast_recipients_set(tx, o.rs.v, o.rs.n, NULL)) == 0)
			rv = t->tx_commit(tx);
		else
			t->tx_rollback(tx);
		if (rv == 0)
			log_warn("broadcast %s: %zu recipient(s) on channels no longer configured: skipped", bid,
			         o.rs.n);
	}
	rows_free(&o.rs);
}

struct active {
	char **ids;
	char **specs;
	size_t n, cap;
};

static int collect_active(void *arg, const void *row)
{
	struct active *a = arg;
	const struct parley_broadcast_rec *r = row;
	if (a->n == a->cap) {
		size_t nc = a->cap ? a->cap * 2 : 8;
		char **ni = realloc(a->ids, nc * sizeof(*ni));
		if (ni)
			a->ids = ni;
		char **ns = realloc(a->specs, nc * sizeof(*ns));
		if (ns)
			a->specs = ns;
		if (!ni || !ns)
			return 1;
		a->cap = nc;
	}
	a->ids[a->n] = strdup(r->id);
	a->specs[a->n] = strdup(r->spec ? r->spec : "{}");
	a->n++;
	return 0;
}

static int count_queued(void *arg, const void *row)
{
	const struct parley_broadcast_count *c = row;
	if (strcmp(c->status, "queued") == 0)
		*(int64_t *)arg += c->n;
	return 0;
}

/* One pass over the running broadcasts. */
static void feed_pass(struct broadcast *b)
{
	struct gateway *gw = b->gw;
	int64_t now = time_mono_ms();
	double dt = b->tokens_at ? (double)(now - b->tokens_at) / 1000.0 : 1.0;
	b->tokens_at = now;
	/* The channels as they are now, held for the pass (a reload may replace them). */
	struct topology *topo = topology_get(gw);
	if (topo->n_channels != b->n_tokens) {
		double *nt = calloc(topo->n_channels + 1, sizeof(*nt));
		if (!nt) {
			topology_put(topo);
			return;
		}
		free(b->tokens);
		b->tokens = nt;
		b->n_tokens = topo->n_channels;
	}
	for (size_t c = 0; c < topo->n_channels; c++) {
		double rate = topo->channels[c]->rate > 0 ? topo->channels[c]->rate : DEFAULT_RATE;
		b->tokens[c] += dt * rate;
		if (b->tokens[c] > (rate > 1 ? rate : 1))
			b->tokens[c] = rate > 1 ? rate : 1;
	}
	struct active a = {0};
	if (store_broadcasts_list(gw->st, "running", collect_active, &a) != 0)
		goto out;
	for (size_t i = 0; i < a.n; i++) {
		cJSON *spec = cJSON_Parse(a.specs[i]);
		int failed = 0, fed_any = 0;
		for (size_t c = 0; c < topo->n_channels; c++) {
			parley_instance *ch = topo->channels[c];
			if (!ch->plugin->desc->channel_send || b->tokens[c] < 1)
				continue;
			size_t max = (size_t)floor(b->tokens[c]);
			int fed = feed(b, ch, a.ids[i], spec, max > MAX_FEED ? MAX_FEED : max);
			if (fed > 0)
				b->tokens[c] -= fed;
			failed |= fed < 0;
			fed_any |= fed > 0;
		}
		cJSON_Delete(spec);
		int64_t left = 0;
		int counted = !failed && store_broadcast_counts(gw->st, a.ids[i], count_queued, &left) == 0;
		if (counted && left > 0 && !fed_any && now - b->orphans_at >= ORPHANS_MS) {
			b->orphans_at = now;
			skip_orphans(b, topo, a.ids[i]);
		}
		if (counted && left == 0) {
			char at[64];
			time_format_ms(time_now_ms(), at);
			if (store_broadcast_set_state(gw->st, a.ids[i], "done", at, NULL) == 0) {
				log_info("broadcast %s: done (see parley broadcast status %s)", a.ids[i], a.ids[i]);
				cJSON *ev = cJSON_CreateObject();
				cJSON_AddStringToObject(ev, "id", a.ids[i]);
				cJSON_AddStringToObject(ev, "state", "done");
				char *json = cJSON_PrintUnformatted(ev);
				cJSON_Delete(ev);
				if (json)
					bus_publish(gw->bus, "broadcast.done", json, strlen(json));
				free(json);
			}
		}
	}
out:
	topology_put(topo);
	for (size_t i = 0; i < a.n; i++) {
		free(a.ids[i]);
		free(a.specs[i]);
	}
	free(a.ids);
	free(a.specs);
}

/* Send the queued confirmations (opt-out, opt-in) as replies. */
static void send_replies(struct broadcast *b)
{
	pthread_mutex_lock(&b->lock);
	struct reply *r = b->replies;
	b->replies = NULL;
	pthread_mutex_unlock(&b->lock);
	while (r) {
		struct reply *next = r->next;
		cJSON *req = cJSON_CreateObject();
		cJSON_AddStringToObject(req, "channel", r->channel);
		cJSON_AddStringToObject(req, "to", r->to);
		if (r->conv)
			cJSON_AddStringToObject(req, "conversation_id", r->conv);
		cJSON_AddStringToObject(req, "text", r->text);
		cJSON_AddStringToObject(cJSON_AddObjectToObject(req, "meta"), "auto_reply", "opt_out");
		char *reply = ops_call(b->gw, NULL, "message.send", req);
		cJSON *j = reply ? cJSON_Parse(reply) : NULL;
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok")))
			log_warn("channel %s: the opt-out confirmation to %s was not queued: %s", r->channel, r->to,
			         reply ? reply : "out of memory");
		cJSON_Delete(j);
		free(reply);
		cJSON_Delete(req);
		free(r->channel);
		free(r->to);
		free(r->conv);
		free(r->text);
		free(r);
		r = next;
	}
}

static void *feeder_main(void *arg)
{
	struct broadcast *b = arg;
	struct gateway *gw = b->gw;
	pthread_mutex_lock(&b->lock);
	while (!b->stop) {
		b->wake = 0;
		pthread_mutex_unlock(&b->lock);
		send_replies(b);
		/* Nodes sharing a store feed one at a time: the rate limits are the channels', not a node's. */
		if (store_keeps_broadcasts(gw->st) &&
		    store_lease(gw->st, "broadcast/feed", gw->cfg.node_name, LEASE_MS) == 0)
			feed_pass(b);
		pthread_mutex_lock(&b->lock);
		if (b->wake || b->stop)
			continue;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns = ts.tv_nsec + TICK_MS * 1000000L;
		ts.tv_sec += ns / 1000000000L;
		ts.tv_nsec = ns % 1000000000L;
		pthread_cond_timedwait(&b->cv, &b->lock, &ts);
	}
	pthread_mutex_unlock(&b->lock);
	send_replies(b);
	return NULL;
}

int broadcast_start(struct broadcast **out, struct gateway *gw)
{
	struct broadcast *b = calloc(1, sizeof(*b));
	if (!b)
		return PARLEY_ENOMEM;
	b->gw = gw;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cv, NULL);
	if (thread_start(&b->thread, feeder_main, b, "parley:feeder") != 0) {
		free(b->tokens);
		free(b);
		return PARLEY_EIO;
	}
	*out = b;
	return 0;
}

void broadcast_wake(struct broadcast *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->wake = 1;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->lock);
}

void broadcast_stop(struct broadcast *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->stop = 1;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cv);
	free(b->tokens);
	free(b);
}

void broadcast_queue_reply(struct broadcast *b, const char *channel, const char *to, const char *conversation_id,
                           const char *text)
{
	if (!b)
		return;
	struct reply *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	r->channel = strdup(channel);
	r->to = strdup(to);
	r->conv = dup_or_null(conversation_id);
	r->text = strdup(text);
	pthread_mutex_lock(&b->lock);
	r->next = b->replies;
	b->replies = r;
	b->wake = 1;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->lock);
}

/* ------------------------------------------------------ outbox guard */

static const char *broadcast_of(const cJSON *msg)
{
	return cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(msg, "meta"), "broadcast_id"));
}

int broadcast_automatic(const cJSON *msg)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(msg, "meta");
	return broadcast_of(msg) || cJSON_GetObjectItemCaseSensitive(meta, "auto_reply");
}

enum broadcast_go broadcast_send_begin(struct gateway *gw, const cJSON *msg, char **why)
{
	*why = NULL;
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "id"));
	if (!broadcast_of(msg) || !id || !store_keeps_broadcasts(gw->st))
		return BROADCAST_SEND;
	int rv = store_broadcast_recipient_advance(gw->st, id, "queued", "sending", NULL);
	if (rv == 0)
		return BROADCAST_SEND;
	if (rv != PARLEY_ENOENT)
		return BROADCAST_LATER;
	static const char unknown[] = "a gateway stopped during this send, so whether the customer got it is "
	                              "unknown: it is not sent again (a broadcast reaches a contact at most once)";
	if (store_broadcast_recipient_advance(gw->st, id, "sending", "failed", unknown) == 0) {
		*why = strdup(unknown);
		return BROADCAST_FAILED;
	}
	*why = strdup("its broadcast was cancelled");
	return BROADCAST_DROPPED;
}

void broadcast_send_end(struct gateway *gw, const cJSON *msg, const char *state, const char *reason)
{
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "id"));
	if (!broadcast_of(msg) || !id || !store_keeps_broadcasts(gw->st))
		return;
	int rv = store_broadcast_recipient_advance(gw->st, id, "sending", state, reason);
	if (rv != 0 && rv != PARLEY_ENOENT)
		log_warn("broadcast %s: could not record that message %s is %s (%s)", broadcast_of(msg), id, state,
		         parley_strerror(rv));
}
