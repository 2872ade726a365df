/*
 * The job's scope: a cgroup v2 directory created for one run. Kernel programs
 * filter on it (tracepoints) or are attached to it (cgroup hooks); every
 * process the job starts is born inside it, double-forked daemons included.
 */
#ifndef RW_SCOPE_H
#define RW_SCOPE_H
#include <stdbool.h>
#include <sys/types.h>

#include "common/strbuf.h"

struct scope {
	char path[512]; /* /sys/fs/cgroup/.../runwarden-<pid>-<n> */
	int fd;		/* O_DIRECTORY fd, for BPF attach and the cgroup array */
};

/* Finds the cgroup v2 mount (unified or hybrid) and creates a fresh child. */
int scope_create(struct scope *s, char *err, size_t errlen);
/* Depth of the scope below the cgroup2 root (the root is 0). */
int scope_level(const struct scope *s);
/* Moves pid (0 = caller) into the scope. */
int scope_enter(const struct scope *s, pid_t pid);
/* Pids currently in the scope subtree; returns count (up to max). */
int scope_pids(const struct scope *s, pid_t *pids, int max);
/* SIGKILLs everything in the subtree and waits (bounded) until empty. */
int scope_kill_all(const struct scope *s);
/* Removes the cgroup (and empty child cgroups); fails if processes remain. */
int scope_destroy(struct scope *s);

/* Removes a cgroup directory and its child cgroups, deepest first (a cgroup
 * directory is removed with rmdir only); fails if processes remain. */
int cgroup_rmdir_tree(const char *dir);

/* The cgroup v2 mount point, or NULL. */
const char *cgroup2_mount(void);

#endif
