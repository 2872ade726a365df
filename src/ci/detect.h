/*
 * Which CI platform runs this job, and the context it tells us about itself
 * (repository, pipeline, job, run, commit, runner, step). docs/ci.md lists
 * the variables per platform.
 *
 * Everything here is a label for people reading the evidence, never a basis
 * for a security decision: the workload can set any environment variable.
 */
#ifndef RW_CI_DETECT_H
#define RW_CI_DETECT_H
#include <jansson.h>
#include <stddef.h>

/* Longest label kept, in bytes (values are cut at a UTF-8 boundary). */
#define CI_VALUE_MAX 256
/* Most of a /proc/PID/environ block ci_step_from_environ() looks at. */
#define CI_ENVIRON_MAX (1u << 20)

/*
 * Detects the platform from envp (NULL-terminated "NAME=value" strings) and
 * file probes under root ("/" normally; tests pass a temp dir). Returns a new
 * object that always has these keys, null when unknown:
 *   provider (a name from CI_PLATFORMS in ci/platforms.h),
 *   repository, workflow, job, job_id, run_id, run_attempt, commit, ref,
 *   runner, server_url, url, step, also_detected (array of other providers
 *   whose markers were present too).
 * Every string is valid UTF-8 of at most CI_VALUE_MAX bytes.
 */
json_t *ci_detect(char *const *envp, const char *root);

/*
 * The step (or stage) a process belongs to, from its environment as read
 * from /proc/PID/environ: NUL-separated NAME=value entries, len bytes (only
 * the first CI_ENVIRON_MAX are looked at; need not end in NUL). Returns a
 * malloc'd, cleaned label, or NULL when no platform marker or step variable
 * is present.
 */
char *ci_step_from_environ(const char *environ_block, size_t len);

/*
 * A display-safe copy of len bytes: invalid UTF-8 becomes U+FFFD, control
 * characters become spaces, and the result is cut to at most max bytes on a
 * character boundary. Never NULL.
 */
char *ci_clean_label(const char *s, size_t len, size_t max);

#endif
