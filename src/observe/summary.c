/* Aggregates and summaries of one run (see summary.h). */
#include "observe/summary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include <jansson.h>

#include "common/jsonw.h"
#include "common/util.h"
#include "common/xalloc.h"

struct agg {
	uint64_t count;
	char *human;
	struct strmap members; /* answers or processes, deduplicated */
	uint64_t unlisted;     /* members not kept (bound reached) */
};

static const char *const kinds[EV_KIND_MAX] = {
#define KIND_NAME_(e, name) [EV_##e] = name,
    EV_KINDS(KIND_NAME_)
#undef KIND_NAME_
};

const char *kind_name(int kind)
{
	return kind > 0 && kind < EV_KIND_MAX && kinds[kind] ? kinds[kind] : "unknown";
}

void summary_init(struct summary *s)
{
	memset(s, 0, sizeof(*s));
	strmap_init(&s->dests);
	strmap_init(&s->dns);
	strmap_init(&s->files);
	strmap_init(&s->violations);
	strmap_init(&s->memreads);
}

static void agg_free(void *v)
{
	struct agg *a = v;

	if (!a)
		return;
	free(a->human);
	strmap_clear(&a->members, NULL);
	free(a);
}

void summary_free(struct summary *s)
{
	strmap_clear(&s->dests, agg_free);
	strmap_clear(&s->dns, agg_free);
	strmap_clear(&s->files, agg_free);
	strmap_clear(&s->violations, agg_free);
	strmap_clear(&s->memreads, agg_free);
	sb_release(&s->incomplete);
}

void summary_incomplete(struct summary *s, const char *reason)
{
	if (s->n_incomplete++ >= SUMMARY_MAX_REASONS)
		return;
	if (s->incomplete.len)
		sb_addch(&s->incomplete, ',');
	json_cstr(&s->incomplete, reason);
}

/* Takes n bytes of the lists' text budget; false when they do not fit. */
static bool room(struct summary *s, size_t n)
{
	if (n > SUMMARY_MAX_BYTES - s->bytes)
		return false;
	s->bytes += n;
	return true;
}

/* Adds member to a's set (once) within max members and the text budget; false if not kept. */
static bool member_put(struct summary *s, struct agg *a, const char *member, size_t max)
{
	if (strmap_get(&a->members, member))
		return true;
	if (a->members.count >= max || !room(s, strlen(member) + 1))
		return false;
	strmap_put(&a->members, member, NULL);
	return true;
}

static struct agg *bump(struct summary *s, struct strmap *m, const char *frag, const char *human)
{
	struct strmap_entry *e = strmap_get(m, frag);
	struct agg *a;

	if (!e) {
		if (m->count >= SUMMARY_MAX_ITEMS || !room(s, strlen(frag) + strlen(human) + 2)) {
			s->overflow++;
			return NULL;
		}
		e = strmap_put(m, frag, NULL);
		a = xcalloc(1, sizeof(*a));
		a->human = xstrdup(human);
		strmap_init(&a->members);
		e->val = a;
	}
	a = e->val;
	a->count++;
	return a;
}

void summary_dest(struct summary *s, const char *frag, const char *human)
{
	bump(s, &s->dests, frag, human);
}

struct agg *summary_dest_ref(struct summary *s, const char *frag, const char *human)
{
	return bump(s, &s->dests, frag, human);
}

/* Items are never removed before summary_free, and a full list stays full: a NULL ref
 * means this item is one more not listed, as bump would have found. */
void summary_dest_again(struct summary *s, struct agg *ref)
{
	if (ref)
		ref->count++;
	else
		s->overflow++;
}

void summary_dns(struct summary *s, const char *frag, const char *human,
		 const char *const *answers_json, int n)
{
	struct agg *a = bump(s, &s->dns, frag, human);

	for (int i = 0; a && i < n; i++)
		if (!member_put(s, a, answers_json[i], SUMMARY_MAX_ANSWERS))
			break;
}

/* Bounded member set; what does not fit is counted so no one reads the list as complete. */
static void add_member(struct summary *s, struct agg *a, const char *member)
{
	if (a && !member_put(s, a, member, SUMMARY_MAX_PROCS_PER_FILE))
		a->unlisted++;
}

void summary_file(struct summary *s, const char *frag, const char *human, const char *proc_json,
		  pid_t pid)
{
	(void)pid;
	add_member(s, bump(s, &s->files, frag, human), proc_json);
}

void summary_violation(struct summary *s, const char *frag, const char *human,
		       const char *proc_json)
{
	add_member(s, bump(s, &s->violations, frag, human), proc_json);
}

void summary_memread(struct summary *s, const char *frag, const char *human, const char *proc_json)
{
	struct agg *a = bump(s, &s->memreads, frag, human);

	if (a)
		member_put(s, a, proc_json, SUMMARY_MAX_PROCS_PER_FILE);
}

uint64_t summary_lost_total(const struct summary *s)
{
	uint64_t t = 0;

	for (int k = 1; k < EV_KIND_MAX; k++)
		t += s->lost_kernel[k] + s->lost_user[k];
	return t + s->malformed;
}

bool summary_complete(const struct summary *s, const struct run_info *r)
{
	return r->n_missing == 0 && summary_lost_total(s) == 0 && s->containers_missed == 0 &&
	       !r->log_failed && s->n_incomplete == 0;
}

void summary_lost_json(const struct summary *s, struct strbuf *sb)
{
	sb_addch(sb, '{');
	for (int k = 1; k < EV_KIND_MAX; k++)
		sb_addf(sb, "\"%s\":%llu,", kinds[k],
			(unsigned long long)(s->lost_kernel[k] + s->lost_user[k]));
	sb_addf(sb, "\"malformed\":%llu,\"total\":%llu}", (unsigned long long)s->malformed,
		(unsigned long long)summary_lost_total(s));
}

static void list(struct strbuf *sb, const char *name, const struct strmap *m, const char *members)
{
	bool first = true;

	sb_addf(sb, ",\"%s\":[", name);
	strmap_for_each(e, m)
	{
		const struct agg *a = e->val;
		bool f2 = true;

		sb_addf(sb, "%s{%s,\"count\":%llu", first ? "" : ",", e->key,
			(unsigned long long)a->count);
		if (members) {
			sb_addf(sb, ",\"%s\":[", members);
			strmap_for_each(m2, &a->members)
			{
				sb_addf(sb, "%s%s", f2 ? "" : ",", m2->key);
				f2 = false;
			}
			sb_addch(sb, ']');
			if (a->unlisted)
				sb_addf(sb, ",\"%s_unlisted\":%llu", members,
					(unsigned long long)a->unlisted);
		}
		sb_addch(sb, '}');
		first = false;
	}
	sb_addch(sb, ']');
}

static void kernel_release(char *buf, size_t len)
{
	struct utsname u;

	if (uname(&u) == 0)
		snprintf(buf, len, "%s", u.release);
	else
		snprintf(buf, len, "unknown");
}

/* ,"lockdown":{...} or null: the finding a policy's on_finding acted on. */
static void lockdown_json(const struct run_info *r, struct strbuf *sb)
{
	const struct findings *f = r->findings;
	const struct finding *x = f->lockdown >= 0 ? &f->v[f->lockdown] : NULL;

	if (!f->lockdown_reason) {
		sb_addstr(sb, ",\"lockdown\":null");
		return;
	}
	sb_addstr(sb, ",\"lockdown\":{\"reason\":");
	json_cstr(sb, f->lockdown_reason);
	if (x)
		sb_addf(sb, ",\"kind\":\"%s\",\"severity\":\"%s\",\"pid\":%d",
			finding_kind_name(x->kind), finding_severity_name(x->sev), (int)x->pid);
	sb_addf(sb, ",\"enforced\":%s}", r->lockdown_enforced ? "true" : "false");
}

void summary_render(const struct summary *s, const struct run_info *r, struct strbuf *out)
{
	struct strbuf sb = STRBUF_INIT;
	char kernel[128];

	kernel_release(kernel, sizeof(kernel));
	sb_addch(&sb, '{');
	if (r->findings) {
		findings_json(r->findings, &sb);
		lockdown_json(r, &sb);
		sb_addch(&sb, ',');
	}
	sb_addf(&sb, "\"runwarden_version\":\"%s\"", RW_VERSION);
	json_kv_str(&sb, "kernel", kernel);
	sb_addstr(&sb, ",\"command\":[");
	for (int i = 0; r->command && r->command[i]; i++) {
		if (i)
			sb_addch(&sb, ',');
		json_cstr(&sb, r->command[i]);
	}
	sb_addch(&sb, ']');
	json_kv_str(&sb, "step", r->step);
	json_kv_str(&sb, "mode", r->mode);
	sb_addstr(&sb, ",\"started_at\":\"");
	fmt_rfc3339(&sb, r->started_ns);
	sb_addstr(&sb, "\",\"finished_at\":\"");
	fmt_rfc3339(&sb, r->finished_ns);
	sb_addf(&sb, "\",\"duration_s\":%.6f", (r->finished_ns - r->started_ns) / 1e9);
	sb_addf(&sb, ",\"armed_ms\":%.3f", r->armed_ns / 1e6);
	if (r->kernel) {
		sb_addstr(&sb, ",\"kernel_side\":{");
		json_cstr(&sb, "copy");
		sb_addch(&sb, ':');
		json_cstr(&sb, r->kernel);
		sb_addf(&sb, ",\"ready_ms\":%.3f}", r->kernel_ready_ns / 1e6);
	}
	sb_addf(&sb, ",\"agent_peak_rss_kb\":%ld", r->agent_peak_rss_kb);
	if (r->exit_status >= 0)
		json_kv_int(&sb, "exit_status", r->exit_status);
	else
		sb_addstr(&sb, ",\"exit_status\":null");
	sb_addf(&sb, ",\"complete\":%s", summary_complete(s, r) ? "true" : "false");
	sb_addf(&sb, ",\"incomplete_reasons\":[%s]", sb_str(&s->incomplete));
	sb_addf(&sb, ",\"missing_hooks\":%s", r->missing_json ? r->missing_json : "[]");
	sb_addstr(&sb, ",\"counts\":{");
	for (int k = 1; k < EV_KIND_MAX; k++) {
		if (k == EV_FORK || k == EV_ENV)
			continue; /* not logged: they feed attribution */
		sb_addf(&sb, "%s\"%s\":%llu", k == 1 ? "" : ",", kinds[k],
			(unsigned long long)s->logged[k]);
	}
	sb_addstr(&sb, "},\"events_lost\":");
	summary_lost_json(s, &sb);
	list(&sb, "destinations", &s->dests, NULL);
	list(&sb, "dns_names", &s->dns, "answers");
	list(&sb, "files", &s->files, "processes");
	list(&sb, "memory_reads", &s->memreads, "processes");
	list(&sb, "violations", &s->violations, "processes");
	sb_addf(&sb, ",\"violations_fail_run\":%s", r->violations_fail_run ? "true" : "false");
	sb_addf(&sb, ",\"unlisted_items\":%llu", (unsigned long long)s->overflow);
	sb_addf(&sb,
		",\"exe_hashes\":{\"files\":%llu,\"bytes\":%llu,\"cache_hits\":%llu,"
		"\"ms\":%.3f}",
		(unsigned long long)s->exe_hashed_files, (unsigned long long)s->exe_hashed_bytes,
		(unsigned long long)s->exe_hash_hits, s->exe_hash_ns / 1e6);
	sb_addf(&sb, ",\"audits\":%llu,\"denials\":%llu", (unsigned long long)s->audits,
		(unsigned long long)s->denials);
	sb_addstr(&sb, ",\"leftovers\":[");
	for (int i = 0; i < r->n_leftovers; i++) {
		sb_addf(&sb, "%s{\"pid\":%d,\"cmdline\":", i ? "," : "", (int)r->leftovers[i].pid);
		json_str(&sb, r->leftovers[i].cmdline, r->leftovers[i].len);
		sb_addch(&sb, '}');
	}
	sb_addf(&sb, "],\"leftovers_killed\":%s", r->leftovers_killed ? "true" : "false");
	json_kv_str(&sb, "leftovers_fate",
		    !r->n_leftovers	  ? NULL
		    : r->leftovers_killed ? "killed"
					  : (r->leftovers_fate ? r->leftovers_fate : "fenced"));
	if (r->ci_json)
		sb_addf(&sb, ",\"ci\":%s", r->ci_json);
	if (r->containers_json)
		sb_addf(
		    &sb,
		    ",\"containers\":[%s],\"containers_missed\":%llu,\"containers_unlisted\":%llu",
		    r->containers_json, (unsigned long long)s->containers_missed,
		    (unsigned long long)s->containers_unlisted);
	if (r->policy_json)
		sb_addf(&sb, ",\"policy\":%s", r->policy_json);
	if (r->dns_json)
		sb_addf(&sb, ",\"dns\":%s", r->dns_json);
	if (r->capture_json)
		sb_addf(&sb, ",\"capture\":%s", r->capture_json);
	if (r->secrets_json)
		sb_addstr(&sb, r->secrets_json);
	if (r->out_moved_to)
		json_kv_str(&sb, "out_dir_moved_to", r->out_moved_to);
	if (r->baseline_json)
		sb_addstr(&sb, r->baseline_json);
	sb_addstr(&sb, ",\"log\":{");
	sb_addstr(&sb, "\"path\":");
	json_cstr(&sb, r->log_name);
	sb_addf(&sb, ",\"lines\":%llu", (unsigned long long)r->log_lines);
	json_kv_str(&sb, "root", r->log_root);
	sb_addstr(&sb, "}}\n");
	sb_add(out, sb.buf, sb.len);
	sb_release(&sb);
}

static bool is_denial(const char *frag)
{
	return strstr(frag, "\"verdict\":\"deny\"") || strstr(frag, "\"verdict\":\"block\"");
}

/* " by exe [pid N], ..." from the member set of {"pid","exe"} objects. */
static void print_members(FILE *f, const struct agg *a)
{
	const char *sep = " by ";

	strmap_for_each(m, &a->members)
	{
		json_t *o = json_loads(m->key, 0, NULL);
		const char *exe = json_string_value(json_object_get(o, "exe"));

		fprintf(f, "%s%s [pid %lld]", sep, exe ? exe : "?",
			(long long)json_integer_value(json_object_get(o, "pid")));
		sep = ", ";
		json_decref(o);
	}
	if (a->unlisted)
		fprintf(f, " and %llu more", (unsigned long long)a->unlisted);
}

static void print_list(FILE *f, const char *title, const struct strmap *m, int max, bool members)
{
	int shown = 0;

	fprintf(f, "  %s (%zu):%s\n", title, m->count, m->count ? "" : " none");
	/* Denials first: they are what a reader is looking for. */
	for (int pass = 0; pass < 2 && shown < max; pass++) {
		strmap_for_each(e, m)
		{
			const struct agg *a = e->val;

			if (is_denial(e->key) != (pass == 0))
				continue;
			if (shown++ == max)
				break;
			fprintf(f, "    %s x%llu", a->human, (unsigned long long)a->count);
			if (members)
				print_members(f, a);
			fputc('\n', f);
		}
	}
	if (m->count > (size_t)max)
		fprintf(f, "    ... %zu more in summary.json\n", m->count - max);
}

void summary_print(const struct summary *s, const struct run_info *r, FILE *f)
{
	if (r->findings && r->findings->lockdown_reason)
		fprintf(f, "runwarden: %s%s\n",
			r->lockdown_enforced
			    ? "LOCKDOWN: "
			    : "on_finding would have ended the job in enforce mode: ",
			r->findings->lockdown_reason);
	fprintf(f, "runwarden: %s run finished in %.2f s, ", r->mode,
		(r->finished_ns - r->started_ns) / 1e9);
	if (r->exit_status >= 0)
		fprintf(f, "exit status %d\n", r->exit_status);
	else
		fprintf(f, "command did not run\n");
	if (r->findings)
		findings_print(r->findings, f, 20);
	fprintf(f,
		"  events: %llu exec, %llu connect, %llu dns, %llu file, %llu exit; lost: %llu\n",
		(unsigned long long)s->logged[EV_EXEC], (unsigned long long)s->logged[EV_CONNECT],
		(unsigned long long)s->logged[EV_DNS_PKT], (unsigned long long)s->logged[EV_FILE],
		(unsigned long long)s->logged[EV_EXIT], (unsigned long long)summary_lost_total(s));
	if (summary_lost_total(s))
		fprintf(f, "  WARNING: %llu events were lost; the record is incomplete\n",
			(unsigned long long)summary_lost_total(s));
	if (r->n_missing)
		fprintf(f, "  WARNING: %d hooks missing; the record is partial\n", r->n_missing);
	if (s->n_incomplete)
		fprintf(f, "  WARNING: the record is incomplete: %s\n", sb_str(&s->incomplete));
	if (s->violations.count)
		print_list(f, "denied or would be denied", &s->violations, 50, true);
	print_list(f, "destinations", &s->dests, 20, false);
	print_list(f, "dns names", &s->dns, 20, false);
	print_list(f, "sensitive files", &s->files, 20, true);
	if (s->memreads.count)
		print_list(f, "reads of other processes' memory", &s->memreads, 20, false);
	if (r->n_leftovers) {
		fprintf(f, "  processes left running after the grace period (%d)%s:\n",
			r->n_leftovers, r->leftovers_killed ? ", killed" : "");
		for (int i = 0; i < r->n_leftovers && i < 20; i++) {
			struct strbuf sb = STRBUF_INIT;

			json_str(&sb, r->leftovers[i].cmdline, r->leftovers[i].len);
			fprintf(f, "    pid %d %s\n", (int)r->leftovers[i].pid, sb.buf);
			sb_release(&sb);
		}
	}
	fprintf(f, "  evidence: %s/%s (%llu lines)\n", r->out_dir, r->log_name,
		(unsigned long long)r->log_lines);
}
