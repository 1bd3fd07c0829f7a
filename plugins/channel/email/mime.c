/* mime.c: parse and compose mail with GMime; text from HTML with libxml2. */
#define _GNU_SOURCE
#include "mime.h"

#include <gmime/gmime.h>
#include <libxml/HTMLparser.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
	g_mime_init();
	xmlInitParser();
}

void mail_init(void)
{
	pthread_once(&once, init_once);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* ------------------------------------------------------------ HTML */

static void html_text(xmlNode *n, GString *out)
{
	for (; n; n = n->next) {
		if (n->type == XML_TEXT_NODE && n->content) {
			/* Runs of whitespace inside HTML text are one space. */
			const char *p = (const char *)n->content;
			for (; *p; p++) {
				int ws = *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t';
				if (!ws)
					g_string_append_c(out, *p);
				else if (out->len && out->str[out->len - 1] != ' ' && out->str[out->len - 1] != '\n')
					g_string_append_c(out, ' ');
			}
			continue;
		}
		if (n->type != XML_ELEMENT_NODE)
			continue;
		const char *name = (const char *)n->name;
		if (!strcasecmp(name, "script") || !strcasecmp(name, "style") || !strcasecmp(name, "head"))
			continue;
		int block = !strcasecmp(name, "p") || !strcasecmp(name, "div") || !strcasecmp(name, "li") ||
		            !strcasecmp(name, "tr") || !strcasecmp(name, "table") || !strcasecmp(name, "blockquote") ||
		            (name[0] == 'h' && name[1] >= '1' && name[1] <= '6' && !name[2]);
		if (!strcasecmp(name, "br"))
			g_string_append_c(out, '\n');
		if (block && out->len && out->str[out->len - 1] != '\n')
			g_string_append_c(out, '\n');
		if (!strcasecmp(name, "li"))
			g_string_append(out, "- ");
		html_text(n->children, out);
		if (block && out->len && out->str[out->len - 1] != '\n')
			g_string_append_c(out, '\n');
	}
}

static char *html_to_text(const char *html)
{
	htmlDocPtr doc =
	        htmlReadMemory(html, (int)strlen(html), NULL, "UTF-8",
	                       HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_NONET);
	if (!doc)
		return strdup("");
	GString *out = g_string_new(NULL);
	html_text(xmlDocGetRootElement(doc), out);
	xmlFreeDoc(doc);
	/* Trim trailing blank space. */
	while (out->len && (out->str[out->len - 1] == '\n' || out->str[out->len - 1] == ' '))
		g_string_truncate(out, out->len - 1);
	char *s = strdup(out->str);
	g_string_free(out, TRUE);
	return s;
}

char *mail_strip_quotes(const char *text)
{
	GString *out = g_string_new(NULL);
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		size_t l = len;
		if (l && p[l - 1] == '\r')
			l--;
		/* "-- " alone starts the signature; "On <date>, <name> wrote:" starts the quote. */
		if ((l == 3 && strncmp(p, "-- ", 3) == 0) || (l == 2 && strncmp(p, "--", 2) == 0))
			break;
		if (l > 7 && strncmp(p + l - 7, " wrote:", 7) == 0 &&
		    (strncmp(p, "On ", 3) == 0 || strncmp(p, "Le ", 3) == 0 || strncmp(p, "Am ", 3) == 0 ||
		     strstr(p, "@") != NULL))
			break;
		if (l >= 5 && strncmp(p, "-----", 5) == 0 && memmem(p, l, "Original Message", 16))
			break;
		if (!(l > 0 && p[0] == '>')) {
			g_string_append_len(out, p, (gssize)l);
			g_string_append_c(out, '\n');
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	while (out->len && (out->str[out->len - 1] == '\n' || out->str[out->len - 1] == ' '))
		g_string_truncate(out, out->len - 1);
	char *s = strdup(out->str);
	g_string_free(out, TRUE);
	return s;
}

/* ------------------------------------------------------------- parse */

struct walk {
	struct parsed_mail *m;
	char *plain, *html;
};

static void add_attachment(struct parsed_mail *m, GMimePart *part)
{
	GMimeDataWrapper *w = g_mime_part_get_content(part);
	if (!w)
		return;
	GMimeStream *s = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(w, s);
	GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
	struct mail_attachment *na = realloc(m->atts, (m->n_atts + 1) * sizeof(*na));
	if (na) {
		m->atts = na;
		struct mail_attachment *a = &m->atts[m->n_atts++];
		memset(a, 0, sizeof(*a));
		a->len = bytes->len;
		a->data = malloc(bytes->len ? bytes->len : 1);
		memcpy(a->data, bytes->len ? bytes->data : (guint8 *)"", bytes->len); /* an empty part has no data */
		a->name = dup_or_null(g_mime_part_get_filename(part));
		GMimeContentType *ct = g_mime_object_get_content_type(GMIME_OBJECT(part));
		char *mt = g_mime_content_type_get_mime_type(ct);
		a->content_type = strdup(mt);
		g_free(mt);
		GMimeContentDisposition *d = g_mime_object_get_content_disposition(GMIME_OBJECT(part));
		a->is_inline = !d || !g_mime_content_disposition_is_attachment(d);
	}
	g_object_unref(s);
}

static void bounce_info(struct parsed_mail *m, GMimeObject *part)
{
	GMimeContentType *ct = g_mime_object_get_content_type(part);
	if (GMIME_IS_MESSAGE_PART(part)) {
		GMimeMessage *orig = g_mime_message_part_get_message(GMIME_MESSAGE_PART(part));
		if (orig && !m->bounced_message_id)
			m->bounced_message_id = dup_or_null(g_mime_message_get_message_id(orig));
		return;
	}
	if (!GMIME_IS_PART(part))
		return;
	GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(part));
	if (!w)
		return;
	GMimeStream *s = g_mime_stream_mem_new();
	g_mime_data_wrapper_write_to_stream(w, s);
	GByteArray *b = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(s));
	char *text = g_strndup(b->data ? (const char *)b->data : "", b->len); /* an empty part has no data */
	if (g_mime_content_type_is_type(ct, "text", "rfc822-headers") && !m->bounced_message_id) {
		/* The failed message's headers: its Message-ID names what bounced. */
		GMimeStream *hs = g_mime_stream_mem_new_with_buffer(text, strlen(text));
		GMimeParser *p = g_mime_parser_new_with_stream(hs);
		GMimeMessage *orig = g_mime_parser_construct_message(p, NULL);
		if (orig) {
			m->bounced_message_id = dup_or_null(g_mime_message_get_message_id(orig));
			g_object_unref(orig);
		}
		g_object_unref(p);
		g_object_unref(hs);
	} else if (g_mime_content_type_is_type(ct, "message", "delivery-status") && !m->bounce_reason) {
		const char *d = strcasestr(text, "Diagnostic-Code:");
		const char *st = strcasestr(text, "Status:");
		const char *from = d ? d + 16 : (st ? st + 7 : NULL);
		if (from) {
			while (*from == ' ')
				from++;
			m->bounce_reason = g_strndup(from, strcspn(from, "\r\n"));
		}
	}
	g_free(text);
	g_object_unref(s);
}

static void on_part(GMimeObject *parent, GMimeObject *part, gpointer data)
{
	(void)parent;
	struct walk *w = data;
	if (w->m->bounce) {
		bounce_info(w->m, part);
		if (GMIME_IS_MESSAGE_PART(part))
			return;
	}
	if (GMIME_IS_MESSAGE_PART(part)) {
		/* A forwarded message: kept as an attachment. */
		return;
	}
	if (!GMIME_IS_PART(part))
		return;
	GMimePart *p = GMIME_PART(part);
	GMimeContentDisposition *d = g_mime_object_get_content_disposition(part);
	int attachment = (d && g_mime_content_disposition_is_attachment(d)) || g_mime_part_get_filename(p);
	GMimeContentType *ct = g_mime_object_get_content_type(part);
	if (!attachment && GMIME_IS_TEXT_PART(part) && g_mime_content_type_is_type(ct, "text", "plain") && !w->plain) {
		w->plain = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
		return;
	}
	if (!attachment && GMIME_IS_TEXT_PART(part) && g_mime_content_type_is_type(ct, "text", "html") && !w->html) {
		w->html = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
		return;
	}
	if (w->m->bounce && !attachment)
		return;
	add_attachment(w->m, p);
}

static int header_is(GMimeObject *o, const char *name, const char *const *values)
{
	const char *v = g_mime_object_get_header(o, name);
	if (!v)
		return 0;
	if (!values)
		return 1;
	for (size_t i = 0; values[i]; i++)
		if (strncasecmp(v, values[i], strlen(values[i])) == 0)
			return 1;
	return 0;
}

/*
 * Mail arrives in any charset and cannot be refused to its sender, so
 * unlike a webhook it is repaired, not rejected: bytes that are not UTF-8
 * after decoding become U+FFFD (the original stays in the mailbox).  An id
 * that is not UTF-8 is dropped instead, since a repaired id could equal
 * another mail's.  glib says whether *s came from g_malloc.
 */
static void make_valid(char **s, int glib)
{
	if (!*s || g_utf8_validate(*s, -1, NULL))
		return;
	gchar *fixed = g_utf8_make_valid(*s, -1);
	if (glib) {
		g_free(*s);
		*s = fixed;
	} else {
		free(*s);
		*s = strdup(fixed);
		g_free(fixed);
	}
}

static void drop_invalid(char **s)
{
	if (*s && !g_utf8_validate(*s, -1, NULL)) {
		free(*s);
		*s = NULL;
	}
}

static void make_all_valid(struct parsed_mail *m)
{
	drop_invalid(&m->message_id);
	drop_invalid(&m->in_reply_to);
	drop_invalid(&m->bounced_message_id);
	make_valid(&m->from_addr, 1);
	make_valid(&m->to_addr, 1);
	make_valid(&m->from_name, 0);
	make_valid(&m->subject, 0);
	make_valid(&m->text, 0);
	make_valid(&m->full_text, 0);
	make_valid(&m->bounce_reason, 1);
	for (size_t i = 0; i < m->n_atts; i++) {
		make_valid(&m->atts[i].name, 0);
		make_valid(&m->atts[i].content_type, 0);
	}
	cJSON *r = m->references ? m->references->child : NULL;
	while (r) {
		cJSON *next = r->next;
		if (!cJSON_IsString(r) || !g_utf8_validate(r->valuestring, -1, NULL))
			cJSON_Delete(cJSON_DetachItemViaPointer(m->references, r));
		r = next;
	}
}

int mail_parse(const char *raw, size_t len, struct parsed_mail *m)
{
	memset(m, 0, sizeof(*m));
	mail_init();
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer(raw, len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	g_object_unref(parser);
	g_object_unref(stream);
	if (!msg)
		return -1;
	GMimeObject *obj = GMIME_OBJECT(msg);
	m->message_id = dup_or_null(g_mime_message_get_message_id(msg));
	m->subject = dup_or_null(g_mime_message_get_subject(msg));
	InternetAddressList *from = g_mime_message_get_from(msg);
	InternetAddress *ia =
	        from && internet_address_list_length(from) ? internet_address_list_get_address(from, 0) : NULL;
	if (ia && INTERNET_ADDRESS_IS_MAILBOX(ia)) {
		m->from_addr = g_ascii_strdown(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)), -1);
		m->from_name = dup_or_null(internet_address_get_name(ia));
	}
	InternetAddressList *to = g_mime_message_get_to(msg);
	InternetAddress *ta = to && internet_address_list_length(to) ? internet_address_list_get_address(to, 0) : NULL;
	if (ta && INTERNET_ADDRESS_IS_MAILBOX(ta))
		m->to_addr = g_ascii_strdown(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ta)), -1);
	GDateTime *date = g_mime_message_get_date(msg);
	if (date)
		m->date_ms = g_date_time_to_unix(date) * 1000 + g_date_time_get_microsecond(date) / 1000;
	m->references = cJSON_CreateArray();
	const char *refs = g_mime_object_get_header(obj, "References");
	if (refs) {
		GMimeReferences *r = g_mime_references_parse(NULL, refs);
		for (int i = 0; r && i < g_mime_references_length(r); i++)
			cJSON_AddItemToArray(m->references, cJSON_CreateString(g_mime_references_get_message_id(r, i)));
		if (r)
			g_mime_references_free(r);
	}
	const char *irt = g_mime_object_get_header(obj, "In-Reply-To");
	if (irt) {
		GMimeReferences *r = g_mime_references_parse(NULL, irt);
		if (r && g_mime_references_length(r) > 0)
			m->in_reply_to = strdup(g_mime_references_get_message_id(r, 0));
		if (r)
			g_mime_references_free(r);
	}
	static const char *const auto_submitted[] = {"auto-", NULL};
	static const char *const precedence[] = {"auto_reply", "bulk", "junk", "list", NULL};
	m->auto_reply = header_is(obj, "Auto-Submitted", auto_submitted) || header_is(obj, "X-Autoreply", NULL) ||
	                header_is(obj, "X-Autorespond", NULL) || header_is(obj, "Precedence", precedence);
	/* The message's own object carries headers; its MIME part carries the content type. */
	GMimeObject *top = g_mime_message_get_mime_part(msg);
	GMimeContentType *ct = top ? g_mime_object_get_content_type(top) : NULL;
	const char *rt = ct ? g_mime_content_type_get_parameter(ct, "report-type") : NULL;
	m->bounce = ct && g_mime_content_type_is_type(ct, "multipart", "report") && rt &&
	            !strcasecmp(rt, "delivery-status");
	struct walk w = {m, NULL, NULL};
	g_mime_message_foreach(msg, on_part, &w);
	if (w.plain) {
		m->full_text = strdup(w.plain);
	} else if (w.html) {
		m->full_text = html_to_text(w.html);
		m->html_only = 1;
	} else {
		m->full_text = strdup("");
	}
	m->text = mail_strip_quotes(m->full_text);
	g_free(w.plain);
	g_free(w.html);
	g_object_unref(msg);
	make_all_valid(m);
	return 0;
}

void mail_free(struct parsed_mail *m)
{
	free(m->message_id);
	free(m->in_reply_to);
	cJSON_Delete(m->references);
	g_free(m->from_addr);
	free(m->from_name);
	g_free(m->to_addr);
	free(m->subject);
	free(m->text);
	free(m->full_text);
	free(m->bounced_message_id);
	g_free(m->bounce_reason);
	for (size_t i = 0; i < m->n_atts; i++) {
		free(m->atts[i].name);
		free(m->atts[i].content_type);
		free(m->atts[i].data);
	}
	free(m->atts);
	memset(m, 0, sizeof(*m));
}

/* ----------------------------------------------------------- compose */

char *mail_compose(const char *from, const char *to, const char *subject, const char *text, const char *message_id,
                   const char *in_reply_to, const char *references, size_t *len)
{
	mail_init();
	GMimeMessage *msg = g_mime_message_new(TRUE);
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_FROM, NULL, from);
	g_mime_message_add_mailbox(msg, GMIME_ADDRESS_TYPE_TO, NULL, to);
	g_mime_message_set_subject(msg, subject ? subject : "", "utf-8");
	g_mime_message_set_message_id(msg, message_id);
	GDateTime *now = g_date_time_new_now_utc();
	g_mime_message_set_date(msg, now);
	g_date_time_unref(now);
	if (in_reply_to) {
		char *v = g_strdup_printf("<%s>", in_reply_to);
		g_mime_object_set_header(GMIME_OBJECT(msg), "In-Reply-To", v, NULL);
		g_free(v);
	}
	if (references && *references) {
		GString *refs = g_string_new(NULL);
		gchar **ids = g_strsplit(references, " ", -1);
		for (int i = 0; ids[i]; i++)
			if (*ids[i])
				g_string_append_printf(refs, "%s<%s>", refs->len ? " " : "", ids[i]);
		g_strfreev(ids);
		g_mime_object_set_header(GMIME_OBJECT(msg), "References", refs->str, NULL);
		g_string_free(refs, TRUE);
	}
	GMimeTextPart *body = g_mime_text_part_new_with_subtype("plain");
	g_mime_text_part_set_text(body, text ? text : "");
	g_mime_message_set_mime_part(msg, GMIME_OBJECT(body));
	g_object_unref(body);
	GMimeFormatOptions *opts = g_mime_format_options_new();
	g_mime_format_options_set_newline_format(opts, GMIME_NEWLINE_FORMAT_DOS);
	char *s = g_mime_object_to_string(GMIME_OBJECT(msg), opts);
	g_mime_format_options_free(opts);
	g_object_unref(msg);
	char *out = strdup(s);
	g_free(s);
	*len = strlen(out);
	return out;
}
