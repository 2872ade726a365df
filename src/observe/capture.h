/*
 * Capture levels (docs/policy.md `capture:`): what of an HTTP transaction inside TLS goes into
 * the log beyond its line. summary: the line (collect.c, from heads alone); details: + request
 * and response headers, credentials redacted; full: + bodies up to body_bytes per direction.
 * The level is chosen per transaction from its authority (the policy entry that admits it, or
 * the level for what is not allowed), and the kernel is told per SSL object how many more
 * bytes to stream (map tls_want), so summary traffic costs what it cost before.
 * Also HTTP/2 (every connection decoded from its streamed frames, h2.c: one line per stream)
 * and WebSocket (an upgrade is said on its line; at full, one `websocket` line per frame).
 * Bounded whatever the job sends: per-transaction caps, connections and streams tracked at
 * once, bytes held, and a per-job budget of captured bytes; everything left out is counted
 * (summary.json "capture").
 */
#ifndef RW_CAPTURE_H
#define RW_CAPTURE_H
#include <stdbool.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "common/strmap.h"
#include "events.h"
#include "findings/redact.h"
#include "observe/tlshttp.h"
#include "policy/policy.h"

/* Connections with capture state at once (HTTP/2 ones and those above summary). */
#define CAPTURE_CONNS_MAX 256
/* HTTP/2 streams of one connection waiting for their response at once. */
#define CAPTURE_STREAMS_MAX 128
/* Bytes held in capture buffers, all connections together. */
#define CAPTURE_HELD_MAX (64u << 20)
/* WebSocket frames at `full`: bytes streamed per direction per connection, in body_bytes. */
#define CAPTURE_WS_BODIES 16

struct capture_cfg {
	enum capture_level allowed, not_allowed;
	enum capture_level top; /* the highest level any entry of the policy names */
	uint32_t header_bytes, body_bytes, h2_bytes;
	uint64_t budget_bytes;
};

struct capture_stats {
	uint64_t transactions[CAPTURE_FULL + 1]; /* lines written at each level */
	uint64_t budget_skipped; /* transactions whose headers/bodies the spent budget left out */
	uint64_t bytes_logged;	 /* header and body bytes written */
	uint64_t headers_cut;	 /* header blocks cut at header_bytes */
	uint64_t bodies_cut;	 /* bodies cut at body_bytes */
	uint64_t held_refused;	 /* bytes not kept: CAPTURE_HELD_MAX reached */
	uint64_t
	    conns_untracked; /* connections past CAPTURE_CONNS_MAX (at summary, or h2 undecoded) */
	uint64_t gaps;	     /* calls whose bytes were wanted but not all sent (per-call cap) */
	uint64_t h2_connections;       /* HTTP/2 connections decoded */
	uint64_t h2_streams;	       /* HTTP/2 streams written */
	uint64_t h2_streams_untracked; /* streams past CAPTURE_STREAMS_MAX: not written */
	uint64_t h2_undecoded; /* directions of HTTP/2 connections not decoded to their end */
	uint64_t ws_upgrades;
	uint64_t ws_frames;	    /* frame lines written */
	uint64_t ws_frames_skipped; /* frames seen but not written (budget) */
};

struct httpcap {
	struct capture_cfg cfg;
	const struct redactor *redact;
	/* The level for a transaction to authority (NULL or "": no name). NULL hook: summary. */
	enum capture_level (*level_of)(void *ctx, const char *authority);
	/* Sets what the kernel streams of one SSL object (NULL: nothing to tell). */
	int (*want)(void *ctx, uint32_t tgid, uint64_t ssl, const struct tls_want *w);
	/* Writes one http line (collect.c). */
	void (*emit)(void *ctx, const struct http_line *l);
	/* Writes one websocket frame line, members rendered. */
	void (*emit_ws)(void *ctx, const struct ev_hdr *h, const char *members);
	void *ctx;	     /* of emit, emit_ws (the collector) */
	void *judge_ctx;     /* of level_of, want (the job) */
	struct strmap conns; /* "pid:ssl" -> struct cap_conn */
	struct strmap told;  /* "pid:ssl" -> the arm the kernel holds (an integer) */
	uint64_t held;
	bool finished;
	struct capture_stats st;
};

/* The limits a policy sets (NULL: defaults, summary everywhere). */
void capture_cfg_from_policy(struct capture_cfg *c, const struct policy_capture *p);
/* What the kernel streams of an SSL object before user space has seen it (tls_capcfg). */
void capture_kernel_cfg(const struct capture_cfg *c, struct tls_capcfg *out);
void capture_init(struct httpcap *c);
void capture_release(struct httpcap *c);

enum capture_level capture_level_of(struct httpcap *c, const char *authority);
/* An HTTP/1.x request head of SSL object (pid, ssl) at level: its headers and body (as the level
 * wants) are gathered from the chunks that follow. At summary, the kernel is told to stop. */
void capture_h1_request(struct httpcap *c, const struct ev_tls_data *e, enum capture_level level,
			const char *method);
/* Is an HTTP/1.x transaction of (pid, ssl) captured above summary. */
bool capture_captures(const struct httpcap *c, uint32_t pid, uint64_t ssl);
/* The response head of that request (websocket: a 101 to an Upgrade: websocket request);
 * true when the transaction's line can be written now. */
bool capture_h1_response(struct httpcap *c, const struct ev_tls_data *e, int status, int64_t length,
			 bool websocket);
/* An HTTP/2 connection preface: the connection is decoded from its chunks; false when it
 * cannot be (too many connections: counted). */
bool capture_h2_start(struct httpcap *c, const struct ev_tls_data *e);
/* A chunk. Returns true when an HTTP/1.x transaction of its SSL object became complete. */
bool capture_chunk(struct httpcap *c, const struct ev_tls_chunk *e);
/* The members an HTTP/1.x transaction's line gets (headers, bodies), appended to sb, and the
 * transaction forgotten; the level it was captured at (summary when none). */
enum capture_level capture_h1_render(struct httpcap *c, uint32_t pid, uint64_t ssl,
				     struct strbuf *sb);
/* End of the job: HTTP/2 streams still open are written. */
void capture_finish(struct httpcap *c);
/* "capture":{...} for summary.json, without the key. */
void capture_stats_json(const struct httpcap *c, struct strbuf *sb);

/* Exposed for unit tests: one header field as JSON ["name","value"], its value redacted when
 * the name carries credentials (Authorization, Cookie, ...) or the value looks like a token. */
void capture_header_json(const struct redactor *r, const char *name, size_t nl, const char *value,
			 size_t vl, struct strbuf *sb);

#endif
