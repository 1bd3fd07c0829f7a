/*
 * thread.c: each inbound message joins its contact's open conversation,
 * from any channel.  A resolved conversation reopens when the contact writes
 * within `reopen_within` of its resolution; later, a new conversation
 * starts.  Pending and snoozed conversations wake up (the store sets them
 * open).  A reply naming an earlier message (thread_ref: e-mail's
 * In-Reply-To, a quoted message) joins that message's conversation, whatever
 * its subject says and however long ago it was resolved.  Publishes
 * conversation.opened and conversation.reopened once the message is
 * committed.  Needs `identify` before it.
 */
#include <parley/parley.h>

#include "strmap.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct thread {
	const struct parley_host *host;
	parley_instance *inst;
	int64_t reopen_ms;
	pthread_mutex_t lock;
	struct strmap pending; /* contact id -> "<o|r|->conversation id" (opened, reopened, joined) */
	struct strmap known;   /* contact id -> its open conversation, committed, valid while epoch holds */
	uint64_t known_epoch;
};

#define KNOWN_MAX 200000

static const struct parley_config_key config_map[] = {
        {"reopen_within", PARLEY_CFG_DURATION, "7d", 0,
         "a resolved conversation reopens when the contact writes within this time; later, a new one starts"},
        {NULL, 0, NULL, 0, NULL},
};

/* Milliseconds since the epoch of an RFC 3339 UTC time "YYYY-MM-DDTHH:MM:SS[.mmm]Z"; 0 if unparseable. */
static int64_t parse_time(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	int ms = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
	                 &tm.tm_sec) != 6)
		return 0;
	const char *dot = strchr(s, '.');
	if (dot)
		ms = (int)strtol(dot + 1, NULL, 10);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

static int th_process(void *data, parley_envelope *env)
{
	struct thread *t = data;
	const struct parley_host *h = t->host;
	const char *dir = h->envelope_get_str(env, "direction");
	const char *kind = h->envelope_get_str(env, "kind");
	const char *cid = h->envelope_get_str(env, "contact_id");
	if (!dir || strcmp(dir, "inbound") != 0 || !kind || strcmp(kind, "message") != 0 || !cid ||
	    h->envelope_get_str(env, "conversation_id"))
		return 0;
	char val[40] = "";
	const char *ref = h->envelope_get_str(env, "thread_ref");
	if (ref) {
		cJSON *rq = cJSON_CreateObject();
		cJSON_AddStringToObject(rq, "channel", h->envelope_get_str(env, "channel"));
		cJSON_AddStringToObject(rq, "ref", ref);
		char *text = cJSON_PrintUnformatted(rq), *reply = NULL;
		cJSON_Delete(rq);
		if (h->store_query(t->inst, "conversation.of_ref", text, &reply) == 0) {
			cJSON *r = cJSON_Parse(reply);
			const cJSON *conv = cJSON_GetObjectItemCaseSensitive(r, "conversation");
			const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(conv, "id"));
			const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(conv, "status"));
			const char *owner = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(conv, "contact_id"));
			if (id && owner && strcmp(owner, cid) == 0)
				snprintf(val, sizeof(val), "%c%s",
				         status && strcmp(status, "resolved") == 0 ? 'r' : '-', id);
			cJSON_Delete(r);
		}
		free(text);
		free(reply);
	}
	uint64_t epoch = h->epoch(t->inst);
	pthread_mutex_lock(&t->lock);
	if (epoch != t->known_epoch) {
		/* Resolved, merged or reassigned outside the pipeline: ask the store again. */
		strmap_free(&t->known);
		t->known_epoch = epoch;
	}
	const char *p = val[0] ? NULL : strmap_get(&t->pending, cid);
	if (p)
		snprintf(val, sizeof(val), "-%s", p + 1);
	else if (!val[0] && (p = strmap_get(&t->known, cid)) != NULL)
		snprintf(val, sizeof(val), "-%s", p);
	pthread_mutex_unlock(&t->lock);
	if (!val[0]) {
		cJSON *q = cJSON_CreateObject();
		cJSON_AddStringToObject(q, "contact_id", cid);
		char *req = cJSON_PrintUnformatted(q), *reply = NULL;
		cJSON_Delete(q);
		int rv = req ? h->store_query(t->inst, "conversation.current", req, &reply) : PARLEY_ENOMEM;
		free(req);
		cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
		free(reply);
		if (rv != 0 && rv != PARLEY_ENOENT)
			return rv;
		const cJSON *conv = cJSON_GetObjectItemCaseSensitive(r, "conversation");
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(conv, "id"));
		const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(conv, "status"));
		const char *resolved = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(conv, "resolved_at"));
		const char *now = h->envelope_get_str(env, "received_at");
		if (id && status && strcmp(status, "resolved") != 0) {
			snprintf(val, sizeof(val), "-%s", id);
		} else if (id && status && parse_time(now) - parse_time(resolved) <= t->reopen_ms) {
			snprintf(val, sizeof(val), "r%s", id);
		} else {
			char nid[32];
			h->new_id(nid);
			snprintf(val, sizeof(val), "o%s", nid);
		}
		cJSON_Delete(r);
	}
	pthread_mutex_lock(&t->lock);
	if (!strmap_get(&t->pending, cid))
		strmap_put(&t->pending, cid, val);
	pthread_mutex_unlock(&t->lock);
	return h->envelope_set_str(env, "conversation_id", val + 1);
}

static void th_after_commit(void *data, const parley_envelope *env, int result)
{
	struct thread *t = data;
	const struct parley_host *h = t->host;
	const char *cid = h->envelope_get_str(env, "contact_id");
	const char *conv = h->envelope_get_str(env, "conversation_id");
	if (!cid || !conv)
		return;
	char what = 0;
	uint64_t epoch = h->epoch(t->inst);
	pthread_mutex_lock(&t->lock);
	if (result == 0 && epoch == t->known_epoch) {
		/* The message made its conversation open: later messages join it. */
		if (t->known.n >= KNOWN_MAX)
			strmap_free(&t->known);
		strmap_put(&t->known, cid, conv);
	}
	const char *p = strmap_get(&t->pending, cid);
	if (p && strcmp(p + 1, conv) == 0) {
		what = p[0];
		strmap_del(&t->pending, cid);
	}
	pthread_mutex_unlock(&t->lock);
	if (result != 0 || (what != 'o' && what != 'r'))
		return;
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "conversation_id", conv);
	cJSON_AddStringToObject(ev, "contact_id", cid);
	cJSON_AddStringToObject(ev, "channel", h->envelope_get_str(env, "channel"));
	cJSON_AddStringToObject(ev, "message_id", h->envelope_get_str(env, "id"));
	cJSON_AddStringToObject(ev, "at", h->envelope_get_str(env, "received_at"));
	char *js = cJSON_PrintUnformatted(ev);
	h->publish(t->inst, what == 'o' ? "conversation.opened" : "conversation.reopened", js);
	free(js);
	cJSON_Delete(ev);
}

static int th_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	(void)errmsg;
	struct thread *t = calloc(1, sizeof(*t));
	if (!t)
		return PARLEY_ENOMEM;
	t->host = h;
	t->inst = inst;
	h->config_duration_ms(inst, "reopen_within", &t->reopen_ms);
	pthread_mutex_init(&t->lock, NULL);
	*data = t;
	return 0;
}

static void th_destroy(void *data)
{
	struct thread *t = data;
	strmap_free(&t->pending);
	strmap_free(&t->known);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_STEP,
        .name = "thread",
        .version = "1.0.0",
        .description =
                "joins each inbound message to its contact's conversation across channels; reopens or starts one",
        .config = config_map,
        .instance_create = th_create,
        .instance_destroy = th_destroy,
        .process = th_process,
        .after_commit = th_after_commit,
};

PARLEY_PLUGIN_DEFINE(plugin)
