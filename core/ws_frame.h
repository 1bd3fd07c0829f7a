/*
 * ws_frame.h: the WebSocket wire format (RFC 6455 section 5) for a server:
 * client frames in, reassembled into whole messages and checked, and
 * server frames out.  No sockets and no threads: core/http_ws.c drives it,
 * and the fuzzer feeds it bytes.  Internal to the core.
 */
#ifndef PARLEY_CORE_WS_FRAME_H
#define PARLEY_CORE_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* Close codes (RFC 6455 section 7.4.1) the server sends. */
enum ws_close_code {
	WS_CLOSE_NORMAL = 1000,
	WS_CLOSE_GOING_AWAY = 1001,
	WS_CLOSE_PROTOCOL = 1002,
	WS_CLOSE_UNSUPPORTED = 1003,
	WS_CLOSE_BAD_DATA = 1007,
	WS_CLOSE_POLICY = 1008,
	WS_CLOSE_TOO_BIG = 1009,
	WS_CLOSE_INTERNAL = 1011,
};

/*
 * What a client sent, one whole message or control frame at a time:
 * opcode WS_OP_TEXT (valid UTF-8), WS_OP_BINARY, WS_OP_PING, WS_OP_PONG or
 * WS_OP_CLOSE (data is the close payload: a 2-byte code and a UTF-8 reason,
 * or empty).  data is valid during the call only.
 */
typedef void (*ws_emit_fn)(void *arg, int opcode, const char *data, size_t len);

/* A client's incoming byte stream. */
struct ws_in {
	size_t max_message; /* bytes of one reassembled data message */
	unsigned char *buf; /* received, not yet parsed */
	size_t len, cap;
	char *msg; /* a fragmented data message in progress */
	size_t msg_len, msg_cap;
	int msg_op; /* its opcode, or 0 when none is in progress */
	int closed; /* a close frame was emitted: nothing after it is read */
};

void ws_in_init(struct ws_in *in, size_t max_message);
void ws_in_free(struct ws_in *in);

/*
 * Take len more bytes from the client and emit every message and control
 * frame now complete, in order.  0; or the close code to end the connection
 * with: WS_CLOSE_PROTOCOL (unmasked frame, reserved bits or opcode, a bad
 * fragment sequence, an oversized or fragmented control frame, a bad close
 * payload), WS_CLOSE_BAD_DATA (text or close reason not UTF-8),
 * WS_CLOSE_TOO_BIG (a message over max_message) or WS_CLOSE_INTERNAL (out
 * of memory).  After a close code or a close frame, further bytes are
 * ignored.
 */
int ws_in_feed(struct ws_in *in, const void *data, size_t len, ws_emit_fn emit, void *arg);

/*
 * Write the head of an unmasked server frame (FIN set) of opcode and len
 * payload bytes into out (at most 10 bytes); returns its length.
 */
size_t ws_frame_head(unsigned char out[10], int opcode, uint64_t len);

#endif
