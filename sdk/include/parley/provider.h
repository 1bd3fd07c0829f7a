/*
 * parley/provider.h: the provider helper library, libparley-plugin.
 *
 * What a channel plugin for an HTTP provider writes again and again, written
 * once: an HTTP client that turns the provider's answer into a send outcome
 * (with Retry-After), the webhook checks (Content-Type, UTF-8, JSON, forms,
 * HMAC signatures, Meta's handshake), answering a webhook only after its
 * envelopes are committed (struct prov_batch), a media thread that fetches
 * attachments after the commit, and the field conversions (Unix times to RFC
 * 3339, bounded integers, content ids).  The built-in channel types use
 * this same library; parley/fetch_policy.h adds where media may be fetched
 * from.
 *
 * Linking.  The library is a shared object of its own, libparley-plugin.so.1,
 * that a plugin links (`pkg-config --libs parley-plugin`, or CMake's
 * Parley::plugin); it is not part of the gateway executable, and plugins
 * still call nothing of the executable.  It keeps no mutable globals: every
 * piece of state lives in a struct the plugin owns (a prov_client, a
 * prov_batch, a prov_media), so several instances and several plugins share
 * the loaded library safely.  It links libcurl and cJSON, and this header
 * includes theirs: values of their types (CURL *, cJSON *) cross it.
 *
 * Versions.  The soname's number is PARLEY_PROVIDER_VERSION_MAJOR.  Within
 * one major, functions are only added (PARLEY_PROVIDER_VERSION_MINOR counts
 * the additions) and the layouts of the structs below do not change; any
 * other change bumps the major, so a plugin built against .so.1 keeps
 * loading.  The library speaks ABI 1.1 or later of the host table (it calls
 * submit_ids, envelope_error, json_check and text_check).
 *
 * Threads.  Unless a function says otherwise it may be called from any
 * thread, and it blocks only for what it says (prov_request and prov_fetch
 * block for the provider's answer).  A struct is used by one thread at a
 * time unless its comment says it may be shared.
 *
 * Errors.  Functions returning int give 0 on success.  The ones that talk
 * to the host give a negative PARLEY_E* code; the parsing ones give -1 and,
 * where there is room, say why in a caller's buffer (why, why_len: always
 * NUL-terminated, cut to fit).  Functions that answer an HTTP request
 * themselves say so: after such an answer the request must not be used.
 *
 * Strings are borrowed for the call unless a comment says the function
 * keeps or returns one; returned malloc'd strings are freed by the caller
 * with free().
 */
#ifndef PARLEY_PROVIDER_H
#define PARLEY_PROVIDER_H

#include <parley/parley.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PARLEY_PROVIDER_VERSION_MAJOR 1
#define PARLEY_PROVIDER_VERSION_MINOR 0

/* ------------------------------------------------------------ plugin init */

/*
 * A descriptor's init and fini for plugins that use libcurl (put them in
 * .init and .fini directly): libcurl's global state is set up once per
 * plugin; curl_global_init is reference counted, so every plugin doing this
 * is safe.  Main thread, as the host calls init/fini.  prov_plugin_init
 * returns 0 or PARLEY_EINTERNAL (libcurl could not start) and sets no
 * *errmsg; plugin_data is left NULL.
 */
int prov_plugin_init(const struct parley_host *host, void **plugin_data, char **errmsg);
void prov_plugin_fini(void *plugin_data);

/* ---------------------------------------------------------------- HTTP out */

/*
 * One HTTP exchange with a provider, filled by prov_request (and
 * prov_fetch).  body is malloc'd and NUL-terminated after len bytes (also
 * when empty), owned by the struct: release it with prov_http_free.
 */
struct prov_http {
	long status; /* 0 when no answer came (network error, timeout, refusal) */
	char *body;
	size_t len;
	int64_t retry_after_ms; /* Retry-After in seconds (up to a day) times 1000; 0 when absent or a date */
	char content_type[128]; /* the answer's Content-Type, cut to fit; "" when absent */
	char error[256];        /* why there is no answer (libcurl's text, or a policy refusal) when status is 0 */
};

/*
 * A reusable client: it keeps its connections alive between requests.  The
 * plugin owns it (embed it in the instance state) and uses it from one
 * thread at a time, typically the outbox thread in channel_send; the media
 * thread has its own.  Set the public fields after prov_client_init and
 * between requests, never during one.
 */
struct prov_client {
	CURL *curl;                /* created on the first request; NULL before */
	int64_t timeout_ms;        /* the whole exchange, connecting included */
	size_t max_body;           /* larger answers fail with "answer larger than the limit"; 0: 64 MiB */
	const volatile int *abort; /* when set and the int it points to is non-zero, a transfer under way stops */
	int insecure;              /* do not verify TLS peers (tests with throwaway certificates only) */
	long use_ssl;              /* CURLUSESSL_* for imap:// and smtp:// (STARTTLS); 0 leaves libcurl's default */
	/* Set by prov_fetch (fetch_policy.h) for one request; NULL otherwise.  Do not touch. */
	struct prov_fetch_state *fetch;
};

/* Set c up with the timeout and the answer size limit; allocates nothing.  Pair with prov_client_fini. */
void prov_client_init(struct prov_client *c, int64_t timeout_ms, size_t max_body);
/* Close c's connections and free its libcurl handle; c may be initialised again afterwards. */
void prov_client_fini(struct prov_client *c);

/*
 * One request on c, blocking until the answer, the timeout or *c->abort.
 * method is "GET", "POST", "PUT", ... (for IMAP, the command; NULL: the
 * URL's own action).  headers is NULL or a NULL-terminated list of "Name:
 * value" strings.  body (body_len bytes, may hold NULs) is sent when not
 * NULL.  userpwd is "user:password" for basic auth, or NULL.  Redirects are
 * followed (three at most) unless prov_fetch drives the request.  out is
 * always filled in (memset first): 0 when an answer came back, whatever its
 * status; -1 when none did, out->error saying why.  Free out with
 * prov_http_free either way.
 */
int prov_request(struct prov_client *c, const char *method, const char *url, const char *const *headers,
                 const char *body, size_t body_len, const char *userpwd, struct prov_http *out);
/* Free r's body (r itself is the caller's); r may be freed twice. */
void prov_http_free(struct prov_http *r);

/*
 * What an exchange means for a send, into res (the host's, as channel_send
 * got it): 2xx PARLEY_SEND_OK; no answer, 408, 429 and 5xx
 * PARLEY_SEND_RETRY with r's Retry-After; any other status
 * PARLEY_SEND_PERMANENT (the outbox dead-letters it).  For a failure,
 * res->error_code is code (the provider's own, from its error body) or
 * "http_<status>", and res->error_text is text, libcurl's error, or the
 * first 300 bytes of the body.  code and text may be NULL.  The caller fills
 * res->provider_id itself on success.
 */
void prov_classify(const struct prov_http *r, const char *code, const char *text, struct parley_send_result *res);

/*
 * prov_classify for providers that answer "later" with a 4xx and a code of
 * their own (a rate limit, a temporary outage): when transient is non-zero
 * (the caller's reading of the code), a PARLEY_SEND_PERMANENT becomes
 * PARLEY_SEND_RETRY.
 */
void prov_classify_code(const struct prov_http *r, const char *code, const char *text, int transient,
                        struct parley_send_result *res);

/* Standard base64 (with padding) of n bytes into out, which holds 4 * ((n + 2) / 3) + 1 bytes. */
void prov_base64(const unsigned char *in, size_t n, char *out);

/* URL-encode s (RFC 3986 unreserved characters kept) into a malloc'd string; NULL when out of memory. */
char *prov_urlencode(const char *s);

/* ------------------------------------------------------------- forms, queries */

/*
 * A decoded application/x-www-form-urlencoded body, as name/value pairs in
 * their order (a name may repeat).  Every string is malloc'd and owned by
 * the struct; release them with prov_form_free.
 */
struct prov_form {
	size_t n;
	char **names, **values;
	size_t *lens;      /* decoded length of each value (a %00 makes it longer than strlen) */
	size_t *name_lens; /* the same for each name */
};

/*
 * Decode len bytes of body into f: 0, or -1 when out of memory (f is then
 * empty, and needs no prov_form_free).  Any bytes decode: the values are not
 * text yet.  Check the signature, then prov_form_check, before using them.
 */
int prov_form_parse(const char *body, size_t len, struct prov_form *f);
/*
 * 0 when every name and value of f is valid UTF-8 without NUL; else
 * PARLEY_EINVAL with why naming the parameter ("parameter 'Body' is not
 * valid UTF-8"), ready to be the 400's reason.  Needs a host of ABI 1.1
 * (text_check).
 */
int prov_form_check(const struct parley_host *h, const struct prov_form *f, char *why, size_t why_len);
/* The first value of name, owned by f (valid until prov_form_free), or NULL. */
const char *prov_form_get(const struct prov_form *f, const char *name);
/* Free every string of f and empty it. */
void prov_form_free(struct prov_form *f);

/*
 * The value of name in an application/x-www-form-urlencoded query (as
 * parley_host.http_query gives it, without '?'), decoded and malloc'd, or
 * NULL when absent, out of memory, or holding a %00 (which would cut it
 * short).  The value is bytes: check it before using it as text.
 */
char *prov_query_get(const char *query, const char *name);

/* ---------------------------------------------------------------- webhooks in */

/*
 * 1 when header is "<prefix><hex HMAC-SHA256(secret, body)>" (hex in either
 * case), compared in constant time; 0 otherwise, also when secret or header
 * is NULL.  For Meta's X-Hub-Signature-256 ("sha256="), the generic
 * webhook's X-Parley-Signature and their kind.
 */
int prov_check_hmac_sha256_hex(const struct parley_host *h, const char *secret, const char *header, const char *prefix,
                               const void *body, size_t len);

/*
 * A Meta Graph webhook's body (Messenger, Instagram, WhatsApp), from its
 * POST handler: the parsed document (cJSON_Delete it) with *entries its
 * `entry` list; or NULL after answering req itself: 401 when the signature
 * is wrong (prov_meta_signed), 415 or 400 when the body is no JSON
 * (prov_json_body), 400 "not a <what> webhook" when it is not an object
 * with an entry list.
 */
cJSON *prov_meta_body(const struct parley_host *h, parley_instance *inst, parley_http_request *req,
                      const char *app_secret, const char *what, const cJSON **entries);

/*
 * Meta's webhook verification (GET ?hub.mode=subscribe&hub.verify_token=..
 * &hub.challenge=..): answers req itself, 200 echoing the challenge when
 * the token matches verify_token (constant time), else 403.
 */
void prov_meta_handshake(const struct parley_host *h, parley_http_request *req, const char *verify_token);

/*
 * A webhook's JSON body, parsed: free it with cJSON_Delete.  NULL after
 * answering req itself: 415 when the Content-Type is neither
 * application/json nor a +json type, 400 when a string is not valid UTF-8
 * or holds a NUL (naming it by its path, see parley_host.json_check) or the
 * body is not JSON.  Verify the signature on the raw body before calling it.
 */
cJSON *prov_json_body(const struct parley_host *h, parley_http_request *req, const void *body, size_t len);

/*
 * The same checks for JSON from elsewhere (a provider's API answer): the
 * parsed document, or NULL with why saying what is wrong.  Answers nothing.
 */
cJSON *prov_json_parse(const struct parley_host *h, const char *text, size_t len, char *why, size_t why_len);

/*
 * A webhook's application/x-www-form-urlencoded body into f: 0, or -1
 * after answering req itself (415 for another Content-Type, 503 when out of
 * memory).  Check the signature, then prov_form_check, before using the
 * values; free f with prov_form_free.
 */
int prov_form_body(const struct parley_host *h, parley_http_request *req, const void *body, size_t len,
                   struct prov_form *f);
/* 0 when req says its body is a form; else -1 after answering 415 itself. */
int prov_require_form(const struct parley_host *h, parley_http_request *req);

/*
 * Refuse a request whose signature does not verify: count it in the
 * channel's webhook_bad_signature_total and answer req 401 with msg, which
 * says which header is wrong and how it is made.  Nothing of the request is
 * stored.
 */
void prov_refuse_signature(const struct parley_host *h, parley_instance *inst, parley_http_request *req,
                           const char *msg);

/* What every Meta Graph channel (Messenger, Instagram, WhatsApp) is configured with; owned by the host. */
struct prov_meta_keys {
	const char *access_token; /* access_token: the Graph API token */
	const char *app_secret;   /* app_secret: the key of X-Hub-Signature-256 */
	const char *verify_token; /* verify_token: the hub.challenge handshake's */
	const char *version;      /* api_version: "v19.0" */
};
/* From instance_create: read those four keys of inst (declared in the channel's config map) into k. */
void prov_meta_keys_read(const struct parley_host *h, parley_instance *inst, struct prov_meta_keys *k);

/*
 * Meta's X-Hub-Signature-256 (Messenger, Instagram, WhatsApp): 1 when req
 * carries "sha256=<hex HMAC-SHA256(app_secret, body)>"; else 0 after
 * refusing req itself with prov_refuse_signature.
 */
int prov_meta_signed(const struct parley_host *h, parley_instance *inst, parley_http_request *req,
                     const char *app_secret, const void *body, size_t len);

/* Answer req with status and the JSON {"ok": false, "error": msg} (msg UTF-8, escaped here). */
void prov_respond_error(const struct parley_host *h, parley_http_request *req, int status, const char *msg);

/*
 * For a descriptor's check_config: 0 when config_json (as check_config got
 * it) names a non-empty `key` that authenticates the channel's webhooks, or
 * says `insecure: true`; else PARLEY_EINVAL with *errmsg (malloc'd, freed by
 * the host) saying what to set, using `what` ("the app's App Secret").  A
 * channel anyone can post to must be chosen, never a default.
 */
int prov_check_signing(const char *config_json, const char *key, const char *what, char **errmsg);

/* ------------------------------------------------------------------- media */

/*
 * Media fetching: one thread per channel instance takes jobs (a committed
 * message's gateway id, the attachment's index, and a provider-specific
 * spec such as a media id or a URL) and calls fetch() to get the bytes,
 * bounded by max_bytes; then keeps them with parley_host.attachment_put.
 * Jobs never block a webhook's answer.  A failed fetch is logged, counted in
 * media_fetch_failures_total and tried three times; a fetch() returning
 * PROV_FETCH_REFUSED (fetch_policy.h) is logged and counted in
 * media_refused_total and not tried again; a kept one counts in
 * media_fetched_total.  A message whose media is not fetched keeps the
 * provider's reference.
 *
 * fetch(arg, client, spec, out) runs on the media thread, one call at a
 * time, with the thread's own client (timeout_ms, max_bytes); it fills *out
 * (prov_request or prov_fetch does) and returns 0 for an answer,
 * PROV_FETCH_REFUSED, or -1.  The thread frees out afterwards.
 */
typedef int (*prov_fetch_fn)(void *arg, struct prov_client *client, const char *spec, struct prov_http *out);

/* The media thread of one instance; opaque. */
struct prov_media;

/*
 * Start the media thread for inst (call it from instance_start): 0 with
 * *out set, PARLEY_ENOMEM or PARLEY_EIO (no thread).  arg is fetch's and
 * must outlive prov_media_stop.
 */
int prov_media_start(struct prov_media **out, const struct parley_host *h, parley_instance *inst, prov_fetch_fn fetch,
                     void *arg, size_t max_bytes, int64_t timeout_ms);
/*
 * Queue a job (message_id, index and spec are copied); never blocks.
 * prov_batch_media queues jobs for you once a batch commits.  Out of memory
 * drops the job (the message keeps the provider's reference).
 */
void prov_media_add(struct prov_media *m, const char *message_id, size_t index, const char *spec);
/*
 * Stop the thread and free m (call it from instance_stop): waits for the
 * fetch under way; jobs not started are logged and dropped.  m may be NULL.
 */
void prov_media_stop(struct prov_media *m);

/* ------------------------------------------------------ answering after commit */

/*
 * A webhook being answered: its envelopes are built into the batch, then
 * submitted; once committed, the request gets `ok_status` with `ok_body`
 * (200 {"ok":true} unless set), and media jobs are queued for the ids the
 * messages are stored under (a redelivery's are the first copy's).  Not
 * committed: 503 so the provider retries.  More than PROV_MAX_ENVS
 * envelopes (Meta batches at most 1,000 changes) refuse the whole request.
 *
 * A channel's on_post is then: verify the signature, parse, one
 * prov_batch_new, prov_batch_envelope and the setters for each message,
 * prov_batch_finish.  The batch is used by one thread at a time; after
 * prov_batch_finish or prov_batch_fail it is gone (freed, maybe on another
 * thread) and must not be touched.
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
	/* The answer once committed: set them before prov_batch_finish. */
	int ok_status;       /* default 200 */
	const char *ok_type; /* default "application/json"; borrowed: must outlive the batch (a literal) */
	char *ok_body;       /* malloc'd, freed with the batch; NULL: {"ok":true} */
	/* Set by prov_batch_refuse: the payload is invalid, nothing is stored, 400 with this. */
	char *refused;
	/* Parts of the payload acknowledged and not stored, each logged by prov_batch_ignore. */
	size_t n_ignored;
	/*
	 * With no request (a poller's batch): called once with the commit's
	 * result instead of an answer (0, PARLEY_EINVAL when refused, or the
	 * submit's error), on a host pipeline thread or, when nothing was
	 * submitted, on the thread calling prov_batch_finish.  Must not block.
	 */
	void (*done)(void *arg, int result);
	void *done_arg;
	/*
	 * Set before prov_batch_finish to answer {"ok":true,"ids":[...]} once
	 * committed instead of ok_body: the gateway id each envelope is stored
	 * under, in order (a redelivery's are the first copy's).
	 */
	int ok_ids;
};

/*
 * A new batch for req (malloc'd; NULL when out of memory: answer 503).  req
 * may be NULL (a poller): set done to learn the commit's result.  media may
 * be NULL when the channel fetches nothing.  Needs a host of ABI 1.1.
 */
struct prov_batch *prov_batch_new(const struct parley_host *h, parley_instance *inst, parley_http_request *req,
                                  struct prov_media *media);
/*
 * A new inbound envelope of kind ("message", "status", "event") in the
 * batch, owned by the batch: set its fields, never free it.  NULL when the
 * batch is full (it is then refused) or out of memory.
 */
parley_envelope *prov_batch_envelope(struct prov_batch *b, const char *kind);
/* Fetch spec's bytes into attachment `index` of env (one of b's) once it is committed; nothing without media. */
void prov_batch_media(struct prov_batch *b, parley_envelope *env, size_t index, const char *spec);
/*
 * Submit and answer after commit; the batch is consumed.  With no envelopes
 * (a payload for another account, say) the request is answered at once,
 * and logged as a warning unless prov_batch_ignore said why.  A refused
 * batch (prov_batch_refuse, or an envelope whose setter failed) stores
 * nothing and answers 400 with the reason (for a setter, the envelope's
 * first refusal, "message N: " in front when the batch has several).  The answer may come on another
 * thread after this returns.
 */
void prov_batch_finish(struct prov_batch *b);
/* Drop the batch (its envelopes are freed, nothing is stored) and answer req status with msg.  Not for pollers. */
void prov_batch_fail(struct prov_batch *b, int status, const char *msg);
/*
 * Mark the payload invalid (printf-style reason naming the field): the
 * batch then stores nothing and prov_batch_finish answers 400 with the
 * first reason given (a poller's done() gets PARLEY_EINVAL).  Go on or
 * stop parsing as you like; further reasons are dropped.
 */
void prov_batch_refuse(struct prov_batch *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Acknowledge part of the payload without storing it (another account's
 * event, our own echo, a group message on a channel without groups): logs
 * the printf-style reason at INFO with the channel's name, so no webhook is
 * answered 2xx with nothing stored and nothing said.
 */
void prov_batch_ignore(struct prov_batch *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------ envelope fields */

/*
 * Set a structured field (attachments, meta, labels, ...) from a cJSON
 * value, which is consumed (deleted) whatever happens.  Returns the
 * setter's result; a failure is also remembered by the envelope, so its
 * submission is refused with the reason.
 */
int prov_set_json(const struct parley_host *h, parley_envelope *env, const char *field, cJSON *v);

/*
 * Set a string field to printf-style text, never cut short (an id or an
 * address that would be too long is refused by the host instead); returns
 * as prov_set_json (PARLEY_ENOMEM when the text cannot be built).
 */
int prov_set_fmt(const struct parley_host *h, parley_envelope *env, const char *field, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Set a string field from the JSON string member `member` of obj: 0 when absent or not a string; as prov_set_json. */
int prov_set_from(const struct parley_host *h, parley_envelope *env, const char *field, const cJSON *obj,
                  const char *member);

/*
 * Unix seconds (a JSON number, or a string of one) times scale (1 for
 * seconds, 0.001 for milliseconds) as RFC 3339 UTC with milliseconds into
 * out (at least 32 bytes): 0, or -1 with out empty when v is no number, not
 * positive, or past the year 9999.
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
 * and 32 hex digits of a keyed hash of v's JSON text into out (outlen
 * bytes, cut to fit), so a redelivery of the same content is stored once.
 */
void prov_content_id(const struct parley_host *h, const char *prefix, const cJSON *v, char *out, size_t outlen);

/*
 * 1 when s is a WhatsApp business-scoped user id (BSUID) as Meta documents
 * it: a two-letter country code, '.', optionally "ENT." (a parent BSUID),
 * then 1-128 letters and digits (US.13491208655302741918); else 0.
 */
int prov_whatsapp_bsuid(const char *s);

/* 1 when s is an RFC 3339 time: 2026-11-22T10:11:12Z, with optional fraction and a Z or +hh:mm offset; else 0. */
int prov_rfc3339_valid(const char *s);

/*
 * s as a decimal integer in [min, max] (leading spaces allowed, nothing
 * after): 0 with *out set, -1 otherwise (also for NULL).  atoll() and atoi()
 * are undefined on overflow, so text from a provider goes through this.
 */
int prov_parse_ll(const char *s, long long min, long long max, long long *out);

/*
 * An integer member `name` of obj in [min, max] (numbers beyond 2^53 are
 * not exact in JSON parsers, so a bound of at most that is wise): 0 with
 * *out set; -1 when absent or not such an integer.
 */
int prov_json_int(const cJSON *obj, const char *name, long long min, long long max, long long *out);

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_PROVIDER_H */
