/* Unit tests for the collector's fast paths (docs/performance.md, capacity): each must write
 * exactly what the printf/inet_ntop/lookup path it replaced wrote, and its caches must never
 * outlive what they point at. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#if defined(__SANITIZE_ADDRESS__)
/* ASan's allocator statistics (sanitizer/allocator_interface.h, not in every package). */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/jsonw.h"
#include "common/util.h"
#include "evidence/evlog.h"
#include "gate/dnsgate.h"
#include "observe/collect.h"
#include "observe/proctab.h"
#include "events.h"

static void decimal_numbers(void **state)
{
	(void)state;
	const unsigned long long u[] = {0, 1, 9, 10, 4294967295ULL, ULLONG_MAX};
	const long long s[] = {0, -1, 42, LLONG_MAX, LLONG_MIN};
	struct strbuf sb = STRBUF_INIT;
	char want[32];

	for (size_t i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		sb_reset(&sb);
		sb_addstr(&sb, "x");
		sb_addu(&sb, u[i]);
		snprintf(want, sizeof(want), "x%llu", u[i]);
		assert_string_equal(sb.buf, want);
	}
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		sb_reset(&sb);
		sb_addi(&sb, s[i]);
		snprintf(want, sizeof(want), "%lld", s[i]);
		assert_string_equal(sb.buf, want);
	}
	sb_release(&sb);
}

static void timestamps(void **state)
{
	(void)state;
	const int64_t ns[] = {0, 999999999, 1796040000123456789LL, 1796040000000000001LL,
			      1796040001000000000LL};
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		time_t t = ns[i] / 1000000000LL;
		struct tm tm;
		char date[32], want[64];

		gmtime_r(&t, &tm);
		strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(want, sizeof(want), "%s.%09ldZ", date, (long)(ns[i] % 1000000000LL));
		sb_reset(&sb);
		fmt_rfc3339(&sb, ns[i]);
		assert_string_equal(sb.buf, want);
	}
	sb_release(&sb);
}

static void v4_addresses(void **state)
{
	(void)state;
	const uint8_t a[][4] = {
	    {0, 0, 0, 0}, {255, 255, 255, 255}, {10, 200, 3, 4}, {127, 0, 0, 1}};
	struct strbuf sb = STRBUF_INIT;
	char want[INET_ADDRSTRLEN];

	for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++) {
		sb_reset(&sb);
		fmt_addr(&sb, AF_INET, a[i]);
		inet_ntop(AF_INET, a[i], want, sizeof(want));
		assert_string_equal(sb.buf, want);
	}
	sb_release(&sb);
}

/* Runs of plain ASCII are copied in bulk; whatever sits between them is escaped as before. */
static void json_runs(void **state)
{
	(void)state;
	const char in[] = "plain run\"quoted\\slash\x01 ctl caf\xc3\xa9 \xff tail";
	struct strbuf sb = STRBUF_INIT;

	json_str(&sb, in, sizeof(in) - 1);
	assert_string_equal(sb.buf, "\"plain run\\\"quoted\\\\slash\\u0001 ctl caf\xc3\xa9 "
				    "\\udcff tail\"");
	sb_release(&sb);
}

/* The pid cache in front of the table: a pid reused, or an exited entry evicted, must never
 * be served from the cache afterwards. */
static void proctab_cache(void **state)
{
	(void)state;
	struct proctab t;
	struct proc *p;

	proctab_init(&t);
	p = proctab_add(&t, 5);
	proctab_set(p, "/bin/old", "[\"old\"]");
	assert_ptr_equal(proctab_get(&t, 5), p);
	p = proctab_add(&t, 5); /* pid reuse */
	proctab_set(p, "/bin/new", "[\"new\"]");
	assert_string_equal(proctab_get(&t, 5)->exe, "/bin/new");
	proctab_exit(&t, 5);
	assert_non_null(proctab_get(&t, 5)); /* kept after exit, for late records */
	/* Enough exits after it to evict it (the oldest exited go first). */
	for (pid_t pid = 1000; pid < 1000 + 5000; pid++) {
		proctab_add(&t, pid);
		proctab_exit(&t, pid);
	}
	assert_null(proctab_get(&t, 5));
	/* Same slot, other pid: a miss, not the other's entry. */
	assert_null(proctab_get(&t, 5 + PROCTAB_CACHE));
	proctab_free(&t);
}

/* The closing record's bytes stay readable when its own append flushes the buffer. */
static void close_line_after_flush(void **state)
{
	(void)state;
	char path[] = "/tmp/rw-unit-XXXXXX", body[600];
	int fd = mkstemp(path);
	struct evlog l;
	char *buf = malloc(1 << 20), *last;
	ssize_t n;

	assert_int_equal(evlog_open_fd(&l, fd), 0);
	memset(body, 'a', sizeof(body));
	memcpy(body, ",\"kind\":\"pad\",\"x\":\"", 19);
	body[sizeof(body) - 1] = '"';
	/* Just under the flush threshold, so the closing record is what crosses it. */
	while (l.pending.len + sizeof(body) + 100 < EVLOG_FLUSH_AT)
		assert_true(evlog_append(&l, body, sizeof(body)) > 0);
	assert_int_equal(evlog_close(&l, ",\"complete\":true"), 0);
	n = read_file_bounded(path, buf, (1 << 20) - 1);
	unlink(path);
	assert_true(n > 0);
	buf[n - 1] = 0; /* the last newline */
	last = strrchr(buf, '\n') + 1;
	assert_int_equal(l.close_line.len, strlen(last));
	assert_memory_equal(l.close_line.buf, last, l.close_line.len);
	evlog_release(&l);
	free(buf);
}

static void send_connect(struct collector *c, const uint8_t ip[4], uint16_t port)
{
	struct ev_connect e = {0};

	e.h.kind = EV_CONNECT;
	e.h.pid = 77;
	e.h.tid = 77;
	e.h.ts = 1000;
	memcpy(e.h.comm, "curl", 4);
	e.family = AF_INET;
	e.proto = PROTO_UDP;
	e.via = VIA_CONNECT;
	e.verdict = VERDICT_ALLOW;
	e.dport = port;
	memcpy(e.daddr, ip, 4);
	collector_handle(c, &e, sizeof(e));
}

/* The connect memo: a run of connects to one place counts every one, and a name learnt for
 * the address in between shows on the next connect's line and summary item. */
static void connect_memo(void **state)
{
	(void)state;
	char path[] = "/tmp/rw-unit-XXXXXX";
	int fd = mkstemp(path);
	const uint8_t a[4] = {127, 0, 0, 9}, b[4] = {127, 0, 0, 10};
	struct collector c;
	struct dnsgate_client who = {.proto = IPPROTO_UDP};
	struct dnsgate_rr rr = {.type = ns_t_a, .owner = "x.test", .data = "127.0.0.9"};
	struct dnsgate_event q = {.qname = "x.test",
				  .qtype = ns_t_a,
				  .rcode = 0,
				  .reason = "answered",
				  .who = &who,
				  .answers = &rr,
				  .n_answers = 1};
	struct run_info ri = {.exit_status = 0};
	struct strbuf out = STRBUF_INIT;
	json_error_t jerr;
	json_t *s, *d;
	char *log = malloc(1 << 16);
	ssize_t n;

	who.addr.ss_family = AF_INET;
	assert_int_equal(collector_init(&c, fd, NULL, NULL), 0);
	send_connect(&c, a, 9);
	send_connect(&c, a, 9);
	send_connect(&c, b, 9);
	send_connect(&c, a, 9);
	collector_gate_question(&c, &q, VERDICT_ALLOW);
	send_connect(&c, a, 9);
	send_connect(&c, a, 9);
	summary_render(&c.sum, &ri, &out);
	assert_int_equal(evlog_close(&c.log, NULL), 0);
	n = read_file_bounded(path, log, (1 << 16) - 1);
	unlink(path);
	assert_true(n > 0);
	log[n] = 0;
	/* Lines 1-4 and 5 (dns) without a name, 6 and 7 with it. */
	{
		char *line = log;

		for (int i = 1; i <= 7; i++) {
			char *nl = strchr(line, '\n');

			*nl = 0;
			if (i != 5)
				assert_non_null(
				    strstr(line, i < 5 ? "\"host\":null" : "\"host\":\"x.test\""));
			line = nl + 1;
		}
	}
	s = json_loads(out.buf, 0, &jerr);
	assert_non_null(s);
	d = json_object_get(s, "destinations");
	assert_int_equal(json_array_size(d), 3);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(d, 0), "count")), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(d, 1), "daddr")),
			    "127.0.0.10");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(d, 1), "count")), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(d, 2), "host")),
			    "x.test");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(d, 2), "count")), 2);
	json_decref(s);
	sb_release(&out);
	collector_free(&c);
	free(log);
}

/* One answered question off the gate: name -> 10.<k>. */
static void answer(struct collector *c, unsigned k, const char *name)
{
	char addr[INET_ADDRSTRLEN];
	struct dnsgate_client who = {.proto = IPPROTO_UDP};
	struct dnsgate_rr rr = {.type = ns_t_a, .owner = name, .data = addr};
	struct dnsgate_event q = {.qname = name,
				  .qtype = ns_t_a,
				  .reason = "answered",
				  .who = &who,
				  .answers = &rr,
				  .n_answers = 1};

	snprintf(addr, sizeof(addr), "10.%u.%u.%u", (k >> 16) & 0xff, (k >> 8) & 0xff, k & 0xff);
	who.addr.ss_family = AF_INET;
	collector_gate_question(c, &q, VERDICT_ALLOW);
}

static void k_addr(unsigned k, uint8_t ip[4])
{
	ip[0] = 10;
	ip[1] = (k >> 16) & 0xff;
	ip[2] = (k >> 8) & 0xff;
	ip[3] = k & 0xff;
}

/* The host of the connect line the collector wrote last (NULL: none), from its log in path. */
static char *last_host(struct collector *c, const char *path)
{
	static char buf[1 << 16];
	char *line, *h, *q;
	off_t end, from;
	ssize_t n;
	int fd;

	assert_int_equal(evlog_flush(&c->log), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	end = lseek(fd, 0, SEEK_END);
	from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
	n = pread(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	assert_true(n > 0);
	buf[n] = 0;
	buf[n - 1] = 0; /* the last newline */
	line = strrchr(buf, '\n') + 1;
	assert_non_null(strstr(line, "\"kind\":\"connect\""));
	h = strstr(line, "\"host\":");
	assert_non_null(h);
	h += 7;
	if (!strncmp(h, "null", 4))
		return NULL;
	q = strchr(h + 1, '"');
	*q = 0;
	return h + 1;
}

/* Host labels past the table's bound: the addresses the job resolves now are labelled (the
 * oldest unused labels are the ones forgotten), and one in use stays. */
static void host_labels_follow_the_job(void **state)
{
	(void)state;
	char path[] = "/tmp/rw-unit-XXXXXX", name[64], *host;
	int fd = mkstemp(path);
	struct collector c;
	uint8_t ip[4];
	const unsigned n = 100000;

	assert_int_equal(collector_init(&c, fd, NULL, NULL), 0);
	answer(&c, 0, "kept.test");
	for (unsigned k = 1; k < n; k++) {
		snprintf(name, sizeof(name), "n%u.test", k);
		answer(&c, k, name);
		if (k % 1000 == 0) { /* the job keeps using its first address */
			k_addr(0, ip);
			send_connect(&c, ip, 443);
		}
	}
	k_addr(n - 1, ip);
	send_connect(&c, ip, 443);
	snprintf(name, sizeof(name), "n%u.test", n - 1);
	host = last_host(&c, path);
	assert_non_null(host);
	assert_string_equal(host, name);
	k_addr(0, ip);
	send_connect(&c, ip, 443);
	host = last_host(&c, path);
	assert_non_null(host);
	assert_string_equal(host, "kept.test");
	k_addr(1, ip);
	send_connect(&c, ip, 443);
	assert_null(last_host(&c, path));
	collector_free(&c);
	unlink(path);
}

/* Bytes the program holds on the heap (ASan replaces malloc, and mallinfo2 with it). */
static size_t heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return __sanitizer_get_current_allocated_bytes();
#else
	return mallinfo2().uordblks;
#endif
}

/* The collector's heap once its tables are full does not grow with more distinct names and
 * addresses, long names included (the job chooses them): what the collector holds, not what
 * glibc keeps. */
static void memory_flat_past_the_bounds(void **state)
{
	(void)state;
	int fd = open("/dev/null", O_WRONLY);
	struct collector c;
	char name[256], label[61];
	size_t filled = 0, after;
	const unsigned n = 40000;

	memset(label, 'a', 60);
	label[60] = 0;
	assert_int_equal(collector_init(&c, fd, NULL, NULL), 0);
	for (unsigned k = 0; k < 2 * n; k++) {
		if (k == n)
			filled = heap_in_use();
		snprintf(name, sizeof(name), "%s.%s.%s.n%u.test", label, label, label, k);
		answer(&c, k, name);
	}
	after = heap_in_use();
	print_message("heap after %u answers %zu KiB, after %u more %zu KiB\n", n, filled >> 10, n,
		      after >> 10);
	assert_true(after < filled + (256u << 10));
	collector_free(&c);
	close(fd);
}

/* A job socket's question to the gate names the resolver the job addressed, however many
 * sockets came before it (a resolver that opens one socket per lookup makes many). */
static void redirected_sockets_past_the_bound(void **state)
{
	(void)state;
	int fd = open("/dev/null", O_WRONLY);
	struct collector c;
	struct ev_connect e = {0};
	struct ev_dns_pkt pkt = {0};
	struct dnsgate_client who = {.proto = IPPROTO_UDP};
	struct sockaddr_in *sin = (struct sockaddr_in *)&who.addr;
	const char *server;

	assert_int_equal(collector_init(&c, fd, NULL, NULL), 0);
	c.gate_port = 5353;
	e.h.kind = EV_CONNECT;
	e.h.pid = e.h.tid = 77;
	e.family = AF_INET;
	e.proto = PROTO_UDP;
	e.via = VIA_SENDMSG;
	e.verdict = VERDICT_ALLOW;
	e.flags = EVF_REDIRECTED;
	e.dport = 53;
	memcpy(e.daddr, (uint8_t[]){127, 0, 0, 53}, 4);
	for (unsigned k = 1; k <= 100000; k++) {
		e.cookie = k;
		collector_handle(&c, &e, sizeof(e));
	}
	pkt.h.kind = EV_DNS_PKT;
	pkt.h.pid = pkt.h.tid = 77;
	pkt.cookie = 100000;
	pkt.family = AF_INET;
	pkt.proto = PROTO_UDP;
	pkt.dir = DNS_OUT;
	pkt.sport = 40000;
	pkt.dport = 5353;
	memcpy(pkt.saddr, (uint8_t[]){127, 0, 0, 1}, 4);
	memcpy(pkt.daddr, (uint8_t[]){127, 0, 0, 1}, 4);
	collector_handle(&c, &pkt, sizeof(pkt));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(40000);
	sin->sin_addr.s_addr = htonl(0x7f000001);
	server = collector_gate_server(&c, &who);
	assert_non_null(server);
	assert_string_equal(server, "127.0.0.53");
	collector_free(&c);
	close(fd);
}

/* The summary's lists are bounded in text as well as in items: 10,000 DNS names of 1,000
 * bytes with 16 answers of 1,000 bytes each would otherwise hold 170 MB. */
static void summary_bounded_in_bytes(void **state)
{
	(void)state;
	static char frag[1100], answers[SUMMARY_MAX_ANSWERS][1100];
	const char *aj[SUMMARY_MAX_ANSWERS];
	struct summary s;
	size_t before = heap_in_use(), held;

	summary_init(&s);
	for (int i = 0; i < SUMMARY_MAX_ANSWERS; i++) {
		memset(answers[i], 'a' + i, 1000);
		aj[i] = answers[i];
	}
	memset(frag, 'q', 1000);
	for (unsigned k = 0; k < SUMMARY_MAX_ITEMS; k++) {
		snprintf(frag + 1000, 100, "%u", k);
		for (int i = 0; i < SUMMARY_MAX_ANSWERS; i++)
			snprintf(answers[i] + 1000, 100, "%u", k);
		summary_dns(&s, frag, frag, aj, SUMMARY_MAX_ANSWERS);
	}
	held = heap_in_use() - before;
	print_message("summary holds %zu KiB, of which text %zu KiB; %llu items unlisted\n",
		      held >> 10, s.bytes >> 10, (unsigned long long)s.overflow);
	assert_true(s.bytes <= SUMMARY_MAX_BYTES);
	assert_true(held < 2 * SUMMARY_MAX_BYTES);
	assert_true(s.overflow > 0); /* what did not fit is counted */
	summary_free(&s);
}

/* One head as the TLS probes send it: a write (request) or a read (response) on SSL object 7. */
static void send_tls(struct collector *c, uint32_t dir, uint32_t lib, const char *data)
{
	static struct ev_tls_data e;
	size_t n = strlen(data);

	memset(&e, 0, sizeof(e));
	e.h.kind = EV_TLS_DATA;
	e.h.pid = e.h.tid = 77;
	e.h.ts = 1000;
	e.ssl = 7;
	e.dir = dir;
	e.lib = lib;
	e.len = e.data_len = (uint32_t)n;
	memcpy(e.data, data, n);
	collector_handle(c, &e, sizeof(e) - TLS_HEAD + n);
}

/* The `http` lines of a log, as "METHOD PATH STATUS BODYBYTES LIBRARY" strings. */
static int http_lines(char *log, char out[][96], int max)
{
	int k = 0;

	for (char *line = strtok(log, "\n"); line && k < max; line = strtok(NULL, "\n")) {
		json_t *j = json_loads(line, 0, NULL), *st, *len;

		assert_non_null(j);
		if (!strcmp(json_string_value(json_object_get(j, "kind")), "http")) {
			st = json_object_get(j, "status");
			len = json_object_get(j, "response_body_bytes");
			snprintf(out[k++], 96, "%s %s %lld %lld %s",
				 json_string_value(json_object_get(j, "method")) ?: "-",
				 json_string_value(json_object_get(j, "path")) ?: "-",
				 json_is_integer(st) ? (long long)json_integer_value(st) : -1,
				 json_is_integer(len) ? (long long)json_integer_value(len) : -1,
				 json_string_value(json_object_get(j, "library")));
		}
		json_decref(j);
	}
	return k;
}

/* Pipelined HTTP/1.1 inside TLS (apt sends its next requests in one write before the first
 * answer): every request in a write is read, and responses pair with requests in order, also
 * two responses read at once; a request body is skipped, not taken for a request; a write the
 * library asked for again is one request. */
static void tls_pipelined_requests_pair_in_order(void **state)
{
	(void)state;
	char path[] = "/tmp/rw-unit-XXXXXX", got[8][96];
	int fd = mkstemp(path);
	struct collector c;
	char *log = malloc(1 << 16);
	ssize_t n;

	assert_int_equal(collector_init(&c, fd, NULL, NULL), 0);
	send_tls(&c, TLSD_WRITE, TLSL_GNUTLS,
		 "GET /a HTTP/1.1\r\nHost: x.test\r\n\r\nGET /b HTTP/1.1\r\nHost: x.test\r\n\r\n"
		 "POST /c HTTP/1.1\r\nHost: x.test\r\nContent-Length: 18\r\n\r\n"
		 "GET /no HTTP/1.1\r\n");
	send_tls(&c, TLSD_READ, TLSL_GNUTLS, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
	send_tls(&c, TLSD_READ, TLSL_GNUTLS,
		 "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nnoHTTP/1.1 201 Created\r\n"
		 "Content-Length: 3\r\n\r\nyes");
	/* a write the library asked for again (before the handshake is done): one request */
	for (int i = 0; i < 3; i++)
		send_tls(&c, TLSD_WRITE, TLSL_OPENSSL, "GET /e HTTP/1.1\r\nHost: x.test\r\n\r\n");
	send_tls(&c, TLSD_READ, TLSL_OPENSSL, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!");
	send_tls(&c, TLSD_WRITE, TLSL_OPENSSL, "GET /d HTTP/1.1\r\nHost: x.test\r\n\r\n");
	collector_finish(&c);
	assert_int_equal(evlog_close(&c.log, NULL), 0);
	n = read_file_bounded(path, log, (1 << 16) - 1);
	unlink(path);
	assert_true(n > 0);
	log[n] = 0;
	n = http_lines(log, got, 8);
	for (int i = 0; i < n; i++)
		print_message("%s\n", got[i]);
	assert_int_equal(n, 5);
	assert_string_equal(got[0], "GET /a 200 5 gnutls");
	assert_string_equal(got[1], "GET /b 404 2 gnutls");
	assert_string_equal(got[2], "POST /c 201 3 gnutls");
	assert_string_equal(got[3], "GET /e 200 1 openssl");
	assert_string_equal(got[4], "GET /d -1 -1 openssl"); /* no response: at the end */
	collector_free(&c);
	free(log);
}

/* A connection whose responses are never seen holds at most TLS_QUEUE_MAX requests: the
 * oldest are logged unpaired as new ones come, so memory stays bounded. */
static void tls_requests_without_responses_bounded(void **state)
{
	(void)state;
	int fd = open("/dev/null", O_WRONLY);
	struct collector c;
	char req[64];

	assert_int_equal(collector_init(&c, fd, NULL, NULL), 0);
	for (int i = 0; i < 10000; i++) {
		snprintf(req, sizeof(req), "GET /%d HTTP/1.1\r\nHost: x.test\r\n\r\n", i);
		send_tls(&c, TLSD_WRITE, TLSL_GNUTLS, req);
	}
	assert_true(c.tls_waiting <= 32);
	assert_int_equal(c.tls_pending.count, 1);
	collector_finish(&c);
	assert_int_equal(c.tls_waiting, 0);
	collector_free(&c);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(decimal_numbers),
	    cmocka_unit_test(timestamps),
	    cmocka_unit_test(v4_addresses),
	    cmocka_unit_test(json_runs),
	    cmocka_unit_test(proctab_cache),
	    cmocka_unit_test(close_line_after_flush),
	    cmocka_unit_test(connect_memo),
	    cmocka_unit_test(host_labels_follow_the_job),
	    cmocka_unit_test(memory_flat_past_the_bounds),
	    cmocka_unit_test(redirected_sockets_past_the_bound),
	    cmocka_unit_test(summary_bounded_in_bytes),
	    cmocka_unit_test(tls_pipelined_requests_pair_in_order),
	    cmocka_unit_test(tls_requests_without_responses_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
