/*
 * Containers a job starts through a container engine (docs/containers.md).
 * The engine, not the job, creates their cgroups and processes, so neither is
 * below the job's scope: runwarden watches the directories where engines put
 * container cgroups (inotify), attaches the job's cgroup hooks to each new one
 * and adds it to the kernel's scope before its first process runs, and names
 * the container (engine, id, image) in every line its processes cause.
 *
 * Which containers are the job's: every container cgroup created under the
 * watched directories while the job runs. So that two jobs never take each
 * other's containers, a job holds an exclusive claim on each watched directory
 * (a lock under /run/runwarden/containers): a second job that would follow the
 * same engine is refused before it starts.
 */
#ifndef RW_CONTAINERS_H
#define RW_CONTAINERS_H
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "events.h"

struct loader;
struct collector;

#define CONTAINER_WATCHES 32
#define CONTAINER_CLAIMS  "/run/runwarden/containers" /* one lock per engine directory */

struct containers {
	int ino_fd;
	const char *engine; /* the Docker API socket asked for identities, or NULL */
	const char *claim_dir;
	struct cwatch {
		int wd;
		int role; /* see containers.c: what appears under this directory */
		/* The kernel takes what is created in it as the job's from its birth
		 * (loader_follow_engine); else each container is added on sight. */
		bool fenced;
		bool made; /* runwarden made this engine directory (it was not there): removed at
			    * the end if the engine left it empty */
		char path[PATH_MAX];
	} w[CONTAINER_WATCHES];
	int nw;
	/* Containers followed now (slot 0 unused). */
	struct live {
		int scope_slot; /* its own kernel scope slot (not fenced from birth), or 0 */
		int wd;		/* the directory it was created in */
		char name[80];
		char path[PATH_MAX + 80];
		int events_wd;	    /* inotify on its cgroup.events: its first process */
		uint64_t netns_ino; /* its network namespace, once known (0: not yet) */
		int64_t look_until; /* looking at its processes for it until then (0: done) */
		int gate;	    /* the DNS gate's listener there (-1: none of its own) */
	} live[SCOPE_SLOTS];
	int home_netns; /* runwarden's own network namespace */
	uint64_t home_netns_ino;
	/* The DNS gate, asked to listen in a container's own network namespace too, so
	 * that host-name rules hold there (NULL: not asked). */
	int (*gate_add_netns)(void *ctx, int netns_fd, int home_fd, char *err, size_t errlen);
	void (*gate_drop_netns)(void *ctx, int handle);
	void *gate_ctx;
	int claim_fds[CONTAINER_WATCHES];
	int n_claims;
	struct strbuf list; /* summary.json "containers": JSON array members */
	uint64_t n_followed;
};

/* Watches dirs (NULL-terminated; a directory that does not exist yet is
 * watched for from its parent) and claims them for this job. engine: the
 * Docker API socket path for identities (NULL: the default). 0, or -1 with
 * the reason in err. */
int containers_start(struct containers *c, struct loader *ld, const char *const *dirs,
		     const char *engine, const char *claim_dir, char *err, size_t errlen);
/* Takes every container cgroup created since the last call into the job. */
void containers_follow(struct containers *c, struct loader *ld, struct collector *col);
void containers_free(struct containers *c);

/* An engine socket from a DOCKER_HOST value (unix:// only), or NULL. */
const char *containers_engine_socket(const char *docker_host);

#endif
