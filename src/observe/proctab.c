/* Process table for attribution (see proctab.h). */
#include "observe/proctab.h"
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exited processes stay so that late records (a DNS answer after the asker
 * exited) are still attributed; past this many, the oldest go. */
#define KEEP_EXITED 4096

static void key(char *buf, pid_t pid)
{
	snprintf(buf, 16, "%d", (int)pid);
}

static void proc_free(void *v)
{
	struct proc *p = v;

	if (!p)
		return;
	free(p->exe);
	free(p->argv_json);
	free(p->step);
	free(p);
}

static struct proc **slot(struct proctab *t, pid_t pid)
{
	return &t->cache[(uint32_t)pid % PROCTAB_CACHE];
}

/* Every free of an entry goes through here, so the cache never holds a freed one. */
static void drop(struct proctab *t, struct proc *p)
{
	if (p && *slot(t, p->pid) == p)
		*slot(t, p->pid) = NULL;
	proc_free(p);
}

void proctab_init(struct proctab *t)
{
	memset(t, 0, sizeof(*t));
	strmap_init(&t->m);
}

struct proc *proctab_get(struct proctab *t, pid_t pid)
{
	struct proc **c = slot(t, pid);
	char k[16];
	struct strmap_entry *e;

	if (*c && (*c)->pid == pid)
		return *c;
	key(k, pid);
	e = strmap_get(&t->m, k);
	if (e && e->val)
		*c = e->val;
	return e ? e->val : NULL;
}

struct proc *proctab_add(struct proctab *t, pid_t pid)
{
	char k[16];
	bool created;
	struct strmap_entry *e;
	struct proc *p;

	key(k, pid);
	e = strmap_put(&t->m, k, &created);
	p = e->val;
	if (p && p->exited)
		t->exited--;
	drop(t, p); /* pid reuse: the old process is gone */
	p = xcalloc(1, sizeof(*p));
	p->pid = pid;
	e->val = p;
	return p;
}

void proctab_set(struct proc *p, const char *exe, const char *argv_json)
{
	char *e = exe ? xstrdup(exe) : NULL, *a = argv_json ? xstrdup(argv_json) : NULL;

	free(p->exe);
	free(p->argv_json);
	p->exe = e;
	p->argv_json = a;
}

void proctab_set_step(struct proc *p, const char *step)
{
	char *s = step ? xstrdup(step) : NULL;

	free(p->step);
	p->step = s;
}

void proctab_fork(struct proctab *t, pid_t child, pid_t parent)
{
	struct proc *pp = proctab_get(t, parent);
	struct proc *c = proctab_add(t, child);

	c->ppid = parent;
	if (pp) {
		c->uid = pp->uid;
		memcpy(c->comm, pp->comm, sizeof(c->comm));
		proctab_set(c, pp->exe, pp->argv_json);
		proctab_set_step(c, pp->step);
		c->exe_dev = pp->exe_dev;
		c->exe_ino = pp->exe_ino;
		memcpy(c->exe_sha256, pp->exe_sha256, sizeof(c->exe_sha256));
		c->container = pp->container;
		c->shim = pp->shim; /* conmon daemonizes: its fork is the monitor */
		c->by_shim = pp->by_shim;
	}
}

void proctab_exit(struct proctab *t, pid_t pid)
{
	struct proc *p = proctab_get(t, pid);

	if (!p || p->exited)
		return;
	p->exited = true;
	if (++t->exited <= KEEP_EXITED)
		return;
	/* Evict the oldest exited entries (insertion order). */
	for (struct strmap_entry *e = t->m.first, *n; e && t->exited > KEEP_EXITED / 2; e = n) {
		n = e->order_next;
		struct proc *q = e->val;
		if (q && q->exited) {
			char k[16];

			key(k, q->pid);
			drop(t, strmap_del(&t->m, k));
			t->exited--;
		}
	}
}

void proctab_free(struct proctab *t)
{
	strmap_clear(&t->m, proc_free);
	memset(t->cache, 0, sizeof(t->cache));
}
