/* The process that holds the fence past runwarden (see keeper.h). */
#include "kernel/keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "job/scope.h"
#include "common/util.h"

#define KEEP_MAX    (MAX_HOOKS + 4)
#define TICK_MS	    200
#define KILL_TRIES  25 /* cgroup.kill repeated while processes remain */
#define ACK_WAIT_MS 500

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static bool scope_populated(const char *scope)
{
	char path[600], buf[256];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/cgroup.events", scope);
	n = read_text_bounded(path, buf, sizeof(buf));
	if (n <= 0)
		return false; /* gone */
	return !strstr(buf, "populated 0");
}

static void kill_scope(const char *scope)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/cgroup.kill", scope);
	write_file_str(path, "1");
}

static bool links_detached(const int *links, int n)
{
	for (int i = 0; i < n; i++)
		if (link_fd_detached(links[i]))
			return true;
	return false;
}

static void __attribute__((noreturn))
keeper_main(int parent_pidfd, int ctl, int ack, int slot_lock, const int *links, int nlinks,
	    const char *scope, bool enforce)
{
	bool released = false, parent_gone = false, killing = false;
	int kills = 0;

	for (;;) {
		struct pollfd p[2] = {{.fd = parent_pidfd, .events = POLLIN},
				      {.fd = ctl, .events = POLLIN}};
		char c;

		if (poll(p, 2, TICK_MS) < 0 && errno != EINTR)
			_exit(1);
		if (ctl >= 0 && (p[1].revents & (POLLIN | POLLHUP))) {
			ssize_t n = read(ctl, &c, 1);

			if (n == 1 && c == 'D') {
				released = true;
				/* Nothing of the job is left to fence: the slot is free for
				 * the next step now, not once runwarden has exited and this
				 * loop has noticed (a follow-on job would load a new copy). */
				if (slot_lock >= 0 && !scope_populated(scope)) {
					close(slot_lock);
					slot_lock = -1;
				}
				if (ack >= 0 && write(ack, "A", 1) < 0) {
					/* runwarden stopped waiting: nothing to tell */
				}
				if (ack >= 0)
					close(ack);
				ack = -1;
			} else if (n == 0) {
				close(ctl);
				ctl = -1; /* every writer gone: nothing more to hear */
			}
		}
		if (!parent_gone && (p[0].revents & POLLIN)) {
			/* A release written just before the exit is in the pipe. */
			while (ctl >= 0 && read(ctl, &c, 1) == 1)
				released |= c == 'D';
			parent_gone = true;
			parent_pidfd = -1;
			if (!released && enforce)
				killing = true; /* nobody records the job any more: end it */
		}
		if (parent_gone && enforce && !killing && links_detached(links, nlinks))
			killing = true; /* the fence is open and nobody is watching */
		if (killing && kills < KILL_TRIES && scope_populated(scope)) {
			kill_scope(scope);
			kills++;
		}
		if (parent_gone && !scope_populated(scope)) {
			cgroup_rmdir_tree(scope);
			_exit(0);
		}
	}
}

int keeper_start(struct keeper *k, const struct loader *l, const struct scope *s, bool enforce,
		 char *err, size_t errlen)
{
	int links[MAX_HOOKS], keep[KEEP_MAX], nlinks, nkeep = 0, ctl[2], ack[2], self;
	char scope[sizeof(s->path)];
	pid_t pid;

	k->pid = -1;
	k->pidfd = k->ctl = k->ack = -1;
	nlinks = loader_cgroup_link_fds(l, links, MAX_HOOKS);
	snprintf(scope, sizeof(scope), "%s", s->path);
	self = pidfd_open_(getpid());
	if (self < 0) {
		snprintf(err, errlen, "fence keeper: pidfd_open: %s", strerror(errno));
		return -1;
	}
	if (pipe2(ctl, O_CLOEXEC)) {
		snprintf(err, errlen, "fence keeper: pipe: %s", strerror(errno));
		close(self);
		return -1;
	}
	if (pipe2(ack, O_CLOEXEC)) {
		snprintf(err, errlen, "fence keeper: pipe: %s", strerror(errno));
		close(self);
		close(ctl[0]);
		close(ctl[1]);
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fence keeper: fork: %s", strerror(errno));
		close(self);
		close(ctl[0]);
		close(ctl[1]);
		close(ack[0]);
		close(ack[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		close(ctl[1]);
		close(ack[0]);
		/* Not in runwarden's process group or session: a terminal's ^C
		 * or a CI runner's group kill must not take the fence with it. */
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGCHLD, SIG_DFL);
		signal(SIGPIPE, SIG_IGN);
		prctl(PR_SET_NAME, "runwarden-keep", 0, 0, 0);
		if (null >= 0) {
			/* CI waits for EOF on the step's pipes: hold none of them. */
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		for (int i = 0; i < nlinks; i++)
			keep[nkeep++] = links[i];
		keep[nkeep++] = self;
		keep[nkeep++] = ctl[0];
		keep[nkeep++] = ack[1];
		/* A resident copy's slot stays ours while its policy fences leftovers. */
		if (loader_lock_fd(l) >= 0)
			keep[nkeep++] = loader_lock_fd(l);
		/* the ring buffer, the policy maps, the log, the gate's socket would only pin
		 * memory */
		close_fds_except(keep, nkeep);
		keeper_main(self, ctl[0], ack[1], loader_lock_fd(l), links, nlinks, scope, enforce);
	}
	close(self);
	close(ctl[0]);
	close(ack[1]);
	k->pid = pid;
	k->ctl = ctl[1];
	k->ack = ack[0];
	k->pidfd = pidfd_open_(pid);
	if (k->pidfd < 0) {
		snprintf(err, errlen, "fence keeper: pidfd_open: %s", strerror(errno));
		kill(pid, SIGKILL);
		return -1;
	}
	return 0;
}

void keeper_release(struct keeper *k)
{
	if (k->ctl >= 0) {
		if (write(k->ctl, "D", 1) != 1)
			rw_err("cannot release the fence keeper: %s", strerror(errno));
		close(k->ctl);
		k->ctl = -1;
	}
	if (k->ack >= 0) {
		/* Bounded: a keeper that does not answer only costs the next job a
		 * load of its own, never this job its exit. */
		struct pollfd p = {.fd = k->ack, .events = POLLIN};
		char c;

		if (poll(&p, 1, ACK_WAIT_MS) == 1 && read(k->ack, &c, 1) < 0) {
			/* gone: the slot is free either way */
		}
		close(k->ack);
		k->ack = -1;
	}
	if (k->pidfd >= 0)
		close(k->pidfd);
	k->pidfd = -1;
}
