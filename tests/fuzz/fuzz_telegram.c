/*
 * fuzz_telegram.c: the Telegram channel's webhook (mode webhook), with the
 * input as an Update and the configured X-Telegram-Bot-Api-Secret-Token.
 */
#include "fake_host.h"

#define SECRET "fuzz-secret-token"

static const struct fake_kv config[] = {{"token", "123:abc"}, {"secret_token", SECRET}, {NULL, NULL}};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fake_channel_open("channel_telegram.so", "tg", config, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	uint32_t h = fuzz_hash(data, len);
	int signed_ok = h % 16 != 0;
	struct fake_kv headers[] = {{"Content-Type", "application/json"},
	                            {"X-Telegram-Bot-Api-Secret-Token", signed_ok ? SECRET : "wrong"},
	                            {NULL, NULL}};
	fake_channel_request("POST", "", data, len, headers, "", h % 8 == 1 ? PARLEY_EIO : 0, signed_ok, NULL);
	return 0;
}
