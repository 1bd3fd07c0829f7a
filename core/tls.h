/*
 * tls.h: the HTTP listener's certificate and private key (http.tls), read
 * from PEM files and checked with GnuTLS, the TLS library libmicrohttpd
 * serves with, so that `parley check` refuses exactly what the listener
 * would.  Internal to the core.
 */
#ifndef PARLEY_CORE_TLS_H
#define PARLEY_CORE_TLS_H

/* A certificate chain and its key, as NUL-terminated PEM text. */
struct tls_pair {
	char *cert_pem; /* the server certificate first, then any intermediates */
	char *key_pem;
};

/* Which file a tls_pair_load() error is about. */
enum tls_culprit { TLS_CULPRIT_CERT, TLS_CULPRIT_KEY };

/*
 * Read cert_path and key_path and check that they can be served: both are
 * readable PEM, the key is not encrypted, and it is the private key of the
 * first certificate.  On success returns 0 and fills *out (free it with
 * tls_pair_free()).  On failure returns PARLEY_EIO (a file cannot be read)
 * or PARLEY_EINVAL, sets *culprit to the file at fault and *errmsg to a
 * message that names it and says what to do (malloc'd, the caller frees).
 */
int tls_pair_load(struct tls_pair *out, const char *cert_path, const char *key_path, enum tls_culprit *culprit,
                  char **errmsg);
/* Free the text of p (the struct itself is the caller's); p may be empty. */
void tls_pair_free(struct tls_pair *p);

#endif
