/* The baseline around one job (see baseline.h). */
#include "baseline/baseline.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ci/detect.h"
#include "common/jsonw.h"
#include "common/util.h"
#include "common/xalloc.h"

static char *dup_or_null(const char *s)
{
	char *d = NULL;

	bl_set(&d, s && *s ? s : NULL);
	return d;
}

/* The key every run of this job is kept under: flags first, then the CI context. The context
 * is the job's environment, which an earlier step of the same job could have set; a fleet
 * that cares passes --repo and --job from its own pipeline definition (docs/baseline.md). */
int baseline_job_open(struct baseline_job *b, const struct baseline_opts *o, char *const *envp)
{
	json_t *ci = ci_detect(envp, "/");
	char err[BL_ERRLEN + 256];

	memset(b, 0, sizeof(*b));
	b->repo =
	    dup_or_null(o->repo ? o->repo : json_string_value(json_object_get(ci, "repository")));
	b->workflow = dup_or_null(o->workflow ? o->workflow : bl_ci_workflow(ci));
	b->job = dup_or_null(o->job ? o->job : json_string_value(json_object_get(ci, "job")));
	json_decref(ci);
	if (!b->repo || !b->job) {
		rw_err("--baseline: no %s known (not in CI, or the platform does not say); give "
		       "--repo and --job",
		       !b->repo ? "repository" : "job");
		baseline_job_close(b);
		return -1;
	}
	b->spec = dup_or_null(o->spec);
	b->min_runs = o->min_runs;
	b->store.min_runs = o->min_runs;
	if (bl_store_open(&b->store, o->spec, err, sizeof(err))) {
		rw_err("%s", err);
		baseline_job_close(b);
		return -1;
	}
	b->min_runs = b->store.min_runs;
	b->where = xstrdup(b->store.db->where);
	bl_store_close(&b->store);
	return 0;
}

void baseline_job_close(struct baseline_job *b)
{
	bl_store_close(&b->store);
	free(b->repo);
	free(b->workflow);
	free(b->job);
	free(b->report);
	free(b->spec);
	free(b->where);
	memset(b, 0, sizeof(*b));
}

static void rfc3339(char **field, int64_t ns)
{
	struct strbuf sb = STRBUF_INIT;

	fmt_rfc3339(&sb, ns);
	bl_set(field, sb.buf);
	sb_release(&sb);
}

static void severity_counts(const struct bl_run *r, size_t *info, size_t *medium)
{
	*info = *medium = 0;
	strmap_for_each(e, &r->items)
	{
		const struct bl_item *it = e->val;

		if (it->first_seen && !strcmp(it->severity, "medium"))
			(*medium)++;
		else if (it->first_seen)
			(*info)++;
	}
}

void baseline_print_first_seen(const struct bl_run *r, FILE *f, size_t max)
{
	size_t shown = 0, info, medium;

	severity_counts(r, &info, &medium);
	if (!info && !medium)
		return;
	/* Medium first: those are what a reader is looking for. */
	for (int pass = 0; pass < 2; pass++) {
		strmap_for_each(e, &r->items)
		{
			const struct bl_item *it = e->val;
			struct strbuf sb = STRBUF_INIT;

			if (!it->first_seen || (!strcmp(it->severity, "medium")) != (pass == 0))
				continue;
			if (shown++ >= max)
				continue;
			json_cstr(&sb, it->kind == BL_DEST ? it->ikey : it->name);
			if (*it->step) {
				sb_addstr(&sb, " in step ");
				json_cstr(&sb, it->step);
			}
			fprintf(f, "    first seen (%s): %s %s%s\n", it->severity,
				bl_kind_names[it->kind], sb.buf,
				it->name_known ? " (known path, new content)" : "");
			sb_release(&sb);
		}
	}
	if (shown > max)
		fprintf(f, "    ... %zu more first-seen results\n", shown - max);
}

static void key_json(struct strbuf *sb, const struct bl_run *r)
{
	sb_addstr(sb, "\"key\":{\"repository\":");
	json_cstr(sb, r->repo);
	sb_addstr(sb, ",\"workflow\":");
	json_cstr(sb, r->workflow ? r->workflow : "");
	sb_addstr(sb, ",\"job\":");
	json_cstr(sb, r->job);
	sb_addch(sb, '}');
}

int baseline_job_record(struct baseline_job *b, const struct baseline_run_info *ri,
			struct strbuf *member)
{
	struct bl_run r;
	char err[BL_ERRLEN + 256];
	struct strbuf name = STRBUF_INIT;
	int rc = -1;

	bl_run_init(&r);
	bl_set(&r.repo, b->repo);
	bl_set(&r.workflow, b->workflow);
	bl_set(&r.job, b->job);
	bl_run_ci(&r, ri->ci_json);
	bl_set(&r.uid, ri->log_root);
	bl_set(&r.run_step, ri->step);
	bl_set(&r.mode, ri->mode);
	rfc3339(&r.started_at, ri->started_ns);
	rfc3339(&r.finished_at, ri->finished_ns);
	r.complete = ri->complete;
	if (ri->findings_json) {
		json_t *fs = json_loads(ri->findings_json, 0, NULL);

		bl_run_findings(&r, fs);
		json_decref(fs);
	}
	sb_addf(&name, "%s/events.ndjson", ri->dir_name);
	if (!bl_run_read_log(&r, ri->dirfd, name.buf, err, sizeof(err))) {
		b->store.min_runs = b->min_runs;
		if (!bl_store_open(&b->store, b->spec, err, sizeof(err))) {
			rc = bl_store_add(&b->store, &r, err, sizeof(err));
			b->min_runs = b->store.min_runs;
			bl_store_close(&b->store);
		}
	}
	sb_addstr(member, ",\"baseline\":{\"store\":");
	json_cstr(member, b->where);
	sb_addch(member, ',');
	key_json(member, &r);
	if (rc) {
		rw_err("%s", err);
		sb_addstr(member, ",\"error\":");
		json_cstr(member, err);
	} else {
		size_t more, info, medium;
		json_t *fs = bl_run_first_seen(&r, BL_SUMMARY_MAX_FIRST_SEEN, &more);
		char *text = json_dumps(fs, JSON_COMPACT);

		severity_counts(&r, &info, &medium);
		strmap_for_each(e, &r.items)
		{
			const struct bl_item *it = e->val;

			if (it->first_seen && ri->on_first_seen)
				ri->on_first_seen(ri->ctx, it);
		}
		sb_addf(member,
			",\"run_id\":%lld,\"min_runs\":%d,\"items_left_out\":%llu,"
			"\"first_seen_counts\":{\"info\":%zu,\"medium\":%zu},"
			"\"first_seen_unlisted\":%zu,\"first_seen\":%s",
			(long long)r.id, b->min_runs, (unsigned long long)r.left_out, info, medium,
			more, text);
		free(text);
		json_decref(fs);
		if (info || medium) {
			size_t len;
			FILE *tty = open_memstream(&b->report, &len);

			if (!tty)
				xalloc_die(BUFSIZ);
			/* the items themselves lead the summary, as findings */
			fprintf(tty,
				"  baseline: %zu first seen (%zu medium) against %s; listed in "
				"summary.json\n",
				info + medium, medium, b->where);
			fclose(tty);
		}
	}
	sb_addch(member, '}');
	sb_release(&name);
	bl_run_free(&r);
	return rc;
}
