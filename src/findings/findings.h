/*
 * Findings: named, typed conclusions drawn from the events of one job ("this process read the
 * runner's memory", "a DNS tunnel under x.test"), each with a severity, the process and step
 * responsible, one line for people and the evidence it rests on: the `seq` numbers of the
 * event-log lines, so a reviewer can find them in the hash-chained log.
 *
 * The collector feeds the engine as it writes each line (findings_on_*), and job.c finishes
 * it at the end of the job (findings_finish). Detectors keep bounded state whatever the job
 * does: past each cap new state is not kept and the overflow is counted in summary.json. A
 * raised finding at a severity the policy maps to `kill` calls on_raise at once (lockdown).
 * docs/findings.md describes every kind: what triggers it, its severity, its false positives.
 */
#ifndef RW_FINDINGS_H
#define RW_FINDINGS_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/strbuf.h"
#include "common/strmap.h"
#include "findings/severity.h"
#include "findings/srcmod.h"

struct proctab;

/* Every kind, once: X(ENUM_SUFFIX, "name in summaries and reports"). */
#define FINDING_KINDS(X)                                                                           \
	X(MEMORY_READ, "memory_read")		/* another process's memory reached */             \
	X(ENVIRON_READ, "environ_read")		/* another process's environment read */           \
	X(CREDENTIAL_SWEEP, "credential_sweep") /* several credential stores read at once */       \
	X(DNS_TUNNEL, "dns_tunnel")		/* encoded names or TXT floods under one parent */ \
	X(DNS_VOLUME, "dns_volume")		/* very many distinct names under one parent */    \
	X(PERSISTENCE, "persistence")		/* a process outlived its step or the job */       \
	X(SECRET_IN_ARGV, "secret_in_argv")	/* a secret in a command line (redacted) */        \
	X(RUNNER_FILE_COMMAND, "runner_file_command") /* later steps' environment poisoned */      \
	X(REVERSE_SHELL, "reverse_shell")	/* a shell whose stdin/stdout is a connection */   \
	X(CONTAINER_ENGINE, "container_engine") /* a connect to a container engine's socket */     \
	X(MOUNT, "mount")		      /* mount(2)/move_mount(2): host paths, namespaces */ \
	X(GIT_HOOK, "git_hook")		      /* a git hook written in the checkout */             \
	X(SOURCE_MODIFIED, "source_modified") /* tracked files of the checkout changed */          \
	/* the baseline (src/baseline/): what no earlier run of the job's step did */              \
	X(FIRST_SEEN_DESTINATION, "first_seen_destination")                                        \
	X(FIRST_SEEN_EXE, "first_seen_exe")                                                        \
	X(FIRST_SEEN_DNS_PARENT, "first_seen_dns_parent")                                          \
	X(SECRET_LEAK, "secret_leak") /* a secret sent where it may not go (src/secrets/) */

enum finding_kind {
#define FK_ENUM_(e, name) FK_##e,
	FINDING_KINDS(FK_ENUM_)
#undef FK_ENUM_
	    FK_COUNT
};

/* Findings listed in summary.json; more are counted (findings_unlisted). */
#define FINDINGS_MAX 256
/* Evidence lines named per finding; more are counted (evidence_unlisted). */
#define FINDING_EVIDENCE_MAX 32
/* A finding's argv is kept when its JSON fits; longer ones are left out and flagged. */
#define FINDING_ARGV_MAX 2048

struct finding {
	enum finding_kind kind;
	enum finding_severity sev;
	pid_t pid;
	char *exe;	 /* NULL: unknown */
	char *argv_json; /* JSON array text, NULL when unknown or too long */
	bool argv_cut;
	char *step;
	char *desc;    /* one line */
	char *details; /* JSON members of the kind's own, no braces; NULL: none */
	uint64_t ev[FINDING_EVIDENCE_MAX];
	uint32_t n_ev;
	uint64_t ev_unlisted;
	bool acted; /* on_raise was called for it at its current severity */
};

/* The process an event belongs to, as the collector knows it. */
struct finding_proc {
	pid_t pid;
	const char *exe;
	const char *argv_json;
	const char *step;
};

/* A memread line, as the collector rendered it. */
struct finding_memread {
	const char *op; /* "process_vm_readv", "proc_environ", ... */
	pid_t target;	/* global pid, or 0 when unknown */
	pid_t target_as_given;
	const char *target_exe;	 /* may be NULL */
	const char *target_comm; /* may be NULL */
	const char *scope;	 /* "job", "runner", "outside", "unknown" */
	bool ok;		 /* the access worked */
	bool write;		 /* a write (process_vm_writev, poke, /proc/PID/mem for writing) */
};

/* A mount line, as the collector rendered it. */
struct finding_mount {
	const char *call;		      /* "mount", "move_mount" */
	const char *source, *target, *fstype; /* as the caller passed them, may be NULL */
	bool bind;
	bool propagation; /* only changes propagation (MS_PRIVATE, ...): mounts nothing */
	bool ok;
};

struct findings {
	struct finding *v; /* FINDINGS_MAX slots */
	size_t n;
	uint64_t unlisted;	     /* raised past FINDINGS_MAX */
	uint64_t by_sev[SEV_COUNT];  /* every finding raised, listed or not */
	uint64_t state_dropped;	     /* detector state not kept (a cap was reached) */
	struct strmap keys;	     /* dedup key -> (finding index + 1) as uintptr_t */
	struct strmap unlisted_keys; /* keys of findings past FINDINGS_MAX (counted once) */
	struct proctab *procs;	     /* the collector's: ancestry, exe, argv */
	pid_t runner_pid;	     /* whole-job mode: the CI runner (its children are roots) */
	pid_t root_pid;		     /* run: the command's process (the job's root) */
	/* Detector state (detect.c). */
	struct strmap cred;	   /* "pid" -> struct cred_state */
	struct strmap dns_parents; /* parent domain -> struct dns_parent */
	struct strmap dns_names;   /* names seen (keys only) */
	size_t dns_names_bytes;
	struct strmap outlived;	     /* "pid" -> struct outlived: alive when its root exited */
	struct strmap filecmds;	     /* runner file command path -> struct filecmd (filecmd.c) */
	struct strmap filecmd_files; /* platform files named at job start -> struct fc_file */
	struct strmap last_connect;  /* "pid" -> struct last_connect (host.c) */
	struct srcmod srcmod;	     /* the checkout at start (srcmod.c); inactive: none */
	/* Lockdown: severities whose findings call on_raise (policy `on_finding`, enforce). */
	enum finding_action act[SEV_COUNT];
	void (*on_raise)(void *ctx, const struct finding *f);
	void *on_raise_ctx;
	/* The first finding that triggered an action: the reason every report leads with. */
	int lockdown; /* index into v, -1: none */
	char *lockdown_reason;
};

void findings_init(struct findings *f, struct proctab *procs);
void findings_free(struct findings *f);

/* The collector's feed: one call per line written (seq is that line's). ts in ns, monotonic. */
void findings_on_exec(struct findings *f, const struct finding_proc *p, uint64_t seq);
void findings_on_exit(struct findings *f, pid_t pid, uint64_t seq);
/* Any other line a process caused (connect, socket, accept, pidfd_getfd): activity only.
 * what: a short phrase for the persistence finding ("connect tcp 127.0.0.1:80"). */
void findings_on_activity(struct findings *f, const struct finding_proc *p, const char *what,
			  uint64_t seq);
/* A sensitive-file line: path as opened, watched_as (NULL: same), the open worked or not. */
void findings_on_file(struct findings *f, const struct finding_proc *p, const char *path,
		      const char *watched_as, bool ok, int64_t ts, uint64_t seq);
void findings_on_dns(struct findings *f, const struct finding_proc *p, const char *qname, int qtype,
		     uint64_t seq);
void findings_on_memread(struct findings *f, const struct finding_proc *p,
			 const struct finding_memread *m, uint64_t seq);
/* A file the platform loads into every later step, named by a variable at job start
 * (CircleCI's $BASH_ENV: shell; Buildkite's $BUILDKITE_ENV_FILE: KEY=value lines). Its lines
 * now are remembered as not the job's. The caller also puts path on the sensitive list, so
 * opens of it reach findings_on_file_write. -1: too many files. */
int findings_filecmd_watch(struct findings *f, const char *path, bool shell, const char *var);
/* An open for writing of a file on the sensitive list (runner file commands, filecmd.c). */
void findings_on_file_write(struct findings *f, const struct finding_proc *p, const char *path,
			    uint64_t seq);
/* An open for writing of a tracked file of the checkout (kernel identity kdev, ino): the
 * writer source_modified names. Returns the file's path, NULL when it is not one. */
const char *findings_on_tracked_write(struct findings *f, const struct finding_proc *p,
				      uint32_t kdev, uint64_t ino, uint64_t seq);
/* A connect line: activity, and (TCP) the connection a later reverse shell rests on. */
void findings_on_connect(struct findings *f, const struct finding_proc *p, const char *proto,
			 const char *addr, bool v6, unsigned port, uint64_t seq);
/* An exec whose stdin and/or stdout was an IPv4/IPv6 socket. */
void findings_on_stdio_inet(struct findings *f, const struct finding_proc *p, bool in, bool out,
			    uint64_t seq);
void findings_on_unix_connect(struct findings *f, const struct finding_proc *p, const char *path,
			      bool ok, uint64_t seq);
void findings_on_mount(struct findings *f, const struct finding_proc *p,
		       const struct finding_mount *m, uint64_t seq);
/* Secrets were redacted from an exec's argv: tags is a JSON array of the tags written. */
void findings_on_secret(struct findings *f, const struct finding_proc *p, const char *tags_json,
			size_t n, uint64_t seq);
/* A secret seen leaving (src/secrets/): names it, never holds it. */
struct finding_secret {
	const char *secret;  /* "NPM_TOKEN", "/home/u/.npmrc", "github" */
	const char *source;  /* "env", "file", "format" */
	const char *key;     /* the file's key, or NULL */
	const char *tag;     /* the keyed hash ([redacted:...]), or NULL */
	const char *dest;    /* the destination name, or NULL when none was named */
	const char *address; /* "127.0.0.1:443", or NULL */
	const char *channel; /* "tls_write", "plain_tcp", "dns_name" */
	const char *verdict; /* "deny" (stopped), "audit" (recorded) */
	bool killed, dropped;
};
void findings_on_secret_leak(struct findings *f, const struct finding_proc *p,
			     const struct finding_secret *s, uint64_t seq);
/* End of the job: processes still running (leftovers) are persistence. */
void findings_finish(struct findings *f, const pid_t *leftovers, int n_leftovers);

/* summary.json: ,"findings":[...],"findings_unlisted":N,... (members, leading comma). */
void findings_json(const struct findings *f, struct strbuf *sb);
/* The terminal summary's lines, highest severity first. */
void findings_print(const struct findings *f, FILE *out, int max);

/* Engine internals shared with detect.c and filecmd.c. */
void findings_filecmd_exit(struct findings *f, pid_t pid);
void findings_filecmd_finish(struct findings *f);
void findings_filecmd_free(struct findings *f);
void findings_srcmod_finish(struct findings *f);
const char *findings_short_exe(const struct finding_proc *p);
struct finding *finding_raise(struct findings *f, const char *key, enum finding_kind kind,
			      enum finding_severity sev, const struct finding_proc *p);
struct finding *finding_get(struct findings *f, const char *key);
void finding_evidence(struct finding *x, uint64_t seq);
void finding_set_desc(struct finding *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void finding_set_details(struct finding *x, const char *json_members);
/* Raises x's severity (and kind), acting again if the new one asks for it. */
void finding_upgrade(struct findings *f, struct finding *x, enum finding_kind kind,
		     enum finding_severity sev);
/* Calls on_raise when x's severity asks for an action and it has not acted yet. */
void finding_act(struct findings *f, struct finding *x);
const char *finding_kind_name(int kind);

#endif
