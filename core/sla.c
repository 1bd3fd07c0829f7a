/* sla.c: the SLA clock, decided in the conversation core's transactions, and its sweep (see sla.h). */
#include "sla.h"
#include "bus.h"
#include "gateway.h"
#include "log.h"
#include "ops.h"
#include "promises.h"
#include "store.h"
#include "util.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_TTL_MS 10000
#define SWEEP_MAX    200
#define NEVER        "9999-12-31T23:59:59.000Z"

static int same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

static int has_label(const char *labels, const char *label)
{
	cJSON *l = cJSON_Parse(labels ? labels : "[]");
	int found = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, l) found |= same(cJSON_GetStringValue(v), label);
	cJSON_Delete(l);
	return found;
}

/* The first policy whose match the conversation meets, or NULL. */
static const struct sla_policy *policy_match(const struct sla_config *cfg, const struct parley_conversation_rec *c)
{
	for (size_t i = 0; i < cfg->n; i++) {
		const struct sla_policy *p = &cfg->policies[i];
		if ((!p->team || same(p->team, c->team)) && (!p->priority || same(p->priority, c->priority)) &&
		    (!p->channel || same(p->channel, c->last_channel)) && (!p->label || has_label(c->labels, p->label)))
			return p;
	}
	return NULL;
}

static const struct sla_policy *policy_named(const struct sla_config *cfg, const char *name)
{
	for (size_t i = 0; name && i < cfg->n; i++)
		if (strcmp(cfg->policies[i].name, name) == 0)
			return &cfg->policies[i];
	return NULL;
}

/* from plus seconds of p's business time, as RFC 3339 (NEVER when its hours never open). */
static void add_business(const struct sla_policy *p, const char *from, int64_t seconds, char out[64])
{
	time_t t = (time_t)(time_parse_ms(from) / 1000);
	time_t r = p->has_hours ? bh_add_seconds(&p->hours, t, seconds) : t + (time_t)seconds;
	if (r == 0)
		snprintf(out, 64, "%s", NEVER);
	else
		time_format_ms((int64_t)r * 1000, out);
}

static int64_t business_between(const struct sla_policy *p, const char *a, const char *b)
{
	time_t x = (time_t)(time_parse_ms(a) / 1000), y = (time_t)(time_parse_ms(b) / 1000);
	if (p->has_hours)
		return bh_seconds_between(&p->hours, x, y);
	return y > x ? (int64_t)(y - x) : 0;
}

/* A conversation's targets while one change is decided: the rows, the strings made for them, the log rows. */
struct track {
	const struct sla_config *cfg;
	const struct parley_conversation_rec *c;
	const char *now;
	struct parley_sla_rec r[SLA_TARGETS];
	int have[SLA_TARGETS], dirty[SLA_TARGETS];
	char due[SLA_TARGETS][64], warn[SLA_TARGETS][64];
	struct parley_conversation_event_rec ev[2 * SLA_TARGETS];
	char *data[2 * SLA_TARGETS];
	size_t n_ev;
};

static int load_row(void *arg, const void *row)
{
	struct track *k = arg;
	const struct parley_sla_rec *r = row;
	for (int t = 0; t < SLA_TARGETS; t++)
		if (same(r->target, sla_target_name((enum sla_target)t))) {
			k->r[t] = *r;
			k->have[t] = 1;
		}
	return 0;
}

/* A log row {target, policy, due | at}. */
static void log_row(struct track *k, const char *type, enum sla_target t, const char *key, const char *value)
{
	if (k->n_ev == sizeof(k->ev) / sizeof(k->ev[0]))
		return;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "target", sla_target_name(t));
	cJSON_AddStringToObject(o, "policy", k->r[t].policy ? k->r[t].policy : "");
	if (key)
		cJSON_AddStringToObject(o, key, value);
	char *data = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	k->data[k->n_ev] = data;
	k->ev[k->n_ev++] = (struct parley_conversation_event_rec){k->c->id, type, data ? data : "{}", k->now};
}

static void start(struct track *k, enum sla_target t, const struct sla_policy *p)
{
	if (!p || p->due_s[t] <= 0)
		return;
	add_business(p, k->now, p->due_s[t], k->due[t]);
	add_business(p, k->now, (int64_t)((double)p->due_s[t] * k->cfg->warning_at), k->warn[t]);
	k->r[t] = (struct parley_sla_rec){.conversation_id = k->c->id,
	                                  .target = sla_target_name(t),
	                                  .policy = p->name,
	                                  .started_at = k->now,
	                                  .due_at = k->due[t],
	                                  .warn_at = k->warn[t]};
	k->have[t] = k->dirty[t] = 1;
	log_row(k, "sla.due", t, "due", k->due[t]);
}

static int running(const struct track *k, enum sla_target t)
{
	return k->have[t] && !k->r[t].met_at;
}

static void pause(struct track *k, enum sla_target t)
{
	if (!running(k, t) || k->r[t].paused_at)
		return;
	k->r[t].paused_at = k->now;
	k->dirty[t] = 1;
}

/* The clock runs again: what was left at the pause is counted from now. */
static void resume(struct track *k, enum sla_target t)
{
	struct parley_sla_rec *r = &k->r[t];
	if (!running(k, t) || !r->paused_at)
		return;
	const struct sla_policy *p = policy_named(k->cfg, r->policy);
	if (p && !r->breached_at) {
		add_business(p, k->now, business_between(p, r->paused_at, r->due_at), k->due[t]);
		r->due_at = k->due[t];
		if (!r->warned_at) {
			add_business(p, k->now, business_between(p, r->paused_at, r->warn_at), k->warn[t]);
			r->warn_at = k->warn[t];
		}
	}
	r->paused_at = NULL;
	k->dirty[t] = 1;
	if (p && !r->breached_at)
		log_row(k, "sla.due", t, "due", r->due_at);
}

static void meet(struct track *k, enum sla_target t)
{
	if (!running(k, t))
		return;
	k->r[t].met_at = k->now;
	k->r[t].paused_at = NULL;
	k->dirty[t] = 1;
	log_row(k, "sla.met", t, "at", k->now);
}

int sla_track(const struct sla_config *cfg, const struct parley_store_typed_ops *t, parley_store_tx *tx,
              const struct parley_conversation_rec *c, enum sla_cause cause, const char *now)
{
	if (!cfg || cfg->n == 0 || !store_typed_keeps_promises(t) || !c || !c->id)
		return 0;
	struct track k = {.cfg = cfg, .c = c, .now = now};
	int rv = t->sla_of_conversation(tx, c->id, load_row, &k);
	if (rv != 0)
		return rv;
	/* A new or reopened conversation is matched as it is now; later changes keep the policy it had. */
	const struct sla_policy *p = NULL;
	for (int i = 0; i < SLA_TARGETS && !p && cause != SLA_OPENED && cause != SLA_REOPENED; i++)
		if (k.have[i])
			p = policy_named(cfg, k.r[i].policy);
	if (!p)
		p = policy_match(cfg, c);
	switch (cause) {
	case SLA_OPENED:
		start(&k, SLA_FIRST_RESPONSE, p);
		start(&k, SLA_RESOLUTION, p);
		break;
	case SLA_REOPENED:
		resume(&k, SLA_FIRST_RESPONSE);
		resume(&k, SLA_NEXT_RESPONSE);
		start(&k, SLA_RESOLUTION, p);
		break;
	case SLA_CUSTOMER_WROTE:
		if (c->first_response_at && !running(&k, SLA_NEXT_RESPONSE) && !running(&k, SLA_FIRST_RESPONSE))
			start(&k, SLA_NEXT_RESPONSE, p);
		break;
	case SLA_PAUSED:
		for (int i = 0; i < SLA_TARGETS; i++)
			pause(&k, (enum sla_target)i);
		break;
	case SLA_RESUMED:
		for (int i = 0; i < SLA_TARGETS; i++)
			resume(&k, (enum sla_target)i);
		break;
	case SLA_REPLIED:
		meet(&k, SLA_FIRST_RESPONSE);
		meet(&k, SLA_NEXT_RESPONSE);
		break;
	case SLA_RESOLVED:
		meet(&k, SLA_RESOLUTION);
		pause(&k, SLA_FIRST_RESPONSE);
		pause(&k, SLA_NEXT_RESPONSE);
		break;
	}
	for (int i = 0; i < SLA_TARGETS && rv == 0; i++)
		if (k.dirty[i])
			rv = t->sla_put(tx, &k.r[i], 1);
	if (rv == 0 && k.n_ev > 0)
		rv = t->conversation_events_append(tx, k.ev, k.n_ev);
	for (size_t i = 0; i < k.n_ev; i++)
		free(k.data[i]);
	return rv;
}

static int waits(const char *status)
{
	return same(status, "pending") || same(status, "snoozed");
}

int sla_status_changed(const struct sla_config *cfg, const struct parley_store_typed_ops *t, parley_store_tx *tx,
                       const struct parley_conversation_rec *c, const char *before, const char *now)
{
	const char *after = c->status;
	if (same(before, after) || (waits(before) && waits(after)))
		return 0;
	if (same(after, "resolved"))
		return sla_track(cfg, t, tx, c, SLA_RESOLVED, now);
	if (same(before, "resolved")) {
		int rv = sla_track(cfg, t, tx, c, SLA_REOPENED, now);
		return rv == 0 && waits(after) ? sla_track(cfg, t, tx, c, SLA_PAUSED, now) : rv;
	}
	return sla_track(cfg, t, tx, c, waits(after) ? SLA_PAUSED : SLA_RESUMED, now);
}

/* ------------------------------------------------------------ sweep */

struct due {
	struct parley_sla_rec *r;
	size_t n, cap;
};

static int keep_due(void *arg, const void *row)
{
	struct due *d = arg;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct parley_sla_rec *r = realloc(d->r, cap * sizeof(*r));
		if (!r)
			return PARLEY_ENOMEM;
		d->r = r;
		d->cap = cap;
	}
	d->r[d->n++] = *(const struct parley_sla_rec *)row;
	return 0;
}

/* The event published and logged: {conversation_id, target, policy, due, at}. */
static cJSON *event_of(const struct parley_sla_rec *r, const char *now)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "conversation_id", r->conversation_id);
	cJSON_AddStringToObject(o, "target", r->target);
	cJSON_AddStringToObject(o, "policy", r->policy);
	cJSON_AddStringToObject(o, "due", r->due_at);
	cJSON_AddStringToObject(o, "at", now);
	return o;
}

void sla_sweep(struct gateway *gw)
{
	const struct parley_store_typed_ops *t = store_typed(gw->st);
	if (!gw->cfg.sla || gw->cfg.sla->n == 0 || !store_typed_keeps_promises(t))
		return;
	if (store_lease(gw->st, "sla", gw->cfg.node_name ? gw->cfg.node_name : "parley", LEASE_TTL_MS) != 0)
		return; /* another node sweeps */
	char now[64];
	time_format_ms(time_now_ms(), now);
	parley_store_tx *tx = NULL;
	struct due d = {0};
	if (t->tx_begin(store_data(gw->st), &tx) != 0)
		return;
	int rv = t->sla_due(tx, now, SWEEP_MAX, keep_due, &d);
	/* Each warning and breach once: recorded on the target in the same transaction as its log row. */
	cJSON *out = cJSON_CreateArray();
	size_t n_ev = 0;
	struct parley_conversation_event_rec *ev = calloc(2 * d.n + 1, sizeof(*ev));
	char **data = calloc(2 * d.n + 1, sizeof(*data));
	rv = rv == 0 && (!ev || !data) ? PARLEY_ENOMEM : rv;
	for (size_t i = 0; i < d.n && rv == 0; i++) {
		struct parley_sla_rec *r = &d.r[i];
		const char *types[2] = {NULL, NULL};
		if (!r->warned_at && !r->breached_at && strcmp(r->warn_at, now) <= 0) {
			r->warned_at = now;
			types[0] = "sla.warning";
		}
		if (!r->breached_at && strcmp(r->due_at, now) <= 0) {
			r->breached_at = now;
			if (!r->warned_at)
				r->warned_at = now;
			types[1] = "sla.breached";
		}
		for (int j = 0; j < 2; j++) {
			if (!types[j])
				continue;
			cJSON *o = event_of(r, now);
			data[n_ev] = cJSON_PrintUnformatted(o);
			ev[n_ev] = (struct parley_conversation_event_rec){r->conversation_id, types[j],
			                                                  data[n_ev] ? data[n_ev] : "{}", now};
			n_ev++;
			cJSON_AddStringToObject(o, "topic", types[j]);
			cJSON_AddItemToArray(out, o);
		}
		rv = t->sla_put(tx, r, 1);
	}
	if (rv == 0 && n_ev > 0)
		rv = t->conversation_events_append(tx, ev, n_ev);
	if (rv == 0)
		rv = t->tx_commit(tx);
	else
		t->tx_rollback(tx);
	for (size_t i = 0; i < n_ev; i++)
		free(data[i]);
	free(data);
	free(ev);
	free(d.r);
	if (rv != 0)
		log_warn("sla: cannot record warnings and breaches now: %s", parley_strerror(rv));
	cJSON *o, *published = rv == 0 ? out : NULL;
	cJSON_ArrayForEach(o, published)
	{
		char *topic = strdup(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "topic")));
		cJSON_DeleteItemFromObjectCaseSensitive(o, "topic");
		char *js = cJSON_PrintUnformatted(o);
		if (topic && js)
			bus_publish(gw->bus, topic, js, strlen(js));
		free(topic);
		free(js);
	}
	cJSON_Delete(out);
}

/* ------------------------------------------------------------- list */

static int list_row(void *arg, const void *row)
{
	const struct parley_sla_rec *r = row;
	cJSON *o = cJSON_CreateObject();
	const struct {
		const char *k, *v;
	} f[] = {{"conversation_id", r->conversation_id},
	         {"target", r->target},
	         {"policy", r->policy},
	         {"team", r->team},
	         {"started_at", r->started_at},
	         {"due", r->due_at},
	         {"warned_at", r->warned_at},
	         {"breached_at", r->breached_at},
	         {"paused_at", r->paused_at}};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].v)
			cJSON_AddStringToObject(o, f[i].k, f[i].v);
	cJSON_AddItemToArray(arg, o);
	return 0;
}

char *sla_list_reply(struct gateway *gw, const cJSON *req)
{
	const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "state"));
	const char *team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "team"));
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	if (!state)
		state = "breached";
	if (strcmp(state, "breached") != 0 && strcmp(state, "at_risk") != 0)
		return ops_error("invalid_request", "state must be breached or at_risk");
	int64_t limit = cJSON_IsNumber(lim) ? (int64_t)lim->valuedouble : 100;
	if (limit < 1 || limit > 1000)
		return ops_error("invalid_request", "limit must be 1 to 1000");
	cJSON *list = cJSON_CreateArray();
	int rv = store_sla_list(gw->st, state, team, (size_t)limit, list_row, list);
	if (rv == PARLEY_ENOTSUP) {
		cJSON_Delete(list);
		return ops_error("not_supported", "this store keeps no SLA targets (it predates store.h 1.4)");
	}
	if (rv != 0) {
		cJSON_Delete(list);
		return ops_error("unavailable", parley_strerror(rv));
	}
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON_AddStringToObject(r, "state", state);
	cJSON_AddItemToObject(r, "sla", list);
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return s;
}
