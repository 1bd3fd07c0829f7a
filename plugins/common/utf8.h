/*
 * utf8.h: decoding one UTF-8 character, for plugins that walk text by
 * character (the sentiment scorer, the FAQ engine).  Header-only: plugins
 * share no code through the executable.
 */
#ifndef PARLEY_PLUGINS_UTF8_H
#define PARLEY_PLUGINS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decode the character at s (n > 0 bytes left) into *cp: its length in
 * bytes, or 0 when the bytes are not UTF-8 (overlong forms, surrogates and
 * values past U+10FFFF included): skip one byte then.
 */
static inline size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
	if (len == 0 || len > n || s[0] > 0xf4)
		return 0;
	uint32_t c = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

#endif
