/*
 * isolate_rpc_test.c: the protocol between the gateway and an isolated
 * plugin's child (core/isolate_rpc.c), both ends in one process over a
 * real ipc:// socket: calls carry a header and bytes both ways; a handler
 * may call the peer back and wait (handlers run on workers, not on the
 * receive thread); serial notes keep their order; a peer that goes away
 * fails the calls waiting for it at once, not at their timeout.
 */
#include "isolate_rpc.h"
#include "test.h"
#include "util.h"

#include <parley/parley.h>
#include <pthread.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int seen[200];
static int n_seen;
static struct iso_rpc *gw_end, *child_end;

static void gw_handler(void *arg, struct iso_rpc *rpc, const char *op, const cJSON *hdr, const void *body, size_t len,
                       cJSON **reply, void **reply_body, size_t *reply_len)
{
	(void)arg;
	(void)rpc;
	if (strcmp(op, "echo") == 0 && reply) {
		*reply = cJSON_CreateObject();
		cJSON_AddNumberToObject(*reply, "rv", 0);
		cJSON_AddNumberToObject(*reply, "twice", 2 * (double)iso_num(hdr, "n"));
		*reply_body = malloc(len ? len : 1);
		memcpy(*reply_body, body, len);
		*reply_len = len;
	} else if (strcmp(op, "seq") == 0) {
		pthread_mutex_lock(&lock);
		if (n_seen < 200)
			seen[n_seen++] = (int)iso_num(hdr, "i");
		pthread_mutex_unlock(&lock);
	}
}

static void child_handler(void *arg, struct iso_rpc *rpc, const char *op, const cJSON *hdr, const void *body,
                          size_t len, cJSON **reply, void **reply_body, size_t *reply_len)
{
	(void)arg;
	(void)hdr;
	(void)body;
	(void)len;
	(void)reply_body;
	(void)reply_len;
	if (strcmp(op, "ask") == 0 && reply) {
		/* Call the gateway back from inside a call, as a plugin callback calling the host does. */
		cJSON *h = cJSON_CreateObject();
		cJSON_AddNumberToObject(h, "n", 21);
		cJSON *r = NULL;
		int rv = iso_rpc_call(rpc, "echo", h, "x", 1, 2000, &r, NULL, NULL);
		*reply = cJSON_CreateObject();
		cJSON_AddNumberToObject(*reply, "rv", rv);
		cJSON_AddNumberToObject(*reply, "answer", (double)iso_num(r, "twice"));
		cJSON_Delete(r);
	} else if (strcmp(op, "hang") == 0) {
		usleep(1500 * 1000);
	}
}

static void *hang_call(void *p)
{
	int *rv = p;
	cJSON *r = NULL;
	*rv = iso_rpc_call(gw_end, "hang", NULL, NULL, 0, 10000, &r, NULL, NULL);
	cJSON_Delete(r);
	return NULL;
}

int main(void)
{
	char url[128];
	snprintf(url, sizeof(url), "ipc:///tmp/parley-rpc-test-%d.ipc", (int)getpid());
	CHECK(iso_rpc_listen(&gw_end, url, gw_handler, NULL) == 0);
	CHECK(iso_rpc_dial(&child_end, url, child_handler, NULL) == 0);
	CHECK(iso_rpc_wait_peer(gw_end, 5000) == 0);

	/* A call: header and bytes there and back. */
	cJSON *h = cJSON_CreateObject();
	cJSON_AddNumberToObject(h, "n", 5);
	cJSON *r = NULL;
	void *b = NULL;
	size_t bl = 0;
	CHECK(iso_rpc_call(child_end, "echo", h, "hello\0world", 11, 5000, &r, &b, &bl) == 0);
	CHECK(iso_num(r, "twice") == 10 && bl == 11 && b && memcmp(b, "hello\0world", 11) == 0);
	cJSON_Delete(r);
	free(b);

	/* A handler that calls the peer back gets its answer (it would wait forever on the receive thread). */
	CHECK(iso_rpc_call(gw_end, "ask", NULL, NULL, 0, 5000, &r, NULL, NULL) == 0);
	CHECK(iso_num(r, "rv") == 0 && iso_num(r, "answer") == 42);
	cJSON_Delete(r);

	/* Serial notes are handled in the order sent. */
	for (int i = 0; i < 200; i++) {
		cJSON *n = cJSON_CreateObject();
		cJSON_AddNumberToObject(n, "i", i);
		CHECK(iso_rpc_note_serial(child_end, "seq", n, NULL, 0) == 0);
	}
	for (int t = 0; t < 200; t++) {
		pthread_mutex_lock(&lock);
		int done = n_seen == 200;
		pthread_mutex_unlock(&lock);
		if (done)
			break;
		usleep(10 * 1000);
	}
	int in_order = n_seen == 200;
	for (int i = 0; in_order && i < 200; i++)
		in_order = seen[i] == i;
	CHECK(in_order);

	/* The peer goes away during a call: the call fails at once with ECLOSED, not after its 10 s. */
	int rv = 1;
	pthread_t th;
	int64_t t0 = time_mono_ms();
	pthread_create(&th, NULL, hang_call, &rv);
	usleep(200 * 1000);
	iso_rpc_release(child_end); /* closes its socket first, then waits for its handler */
	pthread_join(th, NULL);
	CHECK(rv == PARLEY_ECLOSED);
	CHECK(time_mono_ms() - t0 < 5000);
	CHECK(iso_rpc_closed(gw_end));
	CHECK(iso_rpc_note(gw_end, "seq", NULL, NULL, 0) == PARLEY_ECLOSED);
	iso_rpc_release(gw_end);
	unlink(url + strlen("ipc://"));
	TEST_DONE();
}
