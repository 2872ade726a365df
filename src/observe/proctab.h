/*
 * What the agent knows about each process in the job, built from exec and
 * fork records in ring order, so every event can name its process (exe,
 * argv, parent) even when the kernel hook that saw it could not.
 */
#ifndef RW_PROCTAB_H
#define RW_PROCTAB_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/strmap.h"

struct shim;

struct proc {
	pid_t pid;
	pid_t ppid;
	uint32_t uid;
	char comm[16];
	char *exe;	 /* absolute path, or NULL if never seen exec */
	char *argv_json; /* JSON array text, ready to embed */
	char *step;	 /* CI step from its environment (whole-job mode), inherited */
	/* What the process runs, whatever its path says (exec record). */
	uint32_t exe_dev;
	uint64_t exe_ino;
	char exe_sha256[65]; /* "" when it could not be hashed */
	/* The container it runs in, as a JSON object (owned by the collector's
	 * container table), or NULL: the job's own process. Inherited on fork. */
	const char *container;
	/* When it is a container's monitor (rootless Podman's conmon, or its fork): that
	 * container (owned by the collector), or NULL. Reset by exec. */
	struct shim *shim;
	bool by_shim; /* container is a shim's (no cgroup says so): inherited */
	bool exited;
};

/* Slots of the lookup cache in front of the map: most records come from a few busy processes,
 * and a map lookup hashes the pid's text with SipHash. */
#define PROCTAB_CACHE 256

struct proctab {
	struct strmap m;
	size_t exited;			   /* entries kept after exit, evicted past a bound */
	struct proc *cache[PROCTAB_CACHE]; /* by pid % PROCTAB_CACHE; dropped before a free */
};

void proctab_init(struct proctab *t);
struct proc *proctab_get(struct proctab *t, pid_t pid);
/* Creates or resets the entry for pid. */
struct proc *proctab_add(struct proctab *t, pid_t pid);
void proctab_fork(struct proctab *t, pid_t child, pid_t parent);
void proctab_set(struct proc *p, const char *exe, const char *argv_json);
void proctab_set_step(struct proc *p, const char *step);
void proctab_exit(struct proctab *t, pid_t pid);
void proctab_free(struct proctab *t);

#endif
