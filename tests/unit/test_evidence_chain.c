/*
 * Unit tests for the verifier's side of the hash chain, on logs written by
 * the real writer (evlog.c) and then damaged: every flipped byte, dropped,
 * swapped and truncated lines, a missing or forged closing record, hostile
 * sizes. Each rejection must name the right check and line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "evidence/chain.h"
#include "evidence/evlog.h"
#include "evidence/statement.h"
#include "test_evidence_util.h"

#define NEV 6

struct fixture {
	char *dir, *path;
	char *log; /* the intact log */
	size_t len;
	size_t off[NEV + 2]; /* line start offsets; off[NEV+1] = len */
};

static void write_log(const char *path, int nev, bool close)
{
	struct evlog l;

	assert_int_equal(tu_evlog_open(&l, path), 0);
	for (int i = 0; i < nev; i++) {
		char body[160];

		snprintf(body, sizeof(body),
			 ",\"ts\":\"2026-11-25T13:00:00.%09dZ\",\"kind\":\"exec\",\"pid\":%d,"
			 "\"exe\":\"/usr/bin/x\",\"argv\":[\"x\",\"arg%d\"]",
			 i, 100 + i, i);
		assert_true(evlog_append(&l, body, strlen(body)) > 0);
	}
	if (close)
		assert_int_equal(evlog_close(&l, ",\"events_lost\":{\"total\":0},\"complete\":true,"
						 "\"missing_hooks\":[]"),
				 0);
	evlog_release(&l);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	size_t line = 0;

	f->dir = tu_tmpdir();
	f->path = tu_path(f->dir, "events.ndjson");
	write_log(f->path, NEV, true);
	f->log = tu_read(f->path, &f->len);
	for (size_t i = 0; i < f->len; i++)
		if (i == 0 || f->log[i - 1] == '\n')
			f->off[line++] = i;
	assert_int_equal(line, NEV + 1);
	f->off[NEV + 1] = f->len;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tu_rmrf(f->dir);
	free(f->dir);
	free(f->path);
	free(f->log);
	free(f);
	return 0;
}

/* Checks a buffer; returns the chain's code (NULL when intact) and its line. */
static const char *check(const void *buf, size_t len, uint64_t *line)
{
	static char code[32];
	struct chain c;
	int rc;

	chain_init(&c, NULL, NULL);
	rc = chain_feed(&c, buf, len);
	if (!rc)
		rc = chain_finish(&c);
	*line = c.where;
	snprintf(code, sizeof(code), "%s", rc ? c.code : "");
	if (rc && !c.err[0])
		fail_msg("rejected without a reason");
	chain_release(&c);
	return rc ? code : NULL;
}

static void intact(void **state)
{
	struct fixture *f = *state;
	struct chain c;
	char sha[65], head[65];

	chain_init(&c, NULL, NULL);
	assert_int_equal(chain_verify_file(&c, f->path), 0);
	assert_int_equal(c.lines, NEV + 1);
	assert_true(c.closed);
	assert_int_equal(c.count, NEV);
	sha256_hex(f->log, f->len, sha);
	assert_string_equal(c.sha256, sha);
	sha256_hex(f->log + f->off[NEV], f->len - f->off[NEV], head);
	assert_string_equal(c.head, head);
	/* root = hash of the last event line = the prev of the closing record */
	sha256_hex(f->log + f->off[NEV - 1], f->off[NEV] - f->off[NEV - 1], head);
	assert_string_equal(c.root, head);
	chain_release(&c);

	/* Streaming: one byte at a time gives the same answer. */
	chain_init(&c, NULL, NULL);
	for (size_t i = 0; i < f->len; i++)
		assert_int_equal(chain_feed(&c, f->log + i, 1), 0);
	assert_int_equal(chain_finish(&c), 0);
	assert_string_equal(c.sha256, sha);
	chain_release(&c);
}

/* Every byte of every event line flipped: caught on that line or the next. */
static void every_flipped_byte(void **state)
{
	struct fixture *f = *state;
	char *copy = malloc(f->len);
	uint64_t line;

	for (int l = 0; l < NEV; l++) {
		for (size_t i = f->off[l]; i < f->off[l + 1]; i++) {
			memcpy(copy, f->log, f->len);
			copy[i] ^= 0x01;
			const char *code = check(copy, f->len, &line);

			if (!code)
				fail_msg("flip at byte %zu (line %d) went unnoticed", i, l + 1);
			if (line != (uint64_t)l + 1 && line != (uint64_t)l + 2)
				fail_msg("flip on line %d reported on line %llu (%s)", l + 1,
					 (unsigned long long)line, code);
		}
	}
	free(copy);
}

static void dropped_swapped_truncated(void **state)
{
	struct fixture *f = *state;
	struct strbuf sb = STRBUF_INIT;
	uint64_t line;

	/* line 3 dropped */
	sb_add(&sb, f->log, f->off[2]);
	sb_add(&sb, f->log + f->off[3], f->len - f->off[3]);
	assert_string_equal(check(sb.buf, sb.len, &line), "seq");
	assert_int_equal(line, 3);

	/* lines 2 and 3 swapped */
	sb_reset(&sb);
	sb_add(&sb, f->log, f->off[1]);
	sb_add(&sb, f->log + f->off[2], f->off[3] - f->off[2]);
	sb_add(&sb, f->log + f->off[1], f->off[2] - f->off[1]);
	sb_add(&sb, f->log + f->off[3], f->len - f->off[3]);
	assert_string_equal(check(sb.buf, sb.len, &line), "seq");
	assert_int_equal(line, 2);

	/* closing record removed */
	assert_string_equal(check(f->log, f->off[NEV], &line), "no-close");
	assert_int_equal(line, NEV);

	/* cut inside the closing record, and inside an event line */
	assert_string_equal(check(f->log, f->len - 1, &line), "truncated");
	assert_int_equal(line, NEV + 1);
	assert_string_equal(check(f->log, f->off[2] + 10, &line), "truncated");
	assert_int_equal(line, 3);

	/* anything after the closing record, even a valid-looking line */
	sb_reset(&sb);
	sb_add(&sb, f->log, f->len);
	sb_add(&sb, f->log, f->off[1]);
	assert_string_equal(check(sb.buf, sb.len, &line), "after-close");
	assert_int_equal(line, NEV + 2);

	/* the first line removed: seq 2 where 1 is expected */
	assert_string_equal(check(f->log + f->off[1], f->len - f->off[1], &line), "seq");
	assert_int_equal(line, 1);

	assert_string_equal(check("", 0, &line), "empty");
	assert_string_equal(check("\n", 1, &line), "not-json");
	assert_string_equal(check("[1]\n", 4, &line), "not-json");
	sb_release(&sb);
}

/* Lines that chain correctly but lie in the closing record. */
static void forged_closing_records(void **state)
{
	struct fixture *f = *state;
	struct evlog l;
	uint64_t line;
	size_t len;
	char *buf;

	assert_int_equal(tu_evlog_open(&l, f->path), 0);
	evlog_append(&l, ",\"kind\":\"exec\"", 14);
	evlog_append(&l, ",\"kind\":\"close\",\"count\":7", 26);
	evlog_abandon(&l);
	buf = tu_read(f->path, &len);
	assert_string_equal(check(buf, len, &line), "close-count");
	assert_int_equal(line, 2);
	free(buf);

	assert_int_equal(tu_evlog_open(&l, f->path), 0);
	evlog_append(&l, ",\"kind\":\"exec\"", 14);
	evlog_append(&l, ",\"kind\":\"close\",\"count\":1,\"root\":\"00\"", 37);
	evlog_abandon(&l);
	buf = tu_read(f->path, &len);
	assert_string_equal(check(buf, len, &line), "close-root");
	free(buf);

	/* A writer that died: no closing record. */
	write_log(f->path, 3, false);
	buf = tu_read(f->path, &len);
	assert_string_equal(check(buf, len, &line), "no-close");
	assert_int_equal(line, 3);
	free(buf);

	/* Duplicate members are ambiguous: refused. */
	assert_int_equal(tu_evlog_open(&l, f->path), 0);
	evlog_append(&l, ",\"seq\":1", 8);
	evlog_abandon(&l);
	buf = tu_read(f->path, &len);
	assert_string_equal(check(buf, len, &line), "not-json");
	free(buf);

	/* Line 1 must start from 64 zeros. */
	const char *bad = "{\"seq\":1,\"prev\":\"1111111111111111111111111111111111111111111111111"
			  "111111111111111\"}\n";
	assert_string_equal(check(bad, strlen(bad), &line), "prev");
}

/* An endless line is cut off at CHAIN_MAX_LINE with bounded memory. */
static void overlong_line(void **state)
{
	char *chunk = malloc(1 << 20);
	struct chain c;
	int rc = 0;

	(void)state;
	memset(chunk, 'a', 1 << 20);
	chain_init(&c, NULL, NULL);
	for (int i = 0; i < 64 && !rc; i++)
		rc = chain_feed(&c, chunk, 1 << 20);
	assert_int_equal(rc, -1);
	assert_string_equal(c.code, "line-too-long");
	assert_true(c.line.alloc <= 2 * CHAIN_MAX_LINE);
	chain_release(&c);
	free(chunk);
}

/* \udcXX escapes give back the original bytes (Python's surrogateescape). */
static void escaped_bytes(void **state)
{
	struct strbuf out = STRBUF_INIT;
	const char *line = "{\"argv\":[\"x\",\"a\\udcff\\\\udc41b\\u00e9\"],\"exe\":\"/p\\udc80\"}";

	(void)state;
	assert_int_equal(evlog_string_bytes(line, strlen(line), "argv", 1, &out), 0);
	assert_int_equal(out.len, 11);
	assert_memory_equal(out.buf, "a\xff\\udc41b\xc3\xa9", 11);
	sb_reset(&out);
	assert_int_equal(evlog_string_bytes(line, strlen(line), "exe", 0, &out), 0);
	assert_memory_equal(out.buf, "/p\x80", 3);
	assert_int_equal(evlog_string_bytes(line, strlen(line), "argv", 5, &out), 1);
	sb_release(&out);
}

/*
 * What the writer holds in memory (and runwarden signs) is what the file
 * holds: chain root and head, line count, digest of every byte. And lines
 * reach the file when flushed, before any closing record (a writer killed
 * after a flush leaves them all).
 */
static void sealed_values_match_file(void **state)
{
	struct fixture *f = *state;
	char *path = tu_path(f->dir, "sealed.ndjson");
	char sha[EVLOG_HASH_HEX], last[EVLOG_HASH_HEX], before[EVLOG_HASH_HEX];
	struct evlog l;
	size_t len;
	char *buf;

	assert_int_equal(tu_evlog_open(&l, path), 0);
	for (int i = 0; i < 3; i++)
		assert_true(evlog_append(&l, ",\"kind\":\"exec\"", 14) > 0);
	assert_int_equal(evlog_flush(&l), 0);
	buf = tu_read(path, &len);
	assert_int_equal(len, l.bytes);
	assert_int_equal(buf[len - 1], '\n');
	free(buf);
	memcpy(before, l.prev, sizeof(before));
	assert_int_equal(evlog_close(&l, ",\"complete\":true"), 0);
	buf = tu_read(path, &len);
	sha256_hex(buf, len, sha);
	assert_string_equal(l.sha256, sha);
	assert_string_equal(l.root, before);
	buf[len - 1] = 0;
	char *close = strrchr(buf, '\n') + 1;
	buf[len - 1] = '\n';
	sha256_hex(close, strlen(close), last);
	assert_string_equal(l.head, last);
	assert_int_equal(l.lines, 4);
	assert_int_equal(strncmp(close, l.close_line.buf, l.close_line.len), 0);
	assert_true(l.closed);
	evlog_release(&l);
	free(buf);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(intact, setup, teardown),
	    cmocka_unit_test_setup_teardown(every_flipped_byte, setup, teardown),
	    cmocka_unit_test_setup_teardown(dropped_swapped_truncated, setup, teardown),
	    cmocka_unit_test_setup_teardown(forged_closing_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(sealed_values_match_file, setup, teardown),
	    cmocka_unit_test(overlong_line),
	    cmocka_unit_test(escaped_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
