/*
 * A finished run as the baseline keeps it (see store.h): its key and labels from
 * summary.json's "ci" object (or explicit flags), its items from events.ndjson. The log is
 * the job's doing, so every field is bounded and nothing in it is trusted to be well formed.
 */
#include "baseline/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/jsonw.h"
#include "common/strbuf.h"
#include "common/util.h"
#include "common/xalloc.h"
#include "evidence/evread.h"

/* Longest event line read; a longer one is an error, as in learn. */
#define BL_MAX_LINE (1u << 20)
/* Largest summary.json read. */
#define BL_MAX_SUMMARY (64u << 20)

const char *const bl_kind_names[BL_KIND_COUNT] = {[BL_DEST] = "destination",
						  [BL_DNS] = "dns",
						  [BL_PARENT] = "dns_parent",
						  [BL_EXE] = "exe",
						  [BL_FINDING] = "finding"};

void bl_run_init(struct bl_run *r)
{
	memset(r, 0, sizeof(*r));
	strmap_init(&r->items);
	strmap_init(&r->steps);
	r->id = -1;
}

static void item_free(void *p)
{
	struct bl_item *it = p;

	if (!it)
		return;
	free(it->step);
	free(it->ikey);
	free(it->name);
	free(it->exe);
	json_decref(it->detail);
	free(it);
}

void bl_run_free(struct bl_run *r)
{
	char **fields[] = {&r->repo,	  &r->workflow, &r->job,  &r->uid,	  &r->run_step,
			   &r->ci_run_id, &r->commit,	&r->mode, &r->started_at, &r->finished_at};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		free(*fields[i]);
	strmap_clear(&r->items, item_free);
	strmap_clear(&r->steps, NULL);
	memset(r, 0, sizeof(*r));
}

/* Cut at a UTF-8 character boundary, so a stored field is still valid text. */
static size_t cut_len(const char *v, size_t max)
{
	size_t n = strlen(v);

	if (n <= max)
		return n;
	n = max;
	while (n && ((unsigned char)v[n] & 0xc0) == 0x80)
		n--;
	return n;
}

void bl_set(char **field, const char *v)
{
	free(*field);
	*field = v ? xstrndup(v, cut_len(v, BL_MAX_FIELD)) : NULL;
}

const char *bl_run_keyless(const struct bl_run *r)
{
	if (!r->repo || !*r->repo)
		return "no repository";
	if (!r->job || !*r->job)
		return "no job";
	return NULL;
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Fills the fields not already set (flags win over labels). */
static void set_default(char **field, const char *v)
{
	if (!*field && v && *v)
		bl_set(field, v);
}

const char *bl_ci_workflow(const json_t *ci)
{
	const char *provider = jstr(ci, "provider");

	if (provider && !strcmp(provider, "circleci"))
		return NULL;
	return jstr(ci, "workflow");
}

void bl_run_ci(struct bl_run *r, const char *ci_json)
{
	json_t *ci = ci_json ? json_loads(ci_json, 0, NULL) : NULL;

	if (json_is_object(ci)) {
		set_default(&r->repo, jstr(ci, "repository"));
		set_default(&r->workflow, bl_ci_workflow(ci));
		set_default(&r->job, jstr(ci, "job"));
		set_default(&r->ci_run_id, jstr(ci, "run_id"));
		set_default(&r->commit, jstr(ci, "commit"));
	}
	json_decref(ci);
}

/* The step an item belongs to: the event's label, else the run's, else none (""). */
static const char *step_of(struct bl_run *r, const json_t *ev)
{
	const char *s = jstr(ev, "step");

	if (!s || !*s)
		s = r->run_step ? r->run_step : "";
	return s;
}

/* A step kept, or NULL when the run has too many (its items are left out, and counted). */
static const char *keep_step(struct bl_run *r, const char *step)
{
	char buf[BL_MAX_FIELD + 1];
	struct strmap_entry *e;
	size_t n = cut_len(step, BL_MAX_FIELD);

	memcpy(buf, step, n);
	buf[n] = 0;
	e = strmap_get(&r->steps, buf);
	if (!e) {
		if (r->steps.count >= BL_MAX_STEPS)
			return NULL;
		e = strmap_put(&r->steps, buf, NULL);
	}
	return e->key;
}

/* The first event of an item: its line and process, for the evidence. */
static void note_first(struct bl_item *it, const json_t *ev)
{
	json_t *seq = json_object_get(ev, "seq"), *pid = json_object_get(ev, "pid");
	const char *exe = jstr(ev, "exe");

	if (it->count != 1)
		return;
	it->seq = json_is_integer(seq) && json_integer_value(seq) > 0 ? json_integer_value(seq) : 0;
	it->pid = json_is_integer(pid) ? json_integer_value(pid) : 0;
	bl_set(&it->exe, exe);
}

static struct bl_item *item_get(struct bl_run *r, enum bl_kind kind, const char *step,
				const char *ikey, const char *name)
{
	struct strbuf k = STRBUF_INIT;
	struct strmap_entry *e;
	struct bl_item *it;

	if (!step || strlen(ikey) > BL_MAX_FIELD || strlen(name) > BL_MAX_FIELD) {
		r->left_out++;
		return NULL;
	}
	sb_addf(&k, "%d\x1f%s\x1f%s", kind, step, ikey);
	e = strmap_get(&r->items, k.buf);
	if (!e) {
		if (r->n_kind[kind] >= BL_MAX_ITEMS) {
			sb_release(&k);
			r->left_out++;
			return NULL;
		}
		e = strmap_put(&r->items, k.buf, NULL);
		r->n_kind[kind]++;
		it = xcalloc(1, sizeof(*it));
		it->kind = kind;
		it->step = xstrdup(step);
		it->ikey = xstrdup(ikey);
		it->name = xstrdup(name);
		it->detail = json_object();
		e->val = it;
	}
	sb_release(&k);
	it = e->val;
	it->count++;
	return it;
}

/* Adds v to the detail's array member (a set, bounded: these are a few verdicts or types). */
static void detail_add(struct bl_item *it, const char *member, const char *v)
{
	json_t *a = json_object_get(it->detail, member);
	size_t i;
	json_t *x;

	if (!v)
		return;
	if (!a) {
		a = json_array();
		json_object_set_new(it->detail, member, a);
	}
	json_array_foreach(a, i, x) if (!strcmp(json_string_value(x), v)) return;
	if (json_array_size(a) < 16)
		json_array_append_new(a, json_string(v));
}

static void detail_str(struct bl_item *it, const char *member, const char *v)
{
	if (v && !json_object_get(it->detail, member))
		json_object_set_new(it->detail, member, json_string(v));
}

/* Lower case, no trailing dot: DNS names compare without case. */
static void dns_norm(const char *q, char *out, size_t len)
{
	size_t n = 0;

	for (; *q && n + 1 < len; q++)
		out[n++] = *q >= 'A' && *q <= 'Z' ? *q - 'A' + 'a' : *q;
	while (n && out[n - 1] == '.')
		n--;
	out[n] = 0;
}

/* The name less its first label, when that leaves two labels or more (never "com");
 * else the name itself. The tunnel `<data>.t.evil.test` and its thousand siblings share
 * one parent, t.evil.test, so the parent is what can be first-seen once. */
static const char *dns_parent(const char *name)
{
	const char *dot = strchr(name, '.');

	return dot && strchr(dot + 1, '.') ? dot + 1 : name;
}

static void take_exec(struct bl_run *r, const json_t *ev)
{
	const char *exe = jstr(ev, "exe"), *sha = jstr(ev, "exe_sha256");
	struct strbuf k = STRBUF_INIT;
	struct bl_item *it;

	if (!exe || !*exe)
		return;
	if (sha && strlen(sha) != 64)
		sha = NULL;
	sb_addf(&k, "%s %s", sha ? sha : "-", exe);
	it = item_get(r, BL_EXE, keep_step(r, step_of(r, ev)), k.buf, exe);
	sb_release(&k);
	if (it) {
		note_first(it, ev);
		detail_str(it, "sha256", sha);
	}
}

static void take_connect(struct bl_run *r, const json_t *ev)
{
	const char *proto = jstr(ev, "proto"), *addr = jstr(ev, "daddr"), *host = jstr(ev, "host");
	const char *fam = jstr(ev, "family");
	json_t *dp = json_object_get(ev, "dport");
	json_int_t port = json_is_integer(dp) ? json_integer_value(dp) : 0;
	struct strbuf k = STRBUF_INIT;
	struct bl_item *it;
	bool v6;

	/* The runner's own traffic is allowed in every mode and is not the job's behaviour. */
	if (json_is_true(json_object_get(ev, "runner")) || !proto || !addr)
		return;
	if (port < 0 || port > 65535)
		port = 0;
	if (host && !*host)
		host = NULL;
	v6 = !host && fam && !strcmp(fam, "ipv6");
	/* A named destination is its name: CDN addresses rotate, the name is what was meant. */
	sb_addf(&k, v6 ? "%s [%s]:%lld" : "%s %s:%lld", proto, host ? host : addr, (long long)port);
	it = item_get(r, BL_DEST, keep_step(r, step_of(r, ev)), k.buf, host ? host : addr);
	sb_release(&k);
	if (!it)
		return;
	note_first(it, ev);
	detail_str(it, "proto", proto);
	detail_str(it, "daddr", addr);
	if (!json_object_get(it->detail, "dport"))
		json_object_set_new(it->detail, "dport", json_integer(port));
	detail_str(it, "host", host);
	detail_str(it, "family", fam);
	detail_add(it, "verdicts", jstr(ev, "verdict"));
}

static void take_dns(struct bl_run *r, const json_t *ev)
{
	const char *q = jstr(ev, "query"), *step;
	char name[BL_MAX_FIELD + 1];
	struct bl_item *it;

	if (!q || !*q || strlen(q) > BL_MAX_FIELD) {
		if (q && *q)
			r->left_out++;
		return;
	}
	dns_norm(q, name, sizeof(name));
	if (!*name)
		return;
	step = keep_step(r, step_of(r, ev));
	it = item_get(r, BL_DNS, step, name, name);
	if (it) {
		note_first(it, ev);
		detail_add(it, "qtypes", jstr(ev, "qtype"));
		detail_add(it, "verdicts", jstr(ev, "verdict"));
	}
	it = item_get(r, BL_PARENT, step, dns_parent(name), dns_parent(name));
	if (it && it->count <= 1) {
		note_first(it, ev);
		detail_str(it, "example", name);
	}
}

void bl_run_findings(struct bl_run *r, const json_t *findings)
{
	const json_t *f;
	size_t i;

	json_array_foreach(findings, i, f)
	{
		const char *kind = jstr(f, "kind"), *desc = jstr(f, "description");
		struct strbuf k = STRBUF_INIT;
		struct bl_item *it;

		if (!kind || !strncmp(kind, "first_seen_", 11))
			continue;
		sb_addf(&k, "%s %s", kind, desc ? desc : "");
		it = item_get(r, BL_FINDING, keep_step(r, step_of(r, f)), k.buf, kind);
		sb_release(&k);
		if (!it)
			continue;
		detail_str(it, "severity", jstr(f, "severity"));
		detail_str(it, "description", desc);
	}
}

void bl_run_event(struct bl_run *r, json_t *ev)
{
	const char *kind = jstr(ev, "kind");

	if (!kind)
		return;
	if (!strcmp(kind, "exec"))
		take_exec(r, ev);
	else if (!strcmp(kind, "connect"))
		take_connect(r, ev);
	else if (!strcmp(kind, "dns"))
		take_dns(r, ev);
}

int bl_run_read_log(struct bl_run *r, int dirfd, const char *display, char *err, size_t errlen)
{
	char ev_err[EV_ERRLEN];
	struct evread in;
	int rc = -1, got;

	if (evread_openat(&in, dirfd, "events.ndjson", display, BL_MAX_LINE, ev_err)) {
		snprintf(err, errlen, "%s", ev_err);
		return -1;
	}
	/* The run's own step is known before its events: every event without a label goes
	 * there, and a step with nothing in it still counts as run. */
	keep_step(r, r->run_step ? r->run_step : "");
	while ((got = evread_next(&in)) > 0) {
		json_error_t jerr;
		json_t *ev;

		if (!in.line.len)
			continue;
		ev = json_load_line(in.line.buf, in.line.len, &jerr);
		if (!json_is_object(ev)) {
			json_decref(ev);
			if (!in.terminated)
				break; /* a torn last line: the rest was written whole */
			snprintf(err, errlen, "%.200s:%llu: not a JSON object", display,
				 (unsigned long long)in.lineno);
			goto out;
		}
		bl_run_event(r, ev);
		json_decref(ev);
	}
	if (got < 0) {
		snprintf(err, errlen, "%s", in.err);
		goto out;
	}
	rc = 0;
out:
	evread_close(&in);
	return rc;
}

/* summary.json of a run directory: a regular file of a readable size, never through a
 * link or a planted FIFO. NULL with err filled. */
static json_t *load_summary(int dfd, const char *dir, char *err, size_t errlen)
{
	struct strbuf name = STRBUF_INIT;
	json_error_t jerr;
	struct stat st;
	json_t *sum = NULL;
	FILE *f = NULL;
	int fd;

	sb_addf(&name, "%s/summary.json", dir);
	fd = open_regular(dfd, "summary.json", name.buf, err, errlen);
	if (fd >= 0 && (fstat(fd, &st) || (uint64_t)st.st_size > BL_MAX_SUMMARY))
		snprintf(err, errlen, "%.200s: larger than %u bytes", name.buf, BL_MAX_SUMMARY);
	else if (fd >= 0 && !(f = fdopen(fd, "re")))
		snprintf(err, errlen, "%.200s: %s", name.buf, strerror(errno));
	if (f) {
		sum = json_loadf(f, 0, &jerr);
		fclose(f);
		if (!json_is_object(sum))
			snprintf(err, errlen, "%.200s:%d: not a JSON object%s%s", name.buf,
				 jerr.line, sum ? "" : ": ", sum ? "" : jerr.text);
	} else if (fd >= 0) {
		close(fd);
	}
	sb_release(&name);
	if (!json_is_object(sum)) {
		json_decref(sum);
		return NULL;
	}
	return sum;
}

static int read_summary(struct bl_run *r, int dfd, const char *dir, char *err, size_t errlen)
{
	json_t *sum = load_summary(dfd, dir, err, errlen), *ci;
	const char *root;

	if (!sum)
		return -1;
	root = jstr(json_object_get(sum, "log"), "root");
	if (!root || strlen(root) != 64 || strspn(root, "0123456789abcdef") != 64) {
		snprintf(err, errlen,
			 "%.200s/summary.json: no log.root (not a finished runwarden run)", dir);
		json_decref(sum);
		return -1;
	}
	bl_set(&r->uid, root);
	/* The key a live run was recorded under (`run --baseline --repo ...`) is the same run's
	 * key when it is added again elsewhere. */
	ci = json_object_get(json_object_get(sum, "baseline"), "key");
	if (json_is_object(ci)) {
		set_default(&r->repo, jstr(ci, "repository"));
		set_default(&r->workflow, jstr(ci, "workflow"));
		set_default(&r->job, jstr(ci, "job"));
	}
	ci = json_object_get(sum, "ci");
	if (json_is_object(ci)) {
		char *text = json_dumps(ci, JSON_COMPACT);

		bl_run_ci(r, text);
		free(text);
	}
	set_default(&r->run_step, jstr(sum, "step"));
	bl_run_findings(r, json_object_get(sum, "findings"));
	set_default(&r->mode, jstr(sum, "mode"));
	set_default(&r->started_at, jstr(sum, "started_at"));
	set_default(&r->finished_at, jstr(sum, "finished_at"));
	r->complete = json_is_true(json_object_get(sum, "complete"));
	json_decref(sum);
	return 0;
}

int bl_run_read_dir(struct bl_run *r, const char *dir, char *err, size_t errlen)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = -1;

	if (dfd < 0) {
		snprintf(err, errlen, "%.200s: cannot open run directory: %s", dir,
			 strerror(errno));
		return -1;
	}
	if (!read_summary(r, dfd, dir, err, errlen)) {
		struct strbuf name = STRBUF_INIT;

		sb_addf(&name, "%s/events.ndjson", dir);
		rc = bl_run_read_log(r, dfd, name.buf, err, errlen);
		sb_release(&name);
	}
	close(dfd);
	return rc;
}

json_t *bl_run_first_seen(const struct bl_run *r, size_t max, size_t *more)
{
	json_t *a = json_array();

	*more = 0;
	strmap_for_each(e, &r->items)
	{
		const struct bl_item *it = e->val;

		if (!it->first_seen)
			continue;
		if (json_array_size(a) >= max) {
			(*more)++;
			continue;
		}
		json_t *o = json_pack(
		    "{s:s, s:s, s:s, s:s, s:O, s:b}", "kind", bl_kind_names[it->kind], "step",
		    it->step, "subject", it->kind == BL_DEST ? it->ikey : it->name, "severity",
		    it->severity, "detail", it->detail, "changed", it->name_known);

		/* where in the log it first happened, and who did it */
		json_object_set_new(o, "runs_before", json_integer(it->runs_before));
		if (it->seq)
			json_object_set_new(o, "seq", json_integer((json_int_t)it->seq));
		if (it->pid)
			json_object_set_new(o, "pid", json_integer(it->pid));
		if (it->exe)
			json_object_set_new(o, "exe", json_string(it->exe));
		json_array_append_new(a, o);
	}
	return a;
}
