/* Policy decisions: wildcard label semantics, host checks with block precedence, CIDR edges
 * for IPv4/IPv6/v4-mapped, port ranges and protocols, and the kernel-facing CIDR walk. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "policy/policy.h"

static struct policy_set *set_of(const char *y, struct policy **pp)
{
	char err[512];
	struct policy *p = policy_parse("t.yaml", y, strlen(y), err, sizeof(err));
	struct policy_set *s;

	if (!p)
		print_error("%s\n", err);
	assert_non_null(p);
	s = policy_effective(p, NULL, NULL, err, sizeof(err));
	assert_non_null(s);
	*pp = p;
	return s;
}

static void test_pattern_match(void **state)
{
	(void)state;
	/* one label */
	assert_true(host_pattern_match("*.cdn.example.test", "a.cdn.example.test"));
	assert_false(host_pattern_match("*.cdn.example.test", "a.b.cdn.example.test"));
	assert_false(host_pattern_match("*.cdn.example.test", "cdn.example.test"));
	assert_false(host_pattern_match("*.cdn.example.test", "acdn.example.test"));
	assert_false(host_pattern_match("*.cdn.example.test", ".cdn.example.test"));
	/* any depth >= 1 */
	assert_true(host_pattern_match("**.cdn.example.test", "a.cdn.example.test"));
	assert_true(host_pattern_match("**.cdn.example.test", "a.b.c.cdn.example.test"));
	assert_false(host_pattern_match("**.cdn.example.test", "cdn.example.test"));
	assert_false(host_pattern_match("**.cdn.example.test", "xcdn.example.test"));
	/* exact, label boundaries: never a bare suffix */
	assert_true(host_pattern_match("github.com", "github.com"));
	assert_false(host_pattern_match("github.com", "evilgithub.com"));
	assert_false(host_pattern_match("github.com", "api.github.com"));
	assert_false(host_pattern_match("*.github.com", "evilgithub.com"));
	assert_false(host_pattern_match("**.github.com", "evilgithub.com"));
	assert_false(host_pattern_match("github.com", "github.com.evil.test"));
	assert_false(host_pattern_match("**.github.com", "api.github.com.evil.test"));
	/* case and trailing dot, on either side */
	assert_true(host_pattern_match("GitHub.COM.", "github.com"));
	assert_true(host_pattern_match("github.com", "GITHUB.com."));
	assert_true(host_pattern_match("*.Example.Test", "WWW.example.test."));
	/* invalid names never match */
	assert_false(host_pattern_match("github.com", ""));
	assert_false(host_pattern_match("github.com", "."));
	assert_false(host_pattern_match("github.com", "github.com.."));
	assert_false(host_pattern_match("**.github.com", "a..github.com"));
	assert_false(host_pattern_match("**.github.com", "a b.github.com"));
	assert_false(host_pattern_match("*.github.com", "*.github.com"));
	/* invalid patterns never match */
	assert_false(host_pattern_match("*.com", "a.com"));
	assert_false(host_pattern_match("a*.github.com", "ab.github.com"));
	assert_false(host_pattern_match("", ""));
}

static void test_check_host(void **state)
{
	static const char y[] = "version: 1\n"
				"allow:\n"
				"  - host: registry.example.test\n"
				"    ports: [443]\n"
				"    proto: tcp\n"
				"  - host: \"*.cdn.example.test\"\n"
				"    ports: [80]\n"
				"  - host: \"**.deep.example.test\"\n"
				"  - host: \"**.example.test\"\n"
				"    ports: [8443]\n"
				"    proto: tcp\n"
				"block:\n"
				"  - host: evil.example.test\n"
				"  - host: \"*.bad.cdn.example.test\"\n";
	struct policy *p;
	struct policy_set *s = set_of(y, &p);
	struct policy_match m;

	(void)state;
	/* registry: its own 443 plus the **.example.test 8443 */
	assert_int_equal(policy_check_host(s, "registry.example.test", &m), POLICY_ALLOW);
	assert_string_equal(m.entry->host, "registry.example.test");
	assert_int_equal(m.nrules, 2);
	assert_int_equal(m.rules[0].lo, 443);
	assert_int_equal(m.rules[0].hi, 443);
	assert_int_equal(m.rules[0].proto, POLICY_PROTO_TCP);
	assert_int_equal(m.rules[1].lo, 8443);
	/* same name in another spelling */
	assert_int_equal(policy_check_host(s, "REGISTRY.example.test.", &m), POLICY_ALLOW);
	assert_true(policy_rules_cover(m.rules, m.nrules, 443, POLICY_PROTO_TCP));
	assert_true(policy_rules_cover(m.rules, m.nrules, 8443, POLICY_PROTO_TCP));
	assert_false(policy_rules_cover(m.rules, m.nrules, 443, POLICY_PROTO_UDP));
	assert_false(policy_rules_cover(m.rules, m.nrules, 80, POLICY_PROTO_TCP));
	/* a.cdn: *.cdn (80 any) and **.example.test (8443 tcp) */
	assert_int_equal(policy_check_host(s, "a.cdn.example.test", &m), POLICY_ALLOW);
	assert_true(policy_rules_cover(m.rules, m.nrules, 80, POLICY_PROTO_UDP));
	assert_true(policy_rules_cover(m.rules, m.nrules, 8443, POLICY_PROTO_TCP));
	/* a.b.cdn: only **.example.test */
	assert_int_equal(policy_check_host(s, "a.b.cdn.example.test", &m), POLICY_ALLOW);
	assert_false(policy_rules_cover(m.rules, m.nrules, 80, POLICY_PROTO_TCP));
	/* all ports under **.deep */
	assert_int_equal(policy_check_host(s, "x.y.deep.example.test", &m), POLICY_ALLOW);
	assert_true(policy_rules_cover(m.rules, m.nrules, 1, POLICY_PROTO_UDP));
	assert_true(policy_rules_cover(m.rules, m.nrules, 0, POLICY_PROTO_TCP));
	/* the apex itself is not under **.example.test */
	assert_int_equal(policy_check_host(s, "example.test", NULL), POLICY_DENY);
	assert_int_equal(policy_check_host(s, "evilexample.test", NULL), POLICY_DENY);
	assert_int_equal(policy_check_host(s, "other.test", NULL), POLICY_DENY);
	/* block beats every allow that also matches */
	assert_int_equal(policy_check_host(s, "evil.example.test", &m), POLICY_BLOCK);
	assert_non_null(m.entry);
	assert_string_equal(m.entry->host, "evil.example.test");
	assert_int_equal(policy_check_host(s, "Evil.Example.Test.", NULL), POLICY_BLOCK);
	assert_int_equal(policy_check_host(s, "x.bad.cdn.example.test", NULL), POLICY_BLOCK);
	assert_int_equal(policy_check_host(s, "y.x.bad.cdn.example.test", NULL), POLICY_ALLOW);
	/* names the gate should never pass in are denied, not matched */
	assert_int_equal(policy_check_host(s, "", NULL), POLICY_DENY);
	assert_int_equal(policy_check_host(s, "a..example.test", NULL), POLICY_DENY);
	assert_int_equal(policy_check_host(s, "a\\.b.example.test", NULL), POLICY_DENY);
	/* ... but junk under a blocked zone is still blocked, not merely denied (observe mode) */
	assert_int_equal(policy_check_host(s, "x y.bad.cdn.example.test", NULL), POLICY_BLOCK);
	assert_int_equal(policy_check_host(s, "EVIL.example.test\n", NULL), POLICY_DENY);
	assert_int_equal(policy_check_host(s, "a\\.EVIL.example.test", NULL), POLICY_DENY);
	assert_int_equal(policy_check_host(s, "x*.bad.cdn.example.test.", NULL), POLICY_BLOCK);
	policy_set_free(s);
	policy_free(p);
}

static enum policy_verdict chk(const struct policy_set *s, const char *a, uint16_t port,
			       unsigned proto)
{
	uint8_t buf[16];

	if (inet_pton(AF_INET, a, buf) == 1)
		return policy_check_addr(s, AF_INET, buf, port, proto, NULL);
	assert_int_equal(inet_pton(AF_INET6, a, buf), 1);
	return policy_check_addr(s, AF_INET6, buf, port, proto, NULL);
}

static void test_cidr_edges(void **state)
{
	static const char y[] = "version: 1\n"
				"allow:\n"
				"  - cidr: 127.0.10.0/24\n"
				"    ports: [8080, \"9000-9100\"]\n"
				"    proto: tcp\n"
				"  - cidr: 192.0.2.0/31\n"
				"  - ip: 198.51.100.7\n"
				"    ports: [53]\n"
				"    proto: udp\n"
				"  - cidr: 2001:db8:1::/48\n"
				"  - ip: \"2001:db8::1\"\n"
				"  - ip: \"::ffff:203.0.113.9\"\n"
				"  - cidr: 2001:db8:ff00::/41\n"
				"block:\n"
				"  - ip: 127.0.10.66\n"
				"  - cidr: 2001:db8:1:5::/64\n"
				"    ports: [\"1-1024\"]\n";
	struct policy *p;
	struct policy_set *s = set_of(y, &p);

	(void)state;
	/* /24 boundaries and the port set */
	assert_int_equal(chk(s, "127.0.10.0", 8080, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(chk(s, "127.0.10.255", 9000, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(chk(s, "127.0.10.255", 9100, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(chk(s, "127.0.10.1", 8999, POLICY_PROTO_TCP), POLICY_DENY);
	assert_int_equal(chk(s, "127.0.10.1", 9101, POLICY_PROTO_TCP), POLICY_DENY);
	assert_int_equal(chk(s, "127.0.10.1", 8081, POLICY_PROTO_TCP), POLICY_DENY);
	assert_int_equal(chk(s, "127.0.10.1", 8080, POLICY_PROTO_UDP), POLICY_DENY);
	assert_int_equal(chk(s, "127.0.9.255", 8080, POLICY_PROTO_TCP), POLICY_DENY);
	assert_int_equal(chk(s, "127.0.11.0", 8080, POLICY_PROTO_TCP), POLICY_DENY);
	/* block inside an allowed prefix */
	assert_int_equal(chk(s, "127.0.10.66", 8080, POLICY_PROTO_TCP), POLICY_BLOCK);
	assert_int_equal(chk(s, "127.0.10.66", 1, POLICY_PROTO_UDP), POLICY_BLOCK);
	/* /31 */
	assert_int_equal(chk(s, "192.0.2.0", 1, POLICY_PROTO_UDP), POLICY_ALLOW);
	assert_int_equal(chk(s, "192.0.2.1", 65535, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(chk(s, "192.0.2.2", 1, POLICY_PROTO_TCP), POLICY_DENY);
	/* single IPv4, udp only */
	assert_int_equal(chk(s, "198.51.100.7", 53, POLICY_PROTO_UDP), POLICY_ALLOW);
	assert_int_equal(chk(s, "198.51.100.7", 53, POLICY_PROTO_TCP), POLICY_DENY);
	assert_int_equal(chk(s, "198.51.100.6", 53, POLICY_PROTO_UDP), POLICY_DENY);
	/* v4-mapped: the same destination through an AF_INET6 socket */
	assert_int_equal(chk(s, "::ffff:198.51.100.7", 53, POLICY_PROTO_UDP), POLICY_ALLOW);
	assert_int_equal(chk(s, "::ffff:127.0.10.66", 8080, POLICY_PROTO_TCP), POLICY_BLOCK);
	assert_int_equal(chk(s, "203.0.113.9", 443, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(chk(s, "::ffff:203.0.113.9", 443, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(chk(s, "::ffff:203.0.113.8", 443, POLICY_PROTO_TCP), POLICY_DENY);
	/* an IPv4 entry is not an IPv4-compatible or NAT64 IPv6 address */
	assert_int_equal(chk(s, "::198.51.100.7", 53, POLICY_PROTO_UDP), POLICY_DENY);
	assert_int_equal(chk(s, "64:ff9b::198.51.100.7", 53, POLICY_PROTO_UDP), POLICY_DENY);
	/* IPv6 /48, /128, /41 (prefix not on a byte boundary) */
	assert_int_equal(chk(s, "2001:db8:1::", 443, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(chk(s, "2001:db8:1:ffff:ffff:ffff:ffff:ffff", 1, POLICY_PROTO_UDP),
			 POLICY_ALLOW);
	assert_int_equal(chk(s, "2001:db8:2::", 443, POLICY_PROTO_TCP), POLICY_DENY);
	assert_int_equal(chk(s, "2001:db8::1", 443, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(chk(s, "2001:db8::2", 443, POLICY_PROTO_TCP), POLICY_DENY);
	assert_int_equal(chk(s, "2001:db8:ff00::", 1, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(chk(s, "2001:db8:ff7f:ffff::", 1, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(chk(s, "2001:db8:ff80::", 1, POLICY_PROTO_TCP), POLICY_DENY);
	assert_int_equal(chk(s, "2001:db8:feff:ffff::", 1, POLICY_PROTO_TCP), POLICY_DENY);
	/* IPv6 block with ports: below 1025 blocked, above only allowed */
	assert_int_equal(chk(s, "2001:db8:1:5::9", 1024, POLICY_PROTO_TCP), POLICY_BLOCK);
	assert_int_equal(chk(s, "2001:db8:1:5::9", 1025, POLICY_PROTO_TCP), POLICY_ALLOW);
	policy_set_free(s);
	policy_free(p);
}

static void test_addr_parse(void **state)
{
	int fam;
	uint8_t a[16], prefix;
	char why[POLICY_WHYLEN];

	(void)state;
	assert_null(policy_addr_parse("0.0.0.0/0", true, &fam, a, &prefix, why));
	assert_int_equal(prefix, 0);
	assert_null(policy_addr_parse("::/0", true, &fam, a, &prefix, why));
	assert_int_equal(fam, AF_INET6);
	/* v4-mapped prefixes become IPv4 prefixes */
	assert_null(policy_addr_parse("::ffff:10.0.0.0/104", true, &fam, a, &prefix, why));
	assert_int_equal(fam, AF_INET);
	assert_int_equal(prefix, 8);
	assert_memory_equal(a, "\x0a\0\0\0", 4);
	assert_null(policy_addr_parse("::ffff:0:0/96", true, &fam, a, &prefix, why));
	assert_int_equal(fam, AF_INET);
	assert_int_equal(prefix, 0);
	/* shorter than /96 covers more than the mapped space: stays IPv6 */
	assert_null(policy_addr_parse("::/80", true, &fam, a, &prefix, why));
	assert_int_equal(fam, AF_INET6);
	assert_non_null(policy_addr_parse("10.0.0.0/-1", true, &fam, a, &prefix, why));
	assert_non_null(policy_addr_parse("10.0.0.0/", true, &fam, a, &prefix, why));
	assert_non_null(policy_addr_parse("/8", true, &fam, a, &prefix, why));
	assert_non_null(policy_addr_parse("10.0.0.0/8 ", true, &fam, a, &prefix, why));
	assert_non_null(policy_addr_parse(" 10.0.0.1", false, &fam, a, &prefix, why));
	assert_non_null(policy_addr_parse("010.0.0.1", false, &fam, a, &prefix, why));
	assert_non_null(policy_addr_parse("2001:db8::1/64", true, &fam, a, &prefix, why));
}

static void test_port_merge(void **state)
{
	static const char y[] =
	    "version: 1\n"
	    "allow:\n"
	    "  - ip: 10.0.0.1\n"
	    "    ports: [443, \"1-3\", 4, \"2-2\", 65535, \"100-200\", 201, 80]\n";
	struct policy *p;
	struct policy_set *s = set_of(y, &p);
	const struct policy_entry *e = &p->allow.v[0];

	(void)state;
	/* 1-4 (adjacent merged), 80, 100-201, 443, 65535 */
	assert_int_equal(e->nrules, 5);
	assert_int_equal(e->rules[0].lo, 1);
	assert_int_equal(e->rules[0].hi, 4);
	assert_int_equal(e->rules[2].lo, 100);
	assert_int_equal(e->rules[2].hi, 201);
	assert_int_equal(e->rules[4].lo, 65535);
	assert_int_equal(chk(s, "10.0.0.1", 0, POLICY_PROTO_TCP), POLICY_DENY);
	assert_int_equal(chk(s, "10.0.0.1", 5, POLICY_PROTO_TCP), POLICY_DENY);
	assert_int_equal(chk(s, "10.0.0.1", 65535, POLICY_PROTO_UDP), POLICY_ALLOW);
	policy_set_free(s);
	policy_free(p);
}

struct collect {
	struct policy_cidr c[16];
	int n;
};

static int collect_cb(const struct policy_cidr *c, void *arg)
{
	struct collect *k = arg;

	if (k->n < 16)
		k->c[k->n] = *c;
	k->n++;
	return 0;
}

static int stop_cb(const struct policy_cidr *c, void *arg)
{
	(void)c;
	(void)arg;
	return 7;
}

static void test_for_each_cidr(void **state)
{
	static const char y[] = "version: 1\n"
				"allow:\n"
				"  - host: a.example.test\n"
				"  - cidr: 10.0.0.0/8\n"
				"    ports: [443]\n"
				"    proto: tcp\n"
				"  - cidr: 10.1.0.0/16\n"
				"    ports: [80]\n"
				"    proto: tcp\n"
				"  - cidr: 10.1.0.0/16\n"
				"    ports: [53]\n"
				"    proto: udp\n"
				"  - cidr: \"2001:db8::/32\"\n"
				"  - ip: 192.0.2.1\n"
				"block:\n"
				"  - ip: 10.9.9.9\n";
	struct policy *p;
	struct policy_set *s = set_of(y, &p);
	struct collect k = {.n = 0};
	char err[256];

	(void)state;
	assert_int_equal(policy_for_each_cidr(s, false, collect_cb, &k, err, sizeof(err)), 0);
	/* sorted: v4 by prefix, then v6; one record per distinct prefix */
	assert_int_equal(k.n, 4);
	assert_int_equal(k.c[0].family, AF_INET);
	assert_int_equal(k.c[0].prefix, 8);
	assert_int_equal(k.c[0].nrules, 1);
	assert_int_equal(k.c[1].prefix, 16);
	assert_memory_equal(k.c[1].addr, "\x0a\x01\x00\x00", 4);
	/* own 80/tcp and 53/udp, plus 443/tcp folded in from the covering /8 */
	assert_int_equal(k.c[1].nrules, 3);
	assert_true(policy_rules_cover(k.c[1].rules, k.c[1].nrules, 443, POLICY_PROTO_TCP));
	assert_true(policy_rules_cover(k.c[1].rules, k.c[1].nrules, 80, POLICY_PROTO_TCP));
	assert_true(policy_rules_cover(k.c[1].rules, k.c[1].nrules, 53, POLICY_PROTO_UDP));
	assert_false(policy_rules_cover(k.c[1].rules, k.c[1].nrules, 53, POLICY_PROTO_TCP));
	assert_int_equal(k.c[2].prefix, 32);
	assert_int_equal(k.c[3].family, AF_INET6);
	assert_int_equal(k.c[3].prefix, 32);
	assert_int_equal(k.c[3].rules[0].lo, 0);
	assert_int_equal(k.c[3].rules[0].hi, 65535);
	assert_int_equal(k.c[3].rules[0].proto, POLICY_PROTO_ANY);

	k.n = 0;
	assert_int_equal(policy_for_each_cidr(s, true, collect_cb, &k, err, sizeof(err)), 0);
	assert_int_equal(k.n, 1);
	assert_int_equal(policy_for_each_cidr(s, false, stop_cb, NULL, err, sizeof(err)), 7);
	policy_set_free(s);
	policy_free(p);
}

static void test_cidr_overflow(void **state)
{
	static const char y[] = "version: 1\n"
				"allow:\n"
				"  - cidr: 10.0.0.0/8\n"
				"    ports: [1, 3, 5, 7, 9, 11, 13, 15, 17]\n"
				"  - cidr: 10.1.0.0/16\n"
				"    ports: [101, 103, 105, 107, 109, 111, 113, 115]\n";
	struct policy *p;
	struct policy_set *s = set_of(y, &p);
	char err[256];

	(void)state;
	assert_int_equal(policy_for_each_cidr(s, false, stop_cb, NULL, err, sizeof(err)), -1);
	assert_string_equal(err, "10.1.0.0/16: more than 16 port ranges once the covering "
				 "prefixes are folded in");
	policy_set_free(s);
	policy_free(p);
}

/* 100,000 host entries: lookups stay hash-based. */
static void test_many_hosts(void **state)
{
	char err[256];
	struct policy_list bl = {0};
	struct policy *p;
	struct policy_set *s;
	char *y = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&y, &len);

	(void)state;
	fputs("version: 1\nallow:\n", f);
	for (int i = 0; i < 100000; i++)
		fprintf(f, "  - host: h%d.example.test\n", i);
	fclose(f);
	p = policy_parse("t.yaml", y, len, err, sizeof(err));
	assert_non_null(p);
	s = policy_effective(p, NULL, &bl, err, sizeof(err));
	assert_non_null(s);
	for (int i = 0; i < 100000; i += 997) {
		char n[64];

		snprintf(n, sizeof(n), "H%d.example.test.", i);
		assert_int_equal(policy_check_host(s, n, NULL), POLICY_ALLOW);
	}
	assert_int_equal(policy_check_host(s, "h100000.example.test", NULL), POLICY_DENY);
	policy_set_free(s);
	policy_free(p);
	free(y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pattern_match), cmocka_unit_test(test_check_host),
	    cmocka_unit_test(test_cidr_edges),	  cmocka_unit_test(test_addr_parse),
	    cmocka_unit_test(test_port_merge),	  cmocka_unit_test(test_for_each_cidr),
	    cmocka_unit_test(test_cidr_overflow), cmocka_unit_test(test_many_hosts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
