/*
 * score.c: lexicon-based polarity for Korean and English.
 *
 * The text is folded first (ASCII lower case, full-width forms to ASCII,
 * curly quotes to straight ones, runs of spaces to one) and the spaces
 * between two Korean syllables are dropped, remembering which syllable
 * started a word: Korean is written with variable spacing ("화가 나네요",
 * "화가나네요") and its endings and particles are glued to the stems, so
 * Korean entries are stems found anywhere in the folded text, longest first.
 * English entries match whole words (or a word's beginning, for "refund*").
 *
 * A polar word's value is changed by what is around it, within one clause
 * (clauses end at . , ! ? ; and the like):
 *   - a negator up to three words before it ("not happy", "never good");
 *     in Korean "안"/"못" as the word before ("안 좋아요") or 않/없/못/아니
 *     in the few syllables after ("좋지 않아요", "재미없어요").  A negated
 *     positive word becomes a weaker negative one, a negated negative a
 *     weaker positive one ("not bad");
 *   - an intensifier or de-intensifier up to three words before it
 *     multiplies it ("very", "정말", "너무"; "a bit", "좀");
 *   - a contrast ("but", "하지만", "-는데") halves what came before.
 * The sum is squashed with tanh into -1..1.
 */
#include "score.h"
#include "utf8.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 521

struct sentiment_lexicon {
	/* Entries by the hash of their first character, longest first in each bucket. */
	const struct sentiment_entry **slots;
	size_t start[NBUCKETS + 1];
};

/* ------------------------------------------------------------- UTF-8 */

static size_t utf8_encode(uint32_t c, char *out)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | (c >> 6 & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | (c >> 12 & 0x3f));
	out[2] = (char)(0x80 | (c >> 6 & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* Hangul syllables and the compatibility jamo people type alone (ㅠㅠ, ㅋㅋ). */
static int is_hangul(uint32_t c)
{
	return (c >= 0xac00 && c <= 0xd7a3) || (c >= 0x3131 && c <= 0x318e);
}

static int is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

static int is_boundary(unsigned char c)
{
	return c == '.' || c == ',' || c == '!' || c == '?' || c == ';' || c == ':' || c == '~';
}

static uint32_t fold(uint32_t c)
{
	if (c >= 0xff01 && c <= 0xff5e) /* full-width ASCII */
		c -= 0xfee0;
	else if (c == 0x3000) /* ideographic space */
		c = ' ';
	else if (c == 0x2018 || c == 0x2019)
		c = '\'';
	else if (c == 0x201c || c == 0x201d)
		c = '"';
	else if (c == 0x3002 || c == 0x2026 || c == '\n' || c == '\r') /* 。 … and line ends end a clause */
		c = '.';
	else if (c == '\t')
		c = ' ';
	if (c >= 'A' && c <= 'Z')
		c += 'a' - 'A';
	return c;
}

/* --------------------------------------------------------- the index */

static size_t bucket_of(const unsigned char *s, size_t n)
{
	uint32_t c;
	if (n == 0 || utf8_decode(s, n, &c) == 0)
		c = s[0];
	return (size_t)(c * 2654435761u % NBUCKETS);
}

static size_t entry_len(const struct sentiment_entry *e)
{
	size_t n = strlen(e->text);
	return n > 0 && e->text[n - 1] == '*' ? n - 1 : n;
}

static int by_bucket_then_length(const void *a, const void *b)
{
	const struct sentiment_entry *x = *(const struct sentiment_entry *const *)a;
	const struct sentiment_entry *y = *(const struct sentiment_entry *const *)b;
	size_t bx = bucket_of((const unsigned char *)x->text, strlen(x->text));
	size_t by = bucket_of((const unsigned char *)y->text, strlen(y->text));
	if (bx != by)
		return bx < by ? -1 : 1;
	size_t lx = entry_len(x), ly = entry_len(y);
	return lx > ly ? -1 : lx < ly ? 1 : strcmp(x->text, y->text);
}

int sentiment_lexicon_new(struct sentiment_lexicon **out)
{
	size_t n = 0;
	while (sentiment_lexicon_entries[n].text)
		n++;
	struct sentiment_lexicon *lx = calloc(1, sizeof(*lx));
	if (!lx)
		return -2;
	lx->slots = calloc(n + 1, sizeof(*lx->slots));
	if (!lx->slots) {
		free(lx);
		return -2;
	}
	for (size_t i = 0; i < n; i++)
		lx->slots[i] = &sentiment_lexicon_entries[i];
	qsort(lx->slots, n, sizeof(*lx->slots), by_bucket_then_length);
	size_t i = 0;
	for (size_t b = 0; b < NBUCKETS; b++) {
		lx->start[b] = i;
		while (i < n && bucket_of((const unsigned char *)lx->slots[i]->text, strlen(lx->slots[i]->text)) == b)
			i++;
	}
	lx->start[NBUCKETS] = n;
	*out = lx;
	return 0;
}

void sentiment_lexicon_free(struct sentiment_lexicon *lx)
{
	if (!lx)
		return;
	free(lx->slots);
	free(lx);
}

/* ------------------------------------------------------ the folded text */

struct folded {
	char *buf;
	unsigned char *word; /* word[i]: byte i starts a character that started a word as written */
	size_t len;
};

static int fold_text(const char *text, size_t n, struct folded *f)
{
	f->buf = malloc(n * 2 + 1);
	f->word = calloc(n * 2 + 1, 1);
	f->len = 0;
	if (!f->buf || !f->word)
		return -1;
	const unsigned char *s = (const unsigned char *)text;
	uint32_t last = '.';
	int space = 0;
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = utf8_decode(s + i, n - i, &c);
		if (k == 0) {
			i++;
			continue;
		}
		i += k;
		c = fold(c);
		if (c == ' ' || c < 0x20) {
			space = 1;
			continue;
		}
		int starts = space || f->len == 0 || (last < 0x80 && !is_alnum((unsigned char)last) && last != '\'');
		if (space && f->len > 0 && !(is_hangul(last) && is_hangul(c)))
			f->buf[f->len++] = ' ';
		f->word[f->len] = (unsigned char)starts;
		f->len += utf8_encode(c, f->buf + f->len);
		last = c;
		space = 0;
	}
	f->buf[f->len] = '\0';
	return 0;
}

/* The entry of the lexicon at p, longest first; *end receives where it ends. */
static const struct sentiment_entry *match_at(const struct sentiment_lexicon *lx, const struct folded *f, size_t p,
                                              size_t *end)
{
	const unsigned char *s = (const unsigned char *)f->buf;
	size_t b = bucket_of(s + p, f->len - p);
	for (size_t i = lx->start[b]; i < lx->start[b + 1]; i++) {
		const struct sentiment_entry *e = lx->slots[i];
		size_t n = entry_len(e);
		if (n > f->len - p || memcmp(f->buf + p, e->text, n) != 0)
			continue;
		if ((e->flags & SENT_AT_WORD) && !f->word[p])
			continue;
		size_t q = p + n;
		if (is_alnum((unsigned char)e->text[0])) {
			/* English: whole words, or a word's beginning for an entry ending in '*'. */
			if (p > 0 && (is_alnum(s[p - 1]) || s[p - 1] == '\''))
				continue;
			if (e->text[n] == '*') {
				while (q < f->len && (is_alnum(s[q]) || s[q] == '\''))
					q++;
			} else if (q < f->len && is_alnum(s[q])) {
				continue;
			}
		}
		*end = q;
		return e;
	}
	return NULL;
}

/* ------------------------------------------------------------ scoring */

/* "안 좋아요", "못 받았어요": 안 or 못 written as the word just before. */
static int korean_negated_before(const struct folded *f, size_t p)
{
	if (p < 3 || !f->word[p - 3])
		return 0;
	return memcmp(f->buf + p - 3, "안", 3) == 0 || memcmp(f->buf + p - 3, "못", 3) == 0;
}

/*
 * "좋지 않아요", "재미없어요", "좋은 게 아니에요", "받지 못했어요": a negating
 * syllable within the next few, before the clause ends.  For an entry that
 * is only bad when negated ("도착"), a following 안 counts too ("도착 안 했어요").
 */
static int korean_negated_after(const struct folded *f, size_t q, int negbad)
{
	const unsigned char *s = (const unsigned char *)f->buf;
	for (int k = 0; k < 4 && q < f->len; k++) {
		uint32_t c;
		size_t n = utf8_decode(s + q, f->len - q, &c);
		if (n == 0 || !is_hangul(c))
			return 0;
		if (c == 0xc54a /* 않 */)
			return 1;
		if (k < 3 && (c == 0xc5c6 /* 없 */ || c == 0xbabb /* 못 */))
			return 1;
		if (k < 3 && negbad && c == 0xc548 /* 안 */)
			return 1;
		if (c == 0xc544 /* 아 */ && q + 6 <= f->len && memcmp(f->buf + q + 3, "니", 3) == 0)
			return 1;
		q += n;
	}
	return 0;
}

double sentiment_score(const struct sentiment_lexicon *lx, const char *text, size_t len, int *hits)
{
	struct folded f;
	int counted = 0;
	double sum = 0;
	if (hits)
		*hits = 0;
	if (fold_text(text, len, &f) != 0) {
		free(f.buf);
		free(f.word);
		return 0;
	}
	/* Words are counted so that a negator or intensifier reaches three words on. */
	long word = 0, neg_word = -100, mult_word = -100;
	double mult = 1;
	for (size_t p = 0; p < f.len;) {
		if (f.word[p])
			word++;
		size_t q;
		const struct sentiment_entry *e = match_at(lx, &f, p, &q);
		if (!e) {
			if (is_boundary((unsigned char)f.buf[p]))
				neg_word = mult_word = -100;
			uint32_t c;
			size_t n = utf8_decode((const unsigned char *)f.buf + p, f.len - p, &c);
			p += n ? n : 1;
			continue;
		}
		for (size_t i = p + 1; i < q; i++)
			word += f.word[i];
		int korean = (unsigned char)e->text[0] >= 0xe0 && (unsigned char)e->text[0] <= 0xed;
		double v;
		int negated;
		switch (e->kind) {
		case SENT_NEGATOR:
			neg_word = word;
			break;
		case SENT_INTENS:
			mult = e->value;
			mult_word = word;
			break;
		case SENT_CONTRAST:
			sum *= 0.5;
			break;
		case SENT_POLAR:
		case SENT_NEGBAD:
			v = e->kind == SENT_POLAR ? e->value : 0;
			negated = word - neg_word <= 3;
			if (korean)
				negated ^= korean_negated_before(&f, p) ^
				           korean_negated_after(&f, q, e->kind == SENT_NEGBAD);
			if (negated) {
				if (e->kind == SENT_NEGBAD)
					v = e->value;
				else
					v = v > 0 ? -0.8 * v : -0.6 * v;
				neg_word = -100;
			}
			if (word - mult_word <= 3) {
				v *= mult;
				mult_word = -100;
			}
			if (v != 0)
				counted++;
			sum += v;
			break;
		default:
			break;
		}
		p = q;
	}
	free(f.buf);
	free(f.word);
	if (hits)
		*hits = counted;
	return tanh(sum);
}
