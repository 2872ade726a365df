/* The resident kernel side's slots: locks, metadata, pins, idle unloading (see pool.h). */
#include "kernel/pool.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "common/xalloc.h"

extern char **environ;

#define BPF_FS_MAGIC_ 0xcafe4a11
#define HOLD_TICK_S   5

static void slot_path(char *buf, size_t len, int id, const char *ext)
{
	snprintf(buf, len, POOL_RUN_DIR "/%d.%s", id, ext);
}

/* A new file under POOL_RUN_DIR (root's alone) holding s. */
static int create_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	size_t n = strlen(s);
	int rc;

	if (fd < 0)
		return -1;
	rc = write(fd, s, n) == (ssize_t)n ? 0 : -1;
	if (close(fd))
		rc = -1;
	return rc;
}

int pool_prepare(char *err, size_t errlen)
{
	struct statfs fs;

	if (statfs("/sys/fs/bpf", &fs) || fs.f_type != BPF_FS_MAGIC_) {
		/* A fresh machine may have no bpffs: mount one, as bpftool does. */
		if (mkdir("/sys/fs/bpf", 0700) && errno != EEXIST) {
			snprintf(err, errlen, "no bpffs at /sys/fs/bpf: %s", strerror(errno));
			return -1;
		}
		if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700")) {
			snprintf(err, errlen, "cannot mount bpffs at /sys/fs/bpf: %s",
				 strerror(errno));
			return -1;
		}
	}
	if (mkdir_p(POOL_BPF_DIR, 0700) || mkdir_p(POOL_RUN_DIR, 0700)) {
		snprintf(err, errlen, "cannot create %s or %s: %s", POOL_BPF_DIR, POOL_RUN_DIR,
			 strerror(errno));
		return -1;
	}
	/* A job cannot reach the pins or plant a lock file: root's alone. */
	chmod("/run/runwarden", 0700);
	chmod(POOL_RUN_DIR, 0700);
	chmod("/sys/fs/bpf/runwarden", 0700);
	chmod(POOL_BPF_DIR, 0700);
	return 0;
}

/* A fence pinned elsewhere still uses the slot's maps and programs. */
static bool fence_pins_live(int id)
{
	char path[128], dir[512];
	struct stat st;
	ssize_t n;

	slot_path(path, sizeof(path), id, "pins");
	n = read_text_bounded(path, dir, sizeof(dir));
	if (n <= 0)
		return false;
	dir[strcspn(dir, "\n")] = 0;
	if (dir[0] == '/' && stat(dir, &st) == 0)
		return true;
	unlink(path); /* that fence is gone */
	return false;
}

int pool_lock(int id, struct pool_slot *s, char *err, size_t errlen)
{
	char path[128];
	int fd;

	s->id = -1;
	s->lock_fd = -1;
	slot_path(path, sizeof(path), id, "lock");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		close(fd);
		if (errno == EWOULDBLOCK)
			return 1;
		snprintf(err, errlen, "%s: flock: %s", path, strerror(errno));
		return -1;
	}
	if (fence_pins_live(id)) {
		close(fd);
		return 1;
	}
	s->id = id;
	s->lock_fd = fd;
	snprintf(s->bpf_dir, sizeof(s->bpf_dir), POOL_BPF_DIR "/%d", id);
	return 0;
}

void pool_unlock(struct pool_slot *s)
{
	if (s->lock_fd >= 0) {
		futimens(s->lock_fd, NULL); /* last use: the holder's idle clock */
		close(s->lock_fd);
	}
	s->lock_fd = -1;
	s->id = -1;
}

bool pool_loaded(const struct pool_slot *s)
{
	char path[160];
	struct stat st;

	snprintf(path, sizeof(path), "%s/map_events", s->bpf_dir);
	return stat(path, &st) == 0;
}

char *pool_read_meta(const struct pool_slot *s)
{
	char path[128], *buf = xmalloc(64 * 1024);
	ssize_t n;

	slot_path(path, sizeof(path), s->id, "json");
	/* Text for json_loads: it must end in a NUL where the file ends. */
	n = read_text_bounded(path, buf, 64 * 1024);
	if (n <= 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

int pool_write_meta(const struct pool_slot *s, const char *json, char *err, size_t errlen)
{
	char path[128], tmp[140];

	slot_path(path, sizeof(path), s->id, "json");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	if (create_file(tmp, json) || rename(tmp, path)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int pool_set_fence_pins(const struct pool_slot *s, const char *dir)
{
	char path[128];

	slot_path(path, sizeof(path), s->id, "pins");
	if (!dir)
		return unlink(path) && errno != ENOENT ? -1 : 0;
	return create_file(path, dir);
}

int pool_pin_fd(int fd, const char *dir, const char *name, char *err, size_t errlen)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (bpf_obj_pin(fd, path)) {
		snprintf(err, errlen, "cannot pin %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int pool_get_fd(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return bpf_obj_get(path);
}

void pool_unpin(struct pool_slot *s)
{
	char path[600], meta[128];
	struct dirent *de;
	DIR *d = opendir(s->bpf_dir);

	/* Metadata first: a slot without it is never lent out. */
	slot_path(meta, sizeof(meta), s->id, "json");
	unlink(meta);
	if (d) {
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", s->bpf_dir, de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(s->bpf_dir);
}

/* Detaches from the caller: a double-forked child with no stdio of ours. */
static bool background_child(void)
{
	pid_t pid;
	int null;

	fflush(NULL);
	pid = fork();
	if (pid > 0)
		waitpid(pid, NULL, 0); /* the middle child exits at once */
	if (pid != 0)
		return false;
	if (fork() != 0)
		_exit(0);
	setsid();
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		/* CI waits for EOF on a step's pipes: hold none of them. */
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	return true;
}

void pool_evict(struct pool_slot *s)
{
	char trash[sizeof(s->bpf_dir)], meta[128];
	struct pool_slot t;

	slot_path(meta, sizeof(meta), s->id, "json");
	unlink(meta);
	snprintf(trash, sizeof(trash), POOL_BPF_DIR "/.evicted-%d-%d", s->id, (int)getpid());
	if (rename(s->bpf_dir, trash)) {
		pool_unpin(s); /* bpffs without rename: pay for it here */
		return;
	}
	if (!background_child())
		return;
	t.id = s->id;
	t.lock_fd = -1;
	snprintf(t.bpf_dir, sizeof(t.bpf_dir), "%s", trash);
	for (int i = 3; i < 1024; i++)
		close(i);
	pool_unpin(&t);
	_exit(0);
}

/* The slot's idle time in seconds (since its lock file was last touched). */
double pool_idle_seconds(int id)
{
	char path[128];
	struct stat st;
	struct timespec now;

	slot_path(path, sizeof(path), id, "lock");
	if (stat(path, &st))
		return 1e9;
	clock_gettime(CLOCK_REALTIME, &now);
	return (double)(now.tv_sec - st.st_mtim.tv_sec) +
	       (double)(now.tv_nsec - st.st_mtim.tv_nsec) / 1e9;
}

/* Unloads slot id if it is loaded, unused and (idle_s >= 0) idle that long.
 * Returns 1 when it stays loaded (busy or not idle long enough), else 0. */
static int unload_slot(int id, double idle_s, bool quiet)
{
	struct pool_slot s;
	char err[256];
	int rc = pool_lock(id, &s, err, sizeof(err));

	if (rc) {
		snprintf(s.bpf_dir, sizeof(s.bpf_dir), POOL_BPF_DIR "/%d", id);
		if (rc == 1 && pool_loaded(&s)) {
			if (!quiet)
				printf("slot %d: in use, left loaded\n", id);
			return 1;
		}
		return 0;
	}
	if (!pool_loaded(&s)) {
		pool_unpin(&s); /* a load that died half-way */
		close(s.lock_fd);
		return 0;
	}
	if (idle_s >= 0 && pool_idle_seconds(id) < idle_s) {
		close(s.lock_fd); /* keep its idle clock as it is */
		return 1;
	}
	pool_unpin(&s);
	if (!quiet)
		printf("slot %d: unloaded\n", id);
	close(s.lock_fd);
	return 0;
}

int pool_unload(bool quiet)
{
	int busy = 0;
	char err[256];

	if (pool_prepare(err, sizeof(err))) {
		rw_err("%s", err);
		return 1;
	}
	for (int id = 0; id < POOL_SLOTS; id++)
		busy |= unload_slot(id, -1, quiet);
	return busy;
}

static volatile sig_atomic_t hold_stop;

static void on_term(int sig)
{
	(void)sig;
	hold_stop = 1;
}

int pool_hold(unsigned idle_s)
{
	char path[128], err[256];
	int fd;

	/* It lives for the idle time: whatever the job that started it inherited from its own
	 * caller (a CI step's pipe on fd 3, a lock) must not stay open that long. */
	close_fds_except(NULL, 0);
	if (pool_prepare(err, sizeof(err))) {
		rw_err("%s", err);
		return 1;
	}
	snprintf(path, sizeof(path), POOL_RUN_DIR "/holder.lock");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB))
		return 0; /* another holder already watches the slots */
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	signal(SIGHUP, SIG_IGN);
	for (;;) {
		int loaded = 0;

		for (int id = 0; id < POOL_SLOTS; id++)
			loaded += unload_slot(id, hold_stop ? 0 : idle_s, true);
		if (!loaded)
			break;
		if (hold_stop) {
			/* Asked to stop with slots in use: leave them loaded (a later
			 * run starts a new holder). */
			break;
		}
		sleep(HOLD_TICK_S);
	}
	close(fd);
	return 0;
}

void pool_spawn_holder(unsigned idle_s)
{
	char path[128], idle[16];
	int fd;

	snprintf(path, sizeof(path), POOL_RUN_DIR "/holder.lock");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		close(fd); /* one is running */
		return;
	}
	close(fd);
	snprintf(idle, sizeof(idle), "%u", idle_s);
	/* posix_spawn (vfork-like), not fork: this process maps a loaded BPF
	 * object and a ring buffer, and copying its page tables is time the
	 * job would wait for. Its own session; stdio on /dev/null (CI waits
	 * for EOF on a step's pipes); it closes what else it inherited. */
	char *argv[] = {"runwarden", "kernel", "hold", "--idle", idle, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	pid_t pid;

	if (posix_spawn_file_actions_init(&fa))
		return;
	if (posix_spawnattr_init(&at)) {
		posix_spawn_file_actions_destroy(&fa);
		return;
	}
	for (int i = 0; i < 3; i++)
		posix_spawn_file_actions_addopen(&fa, i, "/dev/null", O_RDWR, 0);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
	int rc = posix_spawn(&pid, "/proc/self/exe", &fa, &at, argv, environ);
	if (rc)
		rw_err("cannot start the resident kernel side's holder (%s): loaded copies stay "
		       "until `runwarden kernel unload`",
		       strerror(rc));
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
}
