/*
 * faq_render.c: the reply to a match (faq_render): the answer, the question
 * for a missing slot, or the fallback, in the message's language with its
 * placeholders filled, and the intent's buttons as the channel type can show
 * them (buttons, or numbered choices).
 */
#include "faq_internal.h"

#include <parley/parley.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing string; on allocation failure it stays failed (ok = 0). */
struct buf {
	char *s;
	size_t len, cap;
	int ok;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (!b->ok)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *ns = realloc(b->s, cap);
		if (!ns) {
			b->ok = 0;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* A text in lang: a string, or a map of language to string ("en", then any, when lang is missing). */
static const char *pick(const cJSON *v, const char *lang)
{
	if (cJSON_IsString(v))
		return v->valuestring;
	if (!cJSON_IsObject(v))
		return NULL;
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, lang));
	if (!s)
		s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "en"));
	const cJSON *m;
	cJSON_ArrayForEach(m, v) if (!s && cJSON_IsString(m)) s = m->valuestring;
	return s;
}

/* Fill text's placeholders; 0, or -1 when one has no value and no default. */
static int fill(const char *text, const struct faq_result *r, const cJSON *reply, struct buf *out)
{
	const char *p = text;
	for (const char *o = strstr(p, "{{"); o; o = strstr(p, "{{")) {
		const char *end = strstr(o + 2, "}}");
		if (!end)
			break;
		buf_add(out, p, (size_t)(o - p));
		const char *name = o + 2;
		size_t len = strcspn(name, "|}");
		const char *def = name[len] == '|' ? name + len + 1 : NULL;
		const char *val = NULL;
		char num[64];
		for (size_t i = 0; i < r->nslots && !val; i++)
			if (strlen(r->slots[i].name) == len && memcmp(r->slots[i].name, name, len) == 0)
				val = r->slots[i].value;
		for (const cJSON *m = reply ? reply->child : NULL; m && !val; m = m->next) {
			if (strlen(m->string) != len || memcmp(m->string, name, len) != 0)
				continue;
			if (cJSON_IsString(m))
				val = m->valuestring;
			else if (cJSON_IsNumber(m))
				snprintf(num, sizeof(num), "%g", m->valuedouble), val = num;
			else if (cJSON_IsBool(m))
				val = cJSON_IsTrue(m) ? "true" : "false";
		}
		if (val)
			buf_str(out, val);
		else if (def)
			buf_add(out, def, (size_t)(end - def));
		else
			return -1;
		p = end + 2;
	}
	buf_str(out, p);
	return 0;
}

/* What a channel type shows as buttons: how many, and how many characters a title may have (0: any). */
static int channel_buttons(const char *type, size_t *max, size_t *title_max)
{
	static const struct {
		const char *type;
		size_t max, title;
	} caps[] = {
	        {"whatsapp", 3, 20},   /* interactive reply buttons */
	        {"telegram", 100, 0},  /* inline keyboard */
	        {"messenger", 13, 20}, /* quick replies */
	        {"instagram", 13, 20}, {"slack", 25, 75},
	        {"kakao", 10, 0}, /* quick replies: the label is cut to 14 characters, the text said stays whole */
	};
	for (size_t i = 0; type && i < sizeof(caps) / sizeof(*caps); i++)
		if (strcmp(caps[i].type, type) == 0) {
			*max = caps[i].max;
			*title_max = caps[i].title;
			return 1;
		}
	return 0;
}

/* The first n characters of s (all of it when n is 0), whole UTF-8 characters only. */
static cJSON *cut(const char *s, size_t n)
{
	size_t len = strlen(s), at = 0;
	for (size_t k = 0; n && k < n && at < len; k++) {
		at++;
		while (at < len && ((unsigned char)s[at] & 0xc0) == 0x80)
			at++;
	}
	if (!n || at >= len)
		return cJSON_CreateString(s);
	char *c = strndup(s, at);
	cJSON *v = cJSON_CreateString(c ? c : "");
	free(c);
	return v;
}

int faq_render(const struct faq *f, const struct faq_result *r, const char *channel_type, const char *lookup_reply_json,
               char **members_json)
{
	if (!f || !r || !members_json)
		return PARLEY_EINVAL;
	*members_json = NULL;
	const struct intent *in = r->priv;
	cJSON *reply = lookup_reply_json ? cJSON_Parse(lookup_reply_json) : NULL;
	struct buf text = {NULL, 0, 0, 1};
	const cJSON *buttons = NULL;
	int done = 0;
	if (in && r->missing && in->ask)
		done = fill(pick(in->ask, r->lang), r, reply, &text) == 0;
	else if (in && !(in->lookup && !cJSON_IsObject(reply)) && fill(pick(in->answer, r->lang), r, reply, &text) == 0)
		done = 1, buttons = in->buttons;
	if (!done) {
		/* The fallback, never a half-filled answer. */
		text.len = 0;
		buf_str(&text, "");
		fill(pick(f->fallback, r->lang), r, NULL, &text);
		buttons = NULL;
	}
	cJSON_Delete(reply);
	cJSON *list = cJSON_CreateArray();
	const cJSON *b;
	cJSON_ArrayForEach(b, buttons)
	{
		const cJSON *title = cJSON_IsObject(b) ? cJSON_GetObjectItemCaseSensitive(b, "title") : b;
		const char *t = pick(title, r->lang);
		const char *id =
		        cJSON_IsObject(b) ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "id")) : NULL;
		cJSON *one = cJSON_CreateObject();
		cJSON_AddStringToObject(one, "id", id ? id : t);
		cJSON_AddStringToObject(one, "title", t);
		cJSON_AddItemToArray(list, one);
	}
	size_t n = (size_t)cJSON_GetArraySize(list), max = 0, title_max = 0;
	cJSON *out = cJSON_CreateObject();
	cJSON *meta = cJSON_CreateObject();
	if (n > 0 && channel_buttons(channel_type, &max, &title_max) && n <= max) {
		cJSON *bl = cJSON_AddArrayToObject(meta, "buttons");
		cJSON_ArrayForEach(b, list)
		{
			cJSON *one = cJSON_CreateObject();
			cJSON_AddStringToObject(one, "id", cJSON_GetObjectItemCaseSensitive(b, "id")->valuestring);
			cJSON_AddItemToObject(
			        one, "title",
			        cut(cJSON_GetObjectItemCaseSensitive(b, "title")->valuestring, title_max));
			cJSON_AddItemToArray(bl, one);
		}
		cJSON_Delete(list);
	} else if (n > 0) {
		/* No buttons on this channel (or too many): numbered choices the customer answers with a number. */
		buf_str(&text, "\n");
		size_t i = 0;
		cJSON_ArrayForEach(b, list)
		{
			char line[32];
			snprintf(line, sizeof(line), "\n%zu. ", ++i);
			buf_str(&text, line);
			buf_str(&text, cJSON_GetObjectItemCaseSensitive(b, "title")->valuestring);
		}
		cJSON_AddItemToObject(meta, "choices", list);
	} else {
		cJSON_Delete(list);
	}
	int rv = text.ok ? 0 : PARLEY_ENOMEM;
	cJSON_AddStringToObject(out, "text", text.s ? text.s : "");
	cJSON_AddItemToObject(out, "meta", meta);
	free(text.s);
	if (rv == 0 && !(*members_json = cJSON_PrintUnformatted(out)))
		rv = PARLEY_ENOMEM;
	cJSON_Delete(out);
	return rv;
}
