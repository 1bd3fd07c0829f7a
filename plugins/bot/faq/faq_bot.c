/*
 * faq_bot.c: the built-in `faq` bot, a router that answers simple requests
 * (faq.h matches, looks up, renders) and hands the rest to a team.
 *
 *   - route:
 *       type: faq
 *       config:
 *         team: support                      # the queue a handoff goes to
 *         intents: [...]                     # faq.h
 *         lookup_url: http://orders.local/parley
 *         lookup_secret: ${ORDERS_SECRET}
 *
 * After the commit of each inbound message with text, on the bot's own
 * threads (never the pipeline's): the bot claims the conversation (a
 * conversation an agent holds, or that was handed off, it leaves alone);
 * a request for a person, a message the sentiment step labelled negative,
 * a second message in a row the bot did not understand, or a second
 * answer the customer rejected ("아니요", "that's not it") hands it off:
 * the team's queue, a private note with what the bot gathered (intent,
 * slots, sentiment, the customer's words) and the customer's place in line
 * in their language.  Otherwise it answers the intent (after its lookup;
 * the fallback when the lookup fails or is slow) through the outbox, with
 * buttons where the channel has them; a thank-you after an answer resolves
 * it (the bot contained it).  A customer waiting after a handoff who asks
 * where they are in line is told again (at most once a minute).  All of it
 * through parley_host.op, so the server enforces who owns the conversation.
 */
#define _GNU_SOURCE /* strcasestr */
#include "business_hours.h"
#include "faq.h"

#include <parley/provider.h>

#include <cjson/cJSON.h>
#include <parley/parley.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JOBS    1024
#define WORKERS 2

struct job {
	char conversation_id[64], contact_id[64], channel_type[32];
	char text[2048];
	int negative;
	double sentiment;
	int has_sentiment;
};

struct bot {
	const struct parley_host *host;
	parley_instance *inst;
	struct faq *faq;
	char *team;
	cJSON *handoff_message;  /* {ko, en} */
	cJSON *position_message; /* {ko, en} */
	cJSON *closed_message;   /* {ko, en} */
	struct business_hours hours;
	int have_hours;
	int64_t misunderstood_max;
	pthread_t threads[WORKERS];
	size_t n_threads;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct job jobs[JOBS];
	size_t head, n;
	int stop;
};

static const struct parley_config_key keys[] = {
        {"team", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED, "the team whose queue a handoff goes to"},
        {"intents", PARLEY_CFG_LIST, NULL, PARLEY_CFG_REQUIRED, "the intents (faq.h)"},
        {"lookup_url", PARLEY_CFG_STRING, NULL, 0, "where intents with lookup: true ask (http or https)"},
        {"lookup_secret", PARLEY_CFG_STRING, NULL, PARLEY_CFG_SECRET, "the lookup's HMAC-SHA256 key"},
        {"lookup_timeout", PARLEY_CFG_DURATION, "3s", 0, "how long a lookup may take before the fallback"},
        {"threshold", PARLEY_CFG_STRING, "0.5", 0, "how similar to an example a text must be (0..1)"},
        {"fallback", PARLEY_CFG_ANY, NULL, 0, "the answer when nothing matched or a lookup failed: text or {ko, en}"},
        {"handoff_words", PARLEY_CFG_LIST, NULL, 0,
         "words asking for a person (default 상담원, 사람, agent, human, ...)"},
        {"handoff_message", PARLEY_CFG_ANY, NULL, 0, "told at a handoff, {{position}} filled: text or {ko, en}"},
        {"misunderstood_max", PARLEY_CFG_INT, "2", 0, "messages in a row not understood before a handoff"},
        {"business_hours", PARLEY_CFG_MAP, NULL, 0,
         "{timezone, days, from, to, holidays}: when agents answer; a handoff outside them says when they are back"},
        {"closed_message", PARLEY_CFG_ANY, NULL, 0,
         "told at a handoff outside business_hours, {{opens}} and {{position}} filled: text or {ko, en}"},
        {"position_message", PARLEY_CFG_ANY, NULL, 0,
         "told a waiting customer who asks, {{position}} and {{wait_minutes}} filled: text or {ko, en}"},
        {NULL, 0, NULL, 0, NULL},
};

/* Words, Korean anywhere, English any case: a rejected answer, thanks, a question about the wait. */
static const char *const rejection_words[] = {"아니요",      "아니에요",     "아닌데",     "그게 아니",
                                              "틀렸",        "not what",     "that's not", "wrong",
                                              "didn't help", "doesn't help", NULL};
static const char *const thanks_words[] = {"감사", "고마워", "고맙습니다", "해결됐", "thank", "that helped", NULL};
static const char *const position_words[] = {"몇 번째",  "몇번째",  "순번",        "얼마나 기다",   "언제쯤",
                                             "how long", "in line", "my position", "still waiting", NULL};

static int says(const char *text, const char *const *words)
{
	for (size_t i = 0; words[i]; i++)
		if (strcasestr(text, words[i]))
			return 1;
	return 0;
}

static const char *const default_position[][2] = {
        {"ko", "현재 대기 순번은 {{position}}번째입니다. 조금만 기다려 주세요."},
        {"en", "You are number {{position}} in line. Thank you for waiting."},
};

static const char *const default_closed[][2] = {
        {"ko", "지금은 상담 시간이 아니에요. 상담원은 {{opens}}부터 답변드려요. 대기 순번은 {{position}}번째입니다."},
        {"en", "Our agents are away now and back {{opens}}. You are number {{position}} in line."},
};

/* Text of {ko, en} (a config member) in lang, else the default of that language. */
static const char *in_lang(const cJSON *texts, const char *lang, const char *const dflt[][2])
{
	const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(texts, lang));
	return t ? t : strcmp(lang, "ko") == 0 ? dflt[0][1] : dflt[1][1];
}

/* When agents are back, in the zone's local time and the customer's language ("월요일 09:00", "Monday 09:00"). */
static void opens_text(const struct business_hours *bh, const char *lang, char *out, size_t cap)
{
	static const char *const ko[] = {"일요일", "월요일", "화요일", "수요일", "목요일", "금요일", "토요일"};
	static const char *const en[] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
	struct tm tm;
	bh_local(bh, bh_next_open(bh, time(NULL)), &tm);
	snprintf(out, cap, "%s %02d:%02d", strcmp(lang, "ko") == 0 ? ko[tm.tm_wday] : en[tm.tm_wday], tm.tm_hour,
	         tm.tm_min);
}

/* A copy of tpl with each {{opens}} replaced by opens; malloc'd. */
static char *fill_opens(const char *tpl, const char *opens)
{
	size_t cap = strlen(tpl) * 2 + strlen(opens) * 4 + 1;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	size_t o = 0;
	for (const char *p = tpl; *p;) {
		const char *at = strstr(p, "{{opens}}");
		size_t n = at ? (size_t)(at - p) : strlen(p);
		if (o + n + strlen(opens) + 1 > cap)
			break;
		memcpy(out + o, p, n);
		o += n;
		if (!at)
			break;
		memcpy(out + o, opens, strlen(opens));
		o += strlen(opens);
		p = at + 9;
	}
	out[o] = '\0';
	return out;
}

static const char *const default_handoff[][2] = {
        {"ko", "상담원에게 연결해 드릴게요. 현재 대기 순번은 {{position}}번째입니다."},
        {"en", "I'm connecting you with an agent. You are number {{position}} in line."},
};

/* The op's reply, parsed (NULL when refused). */
static cJSON *call(struct bot *b, const char *op, cJSON *req)
{
	char *text = cJSON_PrintUnformatted(req), *reply = NULL;
	int rv = text ? b->host->op(b->inst, op, text, &reply) : PARLEY_ENOMEM;
	free(text);
	cJSON *r = rv == 0 && reply ? cJSON_Parse(reply) : NULL;
	if (rv != 0 && reply && !strstr(reply, "\"conflict\""))
		b->host->log(b->inst, PARLEY_LOG_WARN, "%s refused: %.300s", op, reply);
	free(reply);
	return r;
}

/*
 * A per-conversation count in the instance's state (kind "miss": messages
 * in a row not understood; "rej": answers rejected; "ans": 1 after an
 * answer): add to it and give the new value; with add 0 reset it; with a
 * negative add only read it.
 */
static int64_t counter(struct bot *b, const char *kind, const char *conv, int64_t add)
{
	char key[96], *val = NULL, num[24];
	size_t len;
	snprintf(key, sizeof(key), "%s:%s", kind, conv);
	int64_t n = 0;
	if (b->host->kv_get(b->inst, key, &val, &len) == 0)
		n = strtoll(val, NULL, 10);
	free(val);
	if (add < 0)
		return n;
	n = add ? n + add : 0;
	snprintf(num, sizeof(num), "%lld", (long long)n);
	b->host->kv_set(b->inst, key, num, strlen(num));
	return n;
}

static void handoff(struct bot *b, const struct job *j, const struct faq_result *r, const char *reason,
                    const char *metric)
{
	char note[3072];
	int len = snprintf(note, sizeof(note), "bot: handed off (%s).", reason);
	if (r && r->intent)
		len += snprintf(note + len, sizeof(note) - (size_t)len, " Intent: %s.", r->intent);
	for (size_t i = 0; r && i < r->nslots && len < (int)sizeof(note); i++)
		len += snprintf(note + len, sizeof(note) - (size_t)len, " %s: %s.", r->slots[i].name,
		                r->slots[i].value);
	if (j->has_sentiment && len < (int)sizeof(note))
		len += snprintf(note + len, sizeof(note) - (size_t)len, " Sentiment: %.2f.", j->sentiment);
	if (len < (int)sizeof(note))
		len += snprintf(note + len, sizeof(note) - (size_t)len, " The customer wrote: \"%s\"", j->text);
	/* The transcript: the conversation's last messages, both ways. */
	cJSON *lq = cJSON_CreateObject();
	cJSON_AddStringToObject(lq, "conversation_id", j->conversation_id);
	cJSON_AddNumberToObject(lq, "limit", 1000);
	cJSON *list = call(b, "messages.list", lq);
	cJSON_Delete(lq);
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(list, "messages");
	int total = cJSON_GetArraySize(msgs);
	for (int i = total > 8 ? total - 8 : 0; i < total && len < (int)sizeof(note); i++) {
		const cJSON *m = cJSON_GetArrayItem(msgs, i);
		const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "text"));
		const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "direction"));
		if (t)
			len += snprintf(note + len, sizeof(note) - (size_t)len, "%s %s: %.200s",
			                i == (total > 8 ? total - 8 : 0) ? "\nTranscript:\n" : "\n",
			                d && strcmp(d, "outbound") == 0 ? "bot" : "customer", t);
	}
	cJSON_Delete(list);
	const char *lang = r && r->lang[0] ? r->lang : "en";
	char *closed = NULL;
	const char *msg = in_lang(b->handoff_message, lang, default_handoff);
	if (b->have_hours && !bh_open(&b->hours, time(NULL))) {
		char opens[64];
		opens_text(&b->hours, lang, opens, sizeof(opens));
		closed = fill_opens(in_lang(b->closed_message, lang, default_closed), opens);
		if (closed)
			msg = closed;
	}
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "conversation_id", j->conversation_id);
	cJSON_AddStringToObject(req, "team", b->team);
	if (j->negative)
		cJSON_AddStringToObject(req, "priority", "high");
	cJSON_AddStringToObject(req, "note", note);
	cJSON_AddStringToObject(req, "message", msg);
	cJSON_Delete(call(b, "conversation.handoff", req));
	cJSON_Delete(req);
	free(closed);
	b->host->metric_add(b->inst, "bot_handoffs_total", 1);
	b->host->metric_add(b->inst, metric, 1);
}

static void answer(struct bot *b, const struct job *j, const struct faq_result *r)
{
	char *lookup = NULL;
	if (r->intent) {
		int rv = faq_lookup(b->faq, r, j->conversation_id, j->contact_id, &lookup);
		if (rv != 0 && rv != PARLEY_ENOTSUP && rv != PARLEY_ENOENT) {
			b->host->log(b->inst, PARLEY_LOG_WARN, "lookup for %s failed (%s): the fallback answers",
			             r->intent, b->host->strerror(rv));
			b->host->metric_add(b->inst, "bot_lookup_failures_total", 1);
		}
	}
	char *members = NULL;
	if (faq_render(b->faq, r, j->channel_type, lookup, &members) == 0) {
		cJSON *req = cJSON_Parse(members);
		cJSON_AddStringToObject(req, "conversation_id", j->conversation_id);
		cJSON_Delete(call(b, "message.send", req));
		cJSON_Delete(req);
		b->host->metric_add(b->inst, "bot_answers_total", 1);
	}
	free(members);
	free(lookup);
}

/* The conversation is not the bot's: a customer it handed off who asks about the wait is told again. */
static void not_mine(struct bot *b, const struct job *j, const char *refusal)
{
	if (!refusal || !strstr(refusal, "handed off") || !says(j->text, position_words))
		return;
	struct faq_result r;
	faq_match(b->faq, j->text, NULL, &r);
	const char *lang = r.lang[0] ? r.lang : "en";
	const char *msg = in_lang(b->position_message, lang, default_position);
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "conversation_id", j->conversation_id);
	cJSON_AddStringToObject(req, "message", msg);
	cJSON_Delete(call(b, "conversation.position", req));
	cJSON_Delete(req);
}

static void act(struct bot *b, const struct job *j)
{
	char req[160], *reply = NULL;
	snprintf(req, sizeof(req), "{\"conversation_id\":\"%s\"}", j->conversation_id);
	if (b->host->op(b->inst, "conversation.claim", req, &reply) != 0) {
		not_mine(b, j, reply); /* an agent's, handed off, or resolved: not the bot's to answer */
		free(reply);
		return;
	}
	free(reply);
	int answered_before = counter(b, "ans", j->conversation_id, -1) > 0;
	struct faq_result r;
	int matched = faq_match(b->faq, j->text, NULL, &r) == 0;
	if (r.wants_human) {
		handoff(b, j, &r, "the customer asked for a person", "bot_handoffs_asked_total");
	} else if (j->negative) {
		handoff(b, j, &r, "negative sentiment", "bot_handoffs_negative_total");
	} else if (answered_before && !matched && says(j->text, thanks_words)) {
		/* Answered and thanked: the bot contained it. */
		cJSON *rq = cJSON_CreateObject();
		cJSON_AddStringToObject(rq, "conversation_id", j->conversation_id);
		cJSON *done = call(b, "conversation.resolve", rq);
		cJSON_Delete(rq);
		if (done)
			b->host->metric_add(b->inst, "bot_contained_total", 1);
		cJSON_Delete(done);
	} else if (answered_before && !matched && says(j->text, rejection_words) &&
	           counter(b, "rej", j->conversation_id, 1) >= 2) {
		handoff(b, j, &r, "two answers rejected", "bot_handoffs_rejected_total");
	} else if (!matched && counter(b, "miss", j->conversation_id, 1) >= b->misunderstood_max) {
		handoff(b, j, &r, "not understood twice", "bot_handoffs_not_understood_total");
	} else {
		if (matched) {
			counter(b, "miss", j->conversation_id, 0);
			counter(b, "ans", j->conversation_id, 1);
		}
		answer(b, j, &r);
	}
}

static void *worker(void *arg)
{
	struct bot *b = arg;
	pthread_mutex_lock(&b->lock);
	for (;;) {
		while (!b->n && !b->stop)
			pthread_cond_wait(&b->cv, &b->lock);
		if (!b->n)
			break;
		struct job j = b->jobs[b->head];
		b->head = (b->head + 1) % JOBS;
		b->n--;
		pthread_mutex_unlock(&b->lock);
		act(b, &j);
		pthread_mutex_lock(&b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static int process(void *data, parley_envelope *env)
{
	(void)data, (void)env;
	return 0;
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

/* Committed: an inbound message with text is the bot's to look at, on its own threads. */
static void after_commit(void *data, const parley_envelope *env, int result)
{
	struct bot *b = data;
	const struct parley_host *h = b->host;
	const char *dir = h->envelope_get_str(env, "direction"), *kind = h->envelope_get_str(env, "kind");
	const char *text = h->envelope_get_str(env, "text"), *conv = h->envelope_get_str(env, "conversation_id");
	if (result != 0 || !dir || strcmp(dir, "inbound") != 0 || !kind || strcmp(kind, "message") != 0 || !text ||
	    !conv)
		return;
	char *labels = h->envelope_get_json(env, "labels");
	char *meta = h->envelope_get_json(env, "meta");
	cJSON *m = meta ? cJSON_Parse(meta) : NULL;
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(m, "sentiment");
	pthread_mutex_lock(&b->lock);
	if (b->n < JOBS) {
		struct job *j = &b->jobs[(b->head + b->n++) % JOBS];
		copy(j->conversation_id, sizeof(j->conversation_id), conv);
		copy(j->contact_id, sizeof(j->contact_id), h->envelope_get_str(env, "contact_id"));
		copy(j->channel_type, sizeof(j->channel_type), h->envelope_get_str(env, "channel_type"));
		copy(j->text, sizeof(j->text), text);
		j->negative = labels && strstr(labels, "\"negative\"") != NULL;
		j->has_sentiment = cJSON_IsNumber(s);
		j->sentiment = cJSON_IsNumber(s) ? s->valuedouble : 0;
		pthread_cond_signal(&b->cv);
	} else {
		h->log(b->inst, PARLEY_LOG_WARN, "too many messages waiting for the bot: conversation %s not answered",
		       conv);
	}
	pthread_mutex_unlock(&b->lock);
	cJSON_Delete(m);
	free(meta);
	free(labels);
}

static int check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	(void)h;
	struct faq *f = NULL;
	int rv = faq_load(config_json, &f, errmsg);
	faq_free(f);
	return rv;
}

static int create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	if (!PARLEY_HOST_HAS(h, op)) {
		*errmsg = strdup("this gateway has no bot functions (host ABI 1.3)");
		return PARLEY_ENOTSUP;
	}
	struct bot *b = calloc(1, sizeof(*b));
	if (!b)
		return PARLEY_ENOMEM;
	b->host = h;
	b->inst = inst;
	char *cj = h->config_json(inst, NULL);
	int rv = faq_load(cj ? cj : "{}", &b->faq, errmsg);
	cJSON *cfg = cj ? cJSON_Parse(cj) : NULL;
	free(cj);
	if (rv != 0) {
		cJSON_Delete(cfg);
		free(b);
		return rv;
	}
	b->team = strdup(h->config_str(inst, "team"));
	const cJSON *hm = cJSON_GetObjectItemCaseSensitive(cfg, "handoff_message");
	b->handoff_message = cJSON_CreateObject();
	if (cJSON_IsString(hm)) {
		cJSON_AddStringToObject(b->handoff_message, "ko", hm->valuestring);
		cJSON_AddStringToObject(b->handoff_message, "en", hm->valuestring);
	} else if (cJSON_IsObject(hm)) {
		cJSON_Delete(b->handoff_message);
		cJSON_Delete(b->position_message);
		cJSON_Delete(b->closed_message);
		bh_free(&b->hours);
		b->handoff_message = cJSON_Duplicate(hm, 1);
	}
	const cJSON *bh = cJSON_GetObjectItemCaseSensitive(cfg, "business_hours");
	if (bh) {
		if (bh_parse(bh, &b->hours, errmsg) != 0) {
			cJSON_Delete(cfg);
			faq_free(b->faq);
			free(b->team);
			cJSON_Delete(b->handoff_message);
			free(b);
			return PARLEY_EINVAL;
		}
		b->have_hours = 1;
	}
	const cJSON *cm = cJSON_GetObjectItemCaseSensitive(cfg, "closed_message");
	b->closed_message = cJSON_IsObject(cm) ? cJSON_Duplicate(cm, 1) : cJSON_CreateObject();
	if (cJSON_IsString(cm)) {
		cJSON_AddStringToObject(b->closed_message, "ko", cm->valuestring);
		cJSON_AddStringToObject(b->closed_message, "en", cm->valuestring);
	}
	const cJSON *pm = cJSON_GetObjectItemCaseSensitive(cfg, "position_message");
	b->position_message = cJSON_CreateObject();
	if (cJSON_IsString(pm)) {
		cJSON_AddStringToObject(b->position_message, "ko", pm->valuestring);
		cJSON_AddStringToObject(b->position_message, "en", pm->valuestring);
	} else if (cJSON_IsObject(pm)) {
		cJSON_Delete(b->position_message);
		b->position_message = cJSON_Duplicate(pm, 1);
	}
	cJSON_Delete(cfg);
	b->misunderstood_max = 2;
	h->config_int(inst, "misunderstood_max", &b->misunderstood_max);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cv, NULL);
	*data = b;
	return 0;
}

static int start(void *data, char **errmsg)
{
	(void)errmsg;
	struct bot *b = data;
	for (; b->n_threads < WORKERS; b->n_threads++)
		if (pthread_create(&b->threads[b->n_threads], NULL, worker, b) != 0)
			break;
	return b->n_threads ? 0 : PARLEY_EIO;
}

static void stop(void *data)
{
	struct bot *b = data;
	pthread_mutex_lock(&b->lock);
	b->stop = 1;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->lock);
	for (size_t i = 0; i < b->n_threads; i++)
		pthread_join(b->threads[i], NULL);
	b->n_threads = 0;
}

static void destroy(void *data)
{
	struct bot *b = data;
	faq_free(b->faq);
	free(b->team);
	cJSON_Delete(b->handoff_message);
	cJSON_Delete(b->closed_message);
	cJSON_Delete(b->position_message);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cv);
	free(b);
}

static const struct parley_plugin desc = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_ROUTER,
        .name = "faq",
        .version = "1.0.0",
        .description = "a bot that answers simple requests (intents, lookups) and hands the rest to a team",
        .config = keys,
        .init = prov_plugin_init,
        .fini = prov_plugin_fini,
        .instance_create = create,
        .instance_start = start,
        .instance_stop = stop,
        .instance_destroy = destroy,
        .process = process,
        .after_commit = after_commit,
        .check_config = check,
};

PARLEY_PLUGIN_DEFINE(desc)
