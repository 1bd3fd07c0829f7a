/*
 * plugin_test.h: `parley test`, one channel plugin run in-process against a
 * fake host from fixture files (docs/plugin-testing.md).  plugin_test.c
 * reads the fixtures, runs them and compares; plugin_test_host.c is the
 * fake host (the real host table with the gateway's parts replaced by
 * recorders); plugin_test_provider.c the fake provider (an HTTP server on
 * 127.0.0.1 that answers what the fixture scripts and records what the
 * plugin asked); plugin_test_sign.c the signatures put on requests.
 */
#ifndef PARLEY_CORE_PLUGIN_TEST_H
#define PARLEY_CORE_PLUGIN_TEST_H

#include <cjson/cJSON.h>
#include <parley/parley.h>
#include <stddef.h>
#include <stdint.h>

/* `parley test [--update] PLUGIN.so FIXTURE|DIR...`: 0 all passed, 1 some failed, 2 usage or load errors. */
int plugin_test_main(int argc, char **argv);

/* ------------------------------------------------------ the fake host */

struct ptest_host;

/* A fake host whose data_dir is data_dir (borrowed); NULL on ENOMEM. */
struct ptest_host *ptest_host_new(const char *data_dir);
void ptest_host_free(struct ptest_host *h);
/* The host table plugins get: valid while h is the bound host. */
const struct parley_host *ptest_host_table(void);
/*
 * Start a fixture on h: inst is the instance under test (its routes, state
 * and ids are the fixture's own), submit_result what submit completions
 * report (0, or PARLEY_EIO to see the provider told to retry).
 */
void ptest_host_begin(struct ptest_host *h, parley_instance *inst, int submit_result);
/* End it: forget routes, submitted envelopes and state. */
void ptest_host_end(struct ptest_host *h);

/* What the plugin answered an HTTP request. */
struct ptest_answer {
	int status; /* 0: no answer within the time */
	char *content_type;
	char *body;
	size_t len;
};
void ptest_answer_free(struct ptest_answer *a);

/*
 * Hand one HTTP request to the route the plugin registered for method and
 * path (/webhooks/<instance><subpath>, or /<type>/<instance><subpath> for a
 * public route), and wait up to timeout_ms for its answer.  headers is an
 * object of name: value (borrowed).  0, or -1 with why (no such route).
 */
int ptest_host_request(struct ptest_host *h, const char *method, const char *path, const char *query,
                       const cJSON *headers, const char *body, size_t len, int64_t timeout_ms, struct ptest_answer *out,
                       char *why, size_t why_len);
/* Wait until every submit completion has run. */
void ptest_host_settle(struct ptest_host *h);
/* The envelopes submitted since ptest_host_begin, as a new JSON array (the caller's). */
cJSON *ptest_host_envelopes(struct ptest_host *h);
/* A new outbound envelope for a send fixture, with the fixture's deterministic id (the caller's). */
parley_envelope *ptest_host_outbound(struct ptest_host *h);

/* ------------------------------------------------------ signatures */

/* A request as it is signed: its path and raw query, its body, the time ${NOW} stands for. */
struct ptest_signed {
	const char *path, *query;
	const char *body;
	size_t len;
	int64_t now;
};

/*
 * Fill ${NOW} in headers' values, then, when sign (a fixture's "sign") is
 * given, set its header to the signature of the request: 0, or -1 with why.
 * See docs/plugin-testing.md.
 */
int ptest_sign(const cJSON *sign, cJSON *headers, const struct ptest_signed *r, char *why, size_t why_len);

/* ------------------------------------------------ the fake provider */

struct ptest_provider;

/* An HTTP server on 127.0.0.1 and a free port; NULL with why when it cannot listen. */
struct ptest_provider *ptest_provider_start(char *why, size_t why_len);
void ptest_provider_stop(struct ptest_provider *p);
/* Its base URL, "http://127.0.0.1:PORT". */
const char *ptest_provider_url(const struct ptest_provider *p);
/*
 * The answers to give, in order: a JSON array (borrowed, copied) of
 * {status, headers, body}; NULL for none.  Requests beyond them get 404.
 * Forgets the requests recorded so far.
 */
void ptest_provider_script(struct ptest_provider *p, const cJSON *answers);
/* The requests recorded since the script, as a new JSON array of {method, path, query?, headers, body}. */
cJSON *ptest_provider_requests(struct ptest_provider *p);

#endif
