/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: reaching past the job to its host. Connects to container
 * engines' unix sockets (a job that can talk to docker.sock is root on the host), mount(2)
 * and move_mount(2) calls (bind mounts of host paths), and the standard descriptors of an
 * exec (a shell whose stdin and stdout are a TCP connection is a reverse shell).
 * Hooks: tp/syscalls/sys_enter_connect (through rw_enter_connect) and sys_exit_connect,
 * tp/syscalls/sys_{enter,exit}_mount, sys_{enter,exit}_move_mount; rw_exec calls
 * stdio_inet_flags().
 */

#define AF_UNIX	  1
#define S_IFMT_	  0170000
#define S_IFSOCK_ 0140000

/* Unix connects and mounts in flight on a thread, completed with the result at exit.
 * Records live in the map value: too large for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, struct ev_unix_connect);
} unix_inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, u32);
	__type(value, struct ev_mount);
} mount_inflight SEC(".maps");

/* A zeroed value to insert before filling in place (keeps large records off the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct ev_mount);
} host_zero SEC(".maps");

/* Is descriptor fd of task an IPv4/IPv6 socket? */
static __always_inline bool fd_is_inet(struct task_struct *task, int fd)
{
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
	struct file *f = NULL;
	struct socket *sock;
	u16 family;

	if (!fds || fd >= max || bpf_probe_read_kernel(&f, sizeof(f), fds + fd) || !f)
		return false;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT_) != S_IFSOCK_)
		return false;
	sock = (struct socket *)BPF_CORE_READ(f, private_data);
	family = BPF_CORE_READ(sock, sk, __sk_common.skc_family);
	return family == AF_INET || family == AF_INET6;
}

static __always_inline u32 stdio_inet_flags(struct task_struct *task)
{
	return (fd_is_inet(task, 0) ? EVF_STDIN_INET : 0) |
	       (fd_is_inet(task, 1) ? EVF_STDOUT_INET : 0) |
	       (fd_is_inet(task, 2) ? EVF_STDERR_INET : 0);
}

/* Does the path of length n (6..UNIX_PATH_BYTES-1) end in ".sock"? */
static __always_inline bool ends_sock(const char *path, long n)
{
	char tail[5];

	if (n < 6 || n > UNIX_PATH_BYTES - 1)
		return false;
	if (bpf_probe_read_kernel(tail, sizeof(tail), path + n - 5))
		return false;
	return tail[0] == '.' && tail[1] == 's' && tail[2] == 'o' && tail[3] == 'c' &&
	       tail[4] == 'k';
}

/* connect(fd, addr, len) with a unix address whose path ends in ".sock": parked until exit.
 * Other unix connects (nscd, journald, D-Bus, on every getpwnam) are not recorded. */
static __always_inline void unix_connect_enter(struct trace_event_raw_sys_enter *ctx)
{
	const char *uaddr = (const char *)ctx->args[1];
	u32 tid = (u32)bpf_get_current_pid_tgid(), zero = 0;
	struct ev_unix_connect *e;
	u16 family = 0;
	long n;

	void *z;

	if (!uaddr || ctx->args[2] < 3 || bpf_probe_read_user(&family, sizeof(family), uaddr) ||
	    family != AF_UNIX)
		return;
	z = bpf_map_lookup_elem(&host_zero, &zero);
	if (!z || bpf_map_update_elem(&unix_inflight, &tid, z, BPF_ANY))
		return;
	e = bpf_map_lookup_elem(&unix_inflight, &tid);
	if (!e)
		return;
	n = bpf_probe_read_user_str(e->path, sizeof(e->path), uaddr + 2);
	/* abstract (leading NUL), or not "*.sock": not ours */
	if (n < 7 || n > UNIX_PATH_BYTES || e->path[0] == 0 || !ends_sock(e->path, n - 1)) {
		bpf_map_delete_elem(&unix_inflight, &tid);
		return;
	}
	e->path_len = n - 1;
	fill_hdr(&e->h, EV_UNIX_CONNECT);
}

static __always_inline void unix_connect_exit(long ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct ev_unix_connect *e = bpf_map_lookup_elem(&unix_inflight, &tid);

	if (!e)
		return;
	e->result = ret;
	emit(e, sizeof(*e), EV_UNIX_CONNECT);
	bpf_map_delete_elem(&unix_inflight, &tid);
}

static __always_inline struct ev_mount *mount_slot(void)
{
	u32 tid = (u32)bpf_get_current_pid_tgid(), zero = 0;
	struct ev_mount *z = bpf_map_lookup_elem(&host_zero, &zero);

	if (!z || bpf_map_update_elem(&mount_inflight, &tid, z, BPF_ANY))
		return NULL;
	return bpf_map_lookup_elem(&mount_inflight, &tid);
}

/* One mount record from a syscall's arguments (0: the call has no such argument). */
static __always_inline int mount_enter(u32 call, u64 flags, u64 src, u64 dst, u64 type)
{
	struct ev_mount *e;

	if (!in_scope())
		return 0;
	e = mount_slot();
	if (!e) {
		count_lost(EV_MOUNT);
		return 0;
	}
	fill_hdr(&e->h, EV_MOUNT);
	e->call = call;
	e->flags = flags;
	if (src)
		bpf_probe_read_user_str(e->source, sizeof(e->source), (void *)src);
	if (dst)
		bpf_probe_read_user_str(e->target, sizeof(e->target), (void *)dst);
	if (type)
		bpf_probe_read_user_str(e->fstype, sizeof(e->fstype), (void *)type);
	return 0;
}

/* mount(dev_name, dir_name, type, flags, data) */
SEC("tp/syscalls/sys_enter_mount")
int rw_enter_mount(struct trace_event_raw_sys_enter *ctx)
{
	return mount_enter(MOUNT_CALL_MOUNT, ctx->args[3], ctx->args[0], ctx->args[1],
			   ctx->args[2]);
}

/* move_mount(from_dfd, from_path, to_dfd, to_path, flags): the new mount API's attach step
 * (open_tree + move_mount is a bind mount). */
SEC("tp/syscalls/sys_enter_move_mount")
int rw_enter_move_mount(struct trace_event_raw_sys_enter *ctx)
{
	return mount_enter(MOUNT_CALL_MOVE, ctx->args[4], ctx->args[1], ctx->args[3], 0);
}

SEC("tp/syscalls/sys_exit_mount")
int rw_exit_mount(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct ev_mount *e = bpf_map_lookup_elem(&mount_inflight, &tid);

	if (!e)
		return 0;
	e->result = ctx->ret;
	emit(e, sizeof(*e), EV_MOUNT);
	bpf_map_delete_elem(&mount_inflight, &tid);
	return 0;
}
