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
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/epoll.h>

#include "agent/collect.h"
#include "agent/enforce.h"
#include "agent/loader.h"
#include "agent/scope.h"
#include "cmds.h"
#include "common/jsonw.h"
#include "common/util.h"
#include "evidence/attest.h"
#include "policy/learn.h"


struct run_opts {
	const char *out_dir;
	const char *policy;
	enum policy_mode mode;
	const char *step;
	const char *user;
	const char *key;
	uint64_t grace_ms;
	uint64_t ring_mb;
	bool kill_leftovers;
	bool allow_partial;
	bool quiet;
	bool no_sign;
	char **cmd;
};

static const char usage_text[] =
	"usage: runwarden run [options] -- CMD [ARG...]\n"
	"\n"
	"Runs CMD and records what it and every descendant do: execs, outbound\n"
	"connections, DNS lookups and sensitive file opens.\n"
	"\n"
	"  --out DIR          evidence directory (default ./runwarden-out)\n"
	"  --step NAME        CI step the events belong to\n"
	"  --user NAME        run CMD as this user (default: the invoking user,\n"
	"                     from SUDO_UID when run through sudo)\n"
	"  --policy FILE      egress policy (YAML, see docs/policy.md)\n"
	"  --mode MODE        observe (record; the default), learn (observe and write\n"
	"                     policy.learned.yaml) or enforce (deny what the policy does not allow)\n"
	"  --grace SECONDS    how long to wait for descendants after CMD exits (default 2)\n"
	"  --kill-leftovers   kill processes still alive after the grace period\n"
	"  --allow-partial    run even if some hooks cannot be attached (evidence marked partial)\n"
	"  --watch GLOB       treat files matching GLOB as sensitive (repeatable)\n"
	"  --ring-mb N        kernel ring buffer size in MiB, power of two (default 16)\n"
	"  --key FILE         sign the evidence with this private key (default: ephemeral)\n"
	"  --no-sign          do not write an attestation\n"
	"  --quiet            no summary on stderr\n";

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
	enum { O_OUT = 1, O_POLICY, O_STEP, O_USER, O_MODE, O_GRACE, O_KILL, O_PARTIAL, O_WATCH, O_RING,
	       O_KEY, O_NOSIGN, O_QUIET, O_HELP };
	static const struct option opts[] = {
		{ "out", required_argument, 0, O_OUT },
		{ "policy", required_argument, 0, O_POLICY },
		{ "step", required_argument, 0, O_STEP },
		{ "user", required_argument, 0, O_USER },
		{ "mode", required_argument, 0, O_MODE },
		{ "grace", required_argument, 0, O_GRACE },
		{ "kill-leftovers", no_argument, 0, O_KILL },
		{ "allow-partial", no_argument, 0, O_PARTIAL },
		{ "watch", required_argument, 0, O_WATCH },
		{ "ring-mb", required_argument, 0, O_RING },
		{ "key", required_argument, 0, O_KEY },
		{ "no-sign", no_argument, 0, O_NOSIGN },
		{ "quiet", no_argument, 0, O_QUIET },
		{ "help", no_argument, 0, O_HELP },
		{ 0, 0, 0, 0 },
	};
	char err[256];
	int c;

	o->out_dir = "runwarden-out";
	o->grace_ms = 2000;
	o->ring_mb = 16;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case O_OUT:
			o->out_dir = optarg;
			break;
		case O_STEP:
			o->step = optarg;
			break;
		case O_USER:
			o->user = optarg;
			break;
		case O_POLICY:
			o->policy = optarg;
			break;
		case O_MODE:
			o->mode = policy_mode_parse(optarg);
			if (o->mode == POLICY_MODE_UNSET) {
				rw_err("--mode %s: expected observe, learn or enforce", optarg);
				return -1;
			}
			break;
		case O_GRACE: {
			uint64_t s;

			if (!parse_u64(optarg, 0, 3600, &s)) {
				rw_err("--grace %s: expected whole seconds, 0..3600", optarg);
				return -1;
			}
			o->grace_ms = s * 1000;
			break;
		}
		case O_KILL:
			o->kill_leftovers = true;
			break;
		case O_PARTIAL:
			o->allow_partial = true;
			break;
		case O_WATCH:
			if (sensitive_add(sens, optarg, err, sizeof(err))) {
				rw_err("--watch: %s", err);
				return -1;
			}
			break;
		case O_RING:
			if (!parse_u64(optarg, 1, 1024, &o->ring_mb) ||
			    (o->ring_mb & (o->ring_mb - 1))) {
				rw_err("--ring-mb %s: expected a power of two between 1 and 1024",
				       optarg);
				return -1;
			}
			break;
		case O_KEY:
			o->key = optarg;
			break;
		case O_NOSIGN:
			o->no_sign = true;
			break;
		case O_QUIET:
			o->quiet = true;
			break;
		case O_HELP:
			fputs(usage_text, stdout);
			exit(0);
		default:
			if (optopt)
				rw_err("run: option '-%c' is unknown (see runwarden run --help)",
				       optopt);
			else
				rw_err("run: option '%s' is unknown or lacks its value (see "
				       "runwarden run --help)",
				       argv[optind - 1]);
			return -1;
		}
	}
	if (optind >= argc) {
		rw_err("run: no command given (runwarden run [options] -- CMD [ARG...])");
		return -1;
	}
	o->cmd = argv + optind;
	if (o->mode == POLICY_MODE_ENFORCE && !o->policy) {
		rw_err("--mode enforce needs --policy FILE (what should be allowed?)");
		return -1;
	}
	return 0;
}

/* Child side: join the scope, drop to the job's user, exec. Failures are
 * reported through errpipe (close-on-exec: EOF means the exec happened). */
static void child_exec(const struct scope *s, const struct run_opts *o, uid_t uid, gid_t gid,
		       const char *uname, int errpipe)
{
	int e = 0;
	const char *what = "";

	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	if (scope_enter(s, 0)) {
		e = errno;
		what = "cgroup";
	} else if (o->mode == POLICY_MODE_ENFORCE && prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0)) {
		/* Packet sockets have no cgroup hook and their frames skip the
		 * egress backstop: in enforce mode nothing in the job may make
		 * one, root and file capabilities included. */
		e = errno;
		what = "capabilities";
	} else if (geteuid() == 0 && uid != 0 &&
		   ((uname ? initgroups(uname, gid) : setgroups(0, NULL)) || setgid(gid) ||
		    setuid(uid))) {
		e = errno;
		what = "setuid";
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

static int collect_leftovers(const struct scope *s, struct leftover **out)
{
	pid_t pids[256];
	int n = scope_pids(s, pids, 256);
	struct leftover *l = calloc(n ? n : 1, sizeof(*l));

	if (!l)
		abort();
	for (int i = 0; i < n; i++) {
		char path[64];
		ssize_t len;

		l[i].pid = pids[i];
		snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pids[i]);
		len = read_file_bounded(path, l[i].cmdline, sizeof(l[i].cmdline));
		if (len < 0)
			len = 0;
		for (ssize_t j = 0; j < len; j++)
			if (l[i].cmdline[j] == 0)
				l[i].cmdline[j] = ' ';
		while (len > 0 && l[i].cmdline[len - 1] == ' ')
			len--;
		l[i].len = len;
	}
	*out = l;
	return n;
}

/* fail_on_violation: explicit in the policy, else on in enforce mode. Blocks
 * and denials count in every mode; would-be denials (audit) count when the
 * policy asks for it in observe/learn. */
static bool violations(const struct summary *s, const struct enforce *e, const struct run_opts *o)
{
	if (!o->policy || !policy_fails_on_violation(e->pol, o->mode))
		return false;
	return s->denials > 0 || (o->mode != POLICY_MODE_ENFORCE && s->audits > 0);
}

/* The agent's own high-water mark, for the record (the job is not counted). */
static long peak_rss_kb(void)
{
	char buf[4096], *p;
	ssize_t n = read_file_bounded("/proc/self/status", buf, sizeof(buf) - 1);

	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strstr(buf, "VmHWM:");
	return p ? strtol(p + 6, NULL, 10) : -1;
}

static void missing_json(const struct loader *l, struct strbuf *sb)
{
	bool first = true;

	sb_addch(sb, '[');
	for (int i = 0; i < l->n_hooks; i++) {
		if (!l->hooks[i].reason[0])
			continue;
		sb_addf(sb, "%s{\"hook\":\"%s\",\"covers\":\"%s\",\"reason\":", first ? "" : ",",
			l->hooks[i].name, l->hooks[i].covers);
		json_cstr(sb, l->hooks[i].reason);
		sb_addch(sb, '}');
		first = false;
	}
	sb_addch(sb, ']');
}

/* Drains the ring (and serves the DNS gate) until CMD exits, then through
 * the grace period. */
static int watch(struct ring_buffer *rb, struct enforce *enf, pid_t child, const struct scope *s,
		 const struct run_opts *o, int *status)
{
	bool exited = false;
	int64_t deadline = 0;
	pid_t none[1];
	int ep = epoll_create1(EPOLL_CLOEXEC), gfd = enforce_gate_fd(enf), rc = 0;
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = ring_buffer__epoll_fd(rb) };

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev)) {
		rw_err("epoll: %s", strerror(errno));
		return -1;
	}
	ev.data.fd = gfd;
	if (gfd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, gfd, &ev)) {
		rw_err("epoll: %s", strerror(errno));
		close(ep);
		return -1;
	}
	for (;;) {
		struct epoll_event ready[2];
		int n = epoll_wait(ep, ready, 2, 50);

		if (n < 0 && errno != EINTR) {
			rw_err("epoll_wait: %s", strerror(errno));
			rc = -1;
			break;
		}
		/* The gate first: a client may be waiting for its answer. */
		enforce_gate_dispatch(enf);
		int err = ring_buffer__consume(rb);
		if (err < 0 && err != -EINTR) {
			rw_err("reading kernel events failed: %s", strerror(-err));
			rc = -1;
			break;
		}
		if (pending_signal && !exited) {
			kill(child, pending_signal);
			pending_signal = 0;
		}
		if (!exited && waitpid(child, status, WNOHANG) == child) {
			exited = true;
			deadline = now_mono_ns() + (int64_t)o->grace_ms * 1000000;
		}
		if (exited && (scope_pids(s, none, 1) == 0 || now_mono_ns() >= deadline))
			break;
	}
	close(ep);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = { 0 };
	struct sensitive_list sens;
	struct scope scope = { .fd = -1 };
	struct loader ld;
	struct collector col;
	struct ring_buffer *rb = NULL;
	struct run_info ri = { 0 };
	struct enforce enf = { 0 };
	char *policy_json = NULL;
	struct strbuf path = STRBUF_INIT, missing = STRBUF_INIT, lost = STRBUF_INIT,
		      extra = STRBUF_INIT;
	char err[512], child_err[64];
	const char *uname;
	uid_t uid;
	gid_t gid;
	int pipefd[2], status = 0, rc = 1;
	pid_t child;
	uint64_t klost[EV_KIND_MAX];
	int64_t t0 = now_mono_ns();
	bool loaded = false, col_ready = false;

	ri.started_ns = now_real_ns();
	sensitive_init(&sens);
	if (parse_opts(argc, argv, &o, &sens)) {
		sensitive_free(&sens);
		return 2;
	}
	if (geteuid() != 0) {
		rw_err("run: must be started as root (it loads BPF programs and creates a cgroup)");
		goto out;
	}
	if (resolve_user(o.user, &uid, &gid, &uname))
		goto out;
	if (o.policy) {
		if (enforce_load(&enf, o.policy, o.step, o.mode, err, sizeof(err))) {
			rw_err("%s", err);
			goto out;
		}
		for (size_t i = 0; i < enf.pol->nfiles; i++)
			if (sensitive_add(&sens, enf.pol->files[i], err, sizeof(err))) {
				rw_err("%s: files: %s", o.policy, err);
				goto out;
			}
		o.mode = enf.mode;
	} else if (o.mode == POLICY_MODE_UNSET) {
		o.mode = POLICY_MODE_OBSERVE;
	}
	if (mkdir(o.out_dir, 0755) && errno != EEXIST) {
		rw_err("--out %s: %s", o.out_dir, strerror(errno));
		goto out;
	}
	sb_addf(&path, "%s/events.ndjson", o.out_dir);
	if (collector_init(&col, path.buf, &sens, o.step)) {
		rw_err("cannot write %s: %s", path.buf, strerror(errno));
		collector_free(&col);
		goto out;
	}
	col_ready = true;
	if (scope_create(&scope, err, sizeof(err))) {
		rw_err("%s", err);
		goto out;
	}
	struct loader_opts lo = { .ring_bytes = o.ring_mb << 20,
				  .cgroup_fd = scope.fd,
				  .sensitive = &sens,
				  .lpm_entries = o.policy ? enforce_lpm_capacity(&enf) : 1024 };
	if (loader_start(&ld, &lo, err, sizeof(err))) {
		rw_err("%s", err);
		loader_stop(&ld, false);
		goto out;
	}
	loaded = true;
	missing_json(&ld, &missing);
	if (ld.n_missing) {
		for (int i = 0; i < ld.n_hooks; i++)
			if (ld.hooks[i].reason[0])
				rw_err("hook %s unavailable (%s): %s; not seen: %s",
				       ld.hooks[i].name, o.allow_partial ? "continuing" : "refusing",
				       ld.hooks[i].reason, ld.hooks[i].covers);
		if (!o.allow_partial) {
			rw_err("run: %d hooks missing; pass --allow-partial to run with partial "
			       "evidence",
			       ld.n_missing);
			goto out;
		}
	}
	if (o.policy && enforce_arm(&enf, &ld, err, sizeof(err))) {
		/* Fail closed: never run a job we were asked to fence without the fence. */
		rw_err("policy %s: %s", o.policy, err);
		goto out;
	}
	if (o.policy) {
		col.dns_verdict = (const char *(*)(const void *, const char *))enforce_dns_verdict;
		col.dns_verdict_ctx = &enf;
	}
	rb = ring_buffer__new(loader_ring_fd(&ld), collector_handle, &col, NULL);
	if (!rb) {
		rw_err("cannot open the kernel ring buffer: %s", strerror(errno));
		goto out;
	}
	ri.armed_ns = now_mono_ns() - t0;

	if (pipe2(pipefd, O_CLOEXEC)) {
		rw_err("pipe: %s", strerror(errno));
		goto out;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	struct sigaction sa = { .sa_handler = on_sigchld }; /* no SA_RESTART */
	sigaction(SIGCHLD, &sa, NULL);
	fflush(NULL);
	child = fork();
	if (child < 0) {
		rw_err("fork: %s", strerror(errno));
		goto out;
	}
	if (child == 0) {
		close(pipefd[0]);
		child_exec(&scope, &o, uid, gid, uname, pipefd[1]);
	}
	close(pipefd[1]);
	ssize_t n = read(pipefd[0], child_err, sizeof(child_err) - 1);
	close(pipefd[0]);
	if (n > 0) {
		char what[16];
		int e = 0;

		child_err[n] = 0;
		sscanf(child_err, "%15s %d", what, &e);
		waitpid(child, &status, 0);
		rw_err("cannot start '%s' (%s): %s", o.cmd[0], what, strerror(e));
		ri.exit_status = -1;
		rc = 127;
	} else {
		if (watch(rb, &enf, child, &scope, &o, &status)) {
			kill(child, SIGKILL);
			waitpid(child, &status, 0);
		}
		ri.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		rc = ri.exit_status;
	}

	ri.n_leftovers = collect_leftovers(&scope, &ri.leftovers);
	if (ri.n_leftovers && o.kill_leftovers) {
		ri.leftovers_killed = scope_kill_all(&scope) == 0;
	}
	/* Everything the kernel sent before we stop listening. */
	ring_buffer__consume(rb);
	collector_finish(&col);
	loader_read_lost(&ld, klost);
	for (int k = 0; k < EV_KIND_MAX; k++)
		col.sum.lost_kernel[k] = klost[k];
	ri.finished_ns = now_real_ns();
	ri.agent_peak_rss_kb = peak_rss_kb();

	ri.command = o.cmd;
	ri.step = o.step;
	ri.mode = policy_mode_name(o.mode);
	if (o.policy) {
		policy_json = enforce_policy_json(&enf);
		ri.policy_json = policy_json;
	}
	ri.out_dir = o.out_dir;
	ri.log_name = "events.ndjson";
	ri.missing_json = missing.buf;
	ri.n_missing = ld.n_missing;
	summary_lost_json(&col.sum, &lost);
	sb_addf(&extra, ",\"events_lost\":%s,\"complete\":%s,\"missing_hooks\":%s", lost.buf,
		summary_complete(&col.sum, &ri) ? "true" : "false", missing.buf);
	ri.log_lines = col.log.seq; /* events plus the closing record */
	if (evlog_close(&col.log, extra.buf)) {
		rw_err("writing %s failed: %s; the log is incomplete", path.buf, strerror(errno));
		rc = rc ? rc : 1;
	}
	ri.log_root = col.log.prev;
	sb_reset(&path);
	sb_addf(&path, "%s/summary.json", o.out_dir);
	if (summary_write(&col.sum, &ri, path.buf)) {
		rw_err("cannot write %s: %s", path.buf, strerror(errno));
		rc = rc ? rc : 1;
	}
	if (!o.quiet)
		summary_print(&col.sum, &ri, stderr);
	if (col.io_error)
		rw_err("some events could not be written; counted as lost");
	if (o.mode == POLICY_MODE_LEARN) {
		const char *dirs[] = { o.out_dir };

		sb_reset(&path);
		sb_addf(&path, "%s/policy.learned.yaml", o.out_dir);
		if (learn_write(dirs, 1, path.buf))
			rc = rc ? rc : 1;
		else if (!o.quiet)
			fprintf(stderr, "  suggested policy: %s\n", path.buf);
	}
	if (!o.no_sign && attest_write(o.out_dir, o.key, o.policy))
		rc = rc ? rc : 1;
	if (violations(&col.sum, &enf, &o) && rc == 0) {
		rw_err("%llu policy violations (%llu denied, %llu would have been); failing the run",
		       (unsigned long long)(col.sum.denials + col.sum.audits),
		       (unsigned long long)col.sum.denials, (unsigned long long)col.sum.audits);
		rc = 1;
	}
	if (ri.n_leftovers && !ri.leftovers_killed)
		rw_err("%d processes are still running in %s (use --kill-leftovers)",
		       ri.n_leftovers, scope.path);
out:
	if (rb)
		ring_buffer__free(rb);
	if (loaded)
		loader_stop(&ld, true);
	if (scope.path[0] && scope_destroy(&scope) && !(ri.n_leftovers && !ri.leftovers_killed))
		rw_err("cannot remove cgroup %s: %s", scope.path, strerror(errno));
	if (col_ready)
		collector_free(&col);
	enforce_free(&enf);
	free(policy_json);
	free(ri.leftovers);
	sensitive_free(&sens);
	sb_release(&path);
	sb_release(&missing);
	sb_release(&lost);
	sb_release(&extra);
	return rc;
}

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("runwarden %s\n", RW_VERSION);
	return 0;
}
