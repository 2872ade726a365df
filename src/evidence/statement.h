/*
 * The in-toto Statement v1 runwarden signs: subjects (the event log, the
 * policy file) and the runtime-trace predicate filled from summary.json and
 * the log. docs/evidence.md documents every field. Also the verifier's reading
 * of a statement it has already authenticated.
 */
#ifndef RW_EV_STATEMENT_H
#define RW_EV_STATEMENT_H
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/strmap.h"
#include "evidence/chain.h"

#define INTOTO_STATEMENT_V1 "https://in-toto.io/Statement/v1"
#define RUNTIME_TRACE_V01   "https://in-toto.io/attestation/runtime-trace/v0.1"
#define RW_URI		    "https://github.com/runwarden/runwarden"
/* Distinct (binary, first argument) pairs listed; the rest are counted. */
#define EXEC_SUMMARY_MAX 10000

/* Collects the exec summary while the chain is checked (a chain_line_fn). */
struct exec_summary {
	struct strmap seen; /* "exe\nsha" -> json entry (borrowed from list) */
	json_t *list;
	uint64_t unlisted;
};
void exec_summary_init(struct exec_summary *x);
void exec_summary_line(void *ctx, uint64_t seq, json_t *obj, const char *raw, size_t len);
void exec_summary_release(struct exec_summary *x);

struct stmt_input {
	json_t *summary;	 /* summary.json */
	const struct chain *log; /* checked and closed */
	const char *log_name;	 /* subject name, "events.ndjson" */
	struct exec_summary *exec;
	const char *policy_path;   /* NULL: no policy */
	const char *policy_sha256; /* hex of the policy file's bytes */
	const char *keyid;
	const char *key_type;
	bool ephemeral;
	const char *hostname;
};
json_t *statement_build(const struct stmt_input *in, char *err);

/* What `verify` needs from an authenticated statement. Pointers live in root. */
struct stmt_view {
	json_t *root;
	const char *log_sha256, *log_root, *log_head;
	int64_t log_lines;
	const char *policy_sha256, *policy_name; /* NULL when no policy subject */
	bool ephemeral;
	const char *signer_keyid; /* as recorded in the predicate, may be NULL */
	bool complete;
	int64_t events_lost;
};
int statement_read(const unsigned char *payload, size_t len, struct stmt_view *v, char *err);
void statement_view_release(struct stmt_view *v);

/* Exact bytes of a string our log writer escaped (\udcXX -> byte XX); tests use it. */
int evlog_string_bytes(const char *raw_line, size_t len, const char *member, size_t index,
		       struct strbuf *out);

#endif
