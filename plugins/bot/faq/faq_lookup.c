/*
 * faq_lookup.c: the lookup an intent may ask for (faq_lookup): the intent,
 * its slots and the conversation POSTed as JSON to lookup_url, signed with
 * HMAC-SHA256 of lookup_secret in X-Parley-Signature, within lookup_timeout.
 */
#include "faq_internal.h"

#include <parley/parley.h>

#include "provider.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int faq_lookup(const struct faq *f, const struct faq_result *r, const char *conversation_id, const char *contact_id,
               char **reply_json)
{
	if (!reply_json)
		return PARLEY_EINVAL;
	*reply_json = NULL;
	const struct intent *in = r ? r->priv : NULL;
	if (!f || !in || !in->lookup || !f->lookup_url)
		return PARLEY_ENOTSUP;
	if (r->missing)
		return PARLEY_ENOENT;
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "intent", in->name);
	cJSON *slots = cJSON_AddObjectToObject(req, "slots");
	for (size_t i = 0; i < r->nslots; i++)
		cJSON_AddStringToObject(slots, r->slots[i].name, r->slots[i].value);
	cJSON_AddStringToObject(req, "lang", r->lang);
	if (conversation_id)
		cJSON_AddStringToObject(req, "conversation_id", conversation_id);
	else
		cJSON_AddNullToObject(req, "conversation_id");
	if (contact_id)
		cJSON_AddStringToObject(req, "contact_id", contact_id);
	else
		cJSON_AddNullToObject(req, "contact_id");
	char *body = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (!body)
		return PARLEY_ENOMEM;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	if (!HMAC(EVP_sha256(), f->lookup_secret, (int)strlen(f->lookup_secret), (const unsigned char *)body,
	          strlen(body), mac, &maclen)) {
		free(body);
		return PARLEY_EINTERNAL;
	}
	char sig[128] = "X-Parley-Signature: sha256=";
	size_t at = strlen(sig);
	for (unsigned int i = 0; i < maclen && at + 3 < sizeof(sig); i++)
		at += (size_t)snprintf(sig + at, sizeof(sig) - at, "%02x", mac[i]);
	const char *headers[] = {"Content-Type: application/json", "Accept: application/json", sig, NULL};
	/* A client per call: lookups of several worker threads never share a handle. */
	struct prov_client client;
	prov_client_init(&client, f->timeout_ms, 256 * 1024);
	struct prov_http res;
	int64_t started = now_ms();
	int got = prov_request(&client, "POST", f->lookup_url, headers, body, strlen(body), NULL, &res);
	int64_t took = now_ms() - started;
	prov_client_fini(&client);
	free(body);
	int rv = 0;
	if (got != 0)
		/* libcurl's own clock may call it a timeout a millisecond before ours does. */
		rv = took >= f->timeout_ms || strstr(res.error, "timed out") ? PARLEY_ETIMEDOUT : PARLEY_EIO;
	else if (res.status < 200 || res.status > 299)
		rv = PARLEY_EIO;
	cJSON *reply = rv == 0 ? cJSON_Parse(res.body) : NULL;
	if (rv == 0 && !cJSON_IsObject(reply))
		rv = PARLEY_EINVAL;
	cJSON_Delete(reply);
	if (rv == 0)
		*reply_json = res.body, res.body = NULL;
	prov_http_free(&res);
	return rv;
}
