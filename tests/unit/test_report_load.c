/*
 * The report model against hand-written run directories that follow the
 * events.ndjson / summary.json contract: aggregation, PID reuse, bounds
 * (over-long lines, too many events, an unfinished last line), a missing
 * summary, and every renderer fed hostile strings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/report.h"

static char dir[64];

static void put(const char *name, const char *text)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/rw-report-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char summary[] =
    "{\"runwarden_version\":\"0.1.0\",\"command\":[\"make\"],\"mode\":\"audit\","
    "\"exit_status\":0,\"complete\":true,\"counts\":{\"exec\":2},"
    "\"events_lost\":{\"total\":3,\"exec\":3},\"missing_hooks\":[],"
    "\"ci\":{\"provider\":\"gitlab\"},\"leftovers\":[]}\n";

/* \udcff: how our writer escapes an invalid byte; jansson alone refuses it. */
static const char events[] =
    "{\"seq\":0,\"prev\":\"0\",\"ts\":\"t\",\"kind\":\"exec\",\"pid\":10,\"ppid\":1,"
    "\"comm\":\"sh\",\"exe\":\"/bin/sh\",\"step\":\"build\",\"argv\":[\"sh\",\"-c\",\"x\"],"
    "\"cwd\":\"/\"}\n"
    "{\"seq\":1,\"prev\":\"1\",\"ts\":\"t\",\"kind\":\"connect\",\"pid\":11,\"ppid\":10,"
    "\"comm\":\"curl\",\"exe\":\"/bin/c\\udcffurl\",\"step\":\"build\",\"proto\":\"tcp\","
    "\"family\":\"ipv4\",\"daddr\":\"198.51.100.7\",\"dport\":443,"
    "\"host\":\"a\\\"<script>\\n.example\",\"verdict\":\"deny\"}\n"
    "{\"seq\":2,\"prev\":\"2\",\"ts\":\"t\",\"kind\":\"connect\",\"pid\":11,\"ppid\":10,"
    "\"comm\":\"curl\",\"exe\":\"/bin/curl\",\"step\":\"build\",\"proto\":\"tcp\","
    "\"family\":\"ipv4\",\"daddr\":\"198.51.100.7\",\"dport\":443,"
    "\"host\":\"a\\\"<script>\\n.example\",\"verdict\":\"deny\"}\n"
    "{\"seq\":3,\"prev\":\"3\",\"ts\":\"t\",\"kind\":\"dns\",\"pid\":11,\"ppid\":10,"
    "\"comm\":\"curl\",\"exe\":\"/bin/curl\",\"step\":null,\"query\":\"q.example\","
    "\"qtype\":\"AAAA\",\"answers\":[\"2001:db8::2\"],\"verdict\":\"audit\"}\n"
    "{\"seq\":4,\"prev\":\"4\",\"ts\":\"t\",\"kind\":\"file\",\"pid\":11,\"ppid\":10,"
    "\"comm\":\"curl\",\"exe\":\"/bin/curl\",\"step\":\"build\",\"path\":\"/root/.aws/"
    "credentials\",\"flags\":\"O_RDONLY\"}\n"
    "{\"seq\":5,\"prev\":\"5\",\"ts\":\"t\",\"kind\":\"exit\",\"pid\":11,\"ppid\":10,"
    "\"comm\":\"curl\",\"exe\":\"/bin/curl\",\"step\":\"build\",\"status\":7}\n"
    "{\"seq\":6,\"prev\":\"6\",\"ts\":\"t\",\"kind\":\"exec\",\"pid\":11,\"ppid\":10,"
    "\"comm\":\"ls\",\"exe\":\"/bin/ls\",\"step\":\"test\",\"argv\":[\"ls\"],\"cwd\":\"/\"}\n"
    "{\"seq\":7,\"prev\":\"7\",\"ts\":\"t\",\"kind\":\"futurekind\",\"pid\":11}\n"
    "{\"seq\":8,\"prev\":\"8\",\"kind\":\"close\",\"count\":8,\"root\":\"8\"}\n";

static void test_load(void **state)
{
	(void)state;
	struct report r;
	char err[256] = "";

	put("summary.json", summary);
	put("events.ndjson", events);
	assert_int_equal(report_load(&r, dir, REPORT_MAX_EVENTS, err, sizeof(err)), 0);
	assert_true(r.closed);
	assert_int_equal(r.n_events, 9);
	assert_int_equal(r.counts[RK_EXEC], 2);
	assert_int_equal(r.counts[RK_CONNECT], 2);
	assert_int_equal(r.n_denials, 2);
	assert_int_equal(r.n_audits, 1);
	/* two connections to one destination: one row, count 2 */
	assert_int_equal(json_array_size(r.dests), 1);
	assert_int_equal(jget_int(json_array_get(r.dests, 0), "count"), 2);
	/* pid 10, pid 11 (curl, exited), pid 11 again (ls): PID reuse is a new process */
	assert_int_equal(json_array_size(r.procs), 3);
	json_t *curl = json_array_get(r.procs, 1), *ls = json_array_get(r.procs, 2);
	assert_int_equal(jget_int(curl, "parent"), 0);
	assert_int_equal(jget_int(ls, "parent"), 0);
	assert_true(json_is_true(json_object_get(curl, "denied")));
	assert_int_equal(jget_int(curl, "status"), 7);
	assert_string_equal(jget_str(curl, "exe"), "/bin/c\xef\xbf\xbdurl");
	assert_int_equal(json_array_size(json_object_get(curl, "net")), 1);
	assert_string_equal(jget_str(ls, "step"), "test");
	assert_int_equal(json_array_size(r.steps), 2);
	assert_int_equal(json_array_size(r.files), 1);

	/* every renderer runs clean under the sanitizers and writes something */
	char *buf;
	size_t len;
	FILE *f = open_memstream(&buf, &len);
	assert_int_equal(report_text(&r, f), 0);
	assert_int_equal(report_github(&r, f, f), 0);
	assert_int_equal(report_junit(&r, f), 0);
	assert_int_equal(report_html(&r, f), 0);
	fclose(f);
	assert_true(len > 1000);
	/* the data block never contains a raw '<' that could close the script */
	const char *data = strstr(buf, "id=\"rw-data\">");
	assert_non_null(data);
	const char *end = strstr(data, "</script>");
	assert_non_null(end);
	assert_null(memchr(data + 13, '<', (size_t)(end - data - 13)));
	assert_non_null(strstr(buf, "::error title=runwarden%3A denied::"));
	assert_null(strstr(buf, "<script>\n.example"));
	free(buf);
	report_free(&r);
}

static void test_bounds(void **state)
{
	(void)state;
	struct report r;
	char err[256];

	/* more events than allowed */
	put("events.ndjson", events);
	assert_int_equal(report_load(&r, dir, 3, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "more than 3 events"));
	report_free(&r);

	/* an over-long line */
	size_t n = REPORT_MAX_LINE + 100;
	char *big = malloc(n + 2);
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\n';
	big[n + 1] = '\0';
	put("events.ndjson", big);
	free(big);
	assert_int_equal(report_load(&r, dir, REPORT_MAX_EVENTS, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":1: line longer than"));
	report_free(&r);

	/* garbage in the middle: error with the line number */
	put("events.ndjson", "{\"kind\":\"exec\",\"pid\":1}\nnot json\n{}\n");
	assert_int_equal(report_load(&r, dir, REPORT_MAX_EVENTS, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: not a JSON object"));
	report_free(&r);

	/* an array where an object belongs */
	put("events.ndjson", "[1,2]\n");
	assert_int_equal(report_load(&r, dir, REPORT_MAX_EVENTS, err, sizeof(err)), -1);
	report_free(&r);

	/* the writer died mid-line: earlier lines count, the record is incomplete */
	put("events.ndjson", "{\"kind\":\"exec\",\"pid\":1,\"ppid\":0}\n{\"kind\":\"conn");
	assert_int_equal(report_load(&r, dir, REPORT_MAX_EVENTS, err, sizeof(err)), 0);
	assert_int_equal(r.counts[RK_EXEC], 1);
	assert_false(r.closed);
	assert_true(json_array_size(r.notes) >= 2);
	report_free(&r);

	/* bad summary */
	put("events.ndjson", "");
	put("summary.json", "{\"a\":");
	assert_int_equal(report_load(&r, dir, REPORT_MAX_EVENTS, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "summary.json"));
	report_free(&r);
	put("summary.json", summary);
}

static void test_summary_only(void **state)
{
	(void)state;
	struct report r;
	char err[256], p[128];

	snprintf(p, sizeof(p), "%s/events.ndjson", dir);
	unlink(p);
	put("summary.json",
	    "{\"step\":\"s1\",\"counts\":{\"connect\":5},\"destinations\":[{\"proto\":"
	    "\"tcp\",\"family\":\"ipv6\",\"daddr\":\"2001:db8::1\",\"dport\":443,"
	    "\"host\":null,\"verdict\":\"block\",\"count\":5}]}");
	assert_int_equal(report_load(&r, dir, REPORT_MAX_EVENTS, err, sizeof(err)), 0);
	assert_false(r.have_events);
	assert_int_equal(r.counts[RK_CONNECT], 5);
	/* attempts, not rows; the denied destination is the violation list */
	assert_int_equal(r.n_denials, 5);
	assert_int_equal(json_array_size(r.violations), 1);
	assert_string_equal(jget_str(json_array_get(r.violations, 0), "kind"), "connect");
	assert_string_equal(jget_str(json_array_get(r.dests, 0), "step"), "s1");
	char name[64];
	report_dest_name(json_array_get(r.dests, 0), name, sizeof(name));
	assert_string_equal(name, "[2001:db8::1]:443");
	report_free(&r);

	/* neither file */
	snprintf(p, sizeof(p), "%s/summary.json", dir);
	unlink(p);
	assert_int_equal(report_load(&r, dir, REPORT_MAX_EVENTS, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "neither"));
	report_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_load),
	    cmocka_unit_test(test_bounds),
	    cmocka_unit_test(test_summary_only),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
