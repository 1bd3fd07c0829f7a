/* presence.c: who views and types in which conversation, on this node (see presence.h). */
#include "presence.h"
#include "util.h"

#include <parley/parley.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Beyond this many live entries the oldest is forgotten: memory stays bounded. */
#define PRESENCE_MAX 4096

struct seen {
	char *conversation_id, *agent;
	int typing;
	int64_t at_ms;
};

struct presence {
	pthread_mutex_t lock;
	struct seen *v;
	size_t n;
};

int presence_open(struct presence **out)
{
	struct presence *p = calloc(1, sizeof(*p));
	if (!p)
		return PARLEY_ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	*out = p;
	return 0;
}

static void drop(struct presence *p, size_t i)
{
	free(p->v[i].conversation_id);
	free(p->v[i].agent);
	p->v[i] = p->v[--p->n];
}

void presence_free(struct presence *p)
{
	if (!p)
		return;
	while (p->n)
		drop(p, 0);
	free(p->v);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* The caller holds the lock.  0 or PARLEY_ENOMEM. */
static int record(struct presence *p, const char *conversation_id, const char *agent, int typing, int64_t now_ms)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i].agent, agent) == 0 && strcmp(p->v[i].conversation_id, conversation_id) == 0) {
			p->v[i].typing = typing;
			p->v[i].at_ms = now_ms;
			return 0;
		}
	if (p->n == PRESENCE_MAX) {
		size_t oldest = 0;
		for (size_t i = 1; i < p->n; i++)
			if (p->v[i].at_ms < p->v[oldest].at_ms)
				oldest = i;
		drop(p, oldest);
	}
	struct seen *nv = realloc(p->v, (p->n + 1) * sizeof(*nv));
	if (!nv)
		return PARLEY_ENOMEM;
	p->v = nv;
	struct seen s = {strdup(conversation_id), strdup(agent), typing, now_ms};
	if (!s.conversation_id || !s.agent) {
		free(s.conversation_id);
		free(s.agent);
		return PARLEY_ENOMEM;
	}
	p->v[p->n++] = s;
	return 0;
}

cJSON *presence_beat(struct presence *p, const char *conversation_id, const char *agent, int typing, int64_t now_ms)
{
	cJSON *out = cJSON_CreateArray();
	if (!out)
		return NULL;
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->n;) {
		if (now_ms - p->v[i].at_ms > PRESENCE_TTL_MS)
			drop(p, i);
		else
			i++;
	}
	if (agent && record(p, conversation_id, agent, typing, now_ms) != 0) {
		pthread_mutex_unlock(&p->lock);
		cJSON_Delete(out);
		return NULL;
	}
	for (size_t i = 0; i < p->n; i++) {
		const struct seen *s = &p->v[i];
		if (strcmp(s->conversation_id, conversation_id) != 0 || (agent && strcmp(s->agent, agent) == 0))
			continue;
		char at[64];
		time_format_ms(s->at_ms, at);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "agent", s->agent);
		cJSON_AddBoolToObject(o, "typing", s->typing);
		cJSON_AddStringToObject(o, "seen_at", at);
		cJSON_AddItemToArray(out, o);
	}
	pthread_mutex_unlock(&p->lock);
	return out;
}
