/*
 * faq_test.c: the faq bot's engine (plugins/bot/faq/faq.h) alone: matching
 * Korean and English text to intents (patterns, then examples), slots,
 * handoff words, rendering per channel type, configuration errors, and the
 * signed lookup against a small HTTP server this test runs on loopback
 * (answers, failures, a non-JSON answer, and one slower than the timeout,
 * which must give up within it and render the fallback).
 */
#define _GNU_SOURCE /* strcasestr */
#include "faq.h"
#include "test.h"

#include <parley/parley.h>

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SECRET "lookup-s3cret"

/* ------------------------------------------------- the lookup endpoint */

struct server {
	int fd, port;
	volatile int stop;
	pthread_t accept_thread;
	pthread_mutex_t lock;
	pthread_t conns[64];
	int nconns;
	char body[4096], signature[256], path[128];
	int requests;
};

struct conn {
	struct server *s;
	int fd;
};

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *serve_one(void *arg)
{
	struct conn *c = arg;
	char req[8192];
	size_t len = 0;
	char *head_end = NULL;
	while (len < sizeof(req) - 1) {
		ssize_t n = read(c->fd, req + len, sizeof(req) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		req[len] = '\0';
		if ((head_end = strstr(req, "\r\n\r\n"))) {
			const char *cl = strcasestr(req, "\r\nContent-Length:");
			size_t want = cl ? (size_t)atol(cl + 17) : 0;
			if (len - (size_t)(head_end + 4 - req) >= want)
				break;
		}
	}
	char path[128] = "";
	sscanf(req, "POST %127s", path);
	const char *sig = strcasestr(req, "\r\nX-Parley-Signature:");
	pthread_mutex_lock(&c->s->lock);
	c->s->requests++;
	snprintf(c->s->path, sizeof(c->s->path), "%s", path);
	snprintf(c->s->body, sizeof(c->s->body), "%s", head_end ? head_end + 4 : "");
	c->s->signature[0] = '\0';
	if (sig) {
		sig += 21;
		while (*sig == ' ')
			sig++;
		snprintf(c->s->signature, sizeof(c->s->signature), "%.*s", (int)strcspn(sig, "\r\n"), sig);
	}
	pthread_mutex_unlock(&c->s->lock);
	int status = 200;
	const char *body = "{\"status\":\"배송 중\",\"eta\":\"내일\"}";
	if (strcmp(path, "/slow") == 0) {
		sleep_ms(1500);
		body = "{\"status\":\"too late\"}";
	} else if (strcmp(path, "/fail") == 0) {
		status = 500;
		body = "{}";
	} else if (strcmp(path, "/text") == 0) {
		body = "not json";
	}
	char resp[1024];
	int n = snprintf(resp, sizeof(resp),
	                 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: "
	                 "close\r\n\r\n%s",
	                 status, strlen(body), body);
	ssize_t w = write(c->fd, resp, (size_t)n);
	(void)w;
	close(c->fd);
	free(c);
	return NULL;
}

static void *accept_loop(void *arg)
{
	struct server *s = arg;
	while (!s->stop) {
		struct pollfd p = {s->fd, POLLIN, 0};
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(s->fd, NULL, NULL);
		if (fd < 0)
			continue;
		struct conn *c = malloc(sizeof(*c));
		c->s = s;
		c->fd = fd;
		pthread_mutex_lock(&s->lock);
		if (s->nconns < 64 && pthread_create(&s->conns[s->nconns], NULL, serve_one, c) == 0)
			s->nconns++;
		else
			close(fd), free(c);
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

static void server_start(struct server *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof(a);
	if (bind(s->fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->fd, 16) != 0 ||
	    getsockname(s->fd, (struct sockaddr *)&a, &al) != 0) {
		perror("test server");
		exit(1);
	}
	s->port = ntohs(a.sin_port);
	pthread_create(&s->accept_thread, NULL, accept_loop, s);
}

static void server_stop(struct server *s)
{
	s->stop = 1;
	pthread_join(s->accept_thread, NULL);
	for (int i = 0; i < s->nconns; i++)
		pthread_join(s->conns[i], NULL);
	close(s->fd);
	pthread_mutex_destroy(&s->lock);
}

/* ------------------------------------------------------------ config */

static const char *config_fmt =
        "{\"intents\": ["
        "{\"name\": \"order_status\","
        " \"examples\": [\"주문 상태 알려주세요\", \"where is my order\"],"
        " \"patterns\": [\"주문.*(상태|조회|어디)\", \"\\\\border\\\\b.*\\\\bstatus\\\\b|where.*\\\\border\\\\b\"],"
        " \"slots\": {\"order_id\": \"\\\\b(\\\\d{5,10})\\\\b\"},"
        " \"lookup\": \"true\","
        " \"answer\": {\"ko\": \"주문 {{order_id}}: {{status}}\", \"en\": \"Order {{order_id}}: {{status}}\"},"
        " \"ask\": {\"ko\": \"주문번호를 알려 주세요.\", \"en\": \"What is your order number?\"},"
        " \"buttons\": [{\"id\": \"handoff\", \"title\": {\"ko\": \"상담원 연결\", \"en\": \"Talk to a person about "
        "this order\"}}, \"FAQ\"]},"
        "{\"name\": \"cancel_order\", \"patterns\": [\"주문.*취소|\\\\bcancel\\\\b.*\\\\border\\\\b\"],"
        " \"slots\": {\"order_id\": \"\\\\b(\\\\d{5,10})\\\\b\"}, \"lookup\": true,"
        " \"answer\": {\"ko\": \"주문 {{order_id}} 취소를 접수했어요.\", \"en\": \"Order {{order_id}}: cancellation "
        "received.\"}},"
        "{\"name\": \"password_reset\","
        " \"examples\": [\"비밀번호를 잊어버렸어요\", \"비밀번호 재설정하고 싶어요\", \"I forgot my password\", "
        "\"reset my password\"],"
        " \"answer\": {\"ko\": \"여기서 재설정하세요: {{link|https://shop.example/reset}}\", \"en\": \"Reset it "
        "here: {{link|https://shop.example/reset}}\"}},"
        "{\"name\": \"hours\","
        " \"examples\": [\"영업시간이 어떻게 되나요\", \"what are your opening hours\"],"
        " \"answer\": \"09:00-18:00\","
        " \"buttons\": [\"월\", \"화\", \"수\", \"목\"]}"
        "],"
        " \"lookup_url\": \"http://127.0.0.1:%d%s\", \"lookup_secret\": \"" SECRET "\","
        " \"lookup_timeout\": \"%s\", \"threshold\": \"0.5\","
        " \"fallback\": {\"ko\": \"잘 모르겠어요.\", \"en\": \"Sorry, I did not get that.\"},"
        " \"handoff_words\": [\"상담원\", \"사람\", \"agent\", \"HUMAN\"]}";

static struct faq *load(int port, const char *path, const char *timeout)
{
	char cfg[8192];
	snprintf(cfg, sizeof(cfg), config_fmt, port, path, timeout);
	struct faq *f = NULL;
	char *err = NULL;
	int rv = faq_load(cfg, &f, &err);
	if (rv != 0)
		fprintf(stderr, "faq_load: %s\n", err ? err : "?");
	CHECK(rv == 0 && f);
	free(err);
	return f;
}

static const char *slot(const struct faq_result *r, const char *name)
{
	for (size_t i = 0; i < r->nslots; i++)
		if (strcmp(r->slots[i].name, name) == 0)
			return r->slots[i].value;
	return NULL;
}

/* ------------------------------------------------------------ matching */

static void test_match(struct faq *f)
{
	struct faq_result r;
	CHECK(faq_match(f, "주문 상태 알려주세요 12345", NULL, &r) == 0);
	CHECK(r.intent && strcmp(r.intent, "order_status") == 0 && r.by_pattern == 1);
	CHECK(slot(&r, "order_id") && strcmp(slot(&r, "order_id"), "12345") == 0);
	CHECK(strcmp(r.lang, "ko") == 0 && r.missing == NULL && !r.wants_human);

	CHECK(faq_match(f, "Where is my order 987654?", NULL, &r) == 0);
	CHECK(r.intent && strcmp(r.intent, "order_status") == 0 && strcmp(r.lang, "en") == 0);
	CHECK(slot(&r, "order_id") && strcmp(slot(&r, "order_id"), "987654") == 0);

	/* Without the number: the intent, and which slot is missing. */
	CHECK(faq_match(f, "주문 조회 부탁해요", NULL, &r) == 0);
	CHECK(r.intent && strcmp(r.intent, "order_status") == 0 && r.missing && strcmp(r.missing, "order_id") == 0);
	CHECK(r.nslots == 0);

	/* Examples by similarity, whatever the spacing, punctuation and a word more. */
	CHECK(faq_match(f, "혹시 영업 시간이 어떻게 되나요?", NULL, &r) == 0);
	CHECK(r.intent && strcmp(r.intent, "hours") == 0 && r.by_pattern == 0 && r.similarity >= 0.5);
	CHECK(faq_match(f, "What are your opening hours, please?", NULL, &r) == 0);
	CHECK(r.intent && strcmp(r.intent, "hours") == 0);
	CHECK(faq_match(f, "비밀번호 잊어버렸어요ㅠ", NULL, &r) == 0);
	CHECK(r.intent && strcmp(r.intent, "password_reset") == 0);
	CHECK(faq_match(f, "I FORGOT MY PASSWORD!!", NULL, &r) == 0);
	CHECK(r.intent && strcmp(r.intent, "password_reset") == 0);

	/* Nothing alike: no intent. */
	CHECK(faq_match(f, "날씨가 좋네요", NULL, &r) == PARLEY_ENOENT);
	CHECK(r.intent == NULL && r.similarity < 0.5);
	CHECK(faq_match(f, "The weather is nice today", NULL, &r) == PARLEY_ENOENT);

	/* Handoff, in both languages. */
	CHECK(faq_match(f, "상담원 연결해 주세요", NULL, &r) == PARLEY_ENOENT);
	CHECK(r.wants_human == 1 && strcmp(r.lang, "ko") == 0);
	CHECK(faq_wants_human(f, "사람이랑 얘기하고 싶어요") == 1);
	CHECK(faq_wants_human(f, "I want to talk to a Human") == 1);
	CHECK(faq_wants_human(f, "ＡＧＥＮＴ please") == 1);
	CHECK(faq_wants_human(f, "the reagent was spilled") == 0);
	CHECK(faq_wants_human(f, "주문 상태 알려주세요") == 0);
	CHECK(faq_wants_human(NULL, "representative please") == 1);
	CHECK(faq_wants_human(NULL, "상담사 연결") == 1);

	/* The hint wins over the text. */
	CHECK(faq_match(f, "order status 12345", "ko", &r) == 0 && strcmp(r.lang, "ko") == 0);
	CHECK(faq_match(NULL, "x", NULL, &r) == PARLEY_EINVAL);
}

/* ----------------------------------------------------------- rendering */

static cJSON *render(struct faq *f, const char *text, const char *type, const char *reply)
{
	struct faq_result r;
	faq_match(f, text, NULL, &r);
	char *out = NULL;
	CHECK(faq_render(f, &r, type, reply, &out) == 0 && out);
	cJSON *j = cJSON_Parse(out);
	free(out);
	return j;
}

static const char *text_of(const cJSON *j)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "text"));
}

static const cJSON *meta_of(const cJSON *j, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "meta"), key);
}

static const char *member(const cJSON *list, int i, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(list, i), key));
}

static void test_render(struct faq *f)
{
	const char *reply = "{\"status\":\"배송 중\",\"eta\":\"내일\"}";
	const char *order = "주문 상태 알려주세요 12345";
	static const char *const button_types[] = {"whatsapp", "telegram", "messenger", "instagram", "slack"};
	for (size_t i = 0; i < sizeof(button_types) / sizeof(*button_types); i++) {
		cJSON *j = render(f, order, button_types[i], reply);
		CHECK(text_of(j) && strcmp(text_of(j), "주문 12345: 배송 중") == 0);
		const cJSON *b = meta_of(j, "buttons");
		CHECK(cJSON_GetArraySize(b) == 2 && !meta_of(j, "choices"));
		CHECK(member(b, 0, "id") && strcmp(member(b, 0, "id"), "handoff") == 0);
		CHECK(member(b, 0, "title") && strcmp(member(b, 0, "title"), "상담원 연결") == 0);
		CHECK(member(b, 1, "id") && strcmp(member(b, 1, "id"), "FAQ") == 0);
		cJSON_Delete(j);
	}
	/* SMS and e-mail: numbered choices in the text, and what each number means. */
	static const char *const text_types[] = {"twilio", "email", "webchat"};
	for (size_t i = 0; i < sizeof(text_types) / sizeof(*text_types); i++) {
		cJSON *j = render(f, order, text_types[i], reply);
		CHECK(text_of(j) && strcmp(text_of(j), "주문 12345: 배송 중\n\n1. 상담원 연결\n2. FAQ") == 0);
		const cJSON *c = meta_of(j, "choices");
		CHECK(!meta_of(j, "buttons") && cJSON_GetArraySize(c) == 2);
		CHECK(member(c, 0, "id") && strcmp(member(c, 0, "id"), "handoff") == 0);
		cJSON_Delete(j);
	}
	/* English, and WhatsApp's and Messenger's 20-character titles; Telegram keeps the whole title. */
	cJSON *j = render(f, "what is the status of my order 55555", "whatsapp",
	                  "{\"status\":\"shipped\",\"eta\":\"tomorrow\"}");
	CHECK(text_of(j) && strcmp(text_of(j), "Order 55555: shipped") == 0);
	CHECK(member(meta_of(j, "buttons"), 0, "title") &&
	      strcmp(member(meta_of(j, "buttons"), 0, "title"), "Talk to a person abo") == 0);
	cJSON_Delete(j);
	j = render(f, "what is the status of my order 55555", "telegram", "{\"status\":\"shipped\"}");
	CHECK(member(meta_of(j, "buttons"), 0, "title") &&
	      strcmp(member(meta_of(j, "buttons"), 0, "title"), "Talk to a person about this order") == 0);
	cJSON_Delete(j);
	/* Four buttons are more than WhatsApp shows: numbered choices instead, none lost; Telegram shows all four. */
	j = render(f, "영업시간이 어떻게 되나요", "whatsapp", NULL);
	CHECK(text_of(j) && strcmp(text_of(j), "09:00-18:00\n\n1. 월\n2. 화\n3. 수\n4. 목") == 0);
	CHECK(!meta_of(j, "buttons") && cJSON_GetArraySize(meta_of(j, "choices")) == 4);
	cJSON_Delete(j);
	j = render(f, "영업시간이 어떻게 되나요", "telegram", NULL);
	CHECK(cJSON_GetArraySize(meta_of(j, "buttons")) == 4 && text_of(j) && strcmp(text_of(j), "09:00-18:00") == 0);
	cJSON_Delete(j);
	/* A placeholder's default. */
	j = render(f, "I forgot my password", "twilio", NULL);
	CHECK(text_of(j) && strcmp(text_of(j), "Reset it here: https://shop.example/reset") == 0);
	cJSON_Delete(j);
	/* The lookup failed (no reply) or lacks a member: the fallback, never "{{status}}", and no buttons. */
	j = render(f, order, "whatsapp", NULL);
	CHECK(text_of(j) && strcmp(text_of(j), "잘 모르겠어요.") == 0 && !meta_of(j, "buttons"));
	cJSON_Delete(j);
	j = render(f, order, "whatsapp", "{\"eta\":\"내일\"}");
	CHECK(text_of(j) && strcmp(text_of(j), "잘 모르겠어요.") == 0);
	cJSON_Delete(j);
	/* A lookup that failed gives the fallback even when the answer needs only slots; one that worked, the answer.
	 */
	j = render(f, "주문 12345 취소해 주세요", "twilio", NULL);
	CHECK(text_of(j) && strcmp(text_of(j), "잘 모르겠어요.") == 0);
	cJSON_Delete(j);
	j = render(f, "please cancel my order 12345", "twilio", "{}");
	CHECK(text_of(j) && strcmp(text_of(j), "Order 12345: cancellation received.") == 0);
	cJSON_Delete(j);
	/* A missing slot: the intent's question for it. */
	j = render(f, "주문 조회 부탁해요", "telegram", NULL);
	CHECK(text_of(j) && strcmp(text_of(j), "주문번호를 알려 주세요.") == 0);
	cJSON_Delete(j);
	/* No intent: the fallback in the text's language. */
	j = render(f, "The weather is nice today", "email", NULL);
	CHECK(text_of(j) && strcmp(text_of(j), "Sorry, I did not get that.") == 0);
	cJSON_Delete(j);
}

/* -------------------------------------------------------------- lookup */

struct parallel {
	struct faq *f;
	int rv;
};

static void *lookup_thread(void *arg)
{
	struct parallel *p = arg;
	struct faq_result r;
	char *reply = NULL;
	faq_match(p->f, "주문 상태 알려주세요 12345", NULL, &r);
	p->rv = faq_lookup(p->f, &r, "conv", "contact", &reply);
	if (p->rv == 0 && !strstr(reply, "배송 중"))
		p->rv = -99;
	free(reply);
	return NULL;
}

static void test_lookup(struct server *s)
{
	struct faq *f = load(s->port, "/ok", "2s");
	struct faq_result r;
	char *reply = NULL;
	CHECK(faq_match(f, "주문 상태 알려주세요 12345", NULL, &r) == 0);
	CHECK(faq_lookup(f, &r, "conv-1", "contact-1", &reply) == 0 && reply);
	CHECK_CONTAINS(reply, "배송 중");
	pthread_mutex_lock(&s->lock);
	cJSON *sent = cJSON_Parse(s->body);
	CHECK(strcmp(s->path, "/ok") == 0);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)s->body, strlen(s->body), mac, &maclen);
	char want[80] = "sha256=";
	for (unsigned int i = 0; i < maclen; i++)
		snprintf(want + 7 + 2 * i, sizeof(want) - 7 - 2 * i, "%02x", mac[i]);
	CHECK(strcmp(s->signature, want) == 0);
	pthread_mutex_unlock(&s->lock);
	CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sent, "intent")), "order_status") == 0);
	CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	                     cJSON_GetObjectItemCaseSensitive(sent, "slots"), "order_id")),
	             "12345") == 0);
	CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sent, "conversation_id")), "conv-1") == 0);
	CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sent, "contact_id")), "contact-1") == 0);
	cJSON_Delete(sent);
	char *out = NULL;
	CHECK(faq_render(f, &r, "telegram", reply, &out) == 0);
	CHECK_CONTAINS(out, "주문 12345: 배송 중");
	free(out);
	free(reply);
	/* An intent without a lookup, and a missing slot, ask nothing. */
	int before = s->requests;
	CHECK(faq_match(f, "I forgot my password", NULL, &r) == 0);
	CHECK(faq_lookup(f, &r, NULL, NULL, &reply) == PARLEY_ENOTSUP && reply == NULL);
	CHECK(faq_match(f, "주문 조회 부탁해요", NULL, &r) == 0);
	CHECK(faq_lookup(f, &r, NULL, NULL, &reply) == PARLEY_ENOENT && reply == NULL);
	CHECK(s->requests == before);

	/* Worker threads look up at once, each on its own connection. */
	pthread_t th[4];
	struct parallel par[4];
	for (int i = 0; i < 4; i++) {
		par[i].f = f;
		par[i].rv = -100;
		pthread_create(&th[i], NULL, lookup_thread, &par[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CHECK(par[i].rv == 0);
	}
	faq_free(f);

	/* The endpoint fails, or answers what is not a JSON object. */
	f = load(s->port, "/fail", "2s");
	faq_match(f, "주문 상태 알려주세요 12345", NULL, &r);
	CHECK(faq_lookup(f, &r, NULL, NULL, &reply) == PARLEY_EIO && reply == NULL);
	faq_free(f);
	f = load(s->port, "/text", "2s");
	faq_match(f, "주문 상태 알려주세요 12345", NULL, &r);
	CHECK(faq_lookup(f, &r, NULL, NULL, &reply) == PARLEY_EINVAL && reply == NULL);
	faq_free(f);

	/* Slower than the timeout: given up within it, and the customer gets the fallback. */
	f = load(s->port, "/slow", "300ms");
	faq_match(f, "주문 상태 알려주세요 12345", NULL, &r);
	int64_t t0 = now_ms();
	int rv = faq_lookup(f, &r, NULL, NULL, &reply);
	int64_t took = now_ms() - t0;
	printf("lookup over its 300ms timeout gave up after %lld ms\n", (long long)took);
	CHECK(rv == PARLEY_ETIMEDOUT && reply == NULL);
	CHECK(took >= 250 && took < 1000);
	CHECK(faq_render(f, &r, "whatsapp", reply, &out) == 0);
	CHECK_CONTAINS(out, "잘 모르겠어요.");
	free(out);
	faq_free(f);

	/* Nobody listening. */
	int closed = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof(a);
	bind(closed, (struct sockaddr *)&a, sizeof(a));
	getsockname(closed, (struct sockaddr *)&a, &al);
	close(closed);
	f = load(ntohs(a.sin_port), "/ok", "2s");
	faq_match(f, "주문 상태 알려주세요 12345", NULL, &r);
	CHECK(faq_lookup(f, &r, NULL, NULL, &reply) == PARLEY_EIO);
	faq_free(f);
}

/* ------------------------------------------------------ config errors */

static void load_fails(const char *cfg, const char *want)
{
	struct faq *f = (struct faq *)1;
	char *err = NULL;
	CHECK(faq_load(cfg, &f, &err) == PARLEY_EINVAL && f == NULL);
	CHECK_CONTAINS(err, want);
	free(err);
}

static void test_config_errors(void)
{
	load_fails("[]", "not a JSON object");
	load_fails("{}", "intents: a list");
	load_fails("{\"intents\": [{\"name\": \"a\", \"patterns\": [\"(주문\"], \"answer\": \"x\"}]}",
	           "intents[0] (a): pattern 1: missing closing parenthesis at offset 7 of \"(주문\"");
	load_fails("{\"intents\": [{\"name\": \"a\", \"examples\": [\"x\"]}]}", "intents[0] (a): answer is required");
	load_fails("{\"intents\": [{\"name\": \"a\", \"answer\": \"x\"}]}", "give examples: [...] or patterns");
	load_fails("{\"intents\": [{\"name\": \"a\", \"examples\": [\"x\"], \"answer\": \"x\", \"lookup\": true}]}",
	           "lookup: true needs lookup_url and lookup_secret");
	load_fails("{\"intents\": [{\"name\": \"a\", \"examples\": [\"x\"], \"answer\": \"{{stauts}}\"}]}",
	           "unknown placeholder {{stauts}}");
	load_fails("{\"intents\": [{\"name\": \"a\", \"examples\": [\"x\"], \"answer\": \"x\", \"anwser\": \"y\"}]}",
	           "unknown key 'anwser'");
	load_fails("{\"intents\": [{\"name\": \"a\", \"examples\": [\"x\"], \"answer\": \"x\", \"slots\": {\"n\": "
	           "\"[\"}}]}",
	           "intents[0] (a): slot 'n':");
	load_fails("{\"intents\": [{\"name\": \"a\", \"examples\": [\"x\"], \"answer\": \"x\"}, {\"name\": \"a\", "
	           "\"examples\": [\"y\"], \"answer\": \"y\"}]}",
	           "intents[1]: the name 'a' is already intents[0]'s");
	load_fails("{\"lookup_timeout\": \"soon\", \"intents\": [{\"name\": \"a\", \"examples\": [\"x\"], \"answer\": "
	           "\"x\"}]}",
	           "lookup_timeout must be a duration");
	load_fails("{\"lookup_url\": \"ftp://x\", \"intents\": [{\"name\": \"a\", \"examples\": [\"x\"], \"answer\": "
	           "\"x\"}]}",
	           "must start with http:// or https://");
	load_fails("{\"threshold\": \"2\", \"intents\": [{\"name\": \"a\", \"examples\": [\"x\"], \"answer\": \"x\"}]}",
	           "threshold must be a number");
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct server s;
	server_start(&s);
	struct faq *f = load(s.port, "/ok", "2s");
	if (f) {
		test_match(f);
		test_render(f);
		faq_free(f);
	}
	test_lookup(&s);
	test_config_errors();
	server_stop(&s);
	curl_global_cleanup();
	TEST_DONE();
}
