/*
 * The DNS gate under bad input and bad conditions: malformed client packets (truncated
 * headers, compression loops, huge counts, random junk) over UDP and TCP, an upstream that
 * never answers (UDP and TCP), forged upstream replies with the wrong id or question ahead
 * of dnsmasq's real one, unreadable upstream answers, and floods against the in-flight and
 * TCP-client limits. The gate must answer or drop, never crash, hang or grow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_gate_harness.h"

static struct h_dnsmasq dm;
static const char *const allow[] = {"allowed.test", "ready.test", NULL};

struct fixture {
	struct h_rec rec;
	struct dnsgate *g;
	int fd;
};

static int group_setup(void **state)
{
	static const char *const extra[] = {"--host-record=allowed.test,127.0.10.1,fd00::10:1",
					    NULL};

	(void)state;
	return h_dnsmasq_start(&dm, 1, extra);
}

static int group_teardown(void **state)
{
	(void)state;
	h_dnsmasq_stop(&dm);
	return 0;
}

static struct fixture *gate(void **state, const char *up, uint16_t port, unsigned max_inflight,
			    unsigned max_tcp, unsigned idle_ms)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct dnsgate_config cfg;
	char err[256];

	f->rec.allow = allow;
	f->fd = h_udp_socket();
	f->rec.client_fd = -1;
	cfg = h_config(&f->rec, up, port);
	cfg.timeout_ms = 300;
	cfg.max_inflight = max_inflight;
	cfg.max_tcp_clients = max_tcp;
	cfg.tcp_idle_ms = idle_ms;
	f->g = dnsgate_new(&cfg, err, sizeof(err));
	if (!f->g)
		fail_msg("%s", err);
	*state = f;
	return f;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	h_hook = NULL;
	if (f) {
		dnsgate_free(f->g);
		close(f->fd);
		free(f);
	}
	return 0;
}

/* Sends raw bytes; returns the reply length or -1 if none came within ms. */
static int raw(struct fixture *f, const void *pkt, size_t len, uint8_t *resp, int ms)
{
	return h_udp_exchange(f->g, f->fd, pkt, len, resp, 512, ms);
}

static void still_works(struct fixture *f)
{
	uint8_t q[512], resp[512];
	int n = h_mkquery("allowed.test", ns_t_a, 0, q, sizeof(q));

	n = h_udp_exchange(f->g, f->fd, q, (size_t)n, resp, sizeof(resp), 3000);
	assert_true(n > 0);
	assert_int_equal(h_rcode(resp), ns_r_noerror);
}

static void test_malformed_udp(void **state)
{
	struct fixture *f = gate(state, dm.addr, dm.port, 0, 0, 0);
	uint8_t resp[512];
	struct h_pkt p;
	struct dnsgate_stats st;

	/* Truncated header: dropped silently. */
	h_header(&p, 0x4242, 0x0100, 1, 0, 0, 0);
	assert_int_equal(raw(f, p.b, 5, resp, 200), -1);
	/* Header only, promising a question: FORMERR with the id echoed. */
	assert_int_equal(raw(f, p.b, 12, resp, 1000), 12);
	assert_int_equal(h_rcode(resp), ns_r_formerr);
	assert_int_equal(resp[0] << 8 | resp[1], 0x4242);
	/* Compression loop in the question. */
	h_header(&p, 1, 0x0100, 1, 0, 0, 0);
	h_put16(&p, 0xc00c);
	h_put16(&p, ns_t_a);
	h_put16(&p, ns_c_in);
	assert_true(raw(f, p.b, p.n, resp, 1000) >= 12);
	assert_int_equal(h_rcode(resp), ns_r_formerr);
	/* Huge counts. */
	h_header(&p, 1, 0x0100, 65535, 65535, 65535, 65535);
	h_question(&p, "allowed.test", ns_t_a);
	assert_true(raw(f, p.b, p.n, resp, 1000) >= 12);
	assert_int_equal(h_rcode(resp), ns_r_formerr);
	/* A response aimed at the gate: dropped (no reflection loops). */
	h_header(&p, 1, 0x8180, 1, 0, 0, 0);
	h_question(&p, "allowed.test", ns_t_a);
	assert_int_equal(raw(f, p.b, p.n, resp, 200), -1);
	/* UPDATE: NOTIMP. */
	h_header(&p, 1, 5 << 11, 1, 0, 0, 0);
	h_question(&p, "allowed.test", ns_t_soa);
	assert_true(raw(f, p.b, p.n, resp, 1000) >= 12);
	assert_int_equal(h_rcode(resp), ns_r_notimpl);
	/* An oversized datagram. */
	static uint8_t big[60000];
	memcpy(big, p.b, p.n);
	big[2] = 0x01;
	big[3] = 0;
	assert_true(raw(f, big, sizeof(big), resp, 1000) >= 12);
	assert_int_equal(h_rcode(resp), ns_r_formerr);
	/* None of it reached the policy or upstream. */
	assert_int_equal(f->rec.ndecides, 0);
	dnsgate_stats(f->g, &st);
	assert_int_equal(st.forwarded, 0);
	assert_int_equal(st.malformed, 7);
	still_works(f);
}

static void test_fuzz_udp(void **state)
{
	struct fixture *f = gate(state, dm.addr, dm.port, 0, 0, 0);
	struct sockaddr_in sa = h_sa("127.0.0.1", dnsgate_port(f->g));
	uint8_t q[512], pkt[512], resp[512];
	int n = h_mkquery("allowed.test", ns_t_a, 1232, q, sizeof(q));

	srand(4242);
	for (int i = 0; i < 3000; i++) {
		size_t len = (size_t)n;

		memcpy(pkt, q, len);
		for (int k = rand() % 4 + 1; k > 0; k--)
			pkt[rand() % len] = (uint8_t)rand();
		if (rand() % 3 == 0)
			len = (size_t)rand() % len;
		pkt[2] &= 0x7f;
		sendto(f->fd, pkt, len, 0, (struct sockaddr *)&sa, sizeof(sa));
		if (i % 32 == 0)
			for (int k = 0; k < 8; k++) {
				dnsgate_poll(f->g, 1);
				while (recv(f->fd, resp, sizeof(resp), MSG_DONTWAIT) >= 0)
					;
			}
	}
	for (int k = 0; k < 200; k++)
		dnsgate_poll(f->g, 2);
	while (recv(f->fd, resp, sizeof(resp), MSG_DONTWAIT) >= 0)
		;
	still_works(f);
}

static void test_malformed_tcp(void **state)
{
	struct fixture *f = gate(state, dm.addr, dm.port, 0, 0, 0);
	uint8_t resp[512], q[512];
	struct h_pkt p;
	int fd = h_tcp_connect(f->g), n;

	/* A compression loop over TCP: FORMERR, connection stays usable. */
	h_header(&p, 9, 0x0100, 1, 0, 0, 0);
	h_put16(&p, 0xc00c);
	h_put16(&p, ns_t_a);
	h_put16(&p, ns_c_in);
	assert_int_equal(h_tcp_send(fd, p.b, p.n), 0);
	assert_true(h_tcp_recv(f->g, fd, resp, sizeof(resp), 2000) >= 12);
	assert_int_equal(h_rcode(resp), ns_r_formerr);
	n = h_mkquery("allowed.test", ns_t_a, 0, q, sizeof(q));
	assert_int_equal(h_tcp_send(fd, q, (size_t)n), 0);
	assert_true(h_tcp_recv(f->g, fd, resp, sizeof(resp), 2000) > 0);
	assert_int_equal(h_rcode(resp), ns_r_noerror);
	/* A length prefix no query needs: the gate hangs up rather than buffer 64 KiB. */
	uint8_t huge[2] = {0xff, 0xff};
	assert_int_equal(send(fd, huge, 2, 0), 2);
	assert_int_equal(h_tcp_recv(f->g, fd, resp, sizeof(resp), 2000), 0);
	close(fd);
	still_works(f);
}

/* An upstream that receives and never answers. */
static int black_udp, black_tcp;
static char black_addr[32];
static uint16_t black_port;

static void black_hole(void)
{
	struct sockaddr_in sa;

	h_loopback_addr(black_addr, sizeof(black_addr), 2);
	black_port = h_free_port(black_addr);
	sa = h_sa(black_addr, black_port);
	black_udp = socket(AF_INET, SOCK_DGRAM, 0);
	black_tcp = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(bind(black_udp, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(bind(black_tcp, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(black_tcp, 64), 0);
}

static int teardown_black(void **state)
{
	close(black_udp);
	close(black_tcp);
	return teardown(state);
}

static void test_upstream_timeout(void **state)
{
	struct fixture *f;
	uint8_t q[512], resp[512];
	int n, fd;
	uint64_t t0;

	black_hole();
	f = gate(state, black_addr, black_port, 0, 0, 0);
	n = h_mkquery("allowed.test", ns_t_a, 0, q, sizeof(q));
	t0 = h_now_ms();
	n = h_udp_exchange(f->g, f->fd, q, (size_t)n, resp, sizeof(resp), 3000);
	assert_true(n > 0);
	assert_int_equal(h_rcode(resp), ns_r_servfail);
	assert_true(h_now_ms() - t0 >= 290);
	assert_string_equal(f->rec.events[0].reason, "upstream timeout");
	/* Over TCP: the upstream accepts (kernel backlog) and says nothing. */
	fd = h_tcp_connect(f->g);
	n = h_mkquery("allowed.test", ns_t_a, 0, q, sizeof(q));
	assert_int_equal(h_tcp_send(fd, q, (size_t)n), 0);
	n = h_tcp_recv(f->g, fd, resp, sizeof(resp), 3000);
	assert_true(n > 0);
	assert_int_equal(h_rcode(resp), ns_r_servfail);
	assert_int_equal(f->rec.npins, 0);
	close(fd);
}

static void test_flood_bounded(void **state)
{
	struct fixture *f;
	struct sockaddr_in sa;
	uint8_t q[512], resp[512];
	struct dnsgate_stats st;
	int n, got = 0, servfail = 0;
	uint64_t end;

	black_hole();
	f = gate(state, black_addr, black_port, 8, 0, 0);
	sa = h_sa("127.0.0.1", dnsgate_port(f->g));
	n = h_mkquery("allowed.test", ns_t_a, 0, q, sizeof(q));
	for (int i = 0; i < 100; i++) {
		q[0] = (uint8_t)i;
		sendto(f->fd, q, (size_t)n, 0, (struct sockaddr *)&sa, sizeof(sa));
		dnsgate_poll(f->g, 0);
		dnsgate_stats(f->g, &st);
		assert_true(st.inflight <= 8);
	}
	end = h_now_ms() + 3000;
	while (got < 100 && h_now_ms() < end) {
		dnsgate_poll(f->g, 5);
		dnsgate_stats(f->g, &st);
		assert_true(st.inflight <= 8);
		while (recv(f->fd, resp, sizeof(resp), MSG_DONTWAIT) > 0) {
			got++;
			servfail += h_rcode(resp) == ns_r_servfail;
		}
	}
	/* Every question answered (SERVFAIL: overload or timeout), none held past its time. */
	assert_int_equal(got, 100);
	assert_int_equal(servfail, 100);
	dnsgate_stats(f->g, &st);
	assert_int_equal(st.forwarded, 8);
	assert_int_equal(st.inflight, 0);
}

static void test_tcp_clients_bounded(void **state)
{
	struct fixture *f = gate(state, dm.addr, dm.port, 0, 4, 300);
	struct dnsgate_stats st;
	uint8_t resp[512], q[512], b = 0;
	int fds[10], n;
	uint64_t end;

	for (int i = 0; i < 10; i++) {
		fds[i] = h_tcp_connect(f->g);
		dnsgate_stats(f->g, &st);
		assert_true(st.tcp_clients <= 4);
	}
	/* The newest connection works; the oldest idle ones were closed to make room. */
	n = h_mkquery("allowed.test", ns_t_a, 0, q, sizeof(q));
	assert_int_equal(h_tcp_send(fds[9], q, (size_t)n), 0);
	assert_true(h_tcp_recv(f->g, fds[9], resp, sizeof(resp), 2000) > 0);
	assert_int_equal(h_tcp_recv(f->g, fds[0], resp, sizeof(resp), 500), 0);
	/* A client that sends one byte and stalls is closed after the idle time. */
	assert_int_equal(send(fds[8], &b, 1, 0), 1);
	end = h_now_ms() + 2000;
	do {
		dnsgate_poll(f->g, 10);
		dnsgate_stats(f->g, &st);
	} while (st.tcp_clients && h_now_ms() < end);
	assert_int_equal(st.tcp_clients, 0);
	for (int i = 0; i < 10; i++)
		close(fds[i]);
}

/* ---- a man in the middle between the gate and dnsmasq ---- */

enum mitm_mode { FORGE_FIRST, BAD_ANSWER };
static int mitm_fd;
static enum mitm_mode mitm_mode;
static int mitm_forged;

static void mitm_step(void)
{
	uint8_t q[4096], r[4096];
	struct sockaddr_in from, up = h_sa(dm.addr, dm.port);
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(mitm_fd, q, sizeof(q), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	struct h_pkt p;
	uint16_t id;
	int s;
	ssize_t m;

	if (n < 12)
		return;
	id = (uint16_t)(q[0] << 8 | q[1]);
	if (mitm_mode == BAD_ANSWER) {
		/* Right id and question, answer owner a compression loop. */
		h_header(&p, id, 0x8180, 1, 1, 0, 0);
		h_question(&p, "allowed.test", ns_t_a);
		h_put16(&p, 0xc000 | (unsigned)p.n);
		h_put16(&p, ns_t_a);
		h_put16(&p, ns_c_in);
		h_put16(&p, 0);
		h_put16(&p, 60);
		h_put16(&p, 4);
		h_put16(&p, 0x7f00);
		h_put16(&p, 0x4206);
		sendto(mitm_fd, p.b, p.n, 0, (struct sockaddr *)&from, fl);
		return;
	}
	/* Wrong id, right question. */
	h_header(&p, (uint16_t)(id + 1), 0x8180, 1, 1, 0, 0);
	h_question(&p, "allowed.test", ns_t_a);
	h_rr_a(&p, "allowed.test", "127.0.66.6", 60);
	sendto(mitm_fd, p.b, p.n, 0, (struct sockaddr *)&from, fl);
	/* Right id, another question. */
	h_header(&p, id, 0x8180, 1, 1, 0, 0);
	h_question(&p, "evil.test", ns_t_a);
	h_rr_a(&p, "evil.test", "127.0.66.7", 60);
	sendto(mitm_fd, p.b, p.n, 0, (struct sockaddr *)&from, fl);
	/* Right id and question, but not marked as a response. */
	h_header(&p, id, 0x0100, 1, 1, 0, 0);
	h_question(&p, "allowed.test", ns_t_a);
	h_rr_a(&p, "allowed.test", "127.0.66.8", 60);
	sendto(mitm_fd, p.b, p.n, 0, (struct sockaddr *)&from, fl);
	/* Right id and question, counts that lie. */
	h_header(&p, id, 0x8180, 1, 9, 0, 0);
	h_question(&p, "allowed.test", ns_t_a);
	h_rr_a(&p, "allowed.test", "127.0.66.9", 60);
	sendto(mitm_fd, p.b, p.n, 0, (struct sockaddr *)&from, fl);
	mitm_forged += 4;
	/* Then the real answer, from dnsmasq. */
	s = socket(AF_INET, SOCK_DGRAM, 0);
	struct timeval tv = {.tv_sec = 2};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	sendto(s, q, (size_t)n, 0, (struct sockaddr *)&up, sizeof(up));
	m = recv(s, r, sizeof(r), 0);
	close(s);
	if (m > 0)
		sendto(mitm_fd, r, (size_t)m, 0, (struct sockaddr *)&from, fl);
}

static struct fixture *mitm_gate(void **state, enum mitm_mode mode)
{
	char addr[32];
	uint16_t port;
	struct sockaddr_in sa;

	h_loopback_addr(addr, sizeof(addr), 3);
	port = h_free_port(addr);
	sa = h_sa(addr, port);
	mitm_fd = socket(AF_INET, SOCK_DGRAM, 0);
	assert_int_equal(bind(mitm_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	mitm_mode = mode;
	mitm_forged = 0;
	h_hook = mitm_step;
	return gate(state, addr, port, 0, 0, 0);
}

static int teardown_mitm(void **state)
{
	close(mitm_fd);
	return teardown(state);
}

static void test_forged_replies_ignored(void **state)
{
	struct fixture *f = mitm_gate(state, FORGE_FIRST);
	uint8_t q[512], resp[512];
	char addrs[256];
	struct dnsgate_stats st;
	int n = h_mkquery("allowed.test", ns_t_a, 0, q, sizeof(q));

	f->rec.client_fd = f->fd;
	n = h_udp_exchange(f->g, f->fd, q, (size_t)n, resp, sizeof(resp), 3000);
	assert_true(n > 0);
	assert_int_equal(h_rcode(resp), ns_r_noerror);
	assert_int_equal(h_addrs(resp, n, addrs, sizeof(addrs)), 1);
	assert_string_equal(addrs, "127.0.10.1");
	assert_int_equal(mitm_forged, 4);
	assert_int_equal(f->rec.npins, 1);
	assert_string_equal(f->rec.pins[0].addr, "127.0.10.1");
	assert_false(f->rec.pins[0].client_had_reply);
	dnsgate_stats(f->g, &st);
	assert_int_equal(st.upstream_ignored, 4);
}

static void test_unreadable_answer(void **state)
{
	struct fixture *f = mitm_gate(state, BAD_ANSWER);
	uint8_t q[512], resp[512];
	int n = h_mkquery("allowed.test", ns_t_a, 0, q, sizeof(q));

	n = h_udp_exchange(f->g, f->fd, q, (size_t)n, resp, sizeof(resp), 3000);
	assert_true(n > 0);
	assert_int_equal(h_rcode(resp), ns_r_servfail);
	assert_int_equal(f->rec.npins, 0);
	assert_string_equal(f->rec.events[0].reason, "unreadable upstream answer");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_malformed_udp, teardown),
	    cmocka_unit_test_teardown(test_fuzz_udp, teardown),
	    cmocka_unit_test_teardown(test_malformed_tcp, teardown),
	    cmocka_unit_test_teardown(test_upstream_timeout, teardown_black),
	    cmocka_unit_test_teardown(test_flood_bounded, teardown_black),
	    cmocka_unit_test_teardown(test_tcp_clients_bounded, teardown),
	    cmocka_unit_test_teardown(test_forged_replies_ignored, teardown_mitm),
	    cmocka_unit_test_teardown(test_unreadable_answer, teardown_mitm),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
