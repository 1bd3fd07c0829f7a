/*
 * fuzz_twilio.c: the Twilio channel's webhook, with the input as the
 * form-encoded body and a correct X-Twilio-Signature: base64 of
 * HMAC-SHA1(auth token, public URL + path + every parameter's name and
 * value, sorted by name).  Parameters of the same name keep their order
 * (a stable sort, like glibc's qsort for arrays this small).
 */
#include "crypto.h"
#include "fake_host.h"

#include <parley/provider.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN      "fuzz-auth-token"
#define PUBLIC_URL "https://parley.example.com"

static const struct fake_kv config[] = {
        {"account_sid", "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"},
        {"auth_token", TOKEN},
        {"from", "+14155550100"},
        {NULL, NULL},
};
static const struct fake_kv settings[] = {{"http.public_url", PUBLIC_URL}, {NULL, NULL}};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fake_channel_open("channel_twilio.so", "sms", config, settings);
	return 0;
}

/* The signature Twilio would send for this body; 0 when the body is no form at all. */
static int twilio_signature(const uint8_t *data, size_t len, char out[32])
{
	struct prov_form f;
	if (prov_form_parse((const char *)data, len, &f) != 0)
		return 0;
	size_t *order = calloc(f.n + 1, sizeof(*order));
	for (size_t i = 0; i < f.n; i++) {
		size_t k = i;
		while (k > 0 && strcmp(f.names[order[k - 1]], f.names[i]) > 0) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
	}
	char path[256];
	char *text = NULL;
	size_t text_len = 0;
	FILE *m = open_memstream(&text, &text_len);
	fprintf(m, "%s%s", PUBLIC_URL, fake_channel_path("", path, sizeof(path)));
	for (size_t i = 0; i < f.n; i++)
		fprintf(m, "%s%s", f.names[order[i]], f.values[order[i]]);
	fclose(m);
	unsigned char mac[20];
	crypto_hmac_sha1(TOKEN, strlen(TOKEN), text, text_len, mac);
	prov_base64(mac, sizeof(mac), out);
	free(text);
	free(order);
	prov_form_free(&f);
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	uint32_t h = fuzz_hash(data, len);
	char sig[32] = "";
	int signed_ok = h % 16 != 0 && twilio_signature(data, len, sig);
	struct fake_kv headers[] = {{"Content-Type", "application/x-www-form-urlencoded"},
	                            {signed_ok ? "X-Twilio-Signature" : "X-Unsigned", sig},
	                            {NULL, NULL}};
	fake_channel_request("POST", "", data, len, headers, "", h % 8 == 1 ? PARLEY_EIO : 0, signed_ok, NULL);
	return 0;
}
