/*
 * shim_parse_conmon and shim_is_runtime: conmon's real command line (as podman 4.3 writes it,
 * with podman's own options passed through --exit-command-arg), and the hostile or cut ones
 * a job can exec under the name conmon.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "observe/shim.h"

#define ID "2277307211bf7203c3e9a5c8725e8ca5fc1baf9a771e76dae0088459f5a67cb0"

/* argv as the exec record carries it: NUL-separated, the last one terminated. */
static size_t pack(char *buf, size_t cap, const char *const *args)
{
	size_t n = 0;

	for (; *args; args++) {
		size_t l = strlen(*args) + 1;

		assert_true(n + l <= cap);
		memcpy(buf + n, *args, l);
		n += l;
	}
	return n;
}

static void real_command_line(void **state)
{
	const char *const args[] = {"/usr/bin/conmon",
				    "--api-version",
				    "1",
				    "-c",
				    ID,
				    "-u",
				    ID,
				    "-r",
				    "/usr/bin/runc",
				    "-b",
				    "/x/userdata",
				    "-n",
				    "web1",
				    "--runtime-arg",
				    "--log-format=json",
				    "--exit-command",
				    "/usr/bin/podman",
				    "--exit-command-arg",
				    "--runtime",
				    "--exit-command-arg",
				    "crun",
				    "--exit-command-arg",
				    "-n",
				    "--exit-command-arg",
				    "other",
				    NULL};
	char buf[1024];
	struct shim s;
	json_t *j;

	(void)state;
	assert_true(shim_parse_conmon(buf, pack(buf, sizeof(buf), args), &s));
	assert_string_equal(s.id, ID);
	assert_string_equal(s.runtime, "/usr/bin/runc"); /* not the exit command's "crun" */
	j = json_loads(s.identity, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "engine")), "podman");
	assert_string_equal(json_string_value(json_object_get(j, "name")), "web1");
	assert_string_equal(json_string_value(json_object_get(j, "named_by")), "conmon argv");
	json_decref(j);
	assert_true(shim_is_runtime(&s, "/usr/sbin/runc"));
	assert_true(shim_is_runtime(&s, "runc")); /* runc's sealed memfd copy */
	assert_true(shim_is_runtime(&s, "memfd:runc (deleted)"));
	assert_false(shim_is_runtime(&s, "/bin/busybox"));
	assert_false(shim_is_runtime(&s, "/usr/bin/runc-evil"));
	assert_false(shim_is_runtime(&s, NULL));
	shim_free(&s);
}

static void hostile_and_cut(void **state)
{
	const char *const no_id[] = {"conmon", "-n", "x", NULL};
	const char *const bad_id[] = {"conmon", "-c", "../../etc", NULL};
	const char *const short_id[] = {"conmon", "-c", "abc", NULL};
	const char *const quoted[] = {"conmon", "--cid=" ID, "--name", "a\"b\n}{", NULL};
	const char *const dangling[] = {"conmon", "-c", NULL};
	char buf[512], big[2048];
	size_t n;
	struct shim s;
	json_t *j;

	(void)state;
	assert_false(shim_parse_conmon(buf, pack(buf, sizeof(buf), no_id), &s));
	assert_false(shim_parse_conmon(buf, pack(buf, sizeof(buf), bad_id), &s));
	assert_false(shim_parse_conmon(buf, pack(buf, sizeof(buf), short_id), &s));
	assert_false(shim_parse_conmon(buf, pack(buf, sizeof(buf), dangling), &s));
	/* a name that would break the JSON it goes into is escaped */
	assert_true(shim_parse_conmon(buf, pack(buf, sizeof(buf), quoted), &s));
	j = json_loads(s.identity, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "name")), "a\"b\n}{");
	assert_string_equal(s.runtime, "");
	json_decref(j);
	assert_false(shim_is_runtime(&s, "runc")); /* no runtime named: nothing is */
	shim_free(&s);
	/* an overlong name is cut; the last argument cut by the kernel is dropped */
	memset(big, 'n', sizeof(big));
	memcpy(big, "conmon\0-c\0" ID "\0-n\0", 7 + 3 + sizeof(ID) + 3);
	n = 7 + 3 + sizeof(ID) + 3 + 600;
	big[n - 1] = 0;
	assert_true(shim_parse_conmon(big, n, &s));
	j = json_loads(s.identity, 0, NULL);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "name"))), 253);
	json_decref(j);
	shim_free(&s);
	assert_false(shim_parse_conmon(big, 7 + 3 + 20, &s)); /* the id itself cut */
	assert_false(shim_parse_conmon("", 0, &s));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(real_command_line),
	    cmocka_unit_test(hostile_and_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
