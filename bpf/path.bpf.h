/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Part of runwarden.bpf.c: turning a struct path into its string, leaf first,
 * for exec (executable, cwd) and file records. Two forms of the same walk:
 * bpf_loop steps where the kernel has bpf_loop, a bounded loop otherwise.
 * No hooks.
 */

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
	u32 off;

	(void)i;
	if (!s) {
		off = 0;
		goto end;
	}
	/* The offset lives in the map value, not in ctx: to the verifier every
	 * step then starts from the same state, so the loop is checked in one
	 * pass instead of one per offset it can tell apart. */
	off = s->walk_off & (PATH_BYTES - 1);
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
	s->walk_off = (off + n) & (PATH_BYTES - 1);
	w->dentry = (u64)parent;
	return 0;
end:
	w->result = off;
	w->done = 1;
	return 1;
}

/* Global: verified once per program, not once per call site and caller state
 * (exec walks two paths: this cut its verification from 76k to 17k insns). */
__noinline int walk_any(struct scratch *s, u32 data_off, u32 base, u64 dentry, u64 mnt)
{
	if (have_bpf_loop) {
		struct walk_state w = {
		    .dentry = dentry, .vfsmnt = mnt, .base = base, .data_off = data_off};

		if (!s)
			return 0;
		s->walk_off = 0;
		bpf_loop(PATH_DEPTH, walk_step, &w, 0);
		return w.done ? (int)w.result : (int)(s->walk_off | PATH_TRUNC_BIT);
	}
	return walk_path(s, data_off, base, dentry, mnt);
}

static __always_inline u32 put_path(struct scratch *s, u32 data_off, u32 base, struct path *p,
				    u32 *flags, u32 trunc_flag)
{
	int r = walk_any(s, data_off, base, (u64)p->dentry, (u64)p->mnt);

	if (r & PATH_TRUNC_BIT)
		*flags |= trunc_flag;
	return r & (PATH_BYTES - 1);
}
