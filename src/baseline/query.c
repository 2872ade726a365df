/* Reading the baseline store: show, export, and the runs learn merges (see store.h). */
#include "baseline/store.h"

#include <stdlib.h>
#include <string.h>

#include "common/jsonw.h"
#include "common/strbuf.h"

/* The key filter as parameters $1..$4; a NULL member matches anything. */
#define KEY_FILTER                                                                                 \
	"(CAST($1 AS TEXT) IS NULL OR r.repo = $1) AND (CAST($2 AS TEXT) IS NULL OR"               \
	" r.workflow = $2) AND (CAST($3 AS TEXT) IS NULL OR r.job = $3)"

static void filter_params(const struct bl_filter *f, const char *p[4])
{
	p[0] = f->repo;
	p[1] = f->workflow;
	p[2] = f->job;
	p[3] = f->step;
}

/* Names come from jobs: quoted and escaped, so none can fake a line of this output. */
static void put_q(FILE *out, const char *s)
{
	struct strbuf sb = STRBUF_INIT;

	json_cstr(&sb, s);
	fputs(sb.buf, out);
	sb_release(&sb);
}

struct show_ctx {
	FILE *out;
	struct strbuf key, step;
	struct strmap steps; /* "repo\x1fworkflow\x1fjob\x1fstep" → runs with the step */
	size_t rows;
};

static int show_key_row(void *vctx, int ncol, const char *const *v)
{
	struct show_ctx *c = vctx;

	(void)ncol;
	put_q(c->out, v[0]);
	fputc(' ', c->out);
	put_q(c->out, v[1]);
	fputc(' ', c->out);
	put_q(c->out, v[2]);
	fprintf(c->out, ": %s runs, added %s .. %s\n", v[3], v[4], v[5]);
	c->rows++;
	return 0;
}

static int step_count_row(void *vctx, int ncol, const char *const *v)
{
	struct show_ctx *c = vctx;
	struct strbuf k = STRBUF_INIT;

	(void)ncol;
	sb_addf(&k, "%s\x1f%s\x1f%s\x1f%s", v[0], v[1], v[2], v[3]);
	strmap_put(&c->steps, k.buf, NULL)->val = (void *)(intptr_t)strtoll(v[4], NULL, 10);
	sb_release(&k);
	return 0;
}

static int show_item_row(void *vctx, int ncol, const char *const *v)
{
	struct show_ctx *c = vctx;
	struct strbuf k = STRBUF_INIT;
	struct strmap_entry *e;

	(void)ncol;
	sb_addf(&k, "%s\x1f%s\x1f%s", v[0], v[1], v[2]);
	if (!c->key.len || strcmp(c->key.buf, k.buf)) {
		sb_reset(&c->key);
		sb_addstr(&c->key, k.buf);
		sb_reset(&c->step);
		put_q(c->out, v[0]);
		fputc(' ', c->out);
		put_q(c->out, v[1]);
		fputc(' ', c->out);
		put_q(c->out, v[2]);
		fputs(":\n", c->out);
	}
	if (!c->step.len || strcmp(c->step.buf + 1, v[3])) {
		sb_reset(&c->step);
		sb_addch(&c->step, '=');
		sb_addstr(&c->step, v[3]);
		sb_addf(&k, "\x1f%s", v[3]);
		e = strmap_get(&c->steps, k.buf);
		fputs("  step ", c->out);
		put_q(c->out, v[3]);
		fprintf(c->out, " (%lld runs)\n", e ? (long long)(intptr_t)e->val : 0LL);
	}
	sb_release(&k);
	fprintf(c->out, "    %-11s ", v[4]);
	put_q(c->out, v[5]);
	fprintf(c->out, " in %s runs, first added %s, last %s\n", v[6], v[7], v[8]);
	c->rows++;
	return 0;
}

int bl_store_show(struct bl_store *s, const struct bl_filter *f, FILE *out, char *err,
		  size_t errlen)
{
	struct show_ctx c = {.out = out, .key = STRBUF_INIT, .step = STRBUF_INIT};
	const char *p[4];
	int rc;

	filter_params(f, p);
	strmap_init(&c.steps);
	if (!f->job) {
		rc = bl_db_exec(
		    s->db,
		    "SELECT r.repo, r.workflow, r.job, count(*), min(r.added_at),"
		    " max(r.added_at) FROM baseline_runs r WHERE " KEY_FILTER
		    " GROUP BY r.repo, r.workflow, r.job ORDER BY r.repo, r.workflow, r.job",
		    3, p, show_key_row, &c);
	} else {
		rc = bl_db_exec(
		    s->db,
		    "SELECT r.repo, r.workflow, r.job, s.step, count(*) FROM"
		    " baseline_steps s JOIN baseline_runs r ON r.id = s.run_id WHERE " KEY_FILTER
		    " GROUP BY r.repo, r.workflow, r.job, s.step",
		    3, p, step_count_row, &c);
		/* The subject a reader knows: "tcp host:443" for destinations, else the name. */
		if (!rc)
			rc = bl_db_exec(
			    s->db,
			    "SELECT r.repo, r.workflow, r.job, i.step, i.kind,"
			    " CASE WHEN i.kind IN ('destination', 'finding') THEN i.ikey ELSE "
			    "i.name END,"
			    " count(DISTINCT i.run_id), min(r.added_at), max(r.added_at)"
			    " FROM baseline_items i JOIN baseline_runs r ON r.id = i.run_id"
			    " WHERE " KEY_FILTER " AND (CAST($4 AS TEXT) IS NULL OR i.step = $4)"
			    " GROUP BY r.repo, r.workflow, r.job, i.step, i.kind,"
			    " CASE WHEN i.kind IN ('destination', 'finding') THEN i.ikey ELSE "
			    "i.name END"
			    " ORDER BY r.repo, r.workflow, r.job, i.step, i.kind, 6",
			    4, p, show_item_row, &c);
	}
	if (!rc && !c.rows)
		fputs("no runs recorded for this selection\n", out);
	strmap_clear(&c.steps, NULL);
	sb_release(&c.key);
	sb_release(&c.step);
	if (rc) {
		snprintf(err, errlen, "baseline %s: reading: %s", s->db->where, s->db->err);
		return -1;
	}
	return 0;
}

/* ---- export and learn: runs, then each run's rows ---- */

static const char *const run_cols[] = {
    "id",     "repo", "workflow",   "job",	   "uid",      "run_step", "ci_run_id",
    "commit", "mode", "started_at", "finished_at", "added_at", "complete", "items_left_out"};
#define N_RUN_COLS (sizeof(run_cols) / sizeof(run_cols[0]))

static int run_row(void *ctx, int ncol, const char *const *v)
{
	json_t *o = json_object();

	for (int i = 0; i < ncol && i < (int)N_RUN_COLS; i++) {
		json_t *x;

		if (!v[i])
			x = json_null();
		else if (!strcmp(run_cols[i], "id") || !strcmp(run_cols[i], "items_left_out"))
			x = json_integer(strtoll(v[i], NULL, 10));
		else if (!strcmp(run_cols[i], "complete"))
			x = json_boolean(v[i][0] == '1');
		else
			x = json_string(v[i]);
		json_object_set_new(o, run_cols[i], x);
	}
	json_array_append_new(ctx, o);
	return 0;
}

/* The matching runs' rows, oldest first; at most last newest when last > 0. */
static int list_runs(struct bl_store *s, const struct bl_filter *f, uint64_t last, json_t *runs)
{
	char lim[24];
	const char *p[5];

	filter_params(f, p);
	snprintf(lim, sizeof(lim), "%llu", (unsigned long long)(last ? last : INT64_MAX));
	p[3] = lim;
	return bl_db_exec(
	    s->db,
	    "SELECT * FROM (SELECT r.id, r.repo, r.workflow, r.job, r.uid, r.run_step,"
	    " r.ci_run_id, r.commit_sha, r.mode, r.started_at, r.finished_at,"
	    " r.added_at, r.complete, r.items_left_out FROM baseline_runs r WHERE " KEY_FILTER
	    " ORDER BY r.id DESC LIMIT CAST($4 AS BIGINT)) t ORDER BY id",
	    4, p, run_row, runs);
}

static int item_row(void *ctx, int ncol, const char *const *v)
{
	json_t *detail = v[4] ? json_loads(v[4], 0, NULL) : NULL;

	(void)ncol;
	json_array_append_new(ctx, json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:b, s:s?}", "step",
					     v[0], "kind", v[1], "key", v[2], "name", v[3],
					     "detail", detail ? detail : json_object(), "count",
					     (json_int_t)strtoll(v[5], NULL, 10), "first_seen",
					     v[6] && v[6][0] == '1', "severity", v[7]));
	return 0;
}

static int step_row(void *ctx, int ncol, const char *const *v)
{
	(void)ncol;
	json_array_append_new(ctx, json_string(v[0]));
	return 0;
}

static int run_rows(struct bl_store *s, json_t *run, const char *kinds_sql)
{
	char id[24], sql[512];
	const char *p[] = {id};
	json_t *items = json_array(), *steps = json_array();
	int rc;

	snprintf(id, sizeof(id), "%lld", (long long)json_integer_value(json_object_get(run, "id")));
	snprintf(sql, sizeof(sql),
		 "SELECT step, kind, ikey, name, detail, count, first_seen, severity FROM"
		 " baseline_items WHERE run_id = CAST($1 AS BIGINT)%s ORDER BY step, kind, ikey",
		 kinds_sql);
	rc = bl_db_exec(s->db,
			"SELECT step FROM baseline_steps WHERE run_id = CAST($1 AS BIGINT)"
			" ORDER BY step",
			1, p, step_row, steps);
	if (!rc)
		rc = bl_db_exec(s->db, sql, 1, p, item_row, items);
	json_object_set_new(run, "steps", steps);
	json_object_set_new(run, "items", items);
	return rc;
}

int bl_store_export(struct bl_store *s, const struct bl_filter *f, FILE *out, char *err,
		    size_t errlen)
{
	json_t *runs = json_array(), *run;
	size_t i;
	int rc;

	rc = list_runs(s, f, 0, runs);
	fprintf(out, "{\"schema_version\":%d,\"runs\":[", BL_SCHEMA_VERSION);
	/* One run at a time: a long history is never held whole. */
	json_array_foreach(runs, i, run)
	{
		if (rc || (rc = run_rows(s, run, "")))
			break;
		if (i)
			fputc(',', out);
		json_dumpf(run, out, JSON_COMPACT);
		json_object_clear(run);
	}
	fputs("]}\n", out);
	json_decref(runs);
	if (rc) {
		snprintf(err, errlen, "baseline %s: reading: %s", s->db->where, s->db->err);
		return -1;
	}
	if (fflush(out) || ferror(out)) {
		snprintf(err, errlen, "baseline export: write error");
		return -1;
	}
	return 0;
}

static json_t *str_or_first(const json_t *detail, const char *member, const char *dflt)
{
	const json_t *a = json_object_get(detail, member);

	if (json_array_size(a))
		return json_incref((json_t *)a);
	return json_pack("[s]", dflt);
}

/* Turns stored items back into the connect and dns events learn reads. */
static json_t *as_events(const json_t *items, const char *only_step)
{
	json_t *evs = json_array(), *it;
	size_t i;

	json_array_foreach(items, i, it)
	{
		const char *kind = json_string_value(json_object_get(it, "kind"));
		const char *step = json_string_value(json_object_get(it, "step"));
		json_t *d = json_object_get(it, "detail"), *verdicts, *v;
		size_t j;

		if (only_step && strcmp(only_step, step))
			continue;
		verdicts = str_or_first(d, "verdicts", "allow");
		json_array_foreach(verdicts, j, v)
		{
			json_t *ev = NULL;

			if (!strcmp(kind, "destination")) {
				ev = json_deep_copy(d);
				json_object_del(ev, "verdicts");
				json_object_set_new(ev, "kind", json_string("connect"));
				json_object_set(ev, "verdict", v);
				if (!json_object_get(ev, "host"))
					json_object_set_new(ev, "host", json_null());
			} else if (!strcmp(kind, "dns")) {
				json_t *qt = str_or_first(d, "qtypes", "A"), *q;
				size_t k;

				json_array_foreach(qt, k, q)
				{
					json_t *e = json_pack("{s:s, s:O, s:O, s:O}", "kind", "dns",
							      "query", json_object_get(it, "name"),
							      "qtype", q, "verdict", v);

					if (step && *step)
						json_object_set_new(e, "step", json_string(step));
					json_array_append_new(evs, e);
				}
				json_decref(qt);
			}
			if (ev) {
				if (step && *step)
					json_object_set_new(ev, "step", json_string(step));
				json_array_append_new(evs, ev);
			}
		}
		json_decref(verdicts);
	}
	return evs;
}

int bl_store_learn(struct bl_store *s, const struct bl_filter *f, uint64_t last, bl_learn_fn fn,
		   void *ctx, char *err, size_t errlen)
{
	json_t *runs = json_array(), *run;
	size_t i;
	int rc = list_runs(s, f, last, runs);

	if (!rc && !json_array_size(runs)) {
		snprintf(err, errlen, "baseline %s: no runs recorded for this selection",
			 s->db->where);
		json_decref(runs);
		return -1;
	}
	json_array_foreach(runs, i, run)
	{
		struct strbuf label = STRBUF_INIT;
		json_t *evs;

		if (rc || (rc = run_rows(s, run, " AND kind IN ('destination', 'dns')")))
			break;
		evs = as_events(json_object_get(run, "items"), f->step);
		sb_addf(&label, "baseline run %lld",
			(long long)json_integer_value(json_object_get(run, "id")));
		rc = fn(ctx, label.buf, json_string_value(json_object_get(run, "run_step")), evs);
		sb_release(&label);
		json_decref(evs);
		json_object_clear(run);
		if (rc) {
			json_decref(runs);
			return -1; /* fn said why */
		}
	}
	json_decref(runs);
	if (rc) {
		snprintf(err, errlen, "baseline %s: reading: %s", s->db->where, s->db->err);
		return -1;
	}
	return 0;
}
