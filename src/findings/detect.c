/*
 * The detectors: each turns the lines the collector writes into findings, with bounded state.
 * Thresholds and their reasons are in docs/findings.md; keep the two in step.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonw.h"
#include "common/xalloc.h"
#include "findings/findings.h"
#include "observe/proctab.h"

/* ------------------------------------------------------------ processes */

/* Ancestry walks stop here: deeper trees are not followed (bounded work per event). */
#define ANCESTRY_MAX 64

static void pid_key(char *buf, size_t len, const char *prefix, pid_t pid)
{
	snprintf(buf, len, "%s%d", prefix, (int)pid);
}

static struct proc *proc_of(const struct findings *f, pid_t pid)
{
	return pid > 0 ? proctab_get(f->procs, pid) : NULL;
}

static pid_t parent_of(const struct findings *f, pid_t pid)
{
	struct proc *p = proc_of(f, pid);

	return p ? p->ppid : 0;
}

/* The process as a finding names it, from the process table when the line had less. */
static struct finding_proc proc_ref(const struct findings *f, pid_t pid)
{
	struct proc *p = proc_of(f, pid);
	struct finding_proc r = {.pid = pid};

	if (p) {
		r.exe = p->exe;
		r.argv_json = p->argv_json;
		r.step = p->step;
	}
	return r;
}

const char *findings_short_exe(const struct finding_proc *p)
{
	const char *s;

	if (!p->exe)
		return "an unknown program";
	s = strrchr(p->exe, '/');
	return s && s[1] ? s + 1 : p->exe;
}

#define short_exe findings_short_exe

/* ------------------------------------------------------------ memory and environment */

static enum finding_severity memread_severity(const char *scope, bool write)
{
	if (!strcmp(scope, "runner"))
		return SEV_CRITICAL;
	if (!strcmp(scope, "outside"))
		return write ? SEV_CRITICAL : SEV_HIGH;
	if (!strcmp(scope, "job"))
		return write ? SEV_MEDIUM : SEV_LOW; /* debuggers and tracers in tests */
	return SEV_MEDIUM;
}

static const char *scope_words(const char *scope)
{
	return !strcmp(scope, "runner")	   ? "the CI runner, outside the job"
	       : !strcmp(scope, "outside") ? "outside the job"
	       : !strcmp(scope, "job")	   ? "in the job"
					   : "scope unknown";
}

static void memread_details(struct finding *x, const struct finding_memread *m, pid_t target,
			    bool ok)
{
	struct strbuf d = STRBUF_INIT;

	sb_addf(&d, "\"target\":{\"pid\":%d,\"exe\":", (int)target);
	json_cstr(&d, m->target_exe);
	sb_addstr(&d, ",\"comm\":");
	json_cstr(&d, m->target_comm);
	sb_addstr(&d, ",\"scope\":");
	json_cstr(&d, m->scope);
	sb_addf(&d, "},\"op\":\"%s\",\"write\":%s,\"succeeded\":%s", m->op,
		m->write ? "true" : "false", ok ? "true" : "false");
	finding_set_details(x, d.buf);
	sb_release(&d);
}

static void memread_finding(struct findings *f, const struct finding_proc *p,
			    const struct finding_memread *m, uint64_t seq)
{
	bool environ = !strcmp(m->op, "proc_environ");
	enum finding_kind kind = environ ? FK_ENVIRON_READ : FK_MEMORY_READ;
	pid_t target = m->target ? m->target : m->target_as_given;
	const char *what = environ    ? "the environment"
			   : m->write ? "the memory (write)"
				      : "the memory";
	const char *tname = m->target_exe ? m->target_exe : m->target_comm;
	char key[96];
	struct finding *x;

	/* One finding per reader, target and direction, however many calls; the first success
	 * after failed attempts says so. */
	snprintf(key, sizeof(key), "mem:%d:%d:%d:%d", (int)kind, (int)p->pid, (int)target,
		 m->write);
	x = finding_get(f, key);
	if (!x) {
		x = finding_raise(f, key, kind, memread_severity(m->scope, m->write), p);
		if (!x)
			return;
		finding_set_desc(x, "%s [pid %d] %s %s of pid %d %s (%s) through %s%s",
				 short_exe(p), (int)p->pid, m->ok ? "reached" : "tried to reach",
				 what, (int)target, tname ? tname : "(unknown)",
				 scope_words(m->scope), m->op, m->ok ? "" : " (it failed)");
		memread_details(x, m, target, m->ok);
	} else if (m->ok && x->details && strstr(x->details, "\"succeeded\":false")) {
		finding_set_desc(x,
				 "%s [pid %d] reached %s of pid %d %s (%s) through %s, after "
				 "failed attempts",
				 short_exe(p), (int)p->pid, what, (int)target,
				 tname ? tname : "(unknown)", scope_words(m->scope), m->op);
		memread_details(x, m, target, true);
	}
	finding_evidence(x, seq);
	finding_act(f, x);
}

void findings_on_memread(struct findings *f, const struct finding_proc *p,
			 const struct finding_memread *m, uint64_t seq)
{
	findings_on_activity(f, p, m->op, seq);
	memread_finding(f, p, m, seq);
}

/* /proc/N/environ (or /proc/N/task/T/environ) of another process: the pid, else 0. */
static pid_t proc_environ_target(const char *path)
{
	const char *s = path;
	char *end;
	long pid;

	if (strncmp(s, "/proc/", 6))
		return 0;
	pid = strtol(s + 6, &end, 10);
	if (end == s + 6 || pid <= 0)
		return 0;
	if (!strcmp(end, "/environ"))
		return (pid_t)pid;
	if (!strncmp(end, "/task/", 6)) {
		long tid = strtol(end + 6, &end, 10);

		if (tid > 0 && !strcmp(end, "/environ"))
			return (pid_t)pid;
	}
	return 0;
}

/* ------------------------------------------------------------ credential sweep */

/* The stores a worm collects, by the file names their tools use. */
#define CRED_STORES(X)                                                                             \
	X(SSH, "ssh")                                                                              \
	X(CLOUD, "cloud")                                                                          \
	X(KUBE, "kubernetes")                                                                      \
	X(NPM, "npm")                                                                              \
	X(PYPI, "pypi")                                                                            \
	X(GIT, "git")                                                                              \
	X(DOCKER, "docker")                                                                        \
	X(NETRC, "netrc")                                                                          \
	X(DOTENV, ".env")                                                                          \
	X(VAULT, "vault")                                                                          \
	X(DB, "database")                                                                          \
	X(SHADOW, "system passwords")

enum cred_store {
	CS_NONE = -1,
#define CS_ENUM_(e, name) CS_##e,
	CRED_STORES(CS_ENUM_)
#undef CS_ENUM_
	    CS_COUNT
};

static const char *const store_names[CS_COUNT] = {
#define CS_NAME_(e, name) [CS_##e] = name,
    CRED_STORES(CS_NAME_)
#undef CS_NAME_
};

/* One process reading this many stores, or one tree this many, within the window. */
#define CRED_PROC_STORES 3
#define CRED_TREE_STORES 4
#define CRED_WINDOW_NS	 (60 * 1000000000LL)
/* Processes (readers and their ancestors) with sweep state kept; the oldest go first. */
#define CRED_STATE_MAX 4096

struct cred_state {
	int64_t ts[CS_COUNT]; /* last read of each store (0: never) */
	uint64_t seq[CS_COUNT];
	bool covered; /* a sweep finding already names this process or a descendant */
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static enum cred_store store_of(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (strstr(path, "/.ssh/") || !strncmp(path, "/etc/ssh/ssh_host_", 18))
		return CS_SSH;
	if (strstr(path, "/.aws/") || strstr(path, "/.config/gcloud/") || strstr(path, "/.azure/"))
		return CS_CLOUD;
	if (ends_with(path, "/.kube/config") || ends_with(path, "/serviceaccount/token"))
		return CS_KUBE;
	if (!strcmp(base, ".npmrc") || !strcmp(base, ".yarnrc") || !strcmp(base, ".yarnrc.yml"))
		return CS_NPM;
	if (!strcmp(base, ".pypirc"))
		return CS_PYPI;
	if (!strcmp(base, ".git-credentials") || ends_with(path, "/.config/gh/hosts.yml"))
		return CS_GIT;
	if (ends_with(path, "/.docker/config.json") || !strcmp(base, ".dockercfg"))
		return CS_DOCKER;
	if (!strcmp(base, ".netrc"))
		return CS_NETRC;
	if (!strcmp(base, ".env") || !strncmp(base, ".env.", 5))
		return CS_DOTENV;
	if (!strcmp(base, ".vault-token"))
		return CS_VAULT;
	if (!strcmp(base, ".pgpass"))
		return CS_DB;
	if (!strcmp(path, "/etc/shadow") || !strcmp(path, "/etc/gshadow"))
		return CS_SHADOW;
	return CS_NONE;
}

static struct cred_state *cred_state(struct findings *f, pid_t pid)
{
	char k[32];
	struct strmap_entry *e;
	struct cred_state *s;

	pid_key(k, sizeof(k), "", pid);
	e = strmap_get(&f->cred, k);
	if (e)
		return e->val;
	if (f->cred.count >= CRED_STATE_MAX) {
		free(strmap_del(&f->cred, f->cred.first->key));
		f->state_dropped++;
	}
	s = xcalloc(1, sizeof(*s));
	strmap_put(&f->cred, k, NULL)->val = s;
	return s;
}

/* Stores read within the window ending now; their names into names (", "-separated). */
static int stores_recent(const struct cred_state *s, int64_t now, struct strbuf *names)
{
	int n = 0;

	for (int i = 0; i < CS_COUNT; i++) {
		if (!s->ts[i] || now - s->ts[i] > CRED_WINDOW_NS)
			continue;
		if (names)
			sb_addf(names, "%s\"%s\"", n ? "," : "", store_names[i]);
		n++;
	}
	return n;
}

/* Marks pid and its ancestors: the sweep is named once, at the lowest process that did it. */
static void cover_up(struct findings *f, pid_t pid)
{
	for (int hops = 0; pid > 0 && hops < ANCESTRY_MAX; hops++, pid = parent_of(f, pid)) {
		if (f->runner_pid && pid == f->runner_pid)
			break;
		cred_state(f, pid)->covered = true;
	}
}

/* Raises (or brings up to date) the sweep finding of who: the stores read in the window. */
static void sweep_finding(struct findings *f, pid_t who, const struct cred_state *s, int64_t now,
			  bool tree, uint64_t seq)
{
	struct finding_proc p = proc_ref(f, who);
	struct strbuf names = STRBUF_INIT, plain = STRBUF_INIT, d = STRBUF_INIT;
	struct finding *x;
	char key[48];
	int n = stores_recent(s, now, &names);

	pid_key(key, sizeof(key), "cred:", who);
	x = finding_get(f, key);
	if (!x) {
		x = finding_raise(f, key, FK_CREDENTIAL_SWEEP, tree ? SEV_MEDIUM : SEV_HIGH, &p);
		cover_up(f, who);
		if (!x)
			goto out;
		finding_set_details(x, tree ? "\"tree\":true" : "\"tree\":false");
	} else if (n < 1) {
		goto out;
	}
	tree = strstr(x->details ? x->details : "", "\"tree\":true") != NULL;
	/* The names are ours ("ssh", "cloud", ...): plain text in the description. */
	for (const char *c = names.buf; c && *c; c++)
		if (*c != '"')
			sb_addstr(&plain, *c == ',' ? ", " : (char[]){*c, 0});
	finding_set_desc(x, "%s [pid %d]%s read %d credential stores within %d s: %s",
			 short_exe(&p), (int)who, tree ? " and the processes it started" : "", n,
			 (int)(CRED_WINDOW_NS / 1000000000LL), sb_str(&plain));
	sb_addf(&d, "\"stores\":[%s],\"tree\":%s", sb_str(&names), tree ? "true" : "false");
	finding_set_details(x, d.buf);
	for (int i = 0; i < CS_COUNT; i++)
		if (s->ts[i] && now - s->ts[i] <= CRED_WINDOW_NS)
			finding_evidence(x, s->seq[i]);
	finding_evidence(x, seq);
	finding_act(f, x);
out:
	sb_release(&names);
	sb_release(&plain);
	sb_release(&d);
}

static void cred_read(struct findings *f, pid_t reader, enum cred_store store, int64_t ts,
		      uint64_t seq)
{
	pid_t pid = reader;

	for (int hops = 0; pid > 0 && hops < ANCESTRY_MAX; hops++, pid = parent_of(f, pid)) {
		struct cred_state *s;
		char key[48];
		bool had;

		if (f->runner_pid && pid == f->runner_pid)
			break; /* the runner is not the job's tree */
		s = cred_state(f, pid);
		had = s->ts[store] && ts - s->ts[store] <= CRED_WINDOW_NS;
		s->ts[store] = ts ? ts : 1;
		s->seq[store] = seq;
		pid_key(key, sizeof(key), "cred:", pid);
		if (finding_get(f, key)) {
			/* The sweep already named here: a new store joins it. */
			if (!had)
				sweep_finding(f, pid, s, ts, false, seq);
			else
				finding_evidence(finding_get(f, key), seq);
		} else if (!s->covered &&
			   stores_recent(s, ts, NULL) >=
			       (pid == reader ? CRED_PROC_STORES : CRED_TREE_STORES)) {
			sweep_finding(f, pid, s, ts, pid != reader, seq);
		}
	}
}

void findings_on_file(struct findings *f, const struct finding_proc *p, const char *path,
		      const char *watched_as, bool ok, int64_t ts, uint64_t seq)
{
	enum cred_store store = store_of(watched_as ? watched_as : path);
	pid_t target;

	findings_on_activity(f, p, "opened a sensitive file", seq);
	if (store != CS_NONE) {
		cred_read(f, p->pid, store, ts, seq);
		return;
	}
	/* A successful open of another process's environ is a memread line; a failed one is
	 * only this file line. Both are one finding per reader and target. */
	target = proc_environ_target(path);
	if (target && target != p->pid) {
		struct finding_memread m = {.op = "proc_environ",
					    .target_as_given = target,
					    .scope = proc_of(f, target) ? "job" : "unknown",
					    .ok = ok};

		memread_finding(f, p, &m, seq);
	}
}

/* ------------------------------------------------------------ DNS tunnelling and volume */

/* Per parent domain: distinct names with encoded-looking labels, TXT/NULL questions, and
 * distinct names of any kind. Real npm, pip, apt and git jobs stay far below these
 * (docs/findings.md has the figures). */
#define DNS_TUNNEL_ENCODED 16
#define DNS_TUNNEL_TXT	   20
#define DNS_VOLUME_NAMES   100
/* A label this long is data, not a name people chose. */
#define DNS_LONG_LABEL 40
/* Labels that look encoded (label_encoded). */
#define DNS_HEX_CHARS	   16
#define DNS_MIXED_CHARS	   20
#define DNS_MIXED_SWITCHES 6
/* Bounded state: parents tracked, names remembered (and their bytes). */
#define DNS_PARENTS_MAX	  4096
#define DNS_NAMES_MAX	  32768
#define DNS_NAMES_BYTES	  (4u << 20)
#define DNS_EXAMPLES	  3
#define DNS_EXAMPLE_BYTES 96

struct dns_parent {
	uint64_t lookups, distinct, encoded, txt;
	/* The lines that counted before a finding was raised: its evidence from the first. */
	uint64_t early[FINDING_EVIDENCE_MAX];
	int n_early;
	uint64_t early_unlisted;
	char examples[DNS_EXAMPLES][DNS_EXAMPLE_BYTES];
	int n_examples;
};

/* The parent a tunnel would own: the last two labels, three under a two-letter country code
 * with a short generic second level (co.uk, com.au). Lower case, no trailing dot. False for a
 * name with nothing below its parent. *prefix_len: the bytes before the dot above the parent. */
static bool dns_parent(const char *name, size_t n, char *parent, size_t cap, size_t *prefix_len)
{
	size_t dot[3];
	int nd = 0, want = 2;
	size_t start;

	for (size_t i = n; i-- > 0 && nd < 3;)
		if (name[i] == '.')
			dot[nd++] = i;
	if (nd >= 2 && n - dot[0] - 1 == 2 && dot[0] - dot[1] - 1 <= 3)
		want = 3;
	if (nd < want)
		return false;
	start = dot[want - 1] + 1;
	if (n - start >= cap)
		return false;
	for (size_t i = start; i < n; i++)
		parent[i - start] = (char)tolower((unsigned char)name[i]);
	parent[n - start] = 0;
	*prefix_len = start - 1;
	return true;
}

/* One label that carries data rather than a name: hex (16+ characters, digits and letters
 * mixed), or base32/base36/base64-like text where letters and digits alternate often (20+
 * characters, 6+ switches: "zffnp54hiv3zdtah3fbz..."). Names people choose group their digits
 * ("my-lb-1234567890", "ip-10-0-0-1", "d3a7f6hbhq8l7t" is short). */
static bool label_encoded(const char *l, size_t n)
{
	size_t digits = 0, letters = 0, hex = 0, switches = 0;
	int last = 0; /* 1 letter, 2 digit */

	if (n >= DNS_LONG_LABEL)
		return true;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)l[i];
		int cls = isdigit(c) ? 2 : isalpha(c) ? 1 : 0;

		digits += cls == 2;
		letters += cls == 1;
		hex += isxdigit(c) != 0;
		if (cls && last && cls != last)
			switches++;
		if (cls)
			last = cls;
	}
	if (n >= DNS_HEX_CHARS && hex == n && digits >= 4 && letters >= 2)
		return true;
	return n >= DNS_MIXED_CHARS && switches >= DNS_MIXED_SWITCHES;
}

static bool looks_encoded(const char *prefix, size_t n)
{
	for (size_t a = 0, i = 0; i <= n; i++) {
		if (i < n && prefix[i] != '.')
			continue;
		if (label_encoded(prefix + a, i - a))
			return true;
		a = i + 1;
	}
	return false;
}

static struct dns_parent *parent_state(struct findings *f, const char *parent)
{
	struct strmap_entry *e = strmap_get(&f->dns_parents, parent);
	struct dns_parent *d;

	if (e)
		return e->val;
	if (f->dns_parents.count >= DNS_PARENTS_MAX) {
		f->state_dropped++;
		return NULL;
	}
	d = xcalloc(1, sizeof(*d));
	strmap_put(&f->dns_parents, parent, NULL)->val = d;
	return d;
}

/* Is this the first time the job asked for name (any type)? Unknown past the caps: then it
 * is not counted as new (the counts are lower bounds, and the overflow is counted). */
static bool dns_first_time(struct findings *f, const char *lname)
{
	size_t len = strlen(lname);

	if (strmap_get(&f->dns_names, lname))
		return false;
	if (f->dns_names.count >= DNS_NAMES_MAX || f->dns_names_bytes + len > DNS_NAMES_BYTES) {
		f->state_dropped++;
		return false;
	}
	strmap_put(&f->dns_names, lname, NULL);
	f->dns_names_bytes += len + 1;
	return true;
}

static void dns_describe(struct finding *x, const char *parent, const struct dns_parent *d,
			 const struct finding_proc *p)
{
	struct strbuf det = STRBUF_INIT;

	finding_set_desc(x,
			 "%s under %s: %llu lookups of %llu distinct names, %llu with "
			 "encoded-looking labels, %llu TXT/NULL, first asked by %s [pid %d]",
			 x->kind == FK_DNS_TUNNEL ? "DNS tunnel" : "DNS volume", parent,
			 (unsigned long long)d->lookups, (unsigned long long)d->distinct,
			 (unsigned long long)d->encoded, (unsigned long long)d->txt, short_exe(p),
			 (int)p->pid);
	sb_addstr(&det, "\"parent\":");
	json_cstr(&det, parent);
	sb_addf(&det,
		",\"lookups\":%llu,\"distinct_names\":%llu,\"encoded_names\":%llu,"
		"\"txt_queries\":%llu,\"examples\":[",
		(unsigned long long)d->lookups, (unsigned long long)d->distinct,
		(unsigned long long)d->encoded, (unsigned long long)d->txt);
	for (int i = 0; i < d->n_examples; i++) {
		if (i)
			sb_addch(&det, ',');
		json_cstr(&det, d->examples[i]);
	}
	sb_addch(&det, ']');
	finding_set_details(x, det.buf);
	sb_release(&det);
}

void findings_on_dns(struct findings *f, const struct finding_proc *p, const char *qname, int qtype,
		     uint64_t seq)
{
	char parent[256], lname[256], key[300];
	size_t plen, n;
	struct dns_parent *d;
	struct finding *x;
	bool fresh, encoded, txt = qtype == 16 || qtype == 10; /* TXT, NULL */
	enum finding_kind want;

	findings_on_activity(f, p, "asked DNS", seq);
	if (!qname)
		return;
	n = strlen(qname);
	while (n && qname[n - 1] == '.')
		n--;
	if (n >= sizeof(lname) || !dns_parent(qname, n, parent, sizeof(parent), &plen))
		return;
	d = parent_state(f, parent);
	if (!d)
		return;
	for (size_t i = 0; i < n; i++)
		lname[i] = (char)tolower((unsigned char)qname[i]);
	lname[n] = 0;
	d->lookups++;
	fresh = dns_first_time(f, lname);
	encoded = fresh && looks_encoded(lname, plen);
	d->distinct += fresh;
	d->encoded += encoded;
	d->txt += txt;
	if ((encoded || txt) && d->n_examples < DNS_EXAMPLES)
		snprintf(d->examples[d->n_examples++], DNS_EXAMPLE_BYTES, "%s", lname);
	if (d->n_early < FINDING_EVIDENCE_MAX)
		d->early[d->n_early++] = seq;
	else
		d->early_unlisted++;

	snprintf(key, sizeof(key), "dns:%s", parent);
	x = finding_get(f, key);
	want = d->encoded >= DNS_TUNNEL_ENCODED || d->txt >= DNS_TUNNEL_TXT ? FK_DNS_TUNNEL
	       : d->distinct >= DNS_VOLUME_NAMES			    ? FK_DNS_VOLUME
									    : FK_COUNT;
	if (!x && want == FK_COUNT)
		return;
	if (!x) {
		x = finding_raise(f, key, want, want == FK_DNS_TUNNEL ? SEV_HIGH : SEV_MEDIUM, p);
		if (!x)
			return;
		/* every lookup under the parent so far (this one included): it is about them */
		for (int i = 0; i < d->n_early; i++)
			finding_evidence(x, d->early[i]);
		x->ev_unlisted += d->early_unlisted;
	} else {
		if (want == FK_DNS_TUNNEL && x->kind != FK_DNS_TUNNEL)
			finding_upgrade(f, x, FK_DNS_TUNNEL, SEV_HIGH); /* one finding per parent */
		finding_evidence(x, seq);
	}
	{
		struct finding_proc first = {.pid = x->pid, .exe = x->exe};

		dns_describe(x, parent, d, &first);
	}
	finding_act(f, x);
}

/* ------------------------------------------------------------ persistence */

/* Processes remembered as having outlived their root; what each did after, up to: */
#define OUTLIVED_MAX 1024
#define AFTER_MAX    8

struct outlived {
	pid_t pid, root;
	uint64_t root_exit_seq;
	bool running_at_end;
	int n_after;
	uint64_t actions;
	char after[AFTER_MAX][96];
};

/* A root: the first process of the job (its parent is not the job's), or in whole-job mode a
 * step's first process (a child of the runner). When one exits, whatever it started and is
 * still running has outlived its step or the job. */
static bool is_root(const struct findings *f, pid_t pid)
{
	struct proc *p = proc_of(f, pid);

	if (!p)
		return false;
	if (f->runner_pid)
		return p->ppid == f->runner_pid;
	return pid == f->root_pid;
}

static bool descends_from(const struct findings *f, pid_t pid, pid_t root)
{
	for (int hops = 0; pid > 0 && hops < ANCESTRY_MAX; hops++) {
		pid = parent_of(f, pid);
		if (pid == root)
			return true;
	}
	return false;
}

static void outlived_add(struct findings *f, pid_t pid, pid_t root, uint64_t seq)
{
	char k[32];
	struct outlived *o;

	pid_key(k, sizeof(k), "", pid);
	if (strmap_get(&f->outlived, k))
		return;
	if (f->outlived.count >= OUTLIVED_MAX) {
		f->state_dropped++;
		return;
	}
	o = xcalloc(1, sizeof(*o));
	o->pid = pid;
	o->root = root;
	o->root_exit_seq = seq;
	strmap_put(&f->outlived, k, NULL)->val = o;
}

void findings_on_exit(struct findings *f, pid_t pid, uint64_t seq)
{
	if (f->filecmds.count)
		findings_filecmd_exit(f, pid);
	if (!is_root(f, pid))
		return;
	/* Only the live processes that descend from it (the table keeps exited ones too). */
	strmap_for_each(e, &f->procs->m)
	{
		const struct proc *q = e->val;

		if (q && !q->exited && q->pid != pid && descends_from(f, q->pid, pid))
			outlived_add(f, q->pid, pid, seq);
	}
}

/* The outlived process pid is, or descends from; NULL for most processes. */
static struct outlived *outlived_of(struct findings *f, pid_t pid)
{
	for (int hops = 0; pid > 0 && hops < ANCESTRY_MAX; hops++, pid = parent_of(f, pid)) {
		char k[32];
		struct strmap_entry *e;

		pid_key(k, sizeof(k), "", pid);
		e = strmap_get(&f->outlived, k);
		if (e)
			return e->val;
	}
	return NULL;
}

static void persistence_describe(struct findings *f, struct finding *x, const struct outlived *o)
{
	struct strbuf d = STRBUF_INIT, after = STRBUF_INIT;
	struct finding_proc root = proc_ref(f, o->root);

	for (int i = 0; i < o->n_after; i++) {
		sb_addstr(&after, i ? "; " : "");
		sb_addstr(&after, o->after[i]);
	}
	struct finding_proc self = {.exe = x->exe};

	finding_set_desc(
	    x, "%s [pid %d] outlived %s (%s [pid %d] exited)%s%s%s%s", short_exe(&self),
	    (int)o->pid, f->runner_pid ? "its step" : "the job's command", short_exe(&root),
	    (int)o->root, o->actions ? " and then: " : "", sb_str(&after),
	    o->actions > (uint64_t)o->n_after ? "; ..." : "",
	    o->running_at_end
		? (o->actions ? "; still running at the end" : " and was still running at the end")
		: "");
	sb_addf(&d, "\"root\":{\"pid\":%d,\"exe\":", (int)o->root);
	json_cstr(&d, root.exe);
	sb_addf(&d, "},\"root_exit_seq\":%llu,\"actions_after\":%llu,\"after\":[",
		(unsigned long long)o->root_exit_seq, (unsigned long long)o->actions);
	for (int i = 0; i < o->n_after; i++) {
		if (i)
			sb_addch(&d, ',');
		json_cstr(&d, o->after[i]);
	}
	sb_addf(&d, "],\"running_at_end\":%s", o->running_at_end ? "true" : "false");
	finding_set_details(x, d.buf);
	sb_release(&d);
	sb_release(&after);
}

static struct finding *persistence_finding(struct findings *f, struct outlived *o)
{
	char key[48];
	struct finding *x;
	struct finding_proc p;

	pid_key(key, sizeof(key), "persist:", o->pid);
	x = finding_get(f, key);
	if (x)
		return x;
	p = proc_ref(f, o->pid);
	return finding_raise(f, key, FK_PERSISTENCE, SEV_MEDIUM, &p);
}

void findings_on_activity(struct findings *f, const struct finding_proc *p, const char *what,
			  uint64_t seq)
{
	struct outlived *o;
	struct finding *x;

	if (!f->outlived.count || !p || p->pid <= 0)
		return;
	o = outlived_of(f, p->pid);
	if (!o)
		return;
	if (o->n_after < AFTER_MAX) {
		struct finding_proc q = *p;

		snprintf(o->after[o->n_after++], sizeof(o->after[0]), "%s [pid %d] %s",
			 short_exe(&q), (int)p->pid, what);
	}
	o->actions++;
	x = persistence_finding(f, o);
	if (!x)
		return;
	finding_evidence(x, seq);
	persistence_describe(f, x, o);
	finding_act(f, x);
}

void findings_on_exec(struct findings *f, const struct finding_proc *p, uint64_t seq)
{
	/* run: the command itself, the one process whose parent is not the job's */
	if (!f->runner_pid && !f->root_pid) {
		struct proc *q = proc_of(f, p->pid);

		if (q && (q->ppid <= 0 || !proc_of(f, q->ppid)))
			f->root_pid = p->pid;
	}
	if (!f->outlived.count)
		return;
	findings_on_activity(f, p, "started (exec)", seq);
}

void findings_finish(struct findings *f, const pid_t *leftovers, int n_leftovers)
{
	findings_filecmd_finish(f);
	findings_srcmod_finish(f);
	for (int i = 0; i < n_leftovers; i++) {
		struct outlived *o = outlived_of(f, leftovers[i]);
		struct finding *x;

		if (!o) {
			/* Its root never exited in the record (or was not seen): still, it is
			 * running after the end. */
			outlived_add(f, leftovers[i], 0, 0);
			o = outlived_of(f, leftovers[i]);
			if (!o)
				continue;
		}
		o->running_at_end = true;
		x = persistence_finding(f, o);
		if (!x)
			continue;
		persistence_describe(f, x, o);
		finding_act(f, x);
	}
}

/* ------------------------------------------------------------ secrets */

void findings_on_secret(struct findings *f, const struct finding_proc *p, const char *tags_json,
			size_t n, uint64_t seq)
{
	struct strbuf key = STRBUF_INIT, d = STRBUF_INIT;
	struct finding *x;

	sb_addf(&key, "secret:%s", tags_json);
	x = finding_get(f, key.buf);
	if (!x) {
		x = finding_raise(f, key.buf, FK_SECRET_IN_ARGV, SEV_LOW, p);
		if (x) {
			finding_set_desc(x,
					 "%zu secret value%s in the command line of %s [pid %d], "
					 "redacted in the evidence (keyed hash tags)",
					 n, n == 1 ? "" : "s", short_exe(p), (int)p->pid);
			sb_addf(&d, "\"tags\":%s", tags_json);
			finding_set_details(x, d.buf);
		}
	}
	finding_evidence(x, seq);
	finding_act(f, x);
	sb_release(&key);
	sb_release(&d);
}
