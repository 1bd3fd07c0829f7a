/*
 * token.c: the web chat's signed tokens (see token.h for their format).
 * Compared with the host's constant-time helper; JSON through cJSON.
 */
#include "token.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding into out (4 * ceil(n / 3) + 1 bytes at most). */
static size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) |
		             (i + 2 < n ? in[i + 2] : 0);
		out[o++] = B64URL[v >> 18 & 63];
		out[o++] = B64URL[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = B64URL[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = B64URL[v & 63];
	}
	out[o] = '\0';
	return o;
}

/* Decode n base64url characters (no padding) into out (3 * n / 4 bytes at most); -1 when malformed. */
static long b64url_decode(const char *in, size_t n, unsigned char *out)
{
	unsigned v = 0;
	int bits = 0;
	long o = 0;
	for (size_t i = 0; i < n; i++) {
		const char *p = in[i] ? strchr(B64URL, in[i]) : NULL;
		if (!p)
			return -1;
		v = v << 6 | (unsigned)(p - B64URL);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(v >> bits);
		}
	}
	if (n % 4 == 1)
		return -1;
	return o;
}

int wc_session_id(char out[40])
{
	unsigned char r[16];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return PARLEY_EIO;
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/* base64url(HMAC-SHA256(secret, prefix || part)) into mac (44 bytes). */
static void sign(const struct parley_host *h, const char *secret, const char *prefix, const char *part, size_t plen,
                 char mac[44])
{
	size_t pre = strlen(prefix);
	char *msg = malloc(pre + plen + 1);
	unsigned char raw[32];
	memset(raw, 0, sizeof(raw));
	if (msg) {
		memcpy(msg, prefix, pre);
		memcpy(msg + pre, part, plen);
		h->hmac_sha256(secret, strlen(secret), msg, pre + plen, raw);
		free(msg);
	}
	b64url_encode(raw, sizeof(raw), mac);
}

/* Split and verify token; the payload as parsed JSON, or NULL with *why. */
static cJSON *open_token(const struct parley_host *h, const char *secret, const char *prefix, const char *token,
                         const char **why)
{
	const char *dot = token ? strchr(token, '.') : NULL;
	if (!token || !dot || strlen(token) > 4096) {
		*why = "not a token: expected <payload>.<signature>";
		return NULL;
	}
	size_t plen = (size_t)(dot - token);
	char mac[44];
	sign(h, secret, prefix, token, plen, mac);
	if (strlen(dot + 1) != strlen(mac) || !h->ct_equal(mac, dot + 1, strlen(mac))) {
		*why = "bad signature";
		return NULL;
	}
	unsigned char *json = malloc(plen + 1);
	long n = json ? b64url_decode(token, plen, json) : -1;
	cJSON *o = NULL;
	if (n >= 0) {
		json[n] = '\0';
		o = cJSON_Parse((char *)json);
	}
	free(json);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		*why = "the payload is not a base64url JSON object";
		return NULL;
	}
	return o;
}

static int copy_str(const cJSON *o, const char *name, char *out, size_t cap)
{
	const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
	if (!v) {
		out[0] = '\0';
		return 0;
	}
	if (strlen(v) >= cap)
		return -1;
	memcpy(out, v, strlen(v) + 1);
	return 1;
}

char *wc_session_token(const struct parley_host *h, const char *secret, const char *channel, const struct wc_session *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "sid", s->sid);
	cJSON_AddStringToObject(o, "ch", channel);
	cJSON_AddNumberToObject(o, "iat", (double)s->iat);
	if (s->name[0])
		cJSON_AddStringToObject(o, "name", s->name);
	if (s->email[0])
		cJSON_AddStringToObject(o, "email", s->email);
	if (s->uid[0])
		cJSON_AddStringToObject(o, "uid", s->uid);
	if (s->uemail[0])
		cJSON_AddStringToObject(o, "uemail", s->uemail);
	char *json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!json)
		return NULL;
	size_t n = strlen(json);
	char *tok = malloc(4 * (n / 3 + 1) + 1 + 44 + 1);
	if (tok) {
		size_t p = b64url_encode((unsigned char *)json, n, tok);
		tok[p] = '.';
		sign(h, secret, "session.", tok, p, tok + p + 1);
	}
	free(json);
	return tok;
}

int wc_session_check(const struct parley_host *h, const char *secret, const char *channel, const char *token,
                     int64_t now_s, int64_t ttl_s, struct wc_session *s, const char **why)
{
	memset(s, 0, sizeof(*s));
	cJSON *o = open_token(h, secret, "session.", token, why);
	if (!o)
		return PARLEY_EAUTH;
	const cJSON *iat = cJSON_GetObjectItemCaseSensitive(o, "iat");
	const char *ch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "ch"));
	int rv = PARLEY_EAUTH;
	if (copy_str(o, "sid", s->sid, sizeof(s->sid)) != 1 || !cJSON_IsNumber(iat))
		*why = "the session token lacks sid or iat";
	else if (!ch || strcmp(ch, channel) != 0)
		*why = "the session token is for another channel";
	else if ((s->iat = (int64_t)iat->valuedouble) > now_s + 60 || now_s - s->iat > ttl_s)
		*why = "the session token has expired: start a new session";
	else if (copy_str(o, "name", s->name, sizeof(s->name)) < 0 ||
	         copy_str(o, "email", s->email, sizeof(s->email)) < 0 ||
	         copy_str(o, "uid", s->uid, sizeof(s->uid)) < 0 ||
	         copy_str(o, "uemail", s->uemail, sizeof(s->uemail)) < 0)
		*why = "the session token has an overlong field";
	else
		rv = 0;
	cJSON_Delete(o);
	return rv;
}

int wc_identity_check(const struct parley_host *h, const char *secret, const char *channel, const char *token,
                      int64_t now_s, struct wc_identity *id, const char **why)
{
	memset(id, 0, sizeof(*id));
	cJSON *o = open_token(h, secret, "", token, why);
	if (!o)
		return PARLEY_EAUTH;
	const cJSON *exp = cJSON_GetObjectItemCaseSensitive(o, "exp");
	const char *ch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "ch"));
	int rv = PARLEY_EAUTH;
	if (copy_str(o, "uid", id->uid, sizeof(id->uid)) != 1 || !id->uid[0])
		*why = "identity_token: 'uid' is required (a string of at most 127 bytes)";
	else if (copy_str(o, "nonce", id->nonce, sizeof(id->nonce)) != 1 || strlen(id->nonce) < 8)
		*why = "identity_token: 'nonce' is required (a random string of 8-71 bytes, new for each token)";
	else if (!cJSON_IsNumber(exp))
		*why = "identity_token: 'exp' is required (Unix seconds)";
	else if (!ch || strcmp(ch, channel) != 0)
		*why = "identity_token: 'ch' names another channel";
	else if ((id->exp = (int64_t)exp->valuedouble) < now_s)
		*why = "identity_token has expired: the site must sign a new one";
	else if (copy_str(o, "email", id->email, sizeof(id->email)) < 0)
		*why = "identity_token: 'email' is over 255 bytes";
	else
		rv = 0;
	cJSON_Delete(o);
	return rv;
}
