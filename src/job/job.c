/* One observed job, from arming to evidence (see job.h). */
#include "job/job.h"
#include "observe/shim.h"

#include <poll.h>
#include <signal.h>

#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "job/inbound.h"
#include "job/jobcapture.h"
#include "ci/detect.h"
#include "common/jsonw.h"
#include "common/util.h"
#include "evidence/attest.h"
#include "baseline/baseline.h"
#include "gate/dnsgate.h"
#include "policy/learn.h"
#include "common/xalloc.h"
#include "common/procfs.h"

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

extern char **environ;

/* The CI context runwarden itself runs in: labels for the evidence (the
 * workload could have set these variables; nothing is decided on them). */
static void detect_ci(struct job *j)
{
	json_t *ci = ci_detect(environ, "/");
	const char *step;

	if (!ci)
		return;
	if (json_is_string(json_object_get(ci, "provider"))) {
		j->ci_json = json_dumps(ci, JSON_COMPACT | JSON_SORT_KEYS);
		step = json_string_value(json_object_get(ci, "step"));
		if (step)
			j->ci_step = xstrdup(step);
		j->ci_provider = xstrdup(json_string_value(json_object_get(ci, "provider")));
	}
	json_decref(ci);
}

static int add_epoll(int ep, int fd)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	return fd < 0 ? 0 : epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

const char *const *job_default_container_dirs(void)
{
	static char paths[4][300];
	static const char *dirs[5];
	const char *mnt = cgroup2_mount();
	int n = 0;

	if (mnt) {
		/* docker/podman/containerd with the systemd cgroup driver, then
		 * docker with the cgroupfs driver. */
		snprintf(paths[0], sizeof(paths[0]), "%s/system.slice", mnt);
		snprintf(paths[1], sizeof(paths[1]), "%s/docker", mnt);
		snprintf(paths[2], sizeof(paths[2]), "%s/machine.slice", mnt);
		/* Podman with the cgroupfs manager (no systemd). */
		snprintf(paths[3], sizeof(paths[3]), "%s/libpod_parent", mnt);
		for (int i = 0; i < 4; i++)
			dirs[n++] = paths[i];
	}
	dirs[n] = NULL;
	return dirs;
}

/* The gate's questions are logged by the collector, after it has read every packet the job
 * sent so far: the one that carried the question names its process. */
static void job_gate_question(void *ctx, const struct dnsgate_event *ev, int verdict)
{
	struct job *j = ctx;

	ring_buffer__consume(j->rb);
	collector_gate_question(&j->col, ev, verdict);
}

static const char *job_resolver_of(void *ctx, const struct dnsgate_client *who)
{
	struct job *j = ctx;

	ring_buffer__consume(j->rb);
	return collector_gate_server(&j->col, who);
}

static int job_judge_question(void *ctx, const char *qname, int qtype)
{
	struct job *j = ctx;

	return enforce_judge_question(&j->enf, qname, qtype, false, NULL);
}

static void job_block_address(void *ctx, int family, const void *addr)
{
	struct job *j = ctx;

	enforce_block_address(&j->enf, family, addr);
}

/* A container's own network namespace gets the gate too (containers.c). */
static int job_gate_add_netns(void *ctx, int netns_fd, int home_fd, char *err, size_t errlen)
{
	struct job *j = ctx;

	uint64_t cookie;
	int h;

	if (!j->enf.gate) {
		snprintf(err, errlen, "no DNS gate");
		return -1;
	}
	h = dnsgate_add_netns(j->enf.gate, netns_fd, home_fd, &cookie, err, errlen);
	if (h < 0)
		return -1;
	/* Listening first, then the kernel's redirect: no question is sent into nothing. */
	if (loader_gate_netns(&j->ld, cookie, true)) {
		snprintf(err, errlen, "redirecting its DNS: %s", strerror(errno));
		dnsgate_drop_netns(j->enf.gate, h);
		return -1;
	}
	j->gate_netns[h] = cookie;
	return h;
}

static void job_gate_drop_netns(void *ctx, int handle)
{
	struct job *j = ctx;

	if (handle < 0 || handle >= DNSGATE_NETNS_MAX)
		return;
	loader_gate_netns(&j->ld, j->gate_netns[handle], false);
	if (j->enf.gate) /* closed at the end, with every listener */
		dnsgate_drop_netns(j->enf.gate, handle);
}

/*
 * The signing key joins the sensitive files, by its resolved path with glob
 * characters escaped: any read of it by the job is then an event.
 */
static int watch_key(struct sensitive_list *sens, const char *key_path)
{
	char *real = realpath(key_path, NULL), err[512];
	struct strbuf glob = STRBUF_INIT;
	int rc;

	if (!real) {
		rw_err("--key %s: %s", key_path, strerror(errno));
		return -1;
	}
	for (const char *p = real; *p; p++) {
		if (strchr("*?[\\", *p))
			sb_addch(&glob, '\\');
		sb_addch(&glob, *p);
	}
	rc = sensitive_add(sens, glob.buf, err, sizeof(err));
	if (rc)
		rw_err("--key %s: cannot watch reads of it (%s); give the key a plain file name",
		       key_path, err);
	sb_release(&glob);
	free(real);
	return rc;
}

/* Files a step writes and the platform loads into every later step, named in the runner's
 * environment at job start (docs/findings.md, runner_file_command). GitHub's are found by
 * name (the sensitive list); these are wherever the platform's variable says. The path joins
 * the sensitive list with glob characters escaped, so opens of it for writing are seen. */
static void watch_platform_files(struct job *j)
{
	static const struct {
		const char *provider, *var;
		bool shell;
	} files[] = {
	    {"circleci", "BASH_ENV", true},
	    {"buildkite", "BUILDKITE_ENV_FILE", false},
	};
	struct strbuf glob = STRBUF_INIT;
	char err[512];

	if (!j->o.command || !j->ci_provider)
		return; /* whole-job mode: the agent's environment is not the job's */
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const char *path = getenv(files[i].var);

		if (strcmp(j->ci_provider, files[i].provider) || !path || *path != '/')
			continue;
		sb_reset(&glob);
		for (const char *p = path; *p; p++) {
			if (strchr("*?[\\", *p))
				sb_addch(&glob, '\\');
			sb_addch(&glob, *p);
		}
		snprintf(err, sizeof(err), "too many files");
		if (sensitive_add(&j->sens, glob.buf, err, sizeof(err)) ||
		    findings_filecmd_watch(&j->col.findings, path, files[i].shell, files[i].var))
			rw_err("runner_file_command: $%s (%s) is not watched: %s", files[i].var,
			       path, err);
	}
	sb_release(&glob);
}

/* Arming failed after the evidence directory was made: take it away again
 * (it holds at most an empty log), so the same --out can be used for a retry. */
static void remove_unused_out(struct job *j)
{
	char where[64];

	if (j->out.fd < 0)
		return;
	if (j->col_ready) {
		collector_free(&j->col);
		j->col_ready = false;
	}
	unlinkat(j->out.fd, "events.ndjson", 0);
	if (outdir_in_place(&j->out, where, sizeof(where)))
		rmdir(j->out.path);
	outdir_close(&j->out);
}

void job_discard_out(struct job *j)
{
	remove_unused_out(j);
}

static int watch_in_kernel(const void *ld, uint32_t kdev, uint64_t ino)
{
	return loader_watch_file(ld, kdev, ino);
}

static void watch_found(void *col, const char *path, uint32_t kdev, uint64_t ino)
{
	collector_watch(col, path, kdev, ino);
	/* a credential file there at the start: its tokens are the job's secrets before the job
	 * could read and send them (the open's record comes after the read) */
	collector_secret_file(col, path, kdev, ino, -1);
}

/* The job's secrets (src/secrets/): its environment's (`run`: runwarden's own, which the command
 * inherits; whole-job mode: each step's, from its records), then the kernel's copy. */
static void arm_secrets(struct job *j)
{
	struct secrets_kernel k = {.cfg_fd = loader_map_fd(&j->ld, LM_SECRET_CFG),
				   .pairs_fd = loader_map_fd(&j->ld, LM_SECRET_PAIRS),
				   .anchors_fd = loader_map_fd(&j->ld, LM_SECRET_ANCHORS),
				   .to_fd = loader_map_fd(&j->ld, LM_SECRET_TO)};

	if (j->o.command)
		secrets_from_environ(&j->col.secrets, environ);
	if (secrets_kernel_sync(&j->col.secrets, &k))
		rw_err("secrets: the kernel's copy is incomplete (%llu refused): %s",
		       (unsigned long long)j->col.secrets.kernel_failed, strerror(errno));
}

static bool job_secret_in_name(void *ctx, const char *qname)
{
	struct job *j = ctx;

	return secrets_find(&j->col.secrets, qname, strlen(qname), NULL, NULL) != NULL;
}

/* Sensitive files known by identity before the job starts: a hard link, a
 * renamed directory, a bind mount or a file handle cannot hide them. */
static void watch_sensitive_files(struct job *j)
{
	char cwd[4096];

	j->col.watch_file = watch_in_kernel;
	j->col.watch_ctx = &j->ld;
	sensitive_resolve(&j->sens, getcwd(cwd, sizeof(cwd)) ? cwd : NULL, watch_found, &j->col);
}

static size_t track_in_kernel(void *ld, const struct file_key *keys, size_t n)
{
	return loader_track_files(ld, keys, n);
}

static size_t track_names_in_kernel(void *ld, const char (*names)[TRACKED_NAME_BYTES], size_t n)
{
	return loader_track_names(ld, names, n);
}

/* The checkout `run` compares: --workspace; in CI, the platform's workspace when it names one
 * (the runner's environment, before the job's first process could change anything), else
 * where the command runs. Outside CI (a shell, a benchmark) only with --workspace: the
 * snapshot costs ~20 ms for 500 tracked files, ~320 ms for 65,000, on every run. */
static const char *job_workspace(const struct job *j, char *cwd, size_t len)
{
	static const char *const vars[] = {"GITHUB_WORKSPACE",
					   "CI_PROJECT_DIR",
					   "WORKSPACE",
					   "CIRCLE_WORKING_DIRECTORY",
					   "BUILD_SOURCESDIRECTORY",
					   "BITBUCKET_CLONE_DIR",
					   "BUILDKITE_BUILD_CHECKOUT_PATH",
					   "DRONE_WORKSPACE"};
	const char *w = j->o.workspace;

	if (w)
		return strcmp(w, "none") ? w : NULL;
	if (!j->o.command || !j->ci_provider)
		return NULL; /* whole-job mode (the agent's directory is not the job's), or no CI */
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if ((w = getenv(vars[i])) && *w == '/')
			return w;
	return getcwd(cwd, len);
}

/* Before the job's first process: the tracked files and their blob ids (findings/srcmod.h),
 * and their identities in the kernel so opens of them for writing name the writer. A checkout
 * that cannot be read is said, not fatal: the rest of the record stands. */
static void snapshot_source(struct job *j)
{
	struct srcmod *s = &j->col.findings.srcmod;
	struct srcmod_limits lim = {.files_max = SRCMOD_FILES_MAX,
				    .hash_bytes_max = SRCMOD_HASH_BYTES_MAX};
	char cwd[PATH_MAX], err[512];
	const char *dir = job_workspace(j, cwd, sizeof(cwd));
	int rc;

	if (!dir)
		return;
	rc = srcmod_snapshot(s, dir, &lim, err, sizeof(err));
	if (rc < 0)
		rw_err("source_modified: not checked: %s", err);
	if (rc)
		return;
	srcmod_track(s, track_in_kernel, &j->ld);
	srcmod_track_names(s, track_names_in_kernel, &j->ld);
	if (s->files_skipped || s->kernel_untracked)
		rw_err("source_modified: %llu tracked files past the cap are not compared, %llu "
		       "compared without their writers (kernel map of %d full)",
		       (unsigned long long)s->files_skipped,
		       (unsigned long long)s->kernel_untracked, TRACKED_MAX);
}

/* Lockdown: a finding at a severity the policy maps to `kill` ends the whole job at once, from
 * inside the collector, before the next record is read. */
static void job_lockdown(void *ctx, const struct finding *x)
{
	struct job *j = ctx;

	(void)x;
	if (j->locked_down)
		return;
	j->locked_down = true;
	rw_err("LOCKDOWN: %s", j->col.findings.lockdown_reason ? j->col.findings.lockdown_reason
							       : "a finding past the listed ones");
	job_end_now(j, "lockdown");
}

/* The policy's on_finding, for the findings engine: acted on in enforce mode, recorded as
 * what would have happened otherwise. */
static void arm_lockdown(struct job *j)
{
	const struct policy *pol = j->o.policy ? j->enf.pol : NULL;

	if (!pol)
		return;
	for (int s = 0; s < SEV_COUNT; s++)
		j->col.findings.act[s] = pol->on_finding[s];
	if (j->o.mode == POLICY_MODE_ENFORCE) {
		j->col.findings.on_raise = job_lockdown;
		j->col.findings.on_raise_ctx = j;
	}
}

static void job_containers_poll(void *ctx)
{
	struct job *j = ctx;

	containers_follow(&j->cont, &j->ld, &j->col);
}

int job_arm(struct job *j, const struct job_opts *o, struct sensitive_list *sens)
{
	char err[512], ev_err[EV_ERRLEN];
	int rc = -1, log_fd;

	memset(j, 0, sizeof(*j));
	j->t0 = now_mono_ns();
	j->ri.started_ns = now_real_ns();
	j->ri.exit_status = -1;
	j->o = *o;
	j->sens = *sens; /* ours now */
	memset(sens, 0, sizeof(*sens));
	j->scope.fd = -1;
	j->epfd = -1;
	j->keeper_pidfd = -1;
	j->out.fd = -1;
	detect_ci(j);
	if (!j->o.step)
		j->o.step = j->ci_step;

	/* Without a policy too: the built-in block list applies in every mode. */
	if (enforce_load(&j->enf, o->policy, o->step, o->mode, err, sizeof(err))) {
		rw_err("%s", err);
		goto out;
	}
	for (size_t i = 0; i < j->enf.pol->nfiles; i++)
		if (sensitive_add(&j->sens, j->enf.pol->files[i], err, sizeof(err))) {
			rw_err("%s: files: %s", o->policy, err);
			goto out;
		}
	j->o.mode = j->enf.mode;
	/* Before anything is created: a key the job could read or swap proves
	 * nothing, and reading it is a sensitive-file event. */
	if (o->key && !o->no_sign) {
		if (attest_load_key(&j->key, o->key) || watch_key(&j->sens, o->key))
			goto out;
		j->have_key = true;
	}
	if (outdir_create(&j->out, o->out_dir, ev_err)) {
		rw_err("%s", ev_err);
		goto out;
	}
	log_fd = outdir_create_file(&j->out, "events.ndjson", 0644, ev_err);
	if (log_fd < 0) {
		rw_err("cannot create %s", ev_err);
		goto out;
	}
	if (collector_init(&j->col, log_fd, &j->sens, j->o.step)) {
		rw_err("cannot write %s/events.ndjson: %s", o->out_dir, strerror(errno));
		close(log_fd);
		collector_free(&j->col);
		goto out;
	}
	j->col_ready = true;
	secrets_set_policy(&j->col.secrets, &j->enf.pol->secrets);
	arm_lockdown(j);
	exec_summary_init(&j->exec);
	j->col.log.on_line = attest_exec_line;
	j->col.log.on_line_ctx = &j->exec;
	j->col.ci_provider = j->ci_provider;
	watch_platform_files(j);
	if (scope_create(&j->scope, err, sizeof(err))) {
		rw_err("%s", err);
		goto out;
	}
	struct loader_opts lo = {.ring_bytes = o->ring_mb << 20,
				 .cgroup_fd = j->scope.fd,
				 .cgroup_level = scope_level(&j->scope),
				 .sensitive = &j->sens,
				 .lpm_entries = enforce_lpm_capacity(&j->enf),
				 .private_copy = o->private_kernel,
				 .idle_s = o->kernel_idle};
	if (loader_start(&j->ld, &lo, err, sizeof(err))) {
		rw_err("%s", err);
		loader_stop(&j->ld, false);
		goto out;
	}
	j->loaded = true;
	watch_sensitive_files(j);
	arm_secrets(j);
	missing_json(&j->ld, &j->missing);
	if (j->ld.n_missing) {
		for (int i = 0; i < j->ld.n_hooks; i++)
			if (j->ld.hooks[i].reason[0])
				rw_err("hook %s unavailable (%s): %s; not seen: %s",
				       j->ld.hooks[i].name,
				       o->allow_partial ? "continuing" : "refusing",
				       j->ld.hooks[i].reason, j->ld.hooks[i].covers);
		if (!o->allow_partial) {
			rw_err(
			    "%d hooks missing; pass --allow-partial to run with partial evidence",
			    j->ld.n_missing);
			goto out;
		}
	}
	j->rb = ring_buffer__new(loader_ring_fd(&j->ld), collector_handle, &j->col, NULL);
	if (!j->rb) {
		rw_err("cannot open the kernel ring buffer: %s", strerror(errno));
		goto out;
	}
	j->enf.secret_in_name = job_secret_in_name;
	j->enf.on_question = job_gate_question;
	j->enf.resolver_of = job_resolver_of;
	j->enf.on_question_ctx = j;
	if (enforce_arm(&j->enf, &j->ld, err, sizeof(err))) {
		/* Fail closed: never run a job we were asked to fence without the fence. */
		rw_err("policy %s: %s", o->policy ? o->policy : "(none)", err);
		goto out;
	}
	if (inbound_arm(j->enf.pol, &j->ld, err, sizeof(err))) {
		rw_err("policy %s: %s", o->policy ? o->policy : "(none)", err);
		goto out;
	}
	/* After enforce_arm, which writes the kernel's configuration whole. */
	snapshot_source(j);
	j->col.gate_port = j->enf.gate ? dnsgate_port(j->enf.gate) : 0;
	j->col.judge_question = job_judge_question;
	j->col.block_address = job_block_address;
	j->col.judge_ctx = j;
	if (job_capture_arm(&j->col.cap, &j->enf, &j->ld, err, sizeof(err))) {
		rw_err("capture: %s", err);
		goto out;
	}
	j->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (j->epfd < 0 || add_epoll(j->epfd, ring_buffer__epoll_fd(j->rb)) ||
	    add_epoll(j->epfd, enforce_gate_fd(&j->enf))) {
		rw_err("epoll: %s", strerror(errno));
		goto out;
	}
	if (o->container_dirs) {
		j->following = true;
		if (containers_start(&j->cont, &j->ld, o->container_dirs, o->engine,
				     CONTAINER_CLAIMS, err, sizeof(err))) {
			rw_err("%s", err);
			goto out;
		}
		{
			struct stat st;

			j->col.containers_poll = job_containers_poll;
			j->col.containers_ctx = j;
			j->col.own_cgid = fstat(j->scope.fd, &st) ? 0 : st.st_ino;
		}
		j->cont.gate_add_netns = job_gate_add_netns;
		j->cont.gate_drop_netns = job_gate_drop_netns;
		j->cont.gate_ctx = j;
		if (add_epoll(j->epfd, j->cont.ino_fd)) {
			rw_err("following containers: %s", strerror(errno));
			goto out;
		}
	}
	j->ri.armed_ns = now_mono_ns() - j->t0;
	snprintf(j->kernel_kind, sizeof(j->kernel_kind), "%s", loader_kind(&j->ld));
	j->ri.kernel = j->kernel_kind;
	j->ri.kernel_ready_ns = j->ld.ready_ns;
	rc = 0;
out:
	if (rc)
		remove_unused_out(j);
	return rc;
}

void job_end_now(struct job *j, const char *why)
{
	rw_err("%s: ending the job (enforce mode)", why);
	if (scope_kill_all(&j->scope))
		rw_err("processes of the job survived cgroup.kill in %s", j->scope.path);
}

/* The fence's cgroup links are checked this often (a syscall per link). */
#define LINK_CHECK_NS (200 * 1000000LL)

/*
 * Everything that can take the fence away from a running job, short of the
 * kernel side itself: a cgroup link detached, the keeper (which holds the
 * fence past this process) gone, a process moved out of the scope (recorded
 * by the kernel, see on_cgroup_move). Each is logged and marks the record
 * incomplete; in enforce mode the job is ended.
 */
static void check_fence(struct job *j)
{
	bool enforce = j->o.mode == POLICY_MODE_ENFORCE;
	int verdict = enforce ? VERDICT_DENY : VERDICT_AUDIT;
	char why[256];

	if (!j->link_lost && now_mono_ns() >= j->next_link_check) {
		const char *hook = loader_detached_hook(&j->ld);

		j->next_link_check = now_mono_ns() + LINK_CHECK_NS;
		if (hook) {
			j->link_lost = true;
			snprintf(why, sizeof(why),
				 "the fence's %s link was detached from the job's cgroup", hook);
			collector_fence_note(&j->col, "link_detached", why, verdict);
		}
	}
	if (j->keeper_pidfd >= 0 && !j->keeper_lost) {
		struct pollfd p = {.fd = j->keeper_pidfd, .events = POLLIN};

		if (poll(&p, 1, 0) == 1) {
			j->keeper_lost = true;
			collector_fence_note(&j->col, "keeper_gone",
					     "the process holding the fence past runwarden's end "
					     "was killed",
					     verdict);
		}
	}
	if (j->col.sum.fence_breaches > j->breaches_acted) {
		j->breaches_acted = j->col.sum.fence_breaches;
		if (enforce)
			job_end_now(j, "the fence was breached");
	}
}

int job_pump(struct job *j, int timeout_ms)
{
	struct epoll_event ready[2];
	int n = epoll_wait(j->epfd, ready, 2, timeout_ms), err;

	if (n < 0 && errno != EINTR) {
		rw_err("epoll_wait: %s", strerror(errno));
		return -1;
	}
	/* New containers first (their first packets must meet the hooks), then
	 * the gate (a client may be waiting for its answer). */
	if (j->following)
		containers_follow(&j->cont, &j->ld, &j->col);
	enforce_gate_dispatch(&j->enf);
	err = ring_buffer__consume(j->rb);
	/* Each batch reaches the file before the next wait: a SIGKILL of
	 * runwarden loses nothing that was already logged. */
	if (evlog_flush(&j->col.log))
		j->col.io_error = true;
	if (err < 0 && err != -EINTR) {
		rw_err("reading kernel events failed: %s", strerror(-err));
		return -1;
	}
	check_fence(j);
	return 0;
}

bool job_scope_empty(const struct job *j)
{
	pid_t none[1];

	return scope_pids(&j->scope, none, 1) == 0;
}

/* A NUL-separated command line, secrets redacted, joined by spaces into l->cmdline. */
static void leftover_cmdline(const struct redactor *rd, struct leftover *l, const char *raw,
			     size_t len)
{
	char *args[64], *red[64];
	size_t n = 0, at = 0;
	struct strbuf sb = STRBUF_INIT;

	for (size_t i = 0; i < len && n < 63; i += strnlen(raw + i, len - i) + 1)
		args[n++] = xstrndup(raw + i, len - i);
	args[n] = NULL;
	redact_argv_strings(rd, args, red);
	for (size_t i = 0; i < n; i++) {
		sb_addf(&sb, "%s%s", i ? " " : "", red[i]);
		free(args[i]);
		free(red[i]);
	}
	at = sb.len < sizeof(l->cmdline) ? sb.len : sizeof(l->cmdline) - 1;
	memcpy(l->cmdline, sb_str(&sb), at);
	l->len = at;
	sb_release(&sb);
}

static int collect_leftovers(const struct scope *s, const struct redactor *rd,
			     struct leftover **out)
{
	pid_t pids[256];
	int n = scope_pids(s, pids, 256);
	struct leftover *l = xcalloc(n, sizeof(*l));

	for (int i = 0; i < n; i++) {
		char raw[sizeof(l[i].cmdline)];
		size_t len = proc_cmdline_args(pids[i], raw, sizeof(raw));

		l[i].pid = pids[i];
		leftover_cmdline(rd, &l[i], raw, len);
	}
	*out = l;
	return n;
}

/* Leftovers not killed outlive the record: say so, and what holds them. */
static void note_leftovers(struct job *j)
{
	struct strbuf why = STRBUF_INIT;

	j->ri.leftovers_fate = j->o.release_leftovers ? "released" : "fenced";
	sb_addf(&why,
		j->o.release_leftovers
		    ? "%d processes were left running and released from the job: neither fenced "
		      "nor recorded after the end"
		    : "%d processes were left running after the end: still under the fence until "
		      "they exit, but not recorded",
		j->ri.n_leftovers);
	summary_incomplete(&j->col.sum, why.buf);
	sb_release(&why);
}

/* fail_on_violation: explicit in the policy, else on in enforce mode. Blocks
 * and denials count in every mode; would-be denials (audit) count when the
 * policy asks for it in observe/learn. */
static bool violations(const struct job *j)
{
	const struct summary *s = &j->col.sum;

	if (!j->o.policy || !policy_fails_on_violation(j->enf.pol, j->o.mode))
		return false;
	return s->denials > 0 || (j->o.mode != POLICY_MODE_ENFORCE && s->audits > 0);
}

/* The agent's own high-water mark, for the record (the job is not counted). */
static long peak_rss_kb(void)
{
	char buf[4096], *p;
	ssize_t n = read_text_bounded("/proc/self/status", buf, sizeof(buf));

	if (n <= 0)
		return -1;
	p = strstr(buf, "VmHWM:");
	return p ? strtol(p + 6, NULL, 10) : -1;
}

/* A first-seen item of the baseline as a finding: what, where in the log it first happened,
 * and who did it. A job's first runs have everything first seen (all info): past
 * BL_INFO_FINDINGS info findings the rest stay in summary.json's baseline object only, so
 * they cannot crowd the findings list. */
#define BL_INFO_FINDINGS 32
struct bl_raise {
	struct job *j;
	size_t info;
};

static void raise_first_seen(void *ctx, const struct bl_item *it)
{
	static const enum finding_kind kinds[BL_KIND_COUNT] = {
	    [BL_DEST] = FK_FIRST_SEEN_DESTINATION,
	    [BL_EXE] = FK_FIRST_SEEN_EXE,
	    [BL_PARENT] = FK_FIRST_SEEN_DNS_PARENT,
	};
	struct bl_raise *br = ctx;
	bool medium = !strcmp(it->severity, "medium");
	struct finding_proc p = {
	    .pid = (pid_t)it->pid, .exe = it->exe, .step = *it->step ? it->step : NULL};
	const char *subject = it->kind == BL_DEST ? it->ikey : it->name;
	struct strbuf key = STRBUF_INIT, det = STRBUF_INIT;
	struct finding *x;
	char *detail;

	if (it->kind != BL_DEST && it->kind != BL_EXE && it->kind != BL_PARENT)
		return;
	if (!medium && br->info++ >= BL_INFO_FINDINGS)
		return;
	sb_addf(&key, "baseline\x1f%d\x1f%s\x1f%s", it->kind, it->step, it->ikey);
	x = finding_raise(&br->j->col.findings, key.buf, kinds[it->kind],
			  medium ? SEV_MEDIUM : SEV_INFO, &p);
	sb_release(&key);
	if (!x)
		return;
	finding_set_desc(x, "%s %s first seen%s (%lld earlier run%s of this step)",
			 it->kind == BL_DEST  ? "destination"
			 : it->kind == BL_EXE ? "executable"
					      : "DNS parent",
			 subject, it->name_known ? " with new content" : "", it->runs_before,
			 it->runs_before == 1 ? "" : "s");
	detail = json_dumps(it->detail, JSON_COMPACT | JSON_SORT_KEYS);
	sb_addstr(&det, "\"subject\":");
	json_cstr(&det, subject);
	sb_addf(&det, ",\"runs_before\":%lld,\"changed\":%s,\"baseline\":%s", it->runs_before,
		it->name_known ? "true" : "false", detail ? detail : "{}");
	finding_set_details(x, det.buf);
	free(detail);
	sb_release(&det);
	finding_evidence(x, it->seq);
	finding_act(&br->j->col.findings, x);
}

/* The run goes to the baseline once its log is closed and before the summary is written, so
 * the summary (and the statement signing it) carries what was first seen, as findings. */
/* The findings so far as one JSON array, for the baseline's record of the run. */
static char *findings_array(const struct findings *f)
{
	struct strbuf members = STRBUF_INIT, obj = STRBUF_INIT;
	json_t *o;
	char *text;

	findings_json(f, &members); /* "findings":[...],... */
	sb_addch(&obj, '{');
	sb_add(&obj, members.buf, members.len);
	sb_addch(&obj, '}');
	o = json_loads(obj.buf, 0, NULL);
	text = json_dumps(json_object_get(o, "findings"), JSON_COMPACT);
	json_decref(o);
	sb_release(&members);
	sb_release(&obj);
	return text;
}

static int record_baseline(struct job *j, struct strbuf *member)
{
	struct bl_raise br = {.j = j};
	char *fj = findings_array(&j->col.findings);
	int rc;
	struct baseline_run_info bi = {
	    .dirfd = j->out.fd,
	    .dir_name = j->o.out_dir,
	    .log_root = j->col.log.head,
	    .step = j->ri.step,
	    .mode = j->ri.mode,
	    .ci_json = j->ci_json,
	    .started_ns = j->ri.started_ns,
	    .finished_ns = j->ri.finished_ns,
	    .complete = summary_complete(&j->col.sum, &j->ri),
	    .findings_json = fj,
	    .on_first_seen = raise_first_seen,
	    .ctx = &br,
	};

	rc = baseline_job_record(j->o.baseline, &bi, member);
	free(fj);
	return rc;
}

/* Containers named by their monitor (rootless Podman: no cgroup, observe/shim.h), after those
 * named by their cgroups; one a cgroup named too (a short-lived rootful container named
 * late) is listed once. */
static void add_shim_containers(struct strbuf *list, const struct collector *col)
{
	for (size_t i = 0; i < col->n_shims_listed; i++) {
		const struct shim *s = col->shims_listed[i];
		char key[80];

		snprintf(key, sizeof(key), "\"id\":\"%s\"", s->id);
		if (!list->len || !strstr(sb_str(list), key))
			sb_addf(list, "%s%s", list->len ? "," : "", s->identity);
	}
}

/* The command as summary.json records it: secrets redacted like every logged argv. */
static char *const *redacted_command(struct job *j, char ***out)
{
	size_t n = 0;

	while (j->o.command && j->o.command[n])
		n++;
	if (!j->o.command)
		return NULL;
	*out = xcalloc(n + 1, sizeof(char *));
	redact_argv_strings(&j->col.redact, j->o.command, *out);
	return *out;
}

int job_finish(struct job *j, int exit_status)
{
	struct run_info *ri = &j->ri;
	struct collector *col = &j->col;
	struct strbuf sum = STRBUF_INIT, lost = STRBUF_INIT, extra = STRBUF_INIT, dns = STRBUF_INIT,
		      capjson = STRBUF_INIT, secrets = STRBUF_INIT;
	struct strbuf bl = STRBUF_INIT;
	uint64_t klost[EV_KIND_MAX];
	char *policy_json = NULL, moved[PATH_MAX], ev_err[EV_ERRLEN], **command = NULL;
	int rc = exit_status < 0 ? 127 : exit_status;

	ri->exit_status = exit_status;
	ri->n_leftovers = collect_leftovers(&j->scope, &col->redact, &ri->leftovers);
	if (ri->n_leftovers && j->o.kill_leftovers)
		ri->leftovers_killed = scope_kill_all(&j->scope) == 0;
	/* Everything the kernel sent before we stop listening, and every question the gate
	 * took, answered or not. */
	ring_buffer__consume(j->rb);
	j->next_link_check = 0;
	check_fence(j);
	if (ri->n_leftovers && !ri->leftovers_killed)
		note_leftovers(j);
	{
		pid_t left[256];

		for (int i = 0; i < ri->n_leftovers && i < 256; i++)
			left[i] = ri->leftovers[i].pid;
		findings_finish(&col->findings, left,
				ri->n_leftovers < 256 ? ri->n_leftovers : 256);
	}
	enforce_gate_close(&j->enf);
	collector_finish(col);
	loader_read_lost(&j->ld, klost);
	for (int k = 0; k < EV_KIND_MAX; k++)
		col->sum.lost_kernel[k] = klost[k];
	ri->finished_ns = now_real_ns();
	ri->agent_peak_rss_kb = peak_rss_kb();
	ri->command = redacted_command(j, &command);
	ri->findings = &col->findings;
	ri->lockdown_enforced = j->locked_down;
	ri->step = j->o.step;
	ri->ci_json = j->ci_json;
	add_shim_containers(&j->cont.list, col);
	ri->containers_json = j->following || j->cont.list.len ? sb_str(&j->cont.list) : NULL;
	ri->mode = policy_mode_name(j->o.mode);
	if (j->o.policy) {
		policy_json = enforce_policy_json(&j->enf);
		ri->policy_json = policy_json;
	}
	enforce_gate_json(&j->enf, &dns);
	collector_dns_drops_json(col, &dns);
	sb_addch(&dns, '}');
	ri->dns_json = dns.buf;
	capture_stats_json(&col->cap, &capjson);
	ri->capture_json = capjson.buf;
	secrets_json(&col->secrets, &secrets);
	ri->secrets_json = secrets.buf;
	ri->out_dir = j->o.out_dir;
	ri->log_name = "events.ndjson";
	ri->missing_json = j->missing.buf;
	ri->n_missing = j->ld.n_missing;
	ri->violations_fail_run = violations(j);

	/* The job can rename --out (its parent is usually the job's): the
	 * evidence stays in our directory, wherever that is now; say so. */
	if (!outdir_in_place(&j->out, moved, sizeof(moved))) {
		ri->out_moved_to = moved;
		rw_err("--out %s no longer names the evidence directory (moved during the run, "
		       "by the job?); the evidence is in %s",
		       j->o.out_dir, moved);
		rc = rc ? rc : 1;
	}
	summary_lost_json(&col->sum, &lost);
	sb_addf(&extra, ",\"events_lost\":%s,\"complete\":%s,\"missing_hooks\":%s", lost.buf,
		summary_complete(&col->sum, ri) ? "true" : "false", sb_str(&j->missing));
	sb_addf(&extra, ",\"incomplete_reasons\":[%s]", sb_str(&col->sum.incomplete));
	if (ri->out_moved_to) {
		sb_addstr(&extra, ",\"out_dir_moved_to\":");
		json_cstr(&extra, ri->out_moved_to);
	}
	if (evlog_close(&col->log, extra.buf)) {
		rw_err("writing %s/events.ndjson failed: %s; the log is incomplete", j->o.out_dir,
		       strerror(errno));
		rc = rc ? rc : 1;
	}
	ri->log_failed = col->log.failed;
	ri->log_lines = col->log.lines; /* events plus the closing record */
	ri->log_root = col->log.head;
	if (j->o.baseline && record_baseline(j, &bl))
		rc = rc ? rc : 1;
	ri->baseline_json = j->o.baseline ? bl.buf : NULL;
	/* a first-seen finding the policy ends jobs on (the job is over: the run fails) */
	ri->lockdown_enforced = j->locked_down;
	summary_render(&col->sum, ri, &sum);
	if (outdir_write_file(&j->out, "summary.json", sum.buf, sum.len, ev_err)) {
		rw_err("cannot write %s", ev_err);
		rc = rc ? rc : 1;
	}
	if (!j->o.quiet) {
		summary_print(&col->sum, ri, stderr);
		if (j->o.baseline && j->o.baseline->report)
			fputs(j->o.baseline->report, stderr);
	}
	if (col->io_error)
		rw_err("some events could not be written; counted as lost");
	if (j->o.mode == POLICY_MODE_LEARN) {
		if (learn_write_at(j->out.fd, j->o.out_dir))
			rc = rc ? rc : 1;
		else if (!j->o.quiet)
			fprintf(stderr, "  suggested policy: %s/policy.learned.yaml\n",
				j->o.out_dir);
	}
	if (!j->o.no_sign) {
		struct attest_input in = {
		    .summary = sum.buf,
		    .summary_len = sum.len,
		    .log = &col->log,
		    .log_name = "events.ndjson",
		    .exec = &j->exec,
		    .policy_path = j->o.policy,
		    .policy_sha256 = j->o.policy ? j->enf.pol->sha256 : NULL,
		    .key = j->have_key ? &j->key : NULL,
		};

		if (attest_write(&j->out, &in))
			rc = rc ? rc : 1;
	}
	/* The job is over (its leftovers were killed or are reported): readers
	 * may now read, still nobody but root can write. */
	if (outdir_publish(&j->out, ev_err)) {
		rw_err("%s", ev_err);
		rc = rc ? rc : 1;
	}
	if (violations(j) && rc == 0) {
		rw_err(
		    "%llu policy violations (%llu denied, %llu would have been); failing the run",
		    (unsigned long long)(col->sum.denials + col->sum.audits),
		    (unsigned long long)col->sum.denials, (unsigned long long)col->sum.audits);
		rc = 1;
	}
	if (ri->n_leftovers && !ri->leftovers_killed)
		rw_err(
		    "%d processes are still running in %s, %s, and not recorded (not killed: see "
		    "--kill-leftovers, or --leftovers kill for job stop)",
		    ri->n_leftovers, j->scope.path,
		    j->o.release_leftovers ? "released from the fence" : "fenced until they exit");
	if (j->locked_down) {
		rw_err("LOCKDOWN: %s; the job was ended (exit status %d)",
		       col->findings.lockdown_reason ? col->findings.lockdown_reason : "a finding",
		       RW_EXIT_LOCKDOWN);
		rc = RW_EXIT_LOCKDOWN;
	}
	for (int i = 0; command && command[i]; i++)
		free(command[i]);
	free(command);
	free(policy_json);
	sb_release(&dns);
	sb_release(&capjson);
	sb_release(&secrets);
	sb_release(&sum);
	sb_release(&lost);
	sb_release(&extra);
	sb_release(&bl);
	return rc;
}

void job_free(struct job *j, bool handoff)
{
	/* Before the detaching child is forked: it has no business holding it. */
	outdir_close(&j->out);
	if (j->epfd >= 0)
		close(j->epfd);
	if (j->following)
		containers_free(&j->cont);
	else
		sb_release(&j->cont.list); /* rootless containers' names only */
	if (j->keeper_pidfd >= 0)
		close(j->keeper_pidfd);
	if (j->rb)
		ring_buffer__free(j->rb);
	if (j->loaded)
		loader_stop(&j->ld, handoff);
	if (j->scope.path[0] && scope_destroy(&j->scope) &&
	    !(j->ri.n_leftovers && !j->ri.leftovers_killed))
		rw_err("cannot remove cgroup %s: %s", j->scope.path, strerror(errno));
	if (j->col_ready)
		collector_free(&j->col);
	exec_summary_release(&j->exec);
	key_free(&j->key);
	enforce_free(&j->enf);
	free(j->ri.leftovers);
	sensitive_free(&j->sens);
	sb_release(&j->missing);
	free(j->ci_json);
	free(j->ci_step);
	free(j->ci_provider);
	memset(j, 0, sizeof(*j));
	j->epfd = -1;
	j->keeper_pidfd = -1;
	j->out.fd = -1;
}
