/* The baseline store on a real SQLite file: first-seen per key and step, the severity
 * threshold, known paths with new content, DNS parents, a run recorded once, hostile and
 * oversized input, pruning, the v1 -> v2 migration from a frozen v1 store, bad stores, and
 * several processes writing at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "baseline/db.h"
#include "baseline/store.h"
#include "common/strbuf.h"

static char tmpdir[64];
static char dbpath[128];
static int counter;

static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/rw-baseline-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd);
}

/* A fresh store path per test. */
static const char *new_db(void)
{
	snprintf(dbpath, sizeof(dbpath), "%s/b%d.db", tmpdir, ++counter);
	return dbpath;
}

static void open_store(struct bl_store *s, const char *path, int min_runs)
{
	char err[1024] = "";

	memset(s, 0, sizeof(*s));
	s->min_runs = min_runs;
	if (bl_store_open(s, path, err, sizeof(err)))
		fail_msg("open %s: %s", path, err);
}

/* A run of key repo/ci/job with a fresh uid, its events given as JSON lines. */
static void make_run(struct bl_run *r, const char *repo, const char *job, const char *step,
		     const char *const *events)
{
	char uid[65];

	bl_run_init(r);
	bl_set(&r->repo, repo);
	bl_set(&r->workflow, "ci");
	bl_set(&r->job, job);
	bl_set(&r->run_step, step);
	snprintf(uid, sizeof(uid), "%064x", ++counter);
	bl_set(&r->uid, uid);
	bl_set(&r->mode, "observe");
	r->complete = true;
	for (int i = 0; events && events[i]; i++) {
		json_t *ev = json_loads(events[i], 0, NULL);

		assert_non_null(ev);
		bl_run_event(r, ev);
		json_decref(ev);
	}
	/* a step with nothing in it still counts as run */
	if (!strmap_get(&r->steps, step ? step : ""))
		strmap_put(&r->steps, step ? step : "", NULL);
}

static void add(struct bl_store *s, struct bl_run *r)
{
	char err[1024] = "";

	if (bl_store_add(s, r, err, sizeof(err)))
		fail_msg("add: %s", err);
}

/* The first-seen item of kind with this subject, or NULL. */
static const struct bl_item *first(const struct bl_run *r, enum bl_kind kind, const char *subj)
{
	strmap_for_each(e, &r->items)
	{
		const struct bl_item *it = e->val;
		const char *s = kind == BL_DEST ? it->ikey : it->name;

		if (it->kind == kind && it->first_seen && !strcmp(s, subj))
			return it;
	}
	return NULL;
}

static size_t n_first(const struct bl_run *r)
{
	size_t n = 0;

	strmap_for_each(e, &r->items) n += ((const struct bl_item *)e->val)->first_seen;
	return n;
}

static int count_cb(void *ctx, int ncol, const char *const *v)
{
	(void)ncol;
	*(long long *)ctx = strtoll(v[0], NULL, 10);
	return 1;
}

static long long count(struct bl_store *s, const char *sql)
{
	long long n = -1;

	assert_int_equal(bl_db_exec(s->db, sql, 0, NULL, count_cb, &n), 0);
	return n;
}

#define CONN(addr, port, host)                                                                     \
	"{\"kind\":\"connect\",\"proto\":\"tcp\",\"family\":\"ipv4\",\"daddr\":\"" addr            \
	"\",\"dport\":" #port ",\"host\":" host ",\"verdict\":\"allow\"}"
#define EXEC(path, sha) "{\"kind\":\"exec\",\"exe\":\"" path "\",\"exe_sha256\":\"" sha "\"}"
#define DNS(q)		"{\"kind\":\"dns\",\"query\":\"" q "\",\"qtype\":\"A\",\"verdict\":\"allow\"}"
#define SHA_A		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B		"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static void test_first_seen_and_threshold(void **state)
{
	const char *base[] = {CONN("127.0.9.1", 443, "\"registry.test\""),
			      EXEC("/usr/bin/make", SHA_A), DNS("registry.test"), NULL};
	const char *more[] = {CONN("127.0.9.1", 443, "\"registry.test\""),
			      CONN("127.0.9.2", 443, "\"registry.test\""), /* same name: same */
			      CONN("127.0.9.9", 8080, "null"),
			      EXEC("/usr/bin/make", SHA_A),
			      DNS("REGISTRY.test."),
			      NULL};
	struct bl_store s;
	struct bl_run r;

	(void)state;
	open_store(&s, new_db(), 2);
	assert_int_equal(s.schema_from, 0);
	/* run 1: everything is new, and info: no run before it */
	make_run(&r, "acme/app", "build", "build", base);
	add(&s, &r);
	assert_false(r.already);
	assert_int_equal(n_first(&r), 3); /* destination, exe, DNS parent; not the name */
	assert_string_equal(first(&r, BL_DEST, "tcp registry.test:443")->severity, "info");
	assert_string_equal(first(&r, BL_PARENT, "registry.test")->severity, "info");
	bl_run_free(&r);
	/* run 2: nothing new */
	make_run(&r, "acme/app", "build", "build", base);
	add(&s, &r);
	assert_int_equal(n_first(&r), 0);
	bl_run_free(&r);
	/* run 3: two runs before it, so a new destination is medium; a name with another case
	 * or a trailing dot, and another address of a known name, are not new */
	make_run(&r, "acme/app", "build", "build", more);
	add(&s, &r);
	assert_int_equal(n_first(&r), 1);
	assert_string_equal(first(&r, BL_DEST, "tcp 127.0.9.9:8080")->severity, "medium");
	bl_run_free(&r);
	/* another step of the same job has no history: info; another repository neither */
	make_run(&r, "acme/app", "build", "deploy", more);
	add(&s, &r);
	assert_string_equal(first(&r, BL_DEST, "tcp 127.0.9.9:8080")->severity, "info");
	bl_run_free(&r);
	make_run(&r, "acme/other", "build", "build", more);
	add(&s, &r);
	assert_int_equal(n_first(&r), 4);
	bl_run_free(&r);
	assert_int_equal(count(&s, "SELECT count(*) FROM baseline_runs"), 5);
	bl_store_close(&s);
}

static void test_exe_new_content(void **state)
{
	const char *a[] = {EXEC("/usr/bin/make", SHA_A), NULL};
	const char *b[] = {EXEC("/usr/bin/make", SHA_B), EXEC("/tmp/x", SHA_B), NULL};
	struct bl_store s;
	struct bl_run r;

	(void)state;
	open_store(&s, new_db(), 1);
	make_run(&r, "acme/app", "build", "", a);
	add(&s, &r);
	bl_run_free(&r);
	make_run(&r, "acme/app", "build", "", b);
	add(&s, &r);
	/* a known path with new content is recorded, but stays info; a new path is medium */
	assert_true(first(&r, BL_EXE, "/usr/bin/make")->name_known);
	assert_string_equal(first(&r, BL_EXE, "/usr/bin/make")->severity, "info");
	assert_string_equal(first(&r, BL_EXE, "/tmp/x")->severity, "medium");
	bl_run_free(&r);
	bl_store_close(&s);
}

static void test_dns_parent(void **state)
{
	const char *t1[] = {DNS("aGVsbG8.t.evil.test"), DNS("d29ybGQ.t.evil.test"),
			    DNS("example.test"), NULL};
	const char *t2[] = {DNS("c2VjcmV0.t.evil.test"), NULL};
	struct bl_store s;
	struct bl_run r;

	(void)state;
	open_store(&s, new_db(), 5);
	make_run(&r, "acme/app", "build", "", t1);
	add(&s, &r);
	/* the tunnel's names share one parent; a two-label name is its own parent */
	assert_non_null(first(&r, BL_PARENT, "t.evil.test"));
	assert_non_null(first(&r, BL_PARENT, "example.test"));
	assert_int_equal(n_first(&r), 2);
	bl_run_free(&r);
	make_run(&r, "acme/app", "build", "", t2);
	add(&s, &r);
	assert_int_equal(n_first(&r), 0);
	bl_run_free(&r);
	bl_store_close(&s);
}

static void test_once(void **state)
{
	const char *ev[] = {CONN("127.0.9.1", 443, "null"), NULL};
	struct bl_store s;
	struct bl_run r;
	char uid[65];

	(void)state;
	open_store(&s, new_db(), 5);
	make_run(&r, "acme/app", "build", "", ev);
	snprintf(uid, sizeof(uid), "%s", r.uid);
	add(&s, &r);
	assert_false(r.already);
	bl_run_free(&r);
	make_run(&r, "acme/app", "build", "", ev);
	bl_set(&r.uid, uid);
	add(&s, &r);
	assert_true(r.already);
	bl_run_free(&r);
	assert_int_equal(count(&s, "SELECT count(*) FROM baseline_runs"), 1);
	assert_int_equal(count(&s, "SELECT count(*) FROM baseline_items"), 1);
	bl_store_close(&s);
}

/* Names a job chose: quotes, SQL, newlines and bytes that are not a DNS name are data. */
static void test_hostile(void **state)
{
	struct bl_store s;
	struct bl_run r;
	struct strbuf big = STRBUF_INIT;
	char *out = NULL;
	size_t len;
	FILE *f;
	json_t *doc, *ev;

	(void)state;
	open_store(&s, new_db(), 5);
	make_run(&r, "acme/'; DROP TABLE baseline_runs; --", "j\"ob\n", "st'ep", NULL);
	ev = json_pack("{s:s, s:s, s:s}", "kind", "dns", "query", "x'); DELETE FROM x; --.test",
		       "qtype", "A");
	bl_run_event(&r, ev);
	json_decref(ev);
	/* longer than a field may be: counted, not stored */
	for (int i = 0; i < BL_MAX_FIELD + 10; i++)
		sb_addch(&big, 'a');
	ev = json_pack("{s:s, s:s}", "kind", "exec", "exe", big.buf);
	bl_run_event(&r, ev);
	json_decref(ev);
	/* more steps than a run may have: their items are counted, not stored */
	for (int i = 0; i < BL_MAX_STEPS + 5; i++) {
		char step[32];

		snprintf(step, sizeof(step), "s%d", i);
		ev = json_pack("{s:s, s:s, s:s}", "kind", "exec", "exe", "/bin/true", "step", step);
		bl_run_event(&r, ev);
		json_decref(ev);
	}
	assert_true(r.left_out >= 6);
	assert_true(r.steps.count <= BL_MAX_STEPS);
	/* a flood of names fills its own kind only: the destination after it is still kept */
	{
		uint64_t before = r.left_out, had = r.n_kind[BL_DNS];

		for (int i = 0; i < BL_MAX_ITEMS + 10; i++) {
			char q[64];

			snprintf(q, sizeof(q), "n%d.flood.test", i);
			ev = json_pack("{s:s, s:s, s:s}", "kind", "dns", "query", q, "qtype", "A");
			bl_run_event(&r, ev);
			json_decref(ev);
		}
		assert_int_equal(r.left_out - before, 10 + had);
		ev = json_loads(CONN("127.0.9.77", 443, "null"), 0, NULL);
		bl_run_event(&r, ev);
		json_decref(ev);
		assert_int_equal(r.left_out - before, 10 + had);
		assert_non_null(strmap_get(&r.items, "0\x1fst'ep\x1ftcp 127.0.9.77:443"));
	}
	/* fields of events that are not what they should be are skipped, never a crash */
	ev = json_pack("{s:s, s:i, s:[]}", "kind", "connect", "proto", 6, "daddr");
	bl_run_event(&r, ev);
	json_decref(ev);
	add(&s, &r);
	bl_run_free(&r);
	f = open_memstream(&out, &len);
	{
		char err[512];

		assert_int_equal(bl_store_export(&s, &(struct bl_filter){0}, f, err, sizeof(err)),
				 0);
	}
	fclose(f);
	doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	ev = json_array_get(json_object_get(doc, "runs"), 0);
	assert_string_equal(json_string_value(json_object_get(ev, "repo")),
			    "acme/'; DROP TABLE baseline_runs; --");
	assert_string_equal(json_string_value(json_object_get(ev, "job")), "j\"ob\n");
	assert_true(json_integer_value(json_object_get(ev, "items_left_out")) >= 6);
	json_decref(doc);
	free(out);
	sb_release(&big);
	assert_int_equal(count(&s, "SELECT count(*) FROM baseline_runs"), 1);
	bl_store_close(&s);
}

static void test_prune(void **state)
{
	const char *ev[] = {CONN("127.0.9.1", 443, "null"), NULL};
	struct bl_store s;
	struct bl_run r;
	uint64_t deleted = 0;
	char err[512];

	(void)state;
	open_store(&s, new_db(), 5);
	for (int i = 0; i < 4; i++) {
		make_run(&r, "acme/app", "build", "", ev);
		add(&s, &r);
		bl_run_free(&r);
	}
	make_run(&r, "acme/other", "build", "", ev);
	add(&s, &r);
	bl_run_free(&r);
	assert_int_equal(bl_store_prune(&s, 2, 0, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 2);
	/* the oldest went, with their items and steps; the other key kept its one run */
	assert_int_equal(count(&s, "SELECT min(id) FROM baseline_runs WHERE repo = 'acme/app'"), 3);
	assert_int_equal(count(&s, "SELECT count(*) FROM baseline_items"), 3);
	assert_int_equal(count(&s, "SELECT count(*) FROM baseline_steps"), 3);
	assert_int_equal(bl_store_prune(&s, 0, 3600, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 0);
	assert_int_equal(count(&s, "UPDATE baseline_runs SET added_epoch = 0 WHERE id = 3"
				   " RETURNING 1"),
			 1);
	assert_int_equal(bl_store_prune(&s, 0, 3600, &deleted, err, sizeof(err)), 0);
	assert_int_equal(deleted, 1);
	bl_store_close(&s);
}

/* Loads tests/data/baseline-v1.sql, the frozen v1 store, into path. */
static void make_v1(const char *path)
{
	FILE *f = fopen("tests/data/baseline-v1.sql", "re");
	struct strbuf sql = STRBUF_INIT;
	char buf[4096], err[512];
	struct bl_db *db;
	size_t n;
	char *at;

	if (!f)
		fail_msg("tests/data/baseline-v1.sql: run the unit tests from the tree's top");
	while ((n = fread(buf, 1, sizeof(buf), f)))
		sb_add(&sql, buf, n);
	fclose(f);
	/* every @ID@, the comment's too */
	{
		struct strbuf fixed = STRBUF_INIT;
		const char *p = sql.buf;

		while ((at = strstr(p, "@ID@"))) {
			sb_add(&fixed, p, at - p);
			sb_addstr(&fixed, "INTEGER PRIMARY KEY");
			p = at + 4;
		}
		sb_addstr(&fixed, p);
		db = bl_db_open(path, err, sizeof(err));
		assert_non_null(db);
		if (bl_db_run(db, fixed.buf))
			fail_msg("v1 fixture: %s", db->err);
		bl_db_close(db);
		sb_release(&fixed);
	}
	sb_release(&sql);
}

static int row_cb(void *ctx, int ncol, const char *const *v)
{
	struct strbuf *sb = ctx;

	for (int i = 0; i < ncol; i++)
		sb_addf(sb, "%s%s", i ? "|" : "", v[i] ? v[i] : "NULL");
	sb_addch(sb, '\n');
	return 0;
}

static void test_migrate_v1(void **state)
{
	const char *path = new_db();
	const char *ev[] = {CONN("127.0.9.1", 443, "\"registry.test\""),
			    CONN("127.0.9.11", 22, "null"), NULL};
	struct strbuf got = STRBUF_INIT;
	struct bl_store s;
	struct bl_run r;

	(void)state;
	make_v1(path);
	open_store(&s, path, 2);
	assert_int_equal(s.schema_from, 1);
	assert_int_equal(count(&s, "SELECT version FROM baseline_schema"), 2);
	assert_int_equal(bl_db_exec(s.db,
				    "SELECT run_id, step, kind, ikey, severity FROM baseline_items"
				    " WHERE first_seen = 1 ORDER BY run_id, step, kind, ikey",
				    0, NULL, row_cb, &got),
			 0);
	/* as v2 would have decided them, run by run (see the fixture's comment) */
	assert_string_equal(got.buf, "1|build|destination|tcp registry.test:443|info\n"
				     "1|build|dns_parent|registry.test|info\n"
				     "1|build|exe|" SHA_A " /usr/bin/make|info\n"
				     "3|build|destination|tcp 127.0.9.9:8080|medium\n"
				     "3|build|exe|" SHA_B " /usr/bin/make|info\n"
				     "3|test|destination|tcp 127.0.9.10:80|info\n"
				     "4|build|destination|tcp 127.0.9.9:8080|info\n");
	sb_reset(&got);
	assert_int_equal(bl_db_exec(s.db,
				    "SELECT run_id, step FROM baseline_steps ORDER BY run_id, step",
				    0, NULL, row_cb, &got),
			 0);
	assert_string_equal(got.buf, "1|build\n2|build\n3|build\n3|test\n4|build\n");
	/* and the migrated store takes runs as a new one would */
	make_run(&r, "acme/app", "build", "build", ev);
	add(&s, &r);
	assert_int_equal(r.id, 5);
	assert_int_equal(n_first(&r), 1);
	assert_string_equal(first(&r, BL_DEST, "tcp 127.0.9.11:22")->severity, "medium");
	bl_run_free(&r);
	bl_store_close(&s);
	/* opening again migrates nothing */
	open_store(&s, path, 2);
	assert_int_equal(s.schema_from, 2);
	bl_store_close(&s);
	sb_release(&got);
}

static void expect_open_error(const char *spec, const char *why)
{
	struct bl_store s = {0};
	char err[1024] = "";

	assert_int_not_equal(bl_store_open(&s, spec, err, sizeof(err)), 0);
	if (!strstr(err, why))
		fail_msg("%s: expected '%s' in '%s'", spec, why, err);
	assert_null(strchr(err, '\n'));
}

static void test_bad_stores(void **state)
{
	char path[256];
	struct bl_db *db;
	char err[256];
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/corrupt.db", tmpdir);
	f = fopen(path, "w");
	for (int i = 0; i < 200; i++)
		fputs("this is not a database, it is a text file\n", f);
	fclose(f);
	expect_open_error(path, "not a database");
	expect_open_error(tmpdir, "Is a directory");
	snprintf(path, sizeof(path), "%s/fifo.db", tmpdir);
	assert_int_equal(mkfifo(path, 0600), 0);
	expect_open_error(path, "not a regular file");
	snprintf(path, sizeof(path), "%s/no/such/dir.db", tmpdir);
	expect_open_error(path, "No such file or directory");
	expect_open_error("", "empty");
	expect_open_error("mysql://x@y/z", "unknown scheme");
	expect_open_error("postgresql://%zz", "not a valid PostgreSQL URI");
	/* someone else's database is not taken over */
	snprintf(path, sizeof(path), "%s/foreign.db", tmpdir);
	db = bl_db_open(path, err, sizeof(err));
	assert_non_null(db);
	assert_int_equal(bl_db_run(db, "CREATE TABLE accounts (id INTEGER)"), 0);
	bl_db_close(db);
	expect_open_error(path, "a database of something else");
	/* a newer runwarden's store is not written by an older one */
	snprintf(path, sizeof(path), "%s/newer.db", tmpdir);
	db = bl_db_open(path, err, sizeof(err));
	assert_non_null(db);
	assert_int_equal(bl_db_run(db, "CREATE TABLE baseline_schema (version INTEGER NOT NULL);"
				       "INSERT INTO baseline_schema VALUES (3)"),
			 0);
	bl_db_close(db);
	expect_open_error(path, "schema version 3 is newer");
}

/* Several processes add the same runs at once, in different orders: every run lands once,
 * and each new item is first-seen in exactly one run. */
static void test_concurrent_writers(void **state)
{
	enum { WRITERS = 4, RUNS = 10 };
	const char *path = new_db();
	struct bl_store s;
	pid_t pids[WRITERS];
	int base = counter;

	(void)state;
	open_store(&s, path, 5);
	bl_store_close(&s);
	for (int w = 0; w < WRITERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			open_store(&s, path, 5);
			for (int k = 0; k < RUNS; k++) {
				int i = (k + w) % RUNS;
				char a[256], b[256], uid[65];
				const char *ev[] = {a, b, NULL};
				struct bl_run r;
				char err[512];

				/* run i reaches port 1000+i, and the shared port 443 */
				snprintf(a, sizeof(a), CONN("127.0.9.1", % d, "null"), 1000 + i);
				snprintf(b, sizeof(b), CONN("127.0.9.1", 443, "null"));
				make_run(&r, "acme/app", "build", "", ev);
				snprintf(uid, sizeof(uid), "%064x", base + 1000 + i);
				bl_set(&r.uid, uid);
				if (bl_store_add(&s, &r, err, sizeof(err))) {
					fprintf(stderr, "writer %d: %s\n", w, err);
					_exit(1);
				}
				bl_run_free(&r);
			}
			bl_store_close(&s);
			_exit(0);
		}
	}
	for (int w = 0; w < WRITERS; w++) {
		int st;

		assert_int_equal(waitpid(pids[w], &st, 0), pids[w]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	open_store(&s, path, 5);
	assert_int_equal(count(&s, "SELECT count(*) FROM baseline_runs"), RUNS);
	assert_int_equal(count(&s, "SELECT count(*) FROM baseline_items"), RUNS * 2);
	assert_int_equal(count(&s, "SELECT count(*) FROM baseline_items WHERE first_seen = 1"),
			 RUNS + 1);
	assert_int_equal(count(&s, "SELECT count(*) FROM baseline_items WHERE first_seen = 1"
				   " AND ikey = 'tcp 127.0.9.1:443'"),
			 1);
	bl_store_close(&s);
}

/* A run's findings are kept per step for the record, never judged; the baseline's own are
 * not taken back in. */
static void test_findings_kept(void **state)
{
	json_t *f = json_loads("[{\"kind\":\"credential_sweep\",\"severity\":\"high\","
			       "\"step\":\"test\",\"description\":\"3 stores read\"},"
			       "{\"kind\":\"first_seen_exe\",\"severity\":\"info\"}]",
			       0, NULL);
	struct bl_store s;
	struct bl_run r;

	(void)state;
	assert_non_null(f);
	open_store(&s, new_db(), 5);
	make_run(&r, "acme/app", "build", "build", NULL);
	bl_run_findings(&r, f);
	add(&s, &r);
	assert_int_equal(n_first(&r), 0);
	bl_run_free(&r);
	assert_int_equal(count(&s, "SELECT count(*) FROM baseline_items WHERE kind = 'finding'"
				   " AND step = 'test' AND ikey = 'credential_sweep 3 stores read'"
				   " AND first_seen = 0"),
			 1);
	assert_int_equal(count(&s, "SELECT count(*) FROM baseline_items"), 1);
	json_decref(f);
	bl_store_close(&s);
}

/* The key from a CI context: CircleCI's workflow is a per-run id and is left out. */
static void test_ci_key(void **state)
{
	struct bl_run r;

	(void)state;
	bl_run_init(&r);
	bl_run_ci(&r, "{\"provider\":\"circleci\",\"repository\":\"acme/app\","
		      "\"workflow\":\"5f3c-per-run-id\",\"job\":\"build\"}");
	assert_string_equal(r.repo, "acme/app");
	assert_null(r.workflow);
	assert_string_equal(r.job, "build");
	bl_run_free(&r);
	bl_run_init(&r);
	bl_set(&r.job, "pinned");
	bl_run_ci(&r, "{\"provider\":\"github\",\"repository\":\"acme/app\","
		      "\"workflow\":\"ci\",\"job\":\"build\"}");
	assert_string_equal(r.workflow, "ci");
	assert_string_equal(r.job, "pinned"); /* flags win */
	assert_null(bl_run_keyless(&r));
	bl_run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_seen_and_threshold),
	    cmocka_unit_test(test_exe_new_content),
	    cmocka_unit_test(test_dns_parent),
	    cmocka_unit_test(test_once),
	    cmocka_unit_test(test_hostile),
	    cmocka_unit_test(test_prune),
	    cmocka_unit_test(test_migrate_v1),
	    cmocka_unit_test(test_bad_stores),
	    cmocka_unit_test(test_concurrent_writers),
	    cmocka_unit_test(test_ci_key),
	    cmocka_unit_test(test_findings_kept),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
