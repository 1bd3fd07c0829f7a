/*
 * fuzz_viber.c: the Viber channel's webhook, with the input as the
 * callback body and a correct X-Viber-Content-Signature: hex of
 * HMAC-SHA256(auth token, body).
 */
#include "fake_host.h"
#include "sign.h"

#define TOKEN "fuzz-auth-token"

static const struct fake_kv config[] = {{"auth_token", TOKEN}, {"sender_name", "Fuzz"}, {NULL, NULL}};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fake_channel_open("channel_viber.so", "vb", config, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	uint32_t h = fuzz_hash(data, len);
	int signed_ok = h % 16 != 0;
	char sig[80];
	sign_hmac_sha256_hex(signed_ok ? TOKEN : "wrong", "", data, len, sig, sizeof(sig));
	struct fake_kv headers[] = {
	        {"Content-Type", "application/json"}, {"X-Viber-Content-Signature", sig}, {NULL, NULL}};
	fake_channel_request("POST", "", data, len, headers, "", h % 8 == 1 ? PARLEY_EIO : 0, signed_ok, NULL);
	return 0;
}
