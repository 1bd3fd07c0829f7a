/* window.c: the customer-service window of a channel (see window.h). */
#include "window.h"
#include "gateway.h"
#include "host.h"
#include "ops.h"
#include "store.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int declares(parley_instance *ch, const char *key)
{
	const struct parley_config_key *m = ch->plugin->desc->config;
	for (size_t i = 0; m && m[i].name; i++)
		if (strcmp(m[i].name, key) == 0)
			return 1;
	return 0;
}

int window_takes_templates(parley_instance *ch)
{
	return declares(ch, "reply_window") && !declares(ch, "tag_window");
}

enum window_rule window_rule_of(parley_instance *ch, int64_t *len_ms, int64_t *tag_ms)
{
	int64_t len = 0, tag = 0;
	*len_ms = 0;
	if (tag_ms)
		*tag_ms = 0;
	if (!declares(ch, "reply_window") || host_table()->config_duration_ms(ch, "reply_window", &len) != 0 ||
	    len <= 0)
		return WINDOW_NONE;
	*len_ms = len;
	if (!declares(ch, "tag_window"))
		return WINDOW_TEMPLATES;
	if (tag_ms && host_table()->config_duration_ms(ch, "tag_window", &tag) == 0)
		*tag_ms = tag;
	return WINDOW_TAGS;
}

/* The customer's last message time on ch from `to` (0 when none), or a negative store error. */
static int64_t last_inbound(struct gateway *gw, parley_instance *ch, const char *to)
{
	char *at = NULL;
	int rv = store_window_last_inbound(gw->st, ch->name, to, &at);
	int64_t ms = rv == 0 ? time_parse_ms(at) : 0;
	free(at);
	return rv == 0 || rv == PARLEY_ENOENT ? ms : rv;
}

int window_open(struct gateway *gw, parley_instance *ch, const char *to, int64_t *last_ms)
{
	int64_t len;
	if (last_ms)
		*last_ms = 0;
	if (window_rule_of(ch, &len, NULL) == WINDOW_NONE || !store_keeps_broadcasts(gw->st))
		return 1;
	int64_t last = last_inbound(gw, ch, to);
	if (last < 0)
		return (int)last;
	if (last_ms)
		*last_ms = last;
	return last > 0 && clock_now_ms() - last < len;
}

/* "24h", "7d", "90m": a window length as people say it. */
void window_say(int64_t ms, char out[32])
{
	if (ms % 86400000 == 0 && ms >= 2 * 86400000)
		snprintf(out, 32, "%lld-day", (long long)(ms / 86400000));
	else if (ms % 3600000 == 0)
		snprintf(out, 32, "%lld-hour", (long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		snprintf(out, 32, "%lld-minute", (long long)(ms / 60000));
	else
		snprintf(out, 32, "%lld-second", (long long)(ms / 1000));
}

int window_closed(struct gateway *gw, parley_instance *ch, const char *to, const cJSON *template, const char *tag,
                  char **why)
{
	*why = NULL;
	int64_t len, tag_ms;
	enum window_rule rule = window_rule_of(ch, &len, &tag_ms);
	if (rule == WINDOW_NONE || (rule == WINDOW_TEMPLATES && template))
		return 0;
	int64_t last;
	int open = window_open(gw, ch, to, &last);
	if (open < 0)
		return open;
	int64_t age = last > 0 ? clock_now_ms() - last : -1;
	if (open || (rule == WINDOW_TAGS && tag && (strcmp(tag, "HUMAN_AGENT") != 0 || (age >= 0 && age < tag_ms))))
		return 0;
	char dur[32], when[128] = "the customer never wrote from this address";
	window_say(len, dur);
	if (last > 0) {
		char at[64];
		time_format_ms(last, at);
		snprintf(when, sizeof(when), "the customer last wrote from this address at %s", at);
	}
	if (rule == WINDOW_TEMPLATES)
		*why = str_printf("outside the %s customer-service window of channel '%s': %s; this channel then takes "
		                  "only a template message: send again with \"template\": {\"name\", \"language\", "
		                  "\"body\": [parameters]}",
		                  dur, ch->name, when);
	else
		*why = str_printf("outside the %s customer-service window of channel '%s': %s; this channel then takes "
		                  "only a message tag: send again with \"meta\": {\"tag\": \"CONFIRMED_EVENT_UPDATE\", "
		                  "\"POST_PURCHASE_UPDATE\", \"ACCOUNT_UPDATE\" or, within %lld days of the customer's "
		                  "last message, \"HUMAN_AGENT\"}",
		                  dur, ch->name, when, (long long)(tag_ms / 86400000));
	return *why ? 1 : PARLEY_ENOMEM;
}

char *window_refusal(struct gateway *gw, parley_instance *ch, const char *to, const cJSON *template, const char *tag)
{
	char *why;
	int rv = window_closed(gw, ch, to, template, tag, &why);
	if (rv < 0)
		return ops_error("unavailable", parley_strerror(rv));
	char *r = rv ? ops_error("outside_window", why) : NULL;
	free(why);
	return r;
}

/* NULL when v is an array of at most max non-empty strings of at most 1024 bytes. */
static int strings_ok(const cJSON *v, int max)
{
	if (!v)
		return 1;
	if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > max)
		return 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, v)
	{
		if (!cJSON_IsString(it) || !it->valuestring[0] || strlen(it->valuestring) > 1024)
			return 0;
	}
	return 1;
}

const char *window_template_invalid(const cJSON *t)
{
	if (!cJSON_IsObject(t))
		return "'template' must be an object {name, language, header?, body?, buttons?}";
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "name"));
	const char *lang = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "language"));
	size_t nl = name ? strlen(name) : 0;
	if (nl < 1 || nl > 512 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != nl)
		return "'template.name' must be the approved template's name: 1-512 of a-z, 0-9 and _";
	size_t ll = lang ? strlen(lang) : 0;
	size_t base = lang ? strspn(lang, "abcdefghijklmnopqrstuvwxyz") : 0;
	if (base < 2 || base > 3 ||
	    (ll > base &&
	     (lang[base] != '_' || ll - base - 1 < 2 || ll - base - 1 > 4 ||
	      strspn(lang + base + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") != ll - base - 1)))
		return "'template.language' must be a language code such as en_US or ko";
	if (!strings_ok(cJSON_GetObjectItemCaseSensitive(t, "header"), 1))
		return "'template.header' must be a list of one non-empty string (at most 1024 bytes)";
	if (!strings_ok(cJSON_GetObjectItemCaseSensitive(t, "body"), 100))
		return "'template.body' must be a list of non-empty strings (at most 1024 bytes each), the parameters "
		       "in order";
	const cJSON *buttons = cJSON_GetObjectItemCaseSensitive(t, "buttons"), *b;
	if (buttons && (!cJSON_IsArray(buttons) || cJSON_GetArraySize(buttons) > 10))
		return "'template.buttons' must be a list of at most 10 {type, value}";
	cJSON_ArrayForEach(b, buttons)
	{
		const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "type"));
		const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(b, "value"));
		if (!type || (strcmp(type, "quick_reply") != 0 && strcmp(type, "url") != 0) || !value || !value[0] ||
		    strlen(value) > 1024)
			return "each of 'template.buttons' must be {\"type\": \"quick_reply\" or \"url\", \"value\": a "
			       "non-empty string}";
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, t)
	{
		static const char *const known[] = {"name", "language", "header", "body", "buttons", NULL};
		int ok = 0;
		for (size_t i = 0; known[i]; i++)
			ok |= strcmp(it->string, known[i]) == 0;
		if (!ok)
			return "'template' takes only name, language, header, body and buttons";
	}
	return NULL;
}
