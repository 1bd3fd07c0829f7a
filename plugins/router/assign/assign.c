/*
 * assign.c: the `assign` router.  Gives a conversation routed to a team (by
 * `rules`, or default_team) to one of the team's agents:
 *
 *   - route: { type: assign, config: {
 *       strategy: round_robin,            # or least_busy
 *       teams: { billing: [alice, bob, carol] },
 *       agents: { alice: { capacity: 5 }, carol: { available: false } } } }
 *
 * An agent takes conversations while available and under capacity (open
 * conversations assigned).  A conversation keeps its agent while that agent
 * is available.  Availability can change at run time: the key
 * "available:<agent>" ("true"/"false") in this router's key-value state
 * (control op state.set) overrides the config.  The decision goes into the
 * envelope's `route.agent`; the store records it; conversation.assigned is
 * published once committed.
 */
#include <parley/parley.h>

#include <parley/strmap.h>

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct assign {
	const struct parley_host *host;
	parley_instance *inst;
	cJSON *config;
	int least_busy;
	const char *default_team;
	pthread_mutex_t lock;
	struct strmap pending; /* conversation id -> "<+|=>agent" (+ newly assigned, = kept) */
	struct strmap next;    /* team -> round-robin position */
	/*
	 * What the store said, valid while the host's epoch holds (state.set and
	 * conversation.assign move it): agent -> "1"/"0" (under avail_lock: the
	 * prepare thread and the queue's offers read it), conversation -> its
	 * agent (under lock).
	 */
	pthread_mutex_t avail_lock;
	struct strmap avail, assigned;
	uint64_t epoch;
};

static const struct parley_config_key config_map[] = {
        {"strategy", PARLEY_CFG_STRING, "round_robin", 0, "round_robin or least_busy"},
        {"teams", PARLEY_CFG_MAP, NULL, PARLEY_CFG_REQUIRED, "team name -> list of agent names"},
        {"agents", PARLEY_CFG_MAP, NULL, 0, "agent name -> {capacity (default 10), available (default true)}"},
        {"default_team", PARLEY_CFG_STRING, NULL, 0, "the team for conversations no rule routed"},
        {NULL, 0, NULL, 0, NULL},
};

static int available_uncached(struct assign *a, const char *agent)
{
	char key[160], *val = NULL;
	size_t len;
	snprintf(key, sizeof(key), "available:%s", agent);
	if (a->host->kv_get(a->inst, key, &val, &len) == 0) {
		int on = strcmp(val, "true") == 0 || strcmp(val, "1") == 0;
		free(val);
		return on;
	}
	const cJSON *ag =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a->config, "agents"), agent);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ag, "available");
	if (cJSON_IsString(v))
		return strcmp(v->valuestring, "false") != 0 && strcmp(v->valuestring, "no") != 0;
	return v ? cJSON_IsTrue(v) : 1;
}

/* Reads the store once per agent and epoch. */
static int available(struct assign *a, const char *agent)
{
	pthread_mutex_lock(&a->avail_lock);
	const char *v = strmap_get(&a->avail, agent);
	int known = v != NULL, on = v && v[0] == '1';
	pthread_mutex_unlock(&a->avail_lock);
	if (known)
		return on;
	on = available_uncached(a, agent);
	pthread_mutex_lock(&a->avail_lock);
	strmap_put(&a->avail, agent, on ? "1" : "0");
	pthread_mutex_unlock(&a->avail_lock);
	return on;
}

/* Forget what availability the store said (the epoch moved). */
static void avail_forget(struct assign *a)
{
	pthread_mutex_lock(&a->avail_lock);
	strmap_free(&a->avail);
	pthread_mutex_unlock(&a->avail_lock);
}

static int capacity(struct assign *a, const char *agent)
{
	const cJSON *ag =
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a->config, "agents"), agent);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(ag, "capacity");
	if (cJSON_IsString(v))
		return (int)strtol(v->valuestring, NULL, 10);
	return cJSON_IsNumber(v) ? v->valueint : 10;
}

static cJSON *route_of(const struct parley_host *h, const parley_envelope *env)
{
	char *prev = h->envelope_get_json(env, "route");
	cJSON *route = prev ? cJSON_Parse(prev) : NULL;
	free(prev);
	if (!cJSON_IsObject(route)) {
		cJSON_Delete(route);
		route = cJSON_CreateObject();
	}
	return route;
}

static void set_agent(const struct parley_host *h, parley_envelope *env, cJSON *route, const char *team,
                      const char *agent)
{
	cJSON_DeleteItemFromObjectCaseSensitive(route, "agent");
	cJSON_AddStringToObject(route, "agent", agent);
	if (!cJSON_GetObjectItemCaseSensitive(route, "team"))
		cJSON_AddStringToObject(route, "team", team);
	char *js = cJSON_PrintUnformatted(route);
	h->envelope_set_json(env, "route", js);
	free(js);
}

/* The agent the conversation has now, if the store knows the conversation. */
static char *current_assignee(struct assign *a, const char *contact, const char *conv)
{
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "contact_id", contact);
	char *req = cJSON_PrintUnformatted(q), *reply = NULL, *out = NULL;
	cJSON_Delete(q);
	int rv = req ? a->host->store_query(a->inst, "conversation.current", req, &reply) : PARLEY_ENOMEM;
	free(req);
	if (rv == 0) {
		cJSON *j = cJSON_Parse(reply);
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "conversation");
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "id"));
		const char *who = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "assignee"));
		if (id && who && strcmp(id, conv) == 0)
			out = strdup(who);
		cJSON_Delete(j);
	}
	free(reply);
	return out;
}

/*
 * Choose an available agent of team (members) under capacity, by the
 * strategy, into agent ("" when none).  Loads are the store's open
 * conversations per agent plus decisions not yet committed.  With
 * pending_conv, the choice is remembered as that conversation's pending
 * decision (the pipeline's; after_commit settles it); the queue's offers
 * pass NULL, their assignment being committed at once.
 */
static void pick(struct assign *a, const char *team, const cJSON *members, const char *pending_conv, char *agent,
                 size_t cap)
{
	const struct parley_host *h = a->host;
	agent[0] = '\0';
	/* Loads: open conversations per agent, plus decisions not yet committed. */
	char *reply = NULL;
	cJSON *load = NULL;
	if (h->store_query(a->inst, "agents.load", "{}", &reply) == 0) {
		cJSON *j = cJSON_Parse(reply);
		load = cJSON_DetachItemFromObjectCaseSensitive(j, "load");
		cJSON_Delete(j);
	}
	free(reply);
	int n = cJSON_GetArraySize(members);
	for (int k = 0; k < n; k++)
		if (cJSON_IsString(cJSON_GetArrayItem(members, k)))
			available(a, cJSON_GetArrayItem(members, k)->valuestring); /* warm the cache outside the lock */
	/*
	 * The round-robin position is the team's, kept in the store: it survives
	 * a restart, and nodes sharing the store take turns with one position.
	 */
	int64_t shared = 0;
	char key[160];
	snprintf(key, sizeof(key), "next:%s", team);
	int have_shared =
	        !a->least_busy && PARLEY_HOST_HAS(h, counter_add) && h->counter_add(a->inst, key, 1, &shared) == 0;
	pthread_mutex_lock(&a->lock);
	const char *pos = strmap_get(&a->next, team);
	int start = have_shared && n > 0 ? (int)((shared - 1) % n) : pos ? (int)strtol(pos, NULL, 10) : 0;
	int best = -1, skipped = 0;
	double best_load = 0;
	for (int k = 0; k < n; k++) {
		int i = a->least_busy ? k : (start + k) % n;
		const cJSON *m = cJSON_GetArrayItem(members, i);
		if (!cJSON_IsString(m) || !available(a, m->valuestring))
			continue;
		double l = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(load, m->valuestring));
		if (l != l)
			l = 0; /* NaN: no open conversations */
		for (size_t s = 0; s < a->pending.cap; s++)
			if (a->pending.keys[s] && a->pending.vals[s][0] == '+' &&
			    strcmp(a->pending.vals[s] + 1, m->valuestring) == 0)
				l += 1;
		if (l >= capacity(a, m->valuestring))
			continue;
		if (best < 0 || (a->least_busy && l < best_load)) {
			best = i;
			best_load = l;
			skipped = k;
			if (!a->least_busy)
				break;
		}
	}
	if (best >= 0) {
		snprintf(agent, cap, "%s", cJSON_GetArrayItem(members, best)->valuestring);
		char np[16], val[136];
		snprintf(np, sizeof(np), "%d", (best + 1) % n);
		strmap_put(&a->next, team, np);
		snprintf(val, sizeof(val), "+%s", agent);
		if (pending_conv)
			strmap_put(&a->pending, pending_conv, val);
	}
	pthread_mutex_unlock(&a->lock);
	/* The shared position moves past the agents passed over, as the local one does. */
	int64_t ignored;
	if (have_shared && best >= 0 && skipped > 0)
		h->counter_add(a->inst, key, skipped, &ignored);
	cJSON_Delete(load);
}

static int as_process(void *data, parley_envelope *env)
{
	struct assign *a = data;
	const struct parley_host *h = a->host;
	const char *dir = h->envelope_get_str(env, "direction");
	const char *kind = h->envelope_get_str(env, "kind");
	const char *conv = h->envelope_get_str(env, "conversation_id");
	const char *contact = h->envelope_get_str(env, "contact_id");
	if (!dir || strcmp(dir, "inbound") != 0 || !kind || strcmp(kind, "message") != 0 || !conv || !contact)
		return 0;
	cJSON *route = route_of(h, env);
	const char *team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(route, "team"));
	if (!team)
		team = a->default_team;
	const cJSON *members =
	        team ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a->config, "teams"), team)
	             : NULL;
	if (!cJSON_IsArray(members) || cJSON_GetObjectItemCaseSensitive(route, "agent")) {
		cJSON_Delete(route);
		return 0;
	}
	char agent[128] = "";
	uint64_t epoch = h->epoch(a->inst);
	/* Availability is only read here; refresh it before taking the lock. */
	if (epoch != a->epoch)
		avail_forget(a);
	pthread_mutex_lock(&a->lock);
	if (epoch != a->epoch) {
		strmap_free(&a->assigned);
		a->epoch = epoch;
	}
	const char *p = strmap_get(&a->pending, conv);
	if (p)
		snprintf(agent, sizeof(agent), "%s", p + 1);
	const char *known = p ? NULL : strmap_get(&a->assigned, conv);
	char *cur = known ? strdup(known) : NULL;
	pthread_mutex_unlock(&a->lock);
	if (agent[0]) {
		set_agent(h, env, route, team, agent);
		cJSON_Delete(route);
		return 0;
	}
	if (!cur) {
		cur = current_assignee(a, contact, conv);
		if (cur) {
			pthread_mutex_lock(&a->lock);
			strmap_put(&a->assigned, conv, cur);
			pthread_mutex_unlock(&a->lock);
		}
	}
	if (cur && available(a, cur)) {
		/* Sticky: the conversation keeps its agent while that agent is available. */
		set_agent(h, env, route, team, cur);
		free(cur);
		cJSON_Delete(route);
		return 0;
	}
	free(cur);
	pick(a, team, members, conv, agent, sizeof(agent));
	if (agent[0])
		set_agent(h, env, route, team, agent);
	else
		h->log(a->inst, PARLEY_LOG_INFO, "no available agent with capacity in team '%s': conversation %s waits",
		       team, conv);
	cJSON_Delete(route);
	return 0;
}

/* The queue's offer (parley.h): an agent of the conversation's team who can take it now. */
static int as_offer(void *data, const char *conversation_json, char *agent, size_t cap)
{
	struct assign *a = data;
	agent[0] = '\0';
	cJSON *c = cJSON_Parse(conversation_json);
	const char *team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "team"));
	const cJSON *members =
	        team ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(a->config, "teams"), team)
	             : NULL;
	if (cJSON_IsArray(members)) {
		/* Availability may have changed (state.set moves the epoch): read it again, as process() does. */
		uint64_t epoch = a->host->epoch(a->inst);
		if (epoch != a->epoch) {
			avail_forget(a);
			pthread_mutex_lock(&a->lock);
			strmap_free(&a->assigned);
			a->epoch = epoch;
			pthread_mutex_unlock(&a->lock);
		}
		pick(a, team, members, NULL, agent, cap);
	}
	cJSON_Delete(c);
	return agent[0] ? 0 : PARLEY_ENOENT;
}

static void as_after_commit(void *data, const parley_envelope *env, int result)
{
	struct assign *a = data;
	const struct parley_host *h = a->host;
	const char *conv = h->envelope_get_str(env, "conversation_id");
	if (!conv)
		return;
	char agent[128] = "";
	pthread_mutex_lock(&a->lock);
	const char *p = strmap_get(&a->pending, conv);
	if (p) {
		if (p[0] == '+')
			snprintf(agent, sizeof(agent), "%s", p + 1);
		strmap_del(&a->pending, conv);
	}
	if (agent[0] && result == 0 && h->epoch(a->inst) == a->epoch)
		strmap_put(&a->assigned, conv, agent);
	pthread_mutex_unlock(&a->lock);
	if (result != 0 || !agent[0])
		return;
	cJSON *route = route_of(h, env);
	cJSON *ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "conversation_id", conv);
	cJSON_AddStringToObject(ev, "assignee", agent);
	const char *team = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(route, "team"));
	if (team)
		cJSON_AddStringToObject(ev, "team", team);
	cJSON_AddStringToObject(ev, "by", "router");
	char *js = cJSON_PrintUnformatted(ev);
	h->publish(a->inst, "conversation.assigned", js);
	free(js);
	cJSON_Delete(ev);
	cJSON_Delete(route);
}

static int as_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	(void)errmsg;
	struct assign *a = calloc(1, sizeof(*a));
	if (!a)
		return PARLEY_ENOMEM;
	a->host = h;
	a->inst = inst;
	char *cj = h->config_json(inst, NULL);
	a->config = cJSON_Parse(cj ? cj : "{}");
	free(cj);
	/* as_check has vetted strategy and teams before the host creates an instance. */
	a->least_busy = strcmp(h->config_str(inst, "strategy"), "least_busy") == 0;
	a->default_team = h->config_str(inst, "default_team");
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->avail_lock, NULL);
	*data = a;
	return 0;
}

static void as_destroy(void *data)
{
	struct assign *a = data;
	strmap_free(&a->pending);
	strmap_free(&a->next);
	strmap_free(&a->avail);
	strmap_free(&a->assigned);
	cJSON_Delete(a->config);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->avail_lock);
	free(a);
}

static int as_check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	(void)h;
	cJSON *c = cJSON_Parse(config_json);
	const char *strategy = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "strategy"));
	const char *def = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "default_team"));
	const cJSON *teams = cJSON_GetObjectItemCaseSensitive(c, "teams");
	int rv = 0;
	char buf[300];
	buf[0] = '\0';
	if (strategy && strcmp(strategy, "round_robin") != 0 && strcmp(strategy, "least_busy") != 0)
		snprintf(buf, sizeof(buf), "strategy '%s' is not round_robin or least_busy", strategy);
	else if (def && !cJSON_GetObjectItemCaseSensitive(teams, def))
		snprintf(buf, sizeof(buf), "default_team '%s' is not one of the teams", def);
	const cJSON *t;
	cJSON_ArrayForEach(t, teams) if (!buf[0] && (!cJSON_IsArray(t) || cJSON_GetArraySize(t) == 0))
	        snprintf(buf, sizeof(buf), "team '%s' must be a non-empty list of agent names", t->string);
	if (buf[0]) {
		*errmsg = strdup(buf);
		rv = PARLEY_EINVAL;
	}
	cJSON_Delete(c);
	return rv;
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_ROUTER,
        .name = "assign",
        .version = "1.0.0",
        .description = "assigns routed conversations to a team's available agents (round-robin or least-busy, sticky)",
        .config = config_map,
        .instance_create = as_create,
        .instance_destroy = as_destroy,
        .process = as_process,
        .after_commit = as_after_commit,
        .offer = as_offer,
        .check_config = as_check,
};

PARLEY_PLUGIN_DEFINE(plugin)
