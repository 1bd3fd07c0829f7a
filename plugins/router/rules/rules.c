/*
 * rules.c: the `rules` router.  Ordered rules, first match wins:
 *
 *   rules:
 *     - match: { text: "환불|refund", channel: [wa-main], channel_type: whatsapp,
 *                labels: [vip], contact: { tier: gold }, business_hours: true }
 *       set: { team: billing, priority: high, labels: [refund], agent: alice }
 *   business_hours: { timezone: Asia/Seoul, days: [mon, tue, wed, thu, fri], from: "09:00", to: "18:00",
 *                     holidays: ["2026-12-25"] }
 *
 * Text patterns are PCRE2 with UTF-8, caseless and Unicode properties, so
 * Korean and other scripts match as written.  Business hours are computed in
 * the named timezone from the system's zoneinfo (with its daylight-saving
 * transitions), not the process's TZ.  The decision goes into the envelope's
 * `route`, which the store applies to the conversation; a rule's labels add to
 * those an earlier step (sentiment) put there.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <parley/parley.h>

#include "business_hours.h"

#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rule {
	pcre2_code *text;
	pcre2_match_data *md;
	cJSON *match; /* owned copy of the rule's match */
	cJSON *set;
};

struct rules {
	const struct parley_host *host;
	parley_instance *inst;
	cJSON *config;
	struct rule *rules;
	size_t n;
	struct business_hours hours;
	int have_hours;
};

static const struct parley_config_key config_map[] = {
        {"rules", PARLEY_CFG_LIST, NULL, PARLEY_CFG_REQUIRED,
         "ordered {match, set} rules; the first that matches wins"},
        {"business_hours", PARLEY_CFG_MAP, NULL, 0, "{timezone, days, from, to, holidays} for business_hours matches"},
        {NULL, 0, NULL, 0, NULL},
};

/* -------------------------------------------------------------- match */

/* YAML scalars arrive as strings: "true", "yes", "on" are true. */
static int truthy(const cJSON *v)
{
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v);
	const char *s = cJSON_GetStringValue(v);
	return s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0 || strcmp(s, "1") == 0);
}

/* A string or a list of strings holding value. */
static int one_of(const cJSON *want, const char *value)
{
	if (!want)
		return 1;
	if (!value)
		return 0;
	if (cJSON_IsString(want))
		return strcmp(want->valuestring, value) == 0;
	const cJSON *w;
	cJSON_ArrayForEach(w, want) if (cJSON_IsString(w) && strcmp(w->valuestring, value) == 0) return 1;
	return 0;
}

static int labels_match(const cJSON *want, const parley_envelope *env, const struct parley_host *h)
{
	if (!want)
		return 1;
	char *have = h->envelope_get_json(env, "labels");
	cJSON *hv = have ? cJSON_Parse(have) : NULL;
	free(have);
	int ok = 1;
	const cJSON *w;
	cJSON_ArrayForEach(w, want)
	{
		int found = 0;
		const cJSON *x;
		cJSON_ArrayForEach(x, hv) if (cJSON_IsString(x) && cJSON_IsString(w) &&
		                              strcmp(x->valuestring, w->valuestring) == 0) found = 1;
		ok &= found;
	}
	cJSON_Delete(hv);
	return ok;
}

static int contact_match(struct rules *r, const cJSON *want, const parley_envelope *env, cJSON **attrs)
{
	if (!want)
		return 1;
	const char *cid = r->host->envelope_get_str(env, "contact_id");
	if (!cid)
		return 0;
	if (!*attrs) {
		cJSON *q = cJSON_CreateObject();
		cJSON_AddStringToObject(q, "contact_id", cid);
		char *req = cJSON_PrintUnformatted(q), *reply = NULL;
		cJSON_Delete(q);
		int rv = req ? r->host->store_query(r->inst, "contact.get", req, &reply) : PARLEY_ENOMEM;
		free(req);
		if (rv == 0) {
			cJSON *j = cJSON_Parse(reply);
			*attrs = cJSON_DetachItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "contact"),
			                                                 "attributes");
			cJSON_Delete(j);
		}
		free(reply);
		if (!*attrs)
			*attrs = cJSON_CreateObject(); /* a contact not stored yet has no attributes */
	}
	const cJSON *w;
	cJSON_ArrayForEach(w, want)
	{
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(*attrs, w->string);
		/* Attributes compare as text: 5 matches "5", true matches "true". */
		char num[64];
		const char *vs = cJSON_GetStringValue(v);
		if (cJSON_IsBool(v))
			vs = cJSON_IsTrue(v) ? "true" : "false";
		else if (cJSON_IsNumber(v))
			snprintf(num, sizeof(num), "%g", v->valuedouble), vs = num;
		if (!vs || !one_of(w, vs))
			return 0;
	}
	return 1;
}

/* Add each of labels to obj's "labels" array (made when absent), each once. */
static void add_labels(cJSON *obj, const cJSON *labels)
{
	cJSON *have = cJSON_GetObjectItemCaseSensitive(obj, "labels");
	if (!cJSON_IsArray(have)) {
		cJSON_DeleteItemFromObjectCaseSensitive(obj, "labels");
		have = cJSON_AddArrayToObject(obj, "labels");
	}
	const cJSON *l;
	cJSON_ArrayForEach(l, labels)
	{
		int dup = !cJSON_IsString(l);
		const cJSON *x;
		cJSON_ArrayForEach(x, have) dup |=
		        cJSON_IsString(x) && cJSON_IsString(l) && strcmp(x->valuestring, l->valuestring) == 0;
		if (!dup)
			cJSON_AddItemToArray(have, cJSON_CreateString(l->valuestring));
	}
}

static int rules_process(void *data, parley_envelope *env)
{
	struct rules *r = data;
	const struct parley_host *h = r->host;
	const char *dir = h->envelope_get_str(env, "direction");
	const char *kind = h->envelope_get_str(env, "kind");
	if (!dir || strcmp(dir, "inbound") != 0 || !kind || strcmp(kind, "message") != 0)
		return 0;
	const char *text = h->envelope_get_str(env, "text");
	cJSON *attrs = NULL;
	for (size_t i = 0; i < r->n; i++) {
		struct rule *ru = &r->rules[i];
		const cJSON *m = ru->match;
		if (!one_of(cJSON_GetObjectItemCaseSensitive(m, "channel"), h->envelope_get_str(env, "channel")) ||
		    !one_of(cJSON_GetObjectItemCaseSensitive(m, "channel_type"),
		            h->envelope_get_str(env, "channel_type")) ||
		    !labels_match(cJSON_GetObjectItemCaseSensitive(m, "labels"), env, h))
			continue;
		if (ru->text &&
		    (!text || pcre2_match(ru->text, (PCRE2_SPTR)text, PCRE2_ZERO_TERMINATED, 0, 0, ru->md, NULL) < 0))
			continue;
		const cJSON *bh = cJSON_GetObjectItemCaseSensitive(m, "business_hours");
		if (bh && truthy(bh) != bh_open(&r->hours, time(NULL)))
			continue;
		if (!contact_match(r, cJSON_GetObjectItemCaseSensitive(m, "contact"), env, &attrs))
			continue;
		/* Merge the rule's set into any route an earlier router set. */
		char *prev = h->envelope_get_json(env, "route");
		cJSON *route = prev ? cJSON_Parse(prev) : NULL;
		free(prev);
		if (!cJSON_IsObject(route)) {
			cJSON_Delete(route);
			route = cJSON_CreateObject();
		}
		const cJSON *f;
		cJSON_ArrayForEach(f, ru->set)
		{
			if (strcmp(f->string, "labels") == 0)
				continue;
			cJSON_DeleteItemFromObjectCaseSensitive(route, f->string);
			cJSON_AddItemToObject(route, f->string, cJSON_Duplicate(f, 1));
		}
		/* Labels add to those an earlier step set (sentiment's `negative`), as on the conversation. */
		const cJSON *labels = cJSON_GetObjectItemCaseSensitive(ru->set, "labels");
		if (cJSON_IsArray(labels))
			add_labels(route, labels);
		char idx[24];
		snprintf(idx, sizeof(idx), "%zu", i + 1);
		cJSON_DeleteItemFromObjectCaseSensitive(route, "rule");
		cJSON_AddStringToObject(route, "rule", idx);
		char *js = cJSON_PrintUnformatted(route);
		h->envelope_set_json(env, "route", js);
		/* The labels also go on the envelope, for later steps and subscribers. */
		if (cJSON_IsArray(labels)) {
			char *have = h->envelope_get_json(env, "labels");
			cJSON *env_labels = cJSON_CreateObject();
			cJSON *hv = have ? cJSON_Parse(have) : NULL;
			free(have);
			if (cJSON_IsArray(hv))
				cJSON_AddItemToObject(env_labels, "labels", hv);
			else
				cJSON_Delete(hv);
			add_labels(env_labels, labels);
			char *lj = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(env_labels, "labels"));
			h->envelope_set_json(env, "labels", lj);
			free(lj);
			cJSON_Delete(env_labels);
		}
		const char *prio = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ru->set, "priority"));
		if (prio)
			h->envelope_set_str(env, "priority", prio);
		free(js);
		cJSON_Delete(route);
		break;
	}
	cJSON_Delete(attrs);
	return 0;
}

/* ------------------------------------------------------------- set up */

static char *errorf(const char *fmt, size_t i, const char *detail)
{
	size_t n = strlen(fmt) + (detail ? strlen(detail) : 0) + 32;
	char *e = malloc(n);
	snprintf(e, n, fmt, i, detail ? detail : "");
	return e;
}

static void rules_destroy(void *data);

/* Build the rules from the config (r->config set); used by create and by check_config. */
static int setup(struct rules *r, char **errmsg)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(r->config, "rules");
	r->rules = calloc((size_t)cJSON_GetArraySize(list) + 1, sizeof(*r->rules));
	const cJSON *it;
	int needs_hours = 0;
	cJSON_ArrayForEach(it, list)
	{
		size_t i = r->n;
		struct rule *ru = &r->rules[r->n++];
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(it, "match");
		const cJSON *set = cJSON_GetObjectItemCaseSensitive(it, "set");
		if (!cJSON_IsObject(it) || (m && !cJSON_IsObject(m)) || !cJSON_IsObject(set)) {
			*errmsg = errorf("rule %zu: write it as {match: {...}, set: {team, priority, labels, agent}}%s",
			                 i + 1, NULL);
			return PARLEY_EINVAL;
		}
		static const char *const mk[] = {"text",           "channel", "channel_type", "labels", "contact",
		                                 "business_hours", NULL};
		const cJSON *k;
		cJSON_ArrayForEach(k, m)
		{
			size_t j = 0;
			while (mk[j] && strcmp(mk[j], k->string) != 0)
				j++;
			if (!mk[j]) {
				*errmsg = errorf("rule %zu: unknown match key '%s' (known: text, channel, "
				                 "channel_type, labels, contact, business_hours)",
				                 i + 1, k->string);
				return PARLEY_EINVAL;
			}
		}
		ru->match = cJSON_Duplicate(m ? m : cJSON_CreateObject(), 1);
		ru->set = cJSON_Duplicate(set, 1);
		const char *pat = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "text"));
		if (pat) {
			int code;
			PCRE2_SIZE at;
			ru->text = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
			                         PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &code, &at, NULL);
			if (!ru->text) {
				PCRE2_UCHAR msg[256];
				pcre2_get_error_message(code, msg, sizeof(msg));
				char detail[400];
				snprintf(detail, sizeof(detail), "%s at offset %zu of \"%s\"", (char *)msg, (size_t)at,
				         pat);
				*errmsg = errorf("rule %zu: bad text pattern: %s", i + 1, detail);
				return PARLEY_EINVAL;
			}
			pcre2_jit_compile(ru->text, PCRE2_JIT_COMPLETE);
			ru->md = pcre2_match_data_create_from_pattern(ru->text, NULL);
		}
		if (cJSON_GetObjectItemCaseSensitive(m, "business_hours"))
			needs_hours = 1;
	}
	const cJSON *bh = cJSON_GetObjectItemCaseSensitive(r->config, "business_hours");
	if (needs_hours && !bh) {
		*errmsg = strdup(
		        "a rule matches on business_hours but no business_hours: {timezone, days, from, to} is set");
		return PARLEY_EINVAL;
	}
	if (bh) {
		if (bh_parse(bh, &r->hours, errmsg) != 0)
			return PARLEY_EINVAL;
		r->have_hours = 1;
	}
	return 0;
}

static int rules_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	struct rules *r = calloc(1, sizeof(*r));
	if (!r)
		return PARLEY_ENOMEM;
	r->host = h;
	r->inst = inst;
	char *cj = h->config_json(inst, NULL);
	r->config = cJSON_Parse(cj ? cj : "{}");
	free(cj);
	int rv = setup(r, errmsg);
	if (rv != 0) {
		rules_destroy(r);
		return rv;
	}
	*data = r;
	return 0;
}

static void rules_destroy(void *data)
{
	struct rules *r = data;
	for (size_t i = 0; i < r->n; i++) {
		pcre2_match_data_free(r->rules[i].md);
		pcre2_code_free(r->rules[i].text);
		cJSON_Delete(r->rules[i].match);
		cJSON_Delete(r->rules[i].set);
	}
	free(r->rules);
	bh_free(&r->hours);
	cJSON_Delete(r->config);
	free(r);
}

static int rules_check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	struct rules *r = calloc(1, sizeof(*r));
	if (!r)
		return PARLEY_ENOMEM;
	r->host = h;
	r->config = cJSON_Parse(config_json);
	int rv = setup(r, errmsg);
	rules_destroy(r);
	return rv;
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_ROUTER,
        .name = "rules",
        .version = "1.0.0",
        .description =
                "first-match rules on channel, text (PCRE2, Unicode), labels, contact attributes, business hours",
        .config = config_map,
        .instance_create = rules_create,
        .instance_destroy = rules_destroy,
        .process = rules_process,
        .check_config = rules_check,
};

PARLEY_PLUGIN_DEFINE(plugin)
