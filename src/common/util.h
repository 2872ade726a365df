/* Small helpers with one job each: time stamps, addresses, files, errors. */
#ifndef RW_UTIL_H
#define RW_UTIL_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/strbuf.h"

/*
 * The one error channel: one line on stderr, "runwarden: why" (rw_err) or "runwarden CMD: why"
 * (rw_err_cmd, for a command's own voice: usage errors, verify's verdict), newlines in what it
 * quotes folded to spaces. Only out-of-memory and a broken digest print without it (they
 * cannot use the heap), just before they abort.
 */
void warnx_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define rw_err warnx_
void rw_err_cmd(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rw_verr(const char *cmd, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* CLOCK_REALTIME minus CLOCK_MONOTONIC, taken once, to place kernel
 * (monotonic) time stamps on the wall clock. */
int64_t mono_to_real_offset(void);
int64_t now_real_ns(void);
int64_t now_mono_ns(void);
/* RFC 3339 UTC with nanoseconds: 2026-11-25T13:00:00.123456789Z */
void fmt_rfc3339(struct strbuf *sb, int64_t real_ns);

/* family is AF_INET or AF_INET6; v4-mapped IPv6 stays in IPv6 text form
 * (::ffff:1.2.3.4), as the caller used it. */
void fmt_addr(struct strbuf *sb, int family, const void *addr);

/* Reads a whole (small, bounded) file. Returns bytes read or -1. */
ssize_t read_file_bounded(const char *path, char *buf, size_t cap);
/* The same as text: at most cap - 1 bytes (cap >= 1), always NUL-terminated (empty on error),
 * for the small files of /proc, /sys and /etc that are parsed as strings. */
ssize_t read_text_bounded(const char *path, char *buf, size_t cap);
int write_file_str(const char *path, const char *s);
/* mkdir -p: every missing component of path made with mode (existing ones left as they are).
 * -1 with errno on failure. */
int mkdir_p(const char *path, mode_t mode);
/* Like read_file_bounded, for files a user names (policies, block lists): anything but a
 * regular file (a directory, a FIFO that would block, a device) and read errors are refused
 * with a one-line reason in err ("PATH: not a regular file (a FIFO)"). */
ssize_t read_regular_file(const char *path, char *buf, size_t cap, char *err, size_t errlen);
/* The opening half of that, for every file runwarden reads that a user or a job can name or
 * plant (policies, keys, attestations, a run's logs): path relative to dirfd (AT_FDCWD, or a
 * directory, where a link in path's place is refused), display naming it in err (NULL: path).
 * Returns the descriptor, or -1 with err filled and errno kept (ENOENT: no such file; EINVAL:
 * not a regular file). */
int open_regular(int dirfd, const char *path, const char *display, char *err, size_t errlen);

/* Parses a non-negative decimal in [min, max]; false on junk or range. */
/* Closes every descriptor above 2 but those in keep: what a process that outlives its caller
 * inherited (a CI step's pipes, a lock, a BPF object) it must not hold. */
void close_fds_except(const int *keep, int n);
bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
