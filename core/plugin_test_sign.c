/*
 * plugin_test_sign.c: the signatures `parley test` puts on a fixture's
 * request, so that a fixture's body can change without recomputing one by
 * hand.  A fixture's "sign" names the header, the key, the HMAC (sha256 or
 * sha1), the encoding (hex or base64), a prefix, and the signed text as a
 * template of ${BODY}, ${NOW}, ${URL} and ${FORM_SORTED}: enough for the
 * providers' schemes without the core knowing any provider by name.
 */
#include "crypto.h"
#include "plugin_test.h"
#include "util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The public URL the fake host gives (see f_setting in plugin_test_host.c). */
#define PUBLIC_URL "https://parley.test"

struct pair {
	char *name, *value;
	size_t name_len, value_len;
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* application/x-www-form-urlencoded decoding of s[0..n) into a new buffer (bytes, %00 included). */
static char *form_decode(const char *s, size_t n, size_t *out_len)
{
	char *out = malloc(n + 1);
	size_t o = 0;
	for (size_t i = 0; out && i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	if (out)
		out[o] = '\0';
	*out_len = o;
	return out;
}

static int by_name(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);
	return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* The form's pairs sorted by name, each name then value, concatenated (Twilio's signed parameters). */
static void add_form_sorted(struct strbuf *sb, const char *body, size_t len)
{
	struct pair *p = NULL;
	size_t n = 0;
	for (size_t at = 0; at < len;) {
		size_t end = at;
		while (end < len && body[end] != '&')
			end++;
		size_t eq = at;
		while (eq < end && body[eq] != '=')
			eq++;
		struct pair *grown = realloc(p, (n + 1) * sizeof(*p));
		if (!grown)
			break;
		p = grown;
		p[n].name = form_decode(body + at, eq - at, &p[n].name_len);
		p[n].value = form_decode(body + eq + (eq < end), end - eq - (eq < end), &p[n].value_len);
		n++;
		at = end + 1;
	}
	if (n)
		qsort(p, n, sizeof(*p), by_name);
	for (size_t i = 0; i < n; i++) {
		if (p[i].name && p[i].value) {
			sb_add(sb, p[i].name, p[i].name_len);
			sb_add(sb, p[i].value, p[i].value_len);
		}
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
}

/* tmpl with its placeholders filled in, into sb. */
static int expand(struct strbuf *sb, const char *tmpl, const struct ptest_signed *r, char *why, size_t why_len)
{
	for (const char *p = tmpl; *p;) {
		if (strncmp(p, "${BODY}", 7) == 0) {
			sb_add(sb, r->body, r->len);
			p += 7;
		} else if (strncmp(p, "${NOW}", 6) == 0) {
			sb_printf(sb, "%lld", (long long)r->now);
			p += 6;
		} else if (strncmp(p, "${URL}", 6) == 0) {
			sb_printf(sb, "%s%s%s%s", PUBLIC_URL, r->path, r->query && r->query[0] ? "?" : "",
			          r->query ? r->query : "");
			p += 6;
		} else if (strncmp(p, "${FORM_SORTED}", 14) == 0) {
			add_form_sorted(sb, r->body, r->len);
			p += 14;
		} else if (strncmp(p, "${", 2) == 0) {
			snprintf(why, why_len,
			         "sign.message: unknown placeholder at '%.20s' (BODY, NOW, URL, FORM_SORTED)", p);
			return -1;
		} else {
			sb_add(sb, p++, 1);
		}
	}
	return 0;
}

/* ${NOW} in every header value: the time a provider stamps a request with. */
static void stamp_headers(cJSON *headers, int64_t now)
{
	cJSON *h;
	cJSON_ArrayForEach(h, headers)
	{
		const char *v = cJSON_GetStringValue(h);
		const char *at = v ? strstr(v, "${NOW}") : NULL;
		if (!at)
			continue;
		char *nv = str_printf("%.*s%lld%s", (int)(at - v), v, (long long)now, at + 6);
		if (nv)
			cJSON_SetValuestring(h, nv);
		free(nv);
	}
}

int ptest_sign(const cJSON *sign, cJSON *headers, const struct ptest_signed *r, char *why, size_t why_len)
{
	stamp_headers(headers, r->now);
	if (!sign)
		return 0;
	const char *header = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sign, "header"));
	const char *key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sign, "key"));
	const char *prefix = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sign, "prefix"));
	const char *alg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sign, "algorithm"));
	const char *enc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sign, "encoding"));
	const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sign, "message"));
	int sha1 = alg && strcmp(alg, "hmac-sha1") == 0, b64 = enc && strcmp(enc, "base64") == 0;
	if (!header || !key || (alg && !sha1 && strcmp(alg, "hmac-sha256") != 0) ||
	    (enc && !b64 && strcmp(enc, "hex") != 0)) {
		snprintf(why, why_len,
		         "sign needs \"header\" and \"key\"; \"algorithm\" is hmac-sha256 (default) or "
		         "hmac-sha1, \"encoding\" hex (default) or base64");
		return -1;
	}
	struct strbuf data;
	sb_init(&data);
	if (expand(&data, msg ? msg : "${BODY}", r, why, why_len) != 0) {
		sb_free(&data);
		return -1;
	}
	unsigned char mac[32];
	size_t n = sha1 ? 20 : 32;
	const char *text = data.len ? data.buf : "";
	if (sha1)
		crypto_hmac_sha1(key, strlen(key), text, data.len, mac);
	else
		crypto_hmac_sha256(key, strlen(key), text, data.len, mac);
	sb_free(&data);
	char out[80];
	if (b64)
		EVP_EncodeBlock((unsigned char *)out, mac, (int)n);
	else
		crypto_hex(mac, n, out);
	char *v = str_printf("%s%s", prefix ? prefix : "", out);
	cJSON_DeleteItemFromObjectCaseSensitive(headers, header);
	cJSON_AddStringToObject(headers, header, v ? v : "");
	free(v);
	return 0;
}
