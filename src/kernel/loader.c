/* Loads runwarden.bpf.c (embedded skeleton) and attaches each hook (see loader.h). */
#include "kernel/loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "common/util.h"
#include "common/xalloc.h"
#include "evidence/evlog.h"
#include "kernel/umulti.h"

/* libbpf's own messages: kept, and shown only when a load fails. */
static struct strbuf libbpf_log = STRBUF_INIT;

/* Both halves of a load (load_programs) log through here at once. */
static pthread_mutex_t libbpf_log_lock = PTHREAD_MUTEX_INITIALIZER;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	va_list again;

	if (level == LIBBPF_DEBUG)
		return 0;
	va_copy(again, ap);
	pthread_mutex_lock(&libbpf_log_lock);
	if (getenv("RUNWARDEN_DEBUG_BPF"))
		vfprintf(stderr, fmt, ap);
	if (libbpf_log.len > 64 * 1024)
		sb_reset(&libbpf_log);
	sb_vaddf(&libbpf_log, fmt, again);
	pthread_mutex_unlock(&libbpf_log_lock);
	va_end(again);
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

enum attach_kind { AT_TP, AT_RAW_TP, AT_CGROUP, AT_UPROBE, AT_URETPROBE };

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
#define MOUNT_EXIT   "tp/syscalls/sys_exit_mount"
#define PATHOP_EXIT  "tp/syscalls/sys_exit_unlinkat"
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
    {"tp/syscalls/sys_enter_mount", "mounts (mount)", AT_TP, false, NULL},
    {MOUNT_EXIT, "mounts (mount)", AT_TP, false, NULL},
    {"tp/syscalls/sys_enter_move_mount", "mounts (move_mount)", AT_TP, false, NULL},
    {"tp/syscalls/sys_enter_unlinkat", "tracked files unlinked (unlinkat)", AT_TP, false, NULL},
    {PATHOP_EXIT, "tracked files unlinked (unlinkat)", AT_TP, false, NULL},
    {"tp/syscalls/sys_enter_unlink", "tracked files unlinked (unlink)", AT_TP, true, NULL},
    {"tp/syscalls/sys_exit_unlink", "tracked files unlinked (unlink)", AT_TP, true, PATHOP_EXIT},
    {"tp/syscalls/sys_enter_rename", "tracked files renamed (rename)", AT_TP, true,
     "tp/syscalls/sys_enter_unlinkat"},
    {"tp/syscalls/sys_exit_rename", "tracked files renamed (rename)", AT_TP, true, PATHOP_EXIT},
    {"tp/syscalls/sys_enter_renameat2", "tracked files renamed (renameat2)", AT_TP, false, NULL},
    {"tp/syscalls/sys_exit_renameat2", "tracked files renamed (renameat2)", AT_TP, false,
     PATHOP_EXIT},
    {"tp/syscalls/sys_enter_renameat", "tracked files renamed (renameat)", AT_TP, true,
     "tp/syscalls/sys_enter_renameat2"},
    {"tp/syscalls/sys_exit_renameat", "tracked files renamed (renameat)", AT_TP, true, PATHOP_EXIT},
    {"tp/syscalls/sys_enter_truncate", "tracked files truncated (truncate)", AT_TP, false,
     "tp/syscalls/sys_enter_unlink"},
    {"tp/syscalls/sys_exit_truncate", "tracked files truncated (truncate)", AT_TP, false,
     PATHOP_EXIT},
    {"tp/syscalls/sys_exit_move_mount", "mounts (move_mount)", AT_TP, false, MOUNT_EXIT},
/* OpenSSL, machine-wide (tls.bpf.h): the system's libssl.so.3 (curl, Python, git, most of
 * Debian), and node, which links its own OpenSSL in and exports its functions. The name
 * after '/' or ':' is the function. A file that is not there: nothing can use it, nothing
 * is missing. */
#define SSL_HOOKS(pfx)                                                                             \
	{"uprobe/" pfx "SSL_write", "HTTP inside TLS: requests (OpenSSL SSL_write)", AT_UPROBE,    \
	 true, "uprobe/SSL_write"},                                                                \
	    {"uprobe/" pfx "SSL_write_ex", "HTTP inside TLS: requests (OpenSSL SSL_write_ex)",     \
	     AT_UPROBE, true, "uprobe/SSL_write"},                                                 \
	    {"uprobe/" pfx "SSL_read", "HTTP inside TLS: responses (OpenSSL SSL_read)", AT_UPROBE, \
	     true, "uprobe/SSL_read"},                                                             \
	    {"uprobe/" pfx "SSL_read_ex", "HTTP inside TLS: responses (OpenSSL SSL_read_ex)",      \
	     AT_UPROBE, true, "uprobe/SSL_read"},                                                  \
	    {"uretprobe/" pfx "SSL_read", "HTTP inside TLS: responses (OpenSSL SSL_read)",         \
	     AT_URETPROBE, true, "uretprobe/SSL_read"},                                            \
	    {"uretprobe/" pfx "SSL_read_ex", "HTTP inside TLS: responses (OpenSSL SSL_read_ex)",   \
	     AT_URETPROBE, true, "uretprobe/SSL_read_ex"},                                         \
	    {"uprobe/" pfx "SSL_ctrl", "HTTP inside TLS: the server name set (OpenSSL SSL_ctrl)",  \
	     AT_UPROBE, true, "uprobe/SSL_ctrl"},                                                  \
	    {"uprobe/" pfx "SSL_do_handshake", "HTTP inside TLS: handshakes (SSL_do_handshake)",   \
	     AT_UPROBE, true, "uprobe/SSL_do_handshake"},                                          \
	    {"uprobe/" pfx "SSL_connect", "HTTP inside TLS: handshakes (OpenSSL SSL_connect)",     \
	     AT_UPROBE, true, "uprobe/SSL_do_handshake"},                                          \
	    {"uretprobe/" pfx "SSL_write", "HTTP inside TLS: captured requests (SSL_write)",       \
	     AT_URETPROBE, true, "uretprobe/SSL_write"},                                           \
	    {"uretprobe/" pfx "SSL_write_ex", "HTTP inside TLS: captured requests (SSL_write_ex)", \
	     AT_URETPROBE, true, "uretprobe/SSL_write_ex"},                                        \
	{                                                                                          \
		"uprobe/" pfx "SSL_free", "HTTP inside TLS: connections ended (OpenSSL SSL_free)", \
		    AT_UPROBE, true, "uprobe/SSL_free"                                             \
	}
    SSL_HOOKS(""),
    SSL_HOOKS("node:"),
#undef SSL_HOOKS
    /* GnuTLS (gnutls.bpf.h): libgnutls.so.30, apt's https method, git over https (through
     * libcurl-gnutls), wget. */
    {"uprobe/gnutls:gnutls_record_send", "HTTP inside TLS: requests (GnuTLS gnutls_record_send)",
     AT_UPROBE, true, "uprobe/SSL_write"},
    {"uprobe/gnutls:gnutls_record_recv", "HTTP inside TLS: responses (GnuTLS gnutls_record_recv)",
     AT_UPROBE, true, "uprobe/gnutls_record_recv"},
    {"uretprobe/gnutls:gnutls_record_recv",
     "HTTP inside TLS: responses (GnuTLS gnutls_record_recv)", AT_URETPROBE, true,
     "uretprobe/gnutls_record_recv"},
    {"uprobe/gnutls:gnutls_server_name_set",
     "HTTP inside TLS: the server name set (GnuTLS gnutls_server_name_set)", AT_UPROBE, true,
     "uprobe/gnutls_server_name_set"},
    {"uprobe/gnutls:gnutls_handshake", "HTTP inside TLS: handshakes (GnuTLS gnutls_handshake)",
     AT_UPROBE, true, "uprobe/gnutls_handshake"},
    {"uprobe/gnutls:gnutls_deinit", "HTTP inside TLS: sessions ended (GnuTLS gnutls_deinit)",
     AT_UPROBE, true, "uprobe/gnutls_deinit"},
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
	case LM_NAMES_ALLOW:
		return l->skel->maps.names_allow;
	case LM_NAMES_BLOCK:
		return l->skel->maps.names_block;
	case LM_HTTP_RULES:
		return l->skel->maps.http_rules;
	case LM_TLS_WANT:
		return l->skel->maps.tls_want;
	case LM_TLS_CAPCFG:
		return l->skel->maps.tls_capcfg;
	case LM_SECRET_CFG:
		return l->skel->maps.secret_cfg_map;
	case LM_SECRET_PAIRS:
		return l->skel->maps.secret_pairs;
	case LM_SECRET_ANCHORS:
		return l->skel->maps.secret_anchors;
	case LM_SECRET_TO:
		return l->skel->maps.secret_to;
	}
	abort(); /* an enum loader_map value the list does not have */
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

/* ------------------------------------------------------------ loading a copy */

/* The loaded halves first (they hold the programs and references to the
 * skeleton's maps), then the skeleton. */
static void close_objects(struct loader *l)
{
	for (int h = 0; h < 2; h++) {
		bpf_object__close(l->halves[h]);
		l->halves[h] = NULL;
	}
	runwarden_bpf__destroy(l->skel);
	l->skel = NULL;
}

/* Resident copies size every policy map alike: a job whose policy needs more
 * loads a private copy. The maps allocate per entry, so room costs nothing. */
#define RESIDENT_LPM  (256 * 1024)
#define BUSY_RETRY_US (20 * 1000)

static const size_t n_hook_defs = sizeof(hook_defs) / sizeof(hook_defs[0]);
/* every hook has a status slot (struct loader's arrays) */
_Static_assert(sizeof(hook_defs) / sizeof(hook_defs[0]) <= MAX_HOOKS, "MAX_HOOKS too small");

static bool is_tp(const struct hook_def *d, char *cat, char *name)
{
	return d->kind == AT_TP && sscanf(d->name, "tp/%63[^/]/%95s", cat, name) == 2;
}

static void set_print(void)
{
	libbpf_set_print(libbpf_print);
}

static void mount_tracefs(struct loader *l)
{
	if (!tracefs_ready()) {
		/* libbpf finds tracepoint ids in tracefs; mount it if nobody has. */
		if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0)
			l->mounted_tracefs = true;
	}
}

/* What a copy was built and loaded with: a job borrows only a copy whose key
 * is its own (the same BPF object, load-time settings and map sizes). */
static void copy_key(struct loader *l, uint32_t ring_bytes, uint32_t lpm, char *key, size_t len)
{
	size_t sz = 0;
	const void *elf = runwarden_bpf__elf_bytes(&sz);
	char hex[EVLOG_HASH_HEX];

	sha256_hex(elf, sz, hex);
	snprintf(key, len, "%s loop=%d sockpid=%d ring=%u lpm=%u", hex,
		 l->skel->rodata->have_bpf_loop, l->skel->rodata->have_sock_pid, ring_bytes, lpm);
}

/*
 * RUNWARDEN_VERIFIER_STATS=1: each program's verification time and the
 * instructions the verifier walked, on stderr after a load. Loading (cold
 * start) is almost all verification; this says which program it goes to.
 */
#define STATS_BUF 4096
static char *verifier_bufs[2];

static void verifier_stats_ask(struct bpf_object *obj, int h)
{
	struct bpf_program *p;
	size_t n = 0;

	if (!getenv("RUNWARDEN_VERIFIER_STATS"))
		return;
	bpf_object__for_each_program(p, obj) n++;
	free(verifier_bufs[h]);
	verifier_bufs[h] = xcalloc(n ? n : 1, STATS_BUF);
	n = 0;
	bpf_object__for_each_program(p, obj)
	{
		bpf_program__set_log_level(p, 4); /* BPF_LOG_STATS */
		bpf_program__set_log_buf(p, verifier_bufs[h] + n++ * STATS_BUF, STATS_BUF);
	}
}

static void verifier_stats_print(struct bpf_object *obj, int h)
{
	struct bpf_program *p;

	if (!verifier_bufs[h])
		return;
	bpf_object__for_each_program(p, obj)
	{
		size_t len;
		const char *log = bpf_program__log_buf(p, &len);
		const char *t = log ? strstr(log, "verification time ") : NULL;
		const char *q = log ? strstr(log, "processed ") : NULL;

		if (t && q)
			fprintf(stderr, "verifier: %-22s %8ld us %8ld insns\n",
				bpf_program__name(p), strtol(t + 18, NULL, 10),
				strtol(q + 10, NULL, 10));
	}
	free(verifier_bufs[h]);
	verifier_bufs[h] = NULL;
}

/* Opens the embedded object and fixes what is decided before loading. */
static int open_object(struct loader *l, uint32_t ring_bytes, uint32_t lpm, char *err,
		       size_t errlen)
{
	l->skel = runwarden_bpf__open();
	if (!l->skel) {
		snprintf(err, errlen, "cannot open the embedded BPF object: %s", strerror(errno));
		return -1;
	}
	bpf_map__set_max_entries(l->skel->maps.events, ring_bytes);
	/* RUNWARDEN_NO_BPF_LOOP: use the bounded-loop walk, as kernels before
	 * 5.17 must (so the fallback stays tested on new kernels too). */
	l->skel->rodata->have_bpf_loop =
	    !getenv("RUNWARDEN_NO_BPF_LOOP") &&
	    libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_loop, NULL) == 1;
	l->skel->rodata->have_attach_cookie =
	    libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_get_attach_cookie, NULL) == 1;
	l->skel->rodata->have_sock_pid =
	    libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK, BPF_FUNC_get_current_pid_tgid,
				    NULL) == 1;
	/* Room for the policy plus the DNS gate's pins. */
	for (int m = LM_CONFIG + 1; m < LM_COUNT; m++)
		bpf_map__set_max_entries(map_of(l, m), lpm);
	return 0;
}

static struct hook_status *new_status(struct loader *l, const struct hook_def *d)
{
	struct hook_status *h = &l->hooks[l->n_hooks];

	h->name = d->name;
	h->covers = d->covers;
	h->reason[0] = 0;
	l->tp_links[l->n_hooks] = NULL;
	l->um_links[l->n_hooks] = -1;
	l->cg_links[l->n_hooks] = -1;
	l->cg_progs[l->n_hooks] = -1;
	return h;
}

/* A tracepoint attached through a BPF link (5.15+), which can be pinned: the
 * link holds the perf event, so nothing else needs to stay open. */
static int tp_link_fd(int prog_fd, const char *cat, const char *name)
{
	char path[256], buf[32];
	struct perf_event_attr a;
	int pfd, lfd;
	ssize_t n;

	snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s/%s/id", cat, name);
	n = read_text_bounded(path, buf, sizeof(buf));
	if (n <= 0) {
		snprintf(path, sizeof(path), "/sys/kernel/debug/tracing/events/%s/%s/id", cat,
			 name);
		n = read_text_bounded(path, buf, sizeof(buf));
	}
	if (n <= 0)
		return -1;
	memset(&a, 0, sizeof(a));
	a.type = PERF_TYPE_TRACEPOINT;
	a.size = sizeof(a);
	a.config = strtoull(buf, NULL, 10);
	a.sample_period = 1;
	a.wakeup_events = 1;
	pfd = (int)syscall(SYS_perf_event_open, &a, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0)
		return -1;
	lfd = bpf_link_create(prog_fd, pfd, BPF_PERF_EVENT, NULL);
	close(pfd);
	return lfd;
}

/*
 * Loading is verification (in the kernel, one program after another) and CO-RE
 * relocation against the kernel's BTF (in libbpf, per object): most of a cold
 * start, and serial in one object. So the skeleton's object creates the maps
 * only, and the programs are loaded by two more objects opened from the same
 * bytes, one per thread, each with half the programs and the skeleton's maps:
 * on two CPUs it takes a little over half the time. The halves: tracepoints,
 * and the cgroup programs (roughly equal verification work).
 */
struct half {
	struct bpf_object *obj;
	int rc;
};

static bool in_half(const struct bpf_program *p, int h)
{
	return (strncmp(bpf_program__section_name(p), "cgroup", 6) == 0) == (h == 1);
}

static void *load_half(void *arg)
{
	struct half *h = arg;

	h->rc = bpf_object__load(h->obj);
	return NULL;
}

/* The same program (by name) in the half that loaded it. */
static struct bpf_program *loaded_prog(const struct loader *l, const struct bpf_program *p)
{
	for (int h = 0; h < 2; h++) {
		struct bpf_program *q;

		if (l->halves[h] &&
		    (q = bpf_object__find_program_by_name(l->halves[h], bpf_program__name(p))) &&
		    bpf_program__autoload(q))
			return q;
	}
	return (struct bpf_program *)p;
}

static int prog_fd(const struct loader *l, const struct bpf_program *p)
{
	return bpf_program__fd(loaded_prog(l, p));
}

static bool is_uprobe_prog(const struct bpf_program *p)
{
	const char *sec = bpf_program__section_name(p);

	return !strncmp(sec, "uprobe", 6) || !strncmp(sec, "uretprobe", 9);
}

static int open_half(struct loader *l, int h, const bool *want, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "runwarden_bpf");
	size_t sz = 0, ro_sz = 0;
	const void *elf = runwarden_bpf__elf_bytes(&sz);
	const void *ro = bpf_map__initial_value(l->skel->maps.rodata, &ro_sz);
	struct bpf_object *obj = bpf_object__open_mem(elf, sz, &opts);
	struct bpf_program *p;
	struct bpf_map *m;
	int i = 0;

	l->halves[h] = obj;
	if (!obj) {
		snprintf(err, errlen, "cannot open the embedded BPF object: %s", strerror(errno));
		return -1;
	}
	bpf_object__for_each_map(m, obj)
	{
		struct bpf_map *mine = bpf_object__find_map_by_name(l->skel->obj, bpf_map__name(m));

		if (!mine) {
			snprintf(err, errlen, "internal: no map %s", bpf_map__name(m));
			return -1;
		}
		if (mine == l->skel->maps.rodata) {
			if (bpf_map__set_initial_value(m, ro, ro_sz))
				goto fail;
		} else if (!bpf_map__is_internal(m) && bpf_map__reuse_fd(m, bpf_map__fd(mine))) {
			goto fail;
		}
	}
	bpf_object__for_each_program(p, obj)
	{
		bpf_program__set_autoload(p, want[i++] && in_half(p, h));
		if (is_uprobe_prog(p) && umulti_supported() && umulti_prepare(p))
			goto fail;
	}
	verifier_stats_ask(obj, h);
	return 0;
fail:
	snprintf(err, errlen, "preparing the BPF object: %s", strerror(errno));
	return -1;
}

static int load_programs(struct loader *l, char *err, size_t errlen)
{
	bool want[64] = {false};
	struct bpf_program *p;
	struct half half[2];
	pthread_t t;
	bool threaded;
	int n = 0;

	bpf_object__for_each_program(p, l->skel->obj)
	{
		if (n == 64) {
			snprintf(err, errlen, "internal: more than 64 programs");
			return -1;
		}
		want[n++] = bpf_program__autoload(p);
		bpf_program__set_autoload(p, false); /* the maps only */
	}
	if (runwarden_bpf__load(l->skel))
		goto refused;
	for (int h = 0; h < 2; h++) {
		if (open_half(l, h, want, err, errlen))
			return -1;
		half[h].obj = l->halves[h];
		half[h].rc = 0;
	}
	threaded = pthread_create(&t, NULL, load_half, &half[0]) == 0;
	if (!threaded)
		load_half(&half[0]);
	load_half(&half[1]);
	if (threaded)
		pthread_join(t, NULL);
	if (half[0].rc || half[1].rc)
		goto refused;
	return 0;
refused:;
	char why[160];

	last_log_line(why, sizeof(why));
	snprintf(err, errlen, "the kernel refused runwarden's BPF programs: %s", why);
	return -1;
}

/* The first of a library's usual places that exists, resolved (uprobes are on the file, its
 * inode, so every name of it is covered by the one found); NULL when none does. `found` keeps
 * the answer: the places are looked at once per process. */
#if defined(__x86_64__)
#define LIBDIRS "/usr/lib/x86_64-linux-gnu/", "/lib/x86_64-linux-gnu/",
#elif defined(__aarch64__)
#define LIBDIRS "/usr/lib/aarch64-linux-gnu/", "/lib/aarch64-linux-gnu/",
#else
#define LIBDIRS
#endif
struct lib_place {
	const char *soname;   /* in the library directories; NULL: `paths` are whole paths */
	const char *paths[3]; /* whole paths, when not a library */
	char found[PATH_MAX];
	bool looked;
};

static const char *lib_find(struct lib_place *l)
{
	static const char *const dirs[] = {LIBDIRS "/usr/lib64/", "/usr/lib/", "/lib64/"};
	char p[PATH_MAX];

	if (l->looked)
		return l->found[0] ? l->found : NULL;
	l->looked = true;
	l->found[0] = 0;
	if (!l->soname) {
		for (size_t i = 0; i < sizeof(l->paths) / sizeof(l->paths[0]) && l->paths[i]; i++)
			if (realpath(l->paths[i], l->found))
				return l->found;
		l->found[0] = 0;
		return NULL;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", dirs[i], l->soname);
		if (realpath(p, l->found))
			return l->found;
	}
	l->found[0] = 0;
	return NULL;
}
#undef LIBDIRS

/* Where a uprobe hook's function is: "uprobe/SSL_write" in the system's libssl.so.3 (curl,
 * Python, most of Debian), "uprobe/node:SSL_write" in node (its own OpenSSL, exported),
 * "uprobe/gnutls:gnutls_record_send" in libgnutls.so.30. */
static const char *uprobe_file(const struct hook_def *d)
{
	static struct lib_place libssl = {.soname = "libssl.so.3"};
	static struct lib_place gnutls = {.soname = "libgnutls.so.30"};
	static struct lib_place node = {.paths = {"/usr/bin/node", "/usr/local/bin/node"}};

	if (strstr(d->name, "/node:"))
		return lib_find(&node);
	if (strstr(d->name, "/gnutls:"))
		return lib_find(&gnutls);
	return lib_find(&libssl);
}

static bool is_uprobe(const struct hook_def *d)
{
	return d->kind == AT_UPROBE || d->kind == AT_URETPROBE;
}

static const char *uprobe_func(const struct hook_def *d)
{
	return strrchr(d->name, ':') ? strrchr(d->name, ':') + 1 : strchr(d->name, '/') + 1;
}

/* The attach cookie of a hook on the shared TLS write program (events.h TLSW_*): which
 * library, and whether the size is a size_t (every write function but SSL_write). */
static uint64_t hook_cookie(const struct hook_def *d)
{
	if (!d->prog || strcmp(d->prog, "uprobe/SSL_write"))
		return 0;
	return (strstr(d->name, "/gnutls:") ? TLSL_GNUTLS : TLSL_OPENSSL) |
	       (strcmp(uprobe_func(d), "SSL_write") ? TLSW_SIZE_T : 0);
}

/* A uprobe hook on its library (libbpf finds the function in its symbols). */
static struct bpf_link *attach_uprobe(struct bpf_program *p, const struct hook_def *d)
{
	LIBBPF_OPTS(bpf_uprobe_opts, o, .func_name = uprobe_func(d),
		    .retprobe = d->kind == AT_URETPROBE, .bpf_cookie = hook_cookie(d));

	return bpf_program__attach_uprobe_opts(p, -1, uprobe_file(d), 0, &o);
}

/* The same as a uprobe_multi link (umulti.h): its fd, or -1 with the reason in h. */
static int attach_umulti(struct loader *l, struct bpf_program *p, const struct hook_def *d,
			 struct hook_status *h)
{
	char why[200];
	uint64_t off;
	int fd;

	if (umulti_func_offset(uprobe_file(d), uprobe_func(d), &off, why, sizeof(why))) {
		missing(l, h, "attach failed: %s", why);
		return -1;
	}
	fd = umulti_attach(bpf_program__fd(p), uprobe_file(d), off, hook_cookie(d),
			   d->kind == AT_URETPROBE);
	if (fd < 0)
		missing(l, h, "attach failed: %s", strerror(errno));
	return fd;
}

static bool ignored_hook(const struct loader *l, const struct hook_def *d,
			 const struct bpf_program *p)
{
	char cat[64], name[96];

	/* A probe that needs its cookie to say it is not OpenSSL's (GnuTLS's write) is left off
	 * before 5.15: its connections are then marked content_seen:false, not misread. */
	if ((hook_cookie(d) & TLSW_LIB) && !l->skel->rodata->have_attach_cookie)
		return true;
	return !bpf_program__autoload(loaded_prog(l, p)) ||
	       (is_tp(d, cat, name) && !tracepoint_exists(cat, name)) ||
	       (is_uprobe(d) && !uprobe_file(d));
}

/* Loads the object and attaches every hook that is not per job (tracepoints).
 * slot_dir: pin programs, maps and links there (a resident copy; the links are
 * then fds only long enough to pin them); NULL: a private copy. */
static int load_copy(struct loader *l, const char *slot_dir, char *err, size_t errlen)
{
	struct bpf_map *m;
	struct bpf_program *p;

	for (size_t i = 0; i < n_hook_defs; i++) {
		const struct hook_def *d = &hook_defs[i];
		char cat[64], name[96];

		p = find_prog(l->skel->obj, d->prog ? d->prog : d->name);
		if (!p) {
			snprintf(err, errlen, "internal: no program for hook %s", d->name);
			return -1;
		}
		if (is_tp(d, cat, name) && !tracepoint_exists(cat, name)) {
			if (!d->prog) /* a shared program may still serve other hooks */
				bpf_program__set_autoload(p, false);
			if (d->optional_syscall)
				continue; /* the syscall does not exist here */
			missing(l, new_status(l, d),
				"tracepoint %s/%s does not exist on this kernel", cat, name);
			l->n_hooks++;
		}
	}
	int64_t t_load = now_mono_ns();
	if (load_programs(l, err, errlen))
		return -1;
	l->loaded_here = true;
	t_load = now_mono_ns() - t_load;
	verifier_stats_print(l->halves[0], 0);
	verifier_stats_print(l->halves[1], 1);
	int64_t t_attach = now_mono_ns();
	if (slot_dir) {
		bpf_object__for_each_map(m, l->skel->obj)
		{
			char name[128];

			if (bpf_map__is_internal(m))
				continue;
			snprintf(name, sizeof(name), "map_%s", bpf_map__name(m));
			if (pool_pin_fd(bpf_map__fd(m), slot_dir, name, err, errlen))
				return -1;
		}
		for (int h = 0; h < 2; h++)
			bpf_object__for_each_program(p, l->halves[h])
			{
				char name[128];

				if (!bpf_program__autoload(p))
					continue;
				snprintf(name, sizeof(name), "prog_%s", bpf_program__name(p));
				if (pool_pin_fd(bpf_program__fd(p), slot_dir, name, err, errlen))
					return -1;
			}
	}
	for (size_t i = 0; i < n_hook_defs; i++) {
		const struct hook_def *d = &hook_defs[i];
		struct hook_status *h;
		char cat[64], name[96], pin[160];
		int fd;

		p = find_prog(l->skel->obj, d->prog ? d->prog : d->name);
		if (d->kind == AT_CGROUP || ignored_hook(l, d, p))
			continue;
		h = new_status(l, d);
		l->n_hooks++;
		if (disabled_by_env(d->name)) {
			missing(l, h, "disabled by RUNWARDEN_DISABLE_HOOKS");
			continue;
		}
		if (is_uprobe(d) && umulti_supported()) {
			fd = attach_umulti(l, loaded_prog(l, p), d, h);
			if (fd < 0)
				continue;
			if (!slot_dir) {
				l->um_links[l->n_hooks - 1] = fd;
				continue;
			}
			pin_name(pin, sizeof(pin), "link", d->name);
			pin[4] = '_';
			/* the pin holds the probe now: this process lets go of it */
			fd = pool_pin_fd(fd, slot_dir, pin, err, errlen) ? (close(fd), -2)
									 : (close(fd), 0);
			if (fd == -2)
				return -1;
			continue;
		}
		if (is_uprobe(d)) {
			struct bpf_link *link = attach_uprobe(loaded_prog(l, p), d);

			if (!link) {
				missing(l, h, "attach failed: %s", strerror(errno));
				continue;
			}
			if (!slot_dir) {
				l->tp_links[l->n_hooks - 1] = link;
				continue;
			}
			pin_name(pin, sizeof(pin), "link", d->name);
			pin[4] = '_';
			fd = pool_pin_fd(bpf_link__fd(link), slot_dir, pin, err, errlen);
			/* the pin holds the probe now: this process lets go of it */
			bpf_link__disconnect(link);
			bpf_link__destroy(link);
			if (fd)
				return -1;
			continue;
		}
		if (!slot_dir) {
			if (d->kind == AT_TP) {
				is_tp(d, cat, name);
				l->tp_links[l->n_hooks - 1] =
				    bpf_program__attach_tracepoint(loaded_prog(l, p), cat, name);
			} else {
				l->tp_links[l->n_hooks - 1] =
				    bpf_program__attach(loaded_prog(l, p));
			}
			if (!l->tp_links[l->n_hooks - 1])
				missing(l, h, "attach failed: %s", strerror(errno));
			continue;
		}
		if (d->kind == AT_TP) {
			is_tp(d, cat, name);
			fd = tp_link_fd(prog_fd(l, p), cat, name);
		} else {
			fd = bpf_raw_tracepoint_open(strchr(d->name, '/') + 1, prog_fd(l, p));
		}
		if (fd < 0) {
			missing(l, h, "attach failed: %s", strerror(errno));
			continue;
		}
		pin_name(pin, sizeof(pin), "link", d->name);
		pin[4] = '_';
		fd = pool_pin_fd(fd, slot_dir, pin, err, errlen) ? (close(fd), -2) : (close(fd), 0);
		if (fd == -2)
			return -1;
	}
	if (getenv("RUNWARDEN_VERIFIER_STATS"))
		fprintf(
		    stderr,
		    "load: %.1f ms loading (verifier included), %.1f ms pinning and attaching\n",
		    t_load / 1e6, (now_mono_ns() - t_attach) / 1e6);
	return 0;
}

/* The hooks a resident copy attached, as its metadata records them. */
static char *meta_json(const struct loader *l, const char *key)
{
	json_t *o = json_object(), *hooks = json_array();
	char *s;

	for (int i = 0; i < l->n_hooks; i++) {
		json_t *h = json_object();

		json_object_set_new(h, "name", json_string(l->hooks[i].name));
		json_object_set_new(h, "reason", json_string(l->hooks[i].reason));
		json_array_append_new(hooks, h);
	}
	json_object_set_new(o, "key", json_string(key));
	json_object_set_new(o, "version", json_string(RW_VERSION));
	json_object_set_new(o, "hooks", hooks);
	json_object_set_new(o, "loaded_ns", json_integer(now_real_ns()));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

static const struct hook_def *hook_def_named(const char *name)
{
	for (size_t i = 0; i < n_hook_defs; i++)
		if (!strcmp(hook_defs[i].name, name))
			return &hook_defs[i];
	return NULL;
}

/* Borrows the copy loaded in l->slot: its maps behind the opened object's, its
 * hook statuses from the metadata. 1: not a copy for this job (key, or it is
 * incomplete); 0: borrowed; -1: error. */
static int borrow_copy(struct loader *l, const char *key, char *err, size_t errlen)
{
	char *text = pool_read_meta(&l->slot);
	json_t *meta = text ? json_loads(text, 0, NULL) : NULL;
	json_t *h;
	struct bpf_map *m;
	size_t i;
	int rc = 1;

	free(text);
	if (!meta || !pool_loaded(&l->slot) ||
	    strcmp(json_string_value(json_object_get(meta, "key")) ?: "", key))
		goto out;
	json_array_foreach(json_object_get(meta, "hooks"), i, h)
	{
		const struct hook_def *d =
		    hook_def_named(json_string_value(json_object_get(h, "name")) ?: "");
		const char *reason = json_string_value(json_object_get(h, "reason")) ?: "";

		if (!d || l->n_hooks >= MAX_HOOKS)
			goto out;
		new_status(l, d);
		if (reason[0])
			missing(l, &l->hooks[l->n_hooks], "%s", reason);
		l->n_hooks++;
	}
	/* Every pin first: a copy half unloaded (the holder at work) is not used,
	 * and the object must not keep some of its maps. */
	int fds[64], n = 0;
	bpf_object__for_each_map(m, l->skel->obj)
	{
		char name[128];

		if (bpf_map__is_internal(m))
			continue;
		snprintf(name, sizeof(name), "map_%s", bpf_map__name(m));
		if (n == 64 || (fds[n] = pool_get_fd(l->slot.bpf_dir, name)) < 0)
			break;
		n++;
	}
	int want = 0;
	bpf_object__for_each_map(m, l->skel->obj) want += !bpf_map__is_internal(m);
	if (n == want) {
		int k = 0;

		rc = 0;
		bpf_object__for_each_map(m, l->skel->obj)
		{
			if (bpf_map__is_internal(m))
				continue;
			if (!rc && bpf_map__reuse_fd(m, fds[k])) {
				snprintf(err, errlen, "resident copy: %s: %s", bpf_map__name(m),
					 strerror(errno));
				rc = -1;
			}
			k++;
		}
	}
	for (int k = 0; k < n; k++)
		close(fds[k]);
	if (n != want)
		goto out;
out:
	json_decref(meta);
	if (rc)
		l->n_hooks = l->n_missing = 0;
	return rc;
}

/* ------------------------------------------------------ a borrowed copy, reset */

static int discard_record(void *ctx, void *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return 0;
}

/*
 * Hash maps in batches: one system call per 1,024 entries instead of two per
 * entry (a job with 20,000 connects leaves that many sockets' owners behind,
 * which took the next job 300 ms to clear one by one). 0, or -1 when the
 * kernel has no batch operations for this map (the caller goes key by key).
 */
#define BATCH 1024
static int clear_batched(struct bpf_map *m)
{
	int fd = bpf_map__fd(m);
	uint32_t ksz = bpf_map__key_size(m), vsz = bpf_map__value_size(m);
	void *keys = xcalloc(BATCH, ksz), *vals = xcalloc(BATCH, vsz);
	uint64_t in = 0, out = 0;
	int rc = 0;

	/* Bounded: an empty map ends it (ENOENT); nothing adds entries meanwhile
	 * (the scope is cleared first), but a loop here must never hang a job. */
	for (uint32_t n = 0; n <= bpf_map__max_entries(m) / BATCH + 2; n++) {
		__u32 count = BATCH;
		int err = bpf_map_lookup_and_delete_batch(fd, in ? &in : NULL, &out, keys, vals,
							  &count, NULL);

		if (err && errno != ENOENT) {
			rc = -1; /* no batch operations, or a bucket over BATCH (ENOSPC) */
			break;
		}
		if (err) /* ENOENT: that was the last batch */
			break;
		in = out;
	}
	free(keys);
	free(vals);
	return rc;
}

/* Empties one map of whatever the previous job left. */
static int clear_map(struct bpf_map *m)
{
	int fd = bpf_map__fd(m), ncpu = libbpf_num_possible_cpus();
	uint32_t ksz = bpf_map__key_size(m), vsz = bpf_map__value_size(m);
	enum bpf_map_type t = bpf_map__type(m);
	char key[512], next[512]; /* the name tries have 260-byte keys */
	int rc = 0;

	if (t == BPF_MAP_TYPE_RINGBUF) {
		struct ring_buffer *rb = ring_buffer__new(fd, discard_record, NULL, NULL);

		if (!rb)
			return -1;
		rc = ring_buffer__consume(rb) < 0 ? -1 : 0;
		ring_buffer__free(rb);
		return rc;
	}
	if (t == BPF_MAP_TYPE_ARRAY || t == BPF_MAP_TYPE_PERCPU_ARRAY) {
		size_t n = t == BPF_MAP_TYPE_ARRAY ? vsz : ((vsz + 7) & ~7u) * (size_t)ncpu;
		void *zero = calloc(1, n);

		if (!zero)
			return -1;
		for (uint32_t k = 0; k < bpf_map__max_entries(m) && !rc; k++)
			rc = bpf_map_update_elem(fd, &k, zero, BPF_ANY);
		free(zero);
		return rc;
	}
	if (t == BPF_MAP_TYPE_CGROUP_ARRAY) {
		for (uint32_t k = 0; k < bpf_map__max_entries(m); k++)
			bpf_map_delete_elem(fd, &k);
		return 0;
	}
	if (ksz > sizeof(key))
		return -1;
	if ((t == BPF_MAP_TYPE_HASH || t == BPF_MAP_TYPE_LRU_HASH) && !clear_batched(m))
		return 0;
	/* Tries (and kernels without batch operations): delete from the first key on; a key deleted
	 * under us (LRU eviction) just moves us on. Bounded by the map's size. */
	for (uint32_t n = 0; n <= bpf_map__max_entries(m) && !bpf_map_get_next_key(fd, NULL, next);
	     n++) {
		memcpy(key, next, ksz);
		if (bpf_map_delete_elem(fd, key) && errno != ENOENT)
			return -1;
	}
	return 0;
}

/* A borrowed copy holds what its last job left (a job that died leaves it all):
 * the scope first, so nothing more is recorded, then every other map. */
static int reset_copy(struct loader *l, char *err, size_t errlen)
{
	struct bpf_map *m;

	if (clear_map(l->skel->maps.scope) || clear_map(l->skel->maps.rw_config_map)) {
		snprintf(err, errlen, "resetting the resident copy: %s", strerror(errno));
		return -1;
	}
	bpf_object__for_each_map(m, l->skel->obj)
	{
		if (bpf_map__is_internal(m) || m == l->skel->maps.scope)
			continue;
		if (clear_map(m)) {
			snprintf(err, errlen, "resetting the resident copy's %s: %s",
				 bpf_map__name(m), strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------- getting one */

static int start_private(struct loader *l, const struct loader_opts *o, char *err, size_t errlen)
{
	if (open_object(l, o->ring_bytes, o->lpm_entries, err, errlen))
		return -1;
	return load_copy(l, NULL, err, errlen);
}

/* What start_resident learnt of one slot. */
enum slot_try { SLOT_BORROWED, SLOT_NOT_OURS, SLOT_BUSY, SLOT_ERROR };

/* Tries slot id: borrows it (l->slot set) when it holds our copy and is free;
 * otherwise keeps it locked in *empty or *foreign when it could be loaded into. */
static enum slot_try try_slot(struct loader *l, int id, const char *key, struct pool_slot *empty,
			      struct pool_slot *foreign, char *err, size_t errlen)
{
	struct pool_slot s;
	int rc;

	if (pool_lock(id, &s, err, errlen))
		return SLOT_BUSY;
	if (!pool_loaded(&s)) {
		if (empty->id < 0)
			*empty = s; /* kept locked: ours to load into if need be */
		else
			close(s.lock_fd);
		return SLOT_NOT_OURS;
	}
	l->slot = s;
	rc = borrow_copy(l, key, err, errlen);
	if (rc == 0)
		return SLOT_BORROWED;
	l->slot.id = -1;
	l->slot.lock_fd = -1;
	if (rc == 1 && foreign->id < 0 && pool_idle_seconds(id) >= POOL_EVICT_IDLE)
		*foreign = s; /* another build's copy, idle: ours to replace if need be */
	else
		close(s.lock_fd);
	return rc < 0 ? SLOT_ERROR : SLOT_NOT_OURS;
}

/*
 * A resident copy for this job: a free slot holding a copy with our key, or a
 * new copy loaded into an empty slot (and left there, the holder unloading it
 * when idle). 1 when there is neither (every slot busy or holding another
 * build's copy, or the kernel cannot pin): the caller loads a private copy.
 */
static int start_resident(struct loader *l, const struct loader_opts *o, char *err, size_t errlen)
{
	struct pool_slot empty = {.id = -1, .lock_fd = -1}, foreign = {.id = -1, .lock_fd = -1};
	char key[160], *meta;
	bool busy[POOL_SLOTS] = {0}, any_busy = false;
	enum slot_try t = SLOT_NOT_OURS;
	int rc;

	if (pool_prepare(err, errlen) || open_object(l, o->ring_bytes, RESIDENT_LPM, err, errlen))
		return 1;
	copy_key(l, o->ring_bytes, RESIDENT_LPM, key, sizeof(key));
	for (int id = 0; id < POOL_SLOTS && t != SLOT_BORROWED && t != SLOT_ERROR; id++) {
		t = try_slot(l, id, key, &empty, &foreign, err, errlen);
		any_busy |= busy[id] = t == SLOT_BUSY;
	}
	if (t != SLOT_BORROWED && t != SLOT_ERROR && any_busy) {
		/* A slot is also locked for a moment by the holder's idle check and
		 * `kernel status`: look once more before paying for a load. */
		usleep(BUSY_RETRY_US);
		for (int id = 0; id < POOL_SLOTS && t != SLOT_BORROWED && t != SLOT_ERROR; id++)
			if (busy[id])
				t = try_slot(l, id, key, &empty, &foreign, err, errlen);
	}
	if (t == SLOT_BORROWED || t == SLOT_ERROR) {
		if (empty.lock_fd >= 0)
			close(empty.lock_fd);
		if (foreign.lock_fd >= 0)
			close(foreign.lock_fd);
		return t == SLOT_BORROWED ? reset_copy(l, err, errlen) : -1;
	}
	if (empty.id < 0 && foreign.id >= 0) {
		/* Every slot taken, one by another build (an upgrade on a long-lived
		 * runner): replace it rather than load a private copy every time. */
		pool_evict(&foreign);
		empty = foreign;
	} else if (foreign.lock_fd >= 0) {
		close(foreign.lock_fd);
	}
	if (empty.id < 0)
		return 1;
	l->slot = empty;
	pool_unpin(&l->slot); /* whatever a load that died half-way left */
	if (mkdir(l->slot.bpf_dir, 0700) && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", l->slot.bpf_dir, strerror(errno));
		return -1;
	}
	if (load_copy(l, l->slot.bpf_dir, err, errlen))
		goto fail;
	meta = meta_json(l, key);
	rc = meta ? pool_write_meta(&l->slot, meta, err, errlen) : -1;
	free(meta);
	if (rc)
		goto fail;
	pool_spawn_holder(o->idle_s ? o->idle_s : POOL_IDLE_DEFAULT);
	return 0;
fail:
	pool_unpin(&l->slot);
	return -1;
}

/* The cgroup program behind hook d: this process's, or the resident copy's pin. */
static int cgroup_prog_fd(const struct loader *l, struct bpf_program *p)
{
	char name[128];

	if (l->loaded_here)
		return dup(prog_fd(l, p));
	snprintf(name, sizeof(name), "prog_%s", bpf_program__name(p));
	return pool_get_fd(l->slot.bpf_dir, name);
}

/* Attaches the cgroup hooks to the job's cgroup (they are per job: their
 * links are the fence the keeper holds). */
static void attach_cgroup_hooks(struct loader *l, int cg)
{
	for (size_t i = 0; i < n_hook_defs; i++) {
		const struct hook_def *d = &hook_defs[i];
		struct bpf_program *p = find_prog(l->skel->obj, d->name);
		struct hook_status *h;
		int k;

		if (d->kind != AT_CGROUP || !p || l->n_hooks >= MAX_HOOKS)
			continue;
		h = new_status(l, d);
		k = l->n_hooks++;
		if (disabled_by_env(d->name)) {
			missing(l, h, "disabled by RUNWARDEN_DISABLE_HOOKS");
			continue;
		}
		l->cg_progs[k] = cgroup_prog_fd(l, p);
		if (l->cg_progs[k] < 0) {
			missing(l, h, "program not loaded: %s", strerror(errno));
			continue;
		}
		l->cg_links[k] =
		    bpf_link_create(l->cg_progs[k], cg, bpf_program__expected_attach_type(p), NULL);
		if (l->cg_links[k] < 0)
			missing(l, h, "attach failed: %s", strerror(errno));
	}
}

int loader_start(struct loader *l, const struct loader_opts *o, char *err, size_t errlen)
{
	int64_t t0 = now_mono_ns();
	uint32_t slot = 0;
	int cg = o->cgroup_fd, rc = 1;

	memset(l, 0, sizeof(*l));
	l->slot.id = -1;
	l->slot.lock_fd = -1;
	set_print();
	mount_tracefs(l);
	/* The debugging knobs change what is loaded: such a job gets its own. */
	err[0] = 0;
	if (!o->private_copy && !getenv("RUNWARDEN_NO_BPF_LOOP") &&
	    !getenv("RUNWARDEN_DISABLE_HOOKS") && o->lpm_entries <= RESIDENT_LPM)
		rc = start_resident(l, o, err, errlen);
	if (rc < 0)
		return -1;
	if (rc > 0) {
		if (err[0]) /* not just every slot busy: say why this job loads its own */
			rw_err("resident kernel side unavailable (%s): loading a private copy",
			       err);
		err[0] = 0;
		close_objects(l);
		l->n_hooks = l->n_missing = 0;
		if (start_private(l, o, err, errlen))
			return -1;
	}
	l->ready_ns = now_mono_ns() - t0;
	populate_sensitive(l, o->sensitive);
	if (set_fence_config(l, o, err, errlen))
		return -1;
	if (bpf_map_update_elem(bpf_map__fd(l->skel->maps.scope), &slot, &cg, BPF_ANY)) {
		snprintf(err, errlen, "cannot arm the job scope (cgroup array): %s",
			 strerror(errno));
		return -1;
	}
	attach_cgroup_hooks(l, cg);
	l->scope_fd = fcntl(cg, F_DUPFD_CLOEXEC, 3);
	return 0;
}

int loader_preload(uint32_t ring_bytes, unsigned idle_s, char *what, size_t whatlen, char *err,
		   size_t errlen)
{
	struct loader l;
	struct loader_opts o = {
	    .ring_bytes = ring_bytes, .lpm_entries = RESIDENT_LPM, .idle_s = idle_s};
	int rc;

	memset(&l, 0, sizeof(l));
	l.slot.id = -1;
	l.slot.lock_fd = -1;
	set_print();
	mount_tracefs(&l);
	rc = start_resident(&l, &o, err, errlen);
	if (rc > 0 && !err[0])
		snprintf(err, errlen, "every slot is in use or holds another build's copy");
	if (!rc && what)
		snprintf(what, whatlen, "slot %d: %s", l.slot.id,
			 l.loaded_here ? "loaded" : "already loaded");
	close_objects(&l);
	pool_unlock(&l.slot);
	sb_release(&libbpf_log);
	return rc ? -1 : 0;
}

const char *loader_kind(const struct loader *l)
{
	static char buf[64];

	if (l->slot.id < 0)
		return "private";
	snprintf(buf, sizeof(buf), "resident slot %d (%s)", l->slot.id,
		 l->loaded_here ? "loaded by this job" : "borrowed");
	return buf;
}

int loader_map_fd(const struct loader *l, enum loader_map m)
{
	return bpf_map__fd(map_of(l, m));
}

/* What the kernel scans: slots 1..extra_scopes (see in_scope). */
static int write_extra_scopes(const struct loader *l, uint32_t n)
{
	int cfd = loader_map_fd(l, LM_CONFIG);
	uint32_t zero = 0;
	struct rw_config c;

	if (bpf_map_lookup_elem(cfd, &zero, &c))
		return -1;
	c.extra_scopes = n;
	return bpf_map_update_elem(cfd, &zero, &c, BPF_ANY);
}

int loader_add_scope(struct loader *l, int cgroup_fd, char *err, size_t errlen)
{
	int slot = 1;

	while (slot < SCOPE_SLOTS && l->scope_taken[slot])
		slot++;
	if (slot >= SCOPE_SLOTS) {
		snprintf(err, errlen, "more than %d containers at once in one job",
			 SCOPE_SLOTS - 1);
		return -1;
	}
	l->scope_taken[slot] = true;
	l->scope_nlinks[slot] = 0;
	/* Hooks first, then the tracepoints' scope: a container is never
	 * recorded without being fenced. */
	for (int i = 0; i < l->n_hooks; i++) {
		struct bpf_program *p = find_prog(l->skel->obj, l->hooks[i].name);
		int link;

		if (l->cg_links[i] < 0 || !p)
			continue;
		if (l->scope_nlinks[slot] == MAX_SCOPE_LINKS) {
			snprintf(err, errlen, "more than %d cgroup hooks", MAX_SCOPE_LINKS);
			goto fail;
		}
		link = bpf_link_create(l->cg_progs[i], cgroup_fd,
				       bpf_program__expected_attach_type(p), NULL);
		if (link < 0) {
			snprintf(err, errlen, "attaching %s to a container cgroup: %s",
				 l->hooks[i].name, strerror(errno));
			goto fail;
		}
		l->scope_links[slot][l->scope_nlinks[slot]++] = link;
	}
	if (bpf_map_update_elem(bpf_map__fd(l->skel->maps.scope), &slot, &cgroup_fd, BPF_ANY) ||
	    (slot > l->n_extra_scopes && write_extra_scopes(l, slot))) {
		snprintf(err, errlen, "adding a container to the scope: %s", strerror(errno));
		goto fail;
	}
	if (slot > l->n_extra_scopes)
		l->n_extra_scopes = slot;
	return slot;
fail:
	loader_drop_scope(l, slot);
	return -1;
}

/* A cgroup's depth below the cgroup2 root (whose id is 1) and its id (its
 * inode number); -1 when it is not on cgroup2. */
static int cgroup_depth(int fd, uint64_t *id)
{
	struct stat st;
	int level = 0, cur = dup(fd);

	if (cur < 0 || fstat(cur, &st))
		goto fail;
	*id = st.st_ino;
	while (st.st_ino != 1) {
		int up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		close(cur);
		cur = up;
		if (cur < 0 || fstat(cur, &st) || ++level > 64)
			goto fail;
	}
	close(cur);
	return level;
fail:
	if (cur >= 0)
		close(cur);
	return -1;
}

/* Is the cgroup dir (at depth level) the job's own or an ancestor of it? */
static bool holds_job(const struct loader *l, uint64_t id, int level)
{
	uint64_t jid;
	int jlevel = l->scope_fd > 0 ? cgroup_depth(l->scope_fd, &jid) : -1;
	int cur = jlevel >= level ? dup(l->scope_fd) : -1;
	struct stat st;
	bool in = false;

	for (int i = jlevel; cur >= 0 && i > level; i--) {
		int up = openat(cur, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		close(cur);
		cur = up;
	}
	if (cur >= 0) {
		in = !fstat(cur, &st) && st.st_ino == id;
		close(cur);
	}
	return in;
}

/* The cgroups in dir now: not the job's. */
static int note_preexisting(const struct loader *l, int dir, char *err, size_t errlen)
{
	int fd = bpf_map__fd(l->skel->maps.engine_preexisting), d = dup(dir);
	DIR *ds = d >= 0 ? fdopendir(d) : NULL;
	struct dirent *de;
	uint8_t one = 1;
	int rc = 0;

	if (!ds) {
		if (d >= 0)
			close(d);
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	while (!rc && (de = readdir(ds))) {
		struct stat st;
		uint64_t id;

		if (de->d_type != DT_DIR || de->d_name[0] == '.' ||
		    fstatat(dirfd(ds), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		id = st.st_ino;
		if (bpf_map_update_elem(fd, &id, &one, BPF_ANY)) {
			snprintf(err, errlen, "noting the cgroups already there (at most %d): %s",
				 ENGINE_PREEXISTING_MAX, strerror(errno));
			rc = -1;
		}
	}
	closedir(ds);
	return rc;
}

static int update_config(const struct loader *l, void (*change)(struct rw_config *, const void *),
			 const void *arg)
{
	int cfd = loader_map_fd(l, LM_CONFIG);
	uint32_t zero = 0;
	struct rw_config c;

	if (bpf_map_lookup_elem(cfd, &zero, &c))
		return -1;
	change(&c, arg);
	return bpf_map_update_elem(cfd, &zero, &c, BPF_ANY);
}

static void arm_engines(struct rw_config *c, const void *arg)
{
	(void)arg;
	c->engines_armed = 1;
}

struct engine_dir {
	uint64_t id;
	uint32_t level;
};

static void add_engine(struct rw_config *c, const void *arg)
{
	const struct engine_dir *e = arg;

	c->engines[c->n_engines].cgid = e->id;
	c->engines[c->n_engines].level = e->level;
	c->n_engines++;
}

/* The job's cgroup hooks, attached to an engine directory too. */
static int attach_engine_hooks(struct loader *l, int k, int dir, char *err, size_t errlen)
{
	for (int i = 0; i < l->n_hooks; i++) {
		struct bpf_program *p = find_prog(l->skel->obj, l->hooks[i].name);
		int link;

		if (l->cg_links[i] < 0 || !p)
			continue;
		if (l->engine_nlinks[k] == MAX_SCOPE_LINKS) {
			snprintf(err, errlen, "more than %d cgroup hooks", MAX_SCOPE_LINKS);
			return -1;
		}
		link = bpf_link_create(l->cg_progs[i], dir, bpf_program__expected_attach_type(p),
				       NULL);
		if (link < 0) {
			snprintf(err, errlen, "attaching %s: %s", l->hooks[i].name,
				 strerror(errno));
			return -1;
		}
		l->engine_links[k][l->engine_nlinks[k]++] = link;
	}
	return 0;
}

int loader_follow_engine(struct loader *l, const char *path, bool attach, bool note_existing,
			 char *err, size_t errlen)
{
	int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = -1, level;
	struct engine_dir e;
	bool inside;

	err[0] = '\0';
	if (dir < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	level = cgroup_depth(dir, &e.id);
	e.level = level;
	if (level < 0) {
		snprintf(err, errlen, "%s: not a cgroup2 directory", path);
		goto out;
	}
	if (l->n_engines == ENGINE_DIRS_MAX) {
		snprintf(err, errlen, "more than %d engine directories", ENGINE_DIRS_MAX);
		goto out;
	}
	inside = holds_job(l, e.id, level);
	/* In order: what is there now is not the job's; the programs told to tell
	 * apart; attached; then told this directory's new cgroups are the job's.
	 * Whatever runs in between is passed by the hooks, never taken. */
	if ((note_existing && note_preexisting(l, dir, err, errlen)) ||
	    update_config(l, arm_engines, NULL)) {
		if (!err[0])
			snprintf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	if (attach && !inside && attach_engine_hooks(l, l->n_engines, dir, err, errlen))
		goto out;
	if (update_config(l, add_engine, &e)) {
		snprintf(err, errlen, "%s", strerror(errno));
		goto out;
	}
	l->n_engines++;
	rc = attach && inside ? 1 : 0;
out:
	if (rc < 0) {
		for (int i = 0; i < l->engine_nlinks[l->n_engines]; i++)
			close(l->engine_links[l->n_engines][i]);
		l->engine_nlinks[l->n_engines] = 0;
	}
	close(dir);
	return rc;
}

bool loader_engine_preexisting(const struct loader *l, uint64_t cgid)
{
	uint8_t v;

	return !bpf_map_lookup_elem(bpf_map__fd(l->skel->maps.engine_preexisting), &cgid, &v);
}

int loader_engine_exclude(const struct loader *l, uint64_t cgid)
{
	uint8_t one = 1;

	return bpf_map_update_elem(bpf_map__fd(l->skel->maps.engine_preexisting), &cgid, &one,
				   BPF_ANY);
}

int loader_engine_include(const struct loader *l, uint64_t cgid)
{
	return bpf_map_delete_elem(bpf_map__fd(l->skel->maps.engine_preexisting), &cgid);
}

bool loader_job_pid(const struct loader *l, uint32_t tgid)
{
	uint8_t v;

	return !bpf_map_lookup_elem(bpf_map__fd(l->skel->maps.jobpids), &tgid, &v);
}

int loader_gate_netns(const struct loader *l, uint64_t cookie, bool add)
{
	int fd = bpf_map__fd(l->skel->maps.gate_nets);
	uint8_t one = 1;

	return add ? bpf_map_update_elem(fd, &cookie, &one, BPF_ANY)
		   : bpf_map_delete_elem(fd, &cookie);
}

void loader_drop_scope(struct loader *l, int slot)
{
	uint32_t key = slot;
	int top = l->n_extra_scopes;

	if (slot <= 0 || slot >= SCOPE_SLOTS || !l->scope_taken[slot])
		return;
	bpf_map_delete_elem(bpf_map__fd(l->skel->maps.scope), &key);
	for (int i = 0; i < l->scope_nlinks[slot]; i++)
		close(l->scope_links[slot][i]);
	l->scope_nlinks[slot] = 0;
	l->scope_taken[slot] = false;
	while (top > 0 && !l->scope_taken[top])
		top--;
	/* An empty slot below the top costs the kernel one failed check; only
	 * the top moves down. */
	if (top != l->n_extra_scopes && !write_extra_scopes(l, top))
		l->n_extra_scopes = top;
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

bool loader_reads_requests(const struct loader *l)
{
	return l->skel->rodata->have_bpf_loop;
}

static void names_tracked(struct rw_config *c, const void *arg)
{
	(void)arg;
	c->names_tracked = 1;
}

size_t loader_track_names(const struct loader *l, const char (*names)[TRACKED_NAME_BYTES], size_t n)
{
	int fd = bpf_map__fd(l->skel->maps.tracked_names);
	uint8_t one = 1;
	size_t done = 0;

	/* Names repeat (every directory has its Makefile): one update each is simplest, and a
	 * checkout's names cost about 1 ms per 1,000. */
	for (; done < n; done++)
		if (bpf_map_update_elem(fd, names[done], &one, BPF_ANY))
			break;
	if (done)
		update_config(l, names_tracked, NULL);
	return done;
}

size_t loader_track_files(const struct loader *l, const struct file_key *keys, size_t n)
{
	int fd = bpf_map__fd(l->skel->maps.tracked);
	size_t done = 0;
	uint8_t *ones = malloc(n ? n : 1);

	if (!ones)
		return 0;
	memset(ones, 1, n ? n : 1);
	/* In batches: one syscall per 4,096 files instead of one per file (65,536 files: 10 ms,
	 * not 300). A batch the kernel refuses whole (no batch ops) goes one by one. */
	while (done < n) {
		__u32 count = n - done < 4096 ? (__u32)(n - done) : 4096;
		int rc = bpf_map_update_batch(fd, keys + done, ones + done, &count, NULL);

		if (rc && errno == EINVAL && !count) {
			for (; done < n; done++)
				if (bpf_map_update_elem(fd, &keys[done], &ones[done], BPF_ANY))
					break;
			break;
		}
		done += count;
		if (rc)
			break; /* E2BIG: full */
	}
	free(ones);
	return done;
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
		if (l->cg_links[i] >= 0)
			fds[n++] = l->cg_links[i];
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
		if (l->cg_links[i] >= 0 && link_fd_detached(l->cg_links[i]))
			return l->hooks[i].name;
	return NULL;
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
		if (l->cg_links[i] < 0)
			continue;
		pin_name(path, sizeof(path), dir, l->hooks[i].name);
		if (bpf_obj_pin(l->cg_links[i], path)) {
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
	/* While this fence stands, the copy's maps are its policy: not lent out. */
	if (l->slot.id >= 0 && pool_set_fence_pins(&l->slot, dir)) {
		snprintf(err, errlen, "cannot record the fence in the resident slot: %s",
			 strerror(errno));
		goto fail;
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

static void *close_link_fd(void *fd)
{
	close((int)(intptr_t)fd);
	return NULL;
}

/* Detaching a syscall tracepoint waits for an RCU-tasks grace period (tens of
 * ms each, partly serialised in the kernel): a private copy's links are
 * destroyed in parallel. */
static void detach_links(struct loader *l)
{
	pthread_t t[MAX_HOOKS];
	bool threaded[MAX_HOOKS] = {false};

	for (int i = 0; i < l->n_hooks; i++)
		if (l->tp_links[i])
			threaded[i] =
			    pthread_create(&t[i], NULL, destroy_link, l->tp_links[i]) == 0;
		else if (l->um_links[i] >= 0)
			threaded[i] = pthread_create(&t[i], NULL, close_link_fd,
						     (void *)(intptr_t)l->um_links[i]) == 0;
	for (int i = 0; i < l->n_hooks; i++) {
		if (threaded[i])
			pthread_join(t[i], NULL);
		else if (l->tp_links[i])
			bpf_link__destroy(l->tp_links[i]);
		else if (l->um_links[i] >= 0)
			close(l->um_links[i]);
		l->tp_links[i] = NULL;
		l->um_links[i] = -1;
	}
}

/* The job's cgroup links (the keeper, if any, holds its own copies). */
static void close_job_links(struct loader *l)
{
	for (int s = 1; s < SCOPE_SLOTS; s++)
		if (l->scope_taken[s])
			loader_drop_scope(l, s);
	for (int k = 0; k < ENGINE_DIRS_MAX; k++) {
		for (int i = 0; i < l->engine_nlinks[k]; i++)
			close(l->engine_links[k][i]);
		l->engine_nlinks[k] = 0;
	}
	l->n_engines = 0;
	if (l->scope_fd > 0)
		close(l->scope_fd);
	l->scope_fd = -1;
	for (int i = 0; i < l->n_hooks; i++) {
		if (l->cg_links[i] >= 0)
			close(l->cg_links[i]);
		if (l->cg_progs[i] >= 0)
			close(l->cg_progs[i]);
		l->cg_links[i] = l->cg_progs[i] = -1;
	}
}

/* A private copy: the job is over and the evidence written by now, so a
 * short-lived child does the detaching while this process exits at once; its
 * copies of the link fds keep the programs attached (and filtering on a scope
 * that no longer exists) until it is done. */
static void stop_private(struct loader *l, bool handoff)
{
	int gate[2] = {-1, -1};
	pid_t pid = handoff && pipe2(gate, O_CLOEXEC) == 0 ? fork() : -1;

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
			if (l->um_links[i] >= 0)
				close(l->um_links[i]); /* the child holds its own copy */
			l->um_links[i] = -1;
			if (!l->tp_links[i])
				continue;
			bpf_link__disconnect(l->tp_links[i]); /* the child detaches */
			bpf_link__destroy(l->tp_links[i]);
			l->tp_links[i] = NULL;
		}
	} else {
		if (gate[1] >= 0)
			close(gate[1]);
		detach_links(l);
	}
}

/* A resident copy stays attached: the job's scope leaves it (nothing more is
 * recorded for the job's leftovers, as with a private copy's detach), the
 * policy stays for whoever still holds the fence (the keeper, which also holds
 * the slot's lock until then), and the next job resets the rest. */
static void stop_resident(struct loader *l)
{
	int fd = bpf_map__fd(l->skel->maps.scope);

	for (uint32_t k = 0; k < SCOPE_SLOTS; k++)
		bpf_map_delete_elem(fd, &k);
	pool_unlock(&l->slot);
}

void loader_stop(struct loader *l, bool handoff)
{
	if (!l->skel)
		return;
	/* Unpinned first: the links' last references are the fds below. */
	if (l->pin_dir[0]) {
		loader_unpin_dir(l->pin_dir);
		l->pin_dir[0] = 0;
		if (l->slot.id >= 0)
			pool_set_fence_pins(&l->slot, NULL);
	}
	close_job_links(l);
	if (l->slot.id >= 0)
		stop_resident(l);
	else
		stop_private(l, handoff);
	close_objects(l);
	if (l->mounted_tracefs)
		umount2("/sys/kernel/tracing", MNT_DETACH);
	sb_release(&libbpf_log);
}

int loader_lock_fd(const struct loader *l)
{
	return l->slot.lock_fd;
}
