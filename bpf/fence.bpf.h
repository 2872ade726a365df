/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: the fence around the job and what tries to get
 * through it other than by connecting out.
 * State: fence_cfg (the scope cgroup, runwarden's own tgid) and jobpids (the
 * job's processes, added by fork here and in proc.bpf.h), used by the parts
 * after this one.
 * Hooks: raw_tracepoint/cgroup_attach_task (a job process moved out of the
 * scope), tp/syscalls/sys_exit_pidfd_getfd (a descriptor taken from another
 * process), tp/syscalls/sys_exit_accept4 (inbound connections accepted; also
 * attached to sys_exit_accept). The inbound SYN gate, inbound_refused(), runs
 * in the ingress packet program (skb.bpf.h).
 */

/* Set by the loader (map rather than rw_config: the policy code rewrites
 * that one whole). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct fence_config);
} fence_cfg SEC(".maps");

/*
 * Is this the job's? Asked first by every cgroup program: attached to the job's
 * cgroup only, everything it sees is; a job following containers also has them
 * attached to the engines' directories (so containers are fenced from birth),
 * where the rest (containers that were there before the job) passes untouched
 * and unrecorded.
 */
static __always_inline bool cg_task_jobs(void)
{
	struct rw_config *c = cfg();
	struct fence_config *f;
	u32 zero = 0;

	if (!c || !c->engines_armed)
		return true;
	f = bpf_map_lookup_elem(&fence_cfg, &zero);
	if (f && bpf_get_current_ancestor_cgroup_id(f->scope_level) == f->scope_cgid)
		return true;
	return engine_task_container();
}

/* The same for a packet: its socket's cgroup. */
#define SKB_ANC(lv) bpf_skb_ancestor_cgroup_id(skb, lv)
__noinline int engine_skb_container(struct __sk_buff *skb)
{
	struct rw_config *c = cfg();

	return c && c->n_engines && ENGINE_CONTAINER(c, SKB_ANC);
}

static __always_inline bool cg_skb_jobs(struct __sk_buff *skb)
{
	struct rw_config *c = cfg();
	struct fence_config *f;
	u32 zero = 0;

	if (!c || !c->engines_armed)
		return true;
	f = bpf_map_lookup_elem(&fence_cfg, &zero);
	if (f && bpf_skb_ancestor_cgroup_id(skb, f->scope_level) == f->scope_cgid)
		return true;
	return engine_skb_container(skb);
}

/* The job's processes by tgid: a cgroup move is seen after the fact, when
 * the moved task already belongs to its new cgroup, so whether it was the
 * job's must be remembered. Filled on entry to the scope and on fork; an
 * entry that cannot be added is counted as lost (never silent). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, JOBPIDS_MAX);
	__type(key, u32);
	__type(value, u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} jobpids SEC(".maps");

static __always_inline struct fence_config *fence(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&fence_cfg, &zero);
}

static __always_inline bool enforcing(void)
{
	struct rw_config *c = cfg();

	return c && c->policy && c->mode == MODE_ENFORCE;
}

static __always_inline void jobpid_add(u32 tgid)
{
	u8 one = 1;

	if (bpf_map_update_elem(&jobpids, &tgid, &one, BPF_ANY))
		count_lost(EV_CGROUP_MOVE);
}

/* Who may open connections to the job (policy `inbound:`; by default
 * 127.0.0.1 and ::1): value port rules are the job's local ports. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct lpm4_key);
	__type(value, struct addr_rules);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} inbound4 SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct lpm6_key);
	__type(value, struct addr_rules);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} inbound6 SEC(".maps");

/* The job's own outgoing SYNs (enforce mode), by source address and port:
 * when such a connection arrives at a listener of the job (a client and a
 * server of the same job, on any local address) it is not a peer from
 * outside. */
struct flow_src {
	u8 addr[16];
	u16 port;
	u16 _pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow_src);
	__type(value, u8);
} job_syns SEC(".maps");

/* Is cgroup cg the scope or below it? Walks up from cg to the scope's
 * level and compares ids (cgroup ids are unique for the boot). */
static __always_inline bool cgroup_in_scope(struct cgroup *cg, const struct fence_config *f)
{
	int level = BPF_CORE_READ(cg, level);

	if (!f->scope_cgid || level < (int)f->scope_level)
		return false;
	for (int i = 0; i < 32; i++) {
		if (level <= (int)f->scope_level)
			break;
		cg = container_of(BPF_CORE_READ(cg, self.parent), struct cgroup, self);
		if (!cg)
			return false;
		level--;
	}
	return BPF_CORE_READ(cg, kn, id) == f->scope_cgid;
}

/*
 * A task changed cgroup. Into the scope: it is the job's from now on. Out of
 * it: the fence no longer applies to it, so this is tampering, recorded with
 * who did it and where to; in enforce mode the writer (when it is the job's)
 * is killed here, before its write(2) returns, and user space ends the job.
 * Moves by runwarden itself (releasing the runner at job stop) are not.
 */
SEC("raw_tracepoint/cgroup_attach_task")
int rw_cgroup_attach(struct bpf_raw_tracepoint_args *ctx)
{
	struct cgroup *dst = (struct cgroup *)ctx->args[0];
	struct task_struct *task = (struct task_struct *)ctx->args[2];
	struct fence_config *f = fence();
	u64 id = bpf_get_current_pid_tgid();
	u32 tgid = BPF_CORE_READ(task, tgid), writer = id >> 32;
	struct ev_cgroup_move e = {};
	const char *path = (const char *)ctx->args[1];

	if (!f || !f->scope_cgid)
		return 0;
	if (cgroup_in_scope(dst, f)) {
		jobpid_add(tgid);
		return 0;
	}
	if (!bpf_map_lookup_elem(&jobpids, &tgid))
		return 0; /* not the job's: the rest of the machine pays one lookup */
	bpf_map_delete_elem(&jobpids, &tgid);
	if (writer == f->self_tgid)
		return 0;
	fill_hdr(&e.h, EV_CGROUP_MOVE);
	e.target_pid = tgid;
	e.dst_cgid = BPF_CORE_READ(dst, kn, id);
	if (path)
		bpf_probe_read_kernel_str(e.dst_path, sizeof(e.dst_path), path);
	e.verdict = enforcing() ? VERDICT_DENY : VERDICT_AUDIT;
	if (e.verdict == VERDICT_DENY &&
	    (writer == tgid || bpf_map_lookup_elem(&jobpids, &writer) || in_scope())) {
		bpf_send_signal(9 /* SIGKILL */);
		e.killed = 1;
	}
	/* Woken at once: in enforce mode user space ends the job now. */
	if (bpf_ringbuf_output(&events, &e, sizeof(e), BPF_RB_FORCE_WAKEUP))
		count_lost(EV_CGROUP_MOVE);
	return 0;
}

/* ---- sockets taken from another process (pidfd_getfd) ---- */

#define PIDFS_MAGIC 0x50494446

/* The pid a pidfd of the current process refers to, or 0 (not a pidfd, or a
 * kernel without pidfs, where the record says the target is unknown). */
static __always_inline u32 pidfd_target(struct task_struct *task, int fd)
{
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	struct file *f = NULL;
	struct pid *p;

	if (fd < 0 || fd >= BPF_CORE_READ(task, files, fdt, max_fds))
		return 0;
	bpf_probe_read_kernel(&f, sizeof(f), fds + fd);
	if (!f || BPF_CORE_READ(f, f_inode, i_sb, s_magic) != PIDFS_MAGIC)
		return 0;
	/* Where the struct pid lives moved between kernels: the inode
	 * (newer pidfs) or the file (the first pidfs versions). */
	p = BPF_CORE_READ(f, f_inode, i_private);
	if (!p)
		p = BPF_CORE_READ(f, private_data);
	return p ? BPF_CORE_READ(p, numbers[0].nr) : 0;
}

/*
 * Judged at the exit, where both outcomes meet: a call the job's seccomp
 * filter refused (`run` in enforce mode) never reaches sys_enter, but does
 * reach sys_exit; the arguments come from the saved user registers. When a
 * descriptor was taken in enforce mode (whole-job mode, where no filter can be
 * put on the runner), the process is killed before it returns to user space.
 */
SEC("tp/syscalls/sys_exit_pidfd_getfd")
int rw_exit_pidfd_getfd(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *task;
	struct pt_regs *regs;
	struct ev_getfd e = {};
	struct rw_config *c;

	if (!in_scope())
		return 0;
	task = bpf_get_current_task_btf();
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	fill_hdr(&e.h, EV_GETFD);
	e.pidfd = (s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
	e.target_fd = (s32)PT_REGS_PARM2_CORE_SYSCALL(regs);
	e.result = ctx->ret;
	e.target_pid = pidfd_target(task, e.pidfd);
	c = cfg();
	e.verdict = !c || !c->policy	      ? VERDICT_ALLOW
		    : c->mode == MODE_ENFORCE ? VERDICT_DENY
					      : VERDICT_AUDIT;
	if (e.verdict == VERDICT_DENY && ctx->ret >= 0) {
		bpf_send_signal(9 /* SIGKILL */);
		e.killed = 1;
	}
	emit(&e, sizeof(e), EV_GETFD);
	return 0;
}

/* ---- inbound connections ---- */

/* May a peer open a connection to the job's local port? The policy's
 * `inbound:` list (user space puts 127.0.0.1 and ::1 there by default). */
__noinline int judge_inbound(const struct dest *d)
{
	struct rw_config *c = cfg();

	if (!d || !c || !c->policy)
		return VERDICT_ALLOW;
	if (d->family == AF_INET6) {
		const u32 *w = (const u32 *)d->addr;

		if (!(w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff))) {
			struct lpm6_key k6 = {.prefixlen = 128};

			__builtin_memcpy(k6.addr, d->addr, 16);
			if (lpm_admit(&inbound6, &k6, &k6.prefixlen, d->port, RPROTO_TCP))
				return VERDICT_ALLOW;
			goto refused;
		}
		struct lpm4_key m4 = {.prefixlen = 32};

		__builtin_memcpy(m4.addr, d->addr + 12, 4);
		if (lpm_admit(&inbound4, &m4, &m4.prefixlen, d->port, RPROTO_TCP))
			return VERDICT_ALLOW;
		goto refused;
	}
	struct lpm4_key k4 = {.prefixlen = 32};

	__builtin_memcpy(k4.addr, d->addr, 4);
	if (lpm_admit(&inbound4, &k4, &k4.prefixlen, d->port, RPROTO_TCP))
		return VERDICT_ALLOW;
refused:
	return c->mode == MODE_ENFORCE ? VERDICT_DENY : VERDICT_AUDIT;
}

/* A SYN the job sent (egress, enforce mode): see job_syns. */
static __always_inline void note_job_syn(const u8 *saddr, u16 sport)
{
	struct flow_src k = {.port = sport};
	u8 one = 1;

	__builtin_memcpy(k.addr, saddr, 16);
	bpf_map_update_elem(&job_syns, &k, &one, BPF_ANY);
}

static __always_inline bool from_job(const u8 *saddr, u16 sport)
{
	struct flow_src k = {.port = sport};

	__builtin_memcpy(k.addr, saddr, 16);
	return bpf_map_lookup_elem(&job_syns, &k) != NULL;
}

/*
 * The enforce-mode gate for inbound TCP, on the peer's SYN (the caller checked
 * the flags) as it reaches a socket of the job (a listener, in softirq: no
 * process to name, so the record carries the local port). Dropped SYNs are
 * retransmitted by the peer and recorded again; the accept(2) record below
 * covers what got through. Returns true when the packet must be dropped.
 */
static __always_inline bool inbound_refused(struct __sk_buff *skb, u8 family, const u8 *saddr,
					    u16 sport, u16 dport)
{
	struct dest d = {.port = dport, .family = family, .proto = RPROTO_TCP};
	struct fence_config *f;
	struct ev_accept e = {};

	if (!enforcing())
		return false;
	/* Listeners in the job's own cgroup only: containers the job starts are
	 * reached through their engine's proxies and bridges, peers the job
	 * cannot name in advance. */
	f = fence();
	if (!f || bpf_skb_ancestor_cgroup_id(skb, f->scope_level) != f->scope_cgid)
		return false;
	if (from_job(saddr, sport))
		return false; /* the job connecting to itself */
	__builtin_memcpy(d.addr, saddr, 16);
	if (!refused(judge_inbound(&d)))
		return false;
	e.h.kind = EV_ACCEPT;
	e.h.ts = bpf_ktime_get_ns();
	e.family = family;
	e.via = VIA_PACKET;
	e.verdict = VERDICT_DENY;
	e.peer_port = sport;
	e.local_port = dport;
	e.result = -EPERM;
	__builtin_memcpy(e.peer, saddr, 16);
	emit(&e, sizeof(e), EV_ACCEPT);
	return true;
}

/* accept(2)/accept4(2) returned a connection from outside the job: who
 * accepted it, from whom. */
SEC("tp/syscalls/sys_exit_accept4")
int rw_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *task;
	struct file **fds;
	struct file *f = NULL;
	struct socket *sock;
	struct sock *sk;
	struct ev_accept e = {};
	struct dest d = {.proto = RPROTO_TCP};
	long fd = ctx->ret;

	if (fd < 0 || !in_scope())
		return 0;
	task = (struct task_struct *)bpf_get_current_task();
	fds = BPF_CORE_READ(task, files, fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), fds + fd);
	if (!f)
		return 0;
	sock = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	e.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (e.family == AF_INET) {
		u32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(e.peer, &a, 4);
	} else if (e.family == AF_INET6) {
		BPF_CORE_READ_INTO(&e.peer, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		return 0; /* unix sockets: not a network peer */
	}
	fill_hdr(&e.h, EV_ACCEPT);
	e.peer_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	e.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	e.via = VIA_CONNECT;
	e.result = fd;
	__builtin_memcpy(d.addr, e.peer, 16);
	d.family = e.family;
	d.port = e.local_port;
	/* The job's own connection: its connect record already says it all. */
	if (from_job(e.peer, e.peer_port))
		return 0;
	e.verdict = judge_inbound(&d);
	emit(&e, sizeof(e), EV_ACCEPT);
	return 0;
}
