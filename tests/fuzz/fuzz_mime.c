/*
 * fuzz_mime.c: the e-mail channel's MIME parser (plugins/channel/email/
 * mime.c) on the input as a raw RFC 5322 message.  What it returns becomes
 * an envelope, so every string must be UTF-8 (a setter refuses anything
 * else, and the subject or sender would silently go missing); a reply
 * composed from the parsed fields must parse again.
 */
#include "fake_host.h"
#include "mime.h"

#include <cjson/cJSON.h>

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	mail_init();
	return 0;
}

static void check_str(const char *what, const char *s)
{
	FUZZ_ASSERT(!s || fuzz_utf8_valid(s, strlen(s)), "%s is not UTF-8: \"%s\"", what, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct parsed_mail m;
	if (mail_parse((const char *)data, len, &m) != 0)
		return 0;
	/* The channel compares and stores both texts unconditionally. */
	FUZZ_ASSERT(m.text && m.full_text, "a parsed mail without text (%p) or full_text (%p)", (void *)m.text,
	            (void *)m.full_text);
	check_str("message_id", m.message_id);
	check_str("in_reply_to", m.in_reply_to);
	check_str("from_addr", m.from_addr);
	check_str("from_name", m.from_name);
	check_str("to_addr", m.to_addr);
	check_str("subject", m.subject);
	check_str("text", m.text);
	check_str("full_text", m.full_text);
	check_str("bounced_message_id", m.bounced_message_id);
	check_str("bounce_reason", m.bounce_reason);
	const cJSON *r;
	cJSON_ArrayForEach(r, m.references)
	{
		FUZZ_ASSERT(cJSON_IsString(r), "a reference that is not a string");
		check_str("a reference", r->valuestring);
	}
	FUZZ_ASSERT(m.n_atts == 0 || m.atts, "%zu attachments but no array", m.n_atts);
	for (size_t i = 0; i < m.n_atts; i++) {
		FUZZ_ASSERT(m.atts[i].content_type, "attachment %zu has no content type", i);
		FUZZ_ASSERT(m.atts[i].data || m.atts[i].len == 0, "attachment %zu: %zu bytes, no data", i,
		            m.atts[i].len);
		check_str("an attachment's name", m.atts[i].name);
		check_str("an attachment's content type", m.atts[i].content_type);
	}

	char *stripped = mail_strip_quotes(m.full_text);
	FUZZ_ASSERT(stripped && strlen(stripped) <= strlen(m.full_text), "stripping quotes made the text longer");
	free(stripped);

	/* A reply to this mail, as the channel would send it, is itself a mail. */
	if (m.from_addr && m.to_addr) {
		size_t rlen;
		char *reply = mail_compose(m.to_addr, m.from_addr, m.subject ? m.subject : "", m.text,
		                           "reply@parley.example", m.message_id, m.message_id, &rlen);
		FUZZ_ASSERT(reply, "no reply composed");
		struct parsed_mail back;
		FUZZ_ASSERT(mail_parse(reply, rlen, &back) == 0, "a composed reply does not parse:\n%s", reply);
		mail_free(&back);
		free(reply);
	}
	mail_free(&m);
	return 0;
}
