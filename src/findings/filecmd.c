/*
 * Runner file commands: GitHub Actions reads the files a step writes to $GITHUB_ENV and
 * $GITHUB_PATH when the step ends and applies them to every later step. A job that puts
 * LD_PRELOAD, BASH_ENV or NODE_OPTIONS there, or a world-writable directory on PATH, runs its
 * code in the steps after it (GITHUB_ENV poisoning). The files are on the sensitive list
 * (src/observe/sensitive.c), so every open of them is a line; an open for writing is noted here
 * and the file is read when its writer exits, and again at the end of the job, before the
 * runner would apply it. Other platforms' equivalents are wherever a variable of the runner's
 * environment says at job start (job.c, findings_filecmd_watch): CircleCI's $BASH_ENV, a
 * shell file every later step sources, and Buildkite's $BUILDKITE_ENV_FILE, KEY=value lines;
 * their lines at job start are not the job's. Shell is parsed, never run: assignments at a word
 * boundary, aliases, function definitions. docs/findings.md, `runner_file_command`. Also here:
 * git hooks the job writes into a checkout (`git_hook`), the other file that changes what later
 * commands run.
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

/* How a file is read, as the platform that loads it reads it. */
enum fc_format {
	FC_ENV, /* NAME=value lines and NAME<<DELIM heredocs (GITHUB_ENV; Buildkite: no heredocs) */
	FC_PATH,  /* one directory per line (GITHUB_PATH) */
	FC_SHELL, /* a shell script every later step sources (CircleCI's BASH_ENV) */
};

/* A platform file named by a variable at job start (findings_filecmd_watch). */
struct fc_file {
	enum fc_format fmt;
	char *var;	      /* the variable that named it, for the finding's words */
	struct strmap before; /* its lines at job start: not the job's doing */
};

struct filecmd {
	enum fc_format fmt;
	const char *var;	    /* "GITHUB_ENV", "BASH_ENV", ... */
	const struct fc_file *file; /* NULL: GitHub's per-step files (new for every step) */
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

/* Commands a BASH_ENV alias or function would stand in for in every later step. */
static const char *const tools[] = {
    "git",    "curl",	 "wget",    "npm",  "npx",	 "node", "yarn",    "pnpm",
    "python", "python3", "pip",	    "pip3", "docker",	 "make", "sudo",    "ssh",
    "scp",    "gpg",	 "tar",	    "go",   "cargo",	 "java", "mvn",	    "gradle",
    "aws",    "gcloud",	 "kubectl", "helm", "terraform", "cd",	 "command", "builtin",
    "source", "exec",	 "eval",    "bash", "sh",	 "env",	 "cat",	    "echo",
};

static bool in_list(const char *const *list, size_t n_list, const char *name, size_t n)
{
	for (size_t i = 0; i < n_list; i++)
		if (n == strlen(list[i]) && !memcmp(name, list[i], n))
			return true;
	return false;
}

static bool is_dangerous(const char *name, size_t n)
{
	return in_list(dangerous, sizeof(dangerous) / sizeof(dangerous[0]), name, n);
}

static bool is_tool(const char *name, size_t n)
{
	return in_list(tools, sizeof(tools) / sizeof(tools[0]), name, n);
}

/* A file command file by its name (set_env_* or add_path_* in _runner_file_commands), or a
 * platform file watched by name. -1: neither. */
static int filecmd_kind(const struct findings *f, const char *path, const char **var,
			const struct fc_file **file)
{
	const char *base = strrchr(path, '/');
	const struct strmap_entry *e = strmap_get(&f->filecmd_files, path);

	*file = NULL;
	if (e) {
		*file = e->val;
		*var = (*file)->var;
		return (int)(*file)->fmt;
	}
	if (!base || !strstr(path, "/_runner_file_commands/"))
		return -1;
	base++;
	*var = base[0] == 's' ? "GITHUB_ENV" : "GITHUB_PATH";
	if (!strncmp(base, "set_env_", 8))
		return FC_ENV;
	if (!strncmp(base, "add_path_", 9))
		return FC_PATH;
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

static void fc_file_free(void *v)
{
	struct fc_file *w = v;

	if (!w)
		return;
	free(w->var);
	strmap_clear(&w->before, NULL);
	free(w);
}

void findings_filecmd_free(struct findings *f)
{
	strmap_clear(&f->filecmds, filecmd_free);
	strmap_clear(&f->filecmd_files, fc_file_free);
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
	const struct fc_file *file;
	const char *var = NULL;
	int kind = filecmd_kind(f, path, &var, &file);
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
		fc->fmt = (enum fc_format)kind;
		fc->var = var;
		fc->file = file;
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

/* Why a line is a finding. */
enum fc_reason {
	FR_VAR,	 /* a dangerous variable set */
	FR_DIR,	 /* a directory anyone can write put on PATH */
	FR_TOOL, /* a common command redefined as an alias or function (BASH_ENV) */
};

static const char *command_name(const struct filecmd *fc)
{
	if (fc->fmt == FC_PATH)
		return "add_path";
	if (fc->fmt == FC_SHELL)
		return "bash_env";
	return fc->file ? "env_file" : "set_env";
}

static void describe(struct finding *x, const struct filecmd *fc, enum fc_reason why,
		     const char *name, size_t nlen, const char *value, int shown, bool cut)
{
	const char *base = strrchr(fc->exe ? fc->exe : "", '/');
	const char *who = base ? base + 1 : "a process";

	if (why == FR_DIR)
		finding_set_desc(x,
				 "%s [pid %d] put %.*s%s, a directory anyone can write, on PATH "
				 "for the steps after this one (%s)",
				 who, (int)fc->writer, shown, value, cut ? "..." : "", fc->var);
	else if (why == FR_TOOL)
		finding_set_desc(x,
				 "%s [pid %d] redefined %.*s in %s: the steps after this one run "
				 "its definition instead of the command (%.*s%s)",
				 who, (int)fc->writer, (int)nlen, name, fc->var, shown, value,
				 cut ? "..." : "");
	else
		finding_set_desc(x, "%s [pid %d] set %.*s=%.*s%s for the steps after this one (%s)",
				 who, (int)fc->writer, (int)nlen, name, shown, value,
				 cut ? "..." : "", fc->var);
}

static void raise_filecmd(struct findings *f, const char *path, const struct filecmd *fc,
			  enum fc_reason why, const char *name, size_t nlen, const char *value,
			  size_t vlen, enum finding_severity sev)
{
	struct finding_proc p = {
	    .pid = fc->writer, .exe = fc->exe, .argv_json = fc->argv_json, .step = fc->step};
	struct strbuf key = STRBUF_INIT, d = STRBUF_INIT;
	struct finding *x;
	int shown = vlen > VALUE_SHOWN ? VALUE_SHOWN : (int)vlen;

	sb_addf(&key, "filecmd:%s:%.*s:%.*s", path, (int)nlen, name, shown, value);
	x = finding_get(f, key.buf);
	if (!x) {
		x = finding_raise(f, key.buf, FK_RUNNER_FILE_COMMAND, sev, &p);
		if (!x)
			goto out;
		describe(x, fc, why, name, nlen, value, shown, vlen > VALUE_SHOWN);
		sb_addstr(&d, "\"file\":");
		json_cstr(&d, path);
		sb_addf(&d, ",\"variable\":\"%s\",\"command\":\"%s\",\"name\":", fc->var,
			command_name(fc));
		json_str(&d, name, nlen);
		sb_addstr(&d, ",\"value\":");
		json_str(&d, value, (size_t)shown);
		if (vlen > VALUE_SHOWN)
			sb_addstr(&d, ",\"value_cut\":true");
		if (why == FR_TOOL)
			sb_addstr(&d, ",\"redefines\":true");
		finding_set_details(x, d.buf);
	}
	for (int i = 0; i < fc->n_seqs; i++)
		finding_evidence(x, fc->seqs[i]);
	finding_act(f, x);
out:
	sb_release(&key);
	sb_release(&d);
}

/* The line was in the file when the job started (a watched platform file): the runner's or an
 * earlier step's, not this job's. */
static bool was_there(const struct filecmd *fc, const char *s, size_t n)
{
	char *line;
	bool there;

	if (!fc->file || !fc->file->before.count)
		return false;
	line = xstrndup(s, n);
	there = strmap_get(&fc->file->before, line) != NULL;
	free(line);
	return there;
}

static void scan_env(struct findings *f, const char *path, const struct filecmd *fc,
		     const char *buf, size_t len)
{
	const char *s = buf, *end = buf + len;
	/* Buildkite's env file is KEY=value lines only; GitHub's also takes heredocs. */
	bool heredocs = !fc->file;

	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s)), *eol = nl ? nl : end;
		const char *heredoc = heredocs ? memmem(s, (size_t)(eol - s), "<<", 2) : NULL;
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
				raise_filecmd(f, path, fc, FR_VAR, s, nlen, v,
					      (size_t)(q > v ? q - v - 1 : 0), SEV_HIGH);
			s = q < end ? (memchr(q, '\n', (size_t)(end - q)) ?: end) + 1 : end;
			continue;
		}
		if (eq && is_dangerous(s, (size_t)(eq - s)) && !was_there(fc, s, (size_t)(eol - s)))
			raise_filecmd(f, path, fc, FR_VAR, s, (size_t)(eq - s), eq + 1,
				      (size_t)(eol - eq - 1), SEV_HIGH);
		s = eol + 1;
	}
}

/* One directory: a finding when anyone can write it. */
static void check_dir(struct findings *f, const char *path, const struct filecmd *fc, const char *s,
		      size_t n)
{
	char dir[4096];

	if (!n || n >= sizeof(dir))
		return;
	memcpy(dir, s, n);
	dir[n] = 0;
	if (dir[n - 1] == '\r')
		dir[n - 1] = 0;
	if (writable_dir(dir))
		raise_filecmd(f, path, fc, FR_DIR, "PATH", 4, dir, strlen(dir), SEV_MEDIUM);
}

static void scan_path(struct findings *f, const char *path, const struct filecmd *fc,
		      const char *buf, size_t len)
{
	const char *s = buf, *end = buf + len;

	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s)), *eol = nl ? nl : end;

		check_dir(f, path, fc, s, (size_t)(eol - s));
		s = eol + 1;
	}
}

static bool name_char(char c, bool first)
{
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (!first && c >= '0' && c <= '9');
}

/* Where a shell word can start a command or an assignment. */
static bool word_boundary(const char *line, const char *p)
{
	return p == line || strchr(" \t;&|({", p[-1]);
}

/* The value of an assignment as written: a quoted word to its closing quote, else up to
 * the first blank or ';'. No expansion: runwarden never evaluates the job's shell. */
static size_t shell_value(const char *v, const char *eol, const char **start)
{
	const char *q;

	if (v < eol && (*v == '"' || *v == '\'')) {
		q = memchr(v + 1, *v, (size_t)(eol - v - 1));
		*start = v + 1;
		return (size_t)((q ? q : eol) - v - 1);
	}
	*start = v;
	for (q = v; q < eol && !strchr(" \t;&|", *q); q++)
		;
	return (size_t)(q - v);
}

/* A PATH value in BASH_ENV: each literal entry; entries that need expansion ($HOME/bin,
 * $PATH itself) are not judged (docs/findings.md). */
static void scan_path_value(struct findings *f, const char *path, const struct filecmd *fc,
			    const char *v, size_t n)
{
	const char *end = v + n;

	while (v < end) {
		const char *c = memchr(v, ':', (size_t)(end - v)), *e = c ? c : end;

		if (e > v && *v == '/' && !memchr(v, '$', (size_t)(e - v)))
			check_dir(f, path, fc, v, (size_t)(e - v));
		v = e + 1;
	}
}

/* `NAME() {`, `NAME ()`, `function NAME`: the name defined, or 0. */
static size_t function_name(const char *s, const char *eol, const char **name)
{
	const char *p = s, *n;

	if ((size_t)(eol - p) > 9 && !memcmp(p, "function", 8) && (p[8] == ' ' || p[8] == '\t')) {
		for (p += 9; p < eol && (*p == ' ' || *p == '\t'); p++)
			;
		for (n = p; n < eol && !strchr(" \t({;", *n); n++)
			;
		*name = p;
		return (size_t)(n - p);
	}
	for (n = p; n < eol && !strchr(" \t(){};=", *n); n++)
		;
	for (p = n; p < eol && (*p == ' ' || *p == '\t'); p++)
		;
	if (n == s || eol - p < 2 || p[0] != '(' || p[1] != ')')
		return 0;
	*name = s;
	return (size_t)(n - s);
}

/* One line of a shell file later steps source. Conservative and bounded: every NAME= at a word
 * boundary (export, declare -x, a bare assignment, several on one line), `alias NAME=` and
 * function definitions; quotes are taken as written, nothing is expanded. */
static void scan_shell_line(struct findings *f, const char *path, const struct filecmd *fc,
			    const char *s, const char *eol)
{
	const char *fname, *v;
	size_t n, vn;

	while (s < eol && (*s == ' ' || *s == '\t'))
		s++;
	if (s == eol || *s == '#' || was_there(fc, s, (size_t)(eol - s)))
		return;
	if ((n = function_name(s, eol, &fname)) && is_tool(fname, n))
		raise_filecmd(f, path, fc, FR_TOOL, fname, n, s, (size_t)(eol - s), SEV_HIGH);
	for (const char *p = s; p < eol; p++) {
		const char *q = p;
		bool alias;

		if (!name_char(*p, true) || !word_boundary(s, p))
			continue;
		while (q < eol && name_char(*q, q == p))
			q++;
		alias = q - p == 5 && !memcmp(p, "alias", 5);
		if (alias) {
			/* alias NAME=...: the name is the next word */
			for (p = q; p < eol && (*p == ' ' || *p == '\t'); p++)
				;
			for (q = p; q < eol && *q != '=' && *q != ' ' && *q != '\t'; q++)
				;
			if (q < eol && *q == '=' && is_tool(p, (size_t)(q - p)))
				raise_filecmd(f, path, fc, FR_TOOL, p, (size_t)(q - p), s,
					      (size_t)(eol - s), SEV_HIGH);
			p = q < eol ? q : eol - 1;
			continue;
		}
		n = (size_t)(q - p);
		if (q + 1 < eol && q[0] == '+' && q[1] == '=')
			q++; /* NAME+=value appends: as dangerous as setting it */
		if (q >= eol || *q != '=') {
			p = q - 1;
			continue;
		}
		vn = shell_value(q + 1, eol, &v);
		if (n == 4 && !memcmp(p, "PATH", 4))
			scan_path_value(f, path, fc, v, vn);
		else if (is_dangerous(p, n))
			raise_filecmd(f, path, fc, FR_VAR, p, n, v, vn, SEV_HIGH);
		p = v + vn - 1 < p ? p : v + vn - 1;
	}
}

static void scan_shell(struct findings *f, const char *path, const struct filecmd *fc,
		       const char *buf, size_t len)
{
	const char *s = buf, *end = buf + len;

	while (s < end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s)), *eol = nl ? nl : end;

		scan_shell_line(f, path, fc, s, eol);
		s = eol + 1;
	}
}

static void scan(struct findings *f, const char *path, const struct filecmd *fc)
{
	size_t len = 0;
	char *buf = read_filecmd(path, &len);

	if (!buf)
		return;
	if (fc->fmt == FC_PATH)
		scan_path(f, path, fc, buf, len);
	else if (fc->fmt == FC_SHELL)
		scan_shell(f, path, fc, buf, len);
	else
		scan_env(f, path, fc, buf, len);
	free(buf);
}

int findings_filecmd_watch(struct findings *f, const char *path, bool shell, const char *var)
{
	bool created;
	struct strmap_entry *e;
	struct fc_file *w;
	size_t len = 0;
	char *buf;

	if (f->filecmd_files.count >= 8)
		return -1;
	e = strmap_put(&f->filecmd_files, path, &created);
	if (!created)
		return 0;
	w = xcalloc(1, sizeof(*w));
	w->fmt = shell ? FC_SHELL : FC_ENV;
	w->var = xstrdup(var);
	strmap_init(&w->before);
	e->val = w;
	buf = read_filecmd(path, &len);
	for (const char *s = buf, *end = buf + len; buf && s < end;) {
		const char *nl = memchr(s, '\n', (size_t)(end - s)), *eol = nl ? nl : end;
		char *line;

		if (shell)
			while (s < eol && (*s == ' ' || *s == '\t'))
				s++;
		line = xstrndup(s, (size_t)(eol - s));
		strmap_put(&w->before, line, NULL);
		free(line);
		s = eol + 1;
	}
	free(buf);
	return 0;
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
