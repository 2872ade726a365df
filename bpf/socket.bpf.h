/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: socket creation. Raw IP sockets refused in enforce
 * mode, ping sockets' owners noted, and every attempt at a socket that is
 * egress by itself (raw, packet, any non-IP non-local family) recorded.
 * Maps: socket_inflight.
 * Hooks: cgroup/sock_create, tp/syscalls/sys_enter_socket, sys_exit_socket.
 */

static __always_inline u8 family_class(u32 family)
{
	switch (family) {
#define FAMILY_CASE_(num, name, cls)                                                               \
	case num:                                                                                  \
		return cls;
		RW_FAMILIES(FAMILY_CASE_)
#undef FAMILY_CASE_
	default:
		return FC_REMOTE;
	}
}

/* Raw IP sockets can forge anything. In enforce mode the job runs without
 * CAP_NET_RAW (see cmd_run.c), and this hook refuses raw IP sockets even to a
 * job that somehow has it; packet sockets have no cgroup hook. The kernel
 * runs it for IPv4 and IPv6 sockets only. */
SEC("cgroup/sock_create")
int rw_sock_create(struct bpf_sock *sk)
{
	struct rw_config *c = cfg();

	if (!cg_task_jobs())
		return 1;
	if (sk->type == RW_SOCK_RAW)
		return c && c->policy && c->mode == MODE_ENFORCE ? 0 : 1;
	if (have_sock_pid && sk->type == RW_SOCK_DGRAM &&
	    (sk->protocol == RW_IPPROTO_ICMP || sk->protocol == RW_IPPROTO_ICMPV6)) {
		/* A ping socket may send without any sock_addr hook seeing it;
		 * its packets are attributed through this note (egress_verdict). */
		u64 id = bpf_get_current_pid_tgid(), cookie = bpf_get_socket_cookie(sk);
		struct sock_owner o = {
		    .pid = id >> 32, .tid = (u32)id, .uid = (u32)bpf_get_current_uid_gid()};

		bpf_map_update_elem(&owners, &cookie, &o, BPF_ANY);
	}
	return 1;
}

/* Sockets that are egress by themselves, whatever they later send to: raw IP
 * sockets, and every family that is neither local nor IP (rwnet.h). Plain IP
 * sockets are judged per destination instead; local ones are not egress. */
static __always_inline bool egress_socket(u32 family, u32 type)
{
	switch (family_class(family)) {
	case FC_LOCAL:
		return false;
	case FC_IP:
		return type == RW_SOCK_RAW;
	default:
		return true;
	}
}

/* Every attempt to make an egress socket goes on record with its result,
 * whether the kernel, a capability or the hook above refused it. */
struct sock_args {
	u16 family, type, protocol, _pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, struct sock_args);
} socket_inflight SEC(".maps");

SEC("tp/syscalls/sys_enter_socket")
int rw_enter_socket(struct trace_event_raw_sys_enter *ctx)
{
	u32 family = ctx->args[0], type = ctx->args[1] & 0xf;
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct sock_args a = {.type = type, .protocol = ctx->args[2]};

	/* The kernel turns this obsolete pair into a packet socket. */
	if (family == AF_INET && type == RW_SOCK_PACKET)
		family = RW_FAMILY_PACKET;
	if (!egress_socket(family, type))
		return 0;
	if (!in_scope())
		return 0;
	a.family = family > 0xffff ? 0xffff : family;
	bpf_map_update_elem(&socket_inflight, &tid, &a, BPF_ANY);
	return 0;
}

/* The kernel has no such family, type or protocol: nothing was made and
 * nothing refused it, so there is nothing to judge. */
static __always_inline bool not_supported(long ret)
{
	return ret == -97 /* EAFNOSUPPORT */ || ret == -93 /* EPROTONOSUPPORT */ ||
	       ret == -94 /* ESOCKTNOSUPPORT */ || ret == -91 /* EPROTOTYPE */ ||
	       ret == -22 /* EINVAL */;
}

SEC("tp/syscalls/sys_exit_socket")
int rw_exit_socket(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct sock_args *a = bpf_map_lookup_elem(&socket_inflight, &tid);
	struct sock_args args;
	long ret = ctx->ret;
	struct rw_config *c;
	struct ev_socket e = {};

	if (a) {
		args = *a;
		bpf_map_delete_elem(&socket_inflight, &tid);
	} else {
		/* The job's seccomp filter (`run`, enforce) refused the call before
		 * sys_enter: judge it from the saved user registers, as
		 * rw_exit_pidfd_getfd does, so the refusal is on the record. */
		struct pt_regs *regs;
		u32 family, type;

		if (ret != -1 /* EPERM */ || !in_scope())
			return 0;
		regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
		family = (u32)PT_REGS_PARM1_CORE_SYSCALL(regs);
		type = (u32)PT_REGS_PARM2_CORE_SYSCALL(regs) & 0xf;
		if (!egress_socket(family, type))
			return 0;
		args.family = family > 0xffff ? 0xffff : family;
		args.type = type;
		args.protocol = (u16)PT_REGS_PARM3_CORE_SYSCALL(regs);
	}
	if (not_supported(ret))
		return 0;
	fill_hdr(&e.h, EV_SOCKET);
	e.family = args.family;
	e.type = args.type;
	e.protocol = args.protocol;
	e.result = ret;
	c = cfg();
	e.verdict = !c || !c->policy	      ? VERDICT_ALLOW
		    : c->mode == MODE_ENFORCE ? VERDICT_DENY
					      : VERDICT_AUDIT;
	emit(&e, sizeof(e), EV_SOCKET);
	return 0;
}
