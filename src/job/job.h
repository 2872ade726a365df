/*
 * One observed job: its cgroup scope, the armed kernel programs, the
 * collector writing its log, its policy and DNS gate, and the evidence
 * written when it ends. `runwarden run` drives one around a command; the
 * agent daemon drives them for whole CI jobs.
 */
#ifndef RW_JOB_H
#define RW_JOB_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "observe/collect.h"
#include "job/containers.h"
#include "job/enforce.h"
#include "kernel/loader.h"
#include "job/scope.h"
#include "observe/sensitive.h"
#include "observe/summary.h"
#include "evidence/attest.h"

struct ring_buffer;
struct baseline_job;

/* `run`'s and `job stop`'s exit status when a finding ended the job (policy on_finding, enforce
 * mode): apart from any status a command's own failure gives (docs/runwarden.1). */
#define RW_EXIT_LOCKDOWN 86

struct job_opts {
	const char *out_dir;
	const char *step;
	const char *policy;
	const char *key;
	enum policy_mode mode; /* UNSET: the policy's, else observe */
	uint64_t grace_ms;
	uint64_t ring_mb;
	bool kill_leftovers;
	bool release_leftovers; /* leftovers are moved out of the scope at the end (job stop
				   --leftovers keep) */
	bool allow_partial;
	bool private_kernel;  /* load a kernel side of its own, not a resident one */
	unsigned kernel_idle; /* a resident one this job loads stays this long unused (s) */
	bool quiet;
	bool no_sign;
	char *const *command; /* for the record (NULL in whole-job mode) */
	/* The checkout compared at the end (source_modified): "none" skips; NULL: `run` takes
	 * $GITHUB_WORKSPACE, $CI_PROJECT_DIR or its working directory, whole-job mode none. */
	const char *workspace;
	/* Cgroup directories where a container engine creates containers
	 * (NULL: containers are not followed). */
	const char *const *container_dirs;
	const char *engine; /* the Docker API socket naming containers (NULL: default) */
	/* The baseline store the finished run is recorded in (opened and keyed before the
	 * job starts), or NULL. */
	struct baseline_job *baseline;
};

struct job {
	struct job_opts o;
	struct sensitive_list sens;
	struct scope scope;
	struct loader ld;
	struct collector col;
	struct ring_buffer *rb;
	struct enforce enf;
	struct run_info ri;
	struct strbuf missing;
	char *ci_json; /* the CI context, when a platform was detected */
	char *ci_step; /* its step label, used when no --step was given */
	char *ci_provider;
	int epfd;
	struct containers cont;		     /* containers followed (o.container_dirs) */
	bool following;			     /* cont was started */
	uint64_t gate_netns[GATE_NETNS_MAX]; /* by gate listener handle: its namespace cookie */
	struct outdir out;		     /* the evidence directory, created by job_arm */
	struct key key;			     /* the signing key, loaded before the job starts */
	bool have_key;
	struct exec_summary exec; /* built from the log lines as they are written */
	bool loaded, col_ready;
	char kernel_kind[64]; /* loader_kind(), for the summary */
	int64_t t0;
	/* Fence integrity (job_pump): the keeper holding the fence past this
	 * process (`run`; -1 otherwise), breaches already acted on. */
	int keeper_pidfd;
	bool keeper_lost, link_lost;
	uint32_t breaches_acted;
	int64_t next_link_check;
	bool locked_down; /* a finding ended the job (on_finding: kill, enforce) */
};

/* Takes the sensitive list (extra --watch globs already added). Creates the
 * scope, arms everything; 0, or -1 after a one-line reason on stderr. */
int job_arm(struct job *j, const struct job_opts *o, struct sensitive_list *sens);
/* A job armed but never started (nothing entered its scope): removes its
 * still empty evidence directory, so the same --out can be used again. */
void job_discard_out(struct job *j);
/* Waits up to timeout_ms for kernel records or DNS gate work, handles them. */
int job_pump(struct job *j, int timeout_ms);
bool job_scope_empty(const struct job *j);
/* Ends the job at once (cgroup.kill): the fence was breached in enforce mode. */
void job_end_now(struct job *j, const char *why);
/* The usual places container engines put containers: the defaults for
 * following a job's containers. NULL-terminated, static. */
const char *const *job_default_container_dirs(void);
/* Ends the job: leftovers, drain, closing record, summary, learned policy,
 * attestation. exit_status: the command's (-1 if it never ran). Returns the
 * status the caller should exit with. */
int job_finish(struct job *j, int exit_status);
/* handoff: leave detaching to a short-lived child (end of a process). */
void job_free(struct job *j, bool handoff);

#endif
