/* provider_fields.c: envelope fields from provider payloads: strings, times and numbers, range-checked. */
#include <parley/provider.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int prov_set_json(const struct parley_host *h, parley_envelope *env, const char *field, cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	int rv = s ? h->envelope_set_json(env, field, s) : PARLEY_ENOMEM;
	free(s);
	cJSON_Delete(v);
	return rv;
}

int prov_set_fmt(const struct parley_host *h, parley_envelope *env, const char *field, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s)
		vsnprintf(s, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	if (!s)
		return PARLEY_ENOMEM;
	int rv = h->envelope_set_str(env, field, s);
	free(s);
	return rv;
}

int prov_set_from(const struct parley_host *h, parley_envelope *env, const char *field, const cJSON *obj,
                  const char *member)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, member));
	return v ? h->envelope_set_str(env, field, v) : 0;
}

/* 9999-12-31T23:59:59Z: the last second RFC 3339 can write with four digits. */
#define MAX_UNIX_SECONDS 253402300799.0

int prov_time_from_unix(const cJSON *v, double scale, char *out, size_t outlen)
{
	double t = 0;
	char *end = NULL;
	out[0] = '\0';
	if (cJSON_IsNumber(v)) {
		t = v->valuedouble;
	} else if (cJSON_IsString(v)) {
		t = strtod(v->valuestring, &end);
		if (end == v->valuestring || *end)
			return -1;
	} else {
		return -1;
	}
	t *= scale;
	/* Also false for NaN; the bound keeps the cast to time_t and gmtime_r defined. */
	if (!(t > 0 && t <= MAX_UNIX_SECONDS))
		return -1;
	time_t secs = (time_t)t;
	int ms = (int)((t - (double)secs) * 1000.0 + 0.5);
	if (ms >= 1000)
		ms = 999;
	struct tm tm;
	if (!gmtime_r(&secs, &tm))
		return -1;
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	         tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	return 0;
}

void prov_set_time_at(struct prov_batch *b, parley_envelope *env, const cJSON *obj, const char *name, double scale,
                      const char *where)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	char when[40];
	if (!v)
		return;
	if (prov_time_from_unix(v, scale, when, sizeof(when)) != 0) {
		if (where)
			prov_batch_refuse(b, "%s.%s is not a Unix time between 1970 and 9999", where, name);
		else
			prov_batch_refuse(b, "'%s' is not a Unix time between 1970 and 9999", name);
		return;
	}
	b->host->envelope_set_str(env, "sent_at", when);
}

void prov_set_time(struct prov_batch *b, parley_envelope *env, const cJSON *obj, const char *name, double scale)
{
	prov_set_time_at(b, env, obj, name, scale, NULL);
}

void prov_content_id(const struct parley_host *h, const char *prefix, const cJSON *v, char *out, size_t outlen)
{
	char *raw = cJSON_PrintUnformatted(v);
	unsigned char digest[32];
	char hex[65];
	h->hmac_sha256("parley", 6, raw ? raw : "", raw ? strlen(raw) : 0, digest);
	h->hex_encode(digest, 16, hex);
	free(raw);
	snprintf(out, outlen, "%s:%s", prefix, hex);
}

/* n digits at s into *v; 0 when they are digits. */
static int digits(const char *s, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

int prov_rfc3339_valid(const char *s)
{
	int y, mo, d, h, mi, se;
	if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
	    digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) || s[13] != ':' ||
	    digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
		return 0;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
		return 0;
	const char *p = s + 19;
	if (*p == '.') {
		size_t n = strspn(p + 1, "0123456789");
		if (n == 0 || n > 9)
			return 0;
		p += 1 + n;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return 1;
	int oh, om;
	return (*p == '+' || *p == '-') && !digits(p + 1, 2, &oh) && p[3] == ':' && !digits(p + 4, 2, &om) &&
	       p[6] == '\0' && oh <= 23 && om <= 59;
}

int prov_parse_ll(const char *s, long long min, long long max, long long *out)
{
	if (!s)
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end || errno == ERANGE || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int prov_json_int(const cJSON *obj, const char *name, long long min, long long max, long long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (!cJSON_IsNumber(v))
		return -1;
	double d = v->valuedouble;
	/* The comparisons are false for NaN; the bounds keep the cast defined. */
	if (!(d >= (double)min && d <= (double)max) || d != (double)(long long)d)
		return -1;
	*out = (long long)d;
	return 0;
}

int prov_whatsapp_bsuid(const char *s)
{
	if (!isupper((unsigned char)s[0]) || !isupper((unsigned char)s[1]) || s[2] != '.')
		return 0;
	s += 3;
	if (strncmp(s, "ENT.", 4) == 0)
		s += 4;
	size_t n = 0;
	while (isalnum((unsigned char)s[n]))
		n++;
	return n >= 1 && n <= 128 && s[n] == '\0';
}
