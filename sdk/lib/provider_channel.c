/* provider_channel.c: a provider channel instance's common lifecycle (parley/provider_channel.h). */
#include <parley/provider_channel.h>

#include <stdlib.h>
#include <string.h>

int prov_channel_init(struct prov_channel *c, const struct parley_host *h, parley_instance *inst,
                      const char *const *media_hosts, const char *const *credential_hosts, char **errmsg)
{
	memset(c, 0, sizeof(*c));
	int rv = prov_policy_init(&c->policy, h, inst, media_hosts, credential_hosts, errmsg);
	if (rv != 0)
		return rv;
	c->host = h;
	c->inst = inst;
	c->base = h->config_str(inst, "api_base_url");
	c->timeout_ms = 10000;
	h->config_duration_ms(inst, "timeout", &c->timeout_ms);
	h->config_size(inst, "max_media", &c->max_media);
	prov_client_init(&c->client, c->timeout_ms, 1 << 20);
	return 0;
}

int prov_channel_new(void **data, size_t size, const struct parley_host *h, parley_instance *inst,
                     const char *const *media_hosts, const char *const *credential_hosts, char **errmsg)
{
	struct prov_channel *c = size >= sizeof(*c) ? calloc(1, size) : NULL;
	if (!c)
		return size >= sizeof(*c) ? PARLEY_ENOMEM : PARLEY_EINVAL;
	int rv = prov_channel_init(c, h, inst, media_hosts, credential_hosts, errmsg);
	if (rv != 0) {
		free(c);
		return rv;
	}
	*data = c;
	return 0;
}

int prov_channel_start(struct prov_channel *c, prov_fetch_fn fetch, void *arg, const struct prov_route *routes)
{
	int rv = prov_media_start(&c->media, c->host, c->inst, fetch, arg, (size_t)c->max_media, c->timeout_ms);
	for (size_t i = 0; rv == 0 && routes && routes[i].method; i++)
		rv = c->host->http_route(c->inst, routes[i].method, routes[i].subpath, routes[i].cb);
	/* The host calls no instance_stop after a failed start: the thread must not outlive it. */
	if (rv != 0)
		prov_channel_stop(c);
	return rv;
}

void prov_channel_stop(struct prov_channel *c)
{
	prov_media_stop(c->media);
	c->media = NULL;
}

void prov_channel_fini(struct prov_channel *c)
{
	prov_client_fini(&c->client);
	prov_policy_fini(&c->policy);
}

void prov_channel_instance_stop(void *data)
{
	prov_channel_stop(data);
}

void prov_channel_instance_destroy(void *data)
{
	prov_channel_fini(data);
	free(data);
}
