/*
 * The kernel programs as one job uses them. A job borrows a resident copy
 * (pool.h: loaded, verified and attached once per machine) when one with the
 * same build and settings is free, and arms it by writing maps: its scope, its
 * policy, its sensitive files, and the cgroup hooks attached to its cgroup.
 * Otherwise it loads a copy: left resident for the next job, or private to the
 * job (--kernel private, debugging knobs, a kernel that cannot pin links).
 *
 * Feature detection: every hook that cannot be attached is named with the
 * reason, and the run either refuses or (--allow-partial) goes on with the
 * evidence marked partial.
 */
#ifndef RW_LOADER_H
#define RW_LOADER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"
#include "kernel/pool.h"
#include "observe/sensitive.h"
#include "events.h" /* struct file_key */
#include "rwnet.h"

struct runwarden_bpf;
struct bpf_object;

#define MAX_HOOKS	96
#define MAX_SCOPE_LINKS 16 /* cgroup hooks attached to each container */

struct hook_status {
	const char *name;   /* e.g. "tracepoint/syscalls/sys_enter_openat" */
	const char *covers; /* what is not seen without it */
	char reason[160];   /* empty when attached */
};

struct loader {
	struct runwarden_bpf *skel;   /* opened; its maps created only if this process loaded it */
	struct bpf_object *halves[2]; /* the programs, when this process loaded them */
	bool loaded_here;
	struct pool_slot slot; /* the resident copy borrowed (id -1: a private copy) */
	/* Per hooks[] entry: a private copy's tracepoint link, or this job's cgroup
	 * link fd (-1 when none) and the cgroup program's fd. */
	struct bpf_link *tp_links[MAX_HOOKS];
	int um_links[MAX_HOOKS]; /* a private copy's uprobe_multi link fd, or -1 */
	int cg_links[MAX_HOOKS];
	int cg_progs[MAX_HOOKS];
	struct hook_status hooks[MAX_HOOKS];
	int n_hooks;
	int n_missing;
	bool mounted_tracefs;
	char pin_dir[256]; /* set by loader_pin: what loader_stop must unpin */
	/* Container cgroups in scope slots 1..SCOPE_SLOTS-1 (loader_add_scope):
	 * each slot's cgroup link fds, and which slots are taken. */
	int scope_links[SCOPE_SLOTS][MAX_SCOPE_LINKS];
	int scope_nlinks[SCOPE_SLOTS];
	bool scope_taken[SCOPE_SLOTS];
	int n_extra_scopes; /* the highest slot taken: what the kernel scans */
	/* Engine directories followed (loader_follow_engine) and the cgroup hooks
	 * attached to them. */
	int engine_links[ENGINE_DIRS_MAX][MAX_SCOPE_LINKS];
	int engine_nlinks[ENGINE_DIRS_MAX];
	int n_engines;
	int scope_fd;	  /* the job's cgroup (a copy) */
	int64_t ready_ns; /* how long getting a loaded copy took */
};

struct loader_opts {
	uint32_t ring_bytes;   /* power of two, >= page size */
	int cgroup_fd;	       /* the job's scope */
	uint32_t cgroup_level; /* its depth below the cgroup2 root (scope_level) */
	const struct sensitive_list *sensitive;
	uint32_t lpm_entries; /* capacity of each allow/block trie */
	bool private_copy;    /* never borrow nor leave a resident copy */
	unsigned idle_s;      /* a resident copy this job loads stays this long unused */
};

/* The maps user space fills: the config, then every policy map (rwnet.h). */
enum loader_map {
	LM_CONFIG,
#define RW_LM_ENUM_(e, name, list, fam, exact) LM_##e,
	RW_POLICY_MAPS(RW_LM_ENUM_)
#undef RW_LM_ENUM_
	    LM_COUNT,
	/* Past LM_COUNT: not sized to the policy nor pinned (the policy maps
	 * are); who may connect to the job (inbound.c). */
	LM_INBOUND4,
	LM_INBOUND6,
	/* host patterns, for the names connections send (SNI, Host: enforce.c) */
	LM_NAMES_ALLOW,
	LM_NAMES_BLOCK,
	/* `methods:`/`paths:` of allow host entries (enforce.c, bpf/httpjudge.bpf.h) */
	LM_HTTP_RULES,
	/* what user space wants streamed of each SSL object, and the job's default
	 * (bpf/tls.bpf.h, src/observe/capture.c) */
	LM_TLS_WANT,
	LM_TLS_CAPCFG,
	/* the job's secrets and where they may go (src/secrets/) */
	LM_SECRET_CFG,
	LM_SECRET_PAIRS,
	LM_SECRET_ANCHORS,
	LM_SECRET_TO,
};

/* Loads and attaches. Returns 0 (possibly with missing hooks: check
 * n_missing), or -1 with a one-line reason in err when nothing can run. */
int loader_start(struct loader *l, const struct loader_opts *o, char *err, size_t errlen);
int loader_ring_fd(const struct loader *l);
int loader_map_fd(const struct loader *l, enum loader_map m);
/* Whole-job mode: the CI runner's process, whose own connections are its
 * control plane, not the job's egress (see bpf/events.h, rw_config). */
int loader_set_runner(const struct loader *l, uint32_t tgid);
/* Adds a cgroup (a container the job started through an engine) to the job:
 * the tracepoints count it as in scope and the cgroup hooks are attached to
 * it. At most SCOPE_SLOTS - 1 at a time. The slot taken (> 0), or -1 with the
 * reason in err (nothing of it is left attached). */
int loader_add_scope(struct loader *l, int cgroup_fd, char *err, size_t errlen);
/*
 * A job following containers: every cgroup created directly below the engine
 * directory path from now on is the job's, in the kernel, from its birth: the
 * cgroup hooks are attached to the directory itself (attach; not for a directory
 * below one already attached, where they would run twice) and the cgroups in it
 * now are noted as not the job's (note_existing; a directory that appeared
 * during the job holds only the job's). 0; 1 when the hooks could not go there because
 * the job's own cgroup is inside it (they would run twice for the job): its
 * containers need loader_add_scope; -1 with the reason in err.
 */
int loader_follow_engine(struct loader *l, const char *path, bool attach, bool note_existing,
			 char *err, size_t errlen);
/* Was cgroup id below a followed engine directory when the job started (or since
 * noted by loader_engine_exclude)? Then it is not the job's. */
bool loader_engine_preexisting(const struct loader *l, uint64_t cgid);
/* A cgroup created below an engine directory that is no container (a service
 * systemd starts in system.slice): not the job's from now on. 0 or -1. */
int loader_engine_exclude(const struct loader *l, uint64_t cgid);
/* Undoes loader_engine_exclude: the cgroup is the job's after all. */
int loader_engine_include(const struct loader *l, uint64_t cgid);
/* Is process tgid one of the job's (the kernel's jobpids)? */
bool loader_job_pid(const struct loader *l, uint32_t tgid);
/* Port-53 traffic in the network namespace with this cookie goes to the DNS gate too
 * (add), or no longer (!add). 0 or -1 (errno). */
int loader_gate_netns(const struct loader *l, uint64_t cookie, bool add);
/* A container's cgroup is gone: its slot and links are let go, for the next. */
void loader_drop_scope(struct loader *l, int slot);
/* Adds a file to the kernel's set of watched files (device, inode): opened
 * by any name, it is recorded. -1 when the set is full (WATCHED_MAX). */
int loader_watch_file(const struct loader *l, uint32_t kdev, uint64_t ino);
/* Puts the checkout's tracked files into the kernel's set (opens of them for writing are
 * recorded). Returns how many went in (fewer when the set is full, TRACKED_MAX). */
/* Whether the kernel side reads what connections send (SNI, Host, HTTP requests): it needs
 * bpf_loop (Linux 5.17+). */
bool loader_reads_requests(const struct loader *l);
size_t loader_track_files(const struct loader *l, const struct file_key *keys, size_t n);
/* The checkout's file names (last components) for unlinks, renames and truncates by name;
 * arms the kernel's check. Returns how many were stored (fewer: the map is full). */
size_t loader_track_names(const struct loader *l, const char (*names)[TRACKED_NAME_BYTES],
			  size_t n);
/* Per-kind lost-event counters, summed over CPUs. out[EV_KIND_MAX]. */
void loader_read_lost(const struct loader *l, uint64_t *out);
/* The fds of the attached cgroup links (the fence), for the keeper that
 * holds them past this process (keeper.h). Returns how many, up to max. */
int loader_cgroup_link_fds(const struct loader *l, int *fds, int max);
/* True when the cgroup link behind fd no longer fences a cgroup (someone
 * ran BPF_LINK_DETACH on it, e.g. `bpftool link detach`). */
bool link_fd_detached(int fd);
/* The name of the first detached cgroup hook, or NULL when all hold. */
const char *loader_detached_hook(const struct loader *l);
/* Pins the cgroup program links (connect, sendmsg, sock_create, skb) and the
 * policy maps they read under dir (created 0700), so the fence outlives this
 * process. Tracepoint links are not pinned: recording stops with the process.
 * 0, or -1 with a reason in err (nothing left pinned). */
int loader_pin(struct loader *l, const char *dir, char *err, size_t errlen);
/* Removes what loader_pin left in dir and dir itself; the kernel detaches the
 * links when their last reference goes. Safe on a dir from a dead process. */
int loader_unpin_dir(const char *dir);
/* Loads a resident copy into a free slot (runwarden kernel load), unless a
 * matching one is loaded already. 0 with "slot N: loaded|already loaded" in
 * what (may be NULL), or -1 with the reason in err. */
int loader_preload(uint32_t ring_bytes, unsigned idle_s, char *what, size_t whatlen, char *err,
		   size_t errlen);
/* "resident slot N (loaded by this job|borrowed)" or "private": for the record. */
const char *loader_kind(const struct loader *l);
/* The resident slot's lock (-1 for a private copy): whoever holds the fence
 * past this process holds it too, so the copy is not lent out meanwhile. */
int loader_lock_fd(const struct loader *l);
/* handoff: leave the slow detaching to a short-lived child (end of a run). */
void loader_stop(struct loader *l, bool handoff); /* also unpins */

#endif
