/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: the job's packets, in softirq context. Each packet
 * is parsed once (skb_parse), then judged (skb_backstop: enforce mode's
 * egress backstop, unjudged ping echoes, the inbound SYN gate), then, for
 * DNS, copied to user space (skb_dns_capture); a TCP connection's first data
 * segment goes to conn.bpf.h (its name, judged).
 * Hooks: cgroup_skb/egress, cgroup_skb/ingress.
 */

/* Port 53, or the DNS gate on 127.0.0.1 (where redirected queries go). */
static __always_inline bool is_dns_port(u16 port, const u8 *addr)
{
	struct rw_config *c;

	if (port == 53)
		return true;
	c = cfg();
	return c && c->gate_port && port == c->gate_port && addr[0] == 127 && addr[1] == 0 &&
	       addr[2] == 0 && addr[3] == 1;
}

/* A socket of the CI runner itself (whole-job mode; see on_sock_addr). */
static __always_inline bool runner_socket(struct __sk_buff *skb, const struct rw_config *c)
{
	u64 cookie;
	struct sock_owner *o;

	if (!c->runner_tgid)
		return false;
	cookie = bpf_get_socket_cookie(skb);
	o = bpf_map_lookup_elem(&owners, &cookie);
	return o && o->pid == c->runner_tgid;
}

/*
 * The packet-level backstop, enforce mode only: what reaches the wire from
 * the job must have been allowed. The socket hooks judge every connection
 * and datagram first; this catches what they cannot see (protocols without
 * hooks, sockets handed in from outside). TCP is judged on its SYN only, so
 * a connection allowed at connect time is not cut when a DNS pin expires.
 * Every protocol is judged as itself (rproto_of): UDP-Lite is not TCP.
 */
static __always_inline u8 egress_backstop(struct __sk_buff *skb, u8 family, const u8 *daddr,
					  u16 dport, u8 proto, u32 l4)
{
	struct rw_config *c = cfg();
	u8 v;

	if (!c || !c->policy || c->mode != MODE_ENFORCE)
		return VERDICT_ALLOW;
	if (runner_socket(skb, c))
		return VERDICT_ALLOW;
	if (proto == PROTO_TCP) {
		struct tcphdr th;

		if (bpf_skb_load_bytes(skb, l4, &th, sizeof(th)) || !th.syn || th.ack)
			return VERDICT_ALLOW;
	}
	if (c->gate_port && dport == c->gate_port && (proto == PROTO_UDP || proto == PROTO_TCP) &&
	    ((family == AF_INET && daddr[0] == 127 && daddr[1] == 0 && daddr[2] == 0 &&
	      daddr[3] == 1) ||
	     (family == AF_INET6 && daddr[10] == 0xff && daddr[11] == 0xff && daddr[12] == 127 &&
	      daddr[15] == 1)))
		return VERDICT_ALLOW;
	v = judge(family, daddr, dport, rproto_of(proto));
	return v == VERDICT_AUDIT ? VERDICT_ALLOW : v;
}

/* A packet's record, attributed through the owner its socket's connect,
 * sendmsg or creation noted. */
static __always_inline void packet_event(struct __sk_buff *skb, u8 family, const u8 *daddr,
					 u16 dport, u8 proto, u8 verdict)
{
	struct ev_connect ev = {};

	ev.cookie = bpf_get_socket_cookie(skb);
	fill_skb_hdr(&ev.h, EV_CONNECT, ev.cookie);
	ev.family = family;
	ev.proto = proto;
	ev.via = VIA_PACKET;
	ev.verdict = verdict;
	ev.dport = dport;
	__builtin_memcpy(ev.daddr, daddr, 16);
	emit(&ev, sizeof(ev), EV_CONNECT);
}

/* An echo on a ping socket (SOCK_DGRAM, ICMP/ICMPv6) to an address it is not
 * connected to: the kernel runs no sock_addr hook for ping's sendto, so
 * nothing judged it yet. Echoes to the connected address were judged by
 * connect4/6 (ping's pre_connect); a sendto elsewhere on a connected socket
 * was not. */
static __always_inline bool unjudged_ping(struct __sk_buff *skb, u8 family, const u8 *daddr)
{
	const u32 *d = (const u32 *)daddr;
	struct bpf_sock *sk = skb->sk;

	if (!sk)
		return false;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->type != RW_SOCK_DGRAM ||
	    (sk->protocol != RW_IPPROTO_ICMP && sk->protocol != RW_IPPROTO_ICMPV6))
		return false;
	if (family == AF_INET)
		return sk->dst_ip4 != d[0];
	/* One expression without branches: clang then loads each field at its
	 * own offset, which is the only access the verifier allows on a sock. */
	return ((sk->dst_ip6[0] ^ d[0]) | (sk->dst_ip6[1] ^ d[1]) | (sk->dst_ip6[2] ^ d[2]) |
		(sk->dst_ip6[3] ^ d[3])) != 0;
}

/* 1: the packet may leave; 0: drop it (the sender gets EPERM). */
static __always_inline int egress_verdict(struct __sk_buff *skb, u8 family, const u8 *daddr,
					  u16 dport, u8 proto, u32 l4)
{
	struct rw_config *c;
	u8 v;

	if (rproto_of(proto) == RPROTO_ICMP && unjudged_ping(skb, family, daddr)) {
		/* Judged and recorded here in every mode, as the sendmsg
		 * hook does for each unconnected UDP datagram, so observe
		 * sees what enforce refuses. */
		c = cfg();
		if (c && runner_socket(skb, c))
			return 1;
		v = judge(family, daddr, 0, RPROTO_ICMP);
		packet_event(skb, family, daddr, 0, proto, v);
		return refused(v) ? 0 : 1;
	}
	v = egress_backstop(skb, family, daddr, dport, proto, l4);
	if (v == VERDICT_ALLOW)
		return 1;
	packet_event(skb, family, daddr, dport, proto, v);
	return 0;
}

/* A packet's headers, as the verdicts and the DNS capture need them. */
struct pkt {
	u8 saddr[16]; /* IPv4 in the first 4 bytes */
	u8 daddr[16];
	u32 l4;		  /* offset of the L4 header */
	u32 off;	  /* offset of the L4 payload */
	u32 plen;	  /* the IP packet's own length, header included */
	u16 sport, dport; /* host order; 0 for protocols without ports */
	u8 family;
	u8 proto; /* IP protocol number */
	bool syn; /* a TCP connection's first packet */
};

/* Reads the IP and L4 headers into p. False when there is nothing to judge
 * or capture (not IP, a header that cannot be read, a later fragment): the
 * packet passes. */
static __always_inline bool skb_parse(struct __sk_buff *skb, struct pkt *p)
{
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return false;
		if (ip.frag_off & bpf_htons(0x1fff))
			return false; /* not the first fragment: no L4 header */
		p->family = AF_INET;
		p->proto = ip.protocol;
		p->l4 = ip.ihl * 4;
		p->plen = bpf_ntohs(ip.tot_len);
		__builtin_memcpy(p->saddr, &ip.saddr, 4);
		__builtin_memcpy(p->daddr, &ip.daddr, 4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return false;
		p->family = AF_INET6;
		p->proto = ip6.nexthdr;
		p->l4 = sizeof(ip6);
		p->plen = sizeof(ip6) + bpf_ntohs(ip6.payload_len);
		__builtin_memcpy(p->saddr, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr, &ip6.daddr, 16);
	} else {
		return false;
	}

	if (p->proto == PROTO_UDP || p->proto == RW_IPPROTO_UDPLITE) {
		struct udphdr uh; /* UDP-Lite's header has the same layout */

		if (bpf_skb_load_bytes(skb, p->l4, &uh, sizeof(uh)))
			return false;
		p->sport = bpf_ntohs(uh.source);
		p->dport = bpf_ntohs(uh.dest);
		p->off = p->l4 + sizeof(uh);
	} else if (p->proto == PROTO_TCP) {
		struct tcphdr th;

		if (bpf_skb_load_bytes(skb, p->l4, &th, sizeof(th)))
			return false;
		p->sport = bpf_ntohs(th.source);
		p->dport = bpf_ntohs(th.dest);
		p->off = p->l4 + th.doff * 4;
		p->syn = th.syn && !th.ack;
	} else {
		/* ICMP and the rest: no ports, judged by address. */
		p->sport = p->dport = 0;
		p->off = p->l4;
	}
	return true;
}

/* The packet-level verdicts: egress (the enforce-mode backstop, and ping
 * echoes no hook judged) and the inbound SYN gate. Notes the job's own SYNs
 * for that gate. 1: the packet passes; 0: drop it. */
static __always_inline int skb_backstop(struct __sk_buff *skb, const struct pkt *p, u8 dir)
{
	if (dir == DNS_OUT && !egress_verdict(skb, p->family, p->daddr, p->dport, p->proto, p->l4))
		return 0;
	if (dir == DNS_IN && p->syn &&
	    inbound_refused(skb, p->family, p->saddr, p->sport, p->dport))
		return 0;
	if (dir == DNS_OUT && p->syn)
		note_job_syn(p->saddr, p->sport);
	return 1;
}

/* DNS on the wire: both directions of every port-53 packet of the job's
 * sockets, whatever library (or none) produced it, sent whole (up to
 * DNS_MAX) with the owner its socket's hooks noted. */
static __always_inline void skb_dns_capture(struct __sk_buff *skb, const struct pkt *p, u8 dir)
{
	u32 slot = 1, plen = p->plen, n;

	if (p->proto != PROTO_UDP && p->proto != PROTO_TCP)
		return; /* DNS is captured over UDP and TCP */
	if (!is_dns_port(dir == DNS_OUT ? p->dport : p->sport,
			 dir == DNS_OUT ? p->daddr : p->saddr))
		return;
	if (plen > skb->len)
		plen = skb->len;
	if (plen <= p->off)
		return; /* no payload (a bare ACK) */

	struct scratch *s = scratch_get(slot, EV_DNS_PKT);
	if (!s)
		return;
	struct ev_dns_pkt *e = &s->dns;
	u64 cookie = bpf_get_socket_cookie(skb);

	fill_skb_hdr(&e->h, EV_DNS_PKT, cookie);
	e->cookie = cookie;
	e->family = p->family;
	e->proto = p->proto;
	e->dir = dir;
	e->sport = p->sport;
	e->dport = p->dport;
	__builtin_memcpy(e->saddr, p->saddr, 16);
	__builtin_memcpy(e->daddr, p->daddr, 16);
	n = plen - p->off;
	e->truncated = n > DNS_MAX;
	if (n > DNS_MAX)
		n = DNS_MAX;
	/* A no-op for n in [1, DNS_MAX] that clang must keep: the verifier
	 * needs to see the bound on the register it gets. */
	asm volatile("" : "+r"(n));
	n = ((n - 1) & (DNS_MAX - 1)) + 1;
	if (bpf_skb_load_bytes(skb, p->off, e->data, n)) {
		scratch_put(s);
		return;
	}
	e->len = n;
	emit(e, sizeof(*e) + n, EV_DNS_PKT);
	scratch_put(s);
}

/* conn.bpf.h: a TCP connection's first data segment, its name recorded and judged. */
static __always_inline int conn_first_bytes(struct __sk_buff *skb, const struct pkt *p);
/* secretscan.bpf.h: a plain TCP segment scanned for secrets. */
int secret_scan_skb(struct __sk_buff *skb, const struct pkt *p);

/* Every packet of the job's sockets, both directions: 1 passes, 0 drops. */
static __always_inline int on_skb(struct __sk_buff *skb, u8 dir)
{
	struct pkt p = {};

	if (!cg_skb_jobs(skb))
		return 1;
	if (!skb_parse(skb, &p))
		return 1;
	if (!skb_backstop(skb, &p, dir))
		return 0;
	if (dir == DNS_OUT && !conn_first_bytes(skb, &p))
		return 0;
	if (dir == DNS_OUT && !secret_scan_skb(skb, &p))
		return 0;
	skb_dns_capture(skb, &p, dir);
	return 1;
}

SEC("cgroup_skb/egress")
int rw_skb_egress(struct __sk_buff *skb)
{
	return on_skb(skb, DNS_OUT);
}

SEC("cgroup_skb/ingress")
int rw_skb_ingress(struct __sk_buff *skb)
{
	return on_skb(skb, DNS_IN);
}
