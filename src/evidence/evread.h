/*
 * Reading an event log (events.ndjson, format in evlog.h) one line at a time, for everything
 * that reads logs back: report, learn, policy check. The log may come from a hostile job's
 * run directory, so: a FIFO, device or directory in its place is refused without waiting, a
 * line longer than the caller's bound is an error (memory stays bounded), NUL bytes stay in
 * the line (never silently cut it short), and a last line without its newline (a writer
 * killed mid-line) is returned flagged, for the caller to report.
 *
 * The verifier does not use this: it hashes every byte as it streams (chain_feed).
 */
#ifndef RW_EVREAD_H
#define RW_EVREAD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/strbuf.h"
#include "evidence/codec.h"

struct evread {
	int fd;
	size_t max_line;
	struct strbuf name; /* the file as messages name it */
	struct strbuf in;   /* read, not yet returned: [off, in.len) */
	size_t off;
	bool eof;
	/* The current line, without its newline (NUL-terminated; may hold NUL bytes). */
	struct strbuf line;
	uint64_t lineno; /* of the current line, from 1 */
	/* false: the file ends inside the current line (no newline) */
	bool terminated;
	char err[EV_ERRLEN]; /* set when evread_next returns -1 */
};

/*
 * Opens path (a regular file; see ev_open_regular). -1 with err filled ("PATH: why") and
 * errno kept: ENOENT when there is no such file.
 */
int evread_open(struct evread *r, const char *path, size_t max_line, char *err);
/* Same, for name inside the directory dirfd (a symbolic link is refused); display names the
 * file in messages. */
int evread_openat(struct evread *r, int dirfd, const char *name, const char *display,
		  size_t max_line, char *err);
/*
 * The next line into r->line. 1: a line (it may be empty); 0: end of the file; -1: r->err
 * says why ("PATH:LINE: longer than N bytes", "PATH: read error: ..."), nothing more is read.
 */
int evread_next(struct evread *r);
void evread_close(struct evread *r);

#endif
