/*
 * The hash-chained event log (events.ndjson).
 *
 * Every line is one JSON object that starts {"seq":N,"prev":"<hex>", where
 * prev is the SHA-256 of the exact bytes of the previous line, newline
 * included (64 zeros for the first line). Verifiers hash bytes as written, so
 * no canonical JSON is needed. The last line is a closing record
 * {"seq":N,"prev":..,"kind":"close","count":N-1,"root":<prev>,...}; a log
 * whose writer died has none.
 */
#ifndef RW_EVLOG_H
#define RW_EVLOG_H
#include <stdint.h>
#include <stdio.h>

#include "common/strbuf.h"

#define EVLOG_HASH_HEX 65

struct evlog {
	FILE *f;
	uint64_t seq;		   /* seq of the next line */
	char prev[EVLOG_HASH_HEX]; /* hex SHA-256 of the last line written */
	uint64_t bytes;
	struct strbuf line;	  /* reused for every line: the collector's hot path */
	struct evp_md_ctx_st *md; /* EVP_MD_CTX, reused likewise */
};

int evlog_open(struct evlog *l, const char *path);
/* body: the fields after seq/prev, starting with ',' (or empty). Returns the
 * seq it wrote, or -1 on I/O error. */
int64_t evlog_append(struct evlog *l, const char *body, size_t len);
/* Writes the closing record (with extra fields, starting with ',') and closes. */
int evlog_close(struct evlog *l, const char *extra);
/* Closes without a closing record (the writer is giving up). */
void evlog_abandon(struct evlog *l);
int evlog_flush(struct evlog *l);

/* Hex SHA-256 of a byte range, into out[EVLOG_HASH_HEX]. */
void sha256_hex(const void *data, size_t len, char out[EVLOG_HASH_HEX]);

#endif
