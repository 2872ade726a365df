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
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Random puts, refreshes and expiries against a plain array: the same pins expire at the same
 * times, and the earliest remaining expiry is exact. */
#define MODEL_N 64
static void test_matches_model(void **state)
{
	struct gate_pins *t = gate_pins_new(MODEL_N);
	uint64_t model[MODEL_N] = {0}; /* expiry per address 127.0.20.i; 0: absent */
	uint64_t now = 0, next;
	struct unpins u;

	(void)state;
	srand(7);
	for (int step = 0; step < 20000; step++) {
		uint8_t a[4] = {127, 0, 20, (uint8_t)(rand() % MODEL_N)};
		uint64_t exp = now + 1 + (uint64_t)(rand() % 500), want_next = 0;
		size_t want_n = 0;

		if (rand() % 3) {
			int r = gate_pins_put(t, "m.test", AF_INET, a, exp);

			assert_int_equal(r, model[a[3]] ? 0 : 1);
			if (model[a[3]] < exp)
				model[a[3]] = exp;
			continue;
		}
		now += (uint64_t)(rand() % 200);
		for (int i = 0; i < MODEL_N; i++) {
			if (model[i] && model[i] <= now) {
				model[i] = 0;
				want_n++;
			} else if (model[i] && (!want_next || model[i] < want_next)) {
				want_next = model[i];
			}
		}
		memset(&u, 0, sizeof(u));
		assert_int_equal(gate_pins_expire(t, now, on_unpin, &u, &next), want_n);
		assert_int_equal(next, want_next);
	}
	gate_pins_free(t);
}

/* A full table asked for room over and over (one expiry per answer while full) must not scan
 * it each time: 20,000 tries on 65,536 pins took seconds when expiry walked every pin. */
static void test_full_table_is_cheap(void **state)
{
	struct gate_pins *t = gate_pins_new(65536);
	uint8_t a[4] = {127, 0, 0, 0};
	struct timespec t0, t1;

	(void)state;
	for (uint32_t i = 0; i < 65536; i++) {
		a[2] = (uint8_t)(i >> 8);
		a[3] = (uint8_t)i;
		assert_int_equal(gate_pins_put(t, "full.test", AF_INET, a, 1000000 + i), 1);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 20000; i++)
		assert_int_equal(gate_pins_expire(t, (uint64_t)i, NULL, NULL, NULL), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9 < 0.5);
	assert_int_equal(gate_pins_expire(t, 1000000 + 99, NULL, NULL, NULL), 100);
	gate_pins_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_refresh_expire),
	    cmocka_unit_test(test_bounded),
	    cmocka_unit_test(test_matches_model),
	    cmocka_unit_test(test_full_table_is_cheap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
