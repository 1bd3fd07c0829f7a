/*
 * payload.c: what every string of a payload must be before any of it is
 * stored: valid UTF-8, without NUL.
 *
 * cJSON copies raw bytes through unchecked and decodes "\u0000" into a NUL
 * that silently ends the C string, so two different ids can become one.
 * The check therefore runs over the JSON text itself, before parsing, and
 * names the offending string by its path (entry[0].changes[0].value.text),
 * which is what the provider's developer needs to find it.
 */
#include "payload.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct scan {
	const char *p, *end;
	/* The path as text: "entry[0].changes[0]"; each level remembers where it began. */
	char path[256];
	size_t path_len;
	int truncated;
	const char *problem;
};

static void path_push(struct scan *s, size_t *mark, const char *fmt_key, const char *key, size_t key_len, long index)
{
	*mark = s->path_len;
	size_t room = sizeof(s->path) - s->path_len;
	int n;
	if (fmt_key)
		n = snprintf(s->path + s->path_len, room, "%s%.*s", s->path_len ? "." : "",
		             (int)(key_len > 64 ? 64 : key_len), key);
	else
		n = snprintf(s->path + s->path_len, room, "[%ld]", index);
	if (n < 0 || (size_t)n >= room) {
		s->truncated = 1;
		s->path_len = sizeof(s->path) - 1;
	} else {
		s->path_len += (size_t)n;
	}
	/* A cut key or path must not end inside a character: the reason goes into a JSON answer. */
	while (s->path_len > *mark && !utf8_valid(s->path + *mark, s->path_len - *mark))
		s->path_len--;
	s->path[s->path_len] = '\0';
}

static void path_pop(struct scan *s, size_t mark)
{
	s->path_len = mark;
	s->path[mark] = '\0';
}

static void skip_ws(struct scan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/*
 * A string at s->p (the opening quote).  Sets problem on invalid UTF-8 or
 * an escaped NUL; start and len give the raw bytes between the quotes.
 */
static int scan_string(struct scan *s, const char **start, size_t *len)
{
	if (s->p >= s->end || *s->p != '"')
		return -1;
	const char *b = ++s->p;
	while (s->p < s->end && *s->p != '"') {
		if (*s->p == '\\') {
			if (s->p + 1 >= s->end)
				return -1;
			if (s->p[1] == 'u' && s->end - s->p >= 6 && memcmp(s->p + 2, "0000", 4) == 0) {
				s->problem = "contains \\u0000 (NUL), which cannot be stored";
				return -1;
			}
			s->p += 2;
			continue;
		}
		if (*s->p == '\0') {
			s->problem = "contains a NUL byte, which cannot be stored";
			return -1;
		}
		s->p++;
	}
	if (s->p >= s->end)
		return -1;
	*start = b;
	*len = (size_t)(s->p - b);
	s->p++; /* the closing quote */
	if (!utf8_valid(b, *len)) {
		s->problem = "is not valid UTF-8";
		return -1;
	}
	return 0;
}

static int scan_value(struct scan *s, int depth);

/* After an item of a container that `close` ends: 1 when another follows, 0 at the end, -1 when broken. */
static int next_item(struct scan *s, char close)
{
	skip_ws(s);
	if (s->p < s->end && (*s->p == ',' || *s->p == close))
		return *s->p++ == ',' ? 1 : 0;
	return -1;
}

static int scan_object(struct scan *s, int depth)
{
	s->p++; /* '{' */
	skip_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	for (;;) {
		skip_ws(s);
		const char *key;
		size_t key_len, mark;
		int rv = scan_string(s, &key, &key_len);
		if (rv != 0) {
			if (s->problem) {
				/* The key itself is bad: name the object and say so. */
				size_t m;
				path_push(s, &m, "%s", "(a key)", 7, 0);
			}
			return -1;
		}
		skip_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return -1;
		s->p++;
		path_push(s, &mark, "%s", key, key_len, 0);
		if (scan_value(s, depth + 1) != 0)
			return -1;
		path_pop(s, mark);
		int more = next_item(s, '}');
		if (more <= 0)
			return more;
	}
}

static int scan_array(struct scan *s, int depth)
{
	s->p++; /* '[' */
	skip_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	for (long i = 0;; i++) {
		size_t mark;
		path_push(s, &mark, NULL, NULL, 0, i);
		if (scan_value(s, depth + 1) != 0)
			return -1;
		path_pop(s, mark);
		int more = next_item(s, ']');
		if (more <= 0)
			return more;
	}
}

static int scan_value(struct scan *s, int depth)
{
	if (depth > MAX_DEPTH) {
		s->problem = "is nested too deeply";
		return -1;
	}
	skip_ws(s);
	if (s->p >= s->end)
		return -1;
	switch (*s->p) {
	case '{':
		return scan_object(s, depth);
	case '[':
		return scan_array(s, depth);
	case '"': {
		const char *b;
		size_t l;
		return scan_string(s, &b, &l);
	}
	default: {
		/* true, false, null and numbers: their syntax is the parser's business, their range ours. */
		const char *b = s->p;
		while (s->p < s->end && *s->p != ',' && *s->p != '}' && *s->p != ']' && *s->p != ' ' && *s->p != '\n' &&
		       *s->p != '\r' && *s->p != '\t')
			s->p++;
		if (*b == '-' || (*b >= '0' && *b <= '9')) {
			char num[64];
			size_t n = (size_t)(s->p - b);
			if (n >= sizeof(num)) {
				s->problem = "is a number of more digits than a double holds";
				return -1;
			}
			memcpy(num, b, n);
			num[n] = '\0';
			/* A parser would keep an overflowing number as infinity, and print it as null. */
			if (isinf(strtod(num, NULL))) {
				s->problem = "is a number out of range";
				return -1;
			}
		}
		return 0;
	}
	}
}

int payload_json_check(const char *text, size_t len, char *why, size_t why_len)
{
	struct scan s = {.p = text, .end = text + len};
	s.path[0] = '\0';
	if (scan_value(&s, 0) == 0) {
		skip_ws(&s);
		if (s.p == s.end)
			return 0;
	}
	if (!s.problem) {
		snprintf(why, why_len, "the body is not valid JSON (at byte %zu)", (size_t)(s.p - text));
		return PAYLOAD_NOT_JSON;
	}
	snprintf(why, why_len, "%s%s %s", s.path_len ? s.path : "the body", s.truncated ? "..." : "", s.problem);
	return PAYLOAD_BAD_STRING;
}

/* How many bytes of name to quote: at most 96, never ending inside a character. */
static int name_quote_len(const char *name)
{
	size_t n = strlen(name);
	if (n > 96)
		n = 96;
	while (n > 0 && !utf8_valid(name, n))
		n--;
	return (int)n;
}

int payload_text_check(const char *name, const char *s, size_t len, char *why, size_t why_len)
{
	if (memchr(s, '\0', len)) {
		snprintf(why, why_len, "%.*s contains a NUL character, which cannot be stored", name_quote_len(name),
		         name);
		return PAYLOAD_BAD_STRING;
	}
	if (!utf8_valid(s, len)) {
		snprintf(why, why_len, "%.*s is not valid UTF-8", name_quote_len(name), name);
		return PAYLOAD_BAD_STRING;
	}
	return 0;
}
