/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: opens of watched (sensitive) files, by name and by
 * identity (device, inode), so a hard link, a bind mount or a file handle is
 * caught as well as the name.
 * Opens for writing of the checkout's tracked files (identity), for the
 * source_modified finding's writers.
 * Maps: watched, watch_candidates (identity), sensitive (names), open_inflight,
 * tracked.
 * Hooks: tp/syscalls/sys_enter_openat, sys_enter_open,
 * sys_enter_open_by_handle_at, sys_enter_openat2; tp/syscalls/sys_exit_openat
 * (one program, also attached to the other open exits);
 * tp/io_uring/io_uring_complete (opens through io_uring).
 */

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

/* The checkout's tracked files by identity (filled by user space before the
 * job's first process runs). Not preallocated: most jobs track a few hundred. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRACKED_MAX);
	__type(key, struct file_key);
	__type(value, u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tracked SEC(".maps");

#ifndef O_ACCMODE
#define O_ACCMODE 00000003
#define O_TRUNC	  00001000
#endif

/* An open that can change the file's content. */
static __always_inline bool open_writes(u32 flags)
{
	return (flags & O_ACCMODE) || (flags & O_TRUNC);
}

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

#define S_IFMT	00170000
#define S_IFREG 0100000

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
		}
		/* One lookup, for opens that can write only: reads of the
		 * source tree (every compiler's) cost nothing more. */
		if (open_writes(a ? args.flags : BPF_CORE_READ(f, f_flags)) &&
		    bpf_map_lookup_elem(&tracked, &fk))
			flags |= EVF_TRACKED_WRITE;
		if (n <= 0 && !(flags & (EVF_INODE_HIT | EVF_TRACKED_WRITE)))
			return 0;
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

/*
 * Changes made by name, which no open shows: unlink, rename (either side) and
 * truncate of a tracked file. Only names whose last component is a tracked
 * file's (`tracked_names`, filled by user space with the checkout) are sent,
 * with the directory a relative name starts from, so `rm -rf` of a build
 * directory costs a lookup per name and no record. User space joins base and
 * name and keeps the record only for a tracked path (source_modified names it
 * as the file's writer).
 * Hooks: tp/syscalls/sys_enter_unlink, unlinkat, rename, renameat, renameat2,
 * truncate: one entry program, one exit program.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TRACKED_MAX);
	__type(key, char[TRACKED_NAME_BYTES]);
	__type(value, u8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} tracked_names SEC(".maps");

struct path_op_args {
	u64 name;  /* the first name: unlink's, truncate's, rename's old one */
	u64 name2; /* rename's new name, else 0 */
	s32 dfd;
	s32 dfd2;
	u16 op;
	u16 _pad[3];
};
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32); /* tid */
	__type(value, struct path_op_args);
} path_op_inflight SEC(".maps");

#define AT_FDCWD_ (-100)

/* Whether a name's last component ends like a tracked file's (events.h TRACKED_NAME_BYTES;
 * user space checks the whole path). Global: verified once per program. */
__noinline int path_op_hits(u64 uname)
{
	char key[TRACKED_NAME_BYTES] = {};
	struct scratch *s;
	int hit = 0, start;
	long n;

	if (!uname)
		return 0;
	s = scratch_get(0, EV_PATH_OP);
	if (!s)
		return 0;
	n = bpf_probe_read_user_str(s->path_op.data, PATH_BYTES, (void *)uname);
	if (n > 1 && n <= PATH_BYTES) {
		int end = n - 1; /* the NUL */

		/* back from the end to a '/' or TRACKED_NAME_BYTES - 1 bytes, whichever is first */
		start = end;
		for (int i = 1; i < TRACKED_NAME_BYTES; i++) {
			int j = end - i;

			if (j < 0 || s->path_op.data[j & (PATH_BYTES - 1)] == '/')
				break;
			start = j;
		}
		u32 len = end - start;

		len &= TRACKED_NAME_BYTES - 1; /* at most that already: the verifier's bound */
		if (len && bpf_probe_read_kernel(key, len,
						 s->path_op.data + (start & (PATH_BYTES - 1))) == 0)
			hit = bpf_map_lookup_elem(&tracked_names, key) != NULL;
	}
	scratch_put(s);
	return hit;
}

/* Only a call with a tracked file's name is remembered for its exit. */
static __always_inline int path_op_enter(u16 op, s64 dfd, u64 name, s64 dfd2, u64 name2)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct rw_config *c;
	struct path_op_args a = {.dfd = (s32)dfd, .dfd2 = (s32)dfd2, .op = op};

	if (!in_scope())
		return 0;
	c = cfg();
	if (!c || !c->names_tracked)
		return 0;
	if (path_op_hits(name))
		a.name = name;
	if (path_op_hits(name2))
		a.name2 = name2;
	if (a.name || a.name2)
		bpf_map_update_elem(&path_op_inflight, &tid, &a, BPF_ANY);
	return 0;
}

/* The syscall number says which call a shared program serves. */
#if defined(__TARGET_ARCH_x86)
#define NR_TRUNCATE 76
#define NR_RENAME   82
#elif defined(__TARGET_ARCH_arm64)
#define NR_TRUNCATE 45
#define NR_RENAME   (-1) /* arm64 has only the *at calls */
#else
#error "syscall numbers for path_op: add this architecture's"
#endif

/* Three programs, by how many arguments they read: the kernel refuses to attach a program to
 * a syscall whose record is shorter than the furthest argument it reads (EACCES), and each
 * program costs the verifier the name check again. */
SEC("tp/syscalls/sys_enter_unlink") /* and truncate */
int rw_enter_path_op1(struct trace_event_raw_sys_enter *ctx)
{
	u64 name = ctx->args[0];

	if (SYSCALL_NR(ctx) == NR_TRUNCATE)
		return path_op_enter(PATHOP_TRUNCATE, AT_FDCWD_, name, 0, 0);
	return path_op_enter(PATHOP_UNLINK, AT_FDCWD_, name, 0, 0);
}

SEC("tp/syscalls/sys_enter_unlinkat") /* and rename */
int rw_enter_path_op2(struct trace_event_raw_sys_enter *ctx)
{
	u64 a0 = ctx->args[0], a1 = ctx->args[1];

	if (SYSCALL_NR(ctx) == NR_RENAME)
		return path_op_enter(PATHOP_RENAME_FROM, AT_FDCWD_, a0, AT_FDCWD_, a1);
	return path_op_enter(PATHOP_UNLINK, a0, a1, 0, 0);
}

SEC("tp/syscalls/sys_enter_renameat2") /* and renameat: the same first four */
int rw_enter_path_op4(struct trace_event_raw_sys_enter *ctx)
{
	u64 a0 = ctx->args[0], a1 = ctx->args[1], a2 = ctx->args[2], a3 = ctx->args[3];

	return path_op_enter(PATHOP_RENAME_FROM, a0, a1, a2, a3);
}

/* One name: sent when its last component is a tracked file's. Global, so the
 * verifier checks it once however many names a call has. */
__noinline int path_op_one(u32 op, s32 dfd, u64 uname)
{
	struct scratch *s;
	struct ev_path_op *e;
	struct path p;
	u32 flags = 0, base_len = 0;
	long n;

	if (!uname)
		return 0;
	s = scratch_get(0, EV_PATH_OP);
	if (!s)
		return 0;
	e = &s->path_op;
	n = bpf_probe_read_user_str(e->data, PATH_BYTES, (void *)uname);
	if (n <= 1)
		goto out;
	if (e->data[0] != '/') {
		struct task_struct *task = (struct task_struct *)bpf_get_current_task();

		if (dfd == AT_FDCWD_) {
			BPF_CORE_READ_INTO(&p, task, fs, pwd);
		} else {
			struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
			struct file *f = NULL;

			if (dfd < 0 || (u32)dfd >= BPF_CORE_READ(task, files, fdt, max_fds))
				goto out;
			bpf_probe_read_kernel(&f, sizeof(f), fds + dfd);
			if (!f)
				goto out;
			BPF_CORE_READ_INTO(&p, f, f_path);
		}
		base_len =
		    put_path(s, PATHOP_DATA_OFF, n & (PATH_BYTES - 1), &p, &flags, EVF_PATH_TRUNC);
	}
	fill_hdr(&e->h, EV_PATH_OP);
	e->op = op;
	e->flags = flags;
	e->name_len = n;
	e->base_len = base_len;
	emit(e, clamp_size(sizeof(*e) + (n & (PATH_BYTES - 1)) + base_len), EV_PATH_OP);
out:
	scratch_put(s);
	return 0;
}

SEC("tp/syscalls/sys_exit_unlinkat")
int rw_exit_path_op(struct trace_event_raw_sys_exit *ctx)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct path_op_args *a = bpf_map_lookup_elem(&path_op_inflight, &tid);
	struct path_op_args args;

	if (!a)
		return 0;
	args = *a;
	bpf_map_delete_elem(&path_op_inflight, &tid);
	if (ctx->ret != 0)
		return 0;
	path_op_one(args.op, args.dfd, args.name);
	path_op_one(PATHOP_RENAME_TO, args.dfd2, args.name2);
	return 0;
}
