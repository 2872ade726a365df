/*
 * The event-log line reader on the files a hostile run directory can hold: a last line cut
 * mid-write, a line longer than the bound (memory stays bounded), NUL bytes inside a line
 * (the fgets readers it replaced cut the line at the NUL and glued the next one on), lines
 * longer than one read, a FIFO in place of the log, a missing log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "evidence/evread.h"

static char dir[] = "/tmp/rw-evread-XXXXXX";
static char path[256];

static void put(const void *data, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof(path), "%s/events.ndjson", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

static void expect_line(struct evread *r, const char *want, size_t len, bool terminated)
{
	assert_int_equal(evread_next(r), 1);
	assert_int_equal(r->line.len, len);
	assert_memory_equal(r->line.buf, want, len);
	assert_int_equal(r->line.buf[len], 0);
	assert_int_equal(r->terminated, terminated);
}

static void test_truncated_last_line(void **state)
{
	static const char log[] = "{\"seq\":1}\n\n{\"seq\":2}\n{\"seq\":3,\"ki";
	struct evread r;
	char err[EV_ERRLEN];

	(void)state;
	put(log, sizeof(log) - 1);
	assert_int_equal(evread_open(&r, path, 1024, err), 0);
	expect_line(&r, "{\"seq\":1}", 9, true);
	assert_int_equal(r.lineno, 1);
	expect_line(&r, "", 0, true);
	expect_line(&r, "{\"seq\":2}", 9, true);
	expect_line(&r, "{\"seq\":3,\"ki", 12, false);
	assert_int_equal(r.lineno, 4);
	assert_int_equal(evread_next(&r), 0);
	assert_int_equal(evread_next(&r), 0);
	evread_close(&r);
}

static void test_overlong_line(void **state)
{
	char *log = malloc(300);
	struct evread r;
	char err[EV_ERRLEN], want[EV_ERRLEN];

	(void)state;
	/* line 1: exactly the bound; line 2: one byte over it */
	memset(log, 'a', 100);
	log[100] = '\n';
	memset(log + 101, 'b', 101);
	log[202] = '\n';
	put(log, 203);
	assert_int_equal(evread_open(&r, path, 100, err), 0);
	assert_int_equal(evread_next(&r), 1);
	assert_int_equal(r.line.len, 100);
	assert_int_equal(evread_next(&r), -1);
	snprintf(want, sizeof(want), "%s:2: line longer than 100 bytes", path);
	assert_string_equal(r.err, want);
	/* Nothing more after an error. */
	assert_int_equal(evread_next(&r), -1);
	evread_close(&r);
	free(log);
}

static void test_huge_line_bounded(void **state)
{
	size_t n = 8u << 20;
	char *log = malloc(n);
	struct evread r;
	char err[EV_ERRLEN];

	(void)state;
	memset(log, 'x', n); /* 8 MiB, no newline */
	put(log, n);
	assert_int_equal(evread_open(&r, path, 1u << 20, err), 0);
	assert_int_equal(evread_next(&r), -1);
	assert_non_null(strstr(r.err, ":1: line longer than 1048576 bytes"));
	/* It stopped reading at the bound (plus one read, in a buffer that grows by doubling),
	 * not at the end of the file. */
	assert_true(r.in.alloc <= 2 * ((1u << 20) + (64u << 10) + 1));
	evread_close(&r);
	free(log);
}

static void test_nul_bytes_stay_in_the_line(void **state)
{
	static const char log[] = "{\"a\":1}\0junk\n{\"b\":2}\n";
	struct evread r;
	char err[EV_ERRLEN];

	(void)state;
	put(log, sizeof(log) - 1);
	assert_int_equal(evread_open(&r, path, 1024, err), 0);
	expect_line(&r, "{\"a\":1}\0junk", 12, true);
	expect_line(&r, "{\"b\":2}", 7, true);
	assert_int_equal(r.lineno, 2);
	assert_int_equal(evread_next(&r), 0);
	evread_close(&r);
}

static void test_lines_across_reads(void **state)
{
	size_t len = 100000, n = 3;
	char *log = malloc((len + 1) * n);
	struct evread r;
	char err[EV_ERRLEN];

	(void)state;
	for (size_t i = 0; i < n; i++) {
		memset(log + i * (len + 1), 'a' + i, len);
		log[i * (len + 1) + len] = '\n';
	}
	put(log, (len + 1) * n);
	assert_int_equal(evread_open(&r, path, len, err), 0);
	for (size_t i = 0; i < n; i++)
		expect_line(&r, log + i * (len + 1), len, true);
	assert_int_equal(evread_next(&r), 0);
	evread_close(&r);
	free(log);
}

static void test_fifo_refused(void **state)
{
	char fifo[300], want[400];
	struct evread r;
	char err[EV_ERRLEN];
	int dfd;

	(void)state;
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	/* Would block for a writer if opened plainly. */
	assert_int_equal(evread_open(&r, fifo, 1024, err), -1);
	snprintf(want, sizeof(want), "%s: not a regular file (a FIFO)", fifo);
	assert_string_equal(err, want);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	assert_int_equal(evread_openat(&r, dfd, "fifo", "run/events.ndjson", 1024, err), -1);
	assert_string_equal(err, "run/events.ndjson: not a regular file (a FIFO)");
	/* A link planted in its place is not followed. */
	assert_int_equal(symlinkat(path, dfd, "link"), 0);
	assert_int_equal(evread_openat(&r, dfd, "link", "run/link", 1024, err), -1);
	assert_int_equal(errno, ELOOP);
	unlinkat(dfd, "link", 0);
	close(dfd);
	unlink(fifo);
	evread_close(&r);
}

static void test_missing(void **state)
{
	char missing[300];
	struct evread r;
	char err[EV_ERRLEN];

	(void)state;
	snprintf(missing, sizeof(missing), "%s/none", dir);
	assert_int_equal(evread_open(&r, missing, 1024, err), -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(err, "No such file"));
	assert_int_equal(evread_next(&r), 0);
	evread_close(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_truncated_last_line),
	    cmocka_unit_test(test_overlong_line),
	    cmocka_unit_test(test_huge_line_bounded),
	    cmocka_unit_test(test_nul_bytes_stay_in_the_line),
	    cmocka_unit_test(test_lines_across_reads),
	    cmocka_unit_test(test_fifo_refused),
	    cmocka_unit_test(test_missing),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
