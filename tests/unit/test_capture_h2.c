/* HTTP/2 as capture.c reads it (src/observe/h2.c) and the redaction of captured headers: header
 * blocks made by nghttp2's own deflater, fed in every cut (one byte at a time included), padded
 * and CONTINUATION-split blocks, a table size from SETTINGS, and the hostile inputs: malformed
 * HPACK, oversized blocks, frames inside a header block, an HPACK block that expands a table
 * entry thousands of times. Properties: fields come out exactly, once; a broken direction says
 * why and takes nothing more; memory stays bounded (ASan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "findings/redact.h"
#include "observe/capture.h"
#include "observe/h2.h"

struct seen {
	int headers, data_end, resets;
	char method[32], path[256], status[8], last_name[64];
	size_t nfields, dropped;
	uint64_t data_bytes;
	bool end_stream;
};

static void on_headers(void *ctx, int side, uint32_t stream, const struct h2_field *f, size_t n,
		       size_t dropped, bool end_stream)
{
	struct seen *s = ctx;

	(void)side;
	(void)stream;
	s->headers++;
	s->nfields = n;
	s->dropped = dropped;
	s->end_stream = end_stream;
	for (size_t i = 0; i < n; i++) {
		char name[64] = {0};

		memcpy(name, f[i].name, f[i].name_len < 63 ? f[i].name_len : 63);
		if (!strcmp(name, ":method"))
			snprintf(s->method, sizeof(s->method), "%.*s", (int)f[i].value_len,
				 (const char *)f[i].value);
		if (!strcmp(name, ":path"))
			snprintf(s->path, sizeof(s->path), "%.*s", (int)f[i].value_len,
				 (const char *)f[i].value);
		if (!strcmp(name, ":status"))
			snprintf(s->status, sizeof(s->status), "%.*s", (int)f[i].value_len,
				 (const char *)f[i].value);
		strcpy(s->last_name, name);
	}
}

static void on_data(void *ctx, int side, uint32_t stream, const uint8_t *p, size_t n, bool end)
{
	struct seen *s = ctx;

	(void)side;
	(void)stream;
	(void)p;
	s->data_bytes += n;
	s->data_end += end;
}

static void on_reset(void *ctx, int side, uint32_t stream)
{
	struct seen *s = ctx;

	(void)side;
	(void)stream;
	s->resets++;
}

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct buf {
	uint8_t b[1 << 18];
	size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
	assert_true(n <= sizeof(b->b) - b->n);
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void frame(struct buf *b, uint8_t type, uint8_t flags, uint32_t stream, const void *p,
		  size_t n)
{
	uint8_t h[9] = {(uint8_t)(n >> 16),
			(uint8_t)(n >> 8),
			(uint8_t)n,
			type,
			flags,
			(uint8_t)(stream >> 24),
			(uint8_t)(stream >> 16),
			(uint8_t)(stream >> 8),
			(uint8_t)stream};

	put(b, h, 9);
	put(b, p, n);
}

/* A header block from nghttp2's deflater. */
static size_t deflate(nghttp2_hd_deflater *d, const char *const *kv, size_t n, uint8_t *out,
		      size_t cap)
{
	nghttp2_nv nv[32];
	ssize_t r;

	for (size_t i = 0; i < n; i++) {
		nv[i].name = (uint8_t *)kv[2 * i];
		nv[i].namelen = strlen(kv[2 * i]);
		nv[i].value = (uint8_t *)kv[2 * i + 1];
		nv[i].valuelen = strlen(kv[2 * i + 1]);
		nv[i].flags = NGHTTP2_NV_FLAG_NONE;
	}
	r = nghttp2_hd_deflate_hd(d, out, cap, nv, n);
	assert_true(r > 0);
	return (size_t)r;
}

static struct h2_conn *conn(struct seen *s)
{
	static struct h2_conn c;
	struct h2_sink sink = {.headers = on_headers, .data = on_data, .reset = on_reset, .ctx = s};

	memset(s, 0, sizeof(*s));
	assert_int_equal(h2_init(&c, &sink), 0);
	return &c;
}

static const char *const req[] = {":method",	   "POST",	  ":scheme",	"https",
				  ":path",	   "/upload?x=1", ":authority", "good.test",
				  "authorization", "Bearer abc"};

/* A request's HEADERS and DATA, fed whole and one byte at a time: the same fields. */
static void test_request_any_cut(void **st)
{
	(void)st;
	for (size_t step = 1; step <= 4096; step = step == 1 ? 7 : step * 8) {
		static struct buf b;
		struct seen s;
		struct h2_conn *c = conn(&s);
		nghttp2_hd_deflater *d;
		uint8_t blk[1024];
		size_t n;

		b.n = 0;
		assert_int_equal(nghttp2_hd_deflate_new(&d, 4096), 0);
		put(&b, preface, 24);
		frame(&b, 4, 0, 0, "", 0);
		size_t first = n = deflate(d, req, 5, blk, sizeof(blk));
		frame(&b, 1, 0x4, 1, blk, n);
		frame(&b, 0, 0x1, 1, "hello", 5);
		n = deflate(d, req, 5, blk,
			    sizeof(blk)); /* the same again: indexed from the table */
		assert_true(n < first);
		frame(&b, 1, 0x5, 3, blk, n);
		for (size_t i = 0; i < b.n; i += step)
			assert_int_equal(
			    h2_feed(c, H2_CLIENT, b.b + i, b.n - i < step ? b.n - i : step), 0);
		assert_int_equal(s.headers, 2);
		assert_string_equal(s.method, "POST");
		assert_string_equal(s.path, "/upload?x=1");
		assert_int_equal(s.nfields, 5);
		assert_int_equal(s.data_bytes, 5);
		assert_int_equal(s.data_end, 1);
		assert_true(s.end_stream);
		nghttp2_hd_deflate_del(d);
		h2_free(c);
	}
}

/* Padding, priority, and a block split over CONTINUATION frames. */
static void test_padded_priority_continuation(void **st)
{
	static struct buf b;
	struct seen s;
	struct h2_conn *c = conn(&s);
	nghttp2_hd_deflater *d;
	uint8_t blk[1024], p[1100];
	size_t n;

	(void)st;
	assert_int_equal(nghttp2_hd_deflate_new(&d, 4096), 0);
	b.n = 0;
	n = deflate(d, req, 5, blk, sizeof(blk));
	p[0] = 3;		/* pad length */
	memset(p + 1, 0, 5);	/* priority: dependency and weight */
	memcpy(p + 6, blk, 10); /* first fragment */
	memset(p + 16, 0, 3);	/* padding */
	put(&b, preface, 24);
	frame(&b, 1, 0x8 | 0x20, 1, p, 19);	/* PADDED|PRIORITY, no END_HEADERS */
	frame(&b, 9, 0, 1, blk + 10, 5);	/* CONTINUATION */
	frame(&b, 9, 0x4, 1, blk + 15, n - 15); /* CONTINUATION|END_HEADERS */
	p[0] = 2;
	memcpy(p + 1, "abcd", 4);
	memset(p + 5, 0, 2);
	frame(&b, 0, 0x8 | 0x1, 1, p, 7); /* padded DATA, END_STREAM */
	frame(&b, 3, 0, 1, "\0\0\0\x08", 4);
	assert_int_equal(h2_feed(c, H2_CLIENT, b.b, b.n), 0);
	assert_int_equal(s.headers, 1);
	assert_string_equal(s.path, "/upload?x=1");
	assert_int_equal(s.data_bytes, 4);
	assert_int_equal(s.resets, 1);
	nghttp2_hd_deflate_del(d);
	h2_free(c);
}

static void expect_broken(const struct buf *b, const char *why)
{
	struct seen s;
	struct h2_conn *c = conn(&s);

	assert_int_equal(h2_feed(c, H2_CLIENT, b->b, b->n), -1);
	assert_non_null(c->d[H2_CLIENT].broken);
	assert_non_null(strstr(c->d[H2_CLIENT].broken, why));
	/* nothing more is taken from a broken direction */
	assert_int_equal(h2_feed(c, H2_CLIENT, (const uint8_t *)"x", 1), -1);
	h2_free(c);
}

static void test_hostile(void **st)
{
	static struct buf b;
	static uint8_t big[70000];

	(void)st;
	b.n = 0;
	put(&b, preface, 24);
	frame(&b, 1, 0x5, 1, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
	expect_broken(&b, "HPACK");

	b.n = 0;
	put(&b, "GET / HTTP/1.1\r\n", 16);
	put(&b, "\r\n\r\n\r\n\r\n", 8);
	expect_broken(&b, "preface");

	b.n = 0;
	put(&b, preface, 24);
	frame(&b, 1, 0, 1, "\x82", 1); /* no END_HEADERS */
	frame(&b, 0, 0, 1, "x", 1);    /* DATA inside the block */
	expect_broken(&b, "inside a header block");

	b.n = 0;
	put(&b, preface, 24);
	frame(&b, 1, 0, 1, big, 65536 + 10);
	expect_broken(&b, "larger than 64 KiB");

	/* CONTINUATION flood: the block grows past its cap */
	b.n = 0;
	put(&b, preface, 24);
	frame(&b, 1, 0, 1, "\x82", 1);
	for (int i = 0; i < 5; i++)
		frame(&b, 9, 0, 1, big, 16000);
	expect_broken(&b, "64 KiB");

	b.n = 0;
	put(&b, preface, 24);
	frame(&b, 9, 0x4, 1, "\x82", 1);
	expect_broken(&b, "CONTINUATION outside");

	b.n = 0;
	put(&b, preface, 24);
	frame(&b, 1, 0x8 | 0x4, 1, "\x09\x82", 2); /* pad length past the frame */
	expect_broken(&b, "padding");

	b.n = 0;
	put(&b, preface, 24);
	frame(&b, 4, 0, 0, "\0\x01\0\0\0", 5);
	expect_broken(&b, "multiple of 6");
}

/* One 4000-byte table entry named 60,000 times by one-byte indices: the decoded output is
 * bounded (fields dropped and counted), not 240 MB. */
static void test_hpack_bomb(void **st)
{
	static struct buf b;
	static uint8_t blk[70000];
	struct seen s;
	struct h2_conn *c = conn(&s);
	size_t n = 0;
	char value[4000];

	(void)st;
	memset(value, 'v', sizeof(value));
	b.n = 0;
	/* literal with incremental indexing, new name "x" (RFC 7541 6.2.1), value 4000 bytes */
	blk[n++] = 0x40;
	blk[n++] = 1;
	blk[n++] = 'x';
	blk[n++] = 0x7f; /* 127 + varint 3873 */
	blk[n++] = (uint8_t)(0x80 | ((4000 - 127) & 0x7f));
	blk[n++] = (uint8_t)((4000 - 127) >> 7);
	memcpy(blk + n, value, sizeof(value));
	n += sizeof(value);
	while (n < 60000)
		blk[n++] = 0xbe; /* indexed: dynamic entry 62 */
	put(&b, preface, 24);
	frame(&b, 1, 0x5, 1, blk, n);
	assert_int_equal(h2_feed(c, H2_CLIENT, b.b, b.n), 0);
	assert_int_equal(s.headers, 1);
	assert_true(s.nfields <= H2_FIELDS_MAX);
	assert_true(s.dropped > 50000);
	h2_free(c);
}

/* SETTINGS_HEADER_TABLE_SIZE from the server sizes the client's table; a server's own table
 * update above the client's setting breaks the server direction. */
static void test_table_size(void **st)
{
	static struct buf b, r;
	struct seen s;
	struct h2_conn *c = conn(&s);

	(void)st;
	b.n = r.n = 0;
	frame(&r, 4, 0, 0, "\0\x01\0\0\0\0", 6); /* server: HEADER_TABLE_SIZE 0 for the client */
	assert_int_equal(h2_feed(c, H2_SERVER, r.b, r.n), 0);
	put(&b, preface, 24);
	frame(&b, 1, 0x5, 1, "\x3f\xe1\x1f\x82", 4); /* table size update to 4096: above 0 */
	assert_int_equal(h2_feed(c, H2_CLIENT, b.b, b.n), -1);
	assert_non_null(strstr(c->d[H2_CLIENT].broken, "HPACK"));
	h2_free(c);
}

/* Mutated streams in random cuts: whatever the bytes, no read or write out of bounds (ASan),
 * every call returns, a broken direction stays broken. */
static void test_fuzz(void **st)
{
	static struct buf b, m;
	nghttp2_hd_deflater *d;
	uint8_t blk[1024];
	size_t n;
	unsigned seed = 12345;

	(void)st;
	assert_int_equal(nghttp2_hd_deflate_new(&d, 4096), 0);
	b.n = 0;
	put(&b, preface, 24);
	frame(&b, 4, 0, 0, "\0\x01\0\0\x10\0", 6);
	for (uint32_t id = 1; id < 40; id += 2) {
		n = deflate(d, req, 5, blk, sizeof(blk));
		frame(&b, 1, id % 3 ? 0x4 : 0x5, id, blk, n);
		frame(&b, 0, 0x1, id, "payload", 7);
	}
	nghttp2_hd_deflate_del(d);
	for (int round = 0; round < 3000; round++) {
		struct seen s;
		struct h2_conn *c = conn(&s);
		bool broken = false;

		memcpy(m.b, b.b, b.n);
		m.n = b.n;
		for (int k = 0; k < 1 + round % 8; k++) {
			seed = seed * 1103515245u + 12345u;
			m.b[24 + (seed >> 8) % (m.n - 24)] = (uint8_t)(seed >> 3);
		}
		for (size_t i = 0; i < m.n;) {
			size_t step;
			int rc;

			seed = seed * 1103515245u + 12345u;
			step = 1 + (seed >> 8) % 300;
			if (step > m.n - i)
				step = m.n - i;
			rc = h2_feed(c, H2_CLIENT, m.b + i, step);
			if (broken)
				assert_int_equal(rc, -1);
			broken = rc != 0;
			i += step;
		}
		assert_true(s.nfields <= H2_FIELDS_MAX);
		h2_free(c);
	}
}

/* Captured headers: credentials replaced by the job's tag, the rest as sent. */
static void test_header_redaction(void **st)
{
	struct redactor r;
	struct strbuf sb = STRBUF_INIT;
	static const char *const secret_names[] = {"Authorization", "proxy-authorization", "Cookie",
						   "set-cookie"};

	(void)st;
	assert_int_equal(redactor_init(&r, NULL), 0);
	for (size_t i = 0; i < 4; i++) {
		sb_reset(&sb);
		capture_header_json(&r, secret_names[i], strlen(secret_names[i]), "abc def", 7,
				    &sb);
		assert_non_null(strstr(sb_str(&sb), "[redacted:"));
		assert_null(strstr(sb_str(&sb), "abc"));
	}
	sb_reset(&sb);
	capture_header_json(&r, "x-token-ish", 11, "ghp_0123456789abcdefghijABCDEFGHIJ012345", 40,
			    &sb);
	assert_null(strstr(sb_str(&sb), "ghp_0123"));
	sb_reset(&sb);
	capture_header_json(&r, "accept", 6, "text/html", 9, &sb);
	assert_string_equal(sb_str(&sb), "[\"accept\",\"text/html\"]");
	sb_release(&sb);
	redactor_wipe(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_any_cut),
	    cmocka_unit_test(test_padded_priority_continuation),
	    cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_hpack_bomb),
	    cmocka_unit_test(test_table_size),
	    cmocka_unit_test(test_header_redaction),
	    cmocka_unit_test(test_fuzz),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
