/*
 * suite.h: the store conformance suite's shared harness.  The suite loads a
 * store plugin through the real loader and host (as the gateway does, from a
 * generated config file) and checks what users rely on, through the typed
 * contract (store.h) and the classic ops (parley.h).  Every name it writes is
 * prefixed with a per-run id, so the suite also runs against a shared
 * database that already holds data.
 */
#ifndef PARLEY_TESTS_STORE_SUITE_H
#define PARLEY_TESTS_STORE_SUITE_H

#include "gateway.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern int suite_failures;

#define CHECK(cond)                                                                                                    \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                       \
			suite_failures++;                                                                              \
		}                                                                                                      \
	} while (0)

/* Two strings equal (both NULL counts as equal). */
#define CHECK_STR(a, b)                                                                                                \
	do {                                                                                                           \
		const char *a_ = (a), *b_ = (b);                                                                       \
		if (!((!a_ && !b_) || (a_ && b_ && strcmp(a_, b_) == 0))) {                                            \
			fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #a,              \
			        a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                               \
			suite_failures++;                                                                              \
		}                                                                                                      \
	} while (0)

#define CHECK_RC(expr, want)                                                                                           \
	do {                                                                                                           \
		int rc_ = (expr), want_ = (want);                                                                      \
		if (rc_ != want_) {                                                                                    \
			fprintf(stderr, "%s:%d: %s returned %d, expected %d\n", __FILE__, __LINE__, #expr, rc_,        \
			        want_);                                                                                \
			suite_failures++;                                                                              \
		}                                                                                                      \
	} while (0)

struct suite {
	const char *plugin_dir;
	const char *type;   /* the store plugin's name: sqlite, postgres */
	const char *config; /* the storage config, a YAML flow mapping */
	char dir[256];      /* a temporary data_dir, holding the generated config */
	struct gateway gw;
	const struct parley_host *h;
	const struct parley_store_ops *ops;
	const struct parley_store_typed_ops *t;
	void *store;
	char run[32];      /* unique per run: prefixes every id and name written */
	int64_t claim_ms;  /* the claim timeout the config sets (claim_timeout), in ms */
	int64_t start_seq; /* the highest stored seq before the suite wrote anything */
};

/* Load and start the store (the config file is written to su->dir); 0 or -1 after printing why. */
int suite_open(struct suite *su);
/* Stop and unload it. */
void suite_close(struct suite *su);

/* A new id with the run prefix, "<run>-<tag>-<n>", in out (64 bytes). */
void suite_id(struct suite *su, const char *tag, char out[64]);
/* RFC 3339 UTC text with milliseconds for a time in ms since the epoch. */
void suite_time(int64_t ms, char out[64]);
int64_t suite_now_ms(void);

/* A new envelope (owned by the caller; free with h->envelope_free) with the fields given (NULL: unset). */
parley_envelope *suite_env(struct suite *su, const char *direction, const char *id, const char *channel,
                           const char *external_id, const char *from, const char *to);
/* One write transaction around the typed messages_insert of n envelopes; its result. */
int suite_insert(struct suite *su, parley_envelope **envs, size_t n, int *results);
/* The classic query op; the parsed reply (caller deletes) or NULL, with *rc. */
cJSON *suite_query(struct suite *su, const char *op, const char *request_json, int *rc);
/* message.get's stored envelope (caller deletes), or NULL when there is none. */
cJSON *suite_message(struct suite *su, const char *id);
const char *suite_jstr(const cJSON *o, const char *key);

/* The checks, by area. */
void check_messages(struct suite *su);
void check_contacts(struct suite *su);
void check_conversations(struct suite *su);
void check_merges_rollback(struct suite *su);
void check_outbox(struct suite *su);
void check_classic(struct suite *su);
void check_reads(struct suite *su);
void check_leases(struct suite *su);
void check_counters(struct suite *su);
void check_queue(struct suite *su);
void check_accounts(struct suite *su);
void check_sla(struct suite *su);
void check_broadcasts(struct suite *su);

#endif
