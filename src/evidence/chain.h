/*
 * The verifier's side of the hash-chained event log (format in evlog.h):
 * recomputes every line's prev from the bytes as read, checks seq runs 1, 2,
 * ... and that the log ends with exactly one closing record whose count and
 * root match. Streaming, so memory is bounded by the longest line allowed.
 */
#ifndef RW_EV_CHAIN_H
#define RW_EV_CHAIN_H
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "evidence/codec.h"
#include "evidence/evlog.h"

/* Longest line accepted: far above anything the writer emits (argv is capped at 16 KiB). */
#define CHAIN_MAX_LINE (4u << 20)

/* Called for every event line (not the closing record) that passed the chain checks. */
typedef void (*chain_line_fn)(void *ctx, uint64_t seq, json_t *obj, const char *raw, size_t len);

struct chain {
	/* results */
	uint64_t lines;		     /* complete lines read */
	bool closed;		     /* closing record seen (and it was last) */
	uint64_t count;		     /* its count */
	char root[EVLOG_HASH_HEX];   /* its root */
	char head[EVLOG_HASH_HEX];   /* sha256 of the last line (the closing record) */
	char sha256[EVLOG_HASH_HEX]; /* sha256 of all bytes, set by chain_finish */
	uint64_t bytes;
	json_t *close;	  /* the closing record, parsed */
	uint64_t where;	  /* line of the first error, 0 when none */
	const char *code; /* short name of the failed check, for reports and tests */
	char err[EV_ERRLEN];
	/* state */
	bool failed;
	char prev[EVLOG_HASH_HEX];
	struct strbuf line;
	EVP_MD_CTX *md;
	chain_line_fn fn;
	void *ctx;
};

void chain_init(struct chain *c, chain_line_fn fn, void *ctx);
/* Returns 0, or -1 once the log is found bad (further feeding is ignored). */
int chain_feed(struct chain *c, const void *data, size_t len);
/* Ends the input; -1 when the log is bad or not closed. */
int chain_finish(struct chain *c);
void chain_release(struct chain *c);

/* Reads and checks a whole file. Returns 0 when the chain is intact and closed. */
int chain_verify_file(struct chain *c, const char *path);

#endif
