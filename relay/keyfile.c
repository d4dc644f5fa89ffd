/* SPDX-License-Identifier: MIT */
/*
 * The relay's key file. Format, one line of text so an operator can tell it apart from other
 * files and a later format can be introduced beside it:
 *
 *     cairn-relay-key-v1 <the 32-byte X25519 private key, base64url without padding>\n
 *
 * The public key is not stored: it is derived on load, so the two can never disagree.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "fsutil.h"
#include "cairn/error.h"
#include "keyfile.h"

#define KEY_TAG      "cairn-relay-key-v1 "
#define KEY_TAG_LEN  (sizeof(KEY_TAG) - 1)
#define KEY_B64_LEN  43                              /* 32 bytes, base64url, no padding */
#define KEY_LINE_LEN (KEY_TAG_LEN + KEY_B64_LEN + 1) /* with the newline */

int relay_key_generate(const char *path, char *err, size_t errcap)
{
	uint8_t priv[CAIRN_KEY_LEN], pub[CAIRN_KEY_LEN];
	char line[KEY_LINE_LEN + 1];
	int rc = CAIRN_EIO, fd = -1;
	bool created = false;

	if (errcap > 0)
		err[0] = '\0';
	/* A private key whose public key is degenerate would be refused on load; draw again. */
	do {
		randombytes_buf(priv, sizeof(priv));
	} while (crypto_scalarmult_base(pub, priv) != 0);

	memcpy(line, KEY_TAG, KEY_TAG_LEN);
	sodium_bin2base64(line + KEY_TAG_LEN, KEY_B64_LEN + 1, priv, sizeof(priv),
	                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	line[KEY_LINE_LEN - 1] = '\n';
	line[KEY_LINE_LEN] = '\0';

	/* O_EXCL: an existing key is the relay's identity and is never replaced. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST)
			snprintf(err, errcap,
			         "%s already exists; it is this relay's identity and is never "
			         "overwritten",
			         path);
		else
			snprintf(err, errcap, "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	created = true;
	if (fs_write_all(fd, line, KEY_LINE_LEN) != 0 || fsync(fd) != 0) {
		snprintf(err, errcap, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		snprintf(err, errcap, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc != 0 && created)
		unlink(path); /* a half-written key would only be refused later */
	sodium_memzero(priv, sizeof(priv));
	sodium_memzero(line, sizeof(line));
	return rc;
}

int relay_key_load(const char *path, uint8_t private_key[static CAIRN_KEY_LEN],
                   uint8_t public_key[static CAIRN_KEY_LEN], char *err, size_t errcap)
{
	/* One byte more than a valid file, to tell "too long" from "just right". */
	char buf[KEY_LINE_LEN + 2];
	size_t len = 0, bin_len = 0;
	const char *end = NULL;
	int rc = CAIRN_EIO;
	struct stat st;

	if (errcap > 0)
		err[0] = '\0';
	sodium_memzero(private_key, CAIRN_KEY_LEN);
	sodium_memzero(public_key, CAIRN_KEY_LEN);

	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT)
			snprintf(err, errcap,
			         "%s does not exist; run 'cairn-relay init --data DIR' first",
			         path);
		else
			snprintf(err, errcap, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		snprintf(err, errcap, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errcap, "%s is not a regular file", path);
		rc = CAIRN_EINVAL;
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errcap,
		         "%s is readable by group/others (mode %04o); run chmod 600 %s, and if "
		         "others may have read it, create a new relay identity",
		         path, (unsigned)(st.st_mode & 07777), path);
		rc = CAIRN_EINVAL;
		goto out;
	}
	while (len < sizeof(buf)) {
		ssize_t r = read(fd, buf + len, sizeof(buf) - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errcap, "cannot read %s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}

	rc = CAIRN_EINVAL;
	/* The trailing newline is optional, so that an editor that drops it does no harm. */
	bool shape_ok =
	    (len == KEY_LINE_LEN && buf[KEY_LINE_LEN - 1] == '\n') || len == KEY_LINE_LEN - 1;
	if (!shape_ok || memcmp(buf, KEY_TAG, KEY_TAG_LEN) != 0 ||
	    sodium_base642bin(private_key, CAIRN_KEY_LEN, buf + KEY_TAG_LEN, KEY_B64_LEN, NULL,
	                      &bin_len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    bin_len != CAIRN_KEY_LEN || end != buf + KEY_TAG_LEN + KEY_B64_LEN) {
		snprintf(err, errcap,
		         "%s is not a cairn-relay key file (expected one line: "
		         "'cairn-relay-key-v1 <key>')",
		         path);
		goto out;
	}
	if (crypto_scalarmult_base(public_key, private_key) != 0) {
		snprintf(err, errcap, "%s holds an unusable key", path);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	sodium_memzero(buf, sizeof(buf));
	if (rc != 0) {
		sodium_memzero(private_key, CAIRN_KEY_LEN);
		sodium_memzero(public_key, CAIRN_KEY_LEN);
	}
	return rc;
}
