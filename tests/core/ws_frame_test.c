/*
 * ws_frame_test.c: the WebSocket frame reader takes masked client frames
 * split anywhere, reassembles fragments, and refuses what RFC 6455 says a
 * server must refuse, with the close code a client would see.
 */
#include "test.h"
#include "ws_frame.h"

struct got {
	int n, op[8];
	char text[8][256];
	size_t len[8];
};

static void emit(void *arg, int op, const char *data, size_t len)
{
	struct got *g = arg;
	if (g->n >= 8)
		return;
	g->op[g->n] = op;
	g->len[g->n] = len;
	memcpy(g->text[g->n], data, len < 255 ? len : 255);
	g->text[g->n][len < 255 ? len : 255] = '\0';
	g->n++;
}

/* A masked client frame of op with payload p into out; its length. */
static size_t frame(unsigned char *out, int fin, int op, const char *p, size_t n)
{
	static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
	size_t h = ws_frame_head(out, op, n);
	if (!fin)
		out[0] &= 0x7F;
	out[1] |= 0x80;
	memcpy(out + h, mask, 4);
	for (size_t i = 0; i < n; i++)
		out[h + 4 + i] = (unsigned char)p[i] ^ mask[i & 3];
	return h + 4 + n;
}

static int feed(struct got *g, size_t max, const unsigned char *b, size_t n, size_t step)
{
	struct ws_in in;
	ws_in_init(&in, max);
	memset(g, 0, sizeof(*g));
	int rv = 0;
	for (size_t off = 0; off < n && !rv; off += step)
		rv = ws_in_feed(&in, b + off, n - off < step ? n - off : step, emit, g);
	ws_in_free(&in);
	return rv;
}

int main(void)
{
	unsigned char b[70000];
	struct got g;
	size_t n;

	/* Whole, and one byte at a time; a ping between two fragments of one message. */
	n = frame(b, 1, WS_OP_TEXT, "안녕하세요", strlen("안녕하세요"));
	n += frame(b + n, 0, WS_OP_TEXT, "<scr", 4);
	n += frame(b + n, 1, WS_OP_PING, "p", 1);
	n += frame(b + n, 1, WS_OP_CONT, "ipt>", 4);
	for (size_t step = 1; step <= n; step = step == 1 ? n : n + 1) {
		CHECK(feed(&g, 4096, b, n, step) == 0);
		CHECK(g.n == 3);
		CHECK(g.op[0] == WS_OP_TEXT && strcmp(g.text[0], "안녕하세요") == 0);
		CHECK(g.op[1] == WS_OP_PING && strcmp(g.text[1], "p") == 0);
		CHECK(g.op[2] == WS_OP_TEXT && strcmp(g.text[2], "<script>") == 0);
	}

	/* A 16-bit length and a 64-bit one. */
	static char big[66000];
	memset(big, 'a', sizeof(big));
	n = frame(b, 1, WS_OP_TEXT, big, 300);
	CHECK(feed(&g, 4096, b, n, 7) == 0 && g.n == 1 && g.len[0] == 300);
	n = frame(b, 1, WS_OP_TEXT, big, sizeof(big));
	CHECK(feed(&g, 70000, b, n, 1000) == 0 && g.n == 1 && g.len[0] == sizeof(big));

	/* Over the limit, refused by its head alone: 1009. */
	CHECK(feed(&g, 65535, b, 10, 10) == WS_CLOSE_TOO_BIG && g.n == 0);
	n = frame(b, 0, WS_OP_TEXT, big, 3000);
	n += frame(b + n, 1, WS_OP_CONT, big, 3000);
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_TOO_BIG && g.n == 0);

	/* Bad UTF-8 text, whole or once reassembled: 1007. */
	n = frame(b, 1, WS_OP_TEXT, "\xff", 1);
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_BAD_DATA && g.n == 0);
	n = frame(b, 0, WS_OP_TEXT, "\xec\x95", 2);
	n += frame(b + n, 1, WS_OP_CONT, "\x88", 1);
	CHECK(feed(&g, 4096, b, n, n) == 0 && g.n == 1 && strcmp(g.text[0], "안") == 0);
	n = frame(b, 0, WS_OP_TEXT, "\xec\x95", 2);
	n += frame(b + n, 1, WS_OP_CONT, "a", 1);
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_BAD_DATA && g.n == 0);

	/* Protocol errors: unmasked, reserved bits, unknown opcode, bad fragment order, long control. */
	n = frame(b, 1, WS_OP_TEXT, "x", 1);
	b[1] &= 0x7F;
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_PROTOCOL);
	n = frame(b, 1, WS_OP_TEXT, "x", 1);
	b[0] |= 0x40;
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_PROTOCOL);
	n = frame(b, 1, 0x3, "x", 1);
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_PROTOCOL);
	n = frame(b, 1, WS_OP_CONT, "x", 1);
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_PROTOCOL);
	n = frame(b, 0, WS_OP_TEXT, "x", 1);
	n += frame(b + n, 1, WS_OP_TEXT, "y", 1);
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_PROTOCOL);
	n = frame(b, 0, WS_OP_PING, "x", 1);
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_PROTOCOL);
	n = frame(b, 1, WS_OP_PING, big, 126);
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_PROTOCOL);

	/* Close: its payload is checked, and nothing after it is read. */
	n = frame(b, 1, WS_OP_CLOSE,
	          "\x03\xe8"
	          "bye",
	          5);
	n += frame(b + n, 1, WS_OP_TEXT, "after", 5);
	CHECK(feed(&g, 4096, b, n, n) == 0 && g.n == 1 && g.op[0] == WS_OP_CLOSE && g.len[0] == 5);
	n = frame(b, 1, WS_OP_CLOSE, "\x03", 1);
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_PROTOCOL);
	n = frame(b, 1, WS_OP_CLOSE, "\x03\xed", 2); /* 1005 may not be sent */
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_PROTOCOL);
	n = frame(b, 1, WS_OP_CLOSE, "\x03\xe8\xff", 3);
	CHECK(feed(&g, 4096, b, n, n) == WS_CLOSE_BAD_DATA);

	/* Server frames: lengths in 7, 16 and 64 bits, unmasked. */
	unsigned char h[10];
	CHECK(ws_frame_head(h, WS_OP_TEXT, 5) == 2 && h[0] == 0x81 && h[1] == 5);
	CHECK(ws_frame_head(h, WS_OP_TEXT, 300) == 4 && h[1] == 126 && h[2] == 1 && h[3] == 44);
	CHECK(ws_frame_head(h, WS_OP_CLOSE, 70000) == 10 && h[0] == 0x88 && h[1] == 127 && h[7] == 1);
	TEST_DONE();
}
