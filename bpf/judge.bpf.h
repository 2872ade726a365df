/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: the egress policy in the kernel. The allow and
 * block maps (filled by user space and the DNS gate) and judge(), the one
 * decision every hook asks about a destination: the connect/sendmsg hooks
 * (sockaddr.bpf.h), the packet backstop (skb.bpf.h), and, through
 * lpm_admit(), the inbound judge (fence.bpf.h). No hooks.
 */

/* The egress allow and block lists (policy CIDRs, and the addresses the DNS
 * gate pinned for allowed names), declared from the one list in rwnet.h.
 * Single addresses (policy `ip:` entries, every pin of the DNS gate) live in
 * hash maps: O(1) however many there are; only real CIDRs walk a trie. Sized
 * by user space to the policy. */
#define POLICY_MAP_TYPE_0  BPF_MAP_TYPE_LPM_TRIE
#define POLICY_MAP_TYPE_1  BPF_MAP_TYPE_HASH
#define POLICY_MAP_KEY_4_0 struct lpm4_key
#define POLICY_MAP_KEY_6_0 struct lpm6_key
#define POLICY_MAP_KEY_4_1 u32
#define POLICY_MAP_KEY_6_1 struct in6_addr
#define POLICY_MAP_(e, name, list, fam, exact)                                                     \
	struct {                                                                                   \
		__uint(type, POLICY_MAP_TYPE_##exact);                                             \
		__uint(max_entries, 1024);                                                         \
		__type(key, POLICY_MAP_KEY_##fam##_##exact);                                       \
		__type(value, struct addr_rules);                                                  \
		__uint(map_flags, BPF_F_NO_PREALLOC);                                              \
	} name SEC(".maps");
RW_POLICY_MAPS(POLICY_MAP_)
#undef POLICY_MAP_

/* With a protocol bit: only rules of `ip:`/`cidr:` entries count, not the gate's pins
 * (conn.bpf.h: such an address is trusted whatever name a connection to it sends). */
#define RPROTO_ADDR_ONLY 0x100

/* Global (not inlined) functions are verified once per program, not once
 * per call site and caller state: that keeps start-up (verification) fast. */
__noinline int rules_admit(const struct addr_rules *v, u32 port, u32 proto)
{
	if (!v)
		return 0;
	for (int i = 0; i < RULES_MAX; i++) {
		if (i >= v->nrules)
			break;
		if ((proto & RPROTO_ADDR_ONLY) && (v->r[i].flags & PRF_PINNED))
			continue;
		if ((v->r[i].proto & proto) && port >= v->r[i].lo && port <= v->r[i].hi)
			return 1;
	}
	return 0;
}

/* Longest match first, then ever shorter covering entries (bounded). */
static __always_inline bool lpm_admit(void *map, void *key, u32 *prefixlen, u16 port, u32 proto)
{
	for (int i = 0; i < LPM_RETRIES; i++) {
		struct addr_rules *v = bpf_map_lookup_elem(map, key);

		if (!v)
			return false;
		if (rules_admit(v, port, proto))
			return true;
		if (v->prefix == 0)
			return false;
		*prefixlen = v->prefix - 1;
	}
	return false;
}

/* Looks addr up in a v4/v6 list (exact hash first, then the trie); a
 * v4-mapped IPv6 address is an IPv4 address (so ::ffff:a.b.c.d cannot slip
 * past an IPv4 rule). */
static __always_inline bool listed(void *map4, void *map6, void *x4, void *x6, u8 family,
				   const u8 *addr, u16 port, u32 proto)
{
	if (family == AF_INET6) {
		const u32 *w = (const u32 *)addr;

		if (!(w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff))) {
			struct lpm6_key k6 = {.prefixlen = 128};

			__builtin_memcpy(k6.addr, addr, 16);
			if (rules_admit(bpf_map_lookup_elem(x6, k6.addr), port, proto))
				return true;
			return lpm_admit(map6, &k6, &k6.prefixlen, port, proto);
		}
		addr += 12;
	}
	struct lpm4_key k4 = {.prefixlen = 32};

	__builtin_memcpy(k4.addr, addr, 4);
	if (rules_admit(bpf_map_lookup_elem(x4, k4.addr), port, proto))
		return true;
	return lpm_admit(map4, &k4, &k4.prefixlen, port, proto);
}

/* A destination as the hooks see it: address (IPv4 in the first 4 bytes),
 * port in host order, socket family and RPROTO_* bit. */
struct dest {
	u8 addr[16];
	u16 port;
	u8 family;
	u8 proto;
};

/* The one place a destination is judged, for every hook. */
__noinline int judge_dest(const struct dest *d)
{
	struct rw_config *c = cfg();

	if (!d || !c)
		return VERDICT_ALLOW;
	/* The block lists apply with or without a policy (the built-in one is always loaded). */
	if (listed(&block4, &block6, &block4x, &block6x, d->family, d->addr, d->port, d->proto))
		return VERDICT_BLOCK;
	if (!c->policy)
		return VERDICT_ALLOW;
	if (listed(&allow4, &allow6, &allow4x, &allow6x, d->family, d->addr, d->port, d->proto))
		return VERDICT_ALLOW;
	return c->mode == MODE_ENFORCE ? VERDICT_DENY : VERDICT_AUDIT;
}

static __always_inline u8 judge(u8 family, const u8 *addr, u16 port, u8 proto)
{
	struct dest d = {.port = port, .family = family, .proto = proto};

	__builtin_memcpy(d.addr, addr, 16);
	return judge_dest(&d);
}

static __always_inline bool refused(u8 verdict)
{
	return verdict == VERDICT_DENY || verdict == VERDICT_BLOCK;
}

/* The policy bit an IP protocol is judged with (rwnet.h): each its own. */
static __always_inline u8 rproto_of(u32 ipproto)
{
	switch (ipproto) {
#define RPROTO_CASE_(num, name, bit)                                                               \
	case num:                                                                                  \
		return bit;
		RW_IP_PROTOS(RPROTO_CASE_)
#undef RPROTO_CASE_
	case 262: /* IPPROTO_MPTCP: TCP subflows on the wire */
		return RPROTO_TCP;
	default:
		return RPROTO_OTHER;
	}
}
