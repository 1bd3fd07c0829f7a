/*
 * faq_match.c: matching a message to an intent (faq_match, faq_wants_human):
 * an intent's patterns first, then the similarity of its examples, then the
 * slots the intent takes from the message.  Examples are compared by the Dice
 * coefficient of their character bigrams, letters only, which suits Korean
 * (endings and spacing vary, stems stay) as well as English.
 */
#include "faq_internal.h"

#include <parley/parley.h>

#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const default_handoff[] = {"상담원", "상담사", "사람", "agent", "human", "representative", NULL};

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

/* ------------------------------------------------------- similarity */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The sorted character bigrams of text's letters (one "bigram" for a single letter). */
int faq_bigrams_of(const char *text, struct example *ex)
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
		if (faq_bigrams_of(text, &t) != 0)
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
