/*
 * Per-run aggregates (destinations, DNS names, sensitive files) and the two
 * summaries made from them: summary.json and the short report on stderr.
 * Aggregates are keyed by their rendered JSON, so what is counted is exactly
 * what is printed.
 */
#ifndef RW_SUMMARY_H
#define RW_SUMMARY_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/strbuf.h"
#include "common/strmap.h"
#include "events.h"
#include "findings/findings.h"

/* Past these, new distinct items are counted but not listed (bounded memory
 * for attacker-chosen names); the overflow is reported, not hidden. */
#define SUMMARY_MAX_ITEMS	   10000
#define SUMMARY_MAX_PROCS_PER_FILE 16
#define SUMMARY_MAX_ANSWERS	   16
/* and past this much text held in the lists (item keys, labels, members): the job picks the
 * names, and 10,000 DNS items of 16 answers of 1 KiB each would be 170 MiB. */
#define SUMMARY_MAX_BYTES (16u << 20)

struct summary {
	struct strmap dests; /* fragment -> struct agg */
	struct strmap dns;
	struct strmap files;
	/* Denied, blocked and would-be-denied attempts grouped by what was
	 * attempted (kind, verdict, step, identity): the one violation list that
	 * summary.json, the terminal summary and every report render. */
	struct strmap violations;
	struct strmap memreads; /* reaches into other processes' memory */
	uint64_t overflow;	/* distinct items not listed */
	size_t bytes;		/* text the lists hold, up to SUMMARY_MAX_BYTES */
	uint64_t logged[EV_KIND_MAX];
	uint64_t lost_kernel[EV_KIND_MAX];
	uint64_t lost_user[EV_KIND_MAX];
	uint64_t audits, denials;
	uint64_t malformed;	      /* records of unknown kind or size */
	uint64_t containers_missed;   /* containers that could not be added to the scope */
	uint64_t containers_unlisted; /* fenced and recorded, but past the cap on names */
	/* Executable digests: distinct files hashed, their bytes, cache hits,
	 * and the time the agent spent hashing (the cost of exec identity). */
	uint64_t exe_hashed_files, exe_hashed_bytes, exe_hash_hits;
	int64_t exe_hash_ns;
	/* Why the record cannot be complete even with nothing lost: the fence
	 * was breached (a process moved out of the scope, a link detached, the
	 * keeper killed) or processes outlived the record. JSON strings,
	 * comma-separated (array members); bounded by summary_incomplete(). */
	struct strbuf incomplete;
	uint32_t n_incomplete;
	uint32_t fence_breaches; /* of which: the fence no longer held */
};

struct leftover {
	pid_t pid;
	char cmdline[512];
	size_t len;
};

/* Everything about the run that is not an aggregate. */
struct run_info {
	char *const *command;
	const char *step;
	const char *mode;
	int64_t started_ns, finished_ns, armed_ns;
	const char *kernel;	 /* which kernel side armed the job (loader_kind) */
	int64_t kernel_ready_ns; /* of armed_ns: getting it loaded (or borrowed) */
	long agent_peak_rss_kb;
	int exit_status; /* -1: never ran */
	const char *out_dir;
	const char *log_name;
	uint64_t log_lines;
	const char *log_root;
	const char *missing_json; /* JSON array text */
	int n_missing;
	struct leftover *leftovers;
	int n_leftovers;
	bool leftovers_killed;
	/* What became of leftovers not killed: "fenced" (still running under
	 * the fence, held until they exit, not recorded) or "released" (moved
	 * out of the scope: neither fenced nor recorded). */
	const char *leftovers_fate;
	const char *ci_json;	     /* JSON object text or NULL */
	const char *containers_json; /* JSON array members, or NULL when not followed */
	const char *policy_json;     /* JSON object text or NULL */
	bool violations_fail_run;    /* the violations set the run's exit status */
	const char *dns_json;	     /* JSON object text or NULL: the DNS gate, DNS drops */
	const char *capture_json; /* JSON object text or NULL: capture levels, what they left out */
	const char *out_moved_to; /* --out no longer names the evidence: where it is now */
	bool log_failed;	  /* a write of events.ndjson failed: the file is short */
	const char *baseline_json; /* `,"baseline":{...}` (baseline/baseline.h) or NULL */
	const char *secrets_json;  /* "secrets":{...} member (leading comma) or NULL */
	/* What the job's events showed (listed first in summary.json and on the terminal), and
	 * whether a finding ended the job (policy on_finding, enforce mode). */
	const struct findings *findings;
	bool lockdown_enforced;
};

void summary_init(struct summary *s);
void summary_free(struct summary *s);

/* frag is the identity as JSON members (no braces); human is one line. */
void summary_dest(struct summary *s, const char *frag, const char *human);
struct agg;
/* The same, returning the item counted (NULL: not listed, counted as overflow) for
 * summary_dest_again, which counts one more of it without looking it up again. */
struct agg *summary_dest_ref(struct summary *s, const char *frag, const char *human);
void summary_dest_again(struct summary *s, struct agg *ref);
void summary_dns(struct summary *s, const char *frag, const char *human,
		 const char *const *answers_json, int n);
void summary_file(struct summary *s, const char *frag, const char *human, const char *proc_json,
		  pid_t pid);
/* One denied/blocked/audited attempt: frag names it ("kind", "verdict", "step" and the
 * kind's identity members), proc_json is {"pid":N,"exe":...} of the process. */
void summary_violation(struct summary *s, const char *frag, const char *human,
		       const char *proc_json);

void summary_memread(struct summary *s, const char *frag, const char *human, const char *proc_json);
/* Records a reason the record is incomplete (at most SUMMARY_MAX_REASONS
 * are listed; the count is always right). */
#define SUMMARY_MAX_REASONS 32
void summary_incomplete(struct summary *s, const char *reason);

uint64_t summary_lost_total(const struct summary *s);
bool summary_complete(const struct summary *s, const struct run_info *r);
/* "events_lost" object text: {"exec":0,...,"total":N} */
void summary_lost_json(const struct summary *s, struct strbuf *sb);
/* summary.json's bytes, appended to out: written and signed as they are. */
void summary_render(const struct summary *s, const struct run_info *r, struct strbuf *out);
void summary_print(const struct summary *s, const struct run_info *r, FILE *f);

const char *kind_name(int kind);

#endif
