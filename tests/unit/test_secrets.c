/* Unit tests for src/secrets/: which variables are secrets, the tokens each credential file
 * format gives (and the host it names), the Hyperscan patterns both ways (formats, literal
 * values in any case, formats inside a known value), redaction, destinations, the policy's
 * `secrets:` section, and the hashes the kernel judges by. The kernel side and the real
 * clients are in tests/e2e/test_secrets.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/strbuf.h"
#include "policy/policy.h"
#include "secrets/secrets.h"

static struct redactor rd;

static int setup(void **state)
{
	(void)state;
	return redactor_init(&rd, NULL);
}

/* ---- tokens from files ---- */

struct toks {
	char key[8][32], val[8][128], host[8][64];
	int n;
};

static void tok(void *ctx, const char *key, const char *value, size_t len, const char *host)
{
	struct toks *t = ctx;

	assert_true(t->n < 8);
	snprintf(t->key[t->n], 32, "%s", key);
	snprintf(t->val[t->n], 128, "%.*s", (int)len, value);
	snprintf(t->host[t->n], 64, "%s", host ? host : "-");
	t->n++;
}

static struct toks parse(const char *path, const char *text)
{
	struct toks t = {0};

	secrets_parse_file(path, text, strlen(text), tok, &t);
	return t;
}

static void test_npmrc(void **state)
{
	struct toks t =
	    parse("/home/u/.npmrc", "registry=https://npm.corp.test/\n"
				    "//registry.npmjs.org/:_authToken=npm_AAAAAAAAAAAAAAAAAAAA\n"
				    "  //npm.pkg.github.com/:_authToken = \"ghp_quoted\"\n"
				    "_authToken=plainDefault1\n"
				    "//x.test/:_authToken=${NPM_TOKEN}\n"
				    "; //y.test/:_authToken=commented\n"
				    "always-auth=true\n");

	(void)state;
	assert_int_equal(t.n, 3);
	assert_string_equal(t.val[0], "npm_AAAAAAAAAAAAAAAAAAAA");
	assert_string_equal(t.host[0], "registry.npmjs.org");
	assert_string_equal(t.key[0], "_authToken");
	assert_string_equal(t.val[1], "ghp_quoted");
	assert_string_equal(t.host[1], "npm.pkg.github.com");
	/* no //host: the registry the file names */
	assert_string_equal(t.val[2], "plainDefault1");
	assert_string_equal(t.host[2], "npm.corp.test");
}

static void test_git_credentials_netrc(void **state)
{
	struct toks t =
	    parse("/h/.git-credentials", "https://bob:s3cretTokenValue@github.com\n"
					 "https://ghp_asUserName12345@git.corp.test:8443/x\n"
					 "not a url\n");

	(void)state;
	assert_int_equal(t.n, 2);
	assert_string_equal(t.val[0], "s3cretTokenValue");
	assert_string_equal(t.host[0], "github.com");
	assert_string_equal(t.val[1], "ghp_asUserName12345");
	assert_string_equal(t.host[1], "git.corp.test");

	t = parse("/h/.netrc", "machine api.corp.test login me password hunter2hunter2\n"
			       "default\n  login x\n  password fallbackPw1\n");
	assert_int_equal(t.n, 2);
	assert_string_equal(t.val[0], "hunter2hunter2");
	assert_string_equal(t.host[0], "api.corp.test");
	assert_string_equal(t.val[1], "fallbackPw1");
	assert_string_equal(t.host[1], "-");
}

static void test_docker_aws_pypirc_gh(void **state)
{
	/* base64("user:dockerPassw0rd") */
	struct toks t = parse("/h/.docker/config.json",
			      "{\"auths\":{\"https://index.docker.io/v1/\":"
			      "{\"auth\":\"dXNlcjpkb2NrZXJQYXNzdzByZA==\"},"
			      "\"reg.corp.test:5000\":{\"identitytoken\":\"idTok12345678\"}}}");

	(void)state;
	assert_int_equal(t.n, 3);
	assert_string_equal(t.val[0], "dXNlcjpkb2NrZXJQYXNzdzByZA==");
	assert_string_equal(t.host[0], "**.docker.io");
	assert_string_equal(t.val[1], "dockerPassw0rd");
	assert_string_equal(t.val[2], "idTok12345678");
	assert_string_equal(t.host[2], "reg.corp.test");
	assert_int_equal(parse("/h/.docker/config.json", "{not json").n, 0);

	t = parse("/h/.aws/credentials", "[default]\naws_access_key_id = AKIAAAAAAAAAAAAAAAAA\n"
					 "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG\n"
					 "aws_session_token=FwoGZXIvYXdzEJr\n");
	assert_int_equal(t.n, 2); /* the key id is no secret */
	assert_string_equal(t.val[0], "wJalrXUtnFEMI/K7MDENG");
	assert_string_equal(t.host[0], "-"); /* never leaves an SDK */
	assert_string_equal(t.host[1], "**.amazonaws.com");

	t = parse("/h/.pypirc", "[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc\n");
	assert_int_equal(t.n, 1);
	assert_string_equal(t.host[0], "upload.pypi.org");

	t = parse("/h/.config/gh/hosts.yml",
		  "github.com:\n    oauth_token: gho_abc123def456\n"
		  "    user: me\nghe.corp.test:\n    oauth_token: gho_zzz\n");
	assert_int_equal(t.n, 2);
	assert_string_equal(t.host[0], "github.com");
	assert_string_equal(t.host[1], "ghe.corp.test");
	assert_string_equal(t.val[1], "gho_zzz");

	t = parse("/w/.env", "export API_TOKEN=abc12345678\nNAME=x\n# DB_PASSWORD=no\n");
	assert_int_equal(t.n, 1);
	assert_string_equal(t.key[0], "API_TOKEN");
	assert_int_equal(parse("/h/unknown.txt", "password=x").n, 0);
}

/* ---- the environment ---- */

static void test_environ(void **state)
{
	struct policy_secrets pol = {0};
	char *names[] = {"MY_CRED"};
	char *env[] = {"NPM_TOKEN=npm_0123456789abcdefghij",
		       "STRIPE_KEY=sk_test_0123456789",
		       "DB_PASSWORD=short",
		       "MY_CRED=policyNamedValue",
		       "HOME=/root",
		       "TOKEN_FILE=/run/secret/path/x",
		       "GITHUB_TOKEN=ghs_tokenValue12345",
		       NULL};
	struct secrets s;
	const struct secret *x;

	(void)state;
	pol.env = names;
	pol.nenv = 1;
	secrets_init(&s, &rd, &pol);
	secrets_from_environ(&s, env);
	assert_int_equal(s.too_short, 1); /* DB_PASSWORD: 5 bytes, counted, not matched */
	x = secrets_find(&s, "x=npm_0123456789abcdefghij", 26, NULL, NULL);
	assert_non_null(x);
	assert_string_equal(x->name, "NPM_TOKEN");
	assert_true(secret_allowed_to(x, "registry.npmjs.org"));
	assert_false(secret_allowed_to(x, "evil.test"));
	assert_non_null(secrets_find(&s, "sk_test_0123456789", 18, NULL, NULL));
	assert_non_null(secrets_find(&s, "policyNamedValue", 16, NULL, NULL));
	assert_null(secrets_find(&s, "/root /run/secret/path/x", 24, NULL, NULL));
	x = secrets_find(&s, "ghs_tokenValue12345", 19, NULL, NULL);
	assert_non_null(x);
	assert_true(secret_allowed_to(x, "api.github.com"));
	assert_true(secret_allowed_to(x, "github.com"));
	assert_false(secret_allowed_to(x, "github.com.evil.test"));
	assert_false(secret_allowed_to(x, "evilgithub.com"));
	{
		struct strbuf j = STRBUF_INIT;

		secrets_json(&s, &j);
		assert_non_null(strstr(j.buf, "\"env\":4,"));
		assert_non_null(strstr(j.buf, "\"too_short\":1,"));
		sb_release(&j);
	}
	secrets_free(&s);
}

/* ---- matching ---- */

static void test_formats(void **state)
{
	static const struct {
		const char *text;
		const char *format; /* NULL: no match */
	} cases[] = {
	    {"tok ghp_abcdefghijklmnopqrstuvwxyz0123456789 end", "github"},
	    {"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github"},
	    {"ghp_short", NULL},
	    {"xghp_abcdefghijklmnopqrstuvwxyz0123456789", NULL}, /* not at a word's start */
	    {"npm_abcdefghijklmnopqrstuvwxyz0123456789", "npm"},
	    {"key=AKIAIOSFODNN7EXAMPLE&x", "aws"},
	    {"AKIAIOSFODNN7EXAMPLEXX", NULL}, /* longer than a key id */
	    {"xoxb-123456789012-abcdefghij", "slack"},
	    {"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn", "private_key"},
	    {"-----BEGIN PRIVATE KEY-----", "private_key"},
	    {"-----BEGIN PUBLIC KEY-----", NULL},
	    {"the quick brown fox jumps over the lazy dog -- 2024", NULL},
	};
	struct secrets s;

	(void)state;
	secrets_init(&s, &rd, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct secret *x =
		    secrets_find(&s, cases[i].text, strlen(cases[i].text), NULL, NULL);

		if (!cases[i].format) {
			if (x)
				fail_msg("%s: matched %s", cases[i].text, x->name);
			continue;
		}
		if (!x)
			fail_msg("%s: no match", cases[i].text);
		assert_string_equal(x->name, cases[i].format);
		assert_int_equal(x->src, SECRET_FORMAT);
	}
	assert_string_equal(s.hs_error, "");
	secrets_free(&s);
}

static void test_values_any_case_and_redaction(void **state)
{
	const char *v = "Tok-9f8E7d6C5b4A3";
	char text[256];
	struct strbuf out = STRBUF_INIT;
	struct secrets s;
	size_t from, to;
	const struct secret *x;

	(void)state;
	secrets_init(&s, &rd, NULL);
	assert_non_null(secrets_add(&s, SECRET_ENV, "DEPLOY_TOKEN", NULL, v, strlen(v), NULL));
	/* the same value again (a file holding the env's token): one secret, more hosts */
	assert_null(secrets_add(&s, SECRET_FILE, "/h/.npmrc", "_authToken", v, strlen(v),
				"registry.npmjs.org"));
	assert_null(secrets_add(&s, SECRET_ENV, "X_TOKEN", NULL, "1234567", 7, NULL));
	assert_int_equal(s.too_short, 1);
	/* a DNS name reaches the gate lower-cased */
	snprintf(text, sizeof(text), "tok-9f8e7d6c5b4a3.exfil.test");
	x = secrets_find(&s, text, strlen(text), &from, &to);
	assert_non_null(x);
	assert_string_equal(x->name, "DEPLOY_TOKEN");
	assert_int_equal(from, 0);
	assert_int_equal(to, strlen(v));
	assert_true(secret_allowed_to(x, "registry.npmjs.org"));
	/* redaction: the tag in the value's place, twice, the rest untouched */
	snprintf(text, sizeof(text), "a=%s&b=%s;", v, v);
	assert_int_equal(secrets_redact(&s, text, strlen(text), &out), 2);
	assert_null(strstr(out.buf, v));
	assert_non_null(strstr(out.buf, x->tag));
	assert_int_equal(strncmp(out.buf, "a=[redacted:", 12), 0);
	assert_int_equal(out.buf[out.len - 1], ';');
	sb_release(&out);
	secrets_free(&s);
}

static void test_format_inside_known_value(void **state)
{
	const char *v = "npm_abcdefghijklmnopqrstuvwxyz0123456789";
	struct secrets s;
	const struct secret *x;

	(void)state;
	secrets_init(&s, &rd, NULL);
	secrets_add(&s, SECRET_ENV, "NPM_TOKEN", NULL, v, strlen(v), NULL);
	x = secrets_find(&s, v, strlen(v), NULL, NULL);
	/* the job's own secret names more than the format */
	assert_string_equal(x->name, "NPM_TOKEN");
	secrets_free(&s);
}

/* ---- the kernel's hashes ---- */

static void test_hashes(void **state)
{
	(void)state;
	/* FNV-1a 64 test vectors */
	assert_true(secret_fnv("", 0) == 0xcbf29ce484222325ULL);
	assert_true(secret_fnv("a", 1) == 0xaf63dc4c8601ec8cULL);
	/* the reversed hash of a name, walked from its end, passes through each parent's:
	 * the kernel's suffix hashes (bpf/secretscan.bpf.h) are these */
	assert_true(secret_rhash("registry.npmjs.org", 18) != secret_rhash(".npmjs.org", 10));
	assert_true(secret_rhash("x", 1) == secret_fnv("x", 1));
	assert_true(secret_rhash("ab", 2) == secret_fnv("ba", 2));
}

/* ---- the policy ---- */

static void test_policy(void **state)
{
	static const char ok[] = "version: 1\nsecrets:\n  env: [MY_CRED, OTHER]\n  allow:\n"
				 "    - env: NPM_TOKEN\n      to: [registry.npmjs.org]\n"
				 "    - file: \"*/.npmrc\"\n      to: [\"**.corp.test\"]\n"
				 "    - format: slack\n      to: [\"*\"]\n";
	static const struct {
		const char *yaml, *err;
	} bad[] = {
	    {"version: 1\nsecrets:\n  allow:\n    - env: A\n      file: /x\n", "not two"},
	    {"version: 1\nsecrets:\n  allow:\n    - to: [a.test]\n", "name an env"},
	    {"version: 1\nsecrets:\n  allow:\n    - format: gitlab\n", "not one of"},
	    {"version: 1\nsecrets:\n  allow:\n    - env: A\n      to: [\"*.x.test\"]\n",
	     "'**.x.test'"},
	    {"version: 1\nsecrets:\n  nope: 1\n", "unknown key"},
	    {"version: 1\nsecrets:\n  allow:\n    - file: relative\n", "absolute"},
	};
	char err[256];
	struct policy *p = policy_parse("p.yaml", ok, sizeof(ok) - 1, err, sizeof(err));

	(void)state;
	if (!p)
		fail_msg("%s", err);
	assert_int_equal(p->secrets.nenv, 2);
	assert_string_equal(p->secrets.env[1], "OTHER");
	assert_int_equal(p->secrets.nrules, 3);
	assert_int_equal(p->secrets.rules[0].kind, POLICY_SECRET_ENV);
	assert_string_equal(p->secrets.rules[1].to[0], "**.corp.test");
	assert_int_equal(p->secrets.rules[2].kind, POLICY_SECRET_FORMAT);
	assert_string_equal(p->secrets.rules[2].to[0], "*");
	{
		struct secrets s;
		const char *v = "fileTok3n-0123456789";
		const struct secret *x, *f;

		/* as the job does it: the policy comes after the formats were set up */
		secrets_init(&s, &rd, NULL);
		secrets_set_policy(&s, &p->secrets);
		x = secrets_add(&s, SECRET_FILE, "/home/u/.npmrc", "_authToken", v, strlen(v),
				"npm.own.test");
		assert_non_null(x);
		assert_true(secret_allowed_to(x, "a.corp.test"));
		assert_true(secret_allowed_to(x, "npm.own.test")); /* the file's own host */
		assert_false(secret_allowed_to(x, "corp.test"));
		f = secrets_by_id(&s, SF_SLACK);
		assert_true(secret_allowed_to(f, "anything.test"));
		assert_false(secret_allowed_to(secrets_by_id(&s, SF_PRIVATE_KEY), "a.test"));
		secrets_free(&s);
	}
	policy_free(p);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		p = policy_parse("p.yaml", bad[i].yaml, strlen(bad[i].yaml), err, sizeof(err));
		if (p)
			fail_msg("accepted: %s", bad[i].yaml);
		if (!strstr(err, bad[i].err))
			fail_msg("%s: error '%s' lacks '%s'", bad[i].yaml, err, bad[i].err);
	}
}

/* ---- files read safely ---- */

static void test_file_read_safely(void **state)
{
	char dir[] = "/tmp/rw-secrets-unit-XXXXXX", path[128], link[128];
	struct secrets s;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/.npmrc", dir);
	f = fopen(path, "w");
	fputs("//good.test/:_authToken=fromTheFile12345\n", f);
	fclose(f);
	secrets_init(&s, &rd, NULL);
	/* another user's file is not read */
	assert_int_equal(secrets_from_file(&s, path, 0, 0, (int64_t)getuid() + 1), -1);
	assert_int_equal(s.files_skipped, 1);
	assert_int_equal(secrets_from_file(&s, path, 0, 0, getuid()), 1);
	/* a link in the file's place is not followed */
	snprintf(link, sizeof(link), "%s/.git-credentials", dir);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(secrets_from_file(&s, link, 0, 0, -1), -1);
	/* the inode the job opened, not another */
	assert_int_equal(secrets_from_file(&s, path, 0, 1, -1), -1);
	assert_int_equal(s.files_read, 1);
	unlink(link);
	unlink(path);
	rmdir(dir);
	secrets_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_npmrc),
	    cmocka_unit_test(test_git_credentials_netrc),
	    cmocka_unit_test(test_docker_aws_pypirc_gh),
	    cmocka_unit_test(test_environ),
	    cmocka_unit_test(test_formats),
	    cmocka_unit_test(test_values_any_case_and_redaction),
	    cmocka_unit_test(test_format_inside_known_value),
	    cmocka_unit_test(test_hashes),
	    cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_file_read_safely),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
