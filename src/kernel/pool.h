/*
 * The resident kernel side: copies of runwarden's kernel programs loaded,
 * verified and attached once, pinned in bpffs, and lent to one job at a time.
 * A job claims a free copy (a slot) and arms it by writing maps; loading and
 * verifying (hundreds of ms) and detaching tracepoints (an RCU grace period
 * each, serialised in the kernel) leave every job's critical path.
 *
 * A slot N is:
 *   POOL_BPF_DIR/N/          pinned maps (map_*), programs (prog_*), and the
 *                            tracepoint links (link_*): attached while pinned
 *   POOL_RUN_DIR/N.lock      flock()ed by the job that holds the slot, and by
 *                            whoever inherits its fence (the keeper); released
 *                            by the kernel when they die. Its mtime is the
 *                            slot's last use (idle unloading).
 *   POOL_RUN_DIR/N.json      what was loaded: the key below, hook statuses
 *   POOL_RUN_DIR/N.pins      a job's fence pinned elsewhere (the agent's) that
 *                            still uses this slot's programs and maps: while
 *                            that directory exists the slot is not lent out
 * A slot is used only by a job whose key (the BPF object's hash, load-time
 * settings, ring and map sizes) matches; anything else loads its own private
 * copy, as does every run on a kernel that cannot pin links.
 */
#ifndef RW_POOL_H
#define RW_POOL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POOL_BPF_DIR	  "/sys/fs/bpf/runwarden/kernel"
#define POOL_RUN_DIR	  "/run/runwarden/kernel"
#define POOL_SLOTS	  4
#define POOL_IDLE_DEFAULT 600 /* seconds a slot stays loaded unused */

/* A slot claimed by this process (lock held). */
struct pool_slot {
	int id;	     /* -1: none */
	int lock_fd; /* the flock()ed N.lock */
	char bpf_dir[128];
};

/* Makes sure bpffs is at /sys/fs/bpf (mounting one when absent) and the
 * directories exist, private to root. 0, or -1 with the reason in err. */
int pool_prepare(char *err, size_t errlen);
/* Claims slot id if nobody holds it (non-blocking). 0: claimed; 1: busy (held,
 * or a fence pinned elsewhere still uses it); -1: error, reason in err. */
int pool_lock(int id, struct pool_slot *s, char *err, size_t errlen);
/* Releases the claim; the slot's idle clock starts now. */
void pool_unlock(struct pool_slot *s);
/* Is slot s loaded (its pins present)? */
bool pool_loaded(const struct pool_slot *s);
/* The slot's metadata (N.json) as text, or NULL (caller frees). */
char *pool_read_meta(const struct pool_slot *s);
int pool_write_meta(const struct pool_slot *s, const char *json, char *err, size_t errlen);
/* A fence pinned in dir (the agent's) uses the slot: it is not lent out while
 * dir exists. dir NULL: no such fence. */
int pool_set_fence_pins(const struct pool_slot *s, const char *dir);
/* Removes everything the slot has pinned (the tracepoints detach as the last
 * link reference goes: slow, which is why only pool_unload and the holder
 * call this) and its metadata. The slot must be locked. */
void pool_unpin(struct pool_slot *s);

/* Seconds since slot id was last released. */
double pool_idle_seconds(int id);
/* Another build's copy is replaced only once idle this long: two builds on
 * one machine then share the slots instead of evicting each other's. */
#define POOL_EVICT_IDLE 60
/* Empties a locked slot holding another build's copy at once, so a copy of
 * ours can be loaded into it: its pins move aside (a rename) and a detached
 * child unpins them, paying for the detach off the caller's path. */
void pool_evict(struct pool_slot *s);
/* Starts the holder (runwarden kernel hold) unless one runs: it unloads slots
 * idle for idle_s seconds and exits when none is left. */
void pool_spawn_holder(unsigned idle_s);
/* The holder's loop (runwarden kernel hold). Returns when nothing is loaded. */
int pool_hold(unsigned idle_s);
/* Unloads every slot not in use; prints what it did. 0, or 1 when some slot was busy. */
int pool_unload(bool quiet);

/* Pins a file descriptor (map, program, link) as dir/name. */
int pool_pin_fd(int fd, const char *dir, const char *name, char *err, size_t errlen);
/* Opens dir/name, or -1. */
int pool_get_fd(const char *dir, const char *name);

#endif
