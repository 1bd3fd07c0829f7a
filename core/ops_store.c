/*
 * ops_store.c: the ops the conversation core answers (changes) or passes to
 * the store (reads): the request as given, the caller as its author, the
 * op's topic published with what changed.
 */
#include "bus.h"
#include "gateway.h"
#include "inbox/inbox.h"
#include "ops.h"
#include "ops_handlers.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Conversations a page when the caller pages without a limit (as Chatwoot's API). */
#define PAGE_SIZE 25

/*
 * page → offset for conversations.list: a page is `limit` conversations
 * (25 when not given, as Chatwoot's API), page 1 when not given.
 */
static void paginate(cJSON *req)
{
	const cJSON *page = cJSON_GetObjectItemCaseSensitive(req, "page");
	const cJSON *lim = cJSON_GetObjectItemCaseSensitive(req, "limit");
	double limit =
	        cJSON_IsNumber(lim) && lim->valuedouble >= 1 && lim->valuedouble <= 1000 ? lim->valuedouble : PAGE_SIZE;
	double p = !cJSON_IsNumber(page) || page->valuedouble < 1 ? 1
	           : page->valuedouble > 1e6                      ? 1e6
	                                                          : page->valuedouble;
	cJSON_DeleteItemFromObjectCaseSensitive(req, "limit");
	cJSON_DeleteItemFromObjectCaseSensitive(req, "offset");
	cJSON_DeleteItemFromObjectCaseSensitive(req, "page");
	cJSON_AddNumberToObject(req, "limit", limit);
	cJSON_AddNumberToObject(req, "offset", (p - 1) * limit);
}

char *op_inbox(struct op_call *call, const cJSON *given)
{
	const struct op_def *d = call->def;
	const char *op = d->via ? d->via : d->name;
	cJSON *req = cJSON_Duplicate(given, 1);
	if (!req)
		return NULL;
	/* Who did it, when the request does not say: the signed-in agent or the token's name. */
	const char *caller = ops_caller_name(call);
	static const char *const author_fields[] = {"by", "author"};
	for (size_t i = 0; caller && i < 2; i++)
		for (const struct op_field *f = d->fields; f->name; f++)
			if (strcmp(f->name, author_fields[i]) == 0 && !cJSON_GetObjectItemCaseSensitive(req, f->name))
				cJSON_AddStringToObject(req, f->name, caller);
	if (strcmp(op, "conversations.list") == 0)
		paginate(req);
	char *text = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (!text)
		return NULL;
	char *reply = NULL, *out;
	int rv = inbox_op(call->gw->inbox, op, text, &reply);
	free(text);
	if (rv == 0) {
		/* The conversation core told the caches of any change (inbox.h); the op is published here. */
		if (d->topic && reply)
			bus_publish(call->gw->bus, d->topic, reply, strlen(reply));
		out = ops_ok_merge(reply);
	} else if (rv == PARLEY_ENOTSUP) {
		char *m = str_printf("'%s' is not implemented by this store", op);
		out = ops_error("not_implemented", m ? m : "not implemented by this store");
		free(m);
	} else if (rv == PARLEY_ENOENT) {
		out = ops_error("not_found", reply ? reply : "no such object");
	} else if (rv == PARLEY_EINVAL) {
		out = ops_error("invalid_request", reply ? reply : "invalid request");
	} else {
		out = ops_error("store_error", parley_strerror(rv));
	}
	free(reply);
	return out;
}
