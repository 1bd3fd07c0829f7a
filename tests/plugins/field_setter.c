/*
 * field_setter.c: a test channel that sets whatever field a request names,
 * as a plugin with a bug would.  POST {"id", "field", "value"} (or "json"
 * for envelope_set_json, or "orphan": true for an envelope built without
 * its instance) builds one envelope with external_id and from, sets the
 * field, and submits it whatever the setter said.  The answer is 200
 * {"set": rc, "submit": rc} after the commit, or 400 with the same body when
 * submit refused the envelope: the test sees what the host did.
 */
#include <parley/parley.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

struct setter {
	const struct parley_host *host;
	parley_instance *inst;
};

struct pending {
	const struct parley_host *host;
	parley_http_request *req;
	int set_rc;
};

static void answer(const struct parley_host *h, parley_http_request *req, int status, int set_rc, int submit_rc)
{
	char body[96];
	int n = snprintf(body, sizeof(body), "{\"set\":%d,\"submit\":%d}", set_rc, submit_rc);
	h->http_respond(req, status, "application/json", body, (size_t)n);
}

static void committed(void *arg, int result)
{
	struct pending *p = arg;
	answer(p->host, p->req, result == 0 ? 200 : 503, p->set_rc, result);
	free(p);
}

static const char *member(const cJSON *o, const char *name)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
}

static void on_post(void *data, parley_http_request *req)
{
	struct setter *s = data;
	const struct parley_host *h = s->host;
	size_t len;
	const char *body = h->http_body(req, &len);
	cJSON *m = cJSON_ParseWithLength(body, len);
	const char *id = member(m, "id"), *field = member(m, "field");
	if (!id || !field) {
		cJSON_Delete(m);
		h->http_respond(req, 400, "text/plain", "id and field are required", 25);
		return;
	}
	int orphan = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "orphan"));
	parley_envelope *env = h->envelope_new(orphan ? NULL : s->inst, "message", "inbound");
	h->envelope_set_str(env, "external_id", id);
	h->envelope_set_str(env, "from", "test:field-setter");
	h->envelope_set_str(env, "text", "a field under test");
	const cJSON *json = cJSON_GetObjectItemCaseSensitive(m, "json");
	int set_rc;
	if (json) {
		char *text = cJSON_PrintUnformatted(json);
		set_rc = h->envelope_set_json(env, field, text);
		free(text);
	} else {
		set_rc = h->envelope_set_str(env, field, member(m, "value"));
	}
	cJSON_Delete(m);
	struct pending *p = calloc(1, sizeof(*p));
	p->host = h;
	p->req = req;
	p->set_rc = set_rc;
	int rv = h->submit(s->inst, &env, 1, committed, p);
	if (rv != 0) {
		h->envelope_free(env);
		free(p);
		answer(h, req, 400, set_rc, rv);
	}
}

static int create(const struct parley_host *host, parley_instance *inst, void *pd, void **data, char **errmsg)
{
	(void)pd;
	(void)errmsg;
	struct setter *s = calloc(1, sizeof(*s));
	if (!s)
		return PARLEY_ENOMEM;
	s->host = host;
	s->inst = inst;
	*data = s;
	return 0;
}

static int start(void *data, char **errmsg)
{
	(void)errmsg;
	struct setter *s = data;
	return s->host->http_route(s->inst, "POST", "", on_post);
}

static void stop(void *data)
{
	(void)data;
}

static void destroy(void *data)
{
	free(data);
}

static const struct parley_config_key keys[] = {
        {NULL, 0, NULL, 0, NULL},
};

static const struct parley_plugin desc = {
        PARLEY_PLUGIN_HEADER,
        .kind = PARLEY_KIND_CHANNEL,
        .name = "field_setter",
        .version = "1.0.0",
        .description = "test channel: sets the field a request names, valid or not",
        .config = keys,
        .instance_create = create,
        .instance_start = start,
        .instance_stop = stop,
        .instance_destroy = destroy,
};

PARLEY_PLUGIN_DEFINE(desc)
