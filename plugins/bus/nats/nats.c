/*
 * nats.c: the `nats` bus plugin: every committed envelope and every event
 * into a NATS JetStream stream, on subject <subject_prefix>.<topic>, with
 * Nats-Msg-Id set to the msg_id the host gives (the envelope id), so that a
 * republished copy is dropped by the stream's duplicate window.
 *
 * The host's relay (core/relay.c) calls publish() on one thread and retries
 * from the store when it fails; so publish waits for JetStream's PubAck
 * (the message is then stored by the server) and fails fast while the
 * connection is down instead of queueing into the client's reconnect buffer.
 * The connection reconnects forever in the background; a NATS that is down
 * at start does not stop the gateway.
 */
#include <parley/parley.h>

#include <cjson/cJSON.h>
#include <limits.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct parley_config_key config_map[] = {
        {"url", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED,
         "the NATS server(s), comma-separated: nats://127.0.0.1:4222"},
        {"stream", PARLEY_CFG_STRING, "PARLEY", 0, "the JetStream stream, created or updated at start"},
        {"subject_prefix", PARLEY_CFG_STRING, "parley", 0, "messages go to <subject_prefix>.<topic>"},
        {"timeout", PARLEY_CFG_DURATION, "5s", 0, "how long a publish waits for JetStream's acknowledgement"},
        {"duplicate_window", PARLEY_CFG_DURATION, "2m", 0,
         "the stream drops a message whose Nats-Msg-Id it has seen this recently"},
        {"credentials", PARLEY_CFG_STRING, NULL, 0, "a NATS .creds file (user JWT and NKey seed)"},
        {"token", PARLEY_CFG_STRING, NULL, PARLEY_CFG_SECRET, "an authentication token"},
        {NULL, 0, NULL, 0, NULL},
};

struct nbus {
	const struct parley_host *host;
	parley_instance *inst;
	const char *url, *stream, *prefix, *credentials, *token; /* owned by the host */
	char *subjects;                                          /* "<prefix>.>" */
	int64_t timeout_ms, window_ms;
	natsConnection *nc;
	jsCtx *js;
	int stream_ready; /* the stream was created or checked on this connection (relay thread) */
	int said_down;    /* "not connected" was logged (relay thread) */
};

static char *dup_printf(const char *fmt, const char *a, const char *b)
{
	int n = snprintf(NULL, 0, fmt, a, b);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s)
		snprintf(s, (size_t)n + 1, fmt, a, b);
	return s;
}

/* A stream name and a subject prefix may not hold what NATS reads as wildcards or separators. */
static int bad_token(const char *s, int dots_ok)
{
	if (!s || !*s)
		return 1;
	for (const char *p = s; *p; p++)
		if (*p == ' ' || *p == '\t' || *p == '*' || *p == '>' || (!dots_ok && *p == '.') ||
		    (unsigned char)*p < 0x20)
			return 1;
	return s[0] == '.' || s[strlen(s) - 1] == '.';
}

/* What the config map cannot say about stream, subject_prefix and the credentials; NULL when fine. */
static const char *config_problem(const char *stream, const char *prefix, const char *credentials, const char *token)
{
	if (bad_token(stream, 0))
		return "stream must be a name without '.', spaces, '*' or '>' (e.g. PARLEY)";
	if (bad_token(prefix, 1))
		return "subject_prefix must be subject tokens without spaces, '*' or '>' (e.g. parley)";
	if (credentials && token)
		return "give either credentials or token, not both";
	return NULL;
}

static int nb_check_config(const struct parley_host *host, const char *config_json, char **errmsg)
{
	(void)host;
	cJSON *c = cJSON_Parse(config_json);
	const char *stream = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "stream"));
	const char *prefix = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "subject_prefix"));
	const char *why = config_problem(stream ? stream : "PARLEY", prefix ? prefix : "parley",
	                                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "credentials")),
	                                 cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "token")));
	if (why)
		*errmsg = strdup(why);
	cJSON_Delete(c);
	return why ? PARLEY_EINVAL : 0;
}

static int nb_create(const struct parley_host *host, parley_instance *inst, void *plugin_data, void **data,
                     char **errmsg)
{
	(void)plugin_data;
	struct nbus *b = calloc(1, sizeof(*b));
	if (!b)
		return PARLEY_ENOMEM;
	b->host = host;
	b->inst = inst;
	b->url = host->config_str(inst, "url");
	b->stream = host->config_str(inst, "stream");
	b->prefix = host->config_str(inst, "subject_prefix");
	b->credentials = host->config_str(inst, "credentials");
	b->token = host->config_str(inst, "token");
	host->config_duration_ms(inst, "timeout", &b->timeout_ms);
	host->config_duration_ms(inst, "duplicate_window", &b->window_ms);
	const char *why = config_problem(b->stream, b->prefix, b->credentials, b->token);
	if (!why && (b->timeout_ms <= 0 || b->window_ms <= 0))
		why = "timeout and duplicate_window must be longer than 0";
	if (why) {
		*errmsg = strdup(why);
		free(b);
		return PARLEY_EINVAL;
	}
	b->subjects = dup_printf("%s.>%s", b->prefix, "");
	if (!b->subjects) {
		free(b);
		return PARLEY_ENOMEM;
	}
	*data = b;
	return 0;
}

/* Our subjects and duplicate window on a stream, keeping whatever else its operator set. */
static int ensure_stream(struct nbus *b)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, b->js, b->stream, NULL, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		jsStreamConfig sc;
		jsStreamConfig_Init(&sc);
		const char *subjects[1] = {b->subjects};
		sc.Name = b->stream;
		sc.Description = "Parley: committed envelopes and events (Nats-Msg-Id: the envelope id)";
		sc.Subjects = subjects;
		sc.SubjectsLen = 1;
		sc.Storage = js_FileStorage;
		sc.Duplicates = b->window_ms * 1000000; /* nanoseconds */
		s = js_AddStream(NULL, b->js, &sc, NULL, &jerr);
		if (s != NATS_OK) {
			b->host->log(b->inst, PARLEY_LOG_WARN, "cannot create stream %s: %s (JetStream error %d)",
			             b->stream, natsStatus_GetText(s), (int)jerr);
			return PARLEY_EIO;
		}
		b->host->log(b->inst, PARLEY_LOG_INFO, "created stream %s for subjects %s", b->stream, b->subjects);
		b->stream_ready = 1;
		return 0;
	}
	if (s != NATS_OK) {
		b->host->log(b->inst, PARLEY_LOG_WARN, "cannot look up stream %s: %s (JetStream error %d)", b->stream,
		             natsStatus_GetText(s), (int)jerr);
		return PARLEY_EIO;
	}
	jsStreamConfig *cfg = si->Config;
	int has = 0;
	for (int i = 0; i < cfg->SubjectsLen; i++)
		if (strcmp(cfg->Subjects[i], b->subjects) == 0)
			has = 1;
	int64_t want_window = b->window_ms * 1000000;
	if (!has || cfg->Duplicates != want_window) {
		const char **subjects = calloc((size_t)cfg->SubjectsLen + 1, sizeof(*subjects));
		if (!subjects) {
			jsStreamInfo_Destroy(si);
			return PARLEY_ENOMEM;
		}
		for (int i = 0; i < cfg->SubjectsLen; i++)
			subjects[i] = cfg->Subjects[i];
		const char **old = cfg->Subjects;
		int old_len = cfg->SubjectsLen;
		if (!has)
			subjects[cfg->SubjectsLen++] = b->subjects;
		cfg->Subjects = subjects;
		int64_t old_window = cfg->Duplicates;
		cfg->Duplicates = want_window;
		s = js_UpdateStream(NULL, b->js, cfg, NULL, &jerr);
		cfg->Subjects = old;
		cfg->SubjectsLen = old_len;
		cfg->Duplicates = old_window;
		free(subjects);
		if (s != NATS_OK) {
			b->host->log(b->inst, PARLEY_LOG_WARN,
			             "cannot update stream %s to subjects %s: %s (JetStream error %d)", b->stream,
			             b->subjects, natsStatus_GetText(s), (int)jerr);
			jsStreamInfo_Destroy(si);
			return PARLEY_EIO;
		}
		b->host->log(b->inst, PARLEY_LOG_INFO, "updated stream %s: subjects include %s", b->stream,
		             b->subjects);
	}
	jsStreamInfo_Destroy(si);
	b->stream_ready = 1;
	return 0;
}

/*
 * Given, it makes a failed first connect asynchronous (without it nats.c
 * retries inside connect, forever).  It runs on a client library thread that
 * may outlive the instance by a moment, so it touches nothing of ours;
 * publish() notices and logs the connection.
 */
static void on_connected(natsConnection *nc, void *closure)
{
	(void)nc;
	(void)closure;
}

static int nb_start(void *data, char **errmsg)
{
	struct nbus *b = data;
	natsOptions *o = NULL;
	natsStatus s = natsOptions_Create(&o);
	if (s == NATS_OK)
		s = natsOptions_SetURL(o, b->url);
	if (s == NATS_OK)
		s = natsOptions_SetName(o, "parley");
	/* Connecting must not hold up the gateway's start for long: the retry goes on in the background. */
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(o, b->timeout_ms < 2000 ? b->timeout_ms : 2000);
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(o, -1);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectWait(o, 250);
	if (s == NATS_OK)
		s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, NULL);
	if (s == NATS_OK && b->token)
		s = natsOptions_SetToken(o, b->token);
	if (s == NATS_OK && b->credentials)
		s = natsOptions_SetUserCredentialsFromFiles(o, b->credentials, NULL);
	if (s != NATS_OK) {
		*errmsg = dup_printf("cannot set the NATS options (url %s): %s", b->url, natsStatus_GetText(s));
		natsOptions_Destroy(o);
		return PARLEY_EINVAL;
	}
	s = natsConnection_Connect(&b->nc, o);
	natsOptions_Destroy(o);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		*errmsg = dup_printf("cannot connect to %s: %s", b->url, natsStatus_GetText(s));
		return PARLEY_EIO;
	}
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.Wait = b->timeout_ms;
	if ((s = natsConnection_JetStream(&b->js, b->nc, &jo)) != NATS_OK) {
		*errmsg = dup_printf("cannot use JetStream on %s: %s", b->url, natsStatus_GetText(s));
		natsConnection_Destroy(b->nc);
		b->nc = NULL;
		return PARLEY_EIO;
	}
	if (natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED) {
		ensure_stream(b);
	} else {
		b->host->log(
		        b->inst, PARLEY_LOG_WARN,
		        "NATS at %s is not reachable yet: starting anyway; envelopes wait in the store until it is",
		        b->url);
		b->said_down = 1;
	}
	return 0;
}

static int nb_publish(void *data, const char *topic, const char *msg_id, const char *json, size_t len)
{
	struct nbus *b = data;
	/* Down: fail now, so the relay backs off instead of filling the reconnect buffer with unacknowledged copies. */
	if (natsConnection_Status(b->nc) != NATS_CONN_STATUS_CONNECTED) {
		if (!b->said_down)
			b->host->log(b->inst, PARLEY_LOG_WARN, "not connected to NATS at %s: reconnecting", b->url);
		b->said_down = 1;
		return PARLEY_EIO;
	}
	if (b->said_down)
		b->host->log(b->inst, PARLEY_LOG_INFO, "connected to NATS at %s again", b->url);
	b->said_down = 0;
	if (!b->stream_ready && ensure_stream(b) != 0)
		return PARLEY_EIO;
	int64_t max = natsConnection_GetMaxPayload(b->nc);
	if (len > INT_MAX || (max > 0 && (int64_t)len > max))
		return PARLEY_ETOOBIG;
	char subject[512];
	int n = snprintf(subject, sizeof(subject), "%s.%s", b->prefix, topic);
	if (n < 0 || (size_t)n >= sizeof(subject))
		return PARLEY_ETOOBIG;
	/* A topic is made of channel names and plugin names; keep a stray wildcard from making it a pattern. */
	for (char *p = subject; *p; p++)
		if (*p == ' ' || *p == '*' || *p == '>' || (unsigned char)*p < 0x20)
			*p = '_';
	jsPubOptions po;
	jsPubOptions_Init(&po);
	po.MsgId = msg_id;
	po.MaxWait = b->timeout_ms;
	po.ExpectStream = b->stream;
	jsPubAck *ack = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_Publish(&ack, b->js, subject, json, (int)len, &po, &jerr);
	jsPubAck_Destroy(ack);
	if (s == NATS_OK)
		return 0;
	/* The stream may be gone (a new server, deleted by hand): look again before the next publish. */
	if (s == NATS_NO_RESPONDERS || jerr == JSStreamNotFoundErr || jerr == JSStreamNotMatchErr)
		b->stream_ready = 0;
	b->host->log(b->inst, PARLEY_LOG_WARN, "publish to %s failed: %s (JetStream error %d)", subject,
	             natsStatus_GetText(s), (int)jerr);
	return PARLEY_EIO;
}

static int nb_ping(void *data)
{
	struct nbus *b = data;
	return b->nc && natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED ? 0 : PARLEY_EIO;
}

static void nb_stop(void *data)
{
	struct nbus *b = data;
	jsCtx_Destroy(b->js);
	b->js = NULL;
	natsConnection_Destroy(b->nc);
	b->nc = NULL;
}

static void nb_destroy(void *data)
{
	struct nbus *b = data;
	nb_stop(b);
	free(b->subjects);
	free(b);
}

static int nb_init(const struct parley_host *host, void **plugin_data, char **errmsg)
{
	(void)host;
	*plugin_data = NULL;
	natsStatus s = nats_Open(-1);
	if (s != NATS_OK) {
		*errmsg = dup_printf("cannot initialize the NATS client library: %s%s", natsStatus_GetText(s), "");
		return PARLEY_EIO;
	}
	return 0;
}

/* The client library's threads must be gone before the host unloads this object. */
static void nb_fini(void *plugin_data)
{
	(void)plugin_data;
	nats_CloseAndWait(5000);
}

static const struct parley_bus_ops bus_ops = {
        .struct_size = sizeof(struct parley_bus_ops),
        .publish = nb_publish,
        .ping = nb_ping,
};

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_BUS,
        .name = "nats",
        .version = "1.0.0",
        .description = "NATS JetStream: committed envelopes and events, deduplicated by envelope id",
        .config = config_map,
        .init = nb_init,
        .fini = nb_fini,
        .instance_create = nb_create,
        .instance_start = nb_start,
        .instance_stop = nb_stop,
        .instance_destroy = nb_destroy,
        .check_config = nb_check_config,
        .bus = &bus_ops,
};

PARLEY_PLUGIN_DEFINE(plugin)
