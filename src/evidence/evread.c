/* Bounded line reader for event logs (see evread.h). */
#include "evidence/evread.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

/* Bytes asked of read(2) at a time. */
#define EVREAD_CHUNK (64u << 10)

static void start(struct evread *r, int fd, const char *name, size_t max_line)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->max_line = max_line;
	sb_addstr(&r->name, name);
}

int evread_open(struct evread *r, const char *path, size_t max_line, char *err)
{
	return evread_openat(r, AT_FDCWD, path, path, max_line, err);
}

int evread_openat(struct evread *r, int dirfd, const char *name, const char *display,
		  size_t max_line, char *err)
{
	int fd = open_regular(dirfd, name, display, err, EV_ERRLEN);

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (fd < 0)
		return -1;
	start(r, fd, display, max_line);
	return 0;
}

/* Appends the next chunk of the file to r->in; 0 at the end, -1 on a read error. */
static int fill(struct evread *r)
{
	ssize_t n;

	/* Keep what is buffered from growing: drop what was returned already. */
	if (r->off) {
		memmove(r->in.buf, r->in.buf + r->off, r->in.len - r->off);
		r->in.len -= r->off;
		r->off = 0;
	}
	sb_grow(&r->in, EVREAD_CHUNK);
	do
		n = read(r->fd, r->in.buf + r->in.len, EVREAD_CHUNK);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		ev_errf(r->err, "%s: read error: %s", r->name.buf, strerror(errno));
		return -1;
	}
	r->in.len += n;
	r->in.buf[r->in.len] = 0;
	if (n == 0)
		r->eof = true;
	return n > 0;
}

int evread_next(struct evread *r)
{
	size_t scanned = 0;

	if (r->fd < 0)
		return r->err[0] ? -1 : 0;
	for (;;) {
		const char *p = r->in.buf + r->off;
		size_t avail = r->in.len - r->off;
		const char *nl =
		    avail > scanned ? memchr(p + scanned, '\n', avail - scanned) : NULL;
		size_t len = nl ? (size_t)(nl - p) : avail;
		int got;

		if (len > r->max_line) {
			ev_errf(r->err, "%s:%llu: line longer than %zu bytes", r->name.buf,
				(unsigned long long)r->lineno + 1, r->max_line);
			break;
		}
		if (nl || (r->eof && avail)) {
			sb_reset(&r->line);
			sb_add(&r->line, p, len);
			r->terminated = nl != NULL;
			r->off += nl ? len + 1 : len;
			r->lineno++;
			return 1;
		}
		if (r->eof)
			return 0;
		scanned = avail;
		got = fill(r);
		if (got < 0)
			break;
	}
	close(r->fd);
	r->fd = -1;
	return -1;
}

void evread_close(struct evread *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	sb_release(&r->name);
	sb_release(&r->in);
	sb_release(&r->line);
}
