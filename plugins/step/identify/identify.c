/*
 * identify.c: every address (URN) resolves to one contact.  Which contact,
 * and which addresses are provably the same person's (the same E.164
 * number as tel:+N and whatsapp:N; e-mail addresses case-insensitively),
 * is the conversation core's rule: this step asks it (contact.decide) and
 * sets the envelope's contact_id.  The group commit creates new contacts
 * and links the address in the same transaction as the message, checking
 * the proposal again under the store's locks.  Until then the proposal is
 * remembered here for every address it covers, so two messages from a new
 * customer in successive batches get one contact, not two.  What the store
 * confirmed is cached (address -> contact) until the host's epoch moves:
 * merges and other changes made outside the pipeline empty the cache.
 */
#include <parley/parley.h>

#include <parley/strmap.h>

#include <cjson/cJSON.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct identify {
	const struct parley_host *host;
	parley_instance *inst;
	int link_phone;
	pthread_mutex_t lock;
	struct strmap pending; /* urn -> contact id, "+" prefixed when new */
	struct strmap linked;  /* from -> the other addresses its pending decision covers, tab-separated */
	struct strmap known;   /* urn -> contact id, committed, valid while epoch holds */
	uint64_t known_epoch;
};

#define KNOWN_MAX 200000
/* The host takes ids of up to 64 characters: room for them, never a cut. */
#define ID_MAX 72

static const struct parley_config_key config_map[] = {
        {"link_phone", PARLEY_CFG_BOOL, "true", 0, "treat tel:+N and whatsapp:N (the same number) as one person"},
        {NULL, 0, NULL, 0, NULL},
};

/* The core's proposal for from: the contact id, whether it is new, and the addresses it covers. */
static int decide(struct identify *d, const char *from, char id[ID_MAX], int *created, cJSON **urns)
{
	const struct parley_host *h = d->host;
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "from", from);
	cJSON_AddBoolToObject(req, "link_phone", d->link_phone);
	char *text = cJSON_PrintUnformatted(req), *reply = NULL;
	cJSON_Delete(req);
	int rv = text ? h->store_query(d->inst, "contact.decide", text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 ? cJSON_Parse(reply) : NULL;
	if (rv != 0)
		h->log(d->inst, PARLEY_LOG_WARN, "no contact for an address: %s", reply ? reply : h->strerror(rv));
	free(reply);
	const char *cid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "contact_id"));
	if (rv == 0 && !cid)
		rv = PARLEY_EINTERNAL;
	if (rv == 0) {
		snprintf(id, ID_MAX, "%s", cid);
		*created = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "created"));
		*urns = cJSON_DetachItemFromObjectCaseSensitive(r, "urns");
	}
	cJSON_Delete(r);
	return rv;
}

static int id_process(void *data, parley_envelope *env)
{
	struct identify *d = data;
	const struct parley_host *h = d->host;
	const char *dir = h->envelope_get_str(env, "direction");
	const char *kind = h->envelope_get_str(env, "kind");
	const char *from = h->envelope_get_str(env, "from");
	if (!dir || strcmp(dir, "inbound") != 0 || !from || !kind || strcmp(kind, "status") == 0 ||
	    h->envelope_get_str(env, "contact_id"))
		return 0;
	char id[ID_MAX] = "";
	uint64_t epoch = h->epoch(d->inst);
	pthread_mutex_lock(&d->lock);
	if (epoch != d->known_epoch) {
		strmap_free(&d->known);
		d->known_epoch = epoch;
	}
	const char *p = strmap_get(&d->pending, from);
	if (!p)
		p = strmap_get(&d->known, from);
	if (p)
		snprintf(id, sizeof(id), "%s", p[0] == '+' ? p + 1 : p);
	pthread_mutex_unlock(&d->lock);
	if (id[0])
		return h->envelope_set_str(env, "contact_id", id);
	int created = 0;
	cJSON *urns = NULL;
	int rv = decide(d, from, id, &created, &urns);
	if (rv != 0)
		return rv; /* the store is unwell or the address cannot be a key: not stored, the provider retries */
	/* A new contact another address of the same person was just given wins (tel:+N, then whatsapp:N). */
	char val[ID_MAX + 8];
	pthread_mutex_lock(&d->lock);
	const cJSON *u;
	if (created) {
		cJSON_ArrayForEach(u, urns)
		{
			const char *q = cJSON_IsString(u) ? strmap_get(&d->pending, u->valuestring) : NULL;
			if (q && q[0] == '+') {
				snprintf(id, sizeof(id), "%s", q + 1);
				created = 0;
				break;
			}
		}
	}
	/* Remember until committed, for the raw address and every address the decision covered. */
	snprintf(val, sizeof(val), "%s%s", created ? "+" : "", id);
	if (!strmap_get(&d->pending, from))
		strmap_put(&d->pending, from, val);
	char list[3 * 660] = "";
	size_t len = 0;
	cJSON_ArrayForEach(u, urns)
	{
		if (!cJSON_IsString(u) || strcmp(u->valuestring, from) == 0 || strmap_get(&d->pending, u->valuestring))
			continue;
		strmap_put(&d->pending, u->valuestring, val);
		int w = snprintf(list + len, sizeof(list) - len, "%s%s", len ? "\t" : "", u->valuestring);
		if (w > 0 && (size_t)w < sizeof(list) - len)
			len += (size_t)w;
	}
	if (len && !strmap_get(&d->linked, from))
		strmap_put(&d->linked, from, list);
	pthread_mutex_unlock(&d->lock);
	cJSON_Delete(urns);
	return h->envelope_set_str(env, "contact_id", id);
}

static void id_after_commit(void *data, const parley_envelope *env, int result)
{
	struct identify *d = data;
	const struct parley_host *h = d->host;
	const char *from = h->envelope_get_str(env, "from");
	const char *cid = h->envelope_get_str(env, "contact_id");
	if (!from || !cid)
		return;
	int announce = 0;
	uint64_t epoch = h->epoch(d->inst);
	pthread_mutex_lock(&d->lock);
	if (result == 0 && epoch == d->known_epoch) {
		if (d->known.n >= KNOWN_MAX)
			strmap_free(&d->known);
		strmap_put(&d->known, from, cid);
	}
	const char *p = strmap_get(&d->pending, from);
	if (p && strcmp(p[0] == '+' ? p + 1 : p, cid) == 0) {
		announce = p[0] == '+' && result == 0;
		/* Committed (the store now answers lookups) or failed (the retry decides anew). */
		strmap_del(&d->pending, from);
		const char *l = strmap_get(&d->linked, from);
		char *list = l ? strdup(l) : NULL;
		strmap_del(&d->linked, from);
		for (char *u = list, *next; u && *u; u = next) {
			next = strchr(u, '\t');
			if (next)
				*next++ = '\0';
			const char *q = strmap_get(&d->pending, u);
			if (q && strcmp(q[0] == '+' ? q + 1 : q, cid) == 0)
				strmap_del(&d->pending, u);
		}
		free(list);
	}
	pthread_mutex_unlock(&d->lock);
	if (announce) {
		cJSON *ev = cJSON_CreateObject();
		cJSON_AddStringToObject(ev, "contact_id", cid);
		cJSON_AddStringToObject(ev, "urn", from);
		cJSON_AddStringToObject(ev, "channel", h->envelope_get_str(env, "channel"));
		char *js = cJSON_PrintUnformatted(ev);
		h->publish(d->inst, "contact.created", js);
		free(js);
		cJSON_Delete(ev);
	}
}

static int id_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	(void)errmsg;
	struct identify *d = calloc(1, sizeof(*d));
	if (!d)
		return PARLEY_ENOMEM;
	d->host = h;
	d->inst = inst;
	h->config_bool(inst, "link_phone", &d->link_phone);
	pthread_mutex_init(&d->lock, NULL);
	*data = d;
	return 0;
}

static void id_destroy(void *data)
{
	struct identify *d = data;
	strmap_free(&d->pending);
	strmap_free(&d->linked);
	strmap_free(&d->known);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_STEP,
        .name = "identify",
        .version = "1.0.0",
        .description = "resolves each sender's address to one contact (tel:/whatsapp: numbers linked)",
        .config = config_map,
        .instance_create = id_create,
        .instance_destroy = id_destroy,
        .process = id_process,
        .after_commit = id_after_commit,
};

PARLEY_PLUGIN_DEFINE(plugin)
