/*
 * provider_channel_test.c: libparley-plugin's channel lifecycle and send
 * classification (sdk/lib/provider_channel.c, provider_http.c), linked as a
 * plugin links it, against a host table that plays just what they call.
 */
#include "test.h"

#include <parley/provider_channel.h>

static int routes_tried, routes_refused_from;

static const char *cfg_str(parley_instance *inst, const char *key)
{
	(void)inst;
	return strcmp(key, "api_base_url") == 0 ? "https://api.example.com" : NULL;
}

static int cfg_duration(parley_instance *inst, const char *key, int64_t *out)
{
	(void)inst;
	if (strcmp(key, "timeout") == 0) {
		*out = 2500;
		return 0;
	}
	return PARLEY_ENOENT;
}

static int cfg_size(parley_instance *inst, const char *key, uint64_t *out)
{
	(void)inst;
	(void)key;
	*out = 1234;
	return 0;
}

static char *cfg_json(parley_instance *inst, const char *key)
{
	(void)inst;
	(void)key;
	return NULL;
}

/* Routes after the routes_refused_from-th are refused, as a host refuses a duplicate route. */
static int route(parley_instance *inst, const char *method, const char *subpath, parley_http_cb cb)
{
	(void)inst;
	(void)method;
	(void)subpath;
	(void)cb;
	return ++routes_tried > routes_refused_from ? PARLEY_EEXIST : 0;
}

static void on_req(void *data, parley_http_request *req)
{
	(void)data;
	(void)req;
}

static int fetch(void *arg, struct prov_client *c, const char *spec, struct prov_http *out)
{
	(void)arg;
	(void)c;
	(void)spec;
	(void)out;
	return -1;
}

static void lifecycle(const struct parley_host *h)
{
	void *data = NULL;
	char *err = NULL;
	CHECK(prov_channel_new(&data, sizeof(struct prov_channel) + 16, h, NULL, NULL, NULL, &err) == 0);
	struct prov_channel *c = data;
	CHECK(c && strcmp(c->base, "https://api.example.com") == 0 && c->timeout_ms == 2500 && c->max_media == 1234);
	CHECK(c && c->client.timeout_ms == 2500 && c->media == NULL);
	static const struct prov_route routes[] = {{"POST", "", on_req}, {"GET", "", on_req}, {NULL, NULL, NULL}};

	/* Both routes taken: the media thread runs until stop. */
	routes_tried = 0;
	routes_refused_from = 2;
	CHECK(prov_channel_start(c, fetch, NULL, routes) == 0);
	CHECK(routes_tried == 2 && c->media != NULL);
	prov_channel_instance_stop(c);
	CHECK(c->media == NULL);

	/* The second refused: the error comes back and the thread is gone (no instance_stop follows). */
	routes_tried = 0;
	routes_refused_from = 1;
	CHECK(prov_channel_start(c, fetch, NULL, routes) == PARLEY_EEXIST);
	CHECK(routes_tried == 2 && c->media == NULL);
	prov_channel_instance_destroy(c);

	/* A state too small to hold the channel is refused, not overrun. */
	data = NULL;
	CHECK(prov_channel_new(&data, 8, h, NULL, NULL, NULL, &err) == PARLEY_EINVAL && data == NULL);
}

static void classify(void)
{
	struct prov_http r = {.status = 400};
	struct parley_send_result res = {0};
	prov_classify_code(&r, "4", "too many calls", 1, &res);
	CHECK(res.outcome == PARLEY_SEND_RETRY && strcmp(res.error_code, "4") == 0);
	memset(&res, 0, sizeof(res));
	prov_classify_code(&r, "100", "invalid parameter", 0, &res);
	CHECK(res.outcome == PARLEY_SEND_PERMANENT && strcmp(res.error_text, "invalid parameter") == 0);
	r.status = 200;
	memset(&res, 0, sizeof(res));
	prov_classify_code(&r, NULL, NULL, 1, &res);
	CHECK(res.outcome == PARLEY_SEND_OK);
	r.status = 503;
	r.retry_after_ms = 7000;
	memset(&res, 0, sizeof(res));
	prov_classify_code(&r, NULL, NULL, 0, &res);
	CHECK(res.outcome == PARLEY_SEND_RETRY && res.retry_after_ms == 7000 &&
	      strcmp(res.error_code, "http_503") == 0);
}

int main(void)
{
	struct parley_host h = {.struct_size = sizeof(h),
	                        .config_str = cfg_str,
	                        .config_duration_ms = cfg_duration,
	                        .config_size = cfg_size,
	                        .config_json = cfg_json,
	                        .http_route = route};
	lifecycle(&h);
	classify();
	TEST_DONE();
}
