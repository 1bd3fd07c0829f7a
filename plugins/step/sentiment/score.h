/*
 * score.h: the sentiment step's scorer, a lexicon-based polarity score for
 * Korean and English text, apart from the plugin so a test can run it on the
 * labelled set without a gateway.
 *
 * The lexicon is compiled in (lexicon.c, written for this project).  A
 * sentiment_lexicon is the lexicon indexed for lookup: build one per step
 * instance; once built it is read-only, so any number of threads may score
 * with it at once.
 */
#ifndef PARLEY_STEP_SENTIMENT_SCORE_H
#define PARLEY_STEP_SENTIMENT_SCORE_H

#include <stddef.h>

/* What a lexicon entry does when it is found in a text. */
enum sentiment_kind {
	SENT_POLAR = 1,    /* a word with a polarity: value in -1..1 */
	SENT_INTENS = 2,   /* multiplies the next polar word by value ("very", "정말", "좀") */
	SENT_NEGATOR = 3,  /* flips the next polar word within three words ("not", "never") */
	SENT_CONTRAST = 4, /* what came before counts less than what follows ("but", "하지만") */
	SENT_NEGBAD = 5,   /* neutral, but value when negated ("didn't arrive", "not received") */
};

/* The entry must start a word of the text as written ("화나" is not the end of "전화나"). */
#define SENT_AT_WORD 0x1u

struct sentiment_entry {
	const char *text; /* lower case; an ASCII entry ending in '*' matches any word it starts */
	double value;
	int kind;       /* enum sentiment_kind */
	unsigned flags; /* SENT_* flags */
};

/* The compiled-in lexicon, ended by an entry with text NULL (lexicon.c). */
extern const struct sentiment_entry sentiment_lexicon_entries[];

struct sentiment_lexicon;

/* Index the compiled-in lexicon.  0, or PARLEY-style -2 when out of memory.  Free with sentiment_lexicon_free. */
int sentiment_lexicon_new(struct sentiment_lexicon **out);
void sentiment_lexicon_free(struct sentiment_lexicon *lx);

/*
 * The polarity of len bytes of UTF-8 text, in -1 (negative) .. 1 (positive);
 * 0 when no word of the lexicon occurs.  Case and full-width forms are
 * folded, spacing between Korean words is ignored, and invalid UTF-8 is
 * skipped byte by byte.  *hits, when not NULL, receives how many polar
 * words counted.  Allocates a scratch copy of the text; returns 0 when that
 * fails.
 */
double sentiment_score(const struct sentiment_lexicon *lx, const char *text, size_t len, int *hits);

#endif
