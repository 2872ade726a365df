/*
 * The whole check behind `runwarden verify`, as a function: pinned key ->
 * envelope signature -> statement -> event log chain and closing record ->
 * log and policy digests. Stops at the first failure and says where.
 */
#ifndef RW_EV_VERIFY_H
#define RW_EV_VERIFY_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "evidence/codec.h"
#include "evidence/evlog.h"

enum verdict {
	VERDICT_VALID = 0,
	VERDICT_INVALID = 1,
	VERDICT_ERROR = 2, /* could not run the check: bad usage or unreadable key */
	VERDICT_SELF_CONSISTENT = 3,
};

struct verify_opts {
	const char *key_path; /* pinned public key (PEM) */
	const char *attestation;
	const char *log_path;	 /* NULL: events.ndjson beside the attestation */
	const char *policy_path; /* NULL: policy digest recorded but not checked */
};

struct verify_report {
	enum verdict verdict;
	const char *code; /* failed check: "envelope", "signature", "chain:prev", ... */
	char reason[EV_ERRLEN];
	const char *file; /* the file the reason is about */
	uint64_t line;	  /* its line, 0 when not line-specific */
	char keyid[EVLOG_HASH_HEX];
	const char *key_type;
	bool bundle;
	char *log_path;
	uint64_t log_lines;
	char log_root[EVLOG_HASH_HEX], log_sha256[EVLOG_HASH_HEX];
	bool run_complete;
	int64_t events_lost;
	int policy; /* 0 none recorded, 1 recorded (file not given), 2 file matches */
	char policy_sha256[EVLOG_HASH_HEX];
	json_t *notes;	       /* array of strings */
	struct strbuf payload; /* the statement's bytes, set only once they verified */
};

/* Fills r (release it with verify_report_release); returns r->verdict. */
enum verdict verify_evidence(const struct verify_opts *o, struct verify_report *r);
void verify_report_release(struct verify_report *r);
/* The machine report (--json). */
json_t *verify_report_json(const struct verify_report *r);

#endif
