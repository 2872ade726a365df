/* Hostile policy files: every truncation of a full policy, byte mutations, deep nesting, huge
 * scalars, alias bombs, binary junk. The reader must answer with a policy or one
 * "t.yaml:LINE:COL: why" line, never crash, hang or balloon (ASan/UBSan watch the rest). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy/policy.h"

static const char full[] = "version: 1\n"
			   "mode: enforce\n"
			   "fail_on_violation: true\n"
			   "allow:\n"
			   "  - host: registry.example.test\n"
			   "    ports: [443, \"8000-8100\"]\n"
			   "    proto: tcp\n"
			   "  - host: \"*.cdn.example.test\"\n"
			   "  - host: '**.deep.example.test'\n"
			   "  - cidr: 127.0.10.0/24\n"
			   "  - ip: \"2001:db8::1\"\n"
			   "    ports: 53\n"
			   "    proto: udp\n"
			   "  - {cidr: \"::ffff:10.0.0.0/104\", proto: any}\n"
			   "block:\n"
			   "  - host: evil.example.test\n"
			   "steps:\n"
			   "  build:\n"
			   "    allow:\n"
			   "      - host: build.example.test\n"
			   "  test:\n"
			   "dns:\n"
			   "  resolvers: [127.0.0.53, \"[::1]:53\"]\n"
			   "  refuse_unlisted: true\n"
			   "  refuse_with: nxdomain\n"
			   "  upstream: 127.0.0.1:5353\n"
			   "files: [/etc/shadow]\n";

/* A well-formed error: "t.yaml:<n>:<n>: <text>", one line. */
static void check_outcome(const char *buf, size_t len)
{
	char err[512] = "";
	struct policy *p = policy_parse("t.yaml", buf, len, err, sizeof(err));
	unsigned line, col;
	int used = 0;

	if (p) {
		policy_free(p);
		return;
	}
	if (sscanf(err, "t.yaml:%u:%u: %n", &line, &col, &used) != 2 || !used || !err[used] ||
	    strchr(err, '\n'))
		fail_msg("bad error message: '%s'", err);
	assert_true(line >= 1 && col >= 1);
}

static void test_full_parses(void **state)
{
	char err[512];
	struct policy *p = policy_parse("t.yaml", full, strlen(full), err, sizeof(err));

	(void)state;
	if (!p)
		fail_msg("%s", err);
	policy_free(p);
}

static void test_truncations(void **state)
{
	size_t n = strlen(full);

	(void)state;
	/* A heap copy of exactly len bytes, so ASan sees any read past the end. */
	for (size_t len = 0; len <= n; len++) {
		char *b = malloc(len ? len : 1);

		memcpy(b, full, len);
		check_outcome(b, len);
		free(b);
	}
}

static void test_mutations(void **state)
{
	static const char bytes[] = ":-[]{}\"'&*!|>#,?\n\t \\\x00\xff\xc3%@`0123456789.";
	size_t n = strlen(full);
	uint32_t seed = 12345;

	(void)state;
	for (int iter = 0; iter < 20000; iter++) {
		char *b = malloc(n);
		int k;

		memcpy(b, full, n);
		seed = seed * 1103515245u + 12345u;
		k = 1 + (seed >> 16) % 4;
		for (int j = 0; j < k; j++) {
			seed = seed * 1103515245u + 12345u;
			b[(seed >> 8) % n] = bytes[(seed >> 20) % (sizeof(bytes) - 1)];
		}
		check_outcome(b, n);
		free(b);
	}
}

static char *repeat(const char *head, const char *unit, size_t times, const char *tail, size_t *len)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *b = malloc(hl + ul * times + tl + 1);

	memcpy(b, head, hl);
	for (size_t i = 0; i < times; i++)
		memcpy(b + hl + i * ul, unit, ul);
	memcpy(b + hl + ul * times, tail, tl + 1);
	*len = hl + ul * times + tl;
	return b;
}

static void test_deep_nesting(void **state)
{
	size_t len;
	char *b;

	(void)state;
	b = repeat("version: 1\nallow: ", "[", 1000000, "", &len);
	check_outcome(b, len);
	free(b);
	b = repeat("version: 1\nallow:\n  - host: ", "{a: ", 200000, "", &len);
	check_outcome(b, len);
	free(b);
	b = repeat("version: 1\nsteps:\n", "- ", 200000, "x\n", &len);
	check_outcome(b, len);
	free(b);
	/* block-style nesting: each level indented one more */
	{
		struct strbuf_like {
			char *b;
			size_t n;
		} s = {malloc(6 * 1000 * 1000), 0};

		s.n = (size_t)sprintf(s.b, "version: 1\ndns:\n");
		for (int i = 0; i < 3000; i++) {
			memset(s.b + s.n, ' ', i + 1);
			s.n += i + 1;
			s.n += (size_t)sprintf(s.b + s.n, "k%d:\n", i);
		}
		check_outcome(s.b, s.n);
		free(s.b);
	}
}

static void test_huge_scalars(void **state)
{
	size_t len;
	char *b;

	(void)state;
	b = repeat("version: 1\nallow:\n  - host: ", "a", 8 << 20, "\n", &len);
	check_outcome(b, len);
	free(b);
	b = repeat("version: 1\nallow:\n  - host: \"", "a", 4 << 20, "\"\n", &len);
	check_outcome(b, len);
	free(b);
	b = repeat("version: 1\n", "#", 8 << 20, "\n", &len);
	check_outcome(b, len);
	free(b);
	b = repeat("version: 1\nfiles: [\"/", "a", 1 << 20, "\"]\n", &len);
	check_outcome(b, len);
	free(b);
	/* over the file cap: refused before parsing */
	b = repeat("version: 1\n#", "x", POLICY_MAX_FILE_BYTES, "\n", &len);
	{
		char err[256];

		assert_null(policy_parse("t.yaml", b, len, err, sizeof(err)));
		assert_string_equal(err, "t.yaml: larger than 16 MiB");
	}
	free(b);
}

static void test_alias_bombs(void **state)
{
	static const char laughs[] =
	    "version: 1\n"
	    "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
	    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
	    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
	    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
	    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
	    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
	    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
	    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
	    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
	static const char in_allow[] = "version: 1\n"
				       "allow: &x\n"
				       "  - host: a.test\n"
				       "block: *x\n";
	static const char merge[] = "version: 1\n"
				    "allow:\n"
				    "  - <<: {host: a.test}\n";
	char err[512];

	(void)state;
	assert_null(policy_parse("t.yaml", laughs, strlen(laughs), err, sizeof(err)));
	/* refused at the first key (unknown) or the first anchor: either way, nothing expanded */
	assert_string_equal(err, "t.yaml:2:1: policy: unknown key 'a'");
	assert_null(policy_parse("t.yaml", in_allow, strlen(in_allow), err, sizeof(err)));
	assert_string_equal(err, "t.yaml:2:8: anchors (&name) are not supported in a policy");
	assert_null(policy_parse("t.yaml", merge, strlen(merge), err, sizeof(err)));
	assert_string_equal(err, "t.yaml:3:5: allow entry: unknown key '<<'");
}

static void test_binary_junk(void **state)
{
	uint32_t seed = 99;

	(void)state;
	for (int iter = 0; iter < 2000; iter++) {
		size_t n = 1 + iter % 300;
		char *b = malloc(n);

		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			b[i] = seed >> 16;
		}
		check_outcome(b, n);
		free(b);
	}
	/* UTF-16 and UTF-8 BOMs, NUL in the middle, lone CR line ends */
	check_outcome("\xff\xfev\x00", 4);
	check_outcome("\xef\xbb\xbfversion: 1\n", 14);
	check_outcome("version: 1\0\nmode: enforce\n", 26);
	check_outcome("version: 1\rmode: enforce\r", 25);
}

/* The block list reader gets the same treatment. */
static void test_blocklist_junk(void **state)
{
	static const char text[] =
	    "# c\n**.x.example.test\n10.0.0.0/8 # t\n2001:db8::/32\nh.test\n";
	size_t n = strlen(text);
	uint32_t seed = 7;
	char err[256];

	(void)state;
	for (int iter = 0; iter < 5000; iter++) {
		char *b = malloc(n);
		struct policy_list *l;

		memcpy(b, text, n);
		seed = seed * 1103515245u + 12345u;
		b[(seed >> 8) % n] = "*/:. #\n\x00\xff"[(seed >> 20) % 9];
		l = policy_parse_blocklist("b.txt", b, n, err, sizeof(err));
		if (l)
			policy_list_free(l);
		else
			assert_int_equal(strncmp(err, "b.txt:", 6), 0);
		free(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_parses),	 cmocka_unit_test(test_truncations),
	    cmocka_unit_test(test_mutations),	 cmocka_unit_test(test_deep_nesting),
	    cmocka_unit_test(test_huge_scalars), cmocka_unit_test(test_alias_bombs),
	    cmocka_unit_test(test_binary_junk),	 cmocka_unit_test(test_blocklist_junk),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
