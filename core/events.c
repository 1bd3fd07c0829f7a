/* events.c: the live events of this node's subscribers, read from the store (see events.h). */
#include "events.h"
#include "auth.h"
#include "envelope.h"
#include "gateway.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_MS      250
#define HEARTBEAT_MS 15000
#define READ_MAX     200
#define SUBS_MAX     4096
#define TEAMS_MAX    4096 /* conversations whose team and assignee are remembered */

struct events_sub {
	struct events *ev;
	struct events_cursor at;
	int all; /* sees everything (admin, service, control token) */
	char *name;
	char **teams;
	size_t n_teams;
	events_sink sink;
	void (*release)(void *);
	void *arg;
	int gone;
	int64_t beat_ms;
	struct events_sub *next;
};

/* Who a conversation is for: the team and assignee as the log last said. */
struct owner {
	char *conversation_id, *team, *assignee;
};

struct events {
	struct gateway *gw;
	pthread_t thread;
	pthread_mutex_t lock; /* subs, n_subs, stop; the wait on woken */
	pthread_cond_t cv;
	struct events_sub *subs;
	size_t n_subs;
	int stop;
	atomic_int woken;     /* set by events_wake() without the lock when it is already set */
	atomic_int has_subs;  /* n_subs > 0, read by events_wake() without the lock */
	struct owner *owners; /* events thread only */
	size_t n_owners;
};

/* One event read, ready for every subscriber. */
struct item {
	int64_t mseq, eseq; /* the cursor after it */
	int64_t at_ms;
	char *topic, *json, *conversation_id;
};

struct batch {
	struct events_cursor from, to;
	struct item *v;
	size_t n;
	int oom;
};

int events_cursor_parse(const char *s, struct events_cursor *out)
{
	long long m, e;
	int used = 0;
	if (!s || sscanf(s, "%lld.%lld%n", &m, &e, &used) != 2 || s[used] != '\0' || m < 0 || e < 0)
		return -1;
	out->message_seq = m;
	out->event_seq = e;
	return 0;
}

/* ------------------------------------------------------------ owners */

static struct owner *owner_find(struct events *ev, const char *conversation_id)
{
	for (size_t i = 0; i < ev->n_owners; i++)
		if (strcmp(ev->owners[i].conversation_id, conversation_id) == 0)
			return &ev->owners[i];
	return NULL;
}

static void owners_clear(struct events *ev)
{
	for (size_t i = 0; i < ev->n_owners; i++) {
		free(ev->owners[i].conversation_id);
		free(ev->owners[i].team);
		free(ev->owners[i].assignee);
	}
	ev->n_owners = 0;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? strdup(v) : NULL;
}

/* The owner of conversation_id, read from the store when not remembered; NULL when unknown. */
static struct owner *owner_of(struct events *ev, const char *conversation_id)
{
	struct owner *o = owner_find(ev, conversation_id);
	if (o)
		return o;
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "conversation_id", conversation_id);
	char *text = cJSON_PrintUnformatted(q), *reply = NULL;
	cJSON_Delete(q);
	int rv = text ? store_query(ev->gw->st, "conversation.get", text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "conversation");
	if (!c) {
		cJSON_Delete(r);
		return NULL;
	}
	if (ev->n_owners == TEAMS_MAX)
		owners_clear(ev);
	if (!ev->owners && !(ev->owners = calloc(TEAMS_MAX, sizeof(*ev->owners)))) {
		cJSON_Delete(r);
		return NULL;
	}
	o = &ev->owners[ev->n_owners++];
	memset(o, 0, sizeof(*o));
	o->conversation_id = strdup(conversation_id);
	set_str(&o->team, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "team")));
	set_str(&o->assignee, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "assignee")));
	cJSON_Delete(r);
	return o;
}

/* A conversation event that changes who the conversation is for. */
static void owner_update(struct events *ev, const char *conversation_id, const char *type, const cJSON *data)
{
	struct owner *o = owner_find(ev, conversation_id);
	if (!o)
		return; /* read when first needed */
	const cJSON *team = cJSON_GetObjectItemCaseSensitive(data, "team");
	if (cJSON_IsString(team))
		set_str(&o->team, team->valuestring);
	if (strcmp(type, "assigned") == 0)
		set_str(&o->assignee, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "assignee")));
}

static int sees(struct events *ev, const struct events_sub *s, const struct item *it)
{
	if (s->all)
		return 1;
	struct owner *o = it->conversation_id ? owner_of(ev, it->conversation_id) : NULL;
	if (!o)
		return 0; /* a message in no conversation: admins only */
	if (o->assignee && strcmp(o->assignee, s->name) == 0)
		return 1;
	if (!o->team || !o->team[0])
		return 1; /* the shared queue: as auth_sees_team */
	for (size_t i = 0; i < s->n_teams; i++)
		if (strcmp(s->teams[i], o->team) == 0)
			return 1;
	return 0;
}

/* ------------------------------------------------------------ reading */

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->v[i].topic);
		free(b->v[i].json);
		free(b->v[i].conversation_id);
	}
	free(b->v);
	memset(b, 0, sizeof(*b));
}

static struct item *batch_add(struct batch *b)
{
	if (b->oom)
		return NULL;
	struct item *nv = realloc(b->v, (b->n + 1) * sizeof(*nv));
	if (!nv) {
		b->oom = 1;
		return NULL;
	}
	b->v = nv;
	memset(&b->v[b->n], 0, sizeof(b->v[0]));
	return &b->v[b->n++];
}

static int add_message(void *arg, const void *row)
{
	struct batch *b = arg;
	const struct parley_stored_envelope *r = row;
	parley_envelope *env = envelope_parse(r->envelope, strlen(r->envelope));
	char topic[256];
	struct item *it = env && envelope_topic(env, topic, sizeof(topic)) == 0 ? batch_add(b) : NULL;
	if (it) {
		it->mseq = r->seq;
		it->topic = strdup(topic);
		it->json = strdup(r->envelope);
		const char *c = envelope_get(env, "conversation_id");
		it->conversation_id = c ? strdup(c) : NULL;
		/* received_at: when an inbound message arrived, or an outbound one was queued. */
		const char *at = envelope_get(env, "received_at");
		it->at_ms = at ? time_parse_ms(at) : 0;
	}
	if (r->seq > b->to.message_seq)
		b->to.message_seq = r->seq;
	envelope_destroy(env);
	return 0;
}

static int by_time(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	if (x->at_ms != y->at_ms)
		return x->at_ms < y->at_ms ? -1 : 1;
	/* Same millisecond: messages first, then each log in its order. */
	if ((x->mseq != 0) != (y->mseq != 0))
		return x->mseq ? -1 : 1;
	int64_t dx = x->mseq ? x->mseq : x->eseq, dy = y->mseq ? y->mseq : y->eseq;
	return dx < dy ? -1 : dx > dy;
}

/* What follows from: up to READ_MAX of each log, merged by time; b->to is the cursor after all of it. */
static int read_batch(struct events *ev, const struct events_cursor *from, struct batch *b)
{
	memset(b, 0, sizeof(*b));
	b->from = b->to = *from;
	int rv = store_messages_since(ev->gw->st, from->message_seq, READ_MAX, add_message, b);
	if (rv != 0 && rv != PARLEY_ENOTSUP)
		return rv;
	char req[96], *reply = NULL;
	snprintf(req, sizeof(req), "{\"after\":%" PRId64 ",\"limit\":%d}", from->event_seq, READ_MAX);
	rv = store_query(ev->gw->st, "conversation_events.since", req, &reply);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	const cJSON *e;
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(r, "events"))
	{
		const char *cid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "conversation_id"));
		const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "type"));
		const cJSON *seq = cJSON_GetObjectItemCaseSensitive(e, "seq");
		if (!cid || !type || !cJSON_IsNumber(seq))
			continue;
		struct item *it = batch_add(b);
		if (!it)
			break;
		it->eseq = (int64_t)seq->valuedouble;
		it->conversation_id = strdup(cid);
		/* The SLA clock's rows are the bus's sla.warning / sla.breached / sla.due / sla.met, not
		 * conversation.*. */
		it->topic = strncmp(type, "sla.", 4) == 0 ? strdup(type) : str_printf("conversation.%s", type);
		const char *at = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "at"));
		it->at_ms = at ? time_parse_ms(at) : 0;
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "conversation_id", cid);
		cJSON_AddStringToObject(o, "type", type);
		cJSON_AddItemToObject(o, "data", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(e, "data"), 1));
		if (at)
			cJSON_AddStringToObject(o, "at", at);
		it->json = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		if (it->eseq > b->to.event_seq)
			b->to.event_seq = it->eseq;
	}
	cJSON_Delete(r);
	if (b->oom)
		return PARLEY_ENOMEM;
	if (b->n > 1)
		qsort(b->v, b->n, sizeof(b->v[0]), by_time);
	/* Each item's id is the cursor after it: the greatest of each log up to and including it. */
	struct events_cursor c = *from;
	for (size_t i = 0; i < b->n; i++) {
		if (b->v[i].mseq > c.message_seq)
			c.message_seq = b->v[i].mseq;
		if (b->v[i].eseq > c.event_seq)
			c.event_seq = b->v[i].eseq;
		b->v[i].mseq = c.message_seq;
		b->v[i].eseq = c.event_seq;
	}
	return 0;
}

/* ------------------------------------------------------------ the thread */

static void release_sub(struct events_sub *s)
{
	if (s->release)
		s->release(s->arg);
	free(s->name);
	for (size_t i = 0; i < s->n_teams; i++)
		free(s->teams[i]);
	free(s->teams);
	free(s);
}

/* Deliver b to s (which is at b->from); 0, or -1 when the sink ended it. */
static int deliver(struct events *ev, struct events_sub *s, const struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct item *it = &b->v[i];
		if (!sees(ev, s, it))
			continue;
		char id[48];
		snprintf(id, sizeof(id), "%" PRId64 ".%" PRId64, it->mseq, it->eseq);
		if (s->sink(s->arg, id, it->topic, it->json) != 0)
			return -1;
	}
	s->at = b->to;
	return 0;
}

/* Learn who conversations are for from the log, before anyone's visibility is decided. */
static void learn(struct events *ev, const struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		const struct item *it = &b->v[i];
		if (strncmp(it->topic, "conversation.", 13) != 0 || !it->conversation_id)
			continue;
		cJSON *o = cJSON_Parse(it->json);
		owner_update(ev, it->conversation_id, it->topic + 13, cJSON_GetObjectItemCaseSensitive(o, "data"));
		cJSON_Delete(o);
	}
}

static int same_cursor(const struct events_cursor *a, const struct events_cursor *b)
{
	return a->message_seq == b->message_seq && a->event_seq == b->event_seq;
}

/* One round: every subscriber gets what follows its cursor; subscribers at one cursor share a read. */
static void round_once(struct events *ev)
{
	pthread_mutex_lock(&ev->lock);
	struct events_sub **subs = ev->n_subs ? calloc(ev->n_subs, sizeof(*subs)) : NULL;
	size_t n = 0;
	for (struct events_sub *s = ev->subs; s && subs; s = s->next)
		if (!s->gone)
			subs[n++] = s;
	pthread_mutex_unlock(&ev->lock);
	int64_t now = time_mono_ms();
	for (size_t i = 0; i < n; i++) {
		if (!subs[i])
			continue;
		struct batch b;
		int rv = read_batch(ev, &subs[i]->at, &b);
		if (rv != 0) {
			batch_free(&b);
			continue; /* the store is down: the next round tries again */
		}
		learn(ev, &b);
		for (size_t j = i; j < n; j++) {
			struct events_sub *s = subs[j];
			if (!s || !same_cursor(&s->at, &b.from))
				continue;
			int ended = deliver(ev, s, &b) != 0;
			if (!ended && now - s->beat_ms >= HEARTBEAT_MS) {
				ended = s->sink(s->arg, NULL, NULL, NULL) != 0;
				s->beat_ms = now;
			}
			if (ended)
				events_unsubscribe(s);
			subs[j] = NULL;
		}
		batch_free(&b);
	}
	free(subs);
	/* Release what ended, after its last sink call. */
	pthread_mutex_lock(&ev->lock);
	struct events_sub **pp = &ev->subs, *dead = NULL;
	while (*pp) {
		struct events_sub *s = *pp;
		if (s->gone) {
			*pp = s->next;
			s->next = dead;
			dead = s;
			ev->n_subs--;
			atomic_store(&ev->has_subs, ev->n_subs > 0);
		} else {
			pp = &s->next;
		}
	}
	pthread_mutex_unlock(&ev->lock);
	while (dead) {
		struct events_sub *next = dead->next;
		release_sub(dead);
		dead = next;
	}
}

static void *events_main(void *arg)
{
	struct events *ev = arg;
	pthread_mutex_lock(&ev->lock);
	while (!ev->stop) {
		if (!atomic_load(&ev->woken)) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += TICK_MS * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&ev->cv, &ev->lock, &ts);
		}
		atomic_store(&ev->woken, 0);
		if (ev->stop)
			break;
		int any = ev->subs != NULL;
		pthread_mutex_unlock(&ev->lock);
		if (any)
			round_once(ev);
		pthread_mutex_lock(&ev->lock);
	}
	pthread_mutex_unlock(&ev->lock);
	return NULL;
}

/* ------------------------------------------------------------ API */

int events_start(struct events **out, struct gateway *gw)
{
	struct events *ev = calloc(1, sizeof(*ev));
	if (!ev)
		return PARLEY_ENOMEM;
	ev->gw = gw;
	pthread_mutex_init(&ev->lock, NULL);
	pthread_cond_init(&ev->cv, NULL);
	if (thread_start(&ev->thread, events_main, ev, "parley:events") != 0) {
		pthread_mutex_destroy(&ev->lock);
		pthread_cond_destroy(&ev->cv);
		free(ev);
		return PARLEY_EIO;
	}
	*out = ev;
	return 0;
}

void events_stop(struct events *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->lock);
	ev->stop = 1;
	pthread_cond_signal(&ev->cv);
	pthread_mutex_unlock(&ev->lock);
	pthread_join(ev->thread, NULL);
	while (ev->subs) {
		struct events_sub *s = ev->subs;
		ev->subs = s->next;
		release_sub(s);
	}
	owners_clear(ev);
	free(ev->owners);
	pthread_mutex_destroy(&ev->lock);
	pthread_cond_destroy(&ev->cv);
	free(ev);
}

void events_wake(struct events *ev)
{
	/*
	 * Called for every envelope published: one atomic exchange when a round is already due, and
	 * nothing at all while nobody subscribes (a new subscriber's first round reads from its cursor).
	 */
	if (!ev || !atomic_load(&ev->has_subs) || atomic_exchange(&ev->woken, 1))
		return;
	pthread_mutex_lock(&ev->lock);
	pthread_cond_signal(&ev->cv);
	pthread_mutex_unlock(&ev->lock);
}

int events_position(struct events *ev, struct events_cursor *out)
{
	char *reply = NULL;
	int rv = store_query(ev->gw->st, "events.position", "{}", &reply);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "position");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(p, "message_seq");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(p, "event_seq");
	int known = cJSON_IsNumber(m) && cJSON_IsNumber(e);
	if (known) {
		out->message_seq = (int64_t)m->valuedouble;
		out->event_seq = (int64_t)e->valuedouble;
	}
	cJSON_Delete(r);
	return known ? 0 : rv ? rv : PARLEY_EIO;
}

struct events_sub *events_subscribe(struct events *ev, const struct events_cursor *from,
                                    const struct auth_principal *who, events_sink sink, void (*release)(void *),
                                    void *arg)
{
	struct events_sub *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->ev = ev;
	s->sink = sink;
	s->release = release;
	s->arg = arg;
	s->beat_ms = time_mono_ms();
	s->all = !who || who->role == AUTH_ADMIN || who->role == AUTH_SERVICE;
	s->name = strdup(who ? who->name : "");
	if (who && who->n_teams && !(s->teams = calloc(who->n_teams, sizeof(*s->teams))))
		s->name = (free(s->name), NULL);
	for (size_t i = 0; s->teams && i < who->n_teams; i++)
		if ((s->teams[s->n_teams] = strdup(who->teams[i])))
			s->n_teams++;
	if (!s->name) {
		s->release = NULL;
		release_sub(s);
		return NULL;
	}
	if (from) {
		s->at = *from;
	} else if (events_position(ev, &s->at) != 0) {
		s->release = NULL; /* from now, but now is unknown while the store is down */
		release_sub(s);
		return NULL;
	}
	pthread_mutex_lock(&ev->lock);
	int full = ev->n_subs >= SUBS_MAX || ev->stop;
	if (!full) {
		s->next = ev->subs;
		ev->subs = s;
		ev->n_subs++;
		atomic_store(&ev->has_subs, 1);
		atomic_store(&ev->woken, 1); /* a resumed subscriber gets what it missed at once */
		pthread_cond_signal(&ev->cv);
	}
	pthread_mutex_unlock(&ev->lock);
	if (full) {
		s->release = NULL;
		release_sub(s);
		return NULL;
	}
	return s;
}

void events_unsubscribe(struct events_sub *s)
{
	struct events *ev = s->ev;
	pthread_mutex_lock(&ev->lock);
	s->gone = 1;
	atomic_store(&ev->woken, 1);
	pthread_cond_signal(&ev->cv);
	pthread_mutex_unlock(&ev->lock);
}
