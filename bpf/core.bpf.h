/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c (one translation unit; see the order there): what
 * every other part uses. The ring buffer and its loss counters, the per-CPU
 * scratch records, the job's configuration (rw_config), the scope check for
 * tracepoint programs, record headers, and the socket owners noted by the
 * socket hooks for the packet programs. The loader's read-only switches live
 * here too, together, so .rodata keeps one layout. No hooks.
 */

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
/* bpf_get_attach_cookie for uprobes (5.15+): without it the loader attaches no probe that
 * needs one. */
const volatile bool have_attach_cookie = false;
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

/* A syscall tracepoint's number. The record holds an int followed by 4 bytes of padding the
 * kernel does not clear, which vmlinux.h's `long id` reads too: compare the int. */
#define SYSCALL_NR(ctx) ((int)(ctx)->id)

/* Scratch for records too large for the 512-byte stack. */
#define SCRATCH_DATA (2 * PATH_BYTES + ARGV_MAX + NAME_BYTES)
struct scratch {
	u64 busy;
	u32 walk_off; /* the path walk's offset (path.bpf.h) */
	u32 _pad;
	union {
		struct ev_exec exec;
		struct ev_file file;
		struct ev_dns_pkt dns;
		struct ev_env env;
		struct ev_path_op path_op;
	};
	char room[SCRATCH_DATA];
};

#define EXEC_DATA_OFF	(__builtin_offsetof(struct scratch, exec) + sizeof(struct ev_exec))
#define FILE_DATA_OFF	(__builtin_offsetof(struct scratch, file) + sizeof(struct ev_file))
#define PATHOP_DATA_OFF (__builtin_offsetof(struct scratch, path_op) + sizeof(struct ev_path_op))

/* One for task context, one for softirq (skb programs) so they never share. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

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

/* The header of a record made in softirq context (a packet): no current task, so the
 * process is the one that owns the socket, when it is known. */
static __always_inline void fill_skb_hdr(struct ev_hdr *h, u32 kind, u64 cookie)
{
	struct sock_owner *o = bpf_map_lookup_elem(&owners, &cookie);

	__builtin_memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->ts = bpf_ktime_get_ns();
	if (o) {
		h->pid = o->pid;
		h->tid = o->tid;
		h->uid = o->uid;
	}
}

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct rw_config);
} rw_config_map SEC(".maps");

static __always_inline struct rw_config *cfg(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&rw_config_map, &zero);
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

/* The cgroups directly below a followed engine directory that are not the job's:
 * there when the job started, or found by user space not to be containers. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, ENGINE_PREEXISTING_MAX);
	__type(key, u64);
	__type(value, u8);
} engine_preexisting SEC(".maps");

/*
 * Is the cgroup whose ancestors ANC(level) names a container of the job's? One
 * below a followed engine directory and created after the job started following
 * it. Decided from ids alone, so it holds from the container's first instruction
 * (no user space in the way). ANC returns 0 above the cgroup's own depth: a
 * process in the engine directory itself is not a container.
 */
#define ENGINE_CONTAINER(c, ANC)                                                                   \
	({                                                                                         \
		bool job_ = false;                                                                 \
		for (u32 i_ = 0; i_ < ENGINE_DIRS_MAX; i_++) {                                     \
			if (i_ >= (c)->n_engines)                                                  \
				break;                                                             \
			u32 lv_ = (c)->engines[i_].level;                                          \
			u64 child_;                                                                \
			if (ANC(lv_) != (c)->engines[i_].cgid)                                     \
				continue;                                                          \
			child_ = ANC(lv_ + 1);                                                     \
			if (child_ && !bpf_map_lookup_elem(&engine_preexisting, &child_)) {        \
				job_ = true;                                                       \
				break;                                                             \
			}                                                                          \
		}                                                                                  \
		job_;                                                                              \
	})
#define CURRENT_ANC(lv) bpf_get_current_ancestor_cgroup_id(lv)

/* Global, so the verifier checks the unrolled walk once per program rather than
 * at every call site (it doubled the connect hooks' verification). */
__noinline int engine_task_container(void)
{
	struct rw_config *c = cfg();

	return c && c->n_engines && ENGINE_CONTAINER(c, CURRENT_ANC);
}

static __always_inline bool in_scope(void)
{
	struct rw_config *c;

	if (bpf_current_task_under_cgroup(&scope, 0) == 1)
		return true;
	/* Containers the job started elsewhere (only when there are any, so
	 * the rest of the machine pays one map lookup more, not sixteen). */
	c = cfg();
	if (!c)
		return false;
	if (c->n_engines && engine_task_container())
		return true;
	if (!c->extra_scopes)
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
