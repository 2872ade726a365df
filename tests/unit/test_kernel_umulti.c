/*
 * umulti_func_offset, the file offset a uprobe_multi link is attached at: checked against
 * where the running process has the same function mapped (/proc/self/maps says which file
 * offset a page comes from), in this binary and in libssl.so.3 as the clients load it; and
 * its one-line errors for a missing file, a file that is not ELF and a missing function.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/umulti.h"

/* A function of this binary with a symbol of its own: what a probe would be put on. */
__attribute__((noinline, used)) int umulti_probe_target(int x)
{
	return x * 3 + 1;
}

/* The file and file offset of a mapped code address, from /proc/self/maps. */
static int mapped_offset(const void *addr, char *file, size_t len, uint64_t *off)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[PATH_MAX + 128];
	uintptr_t a = (uintptr_t)addr;
	int rc = -1;

	while (f && fgets(line, sizeof(line), f)) {
		uintptr_t lo, hi;
		uint64_t pgoff;
		char path[PATH_MAX] = "";

		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %*s %" SCNx64 " %*s %*s %4095s", &lo,
			   &hi, &pgoff, path) < 3)
			continue;
		if (a >= lo && a < hi && path[0] == '/') {
			snprintf(file, len, "%s", path);
			*off = a - lo + pgoff;
			rc = 0;
			break;
		}
	}
	if (f)
		fclose(f);
	return rc;
}

static void check(const void *addr, const char *func)
{
	char file[PATH_MAX], err[256] = "";
	uint64_t want, got = 0;

	assert_int_equal(mapped_offset(addr, file, sizeof(file), &want), 0);
	assert_int_equal(umulti_func_offset(file, func, &got, err, sizeof(err)), 0);
	assert_int_equal(got, want);
}

static void offset_in_this_binary(void **state)
{
	(void)state;
	check((const void *)umulti_probe_target, "umulti_probe_target");
}

static void offset_in_libssl(void **state)
{
	void *h = dlopen("libssl.so.3", RTLD_NOW);
	void *f = h ? dlsym(h, "SSL_write") : NULL;

	(void)state;
	if (!f)
		skip();
	check(f, "SSL_write");
	dlclose(h);
}

static void errors_say_where_and_why(void **state)
{
	char err[256], tmp[] = "/tmp/umulti-XXXXXX";
	uint64_t off;
	int fd = mkstemp(tmp);

	(void)state;
	assert_int_equal(umulti_func_offset("/nonexistent/lib.so", "f", &off, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "/nonexistent/lib.so: No such file"));
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not an elf file\n", 16), 16);
	close(fd);
	assert_int_equal(umulti_func_offset(tmp, "f", &off, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not an ELF file"));
	unlink(tmp);
	assert_int_equal(
	    umulti_func_offset("/proc/self/exe", "no_such_function_here", &off, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "no function no_such_function_here"));
	assert_null(strchr(err, '\n'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(offset_in_this_binary),
	    cmocka_unit_test(offset_in_libssl),
	    cmocka_unit_test(errors_say_where_and_why),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
