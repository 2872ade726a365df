/*
 * Which files count as sensitive. Two stages: the kernel matches the opened
 * file's own name against short name keys (exact, or a prefix) so ordinary
 * opens cost one trie lookup; user space confirms the full, resolved path
 * against glob patterns here. Each pattern names the key the kernel needs.
 */
#ifndef RW_SENSITIVE_H
#define RW_SENSITIVE_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct sensitive_pattern {
	const char *glob; /* fnmatch(3) with FNM_PATHNAME off: '*' crosses '/' */
	const char *key;  /* the file-name key for the kernel filter */
	bool key_prefix;  /* key is a name prefix (id_ -> id_rsa, id_ed25519) */
};

struct sensitive_list {
	struct sensitive_pattern *p;
	int n;
	int cap;
};

void sensitive_init(struct sensitive_list *l);
/* Adds a user glob; its kernel key is the last component's literal prefix
 * (up to the first wildcard). Fails if the last component starts with a
 * wildcard: the kernel could not filter it cheaply. */
int sensitive_add(struct sensitive_list *l, const char *glob, char *err, size_t errlen);
void sensitive_free(struct sensitive_list *l);

/* Full-path decision for an open by process `pid`. */
bool sensitive_match(const struct sensitive_list *l, const char *path, pid_t pid);

/* Called for each watched file found at start: its resolved path, the
 * kernel's device number of its filesystem and its inode. */
typedef void (*sensitive_found_fn)(void *ctx, const char *path, uint32_t kdev, uint64_t ino);
/* Finds the watched files that exist now, so that the kernel can know them
 * by device and inode whatever name reaches them later. Absolute patterns are
 * globbed; "*\/..." patterns under each home directory (passwd), $HOME, /root
 * and `cwd`. /proc patterns are skipped (the memread record covers them).
 * Returns the number found. */
int sensitive_resolve(const struct sensitive_list *l, const char *cwd, sensitive_found_fn fn,
		      void *ctx);

#endif
