/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: the job's processes, for the user-space process
 * table (attribution of every other record) and the step environment.
 * Hooks: tp/sched/sched_process_exec, raw_tracepoint/sched_process_fork,
 * tp/sched/sched_process_exit.
 */

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
	e->flags = flags | stdio_inet_flags(task);
	e->cgid = bpf_get_current_cgroup_id();
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

	if (!in_scope()) {
		struct fence_config *f = fence();

		/* runwarden starts the job's first process inside the scope (clone3
		 * CLONE_INTO_CGROUP): there is no cgroup move to see it by, so it
		 * joins the job's processes here (the fork itself is runwarden's). */
		if (f && f->scope_cgid && (bpf_get_current_pid_tgid() >> 32) == f->self_tgid &&
		    cgroup_in_scope(BPF_CORE_READ(child, cgroups, dfl_cgrp), f))
			jobpid_add(BPF_CORE_READ(child, tgid));
		return 0;
	}
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
