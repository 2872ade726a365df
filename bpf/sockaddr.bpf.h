/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: the egress verdict per connection and per
 * unconnected datagram, made before anything leaves (a refusal is EPERM at
 * once), and the DNS redirection to the gate.
 * Hooks: cgroup/connect4, connect6, sendmsg4, sendmsg6; and
 * tp/syscalls/sys_enter_connect / sys_exit_connect, which add connect(2)'s
 * result to the record the hook parked in conn_inflight.
 */

/* connect(2) in flight on a thread: the cgroup hook parks its record here so
 * sys_exit_connect can add the result. Paths that bypass the syscall
 * (io_uring, sendmsg) find no slot and send at once. */
struct conn_slot {
	u32 armed;
	u32 filled;
	struct ev_connect ev;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct conn_slot);
} conn_inflight SEC(".maps");

/* Network namespaces besides the gate's own where it listens too (a container's of the
 * job, see src/job/containers.c): their port-53 traffic is sent to the gate as well.
 * Key: the namespace's cookie. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, GATE_NETNS_MAX);
	__type(key, u64);
	__type(value, u8);
} gate_nets SEC(".maps");

static __always_inline bool gate_reachable(const struct rw_config *c, void *ctx)
{
	u64 ck;

	if (!c->gate_netns)
		return true;
	ck = bpf_get_netns_cookie(ctx);
	return ck == c->gate_netns || bpf_map_lookup_elem(&gate_nets, &ck);
}

static __always_inline void note_owner(u64 cookie, struct ev_hdr *h)
{
	struct sock_owner o = {.pid = h->pid, .tid = h->tid, .uid = h->uid};

	bpf_map_update_elem(&owners, &cookie, &o, BPF_ANY);
}

static __always_inline bool resolver_listed(const struct rw_config *c, u8 family, const u8 *addr,
					    u16 port)
{
	u8 a[16] = {};

	if (!c->nresolvers)
		return true;
	if (family == AF_INET) {
		a[10] = a[11] = 0xff;
		__builtin_memcpy(a + 12, addr, 4);
	} else {
		__builtin_memcpy(a, addr, 16);
	}
	for (int i = 0; i < RESOLVERS_MAX; i++) {
		if (i >= c->nresolvers)
			break;
		const u64 *x = (const u64 *)c->resolvers[i].addr, *y = (const u64 *)a;

		if (c->resolvers[i].port == port && x[0] == y[0] && x[1] == y[1])
			return true;
	}
	return false;
}

/* sock_addr programs run in the caller's context, but get_current_task and
 * get_current_comm are not available to them on every kernel: user space
 * fills comm and ppid from its process table. The verdict is made here, so
 * a refused attempt fails at once with EPERM, whatever path it took. */
static __always_inline int on_sock_addr(struct bpf_sock_addr *ctx, u8 family, u8 via)
{
	struct ev_connect e = {};
	struct rw_config *c = cfg();
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	u8 proto = rproto_of(ctx->protocol);

	if (!cg_task_jobs())
		return 1;
	e.h.kind = EV_CONNECT;
	e.h.pid = id >> 32;
	e.h.tid = tid;
	e.h.uid = (u32)bpf_get_current_uid_gid();
	e.h.ts = bpf_ktime_get_ns();
	e.cookie = bpf_get_socket_cookie(ctx);
	e.family = family;
	e.proto = ctx->protocol;
	e.via = via;
	/* A ping socket's "port" means nothing on the wire: ICMP is judged by
	 * address alone, so a port rule cannot admit it. */
	e.dport = proto == RPROTO_ICMP ? 0 : bpf_ntohs(ctx->user_port);
	if (family == AF_INET) {
		u32 a = ctx->user_ip4;

		__builtin_memcpy(e.daddr, &a, 4);
	} else {
		u32 a[4];

		a[0] = ctx->user_ip6[0];
		a[1] = ctx->user_ip6[1];
		a[2] = ctx->user_ip6[2];
		a[3] = ctx->user_ip6[3];
		__builtin_memcpy(e.daddr, a, 16);
	}
	note_owner(e.cookie, &e.h);

	if (c && c->runner_tgid && c->runner_tgid == e.h.pid) {
		/* The runner talking to its CI server: not the job's egress. Its
		 * resolver traffic is not redirected either (it must reach the
		 * names its server uses, which no job policy lists). */
		e.verdict = VERDICT_ALLOW;
		e.flags |= EVF_RUNNER;
	} else if (c && c->gate_port && e.dport == 53 &&
		   (proto == RPROTO_UDP || proto == RPROTO_TCP) && gate_reachable(c, ctx)) {
		/* Every resolver address leads to the gate: names are judged
		 * there, and nothing the policy refuses leaves the machine. */
		e.flags |= EVF_REDIRECTED;
		e.verdict = resolver_listed(c, family, e.daddr, e.dport)
				? VERDICT_ALLOW
				: (c->mode == MODE_ENFORCE ? VERDICT_DENY : VERDICT_AUDIT);
		if (family == AF_INET) {
			ctx->user_ip4 = bpf_htonl(0x7f000001);
		} else {
			/* v4-mapped loopback: reaches the gate from a dual-stack
			 * socket; a v6-only socket fails, closed, with ENETUNREACH. */
			ctx->user_ip6[0] = 0;
			ctx->user_ip6[1] = 0;
			ctx->user_ip6[2] = bpf_htonl(0xffff);
			ctx->user_ip6[3] = bpf_htonl(0x7f000001);
		}
		ctx->user_port = bpf_htons(c->gate_port);
	} else {
		/* Protocols the policy cannot name (SCTP, ...) are judged by
		 * address alone, as the packet backstop must judge them. */
		e.verdict = judge(family, e.daddr, proto == RPROTO_OTHER ? 0 : e.dport, proto);
	}

	if (via == VIA_CONNECT) {
		struct conn_slot *slot = bpf_map_lookup_elem(&conn_inflight, &tid);

		if (slot && slot->armed && !slot->filled) {
			slot->ev = e;
			slot->filled = 1;
			return refused(e.verdict) ? 0 : 1;
		}
	}
	emit(&e, sizeof(e), EV_CONNECT);
	return refused(e.verdict) ? 0 : 1;
}

SEC("cgroup/connect4")
int rw_connect4(struct bpf_sock_addr *ctx)
{
	return on_sock_addr(ctx, AF_INET, VIA_CONNECT);
}

SEC("cgroup/connect6")
int rw_connect6(struct bpf_sock_addr *ctx)
{
	return on_sock_addr(ctx, AF_INET6, VIA_CONNECT);
}

SEC("cgroup/sendmsg4")
int rw_sendmsg4(struct bpf_sock_addr *ctx)
{
	return on_sock_addr(ctx, AF_INET, VIA_SENDMSG);
}

SEC("cgroup/sendmsg6")
int rw_sendmsg6(struct bpf_sock_addr *ctx)
{
	return on_sock_addr(ctx, AF_INET6, VIA_SENDMSG);
}

SEC("tp/syscalls/sys_enter_connect")
int rw_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct conn_slot slot = {.armed = 1};

	if (!in_scope())
		return 0;
	bpf_map_update_elem(&conn_inflight, &tid, &slot, BPF_ANY);
	unix_connect_enter(ctx); /* no cgroup hook sees unix connects (host.bpf.h) */
	return 0;
}

SEC("tp/syscalls/sys_exit_connect")
int rw_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct conn_slot *slot = bpf_map_lookup_elem(&conn_inflight, &tid);

	unix_connect_exit(ctx->ret);
	if (!slot)
		return 0;
	if (slot->filled) {
		struct ev_connect e = slot->ev;

		e.result = ctx->ret;
		e.flags |= EVF_HAS_RESULT;
		bpf_map_delete_elem(&conn_inflight, &tid);
		emit(&e, sizeof(e), EV_CONNECT);
		return 0;
	}
	bpf_map_delete_elem(&conn_inflight, &tid);
	return 0;
}
