/*
 * crypt.c: WeChat's message signatures and its safe mode (the "message
 * encryption and decryption" guide of the Official Account platform):
 * SHA1 over the sorted, joined strings; AES-256-CBC with the key from the
 * EncodingAESKey, its first 16 bytes as IV, PKCS#7 padding to multiples of
 * 32 bytes, plaintext random(16) + msg_len(4, network order) + msg + appid.
 */
#include "wechat.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void wechat_signature(const char *const *parts, size_t n, char hex[41])
{
	const char *sorted[8];
	if (n > 8)
		n = 8;
	memcpy(sorted, parts, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[20];
	unsigned int mdlen = 0;
	EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
	for (size_t i = 0; i < n; i++)
		EVP_DigestUpdate(ctx, sorted[i], strlen(sorted[i]));
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < 20; i++) {
		hex[2 * i] = digits[md[i] >> 4];
		hex[2 * i + 1] = digits[md[i] & 15];
	}
	hex[40] = '\0';
}

int wechat_signature_ok(const struct parley_host *h, const char *given, const char *const *parts, size_t n)
{
	char want[41];
	if (!given || strlen(given) != 40)
		return 0;
	wechat_signature(parts, n, want);
	return h->ct_equal(given, want, 40);
}

/* Standard base64 decoded into a malloc'd buffer; -1 when s is not base64 (length, alphabet, padding). */
static int b64_decode(const char *s, unsigned char **out, size_t *outlen)
{
	size_t n = strlen(s);
	if (n == 0 || n % 4 != 0 || n > (1u << 26))
		return -1;
	size_t pad = (s[n - 1] == '=') + (n > 1 && s[n - 2] == '=');
	for (size_t i = 0; i < n - pad; i++)
		if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", s[i]) || !s[i])
			return -1;
	unsigned char *buf = malloc(n / 4 * 3 + 1);
	if (!buf)
		return -1;
	int got = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n);
	if (got < 0 || (size_t)got < pad) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = (size_t)got - pad;
	return 0;
}

int wechat_aes_key(const char *encoding_key, unsigned char key[32])
{
	char padded[WECHAT_KEY_LEN + 2];
	if (!encoding_key || strlen(encoding_key) != WECHAT_KEY_LEN)
		return -1;
	snprintf(padded, sizeof(padded), "%s=", encoding_key);
	unsigned char *raw;
	size_t n;
	if (b64_decode(padded, &raw, &n) != 0)
		return -1;
	int ok = n == 32;
	if (ok)
		memcpy(key, raw, 32);
	free(raw);
	return ok ? 0 : -1;
}

int wechat_decrypt(const unsigned char key[32], const char *b64, const char *app_id, char **msg, size_t *len, char *why,
                   size_t why_len)
{
	unsigned char *ct, *pt = NULL;
	size_t n;
	*msg = NULL;
	if (b64_decode(b64, &ct, &n) != 0) {
		snprintf(why, why_len, "Encrypt is not base64");
		return -1;
	}
	int rv = -1, outl = 0, finl = 0;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (n == 0 || n % 32 != 0) {
		snprintf(why, why_len, "Encrypt is not whole 32-byte blocks");
		goto out;
	}
	pt = malloc(n + 32);
	if (!pt || !ctx || EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, key, key) != 1 ||
	    EVP_CIPHER_CTX_set_padding(ctx, 0) != 1 || EVP_DecryptUpdate(ctx, pt, &outl, ct, (int)n) != 1 ||
	    EVP_DecryptFinal_ex(ctx, pt + outl, &finl) != 1) {
		snprintf(why, why_len, "Encrypt does not decrypt with the encoding_aes_key");
		goto out;
	}
	size_t total = (size_t)outl + (size_t)finl, pad = total ? pt[total - 1] : 0;
	for (size_t i = 1; pad >= 1 && pad <= 32 && i <= pad; i++)
		if (pt[total - i] != pad)
			pad = 0;
	if (pad < 1 || pad > 32 || total < pad + 20) {
		snprintf(why, why_len, "Encrypt does not decrypt with the encoding_aes_key (bad padding)");
		goto out;
	}
	total -= pad;
	size_t mlen = (size_t)pt[16] << 24 | (size_t)pt[17] << 16 | (size_t)pt[18] << 8 | pt[19];
	if (mlen > total - 20) {
		snprintf(why, why_len, "Encrypt's message length is beyond its end");
		goto out;
	}
	size_t idlen = total - 20 - mlen;
	if (idlen != strlen(app_id) || memcmp(pt + 20 + mlen, app_id, idlen) != 0) {
		snprintf(why, why_len, "the encrypted message is for another appid than this channel's app_id");
		goto out;
	}
	*msg = malloc(mlen + 1);
	if (!*msg) {
		snprintf(why, why_len, "out of memory");
		goto out;
	}
	memcpy(*msg, pt + 20, mlen);
	(*msg)[mlen] = '\0';
	*len = mlen;
	rv = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	free(ct);
	free(pt);
	return rv;
}
