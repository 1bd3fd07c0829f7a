/*
 * fetch_policy.c: the media fetch policy of provider channels (see
 * fetch_policy.h for what it allows and why).
 *
 * URLs are parsed with libcurl's own URL parser, so the host checked here is
 * the host libcurl connects to.  Names can be rebound between the check and
 * the connection, so addresses are checked again where libcurl opens the
 * socket (CURLOPT_OPENSOCKETFUNCTION), and once more before each request
 * (CURLOPT_PREREQFUNCTION) because a kept-alive connection opens no socket.
 */
#include "fetch_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ host patterns */

/* NULL when pattern is a host name with an optional "*." prefix and ":port" suffix, else why not. */
static const char *pattern_error(const char *pattern)
{
	const char *s = pattern;
	if (strncmp(s, "*.", 2) == 0)
		s += 2;
	size_t name = strcspn(s, ":");
	if (name == 0)
		return "no host name";
	for (size_t i = 0; i < name; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
			return "a host name has only letters, digits, '.' and '-' (no scheme, path or '*' inside)";
	if (s[name] == ':') {
		const char *port = s + name + 1;
		if (!*port || strspn(port, "0123456789") != strlen(port) || atol(port) < 1 || atol(port) > 65535)
			return "the port after ':' must be a number from 1 to 65535";
	}
	return NULL;
}

static char *lower_dup(const char *s)
{
	char *d = strdup(s);
	for (char *p = d; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* 1 when host:port matches one of the NULL-terminated patterns (lower case). */
static int host_listed(char *const *patterns, const char *host, long port)
{
	for (size_t i = 0; patterns && patterns[i]; i++) {
		const char *pat = patterns[i];
		size_t name = strcspn(pat, ":");
		long want = pat[name] == ':' ? atol(pat + name + 1) : 443;
		if (want != port)
			continue;
		size_t hl = strlen(host);
		if (strncmp(pat, "*.", 2) == 0) {
			/* "*.fbcdn.net": any subdomain, never the bare domain nor "evilfbcdn.net". */
			size_t sl = name - 1; /* ".fbcdn.net" */
			if (hl > sl && strncmp(host + hl - sl, pat + 1, sl) == 0)
				return 1;
		} else if (hl == name && strncmp(host, pat, name) == 0) {
			return 1;
		}
	}
	return 0;
}

static void patterns_free(char **list)
{
	for (size_t i = 0; list && list[i]; i++)
		free(list[i]);
	free(list);
}

/* Append the builtin patterns, then the JSON list extra (when given), to a new NULL-terminated list. */
static char **patterns_new(const char *const *builtin, const cJSON *extra)
{
	size_t n = 0, cap = (size_t)cJSON_GetArraySize(extra) + 1;
	while (builtin && builtin[n])
		n++;
	cap += n;
	char **list = calloc(cap, sizeof(char *));
	if (!list)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		list[k++] = lower_dup(builtin[i]);
	const cJSON *v;
	cJSON_ArrayForEach(v, extra)
	{
		if (cJSON_IsString(v))
			list[k++] = lower_dup(v->valuestring);
	}
	return list;
}

/* ------------------------------------------------------------ URLs */

struct url_parts {
	char *scheme, *host;
	long port;
	int has_user;
};

static void url_parts_free(struct url_parts *u)
{
	curl_free(u->scheme);
	curl_free(u->host);
	memset(u, 0, sizeof(*u));
}

/* Split url with libcurl's parser; 0 or -1 with why. */
static int url_split(const char *url, struct url_parts *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof(*out));
	CURLU *u = curl_url();
	char *port = NULL, *user = NULL;
	int rv = -1;
	/* NON_SUPPORT_SCHEME: parse gopher:, file:, ... too, so the refusal can name the scheme. */
	if (!u || curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &out->scheme, 0) != CURLUE_OK) {
		snprintf(why, whylen, "not an absolute URL");
		goto done;
	}
	for (char *p = out->scheme; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	if (strcmp(out->scheme, "https") != 0 && strcmp(out->scheme, "http") != 0) {
		snprintf(why, whylen, "scheme '%.16s' is not allowed: media are fetched over https", out->scheme);
		goto done;
	}
	if (curl_url_get(u, CURLUPART_HOST, &out->host, 0) != CURLUE_OK || !out->host[0]) {
		snprintf(why, whylen, "no host in the URL");
		goto done;
	}
	for (char *p = out->host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	out->has_user = curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK;
	if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
		out->port = atol(port);
	rv = 0;
done:
	curl_free(port);
	curl_free(user);
	curl_url_cleanup(u);
	if (rv != 0)
		url_parts_free(out);
	return rv;
}

int prov_policy_check(const struct prov_policy *p, const char *url, struct prov_hop *hop, char *why, size_t whylen)
{
	memset(hop, 0, sizeof(*hop));
	struct url_parts u;
	if (url_split(url, &u, why, whylen) != 0)
		return -1;
	int rv = -1;
	hop->https = strcmp(u.scheme, "https") == 0;
	hop->api_origin = p->api_host && strcmp(u.scheme, p->api_scheme) == 0 && strcmp(u.host, p->api_host) == 0 &&
	                  u.port == p->api_port;
	if (u.has_user)
		snprintf(why, whylen, "the URL carries a user name: credentials are the channel's to give");
	else if (!hop->https && !hop->api_origin)
		snprintf(why, whylen, "plain http to %.100s:%ld: only api_base_url's origin may be fetched over http",
		         u.host, u.port);
	else if (!hop->api_origin && !host_listed(p->hosts, u.host, u.port))
		snprintf(why, whylen,
		         "%.100s:%ld is not a media host of this channel (add it to the channel's media_hosts if it "
		         "is yours)",
		         u.host, u.port);
	else
		rv = 0;
	if (rv == 0)
		hop->credentials = hop->api_origin || (hop->https && host_listed(p->cred_hosts, u.host, u.port));
	url_parts_free(&u);
	return rv;
}

/* ------------------------------------------------------------ addresses */

struct net4 {
	uint32_t net, mask;
};

/* Not reachable on the public internet, or not unicast: refused for media off the API's origin. */
static const struct net4 denied4[] = {
        {0x00000000, 0xff000000}, /* 0.0.0.0/8: "this network", 0.0.0.0 */
        {0x0a000000, 0xff000000}, /* 10/8: RFC 1918 */
        {0x64400000, 0xffc00000}, /* 100.64/10: CGNAT */
        {0x7f000000, 0xff000000}, /* 127/8: loopback */
        {0xa9fe0000, 0xffff0000}, /* 169.254/16: link-local, cloud metadata */
        {0xac100000, 0xfff00000}, /* 172.16/12: RFC 1918 */
        {0xc0000000, 0xffffff00}, /* 192.0.0/24: IETF protocol assignments */
        {0xc0a80000, 0xffff0000}, /* 192.168/16: RFC 1918 */
        {0xc6120000, 0xfffe0000}, /* 198.18/15: benchmarking */
        {0xe0000000, 0xf0000000}, /* 224/4: multicast */
        {0xf0000000, 0xf0000000}, /* 240/4: reserved, broadcast */
};

static int v4_public(const unsigned char b[4])
{
	uint32_t a = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	for (size_t i = 0; i < sizeof(denied4) / sizeof(denied4[0]); i++)
		if ((a & denied4[i].mask) == denied4[i].net)
			return 0;
	return 1;
}

static int v6_public(const unsigned char b[16])
{
	static const unsigned char zero[12], mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
	/* Forms that carry an IPv4 address reach that address: judge it.  ::/128 and ::1 land in 0/8. */
	if (memcmp(b, zero, 12) == 0 || memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
		return v4_public(b + 12);
	if (b[0] == 0x20 && b[1] == 0x02) /* 2002::/16, 6to4 */
		return v4_public(b + 2);
	if ((b[0] & 0xfe) == 0xfc) /* fc00::/7: unique local */
		return 0;
	if (b[0] == 0xfe && (b[1] & 0x80) == 0x80) /* fe80::/10 link-local, fec0::/10 site-local */
		return 0;
	if (b[0] == 0xff) /* multicast */
		return 0;
	if (b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1) /* 64:ff9b:1::/48 */
		return 0;
	if (b[0] == 0x01 && b[1] == 0 && memcmp(b + 2, zero, 6) == 0) /* 100::/64, discard */
		return 0;
	if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) /* 2001:db8::/32, documentation */
		return 0;
	return 1;
}

int prov_addr_is_public(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return v4_public((const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr);
	if (sa->sa_family == AF_INET6)
		return v6_public(((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr);
	return 0; /* unix sockets and anything else */
}

static void refuse_address(struct prov_fetch_state *s, int family, const void *addr)
{
	char text[INET6_ADDRSTRLEN] = "?";
	inet_ntop(family, addr, text, sizeof(text));
	s->refused = 1;
	snprintf(s->why, sizeof(s->why),
	         "the media host resolved to %s, a loopback, private, link-local or otherwise internal address", text);
}

static curl_socket_t open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct prov_fetch_state *s = ud;
	if (purpose != CURLSOCKTYPE_IPCXN)
		return CURL_SOCKET_BAD;
	if (!s->hop.api_origin && !prov_addr_is_public(&a->addr)) {
		const void *ip = a->family == AF_INET6
		                         ? (const void *)&((struct sockaddr_in6 *)(void *)&a->addr)->sin6_addr
		                         : (const void *)&((struct sockaddr_in *)(void *)&a->addr)->sin_addr;
		refuse_address(s, a->family, ip);
		return CURL_SOCKET_BAD;
	}
	return socket(a->family, a->socktype, a->protocol);
}

static int before_request(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
	(void)local_ip;
	(void)primary_port;
	(void)local_port;
	struct prov_fetch_state *s = ud;
	if (s->hop.api_origin)
		return CURL_PREREQFUNC_OK;
	struct sockaddr_in6 a6 = {0};
	struct sockaddr_in a4 = {0};
	if (inet_pton(AF_INET, primary_ip, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		if (prov_addr_is_public((struct sockaddr *)&a4))
			return CURL_PREREQFUNC_OK;
		refuse_address(s, AF_INET, &a4.sin_addr);
	} else if (inet_pton(AF_INET6, primary_ip, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		if (prov_addr_is_public((struct sockaddr *)&a6))
			return CURL_PREREQFUNC_OK;
		refuse_address(s, AF_INET6, &a6.sin6_addr);
	} else {
		s->refused = 1;
		snprintf(s->why, sizeof(s->why), "connected to an address that is not an IP address");
	}
	return CURL_PREREQFUNC_ABORT;
}

void prov_fetch_prepare(struct prov_fetch_state *s, CURL *h)
{
	/* One scheme per hop; redirects are never followed by libcurl (prov_fetch checks each one). */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, s->hop.https ? "https" : "http");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, s);
	curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, before_request);
	curl_easy_setopt(h, CURLOPT_PREREQDATA, s);
}

void prov_fetch_finish(struct prov_fetch_state *s, CURL *h)
{
	/* The Location header resolved against this hop's URL.  Not CURLINFO_REDIRECT_URL: libcurl puts
	 * basic-auth credentials into that URL, and they must not travel to the next hop. */
	struct curl_header *loc = NULL;
	if (curl_easy_header(h, "Location", 0, CURLH_HEADER, -1, &loc) != CURLHE_OK || !loc->value[0])
		return;
	CURLU *u = curl_url();
	char *next = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, s->url, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, loc->value, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &next, 0) == CURLUE_OK)
		s->location = strdup(next);
	s->bad_location = !s->location;
	curl_free(next);
	curl_url_cleanup(u);
}

/* ------------------------------------------------------------ fetching */

int prov_fetch_refuse(struct prov_http *out, const char *fmt, ...)
{
	memset(out, 0, sizeof(*out));
	out->body = calloc(1, 1);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->error, sizeof(out->error), fmt, ap);
	va_end(ap);
	/* Reasons quote references from payloads: no control characters into the log. */
	for (char *p = out->error; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return PROV_FETCH_REFUSED;
}

int prov_fetch(struct prov_client *c, const struct prov_policy *p, const char *url, const struct prov_credentials *cred,
               struct prov_http *out)
{
	char *next = strdup(url);
	if (!next)
		return prov_fetch_refuse(out, "out of memory");
	for (int hops = 0;; hops++) {
		struct prov_fetch_state st = {.policy = p, .url = next};
		if (prov_policy_check(p, next, &st.hop, st.why, sizeof(st.why)) != 0) {
			free(next);
			return hops ? prov_fetch_refuse(out, "redirect %d: %s", hops, st.why)
			            : prov_fetch_refuse(out, "%s", st.why);
		}
		int give = cred && st.hop.credentials;
		const char *hdrs[] = {give ? cred->header : NULL, NULL};
		c->fetch = &st;
		int rv = prov_request(c, "GET", next, hdrs, NULL, 0, give ? cred->userpwd : NULL, out);
		c->fetch = NULL;
		free(next);
		next = st.location;
		if (rv != 0 && st.refused) {
			free(next);
			prov_http_free(out);
			return prov_fetch_refuse(out, "%s", st.why);
		}
		long st3 = rv == 0 ? out->status : 0;
		int redirect = st3 == 301 || st3 == 302 || st3 == 303 || st3 == 307 || st3 == 308;
		if (redirect && st.bad_location) {
			prov_http_free(out);
			return prov_fetch_refuse(out, "redirect %d: a Location that is not a URL", hops + 1);
		}
		if (!redirect || !next) {
			free(next);
			return rv;
		}
		prov_http_free(out);
		if (hops == PROV_FETCH_MAX_REDIRECTS) {
			free(next);
			return prov_fetch_refuse(out, "more than %d redirects", PROV_FETCH_MAX_REDIRECTS);
		}
	}
}

/* ------------------------------------------------------------ set-up */

/* A malloc'd message for an errmsg out-parameter. */
static char *msg_new(const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 1, 2)))
#endif
        ;

static char *msg_new(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (s) {
		va_start(ap, fmt);
		vsnprintf(s, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	return s;
}

int prov_policy_init(struct prov_policy *p, const struct parley_host *h, parley_instance *inst,
                     const char *const *media_hosts, const char *const *credential_hosts, char **errmsg)
{
	memset(p, 0, sizeof(*p));
	const char *base = h->config_str(inst, "api_base_url");
	struct url_parts u;
	char why[256];
	if (!base || url_split(base, &u, why, sizeof(why)) != 0) {
		*errmsg = msg_new("api_base_url '%s': %s; set it to the provider's https URL", base ? base : "",
		                  base ? why : "missing");
		return PARLEY_EINVAL;
	}
	snprintf(p->api_scheme, sizeof(p->api_scheme), "%s", u.scheme);
	p->api_host = strdup(u.host);
	p->api_port = u.port;
	url_parts_free(&u);
	char *json = h->config_json(inst, "media_hosts");
	cJSON *extra = json ? cJSON_Parse(json) : NULL;
	free(json);
	p->hosts = patterns_new(media_hosts, extra);
	p->cred_hosts = patterns_new(credential_hosts, NULL);
	cJSON_Delete(extra);
	if (!p->api_host || !p->hosts || !p->cred_hosts) {
		prov_policy_fini(p);
		return PARLEY_ENOMEM;
	}
	return 0;
}

void prov_policy_fini(struct prov_policy *p)
{
	free(p->api_host);
	patterns_free(p->hosts);
	patterns_free(p->cred_hosts);
	memset(p, 0, sizeof(*p));
}

int prov_policy_check_config(const struct parley_host *h, const char *config_json, char **errmsg)
{
	(void)h;
	cJSON *c = cJSON_Parse(config_json);
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(c, "media_hosts");
	const char *base = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "api_base_url"));
	int rv = 0;
	char why[256];
	struct url_parts u;
	if (base && url_split(base, &u, why, sizeof(why)) != 0) {
		*errmsg = msg_new("api_base_url '%s': %s; set it to the provider's https URL", base, why);
		rv = PARLEY_EINVAL;
	} else if (base) {
		url_parts_free(&u);
	}
	if (rv == 0 && list && !cJSON_IsArray(list)) {
		*errmsg = msg_new("media_hosts must be a list of host names");
		rv = PARLEY_EINVAL;
	}
	const cJSON *v, *entries = rv == 0 ? list : NULL;
	cJSON_ArrayForEach(v, entries)
	{
		const char *err = cJSON_IsString(v) ? pattern_error(v->valuestring) : "not a string";
		if (err) {
			*errmsg = msg_new("media_hosts entry '%s': %s (write e.g. media.example.com or *.example.net)",
			                  cJSON_IsString(v) ? v->valuestring : "?", err);
			rv = PARLEY_EINVAL;
			break;
		}
	}
	cJSON_Delete(c);
	return rv;
}

/* ------------------------------------------------------------ references */

const char *prov_ref_digits(const char *s)
{
	if (!s || !*s || strspn(s, "0123456789") != strlen(s))
		return "a media id is digits only";
	return NULL;
}

const char *prov_ref_token(const char *s)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
	if (!s || !*s || strspn(s, ok) != strlen(s))
		return "a file id has only letters, digits, '_' and '-'";
	return NULL;
}

const char *prov_ref_path(const char *s)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./";
	if (!s || !*s)
		return "an empty file path";
	if (s[0] == '/')
		return "a file path must be relative (no leading '/')";
	if (strstr(s, ".."))
		return "a file path must not contain '..'";
	if (strpbrk(s, "?#%"))
		return "a file path must not contain '?', '#' or '%'";
	if (strspn(s, ok) != strlen(s))
		return "a file path has only letters, digits, '_', '-', '.' and '/'";
	return NULL;
}
