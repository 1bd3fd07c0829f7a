/* rules.c: the pure rules of the conversation core (see inbox.h). */
#include "inbox.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

size_t inbox_candidates(const struct inbox_rules *r, const char *from, char out[3][INBOX_URN_MAX])
{
	size_t n = 0;
	/*
	 * An address is a key: it is never cut short (two long addresses
	 * sharing a prefix would become one customer).
	 */
	if (!from || strlen(from) + 16 >= INBOX_URN_MAX)
		return 0;
	snprintf(out[n++], INBOX_URN_MAX, "%s", from);
	if (strncmp(from, "mailto:", 7) == 0) {
		for (char *p = out[0]; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		return n;
	}
	if (!r->link_phone)
		return n;
	const char *digits = NULL;
	if (strncmp(from, "whatsapp:", 9) == 0)
		digits = from + 9;
	else if (strncmp(from, "tel:+", 5) == 0)
		digits = from + 5;
	/* Only a plain number of plausible length links: a WhatsApp user id or short code does not. */
	if (!digits || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) < 6)
		return n;
	if (strncmp(from, "whatsapp:", 9) == 0)
		snprintf(out[n++], INBOX_URN_MAX, "tel:+%s", digits);
	else
		snprintf(out[n++], INBOX_URN_MAX, "whatsapp:%s", digits);
	return n;
}

enum inbox_choice inbox_choose(const struct inbox_rules *r, const struct parley_conversation_rec *latest,
                               const char *received_at)
{
	if (!latest || !latest->id)
		return INBOX_OPEN;
	if (!latest->status || strcmp(latest->status, "resolved") != 0)
		return INBOX_JOIN;
	int64_t at = time_parse_ms(received_at), resolved = time_parse_ms(latest->resolved_at);
	return resolved && at - resolved <= r->reopen_ms ? INBOX_REOPEN : INBOX_OPEN;
}
