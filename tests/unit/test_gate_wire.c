/*
 * DNS gate message layer (src/gate/wire.c) on crafted packets: what a question is, which
 * replies belong to it, and which addresses an answer's CNAME chain vouches for, including
 * the hostile cases (loops, lies about counts, records outside the chain).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "gate/wire.h"
#include "test_gate_harness.h"

static enum gw_parse parse(const struct h_pkt *p, struct gw_question *q, int *rcode)
{
	const char *why;

	return gw_parse_query(p->b, p->n, q, rcode, &why);
}

static void test_query_ok(void **state)
{
	struct h_pkt p;
	struct gw_question q;
	int rcode;

	(void)state;
	h_header(&p, 0x1234, 0x0100, 1, 0, 0, 0);
	h_question(&p, "WWW.Example.TEST", ns_t_aaaa);
	assert_int_equal(parse(&p, &q, &rcode), GW_OK);
	assert_int_equal(q.id, 0x1234);
	assert_true(q.rd);
	assert_string_equal(q.name, "www.example.test");
	assert_int_equal(q.qtype, ns_t_aaaa);
	assert_int_equal(q.qclass, ns_c_in);
	assert_false(q.edns);
	assert_int_equal(q.udp_size, 512);
	assert_false(q.escaped);
	/* The case the client sent is kept on the wire (0x20 randomisation). */
	assert_int_equal(q.wire[1], 'W');
}

static void test_query_edns(void **state)
{
	uint8_t buf[512];
	struct gw_question q;
	const char *why;
	int rcode, n = h_mkquery("a.test", ns_t_a, 4096, buf, sizeof(buf));

	(void)state;
	assert_int_equal(gw_parse_query(buf, (size_t)n, &q, &rcode, &why), GW_OK);
	assert_true(q.edns);
	assert_int_equal(q.udp_size, 4096);
	/* Two OPT records are FORMERR (RFC 6891 6.1.1). */
	memcpy(buf + n, buf + n - 11, 11);
	buf[11] = 2;
	assert_int_equal(gw_parse_query(buf, (size_t)n + 11, &q, &rcode, &why), GW_REPLY);
	assert_int_equal(rcode, ns_r_formerr);
}

static void test_query_malformed(void **state)
{
	struct h_pkt p;
	struct gw_question q;
	int rcode;

	(void)state;
	/* Too short for a header: dropped. */
	h_header(&p, 1, 0x0100, 1, 0, 0, 0);
	p.n = 5;
	assert_int_equal(parse(&p, &q, &rcode), GW_DROP);
	/* A response sent to us: dropped. */
	h_header(&p, 1, 0x8180, 1, 0, 0, 0);
	h_question(&p, "a.test", ns_t_a);
	assert_int_equal(parse(&p, &q, &rcode), GW_DROP);
	/* Header promising a question that is not there. */
	h_header(&p, 1, 0x0100, 1, 0, 0, 0);
	assert_int_equal(parse(&p, &q, &rcode), GW_REPLY);
	assert_int_equal(rcode, ns_r_formerr);
	assert_int_equal(q.wire_len, 0);
	/* No question at all. */
	h_header(&p, 1, 0x0100, 0, 0, 0, 0);
	assert_int_equal(parse(&p, &q, &rcode), GW_REPLY);
	assert_int_equal(rcode, ns_r_formerr);
	/* Huge counts with nothing behind them. */
	h_header(&p, 1, 0x0100, 1, 65535, 65535, 65535);
	h_question(&p, "a.test", ns_t_a);
	assert_int_equal(parse(&p, &q, &rcode), GW_REPLY);
	assert_int_equal(rcode, ns_r_formerr);
	/* A compression pointer to itself as the question name. */
	h_header(&p, 1, 0x0100, 1, 0, 0, 0);
	h_put16(&p, 0xc00c);
	h_put16(&p, ns_t_a);
	h_put16(&p, ns_c_in);
	assert_int_equal(parse(&p, &q, &rcode), GW_REPLY);
	assert_int_equal(rcode, ns_r_formerr);
	/* Two pointers pointing at each other, behind a valid label. */
	h_header(&p, 1, 0x0100, 1, 0, 0, 0);
	p.b[p.n++] = 1;
	p.b[p.n++] = 'a';
	h_put16(&p, 0xc000 | 16);
	h_put16(&p, 0xc000 | 14);
	assert_int_equal(parse(&p, &q, &rcode), GW_REPLY);
	/* Pointer past the end. */
	h_header(&p, 1, 0x0100, 1, 0, 0, 0);
	h_put16(&p, 0xc000 | 2000);
	h_put16(&p, ns_t_a);
	h_put16(&p, ns_c_in);
	assert_int_equal(parse(&p, &q, &rcode), GW_REPLY);
	/* Trailing garbage. */
	h_header(&p, 1, 0x0100, 1, 0, 0, 0);
	h_question(&p, "a.test", ns_t_a);
	p.b[p.n++] = 0x42;
	assert_int_equal(parse(&p, &q, &rcode), GW_REPLY);
	/* Two questions: refused. */
	h_header(&p, 1, 0x0100, 2, 0, 0, 0);
	h_question(&p, "a.test", ns_t_a);
	h_question(&p, "b.test", ns_t_a);
	assert_int_equal(parse(&p, &q, &rcode), GW_REPLY);
	assert_int_equal(rcode, ns_r_refused);
	/* Not a QUERY. */
	h_header(&p, 1, 5 << 11, 1, 0, 0, 0);
	h_question(&p, "a.test", ns_t_a);
	assert_int_equal(parse(&p, &q, &rcode), GW_REPLY);
	assert_int_equal(rcode, ns_r_notimpl);
	/* Bigger than any query. */
	h_header(&p, 1, 0x0100, 1, 0, 0, 0);
	h_question(&p, "a.test", ns_t_a);
	p.n = GW_QUERY_MAX + 1;
	assert_int_equal(parse(&p, &q, &rcode), GW_REPLY);
}

static void test_query_escaped(void **state)
{
	struct h_pkt p;
	struct gw_question q;
	int rcode;

	(void)state;
	/* One label "evil.github" under com: prints as evil\.github.com. */
	h_header(&p, 1, 0x0100, 1, 0, 0, 0);
	p.b[p.n++] = 11;
	memcpy(p.b + p.n, "evil.github", 11);
	p.n += 11;
	p.b[p.n++] = 3;
	memcpy(p.b + p.n, "com", 3);
	p.n += 3;
	p.b[p.n++] = 0;
	h_put16(&p, ns_t_a);
	h_put16(&p, ns_c_in);
	assert_int_equal(parse(&p, &q, &rcode), GW_OK);
	assert_true(q.escaped);
	assert_string_equal(q.name, "evil\\.github.com");
}

static void test_build(void **state)
{
	uint8_t buf[512], out[600];
	struct gw_question q;
	const char *why;
	int rcode, n = h_mkquery("Mixed.Case.test", ns_t_a, 4096, buf, sizeof(buf));
	size_t m;
	ns_msg h;
	ns_rr rr;

	(void)state;
	assert_int_equal(gw_parse_query(buf, (size_t)n, &q, &rcode, &why), GW_OK);
	m = gw_build_query(&q, 0xbeef, out, sizeof(out));
	assert_true(m > 0);
	assert_int_equal(ns_initparse(out, (int)m, &h), 0);
	assert_int_equal(ns_msg_id(h), 0xbeef);
	assert_int_equal(ns_msg_count(h, ns_s_qd), 1);
	assert_int_equal(ns_msg_count(h, ns_s_ar), 1);
	assert_int_equal(ns_parserr(&h, ns_s_qd, 0, &rr), 0);
	assert_string_equal(ns_rr_name(rr), "Mixed.Case.test");
	assert_int_equal(ns_parserr(&h, ns_s_ar, 0, &rr), 0);
	assert_int_equal(ns_rr_type(rr), ns_t_opt);
	assert_int_equal(ns_rr_class(rr), GW_EDNS_UPSTREAM);
	/* Without EDNS from the client there is none upstream either. */
	n = h_mkquery("a.test", ns_t_a, 0, buf, sizeof(buf));
	gw_parse_query(buf, (size_t)n, &q, &rcode, &why);
	m = gw_build_query(&q, 7, out, sizeof(out));
	assert_int_equal(ns_initparse(out, (int)m, &h), 0);
	assert_int_equal(ns_msg_count(h, ns_s_ar), 0);
	/* A synthesised reply echoes the question. */
	m = gw_build_reply(&q, ns_r_refused, true, out, sizeof(out));
	assert_int_equal(ns_initparse(out, (int)m, &h), 0);
	assert_int_equal(ns_msg_getflag(h, ns_f_rcode), ns_r_refused);
	assert_int_equal(ns_msg_getflag(h, ns_f_qr), 1);
	assert_int_equal(ns_msg_getflag(h, ns_f_tc), 1);
	assert_int_equal(ns_msg_id(h), q.id);
	assert_int_equal(ns_msg_count(h, ns_s_qd), 1);
}

static void question(struct gw_question *q, const char *name, int type)
{
	struct h_pkt p;
	const char *why;
	int rcode;

	h_header(&p, 99, 0x0100, 1, 0, 0, 0);
	h_question(&p, name, type);
	assert_int_equal(gw_parse_query(p.b, p.n, q, &rcode, &why), GW_OK);
}

static void test_reply_matches(void **state)
{
	struct gw_question q;
	struct h_pkt p;

	(void)state;
	question(&q, "a.test", ns_t_a);
	h_header(&p, 500, 0x8180, 1, 1, 0, 0);
	h_question(&p, "A.TEST", ns_t_a); /* case differs: still the same name */
	h_rr_a(&p, "a.test", "127.0.10.1", 60);
	assert_true(gw_reply_matches(p.b, p.n, &q, 500));
	assert_false(gw_reply_matches(p.b, p.n, &q, 501)); /* id */
	p.b[2] &= 0x7f;
	assert_false(gw_reply_matches(p.b, p.n, &q, 500)); /* not a response */
	h_header(&p, 500, 0x8180, 1, 0, 0, 0);
	h_question(&p, "b.test", ns_t_a);
	assert_false(gw_reply_matches(p.b, p.n, &q, 500)); /* name */
	h_header(&p, 500, 0x8180, 1, 0, 0, 0);
	h_question(&p, "a.test", ns_t_aaaa);
	assert_false(gw_reply_matches(p.b, p.n, &q, 500)); /* type */
	h_header(&p, 500, 0x8180, 0, 0, 0, 0);
	assert_false(gw_reply_matches(p.b, p.n, &q, 500)); /* no question */
	h_header(&p, 500, 0x8180, 1, 3, 0, 0);
	h_question(&p, "a.test", ns_t_a);
	assert_false(gw_reply_matches(p.b, p.n, &q, 500)); /* counts lie */
}

struct seen {
	int n;
	char owner[64][64], data[64][64];
	bool chain[64];
};

static int collect(void *arg, const struct gw_rr *rr)
{
	struct seen *s = arg;

	if (s->n == 64)
		return 0;
	snprintf(s->owner[s->n], 64, "%s", rr->owner);
	if (rr->target)
		snprintf(s->data[s->n], 64, "%s", rr->target);
	else
		inet_ntop(rr->type == ns_t_a ? AF_INET : AF_INET6, rr->addr, s->data[s->n], 64);
	s->chain[s->n] = rr->in_chain;
	s->n++;
	return 0;
}

static bool chained(const struct seen *s, const char *data)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->data[i], data))
			return s->chain[i];
	fail_msg("%s not seen", data);
	return false;
}

static void test_walk_chain(void **state)
{
	struct h_pkt p;
	struct seen s = {0};

	(void)state;
	/* Address first, then the CNAMEs leading to it (out of order on purpose), plus an
	 * address for a name no CNAME in this answer leads to. */
	h_header(&p, 1, 0x8180, 1, 5, 0, 0);
	h_question(&p, "www.allowed.test", ns_t_a);
	h_rr_a(&p, "Origin.CDN.test", "127.0.10.3", 30);
	h_rr_a(&p, "unrelated.test", "127.0.66.6", 30);
	h_rr_cname(&p, "edge.cdn.test", "origin.cdn.test", 30);
	h_rr_cname(&p, "www.allowed.test", "edge.cdn.test", 30);
	h_rr_a(&p, "www.allowed.test", "fd00::10:1", 30);
	assert_int_equal(gw_walk_answers(p.b, p.n, "www.allowed.test", collect, &s), 0);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.owner[0], "origin.cdn.test");
	assert_true(chained(&s, "127.0.10.3"));
	assert_false(chained(&s, "127.0.66.6"));
	assert_true(chained(&s, "fd00::10:1"));
}

static void test_walk_hostile(void **state)
{
	struct h_pkt p;
	struct seen s = {0};
	char a[32], b[32];

	(void)state;
	/* A CNAME loop ends the chain without hanging. */
	h_header(&p, 1, 0x8180, 1, 3, 0, 0);
	h_question(&p, "a.test", ns_t_a);
	h_rr_cname(&p, "a.test", "b.test", 30);
	h_rr_cname(&p, "b.test", "a.test", 30);
	h_rr_a(&p, "b.test", "127.0.10.5", 30);
	assert_int_equal(gw_walk_answers(p.b, p.n, "a.test", collect, &s), 0);
	assert_true(chained(&s, "127.0.10.5"));

	/* A chain longer than GW_CHAIN_MAX: the far end is not vouched for. */
	h_header(&p, 1, 0x8180, 1, 31, 0, 0);
	h_question(&p, "c0.test", ns_t_a);
	for (int i = 0; i < 30; i++) {
		snprintf(a, sizeof(a), "c%d.test", i);
		snprintf(b, sizeof(b), "c%d.test", i + 1);
		h_rr_cname(&p, a, b, 30);
	}
	h_rr_a(&p, "c30.test", "127.0.10.6", 30);
	memset(&s, 0, sizeof(s));
	assert_int_equal(gw_walk_answers(p.b, p.n, "c0.test", collect, &s), 0);
	assert_false(chained(&s, "127.0.10.6"));

	/* An A record of 3 bytes. */
	h_header(&p, 1, 0x8180, 1, 1, 0, 0);
	h_question(&p, "a.test", ns_t_a);
	h_rr_a(&p, "a.test", "127.0.10.7", 30);
	p.b[p.n - 5] = 3;
	p.n--;
	assert_int_equal(gw_walk_answers(p.b, p.n, "a.test", collect, &s), -1);

	/* An answer owner that is a compression loop. */
	h_header(&p, 1, 0x8180, 1, 1, 0, 0);
	h_question(&p, "a.test", ns_t_a);
	size_t at = p.n;

	h_put16(&p, 0xc000 | (unsigned)at);
	h_put16(&p, ns_t_a);
	h_put16(&p, ns_c_in);
	h_put16(&p, 0);
	h_put16(&p, 30);
	h_put16(&p, 4);
	h_put16(&p, 0x7f00);
	h_put16(&p, 0x0a07);
	assert_int_equal(gw_walk_answers(p.b, p.n, "a.test", collect, &s), -1);
}

static void test_fuzz(void **state)
{
	/* Random mutations of a valid reply and query: nothing may crash or hang (ASan and
	 * UBSan are watching); results are irrelevant. */
	struct h_pkt base, p;
	struct gw_question q;
	struct seen s;
	const char *why;
	int rcode;

	(void)state;
	srand(12345);
	h_header(&base, 1, 0x8180, 1, 3, 0, 0);
	h_question(&base, "www.allowed.test", ns_t_a);
	h_rr_cname(&base, "www.allowed.test", "edge.cdn.test", 30);
	h_rr_a(&base, "edge.cdn.test", "127.0.10.3", 30);
	h_rr_a(&base, "edge.cdn.test", "fd00::1", 30);
	question(&q, "www.allowed.test", ns_t_a);
	for (int i = 0; i < 20000; i++) {
		p = base;
		for (int k = rand() % 4 + 1; k > 0; k--)
			p.b[rand() % p.n] = (uint8_t)rand();
		if (rand() % 4 == 0)
			p.n = (size_t)rand() % p.n;
		memset(&s, 0, sizeof(s));
		if (gw_reply_matches(p.b, p.n, &q, gw_get_id(p.b)))
			gw_walk_answers(p.b, p.n, q.name, collect, &s);
		gw_walk_answers(p.b, p.n, "edge.cdn.test", collect, &s);
		p.b[2] &= 0x7f;
		gw_parse_query(p.b, p.n, &q, &rcode, &why);
		question(&q, "www.allowed.test", ns_t_a);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_query_ok),
	    cmocka_unit_test(test_query_edns),
	    cmocka_unit_test(test_query_malformed),
	    cmocka_unit_test(test_query_escaped),
	    cmocka_unit_test(test_build),
	    cmocka_unit_test(test_reply_matches),
	    cmocka_unit_test(test_walk_chain),
	    cmocka_unit_test(test_walk_hostile),
	    cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
