/*
 * Source modified during the build: the checkout's tracked files as they were when the job
 * started, compared with what they are when it ends.
 *
 * The tracked list and each file's blob id come from the git index, read with libgit2:
 * opening a repository and reading its index runs nothing (no hooks, no fsmonitor, no filter
 * drivers, no credential helpers), which running `git` as root in a checkout the job controls
 * cannot promise. Each file is stat'ed at start; one whose stat no longer matches the index is
 * hashed at start (git's blob format, SHA-1), so the start id is the file's own. At the end a
 * file whose stat moved is hashed again and compared: content changed in place (`modified`), a
 * new inode with other content (`replaced`), gone (`deleted`). Writers come from the kernel:
 * the tracked files' (dev, inode) go into the map `tracked`, and every open of one for writing
 * is a `file` line with `tracked_write` naming the process (srcmod_on_write).
 *
 * Files are opened below the checkout only (openat2 RESOLVE_BENEATH, no symlinks followed,
 * O_NONBLOCK, regular files only): a job that swaps a directory for a link or a file for a
 * FIFO cannot make the agent read elsewhere or hang. Every amount is capped and counted.
 */
#ifndef RW_SRCMOD_H
#define RW_SRCMOD_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/strbuf.h"
#include "common/strmap.h"
#include "events.h"

/* Tracked files snapshotted at most (as many as the kernel map holds); more are counted. */
#define SRCMOD_FILES_MAX 65536
/* Bytes of tracked path names kept at most. */
#define SRCMOD_PATH_BYTES_MAX (16u << 20)
/* Bytes hashed over the whole job (start and end); past it a file is not hashed (counted). */
#define SRCMOD_HASH_BYTES_MAX (1ull << 30)
/* An index larger than this is not read (libgit2 reads it whole). */
#define SRCMOD_INDEX_BYTES_MAX (128u << 20)
/* Writers remembered per file, and in all; more are counted. */
#define SRCMOD_WRITERS_PER_FILE 4
#define SRCMOD_WRITERS_MAX	16384

struct srcmod_limits {
	size_t files_max;
	uint64_t hash_bytes_max;
};

struct srcmod_writer {
	pid_t pid;
	char *exe; /* NULL: unknown */
	uint64_t seq;
};

struct srcmod_file {
	char *path; /* relative to the work tree, as the index names it */
	uint8_t start_id[20];
	bool start_known;      /* start_id is the file's content at start */
	bool start_from_index; /* ... as the index's blob id (the stat matched it) */
	bool present;	       /* it existed at start */
	uint32_t kdev;
	uint64_t ino;
	dev_t st_dev;
	mode_t st_mode;
	off_t size;
	struct timespec mtime, ctime;
	struct srcmod_writer w[SRCMOD_WRITERS_PER_FILE];
	uint8_t n_w;
	uint32_t w_unlisted;
};

enum srcmod_change_kind { SRCMOD_MODIFIED, SRCMOD_REPLACED, SRCMOD_DELETED, SRCMOD_UNVERIFIED };

struct srcmod_change {
	const struct srcmod_file *file;
	enum srcmod_change_kind kind;
	const char *why; /* UNVERIFIED: why the content was not compared (static) */
};

struct srcmod {
	bool active; /* a snapshot was taken */
	char *workdir;
	int wd_fd;
	struct srcmod_file *files;
	size_t n, cap;
	struct strmap by_id;   /* "kdev:ino" -> index + 1 */
	struct strmap by_path; /* path in the work tree -> index + 1 (files present at start) */
	struct srcmod_limits lim;
	uint64_t files_skipped;	   /* tracked files past files_max or the path bytes */
	uint64_t files_unhashed;   /* content not compared: the hash budget was spent */
	uint64_t kernel_untracked; /* not in the kernel map (full): changes named without writer */
	uint64_t writers_dropped;
	uint64_t writers_total;
	uint64_t hashed_bytes, hashed_files;
	size_t path_bytes;
	int64_t snapshot_ns;
};

void srcmod_init(struct srcmod *s);
void srcmod_free(struct srcmod *s);

/*
 * Snapshots the checkout containing dir (a work tree or a directory below one). Returns 0,
 * 1 when dir is in no git checkout (nothing to compare, not an error), -1 with err on failure.
 */
int srcmod_snapshot(struct srcmod *s, const char *dir, const struct srcmod_limits *lim, char *err,
		    size_t errlen);

/* Puts the snapshotted files' identities into the kernel: track returns how many of the n
 * keys it put in (the rest are counted in kernel_untracked). */
void srcmod_track(struct srcmod *s,
		  size_t (*track)(void *ctx, const struct file_key *keys, size_t n), void *ctx);

/* An open for writing of a tracked file (the kernel's identity): remembers the writer. Returns
 * the file's path, or NULL when the identity is not a snapshotted file. */
const char *srcmod_on_write(struct srcmod *s, uint32_t kdev, uint64_t ino, pid_t pid,
			    const char *exe, uint64_t seq);

/* Compares the checkout with the snapshot: *out (malloc'd, the caller frees) lists each
 * changed file in index order. Returns the number of changes. */
/* The checkout's file names (last components) for the kernel's unlink/rename/truncate filter
 * (bpf/file.bpf.h tracked_names): put() takes n names of TRACKED_NAME_BYTES each, cut
 * (their ends kept) and zero-padded as the kernel reads them, and returns how many it stored. */
void srcmod_track_names(struct srcmod *s,
			size_t (*put)(void *ctx, const char (*names)[TRACKED_NAME_BYTES], size_t n),
			void *ctx);
/* The tracked file an absolute path names, after "." and ".." are taken out as written (the
 * kernel's name as the caller passed it, joined to the directory it starts from); NULL when it
 * names none. */
struct srcmod_file *srcmod_file_at(struct srcmod *s, const char *abs);
/* Whether an open for writing of (kdev, ino) at abs, which the kernel took for a tracked file's,
 * is one: abs names it, or its path in the work tree still holds that inode (a hard link).
 * Otherwise the tracked file is gone and its inode was reused for another file. */
bool srcmod_is_tracked_write(struct srcmod *s, uint32_t kdev, uint64_t ino, const char *abs);
/* An unlink, rename or truncate of f by name, the log line seq its evidence: f's writer. */
void srcmod_on_path_op(struct srcmod *s, struct srcmod_file *f, pid_t pid, const char *exe,
		       uint64_t seq);
size_t srcmod_compare(struct srcmod *s, struct srcmod_change **out);

/* The severity rule: true for files builds commonly rewrite on purpose (lockfiles). */
bool srcmod_expected_rewrite(const char *path);

/* summary.json member text: "source_snapshot":{...} (no leading comma). */
void srcmod_json(const struct srcmod *s, struct strbuf *sb);

#endif
