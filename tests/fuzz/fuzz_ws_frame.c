/*
 * fuzz_ws_frame.c: the WebSocket frame reader (core/ws_frame.c) that every
 * web chat visitor's bytes go through.  The first input byte chooses how
 * the rest is split into reads (a frame may arrive a byte at a time) and
 * the message limit; every text message emitted must be valid UTF-8 and
 * within the limit, and every control frame at most 125 bytes.
 */
#include "util.h"
#include "ws_frame.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

struct limits {
	size_t max;
};

static void emit(void *arg, int op, const char *p, size_t n)
{
	const struct limits *l = arg;
	if (op == WS_OP_TEXT && !utf8_valid(p, n))
		abort();
	if ((op == WS_OP_TEXT || op == WS_OP_BINARY) && n > l->max)
		abort();
	if (op >= WS_OP_CLOSE && n > 125)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	if (len < 1)
		return 0;
	size_t step = (size_t)(data[0] & 0x1F) + 1;
	struct limits l = {(size_t)(data[0] >> 5) * 512 + 16};
	struct ws_in in;
	ws_in_init(&in, l.max);
	for (size_t off = 1; off < len; off += step)
		if (ws_in_feed(&in, data + off, len - off < step ? len - off : step, emit, &l) != 0)
			break;
	ws_in_free(&in);
	return 0;
}
