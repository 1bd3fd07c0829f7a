/*
 * subscriber.c: print every envelope Parley publishes, or those whose topic
 * starts with a prefix.  Build: cc subscriber.c -lnng
 * Run:   ./subscriber ipc:///path/to/var/events.ipc message.inbound.
 */
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PUBLISH-URL [TOPIC-PREFIX]\n", argv[0]);
		return 2;
	}
	const char *prefix = argc > 2 ? argv[2] : "";
	nng_socket s;
	int rv;
	if ((rv = nng_sub0_open(&s)) != 0 ||
	    (rv = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, prefix, strlen(prefix))) != 0) {
		fprintf(stderr, "subscriber: %s\n", nng_strerror(rv));
		return 1;
	}
	/* nng's default receive queue is small; a burst would be dropped. */
	nng_socket_set_int(s, NNG_OPT_RECVBUF, 1024);
	/* Non-blocking dial: keeps retrying until the gateway is up. */
	if ((rv = nng_dial(s, argv[1], NULL, NNG_FLAG_NONBLOCK)) != 0) {
		fprintf(stderr, "subscriber: cannot dial %s: %s\n", argv[1], nng_strerror(rv));
		return 1;
	}
	for (;;) {
		char *buf;
		size_t len;
		if ((rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC)) != 0) {
			fprintf(stderr, "subscriber: %s\n", nng_strerror(rv));
			return 1;
		}
		/* TOPIC SP JSON */
		const char *sp = memchr(buf, ' ', len);
		size_t tl = sp ? (size_t)(sp - buf) : len;
		printf("[%.*s] %.*s\n", (int)tl, buf, sp ? (int)(len - tl - 1) : 0, sp ? sp + 1 : "");
		fflush(stdout);
		nng_free(buf, len);
	}
}
