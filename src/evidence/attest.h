/*
 * Sealing a run's evidence: the closing step of `runwarden run`. Reads
 * OUTDIR/events.ndjson and OUTDIR/summary.json (both complete on disk) and
 * writes OUTDIR/attestation.dsse.json and OUTDIR/attestation.sigstore.json.
 */
#ifndef RW_ATTEST_H
#define RW_ATTEST_H

/* key_path NULL: an ephemeral key signs and its public key is written beside
 * the evidence. policy_path may be NULL. Returns 0, or -1 after printing a
 * one-line reason to stderr. */
int attest_write(const char *outdir, const char *key_path, const char *policy_path);

#endif
