/*
 * parley/fetch_policy.h: where a provider channel may fetch media from, and
 * with which credentials (part of libparley-plugin, see parley/provider.h
 * for linking, versions, threads and errors).
 *
 * Media references (Slack url_private, Twilio MediaUrlN, Meta attachment
 * URLs, the URL a WhatsApp media lookup returns, Telegram file paths) come
 * from payloads: a forged one must not turn the gateway into a client of
 * internal services, nor hand the provider's token to a stranger.  So every
 * media fetch goes through prov_fetch(), which
 *
 *  - allows https to the channel's documented media hosts (plus the
 *    operator's `media_hosts`), and http or https to the configured
 *    api_base_url's origin (scheme, host and port) only;
 *  - refuses, on the address libcurl actually connects to, loopback,
 *    private, link-local, CGNAT, multicast and unspecified addresses, so
 *    DNS rebinding cannot bypass the host check; the api_base_url's origin
 *    is exempt because the operator chose it;
 *  - follows at most PROV_FETCH_MAX_REDIRECTS redirects itself, checking
 *    every hop again;
 *  - sends the credentials only to the API's origin and to the hosts the
 *    channel names as its credential hosts, never to a CDN it is sent to.
 *
 * Outbound sends do not use this: they go to the configured API only.
 *
 * Config keys: a channel type using a policy declares `api_base_url` (a
 * string) and `media_hosts` (a list) in its config map, and checks the list
 * with prov_policy_check_config.
 */
#ifndef PARLEY_FETCH_POLICY_H
#define PARLEY_FETCH_POLICY_H

#include <parley/provider.h>

#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PROV_FETCH_MAX_REDIRECTS 3

/* A channel's fetch policy; set up by prov_policy_init, read-only afterwards (any thread). */
struct prov_policy {
	char api_scheme[8];
	char *api_host; /* lower case */
	long api_port;
	char **hosts;      /* NULL-terminated host patterns a media URL may name: "files.slack.com", "*.fbcdn.net" */
	char **cred_hosts; /* NULL-terminated patterns that also receive the channel's credentials */
};

/*
 * Set up p for instance inst from its `api_base_url` and `media_hosts`
 * config keys.  media_hosts and credential_hosts are the channel type's
 * documented hosts (NULL-terminated, copied; credential_hosts may be NULL).
 * A pattern is a host name, optionally "*." in front (any subdomain) and
 * ":port" behind (443 otherwise).  Call it from instance_create (it reads
 * the instance's config).  Returns 0, PARLEY_ENOMEM, or PARLEY_EINVAL with
 * *errmsg (malloc'd; instance_create hands it to the host, which frees it)
 * saying which key to fix; p then needs no prov_policy_fini.
 */
int prov_policy_init(struct prov_policy *p, const struct parley_host *h, parley_instance *inst,
                     const char *const *media_hosts, const char *const *credential_hosts, char **errmsg);
/* Free what prov_policy_init allocated (from instance_destroy, once no fetch runs). */
void prov_policy_fini(struct prov_policy *p);

/*
 * check_config for channel types with a fetch policy: `media_hosts`, when
 * present, is a list of host patterns.  Same contract as
 * parley_plugin.check_config.
 */
int prov_policy_check_config(const struct parley_host *h, const char *config_json, char **errmsg);

/* What the policy allows for one URL. */
struct prov_hop {
	int api_origin;  /* the URL is on api_base_url's origin: any address, http allowed */
	int credentials; /* the URL may receive the channel's credentials */
	int https;
};

/*
 * 0 when p allows url (hop filled in), -1 when it does not (why says so,
 * without the URL itself, which may hold a signature or a token).  Only the
 * URL is checked here; the address is checked when libcurl connects.
 */
int prov_policy_check(const struct prov_policy *p, const char *url, struct prov_hop *hop, char *why, size_t whylen);

/*
 * 1 when a connection to sa (IPv4 or IPv6, v4-mapped included) may be made
 * for a media URL off the API's origin: not loopback, private, link-local,
 * CGNAT, multicast or unspecified; else 0.
 */
int prov_addr_is_public(const struct sockaddr *sa);

/* Credentials of a fetch: an "Authorization: ..." header and/or basic auth "user:password"; either may be NULL. */
struct prov_credentials {
	const char *header;
	const char *userpwd;
};

/*
 * Returned by prov_fetch and by a prov_fetch_fn when the reference breaks
 * the policy: out->error says why.  Retrying cannot help, so the media
 * worker logs it, counts it in media_refused_total and keeps the message's
 * original reference.
 */
#define PROV_FETCH_REFUSED (-2)

/*
 * GET url under policy p on client c (the media worker's, as a
 * prov_fetch_fn gets it), with cred (may be NULL) sent only where the
 * policy allows.  Blocks for the answer and the redirects.  Returns 0 when
 * an answer came back (any status; out as for prov_request), -1 on a
 * transfer error, or PROV_FETCH_REFUSED.  out is always filled in: free it
 * with prov_http_free.  cred's strings are borrowed for the call.
 */
int prov_fetch(struct prov_client *c, const struct prov_policy *p, const char *url, const struct prov_credentials *cred,
               struct prov_http *out);

/* Fill out as a refusal with the printf-style reason; returns PROV_FETCH_REFUSED. */
int prov_fetch_refuse(struct prov_http *out, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 2, 3)))
#endif
        ;

/*
 * Media ids and paths before they go into a URL: NULL when s is acceptable,
 * else the reason (static text, for a log line or prov_fetch_refuse).  digits: [0-9]+ (Meta media ids).  token:
 * [A-Za-z0-9_-]+ (Telegram file_id).  path: a relative path of [A-Za-z0-9._/-] with no
 * "..", no leading '/' and so no '?', '#' or '%' (Telegram file_path).
 */
const char *prov_ref_digits(const char *s);
const char *prov_ref_token(const char *s);
const char *prov_ref_path(const char *s);

#ifdef __cplusplus
}
#endif

#endif /* PARLEY_FETCH_POLICY_H */
