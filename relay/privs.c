/* SPDX-License-Identifier: MIT */
/*
 * No core dumps, and dropping root. The order in relay_drop_privileges is the one that cannot
 * leave a privileged leftover: supplementary groups first (needs root), then the gid (needs
 * root), then the uid; afterwards we check that setuid(0) fails, as a defence against a
 * platform where one of those calls quietly did less than asked.
 */
/* initgroups() and setgroups() are outside POSIX; glibc declares them with _DEFAULT_SOURCE. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cairn/error.h"
#include "privs.h"

void relay_harden_process(void)
{
	struct rlimit none = {0, 0};
	(void)setrlimit(RLIMIT_CORE, &none);
	/* Also blocks ptrace by other processes of the same user and hides /proc/self/mem. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* Looks USER up into *PW (strings in BUF). Returns 0 or CAIRN_EINVAL with a message. */
static int user_lookup(const char *user, struct passwd *pw, char *buf, size_t bufcap, char *err,
                       size_t errcap)
{
	struct passwd *found = NULL;
	int e = getpwnam_r(user, pw, buf, bufcap, &found);
	if (found == NULL) {
		if (e != 0)
			snprintf(err, errcap, "cannot look up user '%s': %s", user, strerror(e));
		else
			snprintf(err, errcap,
			         "user '%s' does not exist; create it (e.g. useradd --system "
			         "--no-create-home %s) or change 'user' in [relay]",
			         user, user);
		return CAIRN_EINVAL;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errcap, "user '%s' is uid 0; 'user' must name an unprivileged user",
		         user);
		return CAIRN_EINVAL;
	}
	return 0;
}

int relay_user_check(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errcap)
{
	char buf[16384];
	struct passwd pw;
	if (errcap > 0)
		err[0] = '\0';
	int rc = user_lookup(user, &pw, buf, sizeof(buf), err, errcap);
	if (rc != 0)
		return rc;
	if (geteuid() != 0 && (geteuid() != pw.pw_uid || getuid() != pw.pw_uid)) {
		snprintf(err, errcap,
		         "user = %s needs the relay started as root (or as %s); it runs as uid %u",
		         user, user, (unsigned)geteuid());
		return CAIRN_EINVAL;
	}
	if (uid != NULL)
		*uid = pw.pw_uid;
	if (gid != NULL)
		*gid = pw.pw_gid;
	return 0;
}

int relay_drop_privileges(const char *user, char *err, size_t errcap)
{
	char buf[16384];
	struct passwd pw;
	int rc = relay_user_check(user, NULL, NULL, err, errcap);
	if (rc != 0)
		return rc;
	rc = user_lookup(user, &pw, buf, sizeof(buf), err, errcap);
	if (rc != 0)
		return rc;
	if (geteuid() == pw.pw_uid && getuid() == pw.pw_uid)
		return 0; /* started as USER already: nothing to drop */

	if (initgroups(pw.pw_name, pw.pw_gid) != 0) {
		snprintf(err, errcap, "initgroups(%s): %s", user, strerror(errno));
		return CAIRN_EIO;
	}
	if (setgid(pw.pw_gid) != 0) {
		snprintf(err, errcap, "setgid(%u): %s", (unsigned)pw.pw_gid, strerror(errno));
		return CAIRN_EIO;
	}
	/* glibc applies setuid() to every thread, so the storage thread drops with us. */
	if (setuid(pw.pw_uid) != 0) {
		snprintf(err, errcap, "setuid(%u): %s", (unsigned)pw.pw_uid, strerror(errno));
		return CAIRN_EIO;
	}
	if (setuid(0) == 0 || geteuid() != pw.pw_uid || getuid() != pw.pw_uid ||
	    getegid() != pw.pw_gid || getgid() != pw.pw_gid) {
		snprintf(err, errcap, "dropping root to '%s' did not take effect", user);
		return CAIRN_EIO;
	}
	/* A change of credentials resets the dumpable flag to fs.suid_dumpable; set it again. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	return 0;
}
