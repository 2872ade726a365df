/*
 * Containers that have no cgroup of their own: rootless Podman on a host without a delegated
 * cgroup v2 subtree (this project's hybrid machines) leaves a container's processes in the
 * cgroup of whoever started it, the job's own scope. They are fenced and recorded as the
 * job's; what names them is the engine's monitor, podman's conmon, whose command line says
 * which container it watches (-c/--cid, -n/--name) and with which runtime (-r/--runtime).
 * The container's first process is exec'd by the runtime's init as a child of conmon (its
 * subreaper); its descendants inherit the name on fork.
 *
 * The name comes from the job's own process's command line: attribution, not a boundary. A
 * job can start a fake "conmon"; its processes stay the job's and fenced either way.
 */
#ifndef RW_SHIM_H
#define RW_SHIM_H
#include <stdbool.h>
#include <stddef.h>

#include "common/strbuf.h"

struct shim {
	char id[65];	   /* hex */
	char *identity;	   /* the "container" object, JSON */
	char runtime[256]; /* the runtime's path: its execs under conmon are not the container */
	bool listed;	   /* in the summary's containers (a process was in it) */
};

/* True when exe is podman's monitor. */
bool shim_is_conmon(const char *exe);
/* Parses conmon's argv (NUL-separated, len bytes, as the exec record carries it) into s:
 * false when it names no valid container id. */
bool shim_parse_conmon(const char *argv, size_t len, struct shim *s);
/* True when exe (a path, or the name of an anonymous file such as runc's sealed memfd copy
 * of itself) is the runtime s names. */
bool shim_is_runtime(const struct shim *s, const char *exe);
void shim_free(struct shim *s);

#endif
