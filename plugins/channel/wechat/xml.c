/*
 * xml.c: a WeChat XML message's fields, with libxml2.  The documents are
 * flat (<xml><ToUserName><![CDATA[...]]></ToUserName>...</xml>, a few
 * nested for menus and events), so they become a JSON object of strings
 * the rest of the plugin reads as it reads the JSON providers' payloads.
 * Nothing is fetched (XML_PARSE_NONET) and entities are not expanded: a
 * DOCTYPE is refused outright, so neither external entities nor entity
 * expansion bombs get a chance.
 */
#include "wechat.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <string.h>

#define MAX_FIELDS 256
#define MAX_DEPTH  4

struct walk {
	const struct parley_host *h;
	size_t fields;
	char *why;
	size_t why_len;
};

static int has_element_children(const xmlNode *n)
{
	for (const xmlNode *c = n->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE)
			return 1;
	return 0;
}

static int walk(struct walk *w, const xmlNode *parent, cJSON *into, int depth, const char *path)
{
	for (const xmlNode *c = parent->children; c; c = c->next) {
		if (c->type != XML_ELEMENT_NODE)
			continue;
		const char *name = (const char *)c->name;
		char where[200];
		snprintf(where, sizeof(where), "%s%s%s", path, path[0] ? "." : "", name);
		if (++w->fields > MAX_FIELDS || depth > MAX_DEPTH) {
			snprintf(w->why, w->why_len, "the XML has more than %d fields or %d levels", MAX_FIELDS,
			         MAX_DEPTH);
			return -1;
		}
		if (has_element_children(c)) {
			cJSON *obj = cJSON_CreateObject();
			cJSON_AddItemToObject(into, name, obj);
			if (walk(w, c, obj, depth + 1, where) != 0)
				return -1;
			continue;
		}
		xmlChar *text = xmlNodeGetContent(c);
		const char *s = text ? (const char *)text : "";
		int bad = w->h->text_check(where, s, strlen(s), w->why, w->why_len) != 0;
		if (!bad)
			cJSON_AddStringToObject(into, name, s);
		xmlFree(text);
		if (bad)
			return -1;
	}
	return 0;
}

int wechat_xml_fields(const struct parley_host *h, const char *xml, size_t len, cJSON **out, char *why, size_t why_len)
{
	*out = NULL;
	if (len > (size_t)1 << 30) {
		snprintf(why, why_len, "the body is too large");
		return -1;
	}
	xmlDocPtr doc = xmlReadMemory(xml, (int)len, "wechat.xml", NULL,
	                              XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
	if (!doc) {
		snprintf(why, why_len, "the body is not XML");
		return -1;
	}
	const xmlNode *root = xmlDocGetRootElement(doc);
	int rv = -1;
	if (!(doc->properties & XML_DOC_WELLFORMED)) {
		/* libxml2 goes on after some errors (a character reference &#0;, say): they are errors all the same. */
		snprintf(why, why_len, "the body is not well-formed XML");
	} else if (doc->intSubset || doc->extSubset) {
		snprintf(why, why_len, "a DOCTYPE is not allowed in a WeChat message");
	} else if (!root || strcmp((const char *)root->name, "xml") != 0) {
		snprintf(why, why_len, "the root element is not <xml>: not a WeChat message");
	} else {
		struct walk w = {h, 0, why, why_len};
		cJSON *fields = cJSON_CreateObject();
		rv = walk(&w, root, fields, 1, "");
		if (rv == 0)
			*out = fields;
		else
			cJSON_Delete(fields);
	}
	xmlFreeDoc(doc);
	return rv;
}
