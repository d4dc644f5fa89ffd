/* SPDX-License-Identifier: MIT */
/*
 * The relay's cairn+https address from its [https] settings (httpsaddr.h). The address parser
 * and formatter decide what is valid: the host and port are read as a direct address's, the
 * path by a round trip through the formatter and the parser.
 */
#include <stdio.h>
#include <string.h>

#include "httpsaddr.h"

int https_address_build(const char *public_hostport, const char *path,
                        const uint8_t key[static CAIRN_KEY_LEN], struct cairn_address *a)
{
	/* The host and port as the address parser reads them, under a zero key (43 'A's). */
	char text[CAIRN_ADDRESS_MAX + 2];
	int n = snprintf(text, sizeof(text),
	                 "cairn://AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@%s", public_hostport);
	size_t len = strlen(path);
	if (n <= 0 || (size_t)n >= sizeof(text) || cairn_address_parse(text, a) != 0 || len == 0 ||
	    len >= sizeof(a->path))
		return CAIRN_EADDRESS;
	memcpy(a->key, key, CAIRN_KEY_LEN);
	a->transport = CAIRN_TRANSPORT_HTTPS;
	memcpy(a->path, path, len + 1);
	struct cairn_address back;
	if (cairn_address_format(a, text, sizeof(text)) != 0 ||
	    cairn_address_parse(text, &back) != 0 || strcmp(back.path, path) != 0)
		return CAIRN_EADDRESS;
	return 0;
}
