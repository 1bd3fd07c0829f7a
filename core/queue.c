/* queue.c: the team queues, offered to the routers in order (see queue.h). */
#include "queue.h"
#include "bots.h"
#include "bus.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"
#include "ops.h"
#include "ops_handlers.h"
#include "store.h"
#include "util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SWEEP_MS     2000
#define LEASE_TTL_MS 10000
#define WAITING_MAX  1000

struct queue {
	struct gateway *gw;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int stop, kicked;
};

/* The routers that take offers. */
static int offers(const parley_instance *inst)
{
	const struct parley_plugin *d = inst->plugin->desc;
	return d->kind == PARLEY_KIND_ROUTER &&
	       d->struct_size >= offsetof(struct parley_plugin, offer) + sizeof(d->offer) && d->offer;
}

/* The waiting conversations, first in line first (team by team), or NULL when the store cannot say. */
static cJSON *waiting(struct gateway *gw, const char *team)
{
	cJSON *q = cJSON_CreateObject();
	if (team)
		cJSON_AddStringToObject(q, "team", team);
	cJSON_AddNumberToObject(q, "limit", WAITING_MAX);
	char *text = cJSON_PrintUnformatted(q), *reply = NULL;
	cJSON_Delete(q);
	int rv = text ? store_query(gw->st, "queue.waiting", text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	cJSON *w = cJSON_DetachItemFromObjectCaseSensitive(r, "waiting");
	cJSON_Delete(r);
	return cJSON_IsArray(w) ? w : (cJSON_Delete(w), NULL);
}

/* Assign c to agent, as the queue: 0 when done. */
static int assign(struct gateway *gw, const cJSON *c, const char *agent)
{
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "conversation_id",
	                        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "id")));
	cJSON_AddStringToObject(req, "assignee", agent);
	cJSON_AddStringToObject(req, "team", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "team")));
	cJSON_AddStringToObject(req, "by", "queue");
	char *reply = ops_call(gw, NULL, "conversation.assign", req);
	cJSON_Delete(req);
	int ok = reply && strncmp(reply, "{\"ok\":true", 10) == 0;
	if (!ok)
		log_warn("queue: cannot assign a waiting conversation to %s: %s", agent,
		         reply ? reply : "out of memory");
	free(reply);
	return ok ? 0 : -1;
}

/* One round: each waiting conversation, in order, offered until its team has no agent with room. */
static int round_once(struct gateway *gw, const struct topology *topo)
{
	int any_router = 0;
	for (size_t i = 0; i < topo->n_steps; i++)
		any_router |= offers(topo->steps[i]);
	const char *node = gw->cfg.node_name ? gw->cfg.node_name : "parley";
	if (!any_router || store_lease(gw->st, "queue", node, LEASE_TTL_MS) != 0)
		return 0; /* nothing to offer to, or another node offers now */
	cJSON *w = waiting(gw, NULL);
	int assigned = 0;
	char full_team[256] = "";
	const cJSON *c;
	cJSON_ArrayForEach(c, w)
	{
		const char *team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "team"));
		if (!team || strcmp(team, full_team) == 0)
			continue; /* the list is team by team: a team with no room stays so this round */
		if (bots_owns(gw, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "id"))))
			continue; /* a bot holds it: not the queue's */
		char *json = cJSON_PrintUnformatted(c);
		char agent[128] = "";
		for (size_t i = 0; json && !agent[0] && i < topo->n_steps; i++) {
			parley_instance *r = topo->steps[i];
			if (offers(r) && r->plugin->desc->offer(r->data, json, agent, sizeof(agent)) != 0)
				agent[0] = '\0';
		}
		free(json);
		if (agent[0] && assign(gw, c, agent) == 0) {
			assigned++;
			/* Time in queue, per team: parley_queue_wait_ms_total / parley_queue_assignments_total. */
			const char *since = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "queued_at"));
			int64_t from = since ? time_parse_ms(since) : 0, now = clock_now_ms();
			metrics_add(gw->metrics, "queue_assignments_total", "team", team, 1);
			metrics_add(gw->metrics, "queue_wait_ms_total", "team", team,
			            from > 0 && now > from ? now - from : 0);
		} else
			snprintf(full_team, sizeof(full_team), "%s", team);
	}
	cJSON_Delete(w);
	return assigned;
}

static void *queue_main(void *arg)
{
	struct queue *q = arg;
	pthread_mutex_lock(&q->lock);
	while (!q->stop) {
		if (!q->kicked) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += SWEEP_MS / 1000;
			pthread_cond_timedwait(&q->cv, &q->lock, &ts);
		}
		q->kicked = 0;
		if (q->stop)
			break;
		pthread_mutex_unlock(&q->lock);
		/* The routers as they are now: a reload may have changed them. */
		struct topology *topo = topology_get(q->gw);
		int assigned = topo ? round_once(q->gw, topo) : 0;
		topology_put(topo);
		if (assigned > 0) {
			char *state = queue_describe(q->gw, NULL);
			/* {"ok":true,"queues":[...]}: subscribers get the queues. */
			if (state && strncmp(state, "{\"ok\":true,", 11) == 0) {
				char *js = str_printf("{%s", state + 11);
				if (js)
					bus_publish(q->gw->bus, "queue.updated", js, strlen(js));
				free(js);
			}
			free(state);
		}
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int queue_start(struct queue **out, struct gateway *gw)
{
	struct queue *q = calloc(1, sizeof(*q));
	if (!q)
		return PARLEY_ENOMEM;
	q->gw = gw;
	q->kicked = 1; /* what waited while the gateway was down is offered at once */
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (thread_start(&q->thread, queue_main, q, "parley:queue") != 0) {
		pthread_mutex_destroy(&q->lock);
		pthread_cond_destroy(&q->cv);
		free(q);
		return PARLEY_EIO;
	}
	*out = q;
	return 0;
}

void queue_stop(struct queue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	const char *node = q->gw->cfg.node_name ? q->gw->cfg.node_name : "parley";
	store_lease_release(q->gw->st, "queue", node);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->cv);
	free(q);
}

void queue_kick(struct queue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->kicked = 1;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->lock);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/*
 * How long the team takes per conversation, from its latest resolutions:
 * the median time from the last assignment to the resolution, and how many
 * agents resolved them.  0 (unknown) with fewer than 3 such resolutions.
 */
static int64_t handling(struct gateway *gw, const char *team, int *agents)
{
	char *req = str_printf("{\"team\":\"%s\",\"limit\":50}", team), *reply = NULL;
	int rv = req ? store_query(gw->st, "queue.handling", req, &reply) : PARLEY_ENOMEM;
	free(req);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	int64_t d[50];
	size_t n = 0;
	char seen[16][128];
	int ns = 0;
	const cJSON *row;
	cJSON_ArrayForEach(row, cJSON_GetObjectItemCaseSensitive(r, "resolved"))
	{
		const char *at = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "assigned_at"));
		const char *done = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "resolved_at"));
		const char *who = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(row, "assignee"));
		int64_t a = at ? time_parse_ms(at) : 0, z = done ? time_parse_ms(done) : 0;
		if (a <= 0 || z < a || n == 50)
			continue;
		d[n++] = z - a;
		int known = 0;
		for (int i = 0; who && i < ns; i++)
			known |= strcmp(seen[i], who) == 0;
		if (who && !known && ns < 16)
			snprintf(seen[ns++], sizeof(seen[0]), "%s", who);
	}
	cJSON_Delete(r);
	*agents = ns > 0 ? ns : 1;
	if (n < 3)
		return 0;
	qsort(d, n, sizeof(d[0]), cmp_i64);
	return d[n / 2];
}

char *queue_describe(struct gateway *gw, const cJSON *req)
{
	const char *team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "team"));
	cJSON *w = waiting(gw, team);
	if (!w)
		return ops_error("unavailable", "the store cannot list the queues now");
	cJSON *r = cJSON_CreateObject();
	cJSON_AddBoolToObject(r, "ok", 1);
	cJSON *queues = cJSON_AddArrayToObject(r, "queues");
	cJSON *cur = NULL;
	const char *cur_team = NULL;
	int position = 0, agents = 1;
	int64_t now = clock_now_ms(), handle_ms = 0;
	const cJSON *c;
	cJSON_ArrayForEach(c, w)
	{
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "team"));
		if (!t || bots_owns(gw, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "id"))))
			continue; /* a bot's conversation waits for no agent */
		if (!cur_team || strcmp(cur_team, t) != 0) {
			cJSON *one = cJSON_CreateObject();
			cJSON_AddStringToObject(one, "team", t);
			handle_ms = handling(gw, t, &agents);
			if (handle_ms > 0) {
				cJSON_AddNumberToObject(one, "median_handling_s", (double)(handle_ms / 1000));
				cJSON_AddNumberToObject(one, "agents", agents);
			}
			cur = cJSON_AddArrayToObject(one, "waiting");
			cJSON_AddItemToArray(queues, one);
			cur_team = t;
			position = 0;
		}
		cJSON *e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "conversation_id",
		                        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "id")));
		cJSON_AddNumberToObject(e, "position", ++position);
		/* Ahead of it, position - 1 conversations, served agents at a time: an honest guess, or none. */
		if (handle_ms > 0)
			cJSON_AddNumberToObject(e, "estimated_wait_s",
			                        (double)((((position - 1) / agents) + 1) * handle_ms / 1000));
		const char *prio = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "priority"));
		cJSON_AddStringToObject(e, "priority", prio ? prio : "normal");
		const char *since = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "queued_at"));
		if (since) {
			cJSON_AddStringToObject(e, "queued_at", since);
			int64_t ms = time_parse_ms(since);
			cJSON_AddNumberToObject(e, "waited_s", ms > 0 && now > ms ? (double)((now - ms) / 1000) : 0);
		}
		cJSON_AddItemToArray(cur, e);
	}
	char *s = cJSON_PrintUnformatted(r);
	cJSON_Delete(r);
	cJSON_Delete(w);
	return s;
}
