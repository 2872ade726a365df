/* The built-in list of sensitive files and the user-space confirmation step. */
#include "observe/sensitive.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>

#include "observe/fileid.h"
#include "common/strbuf.h"
#include "common/strmap.h"
#include "common/xalloc.h"

/* Credentials a CI job has no business reading unless it says so. */
static const struct sensitive_pattern builtin[] = {
    {"*/.ssh/id_*", "id_", true},
    {"/etc/ssh/ssh_host_*_key", "ssh_host_", true},
    {"*/.aws/credentials", "credentials", false},
    {"*/.aws/config", "config", false},
    {"*/.kube/config", "config", false},
    {"*/.docker/config.json", "config.json", false},
    {"*/.dockercfg", ".dockercfg", false},
    {"*/.netrc", ".netrc", false},
    {"*/.npmrc", ".npmrc", false},
    {"*/.pypirc", ".pypirc", false},
    {"*/.git-credentials", ".git-credentials", false},
    {"*/.pgpass", ".pgpass", false},
    {"*/.env", ".env", false}, /* dotenv files: a project's secrets, a worm's target */
    /* GitHub's runner file commands: what a step writes there changes every later step */
    {"*/_runner_file_commands/set_env_*", "set_env_", true},
    {"*/_runner_file_commands/add_path_*", "add_path_", true},
    /* git hooks, by the names git runs (githooks(5)): a hook the job writes runs in every
     * later git command in this checkout */
    {"*/.git/hooks/applypatch-msg", "applypatch-msg", false},
    {"*/.git/hooks/pre-applypatch", "pre-applypatch", false},
    {"*/.git/hooks/post-applypatch", "post-applypatch", false},
    {"*/.git/hooks/pre-commit", "pre-commit", false},
    {"*/.git/hooks/pre-merge-commit", "pre-merge-commit", false},
    {"*/.git/hooks/prepare-commit-msg", "prepare-commit-msg", false},
    {"*/.git/hooks/commit-msg", "commit-msg", false},
    {"*/.git/hooks/post-commit", "post-commit", false},
    {"*/.git/hooks/pre-rebase", "pre-rebase", false},
    {"*/.git/hooks/post-checkout", "post-checkout", false},
    {"*/.git/hooks/post-merge", "post-merge", false},
    {"*/.git/hooks/pre-push", "pre-push", false},
    {"*/.git/hooks/pre-receive", "pre-receive", false},
    {"*/.git/hooks/update", "update", false},
    {"*/.git/hooks/proc-receive", "proc-receive", false},
    {"*/.git/hooks/post-receive", "post-receive", false},
    {"*/.git/hooks/post-update", "post-update", false},
    {"*/.git/hooks/reference-transaction", "reference-transaction", false},
    {"*/.git/hooks/push-to-checkout", "push-to-checkout", false},
    {"*/.git/hooks/pre-auto-gc", "pre-auto-gc", false},
    {"*/.git/hooks/post-rewrite", "post-rewrite", false},
    {"*/.git/hooks/sendemail-validate", "sendemail-validate", false},
    {"*/.git/hooks/fsmonitor-watchman", "fsmonitor-watchman", false},
    {"*/.git/hooks/post-index-change", "post-index-change", false},
    {"*/.vault-token", ".vault-token", false},
    {"*/.config/gh/hosts.yml", "hosts.yml", false},
    {"*/.config/gcloud/credentials.db", "credentials.db", false},
    {"*/.config/gcloud/access_tokens.db", "access_tokens.db", false},
    {"*/.config/gcloud/application_default_credentials.json",
     "application_default_credentials.json", false},
    {"*/.azure/accessTokens.json", "accessTokens.json", false},
    {"*/.azure/msal_token_cache.json", "msal_token_cache.json", false},
    {"/var/run/secrets/kubernetes.io/serviceaccount/token", "token", false},
    {"/run/secrets/kubernetes.io/serviceaccount/token", "token", false},
    {"/etc/shadow", "shadow", false},
    {"/etc/gshadow", "gshadow", false},
    {"/proc/*/environ", "environ", false},
    {"/proc/*/mem", "mem", false},
};

void sensitive_init(struct sensitive_list *l)
{
	size_t n = sizeof(builtin) / sizeof(builtin[0]);

	l->cap = n + 16;
	l->p = xcalloc(l->cap, sizeof(*l->p));
	l->n = 0;
	for (size_t i = 0; i < n; i++) {
		l->p[l->n].glob = xstrdup(builtin[i].glob);
		l->p[l->n].key = xstrdup(builtin[i].key);
		l->p[l->n].key_prefix = builtin[i].key_prefix;
		l->n++;
	}
}

int sensitive_add(struct sensitive_list *l, const char *glob, char *err, size_t errlen)
{
	const char *base = strrchr(glob, '/');
	size_t klen;

	base = base ? base + 1 : glob;
	klen = strcspn(base, "*?[\\");
	if (glob[0] != '/' && glob[0] != '*') {
		snprintf(err, errlen, "sensitive path '%s' must be absolute or start with '*/'",
			 glob);
		return -1;
	}
	if (klen == 0) {
		snprintf(err, errlen,
			 "sensitive path '%s': the file name must start with a literal "
			 "(the kernel filters on it)",
			 glob);
		return -1;
	}
	if (klen > 63) {
		snprintf(err, errlen, "sensitive path '%s': file name longer than 63 bytes", glob);
		return -1;
	}
	if (l->n == l->cap) {
		l->cap *= 2;
		l->p = xreallocarray(l->p, l->cap, sizeof(*l->p));
	}
	l->p[l->n].glob = xstrdup(glob);
	l->p[l->n].key = xstrndup(base, klen);
	l->p[l->n].key_prefix = base[klen] != 0;
	l->n++;
	return 0;
}

void sensitive_free(struct sensitive_list *l)
{
	for (int i = 0; i < l->n; i++) {
		free((char *)l->p[i].glob);
		free((char *)l->p[i].key);
	}
	free(l->p);
	l->p = NULL;
	l->n = l->cap = 0;
}

/* /proc/<pid>/mem and /proc/<pid>/task/<tid>/mem: reading one's own is how
 * some runtimes work; reading another process's is what credential dumpers do. */
static bool own_proc_file(const char *path, pid_t pid)
{
	char own[32];
	size_t n = snprintf(own, sizeof(own), "/proc/%d/", (int)pid);

	return !strncmp(path, own, n);
}

bool sensitive_match(const struct sensitive_list *l, const char *path, pid_t pid)
{
	size_t len = strlen(path);

	if (len > 4 && !strcmp(path + len - 4, ".pub"))
		return false; /* public halves of key pairs */
	for (int i = 0; i < l->n; i++) {
		if (fnmatch(l->p[i].glob, path, 0) != 0)
			continue;
		if (!strcmp(l->p[i].glob, "/proc/*/mem") && own_proc_file(path, pid))
			continue;
		return true;
	}
	return false;
}

/* Bounds on what start-up resolution reads: passwd entries, files per glob. */
#define RESOLVE_HOMES_MAX 4096
#define RESOLVE_FILES_MAX 256

static void add_dir(struct strmap *dirs, const char *d)
{
	if (d && d[0] == '/' && d[1] && dirs->count < RESOLVE_HOMES_MAX)
		strmap_put(dirs, d, NULL);
}

static int resolve_one(const struct sensitive_list *l, const char *pattern, sensitive_found_fn fn,
		       void *ctx)
{
	glob_t g;
	int found = 0;

	if (glob(pattern, GLOB_NOSORT, NULL, &g))
		return 0;
	for (size_t i = 0; i < g.gl_pathc && i < RESOLVE_FILES_MAX; i++) {
		struct stat st;
		/* O_PATH: a FIFO or device under a watched name is not opened. */
		int fd = open(g.gl_pathv[i], O_PATH | O_CLOEXEC);

		if (fd < 0)
			continue;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		    sensitive_match(l, g.gl_pathv[i], 0)) {
			fn(ctx, g.gl_pathv[i], fileid_kdev(fd), st.st_ino);
			found++;
		}
		close(fd);
	}
	globfree(&g);
	return found;
}

int sensitive_resolve(const struct sensitive_list *l, const char *cwd, sensitive_found_fn fn,
		      void *ctx)
{
	struct strmap dirs;
	struct passwd *pw;
	int found = 0;

	strmap_init(&dirs);
	setpwent();
	while ((pw = getpwent()) && dirs.count < RESOLVE_HOMES_MAX)
		add_dir(&dirs, pw->pw_dir);
	endpwent();
	add_dir(&dirs, getenv("HOME"));
	add_dir(&dirs, "/root");
	add_dir(&dirs, cwd);
	for (int i = 0; i < l->n; i++) {
		const char *g = l->p[i].glob;

		if (!strncmp(g, "/proc/", 6))
			continue;
		if (g[0] == '/') {
			found += resolve_one(l, g, fn, ctx);
			continue;
		}
		/* "*\/rest": the rest under each directory a credential lives in. */
		strmap_for_each(d, &dirs)
		{
			struct strbuf p = STRBUF_INIT;

			sb_addf(&p, "%s/%s", d->key, g + 2);
			found += resolve_one(l, p.buf, fn, ctx);
			sb_release(&p);
		}
	}
	strmap_clear(&dirs, NULL);
	return found;
}
