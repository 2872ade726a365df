/* The findings engine: raising, bounding, acting on and rendering findings (see findings.h). */
#include "findings/findings.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonw.h"

/* Keys of findings raised past FINDINGS_MAX remembered, so each is counted once. */
#define UNLISTED_KEYS_MAX 4096
#include "common/xalloc.h"

static const char *const kind_names[FK_COUNT] = {
#define FK_NAME_(e, name) [FK_##e] = name,
    FINDING_KINDS(FK_NAME_)
#undef FK_NAME_
};

static const char *const sev_names[SEV_COUNT] = {
#define SEV_NAME_(e, name) [SEV_##e] = name,
    FINDING_SEVERITIES(SEV_NAME_)
#undef SEV_NAME_
};

const char *finding_kind_name(int kind)
{
	return kind >= 0 && kind < FK_COUNT ? kind_names[kind] : "unknown";
}

const char *finding_severity_name(int sev)
{
	return sev >= 0 && sev < SEV_COUNT ? sev_names[sev] : "unknown";
}

int finding_severity_parse(const char *s)
{
	for (int i = 0; s && i < SEV_COUNT; i++)
		if (!strcmp(s, sev_names[i]))
			return i;
	return -1;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

void findings_init(struct findings *f, struct proctab *procs)
{
	memset(f, 0, sizeof(*f));
	f->v = xcalloc(FINDINGS_MAX, sizeof(*f->v));
	f->procs = procs;
	f->lockdown = -1;
	strmap_init(&f->keys);
	strmap_init(&f->unlisted_keys);
	strmap_init(&f->cred);
	strmap_init(&f->dns_parents);
	strmap_init(&f->dns_names);
	strmap_init(&f->outlived);
	strmap_init(&f->filecmds);
	strmap_init(&f->filecmd_files);
	strmap_init(&f->last_connect);
	srcmod_init(&f->srcmod);
}

static void finding_release(struct finding *x)
{
	free(x->exe);
	free(x->argv_json);
	free(x->step);
	free(x->desc);
	free(x->details);
}

void findings_free(struct findings *f)
{
	for (size_t i = 0; f->v && i < f->n; i++)
		finding_release(&f->v[i]);
	free(f->v);
	strmap_clear(&f->keys, NULL);
	strmap_clear(&f->unlisted_keys, NULL);
	strmap_clear(&f->cred, free);
	strmap_clear(&f->dns_parents, free);
	strmap_clear(&f->dns_names, NULL);
	strmap_clear(&f->outlived, free);
	findings_filecmd_free(f);
	strmap_clear(&f->last_connect, free);
	srcmod_free(&f->srcmod);
	free(f->lockdown_reason);
	memset(f, 0, sizeof(*f));
	srcmod_init(&f->srcmod);
	f->lockdown = -1;
}

struct finding *finding_get(struct findings *f, const char *key)
{
	struct strmap_entry *e = key ? strmap_get(&f->keys, key) : NULL;

	return e ? &f->v[(uintptr_t)e->val - 1] : NULL;
}

/* A new finding, or NULL when FINDINGS_MAX are listed already (then it is counted, and
 * still acted on: a lockdown must not depend on how many findings came first). */
struct finding *finding_raise(struct findings *f, const char *key, enum finding_kind kind,
			      enum finding_severity sev, const struct finding_proc *p)
{
	struct finding *x;

	if (f->n >= FINDINGS_MAX) {
		/* Counted once per finding (its key), not once per line that would raise it. */
		if (key && strmap_get(&f->unlisted_keys, key))
			return NULL;
		if (key && f->unlisted_keys.count < UNLISTED_KEYS_MAX)
			strmap_put(&f->unlisted_keys, key, NULL);
		else if (key)
			f->state_dropped++;
		f->by_sev[sev]++;
		f->unlisted++;
		if (f->act[sev] == FINDING_ACT_KILL && !f->lockdown_reason) {
			struct strbuf sb = STRBUF_INIT;
			struct finding tmp = {.kind = kind, .sev = sev, .pid = p ? p->pid : 0};

			sb_addf(&sb, "%s finding %s of pid %d (past the %d findings listed)",
				sev_names[sev], kind_names[kind], (int)tmp.pid, FINDINGS_MAX);
			f->lockdown_reason = sb_detach(&sb);
			if (f->on_raise)
				f->on_raise(f->on_raise_ctx, &tmp);
		}
		return NULL;
	}
	f->by_sev[sev]++;
	x = &f->v[f->n++];
	memset(x, 0, sizeof(*x));
	x->kind = kind;
	x->sev = sev;
	if (p) {
		x->pid = p->pid;
		x->exe = dup_or_null(p->exe);
		if (p->argv_json && strlen(p->argv_json) <= FINDING_ARGV_MAX)
			x->argv_json = dup_or_null(p->argv_json);
		else
			x->argv_cut = p->argv_json != NULL;
		x->step = dup_or_null(p->step);
	}
	if (key)
		strmap_put(&f->keys, key, NULL)->val = (void *)(uintptr_t)f->n;
	return x;
}

void finding_evidence(struct finding *x, uint64_t seq)
{
	uint32_t i;

	if (!x || !seq)
		return;
	for (i = 0; i < x->n_ev; i++)
		if (x->ev[i] == seq)
			return;
	if (x->n_ev == FINDING_EVIDENCE_MAX) {
		x->ev_unlisted++;
		return;
	}
	/* kept in log order: a reviewer reads them front to back */
	for (i = x->n_ev; i > 0 && x->ev[i - 1] > seq; i--)
		x->ev[i] = x->ev[i - 1];
	x->ev[i] = seq;
	x->n_ev++;
}

void finding_set_desc(struct finding *x, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	/* One line, whatever a name or path in it holds. */
	for (size_t i = 0; i < sb.len; i++)
		if ((unsigned char)sb.buf[i] < 0x20 || sb.buf[i] == 0x7f)
			sb.buf[i] = ' ';
	free(x->desc);
	x->desc = sb_detach(&sb);
}

void finding_set_details(struct finding *x, const char *json_members)
{
	free(x->details);
	x->details = dup_or_null(json_members);
}

void finding_act(struct findings *f, struct finding *x)
{
	if (!x || x->acted || f->act[x->sev] != FINDING_ACT_KILL)
		return;
	x->acted = true;
	if (!f->lockdown_reason) {
		struct strbuf sb = STRBUF_INIT;

		f->lockdown = (int)(x - f->v);
		sb_addf(&sb, "%s finding %s: %s", sev_names[x->sev], kind_names[x->kind],
			x->desc ? x->desc : "");
		f->lockdown_reason = sb_detach(&sb);
	}
	if (f->on_raise)
		f->on_raise(f->on_raise_ctx, x);
}

void finding_upgrade(struct findings *f, struct finding *x, enum finding_kind kind,
		     enum finding_severity sev)
{
	if (!x || sev < x->sev)
		return;
	if (sev > x->sev) {
		f->by_sev[x->sev]--;
		f->by_sev[sev]++;
		x->acted = false;
	}
	x->kind = kind;
	x->sev = sev;
}

/* ------------------------------------------------------------ rendering */

static void finding_json(const struct finding *x, struct strbuf *sb)
{
	sb_addf(sb, "{\"kind\":\"%s\",\"severity\":\"%s\",\"pid\":", kind_names[x->kind],
		sev_names[x->sev]);
	if (x->pid)
		sb_addf(sb, "%d", (int)x->pid);
	else
		sb_addstr(sb, "null");
	sb_addstr(sb, ",\"exe\":");
	json_cstr(sb, x->exe);
	sb_addf(sb, ",\"argv\":%s", x->argv_json ? x->argv_json : "null");
	if (x->argv_cut)
		sb_addstr(sb, ",\"argv_cut\":true");
	sb_addstr(sb, ",\"step\":");
	json_cstr(sb, x->step);
	sb_addstr(sb, ",\"description\":");
	json_cstr(sb, x->desc ? x->desc : "");
	sb_addstr(sb, ",\"evidence\":[");
	for (uint32_t i = 0; i < x->n_ev; i++)
		sb_addf(sb, "%s%llu", i ? "," : "", (unsigned long long)x->ev[i]);
	sb_addf(sb, "],\"evidence_unlisted\":%llu", (unsigned long long)x->ev_unlisted);
	if (x->details && x->details[0])
		sb_addf(sb, ",%s", x->details);
	sb_addch(sb, '}');
}

/* Highest severity first; equal severities in the order they were raised. */
static size_t sorted(const struct findings *f, size_t *idx)
{
	size_t n = 0;

	for (int s = SEV_COUNT - 1; s >= 0; s--)
		for (size_t i = 0; i < f->n; i++)
			if ((int)f->v[i].sev == s)
				idx[n++] = i;
	return n;
}

void findings_json(const struct findings *f, struct strbuf *sb)
{
	size_t idx[FINDINGS_MAX], n = sorted(f, idx);

	sb_addstr(sb, "\"findings\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_addch(sb, ',');
		finding_json(&f->v[idx[i]], sb);
	}
	sb_addf(sb, "],\"findings_unlisted\":%llu,\"findings_by_severity\":{",
		(unsigned long long)f->unlisted);
	for (int s = 0; s < SEV_COUNT; s++)
		sb_addf(sb, "%s\"%s\":%llu", s ? "," : "", sev_names[s],
			(unsigned long long)f->by_sev[s]);
	sb_addf(sb, "},\"findings_state_dropped\":%llu,", (unsigned long long)f->state_dropped);
	srcmod_json(&f->srcmod, sb);
}

/* A label the job chose, without anything that could move a terminal's cursor. */
static void put_clean(FILE *out, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

void findings_print(const struct findings *f, FILE *out, int max)
{
	size_t idx[FINDINGS_MAX], n = sorted(f, idx);
	uint64_t total = f->n + f->unlisted;

	if (!total)
		return;
	fprintf(out, "  FINDINGS (%llu):\n", (unsigned long long)total);
	for (size_t i = 0; i < n && (int)i < max; i++) {
		const struct finding *x = &f->v[idx[i]];

		fprintf(out, "    %-8s %s: %s", sev_names[x->sev], kind_names[x->kind],
			x->desc ? x->desc : "");
		if (x->step) {
			fputs(" [step ", out);
			put_clean(out, x->step);
			fputc(']', out);
		}
		if (x->n_ev)
			fprintf(out, " (evidence: seq %llu%s)", (unsigned long long)x->ev[0],
				x->n_ev + x->ev_unlisted > 1 ? ", ..." : "");
		fputc('\n', out);
	}
	if (total > (uint64_t)max && n > (size_t)max)
		fprintf(out, "    ... %llu more in summary.json\n",
			(unsigned long long)(total - (uint64_t)max));
	else if (f->unlisted)
		fprintf(out, "    ... %llu more not listed\n", (unsigned long long)f->unlisted);
}
