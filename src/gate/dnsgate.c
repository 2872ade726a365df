/*
 * The DNS gate (see dnsgate.h and docs/dnsgate.md): sockets, the query life cycle and the
 * order that matters: decide, forward, read the answer, pin every address it vouches for,
 * and only then release it to the client.
 *
 * Everything runs from dnsgate_dispatch on one thread. Objects that an epoll batch may still
 * name (queries, TCP clients) are not freed when they end but parked on a graveyard list and
 * freed when the batch is done.
 */
#include "gate/dnsgate.h"
#include "gate/pins.h"
#include "gate/wire.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define container_of(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))

/* Work done per readiness before going back to the agent's loop (it has a ring buffer to
 * drain too). Level-triggered epoll brings us back for the rest. */
#define BUDGET		 64
#define TCP_PIPELINE	 16 /* queries one TCP client may have in flight (RFC 7766 6.2.1.1) */
#define TCP_OUT_MAX	 (256 << 10) /* unsent reply bytes per TCP client before we give up on it */
#define MAX_INFLIGHT_CAP 32768	     /* half the id space, so a free random id is found at once */

enum kind {
	K_UDP_LISTEN,
	K_TCP_LISTEN,
	K_UPSTREAM_UDP,
	K_TIMER,
	K_TCP_CLIENT,
	K_UPSTREAM_TCP,
	K_UPSTREAM_ANY4,
	K_UPSTREAM_ANY6
};

struct ioh {
	enum kind kind;
	int fd;
	uint32_t events; /* as registered, to skip needless epoll_ctl */
};

struct link {
	struct link *prev, *next;
};

struct outbuf {
	struct outbuf *next;
	size_t len, off;
	uint8_t data[];
};

struct tconn {
	struct ioh io;
	struct link link; /* g->tconns, least recently active first */
	uint64_t deadline_ms;
	struct dnsgate_client who;
	unsigned outstanding; /* queries of this connection in flight; keeps the struct alive */
	bool closed, eof;
	struct outbuf *out, *out_tail;
	size_t out_bytes;
	size_t rlen;
	uint8_t rbuf[2 + GW_QUERY_MAX];
	struct tconn *grave;
};

enum qstate { Q_UDP, Q_TCP_CONNECT, Q_TCP_WRITE, Q_TCP_READ };

struct query {
	struct ioh io;	  /* upstream TCP socket; fd -1 while on UDP */
	struct link link; /* g->queries, earliest deadline first (all share one timeout) */
	uint64_t deadline_ms, started_us;
	enum qstate state;
	uint16_t up_id;
	bool dead;
	int tag;     /* decide()'s, for the event */
	bool own_up; /* sent to up (upstream_for), not to the configured upstream */
	struct sockaddr_storage up;
	socklen_t uplen;
	struct gw_question q;
	struct dnsgate_client who;
	struct tconn *conn; /* TCP client to answer, or NULL for UDP */
	size_t qlen;	    /* query, after a 2-byte TCP length prefix in qbuf */
	uint8_t qbuf[2 + GW_HDR + GW_WIRE_MAX + 4 + 11];
	size_t toff; /* TCP: bytes written, then bytes read */
	uint8_t tlen[2];
	uint8_t *tbuf; /* TCP reply being read */
	size_t twant;
	struct query *grave;
};

struct dnsgate {
	struct dnsgate_config cfg;
	int epfd;
	struct ioh udp, tcp, up_udp, timer;
	/* More listeners on the same address and port in other network namespaces (a
	 * container's): UDP and TCP per pair, -1 when the pair is free. */
	struct ioh ns_udp[DNSGATE_NETNS_MAX], ns_tcp[DNSGATE_NETNS_MAX];
	struct ioh up_any[2]; /* unconnected, per family, for upstream_for; opened when needed */
	bool has_up;
	struct sockaddr_storage up_addr;
	socklen_t up_len;
	uint16_t port;
	uint64_t armed_ms;
	struct link queries, tconns;
	unsigned ninflight, ntconns;
	struct query *byid[65536];
	struct query *grave_q;
	struct tconn *grave_c;
	struct gate_pins *pins;
	struct dnsgate_stats st;
	uint16_t rnd[64];
	unsigned nrnd;
	/* Scratch for one event's answer list. */
	struct dnsgate_rr ev_rr[DNSGATE_EVENT_RRS];
	char ev_owner[DNSGATE_EVENT_RRS][GW_NAME_MAX];
	char ev_data[DNSGATE_EVENT_RRS][GW_NAME_MAX];
	uint8_t pkt[65536];
};

/* ---- small helpers ---- */

static void list_init(struct link *l)
{
	l->prev = l->next = l;
}

static void list_del(struct link *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = e;
}

static void list_append(struct link *l, struct link *e)
{
	e->prev = l->prev;
	e->next = l;
	l->prev->next = e;
	l->prev = e;
}

static bool list_empty(const struct link *l)
{
	return l->next == l;
}

uint64_t dnsgate_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int ep_set(struct dnsgate *g, struct ioh *io, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = io};
	int op = io->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;

	if (io->events == events)
		return 0;
	if (!events) {
		/* Nothing wanted: deregister rather than keep a zero mask, which would still
		 * report HUP/ERR on every wait. */
		epoll_ctl(g->epfd, EPOLL_CTL_DEL, io->fd, NULL);
		io->events = 0;
		return 0;
	}
	if (epoll_ctl(g->epfd, op, io->fd, &ev) < 0)
		return -1;
	io->events = events;
	return 0;
}

static void ep_close(struct dnsgate *g, struct ioh *io)
{
	if (io->fd < 0)
		return;
	if (io->events)
		epoll_ctl(g->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	close(io->fd);
	io->fd = -1;
	io->events = 0;
}

/* Upstream ids come from the kernel's CSPRNG so that a process on the path cannot predict
 * them; the question check in gw_reply_matches is the second half of the defence. */
static uint16_t rand16(struct dnsgate *g)
{
	if (!g->nrnd) {
		if (getrandom(g->rnd, sizeof(g->rnd), GRND_NONBLOCK) != (ssize_t)sizeof(g->rnd)) {
			/* Early boot only; a monotonic-clock mix is still not a constant. */
			for (size_t i = 0; i < 64; i++)
				g->rnd[i] = (uint16_t)(now_us() * 2654435761u >> (i % 16));
		}
		g->nrnd = 64;
	}
	return g->rnd[--g->nrnd];
}

/* ---- events ---- */

static void emit(struct dnsgate *g, const struct gw_question *q, enum dnsgate_verdict v, int tag,
		 int rcode, const char *reason, const struct dnsgate_client *who, uint64_t t0,
		 size_t nrr, bool rr_trunc, size_t npinned)
{
	struct dnsgate_event ev = {
	    .qname = q && q->wire_len ? q->name : "",
	    .qtype = q && q->wire_len ? q->qtype : 0,
	    .qclass = q && q->wire_len ? q->qclass : 0,
	    .id = q ? q->id : 0,
	    .verdict = v,
	    .tag = tag,
	    .rcode = rcode,
	    .reason = reason,
	    .who = who,
	    .answers = g->ev_rr,
	    .n_answers = nrr,
	    .answers_truncated = rr_trunc,
	    .n_pinned = npinned,
	};
	uint64_t dt = now_us() - t0;

	ev.elapsed_us = dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
	if (g->cfg.event)
		g->cfg.event(g->cfg.ctx, &ev);
}

/* ---- TCP clients ---- */

static void conn_close(struct dnsgate *g, struct tconn *c);

static void conn_update(struct dnsgate *g, struct tconn *c)
{
	uint32_t ev = 0;

	if (c->closed)
		return;
	if (!c->eof && c->outstanding < TCP_PIPELINE)
		ev |= EPOLLIN;
	if (c->out)
		ev |= EPOLLOUT;
	if (c->eof && !c->outstanding && !c->out) {
		conn_close(g, c);
		return;
	}
	if (ep_set(g, &c->io, ev) < 0)
		conn_close(g, c);
}

static void conn_touch(struct dnsgate *g, struct tconn *c)
{
	c->deadline_ms = dnsgate_now_ms() + g->cfg.tcp_idle_ms;
	list_del(&c->link);
	list_append(&g->tconns, &c->link);
}

static void conn_flush(struct dnsgate *g, struct tconn *c)
{
	while (c->out) {
		struct outbuf *o = c->out;
		ssize_t n =
		    send(c->io.fd, o->data + o->off, o->len - o->off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			conn_close(g, c);
			return;
		}
		o->off += (size_t)n;
		c->out_bytes -= (size_t)n;
		if (o->off < o->len)
			break;
		c->out = o->next;
		if (!c->out)
			c->out_tail = NULL;
		free(o);
	}
	conn_update(g, c);
}

static void conn_send(struct dnsgate *g, struct tconn *c, const uint8_t *msg, size_t len)
{
	struct outbuf *o;

	if (c->closed)
		return;
	if (c->out_bytes + len + 2 > TCP_OUT_MAX) {
		/* A client that does not read its answers does not get to pin our memory. */
		conn_close(g, c);
		return;
	}
	o = malloc(sizeof(*o) + len + 2);
	if (!o) {
		conn_close(g, c);
		return;
	}
	o->next = NULL;
	o->len = len + 2;
	o->off = 0;
	o->data[0] = (uint8_t)(len >> 8);
	o->data[1] = (uint8_t)len;
	memcpy(o->data + 2, msg, len);
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out = o;
	c->out_tail = o;
	c->out_bytes += o->len;
	conn_flush(g, c);
}

static void conn_close(struct dnsgate *g, struct tconn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	ep_close(g, &c->io);
	list_del(&c->link);
	g->ntconns--;
	while (c->out) {
		struct outbuf *o = c->out;

		c->out = o->next;
		free(o);
	}
	c->out_tail = NULL;
	c->out_bytes = 0;
	if (!c->outstanding) {
		c->grave = g->grave_c;
		g->grave_c = c;
	}
}

static void conn_unref(struct dnsgate *g, struct tconn *c)
{
	c->outstanding--;
	if (c->closed) {
		if (!c->outstanding) {
			c->grave = g->grave_c;
			g->grave_c = c;
		}
		return;
	}
	conn_update(g, c);
}

/* ---- answering ---- */

static void send_client(struct dnsgate *g, const struct dnsgate_client *who, struct tconn *conn,
			const uint8_t *msg, size_t len)
{
	if (conn) {
		conn_send(g, conn, msg, len);
		return;
	}
	/* A full socket buffer loses the answer; the client retries, as with any lost UDP.
	 * The answer leaves through the socket the question came in on: in the client's
	 * network namespace. */
	sendto(who->listen_fd, msg, len, MSG_DONTWAIT, (const struct sockaddr *)&who->addr,
	       who->addrlen);
}

static void reply_self(struct dnsgate *g, const struct gw_question *q, int rcode, bool tc,
		       const struct dnsgate_client *who, struct tconn *conn)
{
	uint8_t buf[GW_HDR + GW_WIRE_MAX + 4];
	size_t n = gw_build_reply(q, rcode, tc, buf, sizeof(buf));

	if (n)
		send_client(g, who, conn, buf, n);
}

static void query_free(struct dnsgate *g, struct query *qr)
{
	if (qr->dead)
		return;
	qr->dead = true;
	list_del(&qr->link);
	g->byid[qr->up_id] = NULL;
	ep_close(g, &qr->io);
	free(qr->tbuf);
	qr->tbuf = NULL;
	g->ninflight--;
	if (qr->conn)
		conn_unref(g, qr->conn);
	qr->grave = g->grave_q;
	g->grave_q = qr;
}

/* Ends a forwarded question without an answer from upstream. */
static void query_fail(struct dnsgate *g, struct query *qr, const char *reason)
{
	g->st.servfail++;
	emit(g, &qr->q, DNSGATE_ALLOW, qr->tag, ns_r_servfail, reason, &qr->who, qr->started_us, 0,
	     false, 0);
	reply_self(g, &qr->q, ns_r_servfail, false, &qr->who, qr->conn);
	query_free(g, qr);
}

struct walk {
	struct dnsgate *g;
	struct query *qr;
	uint64_t now_ms;
	size_t nrr, npinned;
	bool rr_trunc;
	const char *fail;
};

static int pin_one(struct walk *w, const struct gw_rr *rr)
{
	struct dnsgate *g = w->g;
	const char *qname = w->qr->q.name;
	int family = rr->type == ns_t_a ? AF_INET : AF_INET6;
	uint32_t ttl = rr->ttl > g->cfg.pin_max_ttl_s ? g->cfg.pin_max_ttl_s : rr->ttl;

	uint64_t expires = w->now_ms + ((uint64_t)ttl + g->cfg.pin_grace_s) * 1000;

	if (!g->cfg.pin)
		return 0;
	/* A pair already pinned is only given a later expiry: the kernel entry is there, and
	 * one pin call per pair is what lets the owner count references right. */
	if (gate_pins_refresh(g->pins, qname, family, rr->addr, expires)) {
		w->npinned++;
		return 0;
	}
	if (!gate_pins_room(g->pins, qname, family, rr->addr)) {
		gate_pins_expire(g->pins, w->now_ms, g->cfg.unpin, g->cfg.ctx, NULL);
		if (!gate_pins_room(g->pins, qname, family, rr->addr)) {
			if (g->cfg.pin_best_effort) {
				g->st.pins_skipped++;
				return 0;
			}
			w->fail = "pin table full";
			return 1;
		}
	}
	if (g->cfg.pin(g->cfg.ctx, qname, rr->owner, family, rr->addr, ttl)) {
		if (g->cfg.pin_best_effort) {
			g->st.pins_skipped++;
			return 0;
		}
		w->fail = "pin failed";
		return 1;
	}
	/* Cannot fail: room was checked above and nothing ran in between but the callback. */
	gate_pins_put(g->pins, qname, family, rr->addr, expires);
	g->st.pins++;
	w->npinned++;
	return 0;
}

static int on_rr(void *arg, const struct gw_rr *rr)
{
	struct walk *w = arg;
	struct dnsgate *g = w->g;
	bool pinned = false;

	if (rr->type != ns_t_cname && rr->in_chain) {
		if (pin_one(w, rr))
			return 1;
		pinned = !!g->cfg.pin;
	}
	if (w->nrr == DNSGATE_EVENT_RRS) {
		w->rr_trunc = true;
		return 0;
	}
	struct dnsgate_rr *e = &g->ev_rr[w->nrr];

	snprintf(g->ev_owner[w->nrr], GW_NAME_MAX, "%s", rr->owner);
	if (rr->type == ns_t_cname)
		snprintf(g->ev_data[w->nrr], GW_NAME_MAX, "%s", rr->target);
	else
		inet_ntop(rr->type == ns_t_a ? AF_INET : AF_INET6, rr->addr, g->ev_data[w->nrr],
			  GW_NAME_MAX);
	e->type = rr->type;
	e->ttl = rr->ttl;
	e->owner = g->ev_owner[w->nrr];
	e->data = g->ev_data[w->nrr];
	e->pinned = pinned;
	w->nrr++;
	return 0;
}

/* An upstream answer that matches its question: pin, then release. */
static void query_answer(struct dnsgate *g, struct query *qr, uint8_t *msg, size_t len)
{
	struct walk w = {.g = g, .qr = qr, .now_ms = dnsgate_now_ms()};
	int r = gw_walk_answers(msg, len, qr->q.name, on_rr, &w);
	int rcode = gw_rcode(msg);
	const char *reason = "answered";

	if (r < 0) {
		query_fail(g, qr, "unreadable upstream answer");
		return;
	}
	if (r > 0) {
		/* Some addresses may be pinned already; they expire like any other. What
		 * matters is that no address the kernel would refuse reaches the client. */
		g->st.servfail++;
		emit(g, &qr->q, DNSGATE_ALLOW, qr->tag, ns_r_servfail, w.fail, &qr->who,
		     qr->started_us, w.nrr, w.rr_trunc, w.npinned);
		reply_self(g, &qr->q, ns_r_servfail, false, &qr->who, qr->conn);
		query_free(g, qr);
		return;
	}
	bool tc = !qr->conn && len > qr->q.udp_size;

	/* Only after a TCP retry: the client gets TC and asks again over TCP, where the same
	 * answer (already pinned) fits. */
	if (tc)
		reason = "answered truncated, client to retry over TCP";
	/* The record comes before the release, like the pins: whatever the client does with
	 * the addresses is logged after the answer that gave them. */
	emit(g, &qr->q, DNSGATE_ALLOW, qr->tag, rcode, reason, &qr->who, qr->started_us, w.nrr,
	     w.rr_trunc, w.npinned);
	if (tc) {
		reply_self(g, &qr->q, rcode, true, &qr->who, NULL);
	} else {
		gw_set_id(msg, qr->q.id);
		send_client(g, &qr->who, qr->conn, msg, len);
	}
	query_free(g, qr);
}

/* ---- upstream ---- */

static void query_requeue(struct dnsgate *g, struct query *qr)
{
	qr->deadline_ms = dnsgate_now_ms() + g->cfg.timeout_ms;
	list_del(&qr->link);
	list_append(&g->queries, &qr->link);
}

static int up_tcp_start(struct dnsgate *g, struct query *qr)
{
	int fd = socket(qr->up.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&qr->up, qr->uplen) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	qr->io.fd = fd;
	qr->io.events = 0;
	qr->state = Q_TCP_CONNECT;
	qr->toff = 0;
	if (ep_set(g, &qr->io, EPOLLOUT) < 0) {
		ep_close(g, &qr->io);
		return -1;
	}
	query_requeue(g, qr);
	return 0;
}

static void up_tcp_event(struct dnsgate *g, struct query *qr, uint32_t events)
{
	if (qr->state == Q_TCP_CONNECT) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(qr->io.fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err) {
			query_fail(g, qr, "upstream TCP connect failed");
			return;
		}
		qr->state = Q_TCP_WRITE;
	}
	if (qr->state == Q_TCP_WRITE) {
		ssize_t n = send(qr->io.fd, qr->qbuf + qr->toff, qr->qlen + 2 - qr->toff,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			query_fail(g, qr, "upstream TCP write failed");
			return;
		}
		if (n > 0)
			qr->toff += (size_t)n;
		if (qr->toff < qr->qlen + 2)
			return;
		qr->state = Q_TCP_READ;
		qr->toff = 0;
		if (ep_set(g, &qr->io, EPOLLIN) < 0) {
			query_fail(g, qr, "epoll");
			return;
		}
		return;
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	for (;;) {
		uint8_t *dst = qr->tbuf ? qr->tbuf + qr->toff : qr->tlen + qr->toff;
		size_t want = qr->tbuf ? qr->twant - qr->toff : 2 - qr->toff;
		ssize_t n = recv(qr->io.fd, dst, want, MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			query_fail(g, qr, "upstream closed TCP before answering");
			return;
		}
		qr->toff += (size_t)n;
		if (!qr->tbuf && qr->toff == 2) {
			qr->twant = (size_t)qr->tlen[0] << 8 | qr->tlen[1];
			if (qr->twant < GW_HDR) {
				query_fail(g, qr, "upstream sent a runt over TCP");
				return;
			}
			qr->tbuf = malloc(qr->twant);
			if (!qr->tbuf) {
				query_fail(g, qr, "out of memory");
				return;
			}
			qr->toff = 0;
		} else if (qr->tbuf && qr->toff == qr->twant) {
			break;
		}
	}
	/* The connection is ours alone, so a reply that does not match is a broken upstream,
	 * not a stray packet: give up now rather than at the timeout. */
	if (!gw_reply_matches(qr->tbuf, qr->twant, &qr->q, qr->up_id)) {
		g->st.upstream_ignored++;
		query_fail(g, qr, "upstream TCP answer does not match the question");
		return;
	}
	query_answer(g, qr, qr->tbuf, qr->twant);
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

	return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

/* Replies on the connected socket come from the upstream (the kernel filters); on an
 * unconnected one, the source must be where that very query went. */
static void up_udp_readable(struct dnsgate *g, struct ioh *io)
{
	bool any = io != &g->up_udp;

	for (int i = 0; i < BUDGET; i++) {
		struct sockaddr_storage from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(io->fd, g->pkt, sizeof(g->pkt), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &fl);
		struct query *qr;

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			continue; /* ECONNREFUSED from an ICMP: the queries will time out */
		}
		qr = (size_t)n >= GW_HDR ? g->byid[gw_get_id(g->pkt)] : NULL;
		if (!qr || qr->state != Q_UDP || qr->own_up != any ||
		    (any && !same_addr(&from, &qr->up)) ||
		    !gw_reply_matches(g->pkt, (size_t)n, &qr->q, qr->up_id)) {
			/* Late, duplicate, spoofed or garbled: the real answer may still come. */
			g->st.upstream_ignored++;
			continue;
		}
		if (gw_truncated(g->pkt)) {
			/* The partial answer is neither pinned nor released: the full one over
			 * TCP is what the client gets, or TC if it does not fit. */
			g->st.tcp_retries++;
			if (up_tcp_start(g, qr) < 0)
				query_fail(g, qr, "upstream TCP retry failed");
			continue;
		}
		query_answer(g, qr, g->pkt, (size_t)n);
	}
}

/* ---- questions ---- */

/* Questions the gate refuses whatever the policy says. */
static const char *own_refusal(const struct dnsgate *g, const struct gw_question *q, int *rcode)
{
	/* Type- and class-based refusals are REFUSED whatever the configured style: NXDOMAIN
	 * would say the name does not exist for every type, and clients cache that. */
	*rcode = ns_r_refused;
	if (q->qclass != ns_c_in)
		return "class is not IN";
	if (q->qtype == ns_t_any && g->cfg.refuse_any)
		return "ANY refused";
	/* Meta-types (AXFR, IXFR, TSIG, ...) and OPT as a question are not lookups. */
	if (q->qtype == 0 || q->qtype == ns_t_opt || (q->qtype >= 128 && q->qtype <= 254))
		return "meta-type refused";
	*rcode = g->cfg.refusal == DNSGATE_REFUSED ? ns_r_refused : ns_r_nxdomain;
	/* No host name needs \-escapes; such a name would only give a policy matcher a second
	 * reading of where the labels are. */
	if (q->escaped)
		return "name has bytes no host name has";
	return NULL;
}

/* Every refusal of a question the gate could read: the rcode, with the reason as an Extended
 * DNS Error for clients that speak EDNS (dig prints it), so a person debugging a job sees why. */
static void reply_refusal(struct dnsgate *g, const struct gw_question *q, int rcode, uint16_t ede,
			  const char *reason, const struct dnsgate_client *who, struct tconn *conn)
{
	uint8_t buf[GW_REPLY_MAX];
	char text[GW_EDE_TEXT_MAX + 1];
	size_t n;

	snprintf(text, sizeof(text), "runwarden: %s", reason);
	n = gw_build_refusal(q, rcode, ede ? ede : DNSGATE_EDE_PROHIBITED, text, buf, sizeof(buf));
	if (n)
		send_client(g, who, conn, buf, n);
}

/* The unconnected upstream socket of a family, opened on first use. */
static int up_any_fd(struct dnsgate *g, int family)
{
	struct ioh *io = &g->up_any[family == AF_INET6];

	if (io->fd >= 0)
		return io->fd;
	io->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (io->fd < 0)
		return -1;
	if (ep_set(g, io, EPOLLIN) < 0) {
		close(io->fd);
		io->fd = -1;
		return -1;
	}
	return io->fd;
}

static int up_send(struct dnsgate *g, struct query *qr)
{
	/* Tried twice: the first may only report an earlier ICMP error. */
	for (int i = 0; i < 2; i++) {
		ssize_t n;

		if (qr->own_up) {
			int fd = up_any_fd(g, qr->up.ss_family);

			if (fd < 0)
				return -1;
			n = sendto(fd, qr->qbuf + 2, qr->qlen, MSG_DONTWAIT,
				   (struct sockaddr *)&qr->up, qr->uplen);
		} else {
			n = send(g->up_udp.fd, qr->qbuf + 2, qr->qlen, MSG_DONTWAIT);
		}
		if (n >= 0)
			return 0;
	}
	return -1;
}

/* Where this question goes: the resolver the client addressed (upstream_for), else the
 * configured upstream. */
static int pick_upstream(struct dnsgate *g, struct query *qr)
{
	if (g->cfg.upstream_for &&
	    g->cfg.upstream_for(g->cfg.ctx, &qr->who, &qr->up, &qr->uplen) == 0) {
		qr->own_up = true;
		return 0;
	}
	if (!g->has_up)
		return -1;
	qr->up = g->up_addr;
	qr->uplen = g->up_len;
	return 0;
}

static void handle_query(struct dnsgate *g, const uint8_t *pkt, size_t len,
			 const struct dnsgate_client *who, struct tconn *conn)
{
	uint64_t t0 = now_us();
	struct gw_question q;
	struct dnsgate_decision d = {.tag = DNSGATE_TAG_OWN};
	const char *why;
	int rcode;
	struct query *qr;

	g->st.queries++;
	switch (gw_parse_query(pkt, len, &q, &rcode, &why)) {
	case GW_DROP:
		g->st.malformed++;
		emit(g, &q, DNSGATE_REFUSE, DNSGATE_TAG_OWN, -1, why, who, t0, 0, false, 0);
		return;
	case GW_REPLY:
		if (rcode == ns_r_refused)
			g->st.refused++;
		else
			g->st.malformed++;
		emit(g, &q, DNSGATE_REFUSE, DNSGATE_TAG_OWN, rcode, why, who, t0, 0, false, 0);
		reply_refusal(g, &q, rcode, 0, why, who, conn);
		return;
	case GW_OK:
		break;
	}
	why = own_refusal(g, &q, &rcode);
	if (!why && g->cfg.decide(g->cfg.ctx, q.name, q.qtype, who, &d) != DNSGATE_ALLOW)
		why = d.reason ? d.reason : "refused by policy";
	if (why) {
		g->st.refused++;
		emit(g, &q, DNSGATE_REFUSE, d.tag, rcode, why, who, t0, 0, false, 0);
		reply_refusal(g, &q, rcode, d.ede, why, who, conn);
		return;
	}
	if (g->ninflight >= g->cfg.max_inflight) {
		g->st.servfail++;
		reply_self(g, &q, ns_r_servfail, false, who, conn);
		emit(g, &q, DNSGATE_ALLOW, d.tag, ns_r_servfail, "too many queries in flight", who,
		     t0, 0, false, 0);
		return;
	}
	qr = calloc(1, sizeof(*qr));
	if (!qr) {
		g->st.servfail++;
		reply_self(g, &q, ns_r_servfail, false, who, conn);
		emit(g, &q, DNSGATE_ALLOW, d.tag, ns_r_servfail, "out of memory", who, t0, 0, false,
		     0);
		return;
	}
	qr->tag = d.tag;
	qr->io.kind = K_UPSTREAM_TCP;
	qr->io.fd = -1;
	qr->q = q;
	qr->who = *who;
	qr->started_us = t0;
	do
		qr->up_id = rand16(g);
	while (g->byid[qr->up_id]);
	qr->qlen = gw_build_query(&q, qr->up_id, qr->qbuf + 2, sizeof(qr->qbuf) - 2);
	qr->qbuf[0] = (uint8_t)(qr->qlen >> 8);
	qr->qbuf[1] = (uint8_t)qr->qlen;
	g->byid[qr->up_id] = qr;
	g->ninflight++;
	list_init(&qr->link);
	list_append(&g->queries, &qr->link);
	qr->deadline_ms = dnsgate_now_ms() + g->cfg.timeout_ms;
	if (conn) {
		qr->conn = conn;
		conn->outstanding++;
	}
	if (pick_upstream(g, qr) < 0) {
		query_fail(g, qr, "no resolver to forward to");
		return;
	}
	g->st.forwarded++;
	if (conn) {
		if (up_tcp_start(g, qr) < 0)
			query_fail(g, qr, "upstream TCP connect failed");
		return;
	}
	qr->state = Q_UDP;
	if (up_send(g, qr) < 0)
		query_fail(g, qr, "upstream send failed");
}

static void udp_readable(struct dnsgate *g, const struct ioh *io)
{
	for (int i = 0; i < BUDGET; i++) {
		struct dnsgate_client who = {
		    .addrlen = sizeof(who.addr), .proto = IPPROTO_UDP, .listen_fd = io->fd};
		ssize_t n = recvfrom(io->fd, g->pkt, sizeof(g->pkt), MSG_DONTWAIT,
				     (struct sockaddr *)&who.addr, &who.addrlen);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			continue;
		}
		handle_query(g, g->pkt, (size_t)n, &who, NULL);
	}
}

static void tcp_accept(struct dnsgate *g, const struct ioh *io)
{
	for (int i = 0; i < BUDGET; i++) {
		struct dnsgate_client who = {
		    .addrlen = sizeof(who.addr), .proto = IPPROTO_TCP, .listen_fd = io->fd};
		int fd = accept4(io->fd, (struct sockaddr *)&who.addr, &who.addrlen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct tconn *c;

		if (fd < 0)
			return;
		if (g->ntconns >= g->cfg.max_tcp_clients) {
			/* RFC 7766 6.2.3: make room by closing the longest-idle connection
			 * that owes nothing; if every one is busy, the newcomer is refused. */
			struct tconn *old = NULL;

			for (struct link *l = g->tconns.next; l != &g->tconns; l = l->next) {
				struct tconn *t = container_of(l, struct tconn, link);

				if (!t->outstanding && !t->out) {
					old = t;
					break;
				}
			}
			if (!old) {
				close(fd);
				continue;
			}
			conn_close(g, old);
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->io.kind = K_TCP_CLIENT;
		c->io.fd = fd;
		c->who = who;
		list_init(&c->link);
		g->ntconns++;
		conn_touch(g, c);
		conn_update(g, c);
	}
}

static void tcp_client_event(struct dnsgate *g, struct tconn *c, uint32_t events)
{
	if (events & EPOLLERR) {
		conn_close(g, c);
		return;
	}
	if (events & EPOLLOUT)
		conn_flush(g, c);
	if (c->closed || !(events & (EPOLLIN | EPOLLHUP)))
		return;
	for (int i = 0; i < BUDGET && !c->closed && !c->eof && c->outstanding < TCP_PIPELINE; i++) {
		size_t need = c->rlen < 2 ? 2 - c->rlen
					  : 2 + ((size_t)c->rbuf[0] << 8 | c->rbuf[1]) - c->rlen;
		ssize_t n = recv(c->io.fd, c->rbuf + c->rlen, need, MSG_DONTWAIT);

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				conn_close(g, c);
			break;
		}
		if (n == 0) {
			c->eof = true;
			break;
		}
		c->rlen += (size_t)n;
		conn_touch(g, c);
		if (c->rlen < 2)
			continue;
		size_t mlen = (size_t)c->rbuf[0] << 8 | c->rbuf[1];

		if (mlen > GW_QUERY_MAX) {
			/* Not a DNS query, and we will not buffer it to find out. */
			g->st.queries++;
			g->st.malformed++;
			emit(g, NULL, DNSGATE_REFUSE, DNSGATE_TAG_OWN, -1,
			     "TCP message larger than any query", &c->who, now_us(), 0, false, 0);
			conn_close(g, c);
			break;
		}
		if (c->rlen == 2 + mlen) {
			c->rlen = 0;
			handle_query(g, c->rbuf + 2, mlen, &c->who, c);
		}
	}
	conn_update(g, c);
}

/* ---- timeouts ---- */

static void run_timeouts(struct dnsgate *g)
{
	uint64_t now = dnsgate_now_ms();

	while (!list_empty(&g->queries)) {
		struct query *qr = container_of(g->queries.next, struct query, link);

		if (qr->deadline_ms > now)
			break;
		query_fail(g, qr, "upstream timeout");
	}
	while (!list_empty(&g->tconns)) {
		struct tconn *c = container_of(g->tconns.next, struct tconn, link);

		if (c->deadline_ms > now)
			break;
		if (c->outstanding) {
			conn_touch(g, c); /* its queries have their own timeout */
			continue;
		}
		conn_close(g, c);
	}
}

static void rearm(struct dnsgate *g)
{
	uint64_t next = 0;

	if (!list_empty(&g->queries))
		next = container_of(g->queries.next, struct query, link)->deadline_ms;
	if (!list_empty(&g->tconns)) {
		uint64_t t = container_of(g->tconns.next, struct tconn, link)->deadline_ms;

		if (!next || t < next)
			next = t;
	}
	/* An armed timer that fires early costs one empty dispatch; one armed late would
	 * delay a timeout, so only an earlier deadline re-arms. */
	if (!next || (g->armed_ms && g->armed_ms <= next))
		return;
	struct itimerspec its = {.it_value = {.tv_sec = (time_t)(next / 1000),
					      .tv_nsec = (long)(next % 1000) * 1000000}};

	if (timerfd_settime(g->timer.fd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
		g->armed_ms = next;
}

static void reap(struct dnsgate *g)
{
	while (g->grave_q) {
		struct query *q = g->grave_q;

		g->grave_q = q->grave;
		free(q);
	}
	while (g->grave_c) {
		struct tconn *c = g->grave_c;

		g->grave_c = c->grave;
		free(c);
	}
}

int dnsgate_dispatch(struct dnsgate *g)
{
	struct epoll_event ev[BUDGET];
	int n = epoll_wait(g->epfd, ev, BUDGET, 0);

	if (n < 0 && errno != EINTR)
		return -1;
	for (int i = 0; i < n; i++) {
		struct ioh *io = ev[i].data.ptr;

		switch (io->kind) {
		case K_UDP_LISTEN:
			udp_readable(g, io);
			break;
		case K_TCP_LISTEN:
			tcp_accept(g, io);
			break;
		case K_UPSTREAM_UDP:
		case K_UPSTREAM_ANY4:
		case K_UPSTREAM_ANY6:
			up_udp_readable(g, io);
			break;
		case K_TIMER: {
			uint64_t ticks;

			if (read(g->timer.fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
				break;
			g->armed_ms = 0;
			break;
		}
		case K_TCP_CLIENT: {
			struct tconn *c = container_of(io, struct tconn, io);

			if (!c->closed)
				tcp_client_event(g, c, ev[i].events);
			break;
		}
		case K_UPSTREAM_TCP: {
			struct query *qr = container_of(io, struct query, io);

			if (!qr->dead)
				up_tcp_event(g, qr, ev[i].events);
			break;
		}
		}
	}
	run_timeouts(g);
	reap(g);
	rearm(g);
	return 0;
}

int dnsgate_poll(struct dnsgate *g, int timeout_ms)
{
	struct epoll_event ev;
	int n = epoll_wait(g->epfd, &ev, 1, timeout_ms);

	if (n < 0 && errno != EINTR)
		return -1;
	return dnsgate_dispatch(g);
}

/* ---- set-up ---- */

static int parse_addr(const char *s, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		*len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -1;
}

static int bind_listeners(struct dnsgate *g, const char *addr, uint16_t port, char *err,
			  size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1;

	if (parse_addr(addr, port, &ss, &len) < 0) {
		snprintf(err, errlen, "dns gate: listen address '%s' is not an IP address", addr);
		return -1;
	}
	/* With port 0 the UDP and TCP ports must still be the same one (the kernel redirects
	 * both to a single port), so take UDP's and retry if TCP finds it taken. */
	for (int attempt = 0; attempt < 32; attempt++) {
		struct sockaddr_storage got;
		socklen_t gl = sizeof(got);

		g->udp.fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		g->tcp.fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (g->udp.fd < 0 || g->tcp.fd < 0)
			goto fail;
		if (ss.ss_family == AF_INET6) {
			setsockopt(g->udp.fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
			setsockopt(g->tcp.fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		}
		setsockopt(g->tcp.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(g->udp.fd, (struct sockaddr *)&ss, len) < 0 ||
		    getsockname(g->udp.fd, (struct sockaddr *)&got, &gl) < 0)
			goto fail;
		g->port =
		    ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
						   : ((struct sockaddr_in6 *)&got)->sin6_port);
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons(g->port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(g->port);
		if (bind(g->tcp.fd, (struct sockaddr *)&ss, len) == 0 &&
		    listen(g->tcp.fd, 128) == 0)
			return 0;
		if (errno != EADDRINUSE || port)
			goto fail;
		close(g->udp.fd);
		close(g->tcp.fd);
		g->udp.fd = g->tcp.fd = -1;
		((struct sockaddr_in *)&ss)->sin_port = 0; /* same offset in sockaddr_in6 */
	}
	errno = EADDRINUSE;
fail:
	snprintf(err, errlen, "dns gate: cannot listen on %s port %u: %s", addr, port,
		 strerror(errno));
	return -1;
}

struct dnsgate *dnsgate_new(const struct dnsgate_config *cfg, char *err, size_t errlen)
{
	struct dnsgate *g;

	if (!cfg->decide || (!cfg->upstream && !cfg->upstream_for)) {
		snprintf(err, errlen, "dns gate: decide callback and upstream are required");
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		snprintf(err, errlen, "dns gate: out of memory");
		return NULL;
	}
	g->cfg = *cfg;
	g->epfd = g->udp.fd = g->tcp.fd = g->up_udp.fd = g->timer.fd = -1;
	g->udp.kind = K_UDP_LISTEN;
	g->tcp.kind = K_TCP_LISTEN;
	for (int i = 0; i < DNSGATE_NETNS_MAX; i++) {
		g->ns_udp[i] = (struct ioh){.kind = K_UDP_LISTEN, .fd = -1};
		g->ns_tcp[i] = (struct ioh){.kind = K_TCP_LISTEN, .fd = -1};
	}
	g->up_udp.kind = K_UPSTREAM_UDP;
	g->up_any[0].kind = K_UPSTREAM_ANY4;
	g->up_any[1].kind = K_UPSTREAM_ANY6;
	g->up_any[0].fd = g->up_any[1].fd = -1;
	g->timer.kind = K_TIMER;
	list_init(&g->queries);
	list_init(&g->tconns);
	if (!g->cfg.listen)
		g->cfg.listen = "127.0.0.1";
	if (!g->cfg.upstream_port)
		g->cfg.upstream_port = 53;
	if (!g->cfg.timeout_ms)
		g->cfg.timeout_ms = 2000;
	if (!g->cfg.tcp_idle_ms)
		g->cfg.tcp_idle_ms = 10000;
	if (!g->cfg.max_inflight)
		g->cfg.max_inflight = 256;
	if (g->cfg.max_inflight > MAX_INFLIGHT_CAP)
		g->cfg.max_inflight = MAX_INFLIGHT_CAP;
	if (!g->cfg.max_tcp_clients)
		g->cfg.max_tcp_clients = 64;
	if (!g->cfg.max_pins)
		g->cfg.max_pins = 65536;
	if (!g->cfg.pin_grace_s)
		g->cfg.pin_grace_s = 30;
	if (!g->cfg.pin_max_ttl_s)
		g->cfg.pin_max_ttl_s = 86400;
	/* The strings are the caller's; only listen and upstream are kept, and only here. */
	g->has_up = cfg->upstream != NULL;
	if (g->has_up &&
	    parse_addr(cfg->upstream, g->cfg.upstream_port, &g->up_addr, &g->up_len) < 0) {
		snprintf(err, errlen, "dns gate: upstream '%s' is not an IP address",
			 cfg->upstream);
		goto fail;
	}
	g->pins = gate_pins_new(g->cfg.max_pins);
	g->epfd = epoll_create1(EPOLL_CLOEXEC);
	g->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!g->pins || g->epfd < 0 || g->timer.fd < 0) {
		snprintf(err, errlen, "dns gate: set-up failed: %s", strerror(errno));
		goto fail;
	}
	if (g->has_up) {
		g->up_udp.fd =
		    socket(g->up_addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		/* Connected, so the kernel drops datagrams from anyone but the upstream. */
		if (g->up_udp.fd < 0 ||
		    connect(g->up_udp.fd, (struct sockaddr *)&g->up_addr, g->up_len) < 0 ||
		    ep_set(g, &g->up_udp, EPOLLIN) < 0) {
			snprintf(err, errlen, "dns gate: upstream %s port %u: %s", cfg->upstream,
				 g->cfg.upstream_port, strerror(errno));
			goto fail;
		}
	}
	if (bind_listeners(g, g->cfg.listen, cfg->listen_port, err, errlen) < 0)
		goto fail;
	if (ep_set(g, &g->udp, EPOLLIN) < 0 || ep_set(g, &g->tcp, EPOLLIN) < 0 ||
	    ep_set(g, &g->timer, EPOLLIN) < 0) {
		snprintf(err, errlen, "dns gate: epoll: %s", strerror(errno));
		goto fail;
	}
	g->cfg.listen = NULL;
	g->cfg.upstream = NULL;
	return g;
fail:
	dnsgate_free(g);
	return NULL;
}

int dnsgate_add_netns(struct dnsgate *g, int netns_fd, int home_fd, uint64_t *cookie, char *err,
		      size_t errlen)
{
	socklen_t cklen = sizeof(*cookie);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(g->port)};
	int i = 0, one = 1, u = -1, t = -1;

	while (i < DNSGATE_NETNS_MAX && g->ns_udp[i].fd >= 0)
		i++;
	if (i == DNSGATE_NETNS_MAX) {
		snprintf(err, errlen, "more than %d network namespaces", DNSGATE_NETNS_MAX);
		return -1;
	}
	if (g->cfg.listen && strcmp(g->cfg.listen, "127.0.0.1")) {
		snprintf(err, errlen, "the gate listens on %s, not 127.0.0.1", g->cfg.listen);
		return -1;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* Sockets belong to the namespace they are made in, whatever thread uses them. */
	if (setns(netns_fd, CLONE_NEWNET)) {
		snprintf(err, errlen, "entering its network namespace: %s", strerror(errno));
		return -1;
	}
	u = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	t = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t >= 0)
		setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (u < 0 || t < 0 || bind(u, (struct sockaddr *)&sa, sizeof(sa)) ||
	    bind(t, (struct sockaddr *)&sa, sizeof(sa)) || listen(t, 128) ||
	    getsockopt(u, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &cklen))
		snprintf(err, errlen, "127.0.0.1:%u there: %s", g->port, strerror(errno));
	else
		err[0] = '\0';
	if (setns(home_fd, CLONE_NEWNET)) {
		/* Nothing of the agent may go on in a container's namespace. */
		fprintf(stderr, "runwarden: cannot return to its own network namespace: %s\n",
			strerror(errno));
		abort();
	}
	if (err[0])
		goto fail;
	g->ns_udp[i].fd = u;
	g->ns_tcp[i].fd = t;
	if (ep_set(g, &g->ns_udp[i], EPOLLIN) || ep_set(g, &g->ns_tcp[i], EPOLLIN)) {
		snprintf(err, errlen, "epoll: %s", strerror(errno));
		dnsgate_drop_netns(g, i);
		return -1;
	}
	return i;
fail:
	if (u >= 0)
		close(u);
	if (t >= 0)
		close(t);
	return -1;
}

void dnsgate_drop_netns(struct dnsgate *g, int handle)
{
	if (handle < 0 || handle >= DNSGATE_NETNS_MAX || g->ns_udp[handle].fd < 0)
		return;
	/* A question still waiting is answered into nothing (lost, as UDP may be), never
	 * through whatever socket gets the descriptor number next. */
	for (struct link *l = g->queries.next; l != &g->queries; l = l->next) {
		struct query *qr = container_of(l, struct query, link);

		if (qr->who.listen_fd == g->ns_udp[handle].fd)
			qr->who.listen_fd = -1;
	}
	ep_close(g, &g->ns_udp[handle]);
	ep_close(g, &g->ns_tcp[handle]);
}

void dnsgate_free(struct dnsgate *g)
{
	if (!g)
		return;
	while (!list_empty(&g->queries))
		query_free(g, container_of(g->queries.next, struct query, link));
	while (!list_empty(&g->tconns))
		conn_close(g, container_of(g->tconns.next, struct tconn, link));
	reap(g);
	for (int i = 0; i < DNSGATE_NETNS_MAX; i++)
		dnsgate_drop_netns(g, i);
	if (g->udp.fd >= 0)
		close(g->udp.fd);
	if (g->tcp.fd >= 0)
		close(g->tcp.fd);
	if (g->up_udp.fd >= 0)
		close(g->up_udp.fd);
	for (int i = 0; i < 2; i++)
		if (g->up_any[i].fd >= 0)
			close(g->up_any[i].fd);
	if (g->timer.fd >= 0)
		close(g->timer.fd);
	if (g->epfd >= 0)
		close(g->epfd);
	gate_pins_free(g->pins);
	free(g);
}

void dnsgate_abandon(struct dnsgate *g)
{
	while (!list_empty(&g->queries)) {
		struct query *qr = container_of(g->queries.next, struct query, link);

		emit(g, &qr->q, DNSGATE_ALLOW, qr->tag, -1, "no answer before the gate stopped",
		     &qr->who, qr->started_us, 0, false, 0);
		query_free(g, qr);
	}
	reap(g);
}

uint16_t dnsgate_port(const struct dnsgate *g)
{
	return g->port;
}

int dnsgate_fd(const struct dnsgate *g)
{
	return g->epfd;
}

size_t dnsgate_expire(struct dnsgate *g, uint64_t now_ms, uint64_t *next)
{
	return gate_pins_expire(g->pins, now_ms, g->cfg.unpin, g->cfg.ctx, next);
}

void dnsgate_stats(const struct dnsgate *g, struct dnsgate_stats *st)
{
	*st = g->st;
	st->inflight = g->ninflight;
	st->tcp_clients = g->ntconns;
	st->pinned = (unsigned)gate_pins_count(g->pins);
}
