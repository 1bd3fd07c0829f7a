/*
 * viber.h: the Viber REST bot API channel type, shared by its parts:
 * viber.c (config and lifecycle, message tokens read exactly), inbound.c
 * (callbacks into envelopes) and outbound.c (send_message and what its
 * status codes mean).
 */
#ifndef PARLEY_CHANNEL_VIBER_H
#define PARLEY_CHANNEL_VIBER_H

#include "fetch_policy.h"
#include "provider.h"

struct viber {
	const struct parley_host *host;
	parley_instance *inst;
	const char *token, *base, *sender_name, *sender_avatar;
	char *auth; /* "X-Viber-Auth-Token: <token>" */
	int64_t timeout_ms;
	uint64_t max_media;
	struct prov_client client; /* the outbox thread's */
	struct prov_media *media;
	struct prov_policy policy;
};

/*
 * The top-level member "message_token" of the JSON object text, as the
 * digits it is written with, into out: 0, or -1 when there is none or it is
 * not an unsigned 64-bit integer.  Viber's tokens are 64-bit: beyond 2^53 a
 * JSON parser's double is not the token, so the text is read instead.
 */
int viber_message_token(const char *json, size_t len, char *out, size_t outlen);

/* 1 when s is a Viber user id: 1-64 characters of base64 (letters, digits, '+', '/', '='). */
int viber_user_id(const char *s);

/* POST /webhooks/<name>: a callback (inbound.c). */
void viber_on_post(void *data, parley_http_request *req);

/* channel_send (outbound.c). */
int viber_send(void *data, const parley_envelope *env, struct parley_send_result *res);

/* The media worker's fetch: a media URL from a callback, under the fetch policy (outbound.c). */
int viber_fetch(void *arg, struct prov_client *client, const char *url, struct prov_http *out);

#endif
