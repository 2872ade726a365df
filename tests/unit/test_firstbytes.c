/* The kernel's parser of a connection's first bytes (bpf/firstbytes.h), compiled for user
 * space: real-shaped ClientHellos and HTTP requests, the hostile ones the kernel must refuse,
 * and a fuzz of mutated messages. Properties: nothing is read or written out of bounds (ASan),
 * every loop ends, lengths stay within their arrays, a name is only ever bytes a host name
 * has, and the result never depends on bytes past the segment's end (the kernel's buffer holds
 * a previous connection's bytes there). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* The parser's long walks take FB_BATCH positions a round (firstbytes.h FB_STEP_N); one_a_round
 * makes them take one, as before the rounds were batched, for the fuzz to compare. */
static unsigned one_a_round;
#define FB_USER_BATCH(B) (one_a_round ? 1u : (unsigned)(B))
#include "firstbytes.h"

struct msg {
	uint8_t b[FB_CAP * 2];
	size_t n;
};

static void put(struct msg *m, const void *p, size_t n)
{
	assert_true(m->n <= sizeof(m->b) && n <= sizeof(m->b) - m->n);
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

static void put16(struct msg *m, unsigned v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	put(m, b, 2);
}

static void ext(struct msg *m, unsigned type, const void *body, size_t n)
{
	put16(m, type);
	put16(m, (unsigned)n);
	put(m, body, n);
}

static void sni(struct msg *m, const char *name)
{
	struct msg e = {0};
	size_t n = strlen(name);

	put16(&e, (unsigned)n + 3);
	put(&e, "\0", 1);
	put16(&e, (unsigned)n);
	put(&e, name, n);
	ext(m, 0, e.b, e.n);
}

static void alpn(struct msg *m)
{
	static const uint8_t a[] = {0, 12, 2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

	ext(m, 16, a, sizeof(a));
}

/* A ClientHello around the extensions in exts; claim/hello_claim override lengths (0: true). */
static void hello(struct msg *out, const struct msg *exts, unsigned claim, unsigned ext_claim)
{
	struct msg body = {0}, hs = {0};
	uint8_t rnd[32];

	memset(rnd, 0x11, sizeof(rnd));
	put(&body, "\x03\x03", 2);
	put(&body, rnd, 32);
	put(&body, "\x00", 1);
	put16(&body, 4);
	put(&body, "\x13\x01\x13\x02", 4);
	put(&body, "\x01\x00", 2);
	put16(&body, ext_claim ? ext_claim : (unsigned)exts->n);
	put(&body, exts->b, exts->n);
	put(&hs, "\x01", 1);
	put(&hs, (uint8_t[]){0, (uint8_t)(body.n >> 8), (uint8_t)body.n}, 3);
	put(&hs, body.b, body.n);
	memset(out, 0, sizeof(*out));
	put(out, "\x16\x03\x01", 3);
	put16(out, claim ? claim : (unsigned)hs.n);
	put(out, hs.b, hs.n);
}

static struct fb *F;

/* Parses m's first n bytes (at most FB_CAP), with junk past them. */
static struct fb *parse_n(const uint8_t *b, size_t n, uint8_t junk)
{
	memset(F, 0, sizeof(*F));
	memset(F->buf, junk, sizeof(F->buf));
	if (n > FB_CAP)
		n = FB_CAP;
	memcpy(F->buf, b, n);
	F->len = (uint32_t)n;
	fb_parse(F);
	return F;
}

static struct fb *parse(const struct msg *m)
{
	return parse_n(m->b, m->n, 0xa5);
}

static struct fb *parse_str(const char *s)
{
	return parse_n((const uint8_t *)s, strlen(s), 0xa5);
}

static void assert_name(const struct fb *f, const char *name)
{
	assert_true(f->ev.flags & FBF_NAMED);
	assert_int_equal(f->ev.name_len, strlen(name));
	assert_memory_equal(f->ev.name, name, strlen(name));
}

static void tls_good(void **state)
{
	struct msg e = {0}, m;
	struct fb *f;

	(void)state;
	ext(&e, 10, "\x00\x02\x00\x1d", 4);
	sni(&e, "Registry.Example.TEST");
	alpn(&e);
	hello(&m, &e, 0, 0);
	f = parse(&m);
	assert_int_equal(f->ev.app, FB_TLS);
	assert_name(f, "registry.example.test");
	assert_int_equal(f->ev.alpn_len, strlen("h2,http/1.1"));
	assert_memory_equal(f->ev.alpn, "h2,http/1.1", f->ev.alpn_len);
	assert_int_equal(f->ev.dots, 2);
	/* the key: reversed, NUL-terminated, its length in bits */
	assert_int_equal(f->key.prefixlen, (strlen("registry.example.test") + 1) * 8);
	assert_memory_equal(f->key.data, "tset.elpmaxe.yrtsiger\0", 22);
}

static void tls_hostile(void **state)
{
	struct msg e = {0}, m;

	(void)state;
	sni(&e, "good.test");
	sni(&e, "evil.test");
	hello(&m, &e, 0, 0);
	assert_true(parse(&m)->ev.flags & FBF_MALFORMED); /* a second SNI */

	memset(&e, 0, sizeof(e));
	{ /* a NUL and a space inside the name */
		static const char bad[] = "good.test\0 evil.test";
		struct msg x = {0};

		put16(&x, sizeof(bad) - 1 + 3);
		put(&x, "\0", 1);
		put16(&x, sizeof(bad) - 1);
		put(&x, bad, sizeof(bad) - 1);
		ext(&e, 0, x.b, x.n);
	}
	hello(&m, &e, 0, 0);
	assert_true(parse(&m)->ev.flags & FBF_BAD_NAME);

	memset(&e, 0, sizeof(e));
	sni(&e, "good.test");
	hello(&m, &e, 3000, 0);
	assert_true(parse_n(m.b, 60, 0)->ev.flags & FBF_CUT); /* the rest never came */

	memset(&e, 0, sizeof(e));
	for (int i = 0; i < 70; i++)
		ext(&e, 0xfe00 + i, "", 0);
	sni(&e, "evil.test");
	hello(&m, &e, 0, 0);
	assert_true(parse(&m)->ev.flags & FBF_CUT); /* past the extensions walked */
	assert_false(parse(&m)->ev.flags & FBF_NAMED);

	memset(&e, 0, sizeof(e));
	sni(&e, "good.test");
	hello(&m, &e, 0, 900);
	assert_true(parse(&m)->ev.flags & FBF_MALFORMED); /* extensions longer than the hello */

	memset(&e, 0, sizeof(e));
	alpn(&e);
	hello(&m, &e, 0, 0);
	assert_true(parse(&m)->ev.flags & FBF_NO_NAME);

	memset(&e, 0, sizeof(e));
	sni(&e, "GOOD.TEST.");
	hello(&m, &e, 0, 0);
	assert_name(parse(&m), "good.test");

	memset(&e, 0, sizeof(e));
	sni(&e, "127.0.0.1");
	hello(&m, &e, 0, 0);
	assert_true(parse(&m)->ev.flags & FBF_LITERAL);

	/* a ClientHello split after its first bytes is cut, never "not TLS" */
	for (size_t n = 1; n < 6; n++) {
		struct fb *f = parse_n(m.b, n, 0);

		assert_int_equal(f->ev.app, FB_TLS);
		assert_true(f->ev.flags & FBF_CUT);
	}

	memset(&e, 0, sizeof(e));
	sni(&e, "a..test");
	hello(&m, &e, 0, 0);
	assert_true(parse(&m)->ev.flags & FBF_BAD_NAME);
}

static void http_requests(void **state)
{
	struct fb *f;

	(void)state;
	f = parse_str("GET /simple/pkg/?x=1 HTTP/1.1\r\nUser-Agent: t\r\nhost:  Files.Test:8080\r\n"
		      "Accept: */*\r\n\r\n");
	assert_int_equal(f->ev.app, FB_HTTP);
	assert_int_equal(f->ev.method_len, 3);
	assert_memory_equal(f->ev.method, "GET", 3);
	assert_int_equal(f->ev.path_len, strlen("/simple/pkg/?x=1"));
	assert_memory_equal(f->ev.path, "/simple/pkg/?x=1", f->ev.path_len);
	assert_name(f, "files.test");

	/* the absolute target names the host the server takes, whatever Host says */
	assert_name(parse_str("GET http://evil.test/x HTTP/1.1\r\nHost: good.test\r\n\r\n"),
		    "evil.test");
	assert_true(
	    parse_str("GET / HTTP/1.1\r\nHost: good.test\r\nHost: evil.test\r\n\r\n")->ev.flags &
	    FBF_MALFORMED);
	assert_true(parse_str("GET / HTTP/1.0\r\nAccept: */*\r\n\r\n")->ev.flags & FBF_NO_NAME);
	/* a second request in the same segment (pipelined) naming its own host */
	assert_true(parse_str("GET / HTTP/1.1\r\nHost: good.test\r\n\r\n"
			      "GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n")
			->ev.flags &
		    FBF_MALFORMED);
	/* an absolute target with its Host header is one request, not two names */
	assert_name(parse_str("GET http://good.test/ HTTP/1.1\r\nHost: good.test\r\n\r\n"),
		    "good.test");
	assert_true(parse_str("GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n")->ev.flags &
		    FBF_LITERAL);
	assert_true(parse_str("GET / HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n")->ev.flags &
		    FBF_LITERAL);
	assert_true(parse_str("POST /upload HTTP/1.1\r\nContent-Length: 9\r\n")->ev.flags &
		    FBF_CUT); /* Host may come in the next segment */
	assert_true(parse_str("GET /very/long")->ev.flags & FBF_CUT);
	assert_int_equal(parse_str("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")->ev.app, FB_NONE);
	/* a request split across segments is cut, never "not HTTP" (the server joins them) */
	f = parse_str("G");
	assert_true(f->ev.app == FB_HTTP && (f->ev.flags & FBF_CUT));
	f = parse_str("\r\n\r\n");
	assert_true(f->ev.app == FB_HTTP && (f->ev.flags & FBF_CUT));
	/* empty lines before the request line are skipped, as servers do */
	assert_name(parse_str("\r\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"), "evil.test");
	f = parse_str("ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1\r\nHost: evil.test\r\n\r\n");
	assert_true(f->ev.app == FB_HTTP && (f->ev.flags & FBF_MALFORMED));
	assert_int_equal(parse_str("SSH-2.0-OpenSSH_9.2\r\n")->ev.app, FB_NONE);
	assert_int_equal(parse_str("get / HTTP/1.1\r\n")->ev.app, FB_NONE);
	assert_true(parse_str("GET / HTTP/1.1\r\nHost: a b\r\n\r\n")->ev.flags & FBF_NAMED);
	assert_true(parse_str("GET / HTTP/1.1\r\nHost: us\x01r.test\r\n\r\n")->ev.flags &
		    FBF_BAD_NAME);
}

/* xorshift: deterministic, so a failure repeats */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void check_bounds(const struct fb *f)
{
	assert_true(f->ev.name_len < FB_NAME);
	assert_true(f->ev.alpn_len < FB_ALPN);
	assert_true(f->ev.method_len < FB_METHOD);
	assert_true(f->ev.path_len < FB_PATH);
	if (f->ev.flags & FBF_NAMED) {
		assert_true(f->ev.name_len > 0);
		for (unsigned i = 0; i < f->ev.name_len; i++)
			assert_true(fb_name_byte((uint8_t)f->ev.name[i]));
		assert_int_equal(f->key.prefixlen, (f->ev.name_len + 1u) * 8);
		for (unsigned i = 0; i < f->ev.name_len; i++)
			assert_int_equal(f->key.data[i],
					 (uint8_t)f->ev.name[f->ev.name_len - 1 - i]);
	}
}

/* The results a parse gives, comparable across two parses of the same bytes. */
static void same_result(const struct fb *a, const struct fb *b)
{
	assert_int_equal(a->ev.app, b->ev.app);
	assert_int_equal(a->ev.flags, b->ev.flags);
	assert_int_equal(a->ev.name_len, b->ev.name_len);
	assert_memory_equal(a->ev.name, b->ev.name, a->ev.name_len);
	assert_int_equal(a->ev.alpn_len, b->ev.alpn_len);
	assert_memory_equal(a->ev.alpn, b->ev.alpn, a->ev.alpn_len);
	assert_int_equal(a->ev.path_len, b->ev.path_len);
	assert_memory_equal(a->ev.path, b->ev.path, a->ev.path_len);
}

static void fuzz(void **state)
{
	struct msg seeds[3], e = {0}, m;
	struct fb *other = malloc(sizeof(*other)), *other_b = malloc(sizeof(*other_b));
	unsigned seen[FB_HTTP + 1] = {0}, named = 0, malformed = 0, cut = 0;

	(void)state;
	assert_non_null(other);
	assert_non_null(other_b);
	sni(&e, "registry.example.test");
	alpn(&e);
	hello(&seeds[0], &e, 0, 0);
	memset(&seeds[1], 0, sizeof(seeds[1]));
	put(&seeds[1], "GET /a/b HTTP/1.1\r\nHost: x.test\r\nAccept: */*\r\n\r\n", 46);
	memset(&e, 0, sizeof(e));
	for (int i = 0; i < 20; i++)
		ext(&e, 0xfe00 + i, "abcd", 4);
	sni(&e, "late.example.test");
	hello(&seeds[2], &e, 0, 0);
	for (int round = 0; round < 200000; round++) {
		m = seeds[next() % 3];
		for (int k = 0, muts = 1 + (int)(next() % 8); k < muts; k++) {
			size_t at = m.n ? next() % m.n : 0;

			switch (next() % 5) {
			case 0:
				m.b[at] = (uint8_t)next();
				break;
			case 1:
				m.b[at] ^= (uint8_t)(1u << (next() % 8));
				break;
			case 2:
				m.n = at; /* truncated */
				break;
			case 3: /* a length field set to something big or zero */
				if (at + 1 < m.n) {
					m.b[at] = next() % 2 ? 0xff : 0;
					m.b[at + 1] = (uint8_t)next();
				}
				break;
			default: /* a byte every parser special-cases */
				m.b[at] = "\r\n .:/[\0"[next() % 8];
				break;
			}
		}
		if (next() % 16 == 0)
			m.n = FB_CAP + next() % FB_CAP; /* longer than the kernel copies */
		parse_n(m.b, m.n, 0x00);
		check_bounds(F);
		memcpy(other, F, sizeof(*other));
		parse_n(m.b, m.n, 0xff); /* the same bytes, other junk past them */
		check_bounds(F);
		memcpy(other_b, F, sizeof(*other_b));
		same_result(F, other);
		/* batched rounds change nothing: every field, the cursors included */
		one_a_round = 1;
		parse_n(m.b, m.n, 0xff);
		one_a_round = 0;
		assert_memory_equal(F, other_b, sizeof(*F));
		seen[F->ev.app]++;
		named += !!(F->ev.flags & FBF_NAMED);
		malformed += !!(F->ev.flags & FBF_MALFORMED);
		cut += !!(F->ev.flags & FBF_CUT);
	}
	/* the mutations reached every outcome, not only "not TLS" */
	assert_true(seen[FB_TLS] > 10000 && seen[FB_HTTP] > 10000 && seen[FB_NONE] > 1000);
	assert_true(named > 10000 && malformed > 1000 && cut > 1000);
	free(other);
	free(other_b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tls_good),
	    cmocka_unit_test(tls_hostile),
	    cmocka_unit_test(http_requests),
	    cmocka_unit_test(fuzz),
	};

	F = malloc(sizeof(*F));
	if (!F)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
