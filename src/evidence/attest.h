/*
 * Sealing a run's evidence: the closing step of `runwarden run`. Reads
 * OUTDIR/events.ndjson and OUTDIR/summary.json (both complete on disk) and
 * writes OUTDIR/attestation.dsse.json and OUTDIR/attestation.sigstore.json.
 */
#ifndef RW_ATTEST_H
#define RW_ATTEST_H
#include <sys/types.h>

/* key_path NULL: an ephemeral key signs and its public key is written beside
 * the evidence. policy_path may be NULL. Returns 0, or -1 after printing a
 * one-line reason to stderr. */
int attest_write(const char *outdir, const char *key_path, const char *policy_path);

/*
 * Checks a signing key before the job starts, so a bad key fails the run
 * early instead of after the job: it must load, be a supported type, be
 * inaccessible to group and others, and not be owned by job_uid (the user the
 * job runs as can read its own files; pass (uid_t)-1 when unknown). Returns 0,
 * or -1 after printing a one-line reason to stderr.
 */
int attest_check_key(const char *key_path, uid_t job_uid);

#endif
