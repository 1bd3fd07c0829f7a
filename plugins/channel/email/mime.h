/*
 * mime.h: e-mail in and out for the email channel type, with GMime (MIME,
 * charsets, encoded words) and libxml2 (text from HTML-only mail).
 */
#ifndef PARLEY_CHANNEL_EMAIL_MIME_H
#define PARLEY_CHANNEL_EMAIL_MIME_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

struct mail_attachment {
	char *name;
	char *content_type;
	unsigned char *data;
	size_t len;
	int is_inline;
};

struct parsed_mail {
	char *message_id;  /* without <> */
	char *in_reply_to; /* without <> */
	cJSON *references; /* array of message ids, oldest first */
	char *from_addr, *from_name, *to_addr, *subject;
	char *text;      /* the new part: quoted replies and signature stripped */
	char *full_text; /* the whole body as text */
	int html_only;
	int64_t date_ms;
	int auto_reply;           /* Auto-Submitted, X-Autoreply, Precedence: auto_reply/bulk/junk */
	int bounce;               /* a delivery status notification */
	char *bounced_message_id; /* the failed message's id */
	char *bounce_reason;
	struct mail_attachment *atts;
	size_t n_atts;
};

/* Call once per process before parsing (idempotent). */
void mail_init(void);
/* Parse a raw RFC 5322 message; 0, or -1 when it is not a message. */
int mail_parse(const char *raw, size_t len, struct parsed_mail *out);
void mail_free(struct parsed_mail *m);

/*
 * A text/plain UTF-8 message; message_id, in_reply_to and the references
 * are without <>; references is a space-separated list or NULL.  Returns
 * malloc'd RFC 5322 text and its length.
 */
char *mail_compose(const char *from, const char *to, const char *subject, const char *text, const char *message_id,
                   const char *in_reply_to, const char *references, size_t *len);

/* Text without quoted earlier messages ("> ...", "On ... wrote:") and the signature ("-- "); malloc'd. */
char *mail_strip_quotes(const char *text);

#endif
