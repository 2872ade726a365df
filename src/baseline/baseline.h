/*
 * The baseline as a job sees it (`run --baseline`, agent jobs): the store is opened and the
 * key settled before the job starts, so a wrong URI or a run without a key fails at once
 * rather than after the work; the run is recorded when its log is closed, before the summary
 * is written, so its first-seen results are in summary.json and the signed statement.
 *
 * Every first-seen result is listed in summary.json's "baseline" object (docs/baseline.md),
 * and handed to the caller (on_first_seen), which raises it as a finding (job.c).
 */
#ifndef RW_BASELINE_H
#define RW_BASELINE_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "baseline/store.h"
#include "common/strbuf.h"

/* First-seen results put in summary.json; the rest are counted there. */
#define BL_SUMMARY_MAX_FIRST_SEEN 200

struct baseline_opts {
	const char *spec;		   /* NULL: BL_DEFAULT_PATH */
	const char *repo, *workflow, *job; /* explicit key, else the CI context's */
	int min_runs;			   /* 0: BL_MIN_RUNS_DEFAULT */
};

struct baseline_job {
	struct bl_store store; /* open only while a run is being recorded */
	char *spec;	       /* NULL: BL_DEFAULT_PATH */
	char *where;	       /* the store, for messages */
	int min_runs;
	char *repo, *workflow, *job;
	char *report; /* lines for the terminal summary after a record, or NULL */
};

/* Settles the key from opts and envp's CI context, and opens the store once to check it
 * (reachable, schema migrated) without holding it through the job: an idle connection of
 * hours may not survive, and the job's processes have no business inheriting it. 0, or -1
 * after a one-line reason on stderr. */
int baseline_job_open(struct baseline_job *b, const struct baseline_opts *o, char *const *envp);
void baseline_job_close(struct baseline_job *b);

/* What the job knows of its finished run. */
struct baseline_run_info {
	int dirfd;	      /* the evidence directory; events.ndjson is read from it */
	const char *dir_name; /* for messages */
	const char *log_root, *step, *mode, *ci_json;
	int64_t started_ns, finished_ns;
	bool complete;
	const char *findings_json; /* the run's findings as a JSON array, or NULL */
	/* Called for each first-seen item once the run is recorded (the findings engine), or
	 * NULL. */
	void (*on_first_seen)(void *ctx, const struct bl_item *it);
	void *ctx;
};

/* Records the run; appends the summary's "baseline" member (`,"baseline":{...}`) to
 * summary_member and leaves the terminal lines in b->report. 0, or -1 after a one-line
 * reason on stderr (the member then carries the error). */
int baseline_job_record(struct baseline_job *b, const struct baseline_run_info *ri,
			struct strbuf *summary_member);

/* "first seen (medium): destination tcp host:443 in step \"build\"" lines for a run. */
void baseline_print_first_seen(const struct bl_run *r, FILE *f, size_t max);

#endif
