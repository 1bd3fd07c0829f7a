/*
 * response.c: an outbound envelope as Kakao's SkillResponse (version
 * "2.0"): template.outputs with simpleImage (an image attachment by URL)
 * and simpleText (the text, in pieces of at most 1,000 characters), at
 * most three outputs; quickReplies from meta.buttons (or the numbered
 * meta.choices the faq bot gives channels without buttons), each a
 * "message" quick reply whose label is the title cut to 14 characters and
 * whose messageText, what the user then says, is the whole title, with
 * the button's id in extra.button_id.  What Kakao cannot show is refused,
 * never cut: the send is dead-lettered with the reason.
 */
#include "kakao.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of the first n UTF-8 characters of s (all of it when shorter). */
static size_t utf8_prefix(const char *s, size_t n)
{
	size_t at = 0;
	for (size_t k = 0; k < n && s[at]; k++) {
		at++;
		while (s[at] && ((unsigned char)s[at] & 0xc0) == 0x80)
			at++;
	}
	return at;
}

static void add_output(cJSON *outputs, const char *type, cJSON *body)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, type, body);
	cJSON_AddItemToArray(outputs, o);
}

static int add_text(cJSON *outputs, const char *text, char *why, size_t why_len)
{
	while (*text) {
		if (cJSON_GetArraySize(outputs) == KAKAO_MAX_OUTPUTS) {
			snprintf(why, why_len,
			         "text longer than Kakao shows in one answer (%d outputs of %d characters)",
			         KAKAO_MAX_OUTPUTS, KAKAO_TEXT_MAX);
			return -1;
		}
		size_t n = utf8_prefix(text, KAKAO_TEXT_MAX);
		char *piece = strndup(text, n);
		cJSON *body = cJSON_CreateObject();
		cJSON_AddStringToObject(body, "text", piece ? piece : "");
		free(piece);
		add_output(outputs, "simpleText", body);
		text += n;
	}
	return 0;
}

static int add_quick_replies(cJSON *tpl, const cJSON *list, char *why, size_t why_len)
{
	int n = cJSON_GetArraySize(list);
	if (n == 0)
		return 0;
	if (n > KAKAO_MAX_QUICK) {
		snprintf(why, why_len, "%d buttons: Kakao shows at most %d quick replies", n, KAKAO_MAX_QUICK);
		return -1;
	}
	cJSON *qr = cJSON_AddArrayToObject(tpl, "quickReplies");
	const cJSON *b;
	cJSON_ArrayForEach(b, list)
	{
		const char *title = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "title"));
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "id"));
		if (!title || !title[0]) {
			snprintf(why, why_len, "a button without a title");
			return -1;
		}
		char *label = strndup(title, utf8_prefix(title, KAKAO_QUICK_LABEL_MAX));
		cJSON *one = cJSON_CreateObject();
		cJSON_AddStringToObject(one, "label", label ? label : title);
		free(label);
		cJSON_AddStringToObject(one, "action", "message");
		cJSON_AddStringToObject(one, "messageText", title);
		if (id)
			cJSON_AddStringToObject(cJSON_AddObjectToObject(one, "extra"), "button_id", id);
		cJSON_AddItemToArray(qr, one);
	}
	return 0;
}

/* An image attachment by URL as a simpleImage; other attachments cannot be shown: -1. */
static int add_attachments(cJSON *outputs, const cJSON *atts, char *why, size_t why_len)
{
	const cJSON *a;
	cJSON_ArrayForEach(a, atts)
	{
		const char *ct = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "content_type"));
		const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "url"));
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "name"));
		if (!url || !ct || strncmp(ct, "image/", 6) != 0 ||
		    (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0)) {
			snprintf(why, why_len, "Kakao's answers show images by http(s) URL only, not this attachment");
			return -1;
		}
		if (cJSON_GetArraySize(outputs) == KAKAO_MAX_OUTPUTS) {
			snprintf(why, why_len, "more than %d images and texts in one answer", KAKAO_MAX_OUTPUTS);
			return -1;
		}
		cJSON *body = cJSON_CreateObject();
		cJSON_AddStringToObject(body, "imageUrl", url);
		cJSON_AddStringToObject(body, "altText", name ? name : "image");
		add_output(outputs, "simpleImage", body);
	}
	return 0;
}

char *kakao_render(const struct parley_host *h, const parley_envelope *env, char *why, size_t why_len)
{
	const char *text = h->envelope_get_str(env, "text");
	char *atts_s = h->envelope_get_json(env, "attachments");
	char *meta_s = h->envelope_get_json(env, "meta");
	cJSON *atts = atts_s ? cJSON_Parse(atts_s) : NULL;
	cJSON *meta = meta_s ? cJSON_Parse(meta_s) : NULL;
	free(atts_s);
	free(meta_s);
	const cJSON *buttons = cJSON_GetObjectItemCaseSensitive(meta, "buttons");
	if (!cJSON_IsArray(buttons))
		buttons = cJSON_GetObjectItemCaseSensitive(meta, "choices");
	cJSON *resp = cJSON_CreateObject();
	cJSON_AddStringToObject(resp, "version", "2.0");
	cJSON *tpl = cJSON_AddObjectToObject(resp, "template");
	cJSON *outputs = cJSON_AddArrayToObject(tpl, "outputs");
	int rv = add_attachments(outputs, atts, why, why_len);
	if (rv == 0 && text)
		rv = add_text(outputs, text, why, why_len);
	if (rv == 0 && cJSON_GetArraySize(outputs) == 0) {
		snprintf(why, why_len, "nothing to show: no text and no image");
		rv = -1;
	}
	if (rv == 0 && cJSON_IsArray(buttons))
		rv = add_quick_replies(tpl, buttons, why, why_len);
	char *out = rv == 0 ? cJSON_PrintUnformatted(resp) : NULL;
	if (rv == 0 && !out)
		snprintf(why, why_len, "out of memory");
	cJSON_Delete(resp);
	cJSON_Delete(atts);
	cJSON_Delete(meta);
	return out;
}

char *kakao_render_holding(const char *text, int use_callback)
{
	cJSON *resp = cJSON_CreateObject();
	cJSON_AddStringToObject(resp, "version", "2.0");
	if (use_callback) {
		/* Kakao shows the block's callback message (which may use data.text) and waits for the callback. */
		cJSON_AddBoolToObject(resp, "useCallback", 1);
		cJSON_AddStringToObject(cJSON_AddObjectToObject(resp, "data"), "text", text);
	} else {
		cJSON *body = cJSON_CreateObject();
		cJSON_AddStringToObject(body, "text", text);
		add_output(cJSON_AddArrayToObject(cJSON_AddObjectToObject(resp, "template"), "outputs"), "simpleText",
		           body);
	}
	char *out = cJSON_PrintUnformatted(resp);
	cJSON_Delete(resp);
	return out;
}
