/*
 * `runwarden agent`: the whole-job daemon. It listens on a root-only control
 * socket (control.h) and, on `runwarden job start`, arms one job (job.h) and
 * moves the CI runner's process into its scope; on `job stop` it releases the
 * runner, ends the job and writes the evidence exactly as `run` does.
 *
 * Surviving its own death: the cgroup programs (the fence) and the policy
 * maps are pinned under the pin root, and the job is recorded in the state
 * dir before any process enters the scope. An agent that starts and finds
 * that record knows the job's log has no closing record: its `job stop`
 * writes summary.json with "complete": false, exits non-zero, then unpins and
 * removes the scope. Until then the fence stays in force.
 *
 * One job at a time; single-threaded: the job's kernel records, its DNS gate
 * and the control socket share one epoll loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "baseline/baseline.h"
#include "ci/detect.h"
#include "daemon/control.h"
#include "job/job.h"
#include "cmds.h"
#include "common/cli.h"
#include "common/util.h"
#include "common/procfs.h"

#define DEFAULT_STATE "/var/lib/runwarden"
#define DEFAULT_PINS  "/sys/fs/bpf/runwarden"
#define BPF_FS_MAGIC_ 0xcafe4a11
#define MAX_WATCH     64

static const char usage_text[] =
    "usage: runwarden agent [options]\n"
    "\n"
    "The whole-job daemon behind `runwarden job start` and `runwarden job stop`\n"
    "(see docs/agent.md). Runs as root; its control socket is root-only.\n"
    "\n"
    "  --socket PATH      control socket (default " CONTROL_DEFAULT_SOCKET ");\n"
    "                     its directory is made private to root\n"
    "  --state DIR        where the running job is recorded (default " DEFAULT_STATE ")\n"
    "  --pin-root DIR     bpffs directory for the pinned fence (default " DEFAULT_PINS ");\n"
    "                     under /sys/fs/bpf, a bpffs is mounted there when none is\n"
    "  --foreground       do not detach (systemd, Kubernetes); otherwise the agent\n"
    "                     detaches once the socket is listening and logs to DIR/agent.log\n"
    "  --container-cgroups DIR  where the container engine creates containers (repeatable;\n"
    "                     default: system.slice, docker, machine.slice, libpod_parent\n"
    "                     under the cgroup2 mount); containers created there during a\n"
    "                     job are the job's\n"
    "  --engine unix:///PATH  the Docker API that names the containers followed (default:\n"
    "                     the agent's DOCKER_HOST, else /var/run/docker.sock)\n"
    "  --baseline STORE   record every finished job in this baseline (a SQLite file or a\n"
    "                     postgresql:// URI, docs/baseline.md), keyed by the repository,\n"
    "                     workflow and job `job start` sends\n"
    "  --baseline-min-runs N  runs of a step before a first-seen result is medium (5)\n";

/* What the state file holds: enough to finish (or report) a job whose agent died. */
struct jobrec {
	char id[64];
	char out[PATH_MAX];
	char policy[PATH_MAX];
	char key[PATH_MAX];
	char step[256];
	char mode[16];
	char scope[512];
	char pins[PATH_MAX];
	char orig_cgroup[PATH_MAX];   /* the watched process's cgroup, relative to the mount */
	int pid;		      /* the watched process */
	unsigned long long pid_start; /* its start time: a reused pid is not it */
	int agent_pid;
	int64_t started_ns;
	unsigned long long out_dev, out_ino; /* the evidence directory the agent created */
};

struct agent {
	const char *sock_path, *state_dir, *pin_root;
	char state_file[PATH_MAX]; /* for messages: the file is reached through state_fd */
	int state_fd;		   /* the state directory, root's and private */
	int lfd, epfd;
	bool active; /* a live job in j */
	bool orphan; /* a job recorded by an agent that is gone */
	struct job j;
	struct jobrec rec;
	unsigned counter;
	const char *const *container_dirs; /* NULL: the engines' usual places */
	const char *engine;		   /* the Docker API socket (NULL: default) */
	/* --baseline: the store every finished job is recorded in, and the live job's key */
	const char *bl_spec;
	int bl_min_runs;
	struct baseline_job bl;
};

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	stopping = sig;
}

/* ------------------------------------------------------------ /proc */

/* ppid and start time (clock ticks since boot) from /proc/PID/stat. */
static int proc_stat(int pid, int *ppid, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int f = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	n = read_text_bounded(path, buf, sizeof(buf));
	if (n <= 0)
		return -1;
	/* The name may hold anything, ')' included: fields follow the last one. */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	for (char *tok = strtok(p + 1, " "); tok; tok = strtok(NULL, " ")) {
		f++; /* f == 1 is field 3 (state) */
		if (f == 2 && ppid)
			*ppid = atoi(tok);
		if (f == 20) {
			if (start)
				*start = strtoull(tok, NULL, 10);
			return 0;
		}
	}
	return -1;
}

/* The cgroup v2 path of pid, relative to the mount ("/" for the root). */
static int proc_cgroup(int pid, char *out, size_t len)
{
	char path[64], buf[8192], *p;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	n = read_text_bounded(path, buf, sizeof(buf));
	if (n <= 0)
		return -1;
	p = strstr(buf, "0::");
	if (!p || (p != buf && p[-1] != '\n'))
		return -1;
	p += 3;
	snprintf(out, len, "%.*s", (int)strcspn(p, "\n"), p);
	return 0;
}

static const char *scope_rel(const char *scope_path)
{
	const char *mnt = cgroup2_mount();
	size_t n = mnt ? strlen(mnt) : 0;

	return mnt && !strncmp(scope_path, mnt, n) ? scope_path + n : scope_path;
}

static bool in_scope(int pid, const char *scope_path)
{
	const char *rel = scope_rel(scope_path);
	char cg[PATH_MAX];
	size_t n = strlen(rel);

	return proc_cgroup(pid, cg, sizeof(cg)) == 0 && !strncmp(cg, rel, n) &&
	       (cg[n] == 0 || cg[n] == '/');
}

/* Out of the scope, back where the watched process came from (or the root
 * if that cgroup is gone): the scope can then be removed. */
static int release_pid(int pid, const char *orig)
{
	const char *mnt = cgroup2_mount();
	char file[PATH_MAX + 300], num[32];

	if (!mnt)
		return -1;
	snprintf(num, sizeof(num), "%d", pid);
	snprintf(file, sizeof(file), "%s%s/cgroup.procs", mnt, strcmp(orig, "/") ? orig : "");
	if (write_file_str(file, num) == 0)
		return 0;
	snprintf(file, sizeof(file), "%s/cgroup.procs", mnt);
	return write_file_str(file, num);
}

/* Privilege wrappers between the hook and the client: skipped when choosing
 * the default process, so `sudo runwarden job start` watches sudo's caller. */
static bool is_wrapper(int pid)
{
	static const char *const names[] = {"sudo", "su", "doas", "runuser", "pkexec", "setpriv"};
	char path[64], exe[PATH_MAX];
	ssize_t n;
	const char *base;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	base = strrchr(exe, '/');
	base = base ? base + 1 : exe;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(base, names[i]))
			return true;
	return false;
}

/* The default process to watch: the client's parent, past any wrappers. */
static int default_target(int peer)
{
	int pid = peer, ppid;

	if (proc_stat(pid, &ppid, NULL))
		return -1;
	pid = ppid;
	for (int i = 0; i < 4 && pid > 1 && is_wrapper(pid); i++) {
		if (proc_stat(pid, &ppid, NULL))
			return -1;
		pid = ppid;
	}
	return pid;
}

/* The processes carrying the stop request (client, sudo, hook shell, the
 * runner's worker) are in the scope too: release them, so what remains is
 * what the job left behind. */
static void release_host(int peer, const struct jobrec *r)
{
	int pid = peer, ppid;
	unsigned long long start;

	for (int i = 0; i < 64 && pid > 1; i++) {
		if (in_scope(pid, r->scope))
			release_pid(pid, r->orig_cgroup);
		if (proc_stat(pid, &ppid, NULL))
			break;
		pid = ppid;
	}
	if (proc_stat(r->pid, NULL, &start) == 0 && start == r->pid_start &&
	    in_scope(r->pid, r->scope))
		release_pid(r->pid, r->orig_cgroup);
}

static void release_all(const struct jobrec *r)
{
	struct scope s = {.fd = -1};
	pid_t pids[1024];
	int n;

	snprintf(s.path, sizeof(s.path), "%s", r->scope);
	for (int round = 0; round < 5; round++) {
		n = scope_pids(&s, pids, 1024);
		if (!n)
			break;
		for (int i = 0; i < n; i++)
			release_pid(pids[i], r->orig_cgroup);
	}
}

/* ------------------------------------------------------------ state file */

static int rec_save(struct agent *a)
{
	const struct jobrec *r = &a->rec;
	json_t *o =
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:I,s:i,s:I,s:I,s:I}", "id", r->id,
		      "out", r->out, "policy", r->policy, "key", r->key, "step", r->step, "mode",
		      r->mode, "scope", r->scope, "pins", r->pins, "orig_cgroup", r->orig_cgroup,
		      "pid", r->pid, "pid_start", (json_int_t)r->pid_start, "agent_pid",
		      r->agent_pid, "started_ns", (json_int_t)r->started_ns, "out_dev",
		      (json_int_t)r->out_dev, "out_ino", (json_int_t)r->out_ino);
	int rc = -1, fd;

	if (!o)
		return -1;
	unlinkat(a->state_fd, "job.json.tmp", 0);
	fd = openat(a->state_fd, "job.json.tmp",
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		/* On disk before the job starts: a crash right after must find it. */
		rc = json_dumpfd(o, fd, JSON_COMPACT) || fsync(fd) ? -1 : 0;
		close(fd);
		if (rc == 0)
			rc = renameat(a->state_fd, "job.json.tmp", a->state_fd, "job.json");
	}
	json_decref(o);
	return rc;
}

static int copy_str(json_t *o, const char *key, char *out, size_t len)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (!s || strlen(s) >= len)
		return -1;
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

/* Only what this agent could have written: the paths it removes later must
 * be its own kind (a scope under the cgroup mount, a pin dir under the root). */
static int rec_load(struct agent *a, char *err, size_t errlen)
{
	struct jobrec *r = &a->rec;
	json_error_t je;
	int fd = openat(a->state_fd, "job.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	json_t *o = fd >= 0 ? json_loadfd(fd, JSON_REJECT_DUPLICATES, &je) : NULL;
	const char *mnt = cgroup2_mount();
	const char *base;
	int rc = -1;

	if (fd < 0)
		snprintf(je.text, sizeof(je.text), "%s", strerror(errno));
	else
		close(fd);
	if (!o) {
		snprintf(err, errlen, "%.200s: %.200s", a->state_file, je.text);
		return -1;
	}
	memset(r, 0, sizeof(*r));
	if (copy_str(o, "id", r->id, sizeof(r->id)) || copy_str(o, "out", r->out, sizeof(r->out)) ||
	    copy_str(o, "policy", r->policy, sizeof(r->policy)) ||
	    copy_str(o, "key", r->key, sizeof(r->key)) ||
	    copy_str(o, "step", r->step, sizeof(r->step)) ||
	    copy_str(o, "mode", r->mode, sizeof(r->mode)) ||
	    copy_str(o, "scope", r->scope, sizeof(r->scope)) ||
	    copy_str(o, "pins", r->pins, sizeof(r->pins)) ||
	    copy_str(o, "orig_cgroup", r->orig_cgroup, sizeof(r->orig_cgroup))) {
		snprintf(err, errlen, "%.300s: a field is missing or too long", a->state_file);
		goto out;
	}
	r->pid = json_integer_value(json_object_get(o, "pid"));
	r->pid_start = json_integer_value(json_object_get(o, "pid_start"));
	r->agent_pid = json_integer_value(json_object_get(o, "agent_pid"));
	r->started_ns = json_integer_value(json_object_get(o, "started_ns"));
	r->out_dev = json_integer_value(json_object_get(o, "out_dev"));
	r->out_ino = json_integer_value(json_object_get(o, "out_ino"));
	base = strrchr(r->scope, '/');
	if (!mnt || strncmp(r->scope, mnt, strlen(mnt)) || !base ||
	    strncmp(base, "/runwarden-", 11) || strstr(r->scope, "/..") ||
	    strncmp(r->pins, a->pin_root, strlen(a->pin_root)) ||
	    r->pins[strlen(a->pin_root)] != '/' || strchr(r->pins + strlen(a->pin_root) + 1, '/') ||
	    strstr(r->pins, "..")) {
		snprintf(err, errlen, "%.300s: scope or pin directory is not one runwarden makes",
			 a->state_file);
		goto out;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

/* ------------------------------------------------------------ helpers */

/* Everything job.c prints (one-line reasons, the summary) goes to the client
 * as well as to the agent's own log: stderr is swapped for a memory stream
 * while the job code runs (single-threaded, so nothing else writes). */
struct capture {
	FILE *saved, *mem;
	char *buf;
	size_t len;
};

static void capture_begin(struct capture *c)
{
	memset(c, 0, sizeof(*c));
	fflush(stderr);
	c->mem = open_memstream(&c->buf, &c->len);
	if (c->mem) {
		c->saved = stderr;
		stderr = c->mem;
	}
}

static const char *capture_end(struct capture *c)
{
	if (!c->mem)
		return "";
	fflush(c->mem);
	stderr = c->saved;
	fclose(c->mem);
	c->mem = NULL;
	if (c->buf)
		fputs(c->buf, stderr);
	return c->buf ? c->buf : "";
}

static void capture_free(struct capture *c)
{
	free(c->buf);
	c->buf = NULL;
}

static json_t *error_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *error_reply(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One line: the client prints it after "runwarden: ". */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = p[1] ? ';' : 0;
	return json_pack("{s:b,s:s}", "ok", 0, "error", msg);
}

/* Strips job.c's "runwarden: " prefixes: the client adds its own. */
static void one_line(const char *in, char *out, size_t len)
{
	size_t o = 0;

	while (*in && o + 1 < len) {
		if (!strncmp(in, "runwarden: ", 11))
			in += 11;
		while (*in && *in != '\n' && o + 1 < len)
			out[o++] = *in++;
		if (*in == '\n') {
			in++;
			if (*in && o + 2 < len) {
				out[o++] = ';';
				out[o++] = ' ';
			}
		}
	}
	out[o] = 0;
}

/* The evidence directory itself is job_arm's to create (fresh, 0700); its
 * parents may be missing on a fresh runner. */
static int mkdir_parent(const char *path)
{
	char parent[PATH_MAX];
	char *slash;

	if (strlen(path) >= sizeof(parent)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(parent, path);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return 0;
	*slash = 0;
	return mkdir_p(parent, 0755);
}

/* Request fields: strings bounded and, for paths, absolute (the agent's
 * working directory is not the client's). */
static int get_str(json_t *req, const char *key, bool path, char *out, size_t len, char *err,
		   size_t errlen)
{
	json_t *v = json_object_get(req, key);
	const char *s;

	out[0] = 0;
	if (!v || json_is_null(v))
		return 0;
	s = json_string_value(v);
	if (!s || json_string_length(v) >= len || strlen(s) != json_string_length(v)) {
		snprintf(err, errlen, "\"%s\" must be a string shorter than %zu bytes", key, len);
		return -1;
	}
	if (path && s[0] != '/') {
		snprintf(err, errlen, "\"%s\" must be an absolute path", key);
		return -1;
	}
	memcpy(out, s, strlen(s) + 1);
	return 0;
}

static int only_keys(json_t *req, const char *const *keys, char *err, size_t errlen)
{
	const char *k;
	json_t *v;

	json_object_foreach(req, k, v)
	{
		bool known = false;

		for (int i = 0; keys[i] && !known; i++)
			known = !strcmp(k, keys[i]);
		if (!known) {
			snprintf(err, errlen, "unknown field \"%.64s\"", k);
			return -1;
		}
	}
	return 0;
}

static int get_bool(json_t *req, const char *key, bool *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(req, key);

	if (!v)
		return 0;
	if (!json_is_boolean(v)) {
		snprintf(err, errlen, "\"%s\" must be true or false", key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

/* ------------------------------------------------------------ start */

static void drop_job(struct agent *a)
{
	if (a->active) {
		epoll_ctl(a->epfd, EPOLL_CTL_DEL, a->j.epfd, NULL);
		job_free(&a->j, false); /* unpins too (loader_stop) */
	}
	a->active = false;
	baseline_job_close(&a->bl);
}

/* The key of the job about to start, from the request (which `job start` fills from its own
 * CI context or flags), checked with the store before anything is armed. NULL, or a reply. */
static json_t *open_baseline(struct agent *a, json_t *req)
{
	char repo[CI_VALUE_MAX + 1] = "", workflow[CI_VALUE_MAX + 1] = "",
				 job[CI_VALUE_MAX + 1] = "", err[512], why[1024];
	char *const no_env[] = {NULL};
	struct capture cap;
	int rc;

	if (get_str(req, "repo", false, repo, sizeof(repo), err, sizeof(err)) ||
	    get_str(req, "workflow", false, workflow, sizeof(workflow), err, sizeof(err)) ||
	    get_str(req, "job", false, job, sizeof(job), err, sizeof(err)))
		return error_reply("bad request: %s", err);
	if (!a->bl_spec)
		return NULL;
	struct baseline_opts bo = {.spec = a->bl_spec,
				   .repo = repo[0] ? repo : NULL,
				   .workflow = workflow[0] ? workflow : NULL,
				   .job = job[0] ? job : NULL,
				   .min_runs = a->bl_min_runs};
	capture_begin(&cap);
	/* The agent's own environment is not the job's: the key comes with the request. */
	rc = baseline_job_open(&a->bl, &bo, no_env);
	one_line(capture_end(&cap), why, sizeof(why));
	capture_free(&cap);
	return rc ? error_reply("%s", why[0] ? why : "--baseline: cannot open the store") : NULL;
}

static json_t *op_start(struct agent *a, json_t *req, int peer)
{
	static const char *const keys[] = {
	    "op",    "out",	      "policy",	 "mode", "key",	     "step", "pid",
	    "watch", "allow_partial", "no_sign", "repo", "workflow", "job",  NULL};
	struct jobrec *r = &a->rec;
	struct sensitive_list sens;
	struct capture cap;
	char err[1024], why[2048];
	bool allow_partial = false, no_sign = false;
	enum policy_mode mode = POLICY_MODE_UNSET;
	json_t *v, *reply = NULL;
	int target;

	if (a->active || a->orphan)
		return error_reply(
		    "busy: job %s is %s (evidence to %s); run `runwarden job stop` first", r->id,
		    a->active ? "running" : "left by an agent that died", r->out);
	memset(r, 0, sizeof(*r));
	if (only_keys(req, keys, err, sizeof(err)) ||
	    get_str(req, "out", true, r->out, sizeof(r->out), err, sizeof(err)) ||
	    get_str(req, "policy", true, r->policy, sizeof(r->policy), err, sizeof(err)) ||
	    get_str(req, "key", true, r->key, sizeof(r->key), err, sizeof(err)) ||
	    get_str(req, "step", false, r->step, sizeof(r->step), err, sizeof(err)) ||
	    get_str(req, "mode", false, r->mode, sizeof(r->mode), err, sizeof(err)) ||
	    get_bool(req, "allow_partial", &allow_partial, err, sizeof(err)) ||
	    get_bool(req, "no_sign", &no_sign, err, sizeof(err)))
		return error_reply("bad request: %s", err);
	if (!r->out[0])
		return error_reply("bad request: \"out\" is required");
	if (r->mode[0]) {
		mode = policy_mode_parse(r->mode);
		if (mode == POLICY_MODE_UNSET)
			return error_reply(
			    "bad request: mode %s: expected observe, learn or enforce", r->mode);
	}
	if (mode == POLICY_MODE_ENFORCE && !r->policy[0])
		return error_reply("mode enforce needs a policy (what should be allowed?)");

	v = json_object_get(req, "pid");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 2 ||
		    json_integer_value(v) > INT_MAX)
			return error_reply("bad request: \"pid\" must be a process id above 1");
		target = (int)json_integer_value(v);
	} else {
		target = default_target(peer);
		if (target < 0)
			return error_reply("cannot find the calling process's parent in /proc");
	}
	if (target <= 1 || target == getpid())
		return error_reply(
		    "refusing to watch pid %d (init or the agent itself); pass --pid", target);
	if (proc_stat(target, NULL, &r->pid_start) ||
	    proc_cgroup(target, r->orig_cgroup, sizeof(r->orig_cgroup)))
		return error_reply("pid %d: no such process (or not in a cgroup v2 hierarchy)",
				   target);
	r->pid = target;
	r->agent_pid = getpid();
	r->started_ns = now_real_ns();

	sensitive_init(&sens);
	v = json_object_get(req, "watch");
	if (v && (!json_is_array(v) || json_array_size(v) > MAX_WATCH)) {
		sensitive_free(&sens);
		return error_reply("bad request: \"watch\" must be a list of at most %d globs",
				   MAX_WATCH);
	}
	for (size_t i = 0; v && i < json_array_size(v); i++) {
		const char *g = json_string_value(json_array_get(v, i));

		if (!g || sensitive_add(&sens, g, err, sizeof(err))) {
			sensitive_free(&sens);
			return error_reply("bad request: watch: %s", g ? err : "not a string");
		}
	}
	if (mkdir_parent(r->out)) {
		sensitive_free(&sens);
		return error_reply("--out %s: cannot create its parent: %s", r->out,
				   strerror(errno));
	}
	if ((reply = open_baseline(a, req))) {
		sensitive_free(&sens);
		return reply;
	}

	struct job_opts jo = {
	    .out_dir = r->out,
	    .step = r->step[0] ? r->step : NULL,
	    .policy = r->policy[0] ? r->policy : NULL,
	    .key = r->key[0] ? r->key : NULL,
	    .mode = mode,
	    .ring_mb = 16,
	    .allow_partial = allow_partial,
	    .no_sign = no_sign,
	    .container_dirs = a->container_dirs ? a->container_dirs : job_default_container_dirs(),
	    .engine = a->engine ? a->engine : containers_engine_socket(getenv("DOCKER_HOST")),
	    .baseline = a->bl_spec ? &a->bl : NULL};
	capture_begin(&cap);
	if (job_arm(&a->j, &jo, &sens)) {
		one_line(capture_end(&cap), why, sizeof(why));
		capture_free(&cap);
		sensitive_free(&sens);
		job_free(&a->j, false);
		baseline_job_close(&a->bl);
		return error_reply("%s", why[0] ? why : "arming failed");
	}
	one_line(capture_end(&cap), why, sizeof(why)); /* warnings (--allow-partial) */
	capture_free(&cap);
	a->active = true;
	snprintf(r->mode, sizeof(r->mode), "%s", policy_mode_name(a->j.o.mode));
	snprintf(r->scope, sizeof(r->scope), "%s", a->j.scope.path);
	snprintf(r->id, sizeof(r->id), "%lld-%d-%u", (long long)(r->started_ns / 1000000000),
		 (int)getpid(), ++a->counter);
	snprintf(r->pins, sizeof(r->pins), "%s/%s", a->pin_root, r->id);
	r->out_dev = a->j.out.dev;
	r->out_ino = a->j.out.ino;

	/* Order: fence pinned, then the record on disk, then the process in.
	 * Whenever the agent dies, what is in the scope is fenced and findable. */
	if (loader_pin(&a->j.ld, r->pins, err, sizeof(err))) {
		reply = error_reply(
		    "%s; refusing to start a job whose fence would not survive the agent", err);
		goto fail;
	}
	if (rec_save(a)) {
		reply =
		    error_reply("cannot record the job in %s: %s", a->state_file, strerror(errno));
		goto fail;
	}
	if (loader_set_runner(&a->j.ld, target)) {
		reply =
		    error_reply("cannot mark pid %d as the runner: %s", target, strerror(errno));
		unlinkat(a->state_fd, "job.json", 0);
		goto fail;
	}
	a->j.col.runner_pid = target;
	if (scope_enter(&a->j.scope, target)) {
		reply = error_reply("cannot move pid %d into %s: %s", target, r->scope,
				    strerror(errno));
		unlinkat(a->state_fd, "job.json", 0);
		goto fail;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = a->j.epfd};
	epoll_ctl(a->epfd, EPOLL_CTL_ADD, a->j.epfd, &ev);
	rw_err("job %s armed: pid %d under watch (mode %s), evidence to %s", r->id, target, r->mode,
	       r->out);
	return json_pack("{s:b,s:s,s:i,s:s,s:s,s:s,s:s}", "ok", 1, "id", r->id, "pid", target,
			 "mode", r->mode, "scope", r->scope, "out", r->out, "warnings", why);
fail:
	job_discard_out(&a->j);
	drop_job(a);
	return reply;
}

/* ------------------------------------------------------------ stop */

/* Into the directory the dead agent created, and only that one (the job may
 * have renamed it and put its own in its place). */
static bool write_orphan_summary(const struct jobrec *r, json_t *sum, char *err)
{
	struct outdir d;
	char *text = sum ? json_dumps(sum, JSON_INDENT(1)) : NULL;
	bool ok = false;

	if (!text) {
		ev_errf(err, "cannot serialise the summary");
		return false;
	}
	if (outdir_reopen(&d, r->out, (dev_t)r->out_dev, (ino_t)r->out_ino, err) == 0) {
		ok = outdir_write_file(&d, "summary.json", text, strlen(text), err) == 0 &&
		     outdir_publish(&d, err) == 0;
		outdir_close(&d);
	}
	free(text);
	return ok;
}

/* The dead agent's job: nothing can be appended to its log (the chain would
 * claim a completeness it does not have), so summary.json says what happened. */
static json_t *stop_orphan(struct agent *a, bool kill_left)
{
	const struct jobrec *r = &a->rec;
	struct scope s = {.fd = -1};
	struct strbuf t = STRBUF_INIT, started = STRBUF_INIT, finished = STRBUF_INIT;
	char reason[512], path[PATH_MAX + 32], werr[EV_ERRLEN];
	pid_t pids[256];
	int n, killed = 0;
	json_t *sum, *left = json_array(), *reply;

	snprintf(s.path, sizeof(s.path), "%s", r->scope);
	n = scope_pids(&s, pids, 256);
	for (int i = 0; i < n; i++) {
		char cl[512];

		proc_cmdline(pids[i], cl, sizeof(cl));
		json_array_append_new(left,
				      json_pack("{s:i,s:s}", "pid", (int)pids[i], "cmdline", cl));
	}
	if (n && kill_left)
		killed = scope_kill_all(&s) == 0;
	else if (n)
		release_all(r);
	snprintf(reason, sizeof(reason),
		 "the agent (pid %d) that armed job %s stopped before the job ended: recording "
		 "stopped then (events.ndjson has no closing record); the fence stayed in force "
		 "until job stop",
		 r->agent_pid, r->id);
	fmt_rfc3339(&started, r->started_ns);
	fmt_rfc3339(&finished, now_real_ns());
	sum = json_pack("{s:s,s:s,s:b,s:s,s:s?,s:s,s:s,s:n,s:b,s:s,s:o,s:b,s:{s:s,s:b}}",
			"runwarden_version", RW_VERSION, "job_id", r->id, "whole_job", 1, "mode",
			r->mode, "step", r->step[0] ? r->step : NULL, "started_at", started.buf,
			"finished_at", finished.buf, "exit_status", "complete", 0,
			"incomplete_reason", reason, "leftovers", left, "leftovers_killed", killed,
			"log", "path", "events.ndjson", "closed", 0);
	snprintf(path, sizeof(path), "%s/summary.json", r->out);
	bool written = write_orphan_summary(r, sum, werr);
	json_decref(sum);

	sb_addf(&t, "runwarden: whole-job record INCOMPLETE for job %s\n  %s\n", r->id, reason);
	sb_addf(&t, "  evidence: %s (summary.json: \"complete\": false)\n", r->out);
	if (!written)
		sb_addf(&t, "runwarden: cannot write %s: %s\n", path, werr);
	if (n)
		sb_addf(&t, "  processes left in the job (%d)%s\n", n,
			killed ? ", killed" : ", released unwatched");
	if (loader_unpin_dir(r->pins))
		sb_addf(&t, "runwarden: cannot remove the pinned fence %s: %s\n", r->pins,
			strerror(errno));
	if (scope_destroy(&s) && errno != ENOENT)
		sb_addf(&t, "runwarden: cannot remove cgroup %s: %s\n", r->scope, strerror(errno));
	fputs(t.buf, stderr);
	reply = json_pack("{s:b,s:i,s:s,s:b,s:s,s:s}", "ok", 1, "status", 1, "out", r->out,
			  "complete", 0, "reason", reason, "summary", t.buf);
	sb_release(&t);
	sb_release(&started);
	sb_release(&finished);
	return reply;
}

static json_t *op_stop(struct agent *a, json_t *req, int peer)
{
	static const char *const keys[] = {"op", "leftovers", NULL};
	char err[256], lo[16];
	struct capture cap;
	bool kill_left = true;
	json_t *reply;
	int rc;

	if (only_keys(req, keys, err, sizeof(err)) ||
	    get_str(req, "leftovers", false, lo, sizeof(lo), err, sizeof(err)))
		return error_reply("bad request: %s", err);
	if (lo[0] && strcmp(lo, "kill") && strcmp(lo, "keep"))
		return error_reply("bad request: leftovers %s: expected kill or keep", lo);
	if (!strcmp(lo, "keep"))
		kill_left = false;
	if (!a->active && !a->orphan)
		return error_reply("no job is running");

	release_host(peer, &a->rec);
	if (a->orphan) {
		reply = stop_orphan(a, kill_left);
		unlinkat(a->state_fd, "job.json", 0);
		a->orphan = false;
		return reply;
	}
	a->j.o.kill_leftovers = kill_left;
	a->j.o.release_leftovers = !kill_left;
	capture_begin(&cap);
	/* No single command: the job's own steps set its status; this one
	 * reports violations and an incomplete record. */
	rc = job_finish(&a->j, 0);
	if (!kill_left)
		release_all(&a->rec);
	bool complete = summary_complete(&a->j.col.sum, &a->j.ri);
	drop_job(a);
	capture_end(&cap);
	unlinkat(a->state_fd, "job.json", 0);
	rw_err("job %s stopped: status %d", a->rec.id, rc);
	reply = json_pack("{s:b,s:i,s:s,s:b,s:s}", "ok", 1, "status", rc, "out", a->rec.out,
			  "complete", complete, "summary", cap.buf ? cap.buf : "");
	capture_free(&cap);
	return reply;
}

static json_t *op_status(struct agent *a)
{
	if (!a->active && !a->orphan)
		return json_pack("{s:b,s:n}", "ok", 1, "job");
	return json_pack("{s:b,s:{s:s,s:s,s:s,s:i,s:s,s:b}}", "ok", 1, "job", "id", a->rec.id,
			 "out", a->rec.out, "scope", a->rec.scope, "pid", a->rec.pid, "pins",
			 a->rec.pins, "recording", a->active);
}

/* ------------------------------------------------------------ loop */

static void serve(struct agent *a, int cfd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	char err[256];
	json_t *req = NULL, *reply;
	const char *op;

	/* The socket's mode and directory already keep others out; this holds
	 * even if someone loosens them. */
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.uid != 0) {
		rw_err("refused a control connection from uid %d", (int)cred.uid);
		reply = error_reply("permission denied: the agent takes requests from root only");
	} else if (!(req = control_read(cfd, CONTROL_MAX_REQUEST, CONTROL_REQUEST_TIMEOUT_MS, err,
					sizeof(err)))) {
		reply = error_reply("bad request: %s", err);
	} else if (!(op = json_string_value(json_object_get(req, "op")))) {
		reply = error_reply("bad request: no \"op\"");
	} else if (!strcmp(op, "start")) {
		reply = op_start(a, req, cred.pid);
	} else if (!strcmp(op, "stop")) {
		reply = op_stop(a, req, cred.pid);
	} else if (!strcmp(op, "status")) {
		reply = op_status(a);
	} else {
		reply = error_reply("bad request: unknown op \"%.32s\"", op);
	}
	if (!reply)
		reply = error_reply("internal: out of memory");
	control_write(cfd, reply);
	json_decref(reply);
	json_decref(req);
	/* Unread input makes close() reset the connection, and the client
	 * would lose the reply: discard what is queued (bounded). */
	shutdown(cfd, SHUT_WR);
	for (int i = 0; i < 64; i++) {
		char sink[4096];

		if (recv(cfd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
			break;
	}
}

static void sd_notify_ready(void)
{
	const char *p = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len;
	int fd;

	if (!p || (p[0] != '/' && p[0] != '@') || strlen(p) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, p, strlen(p));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = 0; /* abstract namespace */
	len = offsetof(struct sockaddr_un, sun_path) + strlen(p);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, "READY=1", 7, MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0)
		rw_err("sd_notify: %s", strerror(errno));
	close(fd);
}

static bool on_bpffs(const char *path)
{
	struct statfs fs;

	return statfs(path, &fs) == 0 && fs.f_type == BPF_FS_MAGIC_;
}

/*
 * A fresh machine may have no bpffs at /sys/fs/bpf (systemd mounts it, a bare
 * container or VM image may not). Mount it there, as bpftool does, rather than
 * asking the operator to: the fence cannot outlive the agent without it.
 */
static int ensure_bpffs(const char *root)
{
	const char *mnt = "/sys/fs/bpf";
	size_t n = strlen(mnt);

	if (strncmp(root, mnt, n) != 0 || (root[n] && root[n] != '/') || on_bpffs(mnt))
		return 0;
	if (mkdir(mnt, 0700) && errno != EEXIST) {
		rw_err("cannot create %s: %s", mnt, strerror(errno));
		return -1;
	}
	if (mount("bpf", mnt, "bpf", 0, "mode=0700")) {
		rw_err("cannot mount a bpf filesystem on %s: %s", mnt, strerror(errno));
		return -1;
	}
	return 0;
}

static int check_pin_root(const char *root)
{
	if (ensure_bpffs(root))
		return -1;
	if (mkdir_p(root, 0700)) {
		rw_err("cannot create %s: %s", root, strerror(errno));
		return -1;
	}
	if (!on_bpffs(root)) {
		rw_err("%s is not on a bpf filesystem (mount -t bpf bpf /sys/fs/bpf); the fence "
		       "could not outlive the agent",
		       root);
		return -1;
	}
	return 0;
}

/* The state directory through a descriptor: root's, private, never a symlink. */
static int open_state_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0) {
		rw_err("--state %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) || st.st_uid != 0) {
		rw_err("--state %s: not owned by root; the agent keeps its job records only in a "
		       "directory no one else controls",
		       path);
		close(fd);
		return -1;
	}
	if (fchmod(fd, 0700)) {
		rw_err("--state %s: chmod: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The daemon's end of the pipe its starting process waits on (-1: none, or told already). */
static int ready_fd = -1;

static void daemon_ready(void)
{
	if (ready_fd < 0)
		return;
	if (write(ready_fd, "r", 1) != 1)
		rw_err("agent: telling the starting process: %s", strerror(errno));
	close(ready_fd);
	ready_fd = -1;
}

/*
 * The starting process returns only once the daemon is ready, its "listening" line (which
 * names its pid) in agent.log: a step that starts the agent and at once reads the log or
 * stops the daemon finds it there. It returns 1 when the daemon died before that.
 */
static int daemonize(int state_fd)
{
	pid_t pid;
	int fd, p[2];
	char c;

	fflush(NULL);
	if (pipe2(p, O_CLOEXEC)) {
		rw_err("pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		rw_err("fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid > 0) {
		ssize_t n;

		close(p[1]);
		do
			n = read(p[0], &c, 1);
		while (n < 0 && errno == EINTR);
		if (n == 1)
			_exit(0);
		rw_err("agent: the daemon (pid %d) stopped before it was ready; see agent.log in "
		       "the state directory",
		       (int)pid);
		_exit(1);
	}
	close(p[0]);
	ready_fd = p[1];
	setsid();
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		dup2(fd, 0);
	fd = openat(state_fd, "agent.log", O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
		    0600);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	return 0;
}

int cmd_agent(int argc, char **argv)
{
	enum {
		O_SOCKET = 1,
		O_STATE,
		O_PINS,
		O_FG,
		O_CONTAINERS,
		O_ENGINE,
		O_HELP,
		O_BASELINE,
		O_BL_MIN
	};
	static const struct option opts[] = {
	    {"socket", required_argument, 0, O_SOCKET},
	    {"state", required_argument, 0, O_STATE},
	    {"pin-root", required_argument, 0, O_PINS},
	    {"foreground", no_argument, 0, O_FG},
	    {"container-cgroups", required_argument, 0, O_CONTAINERS},
	    {"engine", required_argument, 0, O_ENGINE},
	    {"baseline", required_argument, 0, O_BASELINE},
	    {"baseline-min-runs", required_argument, 0, O_BL_MIN},
	    {"help", no_argument, 0, O_HELP},
	    {0, 0, 0, 0},
	};
	static const char *container_dirs[9];
	int n_container_dirs = 0;
	struct agent a = {.sock_path = CONTROL_DEFAULT_SOCKET,
			  .state_dir = DEFAULT_STATE,
			  .pin_root = DEFAULT_PINS,
			  .lfd = -1,
			  .epfd = -1,
			  .state_fd = -1};
	bool foreground = false;
	char err[512];
	struct stat st;
	int c, rc = 1;

	optind = 1;
	while ((c = cli_getopt("agent", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case O_SOCKET:
			a.sock_path = optarg;
			break;
		case O_STATE:
			a.state_dir = optarg;
			break;
		case O_PINS:
			a.pin_root = optarg;
			break;
		case O_FG:
			foreground = true;
			break;
		case O_CONTAINERS:
			if (n_container_dirs == 8)
				return cli_usage("agent",
						 "--container-cgroups: at most 8 directories");
			container_dirs[n_container_dirs++] = optarg;
			a.container_dirs = container_dirs;
			break;
		case O_ENGINE:
			a.engine = containers_engine_socket(optarg);
			if (!a.engine)
				return cli_usage("agent", "--engine %s: expected unix:///PATH",
						 optarg);
			break;
		case O_BASELINE:
			a.bl_spec = optarg;
			break;
		case O_BL_MIN: {
			uint64_t n;

			if (!parse_u64(optarg, 1, 100000, &n))
				return cli_usage(
				    "agent", "--baseline-min-runs %s: expected a number 1-100000",
				    optarg);
			a.bl_min_runs = (int)n;
			break;
		}
		case O_HELP:
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return CLI_USAGE;
		}
	}
	if (optind < argc)
		return cli_usage("agent", "unexpected argument '%s'", argv[optind]);
	if (geteuid() != 0) {
		rw_err("agent: must run as root (it loads BPF programs and creates cgroups)");
		return 1;
	}
	if (a.state_dir[0] != '/' || a.pin_root[0] != '/' || a.sock_path[0] != '/')
		return cli_usage("agent",
				 "--socket, --state and --pin-root must be absolute paths");
	/* A daemon outlives the step that started it (`runwarden agent &`): a pipe or lock it
	 * inherited there must not stay open for the job's whole length. */
	if (!foreground)
		close_fds_except(NULL, 0);
	if (mkdir_p(a.state_dir, 0700)) {
		rw_err("cannot create %s: %s", a.state_dir, strerror(errno));
		return 1;
	}
	a.state_fd = open_state_dir(a.state_dir);
	if (a.state_fd < 0)
		return 1;
	if (check_pin_root(a.pin_root))
		return 1;
	snprintf(a.state_file, sizeof(a.state_file), "%s/job.json", a.state_dir);
	if (fstatat(a.state_fd, "job.json", &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (rec_load(&a, err, sizeof(err))) {
			rw_err("%s; leaving it for a person to look at", err);
			return 1;
		}
		a.orphan = true;
		rw_err("job %s was left by an agent that stopped (pid %d): its fence is still "
		       "pinned at %s; `runwarden job stop` will report the record incomplete",
		       a.rec.id, a.rec.agent_pid, a.rec.pins);
	}
	/* The children it starts (the kernel side's holder, detaching helpers) are
	 * nobody's to wait for: reaped by the kernel, never left as zombies. */
	signal(SIGCHLD, SIG_IGN);
	/* Before the socket exists: an agent that answers is one whose first job arms by
	 * writing maps, like every later one. */
	if (loader_preload(16u << 20, POOL_IDLE_DEFAULT, NULL, 0, err, sizeof(err)))
		rw_err("the resident kernel side could not be loaded ahead (%s): the first "
		       "job loads its own",
		       err);
	a.lfd = control_listen(a.sock_path, err, sizeof(err));
	if (a.lfd < 0) {
		rw_err("%s", err);
		return 1;
	}
	if (!foreground && daemonize(a.state_fd)) {
		close(a.lfd);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_term}; /* no SA_RESTART: wake epoll */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	a.epfd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = {.events = EPOLLIN, .data.fd = a.lfd};
	if (a.epfd < 0 || epoll_ctl(a.epfd, EPOLL_CTL_ADD, a.lfd, &lev)) {
		rw_err("epoll: %s", strerror(errno));
		goto out;
	}
	rw_err("agent listening on %s (pid %d)", a.sock_path, (int)getpid());
	sd_notify_ready();
	daemon_ready();

	while (!stopping) {
		struct epoll_event ev[4];
		/* The ring buffer wakes us only past a backlog: poll it too. */
		int n = epoll_wait(a.epfd, ev, 4, a.active ? 50 : 1000);

		if (n < 0 && errno != EINTR) {
			rw_err("epoll_wait: %s", strerror(errno));
			goto out;
		}
		if (a.active && job_pump(&a.j, 0))
			rw_err("job %s: reading kernel records failed; the record will show losses",
			       a.rec.id);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd != a.lfd)
				continue;
			for (;;) {
				int cfd = accept4(a.lfd, NULL, NULL, SOCK_CLOEXEC);

				if (cfd < 0)
					break;
				serve(&a, cfd);
				close(cfd);
			}
		}
	}
	rc = 0;
out:
	if (a.active) {
		/* Like a crash, on purpose: the fence stays pinned, the record
		 * stays on disk, and the next `job stop` says the log is cut. */
		rw_err("agent stopping with job %s running: recording ends now, its fence stays "
		       "pinned at %s; `runwarden job stop` will report the record incomplete",
		       a.rec.id, a.rec.pins);
		a.j.ld.pin_dir[0] = 0;
		a.j.scope.path[0] = 0;
		close(a.j.scope.fd);
		a.j.scope.fd = -1;
		drop_job(&a);
	}
	if (a.epfd >= 0)
		close(a.epfd);
	close(a.lfd);
	unlink(a.sock_path);
	return rc;
}
