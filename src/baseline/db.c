/* The backend-neutral half of the baseline's SQL connection (see db.h). */
#include "baseline/db.h"

#include <stdio.h>
#include <string.h>

bool bl_spec_is_postgres(const char *spec)
{
	return !strncmp(spec, "postgresql://", 13) || !strncmp(spec, "postgres://", 11);
}

struct bl_db *bl_db_open(const char *spec, char *err, size_t errlen)
{
	if (!spec || !*spec) {
		snprintf(err, errlen, "--baseline: empty store name");
		return NULL;
	}
	if (bl_spec_is_postgres(spec))
		return bl_pg_open(spec, err, errlen);
	/* Anything else with a scheme is a typo of a URI, not a file to create. */
	if (strstr(spec, "://")) {
		snprintf(err, errlen,
			 "--baseline %.100s: unknown scheme (a postgresql:// URI or a file path)",
			 spec);
		return NULL;
	}
	return bl_sqlite_open(spec, err, errlen);
}

void bl_db_close(struct bl_db *db)
{
	if (db)
		db->ops->close(db);
}

int bl_db_exec(struct bl_db *db, const char *sql, int n, const char *const *params, bl_row_fn fn,
	       void *ctx)
{
	db->err[0] = 0;
	return db->ops->exec(db, sql, n, params, fn, ctx);
}

int bl_db_run(struct bl_db *db, const char *sql)
{
	return bl_db_exec(db, sql, 0, NULL, NULL, NULL);
}

int bl_db_begin(struct bl_db *db)
{
	return bl_db_run(db, db->backend == BL_POSTGRES ? "BEGIN ISOLATION LEVEL SERIALIZABLE"
							: "BEGIN IMMEDIATE");
}

int bl_db_commit(struct bl_db *db)
{
	return bl_db_run(db, "COMMIT");
}

void bl_db_rollback(struct bl_db *db)
{
	char keep[BL_ERRLEN];

	/* The error that made us roll back is the one worth reporting. */
	memcpy(keep, db->err, sizeof(keep));
	bl_db_run(db, "ROLLBACK");
	memcpy(db->err, keep, sizeof(keep));
}
