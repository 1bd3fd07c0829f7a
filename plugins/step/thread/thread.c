/*
 * thread.c: each inbound message joins its contact's conversation, from
 * any channel.  Which one (the latest when it is not resolved; a resolved
 * one when the contact writes within `reopen_within` of its resolution;
 * else a new one; a reply naming an earlier message, thread_ref, joins that
 * message's conversation however long ago it was resolved) is the
 * conversation core's rule: this step asks it (conversation.decide) and
 * sets the envelope's conversation_id; the group commit checks the proposal
 * again under the store's locks.  Proposals are remembered per contact
 * until committed, so a new customer's successive messages join one new
 * conversation.  Publishes conversation.opened and conversation.reopened
 * once the message is committed.  Needs `identify` before it.
 */
#include <parley/parley.h>

#include <parley/strmap.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
/* The host takes ids of up to 64 characters: room for them, never a cut. */
#define ID_MAX 72

static const struct parley_config_key config_map[] = {
        {"reopen_within", PARLEY_CFG_DURATION, "7d", 0,
         "a resolved conversation reopens when the contact writes within this time; later, a new one starts"},
        {NULL, 0, NULL, 0, NULL},
};

/* The core's proposal: *what 'o' (opened), 'r' (reopened) or '-' (joined); *by_ref when thread_ref decided. */
static int decide(struct thread *t, const parley_envelope *env, const char *cid, char id[ID_MAX], char *what,
                  int *by_ref)
{
	const struct parley_host *h = t->host;
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "contact_id", cid);
	cJSON_AddStringToObject(q, "channel", h->envelope_get_str(env, "channel"));
	cJSON_AddStringToObject(q, "received_at", h->envelope_get_str(env, "received_at"));
	if (h->envelope_get_str(env, "thread_ref"))
		cJSON_AddStringToObject(q, "thread_ref", h->envelope_get_str(env, "thread_ref"));
	cJSON_AddNumberToObject(q, "reopen_within_ms", (double)t->reopen_ms);
	char *req = cJSON_PrintUnformatted(q), *reply = NULL;
	cJSON_Delete(q);
	int rv = req ? h->store_query(t->inst, "conversation.decide", req, &reply) : PARLEY_ENOMEM;
	free(req);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	if (rv != 0)
		h->log(t->inst, PARLEY_LOG_WARN, "no conversation for a message: %s", reply ? reply : h->strerror(rv));
	free(reply);
	const char *conv = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "conversation_id"));
	const char *w = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "what"));
	const char *via = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "via"));
	if (rv == 0 && (!conv || !w))
		rv = PARLEY_EINTERNAL;
	if (rv == 0) {
		snprintf(id, ID_MAX, "%s", conv);
		*what = strcmp(w, "open") == 0 ? 'o' : strcmp(w, "reopen") == 0 ? 'r' : '-';
		*by_ref = via && strcmp(via, "thread_ref") == 0;
	}
	cJSON_Delete(r);
	return rv;
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
	char id[ID_MAX] = "", what = 0, val[ID_MAX + 8] = "";
	int by_ref = 0, asked = 0;
	if (h->envelope_get_str(env, "thread_ref")) {
		/* A reply naming an earlier message goes where that message is, whatever is pending. */
		int rv = decide(t, env, cid, id, &what, &by_ref);
		if (rv != 0)
			return rv;
		asked = 1;
		if (by_ref)
			snprintf(val, sizeof(val), "%c%s", what, id);
	}
	uint64_t epoch = h->epoch(t->inst);
	pthread_mutex_lock(&t->lock);
	if (epoch != t->known_epoch) {
		/* Resolved, merged or reassigned outside the pipeline: ask again. */
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
		int rv = asked ? 0 : decide(t, env, cid, id, &what, &by_ref);
		if (rv != 0)
			return rv;
		snprintf(val, sizeof(val), "%c%s", what, id);
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
