/* Shared helpers for the evidence unit tests: temp dirs and whole-file I/O. */
#ifndef TEST_EVIDENCE_UTIL_H
#define TEST_EVIDENCE_UTIL_H
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/strbuf.h"
#include "evidence/evlog.h"

/* A log writer on a fresh file at path (runwarden itself opens through its
 * directory descriptor; the format is the same). */
static inline int tu_evlog_open(struct evlog *l, const char *path)
{
	return evlog_open_fd(l, open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
}

static inline char *tu_path(const char *dir, const char *name)
{
	struct strbuf sb = STRBUF_INIT;

	sb_addf(&sb, "%s/%s", dir, name);
	return sb_detach(&sb);
}

static inline char *tu_tmpdir(void)
{
	char tmpl[] = "/tmp/rw-ev-test-XXXXXX";
	char *d = mkdtemp(tmpl);

	if (!d) {
		perror("mkdtemp");
		abort();
	}
	return strdup(d);
}

static int tu_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void tu_rmrf(const char *dir)
{
	/* Only ever our own mkdtemp directory under /tmp. */
	if (strncmp(dir, "/tmp/rw-ev-test-", 16))
		abort();
	if (nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS))
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

static inline void tu_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		perror(path);
		abort();
	}
}

static inline void tu_write_str(const char *path, const char *s)
{
	tu_write(path, s, strlen(s));
}

static inline char *tu_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct strbuf sb = STRBUF_INIT;
	char buf[65536];
	size_t n;

	if (!f) {
		perror(path);
		abort();
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_add(&sb, buf, n);
	fclose(f);
	if (len)
		*len = sb.len;
	return sb_detach(&sb);
}

#endif
