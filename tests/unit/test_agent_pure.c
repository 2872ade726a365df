/* Unit tests for the agent's pure parts: JSON escaping, DNS wire parsing,
 * address and path rendering, sensitive-path matching, argument parsing,
 * the string map and the hash chain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <fcntl.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "observe/collect.h"
#include "observe/dns.h"
#include "observe/sensitive.h"
#include "common/jsonw.h"
#include "common/strmap.h"
#include "common/util.h"
#include "evidence/evlog.h"

static char *esc(const void *s, size_t n)
{
	struct strbuf sb = STRBUF_INIT;

	json_str(&sb, s, n);
	return sb_detach(&sb);
}

static void json_escaping(void **state)
{
	(void)state;
	struct {
		const char *in;
		size_t n;
		const char *out;
	} cases[] = {
	    {"plain", 5, "\"plain\""},
	    {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
	    {"l1\nl2\r\t", 7, "\"l1\\nl2\\r\\t\""},
	    {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\""},
	    {"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""},	      /* valid UTF-8 kept */
	    {"\xff\xfe", 2, "\"\\udcff\\udcfe\""},	      /* invalid bytes */
	    {"\xc0\xaf", 2, "\"\\udcc0\\udcaf\""},	      /* overlong '/' */
	    {"\xed\xa0\x80", 3, "\"\\udced\\udca0\\udc80\""}, /* UTF-8 surrogate */
	    {"\xe2\x80\xa8", 3, "\"\\u2028\""},
	    {"\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\""}, /* emoji kept */
	    {"\xe2\x82", 2, "\"\\udce2\\udc82\""},	     /* cut sequence */
	    {"a\0b", 3, "\"a\\u0000b\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = esc(cases[i].in, cases[i].n);

		assert_string_equal(s, cases[i].out);
		free(s);
	}
}

static void json_lines_load_back(void **state)
{
	(void)state;
	const char line[] = "{\"a\":\"x\\udcff\\n\",\"b\":[1,2]}";
	json_error_t e;
	json_t *j = json_load_line(line, strlen(line), &e);

	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "a")), "x\xef\xbf\xbd\n");
	json_decref(j);
	/* An escaped backslash followed by "udc.." is text, not an escape. */
	const char l2[] = "{\"a\":\"\\\\udcff\"}";
	j = json_load_line(l2, strlen(l2), &e);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "a")), "\\udcff");
	json_decref(j);
	assert_null(json_load_line("{\"a\":", 5, &e));
}

/* Appends one answer RR with a compressed owner pointing at the question. */
static size_t add_rr(uint8_t *p, size_t off, int type, const void *rdata, uint16_t rdlen)
{
	uint8_t *q = p + off;

	*q++ = 0xc0;
	*q++ = 12;
	*q++ = type >> 8;
	*q++ = type & 0xff;
	*q++ = 0;
	*q++ = 1; /* IN */
	*q++ = 0;
	*q++ = 0;
	*q++ = 0x0e;
	*q++ = 0x10; /* ttl 3600 */
	*q++ = rdlen >> 8;
	*q++ = rdlen & 0xff;
	memcpy(q, rdata, rdlen);
	return off + 12 + rdlen;
}

static size_t make_response(uint8_t *buf, const char *name, int qtype)
{
	int n = res_mkquery(ns_o_query, name, ns_c_in, qtype, NULL, 0, NULL, buf, 512);
	HEADER *h = (HEADER *)buf;
	uint8_t a4[4] = {127, 0, 20, 3}, a6[16] = {[15] = 1};
	/* CNAME target "b.test" in wire format */
	uint8_t cname[] = {1, 'b', 4, 't', 'e', 's', 't', 0};
	size_t off = n;

	assert_true(n > 0);
	h->qr = 1;
	h->id = htons(0x1234);
	off = add_rr(buf, off, ns_t_cname, cname, sizeof(cname));
	off = add_rr(buf, off, ns_t_a, a4, 4);
	off = add_rr(buf, off, ns_t_aaaa, a6, 16);
	h->ancount = htons(3);
	return off;
}

static void dns_parses_answers(void **state)
{
	(void)state;
	uint8_t buf[1024];
	struct dns_msg m;
	char err[128];
	size_t n = make_response(buf, "a.test", ns_t_a);

	assert_int_equal(dns_parse(buf, n, false, &m, err, sizeof(err)), 0);
	assert_true(m.response);
	assert_int_equal(m.id, 0x1234);
	assert_string_equal(m.qname, "a.test");
	assert_int_equal(m.qtype, ns_t_a);
	assert_int_equal(m.n_answers, 3);
	assert_string_equal(m.answers[0].data, "b.test");
	assert_string_equal(m.answers[1].data, "127.0.20.3");
	assert_string_equal(m.answers[2].data, "::1");
	assert_int_equal(m.answers[1].ttl, 3600);

	/* TCP framing: two-byte length first. */
	uint8_t tcp[1100];
	tcp[0] = n >> 8;
	tcp[1] = n & 0xff;
	memcpy(tcp + 2, buf, n);
	assert_int_equal(dns_parse(tcp, n + 2, true, &m, err, sizeof(err)), 0);
	assert_int_equal(m.n_answers, 3);
}

static void dns_rejects_garbage(void **state)
{
	(void)state;
	uint8_t buf[1024];
	struct dns_msg m;
	char err[128];
	size_t n = make_response(buf, "a.test", ns_t_a);

	assert_int_equal(dns_parse(buf, 5, false, &m, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "malformed"));
	assert_int_equal(dns_parse(buf, 1, true, &m, err, sizeof(err)), -1);
	/* A compression pointer to itself in the question name. */
	uint8_t loop[] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
	assert_int_equal(dns_parse(loop, sizeof(loop), false, &m, err, sizeof(err)), -1);
	/* Cut inside the answers: libresolv refuses the whole message. */
	assert_int_equal(dns_parse(buf, n - 20, false, &m, err, sizeof(err)), -1);
	/* Hostile label bytes come out escaped (presentation format). */
	int q = res_mkquery(ns_o_query, "x.test", ns_c_in, ns_t_a, NULL, 0, NULL, buf, 512);
	buf[13] = '\n';
	assert_int_equal(dns_parse(buf, q, false, &m, err, sizeof(err)), 0);
	assert_null(strchr(m.qname, '\n'));
	assert_non_null(strstr(m.qname, "\\010"));
}

static void addresses(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;
	uint8_t v4[4] = {127, 0, 0, 1}, v6[16] = {0}, mapped[16] = {0};

	v6[15] = 1;
	mapped[10] = mapped[11] = 0xff;
	memcpy(mapped + 12, v4, 4);
	fmt_addr(&sb, AF_INET, v4);
	assert_string_equal(sb.buf, "127.0.0.1");
	sb_reset(&sb);
	fmt_addr(&sb, AF_INET6, v6);
	assert_string_equal(sb.buf, "::1");
	sb_reset(&sb);
	fmt_addr(&sb, AF_INET6, mapped);
	assert_string_equal(sb.buf, "::ffff:127.0.0.1");
	sb_release(&sb);
}

static void paths_and_argv(void **state)
{
	(void)state;
	struct strbuf sb = STRBUF_INIT;

	join_components(&sb, "id_rsa\0.ssh\0root\0", 17);
	assert_string_equal(sb.buf, "/root/.ssh/id_rsa");
	sb_reset(&sb);
	join_components(&sb, "", 0);
	assert_string_equal(sb.buf, "/");
	sb_reset(&sb);
	render_argv(&sb, "ls\0-l\0", 6);
	assert_string_equal(sb.buf, "[\"ls\",\"-l\"]");
	sb_reset(&sb);
	render_argv(&sb, "ls\0-l\0cut", 9); /* truncated: no final NUL */
	assert_string_equal(sb.buf, "[\"ls\",\"-l\",\"cut\"]");
	sb_reset(&sb);
	render_open_flags(&sb, O_WRONLY | O_CREAT | O_CLOEXEC);
	assert_string_equal(sb.buf, "[\"O_WRONLY\",\"O_CREAT\",\"O_CLOEXEC\"]");
	sb_reset(&sb);
	render_result(&sb, -2);
	assert_string_equal(sb.buf, "\"ENOENT\"");
	sb_release(&sb);
}

static void sensitive_paths(void **state)
{
	(void)state;
	struct sensitive_list l;
	char err[256];

	sensitive_init(&l);
	assert_true(sensitive_match(&l, "/home/u/.ssh/id_ed25519", 1));
	assert_false(sensitive_match(&l, "/home/u/.ssh/id_ed25519.pub", 1));
	assert_false(sensitive_match(&l, "/home/u/src/id_rsa", 1));
	assert_true(sensitive_match(&l, "/root/.aws/credentials", 1));
	assert_true(sensitive_match(&l, "/proc/77/environ", 1));
	assert_true(sensitive_match(&l, "/proc/77/mem", 1));
	assert_false(sensitive_match(&l, "/proc/77/mem", 77)); /* its own */
	assert_true(sensitive_match(&l, "/proc/77/task/78/mem", 1));
	assert_false(sensitive_match(&l, "/proc/77/memory", 1));
	assert_int_equal(sensitive_add(&l, "/srv/secrets/*.pem", err, sizeof(err)), -1);
	assert_int_equal(sensitive_add(&l, "relative/x", err, sizeof(err)), -1);
	assert_int_equal(sensitive_add(&l, "/srv/secrets/tok*", err, sizeof(err)), 0);
	assert_string_equal(l.p[l.n - 1].key, "tok");
	assert_true(l.p[l.n - 1].key_prefix);
	assert_true(sensitive_match(&l, "/srv/secrets/token1", 1));
	sensitive_free(&l);
}

static void numbers(void **state)
{
	(void)state;
	uint64_t v;

	assert_true(parse_u64("42", 0, 100, &v));
	assert_int_equal(v, 42);
	assert_false(parse_u64("-1", 0, 100, &v));
	assert_false(parse_u64("101", 0, 100, &v));
	assert_false(parse_u64("4x", 0, 100, &v));
	assert_false(parse_u64("", 0, 100, &v));
	assert_false(parse_u64("99999999999999999999999", 0, UINT64_MAX, &v));
}

static void string_map(void **state)
{
	(void)state;
	struct strmap m;
	char k[16];

	strmap_init(&m);
	for (int i = 0; i < 1000; i++) {
		snprintf(k, sizeof(k), "%d", i);
		strmap_put(&m, k, NULL)->val = (void *)(intptr_t)(i + 1);
	}
	assert_int_equal(m.count, 1000);
	assert_int_equal((intptr_t)strmap_get(&m, "500")->val, 501);
	assert_int_equal((intptr_t)strmap_del(&m, "500"), 501);
	assert_null(strmap_get(&m, "500"));
	int n = 0, last = -1;
	strmap_for_each(e, &m)
	{
		int v = (int)(intptr_t)e->val;
		assert_true(v > last); /* insertion order */
		last = v;
		n++;
	}
	assert_int_equal(n, 999);
	strmap_clear(&m, NULL);
}

static void hash_chain(void **state)
{
	(void)state;
	char path[] = "/tmp/rw-unit-XXXXXX";
	int fd = mkstemp(path);
	struct evlog l;
	char buf[4096], h1[65];
	ssize_t n;

	assert_int_equal(evlog_open_fd(&l, fd), 0);
	assert_int_equal(evlog_append(&l, ",\"kind\":\"a\"", 11), 1);
	assert_int_equal(evlog_append(&l, ",\"kind\":\"b\"", 11), 2);
	assert_int_equal(evlog_close(&l, ",\"complete\":true"), 0);
	evlog_release(&l);
	n = read_file_bounded(path, buf, sizeof(buf) - 1);
	buf[n] = 0;
	unlink(path);
	const char *l1 = "{\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000"
			 "000000000000000000\",\"kind\":\"a\"}\n";
	assert_memory_equal(buf, l1, strlen(l1));
	sha256_hex(l1, strlen(l1), h1);
	char *line2 = buf + strlen(l1);
	assert_non_null(strstr(line2, h1));
	char *line3 = strchr(line2, '\n') + 1;
	char h2[65];
	sha256_hex(line2, line3 - line2, h2);
	assert_non_null(strstr(line3, "\"kind\":\"close\",\"count\":2"));
	assert_non_null(strstr(line3, h2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(json_escaping),	  cmocka_unit_test(json_lines_load_back),
	    cmocka_unit_test(dns_parses_answers), cmocka_unit_test(dns_rejects_garbage),
	    cmocka_unit_test(addresses),	  cmocka_unit_test(paths_and_argv),
	    cmocka_unit_test(sensitive_paths),	  cmocka_unit_test(numbers),
	    cmocka_unit_test(string_map),	  cmocka_unit_test(hash_chain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
