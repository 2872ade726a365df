/* Unit tests for the source snapshot and comparison (findings/srcmod.c) and the
 * source_modified finding drawn from it: a real git checkout made with libgit2 in a temp
 * directory, changed the ways a job changes it (append, rewrite, touch, delete, rename over,
 * a directory swapped for a link, a file swapped for a FIFO), and the caps. The end-to-end
 * replays with real jobs are in tests/e2e/test_srcmod.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "findings/findings.h"
#include "findings/srcmod.h"
#include "observe/proctab.h"

struct repo {
	char dir[64];
};

static void write_file(const char *dir, const char *rel, const char *text, const char *mode)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	f = fopen(p, mode);
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* A checkout of a.c, b.c, sub/c.c and package-lock.json, all in the index. */
static struct repo *repo_new(void)
{
	static const char *const files[] = {"a.c", "b.c", "sub/c.c", "package-lock.json"};
	struct repo *r = calloc(1, sizeof(*r));
	git_repository *repo;
	git_index *idx;
	char p[512];

	snprintf(r->dir, sizeof(r->dir), "/tmp/rw-srcmod-XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	git_libgit2_init();
	assert_int_equal(git_repository_init(&repo, r->dir, 0), 0);
	snprintf(p, sizeof(p), "%s/sub", r->dir);
	assert_int_equal(mkdir(p, 0755), 0);
	assert_int_equal(git_repository_index(&idx, repo), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		write_file(r->dir, files[i], files[i], "w");
		assert_int_equal(git_index_add_bypath(idx, files[i]), 0);
	}
	assert_int_equal(git_index_write(idx), 0);
	git_index_free(idx);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return r;
}

static void repo_free(struct repo *r)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
	assert_int_equal(system(cmd), 0);
	free(r);
}

static const struct srcmod_limits big = {.files_max = SRCMOD_FILES_MAX,
					 .hash_bytes_max = SRCMOD_HASH_BYTES_MAX};

static void snap(struct srcmod *s, const struct repo *r, const struct srcmod_limits *lim)
{
	char err[256] = "";

	srcmod_init(s);
	assert_int_equal(srcmod_snapshot(s, r->dir, lim, err, sizeof(err)), 0);
	assert_true(s->active);
}

/* The changes as "path:kind" joined by spaces, in index order. */
static char *changes(struct srcmod *s)
{
	static const char *const names[] = {"modified", "replaced", "deleted", "unverified"};
	struct srcmod_change *c;
	size_t n = srcmod_compare(s, &c);
	static char buf[1024];

	buf[0] = 0;
	for (size_t i = 0; i < n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s:%s", i ? " " : "",
			 c[i].file->path, names[c[i].kind]);
	free(c);
	return buf;
}

static void path_of(char *p, size_t len, const struct repo *r, const char *rel)
{
	snprintf(p, len, "%s/%s", r->dir, rel);
}

static void untouched_checkout_has_no_change(void **state)
{
	struct repo *r = repo_new();
	struct srcmod s;

	(void)state;
	snap(&s, r, &big);
	assert_int_equal(s.n, 4);
	assert_string_equal(changes(&s), "");
	srcmod_free(&s);
	repo_free(r);
}

static void each_kind_of_change(void **state)
{
	struct repo *r = repo_new();
	struct srcmod s;
	char p[512], q[512];

	(void)state;
	snap(&s, r, &big);
	write_file(r->dir, "a.c", "/* planted */\n", "a"); /* appended in place */
	path_of(p, sizeof(p), r, "b.c");		   /* renamed over */
	path_of(q, sizeof(q), r, "b.c.new");
	write_file(r->dir, "b.c.new", "other\n", "w");
	assert_int_equal(rename(q, p), 0);
	path_of(p, sizeof(p), r, "package-lock.json"); /* deleted */
	assert_int_equal(unlink(p), 0);
	assert_string_equal(changes(&s), "a.c:modified b.c:replaced package-lock.json:deleted");
	srcmod_free(&s);
	repo_free(r);
}

static void same_content_is_no_change(void **state)
{
	struct repo *r = repo_new();
	struct srcmod s;
	char p[512], q[512];

	(void)state;
	snap(&s, r, &big);
	write_file(r->dir, "a.c", "a.c", "w"); /* rewritten, same bytes */
	path_of(p, sizeof(p), r, "b.c");       /* touched */
	assert_int_equal(utimensat(AT_FDCWD, p, NULL, 0), 0);
	write_file(r->dir, "c.tmp", "sub/c.c", "w"); /* replaced by a copy: new inode */
	path_of(p, sizeof(p), r, "c.tmp");
	path_of(q, sizeof(q), r, "sub/c.c");
	assert_int_equal(rename(p, q), 0);
	assert_string_equal(changes(&s), "");
	srcmod_free(&s);
	repo_free(r);
}

/* The job swaps a directory for a link to elsewhere, and a file for a FIFO: the agent neither
 * reads outside the checkout nor blocks. */
static void hostile_swaps_are_replacements(void **state)
{
	struct repo *r = repo_new();
	struct srcmod s;
	char p[512], q[512];

	(void)state;
	snap(&s, r, &big);
	path_of(p, sizeof(p), r, "sub");
	path_of(q, sizeof(q), r, "sub.old");
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(symlink(q, p), 0); /* sub/c.c now resolves, through a link */
	path_of(p, sizeof(p), r, "a.c");
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkfifo(p, 0644), 0);
	assert_string_equal(changes(&s), "a.c:replaced sub/c.c:replaced");
	srcmod_free(&s);
	repo_free(r);
}

/* core.autocrlf: the work tree holds CRLF, the index's blob LF, and the index's stat is the
 * CRLF file's. A build rewriting the same bytes is no change; a real edit is. */
static void crlf_checkout_compared_as_git_stores_it(void **state)
{
	struct repo *r = repo_new();
	git_repository *repo;
	git_config *cfg;
	git_index *idx;
	struct srcmod s;
	struct timespec old[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
	char p[512];

	(void)state;
	git_libgit2_init();
	assert_int_equal(git_repository_open(&repo, r->dir), 0);
	assert_int_equal(git_repository_config(&cfg, repo), 0);
	assert_int_equal(git_config_set_string(cfg, "core.autocrlf", "true"), 0);
	write_file(r->dir, "w.txt", "one\r\ntwo\r\n", "w");
	path_of(p, sizeof(p), r, "w.txt");
	assert_int_equal(utimensat(AT_FDCWD, p, old, 0), 0); /* not racy with the index */
	assert_int_equal(git_repository_index(&idx, repo), 0);
	assert_int_equal(git_index_add_bypath(idx, "w.txt"), 0);
	assert_int_equal(git_index_write(idx), 0);
	git_index_free(idx);
	git_config_free(cfg);
	git_repository_free(repo);
	git_libgit2_shutdown();

	snap(&s, r, &big);
	assert_string_equal(s.files[4].path, "w.txt");
	assert_true(s.files[4].start_from_index);
	write_file(r->dir, "w.txt", "one\r\ntwo\r\n", "w");
	assert_string_equal(changes(&s), "");
	write_file(r->dir, "w.txt", "one\r\nthree\r\n", "w");
	assert_string_equal(changes(&s), "w.txt:modified");
	srcmod_free(&s);
	repo_free(r);
}

static void caps_are_counted(void **state)
{
	struct repo *r = repo_new();
	struct srcmod_limits two = {.files_max = 2, .hash_bytes_max = SRCMOD_HASH_BYTES_MAX};
	struct srcmod_limits nohash = {.files_max = SRCMOD_FILES_MAX, .hash_bytes_max = 0};
	struct srcmod s;

	(void)state;
	snap(&s, r, &two);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.files_skipped, 2);
	srcmod_free(&s);

	/* Dirty at start (the index's stat no longer matches), no budget to hash it: a later
	 * change of its stat is reported, unverified, never silently passed. */
	write_file(r->dir, "a.c", "dirty before the job\n", "w");
	snap(&s, r, &nohash);
	assert_false(s.files[0].start_known);
	write_file(r->dir, "a.c", "and changed by it\n", "a");
	assert_string_equal(changes(&s), "a.c:unverified");
	assert_true(s.files_unhashed >= 1);
	srcmod_free(&s);
	repo_free(r);
}

static size_t track_three(void *ctx, const struct file_key *keys, size_t n)
{
	size_t *seen = ctx;

	assert_non_null(keys);
	*seen = n;
	return n < 3 ? n : 3; /* the kernel map holds three */
}

static void writers_and_the_finding(void **state)
{
	struct repo *r = repo_new();
	struct proctab procs;
	struct findings f;
	struct finding_proc w1 = {.pid = 100, .exe = "/bin/sh"},
			    w2 = {.pid = 101, .exe = "/usr/bin/npm"};
	size_t tracked = 0;
	const struct srcmod_file *a, *lock;

	(void)state;
	proctab_init(&procs);
	findings_init(&f, &procs);
	snap(&f.srcmod, r, &big);
	srcmod_track(&f.srcmod, track_three, &tracked);
	assert_int_equal(tracked, 4);
	assert_int_equal(f.srcmod.kernel_untracked, 1);
	a = &f.srcmod.files[0];
	lock = &f.srcmod.files[2]; /* index order: by path */
	assert_string_equal(lock->path, "package-lock.json");
	assert_string_equal(findings_on_tracked_write(&f, &w1, a->kdev, a->ino, 7), "a.c");
	assert_string_equal(findings_on_tracked_write(&f, &w1, a->kdev, a->ino, 8), "a.c");
	assert_null(findings_on_tracked_write(&f, &w1, a->kdev, a->ino + 1000000, 9));
	assert_string_equal(findings_on_tracked_write(&f, &w2, lock->kdev, lock->ino, 10),
			    "package-lock.json");
	assert_int_equal(a->n_w, 1); /* one writer, named by its first open */
	write_file(r->dir, "a.c", "x\n", "a");
	write_file(r->dir, "package-lock.json", "{}\n", "w");
	findings_finish(&f, NULL, 0);
	assert_int_equal(f.n, 2);
	for (size_t i = 0; i < f.n; i++) {
		const struct finding *x = &f.v[i];

		assert_int_equal(x->kind, FK_SOURCE_MODIFIED);
		if (x->sev == SEV_HIGH) {
			assert_int_equal(x->pid, 100);
			assert_non_null(
			    strstr(x->details, "\"path\":\"a.c\",\"change\":\"modified\""));
			assert_int_equal(x->n_ev, 1);
			assert_int_equal(x->ev[0], 7);
		} else {
			assert_int_equal(x->sev, SEV_LOW);
			assert_int_equal(x->pid, 101);
			assert_non_null(strstr(x->details, "package-lock.json"));
		}
	}
	findings_free(&f);
	proctab_free(&procs);
	repo_free(r);
}

static void expected_rewrites(void **state)
{
	(void)state;
	assert_true(srcmod_expected_rewrite("package-lock.json"));
	assert_true(srcmod_expected_rewrite("web/yarn.lock"));
	assert_true(srcmod_expected_rewrite("go.sum"));
	assert_false(srcmod_expected_rewrite("go.mod"));
	assert_false(srcmod_expected_rewrite("src/package-lock.json.c"));
	assert_false(srcmod_expected_rewrite("lock/main.c"));
}

static void not_a_checkout(void **state)
{
	char dir[] = "/tmp/rw-srcmod-plain-XXXXXX", err[256];
	struct srcmod s;

	(void)state;
	assert_non_null(mkdtemp(dir));
	srcmod_init(&s);
	assert_int_equal(srcmod_snapshot(&s, dir, &big, err, sizeof(err)), 1);
	assert_false(s.active);
	assert_int_equal(srcmod_compare(&s, &(struct srcmod_change *){NULL}), 0);
	srcmod_free(&s);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(untouched_checkout_has_no_change),
	    cmocka_unit_test(each_kind_of_change),
	    cmocka_unit_test(same_content_is_no_change),
	    cmocka_unit_test(hostile_swaps_are_replacements),
	    cmocka_unit_test(crlf_checkout_compared_as_git_stores_it),
	    cmocka_unit_test(caps_are_counted),
	    cmocka_unit_test(writers_and_the_finding),
	    cmocka_unit_test(expected_rewrites),
	    cmocka_unit_test(not_a_checkout),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
