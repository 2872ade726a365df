/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The first bytes a TCP connection sends: a TLS ClientHello (SNI, ALPN) or an
 * HTTP/1.x request (method, target, Host). The same code runs in the kernel
 * (bpf/conn.bpf.h, on the connection's first data segment) and in the unit
 * tests, which fuzz it with hostile bytes (tests/unit/test_firstbytes.c).
 *
 * Everything is bounded: the bytes are a copy of at most FB_CAP bytes, every
 * index is masked into it, every loop has a constant or copied-length bound,
 * and each byte loop is one bpf_loop step (verified once, whatever the bytes)
 * in the kernel and a plain loop in user space (FB_STEP, FB_LOOP); the long
 * walks do FB_BATCH positions a round (FB_STEP_N), since a round's call and
 * return cost more than a position's work. State lives in struct fb, never on
 * the stack, so every step starts from the same verifier state.
 *
 * What the parser cannot read is said, never guessed: FBF_CUT (the message
 * goes on past the bytes seen, where the name could be), FBF_MALFORMED
 * (lengths that do not add up, a second SNI or Host), FBF_BAD_NAME (bytes no
 * host name has). The kernel judges those fail-closed.
 */
#ifndef RUNWARDEN_FIRSTBYTES_H
#define RUNWARDEN_FIRSTBYTES_H

#include "events.h"
#if !defined(__bpf__)
#include <stdbool.h>
#endif

#define FB_CAP	 4096 /* bytes of the first segment looked at (a power of two) */
#define FB_MASK	 (FB_CAP - 1)
#define FB_EXTS	 64 /* TLS extensions walked; a hello with more is FBF_CUT */
#define FB_BATCH 4  /* positions per bpf_loop round of the long byte walks (FB_STEP_N) */

struct fb {
	u64 busy;
	u32 slot; /* its index in fb_scratch: the loop steps find it there */
	/* bpf/httpjudge.bpf.h's: the target has bytes `paths:` rules refuse; what the rules said
	 * (kept here, not in a register: the verifier does not follow memory values, so the
	 * rule loop's paths meet again instead of multiplying) */
	u32 unsafe;
	u32 seen;
	u32 hj_port, hj_how, hj_mbit, hj_rule;
	/* the parse's cursor and the spans the steps copy from */
	u32 len; /* bytes in buf */
	u32 cur;
	u32 end;      /* end of the TLS extensions */
	u32 name_at;  /* where the name starts in buf */
	u32 name_max; /* bytes it may take (SNI: its length; Host: up to its end) */
	u32 alpn_at, alpn_n, alpn_next;
	u32 path_at;
	u32 hdr_end;
	u32 host_at; /* the Host header's value */
	u32 dots;
	u32 done;
	struct ev_conn_name ev; /* the results, sent as they are */
	struct fb_name_key key;
	u8 buf[FB_CAP];
};

/*
 * A step of a byte loop, run by bpf_loop: FB_STEP_N(name, B) does B positions per call, in
 * order, stopping where a position returns nonzero or at the loop's bound, as B calls of
 * FB_STEP would. Each bpf_loop round costs a call, a return and the slot's lookup, more than
 * a position's own work: the long walks over a request (its headers, target, name) take
 * several positions per round. What a position does depends only on f and i, so the result
 * is the same whatever B (tests/unit/test_firstbytes.c parses with B and with 1, and compares).
 */
#define FB_ROUND_(name, B, f, j, n)                                                                \
	for (u32 k_ = 0; k_ < (B); k_++) {                                                         \
		u32 i_ = (u32)(j) * (B) + k_;                                                      \
		if (i_ >= (n) || name##_do((f), i_))                                               \
			return 1;                                                                  \
	}                                                                                          \
	return 0

#if defined(__bpf__)
/* Per CPU: slot 0 is the egress hook's (bpf/conn.bpf.h), the others the TLS request judge's
 * (bpf/httpjudge.bpf.h, which can be preempted by another of its own on the same CPU). The
 * part that owns a slot checks `busy`. */
#define FB_SLOTS 4
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FB_SLOTS);
	__type(key, u32);
	__type(value, struct fb);
} fb_scratch SEC(".maps");

/* A loop's slot and its bound, for its steps. */
struct fb_loop {
	u32 slot;
	u32 bound;
};

#define FB_STEP_N(name, B)                                                                         \
	enum { name##_batch = (B) };                                                               \
	static __always_inline long name##_do(struct fb *f, u32 i);                                \
	static long name(u64 j, void *ctx)                                                         \
	{                                                                                          \
		const struct fb_loop *l = ctx;                                                     \
		u32 slot = l->slot, n = l->bound;                                                  \
		struct fb *f = bpf_map_lookup_elem(&fb_scratch, &slot);                            \
		if (!f)                                                                            \
			return 1;                                                                  \
		FB_ROUND_(name, (B), f, j, n);                                                     \
	}                                                                                          \
	static __always_inline long name##_do(struct fb *f, u32 i)
#define FB_STEP(name) FB_STEP_N(name, 1)
#define FB_LOOP(n, name, f)                                                                        \
	do {                                                                                       \
		struct fb_loop fb_loop_ = {.slot = (f)->slot, .bound = (n)};                       \
		bpf_loop((fb_loop_.bound + name##_batch - 1) / name##_batch, name, &fb_loop_, 0);  \
	} while (0)
#define FB_INLINE static __always_inline
#else
/* User space: the same rounds, f passed as it is. FB_USER_BATCH lets the unit test force
 * one position a round, to compare. */
#ifndef FB_USER_BATCH
#define FB_USER_BATCH(B) (B)
#endif
#define FB_STEP_N(name, B)                                                                         \
	enum { name##_batch = (B) };                                                               \
	static inline long name##_do(struct fb *f, u32 i);                                         \
	static inline long name(struct fb *f, u32 j, u32 n)                                        \
	{                                                                                          \
		u32 b_ = FB_USER_BATCH(B);                                                         \
		FB_ROUND_(name, b_, f, j, n);                                                      \
	}                                                                                          \
	static inline long name##_do(struct fb *f, u32 i)
#define FB_STEP(name) FB_STEP_N(name, 1)
#define FB_LOOP(n, name, f)                                                                        \
	do {                                                                                       \
		u32 n_ = (n), b_ = FB_USER_BATCH(name##_batch);                                    \
		for (u32 j_ = 0; j_ < (n_ + b_ - 1) / b_; j_++)                                    \
			if (name((f), j_, n_))                                                     \
				break;                                                             \
	} while (0)
#define FB_INLINE static inline
#endif

/* An index masked into its array, the mask kept where the verifier sees it (clang drops a
 * mask it can prove redundant, and the verifier may not follow its proof). */
FB_INLINE u32 fb_at(u32 x, u32 mask)
{
#if defined(__bpf__)
	asm volatile("" : "+r"(x));
#endif
	return x & mask;
}

FB_INLINE u32 fb_u8(const struct fb *f, u32 off)
{
	return f->buf[fb_at(off, FB_MASK)];
}

FB_INLINE u32 fb_u16(const struct fb *f, u32 off)
{
	return fb_u8(f, off) << 8 | fb_u8(f, off + 1);
}

FB_INLINE u8 fb_lower(u8 c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Bytes a host name (or an IP literal) has: letters, digits, '-', '_', '.'. */
FB_INLINE bool fb_name_byte(u8 c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

/* ------------------------------------------------------------------- TLS */

/* One extension at f->cur: SNI and ALPN are noted, a second SNI is malformed (OpenSSL
 * refuses duplicate extensions; a parser that took the first would let the second pass). */
FB_STEP(fb_tls_ext)
{
	u32 c = f->cur, type, n, data;

	(void)i;
	if (c + 4 > f->end) {
		f->done = 1;
		return 1;
	}
	if (c + 4 > f->len) {
		f->ev.flags |= FBF_CUT;
		return 1;
	}
	type = fb_u16(f, c);
	n = fb_u16(f, c + 2);
	data = c + 4;
	if (data + n > f->end) {
		f->ev.flags |= FBF_MALFORMED;
		return 1;
	}
	if (type == 0) { /* server_name */
		u32 list, at, nlen;

		if (f->name_max) {
			f->ev.flags |= FBF_MALFORMED;
			return 1;
		}
		if (data + 5 > f->len) {
			f->ev.flags |= FBF_CUT;
			return 1;
		}
		list = fb_u16(f, data);
		nlen = fb_u16(f, data + 3);
		at = data + 5;
		if (n < 5 || list != n - 2 || fb_u8(f, data + 2) != 0 || nlen == 0 ||
		    at + nlen > data + n) {
			f->ev.flags |= FBF_MALFORMED;
			return 1;
		}
		if (nlen >= FB_NAME) {
			f->ev.flags |= FBF_BAD_NAME;
			return 1;
		}
		if (at + nlen > f->len) {
			f->ev.flags |= FBF_CUT;
			return 1;
		}
		f->name_at = at;
		f->name_max = nlen;
	} else if (type == 16 && n >= 2 && !f->alpn_n) { /* ALPN: a list of length-prefixed names */
		f->alpn_at = data + 2;
		f->alpn_n = n - 2;
		if (f->alpn_at + f->alpn_n > f->len)
			f->alpn_n = f->len > f->alpn_at ? f->len - f->alpn_at : 0;
	}
	f->cur = data + n;
	return 0;
}

/* ALPN names, comma-separated; bytes outside printable ASCII become '?'. */
FB_STEP(fb_alpn_copy)
{
	u32 p = f->alpn_at + i, o = f->ev.alpn_len;
	u8 c = fb_u8(f, p);

	if (o >= FB_ALPN - 1) {
		f->ev.flags |= FBF_ALPN_CUT;
		return 1;
	}
	if (p == f->alpn_next) {
		f->alpn_next = p + 1 + c;
		if (i == 0)
			return 0;
		c = ',';
	} else if (c < 0x20 || c > 0x7e || c == ',') {
		c = '?';
	}
	f->ev.alpn[fb_at(o, FB_ALPN - 1)] = c;
	f->ev.alpn_len = o + 1;
	return 0;
}

/* The ClientHello's fixed part, then its extensions. */
FB_INLINE void fb_tls(struct fb *f)
{
	u32 rec_end, hello_end, off, n;

	f->ev.app = FB_TLS;
	if (f->len < 9) {
		f->ev.flags |= FBF_CUT;
		return;
	}
	rec_end = 5 + fb_u16(f, 3);
	hello_end = 9 + (fb_u8(f, 6) << 16 | fb_u16(f, 7));
	/* A hello may span records; this one parses only what the first record holds. */
	if (hello_end > rec_end)
		f->ev.flags |= FBF_CUT;
	off = 9 + 2 + 32; /* legacy version, random */
	off += 1 + fb_u8(f, off);
	if (off + 2 > f->len)
		goto cut;
	off += 2 + fb_u16(f, off); /* cipher suites */
	if (off + 1 > f->len)
		goto cut;
	off += 1 + fb_u8(f, off); /* compression methods */
	if (off == hello_end) {
		f->ev.flags |= FBF_NO_NAME; /* no extensions at all */
		return;
	}
	if (off + 2 > f->len)
		goto cut;
	n = fb_u16(f, off);
	f->cur = off + 2;
	f->end = f->cur + n;
	if (f->end > hello_end || hello_end > rec_end) {
		if (f->end > hello_end)
			f->ev.flags |= FBF_MALFORMED;
		if (f->end > rec_end)
			f->end = rec_end;
	}
	FB_LOOP(FB_EXTS, fb_tls_ext, f);
	if (!f->done && !(f->ev.flags & (FBF_MALFORMED | FBF_BAD_NAME)))
		f->ev.flags |= FBF_CUT; /* more extensions than walked, or past the bytes seen */
	if (f->alpn_n) {
		f->alpn_next = f->alpn_at;
		FB_LOOP(f->alpn_n & 0xffff, fb_alpn_copy, f);
	}
	if (!f->name_max && !(f->ev.flags & (FBF_CUT | FBF_MALFORMED | FBF_BAD_NAME)))
		f->ev.flags |= FBF_NO_NAME;
	return;
cut:
	f->ev.flags |= FBF_CUT;
}

/* ------------------------------------------------------------------ HTTP */

/* The method: 3 to 15 capital letters and a space. */
/* Empty lines before the request line, which servers skip (RFC 9112 2.2): f->cur past them. */
FB_STEP(fb_skip_crlf)
{
	u8 c = fb_u8(f, f->cur);

	(void)i;
	if (f->cur >= f->len || (c != '\r' && c != '\n'))
		return 1;
	f->cur++;
	return 0;
}

/* The method from f->cur. A segment that ends inside it (capital letters only so far) is
 * the start of a request split across segments: FBF_CUT, never "not HTTP". */
FB_STEP_N(fb_method, FB_BATCH)
{
	u32 p = f->cur + i;
	u8 c = fb_u8(f, p);

	if (p >= f->len) {
		f->ev.flags |= FBF_CUT;
		return 1;
	}
	if (c == ' ') {
		f->ev.method_len = i;
		return 1;
	}
	if (c < 'A' || c > 'Z')
		return 1;
	if (i >= FB_METHOD - 1) {
		/* servers take any token as a method: a long one must not pass unread */
		f->ev.flags |= FBF_MALFORMED;
		return 1;
	}
	f->ev.method[fb_at(i, FB_METHOD - 1)] = c;
	return 0;
}

/* The request target up to its space (copied up to FB_PATH - 1 bytes), then
 * " HTTP/1.": f->hdr_end is where the header lines start, 0 if not seen. */
FB_STEP_N(fb_target, FB_BATCH)
{
	u32 p = f->path_at + i;
	u8 c = fb_u8(f, p);

	if (p >= f->len) {
		f->ev.flags |= FBF_CUT;
		return 1;
	}
	if (c == ' ') {
		if (p + 10 > f->len) {
			f->ev.flags |= FBF_CUT;
			return 1;
		}
		if (fb_u8(f, p + 1) == 'H' && fb_u8(f, p + 2) == 'T' && fb_u8(f, p + 3) == 'T' &&
		    fb_u8(f, p + 4) == 'P' && fb_u8(f, p + 5) == '/' && fb_u8(f, p + 6) == '1' &&
		    fb_u8(f, p + 7) == '.') {
			f->hdr_end = p + 9; /* at the CR (or LF) ending the request line */
			f->done = 1;
		}
		return 1; /* otherwise not an HTTP/1.x request line */
	}
	if (c < 0x21 || c > 0x7e)
		return 1; /* not a request line */
	if (i < FB_PATH - 1) {
		f->ev.path[fb_at(i, FB_PATH - 1)] = c;
		f->ev.path_len = i + 1;
	} else {
		f->ev.flags |= FBF_PATH_CUT;
	}
	return 0;
}

/* Header lines: the Host header's value start. Past the blank line ending the headers the rest
 * of the bytes seen are scanned too: a Host line there (a second request in the same segment,
 * pipelined, or a body that looks like one) is as malformed as a second Host header, since the
 * server may route the second request by it. */
FB_STEP_N(fb_headers, FB_BATCH)
{
	u32 p = f->hdr_end + i;

	if (p + 1 >= f->len) {
		if (!f->done)
			f->ev.flags |= FBF_CUT;
		return 1;
	}
	if (fb_u8(f, p) != '\n')
		return 0;
	if (!f->done && (fb_u8(f, p + 1) == '\r' || fb_u8(f, p + 1) == '\n')) {
		f->done = 1;
		return 0;
	}
	if (p + 6 > f->len)
		return 0; /* the next round sees the end */
	if (fb_lower(fb_u8(f, p + 1)) == 'h' && fb_lower(fb_u8(f, p + 2)) == 'o' &&
	    fb_lower(fb_u8(f, p + 3)) == 's' && fb_lower(fb_u8(f, p + 4)) == 't' &&
	    fb_u8(f, p + 5) == ':') {
		if (f->host_at || f->done) {
			f->ev.flags |= FBF_MALFORMED;
			return 1;
		}
		f->host_at = p + 6;
	}
	return 0;
}

/* Leading blanks of the Host value. */
FB_STEP(fb_skip_blank)
{
	u8 c = fb_u8(f, f->name_at);

	(void)i;
	if (f->name_at >= f->len || (c != ' ' && c != '\t'))
		return 1;
	f->name_at++;
	return 0;
}

/* An authority's host (Host value, or an absolute target's), up to ':', '/', blanks or the
 * line's end: name_max is that length, FB_NAME when it runs past FB_NAME - 1 bytes. */
FB_STEP_N(fb_authority_len, FB_BATCH)
{
	u32 p = f->name_at + i;
	u8 c = fb_u8(f, p);

	if (p >= f->len) {
		f->ev.flags |= FBF_CUT;
		f->name_max = i;
		return 1;
	}
	if (c == ':' || c == '/' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '?' ||
	    c == '#') {
		f->name_max = i;
		return 1;
	}
	if (i >= FB_NAME - 1) {
		f->ev.flags |= FBF_BAD_NAME;
		f->name_max = 0;
		return 1;
	}
	return 0;
}

FB_INLINE void fb_http(struct fb *f)
{
	f->ev.method_len = 0;
	f->cur = 0;
	FB_LOOP(16, fb_skip_crlf, f);
	if (f->cur >= f->len && f->cur < 16) {
		/* nothing but empty lines yet: a request may follow in the next segment */
		f->ev.app = FB_HTTP;
		f->ev.flags |= FBF_CUT;
		return;
	}
	FB_LOOP(FB_METHOD, fb_method, f);
	if (f->ev.flags & (FBF_CUT | FBF_MALFORMED)) {
		f->ev.app = FB_HTTP;
		f->ev.method_len = 0;
		return;
	}
	if (f->ev.method_len < 3)
		return;
	f->path_at = f->cur + f->ev.method_len + 1;
	FB_LOOP(FB_CAP, fb_target, f);
	if (!f->done && !(f->ev.flags & FBF_CUT))
		return; /* not a request line */
	f->ev.app = FB_HTTP;
	f->done = 0;
	if (!f->hdr_end) {
		f->ev.flags |= FBF_CUT; /* request line longer than the bytes seen */
		return;
	}
	FB_LOOP(FB_CAP, fb_headers, f);
	if (f->ev.flags & FBF_MALFORMED)
		return;
	/* An absolute target names the host the server takes, whatever Host says (RFC 9112 3.2.2).
	 */
	if (f->ev.path_len > 7 && fb_lower(f->ev.path[0]) == 'h' &&
	    fb_lower(f->ev.path[1]) == 't' && fb_lower(f->ev.path[2]) == 't' &&
	    fb_lower(f->ev.path[3]) == 'p') {
		u32 s = fb_lower(f->ev.path[4]) == 's' ? 5 : 4;

		if (f->ev.path[fb_at(s, 7)] == ':' && f->ev.path[fb_at(s + 1, 7)] == '/' &&
		    f->ev.path[fb_at(s + 2, 7)] == '/')
			f->name_at = f->path_at + s + 3;
	}
	if (!f->name_at) {
		if (!f->host_at) {
			if (f->done)
				f->ev.flags |= FBF_NO_NAME; /* headers end without a Host */
			return;
		}
		f->name_at = f->host_at;
		FB_LOOP(64, fb_skip_blank, f);
	}
	if (fb_u8(f, f->name_at) == '[' && f->name_at < f->len) {
		f->ev.flags |= FBF_LITERAL; /* an IPv6 literal: judged by address */
		return;
	}
	FB_LOOP(FB_NAME, fb_authority_len, f);
	if (!f->name_max && !(f->ev.flags & (FBF_CUT | FBF_BAD_NAME)))
		f->ev.flags |= FBF_NO_NAME; /* an empty Host */
}

/* ------------------------------------------------------------ the name */

/* Copies the name lower-cased and builds its reversed key: name_max bytes from name_at. */
FB_STEP_N(fb_name_copy, FB_BATCH)
{
	u8 c = fb_lower(fb_u8(f, f->name_at + i));

	if (i >= FB_NAME - 1)
		return 1;
	f->ev.name[fb_at(i, FB_NAME - 1)] = c;
	f->ev.name_len = i + 1;
	return 0;
}

/* Reversed key and checks: name bytes only, no empty label. ev.name_len excludes one
 * trailing dot (ignored, as policies do). */
FB_STEP_N(fb_name_key, FB_BATCH)
{
	u32 n = f->ev.name_len;
	u8 c = f->ev.name[fb_at(n - 1 - i, FB_NAME - 1)];

	if (i >= n || i >= FB_NAME - 1)
		return 1;
	if (!fb_name_byte(c)) {
		f->ev.flags |= FBF_BAD_NAME;
		return 1;
	}
	if (c == '.') {
		if (i == 0 || i == n - 1 || f->key.data[fb_at(i - 1, FB_NAME - 1)] == '.') {
			f->ev.flags |= FBF_BAD_NAME; /* empty label */
			return 1;
		}
		f->dots++;
	} else if (c < '0' || c > '9') {
		f->done = 0; /* not all digits and dots: not an IPv4 literal */
	}
	f->key.data[fb_at(i, FB_NAME - 1)] = c;
	return 0;
}

FB_INLINE void fb_name(struct fb *f)
{
	u32 n;

	if (!f->name_max || (f->ev.flags & (FBF_MALFORMED | FBF_BAD_NAME)))
		return;
	FB_LOOP(f->name_max & (FB_NAME - 1), fb_name_copy, f);
	n = f->ev.name_len;
	if (n && f->ev.name[fb_at(n - 1, FB_NAME - 1)] == '.')
		f->ev.name_len = --n;
	if (!n) {
		f->ev.flags |= FBF_BAD_NAME;
		return;
	}
	f->done = 1; /* all digits so far */
	f->dots = 0;
	FB_LOOP(n, fb_name_key, f);
	if (f->ev.flags & FBF_BAD_NAME)
		return;
	if (f->done) {
		f->ev.flags |= FBF_LITERAL;
		return;
	}
	f->key.data[fb_at(n, FB_NAME - 1)] = 0;
	f->key.prefixlen = (n + 1) * 8;
	f->ev.flags |= FBF_NAMED;
}

/*
 * Parses f->buf[0..f->len) (the first data segment, up to FB_CAP bytes). Leaves ev.app FB_NONE for
 * anything that is neither a ClientHello nor an HTTP/1.x request. f->ev's header and addresses are
 * the caller's.
 */
FB_INLINE void fb_parse(struct fb *f)
{
	f->cur = f->end = f->name_at = f->name_max = 0;
	f->alpn_at = f->alpn_n = f->alpn_next = f->path_at = f->hdr_end = f->host_at = 0;
	f->dots = f->done = 0;
	f->ev.app = FB_NONE;
	f->ev.flags = 0;
	f->ev.name_len = f->ev.alpn_len = f->ev.method_len = f->ev.path_len = 0;
	f->key.prefixlen = 0;
	if (f->len > FB_CAP)
		f->len = FB_CAP;
	if (f->len && fb_u8(f, 0) == 0x16 && (f->len < 2 || fb_u8(f, 1) == 3) &&
	    (f->len < 3 || fb_u8(f, 2) <= 4) && (f->len < 6 || fb_u8(f, 5) == 1)) {
		/* A handshake record's start; shorter than its header, it is a ClientHello split
		 * across segments (the server reassembles the stream): cut, never "not TLS". */
		if (f->len < 6) {
			f->ev.app = FB_TLS;
			f->ev.flags |= FBF_CUT;
		} else {
			fb_tls(f);
		}
	} else {
		fb_http(f);
	}
	if (f->ev.app == FB_NONE)
		return;
	f->done = 0;
	fb_name(f);
	f->ev.dots = f->dots;
}

#endif
