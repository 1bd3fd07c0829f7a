/*
 * parley/provider_channel.h: what every media-fetching provider channel's
 * instance holds and does at the same points of its lifecycle, written once
 * (part of libparley-plugin, see parley/provider.h for linking, versions,
 * threads and errors).
 *
 * Embed a struct prov_channel in the instance state and call
 *
 *   instance_create   prov_channel_init   (reads api_base_url, timeout, max_media; the fetch policy; the client)
 *   instance_start    prov_channel_start  (the media thread, then the webhook routes)
 *   instance_stop     prov_channel_stop   (joins the media thread)
 *   instance_destroy  prov_channel_fini   (frees the client and the policy)
 *
 * (or, when the struct is the state's first member and nothing else needs
 * stopping or freeing, prov_channel_instance_stop/_destroy as the
 * descriptor's instance_stop and instance_destroy themselves)
 *
 * and declare the keys it reads with PROV_CHANNEL_CONFIG in the config map.
 */
#ifndef PARLEY_PROVIDER_CHANNEL_H
#define PARLEY_PROVIDER_CHANNEL_H

#include <parley/fetch_policy.h>
#include <parley/provider.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The config keys prov_channel_init reads, for a config map: api_base_url
 * (default base, described as help), timeout (10s), max_media (default
 * max_media, a size) and media_hosts (prov_policy_check_config checks it).
 * One key a line: clang-format is kept off it.
 */
// clang-format off
#define PROV_CHANNEL_CONFIG(base, help, max_media) \
	{"api_base_url", PARLEY_CFG_STRING, base, 0, help}, \
	{"timeout", PARLEY_CFG_DURATION, "10s", 0, "provider request timeout"}, \
	{"max_media", PARLEY_CFG_SIZE, max_media, 0, "larger media are not fetched"}, \
	{"media_hosts", PARLEY_CFG_LIST, NULL, 0, \
	 "more hosts media may be fetched from over https (a media proxy, say); they never get the credentials"}
// clang-format on

/*
 * A provider channel instance's common state.  The fields are the plugin's
 * to read; prov_channel_* set them.
 */
struct prov_channel {
	const struct parley_host *host;
	parley_instance *inst;
	const char *base;          /* api_base_url, owned by the host (valid until the instance is destroyed) */
	int64_t timeout_ms;        /* timeout, for every provider request */
	uint64_t max_media;        /* max_media: larger media are not fetched */
	struct prov_client client; /* the outbox thread's, for channel_send (answers up to 1 MiB) */
	struct prov_policy policy; /* where media may be fetched from (fetch_policy.h) */
	struct prov_media *media;  /* the media thread, between prov_channel_start and prov_channel_stop */
};

/*
 * From instance_create: fill c for inst, with the channel type's documented
 * media hosts and the hosts that also get its credentials (as for
 * prov_policy_init; credential_hosts may be NULL).  0, or a negative error
 * with *errmsg (malloc'd, for the host) saying which key to fix; on an
 * error c needs no prov_channel_fini.
 */
int prov_channel_init(struct prov_channel *c, const struct parley_host *h, parley_instance *inst,
                      const char *const *media_hosts, const char *const *credential_hosts, char **errmsg);

/* One webhook route: METHOD on /webhooks/<channel><subpath> (see parley_host.http_route). */
struct prov_route {
	const char *method;  /* "POST", "GET"; NULL ends a list */
	const char *subpath; /* "" or "/..." */
	parley_http_cb cb;   /* called with the instance data the host was given (the plugin's state) */
};

/*
 * From instance_create, for a state struct of `size` bytes whose first
 * member is its struct prov_channel: allocate it zeroed, prov_channel_init
 * that member, and set *data to it.  0, PARLEY_ENOMEM, PARLEY_EINVAL (size
 * cannot hold a struct prov_channel), or prov_channel_init's error (nothing
 * is then allocated).  Free it with prov_channel_fini and
 * free(), or prov_channel_instance_destroy.
 */
int prov_channel_new(void **data, size_t size, const struct parley_host *h, parley_instance *inst,
                     const char *const *media_hosts, const char *const *credential_hosts, char **errmsg);

/*
 * From instance_start: start the media thread, which calls fetch(arg, ...)
 * for each job (see prov_media_start), then register routes (NULL, or a
 * list ended by a NULL method), so that no webhook comes before the thread
 * is there.  0, or the first error (PARLEY_ENOMEM, PARLEY_EIO, or the
 * host's http_route refusal), after stopping the thread again (the host
 * calls no instance_stop after a failed start).
 */
int prov_channel_start(struct prov_channel *c, prov_fetch_fn fetch, void *arg, const struct prov_route *routes);

/* From instance_stop: stop the media thread (waiting for the fetch under way); safe when it never started. */
void prov_channel_stop(struct prov_channel *c);

/* From instance_destroy: free the client and the policy; c itself is the caller's. */
void prov_channel_fini(struct prov_channel *c);

/*
 * For a channel whose instance state begins with its struct prov_channel
 * (the first member) and owns nothing else to stop or free: put these in
 * the descriptor as instance_stop and instance_destroy.  The first calls
 * prov_channel_stop; the second prov_channel_fini, then free(data).
 */
void prov_channel_instance_stop(void *data);
void prov_channel_instance_destroy(void *data);

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_PROVIDER_CHANNEL_H */
