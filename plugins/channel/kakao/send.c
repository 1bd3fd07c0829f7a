/*
 * send.c: a reply out.  Kakao takes a bot's words only as the answer to the
 * user's own request, or once through that request's callbackUrl within a
 * minute; it has no API to write to a user otherwise.  So a reply answers
 * the user's held request, else goes to the user's valid callback URL,
 * else is dead-lettered saying so.
 */
#include "kakao.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void refuse(struct parley_send_result *res, const char *code, const char *text)
{
	res->outcome = PARLEY_SEND_PERMANENT;
	snprintf(res->error_code, sizeof(res->error_code), "%s", code);
	snprintf(res->error_text, sizeof(res->error_text), "%s", text);
}

/* POST body to the callback URL; Kakao answers {"taskId", "status": "SUCCESS"|"FAIL", "message"}. */
static void post_callback(struct kakao *k, const char *user, char *url, const char *body,
                          struct parley_send_result *res)
{
	const char *hdrs[] = {"Content-Type: application/json", NULL};
	struct prov_http r;
	prov_request(&k->client, "POST", url, hdrs, body, strlen(body), NULL, &r);
	cJSON *j = r.body ? cJSON_Parse(r.body) : NULL;
	const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "status"));
	const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "message"));
	prov_classify(&r, status, msg, res);
	if (res->outcome == PARLEY_SEND_OK && status && strcmp(status, "SUCCESS") != 0) {
		/* Kakao took the request and refused the answer: the URL is used up. */
		refuse(res, status, msg ? msg : "the callback was refused");
	}
	if (res->outcome == PARLEY_SEND_RETRY)
		kakao_callback_return(k, user, url);
	else
		free(url);
	if (res->outcome == PARLEY_SEND_OK) {
		const char *task = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "taskId"));
		char id[32];
		k->host->new_id(id);
		snprintf(res->provider_id, sizeof(res->provider_id), "callback:%s", task ? task : id);
		k->host->metric_add(k->inst, "kakao_callback_sent_total", 1);
	}
	cJSON_Delete(j);
	prov_http_free(&r);
}

int kakao_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct kakao *k = data;
	const struct parley_host *h = k->host;
	const char *to = h->envelope_get_str(env, "to");
	if (!to || strncmp(to, "kakao:", 6) != 0 || strlen(to) > KAKAO_USER_MAX + 6) {
		refuse(res, "bad_recipient", "'to' must be kakao:<user id>");
		return 0;
	}
	char why[300];
	char *body = kakao_render(h, env, why, sizeof(why));
	if (!body) {
		refuse(res, "not_shown", why);
		return 0;
	}
	if (kakao_hold_answer(k, to, body)) {
		char id[32];
		h->new_id(id);
		res->outcome = PARLEY_SEND_OK;
		snprintf(res->provider_id, sizeof(res->provider_id), "answer:%s", id);
		free(body);
		return 0;
	}
	char *url = kakao_callback_take(k, to);
	if (url) {
		post_callback(k, to, url, body, res);
		free(body);
		return 0;
	}
	free(body);
	h->metric_add(k->inst, "kakao_undeliverable_total", 1);
	refuse(res, "no_request",
	       "no skill request of this user is waiting and no callbackUrl of theirs is valid: Kakao takes a bot's "
	       "reply only as the answer to the user's request (or once through its callbackUrl within a minute), "
	       "it cannot write to a user outside a request");
	return 0;
}
