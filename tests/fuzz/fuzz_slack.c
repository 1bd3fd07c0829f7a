/*
 * fuzz_slack.c: both POST routes of the Slack channel (Events API JSON at
 * "", interactivity's form-encoded payload= at "/interactive"), each with
 * the input as body, a current X-Slack-Request-Timestamp and the v0
 * signature over "v0:<timestamp>:<body>".
 */
#include "fake_host.h"
#include "sign.h"

#include <stdlib.h>
#include <time.h>

#define SECRET "fuzz-signing-secret"

static const struct fake_kv config[] = {{"bot_token", "xoxb-fuzz"}, {"signing_secret", SECRET}, {NULL, NULL}};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fake_channel_open("channel_slack.so", "slack", config, NULL);
	return 0;
}

static void post(const char *subpath, const char *type, const uint8_t *data, size_t len, uint32_t h)
{
	/* Slack refuses timestamps more than five minutes away, so the signed timestamp is now. */
	char ts[32], sig[128];
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	size_t n = strlen(ts) + 4 + len;
	char *base = malloc(n);
	snprintf(base, n, "v0:%s:", ts);
	memcpy(base + strlen(ts) + 4, data, len);
	sign_hmac_sha256_hex(SECRET, "v0=", base, n, sig, sizeof(sig));
	free(base);
	int signed_ok = h % 16 != 0;
	struct fake_kv headers[] = {{"Content-Type", type},
	                            {"X-Slack-Request-Timestamp", ts},
	                            {signed_ok ? "X-Slack-Signature" : "X-Unsigned", sig},
	                            {NULL, NULL}};
	fake_channel_request("POST", subpath, data, len, headers, "", h % 8 == 1 ? PARLEY_EIO : 0, signed_ok, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	uint32_t h = fuzz_hash(data, len);
	post("", "application/json", data, len, h);
	post("/interactive", "application/x-www-form-urlencoded", data, len, h >> 4);
	return 0;
}
