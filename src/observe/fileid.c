/* Files by device and inode; executables by content (see fileid.h). */
#include "observe/fileid.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/util.h"
#include "common/xalloc.h"
#include "common/sha256.h"

static uint32_t kdev_of(unsigned maj, unsigned min)
{
	return (uint32_t)(maj << 20 | (min & 0xfffff));
}

/* The mount an fd is on, from /proc/self/fdinfo. -1 if unknown. */
static int mount_id_of(int fd)
{
	char path[64], buf[1024], *p;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	n = read_text_bounded(path, buf, sizeof(buf));
	if (n <= 0)
		return -1;
	p = strstr(buf, "mnt_id:");
	return p ? atoi(p + 7) : -1;
}

uint32_t fileid_kdev(int fd)
{
	struct stat st;
	int id = mount_id_of(fd);
	uint32_t dev = 0;

	if (id >= 0) {
		FILE *f = fopen("/proc/self/mountinfo", "re");
		char *line = NULL;
		size_t cap = 0;

		while (f && getline(&line, &cap, f) > 0) {
			int mid, parent;
			unsigned maj, min;

			if (sscanf(line, "%d %d %u:%u", &mid, &parent, &maj, &min) == 4 &&
			    mid == id) {
				dev = kdev_of(maj, min);
				break;
			}
		}
		free(line);
		if (f)
			fclose(f);
	}
	if (!dev && fstat(fd, &st) == 0)
		dev = kdev_of(major(st.st_dev), minor(st.st_dev));
	return dev;
}

void fileid_dev_str(struct strbuf *sb, uint32_t kdev)
{
	sb_addf(sb, "%u:%u", kdev >> 20, kdev & 0xfffff);
}

void exe_cache_init(struct exe_cache *c)
{
	memset(c, 0, sizeof(*c));
	strmap_init(&c->m);
}

void exe_cache_free(struct exe_cache *c)
{
	strmap_clear(&c->m, free);
}

/* Is the file open at fd the one the kernel described? Same inode, size and
 * ctime (which moves on every change of content), on the same filesystem.
 * *changed: the same inode, written to since. */
static bool same_file(int fd, const struct file_id *id, bool *changed)
{
	struct stat st;

	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_ino != id->ino)
		return false;
	if (kdev_of(major(st.st_dev), minor(st.st_dev)) != id->dev && fileid_kdev(fd) != id->dev)
		return false;
	if (st.st_size != (off_t)id->size || st.st_ctim.tv_sec != id->ctime_sec ||
	    st.st_ctim.tv_nsec != (long)id->ctime_nsec) {
		*changed = true;
		return false;
	}
	return true;
}

/* Opens the executable for reading, by the first way that still leads to the
 * same file. O_PATH first: nothing is opened for real (no FIFO, no device)
 * before it is known to be that regular file. */
static int open_exe(const struct file_id *id, pid_t pid, pid_t ppid, const char *exe_path,
		    bool *changed)
{
	char cand[4][4200];
	int n = 0;

	snprintf(cand[n++], sizeof(cand[0]), "/proc/%d/exe", (int)pid);
	if (exe_path && exe_path[0] == '/') {
		snprintf(cand[n++], sizeof(cand[0]), "/proc/%d/root%s", (int)pid, exe_path);
		if (ppid > 0)
			snprintf(cand[n++], sizeof(cand[0]), "/proc/%d/root%s", (int)ppid,
				 exe_path);
		snprintf(cand[n++], sizeof(cand[0]), "%s", exe_path);
	}
	for (int i = 0; i < n; i++) {
		char self[64];
		int pfd = open(cand[i], O_PATH | O_CLOEXEC), fd;

		if (pfd < 0)
			continue;
		if (!same_file(pfd, id, changed)) {
			close(pfd);
			continue;
		}
		snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
		fd = open(self, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		close(pfd);
		if (fd >= 0 && same_file(fd, id, changed))
			return fd;
		if (fd >= 0)
			close(fd);
	}
	return -1;
}

/* SHA-256 of the first EXE_HASH_MAX bytes of fd. */
static int hash_fd(struct exe_cache *c, int fd, struct exe_hash *out)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char buf[1 << 16];
	uint64_t total = 0;
	int rc = -1;

	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		goto out;
	for (;;) {
		size_t want = sizeof(buf);
		ssize_t r;

		if (total == EXE_HASH_MAX) {
			out->cut = read(fd, buf, 1) > 0;
			break;
		}
		if (want > EXE_HASH_MAX - total)
			want = EXE_HASH_MAX - total;
		r = read(fd, buf, want);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto out;
		if (r == 0)
			break;
		if (!EVP_DigestUpdate(md, buf, r))
			goto out;
		total += r;
	}
	sha256_final_hex(md, out->sha256);
	c->hashed_files++;
	c->hashed_bytes += total;
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	return rc;
}

void exe_cache_get(struct exe_cache *c, const struct file_id *id, pid_t pid, pid_t ppid,
		   const char *exe_path, struct exe_hash *out)
{
	char key[96];
	struct strmap_entry *e;
	struct exe_hash *h;
	bool changed = false;
	int64_t t0;
	int fd;

	memset(out, 0, sizeof(*out));
	snprintf(key, sizeof(key), "%u:%llu:%lld.%u:%llu", id->dev, (unsigned long long)id->ino,
		 (long long)id->ctime_sec, id->ctime_nsec, (unsigned long long)id->size);
	e = strmap_get(&c->m, key);
	if (e) {
		c->hits++;
		*out = *(struct exe_hash *)e->val;
		return;
	}
	if (c->hashed_bytes >= EXE_HASH_BUDGET) {
		out->why = "budget";
		return;
	}
	t0 = now_mono_ns();
	fd = open_exe(id, pid, ppid, exe_path, &changed);
	if (fd < 0) {
		/* Written to after the exec, or exited and unreachable by its
		 * path before the record was read. */
		out->why = changed ? "changed" : "gone";
		return;
	}
	if (hash_fd(c, fd, out)) {
		close(fd);
		memset(out, 0, sizeof(*out));
		out->why = "unreadable";
		return;
	}
	close(fd);
	c->hash_ns += now_mono_ns() - t0;
	if (c->m.count >= EXE_CACHE_MAX) /* forget the oldest: bounded memory */
		free(strmap_del(&c->m, c->m.first->key));
	h = xmalloc(sizeof(*h));
	*h = *out;
	strmap_put(&c->m, key, NULL)->val = h;
}
