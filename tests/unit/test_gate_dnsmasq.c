/*
 * The DNS gate in front of a real dnsmasq on loopback: allowed answers are pinned before the
 * client can read them, CNAME chains are pinned under the asked name, refused names never
 * reach dnsmasq (checked in dnsmasq's own query log), TCP, TC -> TCP retry, a real client
 * (dig), pin failures, the gate's own refusals and pin expiry.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "test_gate_harness.h"

static struct h_dnsmasq dm;

static const char *const allow[] = {"allowed.test", "www.allowed.test", "big.test", "huge.test",
				    "many.test",    "ready.test",	NULL};

struct fixture {
	struct h_rec rec;
	struct dnsgate *g;
	int fd;
};

static int group_setup(void **state)
{
	static char recs[200][64];
	const char *extra[220];
	int n = 0;

	(void)state;
	extra[n++] = "--host-record=allowed.test,127.0.10.1,fd00::10:1,300";
	extra[n++] = "--host-record=refused.test,127.0.10.66";
	extra[n++] = "--cname=www.allowed.test,edge.cdn.test";
	extra[n++] = "--cname=edge.cdn.test,origin.cdn.test";
	extra[n++] = "--host-record=origin.cdn.test,127.0.10.3,fd00::10:3";
	/* 40 addresses overflow 512 bytes, 100 overflow the 1232 the gate advertises. */
	for (int i = 1; i <= 40; i++) {
		snprintf(recs[n], sizeof(recs[n]), "--host-record=big.test,127.0.11.%d", i);
		extra[n] = recs[n];
		n++;
	}
	for (int i = 1; i <= 100; i++) {
		snprintf(recs[n], sizeof(recs[n]), "--host-record=huge.test,127.0.12.%d", i);
		extra[n] = recs[n];
		n++;
	}
	for (int i = 1; i <= 8; i++) {
		snprintf(recs[n], sizeof(recs[n]), "--host-record=many.test,127.0.13.%d", i);
		extra[n] = recs[n];
		n++;
	}
	extra[n] = NULL;
	return h_dnsmasq_start(&dm, 0, extra);
}

static int group_teardown(void **state)
{
	(void)state;
	h_dnsmasq_stop(&dm);
	return 0;
}

static int start_gate(void **state, void (*tweak)(struct dnsgate_config *))
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct dnsgate_config cfg;
	char err[256];

	f->rec.allow = allow;
	f->fd = h_udp_socket();
	f->rec.client_fd = f->fd;
	cfg = h_config(&f->rec, dm.addr, dm.port);
	if (tweak)
		tweak(&cfg);
	f->g = dnsgate_new(&cfg, err, sizeof(err));
	if (!f->g) {
		fprintf(stderr, "%s\n", err);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return start_gate(state, NULL);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f) {
		dnsgate_free(f->g);
		close(f->fd);
		free(f);
	}
	return 0;
}

static int ask(struct fixture *f, const char *name, int type, uint16_t edns, uint8_t *resp,
	       size_t cap)
{
	uint8_t q[512];
	int n = h_mkquery(name, type, edns, q, sizeof(q));

	assert_true(n > 0);
	return h_udp_exchange(f->g, f->fd, q, (size_t)n, resp, cap, 3000);
}

static void test_a_pinned_before_reply(void **state)
{
	struct fixture *f = *state;
	uint8_t resp[512];
	char addrs[256];
	int n = ask(f, "allowed.test", ns_t_a, 0, resp, sizeof(resp));

	assert_true(n > 0);
	assert_int_equal(h_rcode(resp), ns_r_noerror);
	assert_int_equal(h_addrs(resp, n, addrs, sizeof(addrs)), 1);
	assert_string_equal(addrs, "127.0.10.1");
	assert_int_equal(f->rec.npins, 1);
	assert_string_equal(f->rec.pins[0].qname, "allowed.test");
	assert_string_equal(f->rec.pins[0].addr, "127.0.10.1");
	assert_int_equal(f->rec.pins[0].ttl, 300);
	/* The pin callback peeked at the client's socket: nothing had arrived yet. */
	assert_false(f->rec.pins[0].client_had_reply);
	assert_int_equal(f->rec.nevents, 1);
	assert_int_equal(f->rec.events[0].verdict, DNSGATE_ALLOW);
	assert_int_equal(f->rec.events[0].rcode, ns_r_noerror);
	assert_int_equal(f->rec.events[0].n_pinned, 1);
	assert_true(h_dnsmasq_logged(&dm, "query[A] allowed.test from"));
}

static void test_aaaa_pinned(void **state)
{
	struct fixture *f = *state;
	uint8_t resp[512];
	char addrs[256];
	int n = ask(f, "allowed.test", ns_t_aaaa, 1232, resp, sizeof(resp));

	assert_true(n > 0);
	assert_int_equal(h_addrs(resp, n, addrs, sizeof(addrs)), 1);
	assert_string_equal(addrs, "fd00::10:1");
	assert_int_equal(f->rec.npins, 1);
	assert_string_equal(f->rec.pins[0].addr, "fd00::10:1");
	assert_false(f->rec.pins[0].client_had_reply);
}

static void test_cname_chain(void **state)
{
	struct fixture *f = *state;
	uint8_t resp[512];
	char addrs[256];
	int n = ask(f, "WWW.Allowed.Test", ns_t_a, 0, resp, sizeof(resp));

	assert_true(n > 0);
	assert_int_equal(h_addrs(resp, n, addrs, sizeof(addrs)), 1);
	assert_string_equal(addrs, "127.0.10.3");
	assert_int_equal(f->rec.npins, 1);
	/* Pinned under the name the policy allowed, with the owner at the end of the chain. */
	assert_string_equal(f->rec.pins[0].qname, "www.allowed.test");
	assert_string_equal(f->rec.pins[0].owner, "origin.cdn.test");
	assert_false(f->rec.pins[0].client_had_reply);
}

static void test_refused_never_upstream(void **state)
{
	struct fixture *f = *state;
	uint8_t resp[512];
	int n;

	n = ask(f, "refused.test", ns_t_a, 0, resp, sizeof(resp));
	assert_true(n > 0);
	assert_int_equal(h_rcode(resp), ns_r_nxdomain);
	n = ask(f, "c2VjcmV0LWRhdGE.tunnel.refused.test", ns_t_txt, 0, resp, sizeof(resp));
	assert_int_equal(h_rcode(resp), ns_r_nxdomain);
	assert_int_equal(f->rec.npins, 0);
	assert_int_equal(f->rec.events[0].verdict, DNSGATE_REFUSE);
	assert_string_equal(f->rec.events[0].reason, "refused by policy");
	/* A marker query after them: once it is answered, dnsmasq has logged everything that
	 * reached it before. */
	n = ask(f, "ready.test", ns_t_a, 0, resp, sizeof(resp));
	assert_int_equal(h_rcode(resp), ns_r_noerror);
	assert_true(h_dnsmasq_logged(&dm, "query[A] ready.test from 127.0.0.1"));
	assert_false(h_dnsmasq_logged(&dm, "refused.test"));
	assert_false(h_dnsmasq_logged(&dm, "c2VjcmV0LWRhdGE"));
}

static void refused_style(struct dnsgate_config *c)
{
	c->refusal = DNSGATE_REFUSED;
}

static void test_refused_style(void **state)
{
	struct fixture *f;
	uint8_t resp[512];
	int n;

	assert_int_equal(start_gate(state, refused_style), 0);
	f = *state;
	n = ask(f, "refused.test", ns_t_a, 0, resp, sizeof(resp));
	assert_true(n > 0);
	assert_int_equal(h_rcode(resp), ns_r_refused);
}

/* The Extended DNS Error option of a refusal, read with libresolv: info-code and text. */
static int ede_of(const uint8_t *resp, int n, char *text, size_t cap)
{
	ns_msg h;
	ns_rr rr;

	if (ns_initparse(resp, n, &h) < 0)
		return -1;
	for (int i = 0; i < ns_msg_count(h, ns_s_ar); i++) {
		const uint8_t *o;
		size_t olen;

		if (ns_parserr(&h, ns_s_ar, i, &rr) < 0 || ns_rr_type(rr) != ns_t_opt)
			continue;
		o = ns_rr_rdata(rr);
		olen = ns_rr_rdlen(rr);
		if (olen < 6 || (o[0] << 8 | o[1]) != 15)
			return -1;
		snprintf(text, cap, "%.*s", (int)((o[2] << 8 | o[3]) - 2), (const char *)o + 6);
		return o[4] << 8 | o[5];
	}
	return 0;
}

/* A refusal says why, in a way dig and modern stubs show: RFC 8914 EDE, only to EDNS clients. */
static void test_refusal_carries_ede(void **state)
{
	struct fixture *f = *state;
	uint8_t resp[512];
	char text[128] = "";
	int n;

	n = ask(f, "refused.test", ns_t_a, 1232, resp, sizeof(resp));
	assert_int_equal(h_rcode(resp), ns_r_nxdomain);
	assert_int_equal(ede_of(resp, n, text, sizeof(text)), DNSGATE_EDE_PROHIBITED);
	assert_string_equal(text, "runwarden: refused by policy");
	n = ask(f, "refused.test", ns_t_a, 0, resp, sizeof(resp));
	assert_int_equal(ede_of(resp, n, text, sizeof(text)), 0); /* no OPT without EDNS */
	n = ask(f, "allowed.test", ns_t_axfr, 1232, resp, sizeof(resp));
	assert_int_equal(h_rcode(resp), ns_r_refused);
	assert_int_equal(ede_of(resp, n, text, sizeof(text)), DNSGATE_EDE_PROHIBITED);
	assert_string_equal(text, "runwarden: meta-type refused");
}

/* The same answer twice is one pin, refreshed: pin and unpin calls pair up exactly, so an owner
 * counting references (one per pin) drops the address when its one unpin comes. */
static void test_repeated_answer_pins_once(void **state)
{
	struct fixture *f = *state;
	uint8_t resp[512];
	uint64_t next = 0;

	for (int i = 0; i < 3; i++)
		ask(f, "allowed.test", ns_t_a, 0, resp, sizeof(resp));
	assert_int_equal(f->rec.npins, 1);
	assert_int_equal(f->rec.events[2].n_pinned, 1); /* still pinned, by the refresh */
	assert_int_equal(dnsgate_expire(f->g, dnsgate_now_ms() + 331 * 1000, &next), 1);
	assert_int_equal(f->rec.nunpins, 1);
	ask(f, "allowed.test", ns_t_a, 0, resp, sizeof(resp));
	assert_int_equal(f->rec.npins, 2); /* expired, so pinned anew */
}

static void refuse_any(struct dnsgate_config *c)
{
	c->refuse_any = true;
}

static void test_own_refusals(void **state)
{
	struct fixture *f;
	uint8_t q[512], resp[512];
	struct h_pkt p;
	int n;

	assert_int_equal(start_gate(state, refuse_any), 0);
	f = *state;
	n = ask(f, "allowed.test", ns_t_any, 0, resp, sizeof(resp));
	assert_int_equal(h_rcode(resp), ns_r_refused);
	n = ask(f, "allowed.test", ns_t_axfr, 0, resp, sizeof(resp));
	assert_int_equal(h_rcode(resp), ns_r_refused);
	n = res_mkquery(ns_o_query, "allowed.test", ns_c_chaos, ns_t_txt, NULL, 0, NULL, q,
			sizeof(q));
	n = h_udp_exchange(f->g, f->fd, q, (size_t)n, resp, sizeof(resp), 3000);
	assert_int_equal(h_rcode(resp), ns_r_refused);
	/* Two questions, the second allowed: still refused, as one packet. */
	h_header(&p, 7, 0x0100, 2, 0, 0, 0);
	h_question(&p, "refused.test", ns_t_a);
	h_question(&p, "allowed.test", ns_t_a);
	n = h_udp_exchange(f->g, f->fd, p.b, p.n, resp, sizeof(resp), 3000);
	assert_true(n >= 12);
	assert_int_equal(h_rcode(resp), ns_r_refused);
	/* None of these reached the policy, let alone upstream. */
	assert_int_equal(f->rec.ndecides, 0);
	assert_int_equal(f->rec.npins, 0);
	assert_false(h_dnsmasq_logged(&dm, "refused.test"));
}

static void test_tcp(void **state)
{
	struct fixture *f = *state;
	uint8_t q1[512], q2[512], resp[512];
	char addrs[256];
	int n1 = h_mkquery("allowed.test", ns_t_a, 0, q1, sizeof(q1));
	int n2 = h_mkquery("www.allowed.test", ns_t_a, 0, q2, sizeof(q2));
	int fd = h_tcp_connect(f->g), n;
	struct dnsgate_stats st;

	assert_true(fd >= 0);
	f->rec.client_fd = fd;
	/* Two queries pipelined on one connection (RFC 7766). */
	assert_int_equal(h_tcp_send(fd, q1, (size_t)n1), 0);
	assert_int_equal(h_tcp_send(fd, q2, (size_t)n2), 0);
	for (int i = 0; i < 2; i++) {
		n = h_tcp_recv(f->g, fd, resp, sizeof(resp), 3000);
		assert_true(n > 0);
		assert_int_equal(h_rcode(resp), ns_r_noerror);
		assert_int_equal(h_addrs(resp, n, addrs, sizeof(addrs)), 1);
	}
	assert_true(h_pinned(&f->rec, "allowed.test", "127.0.10.1"));
	assert_true(h_pinned(&f->rec, "www.allowed.test", "127.0.10.3"));
	/* The second pin may find the first reply waiting; the first pin must not. */
	assert_false(f->rec.pins[0].client_had_reply);
	assert_int_equal(f->rec.events[0].proto, IPPROTO_TCP);
	/* One more, alone on the drained connection: pinned before its reply arrives. */
	n1 = h_mkquery("allowed.test", ns_t_aaaa, 0, q1, sizeof(q1));
	assert_int_equal(h_tcp_send(fd, q1, (size_t)n1), 0);
	n = h_tcp_recv(f->g, fd, resp, sizeof(resp), 3000);
	assert_int_equal(h_addrs(resp, n, addrs, sizeof(addrs)), 1);
	assert_int_equal(f->rec.npins, 3);
	assert_false(f->rec.pins[2].client_had_reply);
	/* Refused over TCP too. */
	n1 = h_mkquery("refused.test", ns_t_a, 0, q1, sizeof(q1));
	assert_int_equal(h_tcp_send(fd, q1, (size_t)n1), 0);
	n = h_tcp_recv(f->g, fd, resp, sizeof(resp), 3000);
	assert_int_equal(h_rcode(resp), ns_r_nxdomain);
	dnsgate_stats(f->g, &st);
	assert_int_equal(st.tcp_clients, 1);
	close(fd);
}

static void test_tc_retry(void **state)
{
	struct fixture *f = *state;
	uint8_t resp[65536], q[512];
	char addrs[4096];
	struct dnsgate_stats st;
	int n = ask(f, "big.test", ns_t_a, 0, resp, sizeof(resp)), fd;

	/* No EDNS: dnsmasq truncates, the gate asks again over TCP and pins all 40; the full
	 * answer does not fit the client's 512 bytes, so the client gets TC. */
	assert_true(n > 0);
	assert_true(h_tc(resp));
	assert_int_equal(f->rec.npins, 40);
	for (int i = 0; i < 40; i++)
		assert_false(f->rec.pins[i].client_had_reply);
	dnsgate_stats(f->g, &st);
	assert_int_equal(st.tcp_retries, 1);
	/* The client's own TCP retry gets all of it. */
	fd = h_tcp_connect(f->g);
	n = h_mkquery("big.test", ns_t_a, 0, q, sizeof(q));
	assert_int_equal(h_tcp_send(fd, q, (size_t)n), 0);
	n = h_tcp_recv(f->g, fd, resp, sizeof(resp), 3000);
	assert_int_equal(h_addrs(resp, n, addrs, sizeof(addrs)), 40);
	close(fd);

	/* EDNS 4096: dnsmasq truncates at the gate's 1232, the TCP answer (100 records) fits
	 * the client's 4096 and is released whole over UDP. */
	f->rec.npins = 0;
	n = ask(f, "huge.test", ns_t_a, 4096, resp, sizeof(resp));
	assert_true(n > 1232);
	assert_false(h_tc(resp));
	assert_int_equal(h_addrs(resp, n, addrs, sizeof(addrs)), 100);
	assert_int_equal(f->rec.npins, 100 > H_MAX ? H_MAX : 100);
	dnsgate_stats(f->g, &st);
	assert_int_equal(st.tcp_retries, 2);
}

/* dig does UDP, sees TC and retries over TCP by itself: the whole path with a real client. */
static void test_dig(void **state)
{
	struct fixture *f = *state;
	char port[16], out[8192];
	int pfd[2], status = -1;
	size_t len = 0;
	pid_t pid;
	uint64_t end = h_now_ms() + 10000;

	snprintf(port, sizeof(port), "%u", dnsgate_port(f->g));
	assert_int_equal(pipe2(pfd, O_NONBLOCK), 0);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pfd[1], 1);
		execlp("dig", "dig", "@127.0.0.1", "-p", port, "+noedns", "+tries=1", "+time=3",
		       "big.test", "A", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	while (h_now_ms() < end) {
		ssize_t n;

		dnsgate_poll(f->g, 2);
		n = read(pfd[0], out + len, sizeof(out) - 1 - len);
		if (n > 0)
			len += (size_t)n;
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
	}
	for (ssize_t n; (n = read(pfd[0], out + len, sizeof(out) - 1 - len)) > 0;)
		len += (size_t)n;
	out[len] = 0;
	close(pfd[0]);
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_non_null(strstr(out, "Truncated, retrying in TCP mode"));
	assert_non_null(strstr(out, "ANSWER: 40"));
	assert_non_null(strstr(out, "127.0.11.40"));
}

static void test_pin_failure_servfail(void **state)
{
	struct fixture *f = *state;
	uint8_t resp[512];
	char addrs[256];
	int n;

	f->rec.fail_pins = 1;
	n = ask(f, "allowed.test", ns_t_a, 0, resp, sizeof(resp));
	assert_true(n > 0);
	assert_int_equal(h_rcode(resp), ns_r_servfail);
	assert_int_equal(h_addrs(resp, n, addrs, sizeof(addrs)), 0);
	assert_string_equal(f->rec.events[0].reason, "pin failed");
}

static void small_table(struct dnsgate_config *c)
{
	c->max_pins = 4;
}

static void small_table_best_effort(struct dnsgate_config *c)
{
	c->max_pins = 4;
	c->pin_best_effort = true;
}

/* Observe mode: a full pin table must not refuse names (observing changes nothing); the
 * answers go through unpinned and are counted. SERVFAIL here before pin_best_effort. */
static void test_pin_table_full_observe(void **state)
{
	struct fixture *f;
	uint8_t resp[512];
	char addrs[256];
	struct dnsgate_stats st;
	int n;

	assert_int_equal(start_gate(state, small_table_best_effort), 0);
	f = *state;
	n = ask(f, "many.test", ns_t_a, 0, resp, sizeof(resp));
	assert_true(n > 0);
	assert_int_equal(h_rcode(resp), ns_r_noerror);
	assert_true(h_addrs(resp, n, addrs, sizeof(addrs)) > 0);
	dnsgate_stats(f->g, &st);
	assert_int_equal(st.pinned, 4);
	assert_true(st.pins_skipped > 0);
	assert_int_equal(st.servfail, 0);
}

static void test_pin_table_full(void **state)
{
	struct fixture *f;
	uint8_t resp[512];
	char addrs[256];
	struct dnsgate_stats st;
	int n;

	assert_int_equal(start_gate(state, small_table), 0);
	f = *state;
	n = ask(f, "many.test", ns_t_a, 0, resp, sizeof(resp));
	assert_true(n > 0);
	assert_int_equal(h_rcode(resp), ns_r_servfail);
	assert_int_equal(h_addrs(resp, n, addrs, sizeof(addrs)), 0);
	assert_string_equal(f->rec.events[0].reason, "pin table full");
	dnsgate_stats(f->g, &st);
	assert_int_equal(st.pinned, 4);
	/* Once those expire there is room again. */
	assert_int_equal(dnsgate_expire(f->g, dnsgate_now_ms() + 86400 * 1000ull, NULL), 4);
	assert_int_equal(f->rec.nunpins, 4);
	n = ask(f, "allowed.test", ns_t_a, 0, resp, sizeof(resp));
	assert_int_equal(h_rcode(resp), ns_r_noerror);
}

static void test_expire(void **state)
{
	struct fixture *f = *state;
	uint8_t resp[512];
	uint64_t next = 0, now;

	ask(f, "allowed.test", ns_t_a, 0, resp, sizeof(resp));
	ask(f, "allowed.test", ns_t_aaaa, 0, resp, sizeof(resp));
	now = dnsgate_now_ms();
	assert_int_equal(dnsgate_expire(f->g, now, &next), 0);
	/* TTL 300 + default grace 30. */
	assert_true(next > now + 329 * 1000 && next <= now + 330 * 1000);
	assert_int_equal(dnsgate_expire(f->g, next + 1000, &next), 2);
	assert_int_equal(f->rec.nunpins, 2);
	/* Both expire at the same time: in either order. */
	assert_true((!strcmp(f->rec.unpins[0], "allowed.test fd00::10:1") &&
		     !strcmp(f->rec.unpins[1], "allowed.test 127.0.10.1")) ||
		    (!strcmp(f->rec.unpins[1], "allowed.test fd00::10:1") &&
		     !strcmp(f->rec.unpins[0], "allowed.test 127.0.10.1")));
	assert_int_equal(next, 0);
}

static void listen_v6(struct dnsgate_config *c)
{
	c->listen = "::1";
}

/* The gate on ::1 (the kernel redirects IPv6 port-53 traffic too), upstream still IPv4. */
static void test_ipv6_listen(void **state)
{
	struct fixture *f;
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	uint8_t q[512], resp[512];
	char addrs[256];
	int fd, n = h_mkquery("allowed.test", ns_t_aaaa, 0, q, sizeof(q));
	uint64_t end = h_now_ms() + 3000;

	assert_int_equal(start_gate(state, listen_v6), 0);
	f = *state;
	fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	f->rec.client_fd = fd;
	sa.sin6_port = htons(dnsgate_port(f->g));
	assert_int_equal(sendto(fd, q, (size_t)n, 0, (struct sockaddr *)&sa, sizeof(sa)), n);
	n = -1;
	while (n < 0 && h_now_ms() < end) {
		dnsgate_poll(f->g, 2);
		n = (int)recv(fd, resp, sizeof(resp), MSG_DONTWAIT);
	}
	close(fd);
	assert_true(n > 0);
	assert_int_equal(h_addrs(resp, n, addrs, sizeof(addrs)), 1);
	assert_string_equal(addrs, "fd00::10:1");
	assert_int_equal(f->rec.npins, 1);
	assert_false(f->rec.pins[0].client_had_reply);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_a_pinned_before_reply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_aaaa_pinned, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cname_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_never_upstream, setup, teardown),
	    cmocka_unit_test_teardown(test_refused_style, teardown),
	    cmocka_unit_test_setup_teardown(test_refusal_carries_ede, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_repeated_answer_pins_once, setup, teardown),
	    cmocka_unit_test_teardown(test_own_refusals, teardown),
	    cmocka_unit_test_setup_teardown(test_tcp, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tc_retry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dig, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pin_failure_servfail, setup, teardown),
	    cmocka_unit_test_teardown(test_pin_table_full, teardown),
	    cmocka_unit_test_teardown(test_pin_table_full_observe, teardown),
	    cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
	    cmocka_unit_test_teardown(test_ipv6_listen, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
