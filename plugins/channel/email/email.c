/*
 * email.c: the email channel type: IMAP in, SMTP out, both through libcurl;
 * MIME through GMime (mime.c).
 *
 * Between rounds the thread waits in IMAP IDLE where the server offers it
 * (libcurl has no IDLE: its connect-only mode logs in and the few IDLE
 * commands go over that connection), so new mail is taken in at once;
 * otherwise it polls every poll_interval.
 *
 * Intake (a thread per channel): the folder's UIDVALIDITY and the last UID
 * taken in are kept in the channel's key-value state.  Each round asks for
 * UIDs above it, fetches those mails, submits their envelopes and waits for
 * the commit; only then the last UID moves on and the mails are flagged
 * \Seen (or moved to `move_to`).  A crash before that takes the same mails
 * in again and their Message-IDs (the envelopes' external ids) make the
 * second copies duplicates: every mail is stored exactly once.  libcurl's
 * fetch sets \Seen as it reads, so the flag is taken off again at once for
 * mail that was unseen, until its commit.
 *
 * Threading: Message-ID, In-Reply-To and References; a reply's thread_ref
 * is the message it answers.  Auto-replies (Auto-Submitted, X-Autoreply,
 * Precedence) become events, never messages, so they cannot start a loop;
 * bounces (delivery status reports) become `failed` receipts for the mail
 * they name.
 *
 * Outbound: SMTP with a Message-ID of ours (the provider id), In-Reply-To
 * and References from the customer's last mail in the conversation.
 */
#include "mime.h"

#include <parley/provider.h>

#include <glib.h>
#include <poll.h>
#include <strings.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct email {
	const struct parley_host *host;
	parley_instance *inst;
	const char *imap_url, *smtp_url, *username, *password, *from, *folder, *move_to;
	int64_t poll_ms, timeout_ms;
	uint64_t max_message;
	int tls_verify;
	char userpwd[512];
	char *mailbox_url; /* imap_url + "/" + folder */
	struct prov_client smtp;
	pthread_t poller;
	int poller_running;
	volatile int stopping;
	int no_idle; /* the server does not offer IDLE: poll */
	int down;    /* the poll thread told the host the mailbox cannot be read */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int committed, commit_result;
};

static const struct parley_config_key config_map[] = {
        {"imap_url", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED,
         "imap://host:143 (STARTTLS when offered) or imaps://host:993"},
        {"smtp_url", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED,
         "smtp://host:587 (STARTTLS when offered) or smtps://host:465"},
        {"username", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED, "login for IMAP and SMTP"},
        {"password", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED | PARLEY_CFG_SECRET, "password for IMAP and SMTP"},
        {"from", PARLEY_CFG_STRING, NULL, PARLEY_CFG_REQUIRED, "our address, e.g. support@example.com"},
        {"folder", PARLEY_CFG_STRING, "INBOX", 0, "the folder mail is taken from"},
        {"move_to", PARLEY_CFG_STRING, NULL, 0, "move committed mail to this folder instead of flagging it \\Seen"},
        {"poll_interval", PARLEY_CFG_DURATION, "5s", 0,
         "how often the folder is checked when the server has no IMAP IDLE (with IDLE, new mail comes at once)"},
        {"tls_verify", PARLEY_CFG_BOOL, "true", 0, "verify the servers' TLS certificates"},
        {"timeout", PARLEY_CFG_DURATION, "30s", 0, "IMAP and SMTP request timeout"},
        {"max_message", PARLEY_CFG_SIZE, "25MiB", 0, "larger mails are recorded without their body"},
        {NULL, 0, NULL, 0, NULL},
};

static void client_init(struct email *e, struct prov_client *c, size_t max)
{
	prov_client_init(c, e->timeout_ms, max);
	c->insecure = !e->tls_verify;
	c->use_ssl = CURLUSESSL_TRY;
	c->abort = &e->stopping;
}

/* An IMAP command on the folder (libcurl selects it first); the untagged answer lines. */
static int imap(struct email *e, struct prov_client *c, const char *cmd, struct prov_http *out)
{
	return prov_request(c, cmd, e->mailbox_url, NULL, NULL, 0, e->userpwd, out);
}

/* Numbers after "* SEARCH". */
static size_t parse_search(const char *resp, long long after, long long *uids, size_t max)
{
	size_t n = 0;
	const char *p = strstr(resp ? resp : "", "* SEARCH");
	if (!p)
		return 0;
	p += 8;
	while (*p && *p != '\r' && *p != '\n' && n < max) {
		char *end;
		long long v = strtoll(p, &end, 10);
		if (end == p)
			break;
		if (v > after)
			uids[n++] = v;
		p = end;
	}
	return n;
}

static void uid_set(const long long *uids, size_t n, char *out, size_t outlen)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && len + 24 < outlen; i++)
		len += (size_t)snprintf(out + len, outlen - len, "%s%lld", i ? "," : "", uids[i]);
}

static void poll_committed(void *arg, int result)
{
	struct email *e = arg;
	pthread_mutex_lock(&e->lock);
	e->committed = 1;
	e->commit_result = result;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->lock);
}

static void pause_ms(struct email *e, int64_t ms)
{
	for (int64_t waited = 0; waited < ms && !e->stopping; waited += 50) {
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* One fetched mail as an envelope in the batch; its attachments are kept first. */
/* Longest id or address a mail's envelope takes; longer ones go to meta (the host takes 512 bytes). */
#define MAX_KEY 500

/* A mail that cannot become a message is recorded as an event (its UID, why), never dropped or retried forever. */
static void problem_envelope(struct email *e, struct prov_batch *b, long long validity, long long uid, const char *why)
{
	const struct parley_host *h = e->host;
	parley_envelope *env = prov_batch_envelope(b, "event");
	if (!env)
		return;
	prov_set_fmt(h, env, "external_id", "uid:%lld:%lld", validity, uid);
	cJSON *meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "problem", why);
	cJSON_AddNumberToObject(meta, "uid", (double)uid);
	prov_set_json(h, env, "meta", meta);
	h->log(e->inst, PARLEY_LOG_WARN, "mail UID %lld: %s; recorded as an event without its body", uid, why);
}

static void mail_envelope(struct email *e, struct prov_batch *b, const char *raw, size_t len, long long validity,
                          long long uid)
{
	const struct parley_host *h = e->host;
	struct parsed_mail m;
	char when[40];
	int parsed = raw && mail_parse(raw, len, &m) == 0;
	if (!parsed) {
		problem_envelope(e, b, validity, uid, raw ? "not a parseable mail" : "larger than max_message");
		return;
	}
	parley_envelope *env = prov_batch_envelope(b, m.bounce ? "status" : (m.auto_reply ? "event" : "message"));
	if (!env) {
		mail_free(&m);
		return;
	}
	/*
	 * A mail cannot be refused to its sender, and one refused envelope would
	 * hold up every later mail: what does not fit a field goes to meta.
	 */
	cJSON *meta = cJSON_CreateObject();
	if (m.message_id && strlen(m.message_id) <= MAX_KEY)
		h->envelope_set_str(env, "external_id", m.message_id);
	else
		prov_set_fmt(h, env, "external_id", "uid:%lld:%lld", validity, uid);
	if (m.from_addr && strlen(m.from_addr) <= MAX_KEY)
		prov_set_fmt(h, env, "from", "mailto:%s", m.from_addr);
	else if (m.from_addr)
		cJSON_AddStringToObject(meta, "from_address", m.from_addr);
	if (m.to_addr && strlen(m.to_addr) <= MAX_KEY)
		prov_set_fmt(h, env, "to", "mailto:%s", m.to_addr);
	else if (m.to_addr)
		cJSON_AddStringToObject(meta, "to_address", m.to_addr);
	if (m.subject)
		h->envelope_set_str(env, "subject", m.subject);
	if (m.date_ms > 0) {
		cJSON *t = cJSON_CreateNumber((double)m.date_ms);
		if (prov_time_from_unix(t, 0.001, when, sizeof(when)) == 0)
			h->envelope_set_str(env, "sent_at", when);
		cJSON_Delete(t);
	}
	if (m.bounce) {
		h->envelope_set_str(env, "status", "failed");
		if (m.bounced_message_id && strlen(m.bounced_message_id) <= MAX_KEY)
			h->envelope_set_str(env, "thread_ref", m.bounced_message_id);
		h->envelope_set_str(env, "error", m.bounce_reason ? m.bounce_reason : "the mail bounced");
		cJSON_AddBoolToObject(meta, "bounce", 1);
	} else {
		const char *ref = m.in_reply_to;
		if (!ref && cJSON_GetArraySize(m.references) > 0)
			ref = cJSON_GetArrayItem(m.references, cJSON_GetArraySize(m.references) - 1)->valuestring;
		if (ref && strlen(ref) <= MAX_KEY)
			h->envelope_set_str(env, "thread_ref", ref);
		h->envelope_set_str(env, "text", m.text);
	}
	if (m.from_name)
		cJSON_AddStringToObject(meta, "contact_name", m.from_name);
	if (m.message_id)
		cJSON_AddStringToObject(meta, "message_id", m.message_id);
	cJSON_AddItemToObject(meta, "references", cJSON_Duplicate(m.references, 1));
	if (strcmp(m.full_text, m.text) != 0)
		cJSON_AddStringToObject(meta, "full_text", m.full_text);
	if (m.html_only)
		cJSON_AddBoolToObject(meta, "html_only", 1);
	if (m.auto_reply)
		cJSON_AddBoolToObject(meta, "auto_reply", 1);
	cJSON_AddNumberToObject(meta, "uid", (double)uid);
	prov_set_json(h, env, "meta", meta);
	if (m.n_atts > 0) {
		cJSON *arr = cJSON_CreateArray();
		for (size_t i = 0; i < m.n_atts; i++) {
			struct mail_attachment *a = &m.atts[i];
			char sha[65], ref[128];
			cJSON *att = cJSON_CreateObject();
			const char *kind = "document";
			if (strncmp(a->content_type, "image/", 6) == 0)
				kind = "image";
			else if (strncmp(a->content_type, "audio/", 6) == 0)
				kind = "audio";
			else if (strncmp(a->content_type, "video/", 6) == 0)
				kind = "video";
			cJSON_AddStringToObject(att, "kind", kind);
			cJSON_AddStringToObject(att, "content_type", a->content_type);
			if (a->name)
				cJSON_AddStringToObject(att, "name", a->name);
			cJSON_AddNumberToObject(att, "size", (double)a->len);
			cJSON_AddBoolToObject(att, "inline", a->is_inline);
			/* The bytes are kept before the commit: a crash after it cannot lose them. */
			if (h->attachment_put(e->inst, NULL, i, a->data, a->len, a->content_type, sha) == 0) {
				snprintf(ref, sizeof(ref), "attachments/%.2s/%s", sha, sha);
				cJSON_AddStringToObject(att, "ref", ref);
				cJSON_AddStringToObject(att, "sha256", sha);
			}
			cJSON_AddItemToArray(arr, att);
		}
		prov_set_json(h, env, "attachments", arr);
	}
	mail_free(&m);
	const char *err = h->envelope_error(env);
	if (err) {
		/* Kept as a problem event rather than held up forever; the mail stays in the mailbox. */
		char why[400];
		snprintf(why, sizeof(why), "%s", err);
		h->envelope_free(env);
		b->n--;
		problem_envelope(e, b, validity, uid, why);
	}
}

/* A number the channel keeps in its key-value state (uidvalidity, last_uid), 0 when it has none. */
static long long kv_number(struct email *e, const char *key)
{
	char *val = NULL;
	size_t len;
	long long n = 0;
	if (e->host->kv_get(e->inst, key, &val, &len) == 0) {
		n = strtoll(val, NULL, 10);
		free(val);
	}
	return n;
}

/* One intake round; returns how many mails were taken in, or -1 on trouble. */
static int intake(struct email *e, struct prov_client *c)
{
	const struct parley_host *h = e->host;
	struct prov_http r;
	char cmd[4096];
	snprintf(cmd, sizeof(cmd), "EXAMINE \"%s\"", e->folder);
	if (prov_request(c, cmd, e->imap_url, NULL, NULL, 0, e->userpwd, &r) != 0 || !r.body) {
		char why[400];
		snprintf(why, sizeof(why), "IMAP %s: %s", e->imap_url, r.error[0] ? r.error : "no answer");
		h->log(e->inst, PARLEY_LOG_WARN, "%s", why);
		if (PARLEY_HOST_HAS(h, health) && !e->down) {
			h->health(e->inst, 0, why);
			e->down = 1;
		}
		prov_http_free(&r);
		return -1;
	}
	if (e->down && PARLEY_HOST_HAS(h, health)) {
		h->health(e->inst, 1, NULL);
		e->down = 0;
	}
	const char *uv = strstr(r.body, "UIDVALIDITY ");
	long long validity = uv ? strtoll(uv + 12, NULL, 10) : 0;
	prov_http_free(&r);
	long long stored_validity = kv_number(e, "uidvalidity"), last = kv_number(e, "last_uid");
	if (stored_validity && stored_validity != validity) {
		/* The folder was rebuilt: UIDs mean nothing now; Message-IDs keep old mail from doubling. */
		h->log(e->inst, PARLEY_LOG_WARN, "UIDVALIDITY of %s changed (%lld -> %lld): taking the folder in again",
		       e->folder, stored_validity, validity);
		last = 0;
	}
	snprintf(cmd, sizeof(cmd), "UID SEARCH UID %lld:*", last + 1);
	if (imap(e, c, cmd, &r) != 0) {
		prov_http_free(&r);
		return -1;
	}
	long long uids[50];
	size_t n = parse_search(r.body, last, uids, 50);
	prov_http_free(&r);
	if (n == 0)
		return 0;
	char set[2048];
	uid_set(uids, n, set, sizeof(set));
	/* Which were unseen: libcurl's fetch marks them \Seen, which must wait for the commit. */
	snprintf(cmd, sizeof(cmd), "UID FETCH %s FLAGS", set);
	imap(e, c, cmd, &r);
	long long unseen[50];
	size_t n_unseen = 0;
	for (const char *p = r.body ? r.body : ""; (p = strstr(p, "UID ")) != NULL; p += 4) {
		long long u = strtoll(p + 4, NULL, 10);
		const char *eol = strchr(p, '\n');
		const char *seen = strstr(p, "\\Seen");
		if (u > 0 && (!seen || (eol && seen > eol)) && n_unseen < 50)
			unseen[n_unseen++] = u;
	}
	prov_http_free(&r);
	struct prov_batch *b = prov_batch_new(h, e->inst, NULL, NULL);
	b->done = poll_committed;
	b->done_arg = e;
	struct prov_client big;
	client_init(e, &big, (size_t)e->max_message);
	for (size_t i = 0; i < n && !e->stopping; i++) {
		char url[2048];
		snprintf(url, sizeof(url), "%s/;UID=%lld", e->mailbox_url, uids[i]);
		int rv = prov_request(&big, NULL, url, NULL, NULL, 0, e->userpwd, &r);
		int too_big = rv != 0 && strstr(r.error, "larger than the limit");
		if (rv != 0 && !too_big) {
			h->log(e->inst, PARLEY_LOG_WARN, "fetching UID %lld failed: %s", uids[i], r.error);
			prov_http_free(&r);
			n = i; /* take in what was fetched; the rest next round */
			break;
		}
		mail_envelope(e, b, too_big ? NULL : r.body, r.len, validity, uids[i]);
		prov_http_free(&r);
	}
	prov_client_fini(&big);
	if (n_unseen > 0) {
		uid_set(unseen, n_unseen, set, sizeof(set));
		snprintf(cmd, sizeof(cmd), "UID STORE %s -FLAGS.SILENT (\\Seen)", set);
		imap(e, c, cmd, &r);
		prov_http_free(&r);
	}
	if (n == 0 || e->stopping) {
		prov_batch_fail(b, 0, NULL);
		return -1;
	}
	pthread_mutex_lock(&e->lock);
	e->committed = 0;
	pthread_mutex_unlock(&e->lock);
	prov_batch_finish(b);
	pthread_mutex_lock(&e->lock);
	while (!e->committed)
		pthread_cond_wait(&e->cv, &e->lock);
	int result = e->commit_result;
	pthread_mutex_unlock(&e->lock);
	if (result != 0) {
		h->log(e->inst, PARLEY_LOG_WARN, "mails not stored (%s): taking them in again", h->strerror(result));
		return -1;
	}
	char num[32];
	snprintf(num, sizeof(num), "%lld", validity);
	h->kv_set(e->inst, "uidvalidity", num, strlen(num));
	snprintf(num, sizeof(num), "%lld", uids[n - 1]);
	h->kv_set(e->inst, "last_uid", num, strlen(num));
	uid_set(uids, n, set, sizeof(set));
	if (e->move_to && e->move_to[0])
		snprintf(cmd, sizeof(cmd), "UID MOVE %s \"%s\"", set, e->move_to);
	else
		snprintf(cmd, sizeof(cmd), "UID STORE %s +FLAGS.SILENT (\\Seen)", set);
	imap(e, c, cmd, &r);
	prov_http_free(&r);
	h->metric_add(e->inst, "mails_taken_in_total", (int64_t)n);
	return (int)n;
}

/* Read from a connect-only IMAP connection until a line starts with `until` (or has it, for "+ "). */
static int imap_read_until(struct email *e, CURL *c, curl_socket_t sock, const char *until, int64_t timeout_ms,
                           GString *seen)
{
	char buf[4096];
	int64_t waited = 0;
	while (!e->stopping && waited < timeout_ms) {
		size_t got = 0;
		CURLcode rc = curl_easy_recv(c, buf, sizeof(buf), &got);
		if (rc == CURLE_AGAIN) {
			struct pollfd pfd = {.fd = sock, .events = POLLIN};
			poll(&pfd, 1, 250);
			waited += 250;
			continue;
		}
		if (rc != CURLE_OK || got == 0)
			return -1;
		g_string_append_len(seen, buf, (gssize)got);
		if (strstr(seen->str, until))
			return 0;
	}
	return 1; /* timed out or stopping */
}

static int imap_send(CURL *c, const char *cmd)
{
	size_t sent = 0, len = strlen(cmd);
	while (sent < len) {
		size_t n = 0;
		CURLcode rc = curl_easy_send(c, cmd + sent, len - sent, &n);
		if (rc == CURLE_AGAIN) {
			struct timespec ts = {0, 10 * 1000000L};
			nanosleep(&ts, NULL);
			continue;
		}
		if (rc != CURLE_OK)
			return -1;
		sent += n;
	}
	return 0;
}

/*
 * Wait in IDLE until the folder changes, max_ms passes or the channel stops.
 * Returns 0 after such a wait, -1 when IDLE cannot be used (then poll).
 */
static int idle_wait(struct email *e, int64_t max_ms)
{
	CURL *c = curl_easy_init();
	if (!c)
		return -1;
	curl_easy_setopt(c, CURLOPT_URL, e->imap_url);
	curl_easy_setopt(c, CURLOPT_USERPWD, e->userpwd);
	curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (!e->tls_verify) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	curl_socket_t sock = CURL_SOCKET_BAD;
	GString *seen = g_string_new(NULL);
	char cmd[600];
	int rv = -1;
	if (curl_easy_perform(c) != CURLE_OK || curl_easy_getinfo(c, CURLINFO_ACTIVESOCKET, &sock) != CURLE_OK)
		goto out;
	if (imap_send(c, "P1 CAPABILITY\r\n") || imap_read_until(e, c, sock, "P1 ", e->timeout_ms, seen) != 0)
		goto out;
	if (!strstr(seen->str, " IDLE")) {
		e->no_idle = 1;
		e->host->log(e->inst, PARLEY_LOG_INFO,
		             "the IMAP server does not offer IDLE: polling every poll_interval");
		goto out;
	}
	snprintf(cmd, sizeof(cmd), "P2 SELECT \"%s\"\r\n", e->folder);
	g_string_truncate(seen, 0);
	if (imap_send(c, cmd) || imap_read_until(e, c, sock, "P2 OK", e->timeout_ms, seen) != 0)
		goto out;
	/* Mail that came after intake's search and before the folder was opened here is only counted in the
	 * P2 answer, never announced in IDLE: search again, and take in what is newer at once instead of waiting. */
	long long last = kv_number(e, "last_uid"), newer[1];
	snprintf(cmd, sizeof(cmd), "P3 UID SEARCH UID %lld:*\r\n", last + 1);
	g_string_truncate(seen, 0);
	if (imap_send(c, cmd) || imap_read_until(e, c, sock, "P3 ", e->timeout_ms, seen) != 0)
		goto out;
	if (parse_search(seen->str, last, newer, 1) > 0 || strstr(seen->str, " EXISTS")) {
		rv = 0;
		goto out;
	}
	g_string_truncate(seen, 0);
	if (imap_send(c, "P4 IDLE\r\n") || imap_read_until(e, c, sock, "+ ", e->timeout_ms, seen) != 0)
		goto out;
	/* EXISTS announces new mail (it may come with the "+" already); anything else (flags, expunges) is not
	 * ours to wait for. */
	if (!strstr(seen->str, " EXISTS")) {
		g_string_truncate(seen, 0);
		imap_read_until(e, c, sock, " EXISTS", max_ms, seen);
	}
	if (!e->stopping && imap_send(c, "DONE\r\n") == 0)
		imap_read_until(e, c, sock, "P4 OK", 2000, seen);
	rv = 0;
out:
	g_string_free(seen, TRUE);
	curl_easy_cleanup(c);
	return rv;
}

/*
 * How long a node's turn at the mailbox lasts unless renewed; IDLE waits
 * half of it, so the lease is renewed in time, and a node that died is
 * replaced within it.
 */
#define POLL_LEASE_MS (90 * 1000)

static void *poll_main(void *arg)
{
	struct email *e = arg;
	struct prov_client c;
	client_init(e, &c, 16u << 20);
	int held = 1;
	while (!e->stopping) {
		/* Nodes sharing a store take turns: one reads the mailbox, the others wait for its lease to lapse. */
		if (PARLEY_HOST_HAS(e->host, lease) && e->host->lease(e->inst, "poll", POLL_LEASE_MS) != 0) {
			if (held)
				e->host->log(e->inst, PARLEY_LOG_INFO, "another node reads the mailbox: waiting");
			held = 0;
			pause_ms(e, 5000); /* ask often: a lease given up is taken at once */
			continue;
		}
		if (!held)
			e->host->log(e->inst, PARLEY_LOG_INFO, "this node reads the mailbox now");
		held = 1;
		int got = intake(e, &c);
		if (got < 0)
			pause_ms(e, e->poll_ms > 2000 ? e->poll_ms : 2000);
		else if (got == 0 && (e->no_idle || idle_wait(e, POLL_LEASE_MS / 2) != 0))
			pause_ms(e, e->poll_ms);
	}
	/* Stopping: another node reads the mailbox from now on, not when the lease lapses. */
	if (held && PARLEY_HOST_HAS(e->host, lease_release))
		e->host->lease_release(e->inst, "poll");
	prov_client_fini(&c);
	return NULL;
}

/* ---------------------------------------------------------------- send */

struct upload {
	const char *data;
	size_t len, off;
};

static size_t read_cb(char *buf, size_t size, size_t nitems, void *ud)
{
	struct upload *u = ud;
	size_t n = size * nitems;
	if (n > u->len - u->off)
		n = u->len - u->off;
	memcpy(buf, u->data + u->off, n);
	u->off += n;
	return n;
}

/* The customer's last mail in the conversation: what a reply answers. */
static cJSON *last_inbound(struct email *e, const char *conversation_id)
{
	cJSON *q = cJSON_CreateObject();
	cJSON_AddStringToObject(q, "conversation_id", conversation_id);
	char *req = cJSON_PrintUnformatted(q), *reply = NULL;
	cJSON_Delete(q);
	cJSON *found = NULL;
	int rv = req ? e->host->store_query(e->inst, "conversation.get", req, &reply) : PARLEY_ENOMEM;
	free(req);
	if (rv == 0) {
		cJSON *j = cJSON_Parse(reply);
		const cJSON *m;
		cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(
		                              cJSON_GetObjectItemCaseSensitive(j, "conversation"), "timeline"))
		{
			const char *dir = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "direction"));
			const char *ch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "channel"));
			if (dir && ch && strcmp(dir, "inbound") == 0 &&
			    strcmp(ch, e->host->instance_name(e->inst)) == 0) {
				cJSON_Delete(found);
				found = cJSON_Duplicate(m, 1);
			}
		}
		cJSON_Delete(j);
	}
	free(reply);
	return found;
}

static int em_send(void *data, const parley_envelope *env, struct parley_send_result *res)
{
	struct email *e = data;
	const struct parley_host *h = e->host;
	const char *to = h->envelope_get_str(env, "to");
	if (!to || strncmp(to, "mailto:", 7) != 0 || !strchr(to, '@')) {
		res->outcome = PARLEY_SEND_PERMANENT;
		snprintf(res->error_text, sizeof(res->error_text), "'to' must be mailto:<address>");
		return 0;
	}
	const char *subject = h->envelope_get_str(env, "subject");
	const char *reply_to = h->envelope_get_str(env, "thread_ref");
	const char *conv = h->envelope_get_str(env, "conversation_id");
	char *refs = NULL, *subj = NULL, *irt = reply_to ? strdup(reply_to) : NULL;
	cJSON *last = conv ? last_inbound(e, conv) : NULL;
	if (last) {
		const cJSON *meta = cJSON_GetObjectItemCaseSensitive(last, "meta");
		const char *mid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "message_id"));
		if (!irt && mid)
			irt = strdup(mid);
		GString *rs = g_string_new(NULL);
		const cJSON *r;
		cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(meta, "references"))
		        g_string_append_printf(rs, "%s%s", rs->len ? " " : "", r->valuestring);
		if (mid)
			g_string_append_printf(rs, "%s%s", rs->len ? " " : "", mid);
		refs = strdup(rs->str);
		g_string_free(rs, TRUE);
		const char *ls = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(last, "subject"));
		if (!subject && ls) {
			size_t n = strlen(ls) + 5;
			subj = malloc(n);
			snprintf(subj, n, "%s%s", strncasecmp(ls, "Re:", 3) == 0 ? "" : "Re: ", ls);
		}
	}
	if (!refs && irt)
		refs = strdup(irt);
	char id[32], mid[128];
	h->new_id(id);
	const char *at = strchr(e->from, '@');
	snprintf(mid, sizeof(mid), "%s@%s", id, at ? at + 1 : "parley.local");
	size_t len;
	char *raw = mail_compose(e->from, to + 7, subject ? subject : (subj ? subj : ""),
	                         h->envelope_get_str(env, "text"), mid, irt, refs, &len);
	free(refs);
	free(subj);
	free(irt);
	cJSON_Delete(last);
	struct upload up = {raw, len, 0};
	if (!e->smtp.curl)
		e->smtp.curl = curl_easy_init();
	CURL *c = e->smtp.curl;
	curl_easy_reset(c);
	struct curl_slist *rcpt = curl_slist_append(NULL, to + 7);
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, e->smtp_url);
	curl_easy_setopt(c, CURLOPT_USERPWD, e->userpwd);
	curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
	if (!e->tls_verify) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, e->from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, &up);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)e->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode rc = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(rcpt);
	free(raw);
	if (rc == CURLE_OK) {
		res->outcome = PARLEY_SEND_OK;
		snprintf(res->provider_id, sizeof(res->provider_id), "%s", mid);
		return 0;
	}
	/* 5xx SMTP replies are permanent (bad recipient, refused); the rest may pass later. */
	res->outcome = code >= 500 && code < 600 ? PARLEY_SEND_PERMANENT : PARLEY_SEND_RETRY;
	snprintf(res->error_code, sizeof(res->error_code), "smtp_%ld", code);
	snprintf(res->error_text, sizeof(res->error_text), "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
	return 0;
}

/* ----------------------------------------------------------- lifecycle */

static int em_create(const struct parley_host *h, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	(void)errmsg;
	struct email *e = calloc(1, sizeof(*e));
	if (!e)
		return PARLEY_ENOMEM;
	e->host = h;
	e->inst = inst;
	e->imap_url = h->config_str(inst, "imap_url");
	e->smtp_url = h->config_str(inst, "smtp_url");
	e->username = h->config_str(inst, "username");
	e->password = h->config_str(inst, "password");
	e->from = h->config_str(inst, "from");
	e->folder = h->config_str(inst, "folder");
	e->move_to = h->config_str(inst, "move_to");
	h->config_duration_ms(inst, "poll_interval", &e->poll_ms);
	h->config_duration_ms(inst, "timeout", &e->timeout_ms);
	h->config_size(inst, "max_message", &e->max_message);
	h->config_bool(inst, "tls_verify", &e->tls_verify);
	/* em_check has vetted the URLs before the host creates an instance. */
	snprintf(e->userpwd, sizeof(e->userpwd), "%s:%s", e->username, e->password);
	size_t n = strlen(e->imap_url) + strlen(e->folder) + 2;
	e->mailbox_url = malloc(n);
	snprintf(e->mailbox_url, n, "%s%s%s", e->imap_url, e->imap_url[strlen(e->imap_url) - 1] == '/' ? "" : "/",
	         e->folder);
	prov_client_init(&e->smtp, e->timeout_ms, 1 << 20);
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cv, NULL);
	mail_init();
	*data = e;
	return 0;
}

static int em_start(void *data, char **errmsg)
{
	struct email *e = data;
	(void)errmsg;
	if (pthread_create(&e->poller, NULL, poll_main, e) != 0)
		return PARLEY_EIO;
	e->poller_running = 1;
	return 0;
}

static void em_stop(void *data)
{
	struct email *e = data;
	if (e->poller_running) {
		e->stopping = 1;
		pthread_join(e->poller, NULL);
		e->poller_running = 0;
	}
}

static void em_destroy(void *data)
{
	struct email *e = data;
	prov_client_fini(&e->smtp);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cv);
	free(e->mailbox_url);
	free(e);
}

static int em_check(const struct parley_host *h, const char *config_json, char **errmsg)
{
	(void)h;
	cJSON *c = cJSON_Parse(config_json);
	const char *imap = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "imap_url"));
	const char *smtp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "smtp_url"));
	const char *why = NULL;
	if (imap && strncmp(imap, "imap://", 7) != 0 && strncmp(imap, "imaps://", 8) != 0)
		why = "imap_url must start with imap:// or imaps://";
	else if (smtp && strncmp(smtp, "smtp://", 7) != 0 && strncmp(smtp, "smtps://", 8) != 0)
		why = "smtp_url must start with smtp:// or smtps://";
	cJSON_Delete(c);
	if (why)
		*errmsg = strdup(why);
	return why ? PARLEY_EINVAL : 0;
}

static const struct parley_plugin plugin = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "email",
        .version = "1.0.0",
        .description = "e-mail: IMAP in (exactly once, threads, attachments, bounces), SMTP out with threading headers",
        .config = config_map,
        .init = prov_plugin_init,
        .fini = prov_plugin_fini,
        .instance_create = em_create,
        .instance_start = em_start,
        .instance_stop = em_stop,
        .instance_destroy = em_destroy,
        .channel_send = em_send,
        .check_config = em_check,
};

PARLEY_PLUGIN_DEFINE(plugin)
