/*
 * Shared by the DNS gate tests (test_gate_*.c): starts a real dnsmasq on a loopback address
 * as the gate's upstream, builds queries with libresolv, talks to the gate over real loopback
 * sockets while driving its loop, and records what the gate's callbacks saw, in order.
 * Header-only (static functions) because each test is its own program.
 */
#ifndef TEST_GATE_HARNESS_H
#define TEST_GATE_HARNESS_H
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <resolv.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gate/dnsgate.h"

/* Each test program uses a different subset of these helpers. */
#pragma GCC diagnostic ignored "-Wunused-function"

static uint64_t h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- loopback addresses and ports ---- */

/* A per-process address in 127.0.0.0/8 keeps parallel test programs off each other's ports. */
static void h_loopback_addr(char *buf, size_t len, int salt)
{
	snprintf(buf, len, "127.%d.%d.%d", 53 + salt, (getpid() >> 8) & 0xff, getpid() & 0xff);
	if (strcmp(buf + strlen(buf) - 2, ".0") == 0)
		buf[strlen(buf) - 1] = '1';
}

/* A port free for both UDP and TCP on addr (dnsmasq listens on both). */
static uint16_t h_free_port(const char *addr)
{
	for (int i = 0; i < 50; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		socklen_t l = sizeof(sa);
		int u = socket(AF_INET, SOCK_DGRAM, 0), t = socket(AF_INET, SOCK_STREAM, 0);
		uint16_t port = 0;

		inet_pton(AF_INET, addr, &sa.sin_addr);
		if (bind(u, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		    getsockname(u, (struct sockaddr *)&sa, &l) == 0 &&
		    bind(t, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			port = ntohs(sa.sin_port);
		close(u);
		close(t);
		if (port)
			return port;
	}
	return 0;
}

/* ---- dnsmasq ---- */

struct h_dnsmasq {
	pid_t pid;
	char addr[32];
	uint16_t port;
	char log[128];
};

static int h_query_direct(const char *addr, uint16_t port, const char *name, int type,
			  uint8_t *resp, size_t cap, int timeout_ms);

/* argv extras end with NULL. Waits until dnsmasq answers. Returns 0 or -1. */
static int h_dnsmasq_start(struct h_dnsmasq *d, int salt, const char *const *extra)
{
	char listen[64], port[32];
	const char *argv[512];
	int n = 0;
	uint8_t resp[512];

	memset(d, 0, sizeof(*d));
	h_loopback_addr(d->addr, sizeof(d->addr), salt);
	d->port = h_free_port(d->addr);
	if (!d->port)
		return -1;
	snprintf(d->log, sizeof(d->log), "/tmp/test_gate_dnsmasq.%d.%d.log", getpid(), salt);
	snprintf(listen, sizeof(listen), "--listen-address=%s", d->addr);
	snprintf(port, sizeof(port), "--port=%u", d->port);
	argv[n++] = "dnsmasq";
	argv[n++] = "--no-daemon";
	argv[n++] = "--no-resolv";
	argv[n++] = "--no-hosts";
	argv[n++] = "--bind-interfaces";
	argv[n++] = "--user=root";
	argv[n++] = "--pid-file=";
	argv[n++] = "--log-queries";
	argv[n++] = "--log-facility=-";
	argv[n++] = "--cache-size=0"; /* every question shows up in the log */
	argv[n++] = listen;
	argv[n++] = port;
	argv[n++] = "--host-record=ready.test,127.0.10.254";
	for (int i = 0; extra && extra[i] && n < 510; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;

	d->pid = fork();
	if (d->pid < 0)
		return -1;
	if (d->pid == 0) {
		/* Dies with the test even if the test is killed or crashes under ASan. */
		int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() == 1)
			_exit(127);
		dup2(fd, 2);
		dup2(fd, 1);
		execvp("dnsmasq", (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		if (h_query_direct(d->addr, d->port, "ready.test", ns_t_a, resp, sizeof(resp),
				   100) > 0)
			return 0;
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
			d->pid = 0;
			return -1;
		}
	}
	return -1;
}

static void h_dnsmasq_stop(struct h_dnsmasq *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		for (int i = 0; i < 100; i++) {
			if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
				d->pid = 0;
				break;
			}
			usleep(10000);
		}
		if (d->pid > 0) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, NULL, 0);
		}
		d->pid = 0;
	}
	if (d->log[0] && !getenv("KEEP_LOG"))
		unlink(d->log);
}

/* Does dnsmasq's own query log mention needle? */
static bool h_dnsmasq_logged(const struct h_dnsmasq *d, const char *needle)
{
	static char buf[1 << 20];
	FILE *f = fopen(d->log, "r");
	size_t n;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

/* ---- queries ---- */

/* A query built by libresolv; edns > 0 appends an OPT record advertising that size. */
static int h_mkquery(const char *name, int type, uint16_t edns, uint8_t *buf, size_t cap)
{
	int n = res_mkquery(ns_o_query, name, ns_c_in, type, NULL, 0, NULL, buf, (int)cap);

	if (n < 0 || !edns)
		return n;
	uint8_t opt[11] = {0, 0, 41, (uint8_t)(edns >> 8), (uint8_t)edns, 0, 0, 0, 0, 0, 0};

	memcpy(buf + n, opt, sizeof(opt));
	buf[11] = 1; /* ARCOUNT */
	return n + (int)sizeof(opt);
}

static int h_udp_socket(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	return fd;
}

static struct sockaddr_in h_sa(const char *addr, uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};

	inet_pton(AF_INET, addr, &sa.sin_addr);
	return sa;
}

static int h_query_direct(const char *addr, uint16_t port, const char *name, int type,
			  uint8_t *resp, size_t cap, int timeout_ms)
{
	uint8_t q[512];
	int qn = h_mkquery(name, type, 0, q, sizeof(q)), fd = h_udp_socket();
	struct sockaddr_in sa = h_sa(addr, port);
	ssize_t n = -1;
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	sendto(fd, q, (size_t)qn, 0, (struct sockaddr *)&sa, sizeof(sa));
	while (h_now_ms() < end) {
		n = recv(fd, resp, cap, MSG_DONTWAIT);
		if (n >= 0)
			break;
		usleep(2000);
	}
	close(fd);
	return (int)n;
}

/* Hook run on every turn of the wait loops (e.g. a fake upstream's step). */
static void (*h_hook)(void);

/* Sends q from fd to the gate and drives the gate until fd gets an answer. */
static int h_udp_exchange(struct dnsgate *g, int fd, const uint8_t *q, size_t qlen, uint8_t *resp,
			  size_t cap, int timeout_ms)
{
	struct sockaddr_in sa = h_sa("127.0.0.1", dnsgate_port(g));
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	if (q && sendto(fd, q, qlen, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	while (h_now_ms() < end) {
		ssize_t n;

		dnsgate_poll(g, 2);
		if (h_hook)
			h_hook();
		n = recv(fd, resp, cap, MSG_DONTWAIT);
		if (n >= 0)
			return (int)n;
	}
	return -1;
}

static int h_tcp_connect(struct dnsgate *g)
{
	struct sockaddr_in sa = h_sa("127.0.0.1", dnsgate_port(g));
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	for (int i = 0; i < 50; i++)
		dnsgate_poll(g, 2); /* let the gate accept */
	return fd;
}

static int h_tcp_send(int fd, const uint8_t *q, size_t qlen)
{
	uint8_t buf[2 + 65535];

	buf[0] = (uint8_t)(qlen >> 8);
	buf[1] = (uint8_t)qlen;
	memcpy(buf + 2, q, qlen);
	return send(fd, buf, qlen + 2, MSG_NOSIGNAL) == (ssize_t)(qlen + 2) ? 0 : -1;
}

/* Reads one length-prefixed message, driving the gate meanwhile. 0 on EOF, -1 timeout. */
static int h_tcp_recv(struct dnsgate *g, int fd, uint8_t *resp, size_t cap, int timeout_ms)
{
	uint8_t buf[2 + 65535];
	size_t have = 0, want = 2;
	uint64_t end = h_now_ms() + (uint64_t)timeout_ms;

	while (h_now_ms() < end) {
		ssize_t n;

		dnsgate_poll(g, 2);
		if (h_hook)
			h_hook();
		n = recv(fd, buf + have, want - have, MSG_DONTWAIT);
		if (n == 0)
			return 0;
		if (n < 0)
			continue;
		have += (size_t)n;
		if (have == 2)
			want = 2 + ((size_t)buf[0] << 8 | buf[1]);
		if (have == want && want > 2) {
			size_t len = want - 2 < cap ? want - 2 : cap;

			memcpy(resp, buf + 2, len);
			return (int)len;
		}
	}
	return -1;
}

static int h_rcode(const uint8_t *resp)
{
	return resp[3] & 0x0f;
}

static bool h_tc(const uint8_t *resp)
{
	return resp[2] & 0x02;
}

/* Answer-section A/AAAA addresses of a response, as text, into out (comma-separated). */
static int h_addrs(const uint8_t *resp, int len, char *out, size_t cap)
{
	ns_msg h;
	ns_rr rr;
	int n = 0;

	out[0] = 0;
	if (ns_initparse(resp, len, &h) < 0)
		return -1;
	for (int i = 0; i < ns_msg_count(h, ns_s_an); i++) {
		char a[64];

		if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
			return -1;
		if (ns_rr_type(rr) == ns_t_a)
			inet_ntop(AF_INET, ns_rr_rdata(rr), a, sizeof(a));
		else if (ns_rr_type(rr) == ns_t_aaaa)
			inet_ntop(AF_INET6, ns_rr_rdata(rr), a, sizeof(a));
		else
			continue;
		snprintf(out + strlen(out), cap - strlen(out), "%s%s", n ? "," : "", a);
		n++;
	}
	return n;
}

/* ---- recording callbacks ---- */

#define H_MAX 256

struct h_pin {
	char qname[256], owner[256], addr[64];
	uint32_t ttl;
	bool client_had_reply; /* was the reply already readable when the pin happened? */
};

struct h_event {
	char qname[256], reason[64];
	int qtype, rcode, proto;
	enum dnsgate_verdict verdict;
	size_t n_answers, n_pinned;
};

struct h_rec {
	const char *const *allow; /* exact names; NULL-terminated */
	int client_fd;		  /* peeked at by the pin callback; -1 for none */
	int fail_pins;		  /* pin returns non-zero when set */
	int npins, nevents, nunpins, ndecides;
	struct h_pin pins[H_MAX];
	struct h_event events[H_MAX];
	char unpins[H_MAX][320];
};

static enum dnsgate_verdict h_decide(void *ctx, const char *qname, int qtype,
				     const struct dnsgate_client *who, struct dnsgate_decision *d)
{
	struct h_rec *r = ctx;

	(void)qtype;
	(void)who;
	(void)d;
	r->ndecides++;
	for (int i = 0; r->allow && r->allow[i]; i++)
		if (strcmp(qname, r->allow[i]) == 0)
			return DNSGATE_ALLOW;
	return DNSGATE_REFUSE;
}

static int h_pin_cb(void *ctx, const char *qname, const char *owner, int family, const void *addr,
		    uint32_t ttl)
{
	struct h_rec *r = ctx;
	struct h_pin *p;
	uint8_t peek[1];

	if (r->fail_pins)
		return -1;
	if (r->npins == H_MAX)
		return 0;
	p = &r->pins[r->npins++];
	snprintf(p->qname, sizeof(p->qname), "%s", qname);
	snprintf(p->owner, sizeof(p->owner), "%s", owner);
	inet_ntop(family, addr, p->addr, sizeof(p->addr));
	p->ttl = ttl;
	p->client_had_reply =
	    r->client_fd >= 0 && recv(r->client_fd, peek, 1, MSG_PEEK | MSG_DONTWAIT) >= 0;
	return 0;
}

static void h_unpin_cb(void *ctx, const char *qname, int family, const void *addr)
{
	struct h_rec *r = ctx;
	char a[64];

	if (r->nunpins == H_MAX)
		return;
	inet_ntop(family, addr, a, sizeof(a));
	snprintf(r->unpins[r->nunpins++], sizeof(r->unpins[0]), "%s %s", qname, a);
}

static void h_event_cb(void *ctx, const struct dnsgate_event *ev)
{
	struct h_rec *r = ctx;
	struct h_event *e;

	if (r->nevents == H_MAX)
		return;
	e = &r->events[r->nevents++];
	snprintf(e->qname, sizeof(e->qname), "%s", ev->qname);
	snprintf(e->reason, sizeof(e->reason), "%s", ev->reason);
	e->qtype = ev->qtype;
	e->rcode = ev->rcode;
	e->verdict = ev->verdict;
	e->proto = ev->who->proto;
	e->n_answers = ev->n_answers;
	e->n_pinned = ev->n_pinned;
}

static bool h_pinned(const struct h_rec *r, const char *qname, const char *addr)
{
	for (int i = 0; i < r->npins; i++)
		if (!strcmp(r->pins[i].qname, qname) && !strcmp(r->pins[i].addr, addr))
			return true;
	return false;
}

static struct dnsgate_config h_config(struct h_rec *r, const char *upstream, uint16_t port)
{
	struct dnsgate_config c = {
	    .listen = "127.0.0.1",
	    .upstream = upstream,
	    .upstream_port = port,
	    .timeout_ms = 1000,
	    .ctx = r,
	    .decide = h_decide,
	    .pin = h_pin_cb,
	    .unpin = h_unpin_cb,
	    .event = h_event_cb,
	};
	return c;
}

/* ---- crafting messages a real server would not send ---- */

struct h_pkt {
	uint8_t b[4096];
	size_t n;
};

static void h_put16(struct h_pkt *p, unsigned v)
{
	p->b[p->n++] = (uint8_t)(v >> 8);
	p->b[p->n++] = (uint8_t)v;
}

static void h_name(struct h_pkt *p, const char *name)
{
	int n = ns_name_pton(name, p->b + p->n, sizeof(p->b) - p->n);

	if (n >= 0) {
		const uint8_t *w = p->b + p->n;
		size_t l = 0;

		while (w[l])
			l += w[l] + 1u;
		p->n += l + 1;
	}
}

/* Header with the given counts; flags as the two raw bytes. */
static void h_header(struct h_pkt *p, uint16_t id, uint16_t flags, unsigned qd, unsigned an,
		     unsigned ns, unsigned ar)
{
	p->n = 0;
	h_put16(p, id);
	h_put16(p, flags);
	h_put16(p, qd);
	h_put16(p, an);
	h_put16(p, ns);
	h_put16(p, ar);
}

static void h_question(struct h_pkt *p, const char *name, int type)
{
	h_name(p, name);
	h_put16(p, (unsigned)type);
	h_put16(p, ns_c_in);
}

static void h_rr_a(struct h_pkt *p, const char *owner, const char *addr, uint32_t ttl)
{
	bool v6 = strchr(addr, ':') != NULL;

	h_name(p, owner);
	h_put16(p, v6 ? ns_t_aaaa : ns_t_a);
	h_put16(p, ns_c_in);
	h_put16(p, ttl >> 16);
	h_put16(p, ttl & 0xffff);
	h_put16(p, v6 ? 16 : 4);
	inet_pton(v6 ? AF_INET6 : AF_INET, addr, p->b + p->n);
	p->n += v6 ? 16 : 4;
}

static void h_rr_cname(struct h_pkt *p, const char *owner, const char *target, uint32_t ttl)
{
	size_t at;

	h_name(p, owner);
	h_put16(p, ns_t_cname);
	h_put16(p, ns_c_in);
	h_put16(p, ttl >> 16);
	h_put16(p, ttl & 0xffff);
	at = p->n;
	h_put16(p, 0);
	h_name(p, target);
	p->b[at] = (uint8_t)((p->n - at - 2) >> 8);
	p->b[at + 1] = (uint8_t)(p->n - at - 2);
}

#endif
