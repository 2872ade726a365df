/*
 * `runwarden run`: run a command in a fresh cgroup scope with the kernel
 * programs armed, record everything it and its descendants do, then write
 * the evidence (events.ndjson, summary.json, attestation) and exit with the
 * command's status.
 *
 * Order matters: the scope and the programs are armed before the child
 * enters the scope, and the child enters the scope before it execs, so the
 * command's first instruction is already observed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <linux/capability.h>
#include <signal.h>
#include <linux/sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "baseline/baseline.h"
#include "job/job.h"
#include "kernel/keeper.h"
#include "job/seccomp.h"
#include "cmds.h"
#include "common/cli.h"
#include "common/jsonw.h"
#include "common/util.h"

#define MAX_CONTAINER_DIRS 8
struct run_opts {
	struct job_opts job;
	const char *user;
	char **cmd;
	const char *container_dirs[MAX_CONTAINER_DIRS + 1];
	int n_container_dirs;
	struct baseline_opts baseline;
	bool use_baseline;
};

static const char usage_text[] =
    "usage: runwarden run [options] -- CMD [ARG...]\n"
    "\n"
    "Runs CMD and records what it and every descendant do: execs, outbound\n"
    "connections, DNS lookups and sensitive file opens.\n"
    "\n"
    "  --out DIR          evidence directory, created by runwarden: it must not exist\n"
    "                     (default ./runwarden-out)\n"
    "  --step NAME        CI step the events belong to\n"
    "  --user NAME        run CMD as this user, with no_new_privs (setuid programs\n"
    "                     such as sudo cannot give root back); default: the invoking\n"
    "                     user, from SUDO_UID when run through sudo\n"
    "  --policy FILE      egress policy (YAML, see docs/policy.md)\n"
    "  --mode MODE        observe (record; the default), learn (observe and write\n"
    "                     policy.learned.yaml) or enforce (deny what the policy does not allow)\n"
    "  --grace SECONDS    how long to wait for descendants after CMD exits (default 2)\n"
    "  --kill-leftovers   kill processes still alive after the grace period (otherwise\n"
    "                     they stay fenced until they exit, but are not recorded)\n"
    "  --allow-partial    run even if some hooks cannot be attached (evidence marked partial)\n"
    "  --watch GLOB       treat files matching GLOB as sensitive (repeatable)\n"
    "  --containers       follow containers a container engine starts while the job runs\n"
    "                     (new cgroups under system.slice, docker, machine.slice,\n"
    "                     libpod_parent)\n"
    "  --container-cgroups DIR  follow containers created under DIR instead (repeatable)\n"
    "  --engine unix:///PATH  the Docker API that names the containers followed (default:\n"
    "                     runwarden's own DOCKER_HOST, else /var/run/docker.sock)\n"
    "  --ring-mb N        kernel ring buffer size in MiB, power of two (default 16)\n"
    "  --kernel MODE      resident (default): arm a loaded kernel side left by an\n"
    "                     earlier job, or load one and leave it behind (see\n"
    "                     `runwarden kernel`); private: load one for this job only\n"
    "  --kernel-idle S    a kernel side this run leaves behind is unloaded after S\n"
    "                     seconds unused (default 600)\n"
    "  --key FILE         sign the evidence with this private key, owned by root and\n"
    "                     mode 0600 (default: an ephemeral key)\n"
    "  --no-sign          do not write an attestation\n"
    "  --workspace DIR    the git checkout whose tracked files are compared at the end\n"
    "                     (source_modified; in CI by default the platform's workspace,\n"
    "                     else the current directory; outside CI only when given;\n"
    "                     `none`: no comparison)\n"
    "  --quiet            no summary on stderr\n"
    "  --baseline STORE   record the finished run in a baseline (a SQLite file such as\n"
    "                     /var/lib/runwarden/baseline.db, or a postgresql:// URI) and\n"
    "                     report what its job never did before (docs/baseline.md)\n"
    "  --repo R, --workflow W, --job J\n"
    "                     the baseline key, when the CI context does not give it\n"
    "  --baseline-min-runs N  runs of a step before a first-seen result is medium (5)\n";

static volatile sig_atomic_t pending_signal;

static void on_signal(int sig)
{
	pending_signal = sig;
}

/* Only there to interrupt epoll_wait when CMD exits. */
static void on_sigchld(int sig)
{
	(void)sig;
}

static int resolve_user(const char *name, uid_t *uid, gid_t *gid, const char **uname)
{
	struct passwd *pw;

	if (name) {
		pw = getpwnam(name);
		if (!pw) {
			rw_err("--user %s: no such user", name);
			return -1;
		}
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
		*uname = pw->pw_name;
		return 0;
	}
	*uid = getuid();
	*gid = getgid();
	*uname = NULL;
	if (geteuid() == 0 && getenv("SUDO_UID") && getenv("SUDO_GID")) {
		uint64_t u, g;

		if (!parse_u64(getenv("SUDO_UID"), 0, UINT32_MAX - 1, &u) ||
		    !parse_u64(getenv("SUDO_GID"), 0, UINT32_MAX - 1, &g)) {
			rw_err("SUDO_UID/SUDO_GID are not numbers; use --user");
			return -1;
		}
		*uid = u;
		*gid = g;
	}
	pw = getpwuid(*uid);
	if (pw)
		*uname = pw->pw_name;
	return 0;
}

static int parse_opts(int argc, char **argv, struct run_opts *o, struct sensitive_list *sens)
{
	enum {
		O_CONTAINERS = 100,
		O_CONTAINER_DIR,
		O_ENGINE,
		O_OUT = 1,
		O_POLICY,
		O_STEP,
		O_USER,
		O_MODE,
		O_GRACE,
		O_KILL,
		O_PARTIAL,
		O_WATCH,
		O_RING,
		O_KERNEL,
		O_KERNEL_IDLE,
		O_KEY,
		O_NOSIGN,
		O_QUIET,
		O_WORKSPACE,
		O_HELP,
		O_BASELINE,
		O_REPO,
		O_WORKFLOW,
		O_JOB,
		O_BL_MIN,
	};
	static const struct option opts[] = {
	    {"out", required_argument, 0, O_OUT},
	    {"containers", no_argument, 0, O_CONTAINERS},
	    {"container-cgroups", required_argument, 0, O_CONTAINER_DIR},
	    {"engine", required_argument, 0, O_ENGINE},
	    {"policy", required_argument, 0, O_POLICY},
	    {"step", required_argument, 0, O_STEP},
	    {"user", required_argument, 0, O_USER},
	    {"mode", required_argument, 0, O_MODE},
	    {"grace", required_argument, 0, O_GRACE},
	    {"kill-leftovers", no_argument, 0, O_KILL},
	    {"allow-partial", no_argument, 0, O_PARTIAL},
	    {"watch", required_argument, 0, O_WATCH},
	    {"ring-mb", required_argument, 0, O_RING},
	    {"kernel", required_argument, 0, O_KERNEL},
	    {"kernel-idle", required_argument, 0, O_KERNEL_IDLE},
	    {"key", required_argument, 0, O_KEY},
	    {"no-sign", no_argument, 0, O_NOSIGN},
	    {"quiet", no_argument, 0, O_QUIET},
	    {"workspace", required_argument, 0, O_WORKSPACE},
	    {"baseline", required_argument, 0, O_BASELINE},
	    {"repo", required_argument, 0, O_REPO},
	    {"workflow", required_argument, 0, O_WORKFLOW},
	    {"job", required_argument, 0, O_JOB},
	    {"baseline-min-runs", required_argument, 0, O_BL_MIN},
	    {"help", no_argument, 0, O_HELP},
	    {0, 0, 0, 0},
	};
	char err[256];
	int c;

	o->job.out_dir = "runwarden-out";
	o->job.grace_ms = 2000;
	o->job.ring_mb = 16;
	optind = 1;
	while ((c = cli_getopt("run", argc, argv, "+h", opts)) != -1) {
		switch (c) {
		case O_OUT:
			o->job.out_dir = optarg;
			break;
		case O_STEP:
			o->job.step = optarg;
			break;
		case O_USER:
			o->user = optarg;
			break;
		case O_POLICY:
			o->job.policy = optarg;
			break;
		case O_MODE:
			o->job.mode = policy_mode_parse(optarg);
			if (o->job.mode == POLICY_MODE_UNSET) {
				return cli_usage(
				    "run", "--mode %s: expected observe, learn or enforce", optarg);
			}
			break;
		case O_GRACE: {
			uint64_t s;

			if (!parse_u64(optarg, 0, 3600, &s)) {
				return cli_usage(
				    "run", "--grace %s: expected whole seconds, 0..3600", optarg);
			}
			o->job.grace_ms = s * 1000;
			break;
		}
		case O_KILL:
			o->job.kill_leftovers = true;
			break;
		case O_PARTIAL:
			o->job.allow_partial = true;
			break;
		case O_CONTAINERS:
			if (!o->job.container_dirs)
				o->job.container_dirs = job_default_container_dirs();
			break;
		case O_ENGINE:
			o->job.engine = containers_engine_socket(optarg);
			if (!o->job.engine)
				return cli_usage("run", "--engine %s: expected unix:///PATH",
						 optarg);
			break;
		case O_CONTAINER_DIR:
			if (o->n_container_dirs == MAX_CONTAINER_DIRS) {
				return cli_usage("run",
						 "--container-cgroups: at most %d directories",
						 MAX_CONTAINER_DIRS);
			}
			o->container_dirs[o->n_container_dirs++] = optarg;
			o->job.container_dirs = o->container_dirs;
			break;
		case O_WATCH:
			if (sensitive_add(sens, optarg, err, sizeof(err))) {
				return cli_usage("run", "--watch: %s", err);
			}
			break;
		case O_RING:
			if (!parse_u64(optarg, 1, 1024, &o->job.ring_mb) ||
			    (o->job.ring_mb & (o->job.ring_mb - 1))) {
				return cli_usage(
				    "run",
				    "--ring-mb %s: expected a power of two between 1 and 1024",
				    optarg);
			}
			break;
		case O_KERNEL:
			if (strcmp(optarg, "resident") && strcmp(optarg, "private"))
				return cli_usage("run", "--kernel %s: expected resident or private",
						 optarg);
			o->job.private_kernel = !strcmp(optarg, "private");
			break;
		case O_KERNEL_IDLE: {
			uint64_t s;

			if (!parse_u64(optarg, 1, 365ULL * 86400, &s))
				return cli_usage("run", "--kernel-idle %s: expected whole seconds",
						 optarg);
			o->job.kernel_idle = (unsigned)s;
			break;
		}
		case O_KEY:
			o->job.key = optarg;
			break;
		case O_NOSIGN:
			o->job.no_sign = true;
			break;
		case O_WORKSPACE:
			o->job.workspace = optarg;
			break;
		case O_QUIET:
			o->job.quiet = true;
			break;
		case O_BASELINE:
			o->baseline.spec = optarg;
			o->use_baseline = true;
			break;
		case O_REPO:
			o->baseline.repo = optarg;
			break;
		case O_WORKFLOW:
			o->baseline.workflow = optarg;
			break;
		case O_JOB:
			o->baseline.job = optarg;
			break;
		case O_BL_MIN: {
			uint64_t n;

			if (!parse_u64(optarg, 1, 100000, &n))
				return cli_usage(
				    "run", "--baseline-min-runs %s: expected a number 1-100000",
				    optarg);
			o->baseline.min_runs = (int)n;
			break;
		}
		case O_HELP:
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			return CLI_USAGE;
		}
	}
	if (optind >= argc)
		return cli_usage("run",
				 "no command given (runwarden run [options] -- CMD [ARG...])");
	o->cmd = argv + optind;
	if (!o->use_baseline &&
	    (o->baseline.repo || o->baseline.workflow || o->baseline.job || o->baseline.min_runs))
		return cli_usage("run", "--repo, --workflow, --job and --baseline-min-runs need "
					"--baseline STORE");
	if (o->job.mode == POLICY_MODE_ENFORCE && !o->job.policy)
		return cli_usage("run",
				 "--mode enforce needs --policy FILE (what should be allowed?)");
	return 0;
}

/* Child side: join the scope, drop to the job's user, exec. Failures are
 * reported through errpipe (close-on-exec: EOF means the exec happened). */
static void child_exec(const struct scope *s, bool born_inside, const struct run_opts *o, uid_t uid,
		       gid_t gid, const char *uname, int errpipe)
{
	int e = 0;
	const char *what = "";

	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	if (!born_inside && scope_enter(s, 0)) {
		e = errno;
		what = "cgroup";
	} else if (o->job.mode == POLICY_MODE_ENFORCE &&
		   prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0)) {
		/* Packet sockets have no cgroup hook and their frames skip the
		 * egress backstop: in enforce mode nothing in the job may make
		 * one, root and file capabilities included. */
		e = errno;
		what = "capabilities";
	} else if (o->job.mode == POLICY_MODE_ENFORCE && job_seccomp_install()) {
		e = errno;
		what = "seccomp";
	} else if (geteuid() == 0 && uid != 0 &&
		   ((uname ? initgroups(uname, gid) : setgroups(0, NULL)) || setgid(gid) ||
		    setuid(uid))) {
		e = errno;
		what = "setuid";
	} else if (o->user && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
		/* --user drops root for good: without this, sudo or any setuid
		 * program would give it back. */
		e = errno;
		what = "no_new_privs";
	} else {
		execvp(o->cmd[0], o->cmd);
		e = errno;
		what = "exec";
	}
	char msg[64];
	int n = snprintf(msg, sizeof(msg), "%s %d", what, e);
	if (write(errpipe, msg, n) < 0)
		_exit(127);
	_exit(127);
}

/* Serves the job until CMD exits, then through the grace period. */
static int watch(struct job *j, pid_t child, int *status)
{
	bool exited = false;
	int64_t deadline = 0;

	for (;;) {
		if (job_pump(j, 50))
			return -1;
		if (pending_signal && !exited) {
			kill(child, pending_signal);
			pending_signal = 0;
		}
		if (!exited && waitpid(child, status, WNOHANG) == child) {
			exited = true;
			deadline = now_mono_ns() + (int64_t)j->o.grace_ms * 1000000;
		}
		if (exited && (job_scope_empty(j) || now_mono_ns() >= deadline))
			return 0;
	}
}

/*
 * A child born inside the job's cgroup (clone3 with CLONE_INTO_CGROUP, 5.7+)
 * rather than moved there after fork: a move to cgroup.procs waits for an RCU
 * grace period under the kernel's cgroup lock (about 17 ms of every run here).
 * Kernels without it: fork, and the child moves itself (born_inside false).
 * Nothing runs between the two but our own code, so the process is the job's
 * before its first instruction either way.
 */
static pid_t fork_into(int cgroup_fd, bool *born_inside)
{
	struct clone_args a = {
	    .flags = CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (uint64_t)cgroup_fd};
	pid_t pid = (pid_t)syscall(SYS_clone3, &a, sizeof(a));

	*born_inside = pid >= 0;
	if (pid >= 0 || (errno != ENOSYS && errno != EINVAL && errno != E2BIG))
		return pid;
	return fork();
}

/* Starts CMD inside the scope; returns its pid, or -1 (reason printed). */
static pid_t start_child(const struct job *j, const struct run_opts *o, uid_t uid, gid_t gid,
			 const char *uname)
{
	char child_err[64];
	int pipefd[2], status;
	bool born_inside;
	pid_t child;
	ssize_t n;

	if (pipe2(pipefd, O_CLOEXEC)) {
		rw_err("pipe: %s", strerror(errno));
		return -1;
	}
	fflush(NULL);
	child = fork_into(j->scope.fd, &born_inside);
	if (child < 0) {
		rw_err("fork: %s", strerror(errno));
		return -1;
	}
	if (child == 0) {
		close(pipefd[0]);
		child_exec(&j->scope, born_inside, o, uid, gid, uname, pipefd[1]);
	}
	close(pipefd[1]);
	n = read(pipefd[0], child_err, sizeof(child_err) - 1);
	close(pipefd[0]);
	if (n > 0) {
		char what[16];
		int e = 0;

		child_err[n] = 0;
		sscanf(child_err, "%15s %d", what, &e);
		waitpid(child, &status, 0);
		rw_err("cannot start '%s' (%s): %s", o->cmd[0], what, strerror(e));
		return -1;
	}
	return child;
}

extern char **environ;

int cmd_run(int argc, char **argv)
{
	struct run_opts o = {0};
	struct baseline_job bl = {0};
	struct sensitive_list sens;
	struct job j = {.epfd = -1};
	struct keeper k = {.pidfd = -1, .ctl = -1, .ack = -1};
	const char *uname;
	uid_t uid;
	gid_t gid;
	int status = 0, rc = 1;
	pid_t child;

	sensitive_init(&sens);
	if (parse_opts(argc, argv, &o, &sens)) {
		sensitive_free(&sens);
		return 2;
	}
	if (geteuid() != 0) {
		rw_err("run: must be started as root (it loads BPF programs and creates a cgroup)");
		sensitive_free(&sens);
		return 1;
	}
	if (resolve_user(o.user, &uid, &gid, &uname)) {
		sensitive_free(&sens);
		return 1;
	}
	/* A wrong store or a run with no key fails now, not after the work. */
	if (o.use_baseline) {
		if (baseline_job_open(&bl, &o.baseline, environ)) {
			sensitive_free(&sens);
			return 1;
		}
		o.job.baseline = &bl;
	}
	/* job_arm refuses a key that is not root's alone before the job starts. */
	o.job.command = o.cmd;
	if (!o.job.engine)
		o.job.engine = containers_engine_socket(getenv("DOCKER_HOST"));
	if (job_arm(&j, &o.job, &sens)) {
		sensitive_free(&sens);
		job_free(&j, false);
		baseline_job_close(&bl);
		return 1;
	}
	o.job.mode = j.o.mode; /* the policy may have chosen it */
	{
		char err[256];

		/* Before the job exists: every process of it is fenced for as
		 * long as it lives, whatever happens to this one. */
		if (keeper_start(&k, &j.ld, &j.scope, o.job.mode == POLICY_MODE_ENFORCE, err,
				 sizeof(err))) {
			rw_err("%s; refusing to start a job whose fence would end with runwarden",
			       err);
			job_free(&j, false);
			baseline_job_close(&bl);
			return 1;
		}
		j.keeper_pidfd = fcntl(k.pidfd, F_DUPFD_CLOEXEC, 0);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	struct sigaction sa = {.sa_handler = on_sigchld}; /* no SA_RESTART */
	sigaction(SIGCHLD, &sa, NULL);

	child = start_child(&j, &o, uid, gid, uname);
	if (child < 0) {
		rc = job_finish(&j, -1);
	} else {
		if (watch(&j, child, &status)) {
			kill(child, SIGKILL);
			waitpid(child, &status, 0);
		}
		rc = job_finish(&j,
				WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	job_free(&j, true);
	keeper_release(&k);
	baseline_job_close(&bl);
	return rc;
}

int cmd_version(int argc, char **argv)
{
	static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
	int c;

	optind = 1;
	while ((c = cli_getopt("version", argc, argv, "h", opts)) != -1) {
		if (c != 'h')
			return CLI_USAGE;
		fputs("usage: runwarden version\n\nPrints the version.\n", stdout);
		return 0;
	}
	if (optind < argc)
		return cli_usage("version", "unexpected argument '%s'", argv[optind]);
	printf("runwarden %s\n", RW_VERSION);
	return 0;
}
