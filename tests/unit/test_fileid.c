/* Unit tests for file identity: executable digests (cache, verification of
 * identity before hashing), kernel device numbers, and the start-up
 * resolution of watched files. Real files in a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "observe/fileid.h"
#include "observe/sensitive.h"
#include "evidence/evlog.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/rw-fileid-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *s, const char *mode)
{
	FILE *f = fopen(path, mode);

	assert_non_null(f);
	fputs(s, f);
	fclose(f);
}

/* The identity the kernel would send for path. */
static void id_of(const char *path, struct file_id *id)
{
	struct stat st;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->ctime_sec = st.st_ctim.tv_sec;
	id->ctime_nsec = st.st_ctim.tv_nsec;
	id->dev = fileid_kdev(fd);
	close(fd);
}

static void exe_digest_and_cache(void **state)
{
	char path[128], want[EVLOG_HASH_HEX];
	struct exe_cache c;
	struct exe_hash h;
	struct file_id id;

	(void)state;
	snprintf(path, sizeof(path), "%s/tool", dir);
	write_file(path, "#!/bin/true\npayload\n", "w");
	sha256_hex("#!/bin/true\npayload\n", 20, want);
	id_of(path, &id);
	exe_cache_init(&c);

	/* pid 1's exe is another file: refused by identity, found by path. */
	exe_cache_get(&c, &id, 1, 0, path, &h);
	assert_string_equal(h.sha256, want);
	assert_false(h.cut);
	exe_cache_get(&c, &id, 1, 0, path, &h);
	assert_string_equal(h.sha256, want);
	assert_int_equal(c.hashed_files, 1);
	assert_int_equal(c.hits, 1);

	exe_cache_free(&c);

	/* Changed after the kernel saw it: not the same file, no digest. */
	exe_cache_init(&c);
	write_file(path, "more\n", "a");
	exe_cache_get(&c, &id, 1, 0, path, &h);
	assert_string_equal(h.sha256, "");
	assert_string_equal(h.why, "changed");

	/* No path and no live process: nothing to hash. */
	id_of(path, &id);
	exe_cache_get(&c, &id, 1, 0, NULL, &h);
	assert_string_equal(h.sha256, "");
	exe_cache_free(&c);
}

static void exe_digest_of_live_process(void **state)
{
	struct exe_cache c;
	struct exe_hash h;
	struct file_id id;
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	(void)state;
	assert_true(n > 0);
	self[n] = 0;
	id_of(self, &id);
	exe_cache_init(&c);
	/* No path given: /proc/PID/exe alone reaches it. */
	exe_cache_get(&c, &id, getpid(), 0, NULL, &h);
	assert_int_equal(strlen(h.sha256), 64);
	exe_cache_free(&c);
}

static void device_numbers(void **state)
{
	struct strbuf sb = STRBUF_INIT;
	struct stat st;
	int fd = open("/", O_PATH);

	(void)state;
	fileid_dev_str(&sb, 254u << 20 | 3);
	assert_string_equal(sb.buf, "254:3");
	sb_release(&sb);
	/* On the usual filesystems the superblock's device is st_dev. */
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(fileid_kdev(fd), major(st.st_dev) << 20 | minor(st.st_dev));
	close(fd);
}

struct found {
	int n;
	char path[64][256];
};

static void on_found(void *ctx, const char *path, uint32_t kdev, uint64_t ino)
{
	struct found *f = ctx;

	(void)kdev;
	(void)ino;
	if (f->n < 64)
		snprintf(f->path[f->n++], sizeof(f->path[0]), "%s", path);
}

static void watched_files_resolved(void **state)
{
	struct sensitive_list l;
	struct found f = {0};
	char p[256], err[128];

	(void)state;
	snprintf(p, sizeof(p), "%s/.ssh", dir);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/.ssh/id_ed25519", dir);
	write_file(p, "k\n", "w");
	snprintf(p, sizeof(p), "%s/.ssh/id_ed25519.pub", dir);
	write_file(p, "k\n", "w");
	snprintf(p, sizeof(p), "%s/.ssh/id_fifo", dir);
	mkfifo(p, 0600);
	snprintf(p, sizeof(p), "%s/extra.key", dir);
	write_file(p, "k\n", "w");
	sensitive_init(&l);
	snprintf(p, sizeof(p), "%s/extra*", dir);
	assert_int_equal(sensitive_add(&l, p, err, sizeof(err)), 0);

	/* The key under the working directory, the extra pattern; never the
	 * public half, never a FIFO. */
	assert_true(sensitive_resolve(&l, dir, on_found, &f) >= f.n);
	snprintf(p, sizeof(p), "%s/.ssh/id_ed25519", dir);
	bool key = false, extra = false;
	for (int i = 0; i < f.n; i++) {
		key |= !strcmp(f.path[i], p);
		extra |= strstr(f.path[i], "/extra.key") != NULL;
		assert_null(strstr(f.path[i], ".pub"));
		assert_null(strstr(f.path[i], "fifo"));
	}
	assert_true(key);
	assert_true(extra);
	sensitive_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(exe_digest_and_cache),
	    cmocka_unit_test(exe_digest_of_live_process),
	    cmocka_unit_test(device_numbers),
	    cmocka_unit_test(watched_files_resolved),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
