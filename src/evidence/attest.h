/*
 * Sealing a run's evidence: the closing step of `runwarden run` and of a
 * whole job. Everything signed comes from memory: the chain values the log
 * writer computed as it wrote (evlog.h), the summary.json bytes runwarden
 * produced, the exec summary built from the lines as they were written, the
 * digest of the policy as it was loaded. Nothing is read back from the
 * evidence directory, which sits where the job could have meddled with names.
 * Writes attestation.dsse.json and attestation.sigstore.json (and, with an
 * ephemeral key, ephemeral.pub.pem) through the directory descriptor.
 */
#ifndef RW_ATTEST_H
#define RW_ATTEST_H
#include <stddef.h>

#include "evidence/evlog.h"
#include "evidence/keys.h"
#include "evidence/outdir.h"
#include "evidence/statement.h"

struct attest_input {
	const char *summary; /* the summary.json bytes written */
	size_t summary_len;
	const struct evlog *log; /* closed by evlog_close, without a write failure */
	const char *log_name;	 /* "events.ndjson" */
	struct exec_summary *exec;
	const char *policy_path;   /* NULL: no policy */
	const char *policy_sha256; /* hex digest of the policy bytes the run loaded */
	const struct key *key;	   /* NULL: an ephemeral key signs */
};

/* Returns 0, or -1 after printing a one-line reason to stderr. */
int attest_write(struct outdir *d, const struct attest_input *in);

/*
 * Loads the signing key before the job starts, so a bad key fails the run
 * early and the job can never swap it: it must be a supported type, owned by
 * root and inaccessible to group and others. Returns 0, or -1 after printing
 * a one-line reason to stderr.
 */
int attest_load_key(struct key *k, const char *key_path);

/* Exec-summary feed for evlog's on_line hook (ctx: struct exec_summary). */
void attest_exec_line(void *ctx, const char *line, size_t len);

#endif
