/*
 * ops_promises.c: sla.list and ratings.list, the reads of the SLA clock and
 * the surveys (sla.c, survey.c), and conversations.list's sla filter.
 */
#include "gateway.h"
#include "ops_handlers.h"
#include "sla.h"
#include "survey.h"

#include <stdlib.h>
#include <string.h>

char *op_sla_list(struct op_call *call, const cJSON *req)
{
	char *reply = sla_list_reply(call->gw, req);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "visible_to");
	if (!reply || !v)
		return reply;
	/* An agent sees the targets of their teams' conversations and of conversations of no team. */
	cJSON *r = cJSON_Parse(reply);
	cJSON *list = cJSON_GetObjectItemCaseSensitive(r, "sla");
	const cJSON *teams = cJSON_GetObjectItemCaseSensitive(v, "teams");
	for (int i = cJSON_GetArraySize(list) - 1; i >= 0; i--) {
		const char *team =
		        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, i), "team"));
		int sees = !team;
		const cJSON *t;
		cJSON_ArrayForEach(t, teams) sees |= team && cJSON_IsString(t) && strcmp(t->valuestring, team) == 0;
		if (!sees)
			cJSON_DeleteItemFromArray(list, i);
	}
	char *out = r ? cJSON_PrintUnformatted(r) : NULL;
	cJSON_Delete(r);
	if (out) {
		free(reply);
		return out;
	}
	return reply;
}

char *op_ratings_list(struct op_call *call, const cJSON *req)
{
	return ratings_list_reply(call->gw, req);
}

/* conversations.list, its sla filter checked first (the store reads it). */
char *op_conversations_list(struct op_call *call, const cJSON *req)
{
	const char *sla = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "sla"));
	if (sla && strcmp(sla, "breached") != 0 && strcmp(sla, "at_risk") != 0)
		return ops_error("invalid_request", "sla must be breached or at_risk");
	return op_inbox(call, req);
}
