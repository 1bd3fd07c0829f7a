/*
 * sentiment_test.c: the sentiment step's scorer on the phrases it must get
 * right whatever the lexicon's tuning, and its accuracy per language on the
 * committed labelled set (tests/fixtures/sentiment/sentences.tsv), printed.
 * The accuracy is only required to beat the majority-class baseline.
 * SENTIMENT_VERBOSE=1 prints every sentence scored wrong.
 *
 *   sentiment_test tests/fixtures/sentiment/sentences.tsv
 */
#include "score.h"
#include "test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The step's default negative_below, and the same distance on the positive side. */
#define NEGATIVE_BELOW -0.3
#define POSITIVE_ABOVE 0.3

static struct sentiment_lexicon *lx;

static double score(const char *s)
{
	return sentiment_score(lx, s, strlen(s), NULL);
}

static const char *classify(double v)
{
	return v < NEGATIVE_BELOW ? "negative" : v > POSITIVE_ABOVE ? "positive" : "neutral";
}

#define CHECK_NEGATIVE(s)                                                                                              \
	do {                                                                                                           \
		double v_ = score(s);                                                                                  \
		if (!(v_ < NEGATIVE_BELOW)) {                                                                          \
			fprintf(stderr, "%s:%d: \"%s\" scored %.3f, not negative\n", __FILE__, __LINE__, s, v_);       \
			test_failures++;                                                                               \
		}                                                                                                      \
	} while (0)

static void phrases(void)
{
	/* The sentence, and negation in both languages. */
	CHECK_NEGATIVE("정말 화가 나네요, 환불해 주세요");
	CHECK_NEGATIVE("not happy");
	CHECK_NEGATIVE("I'm not happy with this");
	CHECK_NEGATIVE("never again");
	CHECK_NEGATIVE("안 좋아요");
	CHECK_NEGATIVE("좋지 않아요");
	CHECK(score("좋아요") > POSITIVE_ABOVE);
	CHECK(score("happy") > POSITIVE_ABOVE);
	CHECK(score("not bad") > 0);
	CHECK(score("나쁘지 않아요") > 0);
	/* Endings and particles glued to the stem, and spacing variants. */
	CHECK_NEGATIVE("화가 나네요");
	CHECK_NEGATIVE("화가나네요");
	CHECK_NEGATIVE("화났어요");
	CHECK_NEGATIVE("짜증나요");
	CHECK_NEGATIVE("짜증 나요");
	CHECK(fabs(score("화가 나네요") - score("화가나네요")) < 1e-9);
	CHECK(fabs(score("안 좋아요") - score("안좋아요")) < 1e-9);
	/* A stem inside another word is not that word: 전화나 is "a phone call or". */
	CHECK(score("전화나 문자로 연락 주세요") == 0);
	CHECK(score("unhappy") < 0 && score("happyish") == 0);
	/* Case and full-width forms fold. */
	CHECK(fabs(score("NOT HAPPY") - score("not happy")) < 1e-9);
	CHECK(fabs(score("\xef\xbc\xae\xef\xbc\xaf\xef\xbc\xb4\xe3\x80\x80\xef\xbd\x88\xef\xbd\x81\xef\xbd\x90\xef\xbd"
	                 "\x90"
	                 "\xef\xbd\x99") -
	           score("not happy")) < 1e-9);
	/* Intensifiers strengthen, de-intensifiers weaken. */
	CHECK(score("very good") > score("good"));
	CHECK(score("so angry") < score("angry"));
	CHECK(score("정말 좋아요") > score("좋아요"));
	CHECK(score("너무 늦어요") < score("늦어요"));
	CHECK(score("좀 늦어요") > score("늦어요"));
	CHECK(score("a bit slow") > score("slow"));
	/* A negator reaches three words, not the whole clause or the next one. */
	CHECK(score("I did not expect it to be this good") > 0);
	CHECK(score("no complaints. great") > 0);
	CHECK(score("I didn't think twice, I ordered and got a refund fast and I love it") > 0);
	/* Contrast: what follows "but" counts more. */
	CHECK(score("good but late") < score("good"));
	/* Nothing to go by, and bytes that are not UTF-8. */
	CHECK(score("") == 0);
	CHECK(score("주문번호 12345") == 0);
	CHECK(fabs(score("\xff\xfe 안 \xc3 좋아요")) <= 1);
	int hits = -1;
	sentiment_score(lx, "정말 감사합니다", strlen("정말 감사합니다"), &hits);
	CHECK(hits == 1);
}

struct tally {
	int n, right;
	int by_label[3];
};

static int label_index(const char *l)
{
	return strcmp(l, "negative") == 0 ? 0 : strcmp(l, "neutral") == 0 ? 1 : 2;
}

static void labelled_set(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "cannot open %s (give the path of tests/fixtures/sentiment/sentences.tsv)\n", path);
		test_failures++;
		return;
	}
	const char *verbose = getenv("SENTIMENT_VERBOSE");
	/* [language ko/en][set dev/test/all] */
	struct tally t[2][3];
	memset(t, 0, sizeof(t));
	char line[2048];
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		line[strcspn(line, "\n")] = '\0';
		char *lang = line, *label = strchr(lang, '\t');
		char *set = label ? strchr(label + 1, '\t') : NULL;
		char *text = set ? strchr(set + 1, '\t') : NULL;
		if (!text) {
			fprintf(stderr, "%s: a line without lang, label, set and text: %s\n", path, line);
			test_failures++;
			continue;
		}
		*label++ = *set++ = *text++ = '\0';
		int li = strcmp(lang, "ko") == 0 ? 0 : 1;
		int si = strcmp(set, "dev") == 0 ? 0 : 1;
		double v = score(text);
		int right = strcmp(classify(v), label) == 0;
		if (!right && verbose)
			printf("  wrong %s %s %s %+.3f %s\n", lang, set, label, v, text);
		/* Its own set, then "all". */
		const int into[2] = {si, 2};
		for (int j = 0; j < 2; j++) {
			t[li][into[j]].n++;
			t[li][into[j]].right += right;
			t[li][into[j]].by_label[label_index(label)]++;
		}
	}
	fclose(f);
	static const char *const langs[] = {"ko", "en"}, *const sets[] = {"dev", "test", "all"};
	for (int li = 0; li < 2; li++) {
		const struct tally *all = &t[li][2];
		int majority = all->by_label[0];
		for (int k = 1; k < 3; k++)
			if (all->by_label[k] > majority)
				majority = all->by_label[k];
		for (int k = 0; k < 3; k++)
			if (t[li][k].n)
				printf("sentiment accuracy %s %-4s: %5.1f%% (%d of %d)\n", langs[li], sets[k],
				       100.0 * t[li][k].right / t[li][k].n, t[li][k].right, t[li][k].n);
		printf("sentiment majority-class baseline %s: %5.1f%% (negative %d, neutral %d, positive %d)\n",
		       langs[li], all->n ? 100.0 * majority / all->n : 0, all->by_label[0], all->by_label[1],
		       all->by_label[2]);
		/* The set is what the docs say it is; the scorer beats always answering the commonest label. */
		CHECK(all->n >= 150);
		CHECK(all->right > majority);
	}
}

/* How long a message takes to score (printed, not checked: the machine decides). */
static void speed(void)
{
	const char *msg = "주문한 지 일주일째인데 아직도 안 왔어요. 정말 화가 나네요, 환불해 주세요. "
	                  "I am not happy at all, the parcel never arrived and nobody answered my emails.";
	struct timespec a, b;
	double sink = 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 20000; i++)
		sink += score(msg);
	clock_gettime(CLOCK_MONOTONIC, &b);
	double us = ((double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3) / 20000;
	printf("sentiment score of a %zu-byte message: %.2f us (%g)\n", strlen(msg), us, sink / 20000);
}

int main(int argc, char **argv)
{
	CHECK(sentiment_lexicon_new(&lx) == 0);
	phrases();
	labelled_set(argc > 1 ? argv[1] : "tests/fixtures/sentiment/sentences.tsv");
	speed();
	sentiment_lexicon_free(lx);
	TEST_DONE();
}
