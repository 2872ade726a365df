/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: the name a TCP connection really asks for. The
 * connection's first data segment (a TLS ClientHello, an HTTP/1.x request) is
 * parsed on its way out (bpf/firstbytes.h), recorded (`conn_name`), and, in
 * enforce mode, refused when the address was allowed only for names the
 * policy lists and the SNI or Host names something else (a shared CDN
 * address, domain fronting, a pinned address reused for another name): the
 * segment is dropped, so the server never sees the ClientHello or request,
 * every later segment of the connection is dropped too, and user space resets
 * the socket (the client fails at once instead of retransmitting).
 *
 * Why the egress skb hook: it is the one place that sees the bytes as they
 * leave, whatever wrote them (write, send, sendfile, splice, io_uring, TCP
 * Fast Open's SYN) and whatever library made them, and it can still drop
 * them; the segment is in the kernel, so there is no user memory to race.
 * Hook: cgroup_skb/egress (called from skb.bpf.h's on_skb).
 */
#include "firstbytes.h"

/* A TCP connection's first data segment seen: the rest pass with one lookup. A refused
 * connection stays refused: every segment it sends (retransmissions too) is dropped. An
 * entry evicted (LRU) makes its next segment parsed as a first one: judged again, never
 * let through unjudged. */
enum conn_state {
	CONN_SEEN = 1,
	CONN_REFUSED,
	CONN_HTTP, /* plain HTTP: every segment that starts a request is judged (keep-alive) */
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);
	__type(value, u32);
} conn_seen SEC(".maps");

/* Host patterns of the policy's allow and block lists (filled by src/job/enforce.c). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, NAMES_MAX);
	__type(key, struct fb_name_key);
	__type(value, struct name_rules);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} names_allow SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, NAMES_MAX);
	__type(key, struct fb_name_key);
	__type(value, struct name_rules);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} names_block SEC(".maps");

/* The longest matching pattern first, then ever shorter ones (as lpm_admit): "a.b.x.test"
 * under both `*.x.test` (one label only: no) and `**.test` (yes). k->prefixlen is changed. */
static __always_inline bool name_admit(void *map, struct fb_name_key *k, u16 port, u32 proto,
				       u32 dots)
{
	for (int i = 0; i < LPM_RETRIES; i++) {
		struct name_rules *v = bpf_map_lookup_elem(map, k);

		if (!v)
			return false;
		if ((!v->one_label || v->dots == dots) && rules_admit(&v->a, port, proto))
			return true;
		if (v->a.prefix == 0)
			return false;
		k->prefixlen = v->a.prefix - 1;
	}
	return false;
}

/* Global, one per list (a map cannot be a global function's argument): the retries' loop is
 * verified once, not at each call and in each state the caller reaches it in. */
__noinline int name_blocked(struct fb_name_key *k, u32 port, u32 proto, u32 dots)
{
	return k && name_admit(&names_block, k, (u16)port, proto, dots);
}

__noinline int name_allowed(struct fb_name_key *k, u32 port, u32 proto, u32 dots)
{
	return k && name_admit(&names_allow, k, (u16)port, proto, dots);
}

/* bpf/httpjudge.bpf.h (included after this part): global functions, verified once. */
#define HJ_NO_NAME  0xff /* http_req_admit: no allow entry admits the host */
#define HJ_ANY_PORT 0x1	 /* inside TLS: the port is not known */
#define HJ_ANY_REQ  0x2	 /* is every request admitted (HTTP/2, whose requests are not read) */
int http_req_admit(struct fb *f, u32 port, u32 how);
int hj_alpn_h2(struct fb *f);
int hj_request_like(struct fb *f);

/* What the policy lets the named host be asked: an HTTP request's method and target, or for
 * a ClientHello whether it may offer HTTP/2 (whose requests the kernel cannot read). A host no
 * allow entry names has no such rules (addr_trusted: its address is trusted instead). */
static __always_inline u8 conn_request_judge(struct fb *f, u16 port, bool addr_trusted)
{
	int r;

	if (!(f->ev.flags & FBF_NAMED))
		return CNR_NONE;
	if (f->ev.app == FB_TLS) {
		if (!hj_alpn_h2(f))
			return CNR_NONE;
		r = http_req_admit(f, port, HJ_ANY_REQ);
		return r == 0 || r == HJ_NO_NAME ? CNR_NONE : CNR_H2_UNJUDGED;
	}
	r = http_req_admit(f, port, 0);
	if (r == HJ_NO_NAME)
		return addr_trusted ? CNR_NONE : CNR_HOST_MISMATCH;
	return r;
}

/*
 * The verdict on the name. A name on a block list is refused in every mode. With a policy:
 * an address an `ip:`/`cidr:` entry allows is trusted whatever the name (the policy named the
 * address, not a service on it); otherwise the address was allowed for names (the gate's
 * pins), and the name sent must be one the policy allows on this port. A connection that
 * names nothing (no SNI, no Host, an IP literal) is judged by its address alone; one whose
 * name could not be read is refused (fail closed).
 */
static __always_inline u8 conn_name_judge(struct fb *f, const struct pkt *p,
					  const struct rw_config *c)
{
	struct ev_conn_name *e = &f->ev;
	u32 plen = f->key.prefixlen, proto = RPROTO_TCP;

	e->reason = CNR_NONE;
	if (e->flags & FBF_NAMED) {
		if (name_blocked(&f->key, p->dport, proto, e->dots)) {
			e->reason = CNR_NAME_BLOCKED;
			return VERDICT_BLOCK;
		}
		f->key.prefixlen = plen;
	}
	if (!c || !c->policy)
		return VERDICT_ALLOW;
	if (listed(&allow4, &allow6, &allow4x, &allow6x, p->family, p->daddr, p->dport,
		   proto | RPROTO_ADDR_ONLY)) {
		e->flags |= FBF_ADDR_RULE;
		/* the named host's `methods:`/`paths:` hold on any address (httpjudge.bpf.h) */
		e->reason = conn_request_judge(f, p->dport, true);
		if (e->reason == CNR_NONE)
			return VERDICT_ALLOW;
	} else if (e->flags & (FBF_MALFORMED | FBF_BAD_NAME | FBF_CUT))
		e->reason = CNR_UNREADABLE;
	else if (e->flags & (FBF_NO_NAME | FBF_LITERAL))
		return VERDICT_ALLOW;
	else if (name_allowed(&f->key, p->dport, proto, e->dots)) {
		e->reason = conn_request_judge(f, p->dport, false);
		if (e->reason == CNR_NONE)
			return VERDICT_ALLOW;
	} else
		e->reason = e->app == FB_TLS ? CNR_SNI_MISMATCH : CNR_HOST_MISMATCH;
	return c->mode == MODE_ENFORCE ? VERDICT_DENY : VERDICT_AUDIT;
}

static __always_inline void conn_name_fill(struct fb *f, struct __sk_buff *skb, const struct pkt *p,
					   u64 cookie)
{
	struct ev_conn_name *e = &f->ev;

	fill_skb_hdr(&e->h, EV_CONN_NAME, cookie);
	e->cookie = cookie;
	e->family = p->family;
	e->dport = p->dport;
	e->sport = p->sport;
	__builtin_memcpy(e->daddr, p->daddr, 16);
	__builtin_memcpy(e->saddr, p->saddr, 16);
}

static __always_inline void conn_mark(u64 cookie, u32 state)
{
	bpf_map_update_elem(&conn_seen, &cookie, &state, BPF_ANY);
}

/* Global: verified once, apart from the hook's states (it was 40k of the egress program's
 * instructions walked when inlined). */
__noinline int fb_parse_any(struct fb *f)
{
	if (!f)
		return 0;
	fb_parse(f);
	return f->ev.app;
}

/* 1: the segment passes; 0: drop it. */
static __always_inline int conn_first_bytes(struct __sk_buff *skb, const struct pkt *p)
{
	u32 plen = p->plen, n, zero = 0, state;
	struct rw_config *c;
	struct fb *f;
	u64 cookie;
	u32 *st;
	bool later = false;
	u8 v;

	if (p->proto != PROTO_TCP || !have_bpf_loop)
		return 1;
	if (plen > skb->len)
		plen = skb->len;
	if (plen <= p->off)
		return 1; /* no payload: a SYN, an ACK, a FIN */
	cookie = bpf_get_socket_cookie(skb);
	st = bpf_map_lookup_elem(&conn_seen, &cookie);
	if (st) {
		/* A later request on a kept-alive HTTP connection names its own Host, and a
		 * server or CDN routes each request by it: judged like the first. */
		if (*st != CONN_HTTP)
			return *st != CONN_REFUSED;
		later = true;
	}
	c = cfg();
	if (c && runner_socket(skb, c)) {
		conn_mark(cookie, CONN_SEEN);
		return 1;
	}
	f = bpf_map_lookup_elem(&fb_scratch, &zero);
	if (!f)
		return 1;
	if (__sync_fetch_and_add(&f->busy, 1) != 0) {
		/* Preempted on this CPU while parsing another: this segment is not parsed. In
		 * enforce mode it is dropped unjudged (TCP sends it again); elsewhere it passes. */
		__sync_fetch_and_add(&f->busy, -1);
		count_lost(EV_CONN_NAME);
		return !(c && c->policy && c->mode == MODE_ENFORCE);
	}
	n = plen - p->off;
	if (n > FB_CAP)
		n = FB_CAP;
	asm volatile("" : "+r"(n));
	n = ((n - 1) & FB_MASK) + 1;
	if (bpf_skb_load_bytes(skb, p->off, f->buf, n)) {
		__sync_fetch_and_add(&f->busy, -1);
		return 1;
	}
	f->len = n;
	/* A first segment a server could read as a request the parser cannot (a method in small
	 * letters, HTTP/0.9, bytes no target has) is an unreadable one, not "not HTTP". */
	if (fb_parse_any(f) == FB_NONE && !later && hj_request_like(f)) {
		f->ev.app = FB_HTTP;
		f->ev.flags |= FBF_MALFORMED;
	}
	/* On a later segment only a whole request line counts: a body's bytes may look like the
	 * start of one. */
	if (f->ev.app == FB_NONE || (later && !f->hdr_end)) {
		if (!later)
			conn_mark(cookie, CONN_SEEN);
		__sync_fetch_and_add(&f->busy, -1);
		return 1;
	}
	conn_name_fill(f, skb, p, cookie);
	v = conn_name_judge(f, p, c);
	f->ev.verdict = v;
	state = refused(v) ? CONN_REFUSED : f->ev.app == FB_HTTP ? CONN_HTTP : CONN_SEEN;
	if (state == CONN_REFUSED)
		f->ev.flags |= FBF_DROPPED;
	conn_mark(cookie, state);
	/* A refusal wakes the reader at once: it resets the connection. */
	if (state != CONN_REFUSED)
		emit(&f->ev, sizeof(f->ev), EV_CONN_NAME);
	else if (bpf_ringbuf_output(&events, &f->ev, sizeof(f->ev), BPF_RB_FORCE_WAKEUP))
		count_lost(EV_CONN_NAME);
	__sync_fetch_and_add(&f->busy, -1);
	return state != CONN_REFUSED;
}
