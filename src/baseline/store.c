/*
 * The baseline store's schema, its migrations and its writers (see store.h). The SQL is
 * written once for both backends (db.h); the only difference is how a row id is made.
 *
 * Schema history (docs/baseline.md):
 *   v1  runs and their items.
 *   v2  the steps each run had (baseline_steps: a step with nothing in it still counts as a
 *       run of that step), and first_seen/severity on each item, decided when the run was
 *       added. The v1 -> v2 migration derives both from the history already stored.
 */
#include "baseline/store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/strbuf.h"
#include "common/util.h"
#include "common/xalloc.h"

/* Transactions refused for serialization (PostgreSQL) or a busy file (SQLite) are run again,
 * this often, with a growing random pause between tries. */
#define BL_TRIES 60

static const char *const schema_v2[] = {
    "CREATE TABLE baseline_runs ("
    " id %s,"
    " repo TEXT NOT NULL, workflow TEXT NOT NULL, job TEXT NOT NULL,"
    " uid TEXT NOT NULL UNIQUE,"
    " run_step TEXT, ci_run_id TEXT, commit_sha TEXT, mode TEXT,"
    " started_at TEXT, finished_at TEXT,"
    " added_at TEXT NOT NULL, added_epoch BIGINT NOT NULL,"
    " complete INTEGER NOT NULL, items_left_out BIGINT NOT NULL DEFAULT 0)",
    "CREATE INDEX baseline_runs_key ON baseline_runs (repo, workflow, job, id)",
    "CREATE TABLE baseline_items ("
    " run_id BIGINT NOT NULL REFERENCES baseline_runs (id) ON DELETE CASCADE,"
    " step TEXT NOT NULL, kind TEXT NOT NULL, ikey TEXT NOT NULL, name TEXT NOT NULL,"
    " detail TEXT, count BIGINT NOT NULL,"
    " first_seen INTEGER NOT NULL DEFAULT 0, severity TEXT,"
    " PRIMARY KEY (run_id, step, kind, ikey))",
    "CREATE INDEX baseline_items_lookup ON baseline_items (step, kind, ikey)",
    "CREATE INDEX baseline_items_name ON baseline_items (step, kind, name)",
    "CREATE TABLE baseline_steps ("
    " run_id BIGINT NOT NULL REFERENCES baseline_runs (id) ON DELETE CASCADE,"
    " step TEXT NOT NULL, PRIMARY KEY (run_id, step))",
    "CREATE INDEX baseline_steps_step ON baseline_steps (step, run_id)",
    NULL,
};

/* Earlier runs of the same key, as a condition on runs "o" against the current one "c": by id
 * when the history is replayed (the migration), ... */
#define SAME_KEY_BEFORE                                                                            \
	"o.repo = c.repo AND o.workflow = c.workflow AND o.job = c.job AND o.id < c.id"
/* ... and, when a run is added, every other run the store has. Not by id: ids are handed out
 * before commit, so a run with a higher id may already be committed, and a run with a lower
 * one still in flight; what counts is what the transaction sees, and serializable isolation
 * makes two runs added at once see each other one way round. */
#define SAME_KEY_OTHER                                                                             \
	"o.repo = c.repo AND o.workflow = c.workflow AND o.job = c.job AND o.id <> c.id"

static const char *const migrate_1_2[] = {
    "CREATE TABLE baseline_steps ("
    " run_id BIGINT NOT NULL REFERENCES baseline_runs (id) ON DELETE CASCADE,"
    " step TEXT NOT NULL, PRIMARY KEY (run_id, step))",
    "CREATE INDEX baseline_steps_step ON baseline_steps (step, run_id)",
    /* v1 knew a run's steps only through its items and its own step. */
    "INSERT INTO baseline_steps (run_id, step) SELECT DISTINCT run_id, step FROM baseline_items",
    "INSERT INTO baseline_steps (run_id, step) SELECT r.id, COALESCE(r.run_step, '')"
    " FROM baseline_runs r WHERE NOT EXISTS (SELECT 1 FROM baseline_steps s"
    " WHERE s.run_id = r.id AND s.step = COALESCE(r.run_step, ''))",
    "ALTER TABLE baseline_items ADD COLUMN first_seen INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE baseline_items ADD COLUMN severity TEXT",
    "CREATE INDEX baseline_items_name ON baseline_items (step, kind, name)",
    /* What v2 would have decided when each run was added, in the order they were. */
    "UPDATE baseline_items SET first_seen = 1 WHERE kind IN ('destination', 'exe', 'dns_parent')"
    " AND NOT EXISTS (SELECT 1 FROM baseline_items i"
    " JOIN baseline_runs o ON o.id = i.run_id JOIN baseline_runs c ON c.id = baseline_items.run_id"
    " WHERE " SAME_KEY_BEFORE " AND i.step = baseline_items.step AND i.kind = baseline_items.kind"
    " AND i.ikey = baseline_items.ikey)",
    "UPDATE baseline_items SET severity = CASE"
    " WHEN kind = 'exe' AND EXISTS (SELECT 1 FROM baseline_items i"
    "  JOIN baseline_runs o ON o.id = i.run_id JOIN baseline_runs c ON c.id = baseline_items.run_id"
    "  WHERE " SAME_KEY_BEFORE " AND i.step = baseline_items.step AND i.kind = 'exe'"
    "  AND i.name = baseline_items.name) THEN 'info'"
    " WHEN (SELECT count(*) FROM baseline_steps s"
    "  JOIN baseline_runs o ON o.id = s.run_id JOIN baseline_runs c ON c.id = baseline_items.run_id"
    "  WHERE " SAME_KEY_BEFORE " AND s.step = baseline_items.step) >= CAST($1 AS BIGINT)"
    "  THEN 'medium' ELSE 'info' END WHERE first_seen = 1",
    "UPDATE baseline_schema SET version = 2",
    NULL,
};

static void fail(char *err, size_t errlen, const struct bl_db *db, const char *what)
{
	snprintf(err, errlen, "baseline %s: %s: %s", db->where, what,
		 db->err[0] ? db->err : "failed");
}

static int one_int(void *ctx, int ncol, const char *const *v)
{
	if (ncol > 0 && v[0])
		*(long long *)ctx = strtoll(v[0], NULL, 10);
	return 1;
}

/* A pause before the next try, random so that writers who collided do not collide again. */
static void backoff(int attempt)
{
	struct timespec ts;
	long max_ms = 5L << (attempt < 6 ? attempt : 6);
	long ms = 1 + (long)(((unsigned)rand() ^ (unsigned)getpid()) % (unsigned long)max_ms);

	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

static int run_list(struct bl_db *db, const char *const *stmts, const char *id_type)
{
	for (int i = 0; stmts[i]; i++) {
		struct strbuf sql = STRBUF_INIT;
		int rc;

		if (id_type)
			sb_addf(&sql, stmts[i], id_type);
		else
			sb_addstr(&sql, stmts[i]);
		rc = bl_db_exec(db, sql.buf, 0, NULL, NULL, NULL);
		sb_release(&sql);
		if (rc)
			return rc;
	}
	return 0;
}

/* The v1 -> v2 step: statements with parameters (the severity threshold) go one by one. */
static int run_migrate_1_2(struct bl_store *s)
{
	char n[24];
	const char *p[] = {n};

	snprintf(n, sizeof(n), "%d", s->min_runs);
	for (int i = 0; migrate_1_2[i]; i++) {
		int rc = strstr(migrate_1_2[i], "$1")
			     ? bl_db_exec(s->db, migrate_1_2[i], 1, p, NULL, NULL)
			     : bl_db_exec(s->db, migrate_1_2[i], 0, NULL, NULL, NULL);

		if (rc)
			return rc;
	}
	return 0;
}

/* A SQLite file someone else's program made is not ours to add tables to. */
static int foreign_file(struct bl_db *db, bool *foreign)
{
	long long n = 0;
	int rc;

	*foreign = false;
	if (db->backend != BL_SQLITE)
		return 0;
	rc = bl_db_exec(db,
			"SELECT count(*) FROM sqlite_master WHERE type = 'table'"
			" AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'baseline_%'",
			0, NULL, one_int, &n);
	*foreign = n > 0;
	return rc;
}

/* One try at bringing the schema up to date, in one transaction. */
static int migrate_once(struct bl_store *s, long long *found, char *err, size_t errlen)
{
	struct bl_db *db = s->db;
	long long v = -1;
	bool has_table = false, foreign;
	int rc;

	if ((rc = bl_db_begin(db)))
		return rc;
	rc = bl_db_exec(db,
			db->backend == BL_POSTGRES
			    ? "SELECT count(*) FROM information_schema.tables WHERE table_name = "
			      "'baseline_schema' AND table_schema = current_schema()"
			    : "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = "
			      "'baseline_schema'",
			0, NULL, one_int, &v);
	if (rc)
		goto fail;
	has_table = v > 0;
	v = 0;
	if (has_table &&
	    (rc = bl_db_exec(db, "SELECT max(version) FROM baseline_schema", 0, NULL, one_int, &v)))
		goto fail;
	*found = v;
	if (v > BL_SCHEMA_VERSION) {
		bl_db_rollback(db);
		snprintf(err, errlen,
			 "baseline %s: schema version %lld is newer than this runwarden's (%d); "
			 "upgrade runwarden",
			 db->where, v, BL_SCHEMA_VERSION);
		return BL_ERR;
	}
	if (v == BL_SCHEMA_VERSION) {
		bl_db_rollback(db);
		return BL_OK;
	}
	if (v == 0) {
		if ((rc = foreign_file(db, &foreign)))
			goto fail;
		if (foreign) {
			bl_db_rollback(db);
			snprintf(err, errlen,
				 "baseline %s: a database of something else (it has tables of its "
				 "own and no baseline_schema); give another path",
				 db->where);
			return BL_ERR;
		}
		if (!has_table &&
		    (rc = bl_db_run(db, "CREATE TABLE baseline_schema (version INTEGER NOT NULL)")))
			goto fail;
		if ((rc = run_list(db, schema_v2,
				   db->backend == BL_POSTGRES ? "BIGSERIAL PRIMARY KEY"
							      : "INTEGER PRIMARY KEY")) ||
		    (rc = bl_db_run(db, "DELETE FROM baseline_schema")) ||
		    (rc = bl_db_run(db, "INSERT INTO baseline_schema (version) VALUES (2)")))
			goto fail;
	} else if (v == 1) {
		if ((rc = run_migrate_1_2(s)))
			goto fail;
	}
	if ((rc = bl_db_commit(db)))
		goto fail;
	return BL_OK;
fail:
	if (rc != BL_RETRY)
		fail(err, errlen, db,
		     v == 1 ? "migrating the schema from v1 to v2" : "creating the schema");
	bl_db_rollback(db);
	return rc;
}

/* Runners meeting a new or old server at once: one creates or migrates, the others wait and
 * then find it done. A session lock, taken before the transaction: a serializable
 * transaction's snapshot would be older than the lock it waited for. */
static int pg_schema_lock(struct bl_db *db, bool take)
{
	if (db->backend != BL_POSTGRES)
		return 0;
	return bl_db_run(db, take ? "SELECT pg_advisory_lock(7243519084135)"
				  : "SELECT pg_advisory_unlock(7243519084135)");
}

int bl_store_migrate(struct bl_store *s, char *err, size_t errlen)
{
	for (int attempt = 0; attempt < BL_TRIES; attempt++) {
		long long found = 0;
		int rc = pg_schema_lock(s->db, true);

		if (rc) {
			fail(err, errlen, s->db, "locking the schema");
			return -1;
		}
		rc = migrate_once(s, &found, err, errlen);
		pg_schema_lock(s->db, false);

		if (rc == BL_OK) {
			if (attempt == 0)
				s->schema_from = (int)found;
			return 0;
		}
		if (rc != BL_RETRY && rc != BL_CONFLICT)
			return -1;
		backoff(attempt);
	}
	fail(err, errlen, s->db, "the schema could not be brought up to date (busy)");
	return -1;
}

/* --baseline with no path: the default file, its directory made private to root. */
static int default_dir(char *err, size_t errlen)
{
	const char *dir = "/var/lib/runwarden";

	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "baseline: cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int bl_store_open(struct bl_store *s, const char *spec, char *err, size_t errlen)
{
	int min_runs = s->min_runs > 0 ? s->min_runs : BL_MIN_RUNS_DEFAULT;
	bool must_exist = s->must_exist;

	memset(s, 0, sizeof(*s));
	s->min_runs = min_runs;
	if (!spec)
		spec = BL_DEFAULT_PATH;
	/* (a URI of another scheme is a typo: bl_db_open says so) */
	if (must_exist && !strstr(spec, "://") && access(spec, F_OK)) {
		snprintf(err, errlen, "baseline %.200s: no such store: %s", spec, strerror(errno));
		return -1;
	}
	if (!strcmp(spec, BL_DEFAULT_PATH) && default_dir(err, errlen))
		return -1;
	s->db = bl_db_open(spec, err, errlen);
	if (!s->db)
		return -1;
	if (bl_store_migrate(s, err, errlen)) {
		bl_store_close(s);
		return -1;
	}
	return 0;
}

void bl_store_close(struct bl_store *s)
{
	bl_db_close(s->db);
	s->db = NULL;
}

/* ---- adding a run ---- */

static void now_text(char *buf, size_t len, long long *epoch)
{
	struct strbuf sb = STRBUF_INIT;

	*epoch = (long long)(now_real_ns() / 1000000000LL);
	fmt_rfc3339(&sb, now_real_ns());
	snprintf(buf, len, "%s", sb.buf);
	sb_release(&sb);
}

/* The run's row; *id set, or BL_CONFLICT when the same run is there already. */
static int insert_run(struct bl_db *db, struct bl_run *r, long long *id)
{
	char added[64], epoch_s[24], complete[2] = {r->complete ? '1' : '0', 0}, left[24];
	long long epoch;
	const char *p[14];
	int n = 0, rc;

	now_text(added, sizeof(added), &epoch);
	snprintf(epoch_s, sizeof(epoch_s), "%lld", epoch);
	snprintf(left, sizeof(left), "%llu", (unsigned long long)r->left_out);
	p[n++] = r->repo;
	p[n++] = r->workflow ? r->workflow : "";
	p[n++] = r->job;
	p[n++] = r->uid;
	p[n++] = r->run_step;
	p[n++] = r->ci_run_id;
	p[n++] = r->commit;
	p[n++] = r->mode;
	p[n++] = r->started_at;
	p[n++] = r->finished_at;
	p[n++] = added;
	p[n++] = epoch_s;
	p[n++] = complete;
	p[n++] = left;
	*id = -1;
	rc = bl_db_exec(db,
			"INSERT INTO baseline_runs (repo, workflow, job, uid, run_step, ci_run_id,"
			" commit_sha, mode, started_at, finished_at, added_at, added_epoch,"
			" complete, items_left_out) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
			" $10, $11, CAST($12 AS BIGINT), CAST($13 AS INTEGER), CAST($14 AS BIGINT))"
			" ON CONFLICT (uid) DO NOTHING RETURNING id",
			n, p, one_int, id);
	if (rc)
		return rc;
	return *id < 0 ? BL_CONFLICT : BL_OK;
}

/* Runs of this key that had the step, before this one. */
static int runs_before(struct bl_db *db, const char *id, const char *step, long long *n)
{
	const char *p[] = {id, step};

	*n = 0;
	return bl_db_exec(db,
			  "SELECT count(*) FROM baseline_steps s JOIN baseline_runs o ON o.id ="
			  " s.run_id JOIN baseline_runs c ON c.id = CAST($1 AS BIGINT)"
			  " WHERE " SAME_KEY_OTHER " AND s.step = $2",
			  2, p, one_int, n);
}

/* Rows per INSERT: a run's items go in a few statements, not one round trip each (a fleet's
 * server may be a network away). 9 parameters a row stays far below both backends' limits. */
#define BL_INSERT_ROWS 200
#define BL_ITEM_COLS   7

/* The kinds judged: every name is kept, but only its parent can be new, so a tunnel's thousand
 * names are one new parent, not a thousand findings. Findings are kept, never judged. */
#define JUDGED_KINDS "('destination', 'exe', 'dns_parent')"

/* Whether another run of the key had the same (step, kind, ikey), as a condition on the row
 * baseline_items of the run being added ("c" is its run). */
#define SEEN_ELSEWHERE                                                                             \
	"EXISTS (SELECT 1 FROM baseline_items i JOIN baseline_runs o ON o.id = i.run_id"           \
	" JOIN baseline_runs c ON c.id = baseline_items.run_id WHERE " SAME_KEY_OTHER              \
	" AND i.step = baseline_items.step AND i.kind = baseline_items.kind"                       \
	" AND i.ikey = baseline_items.ikey)"
/* An executable's path known from another run, with whatever content. */
#define PATH_ELSEWHERE                                                                             \
	"EXISTS (SELECT 1 FROM baseline_items i JOIN baseline_runs o ON o.id = i.run_id"           \
	" JOIN baseline_runs c ON c.id = baseline_items.run_id WHERE " SAME_KEY_OTHER              \
	" AND i.step = baseline_items.step AND i.kind = 'exe' AND i.name = baseline_items.name)"

/* Inserts items [from, to) of v in one statement. */
static int insert_items(struct bl_db *db, const char *id, struct bl_item **v, size_t from,
			size_t to)
{
	struct strbuf sql = STRBUF_INIT;
	size_t n = to - from, k = 0;
	const char **p = xcalloc(n * BL_ITEM_COLS + 1, sizeof(*p));
	char **owned = xcalloc(n * 2, sizeof(*owned));
	int rc;

	p[k++] = id;
	sb_addstr(&sql, "INSERT INTO baseline_items (run_id, step, kind, ikey, name, detail, count)"
			" VALUES ");
	for (size_t i = 0; i < n; i++) {
		const struct bl_item *it = v[from + i];
		char count[24];

		snprintf(count, sizeof(count), "%llu", (unsigned long long)it->count);
		owned[2 * i] = json_dumps(it->detail, JSON_COMPACT | JSON_SORT_KEYS);
		owned[2 * i + 1] = xstrdup(count);
		sb_addf(
		    &sql,
		    "%s(CAST($1 AS BIGINT), $%zu, $%zu, $%zu, $%zu, $%zu, CAST($%zu AS BIGINT))",
		    i ? ", " : "", k + 1, k + 2, k + 3, k + 4, k + 5, k + 6);
		p[k++] = it->step;
		p[k++] = bl_kind_names[it->kind];
		p[k++] = it->ikey;
		p[k++] = it->name;
		p[k++] = owned[2 * i];
		p[k++] = owned[2 * i + 1];
	}
	rc = bl_db_exec(db, sql.buf, (int)k, p, NULL, NULL);
	for (size_t i = 0; i < n * 2; i++)
		free(owned[i]);
	free(owned);
	free(p);
	sb_release(&sql);
	return rc;
}

/* One first-seen row read back: step, kind, ikey, severity, path known elsewhere. */
static int judged_row(void *ctx, int ncol, const char *const *v)
{
	struct bl_run *r = ctx;
	struct strbuf k = STRBUF_INIT;
	struct strmap_entry *e;
	int kind = -1;

	(void)ncol;
	for (int i = 0; i < BL_KIND_COUNT; i++)
		if (!strcmp(v[1], bl_kind_names[i]))
			kind = i;
	sb_addf(&k, "%d\x1f%s\x1f%s", kind, v[0], v[2]);
	e = strmap_get(&r->items, k.buf);
	sb_release(&k);
	if (e) {
		struct bl_item *it = e->val;

		it->first_seen = true;
		it->severity = v[3] && !strcmp(v[3], "medium") ? "medium" : "info";
		it->name_known = v[4] && v[4][0] == '1';
	}
	return 0;
}

/* Decides first_seen and severity for every item of run id in three statements, then reads
 * the first-seen ones back into r. Severity: medium when the step had min_runs runs before
 * and the item is not an executable whose path was known with other content. */
static int judge_items(struct bl_store *s, struct bl_run *r, const char *id)
{
	char n[24];
	const char *p1[] = {id}, *p2[] = {id, n};
	int rc;

	snprintf(n, sizeof(n), "%d", s->min_runs);
	if ((rc = bl_db_exec(s->db,
			     "UPDATE baseline_items SET first_seen = 1 WHERE run_id = CAST($1 AS"
			     " BIGINT) AND kind IN " JUDGED_KINDS " AND NOT " SEEN_ELSEWHERE,
			     1, p1, NULL, NULL)) ||
	    (rc = bl_db_exec(
		 s->db,
		 "UPDATE baseline_items SET severity = CASE WHEN kind = 'exe' AND " PATH_ELSEWHERE
		 " THEN 'info' WHEN (SELECT count(*) FROM baseline_steps"
		 " st JOIN baseline_runs o ON o.id = st.run_id JOIN baseline_runs c ON"
		 " c.id = baseline_items.run_id WHERE " SAME_KEY_OTHER " AND st.step ="
		 " baseline_items.step) >= CAST($2 AS BIGINT) THEN 'medium' ELSE 'info'"
		 " END WHERE run_id = CAST($1 AS BIGINT) AND first_seen = 1",
		 2, p2, NULL, NULL)))
		return rc;
	return bl_db_exec(
	    s->db,
	    "SELECT step, kind, ikey, severity, CASE WHEN kind = 'exe' AND " PATH_ELSEWHERE
	    " THEN 1 ELSE 0 END FROM baseline_items WHERE run_id ="
	    " CAST($1 AS BIGINT) AND first_seen = 1",
	    1, p1, judged_row, r);
}

static int add_once(struct bl_store *s, struct bl_run *r)
{
	struct bl_db *db = s->db;
	struct strmap before; /* step → runs before, as a pointer-sized count */
	struct bl_item **v = xcalloc(r->items.count + 1, sizeof(*v));
	size_t n = 0;
	long long id;
	char ids[24];
	int rc;

	strmap_for_each(e, &r->items)
	{
		struct bl_item *it = e->val;

		it->first_seen = it->name_known = false;
		it->severity = NULL;
		v[n++] = it;
	}
	if ((rc = bl_db_begin(db))) {
		free(v);
		return rc;
	}
	rc = insert_run(db, r, &id);
	if (rc == BL_CONFLICT) {
		bl_db_rollback(db);
		r->already = true;
		free(v);
		return BL_OK;
	}
	if (rc)
		goto out;
	snprintf(ids, sizeof(ids), "%lld", id);
	strmap_init(&before);
	strmap_for_each(e, &r->steps)
	{
		const char *p[] = {ids, e->key};
		long long nb;

		if ((rc = runs_before(db, ids, e->key, &nb)) ||
		    (rc = bl_db_exec(db,
				     "INSERT INTO baseline_steps (run_id, step) VALUES"
				     " (CAST($1 AS BIGINT), $2)",
				     2, p, NULL, NULL)))
			break;
		strmap_put(&before, e->key, NULL)->val = (void *)(intptr_t)nb;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		struct strmap_entry *b = strmap_get(&before, v[i]->step);

		v[i]->runs_before = b ? (intptr_t)b->val : 0;
	}
	strmap_clear(&before, NULL);
	for (size_t from = 0; from < n && !rc; from += BL_INSERT_ROWS)
		rc = insert_items(db, ids, v, from,
				  from + BL_INSERT_ROWS < n ? from + BL_INSERT_ROWS : n);
	if (!rc)
		rc = judge_items(s, r, ids);
	if (!rc)
		rc = bl_db_commit(db);
out:
	free(v);
	if (rc)
		bl_db_rollback(db);
	else
		r->id = id;
	return rc;
}

int bl_store_add(struct bl_store *s, struct bl_run *r, char *err, size_t errlen)
{
	const char *why = bl_run_keyless(r);

	if (why) {
		snprintf(err, errlen, "baseline: the run has %s (give --repo and --job)", why);
		return -1;
	}
	if (!r->uid) {
		snprintf(err, errlen, "baseline: the run has no log root");
		return -1;
	}
	srand((unsigned)now_mono_ns());
	for (int attempt = 0; attempt < BL_TRIES; attempt++) {
		int rc;

		r->already = false;
		rc = add_once(s, r);
		if (rc == BL_OK)
			return 0;
		/* A conflict here is another writer's step or item row racing ours on SQLite's
		 * unique index: the retry sees it committed. */
		if (rc != BL_RETRY && rc != BL_CONFLICT) {
			fail(err, errlen, s->db, "adding a run");
			return -1;
		}
		backoff(attempt);
	}
	fail(err, errlen, s->db, "adding a run: still refused after retries");
	return -1;
}

int bl_store_prune(struct bl_store *s, uint64_t keep, uint64_t older_than_s, uint64_t *deleted,
		   char *err, size_t errlen)
{
	char keep_s[24], cutoff[24];
	long long before = 0, after = 0;
	int rc = BL_RETRY;

	snprintf(keep_s, sizeof(keep_s), "%llu", (unsigned long long)keep);
	snprintf(cutoff, sizeof(cutoff), "%lld",
		 (long long)(now_real_ns() / 1000000000LL) - (long long)older_than_s);
	for (int attempt = 0; attempt < BL_TRIES && rc == BL_RETRY; attempt++) {
		const char *pk[] = {keep_s}, *pc[] = {cutoff};

		if (attempt)
			backoff(attempt);
		if ((rc = bl_db_begin(s->db)))
			continue;
		if ((rc = bl_db_exec(s->db, "SELECT count(*) FROM baseline_runs", 0, NULL, one_int,
				     &before)) ||
		    (keep && (rc = bl_db_exec(s->db,
					      "DELETE FROM baseline_runs WHERE id IN (SELECT c.id"
					      " FROM baseline_runs c WHERE (SELECT count(*) FROM"
					      " baseline_runs o WHERE o.repo = c.repo AND"
					      " o.workflow = c.workflow AND o.job = c.job AND"
					      " o.id > c.id) >= CAST($1 AS BIGINT))",
					      1, pk, NULL, NULL))) ||
		    (older_than_s &&
		     (rc = bl_db_exec(s->db,
				      "DELETE FROM baseline_runs WHERE added_epoch <"
				      " CAST($1 AS BIGINT)",
				      1, pc, NULL, NULL))) ||
		    (rc = bl_db_exec(s->db, "SELECT count(*) FROM baseline_runs", 0, NULL, one_int,
				     &after)) ||
		    (rc = bl_db_commit(s->db)))
			bl_db_rollback(s->db);
	}
	if (rc) {
		fail(err, errlen, s->db, "pruning");
		return -1;
	}
	*deleted = (uint64_t)(before - after);
	return 0;
}
