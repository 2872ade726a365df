/*
 * The baseline: finished runs kept by repository, workflow/job and step, so a run can be
 * compared with the history of its own job (docs/baseline.md).
 *
 * A run is a set of items per step: destinations (proto, host or address, port), DNS names
 * and their parent domains, executables (path and sha256). When a run is added, each
 * destination, executable and DNS parent its step never had in an earlier run of the same
 * key is marked first-seen, with severity info while the step has fewer than min_runs runs
 * before it, medium after.
 *
 * Everything in a run comes from the job and is treated as hostile: bounded in count and
 * length, stored through bound parameters only, printed escaped.
 */
#ifndef RW_BASELINE_STORE_H
#define RW_BASELINE_STORE_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "baseline/db.h"
#include "common/strmap.h"

/* The schema this runwarden writes; older stores are migrated when opened. */
#define BL_SCHEMA_VERSION 2
/* Runs a step needs before a first-seen item is medium rather than info. */
#define BL_MIN_RUNS_DEFAULT 5
/* Per run and kind: distinct items kept, so a flood of one kind (a DNS tunnel's names)
 * cannot crowd out another (the destination it leads to); per run: steps kept; bytes of one
 * field. What does not fit is counted (runs.items_left_out) and said, never silently
 * dropped. */
#define BL_MAX_ITEMS 10000
#define BL_MAX_STEPS 256
#define BL_MAX_FIELD 1024
/* Where `--baseline` with no path keeps the store. */
#define BL_DEFAULT_PATH "/var/lib/runwarden/baseline.db"

enum bl_kind { BL_DEST, BL_DNS, BL_PARENT, BL_EXE, BL_FINDING, BL_KIND_COUNT };
extern const char *const bl_kind_names[BL_KIND_COUNT];

struct bl_item {
	enum bl_kind kind;
	char *step; /* "" when the run has no step */
	char *ikey; /* identity within (step, kind) */
	char *name; /* host, address, DNS name or path: what a reader looks for */
	json_t *detail;
	uint64_t count;
	/* The first event of the run that had it: the evidence a finding points at. Not stored. */
	uint64_t seq;
	long long pid;
	char *exe;
	/* set by bl_store_add */
	bool first_seen;
	bool name_known; /* exe: the path was seen before, with another hash */
	const char *severity;
	long long runs_before; /* earlier runs of the key that had the step */
};

/* The key and the labels of one run. Strings are owned. */
struct bl_run {
	char *repo, *workflow, *job;
	char *uid; /* the log's chain head: one run is recorded once */
	char *run_step, *ci_run_id, *commit, *mode, *started_at, *finished_at;
	bool complete;
	struct strmap items; /* kind \x1f step \x1f ikey → struct bl_item */
	struct strmap steps;
	size_t n_kind[BL_KIND_COUNT];
	uint64_t left_out;
	/* set by bl_store_add */
	int64_t id;
	bool already; /* the same run (uid) was in the store already: nothing added */
};

void bl_run_init(struct bl_run *r);
void bl_run_free(struct bl_run *r);
/* Sets a string field (NULL clears it), cut to BL_MAX_FIELD bytes. */
void bl_set(char **field, const char *v);
/* Takes one event of the log (exec, connect, dns; others are ignored). */
void bl_run_event(struct bl_run *r, json_t *ev);
/* Reads events.ndjson in the run directory dirfd (display names it in messages). 0, or -1
 * with a one-line reason naming it and the line. */
int bl_run_read_log(struct bl_run *r, int dirfd, const char *display, char *err, size_t errlen);
/* Reads RUNDIR/summary.json (key, labels, uid) and RUNDIR/events.ndjson. Fields already
 * set in r (explicit --repo/--workflow/--job/--step) win over the run's CI labels. */
int bl_run_read_dir(struct bl_run *r, const char *dir, char *err, size_t errlen);
/* Takes the run's findings (summary.json's "findings" array, src/findings/): kept per step as
 * kind and description, for the record; they are not judged first-seen. The baseline's own
 * first_seen_* findings are not taken back in. */
void bl_run_findings(struct bl_run *r, const json_t *findings);
/* Takes the key and labels from a summary's or a job's "ci" object (JSON text or NULL). */
void bl_run_ci(struct bl_run *r, const char *ci_json);
/* The CI context's workflow as a key part: NULL where the platform's "workflow" changes with
 * every run (CircleCI gives only the workflow's id), which would give each run a key of its
 * own and no history. */
const char *bl_ci_workflow(const json_t *ci);
/* NULL when the run has a key, else what is missing ("no repository"). */
const char *bl_run_keyless(const struct bl_run *r);

struct bl_store {
	struct bl_db *db;
	int min_runs;
	bool must_exist; /* set before opening: a missing SQLite file is an error, not created */
	int schema_from; /* the version found when opened (0: created) */
};

/* Opens spec (NULL: BL_DEFAULT_PATH, its directory created) and brings the schema to
 * BL_SCHEMA_VERSION. -1 with err filled: one line naming the store. */
int bl_store_open(struct bl_store *s, const char *spec, char *err, size_t errlen);
void bl_store_close(struct bl_store *s);
/* Migrates a store at from_version up to BL_SCHEMA_VERSION (store.c; exposed for tests). */
int bl_store_migrate(struct bl_store *s, char *err, size_t errlen);

/* Records a run in one transaction (retried when the server or another writer asks),
 * marking first-seen items. 0 (r->already when it was there before), or -1 with err. */
int bl_store_add(struct bl_store *s, struct bl_run *r, char *err, size_t errlen);

/* Number of runs and items in the store for key (NULL members: any). For tests and show. */
struct bl_filter {
	const char *repo, *workflow, *job, *step;
};
/* Prints the keys (no job given) or one key's items per step. */
int bl_store_show(struct bl_store *s, const struct bl_filter *f, FILE *out, char *err,
		  size_t errlen);
/* Writes the runs matching f as one JSON document. */
int bl_store_export(struct bl_store *s, const struct bl_filter *f, FILE *out, char *err,
		    size_t errlen);
/* Deletes runs: all but the keep newest per key (keep > 0), and/or those added more than
 * older_than_s seconds ago (> 0). *deleted: runs removed. */
int bl_store_prune(struct bl_store *s, uint64_t keep, uint64_t older_than_s, uint64_t *deleted,
		   char *err, size_t errlen);

/* The recorded runs of one key, oldest first (at most last newest when last > 0), as the
 * events learn reads: fn gets each run's label, its run step (NULL: none) and an array of
 * connect/dns event objects. */
typedef int (*bl_learn_fn)(void *ctx, const char *label, const char *run_step, json_t *events);
int bl_store_learn(struct bl_store *s, const struct bl_filter *f, uint64_t last, bl_learn_fn fn,
		   void *ctx, char *err, size_t errlen);

/* The first-seen items of an added run as JSON objects (kind, step, subject, severity,
 * detail), at most max; *more counts the rest. Returns a new array. */
json_t *bl_run_first_seen(const struct bl_run *r, size_t max, size_t *more);

#endif
