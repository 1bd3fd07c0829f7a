/* survey.c: CSAT and NPS after a resolve: scheduled, asked once through the outbox, answered (see survey.h). */
#include "survey.h"
#include "envelope.h"
#include "gateway.h"
#include "log.h"
#include "ops.h"
#include "outbox.h"
#include "promises.h"
#include "sla.h"
#include "store.h"
#include "topology.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_TTL_MS 10000
#define SWEEP_MAX    50

static int same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* The first rule for a channel, or NULL. */
static const struct survey_rule *rule_for(const struct survey_config *cfg, const char *channel)
{
	for (size_t i = 0; cfg && channel && i < cfg->n; i++) {
		const struct survey_rule *r = &cfg->rules[i];
		if (r->n_channels == 0)
			return r;
		for (size_t j = 0; j < r->n_channels; j++)
			if (strcmp(r->channels[j], channel) == 0)
				return r;
	}
	return NULL;
}

/* The text for a language: that language's, else the first given. */
static const char *text_for(const struct survey_text *t, size_t n, const char *lang)
{
	for (size_t i = 0; lang && i < n; i++)
		if (strcmp(t[i].lang, lang) == 0)
			return t[i].text;
	return n ? t[0].text : NULL;
}

static int top_score(const char *survey)
{
	return same(survey, "nps") ? 10 : 5;
}

/* A contact's attribute as text ("true" for true), or NULL; attributes is JSON object text. */
static int attribute_true(const char *attributes, const char *key)
{
	cJSON *a = cJSON_Parse(attributes ? attributes : "{}");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, key);
	int yes = cJSON_IsTrue(v) || same(cJSON_GetStringValue(v), "true");
	cJSON_Delete(a);
	return yes;
}

static char *attribute_text(const char *attributes, const char *key)
{
	cJSON *a = cJSON_Parse(attributes ? attributes : "{}");
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, key));
	char *out = v ? strdup(v) : NULL;
	cJSON_Delete(a);
	return out;
}

/* The contact of c, read in tx: 0 and *found. */
static int contact_of(const struct parley_store_typed_ops *t, parley_store_tx *tx, const char *id,
                      struct parley_contact_rec *out, int *found)
{
	*found = 0;
	return id ? t->contacts_lock(tx, &id, 1, out, found) : 0;
}

/*
 * Locks are taken in the order the group commit takes them (contact, then
 * conversation, then survey): the resolve holds the conversation and so
 * reads no contact here; the sweep checks the opt-out and the language.
 */
int survey_schedule(const struct survey_config *cfg, const struct parley_store_typed_ops *t, parley_store_tx *tx,
                    const struct parley_conversation_rec *c, const char *now)
{
	const struct survey_rule *r = rule_for(cfg, c->last_channel);
	if (!r || !store_typed_keeps_promises(t) || !c->contact_id)
		return 0;
	struct parley_survey_rec have;
	int rv = t->survey_lock(tx, c->id, &have);
	if (rv == 0 && !same(have.status, "cancelled"))
		return 0; /* one survey per conversation */
	if (rv != 0 && rv != PARLEY_ENOENT)
		return rv;
	int exists = rv == 0;
	char due[64];
	time_format_ms(time_parse_ms(now) + r->delay_ms, due);
	struct parley_survey_rec s = {.conversation_id = c->id,
	                              .contact_id = c->contact_id,
	                              .survey = r->survey,
	                              .channel = c->last_channel,
	                              .status = "scheduled",
	                              .due_at = due,
	                              .agent = c->assignee,
	                              .team = c->team,
	                              .score = -1};
	rv = exists ? t->survey_update(tx, &s) : t->survey_insert(tx, &s);
	return rv == PARLEY_EEXIST ? 0 : rv;
}

/* A score in the answer: the button's id (csat:N) or the whole text a number; -1 when it is none. */
static int score_of(const char *survey, const parley_envelope *e)
{
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(e->obj, "meta");
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "reply_id"));
	const char *text = envelope_get(e, "text");
	size_t plen = strlen(survey);
	const char *s = id && strncmp(id, survey, plen) == 0 && id[plen] == ':' ? id + plen + 1 : text;
	if (!s)
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	int v = 0, digits = 0;
	for (; isdigit((unsigned char)*s) && digits < 3; s++, digits++)
		v = v * 10 + (*s - '0');
	while (isspace((unsigned char)*s))
		s++;
	return digits > 0 && *s == '\0' && v <= top_score(survey) && (v >= 1 || same(survey, "nps")) ? v : -1;
}

static cJSON *rated_data(const struct parley_survey_rec *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "survey", s->survey);
	if (s->score >= 0)
		cJSON_AddNumberToObject(o, "score", (double)s->score);
	if (s->agent)
		cJSON_AddStringToObject(o, "agent", s->agent);
	if (s->team)
		cJSON_AddStringToObject(o, "team", s->team);
	if (s->comment)
		cJSON_AddStringToObject(o, "comment", s->comment);
	return o;
}

int survey_answer(const struct survey_config *cfg, const struct parley_store_typed_ops *t, parley_store_tx *tx,
                  const struct parley_conversation_rec *c, const parley_envelope *e, const char *now, const char **type,
                  cJSON **data)
{
	*type = NULL;
	*data = NULL;
	if (!cfg || !store_typed_keeps_promises(t) || !same(c->status, "resolved"))
		return 0;
	struct parley_survey_rec s;
	int rv = t->survey_lock(tx, c->id, &s);
	if (rv == PARLEY_ENOENT)
		return 0;
	if (rv != 0)
		return rv;
	if (same(s.status, "sent")) {
		int score = score_of(s.survey, e);
		if (score < 0)
			return 0; /* not an answer: the customer writes again, and the conversation reopens */
		s.status = "answered";
		s.score = score;
		s.answered_at = now;
		*type = "rated";
	} else if (same(s.status, "answered") && !s.comment && envelope_get(e, "text")) {
		const struct survey_rule *r = rule_for(cfg, s.channel);
		int64_t window = r ? r->comment_window_ms : 0;
		if (time_parse_ms(now) > time_parse_ms(s.answered_at) + window || score_of(s.survey, e) >= 0)
			return 0;
		s.comment = envelope_get(e, "text");
		*type = "rating_comment";
	} else {
		return 0;
	}
	if ((rv = t->survey_update(tx, &s)) != 0) {
		*type = NULL;
		return rv;
	}
	*data = rated_data(&s);
	if (strcmp(*type, "rating_comment") == 0)
		cJSON_DeleteItemFromObjectCaseSensitive(*data, "score");
	return 1;
}

/* ------------------------------------------------------------ sweep */

/* The scores as buttons: {id: "csat:5", title: "5"}, best first for CSAT (what a list shows at the top). */
static cJSON *buttons(const char *survey)
{
	cJSON *b = cJSON_CreateArray();
	int top = top_score(survey), low = same(survey, "nps") ? 0 : 1;
	for (int v = top; v >= low; v--) {
		char id[32], title[16];
		snprintf(id, sizeof(id), "%s:%d", survey, v);
		snprintf(title, sizeof(title), "%d", v);
		cJSON *one = cJSON_CreateObject();
		cJSON_AddStringToObject(one, "id", id);
		cJSON_AddStringToObject(one, "title", title);
		cJSON_AddItemToArray(b, one);
	}
	return b;
}

/* Where the survey goes: the conversation's reply route (the channel used last, the address there). */
static cJSON *route_of(struct gateway *gw, const char *conversation_id)
{
	cJSON *rq = cJSON_CreateObject();
	cJSON_AddStringToObject(rq, "conversation_id", conversation_id);
	cJSON *types = cJSON_AddObjectToObject(rq, "channel_types");
	struct topology *topo = topology_get(gw);
	for (size_t i = 0; topo && i < topo->n_channels; i++)
		cJSON_AddStringToObject(types, topo->channels[i]->name, topo->channels[i]->plugin->desc->name);
	topology_put(topo);
	char *text = cJSON_PrintUnformatted(rq), *reply = NULL;
	cJSON_Delete(rq);
	int rv = text ? store_query(gw->st, "conversation.route", text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	cJSON *route = cJSON_DetachItemFromObjectCaseSensitive(r, "route");
	cJSON_Delete(r);
	return route;
}

/* The survey's outbound envelope, or NULL (why logged). */
static parley_envelope *question(struct gateway *gw, const struct survey_rule *r, const struct parley_survey_rec *s,
                                 const cJSON *route)
{
	const char *chname = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(route, "channel"));
	const char *to = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(route, "to"));
	struct topology *topo = topology_get(gw);
	parley_instance *ch = chname ? topology_channel(topo, chname) : NULL;
	char type[64];
	snprintf(type, sizeof(type), "%s", ch && ch->plugin->desc->channel_send ? ch->plugin->desc->name : "");
	topology_put(topo);
	if (!type[0] || !to) {
		log_warn("survey: conversation %s has no channel to ask on", s->conversation_id);
		return NULL;
	}
	char ext[160];
	snprintf(ext, sizeof(ext), "survey:%s", s->conversation_id);
	parley_envelope *env = envelope_create("message", "outbound");
	if (!env)
		return NULL;
	envelope_set(env, "channel", chname);
	envelope_set(env, "channel_type", type);
	envelope_set(env, "to", to);
	envelope_set(env, "status", "queued");
	envelope_set(env, "external_id", ext);
	envelope_set(env, "conversation_id", s->conversation_id);
	envelope_set(env, "contact_id", s->contact_id);
	envelope_set(env, "text", text_for(r->text, r->n_text, s->language));
	if (envelope_error(env)) {
		log_warn("survey: cannot ask in conversation %s: %s", s->conversation_id, envelope_error(env));
		envelope_destroy(env);
		return NULL;
	}
	cJSON *meta = cJSON_AddObjectToObject(env->obj, "meta");
	cJSON_AddStringToObject(meta, "survey", s->survey);
	if (r->buttons)
		cJSON_AddItemToObject(meta, "buttons", buttons(s->survey));
	return env;
}

/* Ask one due survey, in one transaction: the outbound message and the survey's new state together. */
static int ask(struct gateway *gw, const struct parley_store_typed_ops *t, const char *conversation_id,
               const char *contact_id, const char *now)
{
	cJSON *route = route_of(gw, conversation_id);
	parley_store_tx *tx = NULL;
	int rv = t->tx_begin(store_data(gw->st), &tx);
	if (rv != 0) {
		cJSON_Delete(route);
		return rv;
	}
	struct parley_survey_rec s;
	struct parley_conversation_rec c;
	struct parley_contact_rec ct;
	int found = 0, asked = 0;
	parley_envelope *env = NULL;
	/* In the group commit's order: the contact, the conversation, the survey. */
	rv = contact_of(t, tx, contact_id, &ct, &found);
	if (rv == 0)
		rv = t->conversation_lock(tx, conversation_id, &c);
	if (rv == 0)
		rv = t->survey_lock(tx, conversation_id, &s);
	if (rv == 0 && !same(s.status, "scheduled"))
		rv = PARLEY_ENOENT; /* another node asked it meanwhile */
	char *lang = rv == 0 && found ? attribute_text(ct.attributes, "language") : NULL;
	if (lang)
		s.language = lang;
	const struct survey_rule *r = rv == 0 ? rule_for(gw->cfg.surveys, s.channel) : NULL;
	if (rv == 0 && !same(c.status, "resolved")) {
		s.status = "cancelled"; /* reopened before it was asked: the next resolve asks */
	} else if (rv == 0 && found && attribute_true(ct.attributes, "opt_out")) {
		s.status = "skipped";
		s.reason = "the contact opted out";
	} else if (rv == 0 && (!r || !(env = question(gw, r, &s, route)))) {
		s.status = "skipped";
		s.reason = r ? "no channel to ask on" : "no survey is configured for the channel any more";
	} else if (rv == 0) {
		int result = 0;
		rv = t->messages_insert(tx, &env, 1, &result);
		s.status = "sent";
		s.sent_at = now;
		s.message_id = envelope_get(env, "id");
		/* The rating belongs to whoever held the conversation when the customer was asked. */
		s.agent = c.assignee;
		s.team = c.team;
		asked = 1;
	}
	if (rv == 0)
		rv = t->survey_update(tx, &s);
	if (rv == 0)
		rv = t->tx_commit(tx);
	else
		t->tx_rollback(tx);
	envelope_destroy(env);
	cJSON_Delete(route);
	free(lang);
	if (rv == 0 && asked)
		outbox_wake(gw->outbox);
	return rv == PARLEY_ENOENT ? 0 : rv;
}

/* The due surveys' conversation and contact ids, copied (the visitor's row is borrowed). */
struct due_ids {
	char **id, **contact;
	size_t n;
};

static int keep_id(void *arg, const void *row)
{
	struct due_ids *d = arg;
	const struct parley_survey_rec *s = row;
	char **ids = realloc(d->id, (d->n + 1) * sizeof(*ids));
	if (ids)
		d->id = ids;
	char **contacts = ids ? realloc(d->contact, (d->n + 1) * sizeof(*contacts)) : NULL;
	if (contacts)
		d->contact = contacts;
	if (!ids || !contacts)
		return PARLEY_ENOMEM;
	d->id[d->n] = strdup(s->conversation_id);
	d->contact[d->n] = strdup(s->contact_id);
	if (!d->id[d->n] || !d->contact[d->n]) {
		free(d->id[d->n]);
		free(d->contact[d->n]);
		return PARLEY_ENOMEM;
	}
	d->n++;
	return 0;
}

void survey_sweep(struct gateway *gw)
{
	const struct parley_store_typed_ops *t = store_typed(gw->st);
	if (!gw->cfg.surveys || gw->cfg.surveys->n == 0 || !store_typed_keeps_promises(t))
		return;
	if (store_lease(gw->st, "surveys", gw->cfg.node_name ? gw->cfg.node_name : "parley", LEASE_TTL_MS) != 0)
		return;
	char now[64];
	time_format_ms(time_now_ms(), now);
	struct due_ids d = {0};
	int rv = store_surveys_due(gw->st, now, SWEEP_MAX, keep_id, &d);
	for (size_t i = 0; i < d.n; i++) {
		if (rv == 0 && (rv = ask(gw, t, d.id[i], d.contact[i], now)) != 0)
			log_warn("survey: cannot ask in conversation %s now: %s", d.id[i], parley_strerror(rv));
		free(d.id[i]);
		free(d.contact[i]);
	}
	free(d.id);
	free(d.contact);
}

/* ------------------------------------------------------------- read */

static int rating_row(void *arg, const void *row)
{
	const struct parley_survey_rec *s = row;
	cJSON *o = rated_data(s);
	cJSON_AddStringToObject(o, "conversation_id", s->conversation_id);
	const struct {
		const char *k, *v;
	} f[] = {{"contact_id", s->contact_id},
	         {"channel", s->channel},
	         {"sent_at", s->sent_at},
	         {"answered_at", s->answered_at}};
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i].v)
			cJSON_AddStringToObject(o, f[i].k, f[i].v);
	cJSON_AddItemToArray(arg, o);
	return 0;
}

char *ratings_list_reply(struct gateway *gw, const cJSON *req)
{
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	int64_t limit = cJSON_IsNumber(lim) ? (int64_t)lim->valuedouble : 100;
	if (limit < 1 || limit > 1000)
		return ops_error("invalid_request", "limit must be 1 to 1000");
	cJSON *list = cJSON_CreateArray();
	int rv = store_ratings_list(
	        gw->st, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "conversation_id")),
	        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "agent")), (size_t)limit, rating_row, list);
	if (rv == PARLEY_ENOTSUP) {
		cJSON_Delete(list);
		return ops_error("not_supported", "this store keeps no ratings (it predates store.h 1.4)");
	}
	if (rv != 0) {
		cJSON_Delete(list);
		return ops_error("unavailable", parley_strerror(rv));
	}
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON_AddItemToObject(r, "ratings", list);
	char *out = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	return out;
}
