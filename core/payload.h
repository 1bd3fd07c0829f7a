/*
 * payload.h: checks on what providers and clients send, before any of it
 * is parsed into an envelope.  Every string must be valid UTF-8 without
 * NUL; a payload that breaks this is refused whole (400 naming the field)
 * rather than stored with the string dropped or cut short.
 */
#ifndef PARLEY_CORE_PAYLOAD_H
#define PARLEY_CORE_PAYLOAD_H

#include <stddef.h>

enum {
	PAYLOAD_NOT_JSON = -1,   /* the text is not JSON at all */
	PAYLOAD_BAD_STRING = -2, /* a string is not valid UTF-8 or holds a NUL */
};

/*
 * Check a JSON text: 0, or a negative PAYLOAD_* with a reason in why that
 * names the string by its path ("entry[0].changes[0].value.text is not
 * valid UTF-8").  Never reads past len.
 */
int payload_json_check(const char *text, size_t len, char *why, size_t why_len);

/* Check one decoded string of len bytes named name (a form field, say): 0 or PAYLOAD_BAD_STRING. */
int payload_text_check(const char *name, const char *s, size_t len, char *why, size_t why_len);

#endif
