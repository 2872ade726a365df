/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: access to another process's memory, counted per
 * (reader, target, op, outcome) and recorded at powers of two; in enforce mode
 * a job that gains write access to a process outside it is killed.
 * Hooks: tp/syscalls/sys_enter_process_vm_readv, sys_enter_process_vm_writev,
 * sys_enter_ptrace, and tp/syscalls/sys_exit_ptrace (one program, also
 * attached to the process_vm_* exits). Opens of /proc/PID/mem and environ are
 * seen by the open exits (file.bpf.h), which call proc_memread().
 */

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

	if (SYSCALL_NR(ctx) != RW_NR_PROCESS_VM_WRITEV || ctx->ret != -1 /* EPERM */ || !in_scope())
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
