/* HTTP/2 frames and HPACK, read from the side (see h2.h). */
#include "observe/h2.h"

#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"

enum {
	F_DATA = 0,
	F_HEADERS = 1,
	F_RST_STREAM = 3,
	F_SETTINGS = 4,
	F_PUSH_PROMISE = 5,
	F_CONTINUATION = 9,
};
#define FL_END_STREAM		   0x1
#define FL_ACK			   0x1
#define FL_END_HEADERS		   0x4
#define FL_PADDED		   0x8
#define FL_PRIORITY		   0x20
#define SETTINGS_HEADER_TABLE_SIZE 1
/* Decoded names and values of one block passed on: an HPACK block can name a big table entry
 * many times over (each index one byte), so the output is bounded, not only the input. */
#define H2_DECODED_MAX (64u << 10)

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

int h2_init(struct h2_conn *c, const struct h2_sink *sink)
{
	memset(c, 0, sizeof(*c));
	c->sink = *sink;
	for (int s = 0; s < 2; s++)
		if (nghttp2_hd_inflate_new(&c->d[s].inf)) {
			h2_free(c);
			return -1;
		}
	c->d[H2_CLIENT].preface_left = sizeof(preface) - 1;
	return 0;
}

void h2_free(struct h2_conn *c)
{
	for (int s = 0; s < 2; s++) {
		if (c->d[s].inf)
			nghttp2_hd_inflate_del(c->d[s].inf);
		free(c->d[s].buf);
		free(c->d[s].block);
		c->d[s].inf = NULL;
		c->d[s].buf = c->d[s].block = NULL;
	}
}

static int broken(struct h2_dir *d, const char *why)
{
	if (!d->broken)
		d->broken = why;
	free(d->buf);
	free(d->block);
	d->buf = d->block = NULL;
	return -1;
}

void h2_gap(struct h2_conn *c, int side, const char *why)
{
	broken(&c->d[side & 1], why);
}

static uint32_t be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static uint32_t be31(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]) &
	       0x7fffffffu;
}

/* The fields of a complete header block, decoded, copied while nghttp2 still owns them. */
static int inflate_block(struct h2_conn *c, int side)
{
	struct h2_dir *d = &c->d[side];
	struct h2_field f[H2_FIELDS_MAX];
	uint8_t *arena = xmalloc(H2_DECODED_MAX);
	size_t n = 0, dropped = 0, used = 0, left = d->block_len;
	const uint8_t *in = d->block;
	int rc = 0;

	for (;;) {
		nghttp2_nv nv;
		int fl = 0;
		ssize_t r = nghttp2_hd_inflate_hd2(d->inf, &nv, &fl, in, left, 1);

		if (r < 0 || (size_t)r > left) {
			rc = broken(d, "malformed HPACK header block");
			goto out;
		}
		in += r;
		left -= (size_t)r;
		if (fl & NGHTTP2_HD_INFLATE_EMIT) {
			if (n < H2_FIELDS_MAX &&
			    nv.namelen + nv.valuelen <= H2_DECODED_MAX - used) {
				f[n].name = memcpy(arena + used, nv.name, nv.namelen);
				f[n].name_len = nv.namelen;
				used += nv.namelen;
				f[n].value = memcpy(arena + used, nv.value, nv.valuelen);
				f[n++].value_len = nv.valuelen;
				used += nv.valuelen;
			} else {
				dropped++;
			}
		}
		if (fl & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(d->inf);
			break;
		}
		if (!(fl & NGHTTP2_HD_INFLATE_EMIT) && !left) {
			rc = broken(d, "HPACK header block ends inside a field");
			goto out;
		}
	}
	if (!d->block_push && c->sink.headers)
		c->sink.headers(c->sink.ctx, side, d->block_stream, f, n, dropped,
				d->block_end_stream);
out:
	free(arena);
	free(d->block); /* held only while a block is assembled */
	d->block = NULL;
	d->block_len = 0;
	d->in_block = false;
	return rc;
}

/* A header block fragment (HEADERS, PUSH_PROMISE or CONTINUATION payload, padding and
 * priority removed) added to the block; the block is decoded at END_HEADERS. */
static int block_add(struct h2_conn *c, int side, const uint8_t *p, size_t n, bool end)
{
	struct h2_dir *d = &c->d[side];

	if (n > H2_BLOCK_MAX - d->block_len)
		return broken(d, "header block larger than 64 KiB");
	if (!d->block)
		d->block = xmalloc(H2_BLOCK_MAX);
	memcpy(d->block + d->block_len, p, n);
	d->block_len += (uint32_t)n;
	return end ? inflate_block(c, side) : 0;
}

/* Padding and priority fields around a HEADERS or PUSH_PROMISE fragment. */
static int fragment(struct h2_dir *d, const uint8_t *p, uint32_t len, uint32_t lead,
		    const uint8_t **frag, uint32_t *flen)
{
	uint32_t pad = 0, at = 0;

	if (d->flags & FL_PADDED) {
		if (len < 1)
			return broken(d, "padded frame without its pad length");
		pad = p[0];
		at = 1;
	}
	if (d->type == F_HEADERS && (d->flags & FL_PRIORITY))
		lead += 5;
	if ((uint64_t)at + lead + pad > len)
		return broken(d, "padding longer than the frame");
	*frag = p + at + lead;
	*flen = len - at - lead - pad;
	return 0;
}

/* SETTINGS_HEADER_TABLE_SIZE from one side bounds the other side's encoder, so it sizes the
 * inflater of the bytes that side sends. */
static int settings(struct h2_conn *c, int side, const uint8_t *p, uint32_t len)
{
	struct h2_dir *peer = &c->d[!side];

	if (c->d[side].flags & FL_ACK)
		return 0;
	if (len % 6)
		return broken(&c->d[side], "SETTINGS frame of a length not a multiple of 6");
	for (uint32_t i = 0; i + 6 <= len; i += 6) {
		uint32_t v = (uint32_t)p[i + 2] << 24 | (uint32_t)p[i + 3] << 16 |
			     (uint32_t)p[i + 4] << 8 | p[i + 5];

		if (((uint32_t)p[i] << 8 | p[i + 1]) != SETTINGS_HEADER_TABLE_SIZE || peer->broken)
			continue;
		if (v > H2_TABLE_MAX)
			v = H2_TABLE_MAX; /* an encoder that uses more breaks the decode, said */
		if (nghttp2_hd_inflate_change_table_size(peer->inf, v))
			return broken(peer, "header table size change inside a header block");
	}
	return 0;
}

/* A frame held whole (everything but DATA) is complete. */
static int frame_done(struct h2_conn *c, int side)
{
	struct h2_dir *d = &c->d[side];
	const uint8_t *frag;
	uint32_t flen;

	switch (d->type) {
	case F_HEADERS:
		if (!d->stream)
			return broken(d, "HEADERS on stream 0");
		if (fragment(d, d->buf, d->len, 0, &frag, &flen))
			return -1;
		d->in_block = true;
		d->block_push = false;
		d->block_stream = d->stream;
		d->block_end_stream = d->flags & FL_END_STREAM;
		return block_add(c, side, frag, flen, d->flags & FL_END_HEADERS);
	case F_PUSH_PROMISE:
		/* decoded for the table's sake; a pushed stream is not a request the job made */
		if (fragment(d, d->buf, d->len, 4, &frag, &flen))
			return -1;
		d->in_block = true;
		d->block_push = true;
		d->block_stream = d->stream;
		return block_add(c, side, frag, flen, d->flags & FL_END_HEADERS);
	case F_CONTINUATION:
		if (!d->in_block || d->stream != d->block_stream)
			return broken(d, "CONTINUATION outside a header block");
		return block_add(c, side, d->buf, d->len, d->flags & FL_END_HEADERS);
	case F_SETTINGS:
		return settings(c, side, d->buf, d->len);
	case F_RST_STREAM:
		if (c->sink.reset && d->stream)
			c->sink.reset(c->sink.ctx, side, d->stream);
		return 0;
	}
	return 0;
}

static bool held_whole(uint8_t type)
{
	return type == F_HEADERS || type == F_PUSH_PROMISE || type == F_CONTINUATION ||
	       type == F_SETTINGS || type == F_RST_STREAM;
}

static int frame_start(struct h2_dir *d)
{
	d->len = be24(d->fh);
	d->type = d->fh[3];
	d->flags = d->fh[4];
	d->stream = be31(d->fh + 5);
	d->got = 0;
	d->pad = 0;
	d->frames++;
	if (d->in_block && d->type != F_CONTINUATION)
		return broken(d, "a frame inside a header block");
	if (held_whole(d->type)) {
		if (d->len > H2_BLOCK_MAX)
			return broken(d, "header frame larger than 64 KiB");
		free(d->buf);
		d->buf = xmalloc(d->len ? d->len : 1);
	}
	d->in_frame = true;
	return 0;
}

/* DATA payload bytes [got, got + n): the pad length, the data, the padding. */
static int data_bytes(struct h2_conn *c, int side, const uint8_t *p, uint32_t n)
{
	struct h2_dir *d = &c->d[side];
	uint32_t lead = (d->flags & FL_PADDED) ? 1 : 0;

	if (lead && d->got == 0 && n) {
		d->pad = p[0];
		if (d->pad + 1u > d->len)
			return broken(d, "padding longer than the frame");
		p++;
		n--;
		d->got++;
	}
	if (n && d->got < d->len - d->pad) {
		uint32_t m = d->len - d->pad - d->got;

		if (m > n)
			m = n;
		if (c->sink.data)
			c->sink.data(c->sink.ctx, side, d->stream, p, m, false);
	}
	d->got += n;
	return 0;
}

int h2_feed(struct h2_conn *c, int side, const uint8_t *p, size_t n)
{
	struct h2_dir *d = &c->d[side & 1];

	side &= 1;
	if (d->broken)
		return -1;
	if (d->preface_left) {
		size_t m = n < d->preface_left ? n : d->preface_left;
		size_t at = sizeof(preface) - 1 - d->preface_left;

		if (memcmp(p, preface + at, m))
			return broken(d, "no HTTP/2 connection preface");
		d->preface_left -= (uint32_t)m;
		p += m;
		n -= m;
	}
	while (n) {
		uint32_t m;

		if (!d->in_frame) {
			m = 9 - d->fh_have;
			if (m > n)
				m = (uint32_t)n;
			memcpy(d->fh + d->fh_have, p, m);
			d->fh_have += m;
			p += m;
			n -= m;
			if (d->fh_have < 9)
				break;
			d->fh_have = 0;
			if (frame_start(d))
				return -1;
		}
		m = d->len - d->got;
		if (m > n)
			m = (uint32_t)n;
		if (d->type == F_DATA) {
			if (data_bytes(c, side, p, m))
				return -1;
		} else {
			if (d->buf)
				memcpy(d->buf + d->got, p, m);
			d->got += m;
		}
		p += m;
		n -= m;
		if (d->got < d->len)
			break;
		d->in_frame = false;
		if (d->type == F_DATA) {
			if ((d->flags & FL_END_STREAM) && c->sink.data)
				c->sink.data(c->sink.ctx, side, d->stream, NULL, 0, true);
		} else if (held_whole(d->type)) {
			int rc = frame_done(c, side);

			free(d->buf);
			d->buf = NULL;
			if (rc)
				return -1;
		}
	}
	return 0;
}
