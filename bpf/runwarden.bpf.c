// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * runwarden's kernel side: every program that observes a job.
 *
 * Scope: tracepoint programs ask bpf_current_task_under_cgroup() whether the
 * current task lives in the job's cgroup subtree (map `scope`, slot 0), so a
 * process outside the job costs one helper call and produces nothing. The
 * cgroup programs (connect/sendmsg/skb) are attached to that subtree and need
 * no check.
 *
 * Loss: every record is sent with bpf_ringbuf_output() at its used length;
 * a failed send, or a scratch buffer found busy (preempted user on this CPU),
 * increments lost[kind]. Nothing is dropped without being counted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET	   2
#define AF_INET6   10
#define ETH_P_IP   0x0800
#define ETH_P_IPV6 0x86DD
#define EPERM	   1

/* Set by user space before load. */
const volatile u32 wake_bytes = 256 * 1024; /* wake the reader past this backlog */
/* bpf_loop (5.17+): the path walk's step is verified once instead of 48
 * times, which is most of the start-up time. Set by the loader. */
const volatile bool have_bpf_loop = false;
/* bpf_get_current_pid_tgid in cgroup/sock programs (6.0+): names the owner of
 * a ping socket at creation. Set by the loader. */
const volatile bool have_sock_pid = false;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* resized by user space */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, SCOPE_SLOTS);
	__type(key, u32);
	__type(value, u32);
} scope SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LOST_SLOTS);
	__type(key, u32);
	__type(value, u64);
} lost SEC(".maps");

/* Scratch for records too large for the 512-byte stack. */
#define SCRATCH_DATA (2 * PATH_BYTES + ARGV_MAX + NAME_BYTES)
struct scratch {
	u64 busy;
	union {
		struct ev_exec exec;
		struct ev_file file;
		struct ev_dns_pkt dns;
		struct ev_env env;
	};
	char room[SCRATCH_DATA];
};

#define EXEC_DATA_OFF (__builtin_offsetof(struct scratch, exec) + sizeof(struct ev_exec))
#define FILE_DATA_OFF (__builtin_offsetof(struct scratch, file) + sizeof(struct ev_file))

/* One for task context, one for softirq (skb programs) so they never share. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* Sensitive file names, matched on the opened dentry's name: an entry with
 * its trailing NUL is an exact name, one without is a name prefix. User space
 * confirms the full path against its glob list. */
struct name_key {
	u32 prefixlen;
	u8 name[64];
};
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 1024);
	__type(key, struct name_key);
	__type(value, u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} sensitive SEC(".maps");

struct open_args {
	u64 filename;
	u32 flags;
	u32 _pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32); /* tid */
	__type(value, struct open_args);
} open_inflight SEC(".maps");

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

/* socket cookie -> owning process, so DNS packets seen in softirq context
 * can be tied to the process that sent the query. */
struct sock_owner {
	u32 pid;
	u32 tid;
	u32 uid;
	u32 _pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64);
	__type(value, struct sock_owner);
} owners SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct rw_config);
} rw_config_map SEC(".maps");

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

static __always_inline struct rw_config *cfg(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&rw_config_map, &zero);
}

/* Global (not inlined) functions are verified once per program, not once
 * per call site and caller state: that keeps start-up (verification) fast. */
__noinline int rules_admit(const struct addr_rules *v, u32 port, u32 proto)
{
	if (!v)
		return 0;
	for (int i = 0; i < RULES_MAX; i++) {
		if (i >= v->nrules)
			break;
		if ((v->r[i].proto & proto) && port >= v->r[i].lo && port <= v->r[i].hi)
			return 1;
	}
	return 0;
}

/* Longest match first, then ever shorter covering entries (bounded). */
static __always_inline bool lpm_admit(void *map, void *key, u32 *prefixlen, u16 port, u8 proto)
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
				   const u8 *addr, u16 port, u8 proto)
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

static __always_inline void count_lost(u32 kind)
{
	u64 *n = bpf_map_lookup_elem(&lost, &kind);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Wake the reader only when a backlog builds up: the reader also polls on a
 * short timer, so latency stays bounded while a syscall storm does not pay a
 * wakeup per event. */
static __always_inline void emit(void *data, u64 size, u32 kind)
{
	u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wake_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&events, data, size, flags))
		count_lost(kind);
}

/* Record sizes are computed to fit the scratch record; this states the
 * bound where the verifier can see it (clang may not keep our own checks). */
#define SCRATCH_RECORD (sizeof(struct scratch) - sizeof(u64))
static __always_inline u64 clamp_size(u64 size)
{
	asm volatile("" : "+r"(size));
	if (size > SCRATCH_RECORD)
		size = SCRATCH_RECORD;
	return size;
}

static __always_inline bool in_scope(void)
{
	struct rw_config *c;

	if (bpf_current_task_under_cgroup(&scope, 0) == 1)
		return true;
	/* Containers the job started elsewhere (only when there are any, so
	 * the rest of the machine pays one map lookup more, not sixteen). */
	c = cfg();
	if (!c || !c->extra_scopes)
		return false;
	for (u32 i = 1; i < SCOPE_SLOTS; i++) {
		if (i > c->extra_scopes)
			break;
		if (bpf_current_task_under_cgroup(&scope, i) == 1)
			return true;
	}
	return false;
}

static __always_inline struct scratch *scratch_get(u32 slot, u32 kind)
{
	struct scratch *s = bpf_map_lookup_elem(&scratch, &slot);

	if (!s)
		return NULL;
	/* A preempted user of this CPU's buffer: count, never corrupt. */
	if (__sync_fetch_and_add(&s->busy, 1) != 0) {
		__sync_fetch_and_add(&s->busy, -1);
		count_lost(kind);
		return NULL;
	}
	return s;
}

static __always_inline void scratch_put(struct scratch *s)
{
	__sync_fetch_and_add(&s->busy, -1);
}

static __always_inline void fill_hdr(struct ev_hdr *h, u32 kind)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	u64 id = bpf_get_current_pid_tgid();

	h->kind = kind;
	h->pid = id >> 32;
	h->tid = (u32)id;
	h->ppid = BPF_CORE_READ(task, real_parent, tgid);
	h->uid = (u32)bpf_get_current_uid_gid();
	h->ts = bpf_ktime_get_ns();
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

/*
 * Writes the components of a path (dentry, vfsmnt given as addresses), leaf
 * first and NUL-terminated, into the scratch record at data_off + base.
 * Returns the bytes written, with PATH_TRUNC_BIT set if the walk was cut.
 *
 * A global (non-inlined) function: the verifier checks it once, not once per
 * caller state, which keeps the 48-step walk within its budget.
 */
#define PATH_TRUNC_BIT 0x10000
__noinline int walk_path(struct scratch *s, u32 data_off, u32 base, u64 dentry_addr,
			 u64 vfsmnt_addr)
{
	struct dentry *dentry = (struct dentry *)dentry_addr;
	struct vfsmount *vfsmnt = (struct vfsmount *)vfsmnt_addr;
	struct mount *mnt = container_of(vfsmnt, struct mount, mnt);
	char *buf;
	u32 off = 0;

	if (!s)
		return 0;
	buf = (char *)s + (data_off & 127);
	for (int i = 0; i < PATH_DEPTH; i++) {
		struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
		struct dentry *root = BPF_CORE_READ(vfsmnt, mnt_root);

		if (dentry == root || dentry == parent) {
			struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

			if (dentry != root || up == mnt)
				return off; /* reached the root of the mount tree */
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = up;
			vfsmnt = &up->mnt;
			continue;
		}
		if (off >= PATH_BYTES - NAME_BYTES)
			return off | PATH_TRUNC_BIT;
		const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
		long n = bpf_probe_read_kernel_str(buf + ((base + off) & (2 * PATH_BYTES - 1)),
						   NAME_BYTES, name);
		if (n <= 0)
			return off;
		/* off stays below PATH_BYTES; the mask shows the verifier a fixed
		 * range so it can prune instead of walking every path. */
		off = (off + n) & (PATH_BYTES - 1);
		dentry = parent;
	}
	return off | PATH_TRUNC_BIT;
}

/* The same walk as walk_path, one component per bpf_loop step. */
struct walk_state {
	u64 dentry;
	u64 vfsmnt;
	u32 off;
	u32 base;
	u32 data_off;
	u32 result; /* set when the walk ends: length, maybe | PATH_TRUNC_BIT */
	u32 done;
};

static long walk_step(u32 i, void *ctx)
{
	struct walk_state *w = ctx;
	struct dentry *dentry = (struct dentry *)w->dentry;
	struct vfsmount *vfsmnt = (struct vfsmount *)w->vfsmnt;
	struct mount *mnt = container_of(vfsmnt, struct mount, mnt);
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	struct dentry *root = BPF_CORE_READ(vfsmnt, mnt_root);
	u32 slot = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &slot);
	u32 off = w->off;

	(void)i;
	if (!s)
		goto end;
	if (dentry == root || dentry == parent) {
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);

		if (dentry != root || up == mnt)
			goto end; /* reached the root of the mount tree */
		w->dentry = (u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		w->vfsmnt = (u64)&up->mnt;
		return 0;
	}
	if (off >= PATH_BYTES - NAME_BYTES) {
		off |= PATH_TRUNC_BIT;
		goto end;
	}
	char *buf = (char *)s + (w->data_off & 127);
	const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
	long n = bpf_probe_read_kernel_str(buf + ((w->base + off) & (2 * PATH_BYTES - 1)),
					   NAME_BYTES, name);
	if (n <= 0)
		goto end;
	w->off = (off + n) & (PATH_BYTES - 1);
	w->dentry = (u64)parent;
	return 0;
end:
	w->result = off;
	w->done = 1;
	return 1;
}

static __always_inline u32 put_path(struct scratch *s, u32 data_off, u32 base, struct path *p,
				    u32 *flags, u32 trunc_flag)
{
	int r;

	if (have_bpf_loop) {
		struct walk_state w = {.dentry = (u64)p->dentry,
				       .vfsmnt = (u64)p->mnt,
				       .base = base,
				       .data_off = data_off};

		bpf_loop(PATH_DEPTH, walk_step, &w, 0);
		r = w.done ? (int)w.result : (int)(w.off | PATH_TRUNC_BIT);
	} else {
		r = walk_path(s, data_off, base, (u64)p->dentry, (u64)p->mnt);
	}

	if (r & PATH_TRUNC_BIT)
		*flags |= trunc_flag;
	return r & (PATH_BYTES - 1);
}

/* ------------------------------------------------------------ file identity */

/* inode ctime moved twice: i_ctime (< 6.6), __i_ctime (6.6 - 6.10), then
 * i_ctime_sec/i_ctime_nsec. These flavours let one object read any of them. */
struct inode___ts64 {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));
struct inode___old {
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

static __always_inline void inode_ctime(struct inode *ino, struct file_id *id)
{
	if (bpf_core_field_exists(ino->i_ctime_sec)) {
		id->ctime_sec = BPF_CORE_READ(ino, i_ctime_sec);
		/* bit 31 marks a queried multigrain ctime (6.13+), not time */
		id->ctime_nsec = BPF_CORE_READ(ino, i_ctime_nsec) & ~(1u << 31);
	} else if (bpf_core_field_exists(((struct inode___ts64 *)ino)->__i_ctime)) {
		struct inode___ts64 *t = (void *)ino;

		id->ctime_sec = BPF_CORE_READ(t, __i_ctime.tv_sec);
		id->ctime_nsec = BPF_CORE_READ(t, __i_ctime.tv_nsec);
	} else {
		struct inode___old *t = (void *)ino;

		id->ctime_sec = BPF_CORE_READ(t, i_ctime.tv_sec);
		id->ctime_nsec = BPF_CORE_READ(t, i_ctime.tv_nsec);
	}
}

/* Watched files by what they are (filled by user space: the sensitive files
 * found at start, and each one later opened under a watched name): a hard
 * link, a renamed directory, a bind mount or a file handle reaches the same
 * inode under another name. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WATCHED_MAX);
	__type(key, struct file_key);
	__type(value, u8);
} watched SEC(".maps");

/* Files opened under a watched file name, kept by the kernel itself until
 * user space has confirmed the full path and put them in `watched`: a file
 * the job creates as ~/.npmrc and at once reads through a hard link is then
 * known by identity before the agent has read the record of its creation
 * (records are read in order, so the confirmation comes before the read's
 * record). LRU: a flood of unconfirmed names evicts only unconfirmed ones. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WATCHED_MAX);
	__type(key, struct file_key);
	__type(value, u8);
} watch_candidates SEC(".maps");

/* ---------------------------------------------------------------- fence state */

/* Set by the loader (map rather than rw_config: the policy code rewrites
 * that one whole). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct fence_config);
} fence_cfg SEC(".maps");

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

static __always_inline bool inbound_refused(struct __sk_buff *skb, u8 family, const u8 *saddr,
					    u16 sport, u16 dport);
static __always_inline void note_job_syn(const u8 *saddr, u16 sport);

/* ---------------------------------------------------------------- processes */

SEC("tp/sched/sched_process_exec")
int rw_exec(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct scratch *s;
	struct ev_exec *e;
	u32 flags = 0, exe_len, cwd_len, pos;
	u64 arg_start, arg_end, len;

	if (!in_scope())
		return 0;
	s = scratch_get(0, EV_EXEC);
	if (!s)
		return 0;
	e = &s->exec;
	fill_hdr(&e->h, EV_EXEC);

	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct inode *ino = BPF_CORE_READ(exe, f_inode);
	struct path p;
	BPF_CORE_READ_INTO(&p, exe, f_path);
	exe_len = put_path(s, EXEC_DATA_OFF, 0, &p, &flags, EVF_EXE_TRUNC);
	if (exe_len == 0) {
		/* No path leads to it (a memfd, or another pseudo file): its
		 * own name ("memfd:NAME") is all there is. */
		long n = bpf_probe_read_kernel_str(e->data, NAME_BYTES,
						   BPF_CORE_READ(p.dentry, d_name.name));

		exe_len = n > 0 ? n : 0;
		flags |= EVF_EXE_ANON;
	} else if (BPF_CORE_READ(ino, i_nlink) == 0) {
		flags |= EVF_EXE_DELETED;
	}
	e->exe.ino = BPF_CORE_READ(ino, i_ino);
	e->exe.dev = BPF_CORE_READ(ino, i_sb, s_dev);
	e->exe.size = BPF_CORE_READ(ino, i_size);
	inode_ctime(ino, &e->exe);

	BPF_CORE_READ_INTO(&p, task, fs, pwd);
	cwd_len = put_path(s, EXEC_DATA_OFF, exe_len, &p, &flags, EVF_CWD_TRUNC);

	arg_start = BPF_CORE_READ(task, mm, arg_start);
	arg_end = BPF_CORE_READ(task, mm, arg_end);
	len = arg_end - arg_start;
	if (len >= ARGV_MAX) {
		len = ARGV_MAX - 1;
		flags |= EVF_ARGV_TRUNC;
	}
	len &= ARGV_MAX - 1;
	pos = (exe_len + cwd_len) & (2 * PATH_BYTES - 1);
	if (len && bpf_probe_read_user(e->data + pos, len, (void *)arg_start))
		len = 0;

	e->exe_len = exe_len;
	e->cwd_len = cwd_len;
	e->argv_len = len;
	e->flags = flags;
	emit(e, clamp_size(sizeof(*e) + pos + len), EV_EXEC);

	/* A step's first process: its environment names the step. */
	struct rw_config *c = cfg();
	if (c && c->runner_tgid && e->h.ppid == c->runner_tgid) {
		struct ev_env *v = &s->env;
		u64 env_start = BPF_CORE_READ(task, mm, env_start);
		u64 env_end = BPF_CORE_READ(task, mm, env_end);
		u32 ppid = e->h.ppid, pid = e->h.pid;

		len = env_end - env_start;
		v->truncated = len >= ENV_MAX;
		if (len >= ENV_MAX)
			len = ENV_MAX - 1;
		len &= ENV_MAX - 1;
		__builtin_memset(&v->h, 0, sizeof(v->h));
		v->h.kind = EV_ENV;
		v->h.pid = pid;
		v->h.tid = pid;
		v->h.ppid = ppid;
		v->h.ts = bpf_ktime_get_ns();
		if (len && bpf_probe_read_user(v->data, len, (void *)env_start))
			len = 0;
		v->len = len;
		emit(v, clamp_size(sizeof(*v) + len), EV_ENV);
	}
	scratch_put(s);
	return 0;
}

SEC("raw_tracepoint/sched_process_fork")
int rw_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	struct ev_fork e = {};

	if (!in_scope())
		return 0;
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0; /* a thread, not a process */
	fill_hdr(&e.h, EV_FORK);
	e.h.ppid = e.h.pid;
	e.h.pid = BPF_CORE_READ(child, tgid);
	e.h.tid = e.h.pid;
	jobpid_add(e.h.pid); /* for cgroup moves (rw_cgroup_attach) */
	emit(&e, sizeof(e), EV_FORK);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int rw_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct ev_exit e = {};
	u64 id = bpf_get_current_pid_tgid();

	if ((u32)id != id >> 32 || !in_scope())
		return 0; /* only the thread-group leader ends a process */
	fill_hdr(&e.h, EV_EXIT);
	bpf_map_delete_elem(&jobpids, &e.h.pid);
	e.exit_code = BPF_CORE_READ(task, exit_code);
	emit(&e, sizeof(e), EV_EXIT);
	return 0;
}

/* --------------------------------------------------------------- sensitive files */

static __always_inline int open_enter(u64 filename, u32 flags)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct open_args a = {.filename = filename, .flags = flags};

	if (!in_scope())
		return 0;
	bpf_map_update_elem(&open_inflight, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_enter_openat")
int rw_enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(ctx->args[1], (u32)ctx->args[2]);
}

SEC("tp/syscalls/sys_enter_open")
int rw_enter_open(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(ctx->args[0], (u32)ctx->args[1]);
}

/* open_by_handle_at names no file at all: only the exit sees what it opened. */
SEC("tp/syscalls/sys_enter_open_by_handle_at")
int rw_enter_open_by_handle(struct trace_event_raw_sys_enter *ctx)
{
	return open_enter(0, (u32)ctx->args[2]);
}

SEC("tp/syscalls/sys_enter_openat2")
int rw_enter_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return open_enter(ctx->args[1], (u32)how.flags);
}

static __always_inline bool name_is_sensitive(struct name_key *k)
{
	return bpf_map_lookup_elem(&sensitive, k) != NULL;
}

/* ----------------------------------------------------------- memory reads */

struct memread_key {
	u32 tgid;
	s32 target;
	u32 op;
	u32 ok;
};
struct memread_count {
	u64 calls;
	u64 bytes;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct memread_key);
	__type(value, struct memread_count);
} memread_seen SEC(".maps");

/* Counts the access and sends its record when the count of (reader, target,
 * op, outcome) reaches a power of two. An evicted entry only makes more
 * records, never fewer. */
static __always_inline void memread_send(struct ev_memread *e, u64 bytes)
{
	struct memread_key k = {
	    .tgid = e->h.pid, .target = e->target_pid, .op = e->op, .ok = e->result >= 0};
	struct memread_count one = {.calls = 1}, *c = bpf_map_lookup_elem(&memread_seen, &k);
	u64 calls;

	if (c) {
		calls = __sync_fetch_and_add(&c->calls, 1) + 1;
		bytes += __sync_fetch_and_add(&c->bytes, bytes);
	} else {
		one.bytes = bytes;
		bpf_map_update_elem(&memread_seen, &k, &one, BPF_ANY);
		calls = 1;
	}
	if (calls & (calls - 1))
		return;
	e->calls = calls;
	e->bytes = bytes;
	emit(e, sizeof(*e), EV_MEMREAD);
}

/* The caller's pid namespace: its depth and its inode number, so that user
 * space can tell which namespace a pid it passed belongs to. */
static __always_inline void caller_pidns(struct ev_memread *e)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	u32 level = BPF_CORE_READ(pid, level);
	struct upid *u = &pid->numbers[0];
	struct pid_namespace *ns = NULL;

	e->pidns_level = level;
	bpf_probe_read_kernel(&ns, sizeof(ns), &u[level & 63].ns);
	e->pidns_inum = BPF_CORE_READ(ns, ns.inum);
}

struct task_struct *bpf_task_from_pid(s32 pid) __ksym __weak;
void bpf_task_release(struct task_struct *p) __ksym __weak;

/* ptrace names a thread; the job's processes are kept by tgid. Kernels
 * without the kfunc (before 6.2) judge the id as given: a thread of the job
 * other than its main one then counts as outside. */
static __always_inline u32 tid_to_tgid(s32 tid)
{
	struct task_struct *t;
	u32 tgid = (u32)tid;

	if (!bpf_task_from_pid)
		return tgid;
	t = bpf_task_from_pid(tid);
	if (t) {
		tgid = BPF_CORE_READ(t, tgid);
		bpf_task_release(t);
	}
	return tgid;
}

/* In enforce mode a job that has just gained write access to the memory of a
 * process outside the job (same uid: the CI runner's worker under `--user
 * runner`) could make that process connect anywhere, unfenced. The caller is
 * killed: the signal is taken on the way back to user space, so the attach
 * or the open never serves a single request, and a dead tracer's tracees are
 * detached by the kernel. */
static __always_inline void outside_write_stop(struct ev_memread *e, u32 target_tgid)
{
	if (!enforcing() || bpf_map_lookup_elem(&jobpids, &target_tgid))
		return;
	bpf_send_signal(9 /* SIGKILL */);
	e->flags |= MRF_KILLED;
}

/* /proc/PID/mem or /proc/PID/environ opened by fd `ret`: the target is the
 * task the proc inode belongs to, found in the kernel (a procfs mounted
 * anywhere, in any pid namespace, names the same task). */
static __always_inline int proc_memread(struct inode *ino, long ret, u32 op, u32 open_flags)
{
	struct proc_inode *pi = container_of(ino, struct proc_inode, vfs_inode);
	struct pid *pid = BPF_CORE_READ(pi, pid);
	struct hlist_node *first = BPF_CORE_READ(pid, tasks[PIDTYPE_PID].first);
	struct task_struct *t = container_of(first, struct task_struct, pid_links[PIDTYPE_PID]);
	struct ev_memread e = {};

	fill_hdr(&e.h, EV_MEMREAD);
	e.target_pid = BPF_CORE_READ(pid, numbers[0].nr);
	e.flags = MRF_TARGET_GLOBAL;
	if (first) {
		e.target_tgid = BPF_CORE_READ(t, tgid);
		bpf_probe_read_kernel_str(e.target_comm, sizeof(e.target_comm), t->comm);
		e.flags |= MRF_TARGET_COMM;
	} else {
		e.target_tgid = e.target_pid; /* exited: name the pid the file was for */
	}
	if (e.target_tgid == e.h.pid)
		return 0; /* its own memory: how some runtimes work, not a theft */
	e.op = op;
	e.request = open_flags;
	e.result = ret;
	caller_pidns(&e);
	/* O_WRONLY or O_RDWR: the fd writes the target's memory. */
	if (op == MR_PROC_MEM && (open_flags & 3) && ret >= 0)
		outside_write_stop(&e, e.target_tgid);
	memread_send(&e, 0);
	return 0;
}

/* "mem" and "environ", NUL included, in a name read from a dentry. */
static __always_inline u32 proc_mem_op(const u8 *n)
{
	if (n[0] == 'm' && n[1] == 'e' && n[2] == 'm' && n[3] == 0)
		return MR_PROC_MEM;
	if (n[0] == 'e' && n[1] == 'n' && n[2] == 'v' && n[3] == 'i' && n[4] == 'r' &&
	    n[5] == 'o' && n[6] == 'n' && n[7] == 0)
		return MR_PROC_ENVIRON;
	return 0;
}

#define PROC_SUPER_MAGIC 0x9fa0
#define S_IFMT		 00170000
#define S_IFREG		 0100000

struct memread_args {
	u32 op;
	u32 request;
	s32 target;
	u32 _pad;
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32); /* tid */
	__type(value, struct memread_args);
} memread_inflight SEC(".maps");

static __always_inline int memread_enter(u32 op, u32 request, s32 target)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct memread_args a = {.op = op, .request = request, .target = target};

	if (!in_scope())
		return 0;
	bpf_map_update_elem(&memread_inflight, &tid, &a, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_enter_process_vm_readv")
int rw_enter_vm_readv(struct trace_event_raw_sys_enter *ctx)
{
	return memread_enter(MR_VM_READV, 0, (s32)ctx->args[0]);
}

SEC("tp/syscalls/sys_enter_process_vm_writev")
int rw_enter_vm_writev(struct trace_event_raw_sys_enter *ctx)
{
	return memread_enter(MR_VM_WRITEV, 0, (s32)ctx->args[0]);
}

/* The ptrace requests that read or change another process's memory or
 * registers, or make it a tracee; the rest (CONT, DETACH, ...) only steer
 * one already attached, whose attach is on record. */
SEC("tp/syscalls/sys_enter_ptrace")
int rw_enter_ptrace(struct trace_event_raw_sys_enter *ctx)
{
	u32 req = (u32)ctx->args[0], op;

	switch (req) {
	case 1: /* PTRACE_PEEKTEXT */
	case 2: /* PTRACE_PEEKDATA */
	case 3: /* PTRACE_PEEKUSER */
		op = MR_PTRACE_PEEK;
		break;
	case 4: /* PTRACE_POKETEXT */
	case 5: /* PTRACE_POKEDATA */
	case 6: /* PTRACE_POKEUSER */
		op = MR_PTRACE_POKE;
		break;
	case 12:     /* PTRACE_GETREGS */
	case 14:     /* PTRACE_GETFPREGS */
	case 0x4204: /* PTRACE_GETREGSET */
		op = MR_PTRACE_REGS;
		break;
	case 16: /* PTRACE_ATTACH */
		op = MR_PTRACE_ATTACH;
		break;
	case 0x4206: /* PTRACE_SEIZE */
		op = MR_PTRACE_SEIZE;
		break;
	default:
		return 0;
	}
	return memread_enter(op, req, (s32)ctx->args[1]);
}

#if defined(__TARGET_ARCH_arm64)
#define RW_NR_PROCESS_VM_WRITEV 271
#else
#define RW_NR_PROCESS_VM_WRITEV 311
#endif

/* `run`'s seccomp filter (enforce) refuses process_vm_writev before the
 * enter tracepoint: the exit names the call, its target from the saved
 * registers. */
static __always_inline bool refused_vm_writev(struct trace_event_raw_sys_exit *ctx,
					      struct ev_memread *e)
{
	struct pt_regs *regs;

	if (ctx->id != RW_NR_PROCESS_VM_WRITEV || ctx->ret != -1 /* EPERM */ || !in_scope())
		return false;
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	e->op = MR_VM_WRITEV;
	e->target_pid = (s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
	return true;
}

/* One program for the exits of ptrace and process_vm_readv/writev. */
SEC("tp/syscalls/sys_exit_ptrace")
int rw_exit_memread(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct memread_args *a = bpf_map_lookup_elem(&memread_inflight, &tid);
	struct ev_memread e = {};
	u64 bytes = 0;

	if (a) {
		e.op = a->op;
		e.request = a->request;
		e.target_pid = a->target;
		bpf_map_delete_elem(&memread_inflight, &tid);
	} else if (!refused_vm_writev(ctx, &e)) {
		return 0;
	}
	fill_hdr(&e.h, EV_MEMREAD);
	e.result = ctx->ret;
	caller_pidns(&e);
	if (e.pidns_level == 0) {
		if (e.target_pid == e.h.pid)
			return 0; /* its own memory (a crash reporter, a runtime) */
		e.flags = MRF_TARGET_GLOBAL;
		e.target_tgid = e.target_pid;
		/* An attached tracer may poke; a pid namespace of the job's own
		 * holds only the job's processes. */
		if ((e.op == MR_PTRACE_ATTACH || e.op == MR_PTRACE_SEIZE) && e.result == 0)
			outside_write_stop(&e, tid_to_tgid(e.target_pid));
	}
	/* process_vm_* return the bytes moved; a PEEK that worked moved a word
	 * (the syscall stores it at `data` and returns 0). */
	if (e.op == MR_VM_READV || e.op == MR_VM_WRITEV)
		bytes = e.result > 0 ? e.result : 0;
	else if (e.op == MR_PTRACE_PEEK || e.op == MR_PTRACE_POKE)
		bytes = e.result == 0 ? sizeof(long) : 0;
	memread_send(&e, bytes);
	return 0;
}

/* An open finished with ret (fd or -errno). args: the syscall's arguments,
 * or NULL for an io_uring open (no name for failures; flags from the file). */
static __always_inline int open_done(long ret, const struct open_args *a, u32 via_flag)
{
	struct name_key key = {};
	struct file_key fk = {};
	struct open_args args = {};
	struct scratch *s;
	struct ev_file *e;
	struct file *f = NULL;
	struct inode *ino = NULL;
	u32 flags = via_flag, len = 0;
	long n;

	if (a)
		args = *a;
	else if (ret < 0)
		return 0;

	if (ret >= 0) {
		/* Judge by what was opened, not by the name passed: a symlink
		 * or a relative path cannot hide a key file. */
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();
		struct file **fds = BPF_CORE_READ(task, files, fdt, fd);

		bpf_probe_read_kernel(&f, sizeof(f), fds + ret);
		if (!f)
			return 0;
		ino = BPF_CORE_READ(f, f_inode);
		n = bpf_probe_read_kernel_str(key.name, sizeof(key.name),
					      BPF_CORE_READ(f, f_path.dentry, d_name.name));
	} else {
		/* Failed attempt: all we have is the name the caller passed. */
		char raw[NAME_BYTES];
		int last = 0;

		n = bpf_probe_read_user_str(raw, sizeof(raw), (void *)args.filename);
		if (n <= 0)
			return 0;
		/* Scan back from the end: one path continues per step, so the
		 * verifier's work stays linear. */
		for (int i = 0; i < NAME_BYTES; i++) {
			int j = n - 2 - i; /* n counts the NUL */

			if (j < 0)
				break;
			if (raw[j & (NAME_BYTES - 1)] == '/') {
				last = j + 1;
				break;
			}
		}
		n = bpf_probe_read_kernel_str(key.name, sizeof(key.name),
					      raw + (last & (NAME_BYTES - 1)));
	}
	if (n > 0) {
		key.prefixlen = n * 8;
		if (!name_is_sensitive(&key))
			n = 0;
	}
	if (ino) {
		fk.ino = BPF_CORE_READ(ino, i_ino);
		fk.dev = BPF_CORE_READ(ino, i_sb, s_dev);
		if (n > 0) {
			/* A watched name: another process's memory, or a file. */
			u32 op = proc_mem_op(key.name);

			u8 one = 1;

			if (op && BPF_CORE_READ(ino, i_sb, s_magic) == PROC_SUPER_MAGIC)
				return proc_memread(ino, ret, op,
						    a ? args.flags : BPF_CORE_READ(f, f_flags));
			if ((BPF_CORE_READ(ino, i_mode) & S_IFMT) == S_IFREG)
				bpf_map_update_elem(&watch_candidates, &fk, &one, BPF_ANY);
		} else if (bpf_map_lookup_elem(&watched, &fk) ||
			   bpf_map_lookup_elem(&watch_candidates, &fk)) {
			flags |= EVF_INODE_HIT; /* a watched file under another name */
		} else {
			return 0;
		}
	} else if (n <= 0) {
		return 0;
	}

	s = scratch_get(0, EV_FILE);
	if (!s)
		return 0;
	e = &s->file;
	fill_hdr(&e->h, EV_FILE);
	e->result = ret;
	e->open_flags = a ? args.flags : BPF_CORE_READ(f, f_flags);
	e->dev = fk.dev;
	e->ino = fk.ino;
	if (f) {
		struct path p;

		BPF_CORE_READ_INTO(&p, f, f_path);
		len = put_path(s, FILE_DATA_OFF, 0, &p, &flags, EVF_PATH_TRUNC);
	} else {
		n = bpf_probe_read_user_str(e->data, PATH_BYTES, (void *)args.filename);
		len = n > 0 ? n : 0;
		flags |= EVF_PATH_RAW;
	}
	len &= 2 * PATH_BYTES - 1;
	e->path_len = len;
	e->flags = flags;
	emit(e, clamp_size(sizeof(*e) + len), EV_FILE);
	scratch_put(s);
	return 0;
}

static __always_inline int open_exit(long ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct open_args *a = bpf_map_lookup_elem(&open_inflight, &tid);
	struct open_args args;

	if (!a)
		return 0;
	args = *a;
	bpf_map_delete_elem(&open_inflight, &tid);
	return open_done(ret, &args, 0);
}

/* Opens submitted through io_uring never pass the syscall tracepoints; their
 * completion does pass here, in the submitter's context or one of its io-wq
 * workers (which share its file table). */
SEC("tp/io_uring/io_uring_complete")
int rw_uring_complete(struct trace_event_raw_io_uring_complete *ctx)
{
	struct io_kiocb *req = (struct io_kiocb *)ctx->req;
	u8 op = BPF_CORE_READ(req, opcode);

	if ((op != IORING_OP_OPENAT && op != IORING_OP_OPENAT2) || ctx->res < 0 || !in_scope())
		return 0;
	return open_done(ctx->res, NULL, EVF_URING);
}

/* One program for the three exits (same context layout): each program that
 * walks paths costs verifier time at start-up, so load it once and attach it
 * to sys_exit_openat, sys_exit_open and sys_exit_openat2 (see loader.c). */
SEC("tp/syscalls/sys_exit_openat")
int rw_exit_open(struct trace_event_raw_sys_exit *ctx)
{
	return open_exit(ctx->ret);
}

/* ---------------------------------------------------------------- network */

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
		   (proto == RPROTO_UDP || proto == RPROTO_TCP) &&
		   (!c->gate_netns || bpf_get_netns_cookie(ctx) == c->gate_netns)) {
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
int rw_enter_connect(void *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct conn_slot slot = {.armed = 1};

	if (!in_scope())
		return 0;
	bpf_map_update_elem(&conn_inflight, &tid, &slot, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_connect")
int rw_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct conn_slot *slot = bpf_map_lookup_elem(&conn_inflight, &tid);

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
static __always_inline u8 backstop(struct __sk_buff *skb, u8 family, const u8 *daddr, u16 dport,
				   u8 proto, u32 l4)
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
	struct sock_owner *o;

	ev.h.kind = EV_CONNECT;
	ev.h.ts = bpf_ktime_get_ns();
	ev.cookie = bpf_get_socket_cookie(skb);
	o = bpf_map_lookup_elem(&owners, &ev.cookie);
	if (o) {
		ev.h.pid = o->pid;
		ev.h.tid = o->tid;
		ev.h.uid = o->uid;
	}
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
	v = backstop(skb, family, daddr, dport, proto, l4);
	if (v == VERDICT_ALLOW)
		return 1;
	packet_event(skb, family, daddr, dport, proto, v);
	return 0;
}

/* DNS on the wire: both directions of every port-53 packet of the job's
 * sockets, whatever library (or none) produced it. */
static __always_inline int on_skb(struct __sk_buff *skb, u8 dir)
{
	u32 slot = 1, off, l4, plen, n;
	u8 family, proto;
	u16 sport, dport;
	u8 saddr[16] = {}, daddr[16] = {};
	bool syn = false; /* a TCP connection's first packet */

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)))
			return 1;
		if (ip.frag_off & bpf_htons(0x1fff))
			return 1; /* not the first fragment: no L4 header */
		family = AF_INET;
		proto = ip.protocol;
		l4 = ip.ihl * 4;
		plen = bpf_ntohs(ip.tot_len);
		__builtin_memcpy(saddr, &ip.saddr, 4);
		__builtin_memcpy(daddr, &ip.daddr, 4);
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
			return 1;
		family = AF_INET6;
		proto = ip6.nexthdr;
		l4 = sizeof(ip6);
		plen = sizeof(ip6) + bpf_ntohs(ip6.payload_len);
		__builtin_memcpy(saddr, &ip6.saddr, 16);
		__builtin_memcpy(daddr, &ip6.daddr, 16);
	} else {
		return 1;
	}

	if (proto == PROTO_UDP || proto == RW_IPPROTO_UDPLITE) {
		struct udphdr uh; /* UDP-Lite's header has the same layout */

		if (bpf_skb_load_bytes(skb, l4, &uh, sizeof(uh)))
			return 1;
		sport = bpf_ntohs(uh.source);
		dport = bpf_ntohs(uh.dest);
		off = l4 + sizeof(uh);
	} else if (proto == PROTO_TCP) {
		struct tcphdr th;

		if (bpf_skb_load_bytes(skb, l4, &th, sizeof(th)))
			return 1;
		sport = bpf_ntohs(th.source);
		dport = bpf_ntohs(th.dest);
		off = l4 + th.doff * 4;
		syn = th.syn && !th.ack;
	} else {
		/* ICMP and the rest: no ports, judged by address. */
		sport = dport = 0;
		off = l4;
	}
	if (dir == DNS_OUT && !egress_verdict(skb, family, daddr, dport, proto, l4))
		return 0;
	if (dir == DNS_IN && syn && inbound_refused(skb, family, saddr, sport, dport))
		return 0;
	if (dir == DNS_OUT && syn)
		note_job_syn(saddr, sport);
	if (proto != PROTO_UDP && proto != PROTO_TCP)
		return 1; /* DNS is captured over UDP and TCP */
	if (!is_dns_port(dir == DNS_OUT ? dport : sport, dir == DNS_OUT ? daddr : saddr))
		return 1;
	if (plen > skb->len)
		plen = skb->len;
	if (plen <= off)
		return 1; /* no payload (a bare ACK) */

	struct scratch *s = scratch_get(slot, EV_DNS_PKT);
	if (!s)
		return 1;
	struct ev_dns_pkt *e = &s->dns;
	u64 cookie = bpf_get_socket_cookie(skb);
	struct sock_owner *o = bpf_map_lookup_elem(&owners, &cookie);

	__builtin_memset(&e->h, 0, sizeof(e->h));
	e->h.kind = EV_DNS_PKT;
	e->h.ts = bpf_ktime_get_ns();
	if (o) {
		e->h.pid = o->pid;
		e->h.tid = o->tid;
		e->h.uid = o->uid;
	}
	e->cookie = cookie;
	e->family = family;
	e->proto = proto;
	e->dir = dir;
	e->sport = sport;
	e->dport = dport;
	__builtin_memcpy(e->saddr, saddr, 16);
	__builtin_memcpy(e->daddr, daddr, 16);
	n = plen - off;
	e->truncated = n > DNS_MAX;
	if (n > DNS_MAX)
		n = DNS_MAX;
	/* A no-op for n in [1, DNS_MAX] that clang must keep: the verifier
	 * needs to see the bound on the register it gets. */
	asm volatile("" : "+r"(n));
	n = ((n - 1) & (DNS_MAX - 1)) + 1;
	if (bpf_skb_load_bytes(skb, off, e->data, n)) {
		scratch_put(s);
		return 1;
	}
	e->len = n;
	emit(e, sizeof(*e) + n, EV_DNS_PKT);
	scratch_put(s);
	return 1;
}

/* Raw IP sockets can forge anything. In enforce mode the job runs without
 * CAP_NET_RAW (see cmd_run.c), and this hook refuses raw IP sockets even to a
 * job that somehow has it; packet sockets have no cgroup hook. The kernel
 * runs it for IPv4 and IPv6 sockets only. */
SEC("cgroup/sock_create")
int rw_sock_create(struct bpf_sock *sk)
{
	struct rw_config *c = cfg();

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

/* ---------------------------------------------------------------- fence integrity */

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

/*
 * The enforce-mode gate for inbound TCP, on the peer's SYN (the caller checked
 * the flags) as it reaches a socket of the job (a listener, in softirq: no
 * process to name, so the record carries the local port). Dropped SYNs are
 * retransmitted by the peer and recorded again; the accept(2) record below
 * covers what got through. Returns true when the packet must be dropped.
 */
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
