/*
 * The keeper: a small process, outside the job's cgroup, that holds the
 * fence (the cgroup links) for as long as any process of the job lives, so
 * that neither the end of `runwarden run` nor its death leaves leftovers
 * unfenced.
 *
 * - runwarden ends normally (keeper_release, then exit): the keeper holds the
 *   links until the scope is empty (cgroup.events: populated 0), removes the
 *   scope, and exits; leftovers stay fenced, and the evidence says they are
 *   not recorded after the end.
 * - runwarden dies without releasing (SIGKILL, crash): in enforce mode the
 *   keeper ends the job (cgroup.kill); in observe mode it holds the fence
 *   until the job is gone. The log then has no closing record.
 * - a cgroup link is detached while only the keeper holds the job (enforce):
 *   the job is ended.
 * runwarden watches the keeper in turn (job.keeper_pidfd): a keeper killed
 * during the run is a breach of the fence.
 */
#ifndef RW_KEEPER_H
#define RW_KEEPER_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "kernel/loader.h"
#include "job/scope.h"

struct keeper {
	pid_t pid;
	int pidfd; /* the keeper's pidfd (readable when it exits), or -1 */
	int ctl;   /* write end: "D" when runwarden ends normally */
	int ack;   /* read end: the keeper has let go of the slot, if it could */
};

/* Forks the keeper with the fence's link fds. Call while single-threaded.
 * 0, or -1 with the reason in err. */
int keeper_start(struct keeper *k, const struct loader *l, const struct scope *s, bool enforce,
		 char *err, size_t errlen);
/* runwarden is ending normally: hold the fence until the job is empty. A job
 * already empty hands its resident slot back before this returns (call after
 * the loader has closed its own copy of the slot's lock). */
void keeper_release(struct keeper *k);

#endif
