/*
 * The hash-chained event log (events.ndjson).
 *
 * Every line is one JSON object that starts {"seq":N,"prev":"<hex>", where
 * prev is the SHA-256 of the exact bytes of the previous line, newline
 * included (64 zeros for the first line). Verifiers hash bytes as written, so
 * no canonical JSON is needed. The last line is a closing record
 * {"seq":N,"prev":..,"kind":"close","count":N-1,"root":<prev>,...}; a log
 * whose writer died has none.
 *
 * The writer keeps what an attestation needs in memory as it writes (chain
 * root and head, line count, SHA-256 of every byte, the closing record), so
 * runwarden signs what it wrote, never what it reads back. Lines reach the
 * file with write(2) at least every EVLOG_FLUSH_AT bytes and whenever the
 * caller flushes (after each batch of kernel records): a writer killed with
 * SIGKILL leaves every line up to its last flush on disk.
 */
#ifndef RW_EVLOG_H
#define RW_EVLOG_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/sha256.h"
#include "common/strbuf.h"

#define EVLOG_HASH_HEX SHA256_HEX
/* Most bytes held in memory before they are written out. */
#define EVLOG_FLUSH_AT (64u << 10)

/* Called with every complete line (newline included) once it is chained. */
typedef void (*evlog_line_fn)(void *ctx, const char *line, size_t len);

struct evlog {
	int fd;			   /* -1 once closed */
	uint64_t seq;		   /* seq of the next line */
	char prev[EVLOG_HASH_HEX]; /* hex SHA-256 of the last line written */
	uint64_t bytes;		   /* chained so far (written or pending) */
	bool failed;		   /* a write failed: the file is short of what was chained */
	int err;		   /* errno of that failure */
	/* Chained, not yet written (< EVLOG_FLUSH_AT + a line). Lines are built in place here:
	 * the collector's hot path copies each line once. */
	struct strbuf pending;
	struct evp_md_st *md_sha256; /* EVP_MD fetched once: an implicit fetch per line locks */
	struct evp_md_ctx_st *md;    /* EVP_MD_CTX per line, reused */
	struct evp_md_ctx_st *all;   /* EVP_MD_CTX over every byte of the file */
	evlog_line_fn on_line;
	void *on_line_ctx;
	/* Set by evlog_close: the log as sealed. */
	bool closed;
	char root[EVLOG_HASH_HEX];   /* hash of the last event line (the closing record's root) */
	char head[EVLOG_HASH_HEX];   /* hash of the closing record */
	char sha256[EVLOG_HASH_HEX]; /* of the whole file */
	uint64_t lines;		     /* closing record included */
	struct strbuf close_line;    /* the closing record's bytes, newline excluded */
};

/* Takes fd (an empty file opened for writing); closes it on evlog_close/abandon. */
int evlog_open_fd(struct evlog *l, int fd);
/* body: the fields after seq/prev, starting with ',' (or empty). Returns the
 * seq it wrote, or -1 on I/O error. */
int64_t evlog_append(struct evlog *l, const char *body, size_t len);
/* Writes pending lines to the file; -1 (errno) when that failed. */
int evlog_flush(struct evlog *l);
/* Writes the closing record (with extra fields, starting with ','), flushes,
 * fsyncs and closes the file; the sealed values stay readable. -1 when any
 * line failed to reach the file. */
int evlog_close(struct evlog *l, const char *extra);
/* Closes without a closing record (the writer is giving up), after writing
 * what is pending; releases everything. */
void evlog_abandon(struct evlog *l);
/* Releases the memory of a closed log. */
void evlog_release(struct evlog *l);

#endif
