/* Policy file reader: the issue's example, every error class with its exact FILE:LINE:COL,
 * duplicates, steps, dns, defaults, the normalised rendering, and the shipped examples. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "common/strbuf.h"
#include "policy/policy.h"

static struct policy *parse(const char *y, char *err)
{
	return policy_parse("t.yaml", y, strlen(y), err, 512);
}

static void expect_err(const char *y, const char *want)
{
	char err[512] = "";
	struct policy *p = parse(y, err);

	if (p || strcmp(err, want))
		print_error("input:\n%s\nwant: %s\ngot:  %s\n", y, want, p ? "(parsed)" : err);
	assert_null(p);
	assert_string_equal(err, want);
}

static const char issue_example[] =
    "version: 1\n"
    "mode: enforce\n"
    "allow:\n"
    "  - host: registry.example.test        # exact name\n"
    "    ports: [443]\n"
    "  - host: \"*.cdn.example.test\"         # exactly one label\n"
    "  - cidr: 127.0.10.0/24                # addresses and CIDRs, IPv4 or IPv6\n"
    "    ports: [8080, \"9000-9100\"]\n"
    "    proto: tcp\n"
    "block:\n"
    "  - host: evil.example.test\n"
    "dns:\n"
    "  resolvers: [127.0.0.53]\n"
    "  refuse_unlisted: true\n";

static void test_issue_example(void **state)
{
	char err[512];
	struct policy *p = parse(issue_example, err);
	const struct policy_entry *e;

	(void)state;
	if (!p)
		print_error("%s\n", err);
	assert_non_null(p);
	assert_int_equal(p->version, 1);
	assert_int_equal(p->mode, POLICY_MODE_ENFORCE);
	assert_int_equal(p->allow.n, 3);
	e = &p->allow.v[0];
	assert_int_equal(e->kind, POLICY_ENTRY_HOST);
	assert_string_equal(e->host, "registry.example.test");
	assert_int_equal(e->nrules, 1);
	assert_int_equal(e->rules[0].lo, 443);
	assert_int_equal(e->rules[0].hi, 443);
	assert_int_equal(e->rules[0].proto, POLICY_PROTO_ANY);
	assert_int_equal(e->line, 4);
	assert_int_equal(e->col, 5);
	e = &p->allow.v[1];
	assert_string_equal(e->host, "*.cdn.example.test");
	assert_int_equal(e->nrules, 1);
	assert_int_equal(e->rules[0].lo, 0);
	assert_int_equal(e->rules[0].hi, 65535);
	e = &p->allow.v[2];
	assert_int_equal(e->kind, POLICY_ENTRY_CIDR);
	assert_int_equal(e->family, AF_INET);
	assert_int_equal(e->prefix, 24);
	assert_memory_equal(e->addr, "\x7f\x00\x0a\x00", 4);
	assert_int_equal(e->nrules, 2);
	assert_int_equal(e->rules[0].lo, 8080);
	assert_int_equal(e->rules[1].lo, 9000);
	assert_int_equal(e->rules[1].hi, 9100);
	assert_int_equal(e->rules[1].proto, POLICY_PROTO_TCP);
	assert_int_equal(p->block.n, 1);
	assert_string_equal(p->block.v[0].host, "evil.example.test");
	assert_int_equal(p->dns.nresolvers, 1);
	assert_int_equal(p->dns.resolvers[0].family, AF_INET);
	assert_memory_equal(p->dns.resolvers[0].addr, "\x7f\x00\x00\x35", 4);
	assert_true(p->dns.refuse_unlisted);
	assert_int_equal(p->dns.refuse_with, POLICY_REFUSE_NXDOMAIN);
	assert_false(p->dns.has_upstream);
	assert_true(policy_fails_on_violation(p, POLICY_MODE_ENFORCE));
	assert_false(policy_fails_on_violation(p, POLICY_MODE_OBSERVE));
	policy_free(p);
}

static void test_errors(void **state)
{
	(void)state;
	/* unknown keys, at every level */
	expect_err("version: 1\nmod: enforce\n", "t.yaml:2:1: policy: unknown key 'mod'");
	expect_err("version: 1\nallow:\n  - host: a.test\n    port: 1\n",
		   "t.yaml:4:5: allow entry: unknown key 'port'");
	expect_err("version: 1\ndns:\n  resolver: [1.1.1.1]\n",
		   "t.yaml:3:3: dns: unknown key 'resolver'");
	expect_err("version: 1\nsteps:\n  b:\n    allow: []\n    deny: []\n",
		   "t.yaml:5:5: step: unknown key 'deny'");
	/* wrong types */
	expect_err("version: 1\nmode: 3\n",
		   "t.yaml:2:7: mode: '3' is not one of: observe, learn, enforce");
	expect_err("version: 1\nallow: {a: 1}\n",
		   "t.yaml:2:8: allow entry: expected a list, found a mapping");
	expect_err("version: 1\nallow:\n  - [a]\n",
		   "t.yaml:3:5: allow entry: expected a mapping, found a list");
	expect_err("version: 1\nfail_on_violation: yes\n",
		   "t.yaml:2:20: fail_on_violation: expected true or false (unquoted)");
	expect_err("version: 1\nfail_on_violation: \"true\"\n",
		   "t.yaml:2:20: fail_on_violation: expected true or false (unquoted)");
	expect_err("version: \"1\"\n", "t.yaml:1:10: version: expected a number, found '1'");
	expect_err("version: 2\n", "t.yaml:1:10: version: unsupported policy version 2 (this "
				   "runwarden reads version 1)");
	expect_err("version: 1\nmode:\n",
		   "t.yaml:2:6: mode: expected a value, found nothing (null)");
	expect_err("version: 1\ndns: [1]\n", "t.yaml:2:6: dns: expected a mapping, found a list");
	expect_err("version: 1\nfiles: [relative]\n",
		   "t.yaml:2:9: files: paths must be absolute (start with /)");
	expect_err("version: 1\nallow:\n  - host: x.test\n    proto: sctp\n",
		   "t.yaml:4:12: proto: 'sctp' is not one of: tcp, udp, udplite, icmp, any");
	expect_err("version: 1\nallow:\n  - ip: 10.0.0.1\n    ports: [443]\n    proto: icmp\n",
		   "t.yaml:5:12: allow entry: proto icmp has no ports; leave ports out");
	expect_err("version: 1\nallow:\n  - {proto: icmp, ip: 10.0.0.1, ports: 7}\n",
		   "t.yaml:3:13: allow entry: proto icmp has no ports; leave ports out");
	expect_err("version: 1\ndns:\n  refuse_with: drop\n",
		   "t.yaml:3:16: dns.refuse_with: 'drop' is not one of: refused, nxdomain");
	/* bad addresses */
	expect_err("version: 1\nallow:\n  - ip: 300.1.1.1\n",
		   "t.yaml:3:9: ip: '300.1.1.1': not an IPv4 or IPv6 address");
	expect_err("version: 1\nallow:\n  - cidr: 10.0.0.1/8\n",
		   "t.yaml:3:11: cidr: '10.0.0.1/8': address has bits set beyond /8 (did you mean "
		   "10.0.0.0/8?)");
	expect_err("version: 1\nallow:\n  - cidr: 10.0.0.0/33\n",
		   "t.yaml:3:11: cidr: '10.0.0.0/33': IPv4 prefix length above 32");
	expect_err("version: 1\nallow:\n  - cidr: 2001:db8::/129\n",
		   "t.yaml:3:11: cidr: '2001:db8::/129': IPv6 prefix length above 128");
	expect_err("version: 1\nallow:\n  - cidr: 10.0.0.0/08\n",
		   "t.yaml:3:11: cidr: '10.0.0.0/08': prefix length must be a decimal number");
	expect_err("version: 1\nallow:\n  - cidr: 10.0.0.0\n",
		   "t.yaml:3:11: cidr: '10.0.0.0': cidr: needs a prefix length (ADDR/N); use ip: "
		   "for one address");
	expect_err("version: 1\nallow:\n  - ip: 10.0.0.1/32\n",
		   "t.yaml:3:9: ip: '10.0.0.1/32': ip: takes one address; use cidr: for a prefix");
	expect_err("version: 1\nallow:\n  - ip: fe80::1%eth0\n",
		   "t.yaml:3:9: ip: 'fe80::1%eth0': not an IPv4 or IPv6 address");
	expect_err("version: 1\ndns:\n  resolvers: [1.1.1]\n",
		   "t.yaml:3:15: dns.resolvers: '1.1.1': not an IPv4 or IPv6 address");
	expect_err("version: 1\ndns:\n  upstream: \"1.1.1.1:0\"\n",
		   "t.yaml:3:13: dns.upstream: '1.1.1.1:0': port must be 1-65535");
	/* bad host names */
	expect_err("version: 1\nallow:\n  - host: \"a.*.test\"\n",
		   "t.yaml:3:11: host: 'a.*.test': '*' is only allowed as the whole first label "
		   "(*.x or **.x)");
	expect_err("version: 1\nallow:\n  - host: \"*.com\"\n",
		   "t.yaml:3:11: host: '*.com': wildcard needs at least two labels after it "
		   "(*.example.com, not *.com)");
	expect_err("version: 1\nallow:\n  - host: a..test\n",
		   "t.yaml:3:11: host: 'a..test': empty label");
	expect_err("version: 1\nallow:\n  - host: 1.2.3.4\n",
		   "t.yaml:3:11: host: '1.2.3.4': an address, not a host name (use ip:)");
	expect_err("version: 1\nallow:\n  - host: \"exa mple.test\"\n",
		   "t.yaml:3:11: host: 'exa mple.test': character not allowed in a host name (use "
		   "letters, digits, '-', '_'; IDNs in punycode)");
	/* ports */
	expect_err("version: 1\nallow:\n  - host: a.test\n    ports: [70000]\n",
		   "t.yaml:4:13: ports: '70000' is outside 1-65535");
	expect_err("version: 1\nallow:\n  - host: a.test\n    ports: [0]\n",
		   "t.yaml:4:13: ports: '0' is outside 1-65535");
	expect_err("version: 1\nallow:\n  - host: a.test\n    ports: [\"9100-9000\"]\n",
		   "t.yaml:4:13: ports: range '9100-9000' runs backwards");
	expect_err("version: 1\nallow:\n  - host: a.test\n    ports: [\"+1\"]\n",
		   "t.yaml:4:13: ports: '+1' is not a port (443) or a range (\"9000-9100\")");
	expect_err("version: 1\nallow:\n  - host: a.test\n    ports: [\"1-2-3\"]\n",
		   "t.yaml:4:13: ports: '1-2-3' is not a port (443) or a range (\"9000-9100\")");
	expect_err("version: 1\nallow:\n  - host: x.test\n    ports: []\n",
		   "t.yaml:4:5: ports: empty list (leave ports out for all ports)");
	/* entry shape */
	expect_err("version: 1\nallow:\n  - ports: [1]\n",
		   "t.yaml:3:5: allow entry: needs a destination: host, cidr or ip");
	expect_err("version: 1\nallow:\n  - host: a.test\n    cidr: 1.2.3.0/24\n",
		   "t.yaml:4:5: allow entry: one destination per entry (host, cidr or ip)");
	expect_err("version: 1\nblock:\n  - host: x.test\n    ports: [1]\n",
		   "t.yaml:4:5: block entry: a blocked host is refused on every port; ports/proto "
		   "apply only to cidr/ip block entries");
	/* document shape */
	expect_err("", "t.yaml:1:1: empty policy (expected at least 'version: 1')");
	expect_err("mode: enforce\n", "t.yaml:1:1: policy: missing 'version: 1'");
	expect_err("- a\n", "t.yaml:1:1: policy: expected a mapping, found a list");
	expect_err("version: 1\n---\nversion: 1\n",
		   "t.yaml:2:1: only one YAML document is allowed in a policy");
	expect_err("version: 1\nallow: [\n",
		   "t.yaml:3:1: YAML syntax error: did not find expected node content while "
		   "parsing a flow node");
	expect_err("version: 1\nallow:\n  - host: \"x.test\xc3\x28\"\n",
		   "t.yaml:3:19: YAML syntax error: invalid trailing UTF-8 octet");
	expect_err("version: 1\nallow:\n  - host: \"a\\0b.test\"\n",
		   "t.yaml:3:11: NUL byte in a string");
	/* YAML features a policy refuses */
	expect_err("version: 1\nallow: &a []\n",
		   "t.yaml:2:8: anchors (&name) are not supported in a policy");
	expect_err("version: 1\nallow:\n  - host: !!str x.test\n",
		   "t.yaml:3:11: tags (!tag) are not supported in a policy");
	expect_err("version: 1\nallow: *a\n",
		   "t.yaml:2:8: aliases (*name) are not supported in a policy");
}

static void test_duplicates(void **state)
{
	(void)state;
	expect_err("version: 1\nmode: enforce\nmode: observe\n",
		   "t.yaml:3:1: policy: duplicate key 'mode' (first at line 2, column 1)");
	expect_err("version: 1\nversion: 1\n",
		   "t.yaml:2:1: policy: duplicate key 'version' (first at line 1, column 1)");
	expect_err("version: 1\nallow:\n  - host: a.test\n    host: b.test\n",
		   "t.yaml:4:5: allow entry: duplicate key 'host' (first at line 3, column 5)");
	expect_err("version: 1\nallow:\n  - {host: a.test, ports: [1], ports: [2]}\n",
		   "t.yaml:3:32: allow entry: duplicate key 'ports' (first at line 3, column 20)");
	expect_err("version: 1\ndns:\n  refuse_unlisted: true\n  refuse_unlisted: false\n",
		   "t.yaml:4:3: dns: duplicate key 'refuse_unlisted' (first at line 3, column 3)");
	expect_err("version: 1\nsteps:\n  build:\n    allow: []\n  build:\n    allow: []\n",
		   "t.yaml:5:3: steps: duplicate key 'build' (first at line 3, column 3)");
	expect_err("version: 1\nsteps:\n  b:\n    allow: []\n    allow: []\n",
		   "t.yaml:5:5: step: duplicate key 'allow' (first at line 4, column 5)");
	/* Quoting does not make a different key. */
	expect_err("version: 1\n\"mode\": enforce\nmode: observe\n",
		   "t.yaml:3:1: policy: duplicate key 'mode' (first at line 2, column 1)");
}

static void test_steps(void **state)
{
	static const char y[] = "version: 1\n"
				"allow:\n"
				"  - host: common.example.test\n"
				"steps:\n"
				"  build:\n"
				"    allow:\n"
				"      - host: registry.example.test\n"
				"        ports: [443]\n"
				"    block:\n"
				"      - cidr: 10.0.0.0/8\n"
				"  test:\n"
				"  release:\n"
				"    allow:\n"
				"      - host: upload.example.test\n";
	char err[512];
	struct policy *p = parse(y, err);
	struct policy_set *s;

	(void)state;
	assert_non_null(p);
	assert_int_equal(p->nsteps, 3);
	assert_string_equal(p->steps[0].name, "build");
	assert_int_equal(p->steps[0].allow.n, 1);
	assert_int_equal(p->steps[0].block.n, 1);
	assert_int_equal(p->steps[1].allow.n, 0);
	assert_non_null(policy_find_step(p, "release"));
	assert_null(policy_find_step(p, "deploy"));

	s = policy_effective(p, NULL, NULL, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(s->allow.n, 1);
	assert_int_equal(policy_check_host(s, "registry.example.test", NULL), POLICY_DENY);
	assert_int_equal(policy_check_host(s, "common.example.test", NULL), POLICY_ALLOW);
	policy_set_free(s);

	s = policy_effective(p, "build", NULL, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(s->allow.n, 2);
	assert_int_equal(s->block.n, 1);
	assert_int_equal(s->allow.v[1].origin, POLICY_FROM_STEP);
	assert_int_equal(policy_check_host(s, "registry.example.test", NULL), POLICY_ALLOW);
	assert_int_equal(policy_check_host(s, "common.example.test", NULL), POLICY_ALLOW);
	assert_int_equal(policy_check_host(s, "upload.example.test", NULL), POLICY_DENY);
	assert_int_equal(
	    policy_check_addr(s, AF_INET, "\x0a\x01\x02\x03", 443, POLICY_PROTO_TCP, NULL),
	    POLICY_BLOCK);
	policy_set_free(s);

	s = policy_effective(p, "test", NULL, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(s->allow.n, 1);
	policy_set_free(s);

	assert_null(policy_effective(p, "deploy", NULL, err, sizeof(err)));
	assert_string_equal(err, "t.yaml: no step named 'deploy' in the policy");
	policy_free(p);
}

static void test_dns_files_defaults(void **state)
{
	static const char y[] =
	    "version: 1\n"
	    "mode: observe\n"
	    "fail_on_violation: true\n"
	    "dns:\n"
	    "  resolvers: [\"::ffff:127.0.0.53\", \"1.1.1.1:5353\", \"[2001:db8::1]:53\"]\n"
	    "  refuse_unlisted: false\n"
	    "  refuse_with: nxdomain\n"
	    "  upstream: \"[::1]:5353\"\n"
	    "files: [/etc/shadow, \"/home/*/.ssh/*\"]\n";
	char err[512];
	struct policy *p = parse(y, err);

	(void)state;
	assert_non_null(p);
	assert_int_equal(p->mode, POLICY_MODE_OBSERVE);
	assert_true(policy_fails_on_violation(p, POLICY_MODE_OBSERVE));
	assert_int_equal(p->dns.nresolvers, 3);
	/* v4-mapped resolver address is the IPv4 address */
	assert_int_equal(p->dns.resolvers[0].family, AF_INET);
	assert_int_equal(p->dns.resolvers[0].port, 0);
	assert_int_equal(p->dns.resolvers[1].port, 5353);
	assert_int_equal(p->dns.resolvers[2].family, AF_INET6);
	assert_int_equal(p->dns.resolvers[2].port, 53);
	assert_false(p->dns.refuse_unlisted);
	assert_int_equal(p->dns.refuse_with, POLICY_REFUSE_NXDOMAIN);
	assert_true(p->dns.has_upstream);
	assert_int_equal(p->dns.upstream.family, AF_INET6);
	assert_int_equal(p->dns.upstream.port, 5353);
	assert_int_equal(p->nfiles, 2);
	assert_string_equal(p->files[1], "/home/*/.ssh/*");
	policy_free(p);

	/* Minimal file: defaults. */
	p = parse("version: 1\n", err);
	assert_non_null(p);
	assert_int_equal(p->mode, POLICY_MODE_UNSET);
	assert_int_equal(p->fail_on_violation, -1);
	assert_true(p->dns.refuse_unlisted);
	assert_string_equal(p->sha256,
			    "09bfcc6a14b83e2192b8673677725c84883ee9cd0c70e45c9ec09daa8f2b2847");
	policy_free(p);

	/* Null lists are empty lists; a lone port is a list of one. */
	p = parse("version: 1\nallow:\nblock: ~\nsteps:\ndns:\nfiles:\n", err);
	assert_non_null(p);
	policy_free(p);
	p = parse("version: 1\nallow:\n  - {ip: \"2001:db8::1\", ports: 53, proto: udp}\n", err);
	assert_non_null(p);
	assert_int_equal(p->allow.v[0].prefix, 128);
	assert_int_equal(p->allow.v[0].rules[0].lo, 53);
	assert_int_equal(p->allow.v[0].rules[0].proto, POLICY_PROTO_UDP);
	policy_free(p);

	assert_int_equal(policy_mode_parse("enforce"), POLICY_MODE_ENFORCE);
	assert_int_equal(policy_mode_parse("Enforce"), POLICY_MODE_UNSET);
	assert_string_equal(policy_mode_name(POLICY_MODE_LEARN), "learn");
}

static void test_format_roundtrip(void **state)
{
	char err[512];
	struct policy *p = parse(issue_example, err), *q;
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT;

	(void)state;
	assert_non_null(p);
	policy_format(&a, p);
	q = parse(sb_str(&a), err);
	if (!q)
		print_error("%s\n%s\n", sb_str(&a), err);
	assert_non_null(q);
	policy_format(&b, q);
	assert_string_equal(sb_str(&a), sb_str(&b));
	policy_free(p);
	policy_free(q);
	sb_release(&a);
	sb_release(&b);
}

static void test_load_file(void **state)
{
	char err[512];

	(void)state;
	assert_null(policy_load("/nonexistent/policy.yaml", err, sizeof(err)));
	assert_string_equal(err,
			    "/nonexistent/policy.yaml: cannot read: No such file or directory");
}

/* Every shipped example must load, and every step's rules must reach kernel form. */
static int count_cb(const struct policy_cidr *c, void *arg)
{
	(void)c;
	(*(int *)arg)++;
	return 0;
}

static void test_examples(void **state)
{
	DIR *d = opendir("examples");
	struct dirent *de;
	int n = 0;
	char err[512];
	struct policy_list *bl = policy_parse_blocklist(
	    "b", policy_blocklist_builtin, strlen(policy_blocklist_builtin), err, sizeof(err));

	(void)state;
	assert_non_null(d);
	assert_non_null(bl);
	while ((de = readdir(d))) {
		char path[512];
		struct policy *p;
		size_t len = strlen(de->d_name);

		if (len < 6 || strcmp(de->d_name + len - 5, ".yaml"))
			continue;
		snprintf(path, sizeof(path), "examples/%s", de->d_name);
		p = policy_load(path, err, sizeof(err));
		if (!p)
			print_error("%s\n", err);
		assert_non_null(p);
		for (size_t i = 0; i <= p->nsteps; i++) {
			const char *step = i < p->nsteps ? p->steps[i].name : NULL;
			struct policy_set *s = policy_effective(p, step, bl, err, sizeof(err));
			int k = 0;

			assert_non_null(s);
			assert_int_equal(
			    policy_for_each_cidr(s, false, count_cb, &k, err, sizeof(err)), 0);
			assert_int_equal(
			    policy_for_each_cidr(s, true, count_cb, &k, err, sizeof(err)), 0);
			policy_set_free(s);
		}
		policy_free(p);
		n++;
	}
	closedir(d);
	policy_list_free(bl);
	/* npm, pip, Go, Maven, apt, Docker at least */
	assert_true(n >= 6);
}

/* inbound: addresses only (a connecting peer has no name to judge), its own
 * list; absent means the default (127.0.0.1 and ::1, filled by the agent). */
static void test_inbound(void **state)
{
	char err[512];
	struct policy *p;

	(void)state;
	p = parse("version: 1\n", err);
	assert_non_null(p);
	assert_false(p->has_inbound);
	policy_free(p);

	p = parse("version: 1\ninbound:\n  - cidr: 10.1.0.0/16\n    ports: [22]\n  - ip: ::1\n",
		  err);
	if (!p)
		print_error("%s\n", err);
	assert_non_null(p);
	assert_true(p->has_inbound);
	assert_int_equal(p->inbound.n, 2);
	assert_int_equal(p->inbound.v[0].prefix, 16);
	assert_int_equal(p->inbound.v[0].rules[0].lo, 22);
	assert_int_equal(p->inbound.v[1].family, AF_INET6);
	assert_int_equal(p->allow.n, 0);
	policy_free(p);

	p = parse("version: 1\ninbound: []\n", err);
	assert_non_null(p);
	assert_true(p->has_inbound);
	assert_int_equal(p->inbound.n, 0);
	policy_free(p);

	expect_err(
	    "version: 1\ninbound:\n  - host: peer.test\n",
	    "t.yaml:3:5: inbound entry: a peer is judged by its address; use cidr or ip, not "
	    "host");
	expect_err("version: 1\ninbound:\n  - cidr: 10.0.0.0/33\n",
		   "t.yaml:3:11: cidr: '10.0.0.0/33': IPv4 prefix length above 32");
}

/* `methods:` and `paths:`: what they hold, where they may be, every refusal with its place,
 * the rendering, and the judgement policy_http_admits mirrors from the kernel. */
static void test_methods_paths(void **state)
{
	char err[512];
	struct strbuf a = STRBUF_INIT;
	struct policy *p, *q;
	const struct policy_http *h;

	(void)state;
	p = parse("version: 1\n"
		  "allow:\n"
		  "  - host: registry.test\n"
		  "    ports: [443]\n"
		  "    methods: [GET, HEAD, GET]\n"
		  "    paths: [\"/simple/\", \"/@scope%2f\"]\n"
		  "  - host: free.test\n"
		  "steps:\n"
		  "  release:\n"
		  "    allow:\n"
		  "      - {host: upload.test, methods: [POST], proto: tcp}\n",
		  err);
	if (!p)
		print_error("%s\n", err);
	assert_non_null(p);
	h = p->allow.v[0].http;
	assert_non_null(h);
	assert_int_equal(h->methods,
			 policy_http_method_bit("GET", 3) | policy_http_method_bit("HEAD", 4));
	assert_int_equal(h->npaths, 2);
	assert_string_equal(h->paths[0], "/simple/");
	assert_string_equal(h->paths[1], "/@scope%2f");
	assert_null(p->allow.v[1].http); /* the simple policy stays simple: any request */
	assert_non_null(p->steps[0].allow.v[0].http);
	assert_int_equal(p->steps[0].allow.v[0].http->npaths, 0);
	/* rendered, and read back the same */
	policy_format(&a, p);
	assert_non_null(strstr(sb_str(&a), "host: \"registry.test\", ports: [443], methods: [GET, "
					   "HEAD], paths: [\"/simple/\", \"/@scope%2f\"]"));
	q = parse(sb_str(&a), err);
	assert_non_null(q);
	assert_int_equal(q->allow.v[0].http->methods, h->methods);
	assert_string_equal(q->allow.v[0].http->paths[1], "/@scope%2f");
	/* the judgement (bpf/httpjudge.bpf.h decides the same) */
	assert_true(policy_http_admits(h, "GET", "/simple/pkg/"));
	assert_true(policy_http_admits(h, "HEAD", "/@scope%2fname"));
	assert_true(policy_http_admits(h, "GET", "/simple/a?q=/../x")); /* the query is not path */
	assert_false(policy_http_admits(h, "POST", "/simple/pkg/"));
	assert_false(policy_http_admits(h, "get", "/simple/pkg/"));
	assert_false(policy_http_admits(h, "GET", "/simplex"));
	assert_false(policy_http_admits(h, "GET", "/simple/../secret"));
	assert_false(policy_http_admits(h, "GET", "/simple/%2e%2e/secret"));
	assert_false(policy_http_admits(h, "GET", "/simple/%2E./secret"));
	assert_false(policy_http_admits(h, "GET", "/simple/..;/secret"));
	assert_false(policy_http_admits(h, "GET", "/simple/..\\secret"));
	assert_false(policy_http_admits(h, "GET", "/simple/%5csecret"));
	assert_false(policy_http_admits(h, "GET", "/simple/%252e%252e/secret"));
	assert_false(policy_http_admits(h, "GET", "/simple/.hidden"));
	assert_false(policy_http_admits(h, "GET", "http://registry.test/simple/"));
	assert_false(policy_http_admits(h, "GET", "*"));
	{
		char longt[300];

		memset(longt, 'a', sizeof(longt) - 1);
		memcpy(longt, "/simple/", 8);
		longt[sizeof(longt) - 1] = 0;
		assert_false(policy_http_admits(h, "GET", longt)); /* past what the kernel reads */
		longt[FB_PATH - 1] = 0;
		assert_true(policy_http_admits(h, "GET", longt));
	}
	assert_true(policy_http_admits(NULL, "DELETE", "/anything"));
	assert_true(policy_http_admits(p->steps[0].allow.v[0].http, "POST", "/any/../where"));
	assert_false(policy_http_admits(p->steps[0].allow.v[0].http, "PUT", "/"));
	policy_free(p);
	policy_free(q);
	sb_release(&a);

	/* refusals, each with its place */
	expect_err("version: 1\nallow:\n  - host: a.test\n    methods: [get]\n",
		   "t.yaml:4:15: methods: 'get' is not a method: methods are written in capitals "
		   "(GET)");
	expect_err(
	    "version: 1\nallow:\n  - host: a.test\n    methods: [FETCH]\n",
	    "t.yaml:4:15: methods: 'FETCH' is not a method runwarden knows (GET, HEAD, POST, "
	    "PUT, DELETE, PATCH, OPTIONS, ... docs/policy.md)");
	expect_err("version: 1\nallow:\n  - host: a.test\n    methods: GET\n",
		   "t.yaml:4:14: methods: expected a list ([GET, HEAD])");
	expect_err("version: 1\nallow:\n  - host: a.test\n    methods: []\n",
		   "t.yaml:4:5: methods: empty (leave methods out for any request)");
	expect_err("version: 1\nallow:\n  - host: a.test\n    paths: [simple/]\n",
		   "t.yaml:4:13: paths: 'simple/': a path prefix starts with '/'");
	expect_err(
	    "version: 1\nallow:\n  - host: a.test\n    paths: [\"/a b\"]\n",
	    "t.yaml:4:13: paths: '/a b': spaces, control bytes and non-ASCII are not allowed "
	    "(percent-encode them as the client sends them)");
	expect_err("version: 1\nallow:\n  - host: a.test\n    paths: [\"/a\\n\"]\n",
		   "t.yaml:4:13: paths: '/a?': spaces, control bytes and non-ASCII are not allowed "
		   "(percent-encode them as the client sends them)");
	expect_err("version: 1\nallow:\n  - host: a.test\n    paths: [\"/a?q=1\"]\n",
		   "t.yaml:4:13: paths: '/a?q=1': a prefix of the path only: no '?' or '#'");
	expect_err("version: 1\nallow:\n  - host: a.test\n    paths: [\"/a%zz\"]\n",
		   "t.yaml:4:13: paths: '/a%zz': '%' must start a percent-encoded byte (%2F)");
	expect_err("version: 1\nallow:\n  - host: a.test\n    paths: [\"/a/../b\"]\n",
		   "t.yaml:4:13: paths: '/a/../b': requests with a '.' segment, a backslash or an "
		   "encoded '%' or '\\' are refused under paths: a prefix cannot hold them");
	expect_err("version: 1\nallow:\n  - host: a.test\n    paths: []\n",
		   "t.yaml:4:5: paths: empty (leave paths out for any request)");
	{
		char y[512];

		snprintf(y, sizeof(y),
			 "version: 1\nallow:\n  - host: a.test\n    paths: [/%0129d]\n", 0);
		expect_err(y, "t.yaml:4:13: paths: '/000000000000000000000000000000000000000...': "
			      "longer than 128 bytes");
	}
	expect_err("version: 1\nallow:\n  - host: a.test\n    paths: [/1, /2, /3, /4, /5, /6, /7, "
		   "/8, /9]\n",
		   "t.yaml:4:45: paths: more than 8 prefixes in one entry");
	expect_err("version: 1\nallow:\n  - ip: 10.0.0.1\n    methods: [GET]\n",
		   "t.yaml:4:5: allow entry: methods/paths need a host entry (a request is judged "
		   "by the host it names; an ip/cidr entry trusts every request to its addresses)");
	expect_err("version: 1\nallow:\n  - {cidr: 10.0.0.0/8, paths: [/a/]}\n",
		   "t.yaml:3:24: allow entry: methods/paths need a host entry (a request is judged "
		   "by the host it names; an ip/cidr entry trusts every request to its addresses)");
	expect_err("version: 1\nblock:\n  - host: a.test\n    methods: [POST]\n",
		   "t.yaml:4:5: block entry: methods/paths narrow what an allowed host admits; a "
		   "blocked destination is refused whole");
	expect_err(
	    "version: 1\nallow:\n  - host: a.test\n    proto: udp\n    methods: [GET]\n",
	    "t.yaml:5:5: allow entry: methods/paths judge HTTP over TCP; proto udp has none");
	expect_err(
	    "version: 1\ninbound:\n  - ip: 10.0.0.1\n    methods: [GET]\n",
	    "t.yaml:4:5: inbound entry: methods/paths need a host entry (a request is judged "
	    "by the host it names; an ip/cidr entry trusts every request to its addresses)");
}

static void test_on_finding(void **state)
{
	char err[512];
	struct policy *p, *q;
	struct strbuf a = STRBUF_INIT;

	(void)state;
	p = parse("version: 1\non_finding: {high: kill}\n", err);
	assert_non_null(p);
	/* named severities and those above them, up to the next one named */
	assert_int_equal(p->on_finding[SEV_MEDIUM], FINDING_ACT_NONE);
	assert_int_equal(p->on_finding[SEV_HIGH], FINDING_ACT_KILL);
	assert_int_equal(p->on_finding[SEV_CRITICAL], FINDING_ACT_KILL);
	policy_free(p);
	p = parse("version: 1\non_finding:\n  medium: kill\n  high: none\n", err);
	assert_non_null(p);
	assert_int_equal(p->on_finding[SEV_LOW], FINDING_ACT_NONE);
	assert_int_equal(p->on_finding[SEV_MEDIUM], FINDING_ACT_KILL);
	assert_int_equal(p->on_finding[SEV_HIGH], FINDING_ACT_NONE);
	assert_int_equal(p->on_finding[SEV_CRITICAL], FINDING_ACT_NONE);
	/* policy check's rendering loads back the same */
	policy_format(&a, p);
	assert_non_null(strstr(sb_str(&a), "on_finding: {medium: kill, high: none}\n"));
	q = parse(sb_str(&a), err);
	assert_non_null(q);
	assert_memory_equal(p->on_finding, q->on_finding, sizeof(p->on_finding));
	policy_free(p);
	policy_free(q);
	sb_release(&a);
	p = parse("version: 1\n", err);
	for (int s = 0; s < SEV_COUNT; s++)
		assert_int_equal(p->on_finding[s], FINDING_ACT_NONE);
	policy_free(p);
	expect_err("version: 1\non_finding: {severe: kill}\n",
		   "t.yaml:2:14: on_finding: 'severe' is not a severity (info, low, medium, high, "
		   "critical)");
	expect_err("version: 1\non_finding: {high: stop}\n",
		   "t.yaml:2:20: on_finding action: 'stop' is not one of: none, kill");
	expect_err("version: 1\non_finding: kill\n",
		   "t.yaml:2:13: on_finding: expected a mapping, found a scalar");
	expect_err("version: 1\non_finding: {high: kill, high: none}\n",
		   "t.yaml:2:26: on_finding: duplicate key 'high' (first at line 2, column 14)");
}

/* `capture:` as a level, as a mapping of levels and limits, per allow entry; its errors; the
 * rendering loads back the same. */
static void test_capture(void **state)
{
	char err[512];
	struct policy *p, *q;
	struct strbuf a = STRBUF_INIT;

	(void)state;
	p = parse("version: 1\ncapture: details\n", err);
	assert_non_null(p);
	assert_int_equal(p->capture.allowed, CAPTURE_DETAILS);
	assert_int_equal(p->capture.not_allowed, CAPTURE_UNSET);
	policy_free(p);
	p = parse("version: 1\ncapture: {default: summary, not_allowed: full, body_bytes: 4KiB,"
		  " budget_bytes: 1MiB, h2_bytes: 100000}\nallow:\n  - host: a.test\n"
		  "    capture: full\n  - host: b.test\n",
		  err);
	assert_non_null(p);
	assert_int_equal(p->capture.allowed, CAPTURE_SUMMARY);
	assert_int_equal(p->capture.not_allowed, CAPTURE_FULL);
	assert_int_equal(p->capture.body_bytes, 4096);
	assert_int_equal(p->capture.budget_bytes, 1 << 20);
	assert_int_equal(p->capture.h2_bytes, 100000);
	assert_int_equal(p->allow.v[0].capture, CAPTURE_FULL);
	assert_int_equal(p->allow.v[1].capture, CAPTURE_UNSET);
	policy_format(&a, p);
	assert_non_null(strstr(sb_str(&a), "capture: {default: summary, not_allowed: full, "
					   "body_bytes: 4096, budget_bytes: 1048576, "
					   "h2_bytes: 100000}\n"));
	assert_non_null(strstr(sb_str(&a), "host: \"a.test\", capture: full"));
	q = parse(sb_str(&a), err);
	assert_non_null(q);
	assert_memory_equal(&p->capture, &q->capture, sizeof(p->capture));
	assert_int_equal(q->allow.v[0].capture, CAPTURE_FULL);
	policy_free(p);
	policy_free(q);
	sb_release(&a);
	p = parse("version: 1\n", err);
	assert_false(p->capture.written);
	assert_int_equal(p->capture.allowed, CAPTURE_UNSET);
	policy_free(p);

	expect_err("version: 1\ncapture: everything\n",
		   "t.yaml:2:10: capture: 'everything' is not one of: summary, details, full");
	expect_err("version: 1\ncapture: {defaults: full}\n",
		   "t.yaml:2:11: capture: unknown key 'defaults'");
	expect_err(
	    "version: 1\ncapture: {body_bytes: 2MiB}\n",
	    "t.yaml:2:23: capture.body_bytes: '2MiB': expected a size in bytes (65536, 64KiB, "
	    "1MiB), 1 to 1048576");
	expect_err("version: 1\ncapture: {body_bytes: 0}\n",
		   "t.yaml:2:23: capture.body_bytes: '0': expected a size in bytes (65536, 64KiB, "
		   "1MiB), 1 to 1048576");
	expect_err("version: 1\ncapture: {budget_bytes: 12kb}\n",
		   "t.yaml:2:25: capture.budget_bytes: '12kb': expected a size in bytes (65536, "
		   "64KiB, 1MiB), 1 to 1073741824");
	expect_err("version: 1\ncapture: {budget_bytes: 99999999999999999999}\n",
		   "t.yaml:2:25: capture.budget_bytes: '99999999999999999999': expected a size in "
		   "bytes (65536, 64KiB, 1MiB), 1 to 1073741824");
	expect_err("version: 1\nblock:\n  - host: x.test\n    capture: full\n",
		   "t.yaml:4:5: block entry: a blocked destination has nothing to capture; set "
		   "`capture: {not_allowed: ...}` at the top level");
	expect_err("version: 1\nallow:\n  - host: x.test\n    capture: [full]\n",
		   "t.yaml:4:14: capture: expected a value, found a list");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_issue_example),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_duplicates),
	    cmocka_unit_test(test_steps),
	    cmocka_unit_test(test_dns_files_defaults),
	    cmocka_unit_test(test_format_roundtrip),
	    cmocka_unit_test(test_load_file),
	    cmocka_unit_test(test_examples),
	    cmocka_unit_test(test_inbound),
	    cmocka_unit_test(test_on_finding),
	    cmocka_unit_test(test_methods_paths),
	    cmocka_unit_test(test_capture),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
