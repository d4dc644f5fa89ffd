/* SPDX-License-Identifier: MIT */
/*
 * The certificate pin of a cairn+https address, computed with OpenSSL: the same bytes the
 * client hashes when it checks the web server's certificate (PROTOCOL.md 7.2 step 2).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "certpin.h"

int certpin_from_pem(const char *path, uint8_t pin[static CAIRN_PIN_LEN], char *err, size_t errcap)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		snprintf(err, errcap, "%s: cannot open: %s", path, strerror(errno));
		return CAIRN_EIO;
	}
	X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (cert == NULL) {
		snprintf(err, errcap, "%s: no PEM certificate in it", path);
		return CAIRN_EINVAL;
	}
	unsigned char *der = NULL;
	int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	unsigned md_len = 0;
	int rc = CAIRN_EINVAL;
	if (len > 0 && EVP_Digest(der, (size_t)len, pin, &md_len, EVP_sha256(), NULL) == 1 &&
	    md_len == CAIRN_PIN_LEN)
		rc = 0;
	else
		snprintf(err, errcap, "%s: cannot hash the certificate's public key", path);
	OPENSSL_free(der);
	X509_free(cert);
	return rc;
}
