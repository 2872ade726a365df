/* The SQLite backend of the baseline store: one file, no server, several writers serialised
 * by SQLite's own locking (WAL, BEGIN IMMEDIATE, a busy timeout, retries in store.c). */
#include "baseline/db.h"
#include "common/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

/* How long one statement waits for another process's write lock before it is retried. */
#define BL_SQLITE_BUSY_MS 10000

static void set_err(struct bl_db *db, sqlite3 *h)
{
	snprintf(db->err, sizeof(db->err), "%s", h ? sqlite3_errmsg(h) : "out of memory");
}

static int classify(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return BL_RETRY;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return BL_CONFLICT;
		return BL_ERR;
	}
	return BL_ERR;
}

static int bind_all(sqlite3_stmt *st, int n, const char *const *params)
{
	for (int i = 1; i <= n; i++) {
		char name[16];
		int idx, rc;

		snprintf(name, sizeof(name), "$%d", i);
		idx = sqlite3_bind_parameter_index(st, name);
		if (!idx)
			continue; /* a parameter the statement does not use */
		rc = params[i - 1] ? sqlite3_bind_text(st, idx, params[i - 1], -1, SQLITE_STATIC)
				   : sqlite3_bind_null(st, idx);
		if (rc != SQLITE_OK)
			return rc;
	}
	return SQLITE_OK;
}

static int run_one(struct bl_db *db, sqlite3_stmt *st, bl_row_fn fn, void *ctx)
{
	int rc, ncol = sqlite3_column_count(st);
	const char **vals = ncol ? xcalloc(ncol, sizeof(*vals)) : NULL;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int c = 0; c < ncol; c++)
			vals[c] = (const char *)sqlite3_column_text(st, c);
		if (fn && fn(ctx, ncol, vals))
			break;
	}
	free(vals);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return BL_OK;
	set_err(db, db->h);
	return classify(sqlite3_extended_errcode(db->h));
}

static int sq_exec(struct bl_db *db, const char *sql, int n, const char *const *params,
		   bl_row_fn fn, void *ctx)
{
	const char *tail = sql;

	/* Several statements run in turn (schema scripts); parameters go to each. */
	while (tail && *tail) {
		sqlite3_stmt *st = NULL;
		int rc = sqlite3_prepare_v2(db->h, tail, -1, &st, &tail);

		if (rc != SQLITE_OK) {
			set_err(db, db->h);
			return classify(sqlite3_extended_errcode(db->h));
		}
		if (!st)
			break; /* only white space or comments were left */
		rc = bind_all(st, n, params);
		if (rc != SQLITE_OK) {
			set_err(db, db->h);
			sqlite3_finalize(st);
			return BL_ERR;
		}
		rc = run_one(db, st, fn, ctx);
		sqlite3_finalize(st);
		if (rc)
			return rc;
	}
	return BL_OK;
}

static void sq_close(struct bl_db *db)
{
	sqlite3_close_v2(db->h);
	free(db);
}

static const struct bl_db_ops sqlite_ops = {.exec = sq_exec, .close = sq_close};

/* Creates the file private to its owner before SQLite opens it (SQLite would use 0644), and
 * refuses anything but a regular file: a FIFO would block, a directory or device is a typo. */
static int precreate(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	struct stat st;

	if (fd < 0) {
		snprintf(err, errlen, "baseline %.200s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "baseline %.200s: not a regular file", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

struct bl_db *bl_sqlite_open(const char *path, char *err, size_t errlen)
{
	struct bl_db *db;
	sqlite3 *h = NULL;
	int rc;

	if (precreate(path, err, errlen))
		return NULL;
	rc = sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "baseline %.200s: %s", path,
			 h ? sqlite3_errmsg(h) : "cannot open");
		sqlite3_close_v2(h);
		return NULL;
	}
	sqlite3_busy_timeout(h, BL_SQLITE_BUSY_MS);
	sqlite3_extended_result_codes(h, 1);
	db = xcalloc(1, sizeof(*db));
	db->backend = BL_SQLITE;
	db->ops = &sqlite_ops;
	db->h = h;
	snprintf(db->where, sizeof(db->where), "%s", path);
	/* WAL lets readers (show, export) run while a job records; cascades need the pragma on
	 * every connection. A file that is not a database fails here, on its first read. */
	if (bl_db_run(db, "PRAGMA foreign_keys=ON") || bl_db_run(db, "PRAGMA journal_mode=WAL") ||
	    bl_db_run(db, "SELECT count(*) FROM sqlite_master")) {
		snprintf(err, errlen, "baseline %.200s: %s", path, db->err);
		sq_close(db);
		return NULL;
	}
	return db;
}
