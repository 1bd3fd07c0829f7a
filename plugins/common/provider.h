/*
 * provider.h: helpers shared by the provider channel plugins (WhatsApp,
 * Messenger, Instagram, Telegram, Twilio, Slack).  A static library linked
 * into each plugin: plugins never share code through the executable.
 */
#ifndef PARLEY_PLUGINS_PROVIDER_H
#define PARLEY_PLUGINS_PROVIDER_H

#include <parley/parley.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>

/*
 * Plugin init/fini for plugins that use libcurl: its global state is set up
 * once per plugin (curl_global_init is reference counted).
 */
int prov_plugin_init(const struct parley_host *host, void **plugin_data, char **errmsg);
void prov_plugin_fini(void *plugin_data);

/* ------------------------------------------------------------ HTTP out */

/* One HTTP exchange with a provider.  body is NUL-terminated (malloc'd). */
struct prov_http {
	long status; /* 0 when no answer (network error, timeout) */
	char *body;
	size_t len;
	int64_t retry_after_ms;
	char content_type[128];
	char error[256]; /* libcurl's error text when status is 0 */
};

/* A reusable client (keeps connections alive); one thread at a time. */
struct prov_client {
	CURL *curl;
	int64_t timeout_ms;
	size_t max_body;           /* larger answers fail with "too large" */
	const volatile int *abort; /* when set and non-zero, a transfer under way stops */
	int insecure;              /* do not verify TLS peers (tests with throwaway certificates) */
	long use_ssl;              /* CURLUSESSL_* for imap:// and smtp:// (STARTTLS) */
	/* Set by prov_fetch (fetch_policy.h) for one request: the media fetch policy's options. */
	struct prov_fetch_state *fetch;
};

void prov_client_init(struct prov_client *c, int64_t timeout_ms, size_t max_body);
void prov_client_fini(struct prov_client *c);
/*
 * method "GET"/"POST" (for IMAP, the command; NULL: the URL's own action); headers a NULL-terminated list of "Name:
 * value"; userpwd "user:password" for basic auth, or NULL.  Returns 0 when an answer (any status) came back, -1
 * otherwise (out->error says why).  Free with prov_http_free.
 */
int prov_request(struct prov_client *c, const char *method, const char *url, const char *const *headers,
                 const char *body, size_t body_len, const char *userpwd, struct prov_http *out);
void prov_http_free(struct prov_http *r);

/*
 * Fill res from an exchange: 2xx ok; no answer, 408, 429 and 5xx retry (with
 * Retry-After); any other status permanent.  code and text, when given,
 * are the provider's own error code and message.
 */
void prov_classify(const struct prov_http *r, const char *code, const char *text, struct parley_send_result *res);

/* Standard base64 of n bytes into out (4 * ((n + 2) / 3) + 1 bytes). */
void prov_base64(const unsigned char *in, size_t n, char *out);

/* A decoded application/x-www-form-urlencoded body, as name/value pairs. */
struct prov_form {
	size_t n;
	char **names, **values;
	size_t *lens;      /* decoded length of each value (a %00 makes it longer than strlen) */
	size_t *name_lens; /* the same for each name */
};
/* 0, or -1 (out of memory, f left empty).  Any bytes parse: prov_form_check says whether they are text. */
int prov_form_parse(const char *body, size_t len, struct prov_form *f);
/*
 * 0 when every name and value is valid UTF-8 without NUL; else
 * PARLEY_EINVAL with why naming the parameter ("parameter 'Body' is not
 * valid UTF-8").
 */
int prov_form_check(const struct parley_host *h, const struct prov_form *f, char *why, size_t why_len);
const char *prov_form_get(const struct prov_form *f, const char *name);
void prov_form_free(struct prov_form *f);

/* URL-encode s into a malloc'd string. */
char *prov_urlencode(const char *s);

/* ------------------------------------------------------- webhooks in */

/* 1 when header is "<prefix><hex HMAC-SHA256(secret, body)>" (constant time). */
int prov_check_hmac_sha256_hex(const struct parley_host *h, const char *secret, const char *header, const char *prefix,
                               const void *body, size_t len);

/*
 * Meta's webhook verification (GET ?hub.mode=subscribe&hub.verify_token=..
 * &hub.challenge=..): echo the challenge when the token matches, else 403.
 */
void prov_meta_handshake(const struct parley_host *h, parley_http_request *req, const char *verify_token);

/*
 * A webhook's JSON body: NULL after answering the request itself when the
 * Content-Type is not JSON (415), a string is not valid UTF-8 or holds a
 * NUL (400 naming it by its path, see parley_host.json_check), or the
 * body is not JSON (400).  Free the result with cJSON_Delete.
 */
cJSON *prov_json_body(const struct parley_host *h, parley_http_request *req, const void *body, size_t len);
/*
 * A webhook's application/x-www-form-urlencoded body into f: 0, or -1
 * after answering 415 (another Content-Type) or 400 itself.  Check the
 * signature, then prov_form_check, before using the values.
 */
int prov_form_body(const struct parley_host *h, parley_http_request *req, const void *body, size_t len,
                   struct prov_form *f);
/* 0 when the request says it is a form; else -1 after answering 415. */
int prov_require_form(const struct parley_host *h, parley_http_request *req);
/* The same checks for JSON from elsewhere (a provider's API answer): NULL with why set. */
cJSON *prov_json_parse(const struct parley_host *h, const char *text, size_t len, char *why, size_t why_len);

/* Answer a request with a JSON {"ok": false, "error": msg} and status. */
void prov_respond_error(const struct parley_host *h, parley_http_request *req, int status, const char *msg);

/* The value of name in an application/x-www-form-urlencoded query, decoded (malloc'd), or NULL. */
char *prov_query_get(const char *query, const char *name);

/*
 * For a channel type's check_config: 0 when the config (config_json as
 * given to check_config) names a non-empty `key` that authenticates its
 * webhooks, or says `insecure: true`; else PARLEY_EINVAL with *errmsg
 * saying what to set.  A channel anyone can post to must be chosen, never
 * a default.
 */
int prov_check_signing(const char *config_json, const char *key, const char *what, char **errmsg);

/* ------------------------------------------------------------- media */

/*
 * Media fetching: a thread per channel instance takes jobs (a committed
 * message's id, the attachment's index and a provider-specific spec such as
 * a media id) and calls fetch() to get the bytes, bounded by max_bytes;
 * then stores them with parley_host.attachment_put.  Jobs never block a
 * webhook's answer.  A failed fetch is logged and retried a few times; a
 * fetch() returning PROV_FETCH_REFUSED (fetch_policy.h) is logged and
 * counted in media_refused_total, and not retried.  fetch() fills in *out
 * whatever it returns.
 */
typedef int (*prov_fetch_fn)(void *arg, struct prov_client *client, const char *spec, struct prov_http *out);

struct prov_media;

int prov_media_start(struct prov_media **out, const struct parley_host *h, parley_instance *inst, prov_fetch_fn fetch,
                     void *arg, size_t max_bytes, int64_t timeout_ms);
void prov_media_add(struct prov_media *m, const char *message_id, size_t index, const char *spec);
void prov_media_stop(struct prov_media *m);

/* ---------------------------------------------- answering after commit */

/*
 * A webhook being answered: its envelopes are built, then submitted; once
 * committed the request gets `ok_status` with `ok_body`, and media jobs
 * are queued for the ids the messages are stored under.  Not committed:
 * 503 so the provider retries.  More than PROV_MAX_ENVS envelopes (Meta
 * batches at most 1,000 changes) refuse the whole request.
 */
#define PROV_MAX_ENVS 1000

struct prov_batch {
	const struct parley_host *host;
	parley_instance *inst;
	parley_http_request *req;
	struct prov_media *media;
	parley_envelope **envs;
	size_t n, cap;
	struct prov_job {
		size_t env; /* index into envs */
		size_t index;
		char *spec;
	} * jobs;
	size_t n_jobs, cap_jobs;
	int ok_status;
	const char *ok_type;
	char *ok_body;
	/* Set by prov_batch_refuse: the payload is invalid, nothing is stored, 400 with this. */
	char *refused;
	/* Parts of the payload acknowledged and not stored, each logged by prov_batch_ignore. */
	size_t n_ignored;
	/* With no request (a poller's batch): called with the commit's result instead. */
	void (*done)(void *arg, int result);
	void *done_arg;
};

/*
 * A new batch for req (malloc'd); the answer on success defaults to 200
 * {"ok":true}.  req may be NULL: set done to learn the commit's result.
 */
struct prov_batch *prov_batch_new(const struct parley_host *h, parley_instance *inst, parley_http_request *req,
                                  struct prov_media *media);
/* A new inbound envelope in the batch; NULL when it is full (the batch is then refused) or out of memory. */
parley_envelope *prov_batch_envelope(struct prov_batch *b, const char *kind);
/* Fetch spec's bytes into attachment `index` of env once it is committed. */
void prov_batch_media(struct prov_batch *b, parley_envelope *env, size_t index, const char *spec);
/*
 * Submit and answer after commit; the batch is consumed.  With no envelopes
 * (a payload for another account, say) the request is answered at once.
 */
void prov_batch_finish(struct prov_batch *b);
/* Drop the batch and answer status with msg. */
void prov_batch_fail(struct prov_batch *b, int status, const char *msg);
/*
 * Mark the payload invalid (printf-style reason naming the field): the
 * batch then stores nothing and prov_batch_finish answers 400 with the
 * first reason given (a poller's done() gets PARLEY_EINVAL).
 */
void prov_batch_refuse(struct prov_batch *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Acknowledge part of the payload without storing it (another account's
 * event, our own echo, a group message on a channel without groups): logs
 * the printf-style reason at INFO with the channel's name, so no webhook is
 * answered 2xx with nothing stored and nothing said.  A request answered
 * with no envelope and no such reason is logged as a warning by
 * prov_batch_finish.
 */
void prov_batch_ignore(struct prov_batch *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Set a structured field (attachments, meta, ...) from a cJSON value, which
 * is consumed.  Returns the setter's result; a failure is also remembered
 * by the envelope, so its submission is refused with the reason.
 */
int prov_set_json(const struct parley_host *h, parley_envelope *env, const char *field, cJSON *v);

/*
 * Set a string field to printf-style text, never cut short (an id or an
 * address that would be too long is refused by the host instead); as
 * prov_set_json.
 */
int prov_set_fmt(const struct parley_host *h, parley_envelope *env, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Set a string field from a JSON string member, if present (0 when absent); as prov_set_json. */
int prov_set_from(const struct parley_host *h, parley_envelope *env, const char *field, const cJSON *obj,
                  const char *member);
/*
 * Unix seconds (string or number) times scale as RFC 3339 with
 * milliseconds into out (>= 32).  -1 (out empty) when v is not a number,
 * not positive, or past the year 9999.
 */
int prov_time_from_unix(const cJSON *v, double scale, char *out, size_t outlen);
/*
 * Set env's sent_at from the member `name` of obj (Unix time times scale).
 * Absent: nothing.  Present but not a time: the batch is refused, naming it.
 */
void prov_set_time(struct prov_batch *b, parley_envelope *env, const cJSON *obj, const char *name, double scale);
/* The same, naming the field by its path in the payload (where, e.g. "entry[0].messaging[1]") when refused. */
void prov_set_time_at(struct prov_batch *b, parley_envelope *env, const cJSON *obj, const char *name, double scale,
                      const char *where);
/*
 * An external id for a payload part that has none of its own: prefix, ':'
 * and 32 hex digits of a keyed hash of v's JSON text, so a redelivery of
 * the same content is stored once.
 */
void prov_content_id(const struct parley_host *h, const char *prefix, const cJSON *v, char *out, size_t outlen);
/*
 * 1 when s is a WhatsApp business-scoped user id (BSUID) as Meta documents
 * it: a two-letter country code, '.', optionally "ENT." (a parent BSUID),
 * then 1-128 letters and digits (US.13491208655302741918).
 */
int prov_whatsapp_bsuid(const char *s);
/* 1 when s is an RFC 3339 time: 2026-11-22T10:11:12Z, with optional fraction and a Z or +hh:mm offset. */
int prov_rfc3339_valid(const char *s);

/*
 * s as a decimal integer in [min, max] (leading spaces allowed, nothing
 * after): 0 with *out set, -1 otherwise.  atoll() and atoi() are undefined
 * on overflow, so text from a provider goes through this instead.
 */
int prov_parse_ll(const char *s, long long min, long long max, long long *out);
/*
 * An integer member `name` of obj in [min, max] (numbers beyond 2^53 are
 * not exact in JSON parsers, so a bound of at most that is wise).  0 with
 * *out set; -1 when absent or not such an integer.
 */
int prov_json_int(const cJSON *obj, const char *name, long long min, long long max, long long *out);

#endif
