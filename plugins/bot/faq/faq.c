/*
 * faq.c: the FAQ engine (faq.h).  Loading checks everything a user can get
 * wrong in the intents (patterns compile, placeholders name a slot or a
 * lookup, lookups have a signed endpoint) so that matching and rendering
 * cannot fail on the configuration later.  Patterns are PCRE2 with UTF-8,
 * Unicode properties and no case; examples are compared by the Dice
 * coefficient of their character bigrams, letters only, which suits Korean
 * (endings and spacing vary, stems stay) as well as English.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "faq.h"

#include <parley/parley.h>

#include "provider.h"
#include "utf8.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct example {
	uint64_t *bigrams; /* sorted */
	size_t n;
};

struct slot {
	const char *name;
	pcre2_code *re;
};

struct intent {
	const char *name;
	const cJSON *answer, *ask, *buttons; /* in faq->config */
	int lookup;
	pcre2_code **patterns;
	size_t npatterns;
	struct example *examples;
	size_t nexamples;
	struct slot slots[FAQ_MAX_SLOTS];
	size_t nslots;
};

struct faq {
	cJSON *config;
	struct intent *intents;
	size_t n;
	const char *lookup_url, *lookup_secret;
	int64_t timeout_ms;
	double threshold;
	const cJSON *fallback;
	cJSON *default_fallback;
	const char **handoff;
	size_t nhandoff;
};

static const char *const default_handoff[] = {"상담원", "상담사", "사람", "agent", "human", "representative", NULL};

/* ------------------------------------------------------------ helpers */

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

/* A growing string; on allocation failure it stays failed (ok = 0). */
struct buf {
	char *s;
	size_t len, cap;
	int ok;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (!b->ok)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *ns = realloc(b->s, cap);
		if (!ns) {
			b->ok = 0;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* Full-width ASCII to ASCII, ASCII to lower case. */
static uint32_t fold(uint32_t c)
{
	if (c >= 0xff01 && c <= 0xff5e)
		c -= 0xfee0;
	else if (c == 0x3000)
		c = ' ';
	if (c >= 'A' && c <= 'Z')
		c += 'a' - 'A';
	return c;
}

/* Letters count for similarity; spaces, digits, punctuation, symbols and emoji do not. */
static int is_letter(uint32_t c)
{
	if (c < 0x80)
		return c >= 'a' && c <= 'z';
	return !(c >= 0x2000 && c <= 0x2bff) && !(c >= 0x3000 && c <= 0x303f) && c < 0x1f000 && c != 0xa0;
}

static int truthy(const cJSON *v)
{
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v);
	const char *s = cJSON_GetStringValue(v);
	return s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0 || strcmp(s, "1") == 0);
}

/* A text in lang: a string, or a map of language to string ("en", then any, when lang is missing). */
static const char *pick(const cJSON *v, const char *lang)
{
	if (cJSON_IsString(v))
		return v->valuestring;
	if (!cJSON_IsObject(v))
		return NULL;
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, lang));
	if (!s)
		s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "en"));
	const cJSON *m;
	cJSON_ArrayForEach(m, v) if (!s && cJSON_IsString(m)) s = m->valuestring;
	return s;
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

/* ------------------------------------------------------- similarity */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The sorted character bigrams of text's letters (one "bigram" for a single letter). */
static int bigrams_of(const char *text, struct example *ex)
{
	size_t n = strlen(text);
	uint32_t *cps = malloc((n + 1) * sizeof(*cps));
	ex->bigrams = malloc((n + 1) * sizeof(*ex->bigrams));
	ex->n = 0;
	if (!cps || !ex->bigrams) {
		free(cps);
		return PARLEY_ENOMEM;
	}
	size_t m = 0;
	const unsigned char *s = (const unsigned char *)text;
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = utf8_decode(s + i, n - i, &c);
		i += k ? k : 1;
		if (k && is_letter(c = fold(c)))
			cps[m++] = c;
	}
	if (m == 1)
		ex->bigrams[ex->n++] = (uint64_t)cps[0] << 32;
	for (size_t i = 0; i + 1 < m; i++)
		ex->bigrams[ex->n++] = (uint64_t)cps[i] << 32 | cps[i + 1];
	free(cps);
	qsort(ex->bigrams, ex->n, sizeof(uint64_t), cmp_u64);
	return 0;
}

/* Dice: twice the bigrams in common over the bigrams of both, 0..1. */
static double dice(const struct example *a, const struct example *b)
{
	if (a->n == 0 || b->n == 0)
		return 0;
	size_t i = 0, j = 0, common = 0;
	while (i < a->n && j < b->n) {
		if (a->bigrams[i] == b->bigrams[j])
			common++, i++, j++;
		else if (a->bigrams[i] < b->bigrams[j])
			i++;
		else
			j++;
	}
	return 2.0 * (double)common / (double)(a->n + b->n);
}

/* ------------------------------------------------------------ loading */

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
		if (bigrams_of(p->valuestring, &in->examples[in->nexamples]) != 0)
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

/* ----------------------------------------------------------- matching */

static int has_hangul(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t n = strlen(text);
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = utf8_decode(s + i, n - i, &c);
		if (k && ((c >= 0xac00 && c <= 0xd7a3) || (c >= 0x3131 && c <= 0x318e)))
			return 1;
		i += k ? k : 1;
	}
	return 0;
}

/* Group 1 of the slot's pattern when it has one, else the whole match. */
static int take_slot(const struct slot *sl, const char *text, char *value)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(sl->re, NULL);
	if (!md)
		return 0;
	int found = 0;
	int rc = pcre2_match(sl->re, (PCRE2_SPTR)text, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL);
	if (rc > 0) {
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
		int g = rc > 1 && ov[2] != PCRE2_UNSET ? 1 : 0;
		size_t len = ov[2 * g + 1] - ov[2 * g];
		if (len > 0 && len < FAQ_SLOT_VALUE) {
			memcpy(value, text + ov[2 * g], len);
			value[len] = '\0';
			found = 1;
		}
	}
	pcre2_match_data_free(md);
	return found;
}

static int pattern_matches(pcre2_code *re, const char *text)
{
	pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
	if (!md)
		return 0;
	int rc = pcre2_match(re, (PCRE2_SPTR)text, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL);
	pcre2_match_data_free(md);
	return rc >= 0;
}

int faq_match(const struct faq *f, const char *text, const char *lang_hint, struct faq_result *r)
{
	if (!f || !text || !r)
		return PARLEY_EINVAL;
	memset(r, 0, sizeof(*r));
	snprintf(r->lang, sizeof(r->lang), "%s", lang_hint && *lang_hint ? lang_hint : has_hangul(text) ? "ko" : "en");
	r->wants_human = faq_wants_human(f, text);
	const struct intent *best = NULL;
	for (size_t i = 0; i < f->n && !best; i++)
		for (size_t j = 0; j < f->intents[i].npatterns && !best; j++)
			if (pattern_matches(f->intents[i].patterns[j], text))
				best = &f->intents[i], r->by_pattern = 1, r->similarity = 1;
	if (!best) {
		struct example t;
		if (bigrams_of(text, &t) != 0)
			return PARLEY_ENOMEM;
		double top = 0;
		for (size_t i = 0; i < f->n; i++)
			for (size_t j = 0; j < f->intents[i].nexamples; j++) {
				double d = dice(&t, &f->intents[i].examples[j]);
				if (d > top)
					top = d, best = &f->intents[i];
			}
		free(t.bigrams);
		r->similarity = top;
		if (top < f->threshold)
			best = NULL;
	}
	if (!best)
		return PARLEY_ENOENT;
	r->intent = best->name;
	r->priv = best;
	for (size_t i = 0; i < best->nslots; i++) {
		if (take_slot(&best->slots[i], text, r->slots[r->nslots].value))
			r->slots[r->nslots++].name = best->slots[i].name;
		else if (!r->missing)
			r->missing = best->slots[i].name;
	}
	return 0;
}

int faq_wants_human(const struct faq *f, const char *text)
{
	if (!text)
		return 0;
	/* Fold the text as the words are compared: lower case, full-width forms as ASCII. */
	size_t n = strlen(text);
	char *t = malloc(n + 1);
	if (!t)
		return 0;
	size_t m = 0;
	const unsigned char *s = (const unsigned char *)text;
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = utf8_decode(s + i, n - i, &c);
		if (k == 0) {
			t[m++] = (char)s[i++];
			continue;
		}
		uint32_t fc = fold(c);
		if (fc < 0x80)
			t[m++] = (char)fc;
		else
			memcpy(t + m, text + i, k), m += k;
		i += k;
	}
	t[m] = '\0';
	int found = 0;
	const char *const *words = f && f->handoff ? f->handoff : default_handoff;
	size_t nwords = f && f->handoff ? f->nhandoff : sizeof(default_handoff) / sizeof(*default_handoff) - 1;
	for (size_t w = 0; w < nwords && !found; w++) {
		char word[128];
		size_t wl = 0;
		for (const char *p = words[w]; *p && wl + 1 < sizeof(word); p++)
			word[wl++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		word[wl] = '\0';
		int ascii = (unsigned char)word[0] < 0x80;
		for (const char *p = strstr(t, word); p && !found; p = strstr(p + 1, word)) {
			/* English words start a word: "agent" in "agents", not in "reagent". */
			unsigned char prev = p > t ? (unsigned char)p[-1] : ' ';
			found = !ascii || !((prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9'));
		}
	}
	free(t);
	return found;
}

/* ------------------------------------------------------------ lookup */

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int faq_lookup(const struct faq *f, const struct faq_result *r, const char *conversation_id, const char *contact_id,
               char **reply_json)
{
	if (!reply_json)
		return PARLEY_EINVAL;
	*reply_json = NULL;
	const struct intent *in = r ? r->priv : NULL;
	if (!f || !in || !in->lookup || !f->lookup_url)
		return PARLEY_ENOTSUP;
	if (r->missing)
		return PARLEY_ENOENT;
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "intent", in->name);
	cJSON *slots = cJSON_AddObjectToObject(req, "slots");
	for (size_t i = 0; i < r->nslots; i++)
		cJSON_AddStringToObject(slots, r->slots[i].name, r->slots[i].value);
	cJSON_AddStringToObject(req, "lang", r->lang);
	if (conversation_id)
		cJSON_AddStringToObject(req, "conversation_id", conversation_id);
	else
		cJSON_AddNullToObject(req, "conversation_id");
	if (contact_id)
		cJSON_AddStringToObject(req, "contact_id", contact_id);
	else
		cJSON_AddNullToObject(req, "contact_id");
	char *body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (!body)
		return PARLEY_ENOMEM;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	if (!HMAC(EVP_sha256(), f->lookup_secret, (int)strlen(f->lookup_secret), (const unsigned char *)body,
	          strlen(body), mac, &maclen)) {
		free(body);
		return PARLEY_EINTERNAL;
	}
	char sig[128] = "X-Parley-Signature: sha256=";
	size_t at = strlen(sig);
	for (unsigned int i = 0; i < maclen && at + 3 < sizeof(sig); i++)
		at += (size_t)snprintf(sig + at, sizeof(sig) - at, "%02x", mac[i]);
	const char *headers[] = {"Content-Type: application/json", "Accept: application/json", sig, NULL};
	/* A client per call: lookups of several worker threads never share a handle. */
	struct prov_client client;
	prov_client_init(&client, f->timeout_ms, 256 * 1024);
	struct prov_http res;
	int64_t started = now_ms();
	int got = prov_request(&client, "POST", f->lookup_url, headers, body, strlen(body), NULL, &res);
	int64_t took = now_ms() - started;
	prov_client_fini(&client);
	free(body);
	int rv = 0;
	if (got != 0)
		rv = took >= f->timeout_ms ? PARLEY_ETIMEDOUT : PARLEY_EIO;
	else if (res.status < 200 || res.status > 299)
		rv = PARLEY_EIO;
	cJSON *reply = rv == 0 ? cJSON_Parse(res.body) : NULL;
	if (rv == 0 && !cJSON_IsObject(reply))
		rv = PARLEY_EINVAL;
	cJSON_Delete(reply);
	if (rv == 0)
		*reply_json = res.body, res.body = NULL;
	prov_http_free(&res);
	return rv;
}

/* ---------------------------------------------------------- rendering */

/* Fill text's placeholders; 0, or -1 when one has no value and no default. */
static int fill(const char *text, const struct faq_result *r, const cJSON *reply, struct buf *out)
{
	const char *p = text;
	for (const char *o = strstr(p, "{{"); o; o = strstr(p, "{{")) {
		const char *end = strstr(o + 2, "}}");
		if (!end)
			break;
		buf_add(out, p, (size_t)(o - p));
		const char *name = o + 2;
		size_t len = strcspn(name, "|}");
		const char *def = name[len] == '|' ? name + len + 1 : NULL;
		const char *val = NULL;
		char num[64];
		for (size_t i = 0; i < r->nslots && !val; i++)
			if (strlen(r->slots[i].name) == len && memcmp(r->slots[i].name, name, len) == 0)
				val = r->slots[i].value;
		for (const cJSON *m = reply ? reply->child : NULL; m && !val; m = m->next) {
			if (strlen(m->string) != len || memcmp(m->string, name, len) != 0)
				continue;
			if (cJSON_IsString(m))
				val = m->valuestring;
			else if (cJSON_IsNumber(m))
				snprintf(num, sizeof(num), "%g", m->valuedouble), val = num;
			else if (cJSON_IsBool(m))
				val = cJSON_IsTrue(m) ? "true" : "false";
		}
		if (val)
			buf_str(out, val);
		else if (def)
			buf_add(out, def, (size_t)(end - def));
		else
			return -1;
		p = end + 2;
	}
	buf_str(out, p);
	return 0;
}

/* What a channel type shows as buttons: how many, and how many characters a title may have (0: any). */
static int channel_buttons(const char *type, size_t *max, size_t *title_max)
{
	static const struct {
		const char *type;
		size_t max, title;
	} caps[] = {
	        {"whatsapp", 3, 20},   /* interactive reply buttons */
	        {"telegram", 100, 0},  /* inline keyboard */
	        {"messenger", 13, 20}, /* quick replies */
	        {"instagram", 13, 20}, {"slack", 25, 75},
	};
	for (size_t i = 0; type && i < sizeof(caps) / sizeof(*caps); i++)
		if (strcmp(caps[i].type, type) == 0) {
			*max = caps[i].max;
			*title_max = caps[i].title;
			return 1;
		}
	return 0;
}

/* The first n characters of s (all of it when n is 0), whole UTF-8 characters only. */
static cJSON *cut(const char *s, size_t n)
{
	size_t len = strlen(s), at = 0;
	for (size_t k = 0; n && k < n && at < len; k++) {
		at++;
		while (at < len && ((unsigned char)s[at] & 0xc0) == 0x80)
			at++;
	}
	if (!n || at >= len)
		return cJSON_CreateString(s);
	char *c = strndup(s, at);
	cJSON *v = cJSON_CreateString(c ? c : "");
	free(c);
	return v;
}

int faq_render(const struct faq *f, const struct faq_result *r, const char *channel_type, const char *lookup_reply_json,
               char **members_json)
{
	if (!f || !r || !members_json)
		return PARLEY_EINVAL;
	*members_json = NULL;
	const struct intent *in = r->priv;
	cJSON *reply = lookup_reply_json ? cJSON_Parse(lookup_reply_json) : NULL;
	struct buf text = {NULL, 0, 0, 1};
	const cJSON *buttons = NULL;
	int done = 0;
	if (in && r->missing && in->ask)
		done = fill(pick(in->ask, r->lang), r, reply, &text) == 0;
	else if (in && !(in->lookup && !cJSON_IsObject(reply)) && fill(pick(in->answer, r->lang), r, reply, &text) == 0)
		done = 1, buttons = in->buttons;
	if (!done) {
		/* The fallback, never a half-filled answer. */
		text.len = 0;
		buf_str(&text, "");
		fill(pick(f->fallback, r->lang), r, NULL, &text);
		buttons = NULL;
	}
	cJSON_Delete(reply);
	cJSON *list = cJSON_CreateArray();
	const cJSON *b;
	cJSON_ArrayForEach(b, buttons)
	{
		const cJSON *title = cJSON_IsObject(b) ? cJSON_GetObjectItemCaseSensitive(b, "title") : b;
		const char *t = pick(title, r->lang);
		const char *id =
		        cJSON_IsObject(b) ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "id")) : NULL;
		cJSON *one = cJSON_CreateObject();
		cJSON_AddStringToObject(one, "id", id ? id : t);
		cJSON_AddStringToObject(one, "title", t);
		cJSON_AddItemToArray(list, one);
	}
	size_t n = (size_t)cJSON_GetArraySize(list), max = 0, title_max = 0;
	cJSON *out = cJSON_CreateObject();
	cJSON *meta = cJSON_CreateObject();
	if (n > 0 && channel_buttons(channel_type, &max, &title_max) && n <= max) {
		cJSON *bl = cJSON_AddArrayToObject(meta, "buttons");
		cJSON_ArrayForEach(b, list)
		{
			cJSON *one = cJSON_CreateObject();
			cJSON_AddStringToObject(one, "id", cJSON_GetObjectItemCaseSensitive(b, "id")->valuestring);
			cJSON_AddItemToObject(
			        one, "title",
			        cut(cJSON_GetObjectItemCaseSensitive(b, "title")->valuestring, title_max));
			cJSON_AddItemToArray(bl, one);
		}
		cJSON_Delete(list);
	} else if (n > 0) {
		/* No buttons on this channel (or too many): numbered choices the customer answers with a number. */
		buf_str(&text, "\n");
		size_t i = 0;
		cJSON_ArrayForEach(b, list)
		{
			char line[32];
			snprintf(line, sizeof(line), "\n%zu. ", ++i);
			buf_str(&text, line);
			buf_str(&text, cJSON_GetObjectItemCaseSensitive(b, "title")->valuestring);
		}
		cJSON_AddItemToObject(meta, "choices", list);
	} else {
		cJSON_Delete(list);
	}
	int rv = text.ok ? 0 : PARLEY_ENOMEM;
	cJSON_AddStringToObject(out, "text", text.s ? text.s : "");
	cJSON_AddItemToObject(out, "meta", meta);
	free(text.s);
	if (rv == 0 && !(*members_json = cJSON_PrintUnformatted(out)))
		rv = PARLEY_ENOMEM;
	cJSON_Delete(out);
	return rv;
}
