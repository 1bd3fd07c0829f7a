/*
 * faq_load.c: loading the FAQ engine's configuration and intents (faq_load,
 * faq_free).  Loading checks everything a user can get wrong in the intents
 * (patterns compile, placeholders name a slot or a lookup, lookups have a
 * signed endpoint) so that matching and rendering cannot fail on the
 * configuration later.  Patterns are PCRE2 with UTF-8, Unicode properties and
 * no case.
 */
#include "faq_internal.h"

#include <parley/parley.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int errf(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int errf(char **err, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (err)
		*err = strdup(buf);
	return PARLEY_EINVAL;
}

static int truthy(const cJSON *v)
{
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v);
	const char *s = cJSON_GetStringValue(v);
	return s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0 || strcmp(s, "1") == 0);
}

/* A text is a non-empty string or a non-empty map of language to non-empty string. */
static int valid_text(const cJSON *v)
{
	if (cJSON_IsString(v))
		return v->valuestring[0] != '\0';
	if (!cJSON_IsObject(v) || !v->child)
		return 0;
	const cJSON *m;
	cJSON_ArrayForEach(m, v) if (!cJSON_IsString(m) || !m->valuestring[0]) return 0;
	return 1;
}

static pcre2_code *compile(const char *pattern, char *why, size_t why_len)
{
	int code;
	PCRE2_SIZE at;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
	                               PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &code, &at, NULL);
	if (!re) {
		PCRE2_UCHAR msg[256];
		pcre2_get_error_message(code, msg, sizeof(msg));
		snprintf(why, why_len, "%s at offset %zu of \"%s\"", (char *)msg, (size_t)at, pattern);
		return NULL;
	}
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	return re;
}

static const struct slot *slot_named(const struct intent *in, const char *name, size_t len)
{
	for (size_t i = 0; i < in->nslots; i++)
		if (strlen(in->slots[i].name) == len && memcmp(in->slots[i].name, name, len) == 0)
			return &in->slots[i];
	return NULL;
}

/* Every {{name}} of text is a slot, has a default, or may come from the lookup. */
static int check_placeholders(const struct intent *in, const char *text, const char *where, size_t idx, char **err)
{
	for (const char *p = strstr(text, "{{"); p; p = strstr(p, "{{")) {
		const char *end = strstr(p + 2, "}}");
		if (!end)
			return errf(err, "intents[%zu] (%s): %s: \"{{\" without \"}}\"", idx, in->name, where);
		const char *name = p + 2;
		size_t len = strcspn(name, "|}");
		int has_default = name[len] == '|';
		if (len == 0)
			return errf(err, "intents[%zu] (%s): %s: an empty placeholder {{}}", idx, in->name, where);
		if (!has_default && !in->lookup && !slot_named(in, name, len))
			return errf(err,
			            "intents[%zu] (%s): %s: unknown placeholder {{%.*s}}: not one of the intent's "
			            "slots, and the intent has no lookup (add lookup: true, a slot, or a default: "
			            "{{%.*s|...}})",
			            idx, in->name, where, (int)len, name, (int)len, name);
		p = end + 2;
	}
	return 0;
}

static int check_text_placeholders(const struct intent *in, const cJSON *v, const char *where, size_t idx, char **err)
{
	if (cJSON_IsString(v))
		return check_placeholders(in, v->valuestring, where, idx, err);
	const cJSON *m;
	cJSON_ArrayForEach(m, v)
	{
		int rv = check_placeholders(in, m->valuestring, where, idx, err);
		if (rv != 0)
			return rv;
	}
	return 0;
}

static int load_intent(struct faq *f, const cJSON *it, size_t idx, char **err)
{
	static const char *const known[] = {"name",   "examples", "patterns", "slots", "lookup",
	                                    "answer", "ask",      "buttons",  NULL};
	struct intent *in = &f->intents[idx];
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
	if (!cJSON_IsObject(it) || !name || !*name)
		return errf(err, "intents[%zu]: write an intent as {name, examples or patterns, answer}", idx);
	in->name = name;
	for (size_t j = 0; j < idx; j++)
		if (strcmp(f->intents[j].name, name) == 0)
			return errf(err, "intents[%zu]: the name '%s' is already intents[%zu]'s", idx, name, j);
	const cJSON *k;
	cJSON_ArrayForEach(k, it)
	{
		size_t j = 0;
		while (known[j] && strcmp(known[j], k->string) != 0)
			j++;
		if (!known[j])
			return errf(err,
			            "intents[%zu] (%s): unknown key '%s' (known: name, examples, patterns, slots, "
			            "lookup, answer, ask, buttons)",
			            idx, name, k->string);
	}
	char why[512];
	const cJSON *slots = cJSON_GetObjectItemCaseSensitive(it, "slots");
	if (slots && !cJSON_IsObject(slots))
		return errf(err, "intents[%zu] (%s): slots is a map of slot name to a PCRE2 pattern", idx, name);
	const cJSON *s;
	cJSON_ArrayForEach(s, slots)
	{
		if (in->nslots == FAQ_MAX_SLOTS)
			return errf(err, "intents[%zu] (%s): more than %d slots", idx, name, FAQ_MAX_SLOTS);
		if (!cJSON_IsString(s))
			return errf(err, "intents[%zu] (%s): slot '%s' must be a PCRE2 pattern", idx, name, s->string);
		struct slot *sl = &in->slots[in->nslots];
		sl->name = s->string;
		if (!(sl->re = compile(s->valuestring, why, sizeof(why))))
			return errf(err, "intents[%zu] (%s): slot '%s': %s", idx, name, s->string, why);
		in->nslots++;
	}
	const cJSON *pats = cJSON_GetObjectItemCaseSensitive(it, "patterns");
	const cJSON *exs = cJSON_GetObjectItemCaseSensitive(it, "examples");
	if ((pats && !cJSON_IsArray(pats)) || (exs && !cJSON_IsArray(exs)) ||
	    cJSON_GetArraySize(pats) + cJSON_GetArraySize(exs) == 0)
		return errf(err, "intents[%zu] (%s): give examples: [...] or patterns: [...] (lists of strings)", idx,
		            name);
	in->patterns = calloc((size_t)cJSON_GetArraySize(pats) + 1, sizeof(*in->patterns));
	in->examples = calloc((size_t)cJSON_GetArraySize(exs) + 1, sizeof(*in->examples));
	if (!in->patterns || !in->examples)
		return errf(err, "out of memory");
	const cJSON *p;
	cJSON_ArrayForEach(p, pats)
	{
		if (!cJSON_IsString(p))
			return errf(err, "intents[%zu] (%s): pattern %zu is not a string", idx, name,
			            in->npatterns + 1);
		if (!(in->patterns[in->npatterns] = compile(p->valuestring, why, sizeof(why))))
			return errf(err, "intents[%zu] (%s): pattern %zu: %s", idx, name, in->npatterns + 1, why);
		in->npatterns++;
	}
	cJSON_ArrayForEach(p, exs)
	{
		if (!cJSON_IsString(p))
			return errf(err, "intents[%zu] (%s): example %zu is not a string", idx, name,
			            in->nexamples + 1);
		if (faq_bigrams_of(p->valuestring, &in->examples[in->nexamples]) != 0)
			return errf(err, "out of memory");
		if (in->examples[in->nexamples++].n == 0)
			return errf(err, "intents[%zu] (%s): example %zu has no letters to compare: \"%s\"", idx, name,
			            in->nexamples, p->valuestring);
	}
	in->lookup = truthy(cJSON_GetObjectItemCaseSensitive(it, "lookup"));
	in->answer = cJSON_GetObjectItemCaseSensitive(it, "answer");
	in->ask = cJSON_GetObjectItemCaseSensitive(it, "ask");
	in->buttons = cJSON_GetObjectItemCaseSensitive(it, "buttons");
	if (!valid_text(in->answer))
		return errf(err, "intents[%zu] (%s): answer is required: a text, or a map of language to text", idx,
		            name);
	if (in->ask && !valid_text(in->ask))
		return errf(err, "intents[%zu] (%s): ask must be a text, or a map of language to text", idx, name);
	int rv = check_text_placeholders(in, in->answer, "answer", idx, err);
	if (rv == 0 && in->ask)
		rv = check_text_placeholders(in, in->ask, "ask", idx, err);
	if (rv != 0)
		return rv;
	if (in->buttons && !cJSON_IsArray(in->buttons))
		return errf(err, "intents[%zu] (%s): buttons is a list of titles or {id, title}", idx, name);
	const cJSON *b;
	size_t bi = 0;
	cJSON_ArrayForEach(b, in->buttons)
	{
		bi++;
		const cJSON *title = cJSON_IsObject(b) ? cJSON_GetObjectItemCaseSensitive(b, "title") : b;
		const cJSON *id = cJSON_IsObject(b) ? cJSON_GetObjectItemCaseSensitive(b, "id") : NULL;
		if (!valid_text(title) || (id && !(cJSON_IsString(id) && id->valuestring[0])))
			return errf(err, "intents[%zu] (%s): button %zu: a title, or {id, title}", idx, name, bi);
	}
	if (in->lookup && (!f->lookup_url || !f->lookup_secret))
		return errf(err,
		            "intents[%zu] (%s): lookup: true needs lookup_url and lookup_secret (the HMAC key the "
		            "endpoint checks X-Parley-Signature with)",
		            idx, name);
	return 0;
}

/* 250ms, 2s, 1.5s, 1m; a bare number is seconds. */
static int parse_duration_ms(const char *s, int64_t *out)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || v < 0)
		return -1;
	double scale = 1000;
	if (strcmp(end, "ms") == 0)
		scale = 1;
	else if (strcmp(end, "m") == 0)
		scale = 60000;
	else if (*end && strcmp(end, "s") != 0)
		return -1;
	*out = (int64_t)(v * scale);
	return 0;
}

int faq_load(const char *config_json, struct faq **out, char **err)
{
	if (err)
		*err = NULL;
	if (!out)
		return PARLEY_EINVAL;
	*out = NULL;
	struct faq *f = calloc(1, sizeof(*f));
	if (!f)
		return PARLEY_ENOMEM;
	f->config = cJSON_Parse(config_json ? config_json : "");
	f->timeout_ms = 3000;
	f->threshold = 0.5;
	int rv = 0;
	const cJSON *c = f->config;
	const cJSON *intents = cJSON_GetObjectItemCaseSensitive(c, "intents");
	if (!cJSON_IsObject(c)) {
		rv = errf(err, "the faq bot's config is not a JSON object");
		goto out;
	}
	if (!cJSON_IsArray(intents) || cJSON_GetArraySize(intents) == 0) {
		rv = errf(err, "intents: a list of {name, examples, patterns, answer, ...} is required");
		goto out;
	}
	f->lookup_url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "lookup_url"));
	f->lookup_secret = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "lookup_secret"));
	if (f->lookup_secret && !*f->lookup_secret)
		f->lookup_secret = NULL;
	if (f->lookup_url && strncmp(f->lookup_url, "http://", 7) != 0 && strncmp(f->lookup_url, "https://", 8) != 0) {
		rv = errf(err, "lookup_url '%s' must start with http:// or https://", f->lookup_url);
		goto out;
	}
	const cJSON *to = cJSON_GetObjectItemCaseSensitive(c, "lookup_timeout");
	if (to) {
		char num[64];
		const char *ts = cJSON_GetStringValue(to);
		if (cJSON_IsNumber(to))
			snprintf(num, sizeof(num), "%g", to->valuedouble), ts = num;
		if (!ts || parse_duration_ms(ts, &f->timeout_ms) != 0 || f->timeout_ms < 1 || f->timeout_ms > 60000) {
			rv = errf(err, "lookup_timeout must be a duration from 1ms to 60s, such as 250ms or 2s");
			goto out;
		}
	}
	const cJSON *th = cJSON_GetObjectItemCaseSensitive(c, "threshold");
	if (th) {
		char *end = NULL;
		double v = cJSON_IsNumber(th) ? th->valuedouble : -1;
		if (cJSON_IsString(th))
			v = strtod(th->valuestring, &end);
		if ((end && *end) || !(v > 0 && v <= 1)) {
			rv = errf(err,
			          "threshold must be a number above 0 and at most 1 (the least example similarity)");
			goto out;
		}
		f->threshold = v;
	}
	f->fallback = cJSON_GetObjectItemCaseSensitive(c, "fallback");
	if (f->fallback && !valid_text(f->fallback)) {
		rv = errf(err, "fallback must be a text, or a map of language to text");
		goto out;
	}
	if (!f->fallback) {
		f->default_fallback = cJSON_CreateObject();
		cJSON_AddStringToObject(f->default_fallback, "ko",
		                        "죄송해요, 잘 이해하지 못했어요. 상담원과 이야기하시려면 \"상담원\"이라고 "
		                        "보내 주세요.");
		cJSON_AddStringToObject(f->default_fallback, "en",
		                        "Sorry, I did not understand. Write \"agent\" to talk to a person.");
		f->fallback = f->default_fallback;
	}
	const cJSON *hw = cJSON_GetObjectItemCaseSensitive(c, "handoff_words");
	if (hw) {
		f->handoff = calloc((size_t)cJSON_GetArraySize(hw) + 1, sizeof(*f->handoff));
		const cJSON *w;
		cJSON_ArrayForEach(w, hw)
		{
			if (!cJSON_IsString(w) || !w->valuestring[0]) {
				rv = errf(err,
				          "handoff_words is a list of words, such as [상담원, 사람, agent, human]");
				goto out;
			}
			f->handoff[f->nhandoff++] = w->valuestring;
		}
		if (!cJSON_IsArray(hw)) {
			rv = errf(err, "handoff_words is a list of words, such as [상담원, 사람, agent, human]");
			goto out;
		}
	}
	f->intents = calloc((size_t)cJSON_GetArraySize(intents), sizeof(*f->intents));
	if (!f->intents) {
		rv = PARLEY_ENOMEM;
		goto out;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, intents)
	{
		f->n++;
		if ((rv = load_intent(f, it, f->n - 1, err)) != 0)
			goto out;
	}
out:
	if (rv != 0) {
		faq_free(f);
		return rv;
	}
	*out = f;
	return 0;
}

void faq_free(struct faq *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n; i++) {
		struct intent *in = &f->intents[i];
		for (size_t j = 0; j < in->npatterns; j++)
			pcre2_code_free(in->patterns[j]);
		for (size_t j = 0; in->examples && j < in->nexamples; j++)
			free(in->examples[j].bigrams);
		for (size_t j = 0; j < in->nslots; j++)
			pcre2_code_free(in->slots[j].re);
		free(in->patterns);
		free(in->examples);
	}
	free(f->intents);
	free(f->handoff);
	cJSON_Delete(f->default_fallback);
	cJSON_Delete(f->config);
	free(f);
}
