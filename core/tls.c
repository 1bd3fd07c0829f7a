/*
 * tls.c: reading and checking http.tls's certificate and key.
 *
 * The listener serves TLS through libmicrohttpd, which uses GnuTLS; the
 * checks here use GnuTLS too, so a pair that passes `parley check` is one
 * the listener loads, and no second TLS library has to agree with it.
 */
#include "tls.h"
#include "util.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <parley/parley.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A certificate chain or key larger than this is not a PEM file we were meant to read. */
#define PEM_MAX (1024 * 1024)

static int read_pem(const char *path, const char *what, char **out, char **errmsg)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		*errmsg = str_printf("http.tls.%s '%s' cannot be read: %s (give the path of a PEM file the gateway's "
		                     "user can read; relative paths are relative to the config file)",
		                     what, path, strerror(errno));
		return PARLEY_EIO;
	}
	struct strbuf sb;
	sb_init(&sb);
	char buf[8192];
	size_t got;
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0 && sb.len <= PEM_MAX)
		sb_add(&sb, buf, got);
	int failed = ferror(f);
	fclose(f);
	if (failed || sb.len > PEM_MAX) {
		*errmsg = str_printf("http.tls.%s '%s' %s", what, path,
		                     failed ? "cannot be read" : "is over 1 MiB: it is not a PEM file");
		sb_free(&sb);
		return failed ? PARLEY_EIO : PARLEY_EINVAL;
	}
	*out = sb_detach(&sb); /* NUL-terminated, "" when the file is empty */
	if (!*out)
		return PARLEY_ENOMEM;
	return 0;
}

static int check_cert(const char *path, const char *pem, char **errmsg)
{
	gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
	gnutls_x509_crt_t *certs = NULL;
	unsigned n = 0;
	int rv = gnutls_x509_crt_list_import2(&certs, &n, &d, GNUTLS_X509_FMT_PEM, 0);
	for (unsigned i = 0; rv >= 0 && i < n; i++)
		gnutls_x509_crt_deinit(certs[i]);
	gnutls_free(certs);
	if (rv < 0 || n == 0) {
		*errmsg = str_printf("http.tls.cert '%s' holds no PEM certificate (%s): give the server certificate "
		                     "as '-----BEGIN CERTIFICATE-----', followed by any intermediates",
		                     path, rv < 0 ? gnutls_strerror(rv) : "none found");
		return PARLEY_EINVAL;
	}
	return 0;
}

static int check_key(const char *path, const char *pem, char **errmsg)
{
	if (strstr(pem, "ENCRYPTED")) {
		*errmsg = str_printf("http.tls.key '%s' is encrypted: the gateway starts unattended, so give it the "
		                     "key without a passphrase (e.g. `openssl pkey -in KEY -out KEY.plain`) and "
		                     "make that file readable by the gateway's user only",
		                     path);
		return PARLEY_EINVAL;
	}
	gnutls_x509_privkey_t key;
	if (gnutls_x509_privkey_init(&key) < 0)
		return PARLEY_ENOMEM;
	gnutls_datum_t d = {(unsigned char *)pem, (unsigned)strlen(pem)};
	int rv = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_x509_privkey_deinit(key);
	if (rv < 0) {
		*errmsg = str_printf("http.tls.key '%s' holds no PEM private key (%s): give the key the certificate "
		                     "was made for, '-----BEGIN PRIVATE KEY-----'",
		                     path, gnutls_strerror(rv));
		return PARLEY_EINVAL;
	}
	return 0;
}

/* The credentials the listener will build: this is where a key that is not the certificate's shows. */
static int check_pair(const struct tls_pair *p, const char *cert_path, const char *key_path, char **errmsg)
{
	gnutls_certificate_credentials_t cred;
	if (gnutls_certificate_allocate_credentials(&cred) < 0)
		return PARLEY_ENOMEM;
	gnutls_datum_t c = {(unsigned char *)p->cert_pem, (unsigned)strlen(p->cert_pem)};
	gnutls_datum_t k = {(unsigned char *)p->key_pem, (unsigned)strlen(p->key_pem)};
	int rv = gnutls_certificate_set_x509_key_mem2(cred, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_certificate_free_credentials(cred);
	if (rv == GNUTLS_E_CERTIFICATE_KEY_MISMATCH) {
		*errmsg = str_printf("http.tls.key '%s' is not the private key of the certificate in '%s': give the "
		                     "key that certificate was made for",
		                     key_path, cert_path);
		return PARLEY_EINVAL;
	}
	if (rv < 0) {
		*errmsg = str_printf("http.tls.cert '%s' and key '%s' cannot be served: %s", cert_path, key_path,
		                     gnutls_strerror(rv));
		return PARLEY_EINVAL;
	}
	return 0;
}

int tls_pair_load(struct tls_pair *out, const char *cert_path, const char *key_path, enum tls_culprit *culprit,
                  char **errmsg)
{
	struct tls_pair p = {NULL, NULL};
	*culprit = TLS_CULPRIT_CERT;
	int rv = read_pem(cert_path, "cert", &p.cert_pem, errmsg);
	if (rv == 0)
		rv = check_cert(cert_path, p.cert_pem, errmsg);
	if (rv == 0) {
		*culprit = TLS_CULPRIT_KEY;
		rv = read_pem(key_path, "key", &p.key_pem, errmsg);
	}
	if (rv == 0)
		rv = check_key(key_path, p.key_pem, errmsg);
	if (rv == 0)
		rv = check_pair(&p, cert_path, key_path, errmsg);
	if (rv != 0) {
		tls_pair_free(&p);
		return rv;
	}
	*out = p;
	return 0;
}

void tls_pair_free(struct tls_pair *p)
{
	if (!p)
		return;
	/* The key is a secret: do not leave it in freed memory. */
	if (p->key_pem)
		explicit_bzero(p->key_pem, strlen(p->key_pem));
	free(p->key_pem);
	free(p->cert_pem);
	p->key_pem = p->cert_pem = NULL;
}
