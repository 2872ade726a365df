/* Unit tests for the findings engine and the secret redaction: the detectors driven line by
 * line as the collector drives them (a real process table), their thresholds both ways, the
 * bounds on their state, and the lockdown call. The end-to-end replays are in
 * tests/e2e/test_findings.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "findings/findings.h"
#include "findings/redact.h"
#include "observe/proctab.h"

struct env {
	struct proctab procs;
	struct findings f;
	uint64_t seq;
	int raised;
};

static struct env *env_new(void)
{
	struct env *e = calloc(1, sizeof(*e));

	proctab_init(&e->procs);
	findings_init(&e->f, &e->procs);
	return e;
}

static void env_free(struct env *e)
{
	findings_free(&e->f);
	proctab_free(&e->procs);
	free(e);
}

static struct finding_proc exec_proc(struct env *e, pid_t pid, pid_t ppid, const char *exe)
{
	struct proc *p = proctab_add(&e->procs, pid);
	struct finding_proc fp = {.pid = pid};

	p->ppid = ppid;
	proctab_set(p, exe, "[\"x\"]");
	fp.exe = p->exe;
	fp.argv_json = p->argv_json;
	findings_on_exec(&e->f, &fp, ++e->seq);
	return fp;
}

static json_t *summary(struct env *e)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *j;

	sb_addch(&sb, '{');
	findings_json(&e->f, &sb);
	sb_addch(&sb, '}');
	j = json_loads(sb.buf, 0, NULL);
	assert_non_null(j);
	sb_release(&sb);
	return j;
}

static void on_raise(void *ctx, const struct finding *x)
{
	(void)x;
	((struct env *)ctx)->raised++;
}

/* ---- DNS ---- */

static void dns_tunnel_is_one_finding(void **state)
{
	struct env *e = env_new();
	struct finding_proc p = exec_proc(e, 100, 1, "/usr/bin/python3");
	json_t *s, *f;
	char name[256];

	(void)state;
	for (int i = 0; i < 229; i++) {
		snprintf(name, sizeof(name), "%08x%08x%08x%08x.%d.t.exfil.test.", i * 2654435761u,
			 i * 40503u + 7, i ^ 0x5bd1e995u, i * 97u, i);
		findings_on_dns(&e->f, &p, name, 16, ++e->seq);
	}
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), 1);
	f = json_array_get(json_object_get(s, "findings"), 0);
	assert_string_equal(json_string_value(json_object_get(f, "kind")), "dns_tunnel");
	assert_string_equal(json_string_value(json_object_get(f, "severity")), "high");
	assert_string_equal(json_string_value(json_object_get(f, "parent")), "exfil.test");
	assert_int_equal(json_integer_value(json_object_get(f, "lookups")), 229);
	assert_int_equal(json_integer_value(json_object_get(f, "distinct_names")), 229);
	assert_int_equal(json_array_size(json_object_get(f, "evidence")), FINDING_EVIDENCE_MAX);
	assert_int_equal(json_integer_value(json_object_get(f, "evidence_unlisted")),
			 229 - FINDING_EVIDENCE_MAX);
	json_decref(s);
	env_free(e);
}

/* What real registry, mirror and code-host jobs ask: no finding. */
static void dns_normal_names_raise_nothing(void **state)
{
	static const char *const names[] = {
	    "registry.npmjs.org",
	    "registry.yarnpkg.com",
	    "pypi.org",
	    "files.pythonhosted.org",
	    "deb.debian.org",
	    "security.debian.org",
	    "github.com",
	    "api.github.com",
	    "codeload.github.com",
	    "objects.githubusercontent.com",
	    "raw.githubusercontent.com",
	    "pipelines.actions.githubusercontent.com",
	    "registry-1.docker.io",
	    "production.cloudflare.docker.com",
	    "auth.docker.io",
	    "repo.maven.apache.org",
	    "d3a7f6hbhq8l7t.cloudfront.net",
	    "my-loadbalancer-1234567890.us-east-1.elb.amazonaws.com",
	    "archive.ubuntu.com",
	    "ppa.launchpadcontent.net",
	    "www.bbc.co.uk"};
	struct env *e = env_new();
	struct finding_proc p = exec_proc(e, 100, 1, "/usr/bin/npm");
	json_t *s;

	(void)state;
	for (int rep = 0; rep < 20; rep++)
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			findings_on_dns(&e->f, &p, names[i], 1, ++e->seq);
			findings_on_dns(&e->f, &p, names[i], 28, ++e->seq);
		}
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), 0);
	json_decref(s);
	env_free(e);
}

static void dns_volume_then_tunnel_stays_one(void **state)
{
	struct env *e = env_new();
	struct finding_proc p = exec_proc(e, 100, 1, "/usr/bin/dig");
	char name[256];
	json_t *s, *f;

	(void)state;
	for (int i = 0; i < 120; i++) { /* plain names: volume */
		snprintf(name, sizeof(name), "host%d.many.test", i);
		findings_on_dns(&e->f, &p, name, 1, ++e->seq);
	}
	for (int i = 0; i < 20; i++) { /* then encoded ones: the same finding, upgraded */
		snprintf(name, sizeof(name), "%08x%08x%08x.many.test", i * 2654435761u,
			 i * 40503u + 7, i ^ 0x5bd1e995u);
		findings_on_dns(&e->f, &p, name, 1, ++e->seq);
	}
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), 1);
	f = json_array_get(json_object_get(s, "findings"), 0);
	assert_string_equal(json_string_value(json_object_get(f, "kind")), "dns_tunnel");
	assert_int_equal(json_integer_value(
			     json_object_get(json_object_get(s, "findings_by_severity"), "medium")),
			 0);
	json_decref(s);
	env_free(e);
}

static void dns_state_is_bounded(void **state)
{
	struct env *e = env_new();
	struct finding_proc p = exec_proc(e, 100, 1, "/usr/bin/dig");
	char name[256];

	(void)state;
	for (int i = 0; i < 50000; i++) {
		snprintf(name, sizeof(name), "a.p%d.test%d", i, i);
		findings_on_dns(&e->f, &p, name, 1, ++e->seq);
	}
	assert_true(e->f.dns_parents.count <= 4096);
	assert_true(e->f.state_dropped > 0);
	env_free(e);
}

/* ---- credential sweep ---- */

static void sweep_by_one_process(void **state)
{
	struct env *e = env_new();
	struct finding_proc p = exec_proc(e, 100, 1, "/usr/bin/node");
	json_t *s, *f;

	(void)state;
	findings_on_file(&e->f, &p, "/home/r/.npmrc", NULL, true, 1000, ++e->seq);
	findings_on_file(&e->f, &p, "/home/r/.npmrc", NULL, true, 2000, ++e->seq);
	findings_on_file(&e->f, &p, "/home/r/.aws/credentials", NULL, true, 3000, ++e->seq);
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), 0); /* two stores */
	json_decref(s);
	findings_on_file(&e->f, &p, "/home/r/.ssh/id_ed25519", NULL, false, 4000, ++e->seq);
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), 1);
	f = json_array_get(json_object_get(s, "findings"), 0);
	assert_string_equal(json_string_value(json_object_get(f, "kind")), "credential_sweep");
	assert_string_equal(json_string_value(json_object_get(f, "severity")), "high");
	assert_int_equal(json_array_size(json_object_get(f, "stores")), 3);
	json_decref(s);
	env_free(e);
}

static void sweep_outside_the_window_is_not_one(void **state)
{
	struct env *e = env_new();
	struct finding_proc p = exec_proc(e, 100, 1, "/usr/bin/make");
	json_t *s;
	int64_t min = 60LL * 1000000000LL;

	(void)state;
	findings_on_file(&e->f, &p, "/home/r/.npmrc", NULL, true, 1, ++e->seq);
	findings_on_file(&e->f, &p, "/home/r/.docker/config.json", NULL, true, 2 * min, ++e->seq);
	findings_on_file(&e->f, &p, "/home/r/.git-credentials", NULL, true, 4 * min, ++e->seq);
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), 0);
	json_decref(s);
	env_free(e);
}

/* Tools that each read their own store, under one parent: a tree needs four stores. */
static void sweep_by_a_tree(void **state)
{
	struct env *e = env_new();
	struct finding_proc root = exec_proc(e, 100, 1, "/bin/sh");
	struct finding_proc mk = exec_proc(e, 101, 100, "/usr/bin/make");
	struct finding_proc a = exec_proc(e, 102, 101, "/usr/bin/npm");
	struct finding_proc b = exec_proc(e, 103, 101, "/usr/bin/docker");
	struct finding_proc c = exec_proc(e, 104, 101, "/usr/bin/git");
	struct finding_proc d = exec_proc(e, 105, 101, "/usr/bin/aws");
	json_t *s, *f;

	(void)state;
	(void)root;
	(void)mk;
	findings_on_file(&e->f, &a, "/home/r/.npmrc", NULL, true, 1, ++e->seq);
	findings_on_file(&e->f, &b, "/home/r/.docker/config.json", NULL, true, 2, ++e->seq);
	findings_on_file(&e->f, &c, "/home/r/.git-credentials", NULL, true, 3, ++e->seq);
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), 0);
	json_decref(s);
	findings_on_file(&e->f, &d, "/home/r/.aws/credentials", NULL, true, 4, ++e->seq);
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), 1);
	f = json_array_get(json_object_get(s, "findings"), 0);
	assert_int_equal(json_integer_value(json_object_get(f, "pid")), 101); /* make, not sh */
	assert_string_equal(json_string_value(json_object_get(f, "severity")), "medium");
	assert_true(json_is_true(json_object_get(f, "tree")));
	json_decref(s);
	env_free(e);
}

/* ---- persistence ---- */

static void persistence_after_the_root_exits(void **state)
{
	struct env *e = env_new();
	struct finding_proc root = exec_proc(e, 100, 1, "/bin/sh");
	struct finding_proc child = exec_proc(e, 101, 100, "/bin/sleep");
	struct finding_proc q;
	json_t *s, *f;

	(void)state;
	(void)root;
	findings_on_activity(&e->f, &child, "connected to tcp 127.0.0.1:80", ++e->seq);
	findings_on_exit(&e->f, 100, ++e->seq);
	proctab_exit(&e->procs, 100);
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), 0); /* nothing yet */
	json_decref(s);
	q = exec_proc(e, 101, 100, "/usr/bin/curl");
	findings_on_activity(&e->f, &q, "connected to tcp 127.0.0.1:80", ++e->seq);
	pid_t left[] = {101};
	findings_finish(&e->f, left, 1);
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), 1);
	f = json_array_get(json_object_get(s, "findings"), 0);
	assert_string_equal(json_string_value(json_object_get(f, "kind")), "persistence");
	assert_int_equal(json_integer_value(json_object_get(f, "actions_after")), 2);
	assert_true(json_is_true(json_object_get(f, "running_at_end")));
	json_decref(s);
	env_free(e);
}

/* ---- memory ---- */

static void memory_reads_by_scope(void **state)
{
	struct env *e = env_new();
	struct finding_proc p = exec_proc(e, 100, 1, "/usr/bin/python3");
	struct finding_memread m = {.op = "process_vm_readv",
				    .target = 42,
				    .target_as_given = 42,
				    .target_exe = "/runner/Runner.Worker",
				    .scope = "runner",
				    .ok = true};
	json_t *s, *f;

	(void)state;
	for (int i = 0; i < 5; i++)
		findings_on_memread(&e->f, &p, &m, ++e->seq);
	m.op = "proc_environ";
	m.scope = "outside";
	findings_on_memread(&e->f, &p, &m, ++e->seq);
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), 2);
	f = json_array_get(json_object_get(s, "findings"), 0);
	assert_string_equal(json_string_value(json_object_get(f, "severity")), "critical");
	assert_int_equal(json_array_size(json_object_get(f, "evidence")), 5);
	f = json_array_get(json_object_get(s, "findings"), 1);
	assert_string_equal(json_string_value(json_object_get(f, "kind")), "environ_read");
	json_decref(s);
	env_free(e);
}

static void memory_read_success_after_failures(void **state)
{
	struct env *e = env_new();
	struct finding_proc p = exec_proc(e, 100, 1, "/usr/bin/gdb");
	struct finding_memread m = {.op = "ptrace_attach",
				    .target = 9,
				    .target_as_given = 9,
				    .target_exe = "/usr/bin/ssh-agent",
				    .scope = "outside"};
	json_t *s, *f;

	(void)state;
	findings_on_memread(&e->f, &p, &m, ++e->seq);
	findings_on_memread(&e->f, &p, &m, ++e->seq);
	s = summary(e);
	f = json_array_get(json_object_get(s, "findings"), 0);
	assert_true(json_is_false(json_object_get(f, "succeeded")));
	assert_non_null(strstr(json_string_value(json_object_get(f, "description")), "tried to"));
	json_decref(s);
	m.ok = true;
	findings_on_memread(&e->f, &p, &m, ++e->seq);
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), 1);
	f = json_array_get(json_object_get(s, "findings"), 0);
	assert_true(json_is_true(json_object_get(f, "succeeded")));
	assert_non_null(
	    strstr(json_string_value(json_object_get(f, "description")), "after failed attempts"));
	assert_int_equal(json_array_size(json_object_get(f, "evidence")), 3);
	json_decref(s);
	env_free(e);
}

/* ---- lockdown and bounds ---- */

static void lockdown_once_at_its_severity(void **state)
{
	struct env *e = env_new();
	struct finding_proc p = exec_proc(e, 100, 1, "/usr/bin/python3");
	struct finding_memread m = {
	    .op = "ptrace_attach", .target = 7, .target_as_given = 7, .scope = "job", .ok = true};

	(void)state;
	e->f.act[SEV_HIGH] = e->f.act[SEV_CRITICAL] = FINDING_ACT_KILL;
	e->f.on_raise = on_raise;
	e->f.on_raise_ctx = e;
	findings_on_memread(&e->f, &p, &m, ++e->seq); /* low: no action */
	assert_int_equal(e->raised, 0);
	assert_null(e->f.lockdown_reason);
	m.scope = "outside";
	m.target = 8;
	findings_on_memread(&e->f, &p, &m, ++e->seq);
	findings_on_memread(&e->f, &p, &m, ++e->seq);
	assert_int_equal(e->raised, 1);
	assert_non_null(strstr(e->f.lockdown_reason, "high finding memory_read"));
	env_free(e);
}

static void findings_are_bounded(void **state)
{
	struct env *e = env_new();
	json_t *s;

	(void)state;
	for (int i = 0; i < FINDINGS_MAX + 50; i++) {
		struct finding_proc p = exec_proc(e, 1000 + i, 1, "/usr/bin/gdb");
		struct finding_memread m = {
		    .op = "ptrace_attach", .target = 7, .scope = "job", .ok = true};

		findings_on_memread(&e->f, &p, &m, ++e->seq);
		findings_on_memread(&e->f, &p, &m, ++e->seq); /* the same finding again */
	}
	s = summary(e);
	assert_int_equal(json_array_size(json_object_get(s, "findings")), FINDINGS_MAX);
	assert_int_equal(json_integer_value(json_object_get(s, "findings_unlisted")), 50);
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(s, "findings_by_severity"), "low")),
	    FINDINGS_MAX + 50);
	json_decref(s);
	env_free(e);
}

/* ---- redaction ---- */

static char *redacted(const struct redactor *r, const char *const *argv, size_t *n)
{
	struct strbuf area = STRBUF_INIT, json = STRBUF_INIT;

	for (int i = 0; argv[i]; i++)
		sb_add(&area, argv[i], strlen(argv[i]) + 1);
	*n = redact_argv_json(r, area.buf, area.len, &json, NULL);
	sb_release(&area);
	return sb_detach(&json);
}

static void redacts_secrets(void **state)
{
	static const char key[REDACT_KEY_BYTES] = "0123456789abcdef0123456789abcdef";
	struct redactor r;
	static const char *const argv[] = {
	    "curl",
	    "-u",
	    "bob:hunter2",
	    "-H",
	    "Authorization: Bearer abc.def",
	    "https://x-access-token:ghs_0123456789abcdefghijklmnopqrstuvwxyz@github.com/o/r",
	    "--token",
	    "s3cr3t-value",
	    "NPM_TOKEN=npm_0123456789abcdefghijklmnopqrstuvwxyz",
	    "AKIAABCDEFGHIJKLMNOP",
	    NULL};
	static const char *const secrets[] = {"hunter2", "abc.def",
					      "ghs_0123456789abcdefghijklmnopqrstuvwxyz",
					      "s3cr3t-value", "AKIAABCDEFGHIJKLMNOP"};
	char tag[REDACT_TAG_LEN], *out;
	size_t n;

	(void)state;
	redactor_init(&r, (const unsigned char *)key);
	out = redacted(&r, argv, &n);
	assert_int_equal(n, 6);
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
		assert_null(strstr(out, secrets[i]));
		/* whoever holds the key can match the value */
		redact_tag(&r, secrets[i], strlen(secrets[i]), tag);
		assert_non_null(strstr(out, tag));
	}
	assert_non_null(strstr(out, "\"Authorization: Bearer [redacted:"));
	assert_non_null(strstr(out, "\"bob:[redacted:"));
	free(out);
	/* inside a shell command line too */
	{
		static const char *const sh[] = {
		    "sh", "-c",
		    "curl -u bob:hunter2 -H 'Authorization: token abc.def' PASSWORD=pw1 x", NULL};

		out = redacted(&r, sh, &n);
		assert_null(strstr(out, "hunter2"));
		assert_null(strstr(out, "abc.def"));
		assert_null(strstr(out, "pw1"));
		assert_non_null(strstr(out, "Authorization: token [redacted:"));
		free(out);
	}
}

static void leaves_ordinary_commands_alone(void **state)
{
	static const char *const cmds[][12] = {
	    {"npm", "ci", "--no-audit", "--registry=https://registry.npmjs.org/", NULL},
	    {"pip", "install", "-r", "requirements.txt", "--index-url", "https://pypi.org/simple",
	     NULL},
	    {"git", "clone", "--depth=1", "https://github.com/runwarden/runwarden.git", NULL},
	    {"apt-get", "install", "-y", "--no-install-recommends", "build-essential", NULL},
	    {"make", "-j2", "CFLAGS=-O2 -g", NULL},
	    {"docker", "login", "--password-stdin", "-u", "ci", "registry.example.test", NULL},
	    {"gcc", "-DTOKEN_LEN=32", "-o", "tok", "tok.c", NULL},
	    {"sh", "-c", "make test && echo done", NULL},
	    {"gh", "auth", "token", NULL},
	    {"ssh-keygen", "-t", "ed25519", "-f", "/tmp/k", NULL},
	};
	struct redactor r;

	(void)state;
	redactor_init(&r, NULL);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		size_t n;
		char *out = redacted(&r, cmds[i], &n);

		if (n)
			fail_msg("redacted %zu in %s", n, out);
		free(out);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(dns_tunnel_is_one_finding),
	    cmocka_unit_test(dns_normal_names_raise_nothing),
	    cmocka_unit_test(dns_volume_then_tunnel_stays_one),
	    cmocka_unit_test(dns_state_is_bounded),
	    cmocka_unit_test(sweep_by_one_process),
	    cmocka_unit_test(sweep_outside_the_window_is_not_one),
	    cmocka_unit_test(sweep_by_a_tree),
	    cmocka_unit_test(persistence_after_the_root_exits),
	    cmocka_unit_test(memory_reads_by_scope),
	    cmocka_unit_test(memory_read_success_after_failures),
	    cmocka_unit_test(lockdown_once_at_its_severity),
	    cmocka_unit_test(findings_are_bounded),
	    cmocka_unit_test(redacts_secrets),
	    cmocka_unit_test(leaves_ordinary_commands_alone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
