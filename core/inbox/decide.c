/*
 * decide.c: the steps' proposals, answered by the conversation core from
 * the store's reads.  `identify` asks contact.decide for a sender, `thread`
 * asks conversation.decide for a message; both cache the answers until the
 * commit confirms them.  The group commit (commit.c) checks each proposal
 * again under the store's locks, with the same rules.
 */
#include "envelope.h"
#include "internal.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ids of up to 64 characters (the host's limit), never cut. */
#define ID_MAX 72

/* A read op's {key: {...}} reply, parsed; NULL with *rv set otherwise. req is consumed. */
static cJSON *read_object(struct inbox *ib, const char *op, cJSON *req, const char *key, int *rv, cJSON **root)
{
	char *text = cJSON_PrintUnformatted(req), *reply = NULL;
	*rv = text ? store_query(ib->st, op, text, &reply) : PARLEY_ENOMEM;
	free(text);
	*root = *rv == 0 ? cJSON_Parse(reply) : NULL;
	free(reply);
	cJSON_Delete(req);
	cJSON *o = cJSON_GetObjectItemCaseSensitive(*root, key);
	if (*rv == 0 && !cJSON_IsObject(o))
		*rv = PARLEY_ENOENT;
	return *rv == 0 ? o : NULL;
}

/* contact.decide {from, link_phone?}: {contact_id, created, urns: the addresses it covers}. */
static int contact_decide(struct inbox *ib, const cJSON *req, char **reply)
{
	struct inbox_rules r = ib->rules;
	const cJSON *lp = cJSON_GetObjectItemCaseSensitive(req, "link_phone");
	if (cJSON_IsBool(lp))
		r.link_phone = cJSON_IsTrue(lp);
	char urns[3][INBOX_URN_MAX];
	size_t n = inbox_candidates(&r, jstr(req, "from"), urns);
	if (n == 0)
		return inbox_fail(reply, PARLEY_EINVAL, "contact.decide needs from: an address of at most 512 bytes");
	cJSON *q = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(q, "urns");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(urns[i]));
	int rv;
	cJSON *root;
	const cJSON *c = read_object(ib, "contact.lookup", q, "contact", &rv, &root);
	if (rv != 0 && rv != PARLEY_ENOENT) {
		cJSON_Delete(root);
		return inbox_fail(reply, rv, "the store cannot look up contacts now");
	}
	char id[ID_MAX];
	const char *found = jstr(c, "id");
	if (found)
		snprintf(id, sizeof(id), "%s", found);
	else
		ulid_new(id);
	cJSON_Delete(root);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "contact_id", id);
	cJSON_AddBoolToObject(o, "created", !found);
	/* The addresses the decision covered: a step remembering a new contact remembers it for all. */
	cJSON *all = cJSON_AddArrayToObject(o, "urns");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(all, cJSON_CreateString(urns[i]));
	*reply = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return 0;
}

/*
 * conversation.decide {contact_id, channel, received_at, thread_ref?, reopen_within_ms?}:
 * {conversation_id, what: join|reopen|open, via: thread_ref|latest}.
 */
static int conversation_decide(struct inbox *ib, const cJSON *req, char **reply)
{
	struct inbox_rules r = ib->rules;
	const cJSON *rw = cJSON_GetObjectItemCaseSensitive(req, "reopen_within_ms");
	if (cJSON_IsNumber(rw) && rw->valuedouble >= 0)
		r.reopen_ms = (int64_t)rw->valuedouble;
	const char *contact = jstr(req, "contact_id"), *channel = jstr(req, "channel"), *ref = jstr(req, "thread_ref");
	if (!contact)
		return inbox_fail(reply, PARLEY_EINVAL, "conversation.decide needs contact_id");
	const char *what = NULL, *via = "latest";
	char id[ID_MAX] = "";
	int rv = 0;
	cJSON *root = NULL;
	if (ref && channel) {
		/* A reply naming an earlier message joins its conversation, however long ago it was resolved. */
		cJSON *q = cJSON_CreateObject();
		cJSON_AddStringToObject(q, "channel", channel);
		cJSON_AddStringToObject(q, "ref", ref);
		const cJSON *c = read_object(ib, "conversation.of_ref", q, "conversation", &rv, &root);
		if (c && jstr(c, "id") && strcmp(jstr(c, "contact_id") ? jstr(c, "contact_id") : "", contact) == 0) {
			snprintf(id, sizeof(id), "%s", jstr(c, "id"));
			what = jstr(c, "status") && strcmp(jstr(c, "status"), "resolved") == 0 ? "reopen" : "join";
			via = "thread_ref";
		}
		cJSON_Delete(root);
		root = NULL;
	}
	if (!what) {
		cJSON *q = cJSON_CreateObject();
		cJSON_AddStringToObject(q, "contact_id", contact);
		const cJSON *c = read_object(ib, "conversation.current", q, "conversation", &rv, &root);
		if (rv != 0 && rv != PARLEY_ENOENT) {
			cJSON_Delete(root);
			return inbox_fail(reply, rv, "the store cannot look up conversations now");
		}
		struct parley_conversation_rec latest = {
		        .id = jstr(c, "id"), .status = jstr(c, "status"), .resolved_at = jstr(c, "resolved_at")};
		enum inbox_choice ch = inbox_choose(&r, c ? &latest : NULL, jstr(req, "received_at"));
		what = ch == INBOX_JOIN ? "join" : ch == INBOX_REOPEN ? "reopen" : "open";
		if (ch == INBOX_OPEN)
			ulid_new(id);
		else
			snprintf(id, sizeof(id), "%s", latest.id);
	}
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "conversation_id", id);
	cJSON_AddStringToObject(o, "what", what);
	cJSON_AddStringToObject(o, "via", via);
	*reply = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cJSON_Delete(root);
	return 0;
}

int inbox_decide_op(struct inbox *ib, const char *op, const cJSON *req, char **reply)
{
	if (strcmp(op, "contact.decide") == 0)
		return contact_decide(ib, req, reply);
	if (strcmp(op, "conversation.decide") == 0)
		return conversation_decide(ib, req, reply);
	return PARLEY_ENOTSUP;
}
