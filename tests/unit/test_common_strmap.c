/*
 * strmap's bucket hash is keyed: names a job chooses to collide under a public hash (FNV-1a,
 * what it used before) spread over the buckets, and two processes hash the same key apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/strmap.h"

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* 3000 names a job could send as DNS questions, all in one FNV bucket of a 4096-bucket table:
 * found by brute force in a few million tries, as an attacker would. */
static void test_fnv_collisions_spread(void **state)
{
	enum { N = 3000, MASK = 4095 };
	static char names[N][48];
	struct strmap m;
	int n = 0;

	(void)state;
	for (unsigned long i = 0; n < N; i++) {
		char name[48];

		snprintf(name, sizeof(name), "x%lx.exfil.test", i);
		if ((fnv1a(name) & MASK) == 0)
			memcpy(names[n++], name, sizeof(name));
	}
	strmap_init(&m);
	for (int i = 0; i < N; i++)
		strmap_put(&m, names[i], NULL);
	assert_int_equal(m.count, N);
	assert_int_equal(m.nb, MASK + 1);
	/* Unkeyed, every one of them would be in one chain. */
	assert_true(strmap_longest_chain(&m) < 16);
	for (int i = 0; i < N; i++)
		assert_non_null(strmap_get(&m, names[i]));
	strmap_clear(&m, NULL);
}

/* The key is drawn per process: another process puts the same name elsewhere. */
static void test_key_is_per_process(void **state)
{
	int p[2], same = 0;

	(void)state;
	for (int round = 0; round < 4; round++) {
		size_t mine = strmap_hash("registry.npmjs.org"), theirs = 0;
		pid_t pid;

		assert_int_equal(pipe(p), 0);
		pid = fork();
		if (pid == 0) {
			/* A fresh program, so a fresh key: exec ourselves in hash-printing mode. */
			dup2(p[1], 1);
			execl("/proc/self/exe", "test_common_strmap", "--hash",
			      "registry.npmjs.org", (char *)NULL);
			_exit(127);
		}
		close(p[1]);
		assert_int_equal(read(p[0], &theirs, sizeof(theirs)), (ssize_t)sizeof(theirs));
		close(p[0]);
		waitpid(pid, NULL, 0);
		same += mine == theirs;
	}
	assert_int_equal(same, 0);
}

/* The order list after touches and deletes, front to back, as "a,b,c". */
static void order(const struct strmap *m, char *out, size_t len)
{
	size_t n = 0;

	out[0] = 0;
	strmap_for_each(e, m) n += (size_t)snprintf(out + n, len - n, "%s%s", n ? "," : "", e->key);
	/* and the same backwards, so both links are checked */
	for (const struct strmap_entry *e = m->last; e; e = e->order_prev)
		assert_true(e->order_next ? e->order_next->order_prev == e : m->last == e);
}

/* strmap_touch makes the first entry the least recently touched one (an LRU's victim). */
static void test_touch_orders_by_use(void **state)
{
	(void)state;
	struct strmap m;
	char o[64];

	strmap_init(&m);
	strmap_put(&m, "a", NULL);
	strmap_put(&m, "b", NULL);
	strmap_put(&m, "c", NULL);
	strmap_touch(&m, strmap_get(&m, "a"));
	order(&m, o, sizeof(o));
	assert_string_equal(o, "b,c,a");
	strmap_touch(&m, strmap_get(&m, "c"));
	order(&m, o, sizeof(o));
	assert_string_equal(o, "b,a,c");
	strmap_touch(&m, strmap_get(&m, "c")); /* already last */
	order(&m, o, sizeof(o));
	assert_string_equal(o, "b,a,c");
	strmap_del(&m, m.first->key);
	strmap_put(&m, "d", NULL);
	strmap_touch(&m, strmap_get(&m, "a"));
	order(&m, o, sizeof(o));
	assert_string_equal(o, "c,d,a");
	assert_null(m.first->order_prev);
	assert_null(m.last->order_next);
	strmap_clear(&m, NULL);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fnv_collisions_spread),
	    cmocka_unit_test(test_key_is_per_process),
	    cmocka_unit_test(test_touch_orders_by_use),
	};

	if (argc == 3 && !strcmp(argv[1], "--hash")) {
		size_t h = strmap_hash(argv[2]);

		return write(1, &h, sizeof(h)) == (ssize_t)sizeof(h) ? 0 : 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
