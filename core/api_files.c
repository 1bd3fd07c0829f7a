/*
 * api_files.c: GET /api/v1/attachments/{sha256}, the bytes of a stored
 * attachment.  An agent names the message it is in (?message_id=), which
 * must be one they may see; admins and services may fetch any.
 */
#include "api_internal.h"
#include "gateway.h"
#include "http_server.h"
#include "ops.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Types a browser may show inline; anything else is a download. */
static int inline_type(const char *ct)
{
	static const char *const ok[] = {"image/png", "image/jpeg", "image/gif", "image/webp", NULL};
	for (size_t i = 0; ct && ok[i]; i++)
		if (strcmp(ct, ok[i]) == 0)
			return 1;
	return 0;
}

static int hex64(const char *s)
{
	size_t i = 0;
	for (; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == 64;
}

/* The message_id of the query, decoded into out; 0 when absent. */
static int query_message_id(parley_http_request *req, char *out, size_t cap)
{
	const char *q = http_server_query(req);
	for (const char *p = q; p && *p;) {
		size_t len = strcspn(p, "&");
		if (len > 11 && strncmp(p, "message_id=", 11) == 0)
			return api_pct_decode(p + 11, len - 11, out, cap) == 0;
		p += len + (p[len] == '&');
	}
	return 0;
}

/* The content type the message gives the attachment sha256, or NULL when it has none such. */
static char *type_in_message(struct gateway *gw, const struct auth_principal *who, const char *message_id,
                             const char *sha256, int *found)
{
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "id", message_id);
	char *reply = ops_call(gw, who, "message.get", req);
	cJSON_Delete(req);
	cJSON *r = reply ? cJSON_Parse(reply) : NULL;
	free(reply);
	char *type = NULL;
	*found = 0;
	const cJSON *a;
	cJSON_ArrayForEach(
	        a, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "message"), "attachments"))
	{
		const char *h = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "sha256"));
		if (h && strcmp(h, sha256) == 0) {
			*found = 1;
			const char *ct = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "content_type"));
			type = ct ? strdup(ct) : NULL;
			break;
		}
	}
	cJSON_Delete(r);
	return type;
}

static char *read_all(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (!buf || got != (size_t)st.st_size) {
		free(buf);
		return NULL;
	}
	*len = got;
	return buf;
}

void api_attachment(struct gateway *gw, parley_http_request *req, const struct auth_principal *who)
{
	const char *path = http_server_path(req);
	const char *sha = strrchr(path, '/') + 1;
	if (!hex64(sha)) {
		api_respond_error(req, 400, "invalid_request", "the attachment is named by its SHA-256, 64 hex digits");
		return;
	}
	char mid[128];
	int has_mid = query_message_id(req, mid, sizeof(mid));
	int agent = who && who->role == AUTH_AGENT;
	if (agent && !has_mid) {
		api_respond_error(req, 403, "forbidden", "an agent names the message: ?message_id=");
		return;
	}
	char *type = NULL;
	if (has_mid) {
		int found;
		type = type_in_message(gw, who, mid, sha, &found);
		if (!found) {
			free(type);
			api_respond_error(req, 404, "not_found", "no such attachment in that message");
			return;
		}
	}
	char *file = str_printf("%s/attachments/%.2s/%s", gw->cfg.data_dir, sha, sha);
	size_t len = 0;
	char *bytes = file ? read_all(file, &len) : NULL;
	free(file);
	if (!bytes) {
		free(type);
		api_respond_error(req, 404, "not_found", "no stored attachment with that SHA-256");
		return;
	}
	int show = inline_type(type);
	/* Content-addressed: the bytes never change.  Never rendered as a page of ours. */
	const char *headers[] = {"Cache-Control",
	                         "private, max-age=86400, immutable",
	                         "X-Content-Type-Options",
	                         "nosniff",
	                         "Content-Security-Policy",
	                         "default-src 'none'; sandbox",
	                         "Content-Disposition",
	                         show ? "inline" : "attachment",
	                         NULL};
	http_server_respond_with(req, 200, show ? type : "application/octet-stream", headers, bytes, len);
	free(bytes);
	free(type);
}
