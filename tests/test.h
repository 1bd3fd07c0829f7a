/* test.h: a minimal assertion helper for the C tests (ctest runs each binary). */
#ifndef PARLEY_TEST_H
#define PARLEY_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;

#define CHECK(cond)                                                                                                    \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                       \
			test_failures++;                                                                               \
		}                                                                                                      \
	} while (0)

#define CHECK_CONTAINS(hay, needle)                                                                                    \
	do {                                                                                                           \
		const char *h_ = (hay);                                                                                \
		if (!h_ || !strstr(h_, (needle))) {                                                                    \
			fprintf(stderr, "%s:%d: expected \"%s\" in \"%s\"\n", __FILE__, __LINE__, (needle),            \
			        h_ ? h_ : "(null)");                                                                   \
			test_failures++;                                                                               \
		}                                                                                                      \
	} while (0)

#define TEST_DONE()                                                                                                    \
	do {                                                                                                           \
		if (test_failures) {                                                                                   \
			fprintf(stderr, "%d check(s) failed\n", test_failures);                                        \
			return 1;                                                                                      \
		}                                                                                                      \
		printf("all checks passed\n");                                                                         \
		return 0;                                                                                              \
	} while (0)

#endif
