/*
 * outbound.c: Viber send_message, what its answer means, and media fetches.
 *
 * One envelope is one message: text; a picture with the text as its
 * caption; a video or file (Viber needs their size, and the file's name)
 * alone, or, with text, the text followed by the attachment's link (Viber's
 * video and file messages carry no text, and two messages could not be
 * retried as one); several attachments, the text and all their links; reply
 * buttons from meta.buttons as a keyboard, whose
 * tap comes back as a text message with the button's id.
 */
#include "viber.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VIBER_MAX_BUTTONS 24 /* a keyboard of one button per row */

static const char *str_in(const cJSON *o, const char *k)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

/*
 * The status codes of the REST bot API (developers.viber.com/docs/api/
 * rest-bot-api/#error-codes).  Only "too many requests" passes; the others
 * say the request, the receiver or the account is wrong, and retrying the
 * same request cannot change that.  A status not listed is Viber's
 * "general error": retried.
 */
static const char *const statuses[] = {
        "ok",
        "invalidUrl: the webhook URL is not valid",
        "invalidAuthToken: the authentication token is not valid",
        "badData: there is an error in the request itself",
        "missingData: some mandatory data is missing",
        "receiverNotRegistered: the receiver is not registered to Viber",
        "receiverNotSubscribed: the receiver is not subscribed to the account",
        "publicAccountBlocked: the account is blocked",
        "publicAccountNotFound: the account associated with the token is not an account",
        "publicAccountSuspended: the account is suspended",
        "webhookNotSet: no webhook was set for the account",
        "receiverNoSuitableDevice: the receiver's device or Viber version does not support bots",
        "tooManyRequests: rate control breach",
        "apiVersionNotSupported: the receiver's devices do not support min_api_version",
        "incompatibleWithVersion: min_api_version is not compatible with the message fields",
        "publicAccountNotAuthorized: the account is not authorized",
        "inchatReplyMessageNotAllowed: inline message not allowed",
        "publicAccountIsNotInline: the account is not inline",
        "noPublicChat: the bot has no public chat",
        "cannotSendBroadcast: cannot send a broadcast message",
        "broadcastNotAllowed: broadcast not allowed",
};
#define VIBER_TOO_MANY_REQUESTS 12

/* A send's outcome from Viber's answer r (HTTP 200 with a JSON status, or an HTTP error). */
static void outcome(const struct prov_http *r, struct parley_send_result *res)
{
	cJSON *j = cJSON_Parse(r->body ? r->body : "");
	long long status = -1;
	if (r->status != 200 || prov_json_int(j, "status", 0, 1LL << 31, &status) != 0) {
		/* Not Viber's JSON answer: what the HTTP status says (5xx and no answer retried). */
		prov_classify(r, NULL, str_in(j, "status_message"), res);
		if (r->status == 200) {
			res->outcome = PARLEY_SEND_RETRY;
			snprintf(res->error_text, sizeof(res->error_text), "an answer without a status: %.300s",
			         r->body);
		}
	} else if (status == 0) {
		res->outcome = PARLEY_SEND_OK;
		if (viber_message_token(r->body, r->len, res->provider_id, sizeof(res->provider_id)) != 0)
			res->provider_id[0] = '\0';
	} else {
		size_t n = sizeof(statuses) / sizeof(statuses[0]);
		int listed = status < (long long)n;
		res->outcome = listed && status != VIBER_TOO_MANY_REQUESTS ? PARLEY_SEND_PERMANENT : PARLEY_SEND_RETRY;
		snprintf(res->error_code, sizeof(res->error_code), "%lld", status);
		const char *said = str_in(j, "status_message");
		const char *name = listed ? statuses[status] : "generalError: a status the API does not document";
		int echo = said && strncmp(name, said, strlen(said)) == 0;
		snprintf(res->error_text, sizeof(res->error_text), "%s%s%s", name, said && !echo ? " - " : "",
		         said && !echo ? said : "");
	}
	cJSON_Delete(j);
}

/* The message of one attachment (and the text); 0, or -1 when it can only go as a link. */
static int attachment_fields(cJSON *msg, const cJSON *att, const char *text)
{
	const char *ct = str_in(att, "content_type"), *url = str_in(att, "url"), *name = str_in(att, "name");
	const cJSON *size = cJSON_GetObjectItemCaseSensitive(att, "size");
	if (!url)
		return -1;
	if (ct && strncmp(ct, "image/", 6) == 0) {
		cJSON_AddStringToObject(msg, "type", "picture");
		cJSON_AddStringToObject(msg, "text", text ? text : "");
		cJSON_AddStringToObject(msg, "media", url);
		return 0;
	}
	if (text || !cJSON_IsNumber(size) || size->valuedouble <= 0)
		return -1;
	int video = ct && strncmp(ct, "video/", 6) == 0;
	if (!video && !name)
		return -1;
	cJSON_AddStringToObject(msg, "type", video ? "video" : "file");
	cJSON_AddStringToObject(msg, "media", url);
	cJSON_AddNumberToObject(msg, "size", size->valuedouble);
	if (!video)
		cJSON_AddStringToObject(msg, "file_name", name);
	return 0;
}

static void add_keyboard(cJSON *msg, const cJSON *buttons)
{
	cJSON *kb = cJSON_AddObjectToObject(msg, "keyboard");
	cJSON_AddStringToObject(kb, "Type", "keyboard");
	cJSON_AddBoolToObject(kb, "DefaultHeight", 1);
	cJSON *list = cJSON_AddArrayToObject(kb, "Buttons");
	const cJSON *bt;
	cJSON_ArrayForEach(bt, buttons)
	{
		const char *id = str_in(bt, "id");
		const char *title = str_in(bt, "title");
		if (cJSON_GetArraySize(list) == VIBER_MAX_BUTTONS)
			break;
		if (!title && !(title = id))
			continue; /* a button with only an id shows the id; one with neither is nothing to show */
		cJSON *one = cJSON_CreateObject();
		cJSON_AddStringToObject(one, "ActionType", "reply");
		cJSON_AddStringToObject(one, "ActionBody", id ? id : title);
		cJSON_AddStringToObject(one, "Text", title);
		cJSON_AddItemToArray(list, one);
	}
}

static cJSON *build_message(struct viber *v, const parley_envelope *env, const char *receiver)
{
	const struct parley_host *h = v->host;
	cJSON *msg = cJSON_CreateObject();
	cJSON_AddStringToObject(msg, "receiver", receiver);
	cJSON_AddNumberToObject(msg, "min_api_version", 1);
	cJSON *sender = cJSON_AddObjectToObject(msg, "sender");
	cJSON_AddStringToObject(sender, "name", v->sender_name);
	if (v->sender_avatar)
		cJSON_AddStringToObject(sender, "avatar", v->sender_avatar);
	const char *text = h->envelope_get_str(env, "text");
	char *atts = h->envelope_get_json(env, "attachments"), *metas = h->envelope_get_json(env, "meta");
	cJSON *a = atts ? cJSON_Parse(atts) : NULL, *m = metas ? cJSON_Parse(metas) : NULL;
	free(atts);
	free(metas);
	const cJSON *att = cJSON_GetArrayItem(a, 0);
	if (att && (cJSON_GetArraySize(a) > 1 || attachment_fields(msg, att, text) != 0)) {
		/* Only a text can carry it (or all of them): the text, then each link on a line. */
		size_t n = (text ? strlen(text) : 0) + 1, len = 0;
		cJSON_ArrayForEach(att, a)
		{
			n += (str_in(att, "url") ? strlen(str_in(att, "url")) : 0) + 1;
		}
		char *all = malloc(n);
		if (all)
			len = (size_t)snprintf(all, n, "%s", text ? text : "");
		cJSON_ArrayForEach(att, a)
		{
			if (all && str_in(att, "url"))
				len += (size_t)snprintf(all + len, n - len, "%s%s", len ? "\n" : "",
				                        str_in(att, "url"));
		}
		cJSON_AddStringToObject(msg, "type", "text");
		cJSON_AddStringToObject(msg, "text", all ? all : "");
		free(all);
	} else if (!att) {
		cJSON_AddStringToObject(msg, "type", "text");
		cJSON_AddStringToObject(msg, "text", text ? text : "");
	}
	const cJSON *buttons = cJSON_GetObjectItemCaseSensitive(m, "buttons");
	if (cJSON_IsArray(buttons) && cJSON_GetArraySize(buttons) > 0)
		add_keyboard(msg, buttons);
	if (cJSON_GetArraySize(buttons) > VIBER_MAX_BUTTONS)
		h->log(v->inst, PARLEY_LOG_WARN, "%d buttons: the keyboard takes %d, the rest are left out",
		       cJSON_GetArraySize(buttons), VIBER_MAX_BUTTONS);
	cJSON_Delete(a);
	cJSON_Delete(m);
	return msg;
}

int viber_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct viber *v = data;
	const struct parley_host *h = v->host;
	const char *to = h->envelope_get_str(env, "to");
	if (!to || strncmp(to, "viber:", 6) != 0 || !viber_user_id(to + 6)) {
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text), "'to' must be viber:<user id>");
		return 0;
	}
	cJSON *msg = build_message(v, env, to + 6);
	char *body = cJSON_PrintUnformatted(msg);
	cJSON_Delete(msg);
	char url[1024];
	snprintf(url, sizeof(url), "%s/send_message", v->base);
	const char *hdrs[] = {v->auth, "Content-Type: application/json", NULL};
	struct prov_http r;
	prov_request(&v->client, "POST", url, hdrs, body, strlen(body), NULL, &r);
	free(body);
	outcome(&r, res);
	prov_http_free(&r);
	return 0;
}

int viber_fetch(void *arg, struct prov_client *client, const char *url, struct prov_http *out)
{
	struct viber *v = arg;
	/* Viber's media links are signed and public: no credentials go with them. */
	return prov_fetch(client, &v->policy, url, NULL, out);
}
