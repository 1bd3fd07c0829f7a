/*
 * wechat_crypt_test.c: WeChat's signature and safe-mode decryption
 * (plugins/channel/wechat/crypt.c) against the vectors of WeChat's own
 * WXBizMsgCrypt sample code (tests/fixtures/wechat/README.md).
 */
#include "test.h"

#include "wechat.h"

#define KEY "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
/* The sample's "我是中文abcd123", random "aaaabbbbccccdddd", appid wxb11529c136998cb6. */
#define CT1 "jn1L23DB+6ELqJ+6bruv21Y6MD7KeIfP82D6gU39rmkgczbWwt5+3bnyg5K55bgVtVzd832WzZGMhkP72vVOfg=="
/* The sample's inbound text message, appid wx2c2769f8efd9abc2. */
#define CT2                                                                                                            \
	"hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9" \
	"FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3y" \
	"t+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v" \
	"6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="

int main(void)
{
	unsigned char key[32];
	CHECK(wechat_aes_key(KEY, key) == 0);
	/* The base64 of "abcd...EFG=": 0x69 first, 0x51 last. */
	CHECK(key[0] == 0x69 && key[31] == 0x51);
	CHECK(wechat_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDEF", key) != 0); /* 42 characters */
	CHECK(wechat_aes_key("abcdefghijklmnopqrstuvwxyz0123456789ABCDE!G", key) != 0);
	CHECK(wechat_aes_key(KEY, key) == 0);

	char hex[41];
	const char *parts[] = {"spamtest", "1409735669", "1320562132", CT2};
	wechat_signature(parts, 4, hex);
	CHECK(strcmp(hex, "5d197aaffba7e9b25a30732f161a50dee96bd5fa") == 0);

	char *msg = NULL, why[200];
	size_t len = 0;
	CHECK(wechat_decrypt(key, CT1, "wxb11529c136998cb6", &msg, &len, why, sizeof(why)) == 0);
	CHECK(msg && len == strlen("我是中文abcd123") && strcmp(msg, "我是中文abcd123") == 0);
	free(msg);
	CHECK(wechat_decrypt(key, CT2, "wx2c2769f8efd9abc2", &msg, &len, why, sizeof(why)) == 0);
	CHECK_CONTAINS(msg, "<Content><![CDATA[abcdteT]]></Content>");
	free(msg);

	/* Another appid, not base64, not whole blocks, the wrong key: refused, each saying why. */
	CHECK(wechat_decrypt(key, CT1, "wx2c2769f8efd9abc2", &msg, &len, why, sizeof(why)) != 0 && !msg);
	CHECK_CONTAINS(why, "appid");
	CHECK(wechat_decrypt(key, "not*base64==", "wxb11529c136998cb6", &msg, &len, why, sizeof(why)) != 0);
	CHECK_CONTAINS(why, "base64");
	CHECK(wechat_decrypt(key, "AAAAAAAAAAAAAAAAAAAAAA==", "wxb11529c136998cb6", &msg, &len, why, sizeof(why)) != 0);
	CHECK_CONTAINS(why, "32-byte");
	unsigned char other[32] = {1};
	CHECK(wechat_decrypt(other, CT1, "wxb11529c136998cb6", &msg, &len, why, sizeof(why)) != 0 && !msg);
	TEST_DONE();
}
