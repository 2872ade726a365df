/*
 * The DNS gate: a small DNS forwarder on loopback that the kernel redirects a job's port-53
 * traffic to. It asks the policy (decide) about every question, forwards only allowed ones to
 * the upstream resolver, and pins every address of an allowed answer into the kernel allow
 * maps (pin) before the client sees the reply, so a connect can never race its pin. Refused
 * names never leave the machine. A library driven from the agent's event loop: no threads,
 * no global state, never blocks. Design: docs/dnsgate.md.
 */
#ifndef RW_GATE_DNSGATE_H
#define RW_GATE_DNSGATE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct dnsgate;

enum dnsgate_verdict {
	DNSGATE_ALLOW = 0,
	DNSGATE_REFUSE = 1,
};

/* How a name refused by decide() is answered. NXDOMAIN is what makes clients give up at once:
 * glibc's getaddrinfo reports EAI_NONAME ("Name or service not known") and asks no further,
 * while REFUSED makes it try again and report EAI_AGAIN ("Temporary failure in name
 * resolution"), which clients such as Node and urllib3 treat as worth retrying. */
enum dnsgate_refusal {
	DNSGATE_NXDOMAIN = 0, /* rcode NXDOMAIN (default) */
	DNSGATE_REFUSED,      /* rcode REFUSED */
};

/* RFC 8914 Extended DNS Error info-codes the gate puts on its refusals (when the client sent
 * EDNS, so it can read them). */
#define DNSGATE_EDE_BLOCKED    15 /* on a block list */
#define DNSGATE_EDE_PROHIBITED 18 /* not something this client may ask */

/* What decide() says about one question, beyond forward or refuse. */
struct dnsgate_decision {
	int tag;	    /* the caller's own label for the question, echoed in its event */
	uint16_t ede;	    /* refusals: EDE info-code; 0 means DNSGATE_EDE_PROHIBITED */
	const char *reason; /* refusals: static text for the event and the EDE EXTRA-TEXT */
};

/* Who asked: the client socket's address as the gate saw it (the job socket's own local
 * address, unchanged by the kernel's redirect), which the agent maps back to a process. */
struct dnsgate_client {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int proto;     /* IPPROTO_UDP or IPPROTO_TCP */
	int listen_fd; /* the gate's socket it reached (a network namespace's own) */
};

/* One record of an answer, for the event log. */
struct dnsgate_rr {
	int type; /* 1 (A), 28 (AAAA) or 5 (CNAME) */
	uint32_t ttl;
	const char *owner;
	const char *data; /* address text or CNAME target */
	bool pinned;	  /* an address of the asked name's chain, pinned */
};

#define DNSGATE_EVENT_RRS 32
#define DNSGATE_TAG_OWN	  (-1)

/* One per question the gate saw (valid for the duration of the callback only). */
struct dnsgate_event {
	const char *qname; /* lower-case presentation form; "" if the packet had no question */
	int qtype, qclass; /* 0 if no question */
	uint16_t id;	   /* the client's message id (0 if the packet was too short) */
	enum dnsgate_verdict verdict;
	int tag;   /* decide()'s tag; DNSGATE_TAG_OWN when the gate refused or dropped it itself */
	int rcode; /* sent to the client; -1 if nothing was sent */
	const char
	    *reason; /* why this rcode: "answered", "refused by policy", "upstream timeout", ... */
	const struct dnsgate_client *who;
	const struct dnsgate_rr *answers; /* A, AAAA and CNAME records of the answer released */
	size_t n_answers;
	bool answers_truncated; /* the answer had more than DNSGATE_EVENT_RRS such records */
	size_t n_pinned;	/* addresses pinned for this question */
	uint32_t elapsed_us;	/* from the question's arrival to the reply */
};

struct dnsgate_config {
	const char *listen;	  /* address literal to bind UDP and TCP on; default "127.0.0.1" */
	uint16_t listen_port;	  /* 0: ephemeral (same port for UDP and TCP; see dnsgate_port) */
	const char *upstream;	  /* resolver address literal, IPv4 or IPv6 (required unless
				     upstream_for is set) */
	uint16_t upstream_port;	  /* 0: 53 */
	unsigned timeout_ms;	  /* per upstream attempt, then SERVFAIL; 0: 2000 */
	unsigned tcp_idle_ms;	  /* idle TCP client connections are closed; 0: 10000 */
	unsigned max_inflight;	  /* queries awaiting upstream (each may hold 64 KiB); 0: 256 */
	unsigned max_tcp_clients; /* 0: 64 */
	unsigned max_pins;	  /* pin table entries; 0: 65536 */
	unsigned pin_grace_s;	  /* added to each TTL before a pin expires; 0: 30 */
	uint32_t pin_max_ttl_s;	  /* TTLs above this are cut to it; 0: 86400 */
	enum dnsgate_refusal refusal;
	bool refuse_any; /* answer qtype ANY with REFUSED instead of forwarding it */
	/* A pin that cannot be made (table full, callback failed) is counted and the answer
	 * goes through unpinned, instead of SERVFAIL: observe mode, where nothing is refused
	 * and a missing pin only makes a connect look unlisted. */
	bool pin_best_effort;

	void *ctx; /* passed to every callback */
	/* Policy for one question (required). Not called for questions the gate refuses by
	 * itself: classes other than IN, meta-types, names that need \-escapes, ANY if
	 * refuse_any. *d arrives zeroed; filling it is optional. */
	enum dnsgate_verdict (*decide)(void *ctx, const char *qname, int qtype,
				       const struct dnsgate_client *who,
				       struct dnsgate_decision *d);
	/* Called once per (qname_asked, address) pair the gate does not hold yet, for every A and
	 * AAAA of an allowed answer whose owner is qname_asked or a name reached from it through
	 * CNAMEs in that answer, before the reply is released. A pair already held is only
	 * refreshed (its expiry moved later), without a call. Non-zero means the address could
	 * not be pinned: the client gets SERVFAIL, not the address. */
	int (*pin)(void *ctx, const char *qname_asked, const char *owner, int family,
		   const void *addr, uint32_t ttl);
	/* A pin expired (dnsgate_expire): once per pair, for every pair pin() accepted; so
	 * pin and unpin calls pair up exactly. Optional. */
	void (*unpin)(void *ctx, const char *qname_asked, int family, const void *addr);
	/* Optional: where to forward an allowed question of this client instead of upstream
	 * (the resolver the job addressed, for runs where that is safe: without a policy there
	 * are no pins an answer could widen). Fills *to (port included); non-zero: use upstream,
	 * or SERVFAIL if there is none. Replies are accepted only from that address. */
	int (*upstream_for)(void *ctx, const struct dnsgate_client *who,
			    struct sockaddr_storage *to, socklen_t *tolen);
	/* One record per question. Optional. */
	void (*event)(void *ctx, const struct dnsgate_event *ev);
};

/* Binds and returns a gate, or NULL with a message in err. */
struct dnsgate *dnsgate_new(const struct dnsgate_config *cfg, char *err, size_t errlen);
/* Closes every socket; queries in flight get no answer; pins are left as they are (call
 * dnsgate_expire(g, UINT64_MAX) first to unpin everything). */
void dnsgate_free(struct dnsgate *g);

/* Ends every forwarded question still waiting for upstream, with an event each (rcode -1), so
 * none goes unrecorded when the run ends. The clients get no answer. */
void dnsgate_abandon(struct dnsgate *g);

/* The port bound for UDP and TCP. */
uint16_t dnsgate_port(const struct dnsgate *g);

/* An epoll fd that is readable whenever the gate has work (a socket is ready or a timeout is
 * due). Add it to the agent's epoll with EPOLLIN and call dnsgate_dispatch when it fires. */
int dnsgate_fd(const struct dnsgate *g);
/* Does the work that is ready now, a bounded amount, without blocking. 0, or -1 with errno
 * if the gate's own epoll failed. */
int dnsgate_dispatch(struct dnsgate *g);
/* Waits up to timeout_ms (-1: forever) for work, then dispatches. For loops without epoll. */
int dnsgate_poll(struct dnsgate *g, int timeout_ms);

/* CLOCK_MONOTONIC in milliseconds: the clock of pin expiry. */
uint64_t dnsgate_now_ms(void);
/* Unpins (unpin callback) every pin expired at now_ms. Returns how many; *next (may be NULL)
 * gets the earliest remaining expiry, 0 if none. */
size_t dnsgate_expire(struct dnsgate *g, uint64_t now_ms, uint64_t *next);

struct dnsgate_stats {
	uint64_t queries;	   /* packets or TCP messages received from clients */
	uint64_t forwarded;	   /* questions sent upstream */
	uint64_t refused;	   /* by policy or by the gate's own rules */
	uint64_t malformed;	   /* answered FORMERR/NOTIMP or dropped */
	uint64_t servfail;	   /* timeouts, pin failures, overload, bad upstream replies */
	uint64_t upstream_ignored; /* upstream packets matching no question in flight */
	uint64_t tcp_retries;	   /* truncated UDP answers asked again over TCP */
	uint64_t pins;		   /* pin callbacks that succeeded */
	uint64_t pins_skipped;	   /* answers passed on unpinned (pin_best_effort) */
	unsigned inflight, tcp_clients, pinned;
};
void dnsgate_stats(const struct dnsgate *g, struct dnsgate_stats *st);

/* Network namespaces other than the gate's own (a container's) where the gate also listens. */
#define DNSGATE_NETNS_MAX 32 /* GATE_NETNS_MAX in bpf/events.h */

/* Listens on 127.0.0.1 at the gate's port inside the network namespace netns_fd too (the
 * kernel's port-53 redirect names that address wherever the client is), coming back to
 * home_fd's afterwards; *cookie gets that namespace's cookie (SO_NETNS_COOKIE) for the kernel's
 * redirect. A handle for dnsgate_drop_netns, or -1 with the reason in err. */
int dnsgate_add_netns(struct dnsgate *g, int netns_fd, int home_fd, uint64_t *cookie, char *err,
		      size_t errlen);
void dnsgate_drop_netns(struct dnsgate *g, int handle);

#endif
