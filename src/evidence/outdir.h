/*
 * The evidence directory, as runwarden owns it.
 *
 * --out is usually under a directory the job can write ($RUNNER_TEMP, the
 * workspace), so the job can rename entries there and plant symlinks, FIFOs
 * or its own directory at the same name. runwarden (root) therefore creates
 * the directory itself (mode 0700, an existing one is refused), keeps a
 * descriptor on it and creates every file through that descriptor with
 * O_CREAT|O_EXCL|O_NOFOLLOW: nothing it writes is ever reached by a name the
 * job could have redirected. Once the job is over the directory is opened for
 * reading (0755, files 0644), still owned by root: readers can read, nobody
 * but root can change it.
 */
#ifndef RW_EV_OUTDIR_H
#define RW_EV_OUTDIR_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct outdir {
	int fd;	    /* O_DIRECTORY descriptor, -1 when closed */
	char *path; /* the name it was created under, for messages only */
	dev_t dev;
	ino_t ino;
};

/*
 * Creates path (its parent must exist) as a fresh 0700 directory owned by
 * the caller and opens it. An existing entry of any kind is refused. Returns
 * 0, or -1 with a one-line reason in err (EV_ERRLEN).
 */
int outdir_create(struct outdir *d, const char *path, char *err);
/*
 * Opens a directory an earlier runwarden process created (the agent that
 * took over a dead one's job): it must be that very directory (dev, ino),
 * owned by us and still private.
 */
int outdir_reopen(struct outdir *d, const char *path, dev_t dev, ino_t ino, char *err);
/* New file in the directory, O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW; -1 with err. */
int outdir_create_file(struct outdir *d, const char *name, mode_t mode, char *err);
/* Writes a whole new file (exclusive create, fsync). */
int outdir_write_file(struct outdir *d, const char *name, const void *data, size_t len, char *err);
/* Opens one of our files for reading, never through a symlink. */
int outdir_open_read(struct outdir *d, const char *name, char *err);
/*
 * Whether path still names our directory. When not (the job renamed it and
 * may have put something else there), where it is now goes into where
 * (from /proc/self/fd), so the operator can be told.
 */
bool outdir_in_place(const struct outdir *d, char *where, size_t len);
/* After the job: readable by everyone (0755, files 0644), still root's. */
int outdir_publish(struct outdir *d, char *err);
void outdir_close(struct outdir *d);

/* Writes all of buf to fd, retrying short writes and EINTR. 0 or -1 (errno). */
int write_full(int fd, const void *buf, size_t len);

#endif
