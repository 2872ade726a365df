/*
 * DNS gate pin table (src/gate/pins.c): bounded, refreshes never shorten a pin, expiry calls
 * unpin exactly once per (asked name, address).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "gate/pins.h"

struct unpins {
	int n;
	char seen[64][128];
};

static void on_unpin(void *arg, const char *qname, int family, const void *addr)
{
	struct unpins *u = arg;
	char a[64];

	inet_ntop(family, addr, a, sizeof(a));
	if (u->n < 64)
		snprintf(u->seen[u->n++], 128, "%s %s", qname, a);
}

static void a4(const char *s, void *out)
{
	assert_int_equal(inet_pton(AF_INET, s, out), 1);
}

static void test_put_refresh_expire(void **state)
{
	struct gate_pins *t = gate_pins_new(8);
	struct unpins u = {0};
	uint8_t a[4], b[16];
	uint64_t next;

	(void)state;
	a4("127.0.10.1", a);
	inet_pton(AF_INET6, "fd00::1", b);
	assert_int_equal(gate_pins_put(t, "a.test", AF_INET, a, 1000), 1);
	assert_int_equal(gate_pins_put(t, "a.test", AF_INET, a, 500), 0);  /* never shortened */
	assert_int_equal(gate_pins_put(t, "b.test", AF_INET, a, 2000), 1); /* same addr, own pin */
	assert_int_equal(gate_pins_put(t, "a.test", AF_INET6, b, 3000), 1);
	assert_int_equal(gate_pins_count(t), 3);

	assert_int_equal(gate_pins_expire(t, 999, on_unpin, &u, &next), 0);
	assert_int_equal(next, 1000);
	assert_int_equal(gate_pins_expire(t, 1000, on_unpin, &u, &next), 1);
	assert_string_equal(u.seen[0], "a.test 127.0.10.1");
	assert_int_equal(next, 2000);
	assert_int_equal(gate_pins_put(t, "b.test", AF_INET, a, 5000), 0);
	assert_int_equal(gate_pins_expire(t, 4000, on_unpin, &u, &next), 1);
	assert_string_equal(u.seen[1], "a.test fd00::1");
	assert_int_equal(gate_pins_expire(t, UINT64_MAX, on_unpin, &u, &next), 1);
	assert_int_equal(next, 0);
	assert_int_equal(gate_pins_count(t), 0);
	assert_int_equal(u.n, 3);
	gate_pins_free(t);
}

static void test_bounded(void **state)
{
	struct gate_pins *t = gate_pins_new(100);
	uint8_t a[4] = {127, 0, 10, 0};

	(void)state;
	for (int i = 0; i < 100; i++) {
		a[3] = (uint8_t)i;
		assert_true(gate_pins_room(t, "x.test", AF_INET, a));
		assert_int_equal(gate_pins_put(t, "x.test", AF_INET, a, (uint64_t)i), 1);
	}
	a[3] = 200;
	assert_false(gate_pins_room(t, "x.test", AF_INET, a));
	assert_int_equal(gate_pins_put(t, "x.test", AF_INET, a, 1), -1);
	a[3] = 5;
	assert_true(gate_pins_room(t, "x.test", AF_INET, a)); /* present: a refresh fits */
	assert_int_equal(gate_pins_expire(t, 49, NULL, NULL, NULL), 50);
	a[3] = 200;
	assert_int_equal(gate_pins_put(t, "x.test", AF_INET, a, 1), 1);
	assert_int_equal(gate_pins_count(t), 51);
	gate_pins_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_refresh_expire),
	    cmocka_unit_test(test_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
