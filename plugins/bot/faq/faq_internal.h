/*
 * faq_internal.h: what the FAQ engine's files share (faq.h is the public
 * side): the loaded intents and configuration, which faq_load.c builds and
 * frees and the matching, lookup and rendering files read, and the character
 * bigrams both loading (of examples) and matching (of a message) compute.
 * Not for the bot plugin or tests: they use faq.h.
 */
#ifndef PARLEY_FAQ_INTERNAL_H
#define PARLEY_FAQ_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include "faq.h"

#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

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

/* The sorted character bigrams of text's letters into ex (one "bigram" for a
 * single letter); 0, or PARLEY_ENOMEM.  ex->bigrams is the caller's to free,
 * also on failure (it may be NULL then). */
int faq_bigrams_of(const char *text, struct example *ex);

#endif
