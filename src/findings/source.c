/* source_modified: the checkout's tracked files changed during the job, each named with the
 * processes that opened it for writing (srcmod.h has the snapshot and the comparison). */
#include <stdlib.h>
#include <string.h>

#include "common/jsonw.h"
#include "common/xalloc.h"
#include "findings/findings.h"

/* Files listed per finding; more are counted (files_unlisted). */
#define SOURCE_FILES_LISTED 64

const char *findings_on_tracked_write(struct findings *f, const struct finding_proc *p,
				      uint32_t kdev, uint64_t ino, uint64_t seq)
{
	return srcmod_on_write(&f->srcmod, kdev, ino, p->pid, p->exe, seq);
}

static const char *change_name(enum srcmod_change_kind k)
{
	switch (k) {
	case SRCMOD_MODIFIED:
		return "modified";
	case SRCMOD_REPLACED:
		return "replaced";
	case SRCMOD_DELETED:
		return "deleted";
	default:
		return "unverified";
	}
}

/* One finding per severity class: the files, how each changed, who wrote it. */
struct source_group {
	enum finding_severity sev;
	struct strbuf files; /* JSON array members */
	struct strbuf names; /* for the description */
	size_t n;
	const struct srcmod_writer *first_writer;
	uint64_t ev[FINDING_EVIDENCE_MAX * 2];
	size_t n_ev;
};

static void group_add(struct source_group *g, const struct srcmod_change *c)
{
	const struct srcmod_file *fl = c->file;

	if (!g->first_writer && fl->n_w)
		g->first_writer = &fl->w[0];
	for (int i = 0; i < fl->n_w && g->n_ev < sizeof(g->ev) / sizeof(g->ev[0]); i++)
		g->ev[g->n_ev++] = fl->w[i].seq;
	if (g->n < 3) {
		sb_addstr(&g->names, g->n ? ", " : "");
		sb_addstr(&g->names, fl->path);
		sb_addf(&g->names, " (%s", change_name(c->kind));
		if (fl->n_w)
			sb_addf(&g->names, " by pid %d %s", (int)fl->w[0].pid,
				fl->w[0].exe ? fl->w[0].exe : "?");
		sb_addch(&g->names, ')');
	}
	if (g->n++ >= SOURCE_FILES_LISTED)
		return;
	if (g->files.len)
		sb_addch(&g->files, ',');
	sb_addstr(&g->files, "{\"path\":");
	json_cstr(&g->files, fl->path);
	sb_addf(&g->files, ",\"change\":\"%s\"", change_name(c->kind));
	if (c->why) {
		sb_addstr(&g->files, ",\"not_compared\":");
		json_cstr(&g->files, c->why);
	}
	sb_addstr(&g->files, ",\"writers\":[");
	for (int i = 0; i < fl->n_w; i++) {
		sb_addf(&g->files, "%s{\"pid\":%d,\"exe\":", i ? "," : "", (int)fl->w[i].pid);
		json_cstr(&g->files, fl->w[i].exe);
		sb_addf(&g->files, ",\"seq\":%llu}", (unsigned long long)fl->w[i].seq);
	}
	sb_addch(&g->files, ']');
	if (fl->w_unlisted)
		sb_addf(&g->files, ",\"writers_unlisted\":%u", fl->w_unlisted);
	if (!fl->n_w)
		/* renamed over, truncate(2), a write through a descriptor opened before the job,
		 * mmap of a descriptor opened before, or a file past the kernel's map */
		sb_addstr(&g->files, ",\"writer\":\"unknown: changed without an open for write "
				     "we saw\"");
	sb_addch(&g->files, '}');
}

static void group_raise(struct findings *f, struct source_group *g)
{
	struct strbuf d = STRBUF_INIT;
	struct finding_proc p = {0};
	struct finding *x;
	char key[64];

	if (!g->n)
		return;
	if (g->first_writer) {
		p.pid = g->first_writer->pid;
		p.exe = g->first_writer->exe;
	}
	snprintf(key, sizeof(key), "source_modified:%d", (int)g->sev);
	x = finding_raise(f, key, FK_SOURCE_MODIFIED, g->sev, g->first_writer ? &p : NULL);
	if (x) {
		finding_set_desc(x, "%zu tracked file%s of the checkout changed%s: %s%s", g->n,
				 g->n == 1 ? "" : "s",
				 g->sev == SEV_LOW ? " (lockfiles a build rewrites)" : "",
				 g->names.buf ? g->names.buf : "", g->n > 3 ? ", ..." : "");
		sb_addstr(&d, "\"files\":[");
		sb_addstr(&d, g->files.buf ? g->files.buf : "");
		sb_addf(&d, "],\"files_unlisted\":%zu,\"workdir\":",
			g->n > SOURCE_FILES_LISTED ? g->n - SOURCE_FILES_LISTED : 0);
		json_cstr(&d, f->srcmod.workdir);
		finding_set_details(x, d.buf);
		for (size_t i = 0; i < g->n_ev; i++)
			finding_evidence(x, g->ev[i]);
		finding_act(f, x);
	}
	sb_release(&d);
}

void findings_srcmod_finish(struct findings *f)
{
	struct srcmod_change *c = NULL;
	size_t n = srcmod_compare(&f->srcmod, &c);
	struct source_group g[2] = {{.sev = SEV_HIGH}, {.sev = SEV_LOW}};

	for (size_t i = 0; i < n; i++)
		group_add(&g[srcmod_expected_rewrite(c[i].file->path) ? 1 : 0], &c[i]);
	for (int i = 0; i < 2; i++) {
		group_raise(f, &g[i]);
		sb_release(&g[i].files);
		sb_release(&g[i].names);
	}
	free(c);
}
