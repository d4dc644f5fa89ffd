/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the client's check of the web server's answer to the WebSocket upgrade
 * (client/wss.c, wss_check_response; PROTOCOL.md 7.2 step 4): whatever the head, the check
 * reads only its bytes, and accepts only a 101 that carries the accept value of the key.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "wss.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		if (sodium_init() < 0)
			abort();
		ready = 1;
	}
	/* RFC 6455's example key, whose accept value is s3pPLMBiTxaQ9kYGzzhZRbK+xOo=. */
	static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
	static const char accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
	/* A copy of exactly SIZE bytes, so that a read past the head is caught by the sanitizer. */
	char *head = malloc(size > 0 ? size : 1);
	if (head == NULL)
		abort();
	memcpy(head, data, size);
	int rc = wss_check_response(head, size, key);
	if (rc != 0 && rc != CAIRN_ECONNECT)
		abort();
	if (rc == 0) {
		if (size < 12 || memcmp(head, "HTTP/1.1 101", 12) != 0)
			abort();
		char *nul = malloc(size + 1);
		if (nul == NULL)
			abort();
		memcpy(nul, head, size);
		nul[size] = '\0';
		if (strstr(nul, accept) == NULL)
			abort();
		free(nul);
	}
	free(head);
	return 0;
}
