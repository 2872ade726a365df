/* Small helpers with one job each (see util.h). */
#include "common/util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void rw_verr(const char *cmd, const char *fmt, va_list ap)
{
	struct strbuf sb = STRBUF_INIT;

	sb_addstr(&sb, "runwarden");
	if (cmd)
		sb_addf(&sb, " %s", cmd);
	sb_addstr(&sb, ": ");
	sb_vaddf(&sb, fmt, ap);
	/* One line, whatever the message carries (names and reasons can come from the job). */
	for (size_t i = 0; i < sb.len; i++)
		if (sb.buf[i] == '\n' || sb.buf[i] == '\r')
			sb.buf[i] = ' ';
	sb_addch(&sb, '\n');
	/* One write: lines from concurrent writers (the agent's threads) do not interleave. */
	fputs(sb.buf, stderr);
	sb_release(&sb);
}

void rw_err_cmd(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rw_verr(cmd, fmt, ap);
	va_end(ap);
}

void warnx_(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rw_verr(NULL, fmt, ap);
	va_end(ap);
}

static int64_t ts_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t now_real_ns(void)
{
	return ts_ns(CLOCK_REALTIME);
}

int64_t now_mono_ns(void)
{
	return ts_ns(CLOCK_MONOTONIC);
}

int64_t mono_to_real_offset(void)
{
	static int64_t off;

	if (!off) {
		/* Bracket the realtime read to halve the error. */
		int64_t m1 = now_mono_ns(), r = now_real_ns(), m2 = now_mono_ns();

		off = r - (m1 + (m2 - m1) / 2);
	}
	return off;
}

void fmt_rfc3339(struct strbuf *sb, int64_t real_ns)
{
	/* Events come in bursts within the same second: format the date part
	 * once per second, not once per event, and the fraction without printf. */
	static __thread time_t cached_s = -1;
	static __thread char cached[32];
	time_t s = real_ns / 1000000000LL;
	long ns = real_ns % 1000000000LL;
	char frac[11] = ".000000000Z";

	if (s != cached_s) {
		struct tm tm;

		gmtime_r(&s, &tm);
		strftime(cached, sizeof(cached), "%Y-%m-%dT%H:%M:%S", &tm);
		cached_s = s;
	}
	if (ns < 0) { /* before 1970: never from a kernel clock; printed as it always was */
		sb_addf(sb, "%s.%09ldZ", cached, ns);
		return;
	}
	for (int i = 9; i > 0; i--, ns /= 10)
		frac[i] = (char)('0' + ns % 10);
	sb_addstr(sb, cached);
	sb_add(sb, frac, sizeof(frac));
}

void fmt_addr(struct strbuf *sb, int family, const void *addr)
{
	char buf[INET6_ADDRSTRLEN];

	if (family == AF_INET) { /* inet_ntop's text, without its sprintf (per connect) */
		const unsigned char *a = addr;

		for (int i = 0; i < 4; i++) {
			if (i)
				sb_addch(sb, '.');
			sb_addu(sb, a[i]);
		}
		return;
	}

	if (!inet_ntop(family, addr, buf, sizeof(buf)))
		snprintf(buf, sizeof(buf), "?");
	sb_addstr(sb, buf);
}

/* Reads fd until the end or cap bytes, and closes it. *err: the errno a read failed with
 * (what came before it is kept), else 0. */
static size_t read_close(int fd, char *buf, size_t cap, int *err)
{
	size_t got = 0;

	*err = 0;
	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			*err = errno;
		if (n <= 0)
			break;
		got += n;
	}
	close(fd);
	return got;
}

ssize_t read_file_bounded(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), e;

	if (fd < 0)
		return -1;
	/* A process that exits mid-read ends its /proc files early: what was read stands. */
	return read_close(fd, buf, cap, &e);
}

ssize_t read_text_bounded(const char *path, char *buf, size_t cap)
{
	ssize_t n = read_file_bounded(path, buf, cap - 1);

	buf[n > 0 ? n : 0] = 0;
	return n;
}

static const char *file_type_name(mode_t m)
{
	return S_ISDIR(m)    ? "a directory"
	       : S_ISFIFO(m) ? "a FIFO"
	       : S_ISSOCK(m) ? "a socket"
	       : S_ISCHR(m)  ? "a character device"
	       : S_ISBLK(m)  ? "a block device"
			     : "not a regular file";
}

int open_regular(int dirfd, const char *path, const char *display, char *err, size_t errlen)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer before we can refuse it. Inside
	 * a directory the caller holds, a link planted in the file's place is not followed. */
	int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
	int fd = openat(dirfd, path, dirfd == AT_FDCWD ? flags : flags | O_NOFOLLOW);
	struct stat st;
	int e;

	if (!display)
		display = path;
	if (fd < 0 || fstat(fd, &st) != 0) {
		e = errno;
		snprintf(err, errlen, "%s: cannot read: %s", display, strerror(e));
		if (fd >= 0)
			close(fd);
		errno = e;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file (%s)", display,
			 file_type_name(st.st_mode));
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

ssize_t read_regular_file(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
	int fd = open_regular(AT_FDCWD, path, NULL, err, errlen), e;
	size_t got;

	if (fd < 0)
		return -1;
	got = read_close(fd, buf, cap, &e);
	if (e) {
		snprintf(err, errlen, "%s: read error: %s", path, strerror(e));
		return -1;
	}
	return got;
}

int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];

	if (strlen(path) >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(tmp, path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(tmp, mode) && errno != EEXIST ? -1 : 0;
}

int write_file_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	size_t len = strlen(s);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, s, len);
	if (close(fd) || n != (ssize_t)len)
		return -1;
	return 0;
}

bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool fd_kept(int fd, const int *keep, int n)
{
	for (int i = 0; i < n; i++)
		if (keep[i] == fd)
			return true;
	return false;
}

void close_fds_except(const int *keep, int n)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int fds[1024], nf;

	if (!d) {
		/* no procfs: every descriptor the limit allows */
		for (int fd = 3; fd < 65536; fd++)
			if (!fd_kept(fd, keep, n))
				close(fd);
		return;
	}
	/* In rounds: closing while reading the directory would skip entries. */
	do {
		nf = 0;
		rewinddir(d);
		while ((de = readdir(d)) && nf < 1024) {
			int fd = atoi(de->d_name);

			if (de->d_name[0] != '.' && fd > 2 && fd != dirfd(d) &&
			    !fd_kept(fd, keep, n))
				fds[nf++] = fd;
		}
		for (int i = 0; i < nf; i++)
			close(fds[i]);
	} while (nf == 1024);
	closedir(d);
}
