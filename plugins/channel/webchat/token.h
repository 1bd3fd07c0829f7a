/*
 * token.h: the web chat's two signed tokens, both HMAC-SHA256 with the
 * channel's `secret` and written as <base64url(JSON payload)>.<base64url(MAC)>
 * (README, "Web chat"):
 *
 * - the session token, made by the gateway for a visitor and kept in the
 *   host page's localStorage: {"sid", "ch", "iat", and "name", "email",
 *   "uid", "uemail" when known}; its MAC is over "session." followed by the
 *   payload part, so it can never pass for an identity token;
 * - the identity token, made by the site's own backend for a signed-in
 *   user: {"uid", "email"?, "exp", "nonce", "ch"}; its MAC is over the
 *   payload part alone.
 */
#ifndef PARLEY_WEBCHAT_TOKEN_H
#define PARLEY_WEBCHAT_TOKEN_H

#include <parley/parley.h>
#include <stdint.h>

struct wc_session {
	char sid[40];
	int64_t iat; /* Unix seconds */
	char name[128];
	char email[256]; /* as typed: unverified */
	char uid[128];   /* from a valid identity token: verified */
	char uemail[256];
};

struct wc_identity {
	char uid[128];
	char email[256];
	char nonce[72];
	int64_t exp;
};

/* A fresh session id: 32 lower-case hex characters from the system's random source.  0 or PARLEY_EIO. */
int wc_session_id(char out[40]);

/* The session token for s on channel, malloc'd (NULL when out of memory). */
char *wc_session_token(const struct parley_host *h, const char *secret, const char *channel,
                       const struct wc_session *s);

/*
 * Check a session token: 0 with *s filled; PARLEY_EAUTH with *why when the
 * token is malformed, its MAC is wrong, it is for another channel, or it was
 * issued more than ttl_s ago (or in the future).
 */
int wc_session_check(const struct parley_host *h, const char *secret, const char *channel, const char *token,
                     int64_t now_s, int64_t ttl_s, struct wc_session *s, const char **why);

/*
 * Check an identity token: 0 with *id filled (the caller refuses a nonce it
 * has seen); PARLEY_EAUTH with *why when malformed, signed wrongly, for
 * another channel, or expired.
 */
int wc_identity_check(const struct parley_host *h, const char *secret, const char *channel, const char *token,
                      int64_t now_s, struct wc_identity *id, const char **why);

#endif
