/* Built-in block list: the compiled copy matches data/blocklist.txt, the file parses, its entries
 * win over allow in every set, and malformed lines are reported with FILE:LINE:COL. */
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

static void test_builtin_matches_data_file(void **state)
{
	FILE *f = fopen("data/blocklist.txt", "r");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	(void)state;
	assert_non_null(f);
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	if (strcmp(buf, policy_blocklist_builtin))
		fail_msg("src/policy/blocklist_data.c is stale: run "
			 "'sh src/policy/gen-blocklist.sh > src/policy/blocklist_data.c'");
	assert_int_equal(n, strlen(policy_blocklist_builtin));
	free(buf);
}

static void test_data_file(void **state)
{
	char err[512];
	struct policy_list *bl = policy_load_blocklist("data/blocklist.txt", err, sizeof(err));
	struct policy *p;
	struct policy_set *s;
	struct policy_match m;
	static const char y[] = "version: 1\nallow:\n  - host: \"**.supportxmr.com\"\n"
				"  - host: webhook.site\n  - host: registry.example.test\n";

	(void)state;
	if (!bl)
		fail_msg("%s", err);
	assert_true(bl->n >= 10);
	for (size_t i = 0; i < bl->n; i++)
		assert_int_equal(bl->v[i].origin, POLICY_FROM_BLOCKLIST);
	p = policy_parse("t.yaml", y, strlen(y), err, sizeof(err));
	assert_non_null(p);
	s = policy_effective(p, NULL, bl, err, sizeof(err));
	assert_non_null(s);
	/* the block list beats the policy's own allow entries */
	assert_int_equal(policy_check_host(s, "pool.supportxmr.com", &m), POLICY_BLOCK);
	assert_int_equal(m.entry->origin, POLICY_FROM_BLOCKLIST);
	assert_int_equal(policy_check_host(s, "supportxmr.com", NULL), POLICY_BLOCK);
	assert_int_equal(policy_check_host(s, "webhook.site", NULL), POLICY_BLOCK);
	assert_int_equal(policy_check_host(s, "abc.oast.fun", NULL), POLICY_BLOCK);
	assert_int_equal(policy_check_host(s, "registry.example.test", NULL), POLICY_ALLOW);
	/* label boundaries hold here too */
	assert_int_equal(policy_check_host(s, "notsupportxmr.com", NULL), POLICY_DENY);
	policy_set_free(s);
	policy_free(p);
	policy_list_free(bl);

	/* NULL path: the installed copy or the compiled one; either way, a usable list */
	bl = policy_load_blocklist(NULL, err, sizeof(err));
	assert_non_null(bl);
	assert_true(bl->n >= 10);
	policy_list_free(bl);
	assert_null(policy_load_blocklist("/nonexistent/bl.txt", err, sizeof(err)));
	assert_string_equal(err, "/nonexistent/bl.txt: cannot read: No such file or directory");
}

static void test_syntax(void **state)
{
	static const char ok[] = "# comment\n"
				 "\n"
				 "   evil.example.test   # trailing comment\n"
				 "\t*.x.example.test\r\n"
				 "203.0.113.7\n"
				 "198.51.100.0/24\n"
				 "2001:db8::/32\n"
				 "::ffff:192.0.2.1\n"
				 "LAST.example.test.";
	char err[256];
	struct policy_list *l = policy_parse_blocklist("b.txt", ok, strlen(ok), err, sizeof(err));
	struct policy_set *s;
	struct policy p = {.path = "p", .fail_on_violation = -1};

	(void)state;
	if (!l)
		fail_msg("%s", err);
	assert_int_equal(l->n, 7);
	assert_string_equal(l->v[0].host, "evil.example.test");
	assert_int_equal(l->v[0].line, 3);
	assert_int_equal(l->v[0].col, 4);
	assert_string_equal(l->v[1].host, "*.x.example.test");
	assert_int_equal(l->v[2].kind, POLICY_ENTRY_CIDR);
	assert_int_equal(l->v[2].prefix, 32);
	assert_int_equal(l->v[3].prefix, 24);
	assert_int_equal(l->v[4].family, AF_INET6);
	assert_int_equal(l->v[5].family, AF_INET);
	assert_string_equal(l->v[6].host, "last.example.test");
	s = policy_effective(&p, NULL, l, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(
	    policy_check_addr(s, AF_INET, "\xc6\x33\x64\x09", 443, POLICY_PROTO_TCP, NULL),
	    POLICY_BLOCK);
	policy_set_free(s);
	policy_list_free(l);

#define BAD(text, want)                                                                            \
	do {                                                                                       \
		assert_null(                                                                       \
		    policy_parse_blocklist("b.txt", text, strlen(text), err, sizeof(err)));        \
		assert_string_equal(err, want);                                                    \
	} while (0)
	BAD("ok.test\n  two words\n", "b.txt:2:7: one entry per line");
	BAD("ok.test\n\n10.0.0.1/8\n",
	    "b.txt:3:1: address has bits set beyond /8 (did you mean 10.0.0.0/8?)");
	BAD("*.com\n", "b.txt:1:1: wildcard needs at least two labels after it (*.example.com, not "
		       "*.com)");
	BAD("a..b\n", "b.txt:1:1: empty label");
	BAD("  300.1.2.3/8\n", "b.txt:1:3: not an IPv4 or IPv6 address");
#undef BAD
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_builtin_matches_data_file),
	    cmocka_unit_test(test_data_file),
	    cmocka_unit_test(test_syntax),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
