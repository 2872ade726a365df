/* policy_check_question: which DNS questions an allowed name's allowance admits (SRV of
 * well-known services, HTTPS of allowed ports) and nothing beyond; the dns.pin_grace key. */
#include <arpa/nameser.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy/policy.h"

#define T_HTTPS 65

static const char yaml[] = "version: 1\n"
			   "allow:\n"
			   "  - host: deb.example.test\n"
			   "    ports: [80]\n"
			   "    proto: tcp\n"
			   "  - host: api.example.test\n"
			   "    ports: [443, 8443]\n"
			   "  - host: \"*.cdn.example.test\"\n"
			   "block:\n"
			   "  - host: evil.example.test\n";

static struct policy *pol;
static struct policy_set *set;

static int setup(void **state)
{
	char err[256];

	(void)state;
	pol = policy_parse("t.yaml", yaml, strlen(yaml), err, sizeof(err));
	set = pol ? policy_effective(pol, NULL, NULL, err, sizeof(err)) : NULL;
	return set ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	policy_set_free(set);
	policy_free(pol);
	return 0;
}

static enum policy_verdict q(const char *name, int type)
{
	const char *why = NULL;
	enum policy_verdict v = policy_check_question(set, name, type, &why);

	assert_non_null(why);
	return v;
}

static void test_srv_admitted(void **state)
{
	(void)state;
	/* apt: the service of the port it would use, over TCP. */
	assert_int_equal(q("_http._tcp.deb.example.test", ns_t_srv), POLICY_ALLOW);
	assert_int_equal(q("_HTTP._TCP.Deb.Example.Test.", ns_t_srv), POLICY_ALLOW);
	/* Ports the entry does not allow, and the wrong protocol. */
	assert_int_equal(q("_https._tcp.deb.example.test", ns_t_srv), POLICY_DENY);
	assert_int_equal(q("_http._udp.deb.example.test", ns_t_srv), POLICY_DENY);
	/* No ports, no proto: every well-known service. */
	assert_int_equal(q("_ldap._tcp.x.cdn.example.test", ns_t_srv), POLICY_ALLOW);
	assert_int_equal(q("_https._tcp.api.example.test", ns_t_srv), POLICY_ALLOW);
}

static void test_srv_nothing_else(void **state)
{
	(void)state;
	assert_int_equal(q("_exfil._tcp.deb.example.test", ns_t_srv), POLICY_DENY);
	assert_int_equal(q("_http._sctp.deb.example.test", ns_t_srv), POLICY_DENY);
	assert_int_equal(q("_http._tcp.deb.example.test", ns_t_txt), POLICY_DENY);
	assert_int_equal(q("_http._tcp.deb.example.test", ns_t_a), POLICY_DENY);
	assert_int_equal(q("_http._tcp.other.example.test", ns_t_srv), POLICY_DENY);
	assert_int_equal(q("x._http._tcp.deb.example.test", ns_t_srv), POLICY_DENY);
	assert_int_equal(q("_http.deb.example.test", ns_t_srv), POLICY_DENY);
	assert_int_equal(q("_._tcp.deb.example.test", ns_t_srv), POLICY_DENY);
	assert_int_equal(q("__http._tcp.deb.example.test", ns_t_srv), POLICY_DENY);
	/* Wildcards stay one label: the base must match on its own. */
	assert_int_equal(q("_http._tcp.a.b.cdn.example.test", ns_t_srv), POLICY_DENY);
	/* Of a blocked name: blocked. */
	assert_int_equal(q("_http._tcp.evil.example.test", ns_t_srv), POLICY_BLOCK);
}

static void test_https(void **state)
{
	(void)state;
	assert_int_equal(q("api.example.test", T_HTTPS), POLICY_ALLOW);
	assert_int_equal(q("_8443._https.api.example.test", T_HTTPS), POLICY_ALLOW);
	assert_int_equal(q("_8080._https.api.example.test", T_HTTPS), POLICY_DENY);
	assert_int_equal(q("_08443._https.api.example.test", T_HTTPS), POLICY_DENY);
	assert_int_equal(q("_65536._https.api.example.test", T_HTTPS), POLICY_DENY);
	assert_int_equal(q("_8443._http.api.example.test", T_HTTPS), POLICY_DENY);
	assert_int_equal(q("_8443._https.api.example.test", ns_t_txt), POLICY_DENY);
	/* deb allows tcp/80 only. */
	assert_int_equal(q("_80._https.deb.example.test", T_HTTPS), POLICY_ALLOW);
	assert_int_equal(q("_81._https.deb.example.test", T_HTTPS), POLICY_DENY);
}

static void test_plain_names_unchanged(void **state)
{
	(void)state;
	assert_int_equal(q("deb.example.test", ns_t_a), POLICY_ALLOW);
	assert_int_equal(q("deb.example.test", ns_t_txt), POLICY_ALLOW);
	assert_int_equal(q("evil.example.test", ns_t_a), POLICY_BLOCK);
	assert_int_equal(q("other.example.test", ns_t_a), POLICY_DENY);
}

static void test_pin_grace_key(void **state)
{
	char err[256];
	struct policy *p;
	const char *bad[] = {"0", "3601", "\"30\"", "-1", "1e3", "30s", "99999"};

	(void)state;
	{
		const char *y = "version: 1\ndns:\n  pin_grace: 5\n";

		p = policy_parse("t.yaml", y, strlen(y), err, sizeof(err));
	}
	assert_non_null(p);
	assert_int_equal(p->dns.pin_grace_s, 5);
	policy_free(p);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char y[128];
		int n = snprintf(y, sizeof(y), "version: 1\ndns:\n  pin_grace: %s\n", bad[i]);

		p = policy_parse("t.yaml", y, (size_t)n, err, sizeof(err));
		assert_null(p);
		assert_non_null(strstr(err, "t.yaml:3:14: dns.pin_grace:"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_srv_admitted),  cmocka_unit_test(test_srv_nothing_else),
	    cmocka_unit_test(test_https),	  cmocka_unit_test(test_plain_names_unchanged),
	    cmocka_unit_test(test_pin_grace_key),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
