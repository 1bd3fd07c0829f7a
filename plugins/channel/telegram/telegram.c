/*
 * telegram.c: the Telegram Bot API channel type.
 *
 * Inbound: Update objects POSTed by setWebhook, checked against the
 * X-Telegram-Bot-Api-Secret-Token header: message (text, photo, voice,
 * audio, video, video_note, animation, document, sticker, location, venue,
 * contact), edited_message, callback_query (inline button answers),
 * message_reaction; anything else is kept whole in meta.raw.  Addresses are
 * telegram:<chat id>; message ids are per chat, so external ids are
 * "<chat id>:<message id>".  Files are fetched after commit with getFile.
 *
 * With `mode: poll` (no public URL needed) a thread long-polls getUpdates
 * instead; the next offset is kept in the channel's key-value state and
 * advanced only after the updates are committed, so a restart neither loses
 * nor repeats an update.
 *
 * Outbound: sendMessage (with inline keyboard buttons from meta.buttons),
 * sendPhoto / sendVideo / sendAudio / sendDocument for attachments by URL.
 */
#include <parley/fetch_policy.h>
#include <parley/provider.h>
#include <parley/provider_channel.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct telegram {
	/* First: host, inst, api_base_url, timeout, max_media, the client, the policy, the media thread. */
	struct prov_channel ch;
	const char *token, *secret_token;
	/* mode: poll */
	int poll;
	int64_t poll_timeout_ms;
	pthread_t poller;
	int poller_running;
	volatile int stopping;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int committed, commit_result;
};

/* Files come from the Bot API host itself; the token is in the path, so no other host gets a URL with it. */
static const char *const media_hosts[] = {"api.telegram.org", NULL};

static const struct parley_config_key config_map[] = {
        {"token", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET, "the bot token from @BotFather"},
        {"secret_token", PARLEY_CFG_STRING, NULL, PARLEY_CFG_SECRET,
         "the secret_token given to setWebhook; updates must carry it in X-Telegram-Bot-Api-Secret-Token"},
        {"insecure", PARLEY_CFG_BOOL, "false", 0,
         "accept webhook updates without secret_token (anyone who knows the URL can post)"},
        PROV_CHANNEL_CONFIG("https://api.telegram.org", "Bot API base URL", "20MiB"),
        {"mode", PARLEY_CFG_STRING, "webhook", 0,
         "webhook (Telegram posts to /webhooks/<name>) or poll (long-poll getUpdates; no public URL needed)"},
        {"poll_timeout", PARLEY_CFG_DURATION, "25s", 0, "how long one getUpdates call waits for updates"},
        {NULL, 0, NULL, 0, NULL},
};

/* Telegram's ids fit in 52 bits; anything beyond 2^53 is not one a JSON number can carry exactly. */
#define TG_INT_MAX 9007199254740992LL

/*
 * The integer member k of o, or 0 when absent.  A member that is not an
 * integer within +-2^53 refuses the batch b (when given): the envelope
 * would otherwise carry an id that is not the provider's.
 */
static long long num_in(struct prov_batch *b, const cJSON *o, const char *k)
{
	long long v = 0;
	if (!cJSON_GetObjectItemCaseSensitive(o, k))
		return 0;
	if (prov_json_int(o, k, -TG_INT_MAX, TG_INT_MAX, &v) != 0 && b)
		prov_batch_refuse(b, "'%s' is not an integer within +-2^53", k);
	return v;
}

/* The sender's name as the contact's display name. */
static void add_names(cJSON *meta, const cJSON *from)
{
	const char *first = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(from, "first_name"));
	const char *last = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(from, "last_name"));
	const char *user = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(from, "username"));
	if (first) {
		char name[256];
		snprintf(name, sizeof(name), "%s%s%s", first, last ? " " : "", last ? last : "");
		cJSON_AddStringToObject(meta, "contact_name", name);
	}
	if (user)
		cJSON_AddStringToObject(meta, "username", user);
}

struct media_kind {
	const char *field, *kind, *content_type;
};

static const struct media_kind media_kinds[] = {
        {"voice", "voice", "audio/ogg"},      {"audio", "audio", NULL},     {"video", "video", "video/mp4"},
        {"video_note", "video", "video/mp4"}, {"animation", "video", NULL}, {"document", "document", NULL},
        {"sticker", "sticker", "image/webp"}, {NULL, NULL, NULL},
};

/* Attachments of a message: photo (the largest size) or one of media_kinds. */
static int add_media(struct telegram *t, struct prov_batch *b, parley_envelope *env, const cJSON *msg)
{
	const struct parley_host *h = t->ch.host;
	const cJSON *file = NULL;
	const char *kind = NULL, *ctype = NULL;
	const cJSON *photo = cJSON_GetObjectItemCaseSensitive(msg, "photo");
	if (cJSON_IsArray(photo) && cJSON_GetArraySize(photo) > 0) {
		file = cJSON_GetArrayItem(photo, cJSON_GetArraySize(photo) - 1);
		kind = "image";
		ctype = "image/jpeg";
	}
	for (size_t i = 0; !file && media_kinds[i].field; i++) {
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(msg, media_kinds[i].field);
		if (cJSON_IsObject(f)) {
			file = f;
			kind = media_kinds[i].kind;
			ctype = media_kinds[i].content_type;
		}
	}
	if (!file)
		return 0;
	const char *fid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(file, "file_id"));
	const char *mime = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(file, "mime_type"));
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(file, "file_name"));
	cJSON *att = cJSON_CreateObject();
	cJSON_AddStringToObject(att, "kind", kind);
	if (mime || ctype)
		cJSON_AddStringToObject(att, "content_type", mime ? mime : ctype);
	if (fid)
		cJSON_AddStringToObject(att, "provider_id", fid);
	if (name)
		cJSON_AddStringToObject(att, "name", name);
	if (num_in(b, file, "file_size"))
		cJSON_AddNumberToObject(att, "provider_size", (double)num_in(b, file, "file_size"));
	cJSON *arr = cJSON_CreateArray();
	cJSON_AddItemToArray(arr, att);
	prov_set_json(h, env, "attachments", arr);
	if (fid && (!num_in(b, file, "file_size") || (uint64_t)num_in(b, file, "file_size") <= t->ch.max_media))
		prov_batch_media(b, env, 0, fid);
	return 1;
}

static void message_envelope(struct telegram *t, struct prov_batch *b, const cJSON *msg, int edited, const char *where)
{
	const struct parley_host *h = t->ch.host;
	const cJSON *chat = cJSON_GetObjectItemCaseSensitive(msg, "chat");
	const cJSON *sender = cJSON_GetObjectItemCaseSensitive(msg, "from");
	long long v;
	/* Ids are integers in the Bot API; anything else would name another chat or nobody. */
	if (cJSON_GetObjectItemCaseSensitive(chat, "id") &&
	    prov_json_int(chat, "id", -TG_INT_MAX, TG_INT_MAX, &v) != 0) {
		prov_batch_refuse(b, "%s.chat.id is not an integer within +-2^53", where);
		return;
	}
	if (sender && prov_json_int(sender, "id", -TG_INT_MAX, TG_INT_MAX, &v) != 0) {
		prov_batch_refuse(b, "%s.from.id is %s", where,
		                  cJSON_GetObjectItemCaseSensitive(sender, "id") ? "not an integer within +-2^53"
		                                                                 : "missing");
		return;
	}
	long long chat_id = num_in(b, chat, "id"), mid = num_in(b, msg, "message_id");
	if (!chat_id || !mid) {
		prov_batch_refuse(b, "a message needs 'chat.id' and 'message_id' as integers");
		return;
	}
	parley_envelope *env = prov_batch_envelope(b, edited ? "event" : "message");
	if (!env)
		return;
	prov_set_fmt(h, env, "from", "telegram:%lld", chat_id);
	if (edited)
		prov_set_fmt(h, env, "external_id", "%lld:%lld:edit:%lld", chat_id, mid, num_in(b, msg, "edit_date"));
	else
		prov_set_fmt(h, env, "external_id", "%lld:%lld", chat_id, mid);
	prov_set_time_at(b, env, msg, edited ? "edit_date" : "date", 1, where);
	const cJSON *reply = cJSON_GetObjectItemCaseSensitive(msg, "reply_to_message");
	if (edited || reply) {
		prov_set_fmt(h, env, "thread_ref", "%lld:%lld", chat_id, edited ? mid : num_in(b, reply, "message_id"));
	}
	cJSON *meta = cJSON_CreateObject();
	add_names(meta, cJSON_GetObjectItemCaseSensitive(msg, "from"));
	const char *ctype = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(chat, "type"));
	if (ctype)
		cJSON_AddStringToObject(meta, "chat_type", ctype);
	if (edited)
		cJSON_AddBoolToObject(meta, "edited", 1);
	prov_set_from(h, env, "text", msg, "text");
	prov_set_from(h, env, "text", msg, "caption");
	int known = cJSON_GetObjectItemCaseSensitive(msg, "text") != NULL || add_media(t, b, env, msg);
	const cJSON *loc = cJSON_GetObjectItemCaseSensitive(msg, "location");
	const cJSON *venue = cJSON_GetObjectItemCaseSensitive(msg, "venue");
	const cJSON *contact = cJSON_GetObjectItemCaseSensitive(msg, "contact");
	if (loc) {
		cJSON_AddItemToObject(meta, "location", cJSON_Duplicate(loc, 1));
		known = 1;
	}
	if (venue) {
		const char *title = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(venue, "title"));
		const char *addr = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(venue, "address"));
		prov_set_fmt(h, env, "text", "%s%s%s", title ? title : "", title && addr ? ", " : "", addr ? addr : "");
		known = 1;
	}
	if (contact) {
		cJSON *list = cJSON_CreateArray();
		cJSON_AddItemToArray(list, cJSON_Duplicate(contact, 1));
		cJSON_AddItemToObject(meta, "contacts", list);
		const char *first = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(contact, "first_name"));
		const char *last = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(contact, "last_name"));
		const char *phone = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(contact, "phone_number"));
		/* The number is what was shared: the text says it, as the customer's app shows it. */
		prov_set_fmt(h, env, "text", "%s%s%s%s%s", first ? first : "", last ? " " : "", last ? last : "",
		             phone && (first || last) ? ", " : "", phone ? phone : "");
		known = 1;
	}
	if (!known) {
		h->log(t->ch.inst, PARLEY_LOG_WARN, "message %lld:%lld of a kind not understood kept in meta.raw",
		       chat_id, mid);
		cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(msg, 1));
	}
	prov_set_json(h, env, "meta", meta);
}

static void callback_envelope(struct telegram *t, struct prov_batch *b, const cJSON *cb)
{
	const struct parley_host *h = t->ch.host;
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cb, "id"));
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(cb, "message");
	const cJSON *from = cJSON_GetObjectItemCaseSensitive(cb, "from");
	long long chat_id = num_in(b, cJSON_GetObjectItemCaseSensitive(msg, "chat"), "id");
	if (!chat_id)
		chat_id = num_in(b, from, "id");
	if (!id || !chat_id) {
		prov_batch_refuse(b, "a callback_query needs 'id' and a chat or sender id");
		return;
	}
	parley_envelope *env = prov_batch_envelope(b, "message");
	if (!env)
		return;
	prov_set_fmt(h, env, "from", "telegram:%lld", chat_id);
	prov_set_fmt(h, env, "external_id", "callback:%s", id);
	if (msg) {
		prov_set_fmt(h, env, "thread_ref", "%lld:%lld", chat_id, num_in(b, msg, "message_id"));
	}
	prov_set_from(h, env, "text", cb, "data");
	cJSON *meta = cJSON_CreateObject();
	add_names(meta, from);
	const char *data = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cb, "data"));
	if (data)
		cJSON_AddStringToObject(meta, "reply_id", data);
	cJSON_AddStringToObject(meta, "callback_query_id", id);
	prov_set_json(h, env, "meta", meta);
}

static void update_envelopes(struct telegram *t, struct prov_batch *b, const cJSON *u)
{
	const struct parley_host *h = t->ch.host;
	const cJSON *v;
	if ((v = cJSON_GetObjectItemCaseSensitive(u, "message")) ||
	    (v = cJSON_GetObjectItemCaseSensitive(u, "channel_post"))) {
		message_envelope(t, b, v, 0, v->string);
	} else if ((v = cJSON_GetObjectItemCaseSensitive(u, "edited_message")) ||
	           (v = cJSON_GetObjectItemCaseSensitive(u, "edited_channel_post"))) {
		message_envelope(t, b, v, 1, v->string);
	} else if ((v = cJSON_GetObjectItemCaseSensitive(u, "callback_query"))) {
		callback_envelope(t, b, v);
	} else {
		/* message_reaction, poll, my_chat_member, ...: kept whole as an event. */
		parley_envelope *env = prov_batch_envelope(b, "event");
		if (!env)
			return;
		char buf[64];
		prov_set_fmt(h, env, "external_id", "update:%lld", num_in(b, u, "update_id"));
		const cJSON *chat = NULL, *c;
		cJSON_ArrayForEach(c, u) if (cJSON_IsObject(c) &&
		                             (chat = cJSON_GetObjectItemCaseSensitive(c, "chat"))) break;
		snprintf(buf, sizeof(buf), "telegram:%lld", chat ? num_in(b, chat, "id") : 0);
		if (chat)
			h->envelope_set_str(env, "from", buf);
		cJSON *meta = cJSON_CreateObject();
		const cJSON *first = u->child;
		while (first && strcmp(first->string, "update_id") == 0)
			first = first->next;
		if (first)
			cJSON_AddStringToObject(meta, "update_type", first->string);
		cJSON_AddItemToObject(meta, "raw", cJSON_Duplicate(u, 1));
		prov_set_json(h, env, "meta", meta);
		h->log(t->ch.inst, PARLEY_LOG_INFO, "update %lld of type '%s' kept in meta.raw",
		       num_in(b, u, "update_id"), first ? first->string : "?");
	}
}

static void on_post(void *data, parley_http_request *req)
{
	struct telegram *t = data;
	const struct parley_host *h = t->ch.host;
	if (t->secret_token && t->secret_token[0]) {
		const char *got = h->http_header(req, "X-Telegram-Bot-Api-Secret-Token");
		size_t n = strlen(t->secret_token);
		if (!got || strlen(got) != n || !h->ct_equal(got, t->secret_token, n)) {
			prov_refuse_signature(h, t->ch.inst, req, "bad or missing X-Telegram-Bot-Api-Secret-Token");
			return;
		}
	}
	size_t len;
	const char *body = h->http_body(req, &len);
	cJSON *u = prov_json_body(h, req, body, len);
	if (!u)
		return;
	if (!cJSON_IsObject(u) || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(u, "update_id"))) {
		cJSON_Delete(u);
		prov_respond_error(h, req, 400, "not a Telegram Update: expected a JSON object with update_id");
		return;
	}
	struct prov_batch *b = prov_batch_new(h, t->ch.inst, req, t->ch.media);
	update_envelopes(t, b, u);
	cJSON_Delete(u);
	prov_batch_finish(b);
}

static void poll_committed(void *arg, int result)
{
	struct telegram *t = arg;
	pthread_mutex_lock(&t->lock);
	t->committed = 1;
	t->commit_result = result;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->lock);
}

static void pause_ms(struct telegram *t, int64_t ms)
{
	for (int64_t waited = 0; waited < ms && !t->stopping; waited += 50) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* Finish a poller's batch and wait for its commit: 0 when stored. */
static int commit_batch(struct telegram *t, struct prov_batch *b)
{
	pthread_mutex_lock(&t->lock);
	t->committed = 0;
	pthread_mutex_unlock(&t->lock);
	prov_batch_finish(b);
	pthread_mutex_lock(&t->lock);
	while (!t->committed)
		pthread_cond_wait(&t->cv, &t->lock);
	int result = t->commit_result;
	pthread_mutex_unlock(&t->lock);
	return result;
}

static struct prov_batch *poll_batch(struct telegram *t)
{
	struct prov_batch *b = prov_batch_new(t->ch.host, t->ch.inst, NULL, t->ch.media);
	if (b) {
		b->done = poll_committed;
		b->done_arg = t;
	}
	return b;
}

/* Submit one getUpdates answer and wait for its commit; 0 when stored. */
static int store_updates(struct telegram *t, const cJSON *updates, long long *last)
{
	struct prov_batch *b = poll_batch(t);
	if (!b)
		return PARLEY_ENOMEM;
	const cJSON *u;
	cJSON_ArrayForEach(u, updates)
	{
		update_envelopes(t, b, u);
		if (num_in(NULL, u, "update_id") > *last)
			*last = num_in(NULL, u, "update_id");
	}
	return commit_batch(t, b);
}

/*
 * One update that cannot be stored (a string not UTF-8, an id out of
 * range): recorded as an event naming the problem, so that the updates
 * after it are not held up forever.  Telegram has no way to resend it
 * fixed; the raw update is not kept because it is not valid text.
 */
static int store_problem(struct telegram *t, long long update_id, const char *why)
{
	const struct parley_host *h = t->ch.host;
	struct prov_batch *b = poll_batch(t);
	parley_envelope *env = b ? prov_batch_envelope(b, "event") : NULL;
	if (!env) {
		if (b)
			prov_batch_finish(b);
		return PARLEY_ENOMEM;
	}
	prov_set_fmt(h, env, "external_id", "update:%lld", update_id);
	cJSON *meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "problem", why);
	cJSON_AddNumberToObject(meta, "update_id", (double)update_id);
	prov_set_json(h, env, "meta", meta);
	h->log(t->ch.inst, PARLEY_LOG_ERROR,
	       "update %lld cannot be stored (%s): recorded as an event without its content", update_id, why);
	return commit_batch(t, b);
}

/* Telegram forgets updates below the offset: it is advanced only once they are stored. */
static int advance(struct telegram *t, long long next_offset)
{
	char next[32];
	snprintf(next, sizeof(next), "%lld", next_offset);
	return t->ch.host->kv_set(t->ch.inst, "offset", next, strlen(next));
}

static void *poll_main(void *arg)
{
	struct telegram *t = arg;
	const struct parley_host *h = t->ch.host;
	struct prov_client client;
	prov_client_init(&client, t->poll_timeout_ms + t->ch.timeout_ms, 64u << 20);
	client.abort = &t->stopping;
	long long offset = 0;
	/* After a refused answer, updates are asked for one at a time to find the one at fault. */
	int one_by_one = 0, held = 0;
	while (!t->stopping) {
		/*
		 * Nodes sharing a store take turns: one long-polls, the others wait
		 * for its lease to lapse.  A node taking its turn reads the offset
		 * the previous one stored.
		 */
		int64_t ttl = 3 * (t->poll_timeout_ms + t->ch.timeout_ms);
		if (PARLEY_HOST_HAS(h, lease) && h->lease(t->ch.inst, "poll", ttl) != 0) {
			held = 0;
			pause_ms(t, ttl / 3 < 2000 ? ttl / 3 : 2000); /* ask often: a lease given up is taken at once */
			continue;
		}
		if (!held) {
			char *val = NULL;
			size_t len;
			if (h->kv_get(t->ch.inst, "offset", &val, &len) == 0) {
				offset = strtoll(val, NULL, 10);
				free(val);
			}
			held = 1;
		}
		char url[1024];
		snprintf(url, sizeof(url), "%s/bot%s/getUpdates?offset=%lld&timeout=%lld%s", t->ch.base, t->token,
		         offset, (long long)(t->poll_timeout_ms / 1000), one_by_one ? "&limit=1" : "");
		struct timespec t0, t1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		struct prov_http r;
		prov_request(&client, "GET", url, NULL, NULL, 0, NULL, &r);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		char bad[320] = "";
		cJSON *j = r.status == 200 ? prov_json_parse(h, r.body, r.len, bad, sizeof(bad)) : cJSON_Parse(r.body);
		const cJSON *updates = cJSON_GetObjectItemCaseSensitive(j, "result");
		if (t->stopping) {
			/* aborted by tg_stop */
		} else if (r.status == 200 && !j && !one_by_one) {
			h->log(t->ch.inst, PARLEY_LOG_WARN,
			       "getUpdates answer refused (%s): asking for updates one by one", bad);
			one_by_one = 1;
		} else if (r.status == 200 && !j) {
			/* The one update at the offset is the one at fault: read its id without the checks. */
			cJSON *loose = cJSON_Parse(r.body);
			const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(loose, "result"), 0);
			long long id = 0;
			if (prov_json_int(first, "update_id", 0, TG_INT_MAX - 1, &id) == 0 && id >= offset &&
			    store_problem(t, id, bad) == 0 && advance(t, id + 1) == 0) {
				offset = id + 1;
				one_by_one = 0;
			} else {
				h->log(t->ch.inst, PARLEY_LOG_ERROR,
				       "getUpdates answer refused and its update_id unreadable: %s", bad);
				pause_ms(t, 2000);
			}
			cJSON_Delete(loose);
		} else if (r.status != 200 || !cJSON_IsArray(updates)) {
			const char *desc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "description"));
			h->log(t->ch.inst, PARLEY_LOG_WARN, "getUpdates failed (%ld): %s%s", r.status,
			       desc ? desc : (r.error[0] ? r.error : "no answer"),
			       r.status == 409 ? " (a webhook is set: remove it with deleteWebhook to use mode: poll)"
			                       : "");
			pause_ms(t, 2000);
		} else if (cJSON_GetArraySize(updates) > 0) {
			long long last = offset - 1;
			int result = store_updates(t, updates, &last);
			if (result == 0) {
				if (advance(t, last + 1) == 0)
					offset = last + 1;
				one_by_one = 0;
			} else if (result == PARLEY_EINVAL && !one_by_one) {
				h->log(t->ch.inst, PARLEY_LOG_WARN, "updates refused: asking for them one by one");
				one_by_one = 1;
			} else if (result == PARLEY_EINVAL && last >= offset) {
				if (store_problem(t, last, "the update was refused: see the log line before") == 0 &&
				    advance(t, last + 1) == 0) {
					offset = last + 1;
					one_by_one = 0;
				}
			} else {
				h->log(t->ch.inst, PARLEY_LOG_WARN, "updates not stored (%s): asking for them again",
				       h->strerror(result));
				pause_ms(t, 1000);
			}
		} else {
			/* An empty answer that came back at once (not a long poll): do not spin. */
			int64_t took = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
			if (took < 200)
				pause_ms(t, 200 - took);
		}
		cJSON_Delete(j);
		prov_http_free(&r);
	}
	/* Stopping: another node polls from now on, not when the lease lapses. */
	if (held && PARLEY_HOST_HAS(h, lease_release))
		h->lease_release(t->ch.inst, "poll");
	prov_client_fini(&client);
	return NULL;
}

static int fetch_file(void *arg, struct prov_client *client, const char *file_id, struct prov_http *out)
{
	struct telegram *t = arg;
	const char *bad = prov_ref_token(file_id);
	if (bad)
		return prov_fetch_refuse(out, "file_id '%.64s': %s", file_id, bad);
	char *enc = prov_urlencode(file_id);
	char url[1024];
	snprintf(url, sizeof(url), "%s/bot%s/getFile?file_id=%s", t->ch.base, t->token, enc);
	free(enc);
	struct prov_http meta;
	int rv = prov_fetch(client, &t->ch.policy, url, NULL, &meta);
	if (rv != 0 || meta.status != 200) {
		*out = meta;
		return rv ? rv : -1;
	}
	cJSON *j = cJSON_Parse(meta.body);
	const char *path = cJSON_GetStringValue(
	        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "result"), "file_path"));
	/* The path is appended to a URL holding the token: it must stay a file below /file/bot<token>/. */
	bad = path ? prov_ref_path(path) : NULL;
	rv = -1;
	if (bad) {
		rv = prov_fetch_refuse(out, "getFile's file_path '%.64s': %s", path, bad);
		prov_http_free(&meta);
	} else if (path) {
		snprintf(url, sizeof(url), "%s/file/bot%s/%s", t->ch.base, t->token, path);
		rv = prov_fetch(client, &t->ch.policy, url, NULL, out);
		prov_http_free(&meta);
	} else {
		*out = meta;
	}
	cJSON_Delete(j);
	return rv;
}

static int tg_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct telegram *t = data;
	const struct parley_host *h = t->ch.host;
	const char *to = h->envelope_get_str(env, "to");
	if (!to || strncmp(to, "telegram:", 9) != 0 || !to[9]) {
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text), "'to' must be telegram:<chat id>");
		return 0;
	}
	const char *chat = to + 9;
	const char *text = h->envelope_get_str(env, "text");
	char *atts = h->envelope_get_json(env, "attachments");
	char *metas = h->envelope_get_json(env, "meta");
	cJSON *a = atts ? cJSON_Parse(atts) : NULL, *m = metas ? cJSON_Parse(metas) : NULL;
	free(atts);
	free(metas);
	const cJSON *att = cJSON_GetArrayItem(a, 0);
	cJSON *msg = cJSON_CreateObject();
	cJSON_AddItemToObject(msg, "chat_id",
	                      strspn(chat, "-0123456789") == strlen(chat) ? cJSON_CreateNumber(atof(chat))
	                                                                  : cJSON_CreateString(chat));
	const char *method = "sendMessage";
	if (att) {
		const char *ct = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(att, "content_type"));
		const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(att, "url"));
		const char *field = "document";
		method = "sendDocument";
		if (ct && strncmp(ct, "image/", 6) == 0)
			method = "sendPhoto", field = "photo";
		else if (ct && strncmp(ct, "video/", 6) == 0)
			method = "sendVideo", field = "video";
		else if (ct && strncmp(ct, "audio/", 6) == 0)
			method = "sendAudio", field = "audio";
		cJSON_AddStringToObject(msg, field, url ? url : "");
		if (text)
			cJSON_AddStringToObject(msg, "caption", text);
	} else {
		cJSON_AddStringToObject(msg, "text", text ? text : "");
	}
	const char *reply_to = h->envelope_get_str(env, "thread_ref");
	const char *colon = reply_to ? strrchr(reply_to, ':') : NULL;
	if (colon)
		cJSON_AddNumberToObject(cJSON_AddObjectToObject(msg, "reply_parameters"), "message_id",
		                        atof(colon + 1));
	const cJSON *buttons = cJSON_GetObjectItemCaseSensitive(m, "buttons");
	if (cJSON_IsArray(buttons) && cJSON_GetArraySize(buttons) > 0) {
		cJSON *rows = cJSON_AddArrayToObject(cJSON_AddObjectToObject(msg, "reply_markup"), "inline_keyboard");
		const cJSON *bt;
		cJSON_ArrayForEach(bt, buttons)
		{
			const char *bid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bt, "id"));
			const char *title = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bt, "title"));
			cJSON *row = cJSON_CreateArray(), *one = cJSON_CreateObject();
			cJSON_AddStringToObject(one, "text", title ? title : "");
			cJSON_AddStringToObject(one, "callback_data", bid ? bid : (title ? title : ""));
			cJSON_AddItemToArray(row, one);
			cJSON_AddItemToArray(rows, row);
		}
	}
	char *body = cJSON_PrintUnformatted(msg);
	cJSON_Delete(msg);
	cJSON_Delete(a);
	cJSON_Delete(m);
	char url[1024];
	snprintf(url, sizeof(url), "%s/bot%s/%s", t->ch.base, t->token, method);
	const char *hdrs[] = {"Content-Type: application/json", NULL};
	struct prov_http r;
	prov_request(&t->ch.client, "POST", url, hdrs, body, strlen(body), NULL, &r);
	free(body);
	cJSON *j = cJSON_Parse(r.body ? r.body : "");
	const cJSON *result = cJSON_GetObjectItemCaseSensitive(j, "result");
	if (r.status == 200 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "ok"))) {
		prov_classify(&r, NULL, NULL, res);
		snprintf(res->provider_id, sizeof(res->provider_id), "%s:%lld", chat,
		         num_in(NULL, result, "message_id"));
	} else {
		char code[32] = "";
		const cJSON *ec = cJSON_GetObjectItemCaseSensitive(j, "error_code");
		if (cJSON_IsNumber(ec))
			snprintf(code, sizeof(code), "%d", ec->valueint);
		prov_classify(&r, code, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "description")), res);
		const cJSON *ra = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "parameters"),
		                                                   "retry_after");
		if (cJSON_IsNumber(ra)) {
			/* An hour at most: the value is the provider's, and a cast of a huge double is undefined. */
			double secs = ra->valuedouble;
			res->retry_after_ms =
			        secs > 0 && secs < 3600 ? (int64_t)(secs * 1000) : (secs >= 3600 ? 3600000 : 0);
		}
	}
	cJSON_Delete(j);
	prov_http_free(&r);
	return 0;
}

static int tg_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	int rv = prov_channel_new(data, sizeof(struct telegram), h, inst, media_hosts, NULL, errmsg);
	if (rv != 0)
		return rv;
	struct telegram *t = *data;
	t->token = h->config_str(inst, "token");
	t->secret_token = h->config_str(inst, "secret_token");
	h->config_duration_ms(inst, "poll_timeout", &t->poll_timeout_ms);
	/* tg_check has vetted mode before the host creates an instance. */
	t->poll = strcmp(h->config_str(inst, "mode"), "poll") == 0;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cv, NULL);
	return 0;
}

static int tg_start(void *data, char **errmsg)
{
	struct telegram *t = data;
	(void)errmsg;
	static const struct prov_route routes[] = {{"POST", "", on_post}, {NULL, NULL, NULL}};
	if (!t->poll && (!t->secret_token || !t->secret_token[0]))
		t->ch.host->log(t->ch.inst, PARLEY_LOG_WARN,
		                "INSECURE: no secret_token (insecure: true): anyone who knows the webhook URL can post "
		                "updates");
	/* A poller takes updates itself: only a webhook needs the route. */
	int rv = prov_channel_start(&t->ch, fetch_file, t, t->poll ? NULL : routes);
	if (rv != 0 || !t->poll)
		return rv;
	if (pthread_create(&t->poller, NULL, poll_main, t) != 0) {
		prov_channel_stop(&t->ch);
		return PARLEY_EIO;
	}
	t->poller_running = 1;
	return 0;
}

static void tg_stop(void *data)
{
	struct telegram *t = data;
	if (t->poller_running) {
		t->stopping = 1;
		pthread_join(t->poller, NULL);
		t->poller_running = 0;
	}
	prov_channel_stop(&t->ch);
}

static void tg_destroy(void *data)
{
	struct telegram *t = data;
	prov_channel_fini(&t->ch);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cv);
	free(t);
}

static int tg_check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	(void)h;
	cJSON *c = cJSON_Parse(config_json);
	const char *mode = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "mode"));
	int bad = mode && strcmp(mode, "webhook") != 0 && strcmp(mode, "poll") != 0;
	int poll = mode && strcmp(mode, "poll") == 0;
	cJSON_Delete(c);
	if (bad) {
		*errmsg = strdup("mode must be webhook or poll");
		return PARLEY_EINVAL;
	}
	/* A poller takes updates from Telegram itself: only a webhook needs the secret. */
	int rv = poll ? 0
	              : prov_check_signing(config_json, "secret_token", "the secret_token given to setWebhook", errmsg);
	return rv ? rv : prov_policy_check_config(h, config_json, errmsg);
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "telegram",
        .version = "1.0.0",
        .description = "Telegram Bot API: messages, files, locations, contacts, inline buttons, edits",
        .config = config_map,
        .init = prov_plugin_init,
        .fini = prov_plugin_fini,
        .instance_create = tg_create,
        .instance_start = tg_start,
        .instance_stop = tg_stop,
        .instance_destroy = tg_destroy,
        .channel_send = tg_send,
        .check_config = tg_check,
};

PARLEY_PLUGIN_DEFINE(plugin)
