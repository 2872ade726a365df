/*
 * Files by what they are, not by their names: the kernel's device number of
 * a file (as the BPF programs read it from the inode's superblock), and the
 * content hash of the executables a job runs, computed once per distinct file.
 */
#ifndef RW_FILEID_H
#define RW_FILEID_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/strbuf.h"
#include "common/strmap.h"
#include "events.h"

/* Bytes of one executable hashed at most; past that the hash covers the
 * first EXE_HASH_MAX bytes and says so ("cut"). Bounds the time one exec of a
 * hostile, huge file can hold the collector. */
#define EXE_HASH_MAX (256ull << 20)
/* Bytes hashed per run at most: a job that runs many distinct huge files
 * cannot keep the collector hashing (past it: "exe_unhashed": "budget"). */
#define EXE_HASH_BUDGET (4ull << 30)
/* Distinct executables remembered (dev, inode, ctime, size -> digest). */
#define EXE_CACHE_MAX 4096

/* The kernel's dev_t (major << 20 | minor) of the filesystem an open fd is
 * on: the superblock's, as mountinfo prints it, which is what the BPF side
 * reads (st_dev differs on btrfs subvolumes). 0 if unknown. */
uint32_t fileid_kdev(int fd);
/* "major:minor" of a kernel dev_t. */
void fileid_dev_str(struct strbuf *sb, uint32_t kdev);

struct exe_hash {
	char sha256[65]; /* "" when not hashed */
	bool cut;	 /* larger than EXE_HASH_MAX: the hash covers its start */
	const char *why; /* when not hashed: why (static string) */
};

struct exe_cache {
	struct strmap m; /* "dev:ino:ctime:size" -> struct exe_hash */
	uint64_t hashed_files, hashed_bytes, hits;
	int64_t hash_ns; /* time spent hashing (for the record of the cost) */
};

void exe_cache_init(struct exe_cache *c);
void exe_cache_free(struct exe_cache *c);

/* The digest of the executable `id` that process pid ran (exe_path: the
 * path the kernel walked, NULL for memfds). The file is opened through
 * /proc/PID/exe while the process lives, else through PID's (or ppid's) root
 * and the path, else by the path; whatever is opened must be the same inode
 * with the same ctime and size, or nothing is hashed. */
void exe_cache_get(struct exe_cache *c, const struct file_id *id, pid_t pid, pid_t ppid,
		   const char *exe_path, struct exe_hash *out);

#endif
