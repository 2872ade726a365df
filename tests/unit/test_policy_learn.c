/* `learn` on crafted event logs: hosts, IPs, ports and protocols aggregated, steps split,
 * wildcards only past the threshold, hostile names kept out, torn logs, and the output always
 * loading back as a valid policy that allows what was seen. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy/learn.h"
#include "policy/policy.h"

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/rw-learn-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd);
}

/* Writes RUNDIR tmpdir/name/events.ndjson; returns the run dir path (static buffer per call). */
static const char *rundir(const char *name, const char *events)
{
	static char dirs[4][256];
	static int k;
	char *d = dirs[k++ % 4], path[300];
	FILE *f;

	snprintf(d, 256, "%s/%s", tmpdir, name);
	mkdir(d, 0700);
	snprintf(path, sizeof(path), "%s/events.ndjson", d);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(events, f);
	fclose(f);
	return d;
}

/* The same, for a run that enforced step (NULL: the top level): its summary.json says so. */
static const char *rundir_step(const char *name, const char *step, const char *events)
{
	const char *d = rundir(name, events);
	char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/summary.json", d);
	f = fopen(path, "w");
	assert_non_null(f);
	if (step)
		fprintf(f, "{\"step\":\"%s\",\"mode\":\"observe\"}\n", step);
	else
		fputs("{\"step\":null,\"mode\":\"observe\"}\n", f);
	fclose(f);
	return d;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

/* Runs learn, checks the output loads, returns it (caller frees) and the policy in *pp. */
static char *learn(const char *const *dirs, int n, int wmin, struct policy **pp)
{
	char out[300], err[512];
	char *text;
	struct policy *p;

	snprintf(out, sizeof(out), "%s/learned.yaml", tmpdir);
	assert_int_equal(learn_write_opts(dirs, n, out, wmin), 0);
	text = slurp(out);
	p = policy_parse("learned.yaml", text, strlen(text), err, sizeof(err));
	if (!p)
		print_error("%s\n%s\n", text, err);
	assert_non_null(p);
	*pp = p;
	return text;
}

#define CONNECT(step, proto, daddr, dport, host, verdict)                                          \
	"{\"seq\":1,\"prev\":\"x\",\"ts\":\"t\",\"kind\":\"connect\",\"pid\":1,\"ppid\":0,"        \
	"\"comm\":\"c\",\"exe\":\"/bin/c\",\"step\":" step ",\"proto\":\"" proto                   \
	"\",\"family\":\"ipv4\",\"daddr\":\"" daddr "\",\"dport\":" #dport ",\"host\":" host       \
	",\"verdict\":\"" verdict "\"}\n"
#define DNS(step, query, verdict)                                                                  \
	"{\"seq\":2,\"kind\":\"dns\",\"pid\":1,\"step\":" step ",\"query\":\"" query               \
	"\",\"qtype\":\"A\",\"answers\":[\"192.0.2.1\"],\"verdict\":\"" verdict "\"}\n"
#define CLOSE "{\"seq\":9,\"kind\":\"close\",\"count\":9}\n"
#define DNSQ(query, qtype)                                                                         \
	"{\"seq\":2,\"kind\":\"dns\",\"pid\":1,\"step\":null,\"query\":\"" query                   \
	"\",\"qtype\":\"" qtype "\",\"answers\":[],\"verdict\":\"allow\"}\n"

static enum policy_verdict host_v(struct policy *p, const char *step, const char *name,
				  uint16_t port, unsigned proto)
{
	char err[256];
	struct policy_set *s = policy_effective(p, step, NULL, err, sizeof(err));
	struct policy_match m;
	enum policy_verdict v;

	assert_non_null(s);
	v = policy_check_host(s, name, &m);
	if (v == POLICY_ALLOW && !policy_rules_cover(m.rules, m.nrules, port, proto))
		v = POLICY_DENY;
	policy_set_free(s);
	return v;
}

static enum policy_verdict addr_v(struct policy *p, const char *step, const char *a, uint16_t port,
				  unsigned proto)
{
	char err[256];
	struct policy_set *s = policy_effective(p, step, NULL, err, sizeof(err));
	uint8_t buf[16];
	enum policy_verdict v;
	int fam = strchr(a, ':') ? AF_INET6 : AF_INET;

	assert_non_null(s);
	assert_int_equal(inet_pton(fam, a, buf), 1);
	v = policy_check_addr(s, fam, buf, port, proto, NULL);
	policy_set_free(s);
	return v;
}

static void test_basic(void **state)
{
	const char *d = rundir(
	    "basic",
	    "{\"seq\":0,\"kind\":\"exec\",\"pid\":1,\"step\":null,\"exe\":\"/bin/sh\"}\n" DNS(
		"null", "Registry.Example.Test.", "audit")
		CONNECT("null", "tcp", "192.0.2.10", 443, "\"registry.example.test\"", "audit")
		    CONNECT("null", "tcp", "192.0.2.10", 80, "\"registry.example.test\"", "allow")
			CONNECT("null", "udp", "198.51.100.4", 4000, "null", "audit")
			    CONNECT("null", "udp", "::ffff:198.51.100.4", 4001, "null", "audit")
				CONNECT("null", "udp", "127.0.0.53", 53, "null", "allow")
				    DNS("null", "lookup-only.example.test", "audit")
					CONNECT("null", "tcp", "203.0.113.66", 443,
						"\"evil.example.test\"", "block")
					    DNS("null", "evil.example.test", "block") CLOSE);
	struct policy *p;
	char *text = learn(&d, 1, LEARN_WILDCARD_MIN, &p);

	(void)state;
	assert_int_equal(p->mode, POLICY_MODE_ENFORCE);
	assert_int_equal(p->nsteps, 0);
	/* exactly what was used */
	assert_int_equal(host_v(p, NULL, "registry.example.test", 443, POLICY_PROTO_TCP),
			 POLICY_ALLOW);
	assert_int_equal(host_v(p, NULL, "registry.example.test", 80, POLICY_PROTO_TCP),
			 POLICY_ALLOW);
	assert_int_equal(host_v(p, NULL, "registry.example.test", 443, POLICY_PROTO_UDP),
			 POLICY_DENY);
	assert_int_equal(host_v(p, NULL, "registry.example.test", 8080, POLICY_PROTO_TCP),
			 POLICY_DENY);
	assert_int_equal(addr_v(p, NULL, "198.51.100.4", 4000, POLICY_PROTO_UDP), POLICY_ALLOW);
	/* v4-mapped folded into the same IPv4 entry; 4000-4001 became a range */
	assert_int_equal(addr_v(p, NULL, "198.51.100.4", 4001, POLICY_PROTO_UDP), POLICY_ALLOW);
	assert_int_equal(addr_v(p, NULL, "198.51.100.4", 4001, POLICY_PROTO_TCP), POLICY_DENY);
	assert_non_null(strstr(text, "- ip: \"198.51.100.4\"\n    ports: [\"4000-4001\"]\n    "
				     "proto: udp\n"));
	/* a looked-up name is resolvable */
	assert_int_equal(host_v(p, NULL, "lookup-only.example.test", 443, POLICY_PROTO_TCP),
			 POLICY_ALLOW);
	/* resolver goes to dns.resolvers, not allow */
	assert_int_equal(p->dns.nresolvers, 1);
	assert_int_equal(addr_v(p, NULL, "127.0.0.53", 53, POLICY_PROTO_UDP), POLICY_DENY);
	/* blocked destinations are reported, not allowed */
	assert_int_equal(host_v(p, NULL, "evil.example.test", 443, POLICY_PROTO_TCP), POLICY_DENY);
	assert_non_null(strstr(text, "# blocked during the runs (not allowed here): "
				     "evil.example.test\n"));
	assert_non_null(strstr(text, "- host: \"lookup-only.example.test\"  # looked up only"));
	free(text);
	policy_free(p);
}

static enum policy_verdict question_v(struct policy *p, const char *name, int qtype)
{
	char err[256];
	struct policy_set *s = policy_effective(p, NULL, NULL, err, sizeof(err));
	enum policy_verdict v;

	assert_non_null(s);
	v = policy_check_question(s, name, qtype, NULL);
	policy_set_free(s);
	return v;
}

/* apt's `_http._tcp.<mirror>` SRV lookup is admitted through the mirror's own entry, so learn
 * gives it none (an entry would allow connections to whatever the name resolved to); a derived
 * name the base's ports do not cover, or also asked as another type, keeps its own entry. */
static void test_derived_questions(void **state)
{
	const char *d = rundir(
	    "derived",
	    DNSQ("_http._tcp.mirror.example.test", "SRV")
		CONNECT("null", "tcp", "192.0.2.10", 80, "\"mirror.example.test\"", "allow")
		    DNSQ("_8443._https.web.example.test", "HTTPS")
			CONNECT("null", "tcp", "192.0.2.11", 8443, "\"web.example.test\"", "allow")
			    DNSQ("_https._tcp.other.example.test", "SRV")
				CONNECT("null", "tcp", "192.0.2.12", 80, "\"other.example.test\"",
					"allow") DNSQ("_http._tcp.third.example.test", "SRV")
				    DNSQ("_http._tcp.third.example.test", "TXT")
					CONNECT("null", "tcp", "192.0.2.13", 80,
						"\"third.example.test\"", "allow") CLOSE);
	struct policy *p;
	char *text = learn(&d, 1, LEARN_WILDCARD_MIN, &p);

	(void)state;
	assert_null(strstr(text, "_http._tcp.mirror"));
	assert_null(strstr(text, "_8443._https.web"));
	assert_int_equal(question_v(p, "_http._tcp.mirror.example.test", 33), POLICY_ALLOW);
	assert_int_equal(question_v(p, "_8443._https.web.example.test", 65), POLICY_ALLOW);
	/* port 443 was never used on other.example.test: the SRV question needs its own entry */
	assert_non_null(
	    strstr(text, "- host: \"_https._tcp.other.example.test\"  # looked up only"));
	assert_int_equal(question_v(p, "_https._tcp.other.example.test", 33), POLICY_ALLOW);
	/* asked as TXT too, which no base admits */
	assert_non_null(
	    strstr(text, "- host: \"_http._tcp.third.example.test\"  # looked up only"));
	assert_int_equal(question_v(p, "_http._tcp.third.example.test", 16), POLICY_ALLOW);
	free(text);
	policy_free(p);
}

/* UDP-Lite and ICMP are learned as themselves: a policy that lets them pass, and nothing more. */
static void test_other_protocols(void **state)
{
	const char *d = rundir(
	    "protos", CONNECT("null", "udplite", "198.51.100.7", 5000, "null", "audit")
			  CONNECT("null", "icmp", "198.51.100.8", 0, "null", "audit")
			      CONNECT("null", "icmpv6", "2001:db8::8", 0, "null", "audit") CLOSE);
	struct policy *p;
	char *text = learn(&d, 1, LEARN_WILDCARD_MIN, &p);

	(void)state;
	assert_int_equal(addr_v(p, NULL, "198.51.100.7", 5000, POLICY_PROTO_UDPLITE), POLICY_ALLOW);
	assert_int_equal(addr_v(p, NULL, "198.51.100.7", 5000, POLICY_PROTO_UDP), POLICY_DENY);
	assert_int_equal(addr_v(p, NULL, "198.51.100.8", 0, POLICY_PROTO_ICMP), POLICY_ALLOW);
	assert_int_equal(addr_v(p, NULL, "198.51.100.8", 80, POLICY_PROTO_TCP), POLICY_DENY);
	assert_int_equal(addr_v(p, NULL, "2001:db8::8", 0, POLICY_PROTO_ICMP), POLICY_ALLOW);
	assert_non_null(strstr(text, "- ip: \"198.51.100.8\"\n    proto: icmp\n"));
	free(text);
	policy_free(p);
}

static void test_steps(void **state)
{
	/* Run mode: one run per --step, as summary.json records it. */
	const char *d[3];

	d[0] = rundir_step("s-build", "build",
			   CONNECT("\"build\"", "tcp", "192.0.2.1", 443, "\"common.example.test\"",
				   "audit") CONNECT("\"build\"", "tcp", "192.0.2.2", 443,
						    "\"registry.example.test\"", "audit") CLOSE);
	d[1] = rundir_step(
	    "s-test", "test",
	    CONNECT("\"test\"", "tcp", "192.0.2.1", 443, "\"common.example.test\"", "audit")
		CONNECT("\"test\"", "tcp", "192.0.2.3", 5432, "null", "audit") CLOSE);
	d[2] = rundir_step("s-weird", "we\\\"ird: step",
			   CONNECT("\"we\\\"ird: step\"", "tcp", "192.0.2.1", 443,
				   "\"common.example.test\"", "audit") CLOSE);
	struct policy *p;
	char *text = learn(d, 3, LEARN_WILDCARD_MIN, &p);

	(void)state;
	/* common to every step: top level */
	assert_int_equal(p->allow.n, 1);
	assert_string_equal(p->allow.v[0].host, "common.example.test");
	assert_int_equal(p->nsteps, 3);
	assert_non_null(policy_find_step(p, "we\"ird: step"));
	assert_int_equal(host_v(p, "build", "registry.example.test", 443, POLICY_PROTO_TCP),
			 POLICY_ALLOW);
	assert_int_equal(host_v(p, "test", "registry.example.test", 443, POLICY_PROTO_TCP),
			 POLICY_DENY);
	assert_int_equal(host_v(p, NULL, "registry.example.test", 443, POLICY_PROTO_TCP),
			 POLICY_DENY);
	assert_int_equal(addr_v(p, "test", "192.0.2.3", 5432, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(addr_v(p, "build", "192.0.2.3", 5432, POLICY_PROTO_TCP), POLICY_DENY);
	assert_int_equal(host_v(p, "we\"ird: step", "common.example.test", 443, POLICY_PROTO_TCP),
			 POLICY_ALLOW);
	free(text);
	policy_free(p);
}

static void test_whole_job_labels(void **state)
{
	/* Whole-job mode: events carry each CI step's label while one rule set (the top level,
	 * the job had no --step) covers the job; the runner's own traffic is allowed anyway. */
	const char *d = rundir_step(
	    "wholejob", NULL,
	    CONNECT("\"build\"", "tcp", "192.0.2.2", 443, "\"registry.example.test\"", "audit")
		CONNECT("\"test\"", "tcp", "192.0.2.3", 5432, "null", "audit")
		    CONNECT("null", "tcp", "192.0.2.9", 443,
			    "\"runner.example.test\",\"runner\":true", "allow")
			CONNECT("\"bad\\nlabel\"", "tcp", "192.0.2.4", 80, "null", "audit") CLOSE);
	struct policy *p;
	char *text = learn(&d, 1, LEARN_WILDCARD_MIN, &p);

	(void)state;
	assert_int_equal(p->nsteps, 0);
	assert_int_equal(host_v(p, NULL, "registry.example.test", 443, POLICY_PROTO_TCP),
			 POLICY_ALLOW);
	assert_int_equal(addr_v(p, NULL, "192.0.2.3", 5432, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(addr_v(p, NULL, "192.0.2.4", 80, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(host_v(p, NULL, "runner.example.test", 443, POLICY_PROTO_TCP),
			 POLICY_DENY);
	assert_non_null(strstr(text, "# steps seen as labels"));
	assert_non_null(strstr(text, " build test bad?label\n"));
	assert_non_null(strstr(text, "# 1 connections of the CI runner itself are left out"));
	free(text);
	policy_free(p);
}

static void test_wildcards_and_merge(void **state)
{
	/* Two runs: 5 siblings under cdn.example.test split across them, 4 under few.example.test.
	 */
	const char *d[2];
	struct policy *p;
	char *text;

	(void)state;
	d[0] = rundir(
	    "w1",
	    CONNECT("null", "tcp", "192.0.2.1", 443, "\"a.cdn.example.test\"", "audit")
		CONNECT("null", "tcp", "192.0.2.1", 443, "\"b.cdn.example.test\"", "audit")
		    CONNECT("null", "tcp", "192.0.2.1", 443, "\"c.cdn.example.test\"", "audit")
			CONNECT("null", "tcp", "192.0.2.1", 443, "\"a.few.example.test\"", "audit")
			    CONNECT("null", "tcp", "192.0.2.1", 443, "\"b.few.example.test\"",
				    "audit") CLOSE);
	d[1] = rundir(
	    "w2",
	    CONNECT("null", "tcp", "192.0.2.1", 443, "\"d.cdn.example.test\"", "audit")
		CONNECT("null", "tcp", "192.0.2.1", 8443, "\"e.cdn.example.test\"", "audit")
		    CONNECT("null", "tcp", "192.0.2.1", 443, "\"c.few.example.test\"", "audit")
			CONNECT("null", "tcp", "192.0.2.1", 443, "\"d.few.example.test\"", "audit")
			    CONNECT("null", "tcp", "192.0.2.1", 443, "\"x.y.cdn.example.test\"",
				    "audit") CONNECT("null", "tcp", "192.0.2.1", 443,
						     "\"cdn.example.test\"", "audit") CLOSE);
	text = learn(d, 2, LEARN_WILDCARD_MIN, &p);
	assert_non_null(strstr(text, "- host: \"*.cdn.example.test\"\n    ports: [443, 8443]\n"));
	assert_null(strstr(text, "a.cdn.example.test"));
	assert_null(strstr(text, "*.few"));
	assert_non_null(strstr(text, "- host: \"a.few.example.test\""));
	/* deeper and apex names are not swallowed by the one-label wildcard */
	assert_non_null(strstr(text, "- host: \"x.y.cdn.example.test\""));
	assert_non_null(strstr(text, "- host: \"cdn.example.test\""));
	assert_int_equal(host_v(p, NULL, "zz.cdn.example.test", 8443, POLICY_PROTO_TCP),
			 POLICY_ALLOW);
	assert_int_equal(host_v(p, NULL, "zz.few.example.test", 443, POLICY_PROTO_TCP),
			 POLICY_DENY);
	free(text);
	policy_free(p);

	/* threshold 0: never a wildcard */
	text = learn(d, 2, 0, &p);
	assert_null(strstr(text, "*."));
	free(text);
	policy_free(p);
}

static void test_hostile(void **state)
{
	/* Names that would inject YAML or patterns, junk steps, a torn last line. */
	const char *d = rundir(
	    "hostile",
	    CONNECT("null", "tcp", "192.0.2.1", 443, "\"a.test\\\"\\nmode: observe\"", "audit")
		CONNECT("null", "tcp", "192.0.2.2", 443, "\"*.example.test\"", "audit")
		    CONNECT("null", "tcp", "192.0.2.3", 443, "\"x\\u00ff.test\"", "audit")
			CONNECT("\"a\\u0001b\"", "tcp", "192.0.2.4", 443, "\"ok.example.test\"",
				"audit") DNS("null", "evil\\udcff.example.test", "audit")
			    CONNECT("null", "tcp", "192.0.2.9", 22, "null",
				    "audit") "{\"seq\":7,\"kind\":\"conn");
	struct policy *p;
	char *text = learn(&d, 1, LEARN_WILDCARD_MIN, &p);

	(void)state;
	assert_null(strstr(text, "\nmode: observe"));
	assert_int_equal(p->mode, POLICY_MODE_ENFORCE);
	assert_null(strstr(text, "\"*.example.test\""));
	/* names that fail validation fall back to the address */
	assert_int_equal(addr_v(p, NULL, "192.0.2.1", 443, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(addr_v(p, NULL, "192.0.2.2", 443, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_int_equal(host_v(p, NULL, "ok.example.test", 443, POLICY_PROTO_TCP), POLICY_ALLOW);
	assert_non_null(strstr(text, "host names were not valid DNS names"));
	assert_int_equal(p->nsteps, 0);
	free(text);
	policy_free(p);
}

static void test_errors(void **state)
{
	const char *d;
	char out[300];

	(void)state;
	snprintf(out, sizeof(out), "%s/never.yaml", tmpdir);
	/* missing log */
	d = tmpdir;
	assert_int_equal(learn_write(&d, 1, out), -1);
	/* a broken line in the middle is an error, not a guess */
	d = rundir("bad",
		   CONNECT("null", "tcp", "192.0.2.1", 443, "null", "audit") "{oops\n" CLOSE);
	assert_int_equal(learn_write(&d, 1, out), -1);
	d = rundir("badaddr", CONNECT("null", "tcp", "192.0.2.300", 443, "null", "audit"));
	assert_int_equal(learn_write(&d, 1, out), -1);
	d = rundir("badport", CONNECT("null", "tcp", "192.0.2.3", 70000, "null", "audit"));
	assert_int_equal(learn_write(&d, 1, out), -1);
	d = rundir("notobj", "[1,2]\n");
	assert_int_equal(learn_write(&d, 1, out), -1);
	assert_int_equal(access(out, F_OK), -1);

	/* A symlink planted at the (guessable) temporary name is never written through. */
	char tmp[340], target[300], buf[16] = "";
	FILE *f;

	snprintf(target, sizeof(target), "%s/target", tmpdir);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int)getpid());
	f = fopen(target, "w");
	assert_non_null(f);
	fputs("untouched", f);
	fclose(f);
	assert_int_equal(symlink(target, tmp), 0);
	d = rundir("good", CONNECT("null", "tcp", "192.0.2.1", 443, "null", "audit") CLOSE);
	assert_int_equal(learn_write(&d, 1, out), -1);
	f = fopen(target, "r");
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "untouched");
	unlink(tmp);
	unlink(target);
}

/* Many ports to one place: squeezed into the kernel's range budget, still loadable. */
static void test_many_ports(void **state)
{
	char *ev = calloc(1, 1 << 20);
	size_t len = 0;
	const char *d;
	struct policy *p;
	char *text;

	(void)state;
	for (int port = 1000; port < 1100; port += 3)
		len += sprintf(ev + len,
			       CONNECT("null", "tcp", "192.0.2.1", % d, "null", "audit")
				   CONNECT("null", "udp", "192.0.2.1", % d, "null", "audit"),
			       port, port + 1);
	d = rundir("ports", ev);
	text = learn(&d, 1, LEARN_WILDCARD_MIN, &p);
	assert_non_null(strstr(text, "# widened to 8 ranges"));
	for (int port = 1000; port < 1100; port += 3) {
		assert_int_equal(addr_v(p, NULL, "192.0.2.1", port, POLICY_PROTO_TCP),
				 POLICY_ALLOW);
		assert_int_equal(addr_v(p, NULL, "192.0.2.1", port + 1, POLICY_PROTO_UDP),
				 POLICY_ALLOW);
	}
	free(text);
	free(ev);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic),
	    cmocka_unit_test(test_other_protocols),
	    cmocka_unit_test(test_derived_questions),
	    cmocka_unit_test(test_steps),
	    cmocka_unit_test(test_whole_job_labels),
	    cmocka_unit_test(test_wildcards_and_merge),
	    cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_many_ports),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
