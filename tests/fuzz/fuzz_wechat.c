/*
 * fuzz_wechat.c: the WeChat channel's server URL (plain mode): the input is
 * the XML body, the query carries a valid signature (or, for one input in
 * sixteen, a wrong one, which must be 401 with nothing submitted).  The
 * signature covers only the token, timestamp and nonce, so it is fixed:
 * SHA1("1700000000" "fuzz-token" "fuzznonce"), the three sorted.
 */
#include "fake_host.h"

static const struct fake_kv config[] = {{"app_id", "wxfuzz"},
                                        {"app_secret", "fuzz-secret"},
                                        {"token", "fuzz-token"},
                                        {"api_base_url", "http://127.0.0.1:9"},
                                        {NULL, NULL}};

#define QUERY "timestamp=1700000000&nonce=fuzznonce&openid=o1&signature="

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	fake_channel_open("channel_wechat.so", "wx", config, NULL);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	uint32_t h = fuzz_hash(data, len);
	int signed_ok = h % 16 != 0;
	struct fake_kv headers[] = {{"Content-Type", "text/xml"}, {NULL, NULL}};
	const char *query = signed_ok ? QUERY "67c9dc459fa0a600456e19e76d9809773532a236"
	                              : QUERY "0000000000000000000000000000000000000000";
	fake_channel_request("POST", "", data, len, headers, query, h % 8 == 1 ? PARLEY_EIO : 0, signed_ok, NULL);
	return 0;
}
