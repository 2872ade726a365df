/*
 * The baseline's SQL connection, one interface over two backends: SQLite (an embedded file,
 * the default) and PostgreSQL (libpq, for a fleet of runners sharing one store). The store
 * (store.c) writes its SQL once, in the subset both understand: parameters are $1..$N and
 * travel as text (CAST where a number is needed), ids come back through RETURNING, upserts
 * use ON CONFLICT.
 */
#ifndef RW_BASELINE_DB_H
#define RW_BASELINE_DB_H
#include <stdbool.h>
#include <stddef.h>

enum bl_backend { BL_SQLITE, BL_POSTGRES };

/* Return codes of bl_db_exec and the transaction calls. */
enum {
	BL_OK = 0,
	BL_ERR = -1,	  /* see db->err */
	BL_RETRY = -2,	  /* serialization failure, deadlock or busy: run the transaction again */
	BL_CONFLICT = -3, /* a unique constraint refused the row */
};

#define BL_ERRLEN 512

/* One result row: ncol values, NULL for SQL NULL. Return non-zero to stop early. */
typedef int (*bl_row_fn)(void *ctx, int ncol, const char *const *vals);

struct bl_db;
struct bl_db_ops {
	int (*exec)(struct bl_db *db, const char *sql, int n, const char *const *params,
		    bl_row_fn fn, void *ctx);
	void (*close)(struct bl_db *db);
};

struct bl_db {
	enum bl_backend backend;
	const struct bl_db_ops *ops;
	void *h;
	char where[256]; /* the store for messages: a path, or a URI without its password */
	char err[BL_ERRLEN];
};

/*
 * Opens the store spec names: a postgresql:// (or postgres://) URI, else a SQLite file path
 * (created 0600 when missing, never through a symlink). Returns NULL after filling err with
 * one line naming the store and the reason.
 */
struct bl_db *bl_db_open(const char *spec, char *err, size_t errlen);
void bl_db_close(struct bl_db *db);

/* Runs one statement with text parameters (NULL: SQL NULL), calling fn per row. */
int bl_db_exec(struct bl_db *db, const char *sql, int n, const char *const *params, bl_row_fn fn,
	       void *ctx);
/* A statement without parameters or rows. */
int bl_db_run(struct bl_db *db, const char *sql);

/* A write transaction: serializable on PostgreSQL, BEGIN IMMEDIATE on SQLite (one writer). */
int bl_db_begin(struct bl_db *db);
int bl_db_commit(struct bl_db *db);
void bl_db_rollback(struct bl_db *db);

/* Backend constructors (db_sqlite.c, db_pg.c); err filled on failure. */
struct bl_db *bl_sqlite_open(const char *path, char *err, size_t errlen);
struct bl_db *bl_pg_open(const char *uri, char *err, size_t errlen);
bool bl_spec_is_postgres(const char *spec);

#endif
