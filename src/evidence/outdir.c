/* The evidence directory runwarden owns (see outdir.h). */
#include "evidence/outdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evidence/codec.h"
#include "common/xalloc.h"

int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* Nothing but "." and "..": a directory we just made, not one the job prepared. */
static bool dir_empty(int fd)
{
	int dup_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	struct dirent *e;
	bool empty = true;

	if (!dir) {
		if (dup_fd >= 0)
			close(dup_fd);
		return false;
	}
	while (empty && (e = readdir(dir)))
		empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
	closedir(dir);
	return empty;
}

/* Ours and private: what a fresh mkdir(0700) by this process gives. */
static int check_ours(int fd, const char *path, struct stat *st, char *err)
{
	if (fstat(fd, st)) {
		ev_errf(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st->st_mode) || st->st_uid != geteuid() || (st->st_mode & 077)) {
		ev_errf(err,
			"%s was replaced while runwarden created it (owner uid %u, mode %04o): "
			"refusing to write evidence there",
			path, (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777));
		return -1;
	}
	return 0;
}

static void init(struct outdir *d)
{
	memset(d, 0, sizeof(*d));
	d->fd = -1;
}

int outdir_create(struct outdir *d, const char *path, char *err)
{
	struct stat st;

	init(d);
	if (mkdir(path, 0700)) {
		if (errno == EEXIST)
			ev_errf(err,
				"--out %s already exists: runwarden writes evidence only into a "
				"directory it creates itself (remove it or choose another path)",
				path);
		else
			ev_errf(err, "--out %s: %s", path, strerror(errno));
		return -1;
	}
	/* The parent may be the job's: between mkdir and open it could swap in
	 * its own directory or a symlink. Refuse anything but what we made. */
	d->fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d->fd < 0) {
		ev_errf(err, "--out %s: %s", path, strerror(errno));
		return -1;
	}
	if (check_ours(d->fd, path, &st, err))
		goto fail;
	if (!dir_empty(d->fd)) {
		ev_errf(err, "--out %s was replaced while runwarden created it (not empty)", path);
		goto fail;
	}
	if (fchmod(d->fd, 0700)) {
		ev_errf(err, "--out %s: chmod: %s", path, strerror(errno));
		goto fail;
	}
	d->dev = st.st_dev;
	d->ino = st.st_ino;
	d->path = xstrdup(path);
	return 0;
fail:
	outdir_close(d);
	return -1;
}

int outdir_reopen(struct outdir *d, const char *path, dev_t dev, ino_t ino, char *err)
{
	struct stat st;

	init(d);
	d->fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d->fd < 0) {
		ev_errf(err, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (check_ours(d->fd, path, &st, err))
		goto fail;
	if (st.st_dev != dev || st.st_ino != ino) {
		ev_errf(err,
			"%s is not the directory the job's evidence went to (it was moved or "
			"replaced): refusing to write there",
			path);
		goto fail;
	}
	d->dev = dev;
	d->ino = ino;
	d->path = xstrdup(path);
	return 0;
fail:
	outdir_close(d);
	return -1;
}

int outdir_create_file(struct outdir *d, const char *name, mode_t mode, char *err)
{
	int fd = openat(d->fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

	if (fd < 0) {
		ev_errf(err, "%s/%s: %s", d->path, name, strerror(errno));
		return -1;
	}
	/* The umask may have narrowed it; readers need exactly this mode. */
	if (fchmod(fd, mode)) {
		ev_errf(err, "%s/%s: chmod: %s", d->path, name, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int outdir_write_file(struct outdir *d, const char *name, const void *data, size_t len, char *err)
{
	int fd = outdir_create_file(d, name, 0644, err);

	if (fd < 0)
		return -1;
	if (write_full(fd, data, len) || fsync(fd)) {
		ev_errf(err, "%s/%s: write: %s", d->path, name, strerror(errno));
		close(fd);
		unlinkat(d->fd, name, 0); /* a short file would pass for the real one */
		return -1;
	}
	if (close(fd)) {
		ev_errf(err, "%s/%s: %s", d->path, name, strerror(errno));
		return -1;
	}
	return 0;
}

int outdir_open_read(struct outdir *d, const char *name, char *err)
{
	int fd = openat(d->fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;

	if (fd < 0) {
		ev_errf(err, "%s/%s: %s", d->path, name, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		ev_errf(err, "%s/%s: not a regular file", d->path, name);
		close(fd);
		return -1;
	}
	return fd;
}

bool outdir_in_place(const struct outdir *d, char *where, size_t len)
{
	char link[64];
	struct stat st;
	ssize_t n;

	if (stat(d->path, &st) == 0 && st.st_dev == d->dev && st.st_ino == d->ino)
		return true;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", d->fd);
	n = readlink(link, where, len - 1);
	if (n < 0)
		n = snprintf(where, len, "(unknown)");
	where[n] = 0;
	return false;
}

int outdir_publish(struct outdir *d, char *err)
{
	if (fchmod(d->fd, 0755)) {
		ev_errf(err, "%s: chmod: %s", d->path, strerror(errno));
		return -1;
	}
	return 0;
}

void outdir_close(struct outdir *d)
{
	if (d->fd >= 0)
		close(d->fd);
	free(d->path);
	init(d);
}
