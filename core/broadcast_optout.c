/*
 * broadcast_optout.c: stop and start words on inbound messages (see
 * broadcast.h).  A message that is only such a word (trimmed, ASCII case
 * ignored) changes the contact's opt_out attribute; anything longer is an
 * ordinary message ("stop sending me the wrong size" is not an opt-out).
 * The words are the carriers' and Twilio's standard ones (STOP, STOPALL,
 * UNSUBSCRIBE, CANCEL, END, QUIT, OPTOUT; START, UNSTOP, SUBSCRIBE),
 * Korea's (수신거부, 그만, 해지; 수신동의), China's (TD, 退订), Japan's (配信停止).
 */
#include "broadcast.h"
#include "envelope.h"
#include "gateway.h"
#include "host.h"
#include "log.h"
#include "ops.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct word {
	const char *word;
	int stop; /* 1 opt-out, 0 opt-in */
} words[] = {
        {"STOP", 1},
        {"STOPALL", 1},
        {"UNSUBSCRIBE", 1},
        {"CANCEL", 1},
        {"END", 1},
        {"QUIT", 1},
        {"OPTOUT", 1},
        {"OPT OUT", 1},
        {"\xec\x88\x98\xec\x8b\xa0\xea\xb1\xb0\xeb\xb6\x80", 1}, /* 수신거부 */
        {"\xea\xb7\xb8\xeb\xa7\x8c", 1},                         /* 그만 */
        {"\xed\x95\xb4\xec\xa7\x80", 1},                         /* 해지 */
        {"TD", 1},
        {"\xe9\x80\x80\xe8\xae\xa2", 1},                         /* 退订 */
        {"\xe9\x85\x8d\xe4\xbf\xa1\xe5\x81\x9c\xe6\xad\xa2", 1}, /* 配信停止 */
        {"START", 0},
        {"UNSTOP", 0},
        {"SUBSCRIBE", 0},
        {"\xec\x88\x98\xec\x8b\xa0\xeb\x8f\x99\xec\x9d\x98", 0}, /* 수신동의 */
};

static const char reply_stop_en[] = "You will get no more broadcasts from us here. Reply START to get them again.";
static const char reply_start_en[] = "You will get our broadcasts here again. Reply STOP to stop them.";
/* Korean replies for the Korean words. */
static const char reply_stop_ko[] =
        "\xec\x88\x98\xec\x8b\xa0\xea\xb1\xb0\xeb\xb6\x80\xea\xb0\x80 \xec\xb2\x98\xeb\xa6\xac\xeb\x90\x98\xec\x97"
        "\x88\xec\x8a\xb5\xeb\x8b\x88\xeb\x8b\xa4. \xeb\x8b\xa4\xec\x8b\x9c \xeb\xb0\x9b\xec\x9c\xbc\xec\x8b\x9c"
        "\xeb\xa0\xa4\xeb\xa9\xb4 \"\xec\x88\x98\xec\x8b\xa0\xeb\x8f\x99\xec\x9d\x98\"\xeb\xa5\xbc \xeb\xb3\xb4"
        "\xeb\x82\xb4 \xec\xa3\xbc\xec\x84\xb8\xec\x9a\x94.";
static const char reply_start_ko[] = "\xec\x88\x98\xec\x8b\xa0\xec\x97\x90 \xeb\x8f\x99\xec\x9d\x98\xed\x95\x98"
                                     "\xec\x85\xa8\xec\x8a\xb5\xeb\x8b\x88\xeb\x8b\xa4.";

/* The word text is exactly (ASCII case ignored, surrounding blanks trimmed), or NULL. */
static const struct word *word_of(const char *text)
{
	while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
		text++;
	size_t n = strlen(text);
	while (n && (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\n' || text[n - 1] == '\r' ||
	             text[n - 1] == '.' || text[n - 1] == '!'))
		n--;
	if (n == 0 || n > 16)
		return NULL;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == n && strncasecmp(words[i].word, text, n) == 0)
			return &words[i];
	return NULL;
}

/* The channel's provider answers stop words itself (it declares provider_opt_out, and it is true). */
static int provider_answers(parley_instance *ch)
{
	const struct parley_config_key *m = ch->plugin->desc->config;
	int declared = 0, on = 0;
	for (size_t i = 0; m && m[i].name; i++)
		declared |= strcmp(m[i].name, "provider_opt_out") == 0;
	return declared && host_table()->config_bool(ch, "provider_opt_out", &on) == 0 && on;
}

void broadcast_inbound(struct gateway *gw, const parley_envelope *env)
{
	const char *dir = envelope_get(env, "direction");
	const char *kind = envelope_get(env, "kind");
	const char *text = envelope_get(env, "text");
	if (!dir || strcmp(dir, "inbound") != 0 || !kind || strcmp(kind, "message") != 0 || !text)
		return;
	const struct word *w = word_of(text);
	if (!w)
		return;
	const char *contact = envelope_get(env, "contact_id");
	const char *chname = envelope_get(env, "channel");
	const char *from = envelope_get(env, "from");
	struct topology *topo = topology_get(gw);
	parley_instance *ch = chname ? topology_channel(topo, chname) : NULL;
	int have_channel = ch != NULL, answers = ch && provider_answers(ch);
	topology_put(topo);
	if (!contact || !have_channel || !from) {
		log_warn("%s from %s on %s: no contact to record it on (is the identify step in the pipeline?)",
		         w->stop ? "an opt-out" : "an opt-in", from ? from : "?", chname ? chname : "?");
		return;
	}
	char now[64];
	time_format_ms(time_now_ms(), now);
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "contact_id", contact);
	cJSON *attrs = cJSON_AddObjectToObject(req, "attributes");
	cJSON_AddBoolToObject(attrs, "opt_out", w->stop);
	cJSON_AddStringToObject(attrs, w->stop ? "opt_out_at" : "opt_in_at", now);
	cJSON_AddStringToObject(attrs, w->stop ? "opt_out_channel" : "opt_in_channel", chname);
	char *reply = ops_call(gw, NULL, "contact.update", req);
	cJSON_Delete(req);
	cJSON *j = reply ? cJSON_Parse(reply) : NULL;
	int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"));
	cJSON_Delete(j);
	if (!ok) {
		log_error("contact %s: the %s from %s on %s was not recorded: %s", contact,
		          w->stop ? "opt-out" : "opt-in", from, chname, reply ? reply : "out of memory");
		free(reply);
		return;
	}
	free(reply);
	log_info("contact %s %s on %s (%s)", contact, w->stop ? "opted out" : "opted in", chname, w->word);
	if (answers)
		return;
	int korean = (unsigned char)w->word[0] >= 0xea && (unsigned char)w->word[0] <= 0xed;
	const char *text_reply =
	        w->stop ? (korean ? reply_stop_ko : reply_stop_en) : (korean ? reply_start_ko : reply_start_en);
	broadcast_queue_reply(gw->broadcast, chname, from, envelope_get(env, "conversation_id"), text_reply);
}
