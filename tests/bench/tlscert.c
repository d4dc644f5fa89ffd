/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "relayctl.h"
#include "tlscert.h"

#define OPENSSL_BIN "/usr/bin/openssl"

int tlscert_make(const char *dir, char *cert, size_t cert_cap, char *key, size_t key_cap)
{
	char log[320];
	snprintf(cert, cert_cap, "%s/cert.pem", dir);
	snprintf(key, key_cap, "%s/key.pem", dir);
	snprintf(log, sizeof(log), "%s/openssl.log", dir);
	char *const argv[] = {OPENSSL_BIN,
	                      "req",
	                      "-x509",
	                      "-newkey",
	                      "ec",
	                      "-pkeyopt",
	                      "ec_paramgen_curve:P-256",
	                      "-nodes",
	                      "-days",
	                      "2",
	                      "-subj",
	                      "/CN=" TLSCERT_HOST,
	                      "-addext",
	                      "subjectAltName=DNS:" TLSCERT_HOST ",IP:127.0.0.1",
	                      "-keyout",
	                      key,
	                      "-out",
	                      cert,
	                      NULL};
	pid_t pid = relayctl_exec(argv, log);
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		bench_note("openssl req failed (is the openssl package installed? see %s)", log);
		return -1;
	}
	return 0;
}
