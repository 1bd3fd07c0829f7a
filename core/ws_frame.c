/*
 * ws_frame.c: WebSocket frames from clients (RFC 6455 section 5), checked
 * as a server must: every client frame masked, control frames whole and
 * short, fragments in order, text valid UTF-8 once whole.  The parser keeps
 * the unparsed bytes and waits for a whole frame before it looks at the
 * payload, so a frame split over many reads costs no more than one.
 */
#include "ws_frame.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define CONTROL_MAX 125

void ws_in_init(struct ws_in *in, size_t max_message)
{
	memset(in, 0, sizeof(*in));
	in->max_message = max_message;
}

void ws_in_free(struct ws_in *in)
{
	free(in->buf);
	free(in->msg);
	memset(in, 0, sizeof(*in));
}

static int grow(void **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 1024;
	while (c < need)
		c *= 2;
	void *np = realloc(*p, c);
	if (!np)
		return -1;
	*p = np;
	*cap = c;
	return 0;
}

/* A close frame's payload: empty, or a code a peer may send and a UTF-8 reason. */
static int close_payload_ok(const unsigned char *p, size_t n)
{
	if (n == 0)
		return 0;
	if (n == 1)
		return WS_CLOSE_PROTOCOL;
	unsigned code = (unsigned)p[0] << 8 | p[1];
	int known = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) || (code >= 3000 && code <= 4999);
	if (!known)
		return WS_CLOSE_PROTOCOL;
	return utf8_valid((const char *)p + 2, n - 2) ? 0 : WS_CLOSE_BAD_DATA;
}

/* One whole frame at the start of in->buf, of head h and payload n bytes (unmasked in place). */
static int frame(struct ws_in *in, int fin, int op, unsigned char *payload, size_t n, ws_emit_fn emit, void *arg)
{
	if (op >= WS_OP_CLOSE) {
		if (op == WS_OP_CLOSE) {
			int rv = close_payload_ok(payload, n);
			if (rv)
				return rv;
			in->closed = 1;
		}
		emit(arg, op, (const char *)payload, n);
		return 0;
	}
	if (op == WS_OP_CONT ? !in->msg_op : in->msg_op != 0)
		return WS_CLOSE_PROTOCOL; /* a continuation of nothing, or a new message inside one */
	int mop = op == WS_OP_CONT ? in->msg_op : op;
	size_t have = op == WS_OP_CONT ? in->msg_len : 0;
	if (have + n > in->max_message)
		return WS_CLOSE_TOO_BIG;
	if (fin && op != WS_OP_CONT) {
		/* An unfragmented message: straight from the buffer. */
		if (mop == WS_OP_TEXT && !utf8_valid((const char *)payload, n))
			return WS_CLOSE_BAD_DATA;
		emit(arg, mop, (const char *)payload, n);
		return 0;
	}
	if (grow((void **)&in->msg, &in->msg_cap, have + n + 1) != 0)
		return WS_CLOSE_INTERNAL;
	if (n)
		memcpy(in->msg + have, payload, n);
	in->msg_len = have + n;
	in->msg_op = mop;
	if (!fin)
		return 0;
	in->msg_op = 0;
	in->msg_len = 0;
	if (mop == WS_OP_TEXT && !utf8_valid(in->msg, have + n))
		return WS_CLOSE_BAD_DATA;
	emit(arg, mop, in->msg, have + n);
	return 0;
}

int ws_in_feed(struct ws_in *in, const void *data, size_t len, ws_emit_fn emit, void *arg)
{
	if (in->closed)
		return 0;
	if (len) {
		if (grow((void **)&in->buf, &in->cap, in->len + len) != 0)
			return WS_CLOSE_INTERNAL;
		memcpy(in->buf + in->len, data, len);
		in->len += len;
	}
	size_t off = 0;
	int rv = 0;
	while (!in->closed) {
		const unsigned char *b = in->buf + off;
		size_t avail = in->len - off;
		if (avail < 2)
			break;
		int fin = b[0] & 0x80, op = b[0] & 0x0F;
		if (b[0] & 0x70) {
			rv = WS_CLOSE_PROTOCOL; /* reserved bits: no extension was negotiated */
			break;
		}
		if ((op > WS_OP_BINARY && op < WS_OP_CLOSE) || op > WS_OP_PONG) {
			rv = WS_CLOSE_PROTOCOL;
			break;
		}
		if (!(b[1] & 0x80)) {
			rv = WS_CLOSE_PROTOCOL; /* clients must mask */
			break;
		}
		uint64_t n = b[1] & 0x7F;
		size_t head = 2;
		if (n == 126) {
			if (avail < 4)
				break;
			n = (uint64_t)b[2] << 8 | b[3];
			head = 4;
		} else if (n == 127) {
			if (avail < 10)
				break;
			n = 0;
			for (int i = 0; i < 8; i++)
				n = n << 8 | b[2 + i];
			if (n >> 63) {
				rv = WS_CLOSE_PROTOCOL;
				break;
			}
			head = 10;
		}
		if (op >= WS_OP_CLOSE && (!fin || n > CONTROL_MAX)) {
			rv = WS_CLOSE_PROTOCOL;
			break;
		}
		/* Refuse an oversized message by its head, before buffering its payload. */
		if (op < WS_OP_CLOSE && n + (op == WS_OP_CONT ? in->msg_len : 0) > in->max_message) {
			rv = in->msg_op || op != WS_OP_CONT ? WS_CLOSE_TOO_BIG : WS_CLOSE_PROTOCOL;
			break;
		}
		if (avail < head + 4 + n)
			break;
		const unsigned char *mask = b + head;
		unsigned char *payload = in->buf + off + head + 4;
		for (uint64_t i = 0; i < n; i++)
			payload[i] ^= mask[i & 3];
		off += head + 4 + (size_t)n;
		rv = frame(in, fin, op, payload, (size_t)n, emit, arg);
		if (rv)
			break;
	}
	if (rv) {
		in->closed = 1;
		in->len = 0;
		return rv;
	}
	if (in->closed) {
		in->len = 0;
		return 0;
	}
	memmove(in->buf, in->buf + off, in->len - off);
	in->len -= off;
	return 0;
}

size_t ws_frame_head(unsigned char out[10], int opcode, uint64_t len)
{
	out[0] = (unsigned char)(0x80 | (opcode & 0x0F));
	if (len < 126) {
		out[1] = (unsigned char)len;
		return 2;
	}
	if (len <= 0xFFFF) {
		out[1] = 126;
		out[2] = (unsigned char)(len >> 8);
		out[3] = (unsigned char)len;
		return 4;
	}
	out[1] = 127;
	for (int i = 0; i < 8; i++)
		out[2 + i] = (unsigned char)(len >> (56 - 8 * i));
	return 10;
}
