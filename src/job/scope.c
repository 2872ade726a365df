/* cgroup v2 scope for one run (see scope.h). */
#include "job/scope.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

const char *cgroup2_mount(void)
{
	static char path[256];
	struct mntent *m;
	FILE *f;

	if (path[0])
		return path;
	f = setmntent("/proc/self/mounts", "r");
	if (!f)
		return NULL;
	while ((m = getmntent(f))) {
		if (!strcmp(m->mnt_type, "cgroup2")) {
			snprintf(path, sizeof(path), "%s", m->mnt_dir);
			break;
		}
	}
	endmntent(f);
	return path[0] ? path : NULL;
}

int scope_create(struct scope *s, char *err, size_t errlen)
{
	const char *mnt = cgroup2_mount();
	struct timespec ts;

	s->fd = -1;
	if (!mnt) {
		snprintf(err, errlen,
			 "no cgroup v2 hierarchy is mounted (need cgroup2, unified or hybrid)");
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(s->path, sizeof(s->path), "%s/runwarden-%d-%lx", mnt, (int)getpid(),
		 (unsigned long)(ts.tv_nsec ^ ts.tv_sec));
	if (mkdir(s->path, 0755)) {
		snprintf(err, errlen, "cannot create cgroup %s: %s", s->path, strerror(errno));
		return -1;
	}
	s->fd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->fd < 0) {
		snprintf(err, errlen, "cannot open cgroup %s: %s", s->path, strerror(errno));
		rmdir(s->path);
		return -1;
	}
	return 0;
}

int scope_enter(const struct scope *s, pid_t pid)
{
	char file[600], num[32];

	snprintf(file, sizeof(file), "%s/cgroup.procs", s->path);
	snprintf(num, sizeof(num), "%d", pid ? (int)pid : (int)getpid());
	return write_file_str(file, num);
}

int scope_level(const struct scope *s)
{
	const char *mnt = cgroup2_mount();
	const char *p = s->path + (mnt ? strlen(mnt) : 0);
	int level = 0;

	for (; *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			level++;
	return level;
}

/* Walks the subtree: the job may create child cgroups (systemd-run, docker). */
static int collect(const char *dir, pid_t *pids, int n, int max)
{
	char file[1024], line[64];
	FILE *f;
	DIR *d;
	struct dirent *de;

	snprintf(file, sizeof(file), "%s/cgroup.procs", dir);
	f = fopen(file, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (n < max)
				pids[n] = atoi(line);
			n++;
		}
		fclose(f);
	}
	d = opendir(dir);
	if (!d)
		return n;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", dir, de->d_name);
		n = collect(file, pids, n, max);
	}
	closedir(d);
	return n;
}

int scope_pids(const struct scope *s, pid_t *pids, int max)
{
	int n = collect(s->path, pids, 0, max);

	return n < max ? n : max;
}

int scope_kill_all(const struct scope *s)
{
	char file[600];
	pid_t pids[1024];

	/* cgroup.kill (5.14+) kills the subtree atomically, forks included. */
	snprintf(file, sizeof(file), "%s/cgroup.kill", s->path);
	if (write_file_str(file, "1")) {
		/* Older kernels: repeat until no new process appears. */
		for (int round = 0; round < 50; round++) {
			int n = scope_pids(s, pids, 1024);

			if (n == 0)
				break;
			for (int i = 0; i < n; i++)
				kill(pids[i], SIGKILL);
			usleep(20000);
		}
	}
	for (int i = 0; i < 250; i++) { /* up to 5 s for exits to finish */
		if (scope_pids(s, pids, 1) == 0)
			return 0;
		usleep(20000);
	}
	return -1;
}

int cgroup_rmdir_tree(const char *dir)
{
	char sub[1024];
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d) {
		while ((de = readdir(d))) {
			if (de->d_type != DT_DIR || de->d_name[0] == '.')
				continue;
			snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
			cgroup_rmdir_tree(sub);
		}
		closedir(d);
	}
	return rmdir(dir);
}

int scope_destroy(struct scope *s)
{
	int rc = 0;

	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->path[0]) {
		/* Exited tasks leave the cgroup asynchronously: retry briefly. */
		for (int i = 0; i < 50; i++) {
			rc = cgroup_rmdir_tree(s->path);
			if (rc == 0 || errno == ENOENT) {
				rc = 0;
				break;
			}
			usleep(20000);
		}
		if (rc == 0)
			s->path[0] = 0;
	}
	return rc;
}
