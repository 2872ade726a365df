/*
 * Reaching past the job to its host: reverse shells (a shell or interpreter started with its
 * standard input or output a TCP connection), connects to container engines' API sockets,
 * and mounts. The kernel side is bpf/host.bpf.h. docs/findings.md.
 */
#include <stdlib.h>
#include <string.h>

#include "common/jsonw.h"
#include "common/xalloc.h"
#include "findings/findings.h"
#include "observe/proctab.h"

/* Processes whose last connection is remembered (for the reverse shell's evidence). */
#define LAST_CONNECT_MAX 4096

static void key_of(char *buf, size_t len, const char *prefix, pid_t pid)
{
	snprintf(buf, len, "%s%d", prefix, (int)pid);
}

struct last_connect {
	uint64_t seq;
	uint16_t port;
	bool v6;
	char proto[12];
	char addr[46];
};

/* "connected to tcp 127.0.0.1:80" */
static void connect_words(char *buf, size_t len, const char *proto, const char *addr, bool v6,
			  unsigned port)
{
	snprintf(buf, len, "connected to %s %s%s%s:%u", proto, v6 ? "[" : "", addr, v6 ? "]" : "",
		 port);
}

void findings_on_connect(struct findings *f, const struct finding_proc *p, const char *proto,
			 const char *addr, bool v6, unsigned port, uint64_t seq)
{
	char k[32];
	struct strmap_entry *e;
	struct last_connect *lc;

	if (f->outlived.count) {
		char what[96];

		connect_words(what, sizeof(what), proto, addr, v6, port);
		findings_on_activity(f, p, what, seq);
	}
	if (strcmp(proto, "tcp"))
		return; /* a shell needs a stream */
	key_of(k, sizeof(k), "", p->pid);
	e = strmap_get(&f->last_connect, k);
	if (!e) {
		if (f->last_connect.count >= LAST_CONNECT_MAX)
			free(strmap_del(&f->last_connect, f->last_connect.first->key));
		e = strmap_put(&f->last_connect, k, NULL);
		e->val = xcalloc(1, sizeof(*lc));
	}
	lc = e->val;
	lc->seq = seq;
	lc->port = (uint16_t)port;
	lc->v6 = v6;
	snprintf(lc->proto, sizeof(lc->proto), "%s", proto);
	snprintf(lc->addr, sizeof(lc->addr), "%s", addr);
}

static const struct last_connect *connect_of(struct findings *f, pid_t pid)
{
	char k[32];
	struct strmap_entry *e;

	key_of(k, sizeof(k), "", pid);
	e = strmap_get(&f->last_connect, k);
	return e ? e->val : NULL;
}

/* Programs that read commands from their standard input. */
static bool interpreter(const char *base)
{
	static const char *const exact[] = {"sh",      "bash", "dash",	 "zsh",	 "ksh",
					    "mksh",    "ash",  "fish",	 "csh",	 "tcsh",
					    "busybox", "node", "nodejs", "pwsh", "tclsh",
					    "wish",    "irb",  "bun",	 "deno", "osascript"};
	static const char *const prefix[] = {"python", "perl", "ruby", "php", "lua", "ksh"};

	for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (!strcmp(base, exact[i]))
			return true;
	for (size_t i = 0; i < sizeof(prefix) / sizeof(prefix[0]); i++)
		if (!strncmp(base, prefix[i], strlen(prefix[i])))
			return true;
	return false;
}

void findings_on_stdio_inet(struct findings *f, const struct finding_proc *p, bool in, bool out,
			    uint64_t seq)
{
	const char *base = findings_short_exe(p);
	bool interp = interpreter(base);
	const struct last_connect *lc = connect_of(f, p->pid);
	struct proc *self = proctab_get(f->procs, p->pid);
	struct strbuf d = STRBUF_INIT;
	struct finding *x;
	char key[48], conn[96];
	int hops = 0;

	if (!(interp && (in || out)) && !(in && out))
		return;
	if (!lc && self && self->ppid)
		lc = connect_of(f, self->ppid); /* the parent opened it, the child got it */
	if (lc)
		connect_words(conn, sizeof(conn), lc->proto, lc->addr, lc->v6, lc->port);
	/* One shell on a connection is one finding: what it starts with the same descriptors
	 * (a .bashrc's commands, its pipelines) adds evidence to it. */
	for (pid_t a = p->pid; a > 0 && hops < 64; hops++) {
		struct proc *q = proctab_get(f->procs, a);

		key_of(key, sizeof(key), "rsh:", a);
		x = finding_get(f, key);
		if (x) {
			finding_evidence(x, seq);
			return;
		}
		a = q ? q->ppid : 0;
	}
	key_of(key, sizeof(key), "rsh:", p->pid);
	x = finding_raise(f, key, FK_REVERSE_SHELL, interp ? SEV_CRITICAL : SEV_HIGH, p);
	if (!x)
		return;
	finding_set_desc(x, "%s [pid %d] started with its %s a network connection%s%s%s", base,
			 (int)p->pid,
			 in && out ? "standard input and output"
			 : in	   ? "standard input"
				   : "standard output",
			 interp ? " (a reverse shell)" : "", lc ? "; before it, the process " : "",
			 lc ? conn : "");
	sb_addf(&d, "\"stdin\":%s,\"stdout\":%s,\"interpreter\":%s", in ? "true" : "false",
		out ? "true" : "false", interp ? "true" : "false");
	if (lc) {
		sb_addstr(&d, ",\"connection\":");
		json_cstr(&d, conn);
	}
	finding_set_details(x, d.buf);
	if (lc)
		finding_evidence(x, lc->seq);
	finding_evidence(x, seq);
	finding_act(f, x);
	sb_release(&d);
}

/* The API sockets of container engines: talking to one is root on the host. */
static bool engine_socket(const char *path)
{
	static const char *const names[] = {
	    "docker.sock",    "containerd.sock",  "podman.sock",     "crio.sock",
	    "buildkitd.sock", "cri-dockerd.sock", "dockershim.sock", "containerd-shim.sock"};
	static const char *const dirs[] = {"docker", "podman", "containerd", "buildkit", "crio"};
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(base, names[i]))
			return true;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (strstr(path, dirs[i]))
			return true;
	return false;
}

void findings_on_unix_connect(struct findings *f, const struct finding_proc *p, const char *path,
			      bool ok, uint64_t seq)
{
	struct strbuf key = STRBUF_INIT, d = STRBUF_INIT;
	struct finding *x;

	findings_on_activity(f, p, "connected to a unix socket", seq);
	if (!engine_socket(path))
		return;
	sb_addf(&key, "engine:%d:%s", (int)p->pid, path);
	x = finding_get(f, key.buf);
	if (!x) {
		x = finding_raise(f, key.buf, FK_CONTAINER_ENGINE, SEV_HIGH, p);
		if (!x)
			goto out;
		finding_set_desc(
		    x, "%s [pid %d] %s the container engine socket %s%s", findings_short_exe(p),
		    (int)p->pid, ok ? "connected to" : "tried to connect to", path,
		    ok ? " (root on the host to whoever talks to it)" : " (it failed)");
		sb_addstr(&d, "\"socket\":");
		json_cstr(&d, path);
		sb_addf(&d, ",\"succeeded\":%s", ok ? "true" : "false");
		finding_set_details(x, d.buf);
	}
	finding_evidence(x, seq);
	finding_act(f, x);
out:
	sb_release(&key);
	sb_release(&d);
}

void findings_on_mount(struct findings *f, const struct finding_proc *p,
		       const struct finding_mount *m, uint64_t seq)
{
	struct strbuf key = STRBUF_INIT, d = STRBUF_INIT;
	enum finding_severity sev;
	struct finding *x;

	findings_on_activity(f, p, m->call, seq);
	if (m->propagation)
		return; /* unshare -m, systemd: mount namespaces made private; nothing mounted */
	sb_addf(&key, "mount:%d:%s:%s:%s", (int)p->pid, m->call, m->source ? m->source : "",
		m->target ? m->target : "");
	x = finding_get(f, key.buf);
	if (!x) {
		sev = !m->ok					  ? SEV_LOW
		      : m->bind || !strcmp(m->call, "move_mount") ? SEV_HIGH
								  : SEV_MEDIUM;
		x = finding_raise(f, key.buf, FK_MOUNT, sev, p);
		if (!x)
			goto out;
		finding_set_desc(x, "%s [pid %d] %s %s%s%s%s on %s%s", findings_short_exe(p),
				 (int)p->pid, m->ok ? "mounted" : "tried to mount",
				 m->bind ? "(bind) " : "", m->source ? m->source : "(a descriptor)",
				 m->fstype ? " type " : "", m->fstype ? m->fstype : "",
				 m->target ? m->target : "?", m->ok ? "" : " (it failed)");
		sb_addf(&d, "\"call\":\"%s\",\"source\":", m->call);
		json_cstr(&d, m->source);
		sb_addstr(&d, ",\"target\":");
		json_cstr(&d, m->target);
		sb_addstr(&d, ",\"fstype\":");
		json_cstr(&d, m->fstype);
		sb_addf(&d, ",\"bind\":%s,\"succeeded\":%s", m->bind ? "true" : "false",
			m->ok ? "true" : "false");
		finding_set_details(x, d.buf);
	}
	finding_evidence(x, seq);
	finding_act(f, x);
out:
	sb_release(&key);
	sb_release(&d);
}
