/* host_test.c: the host table a plugin gets is complete: every function slot is set. */
#include "gateway.h"
#include "host.h"
#include "test.h"

#include <stddef.h>

int main(void)
{
	const struct parley_host *h = host_table();
	CHECK(h->struct_size == sizeof(struct parley_host));
	CHECK(h->abi == ((uint32_t)PARLEY_ABI_MAJOR << 16 | PARLEY_ABI_MINOR));
	/* After the two leading uint32_t fields the table is function pointers only. */
	size_t first = offsetof(struct parley_host, strerror);
	size_t n = (sizeof(struct parley_host) - first) / sizeof(void (*)(void));
	const unsigned char *base = (const unsigned char *)h + first;
	for (size_t i = 0; i < n; i++) {
		void (*fn)(void);
		memcpy(&fn, base + i * sizeof(fn), sizeof(fn));
		if (!fn)
			fprintf(stderr, "host table slot %zu (byte offset %zu) is NULL\n", i, first + i * sizeof(fn));
		CHECK(fn != NULL);
	}
	CHECK(PARLEY_HOST_HAS(h, attachment_put));
	TEST_DONE();
}
