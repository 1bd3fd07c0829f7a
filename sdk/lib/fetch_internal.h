/*
 * fetch_internal.h: what prov_request (provider_http.c) and prov_fetch
 * (fetch_policy.c) share inside libparley-plugin.  Not installed: plugins
 * reach the policy only through <parley/fetch_policy.h>.
 */
#ifndef PARLEY_SDK_FETCH_INTERNAL_H
#define PARLEY_SDK_FETCH_INTERNAL_H

#include <parley/fetch_policy.h>

/*
 * Used by prov_request while prov_fetch drives it (c->fetch set): the
 * policy's libcurl options for one hop, and what the hop left behind.
 */
struct prov_fetch_state {
	const struct prov_policy *policy;
	const char *url; /* this hop's */
	struct prov_hop hop;
	int refused;
	char why[256];
	char *location;   /* the redirect's target, resolved against url (malloc'd), or NULL */
	int bad_location; /* a Location header that could not be resolved */
};
void prov_fetch_prepare(struct prov_fetch_state *s, CURL *h);
void prov_fetch_finish(struct prov_fetch_state *s, CURL *h);

#endif
