/*
 * Reads a run directory into the report model: bounded line reader for
 * events.ndjson, per-process aggregation (ppid links, PID reuse), and the
 * destination / name / file / denial tables the renderers share.
 */
#include "report/report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/jsonw.h"
#include "common/strbuf.h"
#include "evidence/codec.h"
#include "evidence/evread.h"

const char *const report_kind_names[RK_COUNT] = {
#define RK_NAME_(e, name) [e] = name,
    REPORT_KINDS(RK_NAME_)
#undef RK_NAME_
};
#define kind_names report_kind_names

const char *jget_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

long long jget_int(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

bool report_verdict_denied(const char *v)
{
	return v && (!strcmp(v, "deny") || !strcmp(v, "block"));
}

void report_dest_name(const json_t *d, char *buf, size_t len)
{
	const char *host = jget_str(d, "host"), *addr = jget_str(d, "daddr");
	const char *fam = jget_str(d, "family");
	long long port = jget_int(d, "dport");
	const char *name = host && *host ? host : addr ? addr : "?";
	bool v6 = !(host && *host) && fam && !strcmp(fam, "ipv6");

	if (port >= 0)
		snprintf(buf, len, v6 ? "[%s]:%lld" : "%s:%lld", name, port);
	else
		snprintf(buf, len, "%s", name);
}

static void note(struct report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct report *r, const char *fmt, ...)
{
	struct strbuf sb = STRBUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	sb_vaddf(&sb, fmt, ap);
	va_end(ap);
	json_array_append_new(r->notes, json_string(sb_str(&sb)));
	sb_release(&sb);
}

/* Working state while reading events: lookups by composite key. */
struct agg {
	json_t *live;	 /* "pid" -> proc object of the live process with that pid */
	json_t *keys;	 /* composite key -> aggregate entry (shared with arrays) */
	json_t *stepset; /* step -> true */
	json_t *vkeys;	 /* violation key -> row in r->violations */
	size_t nkeys;
	size_t nitems; /* entries in all processes' lists together */
	bool procs_full, keys_full;
};

static void key_add(struct strbuf *sb, const json_t *ev, const char *field)
{
	json_t *v = json_object_get(ev, field);

	sb_addch(sb, '\x1f');
	if (json_is_string(v))
		sb_addstr(sb, json_string_value(v));
	else if (json_is_integer(v))
		sb_addf(sb, "%lld", (long long)json_integer_value(v));
}

static json_t *copy_fields(const json_t *ev, const char *const *fields)
{
	json_t *o = json_object();

	for (; *fields; fields++) {
		json_t *v = json_object_get(ev, *fields);
		json_object_set(o, *fields, v ? v : json_null());
	}
	return o;
}

/* Finds or creates the entry for key in arr; NULL once the table is full. */
static json_t *bump(struct report *r, struct agg *a, json_t *arr, const char *key, const json_t *ev,
		    const char *const *fields)
{
	json_t *e = json_object_get(a->keys, key);

	if (!e) {
		if (a->nkeys >= 3 * REPORT_MAX_KEYS) {
			if (!a->keys_full)
				note(r,
				     "more than %d distinct destinations, names or files: tables "
				     "are truncated",
				     REPORT_MAX_KEYS);
			a->keys_full = true;
			return NULL;
		}
		e = copy_fields(ev, fields);
		json_object_set_new(e, "count", json_integer(0));
		json_array_append_new(arr, e);
		json_object_set_nocheck(a->keys, key, e);
		a->nkeys++;
	}
	json_object_set_new(e, "count", json_integer(jget_int(e, "count") + 1));
	return e;
}

static json_t *new_proc(struct report *r, struct agg *a, const json_t *ev, long long pid)
{
	json_t *p, *parent;
	char k[32];

	if (json_array_size(r->procs) >= REPORT_MAX_PROCS) {
		if (!a->procs_full)
			note(r, "more than %d processes: the process tree is truncated",
			     REPORT_MAX_PROCS);
		a->procs_full = true;
		return NULL;
	}
	p = json_object();
	json_object_set_new(p, "id", json_integer((json_int_t)json_array_size(r->procs)));
	json_object_set_new(p, "pid", json_integer(pid));
	json_object_set(p, "ppid", json_object_get(ev, "ppid") ?: json_null());
	snprintf(k, sizeof(k), "%lld", jget_int(ev, "ppid"));
	parent = json_object_get(a->live, k);
	json_object_set(p, "parent", parent ? json_object_get(parent, "id") : json_null());
	json_object_set(p, "comm", json_object_get(ev, "comm") ?: json_null());
	json_object_set(p, "exe", json_object_get(ev, "exe") ?: json_null());
	json_object_set_new(p, "argv", json_null());
	json_object_set_new(p, "cwd", json_null());
	json_object_set_new(p, "step", json_null());
	json_object_set_new(p, "status", json_null());
	json_object_set_new(p, "exited", json_false());
	json_object_set_new(p, "denied", json_false());
	json_object_set_new(p, "execs", json_integer(0));
	json_object_set_new(p, "net", json_array());
	json_object_set_new(p, "dns", json_array());
	json_object_set_new(p, "files", json_array());
	json_object_set_new(p, "socks", json_array());
	json_object_set_new(p, "dropped", json_integer(0));
	json_object_set_new(p, "seen", json_integer(r->n_events));
	json_array_append_new(r->procs, p);
	snprintf(k, sizeof(k), "%lld", pid);
	json_object_set(a->live, k, p);
	return p;
}

/* The live process for the event's pid, created on first sight (a fork that
 * never exec'd shows up with its first connect, name or file). */
static json_t *proc_for(struct report *r, struct agg *a, const json_t *ev, bool is_exec)
{
	long long pid = jget_int(ev, "pid");
	json_t *p;
	char k[32];

	if (pid < 0)
		return NULL;
	snprintf(k, sizeof(k), "%lld", pid);
	p = json_object_get(a->live, k);
	if (p && json_is_true(json_object_get(p, "exited")))
		p = NULL; /* the pid was reused */
	if (!p)
		p = new_proc(r, a, ev, pid);
	if (!p)
		return NULL;
	if (is_exec) {
		json_object_set(p, "comm", json_object_get(ev, "comm") ?: json_null());
		json_object_set(p, "exe", json_object_get(ev, "exe") ?: json_null());
		json_object_set(p, "argv", json_object_get(ev, "argv") ?: json_null());
		json_object_set(p, "cwd", json_object_get(ev, "cwd") ?: json_null());
		json_object_set_new(p, "execs", json_integer(jget_int(p, "execs") + 1));
	}
	if (json_is_null(json_object_get(p, "step")) && jget_str(ev, "step"))
		json_object_set(p, "step", json_object_get(ev, "step"));
	return p;
}

static void proc_list_add(struct agg *a, json_t *p, const char *list, json_t *entry)
{
	json_t *arr = json_object_get(p, list);

	if (json_array_size(arr) >= REPORT_MAX_PER_PROC || a->nitems >= REPORT_MAX_ITEMS) {
		json_object_set_new(p, "dropped", json_integer(jget_int(p, "dropped") + 1));
		json_decref(entry);
		return;
	}
	json_array_append_new(arr, entry);
	a->nitems++;
}

static const char *const dest_fields[] = {"proto", "family",  "daddr", "dport",
					  "host",  "verdict", "step",  NULL};
static const char *const dns_fields[] = {"query", "qtype", "answers", "verdict", "step", NULL};
static const char *const file_fields[] = {"path", "result", NULL};
static const char *const socket_fields[] = {"family",  "type",	 "protocol",
					    "verdict", "result", NULL};
/* What identifies an attempt of each kind, for grouping violations: the same members
 * the run's collector puts in summary.json's "violations" rows. */
static const char *const connect_ident[] = {"proto", "family", "daddr", "dport", "host", NULL};
static const char *const dns_ident[] = {"query", "qtype", NULL};
static const char *const socket_ident[] = {"family", "type", "protocol", NULL};
static const char *const conn_name_ident[] = {"app", "daddr", "dport", "name", "reason", NULL};
static const char *const http_verdict_ident[] = {"tls",	 "method", "authority",
						 "path", "reason", NULL};

static const char *const *violation_ident(const char *kind)
{
	return !strcmp(kind, "connect")	       ? connect_ident
	       : !strcmp(kind, "dns")	       ? dns_ident
	       : !strcmp(kind, "socket")       ? socket_ident
	       : !strcmp(kind, "conn_name")    ? conn_name_ident
	       : !strcmp(kind, "http_verdict") ? http_verdict_ident
					       : NULL;
}

static void bump_unlisted(json_t *row)
{
	long long n = jget_int(row, "processes_unlisted");

	json_object_set_new(row, "processes_unlisted", json_integer(n > 0 ? n + 1 : 1));
}

/* Adds {pid, exe} to a row's bounded process list, counting what does not fit. */
static void row_add_proc(json_t *row, const json_t *ev)
{
	json_t *procs = json_object_get(row, "processes"), *pp;
	size_t i;

	json_array_foreach(procs, i, pp)
	{
		if (jget_int(pp, "pid") == jget_int(ev, "pid") &&
		    json_equal(json_object_get(pp, "exe"), json_object_get(ev, "exe")))
			return;
	}
	if (json_array_size(procs) >= REPORT_MAX_VPROCS) {
		bump_unlisted(row);
		return;
	}
	pp = json_object();
	json_object_set(pp, "pid", json_object_get(ev, "pid") ?: json_null());
	json_object_set(pp, "exe", json_object_get(ev, "exe") ?: json_null());
	json_array_append_new(procs, pp);
}

static void add_step(struct report *r, struct agg *a, const json_t *ev)
{
	const char *s = jget_str(ev, "step");

	if (s && !json_object_get(a->stepset, s)) {
		json_object_set_new(a->stepset, s, json_true());
		json_array_append_new(r->steps, json_string(s));
	}
}

static void verdict_lists(struct report *r, struct agg *a, json_t *p, const json_t *ev)
{
	const char *v = jget_str(ev, "verdict"), *kind = jget_str(ev, "kind");
	const char *const *ident = kind ? violation_ident(kind) : NULL;
	struct strbuf key = STRBUF_INIT;
	json_t *row;

	if (!v || !ident)
		return;
	if (report_verdict_denied(v)) {
		r->n_denials++;
		if (p)
			json_object_set_new(p, "denied", json_true());
	} else if (!strcmp(v, "audit")) {
		r->n_audits++;
	} else {
		return;
	}
	sb_addstr(&key, "v");
	key_add(&key, ev, "kind");
	key_add(&key, ev, "verdict");
	key_add(&key, ev, "step");
	for (const char *const *f = ident; *f; f++)
		key_add(&key, ev, *f);
	row = json_object_get(a->vkeys, sb_str(&key));
	if (!row) {
		if (json_array_size(r->violations) >= REPORT_MAX_DENIALS) {
			r->n_violation_rows++;
			sb_release(&key);
			return;
		}
		row = copy_fields(ev, (const char *const[]){"kind", "verdict", "step", NULL});
		for (const char *const *f = ident; *f; f++)
			json_object_set(row, *f, json_object_get(ev, *f) ?: json_null());
		json_object_set_new(row, "count", json_integer(0));
		json_object_set_new(row, "processes", json_array());
		json_array_append_new(r->violations, row);
		json_object_set_nocheck(a->vkeys, sb_str(&key), row);
		r->n_violation_rows++;
	}
	json_object_set_new(row, "count", json_integer(jget_int(row, "count") + 1));
	row_add_proc(row, ev);
	sb_release(&key);
}

static void on_event(struct report *r, struct agg *a, const json_t *ev)
{
	const char *kind = jget_str(ev, "kind");
	struct strbuf key = STRBUF_INIT;
	json_t *p, *e;
	int k;

	if (!kind)
		return;
	if (!strcmp(kind, "close")) {
		r->closed = true;
		return;
	}
	for (k = 0; k < RK_COUNT; k++)
		if (!strcmp(kind, kind_names[k]))
			break;
	if (k == RK_COUNT)
		return; /* kinds added later: counted nowhere, not an error */
	r->counts[k]++;
	add_step(r, a, ev);
	p = proc_for(r, a, ev, k == RK_EXEC);

	switch (k) {
	case RK_CONNECT:
		sb_addstr(&key, "c");
		for (const char *const *f = dest_fields; *f; f++)
			key_add(&key, ev, *f);
		bump(r, a, r->dests, sb_str(&key), ev, dest_fields);
		if (p) {
			/* per process: the same destination once, with a count */
			sb_addf(&key, "\x1fp%lld", jget_int(p, "id"));
			e = json_object_get(a->keys, sb_str(&key));
			if (e) {
				json_object_set_new(e, "count",
						    json_integer(jget_int(e, "count") + 1));
			} else if (json_array_size(json_object_get(p, "net")) <
				       REPORT_MAX_PER_PROC &&
				   a->nitems < REPORT_MAX_ITEMS) {
				e = copy_fields(ev, dest_fields);
				json_object_set_new(e, "count", json_integer(1));
				json_object_set_nocheck(a->keys, sb_str(&key), e);
				proc_list_add(a, p, "net", e);
			} else {
				json_object_set_new(p, "dropped",
						    json_integer(jget_int(p, "dropped") + 1));
			}
		}
		verdict_lists(r, a, p, ev);
		break;
	case RK_DNS:
		sb_addstr(&key, "d");
		for (const char *const *f = dns_fields; *f; f++)
			if (strcmp(*f, "answers"))
				key_add(&key, ev, *f);
		e = bump(r, a, r->dns, sb_str(&key), ev, dns_fields);
		if (e && json_is_array(json_object_get(ev, "answers")))
			json_object_set(e, "answers", json_object_get(ev, "answers"));
		if (p)
			proc_list_add(a, p, "dns", copy_fields(ev, dns_fields));
		verdict_lists(r, a, p, ev);
		break;
	case RK_SOCKET:
		if (p)
			proc_list_add(a, p, "socks", copy_fields(ev, socket_fields));
		verdict_lists(r, a, p, ev);
		break;
	case RK_FILE:
		/* a failed open is an attempt, not a read: its own row */
		sb_addstr(&key, "f");
		key_add(&key, ev, "path");
		key_add(&key, ev, "result");
		e = bump(r, a, r->files, sb_str(&key), ev, file_fields);
		if (e && p) {
			json_t *procs = json_object_get(e, "processes");
			if (!procs) {
				procs = json_array();
				json_object_set_new(e, "processes", procs);
			}
			size_t n = json_array_size(procs);
			json_t *last = n ? json_array_get(procs, n - 1) : NULL;
			if (last && jget_int(last, "id") == jget_int(p, "id")) {
				/* the same process again adds nothing */
			} else if (n >= REPORT_MAX_VPROCS) {
				bump_unlisted(e);
			} else {
				json_t *pp = json_object();
				json_object_set(pp, "id", json_object_get(p, "id"));
				json_object_set(pp, "pid", json_object_get(p, "pid"));
				json_object_set(pp, "exe", json_object_get(p, "exe"));
				json_array_append_new(procs, pp);
			}
		}
		if (p)
			proc_list_add(a, p, "files",
				      copy_fields(ev, (const char *const[]){"path", "flags",
									    "result", NULL}));
		break;
	case RK_EXIT:
		if (p) {
			json_object_set(p, "status", json_object_get(ev, "status") ?: json_null());
			json_object_set_new(p, "exited", json_true());
			json_object_set_new(p, "exited_at", json_integer(r->n_events));
		}
		break;
	default:
		break;
	}
	sb_release(&key);
}

static int load_events(struct report *r, const char *path, long long max_events, char *err,
		       size_t errlen)
{
	struct agg a = {.live = json_object(),
			.keys = json_object(),
			.stepset = json_object(),
			.vkeys = json_object()};
	struct evread in;
	char why[EV_ERRLEN];
	int rc = 0, got;

	if (evread_open(&in, path, REPORT_MAX_LINE, why)) {
		if (errno != ENOENT) {
			snprintf(err, errlen, "%s", why);
			rc = -1;
		}
		goto out;
	}
	r->have_events = true;
	while ((got = evread_next(&in)) > 0) {
		json_error_t jerr;
		json_t *ev;

		if (in.line.len == 0)
			continue;
		if (r->n_events >= max_events) {
			snprintf(err, errlen,
				 "%s: more than %lld events; raise --max-events to read it all",
				 path, max_events);
			rc = -1;
			break;
		}
		ev = json_load_line(in.line.buf, in.line.len, &jerr);
		if (!ev || !json_is_object(ev)) {
			json_decref(ev);
			if (!in.terminated) {
				/* the writer died mid-line: the rest is still worth reading */
				note(r, "events.ndjson: unfinished last line %llu ignored",
				     (unsigned long long)in.lineno);
				break;
			}
			snprintf(err, errlen, "%s:%llu: not a JSON object (%s)", path,
				 (unsigned long long)in.lineno,
				 jerr.text[0] ? jerr.text : "wrong type");
			rc = -1;
			break;
		}
		r->n_events++;
		on_event(r, &a, ev);
		json_decref(ev);
	}
	if (got < 0) {
		snprintf(err, errlen, "%s", in.err);
		rc = -1;
	}
	evread_close(&in);
	if (rc == 0 && !r->closed)
		note(r, "events.ndjson has no closing record: the record is incomplete");
out:
	json_decref(a.live);
	json_decref(a.keys);
	json_decref(a.stepset);
	json_decref(a.vkeys);
	return rc;
}

static int load_summary(struct report *r, const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	struct strbuf sb = STRBUF_INIT;
	char why[EV_ERRLEN];

	if (ev_read_file(path, REPORT_MAX_SUMMARY, &sb, why)) {
		sb_release(&sb);
		if (errno == ENOENT) {
			note(r, "summary.json is missing: the run did not finish writing it");
			return 0;
		}
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	r->summary = json_load_line(sb_str(&sb), sb.len, &jerr);
	sb_release(&sb);
	if (!r->summary || !json_is_object(r->summary)) {
		snprintf(err, errlen, "%s:%d: not a JSON object (%s)", path, jerr.line,
			 r->summary ? "wrong type" : jerr.text);
		json_decref(r->summary);
		r->summary = NULL;
		return -1;
	}
	return 0;
}

/* Without events, the summary's tables are all there is. */
static void from_summary(struct report *r)
{
	json_t *v;
	size_t i;
	const char *step = r->summary ? jget_str(r->summary, "step") : NULL;

	if (!r->summary)
		return;
	json_array_foreach(json_object_get(r->summary, "destinations"), i, v)
	{
		json_t *d = json_deep_copy(v);
		if (!json_object_get(d, "step"))
			json_object_set_new(d, "step", step ? json_string(step) : json_null());
		json_array_append_new(r->dests, d);
		/* a summary from before "violations": its denied destinations are the list */
		if (report_verdict_denied(jget_str(v, "verdict")) ||
		    !strcmp(jget_str(v, "verdict") ?: "", "audit")) {
			json_t *row = json_deep_copy(d);

			json_object_set_new(row, "kind", json_string("connect"));
			json_array_append_new(r->violations, row);
			r->n_violation_rows++;
			if (report_verdict_denied(jget_str(v, "verdict")))
				r->n_denials += jget_int(v, "count") > 0 ? jget_int(v, "count") : 1;
			else
				r->n_audits += jget_int(v, "count") > 0 ? jget_int(v, "count") : 1;
		}
	}
	json_array_foreach(json_object_get(r->summary, "dns_names"), i, v)
	    json_array_append_new(r->dns, json_deep_copy(v));
	json_array_foreach(json_object_get(r->summary, "files"), i, v)
	    json_array_append_new(r->files, json_deep_copy(v));
	for (int k = 0; k < RK_COUNT; k++) {
		long long c = jget_int(json_object_get(r->summary, "counts"), kind_names[k]);
		r->counts[k] = c > 0 ? c : 0;
	}
	if (step)
		json_array_append_new(r->steps, json_string(step));
}

/* The incarnation of pid that was alive when child was first seen: its exit (if any)
 * came later. A fork that never exec'd and did nothing shows up only at its exit, after
 * its children, so the live-process link made on first sight misses it. */
static json_t *ancestor_for(const json_t *bypid, const json_t *child)
{
	long long seen = jget_int(child, "seen");
	json_t *best = NULL, *p;
	char k[32];
	size_t i;

	snprintf(k, sizeof(k), "%lld", jget_int(child, "ppid"));
	json_array_foreach(json_object_get(bypid, k), i, p)
	{
		long long ex = jget_int(p, "exited_at");

		if (p == child)
			continue;
		if (ex >= 0 && ex < seen)
			continue; /* an earlier process with that pid */
		if (!best || (ex >= 0 && (jget_int(best, "exited_at") < 0 ||
					  ex < jget_int(best, "exited_at"))))
			best = p;
	}
	return best;
}

/* Would linking child under parent close a loop (pid reuse can make ppids circular)? */
static bool is_descendant(const struct report *r, const json_t *parent, const json_t *child)
{
	long long id = jget_int(parent, "id"), target = jget_int(child, "id");

	for (size_t steps = 0; id >= 0 && steps <= json_array_size(r->procs); steps++) {
		if (id == target)
			return true;
		id = jget_int(json_array_get(r->procs, (size_t)id), "parent");
	}
	return false;
}

/* Every process under its real parent: one pass over the roots left by loading. */
static void link_parents(struct report *r)
{
	json_t *p, *bypid = json_object();
	size_t i;
	char k[32];

	json_array_foreach(r->procs, i, p)
	{
		json_t *list;

		snprintf(k, sizeof(k), "%lld", jget_int(p, "pid"));
		list = json_object_get(bypid, k);
		if (!list) {
			list = json_array();
			json_object_set_new(bypid, k, list);
		}
		json_array_append(list, p);
	}
	json_array_foreach(r->procs, i, p)
	{
		json_t *anc;

		if (!json_is_null(json_object_get(p, "parent")) || jget_int(p, "ppid") <= 0)
			continue;
		anc = ancestor_for(bypid, p);
		if (anc && !is_descendant(r, anc, p))
			json_object_set(p, "parent", json_object_get(anc, "id"));
	}
	json_decref(bypid);
}

/* Findings are the run's conclusions: only summary.json has them (the log has their evidence). */
static void findings_from_summary(struct report *r)
{
	json_t *fs = json_object_get(r->summary, "findings"),
	       *lk = json_object_get(r->summary, "lockdown");
	long long unl = jget_int(r->summary, "findings_unlisted");

	if (json_is_array(fs)) {
		json_t *v;
		size_t i;

		json_array_foreach(fs, i, v) if (json_is_object(v))
		    json_array_append_new(r->findings, json_deep_copy(v));
	}
	r->n_findings = (long long)json_array_size(r->findings) + (unl > 0 ? unl : 0);
	if (json_is_object(lk) && jget_str(lk, "reason"))
		r->lockdown = json_deep_copy(lk);
}

/* The run's own violation list, when it wrote one, is the one every format shows: it is
 * what the run counted when it chose its exit status. */
static void violations_from_summary(struct report *r)
{
	json_t *rows = json_object_get(r->summary, "violations"), *v;
	long long d = jget_int(r->summary, "denials"), au = jget_int(r->summary, "audits");
	size_t i;

	r->fails_run = json_is_true(json_object_get(r->summary, "violations_fail_run"));
	if (!json_is_array(rows))
		return;
	json_array_clear(r->violations);
	json_array_foreach(rows, i, v)
	{
		if (json_is_object(v) && json_array_size(r->violations) < REPORT_MAX_DENIALS)
			json_array_append_new(r->violations, json_deep_copy(v));
	}
	r->n_violation_rows = (long long)json_array_size(rows);
	if (d >= 0)
		r->n_denials = d;
	if (au >= 0)
		r->n_audits = au;
}

int report_load(struct report *r, const char *dir, long long max_events, char *err, size_t errlen)
{
	struct strbuf p = STRBUF_INIT;
	int rc;

	memset(r, 0, sizeof(*r));
	r->dir = dir;
	r->procs = json_array();
	r->dests = json_array();
	r->dns = json_array();
	r->files = json_array();
	r->violations = json_array();
	r->steps = json_array();
	r->notes = json_array();
	r->findings = json_array();

	sb_addf(&p, "%s/summary.json", dir);
	rc = load_summary(r, sb_str(&p), err, errlen);
	sb_reset(&p);
	if (rc == 0) {
		sb_addf(&p, "%s/events.ndjson", dir);
		rc = load_events(r, sb_str(&p), max_events, err, errlen);
	}
	sb_release(&p);
	if (rc == 0 && !r->have_events && !r->summary) {
		snprintf(err, errlen, "%s: neither summary.json nor events.ndjson found", dir);
		rc = -1;
	}
	if (rc == 0 && !r->have_events) {
		note(r, "events.ndjson is missing: tables come from summary.json");
		from_summary(r);
	}
	if (rc == 0)
		link_parents(r);
	if (rc == 0 && r->summary)
		violations_from_summary(r);
	if (rc == 0 && r->summary)
		findings_from_summary(r);
	if (rc == 0 && r->summary) {
		json_t *c = json_object_get(r->summary, "complete");
		if (json_is_false(c))
			note(r, "the run marked its record incomplete");
	}
	return rc;
}

void report_free(struct report *r)
{
	json_decref(r->summary);
	json_decref(r->procs);
	json_decref(r->dests);
	json_decref(r->dns);
	json_decref(r->files);
	json_decref(r->violations);
	json_decref(r->steps);
	json_decref(r->notes);
	json_decref(r->findings);
	json_decref(r->lockdown);
	memset(r, 0, sizeof(*r));
}

void report_what(const json_t *v, char *buf, size_t len)
{
	const char *kind = jget_str(v, "kind");
	struct strbuf sb = STRBUF_INIT;
	char dest[600];

	if (kind && !strcmp(kind, "dns")) {
		sb_addf(&sb, "dns %s", jget_str(v, "query") ?: "?");
		if (jget_str(v, "qtype"))
			sb_addf(&sb, " %s", jget_str(v, "qtype"));
	} else if (kind && !strcmp(kind, "conn_name")) {
		/* "tls evil.test on 127.0.66.1:8443 (sni_mismatch)" */
		sb_addf(&sb, "%s %s on %s:%lld", jget_str(v, "app") ?: "?",
			jget_str(v, "name") ?: "(no name)", jget_str(v, "daddr") ?: "?",
			jget_int(v, "dport"));
		if (jget_str(v, "reason"))
			sb_addf(&sb, " (%s)", jget_str(v, "reason"));
	} else if (kind && !strcmp(kind, "http_verdict")) {
		/* "https POST good.test/upload (method_not_allowed)" */
		sb_addf(&sb, "https %s %s%s", jget_str(v, "method") ?: "?",
			jget_str(v, "authority") ?: "(no host)", jget_str(v, "path") ?: "");
		if (jget_str(v, "reason"))
			sb_addf(&sb, " (%s)", jget_str(v, "reason"));
	} else if (kind && !strcmp(kind, "socket")) {
		sb_addstr(&sb, "socket");
		for (const char *const *f = socket_ident; *f; f++) {
			json_t *x = json_object_get(v, *f);
			if (json_is_string(x))
				sb_addf(&sb, " %s=%s", *f, json_string_value(x));
			else if (json_is_integer(x))
				sb_addf(&sb, " %s=%lld", *f, (long long)json_integer_value(x));
		}
	} else {
		report_dest_name(v, dest, sizeof(dest));
		sb_addf(&sb, "connect %s %s", jget_str(v, "proto") ?: "?", dest);
		if (jget_str(v, "host") && jget_str(v, "daddr"))
			sb_addf(&sb, " (%s)", jget_str(v, "daddr"));
	}
	snprintf(buf, len, "%s", sb_str(&sb));
	sb_release(&sb);
}

void report_who(const json_t *v, char *buf, size_t len)
{
	json_t *procs = json_object_get(v, "processes"), *pp;
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	if (!json_is_array(procs)) {
		/* one event */
		if (jget_str(v, "exe") || jget_str(v, "comm"))
			sb_addf(&sb, " by %s", jget_str(v, "exe") ?: jget_str(v, "comm"));
		if (jget_int(v, "pid") >= 0)
			sb_addf(&sb, " [pid %lld]", jget_int(v, "pid"));
	}
	json_array_foreach(procs, i, pp)
	{
		sb_addf(&sb, "%s%s", i ? ", " : " by ", jget_str(pp, "exe") ?: "?");
		if (jget_int(pp, "pid") >= 0)
			sb_addf(&sb, " [pid %lld]", jget_int(pp, "pid"));
	}
	if (jget_int(v, "processes_unlisted") > 0)
		sb_addf(&sb, " and %lld more", jget_int(v, "processes_unlisted"));
	snprintf(buf, len, "%s", sb_str(&sb));
	sb_release(&sb);
}

void report_headline(const struct report *r, char *buf, size_t len)
{
	long long n = r->n_denials + r->n_audits;

	if (!n)
		snprintf(buf, len, "No denials.");
	else
		snprintf(buf, len, "%lld policy violation%s (%lld denied, %lld would have been)%s.",
			 n, n == 1 ? "" : "s", r->n_denials, r->n_audits,
			 r->fails_run ? "; the run failed on them" : "");
}

bool report_finding_severe(const json_t *f)
{
	const char *s = jget_str(f, "severity");

	return s && (!strcmp(s, "high") || !strcmp(s, "critical"));
}

void report_finding_line(const json_t *f, char *buf, size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *ev = json_object_get(f, "evidence"), *v;
	size_t i;

	sb_addf(&sb, "%s %s: %s", jget_str(f, "severity") ?: "?", jget_str(f, "kind") ?: "?",
		jget_str(f, "description") ?: "");
	if (jget_str(f, "step"))
		sb_addf(&sb, " [step %s]", jget_str(f, "step"));
	json_array_foreach(ev, i, v)
	{
		if (i == 8) {
			sb_addstr(&sb, ", ...");
			break;
		}
		sb_addf(&sb, "%s%lld", i ? ", " : " (evidence: seq ",
			(long long)json_integer_value(v));
	}
	if (json_array_size(ev))
		sb_addstr(&sb, i == 8 || jget_int(f, "evidence_unlisted") > 0 ? ", ...)" : ")");
	snprintf(buf, len, "%s", sb_str(&sb));
	sb_release(&sb);
}

void report_lockdown_line(const struct report *r, char *buf, size_t len)
{
	if (!r->lockdown) {
		buf[0] = 0;
		return;
	}
	if (json_is_true(json_object_get(r->lockdown, "enforced")))
		snprintf(buf, len, "LOCKDOWN: %s; the job was ended, runwarden exit status %d",
			 jget_str(r->lockdown, "reason"), REPORT_EXIT_LOCKDOWN);
	else
		snprintf(buf, len, "on_finding would have ended the job in enforce mode: %s",
			 jget_str(r->lockdown, "reason"));
}

void report_findings_headline(const struct report *r, char *buf, size_t len)
{
	static const char *const sevs[] = {"critical", "high", "medium", "low", "info"};
	struct strbuf sb = STRBUF_INIT;
	json_t *by = r->summary ? json_object_get(r->summary, "findings_by_severity") : NULL;
	const char *sep = " (";

	if (!r->summary) {
		snprintf(buf, len, "Findings unknown: summary.json is missing.");
		return;
	}
	if (!json_is_array(json_object_get(r->summary, "findings"))) {
		snprintf(buf, len, "Findings unknown: recorded by a runwarden without findings.");
		return;
	}
	if (!r->n_findings) {
		snprintf(buf, len, "No findings.");
		return;
	}
	sb_addf(&sb, "%lld finding%s", r->n_findings, r->n_findings == 1 ? "" : "s");
	for (size_t i = 0; i < sizeof(sevs) / sizeof(sevs[0]); i++) {
		long long n = jget_int(by, sevs[i]);

		if (n > 0) {
			sb_addf(&sb, "%s%lld %s", sep, n, sevs[i]);
			sep = ", ";
		}
	}
	sb_addstr(&sb, strcmp(sep, ", ") ? "." : ").");
	snprintf(buf, len, "%s", sb_str(&sb));
	sb_release(&sb);
}
