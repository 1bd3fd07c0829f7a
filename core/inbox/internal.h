/* internal.h: what the conversation core's files share.  Internal to core/inbox/. */
#ifndef PARLEY_CORE_INBOX_INTERNAL_H
#define PARLEY_CORE_INBOX_INTERNAL_H

#include "inbox.h"

#include <parley/store.h>
#include <string.h>

struct inbox {
	struct store *st;
	const struct parley_store_typed_ops *t; /* NULL: an ABI 1.0/1.1 store decides itself */
	void *data;                             /* the store's instance data */
	struct inbox_rules rules;
	void (*changed)(void *);
	void *changed_arg;
	const struct sla_config *sla;        /* NULL: no SLA policies */
	const struct survey_config *surveys; /* NULL: no surveys */
};

/* The string member k of a JSON object, or NULL. */
static inline const char *jstr(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/* Two strings, both present and equal. */
static inline int same(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Strings a decision makes, freed together when it is done. */
struct arena {
	char **s;
	size_t n, cap;
};
/* A copy owned by the arena (NULL stays NULL; NULL also on ENOMEM, which the caller checks with arena_ok). */
const char *arena_dup(struct arena *a, const char *s);
/* Text of a cJSON value, owned by the arena; the value is deleted. */
const char *arena_json(struct arena *a, cJSON *v);
int arena_ok(const struct arena *a);

/* Room for one more element of size bytes in *arr (n used of *cap): 0 or PARLEY_ENOMEM. */
int array_room(void *arr, size_t n, size_t *cap, size_t size);
void arena_free(struct arena *a);

/* 1 when c waits in its team's queue: a team, no assignee, open or pending (as the store's queued_at). */
int inbox_waiting(const struct parley_conversation_rec *c);

/* RFC 3339 now with milliseconds (the history clock, clock_now_ms). */
void inbox_now(char out[64]);

/* The JSON object text {k1: v1, k2: v2, ...} of string pairs ended by NULL; NULL values are left out. */
const char *event_data(struct arena *a, ...);

/* ops.c: conversation changes, and contacts.c: contact changes and merges. */
int inbox_conversation_op(struct inbox *ib, const char *op, const cJSON *req, char **reply);
int inbox_contact_op(struct inbox *ib, const char *op, const cJSON *req, char **reply);
/* decide.c: the steps' proposals (contact.decide, conversation.decide). */
int inbox_decide_op(struct inbox *ib, const char *op, const cJSON *req, char **reply);

/* A reply {key: value} (value consumed), or an error message; returns rv. */
int inbox_reply(char **reply, const char *key, cJSON *value);
int inbox_fail(char **reply, int rv, const char *msg);
/* A conversation record as the JSON the read ops return. */
cJSON *inbox_conversation_json(const struct parley_conversation_rec *c);

#endif
