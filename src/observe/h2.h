/*
 * HTTP/2 as a bystander reads it: the bytes each side of one connection sent, in order, cut
 * into frames by hand (RFC 9113 section 4), header blocks decoded with nghttp2's HPACK inflater
 * (one per direction: each side's encoder has its own dynamic table), DATA passed on in pieces.
 * Never trusts a length: frames and header blocks larger than the caps break the direction
 * (said, never guessed past), and memory per connection stays bounded.
 */
#ifndef RW_H2_H
#define RW_H2_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest HEADERS/CONTINUATION/PUSH_PROMISE payload and header block held; a decoder table
 * larger than H2_TABLE_MAX is refused. */
#define H2_BLOCK_MAX (64u << 10)
#define H2_TABLE_MAX (64u << 10)
/* Fields of one header block passed on (more are decoded, to keep the table, and counted). */
#define H2_FIELDS_MAX 128

enum h2_side { H2_CLIENT = 0, H2_SERVER = 1 }; /* who sent the bytes */

struct h2_field {
	const uint8_t *name, *value;
	size_t name_len, value_len;
};

struct h2_sink {
	/* A decoded header block (HEADERS + CONTINUATIONs) of a stream. */
	void (*headers)(void *ctx, int side, uint32_t stream, const struct h2_field *f, size_t n,
			size_t dropped, bool end_stream);
	/* DATA payload (padding removed), in pieces; end_stream on the frame's last piece. */
	void (*data)(void *ctx, int side, uint32_t stream, const uint8_t *p, size_t n,
		     bool end_stream);
	void (*reset)(void *ctx, int side, uint32_t stream);
	void *ctx;
};

struct h2_dir {
	struct nghttp2_hd_inflater *inf;
	uint32_t preface_left; /* client: the 24-byte preface still to skip */
	uint8_t fh[9];	       /* the frame header being read */
	uint32_t fh_have;
	bool in_frame;
	uint8_t type, flags;
	uint32_t stream, len, got; /* the frame's length and payload bytes seen so far */
	uint32_t pad;		   /* DATA: padding at the end of the payload */
	uint8_t *buf;		   /* payload of a frame that is held whole */
	uint8_t *block;		   /* the header block being assembled */
	uint32_t block_len, block_stream;
	bool in_block, block_end_stream, block_push;
	const char *broken; /* why this direction is no longer decoded (NULL: decoding) */
	uint64_t frames;
};

struct h2_conn {
	struct h2_dir d[2];
	struct h2_sink sink;
};

/* 0, or -1 when nghttp2 cannot make an inflater (memory). */
int h2_init(struct h2_conn *c, const struct h2_sink *sink);
void h2_free(struct h2_conn *c);
/* The next bytes one side sent. Returns 0 while the direction decodes, -1 once it is broken
 * (c->d[side].broken says why; later bytes of that side are ignored). */
int h2_feed(struct h2_conn *c, int side, const uint8_t *p, size_t n);
/* Bytes the stream lost (a gap): the direction cannot be decoded past it. */
void h2_gap(struct h2_conn *c, int side, const char *why);

#endif
