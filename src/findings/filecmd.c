/*
 * Runner file commands: GitHub Actions reads the files a step writes to $GITHUB_ENV and
 * $GITHUB_PATH when the step ends and applies them to every later step. A job that puts
 * LD_PRELOAD, BASH_ENV or NODE_OPTIONS there, or a world-writable directory on PATH, runs its
 * code in the steps after it (GITHUB_ENV poisoning). The files are on the sensitive list
 * (src/observe/sensitive.c), so every open of them is a line; an open for writing is noted here
 * and the file is read when its writer exits, and again at the end of the job, before the
 * runner would apply it. docs/findings.md, `runner_file_command`. Also here: git hooks the job
 * writes into a checkout (`git_hook`), the other file that changes what later commands run.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/jsonw.h"
#include "common/xalloc.h"
#include "findings/findings.h"

/* Files followed, bytes read of each. */
#define FILECMD_MAX   64
#define FILECMD_BYTES (256u << 10)
#define VALUE_SHOWN   160

struct filecmd {
	bool is_path; /* add_path_*: one directory per line; else set_env_* */
	pid_t writer;
	char *exe, *argv_json, *step;
	uint64_t seqs[8];
	int n_seqs;
};

/* Variables that make every later step run code the job chose. */
static const char *const dangerous[] = {
    "LD_PRELOAD",
    "LD_LIBRARY_PATH",
    "LD_AUDIT",
    "BASH_ENV",
    "ENV",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "PROMPT_COMMAND",
    "GCONV_PATH",
    "PATH",
    "SHELLOPTS",
    "BASHOPTS",
    "DOTNET_STARTUP_HOOKS",
    "GIT_CONFIG_GLOBAL",
};

static bool is_dangerous(const char *name, size_t n)
{
	for (size_t i = 0; i < sizeof(dangerous) / sizeof(dangerous[0]); i++)
		if (n == strlen(dangerous[i]) && !memcmp(name, dangerous[i], n))
			return true;
	return false;
}

/* A file command file by its name: set_env_* or add_path_* in _runner_file_commands. */
static int filecmd_kind(const char *path)
{
	const char *base = strrchr(path, '/');

	if (!base || !strstr(path, "/_runner_file_commands/"))
		return -1;
	base++;
	if (!strncmp(base, "set_env_", 8))
		return 0;
	if (!strncmp(base, "add_path_", 9))
		return 1;
	return -1;
}

static void filecmd_free(void *v)
{
	struct filecmd *fc = v;

	if (!fc)
		return;
	free(fc->exe);
	free(fc->argv_json);
	free(fc->step);
	free(fc);
}

void findings_filecmd_free(struct findings *f)
{
	strmap_clear(&f->filecmds, filecmd_free);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* A git hook written: it runs in every later git command of this checkout (the job's own, or
 * the next job's on a runner that keeps its workspace). */
static void git_hook_written(struct findings *f, const struct finding_proc *p, const char *path,
			     uint64_t seq)
{
	const char *hooks = strstr(path, "/.git/hooks/");
	struct strbuf key = STRBUF_INIT, d = STRBUF_INIT;
	struct finding *x;

	sb_addf(&key, "hook:%s", path);
	x = finding_get(f, key.buf);
	if (!x) {
		x = finding_raise(f, key.buf, FK_GIT_HOOK, SEV_MEDIUM, p);
		if (!x)
			goto out;
		finding_set_desc(x,
				 "%s [pid %d] wrote the git hook %s (%s): it runs in later git "
				 "commands in this checkout",
				 findings_short_exe(p), (int)p->pid, hooks + 12, path);
		sb_addstr(&d, "\"hook\":");
		json_cstr(&d, hooks + 12);
		sb_addstr(&d, ",\"file\":");
		json_cstr(&d, path);
		finding_set_details(x, d.buf);
	}
	finding_evidence(x, seq);
	finding_act(f, x);
out:
	sb_release(&key);
	sb_release(&d);
}

void findings_on_file_write(struct findings *f, const struct finding_proc *p, const char *path,
			    uint64_t seq)
{
	int kind = filecmd_kind(path);
	struct strmap_entry *e;
	struct filecmd *fc;

	if (strstr(path, "/.git/hooks/")) {
		git_hook_written(f, p, path, seq);
		return;
	}
	if (kind < 0)
		return;
	e = strmap_get(&f->filecmds, path);
	if (!e) {
		if (f->filecmds.count >= FILECMD_MAX) {
			f->state_dropped++;
			return;
		}
		fc = xcalloc(1, sizeof(*fc));
		fc->is_path = kind == 1;
		e = strmap_put(&f->filecmds, path, NULL);
		e->val = fc;
	}
	fc = e->val;
	/* The last writer is the one the finding names. */
	fc->writer = p->pid;
	free(fc->exe);
	free(fc->argv_json);
	free(fc->step);
	fc->exe = dup_or_null(p->exe);
	fc->argv_json = dup_or_null(p->argv_json);
	fc->step = dup_or_null(p->step);
	if (fc->n_seqs < (int)(sizeof(fc->seqs) / sizeof(fc->seqs[0])))
		fc->seqs[fc->n_seqs++] = seq;
}

/* What is in the file now: opened without following a link planted at its name, a regular
 * file only, at most FILECMD_BYTES. NULL when it cannot be read. */
static char *read_filecmd(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	char *buf;
	ssize_t n;
	size_t got = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return NULL;
	}
	buf = xmalloc(FILECMD_BYTES + 1);
	while (got < FILECMD_BYTES && (n = read(fd, buf + got, FILECMD_BYTES - got)) > 0)
		got += (size_t)n;
	close(fd);
	buf[got] = 0;
	*len = got;
	return buf;
}

/* A PATH entry a job process could have filled: world-writable, or under a temporary
 * directory anyone can write to. */
static bool writable_dir(const char *dir)
{
	static const char *const tmp[] = {"/tmp", "/var/tmp", "/dev/shm"};
	struct stat st;

	for (size_t i = 0; i < sizeof(tmp) / sizeof(tmp[0]); i++) {
		size_t n = strlen(tmp[i]);

		if (!strncmp(dir, tmp[i], n) && (dir[n] == 0 || dir[n] == '/'))
			return true;
	}
	return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & S_IWOTH);
}

static void raise_filecmd(struct findings *f, const char *path, const struct filecmd *fc,
			  const char *name, size_t nlen, const char *value, size_t vlen,
			  enum finding_severity sev)
{
	struct finding_proc p = {
	    .pid = fc->writer, .exe = fc->exe, .argv_json = fc->argv_json, .step = fc->step};
	struct strbuf key = STRBUF_INIT, d = STRBUF_INIT;
	const char *base = strrchr(fc->exe ? fc->exe : "", '/');
	struct finding *x;
	int shown = vlen > VALUE_SHOWN ? VALUE_SHOWN : (int)vlen;

	sb_addf(&key, "filecmd:%s:%.*s:%.*s", path, (int)nlen, name, shown, value);
	x = finding_get(f, key.buf);
	if (!x) {
		x = finding_raise(f, key.buf, FK_RUNNER_FILE_COMMAND, sev, &p);
		if (!x)
			goto out;
		if (fc->is_path)
			finding_set_desc(x,
					 "%s [pid %d] put %.*s%s, a directory anyone can write, on "
					 "PATH for the steps after this one (GITHUB_PATH)",
					 base ? base + 1 : "a process", (int)fc->writer, shown,
					 value, vlen > VALUE_SHOWN ? "..." : "");
		else
			finding_set_desc(x,
					 "%s [pid %d] set %.*s=%.*s%s for the steps after this one "
					 "(GITHUB_ENV)",
					 base ? base + 1 : "a process", (int)fc->writer, (int)nlen,
					 name, shown, value, vlen > VALUE_SHOWN ? "..." : "");
		sb_addstr(&d, "\"file\":");
		json_cstr(&d, path);
		sb_addf(&d, ",\"command\":\"%s\",\"name\":", fc->is_path ? "add_path" : "set_env");
		json_str(&d, fc->is_path ? "PATH" : name, fc->is_path ? 4 : nlen);
		sb_addstr(&d, ",\"value\":");
		json_str(&d, value, (size_t)shown);
		if (vlen > VALUE_SHOWN)
			sb_addstr(&d, ",\"value_cut\":true");
		finding_set_details(x, d.buf);
	}
	for (int i = 0; i < fc->n_seqs; i++)
		finding_evidence(x, fc->seqs[i]);
	finding_act(f, x);
out:
	sb_release(&key);
	sb_release(&d);
}

static void scan_env(struct findings *f, const char *path, const struct filecmd *fc,
		     const char *buf, size_t len)
{
	const char *s = buf, *end = buf + len;

	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s)), *eol = nl ? nl : end;
		const char *heredoc = memmem(s, (size_t)(eol - s), "<<", 2);
		const char *eq = memchr(s, '=', (size_t)(eol - s));

		if (heredoc && (!eq || heredoc < eq)) {
			/* NAME<<DELIM, the value's lines, DELIM */
			size_t nlen = (size_t)(heredoc - s), dlen = (size_t)(eol - heredoc - 2);
			const char *v = nl ? nl + 1 : end, *q = v;

			while (q < end) {
				const char *qn = memchr(q, '\n', (size_t)(end - q)),
					   *qe = qn ? qn : end;

				if ((size_t)(qe - q) == dlen && !memcmp(q, heredoc + 2, dlen))
					break;
				q = qn ? qn + 1 : end;
			}
			if (is_dangerous(s, nlen))
				raise_filecmd(f, path, fc, s, nlen, v,
					      (size_t)(q > v ? q - v - 1 : 0), SEV_HIGH);
			s = q < end ? (memchr(q, '\n', (size_t)(end - q)) ?: end) + 1 : end;
			continue;
		}
		if (eq && is_dangerous(s, (size_t)(eq - s)))
			raise_filecmd(f, path, fc, s, (size_t)(eq - s), eq + 1,
				      (size_t)(eol - eq - 1), SEV_HIGH);
		s = eol + 1;
	}
}

static void scan_path(struct findings *f, const char *path, const struct filecmd *fc,
		      const char *buf, size_t len)
{
	const char *s = buf, *end = buf + len;

	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s)), *eol = nl ? nl : end;
		char dir[4096];
		size_t n = (size_t)(eol - s);

		if (n && n < sizeof(dir)) {
			memcpy(dir, s, n);
			dir[n] = 0;
			if (dir[n - 1] == '\r')
				dir[n - 1] = 0;
			if (writable_dir(dir))
				raise_filecmd(f, path, fc, "PATH", 4, dir, strlen(dir), SEV_MEDIUM);
		}
		s = eol + 1;
	}
}

static void scan(struct findings *f, const char *path, const struct filecmd *fc)
{
	size_t len = 0;
	char *buf = read_filecmd(path, &len);

	if (!buf)
		return;
	if (fc->is_path)
		scan_path(f, path, fc, buf, len);
	else
		scan_env(f, path, fc, buf, len);
	free(buf);
}

void findings_filecmd_exit(struct findings *f, pid_t pid)
{
	strmap_for_each(e, &f->filecmds)
	{
		const struct filecmd *fc = e->val;

		if (fc->writer == pid)
			scan(f, e->key, fc);
	}
}

void findings_filecmd_finish(struct findings *f)
{
	strmap_for_each(e, &f->filecmds) scan(f, e->key, e->val);
}
