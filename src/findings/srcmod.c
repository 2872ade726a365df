/* The checkout's tracked files at start and at the end of the job (see srcmod.h). */
#include "findings/srcmod.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <linux/openat2.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/jsonw.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "observe/fileid.h"

void srcmod_init(struct srcmod *s)
{
	memset(s, 0, sizeof(*s));
	s->wd_fd = -1;
	strmap_init(&s->by_id);
	strmap_init(&s->by_path);
}

void srcmod_free(struct srcmod *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->files[i].path);
		for (int w = 0; w < s->files[i].n_w; w++)
			free(s->files[i].w[w].exe);
	}
	free(s->files);
	free(s->workdir);
	if (s->wd_fd >= 0)
		close(s->wd_fd);
	strmap_clear(&s->by_id, NULL);
	strmap_clear(&s->by_path, NULL);
	srcmod_init(s);
}

/* A path of the index, below the work tree and nowhere else: no symlink followed on the way
 * (a directory the job swapped for a link fails with ELOOP or EXDEV), no magic links. */
static int open_beneath(int wd_fd, const char *path, int flags)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_NOFOLLOW | O_CLOEXEC),
			       .resolve =
				   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};

	return (int)syscall(SYS_openat2, wd_fd, path, &how, sizeof(how));
}

/* stat of a tracked path as it is now; -1 with errno when it cannot be reached below the
 * work tree. *kdev_fd: the O_PATH descriptor, left open for the caller when asked. */
static int stat_beneath(int wd_fd, const char *path, struct stat *st, int *path_fd)
{
	int fd = open_beneath(wd_fd, path, O_PATH), rc;

	if (fd < 0)
		return -1;
	rc = fstat(fd, st);
	if (rc || !path_fd)
		close(fd);
	else
		*path_fd = fd;
	return rc;
}

static bool blob_update(EVP_MD_CTX *ctx, const void *buf, size_t n)
{
	return EVP_DigestUpdate(ctx, buf, n) == 1;
}

/* SHA-1 of git's blob object for the bytes read from fd (size of them) or given (data). */
static bool blob_id(int fd, const char *data, uint64_t size, uint8_t out[20])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char hdr[32], buf[65536];
	int hl = snprintf(hdr, sizeof(hdr), "blob %llu", (unsigned long long)size);
	uint64_t left = size;
	unsigned olen = 0;
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
		  blob_update(ctx, hdr, (size_t)hl + 1);

	if (ok && data)
		ok = blob_update(ctx, data, size);
	while (ok && !data && left) {
		ssize_t n = read(fd, buf, left < sizeof(buf) ? left : sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ok = false; /* shrank while read: changing, not this content */
			break;
		}
		ok = blob_update(ctx, buf, (size_t)n);
		left -= (uint64_t)n;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, out, &olen) == 1 && olen == 20;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* Bytes of fd from offset 0 with each CRLF pair as LF (what core.autocrlf's clean filter stores)
 * fed to ctx; returns the length so fed, or -1. */
static int64_t crlf_pass(int fd, uint64_t size, EVP_MD_CTX *ctx)
{
	char buf[65536], out[65536];
	bool cr = false; /* a CR held back: the next byte decides */
	uint64_t off = 0;
	int64_t len = 0;

	while (off < size) {
		ssize_t n =
		    pread(fd, buf, size - off < sizeof(buf) ? size - off : sizeof(buf), (off_t)off);
		size_t o = 0;

		if (n <= 0)
			return -1;
		for (ssize_t i = 0; i < n; i++) {
			if (cr && buf[i] != '\n')
				out[o++] = '\r';
			cr = buf[i] == '\r';
			if (!cr)
				out[o++] = buf[i];
		}
		if (ctx && !blob_update(ctx, out, o))
			return -1;
		len += (int64_t)o;
		off += (uint64_t)n;
	}
	if (cr && ctx && !blob_update(ctx, "\r", 1))
		return -1;
	return len + cr;
}

/* The blob id of fd's content after the CRLF clean filter: a checkout made with
 * core.autocrlf holds CRLF where the index's blob has LF. */
static bool blob_id_crlf(int fd, uint64_t size, uint8_t out[20])
{
	int64_t len = crlf_pass(fd, size, NULL);
	EVP_MD_CTX *ctx;
	char hdr[32];
	unsigned olen = 0;
	int hl;
	bool ok;

	if (len < 0 || !(ctx = EVP_MD_CTX_new()))
		return false;
	hl = snprintf(hdr, sizeof(hdr), "blob %lld", (long long)len);
	ok = EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) == 1 &&
	     blob_update(ctx, hdr, (size_t)hl + 1) && crlf_pass(fd, size, ctx) == len &&
	     EVP_DigestFinal_ex(ctx, out, &olen) == 1 && olen == 20;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* The blob id of a tracked path now (a regular file or a symlink), within the job's hash
 * budget. Returns 0, or -1 with *why (static) when the content could not be hashed. */
static int hash_path(struct srcmod *s, const char *path, const struct stat *st, uint8_t out[20],
		     uint8_t *out_crlf, const char **why)
{
	struct stat now;
	int fd;
	bool ok;

	if (S_ISLNK(st->st_mode)) {
		char target[4096];
		ssize_t n;

		fd = open_beneath(s->wd_fd, path, O_PATH);
		n = fd < 0 ? -1 : readlinkat(fd, "", target, sizeof(target));
		if (fd >= 0)
			close(fd);
		if (n < 0 || n >= (ssize_t)sizeof(target)) {
			*why = "unreadable link";
			return -1;
		}
		return blob_id(-1, target, (uint64_t)n, out) ? 0 : (*why = "hash failed", -1);
	}
	if (!S_ISREG(st->st_mode)) {
		*why = "not a regular file";
		return -1;
	}
	if (s->hashed_bytes + (uint64_t)st->st_size > s->lim.hash_bytes_max) {
		*why = "hash budget spent";
		s->files_unhashed++;
		return -1;
	}
	/* O_NONBLOCK: a FIFO swapped in after the stat must not hold the agent. */
	fd = open_beneath(s->wd_fd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 || fstat(fd, &now) || !S_ISREG(now.st_mode) || now.st_ino != st->st_ino) {
		if (fd >= 0)
			close(fd);
		*why = "changed while read";
		return -1;
	}
	s->hashed_bytes += (uint64_t)now.st_size;
	s->hashed_files++;
	ok = blob_id(fd, NULL, (uint64_t)now.st_size, out);
	if (ok && out_crlf) {
		s->hashed_bytes += (uint64_t)now.st_size * 2;
		ok = blob_id_crlf(fd, (uint64_t)now.st_size, out_crlf);
	}
	close(fd);
	if (!ok)
		*why = "changed while read";
	return ok ? 0 : -1;
}

/* The index entry still describes the file (git's own test, without ctime, uid and dev,
 * which a copy of the checkout changes): then its id is the file's. A file modified in the
 * second the index was written cannot be told by its stat ("racy git"): hashed. */
static bool index_clean(const git_index_entry *e, const struct stat *st,
			const struct timespec *index_mtime)
{
	bool type_ok = (S_ISREG(st->st_mode) && (e->mode & 0170000) == 0100000) ||
		       (S_ISLNK(st->st_mode) && e->mode == GIT_FILEMODE_LINK);

	if (!type_ok || e->file_size != (uint32_t)st->st_size || e->ino != (uint32_t)st->st_ino ||
	    e->mtime.seconds != (int32_t)st->st_mtim.tv_sec ||
	    (e->mtime.nanoseconds && e->mtime.nanoseconds != (uint32_t)st->st_mtim.tv_nsec))
		return false;
	return st->st_mtim.tv_sec < index_mtime->tv_sec;
}

/* The kernel's device number for a stat's st_dev (they differ on btrfs subvolumes): looked
 * up once per filesystem, a checkout spans one or two. */
static uint32_t kdev_for(dev_t dev, int fd, dev_t *seen, uint32_t *kdev, int *n)
{
	for (int i = 0; i < *n; i++)
		if (seen[i] == dev)
			return kdev[i];
	if (*n == 16)
		return fileid_kdev(fd);
	seen[*n] = dev;
	kdev[*n] = fileid_kdev(fd);
	return kdev[(*n)++];
}

static void id_key(char *buf, size_t len, uint32_t kdev, uint64_t ino)
{
	snprintf(buf, len, "%u:%llu", kdev, (unsigned long long)ino);
}

/* Entries a build never reaches through the work tree: conflicts, sparse-checkout entries,
 * submodules (their own repositories). */
static bool entry_skipped(const git_index_entry *e)
{
	return GIT_INDEX_ENTRY_STAGE(e) != 0 ||
	       (e->flags_extended & GIT_INDEX_ENTRY_SKIP_WORKTREE) ||
	       e->mode == GIT_FILEMODE_COMMIT;
}

static void add_entry(struct srcmod *s, const git_index_entry *e,
		      const struct timespec *index_mtime, dev_t *seen, uint32_t *kdevs, int *nseen)
{
	size_t plen = strlen(e->path);
	struct srcmod_file *f;
	struct stat st;
	const char *why;
	int pfd = -1;

	if (s->n >= s->lim.files_max || s->path_bytes + plen + 1 > SRCMOD_PATH_BYTES_MAX) {
		s->files_skipped++;
		return;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 256;
		s->files = xreallocarray(s->files, s->cap, sizeof(*s->files));
	}
	f = &s->files[s->n++];
	memset(f, 0, sizeof(*f));
	f->path = xstrdup(e->path);
	s->path_bytes += plen + 1;
	if (stat_beneath(s->wd_fd, e->path, &st, &pfd))
		return; /* not in the work tree at start: nothing of ours to change */
	f->present = true;
	strmap_put(&s->by_path, f->path, NULL)->val = (void *)(uintptr_t)s->n;
	f->st_dev = st.st_dev;
	f->ino = st.st_ino;
	f->st_mode = st.st_mode;
	f->size = st.st_size;
	f->mtime = st.st_mtim;
	f->ctime = st.st_ctim;
	f->kdev = kdev_for(st.st_dev, pfd, seen, kdevs, nseen);
	close(pfd);
	if (index_clean(e, &st, index_mtime)) {
		memcpy(f->start_id, e->id.id, 20);
		f->start_known = true;
		f->start_from_index = true;
	} else {
		f->start_known = hash_path(s, e->path, &st, f->start_id, NULL, &why) == 0;
	}
	if (S_ISREG(st.st_mode)) {
		char k[48];
		struct strmap_entry *m;

		id_key(k, sizeof(k), f->kdev, f->ino);
		m = strmap_put(&s->by_id, k, NULL);
		m->val = (void *)(uintptr_t)s->n; /* a hard-linked pair: the last one named */
	}
}

static int open_repo(const char *dir, git_repository **repo, char *err, size_t errlen)
{
	int rc = git_repository_open_ext(repo, dir, 0, NULL);
	const git_error *ge;

	if (rc == GIT_ENOTFOUND)
		return 1;
	if (rc) {
		ge = git_error_last();
		snprintf(err, errlen, "%s: cannot open the git checkout: %s", dir,
			 ge && ge->message ? ge->message : "libgit2 error");
		return -1;
	}
	if (git_repository_is_bare(*repo) || !git_repository_workdir(*repo)) {
		git_repository_free(*repo);
		return 1;
	}
	return 0;
}

/* The index is read whole by libgit2: refuse one larger than any real checkout's. */
static int index_stat(git_repository *repo, struct timespec *mtime, char *err, size_t errlen)
{
	struct strbuf p = STRBUF_INIT;
	struct stat st;
	int rc = 0;

	sb_addf(&p, "%sindex", git_repository_path(repo));
	if (stat(p.buf, &st)) {
		memset(mtime, 0, sizeof(*mtime)); /* no index yet: nothing is tracked */
	} else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > SRCMOD_INDEX_BYTES_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %u MiB", p.buf,
			 SRCMOD_INDEX_BYTES_MAX >> 20);
		rc = -1;
	} else {
		*mtime = st.st_mtim;
	}
	sb_release(&p);
	return rc;
}

int srcmod_snapshot(struct srcmod *s, const char *dir, const struct srcmod_limits *lim, char *err,
		    size_t errlen)
{
	git_repository *repo = NULL;
	git_index *idx = NULL;
	struct timespec index_mtime;
	dev_t seen[16];
	uint32_t kdevs[16];
	int nseen = 0, rc;
	int64_t t0 = now_mono_ns();

	s->lim = *lim;
	git_libgit2_init();
	/* The checkout belongs to the runner's user, we are root: libgit2 reads it, it runs
	 * nothing from it, so git's ownership check (against running its hooks) is not ours. */
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	rc = open_repo(dir, &repo, err, errlen);
	if (rc)
		goto out;
	rc = index_stat(repo, &index_mtime, err, errlen);
	if (!rc && git_repository_index(&idx, repo)) {
		const git_error *ge = git_error_last();

		snprintf(err, errlen, "%s: cannot read the git index: %s", dir,
			 ge && ge->message ? ge->message : "libgit2 error");
		rc = -1;
	}
	if (rc)
		goto out;
	s->workdir = xstrdup(git_repository_workdir(repo));
	s->wd_fd = open(s->workdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->wd_fd < 0) {
		snprintf(err, errlen, "%s: %s", s->workdir, strerror(errno));
		rc = -1;
		goto out;
	}
	for (size_t i = 0; i < git_index_entrycount(idx); i++) {
		const git_index_entry *e = git_index_get_byindex(idx, i);

		if (e && !entry_skipped(e))
			add_entry(s, e, &index_mtime, seen, kdevs, &nseen);
	}
	s->active = true;
	s->snapshot_ns = now_mono_ns() - t0;
out:
	git_index_free(idx);
	git_repository_free(repo);
	git_libgit2_shutdown();
	return rc;
}

void srcmod_track(struct srcmod *s,
		  size_t (*track)(void *ctx, const struct file_key *keys, size_t n), void *ctx)
{
	struct file_key *keys = xcalloc(s->n ? s->n : 1, sizeof(*keys));
	size_t n = 0, put;

	for (size_t i = 0; i < s->n; i++) {
		const struct srcmod_file *f = &s->files[i];

		if (f->present && S_ISREG(f->st_mode))
			keys[n++] = (struct file_key){.ino = f->ino, .dev = f->kdev};
	}
	put = n ? track(ctx, keys, n) : 0;
	s->kernel_untracked += n - (put < n ? put : n);
	free(keys);
}

/* The first write-open or name change by a process names it; later ones add nothing. */
static void add_writer(struct srcmod *s, struct srcmod_file *f, pid_t pid, const char *exe,
		       uint64_t seq)
{
	for (int i = 0; i < f->n_w; i++)
		if (f->w[i].pid == pid)
			return;
	if (f->n_w == SRCMOD_WRITERS_PER_FILE || s->writers_total >= SRCMOD_WRITERS_MAX) {
		f->w_unlisted++;
		if (f->n_w < SRCMOD_WRITERS_PER_FILE)
			s->writers_dropped++;
		return;
	}
	f->w[f->n_w++] =
	    (struct srcmod_writer){.pid = pid, .exe = exe ? xstrdup(exe) : NULL, .seq = seq};
	s->writers_total++;
}

const char *srcmod_on_write(struct srcmod *s, uint32_t kdev, uint64_t ino, pid_t pid,
			    const char *exe, uint64_t seq)
{
	char k[48];
	struct strmap_entry *m;
	struct srcmod_file *f;

	id_key(k, sizeof(k), kdev, ino);
	m = strmap_get(&s->by_id, k);
	if (!m)
		return NULL;
	f = &s->files[(uintptr_t)m->val - 1];
	add_writer(s, f, pid, exe, seq);
	return f->path;
}

bool srcmod_is_tracked_write(struct srcmod *s, uint32_t kdev, uint64_t ino, const char *abs)
{
	char k[48];
	struct strmap_entry *m;
	struct srcmod_file *f;
	struct stat st;

	id_key(k, sizeof(k), kdev, ino);
	m = strmap_get(&s->by_id, k);
	if (!m)
		return false;
	f = &s->files[(uintptr_t)m->val - 1];
	if (srcmod_file_at(s, abs) == f)
		return true;
	return stat_beneath(s->wd_fd, f->path, &st, NULL) == 0 && st.st_ino == f->ino &&
	       st.st_dev == f->st_dev;
}

void srcmod_on_path_op(struct srcmod *s, struct srcmod_file *f, pid_t pid, const char *exe,
		       uint64_t seq)
{
	add_writer(s, f, pid, exe, seq);
}

void srcmod_track_names(struct srcmod *s,
			size_t (*put)(void *ctx, const char (*names)[TRACKED_NAME_BYTES], size_t n),
			void *ctx)
{
	char(*names)[TRACKED_NAME_BYTES] = xcalloc(s->n ? s->n : 1, TRACKED_NAME_BYTES);
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		const char *slash, *base;

		if (!s->files[i].present)
			continue;
		slash = strrchr(s->files[i].path, '/');
		base = slash ? slash + 1 : s->files[i].path;
		if (strlen(base) > TRACKED_NAME_BYTES - 1)
			base += strlen(base) - (TRACKED_NAME_BYTES - 1);
		memcpy(names[n++], base, strlen(base));
	}
	if (n)
		put(ctx, (const char(*)[TRACKED_NAME_BYTES])names, n);
	free(names);
}

/* "." and ".." out of an absolute path, as written (the kernel gave the name as passed). */
static void lexical_clean(const char *abs, struct strbuf *out)
{
	sb_reset(out);
	for (const char *p = abs; *p;) {
		const char *end;
		size_t n;

		while (*p == '/')
			p++;
		end = strchrnul(p, '/');
		n = (size_t)(end - p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			while (out->len && out->buf[out->len - 1] != '/')
				out->len--;
			if (out->len) /* the '/' before the component: at the root ".." stays there
				       */
				out->buf[--out->len] = 0;
			else if (out->buf)
				out->buf[0] = 0;
		} else if (n && !(n == 1 && p[0] == '.')) {
			sb_addch(out, '/');
			sb_add(out, p, n);
		}
		p = end;
	}
	if (!out->len)
		sb_addch(out, '/');
}

struct srcmod_file *srcmod_file_at(struct srcmod *s, const char *abs)
{
	struct strbuf clean = STRBUF_INIT;
	struct srcmod_file *f = NULL;
	size_t wl;

	if (!s->active || !s->workdir || abs[0] != '/')
		return NULL;
	lexical_clean(abs, &clean);
	wl = strlen(s->workdir);
	while (wl > 1 && s->workdir[wl - 1] == '/')
		wl--; /* libgit2 ends the work tree with '/' */
	if (clean.len > wl + 1 && !strncmp(clean.buf, s->workdir, wl) && clean.buf[wl] == '/') {
		struct strmap_entry *m = strmap_get(&s->by_path, clean.buf + wl + 1);

		if (m)
			f = &s->files[(uintptr_t)m->val - 1];
	}
	sb_release(&clean);
	return f;
}

static bool stat_same(const struct srcmod_file *f, const struct stat *st)
{
	return st->st_ino == f->ino && st->st_dev == f->st_dev &&
	       (st->st_mode & S_IFMT) == (f->st_mode & S_IFMT) && st->st_size == f->size &&
	       st->st_mtim.tv_sec == f->mtime.tv_sec && st->st_mtim.tv_nsec == f->mtime.tv_nsec &&
	       st->st_ctim.tv_sec == f->ctime.tv_sec && st->st_ctim.tv_nsec == f->ctime.tv_nsec;
}

/* One file: changed or not, and how. */
static bool file_changed(struct srcmod *s, const struct srcmod_file *f, struct srcmod_change *c)
{
	struct stat st;
	uint8_t id[20], id_crlf[20];
	const char *why = NULL;

	c->file = f;
	c->why = NULL;
	if (stat_beneath(s->wd_fd, f->path, &st, NULL)) {
		/* ELOOP/EXDEV: a directory on its path now leads elsewhere */
		c->kind = errno == ENOENT || errno == ENOTDIR ? SRCMOD_DELETED : SRCMOD_REPLACED;
		return true;
	}
	if (stat_same(f, &st))
		return false; /* ctime moves on every change of content or inode */
	c->kind = st.st_ino != f->ino || st.st_dev != f->st_dev ? SRCMOD_REPLACED : SRCMOD_MODIFIED;
	if (!S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
		return (c->kind = SRCMOD_REPLACED), true; /* a directory, FIFO, device now */
	if (!f->start_known) {
		c->kind = SRCMOD_UNVERIFIED;
		c->why = "not hashed at start (hash budget spent)";
		return true;
	}
	/* The index's id is of the cleaned content: compare a CRLF checkout's as git stores it. */
	if (hash_path(s, f->path, &st, id, f->start_from_index ? id_crlf : NULL, &why)) {
		c->kind = SRCMOD_UNVERIFIED;
		c->why = why;
		return true;
	}
	/* Touched (or rewritten, or replaced) with the same content: not a change of source. */
	return memcmp(id, f->start_id, 20) &&
	       !(f->start_from_index && !memcmp(id_crlf, f->start_id, 20));
}

size_t srcmod_compare(struct srcmod *s, struct srcmod_change **out)
{
	size_t n = 0;

	*out = NULL;
	if (!s->active)
		return 0;
	for (size_t i = 0; i < s->n; i++) {
		struct srcmod_change c;

		if (!s->files[i].present || !file_changed(s, &s->files[i], &c))
			continue;
		*out = xreallocarray(*out, n + 1, sizeof(**out));
		(*out)[n++] = c;
	}
	return n;
}

/* Files builds rewrite on purpose: package managers' lockfiles (npm install rewrites
 * package-lock.json, go mod tidy go.sum). Matched by base name. */
bool srcmod_expected_rewrite(const char *path)
{
	static const char *const names[] = {"package-lock.json",
					    "npm-shrinkwrap.json",
					    "yarn.lock",
					    "pnpm-lock.yaml",
					    "bun.lockb",
					    "Cargo.lock",
					    "Gemfile.lock",
					    "poetry.lock",
					    "Pipfile.lock",
					    "uv.lock",
					    "pdm.lock",
					    "composer.lock",
					    "go.sum",
					    "packages.lock.json",
					    "pubspec.lock",
					    "mix.lock",
					    "flake.lock",
					    "Package.resolved",
					    "gradle.lockfile",
					    "conan.lock"};
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(base, names[i]))
			return true;
	return false;
}

void srcmod_json(const struct srcmod *s, struct strbuf *sb)
{
	sb_addstr(sb, "\"source_snapshot\":");
	if (!s->active) {
		sb_addstr(sb, "null");
		return;
	}
	sb_addstr(sb, "{\"workdir\":");
	json_cstr(sb, s->workdir);
	sb_addf(sb,
		",\"files\":%zu,\"files_skipped\":%llu,\"files_unhashed\":%llu,"
		"\"kernel_untracked\":%llu,\"writers_dropped\":%llu,\"hashed_files\":%llu,"
		"\"hashed_bytes\":%llu,\"snapshot_ms\":%.1f}",
		s->n, (unsigned long long)s->files_skipped, (unsigned long long)s->files_unhashed,
		(unsigned long long)s->kernel_untracked, (unsigned long long)s->writers_dropped,
		(unsigned long long)s->hashed_files, (unsigned long long)s->hashed_bytes,
		(double)s->snapshot_ns / 1e6);
}
