/* SPDX-License-Identifier: MIT */
/*
 * Process hardening: core dumps are off after relay_harden_process, a bad 'user' is refused
 * before anything is bound, and a dropped process cannot become root again (checked in a
 * child, since dropping root cannot be undone; skipped when the tests do not run as root).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cairn/error.h"
#include "privs.h"

static void test_harden_disables_core_dumps(void **state)
{
	relay_harden_process();
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
	assert_int_equal(rl.rlim_cur, 0);
	assert_int_equal(rl.rlim_max, 0);
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
}

static void test_bad_users_refused(void **state)
{
	char err[256];
	assert_int_equal(relay_user_check("no-such-user-cairn-test", NULL, NULL, err, sizeof(err)),
	                 CAIRN_EINVAL);
	assert_non_null(strstr(err, "does not exist"));
	assert_int_equal(relay_drop_privileges("no-such-user-cairn-test", err, sizeof(err)),
	                 CAIRN_EINVAL);
	assert_int_equal(relay_user_check("root", NULL, NULL, err, sizeof(err)), CAIRN_EINVAL);
	assert_non_null(strstr(err, "uid 0"));
}

static void test_drop_cannot_regain_root(void **state)
{
	char err[256];
	if (geteuid() != 0) {
		/* Not root: switching to another user must be refused, with the reason. */
		assert_int_equal(relay_drop_privileges("nobody", err, sizeof(err)), CAIRN_EINVAL);
		assert_non_null(strstr(err, "root"));
		skip();
	}
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int code = 0;
		if (relay_drop_privileges("nobody", err, sizeof(err)) != 0)
			code = 1;
		else if (geteuid() == 0 || getuid() == 0 || getegid() == 0 || getgid() == 0)
			code = 2;
		else if (setuid(0) == 0 || seteuid(0) == 0)
			code = 3;
		else if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
			code = 4;
		else if (relay_drop_privileges("nobody", err, sizeof(err)) != 0)
			code = 5; /* a second call, already that user, is a success */
		_exit(code);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_harden_disables_core_dumps),
	    cmocka_unit_test(test_bad_users_refused),
	    cmocka_unit_test(test_drop_cannot_regain_root),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
