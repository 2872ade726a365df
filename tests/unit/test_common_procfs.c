/*
 * proc_cmdline on real processes: this test binary re-executed with a hostile argv (newlines,
 * empty arguments, one far longer than any buffer), and a process that is gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/procfs.h"

#define LONG_ARG 5000

static char self[4096];
static char long_arg[LONG_ARG + 1];

/* Starts this binary as "SELF --hold ARGS..." and waits until /proc shows the new argv. */
static pid_t spawn(char **args)
{
	char *argv[16] = {self, "--hold"};
	char buf[64];
	int n = 2;
	pid_t pid;

	for (; *args; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execv(self, argv);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		proc_cmdline(pid, buf, sizeof(buf));
		if (strstr(buf, "--hold"))
			return pid;
		usleep(10000);
	}
	fail_msg("child never showed its argv");
	return -1;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static void test_hostile_argv(void **state)
{
	char *args[] = {"a\nb", "", long_arg, "tail", NULL};
	static char out[16384];
	char want[16384];
	pid_t pid = spawn(args);
	size_t n;

	(void)state;
	snprintf(want, sizeof(want), "%s --hold a\nb  %s tail", self, long_arg);
	n = proc_cmdline(pid, out, sizeof(out));
	assert_int_equal(n, strlen(want));
	assert_string_equal(out, want);

	/* Bounded: cut at cap - 1 bytes, still NUL-terminated. */
	memset(out, 'Z', sizeof(out));
	n = proc_cmdline(pid, out, 512);
	assert_int_equal(n, 511);
	assert_int_equal(out[511], 0);
	assert_memory_equal(out, want, 511);
	assert_int_equal(out[512], 'Z');

	/* The smallest buffer holds the empty string. */
	n = proc_cmdline(pid, out, 1);
	assert_int_equal(n, 0);
	assert_string_equal(out, "");
	reap(pid);
}

static void test_trailing_empty_args_trimmed(void **state)
{
	char *args[] = {"x", "", "", NULL};
	char out[8192], want[8192];
	pid_t pid = spawn(args);

	(void)state;
	snprintf(want, sizeof(want), "%s --hold x", self);
	assert_int_equal(proc_cmdline(pid, out, sizeof(out)), strlen(want));
	assert_string_equal(out, want);
	reap(pid);
}

static void test_gone_process(void **state)
{
	char *args[] = {NULL};
	char out[64] = "stale";
	pid_t pid = spawn(args);

	(void)state;
	reap(pid);
	assert_int_equal(proc_cmdline(pid, out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hostile_argv),
	    cmocka_unit_test(test_trailing_empty_args_trimmed),
	    cmocka_unit_test(test_gone_process),
	};
	ssize_t n;

	if (argc >= 2 && !strcmp(argv[1], "--hold")) {
		pause();
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 1;
	self[n] = 0;
	memset(long_arg, 'x', LONG_ARG);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
