/*
 * envelope_check.c: what sdk/envelope-v1.schema.json says of each envelope
 * field, checked where a value enters an envelope (the setters) and once
 * more over a whole envelope at submit.  One table holds the rules, so the
 * setters, the submit check and the schema say the same thing.
 */
#include "envelope.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum rule {
	R_V,           /* the constant 1 */
	R_ULID,        /* 26 Crockford base32 digits */
	R_GATEWAY_ID,  /* contact and conversation ids: 1-64 of [A-Za-z0-9_-] */
	R_KIND,        /* enumerations */
	R_DIRECTION,   /*  */
	R_STATUS,      /*  */
	R_CHANNEL,     /* [A-Za-z0-9_-]+ */
	R_KEY,         /* a non-empty string of at most ENVELOPE_MAX_KEY bytes */
	R_URN,         /* scheme:rest */
	R_TIME,        /* RFC 3339 */
	R_TEXT,        /* any string */
	R_NONEMPTY,    /* a non-empty string */
	R_ATTACHMENTS, /* a list of attachment objects */
	R_COUNT,       /* an integer >= 0 */
	R_STRINGS,     /* a list of strings */
	R_OBJECT,      /* any object */
};

struct field_rule {
	const char *name;
	enum rule rule;
	int required;
};

static const struct field_rule rules[] = {
        {"v", R_V, 1},
        {"id", R_ULID, 1},
        {"kind", R_KIND, 1},
        {"direction", R_DIRECTION, 1},
        {"channel", R_CHANNEL, 1},
        {"channel_type", R_KEY, 1},
        {"external_id", R_KEY, 0},
        {"from", R_URN, 0},
        {"to", R_URN, 0},
        {"contact_id", R_GATEWAY_ID, 0},
        {"conversation_id", R_GATEWAY_ID, 0},
        {"thread_ref", R_NONEMPTY, 0},
        {"sent_at", R_TIME, 0},
        {"received_at", R_TIME, 1},
        {"text", R_TEXT, 0},
        {"subject", R_TEXT, 0},
        {"attachments", R_ATTACHMENTS, 0},
        {"status", R_STATUS, 0},
        {"error", R_TEXT, 0},
        {"attempts", R_COUNT, 0},
        {"labels", R_STRINGS, 0},
        {"priority", R_TEXT, 0},
        {"route", R_OBJECT, 0},
        {"meta", R_OBJECT, 0},
        {"template", R_OBJECT, 0}, /* a later minor of v1: a provider template message (broadcasts, windows) */
};

static const char *const kinds[] = {"message", "status", "event", NULL};
static const char *const directions[] = {"inbound", "outbound", NULL};
static const char *const statuses[] = {"queued", "sending", "retry",   "sent", "delivered",
                                       "read",   "failed",  "dropped", NULL};

static const struct field_rule *rule_of(const char *field)
{
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (strcmp(rules[i].name, field) == 0)
			return &rules[i];
	return NULL;
}

int envelope_field_known(const char *field)
{
	return field && rule_of(field) != NULL;
}

static int say(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int say(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return PARLEY_EINVAL;
}

static int in_set(const char *s, const char *const *set)
{
	for (size_t i = 0; set[i]; i++)
		if (strcmp(set[i], s) == 0)
			return 1;
	return 0;
}

static int all_of(const char *s, size_t len, const char *alphabet)
{
	return len > 0 && strspn(s, alphabet) == len;
}

#define WORD_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

/* A URN as the schema's $defs/urn: a lower-case letter, then [a-z0-9+.-]*, ':', then one or more characters. */
static int urn_ok(const char *s)
{
	if (!(s[0] >= 'a' && s[0] <= 'z'))
		return 0;
	size_t scheme = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789+.-");
	if (s[scheme] != ':' || s[scheme + 1] == '\0')
		return 0;
	for (const unsigned char *p = (const unsigned char *)s + scheme + 1; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return 0;
	return 1;
}

/* The number written by the n digits at s, or -1 when they are not all digits. */
static int number(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : days[month - 1];
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), a real calendar date. */
static int time_ok(const char *s)
{
	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
	    s[16] != ':')
		return 0;
	int y = number(s, 4), mo = number(s + 5, 2), d = number(s + 8, 2);
	int h = number(s + 11, 2), mi = number(s + 14, 2), se = number(s + 17, 2);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    se < 0 || se > 60)
		return 0;
	const char *p = s + 19;
	if (*p == '.') {
		size_t digits = strspn(p + 1, "0123456789");
		if (digits == 0)
			return 0;
		p += 1 + digits;
	}
	if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0')
		return 1;
	if (p[0] != '+' && p[0] != '-')
		return 0;
	int oh = number(p + 1, 2), om = number(p + 4, 2);
	return p[3] == ':' && p[6] == '\0' && oh >= 0 && oh <= 23 && om >= 0 && om <= 59;
}

/* s for a reason text, or a stand-in when it would break the log line it is written to. */
static const char *shown(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "(text with control characters)";
	return s;
}

/* Checks of a string value for a string-valued rule; PARLEY_EINVAL or PARLEY_ETOOBIG with why. */
static int check_string(const struct field_rule *r, const char *s, char *why, size_t n)
{
	size_t len = strlen(s);
	const char *f = r->name;
	if (!utf8_valid(s, len))
		return say(why, n, "field '%s' is not valid UTF-8", f);
	/* Addresses and ids are keys (dedupe, contacts, threads): refused when too long, never cut. */
	if (len > ENVELOPE_MAX_KEY && (r->rule == R_KEY || r->rule == R_URN || r->rule == R_CHANNEL)) {
		say(why, n, "field '%s' is %zu bytes long: at most %d are taken", f, len, ENVELOPE_MAX_KEY);
		return PARLEY_ETOOBIG;
	}
	switch (r->rule) {
	case R_ULID:
		if (len != 26 || !all_of(s, len, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"))
			return say(why, n, "field '%s' is not a ULID (26 characters of 0-9 and A-Z without I, L, O, U)",
			           f);
		return 0;
	case R_GATEWAY_ID:
		if (len > 64 || !all_of(s, len, WORD_CHARS))
			return say(why, n, "field '%s' is not a gateway id (1-64 letters, digits, '-' or '_')", f);
		return 0;
	case R_KIND:
		return in_set(s, kinds)
		               ? 0
		               : say(why, n, "field 'kind' is '%.40s', not message, status or event", shown(s));
	case R_DIRECTION:
		return in_set(s, directions)
		               ? 0
		               : say(why, n, "field 'direction' is '%.40s', not inbound or outbound", shown(s));
	case R_STATUS:
		return in_set(s, statuses) ? 0
		                           : say(why, n,
		                                 "field 'status' is '%.40s', not one of queued, sending, retry, sent, "
		                                 "delivered, read, failed, dropped",
		                                 shown(s));
	case R_CHANNEL:
		if (!all_of(s, len, WORD_CHARS))
			return say(why, n, "field 'channel' is '%.64s': a channel name is letters, digits, '-' or '_'",
			           shown(s));
		break;
	case R_URN:
		if (!urn_ok(s))
			return say(why, n,
			           "field '%s' is '%.64s', not a URN (a lower-case scheme, ':', then the address, "
			           "e.g. tel:+15551234567)",
			           f, shown(s));
		break;
	case R_TIME:
		if (!time_ok(s))
			return say(why, n,
			           "field '%s' is '%.64s', not an RFC 3339 time such as 2026-11-22T10:11:12.345Z", f,
			           shown(s));
		return 0;
	case R_NONEMPTY:
	case R_KEY:
		if (len == 0)
			return say(why, n, "field '%s' is empty", f);
		break;
	default:
		break;
	}
	return 0;
}

static int is_string_rule(enum rule r)
{
	return r != R_V && r != R_ATTACHMENTS && r != R_COUNT && r != R_STRINGS && r != R_OBJECT;
}

static int is_count(const cJSON *v)
{
	return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9007199254740992.0 &&
	       v->valuedouble == (double)(long long)v->valuedouble;
}

/* One attachment object of the schema's attachments.items. */
static int check_attachment(const cJSON *a, int i, char *why, size_t n)
{
	static const char *const strs[] = {"content_type", "url", "ref", "name", NULL};
	if (!cJSON_IsObject(a))
		return say(why, n, "field 'attachments[%d]' is not an object", i);
	for (size_t k = 0; strs[k]; k++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(a, strs[k]);
		if (v && !cJSON_IsString(v))
			return say(why, n, "field 'attachments[%d].%s' is not a string", i, strs[k]);
	}
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(a, "size");
	if (size && !is_count(size))
		return say(why, n, "field 'attachments[%d].size' is not an integer >= 0", i);
	const cJSON *sha = cJSON_GetObjectItemCaseSensitive(a, "sha256");
	if (sha && (!cJSON_IsString(sha) || strlen(sha->valuestring) != 64 ||
	            !all_of(sha->valuestring, 64, "0123456789abcdef")))
		return say(why, n, "field 'attachments[%d].sha256' is not 64 lower-case hex digits", i);
	return 0;
}

/* Check one JSON value for its rule. */
static int check_value(const struct field_rule *r, const cJSON *v, char *why, size_t n)
{
	const char *f = r->name;
	if (is_string_rule(r->rule)) {
		if (!cJSON_IsString(v))
			return say(why, n, "field '%s' must be a string", f);
		return check_string(r, v->valuestring, why, n);
	}
	int i = 0;
	const cJSON *item;
	switch (r->rule) {
	case R_V:
		return cJSON_IsNumber(v) && v->valuedouble == 1 ? 0 : say(why, n, "field 'v' must be 1");
	case R_COUNT:
		return is_count(v) ? 0 : say(why, n, "field '%s' must be an integer >= 0", f);
	case R_OBJECT:
		return cJSON_IsObject(v) ? 0 : say(why, n, "field '%s' must be a JSON object", f);
	case R_STRINGS:
		if (!cJSON_IsArray(v))
			return say(why, n, "field '%s' must be a list of strings", f);
		cJSON_ArrayForEach(item, v)
		{
			if (!cJSON_IsString(item))
				return say(why, n, "field '%s[%d]' is not a string", f, i);
			i++;
		}
		return 0;
	case R_ATTACHMENTS:
		if (!cJSON_IsArray(v))
			return say(why, n, "field 'attachments' must be a list of objects");
		cJSON_ArrayForEach(item, v)
		{
			int rv = check_attachment(item, i++, why, n);
			if (rv)
				return rv;
		}
		return 0;
	default:
		return say(why, n, "field '%s' has no rule (a bug)", f);
	}
}

/* The field's rule, or PARLEY_EINVAL with why for a name the envelope does not have (or v, never set). */
static int settable(const char *field, const struct field_rule **r, char *why, size_t n)
{
	*r = rule_of(field);
	if (!*r || (*r)->rule == R_V)
		return say(why, n, "'%.64s' is not an envelope field that can be set (see sdk/envelope-v1.schema.json)",
		           field);
	return 0;
}

int envelope_check_str(const char *field, const char *value, char *why, size_t n)
{
	const struct field_rule *r;
	int rv = settable(field, &r, why, n);
	if (rv)
		return rv;
	if (!value)
		return r->required ? say(why, n, "field '%s' is required: it cannot be removed", field) : 0;
	if (!is_string_rule(r->rule))
		return say(why, n, "field '%s' is not a string: set it with envelope_set_json", field);
	return check_string(r, value, why, n);
}

int envelope_check_json(const char *field, const cJSON *value, char *why, size_t n)
{
	const struct field_rule *r;
	int rv = settable(field, &r, why, n);
	if (rv)
		return rv;
	if (!value)
		return r->required ? say(why, n, "field '%s' is required: it cannot be removed", field) : 0;
	return check_value(r, value, why, n);
}

int envelope_check_all(const cJSON *obj, char *why, size_t n)
{
	if (!cJSON_IsObject(obj))
		return say(why, n, "the envelope is not a JSON object");
	const cJSON *item;
	cJSON_ArrayForEach(item, obj)
	{
		const struct field_rule *r = rule_of(item->string);
		if (!r)
			return say(why, n, "'%.64s' is not an envelope field (see sdk/envelope-v1.schema.json)",
			           item->string);
		int rv = check_value(r, item, why, n);
		if (rv)
			return rv;
	}
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
		if (rules[i].required && !cJSON_GetObjectItemCaseSensitive(obj, rules[i].name))
			return say(why, n, "envelope has no '%s'", rules[i].name);
	return 0;
}
