/* fetch_policy_test.c: the media fetch policy's URL, address and reference checks (sdk/lib/fetch_policy.c). */
#include "test.h"

#include <parley/fetch_policy.h>

#include <arpa/inet.h>

static char *hosts[] = {"api.twilio.com", "*.twiliocdn.com", "media.example.com:8443", NULL};
static char *cred_hosts[] = {"api.twilio.com", NULL};

/* A Twilio-like channel whose api_base_url is the local fake provider. */
static const struct prov_policy policy = {"http", "127.0.0.1", 8080, hosts, cred_hosts};

/* 0 when allowed; hop and why filled in. */
static int check(const char *url, struct prov_hop *hop, char *why)
{
	return prov_policy_check(&policy, url, hop, why, 256);
}

static void urls(void)
{
	struct prov_hop hop;
	char why[256];

	/* The API's own origin: http allowed, credentials given. */
	CHECK(check("http://127.0.0.1:8080/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", &hop, why) == 0);
	CHECK(hop.api_origin && hop.credentials && !hop.https);
	/* Same host, another port: an internal service, not the API. */
	CHECK(check("http://127.0.0.1:9999/steal", &hop, why) != 0);
	CHECK_CONTAINS(why, "plain http");
	CHECK(check("https://127.0.0.1:8080/x", &hop, why) != 0);
	CHECK_CONTAINS(why, "not a media host");

	/* Documented hosts: credentials only to the API host, never to the CDN. */
	CHECK(check("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", &hop, why) == 0);
	CHECK(!hop.api_origin && hop.credentials);
	CHECK(check("https://mms.twiliocdn.com/AC1/abc", &hop, why) == 0);
	CHECK(!hop.credentials);
	CHECK(check("https://MMS.TwilioCDN.com/AC1/abc", &hop, why) == 0);
	CHECK(check("https://twiliocdn.com/x", &hop, why) != 0);
	CHECK(check("https://eviltwiliocdn.com/x", &hop, why) != 0);
	CHECK(check("https://api.twilio.com.evil.example/x", &hop, why) != 0);
	CHECK(check("http://api.twilio.com/x", &hop, why) != 0);
	CHECK(check("https://api.twilio.com:8443/x", &hop, why) != 0);
	CHECK(check("https://media.example.com:8443/x", &hop, why) == 0);
	CHECK(!hop.credentials);
	CHECK(check("https://media.example.com/x", &hop, why) != 0);

	/* Schemes other than http(s), user info, junk. */
	CHECK(check("gopher://127.0.0.1:70/_stats", &hop, why) != 0);
	CHECK_CONTAINS(why, "scheme 'gopher'");
	CHECK(check("file:///etc/passwd", &hop, why) != 0);
	CHECK_CONTAINS(why, "scheme 'file'");
	CHECK(check("dict://127.0.0.1:11211/stats", &hop, why) != 0);
	CHECK(check("https://user:pw@api.twilio.com/x", &hop, why) != 0);
	CHECK_CONTAINS(why, "user name");
	CHECK(check("/relative/path", &hop, why) != 0);
	CHECK(check("", &hop, why) != 0);
	CHECK(check("https://169.254.169.254/latest/meta-data/", &hop, why) != 0);
}

static int public4(const char *ip)
{
	struct sockaddr_in a = {0};
	a.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &a.sin_addr);
	return prov_addr_is_public((struct sockaddr *)&a);
}

static int public6(const char *ip)
{
	struct sockaddr_in6 a = {0};
	a.sin6_family = AF_INET6;
	inet_pton(AF_INET6, ip, &a.sin6_addr);
	return prov_addr_is_public((struct sockaddr *)&a);
}

static void addresses(void)
{
	static const char *const internal4[] = {"127.0.0.1",       "127.1.2.3",       "10.0.0.1",        "172.16.0.1",
	                                        "172.31.255.255",  "192.168.1.1",     "169.254.169.254", "100.64.0.1",
	                                        "100.127.255.254", "0.0.0.0",         "0.1.2.3",         "224.0.0.1",
	                                        "239.255.255.250", "255.255.255.255", "240.0.0.1",       NULL};
	for (size_t i = 0; internal4[i]; i++) {
		if (public4(internal4[i])) {
			fprintf(stderr, "%s taken for public\n", internal4[i]);
			test_failures++;
		}
	}
	CHECK(public4("93.184.216.34"));
	CHECK(public4("172.32.0.1"));
	CHECK(public4("100.128.0.1"));
	CHECK(public4("8.8.8.8"));

	static const char *const internal6[] = {"::",
	                                        "::1",
	                                        "fc00::1",
	                                        "fd12:3456::1",
	                                        "fe80::1",
	                                        "febf::1",
	                                        "ff02::1",
	                                        "::ffff:127.0.0.1",
	                                        "::ffff:10.0.0.1",
	                                        "::127.0.0.1",
	                                        "64:ff9b::a9fe:a9fe",
	                                        "2002:7f00:1::1",
	                                        "2001:db8::1",
	                                        NULL};
	for (size_t i = 0; internal6[i]; i++) {
		if (public6(internal6[i])) {
			fprintf(stderr, "%s taken for public\n", internal6[i]);
			test_failures++;
		}
	}
	CHECK(public6("2a03:2880:f10c:83:face:b00c::25de"));
	CHECK(public6("::ffff:93.184.216.34"));
}

static void references(void)
{
	CHECK(prov_ref_digits("1003383421387256") == NULL);
	CHECK(prov_ref_digits("../../x?") != NULL);
	CHECK(prov_ref_digits("12a") != NULL);
	CHECK(prov_ref_digits("") != NULL);
	CHECK(prov_ref_token("AgACAgIAAxkBAAIBsmal-large_1") == NULL);
	CHECK(prov_ref_token("abc/../x") != NULL);
	CHECK(prov_ref_token("a%2e") != NULL);
	CHECK(prov_ref_path("photos/file_7.jpg") == NULL);
	CHECK(prov_ref_path("documents/file_12.tar.gz") == NULL);
	CHECK(prov_ref_path("../x") != NULL);
	CHECK(prov_ref_path("photos/../../x") != NULL);
	CHECK(prov_ref_path("/etc/passwd") != NULL);
	CHECK(prov_ref_path("photos/a.jpg?x=1") != NULL);
	CHECK(prov_ref_path("photos/a.jpg#x") != NULL);
	CHECK(prov_ref_path("photos/%2e%2e/x") != NULL);
	CHECK(prov_ref_path("photos/a b.jpg") != NULL);

	/* Refusals quote references from payloads: they must not forge log lines. */
	struct prov_http out;
	CHECK(prov_fetch_refuse(&out, "media id '%s': bad", "1\n2026-12-01 error [core] forged") == PROV_FETCH_REFUSED);
	CHECK(strchr(out.error, '\n') == NULL && out.status == 0 && out.body && out.body[0] == '\0');
	prov_http_free(&out);
}

static void config(void)
{
	char *err = NULL;
	CHECK(prov_policy_check_config(NULL, "{\"media_hosts\": [\"media.example.com\", \"*.cdn.example.net:8443\"]}",
	                               &err) == 0);
	CHECK(prov_policy_check_config(NULL, "{}", &err) == 0);
	CHECK(prov_policy_check_config(NULL, "{\"media_hosts\": [\"https://media.example.com/x\"]}", &err) != 0);
	CHECK_CONTAINS(err, "media_hosts entry 'https://media.example.com/x'");
	free(err);
	err = NULL;
	CHECK(prov_policy_check_config(NULL, "{\"media_hosts\": [\"media.example.com:99999\"]}", &err) != 0);
	free(err);
	err = NULL;
	CHECK(prov_policy_check_config(NULL, "{\"api_base_url\": \"not a url\"}", &err) != 0);
	CHECK_CONTAINS(err, "api_base_url");
	free(err);
}

int main(void)
{
	urls();
	addresses();
	references();
	config();
	TEST_DONE();
}
