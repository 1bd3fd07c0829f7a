/*
 * identify.c: every address (URN) resolves to one contact.  An inbound
 * envelope's `from` is looked up with the addresses provably the same person
 * uses elsewhere (the same E.164 number as tel:+N and whatsapp:N; e-mail
 * addresses case-insensitively); the contact found, or a new one, becomes
 * the envelope's contact_id.  The store creates new contacts and links the
 * address in the same transaction as the message.  Until then the decision
 * is remembered here, so two messages from a new customer in successive
 * batches get one contact, not two.  What the store confirmed is cached
 * (address -> contact) until the host's epoch moves: merges and other
 * changes made outside the pipeline empty the cache.
 */
#include <parley/parley.h>

#include "strmap.h"

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
	struct strmap known;   /* urn -> contact id, committed, valid while epoch holds */
	uint64_t known_epoch;
};

#define KNOWN_MAX 200000
/*
 * An address is a key: it is never cut short (two long addresses sharing a
 * prefix would become one customer).  The host refuses envelopes with
 * addresses over 512 bytes; this holds that plus a scheme change.
 */
#define URN_MAX 640

static const struct parley_config_key config_map[] = {
        {"link_phone", PARLEY_CFG_BOOL, "true", 0, "treat tel:+N and whatsapp:N (the same number) as one person"},
        {NULL, 0, NULL, 0, NULL},
};

/* The envelope's address and those provably the same person's (up to 3); 0 when from is too long. */
static size_t candidates(struct identify *d, const char *from, char out[3][URN_MAX])
{
	size_t n = 0;
	if (strlen(from) + 16 >= URN_MAX)
		return 0;
	snprintf(out[n++], URN_MAX, "%s", from);
	if (strncmp(from, "mailto:", 7) == 0) {
		for (char *p = out[0]; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		return n;
	}
	if (!d->link_phone)
		return n;
	const char *digits = NULL;
	if (strncmp(from, "whatsapp:", 9) == 0)
		digits = from + 9;
	else if (strncmp(from, "tel:+", 5) == 0)
		digits = from + 5;
	if (!digits || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) < 6)
		return n;
	if (strncmp(from, "whatsapp:", 9) == 0)
		snprintf(out[n++], URN_MAX, "tel:+%s", digits);
	else
		snprintf(out[n++], URN_MAX, "whatsapp:%s", digits);
	return n;
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
	char urns[3][URN_MAX];
	size_t n = candidates(d, from, urns);
	if (n == 0) {
		h->log(d->inst, PARLEY_LOG_WARN, "an address of %zu bytes is too long to be a contact's", strlen(from));
		return PARLEY_EINVAL;
	}
	char id[32] = "";
	uint64_t epoch = h->epoch(d->inst);
	pthread_mutex_lock(&d->lock);
	if (epoch != d->known_epoch) {
		strmap_free(&d->known);
		d->known_epoch = epoch;
	}
	for (size_t i = 0; i < n && !id[0]; i++) {
		const char *p = strmap_get(&d->pending, urns[i]);
		if (!p)
			p = strmap_get(&d->known, urns[i]);
		if (p)
			snprintf(id, sizeof(id), "%s", p[0] == '+' ? p + 1 : p);
	}
	pthread_mutex_unlock(&d->lock);
	int created = 0;
	if (!id[0]) {
		cJSON *req = cJSON_CreateObject();
		cJSON *arr = cJSON_AddArrayToObject(req, "urns");
		for (size_t i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, cJSON_CreateString(urns[i]));
		char *text = cJSON_PrintUnformatted(req);
		cJSON_Delete(req);
		char *reply = NULL;
		int rv = h->store_query(d->inst, "contact.lookup", text, &reply);
		free(text);
		if (rv == 0) {
			cJSON *r = cJSON_Parse(reply);
			const char *cid = cJSON_GetStringValue(
			        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "contact"), "id"));
			if (cid)
				snprintf(id, sizeof(id), "%s", cid);
			cJSON_Delete(r);
		} else if (rv != PARLEY_ENOENT) {
			free(reply);
			return rv; /* the store is unwell: the provider retries */
		}
		free(reply);
		if (!id[0]) {
			h->new_id(id);
			created = 1;
		}
	}
	/* Remember until committed, so the next batches agree. */
	char val[40];
	snprintf(val, sizeof(val), "%s%s", created ? "+" : "", id);
	pthread_mutex_lock(&d->lock);
	if (!strmap_get(&d->pending, urns[0]))
		strmap_put(&d->pending, urns[0], val);
	pthread_mutex_unlock(&d->lock);
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
	char urns[3][URN_MAX];
	if (candidates(d, from, urns) == 0)
		return;
	int announce = 0;
	uint64_t epoch = h->epoch(d->inst);
	pthread_mutex_lock(&d->lock);
	if (result == 0 && epoch == d->known_epoch) {
		if (d->known.n >= KNOWN_MAX)
			strmap_free(&d->known);
		strmap_put(&d->known, urns[0], cid);
	}
	const char *p = strmap_get(&d->pending, urns[0]);
	if (p && strcmp(p[0] == '+' ? p + 1 : p, cid) == 0) {
		announce = p[0] == '+' && result == 0;
		/* Committed (the store now answers lookups) or failed (the retry decides anew). */
		strmap_del(&d->pending, urns[0]);
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
