/* Loads runwarden.bpf.c (embedded skeleton) and attaches each hook (see loader.h). */
#include "kernel/loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "events.h"
#include "runwarden.skel.h"
#include "common/strbuf.h"

/* libbpf's own messages: kept, and shown only when a load fails. */
static struct strbuf libbpf_log = STRBUF_INIT;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	if (getenv("RUNWARDEN_DEBUG_BPF"))
		vfprintf(stderr, fmt, ap);
	if (libbpf_log.len > 64 * 1024)
		sb_reset(&libbpf_log);
	sb_vaddf(&libbpf_log, fmt, ap);
	return 0;
}

/* The last non-empty line of libbpf's log: usually the verifier's reason. */
static void last_log_line(char *out, size_t len)
{
	const char *s = sb_str(&libbpf_log);
	const char *end = s + strlen(s);

	while (end > s && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	const char *start = end;
	while (start > s && start[-1] != '\n')
		start--;
	snprintf(out, len, "%.*s", (int)(end - start), start);
}

static bool tracefs_ready(void)
{
	struct stat st;

	return stat("/sys/kernel/tracing/events", &st) == 0 ||
	       stat("/sys/kernel/debug/tracing/events", &st) == 0;
}

static bool tracepoint_exists(const char *cat, const char *name)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "/sys/kernel/tracing/events/%s/%s", cat, name);
	if (stat(p, &st) == 0)
		return true;
	snprintf(p, sizeof(p), "/sys/kernel/debug/tracing/events/%s/%s", cat, name);
	return stat(p, &st) == 0;
}

enum attach_kind { AT_TP, AT_RAW_TP, AT_CGROUP };

struct hook_def {
	const char *name;
	const char *covers;
	enum attach_kind kind;
	bool optional_syscall; /* absent on some architectures: absence loses nothing */
	const char *prog;      /* program section when it is not `name` (shared programs) */
};

#define OPENAT_EXIT  "tp/syscalls/sys_exit_openat"
#define MEMREAD_EXIT "tp/syscalls/sys_exit_ptrace"
#define ACCEPT_EXIT  "tp/syscalls/sys_exit_accept4"
static const struct hook_def hook_defs[] = {
    {"tp/sched/sched_process_exec", "process spawns (exec)", AT_TP, false, NULL},
    {"raw_tracepoint/sched_process_fork", "process ancestry (fork)", AT_RAW_TP, false, NULL},
    {"tp/sched/sched_process_exit", "process exits", AT_TP, false, NULL},
    {"tp/syscalls/sys_enter_openat", "sensitive file opens (openat)", AT_TP, false, NULL},
    {OPENAT_EXIT, "sensitive file opens (openat)", AT_TP, false, NULL},
    {"tp/syscalls/sys_enter_open", "sensitive file opens (open)", AT_TP, true, NULL},
    {"tp/syscalls/sys_exit_open", "sensitive file opens (open)", AT_TP, true, OPENAT_EXIT},
    {"tp/syscalls/sys_enter_openat2", "sensitive file opens (openat2)", AT_TP, false, NULL},
    {"tp/syscalls/sys_exit_openat2", "sensitive file opens (openat2)", AT_TP, false, OPENAT_EXIT},
    {"tp/io_uring/io_uring_complete", "sensitive file opens through io_uring", AT_TP, false, NULL},
    {"tp/syscalls/sys_enter_open_by_handle_at", "sensitive file opens by handle", AT_TP, false,
     NULL},
    {"tp/syscalls/sys_exit_open_by_handle_at", "sensitive file opens by handle", AT_TP, false,
     OPENAT_EXIT},
    {"tp/syscalls/sys_enter_process_vm_readv", "process memory reads (process_vm_readv)", AT_TP,
     false, NULL},
    {"tp/syscalls/sys_enter_process_vm_writev", "process memory writes (process_vm_writev)", AT_TP,
     false, NULL},
    {"tp/syscalls/sys_enter_ptrace", "process memory access (ptrace)", AT_TP, false, NULL},
    {MEMREAD_EXIT, "process memory access (ptrace)", AT_TP, false, NULL},
    {"tp/syscalls/sys_exit_process_vm_readv", "process memory reads (process_vm_readv)", AT_TP,
     false, MEMREAD_EXIT},
    {"tp/syscalls/sys_exit_process_vm_writev", "process memory writes (process_vm_writev)", AT_TP,
     false, MEMREAD_EXIT},
    {"tp/syscalls/sys_enter_connect", "connect results", AT_TP, false, NULL},
    {"tp/syscalls/sys_exit_connect", "connect results", AT_TP, false, NULL},
    {"cgroup/connect4", "IPv4 connections (connect, io_uring, TCP Fast Open)", AT_CGROUP, false,
     NULL},
    {"cgroup/connect6", "IPv6 connections (connect, io_uring, TCP Fast Open)", AT_CGROUP, false,
     NULL},
    {"cgroup/sendmsg4", "IPv4 unconnected UDP sends", AT_CGROUP, false, NULL},
    {"cgroup/sendmsg6", "IPv6 unconnected UDP sends", AT_CGROUP, false, NULL},
    {"cgroup/sock_create", "raw socket refusal (enforce)", AT_CGROUP, false, NULL},
    {"tp/syscalls/sys_enter_socket", "raw and packet socket attempts", AT_TP, false, NULL},
    {"tp/syscalls/sys_exit_socket", "raw and packet socket attempts", AT_TP, false, NULL},
    {"cgroup_skb/egress", "DNS queries on the wire; the egress backstop", AT_CGROUP, false, NULL},
    {"cgroup_skb/ingress", "DNS answers on the wire; inbound connections refused (enforce)",
     AT_CGROUP, false, NULL},
    {"raw_tracepoint/cgroup_attach_task", "job processes moved out of the job's cgroup", AT_RAW_TP,
     false, NULL},
    {"tp/syscalls/sys_exit_pidfd_getfd", "descriptors taken from other processes (pidfd_getfd)",
     AT_TP, false, NULL},
    {ACCEPT_EXIT, "inbound connections accepted (accept4)", AT_TP, false, NULL},
    {"tp/syscalls/sys_exit_accept", "inbound connections accepted (accept)", AT_TP, true,
     ACCEPT_EXIT},
};

/* RUNWARDEN_DISABLE_HOOKS="hook,hook": treat these as unavailable, to see how
 * a pipeline handles partial evidence before a kernel forces it to. */
static bool disabled_by_env(const char *name)
{
	const char *list = getenv("RUNWARDEN_DISABLE_HOOKS");
	size_t n = strlen(name);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == n && !strncmp(p, name, n))
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static struct bpf_program *find_prog(struct bpf_object *obj, const char *sec)
{
	struct bpf_program *p;

	bpf_object__for_each_program(p,
				     obj) if (!strcmp(bpf_program__section_name(p), sec)) return p;
	return NULL;
}

static void missing(struct loader *l, struct hook_status *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->reason, sizeof(h->reason), fmt, ap);
	va_end(ap);
	l->n_missing++;
}

static void populate_sensitive(struct loader *l, const struct sensitive_list *s)
{
	int fd = bpf_map__fd(l->skel->maps.sensitive);

	for (int i = 0; i < s->n; i++) {
		struct {
			uint32_t prefixlen;
			uint8_t name[64];
		} key = {0};
		uint8_t one = 1;
		size_t n = strlen(s->p[i].key);

		if (n > 63)
			n = 63;
		memcpy(key.name, s->p[i].key, n);
		/* An exact name includes its NUL, so "mem" does not match "memory". */
		key.prefixlen = (s->p[i].key_prefix ? n : n + 1) * 8;
		bpf_map_update_elem(fd, &key, &one, BPF_ANY);
	}
}

/* What the kernel side needs to tell the job's cgroup moves from others. */
static int set_fence_config(struct loader *l, const struct loader_opts *o, char *err, size_t errlen)
{
	struct fence_config f = {.scope_level = o->cgroup_level, .self_tgid = getpid()};
	uint32_t zero = 0;
	struct stat st;

	/* On cgroup2 a cgroup's id is its directory's inode number. */
	if (fstat(o->cgroup_fd, &st)) {
		snprintf(err, errlen, "cannot stat the job's cgroup: %s", strerror(errno));
		return -1;
	}
	f.scope_cgid = st.st_ino;
	if (bpf_map_update_elem(bpf_map__fd(l->skel->maps.fence_cfg), &zero, &f, BPF_ANY)) {
		snprintf(err, errlen, "cannot arm cgroup-move detection: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The map behind each enum loader_map, the policy maps from their one list. */
static struct bpf_map *map_of(const struct loader *l, int m)
{
	switch (m) {
	case LM_CONFIG:
		return l->skel->maps.rw_config_map;
#define RW_LM_CASE_(e, name, list, fam, exact)                                                     \
	case LM_##e:                                                                               \
		return l->skel->maps.name;
		RW_POLICY_MAPS(RW_LM_CASE_)
#undef RW_LM_CASE_
	case LM_INBOUND4:
		return l->skel->maps.inbound4;
	case LM_INBOUND6:
		return l->skel->maps.inbound6;
	}
	abort(); /* an enum loader_map value the list does not have */
}

int loader_start(struct loader *l, const struct loader_opts *o, char *err, size_t errlen)
{
	uint32_t slot = 0;
	int cg = o->cgroup_fd;

	memset(l, 0, sizeof(*l));
	libbpf_set_print(libbpf_print);
	if (!tracefs_ready()) {
		/* libbpf finds tracepoint ids in tracefs; mount it if nobody has. */
		if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
			l->mounted_tracefs = true;
	}

	l->skel = runwarden_bpf__open();
	if (!l->skel) {
		snprintf(err, errlen, "cannot open the embedded BPF object: %s", strerror(errno));
		return -1;
	}
	bpf_map__set_max_entries(l->skel->maps.events, o->ring_bytes);
	/* RUNWARDEN_NO_BPF_LOOP: use the bounded-loop walk, as kernels before
	 * 5.17 must (so the fallback stays tested on new kernels too). */
	l->skel->rodata->have_bpf_loop =
	    !getenv("RUNWARDEN_NO_BPF_LOOP") &&
	    libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_loop, NULL) == 1;
	l->skel->rodata->have_sock_pid =
	    libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK, BPF_FUNC_get_current_pid_tgid,
				    NULL) == 1;
	/* Room for the policy plus the DNS gate's pins. */
	for (int m = LM_CONFIG + 1; m < LM_COUNT; m++)
		bpf_map__set_max_entries(map_of(l, m), o->lpm_entries);

	for (size_t i = 0; i < sizeof(hook_defs) / sizeof(hook_defs[0]); i++) {
		const struct hook_def *d = &hook_defs[i];
		struct bpf_program *p = find_prog(l->skel->obj, d->prog ? d->prog : d->name);
		char cat[64], name[96];

		if (!p) {
			snprintf(err, errlen, "internal: no program for hook %s", d->name);
			return -1;
		}
		if (d->kind == AT_TP && sscanf(d->name, "tp/%63[^/]/%95s", cat, name) == 2 &&
		    !tracepoint_exists(cat, name)) {
			if (!d->prog) /* a shared program may still serve other hooks */
				bpf_program__set_autoload(p, false);
			if (d->optional_syscall)
				continue; /* the syscall does not exist here */
			struct hook_status *h = &l->hooks[l->n_hooks++];
			h->name = d->name;
			h->covers = d->covers;
			missing(l, h, "tracepoint %s/%s does not exist on this kernel", cat, name);
		}
	}

	if (runwarden_bpf__load(l->skel)) {
		char why[160];

		last_log_line(why, sizeof(why));
		snprintf(err, errlen, "the kernel refused runwarden's BPF programs: %s", why);
		return -1;
	}
	populate_sensitive(l, o->sensitive);
	if (set_fence_config(l, o, err, errlen))
		return -1;
	if (bpf_map_update_elem(bpf_map__fd(l->skel->maps.scope), &slot, &cg, BPF_ANY)) {
		snprintf(err, errlen, "cannot arm the job scope (cgroup array): %s",
			 strerror(errno));
		return -1;
	}

	for (size_t i = 0; i < sizeof(hook_defs) / sizeof(hook_defs[0]); i++) {
		const struct hook_def *d = &hook_defs[i];
		struct bpf_program *p = find_prog(l->skel->obj, d->prog ? d->prog : d->name);
		struct bpf_link *link;
		char cat[64], name[96];

		if (!bpf_program__autoload(p) ||
		    (d->kind == AT_TP && sscanf(d->name, "tp/%63[^/]/%95s", cat, name) == 2 &&
		     !tracepoint_exists(cat, name)))
			continue;
		struct hook_status *h = &l->hooks[l->n_hooks];
		h->name = d->name;
		h->covers = d->covers;
		if (disabled_by_env(d->name)) {
			missing(l, h, "disabled by RUNWARDEN_DISABLE_HOOKS");
			l->n_hooks++;
			continue;
		}
		if (d->kind == AT_CGROUP)
			link = bpf_program__attach_cgroup(p, cg);
		else if (d->kind == AT_TP)
			link = bpf_program__attach_tracepoint(p, cat, name);
		else
			link = bpf_program__attach(p);
		if (!link) {
			missing(l, h, "attach failed: %s", strerror(errno));
			l->n_hooks++;
			continue;
		}
		l->links[l->n_hooks++] = link;
	}
	return 0;
}

int loader_map_fd(const struct loader *l, enum loader_map m)
{
	return bpf_map__fd(map_of(l, m));
}

int loader_add_scope(struct loader *l, int cgroup_fd, char *err, size_t errlen)
{
	int cfd = loader_map_fd(l, LM_CONFIG);
	uint32_t zero = 0, slot = l->n_extra_scopes + 1;
	struct rw_config c;

	if (slot >= SCOPE_SLOTS) {
		snprintf(err, errlen, "more than %d containers in one job", SCOPE_SLOTS - 1);
		return -1;
	}
	/* Hooks first, then the tracepoints' scope: a container is never
	 * recorded without being fenced. */
	for (size_t i = 0; i < sizeof(hook_defs) / sizeof(hook_defs[0]); i++) {
		struct bpf_program *p = find_prog(l->skel->obj, hook_defs[i].name);
		struct bpf_link *link;

		if (hook_defs[i].kind != AT_CGROUP || !p || !bpf_program__autoload(p))
			continue;
		if (l->n_extra_links == (int)(sizeof(l->extra_links) / sizeof(l->extra_links[0])))
			break;
		link = bpf_program__attach_cgroup(p, cgroup_fd);
		if (!link) {
			snprintf(err, errlen, "attaching %s to a container cgroup: %s",
				 hook_defs[i].name, strerror(errno));
			return -1;
		}
		l->extra_links[l->n_extra_links++] = link;
	}
	if (bpf_map_update_elem(bpf_map__fd(l->skel->maps.scope), &slot, &cgroup_fd, BPF_ANY) ||
	    bpf_map_lookup_elem(cfd, &zero, &c)) {
		snprintf(err, errlen, "adding a container to the scope: %s", strerror(errno));
		return -1;
	}
	c.extra_scopes = slot;
	if (bpf_map_update_elem(cfd, &zero, &c, BPF_ANY)) {
		snprintf(err, errlen, "adding a container to the scope: %s", strerror(errno));
		return -1;
	}
	l->n_extra_scopes = slot;
	return 0;
}

int loader_set_runner(const struct loader *l, uint32_t tgid)
{
	int fd = loader_map_fd(l, LM_CONFIG);
	struct rw_config c;
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(fd, &zero, &c))
		return -1;
	c.runner_tgid = tgid;
	return bpf_map_update_elem(fd, &zero, &c, BPF_ANY);
}

int loader_watch_file(const struct loader *l, uint32_t kdev, uint64_t ino)
{
	struct file_key k = {.ino = ino, .dev = kdev};
	uint8_t one = 1;

	return bpf_map_update_elem(bpf_map__fd(l->skel->maps.watched), &k, &one, BPF_ANY);
}

int loader_ring_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.events);
}

void loader_read_lost(const struct loader *l, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t vals[ncpu > 0 ? ncpu : 1];
	int fd = bpf_map__fd(l->skel->maps.lost);

	for (uint32_t k = 0; k < EV_KIND_MAX; k++) {
		out[k] = 0;
		if (ncpu <= 0 || bpf_map_lookup_elem(fd, &k, vals))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[k] += vals[c];
	}
}

int loader_cgroup_link_fds(const struct loader *l, int *fds, int max)
{
	int n = 0;

	for (int i = 0; i < l->n_hooks && n < max; i++)
		if (l->links[i] && !strncmp(l->hooks[i].name, "cgroup", 6))
			fds[n++] = bpf_link__fd(l->links[i]);
	return n;
}

/* A cgroup link that was detached (BPF_LINK_DETACH: `bpftool link detach`)
 * still exists while its fd is held, but reports no cgroup any more. */
bool link_fd_detached(int fd)
{
	struct bpf_link_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return errno == EBADF; /* gone altogether */
	return info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == 0;
}

const char *loader_detached_hook(const struct loader *l)
{
	for (int i = 0; i < l->n_hooks; i++)
		if (l->links[i] && !strncmp(l->hooks[i].name, "cgroup", 6) &&
		    link_fd_detached(bpf_link__fd(l->links[i])))
			return l->hooks[i].name;
	return NULL;
}

/* Pinned names are the hook names with '/' made '_': one file per hook. */
static void pin_name(char *buf, size_t len, const char *dir, const char *name)
{
	snprintf(buf, len, "%s/", dir);
	for (size_t n = strlen(buf); *name && n + 1 < len; name++, n++) {
		buf[n] = *name == '/' ? '_' : *name;
		buf[n + 1] = 0;
	}
}

int loader_pin(struct loader *l, const char *dir, char *err, size_t errlen)
{
	char path[512];

	if (strlen(dir) >= sizeof(l->pin_dir)) {
		snprintf(err, errlen, "pin directory name too long: %s", dir);
		return -1;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	snprintf(l->pin_dir, sizeof(l->pin_dir), "%s", dir);
	for (int i = 0; i < l->n_hooks; i++) {
		/* Only the cgroup hooks: a pinned tracepoint link would keep
		 * filling a ring buffer nobody reads once this process is gone. */
		if (!l->links[i] || strncmp(l->hooks[i].name, "cgroup", 6))
			continue;
		pin_name(path, sizeof(path), dir, l->hooks[i].name);
		if (bpf_link__pin(l->links[i], path)) {
			snprintf(err, errlen, "cannot pin %s: %s", path, strerror(errno));
			goto fail;
		}
	}
	for (int m = 0; m < LM_COUNT; m++) {
		pin_name(path, sizeof(path), dir, bpf_map__name(map_of(l, m)));
		if (bpf_map__pin(map_of(l, m), path)) {
			snprintf(err, errlen, "cannot pin %s: %s", path, strerror(errno));
			goto fail;
		}
	}
	return 0;
fail:
	loader_unpin_dir(dir);
	l->pin_dir[0] = 0;
	return -1;
}

int loader_unpin_dir(const char *dir)
{
	char path[1024];
	struct dirent *de;
	DIR *d = opendir(dir);
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path))
			rc = -1;
	}
	closedir(d);
	if (rmdir(dir))
		rc = -1;
	return rc;
}

static void *destroy_link(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

/* Detaching a syscall tracepoint waits for an RCU-tasks grace period (tens of
 * ms each, partly serialised in the kernel). The job is over and the evidence
 * written by now, so a short-lived child does the detaching while this
 * process exits at once; its copies of the link fds keep the programs
 * attached (and filtering on a scope that no longer exists) until it is done. */
static void detach_links(struct loader *l)
{
	pthread_t t[MAX_HOOKS];
	bool threaded[MAX_HOOKS] = {false};

	for (int i = 0; i < l->n_hooks; i++)
		if (l->links[i])
			threaded[i] = pthread_create(&t[i], NULL, destroy_link, l->links[i]) == 0;
	for (int i = 0; i < l->n_hooks; i++) {
		if (threaded[i])
			pthread_join(t[i], NULL);
		else if (l->links[i])
			bpf_link__destroy(l->links[i]);
		l->links[i] = NULL;
	}
}

void loader_stop(struct loader *l, bool handoff)
{
	int gate[2] = {-1, -1};
	pid_t pid;

	/* Container cgroups' links: cgroup links detach quickly, no hand-off. */
	for (int i = 0; i < l->n_extra_links; i++)
		bpf_link__destroy(l->extra_links[i]);
	l->n_extra_links = 0;

	/* Unpinned first: the links' last references are the fds below. */
	if (l->pin_dir[0]) {
		loader_unpin_dir(l->pin_dir);
		l->pin_dir[0] = 0;
	}
	pid = handoff && pipe2(gate, O_CLOEXEC) == 0 ? fork() : -1;

	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		char c;

		/* Whoever drops the last reference pays for the detach: wait for
		 * the parent to be gone (EOF on the pipe) before closing ours. */
		close(gate[1]);
		for (;;) {
			ssize_t n = read(gate[0], &c, 1);

			if (n == 0 || (n < 0 && errno != EINTR))
				break;
		}

		/* Do not hold the caller's pipes open: CI waits for EOF on them. */
		if (fd >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		setsid();
		detach_links(l);
		_exit(0);
	}
	if (gate[0] >= 0)
		close(gate[0]); /* the write end stays open until this process exits */
	if (pid > 0) {
		for (int i = 0; i < l->n_hooks; i++) {
			if (!l->links[i])
				continue;
			bpf_link__disconnect(l->links[i]); /* the child detaches */
			bpf_link__destroy(l->links[i]);
			l->links[i] = NULL;
		}
	} else {
		if (gate[1] >= 0)
			close(gate[1]);
		detach_links(l);
	}
	runwarden_bpf__destroy(l->skel);
	l->skel = NULL;
	if (l->mounted_tracefs)
		umount2("/sys/kernel/tracing", MNT_DETACH);
	sb_release(&libbpf_log);
}
