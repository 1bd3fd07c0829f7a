/*
 * fuzz_meta.c: the POST handlers of the Meta channels (WhatsApp Cloud API,
 * Messenger, Instagram: FUZZ_META names which), with the input as the body
 * of a request carrying a correct X-Hub-Signature-256.  The account ids are
 * the fixtures', so seed inputs are the channel's own and reach envelopes.
 */
#include "fake_host.h"
#include "sign.h"

#define SECRET "fuzz-app-secret"

#if FUZZ_META == 1
#define PLUGIN "channel_whatsapp.so"
static const struct fake_kv config[] = {
        {"phone_number_id", "106540352242922"},
        {"access_token", "t"},
        {"app_secret", SECRET},
        {"verify_token", "vt"},
        {NULL, NULL},
};
#elif FUZZ_META == 2
#define PLUGIN "channel_messenger.so"
static const struct fake_kv config[] = {
        {"page_id", "1234567890"}, {"access_token", "t"}, {"app_secret", SECRET}, {"verify_token", "vt"}, {NULL, NULL},
};
#else
#define PLUGIN "channel_instagram.so"
static const struct fake_kv config[] = {
        {"page_id", "17841400000000000"},
        {"access_token", "t"},
        {"app_secret", SECRET},
        {NULL, NULL},
};
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fake_channel_open(PLUGIN, "meta", config, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	uint32_t h = fuzz_hash(data, len);
	int signed_ok = h % 16 != 0;
	char sig[128];
	sign_hmac_sha256_hex(SECRET, "sha256=", data, len, sig, sizeof(sig));
	struct fake_kv headers[] = {{"Content-Type", "application/json"},
	                            {signed_ok ? "X-Hub-Signature-256" : "X-Unsigned", sig},
	                            {NULL, NULL}};
	fake_channel_request("POST", "", data, len, headers, "", h % 8 == 1 ? PARLEY_EIO : 0, signed_ok, NULL);
	return 0;
}
