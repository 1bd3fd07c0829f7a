/* inbox.c: the conversation core's door (see inbox.h) and its small shared helpers. */
#include "internal.h"
#include "store.h"

#include <stdlib.h>
#include <string.h>

struct inbox *inbox_open(struct store *st, const struct inbox_rules *rules, void (*changed)(void *), void *arg)
{
	struct inbox *ib = calloc(1, sizeof(*ib));
	if (!ib)
		return NULL;
	ib->st = st;
	ib->t = store_typed(st);
	ib->data = store_data(st);
	ib->rules = *rules;
	ib->changed = changed;
	ib->changed_arg = arg;
	return ib;
}

void inbox_close(struct inbox *ib)
{
	free(ib);
}

void inbox_set_promises(struct inbox *ib, const struct sla_config *sla, const struct survey_config *surveys)
{
	ib->sla = sla;
	ib->surveys = surveys;
}

int inbox_op(struct inbox *ib, const char *op, const char *request_json, char **reply)
{
	*reply = NULL;
	cJSON *req = cJSON_Parse(request_json ? request_json : "{}");
	if (!cJSON_IsObject(req)) {
		cJSON_Delete(req);
		return inbox_fail(reply, PARLEY_EINVAL, "the request is not a JSON object");
	}
	/* The proposals need only the store's reads; the changes need the typed contract. */
	int rv = inbox_decide_op(ib, op, req, reply);
	if (rv == PARLEY_ENOTSUP && ib->t)
		rv = inbox_conversation_op(ib, op, req, reply);
	if (rv == PARLEY_ENOTSUP && ib->t)
		rv = inbox_contact_op(ib, op, req, reply);
	cJSON_Delete(req);
	if (rv == PARLEY_ENOTSUP) {
		rv = store_query(ib->st, op, request_json, reply);
		/* An ABI 1.0/1.1 store made the change itself: the caches are told here, as for the core's own. */
		static const char *const changes[] = {
		        "conversation.resolve", "conversation.reopen", "conversation.assign", "conversation.set",
		        "contact.update",       "contacts.merge",      "contacts.unmerge",    "conversations.wake"};
		for (size_t i = 0; rv == 0 && !ib->t && i < sizeof(changes) / sizeof(changes[0]); i++)
			if (strcmp(op, changes[i]) == 0)
				ib->changed(ib->changed_arg);
	}
	return rv;
}

int64_t inbox_reopen_ms(const struct inbox *ib)
{
	return ib->rules.reopen_ms;
}
