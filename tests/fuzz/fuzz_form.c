/*
 * fuzz_form.c: form and query decoding of sdk/lib/provider_form.c (libparley-plugin)
 * (prov_form_parse, prov_form_get, prov_query_get), which every
 * form-encoded webhook (Twilio, Slack interactivity) and every handshake
 * query goes through.  The two decoders must agree: a parameter read from
 * a query is the value the form parser decoded for its first occurrence.
 */
#include "fake_host.h"

#include <parley/provider.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

/* 1 when a segment of query before `before` is "<name>=...". */
static int earlier(const char *query, size_t before, const char *name, size_t nl)
{
	for (size_t p = 0; p < before;) {
		if (strncmp(query + p, name, nl) == 0 && query[p + nl] == '=')
			return 1;
		const char *amp = strchr(query + p, '&');
		if (!amp)
			break;
		p = (size_t)(amp - query) + 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	const char *body = (const char *)data;
	struct prov_form f;
	if (prov_form_parse(body, len, &f) != 0)
		return 0;
	size_t segments = 0;
	for (size_t i = 0, start = 0; i <= len; i++) {
		if (i == len || body[i] == '&') {
			segments += i > start;
			start = i + 1;
		}
	}
	FUZZ_ASSERT(f.n == segments, "%zu parameters from %zu non-empty segments", f.n, segments);
	for (size_t i = 0; i < f.n; i++) {
		FUZZ_ASSERT(f.names[i] && f.values[i], "parameter %zu is NULL", i);
		FUZZ_ASSERT(prov_form_get(&f, f.names[i]), "parameter '%s' not found by its own name", f.names[i]);
	}

	/* The query decoder works on NUL-terminated text. */
	char *query = malloc(len + 1);
	memcpy(query, data, len);
	query[len] = '\0';
	size_t qlen = strlen(query);
	size_t start = 0, idx = 0;
	while (start < qlen) {
		size_t end = start;
		while (end < qlen && query[end] != '&')
			end++;
		if (end > start) {
			size_t eq = start;
			while (eq < end && query[eq] != '=')
				eq++;
			/*
			 * A raw name that needs no decoding, at its first occurrence, is
			 * found by prov_query_get with the value the form parser decoded.
			 * (Checked for the first parameters only: the scan is quadratic.)
			 */
			size_t nl = eq - start;
			int plain = eq < end && nl > 0 && strcspn(query + start, "%+") >= nl;
			char *name = strndup(query + start, nl);
			if (plain && qlen == len && idx < 64 && !earlier(query, start, name, nl)) {
				char *v = prov_query_get(query, name);
				const char *want = f.values[idx];
				FUZZ_ASSERT(strcmp(f.names[idx], name) == 0, "name '%s' decoded as '%s'", name,
				            f.names[idx]);
				/* A value with a %00 in it is absent to prov_query_get: it would be cut short. */
				if (f.lens[idx] != strlen(want))
					FUZZ_ASSERT(!v, "query gives '%s' for %s, whose value holds a NUL", v, name);
				else
					FUZZ_ASSERT(v && strcmp(v, want) == 0, "query gives '%s' for %s, the form '%s'",
					            v ? v : "(null)", name, want);
				free(v);
			}
			free(name);
			idx++;
		}
		start = end + 1;
	}
	char *none = prov_query_get(query, "no-such-parameter-\x01");
	FUZZ_ASSERT(!none || strstr(query, "no-such-parameter-\x01="), "found an absent parameter");
	free(none);
	free(query);
	prov_form_free(&f);
	return 0;
}
