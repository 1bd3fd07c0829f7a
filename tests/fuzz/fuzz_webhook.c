/*
 * fuzz_webhook.c: the generic webhook channel's POST handler, with the
 * input as the body of a correctly signed request (X-Parley-Signature).
 */
#include "fake_host.h"
#include "sign.h"

#define SECRET "fuzz-secret"

static const struct fake_kv config[] = {{"secret", SECRET}, {NULL, NULL}};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fake_channel_open("channel_webhook.so", "hooks", config, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	/* The hash picks, the same way for the same input: a store failure now and then, an unsigned request rarely. */
	uint32_t h = fuzz_hash(data, len);
	int signed_ok = h % 16 != 0;
	char sig[128];
	sign_hmac_sha256_hex(SECRET, "sha256=", data, len, sig, sizeof(sig));
	struct fake_kv headers[] = {{"Content-Type", "application/json"},
	                            {signed_ok ? "X-Parley-Signature" : "X-Unsigned", sig},
	                            {NULL, NULL}};
	fake_channel_request("POST", "", data, len, headers, "", h % 8 == 1 ? PARLEY_EIO : 0, signed_ok, NULL);
	return 0;
}
