/*
 * echo_bot.c: a test bot (a router) acting through parley_host.op on its own
 * thread.  For each committed inbound message it claims the conversation
 * (when it may) and answers "echo: <text>"; a text containing "human" hands
 * the conversation to team `team` with a note and a message naming the
 * customer's place in line.  Refusals are counted in the metric
 * parley_bot_refused_total (a reply in a conversation that is not its own).
 */
#include <parley/parley.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOBS 256

struct job {
	char conversation_id[64];
	char text[512];
};

struct bot {
	const struct parley_host *host;
	parley_instance *inst;
	const char *team;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct job jobs[JOBS];
	size_t head, n;
	int stop;
};

static const struct parley_config_key keys[] = {
        {"team", PARLEY_CFG_STRING, "sales", 0, "the team a handoff goes to"},
        {NULL, 0, NULL, 0, NULL},
};

/* A JSON string literal of s (quotes escaped; the test's texts need no more). */
static void quoted(char *out, size_t cap, const char *s)
{
	size_t o = 0;
	if (cap < 3)
		return;
	out[o++] = '"';
	for (; *s && o + 3 < cap; s++) {
		if (*s == '"' || *s == '\\')
			out[o++] = '\\';
		out[o++] = *s;
	}
	out[o++] = '"';
	out[o] = '\0';
}

static void act(struct bot *b, const struct job *j)
{
	const struct parley_host *h = b->host;
	char req[1400], *reply = NULL, text[1100];
	snprintf(req, sizeof(req), "{\"conversation_id\":\"%s\"}", j->conversation_id);
	h->op(b->inst, "conversation.claim", req, &reply); /* refused once handed off: the reply below says so */
	free(reply);
	reply = NULL;
	if (strstr(j->text, "human")) {
		snprintf(req, sizeof(req),
		         "{\"conversation_id\":\"%s\",\"team\":\"%s\",\"note\":\"bot: the customer asked for a human\","
		         "\"message\":\"You are number {{position}} in line\"}",
		         j->conversation_id, b->team);
		if (h->op(b->inst, "conversation.handoff", req, &reply) != 0)
			h->metric_add(b->inst, "bot_refused_total", 1);
		free(reply);
		return;
	}
	char echo[600];
	snprintf(echo, sizeof(echo), "echo: %s", j->text);
	quoted(text, sizeof(text), echo);
	snprintf(req, sizeof(req), "{\"conversation_id\":\"%s\",\"text\":%s}", j->conversation_id, text);
	if (h->op(b->inst, "message.send", req, &reply) != 0)
		h->metric_add(b->inst, "bot_refused_total", 1);
	else
		h->metric_add(b->inst, "bot_replies_total", 1);
	free(reply);
}

static void *bot_main(void *arg)
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

/* Committed: an inbound message with text is the bot's to answer, on its own thread. */
static void after_commit(void *data, const parley_envelope *env, int result)
{
	struct bot *b = data;
	const struct parley_host *h = b->host;
	const char *dir = h->envelope_get_str(env, "direction"), *text = h->envelope_get_str(env, "text");
	const char *conv = h->envelope_get_str(env, "conversation_id");
	if (result != 0 || !dir || strcmp(dir, "inbound") != 0 || !text || !conv)
		return;
	pthread_mutex_lock(&b->lock);
	if (b->n < JOBS) {
		struct job *j = &b->jobs[(b->head + b->n++) % JOBS];
		snprintf(j->conversation_id, sizeof(j->conversation_id), "%s", conv);
		snprintf(j->text, sizeof(j->text), "%s", text);
		pthread_cond_signal(&b->cv);
	}
	pthread_mutex_unlock(&b->lock);
}

static int create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **err)
{
	(void)pd;
	if (!PARLEY_HOST_HAS(h, op)) {
		*err = strdup("this host has no bot functions (ABI 1.3)");
		return PARLEY_ENOTSUP;
	}
	struct bot *b = calloc(1, sizeof(*b));
	if (!b)
		return PARLEY_ENOMEM;
	b->host = h;
	b->inst = inst;
	b->team = h->config_str(inst, "team");
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cv, NULL);
	*data = b;
	return 0;
}

static int start(void *data, char **err)
{
	(void)err;
	struct bot *b = data;
	return pthread_create(&b->thread, NULL, bot_main, b) == 0 ? 0 : PARLEY_EIO;
}

static void stop(void *data)
{
	struct bot *b = data;
	pthread_mutex_lock(&b->lock);
	b->stop = 1;
	pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->thread, NULL);
}

static void destroy(void *data)
{
	struct bot *b = data;
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cv);
	free(b);
}

static const struct parley_plugin desc = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_ROUTER,
        .name = "echo_bot",
        .version = "1.0.0",
        .description = "test bot: echoes, hands off on \"human\"",
        .config = keys,
        .instance_create = create,
        .instance_start = start,
        .instance_stop = stop,
        .instance_destroy = destroy,
        .process = process,
        .after_commit = after_commit,
};

PARLEY_PLUGIN_DEFINE(desc)
