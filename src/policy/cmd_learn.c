/*
 * `runwarden learn RUNDIR... [--out FILE]`: merges observed runs' event logs into the narrowest
 * policy that would have let them pass (see learn.h and docs/policy.md, "Learning a policy").
 *
 * What becomes what:
 *   connect with a host      → host entry, with the ports and protocols seen
 *   connect without a host   → ip entry (v4-mapped folded to IPv4)
 *   connect to port 53, no host → dns.resolvers (the gate takes DNS; no allow entry needed)
 *   dns question             → host entry (a name must be allowed to be resolved at all)
 *   SRV/HTTPS question derived from a listed name (`_http._tcp.<name>`) → nothing: the gate
 *                              admits it through that name's entry (policy_check_question)
 *   verdict block            → nothing (the block list wins anyway); listed in a comment
 * Destinations seen with no step, or in every step, go to the top level; the rest to the steps
 * that used them. LEARN_WILDCARD_MIN or more sibling names under one parent (of at least two
 * labels) become `*.parent`; `**` is never guessed.
 *
 * Everything written comes from the job, so it is treated as hostile: names are re-validated
 * with the policy's own rules, addresses re-formatted from binary, and step names quoted, so a
 * crafted log can produce a wrong suggestion but never YAML that says something else.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "baseline/store.h"
#include "cmds.h"
#include "common/cli.h"
#include "common/jsonw.h"
#include "common/strbuf.h"
#include "evidence/outdir.h"
#include "common/strmap.h"
#include "common/util.h"
#include "policy/learn.h"
#include "policy/policy.h"
#include "policy/policy_int.h"
#include "common/xalloc.h"
#include "common/sha256.h"
#include "evidence/evread.h"

struct u16set {
	uint16_t *v;
	size_t n, cap;
};

static void set_add(struct u16set *s, uint16_t x)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->v[mid] == x)
			return;
		if (s->v[mid] < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 4;
		uint16_t *v = xreallocarray(s->v, s->cap, sizeof(*s->v));

		s->v = v;
	}
	memmove(s->v + lo + 1, s->v + lo, (s->n - lo) * sizeof(*s->v));
	s->v[lo] = x;
	s->n++;
}

static void set_union(struct u16set *dst, const struct u16set *src)
{
	for (size_t i = 0; i < src->n; i++)
		set_add(dst, src->v[i]);
}

static bool set_eq(const struct u16set *a, const struct u16set *b)
{
	return a->n == b->n && (!a->n || !memcmp(a->v, b->v, a->n * sizeof(*a->v)));
}

/* One destination as seen in one step (or, after grouping, in one output section). */
struct obs {
	char *step; /* NULL: no step */
	char *dest; /* normalised host, or canonical address text */
	bool is_host;
	bool connected;
	struct u16set tcp, udp, udplite;
	bool icmp;	/* pinged: ICMP has no ports */
	unsigned asked; /* ASK_* bits: the query types the name was looked up with */
};

/* A name only asked as SRV or HTTPS may be a question derived from another name, which that
 * name's own entry already admits (policy_check_question); any other query type needs its own. */
enum { ASK_SRV = 1, ASK_HTTPS = 2, ASK_OTHER = 4 };

static void obs_free(void *p)
{
	struct obs *o = p;

	if (!o)
		return;
	free(o->step);
	free(o->dest);
	free(o->tcp.v);
	free(o->udp.v);
	free(o->udplite.v);
	free(o);
}

struct learn {
	struct strmap obs;	 /* "<step>\x1f<h|i><dest>" → struct obs */
	struct strmap steps;	 /* named steps seen */
	struct strmap resolvers; /* canonical address text */
	struct strmap blocked;	 /* destinations refused by a block list */
	struct strmap labels;	 /* whole-job step labels seen (not sections) */
	bool null_step;
	size_t events, connects, dns, bad_names, bad_steps, runner, unknown_step_runs;
	/* the run being read: the section its events belong to */
	bool run_step_known;
	char *run_step;
	int wildcard_min;
	struct strbuf runs;
};

static unsigned ask_bit(const char *qtype)
{
	switch (policy_qtype_of(qtype)) {
	case POLICY_QTYPE_SRV:
		return ASK_SRV;
	case POLICY_QTYPE_HTTPS:
		return ASK_HTTPS;
	}
	return ASK_OTHER;
}

static struct obs *obs_get(struct learn *L, const char *step, const char *dest, bool is_host)
{
	struct strbuf k = STRBUF_INIT;
	struct strmap_entry *e;
	bool created;

	sb_addf(&k, "%s%s\x1f%c%s", step ? "=" : "", step ? step : "", is_host ? 'h' : 'i', dest);
	e = strmap_get(&L->obs, k.buf);
	if (!e && L->obs.count >= LEARN_MAX_DESTS) {
		sb_release(&k);
		return NULL;
	}
	e = strmap_put(&L->obs, k.buf, &created);
	sb_release(&k);
	if (created) {
		struct obs *o = xcalloc(1, sizeof(*o));

		o->step = step ? xstrdup(step) : NULL;
		o->dest = xstrdup(dest);
		o->is_host = is_host;
		e->val = o;
	}
	return e->val;
}

static const char *jstr(json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

/* The section an event belongs to: the step its run enforced, never a label alone (a
 * whole-job run labels events with each CI step while one rule set covers the job). Step
 * names as the parser accepts them; anything else is attributed to no step. */
static const char *step_of(struct learn *L, json_t *ev)
{
	const char *s = jstr(ev, "step");
	size_t n;

	if (s && (!L->run_step || strcmp(s, L->run_step)) && L->labels.count < 1000) {
		struct strbuf lb = STRBUF_INIT;

		/* into a comment line: printable bytes only, short */
		for (size_t i = 0; s[i] && i < 64; i++)
			sb_addch(&lb, (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i]);
		strmap_put(&L->labels, sb_str(&lb), NULL);
		sb_release(&lb);
	}
	s = L->run_step;
	if (!s)
		return NULL;
	n = strlen(s);
	if (!n || n > POLICY_STEP_MAX)
		goto bad;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			goto bad;
	return s;
bad:
	L->bad_steps++;
	return NULL;
}

/* A host name from the log, re-validated; wildcard-looking names are data, not patterns. */
static bool host_of(struct learn *L, const char *h, char out[POLICY_HOST_MAX + 4])
{
	size_t n = h ? strlen(h) : 0;

	if (!h)
		return false;
	if (!n || h[0] == '*' || n > POLICY_HOST_MAX + 1 || policy_host_normalise(h, n, out)) {
		L->bad_names++;
		return false;
	}
	return true;
}

static bool addr_of(const char *s, char out[INET6_ADDRSTRLEN])
{
	int family;
	uint8_t a[16], prefix;
	char why[POLICY_WHYLEN];

	if (!s || policy_addr_parse(s, false, &family, a, &prefix, why))
		return false;
	return inet_ntop(family, a, out, INET6_ADDRSTRLEN) != NULL;
}

static void note(struct strmap *m, const char *s)
{
	if (m->count < 1000)
		strmap_put(m, s, NULL);
}

/* Returns 0, or -1 with err filled. */
static int learn_event(struct learn *L, json_t *ev, char *err, size_t errlen)
{
	const char *kind = jstr(ev, "kind"), *verdict = jstr(ev, "verdict"), *step;
	char host[POLICY_HOST_MAX + 4], addr[INET6_ADDRSTRLEN];
	struct obs *o;

	if (!kind) {
		snprintf(err, errlen, "event has no \"kind\"");
		return -1;
	}
	if (strcmp(kind, "connect") && strcmp(kind, "dns"))
		return 0;
	/* The runner's own connections are allowed in every mode (docs/agent.md): a policy
	 * entry for them would only widen what the job's steps may reach. */
	if (json_is_true(json_object_get(ev, "runner"))) {
		L->runner++;
		return 0;
	}
	step = step_of(L, ev);
	if (!strcmp(kind, "connect")) {
		const char *proto = jstr(ev, "proto");
		json_t *dp = json_object_get(ev, "dport");
		json_int_t port = json_is_integer(dp) ? json_integer_value(dp) : -1;
		bool has_host;

		L->connects++;
		if (!proto ||
		    (strcmp(proto, "tcp") && strcmp(proto, "udp") && strcmp(proto, "udplite") &&
		     strcmp(proto, "icmp") && strcmp(proto, "icmpv6"))) {
			snprintf(
			    err, errlen,
			    "connect event: \"proto\" is not tcp, udp, udplite, icmp or icmpv6");
			return -1;
		}
		if (port < 0 || port > 65535) {
			snprintf(err, errlen, "connect event: \"dport\" is not a port number");
			return -1;
		}
		if (!addr_of(jstr(ev, "daddr"), addr)) {
			snprintf(err, errlen, "connect event: \"daddr\" is not an address");
			return -1;
		}
		has_host = host_of(L, jstr(ev, "host"), host);
		if (verdict && !strcmp(verdict, "block")) {
			note(&L->blocked, has_host ? host : addr);
			return 0;
		}
		/* ICMP has no port: the address is the whole destination. */
		if (!strncmp(proto, "icmp", 4)) {
			o = obs_get(L, step, has_host ? host : addr, has_host);
			if (!o)
				goto full;
			o->connected = o->icmp = true;
			goto seen;
		}
		/* Port 0 cannot be written in a policy and reaches nothing. */
		if (port == 0)
			return 0;
		if (port == 53 && !has_host) {
			note(&L->resolvers, addr);
			return 0;
		}
		o = obs_get(L, step, has_host ? host : addr, has_host);
		if (!o)
			goto full;
		o->connected = true;
		set_add(!strcmp(proto, "tcp")	? &o->tcp
			: !strcmp(proto, "udp") ? &o->udp
						: &o->udplite,
			port);
	} else {
		L->dns++;
		if (!host_of(L, jstr(ev, "query"), host))
			return 0;
		if (verdict && !strcmp(verdict, "block")) {
			note(&L->blocked, host);
			return 0;
		}
		o = obs_get(L, step, host, true);
		if (!o)
			goto full;
		o->asked |= ask_bit(jstr(ev, "qtype"));
	}
seen:
	if (step)
		strmap_put(&L->steps, step, NULL);
	else
		L->null_step = true;
	return 0;
full:
	snprintf(err, errlen, "more than %d distinct destinations; learn from fewer runs",
		 LEARN_MAX_DESTS);
	return -1;
}

int learn_run_step_at(int dirfd, char **step)
{
	int fd = openat(dirfd, "summary.json", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	json_error_t jerr;
	struct stat st;
	json_t *sum = NULL, *v;
	FILE *f;
	int rc = 0;

	*step = NULL;
	if (fd < 0)
		return 0;
	/* bounded: a regular file of at most 64 MiB, as `report` reads it */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > (64 << 20) ||
	    !(f = fdopen(fd, "re"))) {
		close(fd);
		return 0;
	}
	sum = json_loadf(f, 0, &jerr);
	fclose(f);
	v = json_object_get(sum, "step");
	if (json_is_object(sum) && (!v || json_is_null(v) || json_is_string(v))) {
		*step = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
		rc = 1;
	}
	json_decref(sum);
	return rc;
}

int learn_run_step(const char *rundir, char **step)
{
	int dfd = open(rundir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	*step = NULL;
	if (dfd < 0)
		return 0;
	rc = learn_run_step_at(dfd, step);
	close(dfd);
	return rc;
}

/* Reads one log to its end; in is closed. */
static int learn_file(struct learn *L, struct evread *in)
{
	const char *path = in->name.buf;
	char err[256];
	int rc = -1, r;

	while ((r = evread_next(in)) > 0) {
		json_error_t jerr;
		json_t *ev;

		if (!in->line.len)
			continue;
		ev = json_load_line(in->line.buf, in->line.len, &jerr);
		if (!ev) {
			/* A run killed mid-write leaves a torn last line; the rest is still good.
			 */
			if (!in->terminated) {
				rw_err("%s:%llu: ignoring incomplete last line", path,
				       (unsigned long long)in->lineno);
				break;
			}
			rw_err("%s:%llu:%d: not JSON: %s", path, (unsigned long long)in->lineno,
			       jerr.column, jerr.text);
			goto out;
		}
		if (!json_is_object(ev)) {
			json_decref(ev);
			rw_err("%s:%llu: not a JSON object", path, (unsigned long long)in->lineno);
			goto out;
		}
		L->events++;
		if (learn_event(L, ev, err, sizeof(err))) {
			json_decref(ev);
			rw_err("%s:%llu: %s", path, (unsigned long long)in->lineno, err);
			goto out;
		}
		json_decref(ev);
	}
	if (r < 0) {
		rw_err("%s", in->err);
		goto out;
	}
	rc = 0;
out:
	evread_close(in);
	return rc;
}

/* Records whether the next run's enforced step is known (learn_run_step's result). */
static void set_run_step(struct learn *L, int known)
{
	L->run_step_known = known == 1;
	if (!L->run_step_known)
		L->unknown_step_runs++;
}

static int learn_dir(struct learn *L, const char *dir)
{
	struct strbuf path = STRBUF_INIT;
	struct evread in;
	char err[EV_ERRLEN];
	int rc;

	free(L->run_step);
	set_run_step(L, learn_run_step(dir, &L->run_step));
	sb_addf(&path, "%s/events.ndjson", dir);
	rc = evread_open(&in, path.buf, LEARN_MAX_LINE, err);
	sb_release(&path);
	if (rc) {
		rw_err("%s", err);
		return -1;
	}
	return learn_file(L, &in);
}

/* ---- building the sections ---- */

struct section {
	const char *step; /* NULL: top level */
	struct strmap dests;
};

static void merge_into(struct strmap *dests, const struct obs *o, const char *dest, bool is_host)
{
	struct strbuf k = STRBUF_INIT;
	struct strmap_entry *e;
	struct obs *d;
	bool created;

	sb_addf(&k, "%c%s", is_host ? 'h' : 'i', dest);
	e = strmap_put(dests, k.buf, &created);
	sb_release(&k);
	if (created) {
		d = xcalloc(1, sizeof(*d));
		d->dest = xstrdup(dest);
		d->is_host = is_host;
		e->val = d;
	}
	d = e->val;
	d->connected |= o->connected;
	set_union(&d->tcp, &o->tcp);
	set_union(&d->udp, &o->udp);
	set_union(&d->udplite, &o->udplite);
	d->icmp |= o->icmp;
	d->asked |= o->asked;
}

static void group_wildcards(struct strmap *dests, int min)
{
	struct strmap parents; /* parent → count of children */
	struct strmap_entry *e, *nx;

	if (min <= 0)
		return;
	strmap_init(&parents);
	strmap_for_each(x, dests)
	{
		struct obs *o = x->val;
		const char *dot = o->is_host ? strchr(o->dest, '.') : NULL;

		/* The parent must itself have two labels: never *.com. */
		if (dot && strchr(dot + 1, '.')) {
			struct strmap_entry *p = strmap_put(&parents, dot + 1, NULL);

			p->val = (void *)((uintptr_t)p->val + 1);
		}
	}
	strmap_for_each(p, &parents)
	{
		struct strbuf w = STRBUF_INIT;
		struct obs star = {0};

		if ((uintptr_t)p->val < (uintptr_t)min)
			continue;
		for (e = dests->first; e; e = nx) {
			struct obs *o = e->val;
			const char *dot = strchr(o->dest, '.');

			nx = e->order_next;
			if (o->is_host && dot && !strcmp(dot + 1, p->key) && o->dest[0] != '*') {
				star.connected |= o->connected;
				set_union(&star.tcp, &o->tcp);
				set_union(&star.udp, &o->udp);
				set_union(&star.udplite, &o->udplite);
				star.icmp |= o->icmp;
				obs_free(strmap_del(dests, e->key));
			}
		}
		sb_addf(&w, "*.%s", p->key);
		merge_into(dests, &star, w.buf, true);
		sb_release(&w);
		free(star.tcp.v);
		free(star.udp.v);
		free(star.udplite.v);
	}
	strmap_clear(&parents, NULL);
}

/* Host names sort by reversed labels so siblings and their wildcard sit together. */
static void sort_key(struct strbuf *sb, const struct obs *o)
{
	sb_reset(sb);
	if (o->is_host) {
		const char *end = o->dest + strlen(o->dest);

		sb_addch(sb, '0');
		while (end > o->dest) {
			const char *s = end;

			while (s > o->dest && s[-1] != '.')
				s--;
			sb_add(sb, s, end - s);
			sb_addch(sb, '\x01');
			end = s > o->dest ? s - 1 : s;
		}
	} else {
		uint8_t a[16];
		int fam = strchr(o->dest, ':') ? AF_INET6 : AF_INET;

		memset(a, 0, sizeof(a));
		inet_pton(fam, o->dest, a);
		char hex[33];

		sb_addch(sb, fam == AF_INET ? '1' : '2');
		hex_encode(a, 16, hex);
		sb_addstr(sb, hex);
	}
}

struct sorted {
	char *key;
	struct obs *o;
};

static int sorted_cmp(const void *a, const void *b)
{
	return strcmp(((const struct sorted *)a)->key, ((const struct sorted *)b)->key);
}

/* Ports seen, as ranges, squeezed to at most max ranges by filling the smallest gaps (a
 * widening, reported in a comment: the kernel has POLICY_RULES_MAX ranges per destination). */
static size_t port_ranges(const struct u16set *s, struct policy_rule *r, size_t max, bool *widened)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (n && r[n - 1].hi + 1 == s->v[i])
			r[n - 1].hi = s->v[i];
		else
			r[n++] = (struct policy_rule){s->v[i], s->v[i], 0};
	}
	while (n > max) {
		size_t best = 0;

		for (size_t i = 1; i + 1 < n; i++)
			if (r[i + 1].lo - r[i].hi < r[best + 1].lo - r[best].hi)
				best = i;
		r[best].hi = r[best + 1].hi;
		memmove(r + best + 1, r + best + 2, (n - best - 2) * sizeof(*r));
		n--;
		*widened = true;
	}
	return n;
}

static void emit_entry(struct strbuf *sb, const char *indent, const struct obs *o,
		       const struct u16set *ports, const char *proto, size_t max)
{
	struct policy_rule *r = xcalloc(ports->n + 1, sizeof(*r));
	bool widened = false;
	size_t n = port_ranges(ports, r, max, &widened);

	sb_addf(sb, "%s- %s: \"%s\"\n", indent, o->is_host ? "host" : "ip", o->dest);
	if (n) {
		sb_addf(sb, "%s  ports: [", indent);
		for (size_t i = 0; i < n; i++) {
			if (r[i].lo == r[i].hi)
				sb_addf(sb, "%s%u", i ? ", " : "", r[i].lo);
			else
				sb_addf(sb, "%s\"%u-%u\"", i ? ", " : "", r[i].lo, r[i].hi);
		}
		sb_addstr(sb, "]");
		if (widened)
			sb_addf(sb, "  # widened to %zu ranges; %zu ports were seen", max,
				ports->n);
		sb_addch(sb, '\n');
	}
	if (proto)
		sb_addf(sb, "%s  proto: %s\n", indent, proto);
	free(r);
}

static bool set_has(const struct u16set *s, uint16_t x)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == x)
			return true;
	return false;
}

/* A name looked up only with query types that standard clients derive from another name in
 * the same section (apt's `_http._tcp.<mirror>` SRV), where that name's entry reaches the port
 * the question stands for: the gate admits it through that entry, so it needs none of its own.
 * An entry of its own would allow connections to whatever the name resolved to. */
static bool admitted_through_base(const struct strmap *dests, const struct obs *o)
{
	static const struct {
		unsigned bit;
		int qtype;
	} asks[] = {{ASK_SRV, POLICY_QTYPE_SRV}, {ASK_HTTPS, POLICY_QTYPE_HTTPS}};

	if (!o->is_host || !o->asked || (o->asked & ASK_OTHER))
		return false;
	for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
		struct policy_derived d;
		struct strbuf k = STRBUF_INIT;
		const struct strmap_entry *e;
		const struct obs *b;
		bool covered;

		if (!(o->asked & asks[i].bit))
			continue;
		if (!policy_derived_question(o->dest, asks[i].qtype, &d))
			return false;
		sb_addf(&k, "h%s", d.base);
		e = strmap_get(dests, k.buf);
		sb_release(&k);
		b = e ? e->val : NULL;
		covered = b && (((d.protos & POLICY_PROTO_TCP) && set_has(&b->tcp, d.port)) ||
				((d.protos & POLICY_PROTO_UDP) && set_has(&b->udp, d.port)));
		if (!covered)
			return false;
	}
	return true;
}

static void emit_section(struct strbuf *sb, const char *indent, struct strmap *dests)
{
	struct sorted *v = xcalloc(dests->count + 1, sizeof(*v));
	struct strbuf k = STRBUF_INIT;
	size_t n = 0;

	strmap_for_each(e, dests)
	{
		sort_key(&k, e->val);
		v[n].key = sb_detach(&k);
		v[n++].o = e->val;
	}
	qsort(v, n, sizeof(*v), sorted_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct obs *o = v[i].o;

		bool tcp_udp = o->tcp.n || o->udp.n;

		if (!tcp_udp && !o->udplite.n && !o->icmp && admitted_through_base(dests, o)) {
			/* Derived from a name listed here: admitted through its entry. */
		} else if (!tcp_udp && !o->udplite.n && !o->icmp) {
			/* Only looked up: the name must resolve; no port was ever used. */
			sb_addf(sb, "%s- %s: \"%s\"  # looked up only; no connection seen\n",
				indent, o->is_host ? "host" : "ip", o->dest);
		} else if (tcp_udp && set_eq(&o->tcp, &o->udp)) {
			emit_entry(sb, indent, o, &o->tcp, NULL, POLICY_RULES_MAX);
		} else if (tcp_udp) {
			/* Both protocols share the destination's POLICY_RULES_MAX kernel ranges. */
			size_t max = o->tcp.n && o->udp.n ? POLICY_RULES_MAX / 2 : POLICY_RULES_MAX;

			if (o->tcp.n)
				emit_entry(sb, indent, o, &o->tcp, "tcp", max);
			if (o->udp.n)
				emit_entry(sb, indent, o, &o->udp, "udp", max);
		}
		if (o->udplite.n)
			emit_entry(sb, indent, o, &o->udplite, "udplite", POLICY_RULES_MAX);
		if (o->icmp)
			sb_addf(sb, "%s- %s: \"%s\"\n%s  proto: icmp\n", indent,
				o->is_host ? "host" : "ip", o->dest, indent);
		free(v[i].key);
	}
	free(v);
	sb_release(&k);
}

static void comment_list(struct strbuf *sb, const char *label, const struct strmap *m)
{
	size_t shown = 0;

	if (!m->count)
		return;
	sb_addf(sb, "# %s:", label);
	strmap_for_each(e, m)
	{
		if (shown++ == 20) {
			sb_addf(sb, " ... (%zu in all)", m->count);
			break;
		}
		sb_addf(sb, " %s", e->key);
	}
	sb_addch(sb, '\n');
}

static void render(struct learn *L, struct strbuf *out)
{
	struct strmap reach; /* dest key → (uintptr) named steps it was seen in, +1<<30 if none */
	struct section top = {0}, *steps;
	size_t nsteps = L->steps.count, i = 0;
	bool any_step = false;

	strmap_init(&reach);
	strmap_init(&top.dests);
	steps = xcalloc(nsteps + 1, sizeof(*steps));
	strmap_for_each(e, &L->steps)
	{
		steps[i].step = e->key;
		strmap_init(&steps[i].dests);
		e->val = (void *)(uintptr_t)i++;
	}
	strmap_for_each(e, &L->obs)
	{
		struct obs *o = e->val;
		struct strbuf k = STRBUF_INIT;
		struct strmap_entry *r;

		sb_addf(&k, "%c%s", o->is_host ? 'h' : 'i', o->dest);
		r = strmap_put(&reach, k.buf, NULL);
		r->val = (void *)((uintptr_t)r->val + (o->step ? 1 : (1u << 30)));
		sb_release(&k);
	}
	strmap_for_each(e, &L->obs)
	{
		struct obs *o = e->val;
		struct strbuf k = STRBUF_INIT;
		uintptr_t seen;

		sb_addf(&k, "%c%s", o->is_host ? 'h' : 'i', o->dest);
		seen = (uintptr_t)strmap_get(&reach, k.buf)->val;
		sb_release(&k);
		if (!o->step || seen >= (1u << 30) || seen == nsteps) {
			merge_into(&top.dests, o, o->dest, o->is_host);
		} else {
			size_t si = (uintptr_t)strmap_get(&L->steps, o->step)->val;

			merge_into(&steps[si].dests, o, o->dest, o->is_host);
			any_step = true;
		}
	}
	group_wildcards(&top.dests, L->wildcard_min);
	for (i = 0; i < nsteps; i++)
		group_wildcards(&steps[i].dests, L->wildcard_min);

	sb_addstr(out, "# Suggested by `runwarden learn`: the narrowest policy that lets the runs "
		       "below pass.\n# Review it before enforcing: every entry is a destination "
		       "the runs reached.\n");
	sb_addf(out, "# runs: %s\n", sb_str(&L->runs));
	sb_addf(out, "# events: %zu, connects: %zu, DNS questions: %zu", L->events, L->connects,
		L->dns);
	if (L->wildcard_min > 0)
		sb_addf(out, "; *.parent stands for >= %d names seen under one parent",
			L->wildcard_min);
	sb_addch(out, '\n');
	if (L->bad_names)
		sb_addf(out, "# %zu host names were not valid DNS names and were left out\n",
			L->bad_names);
	if (L->bad_steps)
		sb_addf(out, "# %zu events had unusable step names and count as no step\n",
			L->bad_steps);
	comment_list(out, "blocked during the runs (not allowed here)", &L->blocked);
	if (L->runner)
		sb_addf(out,
			"# %zu connections of the CI runner itself are left out: they are allowed "
			"in every mode\n",
			L->runner);
	comment_list(out,
		     "steps seen as labels (whole-job mode: one rule set covers the whole job, so "
		     "what they reached is at the top level)",
		     &L->labels);
	if (L->unknown_step_runs)
		sb_addf(out,
			"# %zu run(s) had no readable summary.json: their destinations are at the "
			"top level\n",
			L->unknown_step_runs);
	sb_addstr(out, "version: 1\nmode: enforce\n");
	if (top.dests.count) {
		sb_addstr(out, "allow:\n");
		emit_section(out, "  ", &top.dests);
	} else {
		sb_addstr(out, "allow: []\n");
	}
	if (any_step) {
		sb_addstr(out, "steps:\n");
		for (i = 0; i < nsteps; i++) {
			sb_addstr(out, "  ");
			policy_yaml_quote(out, steps[i].step);
			if (!steps[i].dests.count) {
				sb_addstr(out, ":  # uses the top level only\n");
				continue;
			}
			sb_addstr(out, ":\n    allow:\n");
			emit_section(out, "      ", &steps[i].dests);
		}
	}
	if (L->resolvers.count) {
		bool first = true;

		sb_addstr(out, "dns:\n  resolvers: [");
		strmap_for_each(e, &L->resolvers)
		{
			sb_addf(out, "%s\"%s\"", first ? "" : ", ", e->key);
			first = false;
		}
		sb_addstr(out, "]\n  refuse_unlisted: true\n");
	}
	for (i = 0; i < nsteps; i++)
		strmap_clear(&steps[i].dests, obs_free);
	free(steps);
	strmap_clear(&top.dests, obs_free);
	strmap_clear(&reach, NULL);
}

/* Run dir names go into a comment: one line, printable. */
static void add_run_name(struct strbuf *sb, const char *s)
{
	if (sb->len)
		sb_addstr(sb, ", ");
	for (; *s; s++)
		sb_addch(sb, ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s);
}

static int write_out(const char *path, const struct strbuf *sb)
{
	struct strbuf tmp = STRBUF_INIT;
	FILE *f;
	int rc = -1, fd;

	if (!path) {
		fwrite(sb_str(sb), 1, sb->len, stdout);
		return fflush(stdout) ? -1 : 0;
	}
	sb_addf(&tmp, "%s.tmp.%d", path, (int)getpid());
	/* Exclusive and never through a symlink: the name is guessable, and the
	 * directory may be one the job wrote to. */
	fd = open(tmp.buf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		rw_err("%s: cannot create: %s", tmp.buf, strerror(errno));
		goto out;
	}
	if (fwrite(sb_str(sb), 1, sb->len, f) != sb->len || fflush(f) || fsync(fileno(f))) {
		rw_err("%s: write failed: %s", tmp.buf, strerror(errno));
		fclose(f);
		unlink(tmp.buf);
		goto out;
	}
	fclose(f);
	if (rename(tmp.buf, path)) {
		rw_err("%s: cannot rename into place: %s", path, strerror(errno));
		unlink(tmp.buf);
		goto out;
	}
	rc = 0;
out:
	sb_release(&tmp);
	return rc;
}

/* One learner's tables, set up and torn down the same way by every entry point. */
static void learn_init(struct learn *L)
{
	strmap_init(&L->obs);
	strmap_init(&L->steps);
	strmap_init(&L->resolvers);
	strmap_init(&L->blocked);
	strmap_init(&L->labels);
}

static void learn_release(struct learn *L)
{
	strmap_clear(&L->obs, obs_free);
	strmap_clear(&L->steps, NULL);
	strmap_clear(&L->resolvers, NULL);
	strmap_clear(&L->blocked, NULL);
	strmap_clear(&L->labels, NULL);
	free(L->run_step);
	sb_release(&L->runs);
}

/* One run of a baseline, handed over as the events its log had (baseline/query.c). */
static int learn_stored_run(void *ctx, const char *label, const char *run_step, json_t *events)
{
	struct learn *L = ctx;
	char err[256];
	json_t *ev;
	size_t i;

	free(L->run_step);
	L->run_step = run_step ? xstrdup(run_step) : NULL;
	set_run_step(L, 1);
	add_run_name(&L->runs, label);
	json_array_foreach(events, i, ev)
	{
		L->events++;
		if (learn_event(L, ev, err, sizeof(err))) {
			rw_err("%s: %s", label, err);
			return -1;
		}
	}
	return 0;
}

static int learn_baseline(struct learn *L, const struct learn_baseline *bl)
{
	struct bl_store s = {.must_exist = true};
	struct bl_filter f = {bl->repo, bl->workflow, bl->job, bl->step};
	char err[BL_ERRLEN + 256];
	int rc;

	if (bl_store_open(&s, bl->spec, err, sizeof(err))) {
		rw_err("%s", err);
		return -1;
	}
	rc = bl_store_learn(&s, &f, bl->last, learn_stored_run, L, err, sizeof(err));
	if (rc && err[0])
		rw_err("%s", err);
	bl_store_close(&s);
	return rc;
}

int learn_write_opts(const char *const *rundirs, int n, const char *out_path, int wildcard_min)
{
	return learn_write_from(NULL, rundirs, n, out_path, wildcard_min);
}

int learn_write_from(const struct learn_baseline *bl, const char *const *rundirs, int n,
		     const char *out_path, int wildcard_min)
{
	struct learn L = {.wildcard_min = wildcard_min};
	struct strbuf out = STRBUF_INIT;
	int rc = -1;

	learn_init(&L);
	if (bl && learn_baseline(&L, bl))
		goto out;
	for (int i = 0; i < n; i++) {
		add_run_name(&L.runs, rundirs[i]);
		if (learn_dir(&L, rundirs[i]))
			goto out;
	}
	render(&L, &out);
	rc = write_out(out_path, &out);
out:
	learn_release(&L);
	sb_release(&out);
	return rc;
}

int learn_write(const char *const *rundirs, int n, const char *out_path)
{
	return learn_write_opts(rundirs, n, out_path, LEARN_WILDCARD_MIN);
}

int learn_write_at(int dirfd, const char *dir_name)
{
	struct learn L = {.wildcard_min = LEARN_WILDCARD_MIN};
	struct strbuf out = STRBUF_INIT, path = STRBUF_INIT;
	struct evread in;
	char err[EV_ERRLEN];
	int rc = -1, fd;

	learn_init(&L);
	set_run_step(&L, learn_run_step_at(dirfd, &L.run_step));
	add_run_name(&L.runs, dir_name);
	sb_addf(&path, "%s/events.ndjson", dir_name);
	if (evread_openat(&in, dirfd, "events.ndjson", path.buf, LEARN_MAX_LINE, err)) {
		rw_err("%s", err);
		goto out;
	}
	if (learn_file(&L, &in))
		goto out;
	render(&L, &out);
	sb_reset(&path);
	sb_addf(&path, "%s/policy.learned.yaml", dir_name);
	fd = openat(dirfd, "policy.learned.yaml",
		    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0 || fchmod(fd, 0644) || write_full(fd, sb_str(&out), out.len) || fsync(fd)) {
		rw_err("%s: cannot write: %s", path.buf, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	rc = close(fd) ? -1 : 0;
out:
	learn_release(&L);
	sb_release(&out);
	sb_release(&path);
	return rc;
}

static const char learn_usage[] =
    "usage: runwarden learn RUNDIR... [--out FILE] [--wildcard-min N]\n"
    "       runwarden learn --from-baseline STORE --repo R [--workflow W] --job J\n"
    "                       [--last N] [RUNDIR...] [--out FILE]\n"
    "\n"
    "Reads RUNDIR/events.ndjson of observed runs and writes the narrowest policy that\n"
    "would have let them all pass (review it, then run with --mode enforce).\n"
    "\n"
    "  --out FILE          write the policy here (default: standard output)\n"
    "  --wildcard-min N    sibling names under one parent that become *.parent\n"
    "                      (default 5; 0 never uses wildcards)\n"
    "  --from-baseline STORE  also the runs of one job recorded in a baseline\n"
    "                      (docs/baseline.md): --repo, --job, optionally --workflow,\n"
    "                      --step (only that step) and --last N (the newest N runs)\n";

int cmd_learn(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"out", required_argument, NULL, 'o'},
	    {"wildcard-min", required_argument, NULL, 'w'},
	    {"from-baseline", required_argument, NULL, 'B'},
	    {"repo", required_argument, NULL, 'R'},
	    {"workflow", required_argument, NULL, 'W'},
	    {"job", required_argument, NULL, 'J'},
	    {"step", required_argument, NULL, 'S'},
	    {"last", required_argument, NULL, 'L'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *out = NULL;
	uint64_t wmin = LEARN_WILDCARD_MIN, last = 0;
	struct learn_baseline bl = {0};
	bool from_bl = false;
	int c;

	optind = 1;
	while ((c = cli_getopt("learn", argc, argv, "o:h", opts)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'w':
			if (!parse_u64(optarg, 0, 100000, &wmin))
				return cli_usage("learn",
						 "--wildcard-min: '%s' is not a number 0-100000",
						 optarg);
			break;
		case 'B':
			bl.spec = optarg;
			from_bl = true;
			break;
		case 'R':
			bl.repo = optarg;
			break;
		case 'W':
			bl.workflow = optarg;
			break;
		case 'J':
			bl.job = optarg;
			break;
		case 'S':
			bl.step = optarg;
			break;
		case 'L':
			if (!parse_u64(optarg, 1, 1000000, &last))
				return cli_usage("learn", "--last: '%s' is not a number 1-1000000",
						 optarg);
			bl.last = last;
			break;
		case 'h':
			fputs(learn_usage, stdout);
			return 0;
		default:
			return CLI_USAGE;
		}
	}
	if (!from_bl && (bl.repo || bl.workflow || bl.job || bl.step || bl.last))
		return cli_usage("learn", "--repo, --workflow, --job, --step and --last need "
					  "--from-baseline STORE");
	if (from_bl && (!bl.repo || !bl.job))
		return cli_usage("learn", "--from-baseline needs --repo and --job (which job's "
					  "runs?)");
	if (optind >= argc && !from_bl)
		return cli_usage("learn", "no run directory given");
	return learn_write_from(from_bl ? &bl : NULL, (const char *const *)argv + optind,
				argc - optind, out, (int)wmin)
		   ? 1
		   : 0;
}
