/*
 * fuzz_line.c: the LINE channel's webhook, with the input as the request
 * body and a correct X-Line-Signature: base64 of HMAC-SHA256(channel
 * secret, body).
 */
#include "crypto.h"
#include "fake_host.h"
#include <parley/provider.h>

#define SECRET "fuzz-channel-secret"

static const struct fake_kv config[] = {{"channel_secret", SECRET},
                                        {"channel_access_token", "fuzz-token"},
                                        {"bot_user_id", "Ufabcaa97871555b68aa095335975e613"},
                                        {NULL, NULL}};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fake_channel_open("channel_line.so", "ln", config, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	uint32_t h = fuzz_hash(data, len);
	int signed_ok = h % 16 != 0;
	unsigned char mac[32];
	char sig[48];
	crypto_hmac_sha256(signed_ok ? SECRET : "wrong", signed_ok ? sizeof(SECRET) - 1 : 5, data, len, mac);
	prov_base64(mac, sizeof(mac), sig);
	struct fake_kv headers[] = {{"Content-Type", "application/json"}, {"X-Line-Signature", sig}, {NULL, NULL}};
	fake_channel_request("POST", "", data, len, headers, "", h % 8 == 1 ? PARLEY_EIO : 0, signed_ok, NULL);
	return 0;
}
