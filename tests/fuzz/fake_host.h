/*
 * fake_host.h: a struct parley_host for fuzzing one channel plugin alone.
 *
 * The real plugin .so is loaded with dlopen, exactly as the gateway loads
 * it, and gets a host table whose envelope functions are the core's own
 * (core/envelope.c), so setters behave as in production.  Everything else
 * is replaced by a fake that finishes at once: submit() completes before it
 * returns, timers and state are refused, nothing touches the network.
 *
 * The fake also checks what a provider and a subscriber would notice:
 * every request is answered exactly once, with a status of the documented
 * set; a 2xx is sent only after the envelopes were committed (or when no
 * envelope was built); a failed commit is never answered 2xx; an unsigned
 * request never reaches submit; every submitted envelope is valid and all
 * its strings are UTF-8.  A broken rule aborts, which libFuzzer reports as
 * a crash with the input that caused it.
 *
 * Single-threaded: one request at a time, from the fuzzer's thread.
 */
#ifndef PARLEY_TESTS_FUZZ_FAKE_HOST_H
#define PARLEY_TESTS_FUZZ_FAKE_HOST_H

#include <parley/parley.h>

#include <stddef.h>
#include <stdint.h>

/* A name/value pair; lists of them end with a {NULL, NULL} entry. */
struct fake_kv {
	const char *name, *value;
};

/* Abort with a message naming the broken rule (a crash for libFuzzer). */
#define FUZZ_ASSERT(cond, ...)                                                                                         \
	do {                                                                                                           \
		if (!(cond))                                                                                           \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);                                             \
	} while (0)

void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
        __attribute__((noreturn, format(printf, 4, 5)));

/*
 * A rule that a finding already reported breaks (docs/fuzzing.md lists
 * them by id): noted once per run instead of failing, so the fuzzer goes on
 * looking for new ones.  PARLEY_FUZZ_STRICT=1 makes it fatal, to replay a
 * reproducer or to check a fix; delete the FUZZ_KNOWN once the fix lands.
 */
#define FUZZ_KNOWN(id, cond, ...)                                                                                      \
	do {                                                                                                           \
		if (!(cond))                                                                                           \
			fuzz_known(id, __FILE__, __LINE__, #cond, __VA_ARGS__);                                        \
	} while (0)

void fuzz_known(const char *id, const char *file, int line, const char *cond, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
int fuzz_utf8_valid(const char *s, size_t n);
/* 1 when every string (keys too) in the JSON text is UTF-8; 0 when it is not, or not JSON. */
int fuzz_json_utf8(const char *json);

/*
 * Load plugins/<file> (PARLEY_FUZZ_PLUGIN_DIR overrides the build's plugin
 * directory), create instance `name` with config (a fake_kv list; keys the
 * list lacks get the plugin's declared defaults) and gateway settings
 * ("http.public_url", ...), and start it so that it registers its routes.
 * Aborts when any of that fails: a harness that cannot start is a bug.
 */
void fake_channel_open(const char *file, const char *name, const struct fake_kv *config,
                       const struct fake_kv *settings);

/* The path a route of the open channel answers on: /webhooks/<name><subpath>. */
const char *fake_channel_path(const char *subpath, char *buf, size_t len);

/* What one request did, for a harness's own checks. */
struct fake_outcome {
	int status;        /* the one status answered */
	size_t envs_built; /* envelope_new() calls during the request */
	size_t envs_sent;  /* envelopes handed to a successful submit() */
	int submit_called; /* submit() was called */
	int committed;     /* its completion reported success */
	const char *body;  /* the answer's body (valid until the next request) */
	size_t body_len;
};

/*
 * POST body to the route METHOD subpath of the open channel, with headers
 * (a fake_kv list) and the raw query ("" for none).  commit_result is what
 * submit's completion reports (0, or PARLEY_EIO for a store that failed).
 * signed_ok says the request carries a valid signature: when 0, the answer
 * must be 401 and nothing may be submitted.  Aborts when the channel
 * registered no such route.  Checks the rules above; fills *out if given.
 */
void fake_channel_request(const char *method, const char *subpath, const void *body, size_t len,
                          const struct fake_kv *headers, const char *query, int commit_result, int signed_ok,
                          struct fake_outcome *out);

/* A stable hash of the input, so each input always takes the same path. */
uint32_t fuzz_hash(const uint8_t *data, size_t len);

#endif
