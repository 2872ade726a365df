/*
 * `learn`: from the event logs of observed runs, the narrowest policy that would have let them
 * pass. Shared by `runwarden learn` and `runwarden run --mode learn`.
 */
#ifndef RW_LEARN_H
#define RW_LEARN_H

/* Sibling names under one parent (a.x.test, b.x.test, ...) that become one `*.x.test`. Below
 * this, names stay exact: a wildcard is a guess, and a guess should need many witnesses. */
#define LEARN_WILDCARD_MIN 5
/* Distinct (step, destination) pairs one learn keeps; beyond it the logs are refused rather
 * than memory growing without bound. */
#define LEARN_MAX_DESTS 200000
/* Longest events.ndjson line accepted. */
#define LEARN_MAX_LINE (1u << 20)

/*
 * Reads RUNDIR/events.ndjson of each run dir and writes a policy to out_path (NULL: stdout),
 * atomically (temporary file, then rename). Returns 0, or -1 after a one-line error on stderr.
 */
int learn_write(const char *const *rundirs, int n, const char *out_path);
/* Same with an explicit wildcard threshold (0: never use wildcards). */
int learn_write_opts(const char *const *rundirs, int n, const char *out_path, int wildcard_min);

/* Runs recorded in a baseline store (`learn --from-baseline`), before any rundirs. */
struct learn_baseline {
	const char *spec; /* store: SQLite path or postgresql:// URI */
	const char *repo, *workflow, *job, *step;
	unsigned long long last; /* the newest N runs of the key (0: all) */
};
int learn_write_from(const struct learn_baseline *bl, const char *const *rundirs, int n,
		     const char *out_path, int wildcard_min);

/*
 * `run --mode learn`: reads events.ndjson in the evidence directory dirfd and
 * creates policy.learned.yaml there (exclusively, never through a symlink).
 * dir_name is for messages and the policy's comment.
 */
int learn_write_at(int dirfd, const char *dir_name);

/*
 * The step a run enforced (its --step, from RUNDIR/summary.json): what a policy must serve for
 * that run to pass again. Event "step" values are labels and need not be it: in whole-job mode
 * they come from each CI step's environment while one set of rules covers the whole job.
 * Returns 1 with *step set (malloc'd, or NULL for the top level), 0 when summary.json is
 * missing or unreadable (the caller falls back to the top level, which applies everywhere).
 */
int learn_run_step(const char *rundir, char **step);
/* The same for the run directory open as dirfd. */
int learn_run_step_at(int dirfd, char **step);

#endif
