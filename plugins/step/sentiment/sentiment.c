/*
 * sentiment.c: the `sentiment` step.  Scores the text of each inbound
 * message (score.c, Korean and English) and writes the score, -1..1, as
 * meta.sentiment.  Below negative_below the message gets the label
 * `negative` (label:) on the envelope and in its route, where the
 * conversation core adds it to the conversation's labels, and, with
 * priority_on_negative, that priority: the same fields the rules router
 * sets, so a later router and the queue see them.
 *
 * Place it after thread (the route is applied to the conversation the
 * message joined) and before the routers, so a rule can match
 * labels: [negative].  A rules router's own labels add to the label; its
 * priority replaces the one set here.
 */
#include <parley/parley.h>

#include "score.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sentiment {
	const struct parley_host *host;
	parley_instance *inst;
	struct sentiment_lexicon *lexicon;
	double negative_below;
	char label[64];
	char priority[64]; /* "" for none */
};

static const struct parley_config_key config_map[] = {
        {"negative_below", PARLEY_CFG_STRING, "-0.3", 0,
         "a message scoring below this number (-1..1) is negative: it gets the label and the priority"},
        {"label", PARLEY_CFG_STRING, "negative", 0, "the label a negative message gives its conversation"},
        {"priority_on_negative", PARLEY_CFG_STRING, NULL, 0,
         "the priority a negative message gives its conversation (high, urgent, ...); unset: unchanged"},
        {NULL, 0, NULL, 0, NULL},
};

/* --------------------------------------------------------------- config */

static char *errorf(const char *fmt, const char *a)
{
	size_t n = strlen(fmt) + (a ? strlen(a) : 0) + 1;
	char *e = malloc(n);
	if (e)
		snprintf(e, n, fmt, a ? a : "");
	return e;
}

static int is_word(const char *s)
{
	if (!s || !*s || strlen(s) >= 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_'))
			return 0;
	return 1;
}

/* Check and read the three keys (NULL: the default); the same for check_config and create. */
static int read_config(const char *below, const char *label, const char *priority, struct sentiment *s, char **errmsg)
{
	char *end = NULL;
	double v = strtod(below ? below : "-0.3", &end);
	if (!below || !*below)
		v = -0.3, end = NULL;
	if ((end && *end) || !isfinite(v) || v < -1 || v > 1) {
		*errmsg = errorf("negative_below '%s' is not a number from -1 to 1 (for example -0.3)", below);
		return PARLEY_EINVAL;
	}
	if (label && !is_word(label)) {
		*errmsg = errorf("label '%s' must be one word of letters, digits, '-' or '_' (for example negative)",
		                 label);
		return PARLEY_EINVAL;
	}
	if (priority && !is_word(priority)) {
		*errmsg = errorf("priority_on_negative '%s' must be a priority name such as high or urgent", priority);
		return PARLEY_EINVAL;
	}
	s->negative_below = v;
	snprintf(s->label, sizeof(s->label), "%s", label ? label : "negative");
	snprintf(s->priority, sizeof(s->priority), "%s", priority ? priority : "");
	return 0;
}

static const char *json_str(const cJSON *c, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, key));
}

static int st_check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	(void)h;
	cJSON *c = cJSON_Parse(config_json ? config_json : "{}");
	const cJSON *num = cJSON_GetObjectItemCaseSensitive(c, "negative_below");
	char buf[64];
	const char *below = json_str(c, "negative_below");
	if (cJSON_IsNumber(num)) {
		snprintf(buf, sizeof(buf), "%.17g", num->valuedouble);
		below = buf;
	}
	struct sentiment s;
	int rv = read_config(below, json_str(c, "label"), json_str(c, "priority_on_negative"), &s, errmsg);
	cJSON_Delete(c);
	return rv;
}

/* ------------------------------------------------------------ the step */

/* Add label to the JSON array text have (NULL: none), each label once. */
static cJSON *with_label(cJSON *have, const char *label)
{
	if (!cJSON_IsArray(have)) {
		cJSON_Delete(have);
		have = cJSON_CreateArray();
	}
	const cJSON *l;
	cJSON_ArrayForEach(l, have) if (cJSON_IsString(l) && strcmp(l->valuestring, label) == 0) return have;
	cJSON_AddItemToArray(have, cJSON_CreateString(label));
	return have;
}

static cJSON *get_json(const struct parley_host *h, const parley_envelope *env, const char *field)
{
	char *text = h->envelope_get_json(env, field);
	cJSON *v = text ? cJSON_Parse(text) : NULL;
	free(text);
	return v;
}

static int set_json(const struct parley_host *h, parley_envelope *env, const char *field, const cJSON *v)
{
	char *text = cJSON_PrintUnformatted(v);
	int rv = text ? h->envelope_set_json(env, field, text) : PARLEY_ENOMEM;
	free(text);
	return rv;
}

/* The label (and priority) on the envelope and in its route, as a router sets them. */
static int mark_negative(struct sentiment *s, parley_envelope *env)
{
	const struct parley_host *h = s->host;
	cJSON *labels = with_label(get_json(h, env, "labels"), s->label);
	int rv = set_json(h, env, "labels", labels);
	cJSON_Delete(labels);
	cJSON *route = get_json(h, env, "route");
	if (!cJSON_IsObject(route)) {
		cJSON_Delete(route);
		route = cJSON_CreateObject();
	}
	cJSON *rl = with_label(cJSON_DetachItemFromObjectCaseSensitive(route, "labels"), s->label);
	cJSON_AddItemToObject(route, "labels", rl);
	if (s->priority[0]) {
		cJSON_DeleteItemFromObjectCaseSensitive(route, "priority");
		cJSON_AddStringToObject(route, "priority", s->priority);
		if (rv == 0)
			rv = h->envelope_set_str(env, "priority", s->priority);
	}
	if (rv == 0)
		rv = set_json(h, env, "route", route);
	cJSON_Delete(route);
	return rv;
}

static int st_process(void *data, parley_envelope *env)
{
	struct sentiment *s = data;
	const struct parley_host *h = s->host;
	const char *dir = h->envelope_get_str(env, "direction");
	const char *kind = h->envelope_get_str(env, "kind");
	const char *text = h->envelope_get_str(env, "text");
	if (!dir || strcmp(dir, "inbound") != 0 || !kind || strcmp(kind, "message") != 0 || !text || !*text)
		return 0;
	double score = sentiment_score(s->lexicon, text, strlen(text), NULL);
	/* Three decimals are all the lexicon can tell apart. */
	score = round(score * 1000) / 1000;
	cJSON *meta = get_json(h, env, "meta");
	if (!cJSON_IsObject(meta)) {
		cJSON_Delete(meta);
		meta = cJSON_CreateObject();
	}
	cJSON_DeleteItemFromObjectCaseSensitive(meta, "sentiment");
	cJSON_AddNumberToObject(meta, "sentiment", score);
	int rv = set_json(h, env, "meta", meta);
	cJSON_Delete(meta);
	if (rv == 0 && score < s->negative_below) {
		rv = mark_negative(s, env);
		h->metric_add(s->inst, "sentiment_negative_total", 1);
	}
	if (rv != 0)
		h->log(s->inst, PARLEY_LOG_WARN, "could not record the sentiment: %s", h->strerror(rv));
	/* A score is a hint: a message is never refused for want of one. */
	return 0;
}

static int st_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	struct sentiment *s = calloc(1, sizeof(*s));
	if (!s)
		return PARLEY_ENOMEM;
	s->host = h;
	s->inst = inst;
	int rv = read_config(h->config_str(inst, "negative_below"), h->config_str(inst, "label"),
	                     h->config_str(inst, "priority_on_negative"), s, errmsg);
	if (rv == 0 && sentiment_lexicon_new(&s->lexicon) != 0)
		rv = PARLEY_ENOMEM;
	if (rv != 0) {
		free(s);
		return rv;
	}
	*data = s;
	return 0;
}

static void st_destroy(void *data)
{
	struct sentiment *s = data;
	sentiment_lexicon_free(s->lexicon);
	free(s);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_STEP,
        .name = "sentiment",
        .version = "1.0.0",
        .description = "scores inbound text (Korean, English) into meta.sentiment; labels negative messages",
        .config = config_map,
        .instance_create = st_create,
        .instance_destroy = st_destroy,
        .process = st_process,
        .check_config = st_check,
};

PARLEY_PLUGIN_DEFINE(plugin)
