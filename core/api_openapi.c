/*
 * api_openapi.c: the OpenAPI 3.1 document of the HTTP API, generated from
 * the op table, so it cannot drift from what is served: each op's REST
 * route when it has one, and POST /api/v1/ops/<op> for every op.
 */
#include "api_internal.h"
#include "ops.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {"string", "integer", "boolean", "object", "array"};

static cJSON *field_schema(const struct op_field *f)
{
	cJSON *s = cJSON_CreateObject();
	cJSON_AddStringToObject(s, "type", type_names[f->type]);
	if (f->doc)
		cJSON_AddStringToObject(s, "description", f->doc);
	return s;
}

/* 1 when name is a {parameter} of path. */
static int in_path(const char *path, const char *name)
{
	char want[80];
	snprintf(want, sizeof(want), "{%s}", name);
	return path && strstr(path, want) != NULL;
}

static cJSON *ref(const char *to)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "$ref", to);
	return r;
}

static void add_responses(cJSON *operation, int with_body)
{
	cJSON *rs = cJSON_AddObjectToObject(operation, "responses");
	cJSON *ok = cJSON_AddObjectToObject(rs, "200");
	cJSON_AddStringToObject(ok, "description", "Done; the op's reply.");
	if (with_body) {
		cJSON *c = cJSON_AddObjectToObject(cJSON_AddObjectToObject(ok, "content"), "application/json");
		cJSON_AddItemToObject(c, "schema", ref("#/components/schemas/Reply"));
	}
	static const struct {
		const char *status, *what;
	} errors[] = {{"400", "The request is invalid: the message names the field."},
	              {"401", "No valid session cookie or bearer token."},
	              {"403", "The caller's role or the token's scopes do not allow this op."},
	              {"404", "No such object, or one the caller may not see."},
	              {"429", "Too many attempts: wait for Retry-After."},
	              {"503", "The gateway is busy or its store is down: retry."}};
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		cJSON *e = cJSON_AddObjectToObject(rs, errors[i].status);
		cJSON_AddStringToObject(e, "description", errors[i].what);
		cJSON *c = cJSON_AddObjectToObject(cJSON_AddObjectToObject(e, "content"), "application/json");
		cJSON_AddItemToObject(c, "schema", ref("#/components/schemas/Error"));
	}
}

/* One operation object for op d on path (its REST route, or NULL for /ops/<op>). */
static cJSON *operation(const struct op_def *d, const char *method, const char *path, int rest)
{
	cJSON *o = cJSON_CreateObject();
	char id[96];
	snprintf(id, sizeof(id), "%s%s", rest ? "" : "ops.", d->name);
	cJSON_AddStringToObject(o, "operationId", id);
	cJSON_AddStringToObject(o, "summary", d->summary);
	char *desc = str_printf("Op `%s`; needs %s.%s%s", d->name,
	                        d->role == OP_ADMIN   ? "an admin or a service token"
	                        : d->role == OP_AGENT ? "an agent, an admin or a service token"
	                                              : "any signed-in caller",
	                        d->topic ? " Publishes `" : "", d->topic ? d->topic : "");
	char *full = str_printf("%s%s", desc ? desc : "", d->topic ? "` when done." : "");
	cJSON_AddStringToObject(o, "description", full ? full : d->summary);
	free(desc);
	free(full);
	cJSON *tags = cJSON_AddArrayToObject(o, "tags");
	char tag[64];
	snprintf(tag, sizeof(tag), "%.*s", (int)strcspn(d->name, "."), d->name);
	cJSON_AddItemToArray(tags, cJSON_CreateString(tag));
	cJSON *params = cJSON_CreateArray();
	int get = strcmp(method, "GET") == 0;
	cJSON *props = cJSON_CreateObject(), *required = cJSON_CreateArray();
	for (const struct op_field *f = d->fields; f->name; f++) {
		if (rest && in_path(path, f->name)) {
			cJSON *p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "name", f->name);
			cJSON_AddStringToObject(p, "in", "path");
			cJSON_AddBoolToObject(p, "required", 1);
			cJSON_AddItemToObject(p, "schema", field_schema(f));
			cJSON_AddItemToArray(params, p);
		} else if (rest && get) {
			if (f->type == OP_OBJECT || f->type == OP_ARRAY)
				continue; /* not expressible in a query: POST /ops/<op> takes it */
			cJSON *p = cJSON_CreateObject();
			cJSON_AddStringToObject(p, "name", f->name);
			cJSON_AddStringToObject(p, "in", "query");
			cJSON_AddBoolToObject(p, "required", f->required);
			cJSON_AddItemToObject(p, "schema", field_schema(f));
			cJSON_AddItemToArray(params, p);
		} else {
			cJSON_AddItemToObject(props, f->name, field_schema(f));
			if (f->required)
				cJSON_AddItemToArray(required, cJSON_CreateString(f->name));
		}
	}
	/* Path parameters without a field of their own (GET /messages/{id}). */
	for (const char *p = path ? strchr(path, '{') : NULL; rest && p; p = strchr(p + 1, '{')) {
		char name[64];
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(p + 1, "}"), p + 1);
		int declared = 0;
		for (const struct op_field *f = d->fields; f->name; f++)
			declared |= strcmp(f->name, name) == 0;
		if (declared)
			continue;
		cJSON *pp = cJSON_CreateObject();
		cJSON_AddStringToObject(pp, "name", name);
		cJSON_AddStringToObject(pp, "in", "path");
		cJSON_AddBoolToObject(pp, "required", 1);
		cJSON_AddItemToObject(pp, "schema", cJSON_CreateObject());
		cJSON_AddStringToObject(cJSON_GetObjectItemCaseSensitive(pp, "schema"), "type", "string");
		cJSON_AddItemToArray(params, pp);
	}
	if (cJSON_GetArraySize(params))
		cJSON_AddItemToObject(o, "parameters", params);
	else
		cJSON_Delete(params);
	if (!get) {
		cJSON *schema = cJSON_CreateObject();
		cJSON_AddStringToObject(schema, "type", "object");
		cJSON_AddItemToObject(schema, "properties", props);
		if (cJSON_GetArraySize(required))
			cJSON_AddItemToObject(schema, "required", required);
		else
			cJSON_Delete(required);
		cJSON *body = cJSON_AddObjectToObject(o, "requestBody");
		cJSON_AddBoolToObject(body, "required", 0);
		cJSON *c = cJSON_AddObjectToObject(cJSON_AddObjectToObject(body, "content"), "application/json");
		cJSON_AddItemToObject(c, "schema", schema);
	} else {
		cJSON_Delete(props);
		cJSON_Delete(required);
	}
	add_responses(o, 1);
	return o;
}

static cJSON *path_item(cJSON *paths, const char *path)
{
	cJSON *item = cJSON_GetObjectItemCaseSensitive(paths, path);
	return item ? item : cJSON_AddObjectToObject(paths, path);
}

static void lower(char *dst, const char *src, size_t cap)
{
	size_t i = 0;
	for (; src[i] && i + 1 < cap; i++)
		dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] + 32 : src[i]);
	dst[i] = '\0';
}

/* The routes of api.c that are not ops. */
static void add_special(cJSON *paths, const char *path, const char *method, const char *id, const char *summary,
                        int public_route)
{
	cJSON *o = cJSON_AddObjectToObject(path_item(paths, path), method);
	cJSON_AddStringToObject(o, "operationId", id);
	cJSON_AddStringToObject(o, "summary", summary);
	if (public_route)
		cJSON_AddItemToObject(o, "security", cJSON_CreateArray());
	add_responses(o, 0);
}

char *api_openapi(struct gateway *gw)
{
	(void)gw;
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddStringToObject(doc, "openapi", "3.1.0");
	cJSON *info = cJSON_AddObjectToObject(doc, "info");
	cJSON_AddStringToObject(info, "title", "Parley HTTP API");
	cJSON_AddStringToObject(info, "version", PARLEY_VERSION);
	cJSON_AddStringToObject(info, "description",
	                        "Every op of the control socket, over HTTP. Agents sign in with POST /api/v1/login "
	                        "(a session cookie); services send Authorization: Bearer <token>.");
	cJSON *security = cJSON_AddArrayToObject(doc, "security");
	cJSON *s1 = cJSON_CreateObject(), *s2 = cJSON_CreateObject();
	cJSON_AddArrayToObject(s1, "bearer");
	cJSON_AddArrayToObject(s2, "session");
	cJSON_AddItemToArray(security, s1);
	cJSON_AddItemToArray(security, s2);
	cJSON *paths = cJSON_AddObjectToObject(doc, "paths");
	size_t n;
	const struct op_def *ops = ops_table(&n);
	for (size_t i = 0; i < n; i++) {
		char method[16], path[256];
		if (ops[i].http_path) {
			lower(method, ops[i].http_method, sizeof(method));
			snprintf(path, sizeof(path), "/api/v1%s", ops[i].http_path);
			cJSON_AddItemToObject(path_item(paths, path), method,
			                      operation(&ops[i], ops[i].http_method, ops[i].http_path, 1));
		}
		snprintf(path, sizeof(path), "/api/v1/ops/%s", ops[i].name);
		cJSON_AddItemToObject(path_item(paths, path), "post", operation(&ops[i], "POST", NULL, 0));
	}
	add_special(paths, "/api/v1/login", "post", "login",
	            "Sign in with {email, password}: sets the session cookie parley_session.", 1);
	add_special(paths, "/api/v1/logout", "post", "logout", "End this session.", 0);
	add_special(paths, "/api/v1/me", "get", "me", "The signed-in caller: name, role, teams.", 0);
	add_special(paths, "/api/v1/openapi.json", "get", "openapi", "This document.", 1);
	add_special(paths, "/api/v1/events", "get", "events",
	            "Live events as Server-Sent Events; Last-Event-ID (or ?after=) resumes after an event.", 0);
	cJSON *att = cJSON_AddObjectToObject(path_item(paths, "/api/v1/attachments/{sha256}"), "get");
	cJSON_AddStringToObject(att, "operationId", "attachment");
	cJSON_AddStringToObject(att, "summary", "A stored attachment's bytes (agents give message_id).");
	cJSON *ap = cJSON_AddArrayToObject(att, "parameters");
	static const char *const att_params[][2] = {{"sha256", "path"}, {"message_id", "query"}};
	for (size_t i = 0; i < 2; i++) {
		cJSON *p = cJSON_CreateObject();
		cJSON_AddStringToObject(p, "name", att_params[i][0]);
		cJSON_AddStringToObject(p, "in", att_params[i][1]);
		cJSON_AddBoolToObject(p, "required", i == 0);
		cJSON_AddStringToObject(cJSON_AddObjectToObject(p, "schema"), "type", "string");
		cJSON_AddItemToArray(ap, p);
	}
	add_responses(att, 0);

	cJSON *comp = cJSON_AddObjectToObject(doc, "components");
	cJSON *schemes = cJSON_AddObjectToObject(comp, "securitySchemes");
	cJSON *bearer = cJSON_AddObjectToObject(schemes, "bearer");
	cJSON_AddStringToObject(bearer, "type", "http");
	cJSON_AddStringToObject(bearer, "scheme", "bearer");
	cJSON *session = cJSON_AddObjectToObject(schemes, "session");
	cJSON_AddStringToObject(session, "type", "apiKey");
	cJSON_AddStringToObject(session, "in", "cookie");
	cJSON_AddStringToObject(session, "name", "parley_session");
	cJSON *schemas = cJSON_AddObjectToObject(comp, "schemas");
	cJSON *reply = cJSON_AddObjectToObject(schemas, "Reply");
	cJSON_AddStringToObject(reply, "type", "object");
	cJSON_AddStringToObject(reply, "description",
	                        "The op's reply; the store's read ops are described field by field in "
	                        "sdk/schemas/store/<op>.json.");
	cJSON *err = cJSON_AddObjectToObject(schemas, "Error");
	cJSON_AddStringToObject(err, "type", "object");
	cJSON *ereq = cJSON_AddArrayToObject(err, "required");
	cJSON_AddItemToArray(ereq, cJSON_CreateString("error"));
	cJSON *eo = cJSON_AddObjectToObject(cJSON_AddObjectToObject(err, "properties"), "error");
	cJSON_AddStringToObject(eo, "type", "object");
	cJSON *eoreq = cJSON_AddArrayToObject(eo, "required");
	cJSON_AddItemToArray(eoreq, cJSON_CreateString("code"));
	cJSON_AddItemToArray(eoreq, cJSON_CreateString("message"));
	cJSON *eprops = cJSON_AddObjectToObject(eo, "properties");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(eprops, "code"), "type", "string");
	cJSON_AddStringToObject(cJSON_AddObjectToObject(eprops, "message"), "type", "string");
	char *s = cJSON_PrintUnformatted(doc);
	cJSON_Delete(doc);
	return s;
}
