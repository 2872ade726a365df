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

/*
 * `run --mode learn`: reads events.ndjson in the evidence directory dirfd and
 * creates policy.learned.yaml there (exclusively, never through a symlink).
 * dir_name is for messages and the policy's comment.
 */
int learn_write_at(int dirfd, const char *dir_name);

#endif
