/* Ring-buffer consumer and event-line writer (see collect.h, docs/events.md). */
#include "observe/collect.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "observe/connname.h"
#include "observe/dns.h"
#include "observe/tlshttp.h"
#include "ci/controlplane.h"
#include "ci/detect.h"
#include "common/jsonw.h"
#include "common/netnames.h"
#include "gate/dnsgate.h"
#include "common/util.h"
#include "events.h"
#include "common/xalloc.h"
#include "observe/shim.h"

/* Questions off the gate waiting for their answer: bounded in count and in bytes (each holds
 * only its name); past either, a question is logged at once without its answer, and counted. */
#define DNS_PENDING_MAX	  8192
#define DNS_PENDING_BYTES (2u << 20)
/* Host labels and redirected sockets are kept least recently used first and the oldest goes
 * when a new one needs room: a long job keeps labelling the addresses it is resolving now, and
 * the memory stays the same however many distinct addresses and names it goes through. The
 * names are the job's (up to 1,025 bytes each), so the labels are bounded in bytes as well. */
#define HOSTS_MAX      16384
#define HOSTS_BYTES    (1u << 20)
#define REDIRECTED_MAX 4096
/* Job sockets that sent the gate a question; past this the oldest is forgotten, and counted. */
#define GATE_CLIENTS_MAX 16384

/* Who asked: the process and the resolver it addressed, from the question's packet. */
struct dns_who {
	int64_t ts;
	pid_t pid, tid;
	uint32_t uid;
	char comm[COMM_LEN];
	char proto[4];
	char server[INET6_ADDRSTRLEN];
};

struct dns_pending {
	struct dns_who who;
	int qtype;
	char qname[]; /* exactly as long as it needs */
};

static void capture_emit(void *ctx, const struct http_line *l);
static void capture_emit_ws(void *ctx, const struct ev_hdr *h, const char *members);
/* The redactor's extra spans: the job's own secret values wherever they are in an argument,
 * whatever their shape (redact.h). */
struct span_sink {
	size_t (*v)[2];
	size_t n, max;
};

static int span_hit(void *ctx, const struct secret *x, size_t from, size_t to)
{
	struct span_sink *k = ctx;

	(void)x;
	if (k->n == k->max)
		return 1;
	k->v[k->n][0] = from;
	k->v[k->n][1] = to;
	k->n++;
	return 0;
}

static size_t redact_known_secrets(void *ctx, const char *s, size_t n, size_t (*spans)[2],
				   size_t max)
{
	struct span_sink k = {.v = spans, .max = max};

	if (secrets_scan(ctx, s, n, span_hit, &k)) {
		/* no matcher: the argument is redacted whole rather than trusted */
		spans[0][0] = 0;
		spans[0][1] = n;
		return n && max ? 1 : 0;
	}
	return k.n;
}

int collector_init(struct collector *c, int log_fd, const struct sensitive_list *sens,
		   const char *step)
{
	memset(c, 0, sizeof(*c));
	c->sens = sens;
	c->step = step;
	c->mono_off = mono_to_real_offset();
	proctab_init(&c->procs);
	strmap_init(&c->dns_pending);
	strmap_init(&c->hosts);
	strmap_init(&c->tls_pending);
	strmap_init(&c->tls_pids);
	strmap_init(&c->redirected);
	strmap_init(&c->gate_clients);
	strmap_init(&c->watched);
	strmap_init(&c->containers);
	strmap_init(&c->shims);
	exe_cache_init(&c->exes);
	summary_init(&c->sum);
	findings_init(&c->findings, &c->procs);
	if (redactor_init(&c->redact, NULL))
		return -1;
	capture_init(&c->cap);
	c->cap.redact = &c->redact;
	c->cap.emit = capture_emit;
	c->cap.emit_ws = capture_emit_ws;
	c->cap.ctx = c;
	secrets_init(&c->secrets, &c->redact, NULL);
	c->redact.extra = redact_known_secrets;
	c->redact.extra_ctx = &c->secrets;
	return evlog_open_fd(&c->log, log_fd);
}

/* ------------------------------------------------------------ rendering */

void join_components(struct strbuf *sb, const char *data, size_t len)
{
	const char *comp[PATH_DEPTH + 1];
	size_t clen[PATH_DEPTH + 1];
	int n = 0;
	size_t i = 0;

	while (i < len && n <= PATH_DEPTH) {
		size_t l = strnlen(data + i, len - i);

		comp[n] = data + i;
		clen[n++] = l;
		i += l + 1;
	}
	if (n == 0)
		sb_addch(sb, '/');
	while (n-- > 0) {
		sb_addch(sb, '/');
		sb_add(sb, comp[n], clen[n]);
	}
}

void render_argv(struct strbuf *sb, const char *data, size_t len)
{
	size_t i = 0;
	bool first = true;

	sb_addch(sb, '[');
	while (i < len) {
		size_t l = strnlen(data + i, len - i);

		if (!first)
			sb_addch(sb, ',');
		json_str(sb, data + i, l);
		first = false;
		i += l + 1;
	}
	sb_addch(sb, ']');
}

void render_open_flags(struct strbuf *sb, unsigned flags)
{
	static const struct {
		unsigned bit;
		const char *name;
	} bits[] = {
	    {O_CREAT, "O_CREAT"},	{O_EXCL, "O_EXCL"},	    {O_TRUNC, "O_TRUNC"},
	    {O_APPEND, "O_APPEND"},	{O_NONBLOCK, "O_NONBLOCK"}, {O_DIRECTORY, "O_DIRECTORY"},
	    {O_NOFOLLOW, "O_NOFOLLOW"}, {O_CLOEXEC, "O_CLOEXEC"},   {O_PATH, "O_PATH"}};
	const char *acc = (flags & O_ACCMODE) == O_WRONLY ? "O_WRONLY"
			  : (flags & O_ACCMODE) == O_RDWR ? "O_RDWR"
							  : "O_RDONLY";

	sb_addf(sb, "[\"%s\"", acc);
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if ((flags & bits[i].bit) == bits[i].bit)
			sb_addf(sb, ",\"%s\"", bits[i].name);
	sb_addch(sb, ']');
}

void render_result(struct strbuf *sb, int result)
{
	const char *name;

	if (result >= 0) {
		sb_addstr(sb, "\"ok\"");
		return;
	}
	name = strerrorname_np(-result);
	if (name)
		sb_addf(sb, "\"%s\"", name);
	else
		sb_addf(sb, "\"E%d\"", -result);
}

/* Common members: ts, kind, and the process that caused the event. */
static struct proc *render_head(struct collector *c, const struct ev_hdr *h, const char *kind,
				struct strbuf *sb)
{
	struct proc *p = h->pid ? proctab_get(&c->procs, h->pid) : NULL;
	const char *comm = h->comm;
	size_t comm_len = strnlen(h->comm, COMM_LEN);

	/* printf-free: this runs for every event (see docs/performance.md, capacity). */
	sb_addstr(sb, ",\"ts\":\"");
	fmt_rfc3339(sb, (int64_t)h->ts + c->mono_off);
	sb_addstr(sb, "\",\"kind\":\"");
	sb_addstr(sb, kind);
	if (h->pid) {
		sb_addstr(sb, "\",\"pid\":");
		sb_addu(sb, h->pid);
		sb_addstr(sb, ",\"tid\":");
		sb_addu(sb, h->tid);
	} else {
		sb_addstr(sb, "\",\"pid\":null,\"tid\":null");
	}
	sb_addstr(sb, ",\"ppid\":");
	if (h->ppid)
		sb_addu(sb, h->ppid);
	else if (p && p->ppid)
		sb_addi(sb, p->ppid);
	else
		sb_addstr(sb, "null");
	sb_addstr(sb, ",\"uid\":");
	sb_addu(sb, h->uid);
	if (!comm_len && p) {
		comm = p->comm;
		comm_len = strnlen(p->comm, COMM_LEN);
	}
	sb_addstr(sb, ",\"comm\":");
	if (comm_len)
		json_str(sb, comm, comm_len);
	else
		sb_addstr(sb, "null");
	sb_addstr(sb, ",\"exe\":");
	json_cstr(sb, p ? p->exe : NULL);
	sb_addstr(sb, ",\"step\":");
	json_cstr(sb, p && p->step ? p->step : c->step);
	if (p && p->container) {
		sb_addstr(sb, ",\"container\":");
		sb_addstr(sb, p->container);
	}
	return p;
}

/* The last guard before the chain: a secret value of the job's anywhere in a line (a Host, a
 * request target, a name no rule above thought of) is replaced by its tag. One Hyperscan pass
 * over the line; a second, copying one only when there is something to replace. */
static void redact_line(struct collector *c)
{
	struct strbuf out = STRBUF_INIT;

	if (!c->body.len || !secrets_find(&c->secrets, c->body.buf, c->body.len, NULL, NULL))
		return;
	secrets_redact(&c->secrets, c->body.buf, c->body.len, &out);
	sb_reset(&c->body);
	sb_add(&c->body, out.buf, out.len);
	sb_release(&out);
	c->secrets_redacted_lines++;
}

static void write_line(struct collector *c, int kind)
{
	int64_t seq;

	redact_line(c);
	seq = evlog_append(&c->log, c->body.buf, c->body.len);

	c->last_seq = seq > 0 ? (uint64_t)seq : 0;
	if (seq < 0) {
		c->io_error = true;
		c->sum.lost_user[kind]++;
		return;
	}
	c->sum.logged[kind]++;
}

/* The process a finding names, as the line just written named it; NULL for the CI runner's
 * own lines (whole-job mode), which no detector judges. */
static const struct finding_proc *fproc(struct collector *c, const struct ev_hdr *h,
					const struct proc *p, struct finding_proc *out)
{
	c->findings.runner_pid = c->runner_pid;
	if (!h->pid || (c->runner_pid && (pid_t)h->pid == c->runner_pid))
		return NULL;
	out->pid = (pid_t)h->pid;
	out->exe = p ? p->exe : NULL;
	out->argv_json = p ? p->argv_json : NULL;
	out->step = p && p->step ? p->step : c->step;
	return out;
}

/* Any other line a process of the job caused: what persistence reports it did. */
static void note_activity(struct collector *c, const struct ev_hdr *h, const struct proc *p,
			  const char *what)
{
	struct finding_proc fp;

	if (fproc(c, h, p, &fp))
		findings_on_activity(&c->findings, &fp, what, c->last_seq);
}

/* ------------------------------------------------------------ handlers */

/* The exe name as the log gives it: the resolved path; a memfd's own name
 * ("memfd:NAME", never starting with '/', so no path can pass for it); an
 * unlinked file's path with " (deleted)", as the kernel's /proc does. */
static void exe_name(struct strbuf *sb, const struct ev_exec *e)
{
	if (e->flags & EVF_EXE_ANON) {
		sb_add(sb, e->data, strnlen(e->data, e->exe_len));
		return;
	}
	join_components(sb, e->data, e->exe_len);
	if (e->flags & EVF_EXE_DELETED)
		sb_addstr(sb, " (deleted)");
}

/* What was executed: device, inode, size and content hash. */
static void render_exe_id(struct strbuf *sb, const struct ev_exec *e, const struct exe_hash *h,
			  bool memfd)
{
	sb_addstr(sb, ",\"exe_dev\":\"");
	fileid_dev_str(sb, e->exe.dev);
	sb_addf(sb, "\",\"exe_ino\":%llu,\"exe_size\":%llu,\"exe_sha256\":",
		(unsigned long long)e->exe.ino, (unsigned long long)e->exe.size);
	if (h->sha256[0])
		sb_addf(sb, "\"%s\"", h->sha256);
	else
		sb_addf(sb, "null,\"exe_unhashed\":\"%s\"", h->why ? h->why : "unknown");
	if (h->cut)
		sb_addstr(sb, ",\"exe_hash_cut\":true");
	if (memfd)
		sb_addstr(sb, ",\"exe_memfd\":true");
	else if (e->flags & EVF_EXE_ANON)
		sb_addstr(sb, ",\"exe_pathless\":true");
	if (e->flags & EVF_EXE_DELETED)
		sb_addstr(sb, ",\"exe_deleted\":true");
}

void collector_add_container(struct collector *c, uint64_t cgid, const char *identity_json)
{
	char key[24];
	struct strmap_entry *e;
	bool created;

	snprintf(key, sizeof(key), "%llu", (unsigned long long)cgid);
	e = strmap_put(&c->containers, key, &created);
	/* A cgroup id is never reused while the cgroup file system is mounted. */
	if (created)
		e->val = xstrdup(identity_json);
}

/* Only a container that joined the job has an entry: a process in the job's own
 * scope, or in a cgroup below a container's, is named by its ancestry alone. */
static const char *container_of_cgroup(struct collector *c, uint64_t cgid)
{
	char key[24];
	const struct strmap_entry *e;

	snprintf(key, sizeof(key), "%llu", (unsigned long long)cgid);
	e = c->containers.count ? strmap_get(&c->containers, key) : NULL;
	if (!e && c->containers_poll && cgid != c->own_cgid) {
		c->containers_poll(c->containers_ctx);
		e = strmap_get(&c->containers, key);
	}
	return e ? e->val : NULL;
}

static void free_shim(void *v)
{
	shim_free(v);
	free(v);
}

/* Podman's monitor starting (shim.h): the container it names, kept (at most SHIMS_MAX, the
 * rest counted as unlisted: a job can start monitors without end), or NULL. */
static struct shim *conmon_started(struct collector *c, const char *argv, size_t len)
{
	struct shim s, *kept;
	struct strmap_entry *e;
	bool created;

	if (!shim_parse_conmon(argv, len, &s))
		return NULL;
	e = strmap_get(&c->shims, s.id);
	if (e) {
		shim_free(&s);
		return e->val;
	}
	if (c->shims.count >= SHIMS_MAX) {
		c->sum.containers_unlisted++;
		shim_free(&s);
		return NULL;
	}
	e = strmap_put(&c->shims, s.id, &created);
	kept = xmalloc(sizeof(*kept));
	*kept = s;
	e->val = kept;
	return kept;
}

/* The container a process without a container cgroup enters by this exec: a monitor's
 * (conmon's, or a fork of it: it daemonizes) when the image the process leaves is that
 * monitor's runtime (runc init execs the container's first command; runc runs as a sealed
 * copy of itself, a memfd named "runc", so the name is what is compared). The runtime itself and
 * what conmon runs otherwise (podman's exit command) are not the container. */
static struct shim *shim_container(struct collector *c, const struct proc *p, const char *exe)
{
	const struct proc *q = p;

	for (int depth = 0; depth < 4 && q && q->ppid > 0; depth++) {
		q = proctab_get(&c->procs, q->ppid);
		if (q && q->shim)
			return shim_is_runtime(q->shim, p->exe) && !shim_is_runtime(q->shim, exe)
				   ? q->shim
				   : NULL;
	}
	return NULL;
}

/* "stdio_inet":["stdin","stdout"]: standard descriptors that were IP sockets at exec. */
static void render_stdio_inet(struct strbuf *sb, uint32_t flags)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} fds[] = {
	    {EVF_STDIN_INET, "stdin"}, {EVF_STDOUT_INET, "stdout"}, {EVF_STDERR_INET, "stderr"}};
	const char *sep = ",\"stdio_inet\":[";

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (!(flags & fds[i].bit))
			continue;
		sb_addf(sb, "%s\"%s\"", sep, fds[i].name);
		sep = ",";
	}
	if (sep[0] == ',' && sep[1] == 0)
		sb_addch(sb, ']');
}

static void on_exec(struct collector *c, const struct ev_exec *e, size_t len)
{
	struct strbuf *sb = &c->body;
	struct strbuf exe = STRBUF_INIT, path = STRBUF_INIT, argv = STRBUF_INIT, tags = STRBUF_INIT;
	size_t need = sizeof(*e) + e->exe_len + e->cwd_len + e->argv_len, secrets;
	struct finding_proc fp;
	struct exe_hash h;
	struct proc *p;
	const char *in_cgroup;
	struct shim *shim_ctr;
	bool memfd;

	if (len < need) {
		c->sum.lost_user[EV_EXEC]++; /* malformed record: counted, never silent */
		return;
	}
	exe_name(&exe, e);
	memfd = (e->flags & EVF_EXE_ANON) && !strncmp(exe.buf, "memfd:", 6);
	if (!(e->flags & EVF_EXE_ANON))
		join_components(&path, e->data, e->exe_len);
	/* Secrets never reach the log, the process table or anything made from them. */
	secrets = redact_argv_json(&c->redact, e->data + e->exe_len + e->cwd_len, e->argv_len,
				   &argv, &tags);
	exe_cache_get(&c->exes, &e->exe, e->h.pid, e->h.ppid, path.len ? path.buf : NULL, &h);

	p = proctab_get(&c->procs, e->h.pid);
	if (!p)
		p = proctab_add(&c->procs, e->h.pid);
	p->ppid = e->h.ppid;
	p->uid = e->h.uid;
	memcpy(p->comm, e->h.comm, COMM_LEN);
	shim_ctr = shim_container(c, p, exe.buf); /* before p->exe is the new image */
	proctab_set(p, exe.buf, argv.buf);
	p->exe_dev = e->exe.dev;
	p->exe_ino = e->exe.ino;
	memcpy(p->exe_sha256, h.sha256, sizeof(p->exe_sha256));
	if ((in_cgroup = container_of_cgroup(c, e->cgid))) {
		p->container = in_cgroup;
		p->by_shim = false;
	} else {
		/* A container without a cgroup is left only with the image that entered it. */
		if (!p->by_shim || shim_ctr)
			p->container = shim_ctr ? shim_ctr->identity : NULL;
		p->by_shim = p->container != NULL;
		if (shim_ctr && !shim_ctr->listed) {
			/* listed once a process is in it: rootful Podman's conmon names
			 * containers that have cgroups, and are listed by those */
			shim_ctr->listed = true;
			c->shims_listed[c->n_shims_listed++] = shim_ctr;
		}
	}
	p->shim = NULL;
	if (!p->container && shim_is_conmon(path.len ? path.buf : NULL))
		p->shim = conmon_started(c, e->data + e->exe_len + e->cwd_len, e->argv_len);

	sb_reset(sb);
	render_head(c, &e->h, "exec", sb);
	render_exe_id(sb, e, &h, memfd);
	sb_addstr(sb, ",\"argv\":");
	sb_add(sb, argv.buf, argv.len);
	sb_addf(sb, ",\"argv_truncated\":%s", e->flags & EVF_ARGV_TRUNC ? "true" : "false");
	sb_addstr(sb, ",\"cwd\":");
	{
		struct strbuf cwd = STRBUF_INIT;

		join_components(&cwd, e->data + e->exe_len, e->cwd_len);
		json_str(sb, cwd.buf, cwd.len);
		sb_release(&cwd);
	}
	if (e->flags & (EVF_EXE_TRUNC | EVF_CWD_TRUNC))
		sb_addf(sb, ",\"path_truncated\":true");
	render_stdio_inet(sb, e->flags);
	write_line(c, EV_EXEC);
	if (fproc(c, &e->h, p, &fp)) {
		findings_on_exec(&c->findings, &fp, c->last_seq);
		if (e->flags & (EVF_STDIN_INET | EVF_STDOUT_INET))
			findings_on_stdio_inet(&c->findings, &fp, !!(e->flags & EVF_STDIN_INET),
					       !!(e->flags & EVF_STDOUT_INET), c->last_seq);
		if (secrets) {
			struct strbuf tj = STRBUF_INIT;

			sb_addf(&tj, "[%s]", sb_str(&tags));
			findings_on_secret(&c->findings, &fp, tj.buf, secrets, c->last_seq);
			sb_release(&tj);
		}
	}
	sb_release(&exe);
	sb_release(&path);
	sb_release(&argv);
	sb_release(&tags);
}

static void on_exit_(struct collector *c, const struct ev_exit *e)
{
	struct strbuf *sb = &c->body;
	int st = e->exit_code;

	sb_reset(sb);
	render_head(c, &e->h, "exit", sb);
	if ((st & 0x7f) == 0)
		sb_addf(sb, ",\"status\":%d,\"signal\":null", (st >> 8) & 0xff);
	else
		sb_addf(sb, ",\"status\":null,\"signal\":%d", st & 0x7f);
	write_line(c, EV_EXIT);
	/* Before the table forgets it: a root's exit leaves what it started outliving it. */
	findings_on_exit(&c->findings, (pid_t)e->h.pid, c->last_seq);
	proctab_exit(&c->procs, e->h.pid);
}

static const char *verdict_name(int v)
{
	return v == VERDICT_DENY    ? "deny"
	       : v == VERDICT_BLOCK ? "block"
	       : v == VERDICT_AUDIT ? "audit"
				    : "allow";
}

static void count_verdict(struct collector *c, int v)
{
	if (v == VERDICT_AUDIT)
		c->sum.audits++;
	else if (v == VERDICT_DENY || v == VERDICT_BLOCK)
		c->sum.denials++;
}

/* Adds a denied, blocked or audited attempt to the grouped violation list (see
 * summary_violation): ident holds the kind's identity members, human one line. */
static void note_violation(struct collector *c, const struct ev_hdr *h, const char *kind,
			   const char *verdict, const char *ident, const char *human)
{
	struct proc *p = h->pid ? proctab_get(&c->procs, h->pid) : NULL;
	struct strbuf frag = STRBUF_INIT, hl = STRBUF_INIT, pj = STRBUF_INIT;
	const char *step = p && p->step ? p->step : c->step;

	if (!strcmp(verdict, "allow"))
		return;
	sb_addf(&frag, "\"kind\":\"%s\",\"verdict\":\"%s\",\"step\":", kind, verdict);
	json_cstr(&frag, step);
	sb_addf(&frag, ",%s", ident);
	sb_addf(&hl, "%s %s %s", verdict, kind, human);
	if (step) {
		sb_addstr(&hl, " step ");
		json_cstr(&hl, step);
	}
	sb_addf(&pj, "{\"pid\":%u,\"exe\":", h->pid);
	json_cstr(&pj, p && p->exe ? p->exe : NULL);
	sb_addch(&pj, '}');
	summary_violation(&c->sum, frag.buf, hl.buf, pj.buf);
	sb_release(&frag);
	sb_release(&hl);
	sb_release(&pj);
}

/* The name an address was resolved from, if a DNS answer in this job said so. */
static const char *host_for(struct collector *c, const char *addr)
{
	struct strmap_entry *e = strmap_get(&c->hosts, addr);

	if (!e && !strncmp(addr, "::ffff:", 7) && strchr(addr + 7, '.'))
		e = strmap_get(&c->hosts, addr + 7); /* v4-mapped */
	if (!e)
		return NULL;
	strmap_touch(&c->hosts, e); /* in use: the last to be forgotten */
	return e->val;
}

/* How a destination reads in the summary: "udp 127.0.0.1:9 \"host\"". */
static void dest_human(struct strbuf *h, const struct ev_connect *e, const struct dest_memo *m,
		       const char *proto)
{
	bool v6 = m->family == AF_INET6;

	if (net_ipproto_has_ports(e->proto))
		sb_addf(h, "%s %s%s%s:%u", proto, v6 ? "[" : "", m->addr, v6 ? "]" : "", e->dport);
	else
		sb_addf(h, "%s %s", proto, m->addr); /* ICMP: an address, no port */
	if (m->host) {
		sb_addstr(h, " ");
		json_cstr(h, m->host);
	}
}

static bool dest_memo_hit(const struct collector *c, const struct ev_connect *e, int family)
{
	const struct dest_memo *m = &c->dest_memo;

	return m->valid && m->family == family && m->proto == e->proto && m->dport == e->dport &&
	       m->verdict == e->verdict && m->hosts_gen == c->hosts_gen &&
	       !memcmp(m->daddr, e->daddr, sizeof(m->daddr));
}

/* The destination of a connect, rendered (or reused) in the memo, counted in the summary,
 * and, when it was not allowed, added to the violations. */
static const struct dest_memo *note_dest(struct collector *c, const struct ev_connect *e,
					 int family)
{
	struct dest_memo *m = &c->dest_memo;
	struct strbuf addr = STRBUF_INIT, human = STRBUF_INIT, key = STRBUF_INIT;
	char pbuf[NET_NAME_MAX], fbuf[NET_NAME_MAX];
	const char *proto = net_ipproto_name(e->proto, pbuf), *verdict = verdict_name(e->verdict);
	bool hit = dest_memo_hit(c, e, family);

	if (!hit) {
		m->valid = false;
		m->family = (uint8_t)family;
		m->proto = e->proto;
		m->dport = e->dport;
		m->verdict = e->verdict;
		m->hosts_gen = c->hosts_gen;
		memcpy(m->daddr, e->daddr, sizeof(m->daddr));
		fmt_addr(&addr, family, e->daddr);
		snprintf(m->addr, sizeof(m->addr), "%s", addr.buf);
		m->host = host_for(c, m->addr);
		sb_reset(&m->frag);
		sb_addstr(&m->frag, "\"proto\":\"");
		sb_addstr(&m->frag, proto);
		sb_addstr(&m->frag, "\",\"family\":\"");
		sb_addstr(&m->frag, net_family_name(family, fbuf));
		sb_addstr(&m->frag, "\",\"daddr\":\"");
		sb_addstr(&m->frag, m->addr);
		sb_addstr(&m->frag, "\",\"dport\":");
		sb_addu(&m->frag, e->dport);
		sb_addstr(&m->frag, ",\"host\":");
		json_cstr(&m->frag, m->host);
	}
	if (!hit || e->verdict != VERDICT_ALLOW) {
		dest_human(&human, e, m, proto);
		note_violation(c, &e->h, "connect", verdict, m->frag.buf, human.buf);
	}
	if (hit) {
		summary_dest_again(&c->sum, m->dest);
	} else {
		sb_add(&key, m->frag.buf, m->frag.len);
		sb_addf(&key, ",\"verdict\":\"%s\"", verdict);
		sb_addf(&human, " %s", verdict);
		m->dest = summary_dest_ref(&c->sum, key.buf, human.buf);
		m->valid = true;
	}
	sb_release(&addr);
	sb_release(&human);
	sb_release(&key);
	return m;
}

/* The findings' view of a connect: the TCP connection a reverse shell rests on, and what a
 * process that outlived its root did. Cheap unless a finding needs it. */
static void note_connect(struct collector *c, const struct ev_connect *e, const struct dest_memo *m,
			 const struct proc *p)
{
	struct finding_proc fp;
	char pbuf[NET_NAME_MAX];

	/* the hot path: a datagram storm pays one comparison */
	if (e->proto != PROTO_TCP && !c->findings.outlived.count)
		return;
	if (!fproc(c, &e->h, p, &fp))
		return;
	findings_on_connect(&c->findings, &fp, net_ipproto_name(e->proto, pbuf), m->addr,
			    m->family == AF_INET6, e->dport, c->last_seq);
}

/* The resolver a redirected socket addressed; the oldest socket is forgotten to make room. */
static void remember_redirect(struct collector *c, const char *cookie, const char *resolver)
{
	struct strmap_entry *r = strmap_get(&c->redirected, cookie);

	if (r) {
		strmap_touch(&c->redirected, r);
		if (strcmp(r->val, resolver)) {
			free(r->val);
			r->val = xstrdup(resolver);
		}
		return;
	}
	if (c->redirected.count >= REDIRECTED_MAX)
		free(strmap_del(&c->redirected, c->redirected.first->key));
	strmap_put(&c->redirected, cookie, NULL)->val = xstrdup(resolver);
}

static void on_connect(struct collector *c, const struct ev_connect *e)
{
	struct strbuf *sb = &c->body;
	int family = e->family == AF_INET6 ? AF_INET6 : AF_INET;
	const struct dest_memo *m;
	struct proc *p;

	sb_reset(sb);
	p = render_head(c, &e->h, "connect", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	m = note_dest(c, e, family);
	sb_addch(sb, ',');
	sb_add(sb, m->frag.buf, m->frag.len);
	sb_addstr(sb, ",\"verdict\":\"");
	sb_addstr(sb, verdict_name(e->verdict));
	sb_addstr(sb, "\",\"via\":\"");
	sb_addstr(sb, e->via == VIA_SENDMSG  ? "sendmsg"
		      : e->via == VIA_PACKET ? "packet"
					     : "connect");
	sb_addstr(sb, "\",\"result\":");
	if (e->flags & EVF_HAS_RESULT)
		render_result(sb, e->result);
	else
		sb_addstr(sb, "null");
	if (e->flags & EVF_RUNNER)
		sb_addf(sb, ",\"runner\":true,\"control_plane\":%s",
			m->host && c->ci_provider && ci_control_plane_match(c->ci_provider, m->host)
			    ? "true"
			    : "false");
	if (e->flags & EVF_REDIRECTED) {
		char ck[24];

		sb_addstr(sb, ",\"redirected_to_gate\":true");
		/* The wire shows the gate's address; the log should name the
		 * resolver the job chose. */
		snprintf(ck, sizeof(ck), "%llx", (unsigned long long)e->cookie);
		remember_redirect(c, ck, m->addr);
	}
	write_line(c, EV_CONNECT);
	note_connect(c, e, m, p);
	count_verdict(c, e->verdict);
}

static void pending_key(char *buf, size_t len, uint64_t cookie, uint16_t id)
{
	snprintf(buf, len, "%llx:%u", (unsigned long long)cookie, id);
}

static size_t host_text(const char *addr, const char *name)
{
	return strlen(addr) + 1 + strlen(name) + 1;
}

static void forget_oldest_host(struct collector *c)
{
	struct strmap_entry *e = c->hosts.first;

	c->hosts_bytes -= host_text(e->key, e->val);
	free(strmap_del(&c->hosts, e->key));
}

/* Labels the addresses of an answer with the name the job asked for (not the CNAME target),
 * forgetting the least recently used labels to make room. */
static void remember_host(struct collector *c, const char *addr, const char *qname)
{
	size_t need = host_text(addr, qname);
	struct strmap_entry *e;
	bool created;

	if (need > HOSTS_BYTES)
		return; /* a label, not evidence: the connect is logged anyway */
	c->hosts_gen++; /* the connect memo may hold a name freed here */
	e = strmap_put(&c->hosts, addr, &created);
	if (!created) {
		c->hosts_bytes -= host_text(addr, e->val);
		free(e->val);
		strmap_touch(&c->hosts, e);
	}
	e->val = xstrdup(qname);
	c->hosts_bytes += need;
	/* e is the newest entry, so it is never the one forgotten. */
	while (c->hosts.count > 1 && (c->hosts.count > HOSTS_MAX || c->hosts_bytes > HOSTS_BYTES))
		forget_oldest_host(c);
}

/* One answer record as the log shows it: the address, or "CNAME target". */
static void answer_json(struct strbuf *sb, bool cname, const char *data)
{
	sb_addstr(sb, cname ? "\"CNAME " : "\"");
	/* names are presentation format already; addresses are plain */
	for (const char *s = data; *s; s++) {
		if (*s == '"' || *s == '\\')
			sb_addch(sb, '\\');
		sb_addch(sb, *s);
	}
	sb_addch(sb, '"');
}

struct dns_line {
	const struct dns_who *who;
	const char *qname; /* NULL: the message had no readable question */
	int qtype;
	int rcode; /* -1: none */
	int verdict;
	const char *reason;    /* the gate's, or NULL */
	const char *malformed; /* why the message could not be read, or NULL */
	bool cut;	       /* named from a capture cut short */
	bool answers_truncated;
	int n;
	struct strbuf *answers; /* n JSON strings */
};

/* The one writer of dns lines, whoever saw the question (the gate, or the packet). */
static void write_dns(struct collector *c, const struct dns_line *l)
{
	struct strbuf *sb = &c->body;
	struct strbuf frag = STRBUF_INIT, human = STRBUF_INIT;
	const char
	    *answers[DNSGATE_EVENT_RRS > DNS_MAX_ANSWERS ? DNSGATE_EVENT_RRS : DNS_MAX_ANSWERS];
	char tb[16], rb[16];
	struct ev_hdr h = {0};
	struct proc *p;

	struct dns_line red;
	struct strbuf rq = STRBUF_INIT;
	const struct secret *leak = NULL;

	h.pid = l->who->pid;
	h.tid = l->who->tid;
	h.uid = l->who->uid;
	h.ts = l->who->ts;
	memcpy(h.comm, l->who->comm, COMM_LEN);
	/* A secret in the name (a tunnel's payload) is never written: the name is logged with
	 * the secret's tag in its place, and named by a finding. */
	if (l->qname &&
	    (leak = secrets_find(&c->secrets, l->qname, strlen(l->qname), NULL, NULL))) {
		secrets_redact(&c->secrets, l->qname, strlen(l->qname), &rq);
		red = *l;
		red.qname = rq.buf;
		l = &red;
	}
	sb_reset(sb);
	render_head(c, &h, "dns", sb);
	p = h.pid ? proctab_get(&c->procs, h.pid) : NULL;
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	sb_addf(sb, ",\"proto\":\"%s\",\"server\":", l->who->proto);
	json_cstr(sb, l->who->server[0] ? l->who->server : NULL);
	sb_addstr(&frag, "\"query\":");
	json_cstr(&frag, l->qname);
	if (l->qname)
		sb_addf(&frag, ",\"qtype\":\"%s\"", dns_type_name(l->qtype, tb, sizeof(tb)));
	else
		sb_addstr(&frag, ",\"qtype\":null");
	sb_addch(sb, ',');
	sb_add(sb, frag.buf, frag.len);
	if (l->rcode >= 0)
		sb_addf(sb, ",\"rcode\":\"%s\"", dns_rcode_name(l->rcode, rb, sizeof(rb)));
	else
		sb_addstr(sb, ",\"rcode\":null");
	sb_addstr(sb, ",\"answers\":[");
	for (int i = 0; i < l->n; i++) {
		sb_addf(sb, "%s%s", i ? "," : "", l->answers[i].buf);
		answers[i] = l->answers[i].buf;
	}
	sb_addch(sb, ']');
	if (l->answers_truncated)
		sb_addstr(sb, ",\"answers_truncated\":true");
	sb_addf(sb, ",\"verdict\":\"%s\"", verdict_name(l->verdict));
	if (l->reason) {
		sb_addstr(sb, ",\"reason\":");
		json_cstr(sb, l->reason);
	}
	if (l->malformed) {
		sb_addstr(sb, ",\"malformed\":");
		json_cstr(sb, l->malformed);
	}
	if (l->cut)
		sb_addstr(sb, ",\"capture_cut\":true");
	write_line(c, EV_DNS_PKT);
	count_verdict(c, l->verdict);
	{
		struct finding_proc fp;

		if (fproc(c, &h, p, &fp))
			findings_on_dns(&c->findings, &fp, l->qname, l->qtype, c->last_seq);
		if (leak && fproc(c, &h, p, &fp)) {
			struct finding_secret fs = {
			    .secret = leak->name,
			    .source = secret_source_name(leak->src),
			    .key = leak->what,
			    .tag = leak->tag[0] ? leak->tag : NULL,
			    .dest = l->who->server[0] ? l->who->server : NULL,
			    .channel = "dns_name",
			    .verdict = l->verdict == VERDICT_DENY || l->verdict == VERDICT_BLOCK
					   ? "deny"
					   : "audit"};

			findings_on_secret_leak(&c->findings, &fp, &fs, c->last_seq);
		}
	}
	if (l->qname) {
		json_cstr(&human, l->qname);
		sb_addf(&human, " %s", dns_type_name(l->qtype, tb, sizeof(tb)));
		summary_dns(&c->sum, frag.buf, human.buf, answers, l->n);
	}
	note_violation(c, &h, "dns", verdict_name(l->verdict), frag.buf, human.buf);
	sb_release(&frag);
	sb_release(&human);
	sb_release(&rq);
}

/* ---- questions the gate saw ---- */

static bool is_gate_addr(int family, const uint8_t *a)
{
	return family == AF_INET && a[0] == 127 && a[1] == 0 && a[2] == 0 && a[3] == 1;
}

static void gate_client_key(char *buf, size_t len, bool tcp, const char *addr, unsigned port)
{
	snprintf(buf, len, "%c %s %u", tcp ? 't' : 'u', addr, port);
}

/* A job packet to the gate names the process behind its source address and port. The newest
 * packet wins: a port a later socket reuses is attributed to the later socket. */
static void note_gate_client(struct collector *c, const struct ev_dns_pkt *e, const char *server)
{
	char addr[INET6_ADDRSTRLEN], key[80];
	struct strmap_entry *ent;
	struct dns_who *w;

	inet_ntop(AF_INET, e->saddr, addr, sizeof(addr));
	gate_client_key(key, sizeof(key), e->proto == PROTO_TCP, addr, e->sport);
	if (!strmap_get(&c->gate_clients, key) && c->gate_clients.count >= GATE_CLIENTS_MAX) {
		free(strmap_del(&c->gate_clients, c->gate_clients.first->key));
		c->dns_drops.clients_evicted++;
	}
	ent = strmap_put(&c->gate_clients, key, NULL);
	if (!ent->val) {
		ent->val = xcalloc(1, sizeof(struct dns_who));
	}
	w = ent->val;
	w->ts = (int64_t)e->h.ts;
	w->pid = e->h.pid;
	w->tid = e->h.tid;
	w->uid = e->h.uid;
	memcpy(w->comm, e->h.comm, COMM_LEN);
	snprintf(w->proto, sizeof(w->proto), "%s", e->proto == PROTO_TCP ? "tcp" : "udp");
	snprintf(w->server, sizeof(w->server), "%s", server);
}

static struct dns_who *gate_client(const struct collector *c, const struct dnsgate_client *cl)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&cl->addr;
	char addr[INET6_ADDRSTRLEN], key[80];
	struct strmap_entry *ent;

	if (cl->addr.ss_family != AF_INET)
		return NULL; /* the gate listens on 127.0.0.1 */
	inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
	gate_client_key(key, sizeof(key), cl->proto == IPPROTO_TCP, addr, ntohs(sin->sin_port));
	ent = strmap_get(&c->gate_clients, key);
	return ent ? ent->val : NULL;
}

const char *collector_gate_server(const struct collector *c, const struct dnsgate_client *cl)
{
	const struct dns_who *w = gate_client(c, cl);

	return w && w->server[0] ? w->server : NULL;
}

void collector_gate_question(struct collector *c, const struct dnsgate_event *ev, int verdict)
{
	struct strbuf ajson[DNSGATE_EVENT_RRS];
	const struct dns_who *known = gate_client(c, ev->who);
	struct dns_who who = {0};
	struct dns_line l = {
	    .who = &who,
	    .qname = ev->qname[0] ? ev->qname : NULL,
	    .qtype = ev->qtype,
	    .rcode = ev->rcode,
	    .verdict = verdict,
	    .reason = ev->reason,
	    .answers_truncated = ev->answers_truncated,
	    .answers = ajson,
	};

	if (known) {
		who = *known;
	} else {
		/* Not a job socket's packet (another process on this host can reach the gate),
		 * or its record was lost: still logged, without a process. */
		c->dns_drops.unattributed++;
		snprintf(who.proto, sizeof(who.proto), "%s",
			 ev->who->proto == IPPROTO_TCP ? "tcp" : "udp");
	}
	if (!known)
		who.ts = (int64_t)now_mono_ns();
	if (!l.qname)
		l.malformed = ev->reason;
	for (size_t i = 0; i < ev->n_answers; i++) {
		const struct dnsgate_rr *rr = &ev->answers[i];

		ajson[l.n] = (struct strbuf)STRBUF_INIT;
		answer_json(&ajson[l.n++], rr->type == ns_t_cname, rr->data);
		if (rr->type != ns_t_cname &&
		    !secrets_find(&c->secrets, ev->qname, strlen(ev->qname), NULL, NULL))
			remember_host(c, rr->data, ev->qname);
	}
	write_dns(c, &l);
	for (int i = 0; i < l.n; i++)
		sb_release(&ajson[i]);
}

void collector_dns_drops_json(const struct collector *c, struct strbuf *sb)
{
	sb_addf(sb, ",\"pending_overflow\":%llu,\"clients_evicted\":%llu,\"unattributed\":%llu",
		(unsigned long long)c->dns_drops.pending_overflow,
		(unsigned long long)c->dns_drops.clients_evicted,
		(unsigned long long)c->dns_drops.unattributed);
}

/* ---- questions off the gate (other network namespaces, the runner, no gate) ---- */

static int judge_offpath(struct collector *c, const char *qname, int qtype)
{
	return c->judge_question ? c->judge_question(c->judge_ctx, qname, qtype) : VERDICT_ALLOW;
}

/* An answer seen on the wire: its question's line, and for a blocked name the kernel block of
 * every address it gave (the gate never releases those; another resolver did). */
static void log_answered(struct collector *c, const struct dns_who *who, const char *qname,
			 int qtype, const struct dns_msg *ans)
{
	struct strbuf ajson[DNS_MAX_ANSWERS];
	struct dns_line l = {
	    .who = who,
	    .qname = qname,
	    .qtype = qtype,
	    .rcode = ans ? ans->rcode : -1,
	    .answers = ajson,
	    .answers_truncated = ans && ans->answers_truncated,
	};

	l.verdict = judge_offpath(c, qname, qtype);
	for (int i = 0; ans && i < ans->n_answers; i++) {
		const struct dns_answer *a = &ans->answers[i];
		uint8_t bin[16];
		int fam = a->type == ns_t_aaaa ? AF_INET6 : AF_INET;

		ajson[l.n] = (struct strbuf)STRBUF_INIT;
		answer_json(&ajson[l.n++], a->type == ns_t_cname, a->data);
		if (a->type == ns_t_cname)
			continue;
		remember_host(c, a->data, qname);
		if (l.verdict == VERDICT_BLOCK && c->block_address &&
		    inet_pton(fam, a->data, bin) == 1)
			c->block_address(c->judge_ctx, fam, bin);
	}
	write_dns(c, &l);
	for (int i = 0; i < l.n; i++)
		sb_release(&ajson[i]);
}

static void log_dns_malformed(struct collector *c, const struct ev_dns_pkt *e, const char *why)
{
	struct dns_who who = {
	    .ts = (int64_t)e->h.ts, .pid = e->h.pid, .tid = e->h.tid, .uid = e->h.uid};
	struct dns_line l = {.who = &who, .rcode = -1, .verdict = VERDICT_ALLOW, .malformed = why};

	memcpy(who.comm, e->h.comm, COMM_LEN);
	snprintf(who.proto, sizeof(who.proto), "%s", e->proto == PROTO_TCP ? "tcp" : "udp");
	write_dns(c, &l);
}

static void who_from_pkt(struct collector *c, const struct ev_dns_pkt *e, const uint8_t *server,
			 struct dns_who *w)
{
	char ck[24];
	struct strmap_entry *r;

	memset(w, 0, sizeof(*w));
	w->ts = (int64_t)e->h.ts;
	w->pid = e->h.pid;
	w->tid = e->h.tid;
	w->uid = e->h.uid;
	memcpy(w->comm, e->h.comm, COMM_LEN);
	snprintf(w->proto, sizeof(w->proto), "%s", e->proto == PROTO_TCP ? "tcp" : "udp");
	inet_ntop(e->family == 10 ? AF_INET6 : AF_INET, server, w->server, sizeof(w->server));
	/* The wire shows the gate's address; the log names the resolver the job chose. */
	snprintf(ck, sizeof(ck), "%llx", (unsigned long long)e->cookie);
	r = strmap_get(&c->redirected, ck);
	if (r) {
		strmap_touch(&c->redirected, r);
		snprintf(w->server, sizeof(w->server), "%s", (char *)r->val);
	}
}

static void pending_add(struct collector *c, const char *key, const struct dns_who *who,
			const struct dns_msg *m)
{
	size_t n = strlen(m->qname) + 1, size = sizeof(struct dns_pending) + n;
	struct dns_pending *q;
	struct strmap_entry *ent;

	if (strmap_get(&c->dns_pending, key))
		return; /* a retransmission of a question already pending */
	if (c->dns_pending.count >= DNS_PENDING_MAX ||
	    c->dns_pending_bytes + size > DNS_PENDING_BYTES) {
		/* Flood of unanswered questions: logged now, without answers, and counted. */
		c->dns_drops.pending_overflow++;
		log_answered(c, who, m->qname, m->qtype, NULL);
		return;
	}
	q = xmalloc(size);
	q->who = *who;
	q->qtype = m->qtype;
	memcpy(q->qname, m->qname, n);
	ent = strmap_put(&c->dns_pending, key, NULL);
	ent->val = q;
	c->dns_pending_bytes += size;
}

static struct dns_pending *pending_take(struct collector *c, const char *key)
{
	struct dns_pending *q = strmap_del(&c->dns_pending, key);

	if (q)
		c->dns_pending_bytes -= sizeof(*q) + strlen(q->qname) + 1;
	return q;
}

static void on_dns(struct collector *c, const struct ev_dns_pkt *e, size_t len)
{
	struct dns_msg *m;
	struct dns_who who;
	char key[48], err[128];
	bool tcp = e->proto == PROTO_TCP, cut = false;
	int family = e->family == 10 ? AF_INET6 : AF_INET;

	if (len < sizeof(*e) + e->len) {
		c->sum.lost_user[EV_DNS_PKT]++;
		return;
	}
	if (c->gate_port && e->dir == DNS_OUT && e->dport == c->gate_port &&
	    is_gate_addr(family, e->daddr)) {
		who_from_pkt(c, e, e->daddr, &who);
		note_gate_client(c, e, who.server);
		return; /* the gate logs the question itself, by name, with its verdict */
	}
	if (c->gate_port && e->dir == DNS_IN && e->sport == c->gate_port &&
	    is_gate_addr(family, e->saddr))
		return; /* the gate's answer: logged with its question */
	/* One parse buffer for the run (it is large: up to 32 answers of 2 names each). */
	if (!c->dns_scratch) {
		c->dns_scratch = xmalloc(sizeof(*c->dns_scratch));
	}
	m = c->dns_scratch;
	if (dns_parse(e->data, e->len, tcp, m, err, sizeof(err))) {
		/* A padded question longer than the capture is still named. */
		cut =
		    e->truncated && !dns_parse_question(e->data, e->len, tcp, m, err, sizeof(err));
		/* TCP continuation segments carry no header: not an event. */
		if (!cut && !(tcp && e->dir == DNS_OUT && e->len < 12))
			log_dns_malformed(c, e, err);
		if (!cut)
			return;
	}
	pending_key(key, sizeof(key), e->cookie, m->id);
	if (e->dir == DNS_OUT && !m->response) {
		who_from_pkt(c, e, e->daddr, &who);
		pending_add(c, key, &who, m);
	} else if (e->dir == DNS_IN && m->response) {
		struct dns_pending *q = pending_take(c, key);

		if (!q) {
			/* The question was not seen (it began before the job,
			 * or its segment was cut): log the answer alone. */
			who_from_pkt(c, e, e->saddr, &who);
			log_answered(c, &who, m->qname, m->qtype, m);
		} else {
			log_answered(c, &q->who, q->qname, q->qtype, m);
			free(q);
		}
	}
}

static void file_key_str(char *buf, size_t len, uint32_t kdev, uint64_t ino)
{
	snprintf(buf, len, "%u:%llu", kdev, (unsigned long long)ino);
}

void collector_watch(struct collector *c, const char *path, uint32_t kdev, uint64_t ino)
{
	char k[48];
	struct strmap_entry *e;

	file_key_str(k, sizeof(k), kdev, ino);
	if (strmap_get(&c->watched, k))
		return;
	if (c->watched.count >= WATCHED_MAX ||
	    (c->watch_file && c->watch_file(c->watch_ctx, kdev, ino))) {
		if (!c->watched_full)
			rw_err("more than %d watched files: %s and later ones are matched by "
			       "name only",
			       WATCHED_MAX, path);
		c->watched_full = true;
		return;
	}
	e = strmap_put(&c->watched, k, NULL);
	e->val = xstrdup(path);
}

/* The kernel sent the open because of the file's name or its identity; the
 * full path or the identity decides. */
static const char *file_watched_as(struct collector *c, const struct ev_file *e,
				   const struct strbuf *path, bool *by_name)
{
	char k[48];
	struct strmap_entry *w = NULL;

	*by_name = sensitive_match(c->sens, path->buf, e->h.pid);
	if (!*by_name && e->flags & EVF_PATH_RAW && path->buf[0] != '/') {
		/* Paths given raw (failed opens) may be relative: match as given. */
		struct strbuf alt = STRBUF_INIT;

		sb_addstr(&alt, "*/");
		sb_add(&alt, path->buf, path->len);
		*by_name = sensitive_match(c->sens, alt.buf + 1, e->h.pid);
		sb_release(&alt);
	}
	if (e->ino) {
		file_key_str(k, sizeof(k), e->dev, e->ino);
		w = strmap_get(&c->watched, k);
	}
	if (w)
		return w->val;
	if (*by_name && e->result >= 0 && e->ino) {
		/* Seen under a watched name (maybe created just now): from here on
		 * the kernel knows it by identity too. */
		collector_watch(c, path->buf, e->dev, e->ino);
		return path->buf;
	}
	return *by_name ? path->buf : NULL;
}

/* An open for writing of a tracked file of the checkout that is not a sensitive file: a `file`
 * line of its own (the writer source_modified names), not a sensitive-file row of the summary. */
static void on_tracked_write(struct collector *c, const struct ev_file *e,
			     const struct strbuf *path)
{
	struct strbuf *sb = &c->body;
	struct finding_proc fp;
	struct proc *p;

	sb_reset(sb);
	p = render_head(c, &e->h, "file", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	sb_addstr(sb, ",\"path\":");
	json_str(sb, path->buf, path->len);
	sb_addstr(sb, ",\"dev\":\"");
	fileid_dev_str(sb, e->dev);
	sb_addf(sb,
		"\",\"ino\":%llu,\"tracked_write\":true,\"flags\":", (unsigned long long)e->ino);
	render_open_flags(sb, e->open_flags);
	sb_addstr(sb, ",\"result\":");
	render_result(sb, e->result);
	if (e->flags & EVF_URING)
		sb_addstr(sb, ",\"via\":\"io_uring\"");
	if (e->flags & EVF_PATH_TRUNC)
		sb_addstr(sb, ",\"path_truncated\":true");
	write_line(c, EV_FILE);
	if (fproc(c, &e->h, p, &fp))
		findings_on_tracked_write(&c->findings, &fp, e->dev, e->ino, c->last_seq);
}

static const char *path_op_name(unsigned op)
{
	switch (op) {
	case PATHOP_UNLINK:
		return "unlink";
	case PATHOP_RENAME_FROM:
		return "rename_from";
	case PATHOP_RENAME_TO:
		return "rename_to";
	case PATHOP_TRUNCATE:
		return "truncate";
	default:
		return NULL;
	}
}

/* An unlink, rename or truncate by a name whose last component is a tracked file's: logged
 * only when the whole name is a tracked file of the checkout, whose writer the process then
 * is (source_modified). Others (a build's own Makefile copies) are no evidence of anything. */
static void on_path_op(struct collector *c, const struct ev_path_op *e, size_t len)
{
	struct strbuf *sb = &c->body;
	struct strbuf full = STRBUF_INIT;
	const char *op = path_op_name(e->op);
	struct srcmod_file *f;
	struct finding_proc fp;
	struct proc *p;
	size_t nlen;

	if (!op || !e->name_len || len < sizeof(*e) + (size_t)e->name_len + e->base_len) {
		c->sum.lost_user[EV_PATH_OP]++;
		return;
	}
	nlen = strnlen(e->data, e->name_len);
	if (e->data[0] != '/') {
		join_components(&full, e->data + e->name_len, e->base_len);
		if (!full.len || full.buf[full.len - 1] != '/')
			sb_addch(&full, '/');
	}
	sb_add(&full, e->data, nlen);
	f = srcmod_file_at(&c->findings.srcmod, full.buf);
	if (!f) {
		sb_release(&full);
		return;
	}
	sb_reset(sb);
	p = render_head(c, &e->h, "path_op", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	sb_addf(sb, ",\"op\":\"%s\",\"path\":", op);
	json_str(sb, full.buf, full.len);
	sb_addstr(sb, ",\"tracked\":");
	json_cstr(sb, f->path);
	if (e->flags & EVF_PATH_TRUNC)
		sb_addstr(sb, ",\"path_truncated\":true");
	write_line(c, EV_PATH_OP);
	if (fproc(c, &e->h, p, &fp))
		srcmod_on_path_op(&c->findings.srcmod, f, fp.pid, fp.exe, c->last_seq);
	sb_release(&full);
}

static void on_file(struct collector *c, const struct ev_file *e, size_t len)
{
	struct strbuf *sb = &c->body;
	struct strbuf path = STRBUF_INIT, frag = STRBUF_INIT, human = STRBUF_INIT, pj = STRBUF_INIT;
	struct proc *p;
	const char *as;
	char *watched = NULL;
	bool by_name, tracked;

	if (len < sizeof(*e) + e->path_len) {
		c->sum.lost_user[EV_FILE]++;
		return;
	}
	if (e->flags & EVF_PATH_RAW)
		sb_add(&path, e->data, strnlen(e->data, e->path_len));
	else
		join_components(&path, e->data, e->path_len);
	/* The kernel knows tracked files by (device, inode): one freed by an unlink and reused at
	 * once for a new file elsewhere is not the checkout's any more. */
	tracked = (e->flags & EVF_TRACKED_WRITE) &&
		  srcmod_is_tracked_write(&c->findings.srcmod, e->dev, e->ino, path.buf);
	as = file_watched_as(c, e, &path, &by_name);
	if (!as) {
		if (tracked)
			on_tracked_write(c, e, &path);
		sb_release(&path);
		return;
	}
	if (strcmp(as, path.buf))
		watched = xstrdup(as); /* reached under another name */
	sb_reset(sb);
	p = render_head(c, &e->h, "file", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	/* The summary lists the file by the name it is watched as, and the
	 * other name it was reached by. */
	sb_addstr(&frag, "\"path\":");
	json_cstr(&frag, watched ? watched : path.buf);
	if (watched) {
		sb_addstr(&frag, ",\"opened_as\":");
		json_str(&frag, path.buf, path.len);
	}
	sb_addstr(sb, ",\"path\":");
	json_str(sb, path.buf, path.len);
	if (watched) {
		sb_addstr(sb, ",\"watched_as\":");
		json_cstr(sb, watched);
	}
	if (e->ino) {
		sb_addstr(sb, ",\"dev\":\"");
		fileid_dev_str(sb, e->dev);
		sb_addf(sb, "\",\"ino\":%llu", (unsigned long long)e->ino);
	}
	sb_addf(sb, ",\"matched_by\":\"%s\"", by_name ? "name" : "inode");
	sb_addstr(sb, ",\"flags\":");
	render_open_flags(sb, e->open_flags);
	sb_addstr(sb, ",\"result\":");
	render_result(sb, e->result);
	if (e->flags & EVF_PATH_RAW)
		sb_addstr(sb, ",\"path_as_given\":true");
	if (e->flags & EVF_URING)
		sb_addstr(sb, ",\"via\":\"io_uring\"");
	if (e->flags & EVF_PATH_TRUNC)
		sb_addstr(sb, ",\"path_truncated\":true");
	if (tracked)
		sb_addstr(sb, ",\"tracked_write\":true");
	write_line(c, EV_FILE);
	{
		struct finding_proc fp;

		if (tracked && fproc(c, &e->h, p, &fp))
			findings_on_tracked_write(&c->findings, &fp, e->dev, e->ino, c->last_seq);

		if (fproc(c, &e->h, p, &fp))
			findings_on_file(&c->findings, &fp, path.buf, watched, e->result >= 0,
					 (int64_t)e->h.ts, c->last_seq);
		if (fproc(c, &e->h, p, &fp) && e->result >= 0 &&
		    ((e->open_flags & O_ACCMODE) != O_RDONLY || (e->open_flags & O_TRUNC)))
			findings_on_file_write(&c->findings, &fp, path.buf, c->last_seq);
		/* a credential file read: its tokens are the job's secrets from now on (the very
		 * file it opened, by device and inode, if its user owns it) */
		if (fproc(c, &e->h, p, &fp) && e->result >= 0 && e->ino &&
		    (e->open_flags & O_ACCMODE) != O_WRONLY)
			collector_secret_file(c, path.buf, e->dev, e->ino, e->h.uid);
	}

	json_cstr(&human, watched ? watched : path.buf);
	if (watched) {
		sb_addstr(&human, " as ");
		json_str(&human, path.buf, path.len);
	}
	/* A failed open (ENOENT, EACCES) is an attempt, not a read: its own row. */
	sb_addstr(&frag, ",\"result\":");
	render_result(&frag, e->result);
	if (e->result < 0) {
		struct strbuf res = STRBUF_INIT;

		render_result(&res, e->result); /* "ENOENT", quoted */
		sb_addf(&human, " (attempt, %.*s)", (int)res.len - 2, res.buf + 1);
		sb_release(&res);
	}
	sb_addf(&pj, "{\"pid\":%u,\"exe\":", e->h.pid);
	json_cstr(&pj, p ? p->exe : NULL);
	sb_addch(&pj, '}');
	summary_file(&c->sum, frag.buf, human.buf, pj.buf, e->h.pid);
	free(watched);
	sb_release(&path);
	sb_release(&frag);
	sb_release(&human);
	sb_release(&pj);
}

/* The socket's identity members are those rendered before its verdict. */
static void socket_violation(struct collector *c, const struct ev_socket *e, const char *members)
{
	const char *end = strstr(members, ",\"verdict\":");
	struct strbuf ident = STRBUF_INIT, human = STRBUF_INIT;

	if (!end || e->verdict == VERDICT_ALLOW)
		return;
	sb_add(&ident, members + 1, end - members - 1);
	for (const char *q = ident.buf; *q; q++)
		if (*q != '"')
			sb_addch(&human, *q == ',' ? ' ' : *q == ':' ? '=' : *q);
	note_violation(c, &e->h, "socket", verdict_name(e->verdict), ident.buf, human.buf);
	sb_release(&ident);
	sb_release(&human);
}

static const char *memread_op_name(uint32_t op)
{
	static const char *const names[] = {
	    [MR_VM_READV] = "process_vm_readv",	  [MR_VM_WRITEV] = "process_vm_writev",
	    [MR_PTRACE_ATTACH] = "ptrace_attach", [MR_PTRACE_SEIZE] = "ptrace_seize",
	    [MR_PTRACE_PEEK] = "ptrace_peek",	  [MR_PTRACE_POKE] = "ptrace_poke",
	    [MR_PTRACE_REGS] = "ptrace_getregs",  [MR_PROC_MEM] = "proc_mem",
	    [MR_PROC_ENVIRON] = "proc_environ"};

	return op < sizeof(names) / sizeof(names[0]) && names[op] ? names[op] : "unknown";
}

static const char *ptrace_request_name(uint32_t r)
{
	switch (r) {
	case 1:
		return "PTRACE_PEEKTEXT";
	case 2:
		return "PTRACE_PEEKDATA";
	case 3:
		return "PTRACE_PEEKUSER";
	case 4:
		return "PTRACE_POKETEXT";
	case 5:
		return "PTRACE_POKEDATA";
	case 6:
		return "PTRACE_POKEUSER";
	case 12:
		return "PTRACE_GETREGS";
	case 14:
		return "PTRACE_GETFPREGS";
	case 16:
		return "PTRACE_ATTACH";
	case 0x4204:
		return "PTRACE_GETREGSET";
	case 0x4206:
		return "PTRACE_SEIZE";
	}
	return "unknown";
}

/* A small /proc/PID file, first line, without its newline; false if gone. */
static bool proc_line(pid_t pid, const char *name, char *buf, size_t cap)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	n = read_text_bounded(path, buf, cap);
	if (n <= 0)
		return false;
	buf[strcspn(buf, "\n")] = 0;
	return true;
}

/* The thread-group leader of a (global) thread id, or tid itself. */
static pid_t tgid_of(pid_t tid)
{
	char path[64], buf[2048], *t;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)tid);
	n = read_text_bounded(path, buf, sizeof(buf));
	if (n <= 0)
		return tid;
	t = strstr(buf, "\nTgid:");
	return t ? (pid_t)strtol(t + 6, NULL, 10) : tid;
}

/* Is pid's own pid namespace the one with inode inum? */
static bool in_pidns(const char *pid, uint32_t inum)
{
	char path[300], link[64], want[32];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%s/ns/pid", pid);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return false;
	snprintf(want, sizeof(want), "pid:[%u]", inum);
	return !strcmp(link, want);
}

/* A pid as named inside a pid namespace `level` deep (inode inum): the
 * process whose NSpid has it at that depth, in that namespace; failing that,
 * the only process with it at that depth (a target in a namespace below the
 * caller's). 0 when none or several. Reads every /proc/PID/status, so only
 * for accesses that succeeded (a job cannot make many of those cheaply). */
static pid_t global_pid_of(pid_t nspid, uint32_t level, uint32_t inum)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0, same_ns = 0;
	int n = 0;

	while (d && (de = readdir(d)) && !same_ns) {
		char path[300], buf[2048], *l;
		ssize_t len;
		uint32_t i = 0;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/status", de->d_name);
		len = read_text_bounded(path, buf, sizeof(buf));
		if (len <= 0)
			continue;
		l = strstr(buf, "\nNSpid:");
		if (!l)
			continue;
		l += 7;
		for (char *end; i <= level; i++, l = end) {
			long v = strtol(l, &end, 10);

			if (end == l)
				break;
			if (i < level || v != nspid)
				continue;
			found = (pid_t)atoi(de->d_name);
			n++;
			if (in_pidns(de->d_name, inum))
				same_ns = found;
		}
	}
	if (d)
		closedir(d);
	return same_ns ? same_ns : n == 1 ? found : 0;
}

/* The process whose memory was reached, named as fully as can be: from the
 * job's process table when it is one of the job's, else from /proc now (the
 * usual target, the runner or another long-lived process, is still there). */
static bool render_memread_target(struct collector *c, const struct ev_memread *e,
				  struct strbuf *sb, struct strbuf *human,
				  struct finding_memread *fm)
{
	pid_t tgid = 0;
	struct proc *t = NULL;
	char comm[COMM_LEN + 1] = "", exe[4096] = "";
	const char *scope = "unknown";

	if (e->flags & MRF_TARGET_GLOBAL) {
		tgid = (e->flags & MRF_TARGET_COMM) ? (pid_t)e->target_tgid
						    : tgid_of((pid_t)e->target_tgid);
	} else if (e->result >= 0) {
		tgid = global_pid_of(e->target_pid, e->pidns_level, e->pidns_inum);
		if (tgid > 0)
			tgid = tgid_of(tgid);
	}
	if (tgid > 0) {
		t = proctab_get(&c->procs, tgid);
		if (tgid == (pid_t)e->h.pid)
			return false; /* its own memory, through one of its threads */
		if (t && t->exited)
			t = NULL;
		if (c->runner_pid && tgid == c->runner_pid)
			scope = "runner";
		else
			scope = t ? "job" : "outside";
	}
	if (e->flags & MRF_TARGET_COMM)
		memcpy(comm, e->target_comm, COMM_LEN);
	else if (t)
		memcpy(comm, t->comm, COMM_LEN);
	else if (tgid > 0 && !proc_line(tgid, "comm", comm, sizeof(comm)))
		comm[0] = 0;
	if (t && t->exe) {
		snprintf(exe, sizeof(exe), "%s", t->exe);
	} else if (tgid > 0) {
		char link[64];
		ssize_t n;

		snprintf(link, sizeof(link), "/proc/%d/exe", (int)tgid);
		n = readlink(link, exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = 0;
	}
	sb_addstr(sb, ",\"target\":{\"pid\":");
	if (tgid > 0)
		sb_addf(sb, "%d", (int)tgid);
	else
		sb_addstr(sb, "null");
	sb_addf(sb, ",\"pid_as_given\":%d,\"comm\":", e->target_pid);
	json_cstr(sb, comm[0] ? comm : NULL);
	sb_addstr(sb, ",\"exe\":");
	json_cstr(sb, exe[0] ? exe : NULL);
	if (t && t->exe_sha256[0])
		sb_addf(sb, ",\"exe_sha256\":\"%s\"", t->exe_sha256);
	sb_addf(sb, ",\"scope\":\"%s\"", scope);
	if (e->pidns_level)
		sb_addf(sb, ",\"pid_namespace_level\":%u", e->pidns_level);
	sb_addch(sb, '}');
	if (tgid > 0)
		sb_addf(human, " of pid %d ", (int)tgid);
	else
		sb_addf(human, " of pid %d (as named in its pid namespace) ", e->target_pid);
	json_cstr(human, exe[0] ? exe : comm[0] ? comm : NULL);
	sb_addf(human, " (%s)", scope);
	fm->target = tgid > 0 ? tgid : 0;
	fm->target_as_given = e->target_pid;
	fm->target_exe = exe[0] ? xstrdup(exe) : NULL;
	fm->target_comm = comm[0] ? xstrdup(comm) : NULL;
	fm->scope = scope;
	return true;
}

static void on_memread(struct collector *c, const struct ev_memread *e)
{
	struct strbuf *sb = &c->body;
	struct strbuf frag = STRBUF_INIT, human = STRBUF_INIT, pj = STRBUF_INIT;
	struct finding_memread fm = {.op = memread_op_name(e->op), .ok = e->result >= 0};
	struct finding_proc fp;
	struct proc *p;

	sb_reset(sb);
	p = render_head(c, &e->h, "memread", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	sb_addf(&frag, "\"op\":\"%s\"", memread_op_name(e->op));
	sb_addstr(&human, memread_op_name(e->op));
	if (!render_memread_target(c, e, &frag, &human, &fm))
		goto out;
	sb_addch(sb, ',');
	sb_add(sb, frag.buf, frag.len);
	if (e->op >= MR_PTRACE_ATTACH && e->op <= MR_PTRACE_REGS)
		sb_addf(sb, ",\"request\":\"%s\"", ptrace_request_name(e->request));
	if (e->op == MR_PROC_MEM || e->op == MR_PROC_ENVIRON) {
		sb_addstr(sb, ",\"flags\":");
		render_open_flags(sb, e->request);
	}
	sb_addstr(sb, ",\"result\":");
	render_result(sb, e->result < 0 && e->result >= -4095 ? (int)e->result : 0);
	sb_addf(sb, ",\"calls\":%llu,\"bytes\":%llu", (unsigned long long)e->calls,
		(unsigned long long)e->bytes);
	if (e->flags & MRF_KILLED)
		sb_addstr(sb, ",\"killed\":true");
	write_line(c, EV_MEMREAD);
	fm.write = e->op == MR_VM_WRITEV || e->op == MR_PTRACE_POKE ||
		   (e->op == MR_PROC_MEM && (e->request & O_ACCMODE) != O_RDONLY);
	if (fproc(c, &e->h, p, &fp))
		findings_on_memread(&c->findings, &fp, &fm, c->last_seq);

	sb_addf(&pj, "{\"pid\":%u,\"exe\":", e->h.pid);
	json_cstr(&pj, p ? p->exe : NULL);
	sb_addch(&pj, '}');
	if (p && p->exe) {
		sb_addstr(&human, " by ");
		json_cstr(&human, p->exe);
	}
	/* Attempts that failed are listed too, apart from those that worked. */
	sb_addf(&frag, ",\"succeeded\":%s", e->result < 0 ? "false" : "true");
	if (e->result < 0)
		sb_addstr(&human, " (failed)");
	if (e->flags & MRF_KILLED)
		sb_addstr(&human, " (killed: write access outside the job)");
	summary_memread(&c->sum, frag.buf, human.buf, pj.buf);
out:
	free((char *)fm.target_exe);
	free((char *)fm.target_comm);
	sb_release(&frag);
	sb_release(&human);
	sb_release(&pj);
}

static void on_socket(struct collector *c, const struct ev_socket *e)
{
	struct strbuf *sb = &c->body;
	char fbuf[NET_NAME_MAX], tbuf[NET_NAME_MAX];
	struct proc *p;
	size_t id0;

	sb_reset(sb);
	p = render_head(c, &e->h, "socket", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	id0 = sb->len;
	sb_addf(sb, ",\"family\":\"%s\",\"type\":\"%s\",\"protocol\":%u,\"verdict\":\"%s\"",
		net_family_name(e->family, fbuf), net_socktype_name(e->type, tbuf), e->protocol,
		verdict_name(e->verdict));
	sb_addstr(sb, ",\"result\":");
	render_result(sb, e->result);
	write_line(c, EV_SOCKET);
	note_activity(c, &e->h, p, "made an egress socket");
	count_verdict(c, e->verdict);
	socket_violation(c, e, sb->buf + id0);
}

/* A CI step's first process (whole-job mode): its step variable labels it
 * and, through fork inheritance, everything it starts. A label only. */
static void on_env(struct collector *c, const struct ev_env *e, size_t len)
{
	struct proc *p = proctab_get(&c->procs, e->h.pid);
	char *step;

	if (len < sizeof(*e) + e->len) {
		c->sum.lost_user[EV_ENV]++;
		return;
	}
	c->sum.logged[EV_ENV]++;
	/* a CI step's environment: its secret values join the job's */
	secrets_from_env_block(&c->secrets, e->data, e->len);
	if (c->secrets.kernel)
		secrets_kernel_sync(&c->secrets, &c->secrets.k);
	if (!p)
		return;
	step = ci_step_from_environ(e->data, e->len);
	if (step) {
		proctab_set_step(p, step);
		free(step);
	}
}

/* ------------------------------------------------------------ fence integrity */

static void add_proc_ref(struct collector *c, struct strbuf *sb, const char *key, pid_t pid)
{
	struct proc *p = pid ? proctab_get(&c->procs, pid) : NULL;

	sb_addf(sb, ",\"%s\":", key);
	if (!pid) {
		sb_addstr(sb, "null");
		return;
	}
	sb_addf(sb, "{\"pid\":%d,\"in_job\":%s,\"exe\":", (int)pid, p ? "true" : "false");
	json_cstr(sb, p ? p->exe : NULL);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	sb_addch(sb, '}');
}

/* A job process left the scope: from then on it is neither fenced nor
 * recorded, so the record says it is incomplete whatever the mode. In enforce
 * mode the kernel killed the writer; the moved process is killed here and the
 * job ended by job.c (collector->sum.fence_breaches). */
static void on_cgroup_move(struct collector *c, const struct ev_cgroup_move *e)
{
	struct strbuf *sb = &c->body;
	struct strbuf why = STRBUF_INIT;
	size_t plen = strnlen(e->dst_path, sizeof(e->dst_path));

	sb_reset(sb);
	render_head(c, &e->h, "cgroup_move", sb);
	add_proc_ref(c, sb, "moved", e->target_pid);
	sb_addstr(sb, ",\"cgroup\":");
	json_str(sb, e->dst_path, plen);
	sb_addf(sb, ",\"cgroup_id\":%llu,\"verdict\":\"%s\",\"killed\":%s",
		(unsigned long long)e->dst_cgid, verdict_name(e->verdict),
		e->killed ? "true" : "false");
	write_line(c, EV_CGROUP_MOVE);
	if (e->verdict == VERDICT_DENY && e->target_pid > 1)
		kill(e->target_pid, SIGKILL);
	sb_addf(&why, "pid %u was moved out of the job's cgroup to %.*s by pid %u%s", e->target_pid,
		(int)plen, e->dst_path, e->h.pid,
		e->verdict == VERDICT_DENY ? "; the job was ended" : "; not recorded from then on");
	summary_incomplete(&c->sum, why.buf);
	c->sum.fence_breaches++;
	count_verdict(c, e->verdict);
	sb_release(&why);
}

static void on_getfd(struct collector *c, const struct ev_getfd *e)
{
	struct strbuf *sb = &c->body;
	struct proc *p;

	sb_reset(sb);
	p = render_head(c, &e->h, "pidfd_getfd", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	add_proc_ref(c, sb, "target", e->target_pid);
	sb_addf(sb, ",\"target_fd\":%d,\"verdict\":\"%s\",\"killed\":%s,\"result\":", e->target_fd,
		verdict_name(e->verdict), e->killed ? "true" : "false");
	render_result(sb, e->result);
	write_line(c, EV_GETFD);
	note_activity(c, &e->h, p, "took a descriptor with pidfd_getfd");
	count_verdict(c, e->verdict);
}

static void on_accept(struct collector *c, const struct ev_accept *e)
{
	struct strbuf *sb = &c->body;
	struct strbuf addr = STRBUF_INIT;
	int family = e->family == 10 ? AF_INET6 : AF_INET;
	struct proc *p;

	fmt_addr(&addr, family, e->peer);
	sb_reset(sb);
	p = render_head(c, &e->h, "accept", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	sb_addf(sb,
		",\"proto\":\"tcp\",\"family\":\"%s\",\"peer\":\"%s\",\"peer_port\":%u,"
		"\"local_port\":%u,\"verdict\":\"%s\",\"via\":\"%s\",\"result\":",
		family == AF_INET ? "ipv4" : "ipv6", addr.buf, e->peer_port, e->local_port,
		verdict_name(e->verdict), e->via == VIA_PACKET ? "packet" : "accept");
	render_result(sb, e->result);
	write_line(c, EV_ACCEPT);
	note_activity(c, &e->h, p, "accepted a connection");
	count_verdict(c, e->verdict);
	sb_release(&addr);
}

/* TLS connections kept to check, at the end, that their content was seen. */
#define TLS_CONNS_MAX 4096

static void note_tls_conn(struct collector *c, const struct ev_conn_name *e)
{
	struct tls_conn *t;

	if (e->app != FB_TLS || e->verdict == VERDICT_DENY || e->verdict == VERDICT_BLOCK)
		return;
	if (c->n_tls_conns >= TLS_CONNS_MAX) {
		c->tls_conns_unlisted++;
		return;
	}
	if (!c->tls_conns)
		c->tls_conns = xcalloc(TLS_CONNS_MAX, sizeof(*c->tls_conns));
	t = &c->tls_conns[c->n_tls_conns++];
	t->h = e->h;
	t->family = e->family;
	t->dport = e->dport;
	memcpy(t->daddr, e->daddr, sizeof(t->daddr));
	memset(t->name, 0, sizeof(t->name));
	if (e->flags & (FBF_NAMED | FBF_LITERAL))
		memcpy(t->name, e->name, e->name_len < FB_NAME ? e->name_len : FB_NAME - 1);
}

/* At the end: each TLS connection of a process none of whose TLS passed through the OpenSSL
 * or GnuTLS probes (another TLS library, a library linked in statically) gets an `http` line saying
 * its content was not seen. */
static void tls_unseen(struct collector *c)
{
	for (size_t i = 0; i < c->n_tls_conns; i++) {
		const struct tls_conn *t = &c->tls_conns[i];
		struct strbuf *sb = &c->body;
		char key[16];
		struct proc *p;

		snprintf(key, sizeof(key), "%u", t->h.pid);
		if (strmap_get(&c->tls_pids, key))
			continue;
		sb_reset(sb);
		p = render_head(c, &t->h, "http", sb);
		sb_addstr(sb, ",\"argv\":");
		sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
		sb_addstr(sb, ",\"tls\":true,\"library\":null,\"protocol\":null,\"decoded\":false,"
			      "\"content_seen\":false,\"authority\":");
		json_cstr(sb, t->name[0] ? t->name : NULL);
		sb_addstr(sb, ",\"daddr\":\"");
		fmt_addr(sb, t->family == AF_INET6 ? AF_INET6 : AF_INET, t->daddr);
		sb_addstr(sb, "\",\"dport\":");
		sb_addu(sb, t->dport);
		write_line(c, EV_TLS_DATA);
	}
}

/* A request inside TLS waiting for its response (and, above summary, its parts). */
struct tls_pending {
	struct tls_pending *next;
	struct ev_hdr h;
	struct tls_head req;
	uint64_t ssl;	/* the SSL object: names its capture state (capture.c) */
	uint32_t lib;	/* enum tls_lib */
	uint32_t wlen;	/* the length of the write it began */
	bool have_resp; /* above summary: its response head, waiting for the level's parts */
	struct tls_head resp;
	int64_t resp_ts;
};
/* The requests waiting on one connection, oldest first: HTTP/1.1 answers in order, and a client
 * may send the next requests before the first answer comes (apt pipelines them). */
struct tls_queue {
	struct tls_pending *head, *tail;
	unsigned n;
};
/* Requests waiting at once, all processes together; past it a request is logged unpaired. */
#define TLS_PENDING_MAX 4096
/* Requests waiting on one connection; past it the oldest is logged unpaired (a response head
 * the probes missed would otherwise leave its request waiting for ever). apt pipelines 10. */
#define TLS_QUEUE_MAX 32

/* The request target, secrets in it (a token in the query) replaced as in argv. */
static void render_path(struct collector *c, struct strbuf *sb, const char *path)
{
	struct strbuf j = STRBUF_INIT;

	redact_argv_json(&c->redact, path, strlen(path) + 1, &j, NULL);
	/* one argument: ["..."] */
	if (j.len >= 2 && j.buf[0] == '[' && j.buf[j.len - 1] == ']')
		sb_add(sb, j.buf + 1, j.len - 2);
	else
		sb_addstr(sb, "null");
	sb_release(&j);
}

/* The library whose probes saw a transaction, as the `http` line names it. */
static const char *tls_lib_name(uint32_t lib)
{
	static const char *const names[TLSL_MAX] = {
	    [TLSL_OPENSSL] = "openssl", [TLSL_GNUTLS] = "gnutls"};

	return lib < TLSL_MAX && names[lib] ? names[lib] : "unknown";
}

/* One `http` line (tlshttp.h): a transaction through a TLS library, HTTP/1.x or one HTTP/2
 * stream. */
static void write_http_line(struct collector *c, const struct http_line *l)
{
	struct strbuf *sb = &c->body;
	struct proc *p;

	sb_reset(sb);
	p = render_head(c, l->h, "http", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	sb_addstr(sb, ",\"tls\":true,\"library\":\"");
	sb_addstr(sb, tls_lib_name(l->lib));
	sb_addstr(sb, "\",\"protocol\":");
	sb_addstr(sb, l->h2 ? "\"h2\"" : "\"http/1.1\"");
	if (l->undecoded) {
		/* HTTP/2 whose frames could not be followed from here on: said, never guessed */
		sb_addstr(sb, ",\"decoded\":false,\"undecoded_reason\":");
		json_cstr(sb, l->undecoded);
		goto out;
	}
	sb_addstr(sb, ",\"decoded\":true,\"method\":");
	json_cstr(sb, l->method);
	sb_addstr(sb, ",\"authority\":");
	json_cstr(sb, l->authority && l->authority[0] ? l->authority : NULL);
	sb_addstr(sb, ",\"path\":");
	if (l->path)
		render_path(c, sb, l->path);
	else
		sb_addstr(sb, "null");
	if (l->path_cut)
		sb_addstr(sb, ",\"path_cut\":true");
	if (l->h2)
		sb_addf(sb, ",\"stream\":%u", l->stream);
	sb_addstr(sb, ",\"status\":");
	if (l->status)
		sb_addi(sb, l->status);
	else
		sb_addstr(sb, "null");
	sb_addstr(sb, ",\"request_body_bytes\":");
	if (l->req_bytes >= 0)
		sb_addi(sb, l->req_bytes);
	else
		sb_addstr(sb, "null");
	sb_addstr(sb, ",\"response_body_bytes\":");
	if (l->resp_bytes >= 0)
		sb_addi(sb, l->resp_bytes);
	else
		sb_addstr(sb, "null");
	sb_addstr(sb, ",\"duration_ms\":");
	if (l->duration_ns >= 0)
		sb_addf(sb, "%.3f", (double)l->duration_ns / 1e6);
	else
		sb_addstr(sb, "null");
	if (l->level) {
		sb_addstr(sb, ",\"capture\":");
		json_cstr(sb, l->level);
	}
	if (l->extra)
		sb_addstr(sb, l->extra);
out:
	write_line(c, EV_TLS_DATA);
	note_activity(c, l->h, p, "made an HTTP request inside TLS");
}

static void capture_emit(void *ctx, const struct http_line *l)
{
	write_http_line(ctx, l);
}

/* One WebSocket frame at `full` (capture.c renders its members). */
static void capture_emit_ws(void *ctx, const struct ev_hdr *h, const char *members)
{
	struct collector *c = ctx;
	struct strbuf *sb = &c->body;
	struct proc *p;

	sb_reset(sb);
	p = render_head(c, h, "websocket", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	sb_addstr(sb, members);
	write_line(c, EV_TLS_CHUNK);
}

/* One `http` line from heads: the request (NULL when its head was not seen), the response (NULL
 * when none came), the process that sent the request (else the one that read the response);
 * ssl names the transaction's capture state (capture.c), whose members it takes. */
static void write_http(struct collector *c, const struct ev_hdr *h, const struct tls_head *req,
		       const struct tls_head *resp, int64_t resp_ts, uint64_t ssl, uint32_t lib)
{
	struct strbuf extra = STRBUF_INIT;
	enum capture_level level = CAPTURE_SUMMARY;
	struct http_line l = {
	    .h = h,
	    .lib = lib,
	    .req_bytes = req && req->length >= 0 ? req->length : -1,
	    .resp_bytes = resp && resp->length >= 0 ? resp->length : -1,
	    .duration_ns = req && resp && resp_ts >= (int64_t)h->ts ? resp_ts - (int64_t)h->ts : -1,
	};

	if (req && req->h2) {
		/* HTTP/2 the decoder does not follow (capture.c): the connection is marked */
		l.h2 = true;
		l.undecoded = "HTTP/2 frames not streamed (too many connections, or h2 off)";
		write_http_line(c, &l);
		return;
	}
	if (req) {
		l.method = req->method;
		l.authority = req->authority;
		l.path = req->path;
		l.path_cut = req->path_cut;
	}
	if (resp)
		l.status = resp->status;
	if (req && resp && resp->status == 101 && req->websocket) {
		sb_addstr(&extra, ",\"websocket\":true");
		c->cap.st.ws_upgrades++;
	}
	if (req)
		level = capture_h1_render(&c->cap, h->pid, ssl, &extra);
	l.level = level > CAPTURE_SUMMARY ? capture_level_name(level) : NULL;
	l.extra = extra.buf;
	write_http_line(c, &l);
	sb_release(&extra);
}

/* The oldest request waiting on a connection, taken off its queue (the caller frees it); NULL
 * when none waits. */
static struct tls_pending *tls_pending_pop(struct collector *c, const char *key)
{
	struct strmap_entry *ent = strmap_get(&c->tls_pending, key);
	struct tls_queue *qu = ent ? ent->val : NULL;
	struct tls_pending *q;

	if (!qu || !qu->head)
		return NULL;
	q = qu->head;
	qu->head = q->next;
	qu->n--;
	c->tls_waiting--;
	if (!qu->head)
		free(strmap_del(&c->tls_pending, key));
	return q;
}

/* A write the library asked for again: OpenSSL (SSL_ERROR_WANT_WRITE/READ, as before the
 * handshake is done) and GnuTLS (GNUTLS_E_AGAIN) take the same arguments again until the
 * data is sent, and the probe sees every call. The same request as the last one waiting, at
 * the start of a write of the same length, is that. (Two identical requests pipelined in
 * separate writes look the same: the second response is then logged without its request.) */
static bool tls_write_again(const struct tls_queue *qu, const struct ev_tls_data *e,
			    const struct tls_head *req)
{
	const struct tls_pending *t = qu ? qu->tail : NULL;

	return t && qu->head && t->wlen == e->len && !strcmp(t->req.method, req->method) &&
	       !strcmp(t->req.path, req->path) && !strcmp(t->req.authority, req->authority);
}

/* Writes a request taken off its queue, with its response when one came, and frees it. */
static void tls_pending_write(struct collector *c, struct tls_pending *q)
{
	write_http(c, &q->h, &q->req, q->have_resp ? &q->resp : NULL, q->resp_ts, q->ssl, q->lib);
	free(q);
}

static void tls_pending_push(struct collector *c, const char *key, const struct ev_tls_data *e,
			     const struct tls_head *req, bool at_start)
{
	struct strmap_entry *ent = strmap_get(&c->tls_pending, key);
	struct tls_queue *qu;
	struct tls_pending *q;

	if (at_start && ent && tls_write_again(ent->val, e, req))
		return;
	/* A captured connection has one transaction's parts in flight (capture.c): a new request
	 * ends the ones before it, answered or not. */
	while (ent && capture_captures(&c->cap, e->h.pid, e->ssl) &&
	       (q = tls_pending_pop(c, key))) {
		tls_pending_write(c, q);
		ent = strmap_get(&c->tls_pending, key);
	}
	/* GnuTLS's probes send heads only: its transactions are at summary */
	capture_h1_request(&c->cap, e,
			   e->lib == TLSL_OPENSSL ? capture_level_of(&c->cap, req->authority)
						  : CAPTURE_SUMMARY,
			   req->method);
	if (c->tls_waiting >= TLS_PENDING_MAX) {
		c->tls_pending_overflow++;
		write_http(c, &e->h, req, NULL, 0, e->ssl, e->lib);
		return;
	}
	ent = strmap_put(&c->tls_pending, key, NULL);
	if (!ent->val)
		ent->val = xcalloc(1, sizeof(struct tls_queue));
	qu = ent->val;
	if (qu->n >= TLS_QUEUE_MAX) {
		tls_pending_write(c, tls_pending_pop(c, key));
		ent = strmap_put(&c->tls_pending, key, NULL);
		if (!ent->val)
			ent->val = xcalloc(1, sizeof(struct tls_queue));
		qu = ent->val;
	}
	q = xcalloc(1, sizeof(*q));
	q->h = e->h;
	q->req = *req;
	q->ssl = e->ssl;
	q->lib = e->lib;
	q->wlen = e->len;
	if (qu->head)
		qu->tail->next = q;
	else
		qu->head = q;
	qu->tail = q;
	qu->n++;
	c->tls_waiting++;
}

/* Empties the table of waiting requests without logging them. */
static void tls_pending_free(struct collector *c)
{
	strmap_for_each(ent, &c->tls_pending)
	{
		struct tls_queue *qu = ent->val;

		for (struct tls_pending *q = qu->head, *next; q; q = next) {
			next = q->next;
			free(q);
		}
	}
	strmap_clear(&c->tls_pending, free);
	c->tls_waiting = 0;
}

/* Logs every request still waiting, unpaired (the end of the run), and empties the table. */
static void tls_pending_flush(struct collector *c)
{
	strmap_for_each(ent, &c->tls_pending)
	{
		const struct tls_queue *qu = ent->val;

		for (const struct tls_pending *q = qu->head; q; q = q->next)
			write_http(c, &q->h, &q->req, q->have_resp ? &q->resp : NULL, q->resp_ts,
				   q->ssl, q->lib);
	}
	tls_pending_free(c);
}

/* The head at data[off] of one write or read, if there is one: its length, the body its
 * Content-Length declares included, so that the next head, if the same call carried it
 * (pipelined requests written at once, responses read at once), begins there; 0 when there is
 * no head at off. A head whose end or body goes past what the kernel copied ends the buffer. */
static size_t tls_head_at(const struct ev_tls_data *e, size_t off, struct tls_head *h)
{
	size_t n = e->data_len < TLS_HEAD ? e->data_len : TLS_HEAD, next;
	struct ev_tls_data part;
	const uint8_t *end;

	if (off >= n)
		return 0;
	/* the head alone: what follows it in the copy is not part of it */
	end = memmem(e->data + off, n - off, "\r\n\r\n", 4);
	part.dir = e->dir;
	part.data_len = (uint32_t)(end ? (size_t)(end + 4 - e->data) - off : n - off);
	memcpy(part.data, e->data + off, part.data_len);
	if (!tls_head_parse(&part, h))
		return 0;
	/* No end in the copy, HTTP/2 frames after the preface, or a body of unknown length (a
	 * response without Content-Length, a chunked request): nothing after it is a head we can
	 * find. A request without Content-Length has no body unless chunked, whose first line is
	 * no request line: the next parse rejects it. */
	if (!end || h->h2 || (!h->request && h->length < 0) || h->length >= (int64_t)n)
		return n - off;
	next = (size_t)(end + 4 - e->data) + (h->length > 0 ? (size_t)h->length : 0);
	return next < n ? next - off : n - off;
}

/* The oldest request waiting on a connection, left on its queue; NULL when none waits. */
static struct tls_pending *tls_pending_peek(struct collector *c, const char *key)
{
	struct strmap_entry *ent = strmap_get(&c->tls_pending, key);
	struct tls_queue *qu = ent ? ent->val : NULL;

	return qu ? qu->head : NULL;
}

static void on_tls_head(struct collector *c, const struct ev_tls_data *e, const char *key,
			const struct tls_head *head, bool at_start)
{
	struct tls_pending *q;

	if (!head->request) {
		/* an interim response (100 Continue): the final one follows; 101 switches protocols
		 */
		if (head->status < 200 && head->status != 101)
			return;
		q = tls_pending_peek(c, key);
		if (q && !q->have_resp && capture_captures(&c->cap, e->h.pid, e->ssl)) {
			/* written once the level's parts are in (on_tls_chunk) */
			q->have_resp = true;
			q->resp = *head;
			q->resp_ts = (int64_t)e->h.ts;
			capture_h1_response(&c->cap, e, head->status, head->length,
					    head->status == 101 && q->req.websocket);
			return;
		}
		q = tls_pending_pop(c, key);
		write_http(c, q ? &q->h : &e->h, q ? &q->req : NULL, head, (int64_t)e->h.ts, e->ssl,
			   q ? q->lib : e->lib);
		free(q);
		return;
	}
	if (head->h2) {
		if (e->lib != TLSL_OPENSSL || !capture_h2_start(&c->cap, e))
			write_http(c, &e->h, head, NULL, 0, e->ssl, e->lib);
		return;
	}
	tls_pending_push(c, key, e, head, at_start);
}

static void on_tls_data(struct collector *c, const struct ev_tls_data *e)
{
	size_t n = e->data_len < TLS_HEAD ? e->data_len : TLS_HEAD;
	struct tls_head head;
	char key[48];

	if (!e->data_len) { /* a TLS connection's first write passed through the probes */
		snprintf(key, sizeof(key), "%u", e->h.pid);
		if (c->tls_pids.count < TLS_CONNS_MAX * 16)
			strmap_put(&c->tls_pids, key, NULL);
		return;
	}
	snprintf(key, sizeof(key), "%u:%llx", e->h.pid, (unsigned long long)e->ssl);
	for (size_t off = 0, used; off < n; off += used) {
		used = tls_head_at(e, off, &head);
		if (!used)
			break;
		on_tls_head(c, e, key, &head, off == 0);
	}
}

/* Plaintext streamed for a capture level or HTTP/2: a transaction whose parts are all in is
 * written. */
static void on_tls_chunk(struct collector *c, const struct ev_tls_chunk *e)
{
	char key[48];
	struct tls_pending *q;

	if (!capture_chunk(&c->cap, e))
		return;
	snprintf(key, sizeof(key), "%u:%llx", e->h.pid, (unsigned long long)e->ssl);
	q = tls_pending_peek(c, key);
	if (q && q->have_resp)
		tls_pending_write(c, tls_pending_pop(c, key));
}

/* A request inside TLS the policy does not allow (bpf/httpjudge.bpf.h, from SSL_write's
 * plaintext): its own line and a violation. In enforce mode the process was killed before the
 * library wrote the request (`stopped`). */
static void on_http_verdict(struct collector *c, const struct ev_conn_name *e)
{
	struct strbuf *sb = &c->body, ident = STRBUF_INIT, human = STRBUF_INIT;
	struct strbuf path = STRBUF_INIT, target = STRBUF_INIT;
	const char *reason = conn_name_reason(e->reason), *verdict = verdict_name(e->verdict);
	size_t mlen = e->method_len < FB_METHOD ? e->method_len : FB_METHOD - 1;
	size_t nlen = e->name_len < FB_NAME ? e->name_len : FB_NAME - 1;
	bool named = e->flags & (FBF_NAMED | FBF_LITERAL) && nlen;
	struct proc *p;

	sb_add(&target, e->path, e->path_len < FB_PATH ? e->path_len : FB_PATH - 1);
	render_path(c, &path, sb_str(&target)); /* a token in the query is redacted */
	sb_reset(sb);
	p = render_head(c, &e->h, "http_verdict", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	sb_addstr(&ident, "\"tls\":true,\"method\":");
	json_str(&ident, e->method, mlen);
	sb_addstr(&ident, ",\"authority\":");
	if (named)
		json_str(&ident, e->name, nlen);
	else
		sb_addstr(&ident, "null");
	sb_addstr(&ident, ",\"path\":");
	sb_addstr(&ident, path.len ? path.buf : "null");
	sb_addstr(&ident, ",\"reason\":");
	json_cstr(&ident, reason);
	sb_addch(sb, ',');
	sb_addstr(sb, ident.buf);
	if (e->flags & FBF_PATH_CUT)
		sb_addstr(sb, ",\"path_cut\":true");
	sb_addstr(sb, ",\"verdict\":\"");
	sb_addstr(sb, verdict);
	sb_addch(sb, '"');
	if (e->verdict == VERDICT_DENY || e->verdict == VERDICT_BLOCK)
		sb_addstr(sb, e->flags & FBF_STOPPED ? ",\"stopped\":true" : ",\"stopped\":false");
	write_line(c, EV_HTTP_VERDICT);
	/* "https POST good.test/upload (method_not_allowed)" */
	sb_addstr(&human, "https ");
	sb_add(&human, e->method, mlen);
	sb_addch(&human, ' ');
	if (named)
		sb_add(&human, e->name, nlen);
	else
		sb_addstr(&human, "(no host)");
	if (path.len >= 2 && path.buf[0] == '"')
		sb_add(&human, path.buf + 1, path.len - 2);
	if (reason)
		sb_addf(&human, " (%s)", reason);
	note_violation(c, &e->h, "http_verdict", verdict, ident.buf, human.buf);
	note_activity(c, &e->h, p, "made an HTTP request inside TLS");
	count_verdict(c, e->verdict);
	sb_release(&ident);
	sb_release(&human);
	sb_release(&path);
	sb_release(&target);
}

/* The name a TCP connection's first bytes asked for (SNI, Host). A refused connection is
 * reset here: the kernel drops its segments, which alone would leave the client retransmitting. */
static void on_conn_name(struct collector *c, const struct ev_conn_name *e)
{
	struct strbuf *sb = &c->body, ident = STRBUF_INIT, human = STRBUF_INIT;
	const char *reason = conn_name_reason(e->reason), *verdict = verdict_name(e->verdict);
	struct proc *p;

	sb_reset(sb);
	p = render_head(c, &e->h, "conn_name", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	conn_name_members(sb, e);
	sb_addstr(sb, ",\"verdict\":\"");
	sb_addstr(sb, verdict);
	sb_addstr(sb, "\",\"reason\":");
	json_cstr(sb, reason);
	if (e->flags & FBF_DROPPED) {
		bool reset = conn_name_reset(e) == 0 || errno == ENOENT;

		sb_addstr(sb, ",\"reset\":");
		sb_addstr(sb, reset ? "true" : "false");
	}
	write_line(c, EV_CONN_NAME);
	if (e->verdict != VERDICT_ALLOW) {
		size_t nlen = e->name_len < FB_NAME ? e->name_len : FB_NAME;
		int family = e->family == AF_INET6 ? AF_INET6 : AF_INET;

		sb_addstr(&ident, "\"app\":\"");
		sb_addstr(&ident, e->app == FB_TLS ? "tls" : "http");
		sb_addstr(&ident, "\",\"daddr\":\"");
		fmt_addr(&ident, family, e->daddr);
		sb_addf(&ident, "\",\"dport\":%u,\"name\":", e->dport);
		json_str(&ident, e->name, nlen);
		sb_addstr(&ident, ",\"reason\":");
		json_cstr(&ident, reason);
		sb_addstr(&human, e->app == FB_TLS ? "tls " : "http ");
		fmt_addr(&human, family, e->daddr);
		sb_addf(&human, ":%u name ", e->dport);
		json_str(&human, e->name, nlen);
		if (reason)
			sb_addf(&human, " (%s)", reason);
		if (secrets_find(&c->secrets, ident.buf, ident.len, NULL, NULL)) {
			struct strbuf r1 = STRBUF_INIT, r2 = STRBUF_INIT;

			secrets_redact(&c->secrets, ident.buf, ident.len, &r1);
			secrets_redact(&c->secrets, human.buf, human.len, &r2);
			note_violation(c, &e->h, "conn_name", verdict, r1.buf, r2.buf);
			sb_release(&r1);
			sb_release(&r2);
		} else {
			note_violation(c, &e->h, "conn_name", verdict, ident.buf, human.buf);
		}
	}
	note_activity(c, &e->h, p, "sent a connection's first bytes");
	note_tls_conn(c, e);
	count_verdict(c, e->verdict);
	sb_release(&ident);
	sb_release(&human);
}

/* ------------------------------------------------------------ host access */

static void on_unix_connect(struct collector *c, const struct ev_unix_connect *e)
{
	struct strbuf *sb = &c->body;
	size_t n = strnlen(e->path, e->path_len < UNIX_PATH_BYTES ? e->path_len : UNIX_PATH_BYTES);
	struct finding_proc fp;
	struct strbuf path = STRBUF_INIT;
	struct proc *p;

	sb_add(&path, e->path, n);
	sb_reset(sb);
	p = render_head(c, &e->h, "unix_connect", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	sb_addstr(sb, ",\"path\":");
	json_str(sb, e->path, n);
	sb_addstr(sb, ",\"result\":");
	render_result(sb, e->result);
	write_line(c, EV_UNIX_CONNECT);
	if (fproc(c, &e->h, p, &fp))
		findings_on_unix_connect(&c->findings, &fp, path.buf, e->result >= 0, c->last_seq);
	sb_release(&path);
}

/* mount(2) flags by name: the ones that say what a mount does. */
static void render_mount_flags(struct strbuf *sb, uint64_t flags, bool move)
{
	static const struct {
		uint64_t bit;
		const char *name;
	} ms[] = {{0x1, "MS_RDONLY"},	 {0x2, "MS_NOSUID"},	 {0x4, "MS_NODEV"},
		  {0x8, "MS_NOEXEC"},	 {0x20, "MS_REMOUNT"},	 {0x1000, "MS_BIND"},
		  {0x2000, "MS_MOVE"},	 {0x4000, "MS_REC"},	 {0x40000, "MS_PRIVATE"},
		  {0x80000, "MS_SLAVE"}, {0x100000, "MS_SHARED"}};
	bool first = true;

	sb_addch(sb, '[');
	for (size_t i = 0; !move && i < sizeof(ms) / sizeof(ms[0]); i++)
		if (flags & ms[i].bit) {
			sb_addf(sb, "%s\"%s\"", first ? "" : ",", ms[i].name);
			first = false;
		}
	sb_addch(sb, ']');
}

static void on_mount(struct collector *c, const struct ev_mount *e)
{
	struct strbuf *sb = &c->body;
	bool move = e->call == MOUNT_CALL_MOVE;
	char src[MOUNT_STR_BYTES + 1], dst[MOUNT_STR_BYTES + 1], type[MOUNT_TYPE_BYTES + 1];
	struct finding_mount fm;
	struct finding_proc fp;
	struct proc *p;

	snprintf(src, sizeof(src), "%.*s", MOUNT_STR_BYTES, e->source);
	snprintf(dst, sizeof(dst), "%.*s", MOUNT_STR_BYTES, e->target);
	snprintf(type, sizeof(type), "%.*s", MOUNT_TYPE_BYTES, e->fstype);
	sb_reset(sb);
	p = render_head(c, &e->h, "mount", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	sb_addf(sb, ",\"call\":\"%s\",\"source\":", move ? "move_mount" : "mount");
	json_cstr(sb, src[0] ? src : NULL);
	sb_addstr(sb, ",\"target\":");
	json_cstr(sb, dst[0] ? dst : NULL);
	sb_addstr(sb, ",\"fstype\":");
	json_cstr(sb, type[0] ? type : NULL);
	sb_addstr(sb, ",\"flags\":");
	render_mount_flags(sb, e->flags, move);
	sb_addstr(sb, ",\"result\":");
	render_result(sb, e->result);
	write_line(c, EV_MOUNT);
	fm = (struct finding_mount){
	    .call = move ? "move_mount" : "mount",
	    .source = src[0] ? src : NULL,
	    .target = dst[0] ? dst : NULL,
	    .fstype = type[0] ? type : NULL,
	    .bind = !move && (e->flags & 0x1000),
	    /* MS_PRIVATE|SLAVE|SHARED|UNBINDABLE without BIND|MOVE|REMOUNT */
	    .propagation = !move && (e->flags & 0x1e0000) && !(e->flags & (0x1000 | 0x2000 | 0x20)),
	    .ok = e->result >= 0};
	if (fproc(c, &e->h, p, &fp))
		findings_on_mount(&c->findings, &fp, &fm, c->last_seq);
}

void collector_fence_note(struct collector *c, const char *what, const char *reason, int verdict)
{
	struct strbuf *sb = &c->body;
	struct ev_hdr h = {.ts = 0};

	sb_reset(sb);
	h.ts = (uint64_t)(now_mono_ns());
	render_head(c, &h, "fence", sb);
	sb_addstr(sb, ",\"what\":");
	json_cstr(sb, what);
	sb_addstr(sb, ",\"reason\":");
	json_cstr(sb, reason);
	sb_addf(sb, ",\"verdict\":\"%s\"", verdict_name(verdict));
	write_line(c, EV_FENCE);
	summary_incomplete(&c->sum, reason);
	c->sum.fence_breaches++;
	count_verdict(c, verdict);
}

/* ------------------------------------------------------------ secrets leaving */

void collector_secret_file(struct collector *c, const char *path, uint32_t kdev, uint64_t ino,
			   int64_t uid)
{
	if (secrets_from_file(&c->secrets, path, kdev, ino, uid) > 0 && c->secrets.kernel)
		secrets_kernel_sync(&c->secrets, &c->secrets.k);
}

static const char *secret_channel_name(uint8_t ch)
{
	return ch == SCH_TLS_WRITE ? "tls_write" : ch == SCH_TCP ? "plain_tcp" : "dns_name";
}

/* A plain connection a secret stopped: reset, as a refused name's is (the kernel drops its
 * segments; the client would retransmit into the void). */
static bool secret_reset(const struct ev_secret *e)
{
	struct ev_conn_name cn = {
	    .cookie = e->conn, .family = e->family, .dport = e->dport, .sport = e->sport};

	memcpy(cn.daddr, e->daddr, 16);
	memcpy(cn.saddr, e->saddr, 16);
	return conn_name_reset(&cn) == 0 || errno == ENOENT;
}

/* A secret seen leaving (bpf/secretscan.bpf.h): named, never written. */
static void on_secret(struct collector *c, const struct ev_secret *e)
{
	struct strbuf *sb = &c->body, ident = STRBUF_INIT, human = STRBUF_INIT, addr = STRBUF_INIT;
	const struct secret *x = secrets_by_id(&c->secrets, e->id);
	const char *verdict = verdict_name(e->verdict), *channel = secret_channel_name(e->channel);
	char host[SECRET_HOST + 1];
	struct finding_proc fp;
	struct proc *p;
	bool reset = false;

	snprintf(host, sizeof(host), "%.*s", (int)(e->host_len < SECRET_HOST ? e->host_len : 0),
		 e->host);
	if (e->family) {
		fmt_addr(&addr, e->family == AF_INET6 ? AF_INET6 : AF_INET, e->daddr);
		sb_addf(&addr, ":%u", e->dport);
	}
	if (e->flags & SECF_DROPPED)
		reset = secret_reset(e);
	sb_reset(sb);
	p = render_head(c, &e->h, "secret_leak", sb);
	sb_addstr(sb, ",\"argv\":");
	sb_addstr(sb, p && p->argv_json ? p->argv_json : "null");
	sb_addf(sb, ",\"channel\":\"%s\",\"secret\":", channel);
	json_cstr(sb, x ? x->name : NULL);
	sb_addstr(sb, ",\"source\":");
	json_cstr(sb, x ? secret_source_name(x->src) : NULL);
	if (x && x->what) {
		sb_addstr(sb, ",\"key\":");
		json_cstr(sb, x->what);
	}
	sb_addstr(sb, ",\"hash\":");
	json_cstr(sb, x && x->tag[0] ? x->tag : NULL);
	sb_addstr(sb, ",\"destination\":");
	json_cstr(sb, host[0] ? host : NULL);
	if (addr.len) {
		sb_addstr(sb, ",\"address\":");
		json_cstr(sb, addr.buf);
	}
	sb_addf(sb, ",\"offset\":%u,\"bytes\":%u,\"verdict\":\"%s\"", e->offset, e->write_len,
		verdict);
	if (e->flags & SECF_SPLIT) /* it began in earlier writes or segments, already sent */
		sb_addf(sb, ",\"earlier\":%u", e->earlier);
	if (e->flags & SECF_KILLED)
		sb_addstr(sb, ",\"killed\":true");
	if (e->flags & SECF_DROPPED)
		sb_addf(sb, ",\"dropped\":true,\"reset\":%s", reset ? "true" : "false");
	if (e->flags & SECF_UNSCANNED)
		sb_addstr(sb, ",\"unscanned\":true");
	if (!x)
		sb_addf(sb, ",\"secret_id\":%u", e->id);
	write_line(c, EV_SECRET);
	if ((e->flags & SECF_DROPPED) && !reset)
		c->secret_resets_failed++;
	if (fproc(c, &e->h, p, &fp) && !(e->flags & SECF_UNSCANNED)) {
		struct finding_secret fs = {.secret = x ? x->name : "unknown",
					    .source = x ? secret_source_name(x->src) : "unknown",
					    .key = x ? x->what : NULL,
					    .tag = x && x->tag[0] ? x->tag : NULL,
					    .dest = host[0] ? host : NULL,
					    .address = addr.len ? addr.buf : NULL,
					    .channel = channel,
					    .verdict =
						e->verdict == VERDICT_DENY ? "deny" : "audit",
					    .killed = e->flags & SECF_KILLED,
					    .dropped = e->flags & SECF_DROPPED};

		findings_on_secret_leak(&c->findings, &fp, &fs, c->last_seq);
	}
	sb_addf(&ident, "\"channel\":\"%s\",\"secret\":", channel);
	json_cstr(&ident, x ? x->name : NULL);
	sb_addstr(&ident, ",\"destination\":");
	json_cstr(&ident, host[0] ? host : NULL);
	sb_addf(&human, "%s %s to ", x ? x->name : "a secret", channel);
	sb_addstr(&human, host[0] ? host : addr.len ? addr.buf : "an unnamed destination");
	note_violation(c, &e->h, "secret_leak", verdict, ident.buf, human.buf);
	note_activity(c, &e->h, p, "sent a secret");
	count_verdict(c, e->verdict);
	sb_release(&ident);
	sb_release(&human);
	sb_release(&addr);
}

int collector_handle(void *ctx, void *data, size_t len)
{
	struct collector *c = ctx;
	const struct ev_hdr *h = data;

	if (len < sizeof(*h) || h->kind == 0 || h->kind >= EV_KIND_MAX) {
		c->sum.malformed++; /* cannot happen with a matching kernel side */
		return 0;
	}
	switch (h->kind) {
	case EV_EXEC:
		on_exec(c, data, len);
		break;
	case EV_FORK:
		proctab_fork(&c->procs, h->pid, h->ppid);
		c->sum.logged[EV_FORK]++;
		break;
	case EV_EXIT:
		if (len >= sizeof(struct ev_exit))
			on_exit_(c, data);
		break;
	case EV_CONNECT:
		if (len >= sizeof(struct ev_connect))
			on_connect(c, data);
		break;
	case EV_DNS_PKT:
		if (len >= sizeof(struct ev_dns_pkt))
			on_dns(c, data, len);
		break;
	case EV_FILE:
		if (len >= sizeof(struct ev_file))
			on_file(c, data, len);
		break;
	case EV_SOCKET:
		if (len >= sizeof(struct ev_socket))
			on_socket(c, data);
		break;
	case EV_ENV:
		if (len >= sizeof(struct ev_env))
			on_env(c, data, len);
		break;
	case EV_MEMREAD:
		if (len >= sizeof(struct ev_memread))
			on_memread(c, data);
		break;
	case EV_CGROUP_MOVE:
		if (len >= sizeof(struct ev_cgroup_move))
			on_cgroup_move(c, data);
		break;
	case EV_GETFD:
		if (len >= sizeof(struct ev_getfd))
			on_getfd(c, data);
		break;
	case EV_ACCEPT:
		if (len >= sizeof(struct ev_accept))
			on_accept(c, data);
		break;
	case EV_UNIX_CONNECT:
		if (len >= sizeof(struct ev_unix_connect))
			on_unix_connect(c, data);
		break;
	case EV_MOUNT:
		if (len >= sizeof(struct ev_mount))
			on_mount(c, data);
		break;
	case EV_PATH_OP:
		if (len >= sizeof(struct ev_path_op))
			on_path_op(c, data, len);
		break;
	case EV_CONN_NAME:
		if (len >= sizeof(struct ev_conn_name))
			on_conn_name(c, data);
		break;
	case EV_HTTP_VERDICT:
		if (len >= sizeof(struct ev_conn_name))
			on_http_verdict(c, data);
		break;
	case EV_SECRET:
		if (len >= sizeof(struct ev_secret))
			on_secret(c, data);
		break;
	case EV_TLS_DATA:
		if (len >= sizeof(struct ev_tls_data) - TLS_HEAD &&
		    len >= sizeof(struct ev_tls_data) - TLS_HEAD +
			       ((const struct ev_tls_data *)data)->data_len)
			on_tls_data(c, data);
		break;
	case EV_TLS_CHUNK:
		if (len >= sizeof(struct ev_tls_chunk) - TLS_CHUNK &&
		    len >= sizeof(struct ev_tls_chunk) - TLS_CHUNK +
			       ((const struct ev_tls_chunk *)data)->data_len)
			on_tls_chunk(c, data);
		break;
	}
	return 0;
}

void collector_finish(struct collector *c)
{
	c->sum.exe_hashed_files = c->exes.hashed_files;
	c->sum.exe_hashed_bytes = c->exes.hashed_bytes;
	c->sum.exe_hash_hits = c->exes.hits;
	c->sum.exe_hash_ns = c->exes.hash_ns;
	strmap_for_each(e, &c->dns_pending)
	{
		const struct dns_pending *q = e->val;

		log_answered(c, &q->who, q->qname, q->qtype, NULL);
	}
	strmap_clear(&c->dns_pending, free);
	c->dns_pending_bytes = 0;
	tls_pending_flush(c);
	capture_finish(&c->cap);
	tls_unseen(c);
}

void collector_free(struct collector *c)
{
	proctab_free(&c->procs);
	strmap_clear(&c->dns_pending, free);
	strmap_clear(&c->hosts, free);
	strmap_clear(&c->redirected, free);
	strmap_clear(&c->gate_clients, free);
	tls_pending_free(c);
	strmap_clear(&c->tls_pids, free);
	capture_release(&c->cap);
	free(c->tls_conns);
	free(c->dns_scratch);
	strmap_clear(&c->watched, free);
	strmap_clear(&c->containers, free);
	strmap_clear(&c->shims, free_shim);
	exe_cache_free(&c->exes);
	findings_free(&c->findings);
	secrets_free(&c->secrets);
	redactor_wipe(&c->redact);
	summary_free(&c->sum);
	sb_release(&c->body);
	sb_release(&c->dest_memo.frag);
	evlog_abandon(&c->log);
}
