/*
 * parley.h: the one header a Parley plugin includes.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * PARLEY_PLUGIN_ENTRY_SYMBOL ("parley_plugin_entry"), a function returning a
 * const descriptor (struct parley_plugin).  The host dlopens the object with
 * RTLD_NOW | RTLD_LOCAL, calls the entry with the ABI it speaks, checks the
 * descriptor's magic, ABI major and struct_size, and refuses the object with
 * a message naming the file and both ABI versions when they do not match.
 *
 * The host never reads past the descriptor's struct_size, and the plugin
 * never reads past the host table's struct_size: both structs only grow at
 * the end, and a field is optional for the reader when it lies beyond the
 * size the writer declared.  Any incompatible change bumps the ABI major.
 * A plugin built for a newer ABI minor than the host's therefore loads: the
 * host ignores its descriptor's slots past the host's own, its host table
 * lacks the newer functions (PARLEY_HOST_HAS tells the plugin), and `parley
 * plugins` and the gateway's log say so in a notice naming the last slot of
 * each the host knows.
 *
 * The provider helper library (parley/provider.h, libparley-plugin) is built
 * on this header and linked by plugins that want it; it is no part of the
 * ABI between host and plugin.
 *
 * Plugins never call symbols of the executable: everything the host offers
 * is in the struct parley_host table handed to the plugin.  Plugins keep no
 * mutable globals: per-plugin state comes back from init(), per-instance
 * state from instance_create().
 *
 * Threads: unless a function says otherwise, host functions may be called
 * from any thread, and plugin callbacks may be called from any host thread,
 * but never concurrently for the same instance unless stated.
 *
 * Errors: functions that can fail return int, 0 on success or a negative
 * PARLEY_E* code; parley_host.strerror() turns a code into text.
 */
#ifndef PARLEY_PARLEY_H
#define PARLEY_PARLEY_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- ABI */

/* "PRLY" read as a little-endian 32-bit number. */
#define PARLEY_PLUGIN_MAGIC        0x594c5250u
#define PARLEY_ABI_MAJOR           1
#define PARLEY_ABI_MINOR           3
#define PARLEY_PLUGIN_ENTRY_SYMBOL "parley_plugin_entry"

#if defined(__GNUC__)
#define PARLEY_EXPORT __attribute__((visibility("default")))
#else
#define PARLEY_EXPORT
#endif

/* Error codes.  0 is success; every error is negative. */
enum parley_error {
	PARLEY_OK = 0,
	PARLEY_EINVAL = -1,     /* invalid argument or payload */
	PARLEY_ENOMEM = -2,     /* out of memory */
	PARLEY_ENOENT = -3,     /* no such object (key, message, channel) */
	PARLEY_EEXIST = -4,     /* already exists */
	PARLEY_EDUPLICATE = -5, /* (channel, external_id) already stored */
	PARLEY_EAUTH = -6,      /* bad or missing signature */
	PARLEY_EIO = -7,        /* storage or network failure */
	PARLEY_ETIMEDOUT = -8,  /* gave up waiting */
	PARLEY_ECLOSED = -9,    /* gateway is shutting down */
	PARLEY_ENOTSUP = -10,   /* not supported by this plugin */
	PARLEY_ETOOBIG = -11,   /* over a size limit */
	PARLEY_EBUSY = -12,     /* try again later */
	PARLEY_EINTERNAL = -13, /* a bug: please report it */
};

/* What a plugin provides.  A plugin has exactly one kind. */
enum parley_plugin_kind {
	PARLEY_KIND_CHANNEL = 1, /* inbound and/or outbound for one provider */
	PARLEY_KIND_STEP = 2,    /* a pipeline processor */
	PARLEY_KIND_ROUTER = 3,  /* decides team, agent, priority, bot */
	PARLEY_KIND_STORE = 4,   /* persistence */
	PARLEY_KIND_BUS = 5,     /* ABI 1.2: a durable bus beside the nng PUB socket (NATS JetStream) */
};

/* Log levels for parley_host.log(). */
enum parley_log_level {
	PARLEY_LOG_ERROR = 0,
	PARLEY_LOG_WARN = 1,
	PARLEY_LOG_INFO = 2,
	PARLEY_LOG_DEBUG = 3,
};

/* ------------------------------------------------------------- config */

/*
 * A plugin declares the keys its instance config accepts.  The host checks
 * a configuration against this map before any plugin code runs (`parley
 * check` does the same): unknown keys, missing required keys and values of
 * the wrong type are reported as FILE:LINE:COL errors.  Values given as
 * ${ENV} or ${ENV:-default} are substituted by the host.
 */
enum parley_config_type {
	PARLEY_CFG_STRING = 1,
	PARLEY_CFG_INT = 2,      /* a decimal integer */
	PARLEY_CFG_BOOL = 3,     /* true/false, yes/no, on/off */
	PARLEY_CFG_SIZE = 4,     /* bytes: 512, 64k, 1MiB, 2m */
	PARLEY_CFG_DURATION = 5, /* 250ms, 5s, 10m, 2h, 7d; a bare number is seconds */
	PARLEY_CFG_LIST = 6,     /* a YAML list of strings */
	PARLEY_CFG_MAP = 7,      /* any YAML mapping, read with config_json() */
	PARLEY_CFG_ANY = 8,      /* ABI 1.3: a scalar, list or mapping (text or {ko, en}), read with config_json() */
};

#define PARLEY_CFG_REQUIRED 0x1u /* the key must be present */
#define PARLEY_CFG_SECRET   0x2u /* never logged or printed */

struct parley_config_key {
	const char *name;          /* key name, e.g. "secret" */
	int type;                  /* enum parley_config_type */
	const char *default_value; /* textual default, or NULL for none */
	unsigned flags;            /* PARLEY_CFG_* flags */
	const char *help;          /* one sentence for docs and `parley plugins` */
};

/* ------------------------------------------------------ opaque handles */

/* One configured instance (a channel, a step in a pipeline, a store). */
typedef struct parley_instance parley_instance;
/* One envelope being built or processed.  See the envelope functions. */
typedef struct parley_envelope parley_envelope;
/* One HTTP request routed to a plugin. */
typedef struct parley_http_request parley_http_request;
/* A WebSocket accepted with parley_host.ws_accept() (ABI 1.3). */
typedef struct parley_ws parley_ws;
/* A timer started with parley_host.timer_start(). */
typedef struct parley_timer parley_timer;
/* The host function table, defined below. */
struct parley_host;

/*
 * Completion of parley_host.submit(): called once, on a host pipeline
 * thread, with 0 when every envelope of the submission is committed to the
 * store (or was a duplicate of a committed one), or a negative error
 * (PARLEY_EIO, PARLEY_ECLOSED, PARLEY_ETIMEDOUT) when the caller must not
 * acknowledge the provider.  Must not block.
 */
typedef void (*parley_submit_cb)(void *arg, int result);

/*
 * Completion of parley_host.submit_ids() (ABI 1.1): as parley_submit_cb,
 * and on result 0 ids[i] is the gateway id under which envelope i is
 * stored: its own id, or the id of the message stored earlier when it was
 * a duplicate.  ids and its strings are valid during the call only; n is
 * the number of envelopes submitted.  On an error ids is NULL.
 */
typedef void (*parley_submit_ids_cb)(void *arg, int result, const char *const *ids, size_t n);

/*
 * An HTTP route handler, called on a host HTTP thread.  The handler must
 * eventually call parley_host.http_respond() exactly once for req, from any
 * thread, possibly after returning (for example from a submit completion).
 */
typedef void (*parley_http_cb)(void *instance_data, parley_http_request *req);

/*
 * A WebSocket's callbacks (ABI 1.3), given to parley_host.ws_accept().
 * Both run on the host's WebSocket thread, one call at a time for all
 * sockets, and must not block (submit() and ws_send() do not).  The host
 * reads nothing past struct_size.
 */
struct parley_ws_callbacks {
	uint32_t struct_size; /* sizeof(struct parley_ws_callbacks) */
	/* The longest text message accepted, in bytes; a longer one closes the socket with 1009.  0: 64 KiB. */
	size_t max_message;
	/*
	 * One whole text message from the client (reassembled, valid UTF-8;
	 * text[len] is NUL).  text is valid during the call only.  Binary
	 * messages close the socket with 1003.
	 */
	void (*on_message)(void *arg, parley_ws *ws, const char *text, size_t len);
	/*
	 * The socket is closed (either side closed it, it broke, or the gateway
	 * stops): called exactly once per accepted socket, also when the client
	 * left before the switch completed.  ws must not be used once it returns.
	 */
	void (*on_close)(void *arg, parley_ws *ws);
};

/* A timer callback, called on a host timer thread. */
typedef void (*parley_timer_cb)(void *arg);

/* What a channel's send() reports back to the outbox. */
enum parley_send_outcome {
	PARLEY_SEND_OK = 0,        /* accepted by the provider */
	PARLEY_SEND_RETRY = 1,     /* transient: retry later (429, 5xx, timeout) */
	PARLEY_SEND_PERMANENT = 2, /* will never succeed: dead-letter it */
};

struct parley_send_result {
	uint32_t struct_size;   /* set by the host */
	int outcome;            /* enum parley_send_outcome */
	char provider_id[128];  /* the provider's message id, if any */
	char error_code[64];    /* the provider's error code, if any */
	char error_text[512];   /* the provider's error text, if any */
	int64_t retry_after_ms; /* the provider's Retry-After, or 0 */
};

/* ---------------------------------------------------------- the store */

/*
 * The store plugin's operations.  They may be called from several host
 * threads at once: the store serializes internally as it needs.  Strings
 * returned through char ** out-params are allocated by the store with
 * malloc() and freed by the host with free().
 */
struct parley_store_ops {
	uint32_t struct_size;

	/*
	 * Commit n envelopes in one transaction (group commit).  results[i]
	 * receives 0 when envelope i was stored, PARLEY_EDUPLICATE when
	 * (channel, external_id) was already stored.  Returns 0 when the
	 * transaction is durable, or a negative error when nothing was stored.
	 * Outbound envelopes with status "queued" enter the outbox.  In the
	 * same transaction, a stored inbound message with contact_id and
	 * conversation_id creates the contact (named from meta.contact_name),
	 * links its `from` URN as an identity, and creates or reopens the
	 * conversation; an outbound one records the conversation's first
	 * response.
	 */
	int (*commit)(void *store, parley_envelope *const *envs, size_t n, int *results);

	/*
	 * Carry out a store op named like a control op ("messages.list",
	 * "conversation.get", "contacts.merge", ...) or one the pipeline's
	 * steps use ("contact.lookup", "conversation.current").  request_json
	 * is the request object; *reply_json receives the JSON object to merge
	 * into the reply (or, on PARLEY_ENOENT / PARLEY_EINVAL, a message).
	 * PARLEY_ENOTSUP when the store does not know the op.  Ops that write
	 * commit their own transaction.
	 */
	int (*query)(void *store, const char *op, const char *request_json, char **reply_json);

	/* Per-namespace key-value state.  *val is malloc'd; NUL-terminated. */
	int (*kv_get)(void *store, const char *ns, const char *key, char **val, size_t *len);
	int (*kv_set)(void *store, const char *ns, const char *key, const void *val, size_t len);

	/*
	 * Claim up to max outbound messages due at now_ms (queued or waiting
	 * for a retry), marking them "sending".  *json_array receives a JSON
	 * array of envelope objects, each with "attempts".  A claim is released
	 * by outbox_update().  A claim not released within the store's claim
	 * timeout (its node died during the send) is claimable again, so a
	 * queued message is sent by another node; stores shared by nodes claim
	 * with row locks that skip rows another node is claiming.
	 */
	int (*outbox_claim)(void *store, int64_t now_ms, size_t max, char **json_array);

	/*
	 * Record the result of one send attempt.  status is "sent", "retry"
	 * (with next_attempt_ms) or "failed"; provider_id and error may be
	 * NULL.
	 */
	int (*outbox_update)(void *store, const char *id, const char *status, const char *provider_id,
	                     const char *error, int64_t next_attempt_ms);

	/* 0 when the store is usable (for /healthz). */
	int (*ping)(void *store);

	/*
	 * Record a stored attachment of message id: merge the JSON object
	 * `fields` (ref, sha256, size, content_type, ...) into its
	 * attachments[index].  PARLEY_ENOENT when there is no such message or
	 * attachment.
	 */
	int (*attachment_set)(void *store, const char *message_id, size_t index, const char *fields);

	/*
	 * ABI 1.2: the typed contract (store.h), or NULL.  With it, commit and
	 * the conversation ops of query are not called: the gateway's
	 * conversation core decides and calls the typed operations; query is
	 * still called for the read ops listed in store.h.
	 */
	const struct parley_store_typed_ops *typed;
};

/* ------------------------------------------------------------ the bus */

/*
 * A bus plugin's operations (ABI 1.2).  Every envelope the store commits
 * and every event the gateway publishes on its nng PUB socket is also
 * handed to each configured bus, after the commit, by one host relay
 * thread per bus.  The relay reads envelopes back from the store when a
 * publish fails, so a bus misses nothing (at least once; msg_id lets the
 * bus drop a republished copy).
 */
struct parley_bus_ops {
	uint32_t struct_size;
	/*
	 * Publish one message under topic ("message.inbound",
	 * "conversation.opened", ...) with msg_id (the envelope id, or an
	 * event id) for the bus's deduplication.  json is borrowed for the
	 * call.  Called on the relay thread, one call at a time per instance;
	 * may block up to the plugin's own timeout.  0 when the bus holds the
	 * message durably; a negative error when not (the host retries).
	 */
	int (*publish)(void *bus, const char *topic, const char *msg_id, const char *json, size_t len);
	/* 0 when the bus is reachable (for /healthz); optional. */
	int (*ping)(void *bus);
};

/* ------------------------------------------------- the plugin descriptor */

struct parley_plugin {
	uint32_t magic;       /* PARLEY_PLUGIN_MAGIC */
	uint16_t abi_major;   /* PARLEY_ABI_MAJOR the plugin was built with */
	uint16_t abi_minor;   /* PARLEY_ABI_MINOR the plugin was built with */
	uint32_t struct_size; /* sizeof(struct parley_plugin) as built */
	int kind;             /* enum parley_plugin_kind */
	const char *name;     /* unique per kind: "webhook", "sqlite", "dedupe" */
	const char *version;  /* the plugin's own version, e.g. "1.0.0" */
	const char *description;
	/* Accepted instance config keys, ended by an entry with name NULL. */
	const struct parley_config_key *config;

	/*
	 * Plugin lifecycle: once per loaded object, before any instance, on
	 * the main thread.  Optional.  On failure set *errmsg (malloc'd,
	 * freed by the host) and return a negative error.
	 */
	int (*init)(const struct parley_host *host, void **plugin_data, char **errmsg);
	void (*fini)(void *plugin_data);

	/*
	 * Instance lifecycle: once per configured channel, step or store, on
	 * the main thread.  create() reads config and allocates state; it
	 * must not start threads or register routes.  start() may register
	 * HTTP routes and timers and start threads.  stop() must stop every
	 * thread and timer the instance started and return only then; after
	 * stop() no callback of the instance runs.  destroy() frees state.
	 * On create/start failure set *errmsg (malloc'd, freed by the host).
	 */
	int (*instance_create)(const struct parley_host *host, parley_instance *inst, void *plugin_data, void **data,
	                       char **errmsg);
	int (*instance_start)(void *data, char **errmsg);
	void (*instance_stop)(void *data);
	void (*instance_destroy)(void *data);

	/*
	 * channel: send one outbound envelope (called on the outbox thread,
	 * may block for the provider's answer, one call at a time per
	 * instance).  NULL for inbound-only channel types.  The envelope is
	 * owned by the host and valid during the call.
	 */
	int (*channel_send)(void *data, const parley_envelope *env, struct parley_send_result *res);

	/*
	 * step and router: process one envelope on the pipeline's prepare
	 * thread (one envelope at a time; the host owns env).
	 * Return 0 to pass it on, PARLEY_EDUPLICATE to acknowledge it without
	 * storing it, or another negative error to fail its submission.
	 */
	int (*process)(void *data, parley_envelope *env);

	/*
	 * step and router, optional: told after the commit of an envelope
	 * this instance passed, with 0 (stored), PARLEY_EDUPLICATE (already
	 * stored) or an error (not stored: the provider will retry).  A dedupe
	 * cache remembers keys only here, so a failed commit never makes a
	 * retry look like a duplicate.  Called on the pipeline's post thread,
	 * which may run while process() runs on the prepare thread for later
	 * envelopes: state both touch needs a lock.  Calls of each of the two
	 * are serial.  The envelope is owned by the host, valid for the call.
	 */
	void (*after_commit)(void *data, const parley_envelope *env, int result);

	/* store: the operations above; the instance data is their `store`. */
	const struct parley_store_ops *store;

	/*
	 * Optional, and beyond PARLEY_PLUGIN_MIN_SIZE_V1 (the host reads it only
	 * when struct_size covers it): check an instance config beyond its
	 * config map (patterns compile, names resolve) without side effects.
	 * `parley check` and the start call it before instance_create, on the
	 * main thread.  config_json is the config as a JSON object (scalars as
	 * strings).  On a problem return a negative error and set *errmsg
	 * (malloc'd, freed by the host); the host reports it at the config's
	 * line and column.
	 */
	int (*check_config)(const struct parley_host *host, const char *config_json, char **errmsg);

	/* ABI 1.2, kind bus: its operations; the instance data is their `bus`. */
	const struct parley_bus_ops *bus;

	/*
	 * ABI 1.3, router, optional: the queue offers a conversation waiting in
	 * its team's queue (conversation_json: the conversation as
	 * conversation.get gives it, with a team and no assignee).  Write the
	 * agent who takes it now into agent (cap bytes, NUL-terminated) and
	 * return 0, or return PARLEY_ENOENT when none of the team's agents can
	 * (or the team is not this router's).  The host then assigns it at once,
	 * before its next offer.  Called on the queue's thread, one offer at a
	 * time in the gateway, in queue order (priority, then waiting time);
	 * may read the store and the instance's state.
	 */
	int (*offer)(void *data, const char *conversation_json, char *agent, size_t cap);
};

/* The smallest descriptor ABI 1 accepts: everything up to `store`. */
#define PARLEY_PLUGIN_MIN_SIZE_V1 (offsetof(struct parley_plugin, store) + sizeof(void *))

/*
 * The entry symbol.  host_abi is (major << 16 | minor) of the host; return
 * the descriptor, or NULL to refuse a host whose ABI the plugin cannot
 * speak.  The descriptor must stay valid until the object is unloaded.
 */
typedef const struct parley_plugin *(*parley_plugin_entry_fn)(uint32_t host_abi);

/*
 * The fields every descriptor starts with, for a designated initializer:
 *   static const struct parley_plugin desc = { PARLEY_PLUGIN_HEADER, .kind = ... };
 */
#define PARLEY_PLUGIN_HEADER                                                                                           \
	.magic = PARLEY_PLUGIN_MAGIC, .abi_major = PARLEY_ABI_MAJOR, .abi_minor = PARLEY_ABI_MINOR,                    \
	.struct_size = sizeof(struct parley_plugin)

/* Defines the entry symbol for a descriptor named `desc`. */
#define PARLEY_PLUGIN_DEFINE(desc)                                                                                     \
	PARLEY_EXPORT const struct parley_plugin *parley_plugin_entry(uint32_t host_abi);                              \
	PARLEY_EXPORT const struct parley_plugin *parley_plugin_entry(uint32_t host_abi)                               \
	{                                                                                                              \
		return ((host_abi >> 16) == PARLEY_ABI_MAJOR) ? &(desc) : NULL;                                        \
	}

/* ---------------------------------------------------- the host table */

/*
 * Functions the host offers.  The table is const, lives as long as the
 * process, and only grows at the end: check struct_size before calling a
 * function added after ABI 1.0 (PARLEY_HOST_HAS(host, field)).
 */
struct parley_host {
	uint32_t struct_size;
	uint32_t abi; /* (major << 16 | minor) of the host */

	/* Text for an error code.  Static storage. */
	const char *(*strerror)(int err);

	/*
	 * Log a line tagged with the instance's name (inst may be NULL).
	 * printf-style; secrets must not be passed.
	 */
	void (*log)(parley_instance *inst, int level, const char *fmt, ...)
#if defined(__GNUC__)
	        __attribute__((format(printf, 3, 4)))
#endif
	        ;

	/* The instance's configured name ("hooks") and its plugin's name. */
	const char *(*instance_name)(parley_instance *inst);

	/*
	 * Typed config access.  Values were validated against the plugin's
	 * config map before instance_create(); a key absent from the config
	 * yields its declared default.  Returned strings are owned by the
	 * host and valid until the instance is destroyed; NULL when absent
	 * with no default.  The int/bool/size/duration getters return
	 * PARLEY_ENOENT when the key is absent with no default.
	 */
	const char *(*config_str)(parley_instance *inst, const char *key);
	int (*config_int)(parley_instance *inst, const char *key, int64_t *out);
	int (*config_bool)(parley_instance *inst, const char *key, int *out);
	int (*config_size)(parley_instance *inst, const char *key, uint64_t *out);
	int (*config_duration_ms)(parley_instance *inst, const char *key, int64_t *out);
	/* A list or map key as JSON text, malloc'd, freed by the caller. */
	char *(*config_json)(parley_instance *inst, const char *key);
	/*
	 * A gateway-wide setting: "http.public_url", "data_dir" (absolute or
	 * relative to the working directory).  Owned by the host; NULL when
	 * unset.
	 */
	const char *(*setting)(parley_instance *inst, const char *name);

	/*
	 * Envelopes.  envelope_new() returns an envelope owned by the caller
	 * with v, id, kind, received_at and (for a channel instance) channel
	 * and channel_type filled in; free it with envelope_free() unless it
	 * is handed to submit().  Setters copy their arguments.  Field names
	 * are those of envelope v1.  set_json() takes a JSON text for
	 * structured fields (attachments, meta, labels, route).  A setter
	 * checks what sdk/envelope-v1.schema.json says and refuses
	 * (PARLEY_EINVAL, with a log line naming the instance, the field and
	 * why) an unknown field, a from or to that is not a URN, a time that
	 * is not RFC 3339, a kind, direction or status outside its list, text
	 * that is not UTF-8 or JSON whose strings are not, and
	 * (PARLEY_ETOOBIG) an id or address
	 * (id, external_id, from, to, contact_id, conversation_id) over 512
	 * bytes: nothing is ever cut short.  The envelope remembers its first
	 * refusal (envelope_error()) and submit() refuses an envelope that has
	 * one, so a field that failed to be set can never be acknowledged as
	 * stored.  get_str() returns a pointer valid until the field changes
	 * or the envelope is freed, or NULL.  to_json() returns malloc'd text
	 * freed by the caller.
	 */
	parley_envelope *(*envelope_new)(parley_instance *inst, const char *kind, const char *direction);
	void (*envelope_free)(parley_envelope *env);
	int (*envelope_set_str)(parley_envelope *env, const char *field, const char *value);
	int (*envelope_set_json)(parley_envelope *env, const char *field, const char *json);
	const char *(*envelope_get_str)(const parley_envelope *env, const char *field);
	char *(*envelope_get_json)(const parley_envelope *env, const char *field);
	char *(*envelope_to_json)(const parley_envelope *env);

	/*
	 * Hand n envelopes to the pipeline.  On return 0 the host owns the
	 * envelopes (even if the array is on the caller's stack) and calls
	 * done(arg, result) exactly once when all are committed or failed.
	 * On a negative return the caller still owns them and done is never
	 * called.
	 */
	int (*submit)(parley_instance *inst, parley_envelope **envs, size_t n, parley_submit_cb done, void *arg);

	/*
	 * HTTP.  http_route() registers a handler for METHOD on
	 * /webhooks/<instance name><subpath> (subpath "" or "/..."); call it
	 * from instance_start().  The request accessors return pointers owned
	 * by the host, valid until http_respond().  http_respond() sends the
	 * status and body (copied) and releases the request; it must be
	 * called exactly once per request.
	 */
	int (*http_route)(parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb);
	const char *(*http_method)(parley_http_request *req);
	const char *(*http_path)(parley_http_request *req);  /* path without query */
	const char *(*http_query)(parley_http_request *req); /* raw query or "" */
	const char *(*http_header)(parley_http_request *req, const char *name);
	const void *(*http_body)(parley_http_request *req, size_t *len);
	void (*http_respond)(parley_http_request *req, int status, const char *content_type, const char *body,
	                     size_t len);

	/*
	 * Timers: cb(arg) after delay_ms, then every period_ms if non-zero.
	 * timer_stop() waits until a running callback returns; call it from
	 * instance_stop() for every timer started.
	 */
	int (*timer_start)(parley_instance *inst, int64_t delay_ms, int64_t period_ms, parley_timer_cb cb, void *arg,
	                   parley_timer **out);
	void (*timer_stop)(parley_timer *t);

	/*
	 * Per-instance key-value state kept in the store (for example a
	 * poll offset).  kv_get's *val is malloc'd, NUL-terminated, freed by
	 * the caller; PARLEY_ENOENT when absent.
	 */
	int (*kv_get)(parley_instance *inst, const char *key, char **val, size_t *len);
	int (*kv_set)(parley_instance *inst, const char *key, const void *val, size_t len);

	/* Add delta to the counter parley_<name>{channel="<instance>"}. */
	void (*metric_add)(parley_instance *inst, const char *name, int64_t delta);

	/* Crypto helpers.  out must hold 32 (sha256) or 20 (sha1) bytes. */
	int (*hmac_sha256)(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[32]);
	int (*hmac_sha1)(const void *key, size_t keylen, const void *data, size_t len, unsigned char out[20]);
	/* 1 when equal; time depends only on n. */
	int (*ct_equal)(const void *a, const void *b, size_t n);
	/* Lower-case hex of n bytes into out (2n+1 bytes). */
	void (*hex_encode)(const unsigned char *in, size_t n, char *out);

	/*
	 * Keep len bytes as attachment `index` of the committed message
	 * `message_id` (its gateway id): the bytes go to the content-addressed
	 * attachment store under data_dir (attachments/<sha256[0:2]>/<sha256>),
	 * and the message's envelope gets ref, sha256, size and content_type in
	 * attachments[index].  sha256_hex (65 bytes) receives the digest; may
	 * be NULL.  message_id may be NULL: then only the bytes are kept, and
	 * the caller names them in an envelope it has not submitted yet (ref
	 * "attachments/<sha256[0:2]>/<sha256>").  Blocks for the file write
	 * and the store update: call it from a plugin thread, never from an
	 * HTTP handler or a submit completion.
	 */
	int (*attachment_put)(parley_instance *inst, const char *message_id, size_t index, const void *data, size_t len,
	                      const char *content_type, char *sha256_hex);

	/*
	 * Publish an event to subscribers: TOPIC SP JSON on the publish socket
	 * (at-most-once, never blocks).  json is copied.
	 */
	void (*publish)(parley_instance *inst, const char *topic, const char *json);

	/*
	 * Call the store op `op` (see parley_store_ops.query): for steps that
	 * look up contacts and conversations.  *reply is malloc'd, freed by
	 * the caller.  Reads are cheap; ops that write cost a transaction.
	 */
	int (*store_query)(parley_instance *inst, const char *op, const char *request_json, char **reply);

	/* A new time-sortable id (26-character ULID) for a contact, conversation, note. */
	void (*new_id)(char out[32]);

	/*
	 * A number that changes whenever contacts, conversations or plugin
	 * state are changed other than by the pipeline (merges, resolutions,
	 * assignments, wake-ups of snoozed conversations, state.set).  A step
	 * that caches what the store said drops its cache when this number
	 * moves.
	 */
	uint64_t (*epoch)(parley_instance *inst);

	/* ---- ABI 1.1: check PARLEY_HOST_HAS() before calling these. */

	/*
	 * The first setter refusal of env, as text naming the field and why
	 * ("field 'text' is not valid UTF-8"), or NULL.  Owned by the envelope.
	 */
	const char *(*envelope_error)(const parley_envelope *env);

	/*
	 * Check a JSON payload before parsing it: 0 when every string is valid
	 * UTF-8 without NUL (cJSON and most parsers cut "\u0000" short
	 * silently); PARLEY_EINVAL with why (a NUL-terminated reason of at most
	 * why_len bytes) naming the string by its path, e.g.
	 * "entry[0].changes[0].value.messages[0].text.body is not valid UTF-8",
	 * or saying the text is not JSON.  Answer the provider 400 with it.
	 */
	int (*json_check)(const char *text, size_t len, char *why, size_t why_len);

	/*
	 * The same for one decoded value of len bytes (a form field): 0, or
	 * PARLEY_EINVAL with why naming it by `name`.
	 */
	int (*text_check)(const char *name, const char *s, size_t len, char *why, size_t why_len);

	/*
	 * submit() whose completion also learns the id each envelope is
	 * stored under (see parley_submit_ids_cb): a channel that tells its
	 * sender the gateway ids answers a redelivery with the stored ids,
	 * never with ids that are not in the store.  Ownership as submit().
	 */
	int (*submit_ids)(parley_instance *inst, parley_envelope **envs, size_t n, parley_submit_ids_cb done,
	                  void *arg);

	/* ---- ABI 1.2 */

	/*
	 * Hold this instance's lease `name` for ttl_ms from now, renewing it
	 * when this node holds it: for work that one gateway node of a cluster
	 * does at a time, such as polling a mailbox.  0 when this node holds
	 * it now; PARLEY_EBUSY when another node does (do not do the work;
	 * ask again later); another error when the store cannot tell (do not
	 * do the work either).  A node that stops renewing loses the lease
	 * when ttl_ms has passed.  Call it before each round of the work, at
	 * intervals well under ttl_ms.  Blocks for a store round trip: call it
	 * from a plugin thread.
	 */
	int (*lease)(parley_instance *inst, const char *name, int64_t ttl_ms);

	/*
	 * Add delta to this instance's counter `name` in the store and give its
	 * new value, atomically for every node sharing the store (a round-robin
	 * position all nodes advance).  PARLEY_ENOTSUP when the store keeps no
	 * counters (keep the position in memory then).  Blocks for a store
	 * write.
	 */
	int (*counter_add)(parley_instance *inst, const char *name, int64_t delta, int64_t *value);

	/*
	 * Give up this node's lease `name` (see lease()) so another node takes
	 * the work over at once instead of when the lease lapses: call it when
	 * the instance stops doing the work.  Releasing a lease this node does
	 * not hold changes nothing.  Blocks for a store round trip.
	 */
	int (*lease_release)(parley_instance *inst, const char *name);

	/* ---- ABI 1.3: web sockets and public routes */

	/*
	 * As http_route(), on the public path /<channel type>/<instance
	 * name><subpath> (the webchat channel `site` serves
	 * /webchat/site/widget.js), for what browsers fetch rather than what
	 * providers post.  Call it from instance_start().
	 */
	int (*http_route_public)(parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb);

	/*
	 * As http_respond(), with more response headers: headers is NULL or a
	 * NULL-ended list of name, value pairs ({"Access-Control-Allow-Origin",
	 * "https://shop.example", NULL}), copied.
	 */
	void (*http_respond_with)(parley_http_request *req, int status, const char *content_type,
	                          const char *const *headers, const char *body, size_t len);

	/*
	 * Answer req, a GET asking for a WebSocket (RFC 6455), by switching
	 * protocols; req must not be used after the call, as after
	 * http_respond().  Check the request first (Origin, say) and answer it
	 * yourself to refuse it.  A request that is no valid WebSocket
	 * handshake is answered 400 (426 for another protocol version) and NULL
	 * is returned, and cb is not called.  Otherwise returns the socket,
	 * valid until cb->on_close returns; cb->on_message and cb->on_close run
	 * only after ws_accept() has returned.  cb is copied; arg is the
	 * callbacks' and must stay valid until on_close.
	 */
	parley_ws *(*ws_accept)(parley_http_request *req, const struct parley_ws_callbacks *cb, void *arg);

	/*
	 * Send one text message (len bytes of UTF-8, copied), from any thread
	 * (also from on_message).  0; PARLEY_ECLOSED once the socket is closing
	 * or closed; PARLEY_EBUSY when more than 1 MiB waits unsent (a client
	 * that does not read: close it); PARLEY_EINVAL when text is not UTF-8.
	 * Never calls a callback.
	 */
	int (*ws_send)(parley_ws *ws, const char *text, size_t len);

	/*
	 * Start the close handshake with code (1000 normal, 1008 policy, 4000+
	 * your own) and reason (UTF-8, at most 123 bytes, may be NULL), from any
	 * thread.  on_close follows, on the WebSocket thread, when the client
	 * answers or after a few seconds.  Closing a closing socket does nothing.
	 */
	void (*ws_close)(parley_ws *ws, int code, const char *reason);

	/* ---- ABI 1.3: bots */

	/*
	 * Run op `op` of the control API (README, "Control API") with
	 * request_json, as the bot "bot:<instance name>": the ops a bot needs
	 * and no others (conversation.get, messages.list, contact.get,
	 * queue.get; conversation.claim, .handoff; and, in a conversation the
	 * bot owns, message.send, conversation.note, conversation.set,
	 * contact.update).  A conversation is the bot's from its
	 * conversation.claim until a handoff (or an agent's reply or
	 * assignment); after a handoff the bot cannot claim it again until an
	 * agent hands it back.  0 with *reply_json the op's reply
	 * ({"ok":true,...}, malloc'd), or a negative error with *reply_json
	 * the refusal ({"ok":false,"error":{...}}).  Blocks for the op (a reply
	 * waits for its commit): call it from a thread of the plugin's own,
	 * never from process(), after_commit() or a completion.
	 */
	int (*op)(parley_instance *inst, const char *op, const char *request_json, char **reply_json);

	/*
	 * Say whether the channel works (up 1) or not (up 0, why: what fails,
	 * "IMAP login refused"), from any thread; the last word holds until the
	 * next.  A channel that is down is named in /healthz, which then
	 * answers 503; /ready (can the gateway take webhooks) does not look at
	 * it.  Say it when it changes, not at every try.
	 */
	void (*health)(parley_instance *inst, int up, const char *why);
};

#define PARLEY_HOST_HAS(host, field)                                                                                   \
	((host)->struct_size >= offsetof(struct parley_host, field) + sizeof((host)->field))

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_PARLEY_H */
