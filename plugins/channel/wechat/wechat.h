/*
 * wechat.h: internal to the wechat channel plugin (not an SDK header).
 *
 * WeChat Official Account messages.  Inbound: WeChat POSTs XML to the
 * server URL with signature = SHA1 of the sorted token, timestamp and
 * nonce in the query (inbound.c); in safe mode the XML carries only
 * Encrypt, AES-256-CBC with the EncodingAESKey (crypt.c), signed by
 * msg_signature over the token, timestamp, nonce and Encrypt.  The answer
 * is "success" after the commit (WeChat's passive reply of nothing);
 * replies go through the customer-service message API with an access
 * token cached until it expires (api.c).
 *
 * Threads: the HTTP handler on host threads, sends on the outbox thread,
 * media fetches on the media thread; the access token is shared by the
 * last two under token_lock.
 */
#ifndef PARLEY_WECHAT_H
#define PARLEY_WECHAT_H

#include "fetch_policy.h"
#include "provider.h"

#include <pthread.h>
#include <stdint.h>

#define WECHAT_KEY_LEN 43 /* an EncodingAESKey: base64 of 32 bytes without its '=' */

struct wechat {
	const struct parley_host *host;
	parley_instance *inst;
	const char *app_id, *app_secret, *token, *original_id, *base;
	int stable_token; /* token_endpoint: stable_token (the default) or token */
	int safe;         /* encoding_aes_key set: messages are encrypted */
	unsigned char aes_key[32];
	int64_t timeout_ms;
	uint64_t max_media;
	struct prov_client client; /* the outbox thread's */
	struct prov_media *media;
	struct prov_policy policy;
	pthread_mutex_t token_lock;
	char access_token[600];
	int64_t token_expires_ms; /* monotonic; 0: none */
	int said_up;              /* what health() was last told: 1 up, 0 down, -1 nothing yet */
};

/* crypt.c */
/* Lower-case hex SHA1 of the n strings sorted and joined: WeChat's signature. */
void wechat_signature(const char *const *parts, size_t n, char hex[41]);
/* 1 when `given` is the signature of parts (constant time). */
int wechat_signature_ok(const struct parley_host *h, const char *given, const char *const *parts, size_t n);
/* The 32-byte AES key of an EncodingAESKey: 0, or -1 when it is not 43 base64 characters. */
int wechat_aes_key(const char *encoding_key, unsigned char key[32]);
/*
 * Decrypt Encrypt (base64 of AES-256-CBC, IV the key's first 16 bytes,
 * PKCS#7 to 32-byte blocks) into random(16) + msg_len(4, network order) +
 * msg + appid, checking appid.  *msg (malloc'd, NUL-terminated) and *len;
 * 0, or -1 with why (not base64, bad padding or length, or another appid).
 */
int wechat_decrypt(const unsigned char key[32], const char *b64, const char *app_id, char **msg, size_t *len, char *why,
                   size_t why_len);

/* xml.c */
/*
 * The fields of a WeChat XML message (<xml><Name>text or CDATA</Name>...)
 * as a JSON object of strings, elements with elements of their own as
 * objects.  A DOCTYPE, another root, deep nesting or too many fields are
 * refused.  0 with *out (cJSON_Delete it), or -1 with why.
 */
int wechat_xml_fields(const struct parley_host *h, const char *xml, size_t len, cJSON **out, char *why, size_t why_len);

/* inbound.c */
void wechat_on_post(void *data, parley_http_request *req);
void wechat_on_verify(void *data, parley_http_request *req);
/* The query's signature (timestamp, nonce): 1 when right, else 0 after answering 401. */
int wechat_check_query(struct wechat *w, parley_http_request *req, char **timestamp, char **nonce);

/* api.c */
int wechat_send(void *data, const parley_envelope *env, struct parley_send_result *res);
int wechat_fetch_media(void *arg, struct prov_client *client, const char *media_id, struct prov_http *out);

#endif
