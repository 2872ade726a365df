/*
 * Policy model and the questions asked of it: host pattern matching, the flattened per-step rule
 * set with its host lookup tables, address checks, the kernel-facing CIDR walk, and rendering a
 * policy back as YAML. The YAML reader is policy_yaml.c; the block list is blocklist.c.
 */
#include "policy/policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/netnames.h"
#include "common/strbuf.h"
#include "common/strmap.h"
#include "policy/policy_int.h"
#include "common/xalloc.h"
#include "common/sha256.h"

const char *policy_mode_name(enum policy_mode m)
{
	switch (m) {
	case POLICY_MODE_OBSERVE:
		return "observe";
	case POLICY_MODE_LEARN:
		return "learn";
	case POLICY_MODE_ENFORCE:
		return "enforce";
	default:
		return "unset";
	}
}

enum policy_mode policy_mode_parse(const char *s)
{
	if (!s)
		return POLICY_MODE_UNSET;
	if (!strcmp(s, "observe"))
		return POLICY_MODE_OBSERVE;
	if (!strcmp(s, "learn"))
		return POLICY_MODE_LEARN;
	if (!strcmp(s, "enforce"))
		return POLICY_MODE_ENFORCE;
	return POLICY_MODE_UNSET;
}

bool policy_fails_on_violation(const struct policy *p, enum policy_mode mode)
{
	if (p && p->fail_on_violation >= 0)
		return p->fail_on_violation;
	return mode == POLICY_MODE_ENFORCE;
}

const struct policy_step *policy_find_step(const struct policy *p, const char *name)
{
	for (size_t i = 0; p && name && i < p->nsteps; i++)
		if (!strcmp(p->steps[i].name, name))
			return &p->steps[i];
	return NULL;
}

/* ---- entries and lists ---- */

static struct policy_http *http_copy(const struct policy_http *h)
{
	struct policy_http *c;

	if (!h)
		return NULL;
	c = xmalloc(sizeof(*c));
	*c = *h;
	for (unsigned i = 0; i < h->npaths; i++)
		c->paths[i] = xstrdup(h->paths[i]);
	return c;
}

static void http_free(struct policy_http *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < h->npaths; i++)
		free(h->paths[i]);
	free(h);
}

static void list_push(struct policy_list *l, const struct policy_entry *e)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n] = *e;
	if (e->host)
		l->v[l->n].host = xstrdup(e->host);
	l->v[l->n].http = http_copy(e->http);
	l->n++;
}

static void list_release(struct policy_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].host);
		http_free(l->v[i].http);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

void policy_list_free(struct policy_list *l)
{
	if (!l)
		return;
	list_release(l);
	free(l);
}

void policy_list_add(struct policy_list *l, const struct policy_entry *e)
{
	list_push(l, e);
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	free(p->path);
	list_release(&p->allow);
	list_release(&p->block);
	list_release(&p->inbound);
	for (size_t i = 0; i < p->nsteps; i++) {
		free(p->steps[i].name);
		list_release(&p->steps[i].allow);
		list_release(&p->steps[i].block);
	}
	free(p->steps);
	free(p->dns.resolvers);
	for (size_t i = 0; i < p->nfiles; i++)
		free(p->files[i]);
	free(p->files);
	for (size_t i = 0; i < p->secrets.nenv; i++)
		free(p->secrets.env[i]);
	free(p->secrets.env);
	for (size_t i = 0; i < p->secrets.nrules; i++) {
		free(p->secrets.rules[i].name);
		for (size_t k = 0; k < p->secrets.rules[i].nto; k++)
			free(p->secrets.rules[i].to[k]);
	}
	free(p->secrets.rules);
	free(p);
}

/* ---- port rules ---- */

static int rule_cmp(const void *a, const void *b)
{
	const struct policy_rule *x = a, *y = b;

	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->hi < y->hi ? -1 : x->hi > y->hi;
}

/* Sorts and merges overlapping or adjacent ranges of the same protocol mask, then drops a
 * single-protocol rule wholly inside an `any` rule. Returns the new count. */
size_t policy_rules_merge(struct policy_rule *r, size_t n)
{
	size_t out = 0;

	if (!n)
		return 0;
	qsort(r, n, sizeof(*r), rule_cmp);
	for (size_t i = 0; i < n; i++) {
		struct policy_rule *last = out ? &r[out - 1] : NULL;

		if (last && last->proto == r[i].proto &&
		    (uint32_t)r[i].lo <= (uint32_t)last->hi + 1) {
			if (r[i].hi > last->hi)
				last->hi = r[i].hi;
			continue;
		}
		r[out++] = r[i];
	}
	n = out;
	out = 0;
	for (size_t i = 0; i < n; i++) {
		bool covered = false;

		for (size_t j = 0; j < n && r[i].proto != POLICY_PROTO_ANY; j++)
			if (r[j].proto == POLICY_PROTO_ANY && r[j].lo <= r[i].lo &&
			    r[i].hi <= r[j].hi)
				covered = true;
		if (!covered)
			r[out++] = r[i];
	}
	return out;
}

bool policy_rules_cover(const struct policy_rule *r, size_t n, uint16_t port, unsigned proto)
{
	for (size_t i = 0; i < n; i++)
		if ((r[i].proto & proto) && r[i].lo <= port && port <= r[i].hi)
			return true;
	return false;
}

/* Adds src rules into m; on overflow keeps what fits (narrower, never wider). */
static void match_add_rules(struct policy_match *m, const struct policy_entry *e)
{
	struct policy_rule tmp[2 * POLICY_RULES_MAX];
	size_t n = m->nrules;

	memcpy(tmp, m->rules, n * sizeof(tmp[0]));
	memcpy(tmp + n, e->rules, e->nrules * sizeof(tmp[0]));
	n = policy_rules_merge(tmp, n + e->nrules);
	if (n > POLICY_RULES_MAX)
		n = POLICY_RULES_MAX;
	memcpy(m->rules, tmp, n * sizeof(tmp[0]));
	m->nrules = n;
}

/* ---- request rules (methods, paths) ---- */

static const char *const http_methods[] = {
#define HTTPM_NAME_(m) #m,
    HTTP_METHODS(HTTPM_NAME_)
#undef HTTPM_NAME_
};

const char *policy_http_method_name(unsigned i)
{
	return i < HTTPM_COUNT ? http_methods[i] : NULL;
}

uint32_t policy_http_method_bit(const char *name, size_t len)
{
	for (unsigned i = 0; i < HTTPM_COUNT; i++)
		if (strlen(http_methods[i]) == len && !memcmp(http_methods[i], name, len))
			return 1u << i;
	return 0;
}

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* "%XY" at p (n bytes left) with XY one of the two-letter codes in codes ("2e2f"): any case. */
static bool pct_is(const char *p, size_t n, const char *codes)
{
	if (n < 3 || p[0] != '%')
		return false;
	for (; codes[0]; codes += 2)
		if (p[1] == codes[0] && tolower((unsigned char)p[2]) == codes[1])
			return true;
	return false;
}

/*
 * What the kernel refuses in a target under `paths:` rules (bpf/httpjudge.bpf.h, which this
 * mirrors): a segment starting with a dot, raw or percent-encoded ("/a/../b", "/a/%2e%2e/b",
 * "/a/..;/b"), a backslash raw or encoded, and an encoded percent sign (a second decoding
 * could make either). Servers normalise these away from the bytes the prefix was compared
 * with; no ordinary client sends them. Only the path part counts (up to '?' or '#').
 */
static const char *target_unsafe(const char *t, size_t n)
{
	for (size_t i = 0; i < n && t[i] != '?' && t[i] != '#'; i++) {
		if (t[i] == '\\' || pct_is(t + i, n - i, "5c25"))
			return "a backslash or an encoded one, or an encoded '%'";
		if (t[i] == '/' && i + 1 < n &&
		    (t[i + 1] == '.' || pct_is(t + i + 1, n - i - 1, "2e")))
			return "a path segment starting with '.' (raw or %2e)";
	}
	return NULL;
}

const char *policy_http_path_check(const char *p, size_t len)
{
	if (!len || p[0] != '/')
		return "a path prefix starts with '/'";
	if (len > POLICY_PATH_MAX)
		return "longer than 128 bytes";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (c <= 0x20 || c >= 0x7f)
			return "spaces, control bytes and non-ASCII are not allowed "
			       "(percent-encode "
			       "them as the client sends them)";
		if (c == '?' || c == '#')
			return "a prefix of the path only: no '?' or '#'";
		if (c == '%' && (i + 2 >= len || !is_hex(p[i + 1]) || !is_hex(p[i + 2])))
			return "'%' must start a percent-encoded byte (%2F)";
	}
	if (target_unsafe(p, len))
		return "requests with a '.' segment, a backslash or an encoded '%' or '\\' are "
		       "refused under paths: a prefix cannot hold them";
	return NULL;
}

bool policy_http_admits(const struct policy_http *h, const char *method, const char *target)
{
	size_t n = strlen(target);

	if (!h)
		return true;
	if (h->methods && !(h->methods & policy_http_method_bit(method, strlen(method))))
		return false;
	if (!h->npaths)
		return true;
	if (n >= FB_PATH || target[0] != '/' || target_unsafe(target, n))
		return false;
	for (unsigned i = 0; i < h->npaths; i++)
		if (!strncmp(target, h->paths[i], strlen(h->paths[i])))
			return true;
	return false;
}

/* ---- host names ---- */

static bool label_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_';
}

/* Validates and lower-cases name[0..len) (no wildcard) into out; returns NULL or why. */
static const char *name_check(const char *in, size_t len, char *out, size_t *labels)
{
	size_t lab = 0, nlab = 0;

	if (len == 0)
		return "empty name";
	if (len > POLICY_HOST_MAX)
		return "name longer than 253 characters";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = in[i];

		if (c == '.') {
			if (lab == 0)
				return "empty label";
			if (in[i - 1] == '-')
				return "label ends with '-'";
			lab = 0;
			nlab++;
		} else if (c == '*') {
			return "'*' is only allowed as the whole first label (*.x or **.x)";
		} else if (!label_char(c)) {
			return "character not allowed in a host name (use letters, digits, '-', "
			       "'_'; "
			       "IDNs in punycode)";
		} else {
			if (lab == 0 && c == '-')
				return "label starts with '-'";
			if (++lab > 63)
				return "label longer than 63 characters";
		}
		out[i] = tolower(c);
	}
	if (lab == 0)
		return "empty label";
	if (in[len - 1] == '-')
		return "label ends with '-'";
	out[len] = 0;
	*labels = nlab + 1;
	return NULL;
}

const char *policy_host_normalise(const char *in, size_t len, char *out)
{
	size_t pre = 0, labels = 0;
	const char *why;
	unsigned char a4[4];

	if (len && in[len - 1] == '.')
		len--;
	if (len >= 3 && !memcmp(in, "**.", 3))
		pre = 3;
	else if (len >= 2 && !memcmp(in, "*.", 2))
		pre = 2;
	if (len - pre > POLICY_HOST_MAX)
		return "name longer than 253 characters";
	memcpy(out, in, pre);
	why = name_check(in + pre, len - pre, out + pre, &labels);
	if (why)
		return why;
	/* A wildcard over a single label would be a whole top-level domain. */
	if (pre && labels < 2)
		return "wildcard needs at least two labels after it (*.example.com, not *.com)";
	if (!pre && inet_pton(AF_INET, out, a4) == 1)
		return "an address, not a host name (use ip:)";
	return NULL;
}

bool host_pattern_match(const char *pattern, const char *name)
{
	char p[POLICY_HOST_MAX + 4], n[POLICY_HOST_MAX + 1];
	size_t plen = strlen(pattern), nlen = strlen(name), labels;
	const char *suffix;
	size_t slen;

	if (plen > POLICY_HOST_MAX + 3 || policy_host_normalise(pattern, plen, p))
		return false;
	if (nlen && name[nlen - 1] == '.')
		nlen--;
	if (name_check(name, nlen, n, &labels))
		return false;
	if (p[0] != '*')
		return !strcmp(p, n);
	suffix = p[1] == '*' ? p + 3 : p + 2;
	slen = strlen(suffix);
	/* Need at least "x." before the parent, and the boundary right before it. */
	if (nlen < slen + 2 || strcmp(n + nlen - slen, suffix) || n[nlen - slen - 1] != '.')
		return false;
	if (p[1] == '*')
		return true;
	return memchr(n, '.', nlen - slen - 1) == NULL;
}

/* ---- addresses ---- */

bool policy_v4mapped(const uint8_t a[16])
{
	static const uint8_t pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return !memcmp(a, pre, 12);
}

static bool prefix_ok(const uint8_t *a, int bits, int maxbits)
{
	for (int i = bits; i < maxbits; i++)
		if (a[i / 8] & (0x80 >> (i % 8)))
			return false;
	return true;
}

static void mask_to(uint8_t *a, int bits, int maxbits)
{
	for (int i = bits; i < maxbits; i++)
		a[i / 8] &= ~(0x80 >> (i % 8));
}

const char *policy_addr_parse(const char *s, bool cidr, int *family, uint8_t addr[16],
			      uint8_t *prefix, char why[POLICY_WHYLEN])
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	int bits = -1, max;

	if (slash && !cidr)
		return "ip: takes one address; use cidr: for a prefix";
	if (!slash && cidr)
		return "cidr: needs a prefix length (ADDR/N); use ip: for one address";
	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return "not an IPv4 or IPv6 address";
	memcpy(buf, s, alen);
	buf[alen] = 0;
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, buf, addr) == 1) {
		*family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		*family = AF_INET6;
		max = 128;
	} else {
		return "not an IPv4 or IPv6 address";
	}
	if (slash) {
		const char *d = slash + 1;
		size_t dl = strlen(d);

		/* Digits only, no sign or leading zeros: "/08" is more likely a typo than 8. */
		if (dl == 0 || dl > 3 || (dl > 1 && d[0] == '0') || strspn(d, "0123456789") != dl)
			return "prefix length must be a decimal number";
		bits = atoi(d);
		if (bits > max)
			return *family == AF_INET ? "IPv4 prefix length above 32"
						  : "IPv6 prefix length above 128";
	} else {
		bits = max;
	}
	if (!prefix_ok(addr, bits, max)) {
		uint8_t m[16];
		char txt[INET6_ADDRSTRLEN];

		memcpy(m, addr, 16);
		mask_to(m, bits, max);
		inet_ntop(*family, m, txt, sizeof(txt));
		snprintf(why, POLICY_WHYLEN,
			 "address has bits set beyond /%d (did you mean %s/%d?)", bits, txt, bits);
		return why;
	}
	/* v4-mapped IPv6 names an IPv4 destination: keep one form so both hooks agree. */
	if (*family == AF_INET6 && bits >= 96 && policy_v4mapped(addr)) {
		memmove(addr, addr + 12, 4);
		memset(addr + 4, 0, 12);
		*family = AF_INET;
		bits -= 96;
	}
	*prefix = bits;
	return NULL;
}

static bool addr_in(const struct policy_entry *e, int family, const uint8_t *a)
{
	int bits = e->prefix;

	if (e->kind != POLICY_ENTRY_CIDR || e->family != family)
		return false;
	if (memcmp(e->addr, a, bits / 8))
		return false;
	if (bits % 8) {
		uint8_t m = 0xff << (8 - bits % 8);

		return (e->addr[bits / 8] & m) == (a[bits / 8] & m);
	}
	return true;
}

/* ---- effective set ---- */

struct ivec {
	size_t *v;
	size_t n, cap;
};

struct host_index {
	struct strmap exact, one, any; /* name / parent of *. / parent of **. → struct ivec */
};

struct policy_set_index {
	struct host_index allow, block;
};

static void ivec_free(void *p)
{
	struct ivec *v = p;

	free(v->v);
	free(v);
}

static void index_add(struct strmap *m, const char *key, size_t i)
{
	bool created;
	struct strmap_entry *e = strmap_put(m, key, &created);
	struct ivec *v = e->val;

	if (!v) {
		v = xmalloc(sizeof(*v));
		memset(v, 0, sizeof(*v));
		e->val = v;
	}
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 2;
		v->v = xrealloc(v->v, v->cap * sizeof(*v->v));
	}
	v->v[v->n++] = i;
}

static void index_build(struct host_index *hi, const struct policy_list *l)
{
	strmap_init(&hi->exact);
	strmap_init(&hi->one);
	strmap_init(&hi->any);
	for (size_t i = 0; i < l->n; i++) {
		const char *h = l->v[i].host;

		if (l->v[i].kind != POLICY_ENTRY_HOST)
			continue;
		if (!strncmp(h, "**.", 3))
			index_add(&hi->any, h + 3, i);
		else if (!strncmp(h, "*.", 2))
			index_add(&hi->one, h + 2, i);
		else
			index_add(&hi->exact, h, i);
	}
}

static void index_free(struct host_index *hi)
{
	strmap_clear(&hi->exact, ivec_free);
	strmap_clear(&hi->one, ivec_free);
	strmap_clear(&hi->any, ivec_free);
}

static void add_all(struct policy_list *dst, const struct policy_list *src, enum policy_origin o,
		    bool keep_origin)
{
	for (size_t i = 0; i < src->n; i++) {
		struct policy_entry e = src->v[i];

		if (!keep_origin)
			e.origin = o;
		list_push(dst, &e);
	}
}

struct policy_set *policy_effective(const struct policy *p, const char *step,
				    const struct policy_list *blocklist, char *err, size_t errlen)
{
	const struct policy_step *st = NULL;
	struct policy_set *s;

	if (step) {
		st = policy_find_step(p, step);
		if (!st) {
			snprintf(err, errlen, "%s: no step named '%s' in the policy", p->path,
				 step);
			return NULL;
		}
	}
	s = xmalloc(sizeof(*s));
	memset(s, 0, sizeof(*s));
	add_all(&s->allow, &p->allow, POLICY_FROM_FILE, true);
	add_all(&s->block, &p->block, POLICY_FROM_FILE, true);
	if (st) {
		add_all(&s->allow, &st->allow, POLICY_FROM_STEP, true);
		add_all(&s->block, &st->block, POLICY_FROM_STEP, true);
	}
	if (blocklist)
		add_all(&s->block, blocklist, POLICY_FROM_BLOCKLIST, false);
	s->idx = xmalloc(sizeof(*s->idx));
	index_build(&s->idx->allow, &s->allow);
	index_build(&s->idx->block, &s->block);
	return s;
}

void policy_set_free(struct policy_set *s)
{
	if (!s)
		return;
	index_free(&s->idx->allow);
	index_free(&s->idx->block);
	free(s->idx);
	list_release(&s->allow);
	list_release(&s->block);
	free(s);
}

/* Calls back for each entry of l whose pattern matches the (valid, lower-case) name n. */
static size_t index_lookup(const struct host_index *hi, const char *n, size_t *out, size_t cap)
{
	size_t k = 0;
	const struct strmap_entry *e;
	const char *dot = strchr(n, '.');

#define TAKE(ent)                                                                                  \
	do {                                                                                       \
		const struct ivec *v_ = (ent)->val;                                                \
		for (size_t j_ = 0; j_ < v_->n && k < cap; j_++)                                   \
			out[k++] = v_->v[j_];                                                      \
	} while (0)
	if ((e = strmap_get(&hi->exact, n)))
		TAKE(e);
	if (dot && (e = strmap_get(&hi->one, dot + 1)))
		TAKE(e);
	for (; dot; dot = strchr(dot + 1, '.'))
		if ((e = strmap_get(&hi->any, dot + 1)))
			TAKE(e);
#undef TAKE
	return k;
}

enum policy_verdict policy_check_host(const struct policy_set *s, const char *name,
				      struct policy_match *m)
{
	char n[POLICY_HOST_MAX + 1];
	size_t len = strlen(name), labels, hits[64], k;
	struct policy_match local;

	if (!m)
		m = &local;
	memset(m, 0, sizeof(*m));
	if (len && name[len - 1] == '.')
		len--;
	if (name_check(name, len, n, &labels)) {
		/* Not a valid name, so never allowed; but a junk first label must not carry a
		 * question into a blocked zone in observe mode, so block patterns still get a
		 * look at the name as plain lower-cased labels. */
		if (!len || len > POLICY_HOST_MAX)
			return POLICY_DENY;
		for (size_t i = 0; i < len; i++)
			n[i] = tolower((unsigned char)name[i]);
		n[len] = 0;
		k = index_lookup(&s->idx->block, n, hits, 64);
		if (k) {
			m->entry = &s->block.v[hits[0]];
			return POLICY_BLOCK;
		}
		return POLICY_DENY;
	}
	k = index_lookup(&s->idx->block, n, hits, 64);
	if (k) {
		m->entry = &s->block.v[hits[0]];
		return POLICY_BLOCK;
	}
	k = index_lookup(&s->idx->allow, n, hits, 64);
	if (!k)
		return POLICY_DENY;
	m->entry = &s->allow.v[hits[0]];
	for (size_t i = 0; i < k; i++)
		match_add_rules(m, &s->allow.v[hits[i]]);
	return POLICY_ALLOW;
}

/* Does an entry admit TCP on port (-1: on some port)? */
static bool entry_tcp(const struct policy_entry *e, int port)
{
	for (size_t i = 0; i < e->nrules; i++)
		if ((e->rules[i].proto & POLICY_PROTO_TCP) &&
		    (port < 0 || (e->rules[i].lo <= port && port <= e->rules[i].hi)))
			return true;
	return false;
}

enum policy_verdict policy_check_request(const struct policy_set *s, const char *host, int port,
					 const char *method, const char *target, const char **why)
{
	char n[POLICY_HOST_MAX + 1];
	size_t len = strlen(host), labels, hits[64], k;
	bool named = false, method_ok = false;

	*why = NULL;
	if (len && host[len - 1] == '.')
		len--;
	if (name_check(host, len, n, &labels))
		return POLICY_ALLOW; /* not a name: judged by address */
	k = index_lookup(&s->idx->allow, n, hits, 64);
	for (size_t i = 0; i < k; i++) {
		const struct policy_entry *e = &s->allow.v[hits[i]];

		if (!entry_tcp(e, port))
			continue;
		named = true;
		if (!e->http || policy_http_admits(e->http, method, target))
			return POLICY_ALLOW;
		if (!e->http->methods ||
		    (e->http->methods & policy_http_method_bit(method, strlen(method))))
			method_ok = true;
	}
	if (!named)
		return POLICY_ALLOW;
	*why = method_ok ? "path_not_allowed" : "method_not_allowed";
	return POLICY_DENY;
}

enum policy_verdict policy_check_addr(const struct policy_set *s, int family, const void *addr,
				      uint16_t port, unsigned proto, struct policy_match *m)
{
	uint8_t a[16] = {0};
	struct policy_match local;
	enum policy_verdict v = POLICY_DENY;

	if (!m)
		m = &local;
	memset(m, 0, sizeof(*m));
	if (family == AF_INET) {
		memcpy(a, addr, 4);
	} else if (family == AF_INET6) {
		memcpy(a, addr, 16);
		if (policy_v4mapped(a)) {
			memmove(a, a + 12, 4);
			memset(a + 4, 0, 12);
			family = AF_INET;
		}
	} else {
		return POLICY_DENY;
	}
	for (size_t i = 0; i < s->block.n; i++) {
		const struct policy_entry *e = &s->block.v[i];

		if (addr_in(e, family, a) && policy_rules_cover(e->rules, e->nrules, port, proto)) {
			m->entry = e;
			return POLICY_BLOCK;
		}
	}
	for (size_t i = 0; i < s->allow.n; i++) {
		const struct policy_entry *e = &s->allow.v[i];

		if (addr_in(e, family, a) && policy_rules_cover(e->rules, e->nrules, port, proto)) {
			if (!m->entry)
				m->entry = e;
			match_add_rules(m, e);
			v = POLICY_ALLOW;
		}
	}
	return v;
}

/* ---- kernel-facing CIDR walk ---- */

static int cidr_cmp(const void *a, const void *b)
{
	const struct policy_cidr *x = a, *y = b;

	if (x->family != y->family)
		return x->family == AF_INET ? -1 : 1;
	if (x->prefix != y->prefix)
		return x->prefix < y->prefix ? -1 : 1;
	return memcmp(x->addr, y->addr, 16);
}

static void cidr_key(char *k, int family, const uint8_t *a, int prefix)
{
	k += sprintf(k, "%d/%d/", family, prefix);
	hex_encode(a, 16, k);
}

int policy_for_each_cidr(const struct policy_set *s, bool block, policy_cidr_fn fn, void *arg,
			 char *err, size_t errlen)
{
	const struct policy_list *l = block ? &s->block : &s->allow;
	struct policy_cidr *c = NULL;
	size_t nc = 0;
	struct strmap byk;
	bool plens[2][129] = {{false}};
	char key[64];
	int rc = 0;

	strmap_init(&byk);
	/* Pass 1: one record per distinct prefix, the own entries' rules merged. */
	for (size_t i = 0; i < l->n; i++) {
		const struct policy_entry *e = &l->v[i];
		struct policy_rule tmp[2 * POLICY_RULES_MAX];
		struct policy_cidr *r;
		bool created;
		struct strmap_entry *me;
		size_t n;

		if (e->kind != POLICY_ENTRY_CIDR)
			continue;
		cidr_key(key, e->family, e->addr, e->prefix);
		me = strmap_put(&byk, key, &created);
		if (created) {
			c = xrealloc(c, (nc + 1) * sizeof(*c));
			memset(&c[nc], 0, sizeof(*c));
			c[nc].family = e->family;
			memcpy(c[nc].addr, e->addr, 16);
			c[nc].prefix = e->prefix;
			me->val = (void *)(uintptr_t)(nc + 1);
			plens[e->family == AF_INET6][e->prefix] = true;
			nc++;
		}
		r = &c[(uintptr_t)me->val - 1];
		memcpy(tmp, r->rules, r->nrules * sizeof(tmp[0]));
		memcpy(tmp + r->nrules, e->rules, e->nrules * sizeof(tmp[0]));
		n = policy_rules_merge(tmp, r->nrules + e->nrules);
		if (n > POLICY_RULES_MAX)
			goto overflow;
		memcpy(r->rules, tmp, n * sizeof(tmp[0]));
		r->nrules = n;
		continue;
	overflow:
		inet_ntop(r->family, r->addr, key, sizeof(key));
		snprintf(err, errlen, "%s/%u: more than %d port ranges for one prefix", key,
			 r->prefix, POLICY_RULES_MAX);
		rc = -1;
		goto out;
	}
	/* Pass 2: fold in every covering shorter prefix. At most 129 lookups per record, so
	 * 100,000 entries stay cheap. Own rules only are read from the map (pass-1 values), so
	 * the order records are folded in does not matter. */
	{
		struct policy_cidr *own = xmalloc((nc ? nc : 1) * sizeof(*own));

		if (nc)
			memcpy(own, c, nc * sizeof(*c));
		for (size_t i = 0; i < nc && !rc; i++) {
			int v6 = c[i].family == AF_INET6;

			for (int p = 0; p < c[i].prefix; p++) {
				uint8_t a[16];
				struct strmap_entry *me;
				struct policy_rule tmp[2 * POLICY_RULES_MAX];
				const struct policy_cidr *o;
				size_t n;

				if (!plens[v6][p])
					continue;
				memcpy(a, c[i].addr, 16);
				mask_to(a, p, v6 ? 128 : 32);
				cidr_key(key, c[i].family, a, p);
				me = strmap_get(&byk, key);
				if (!me)
					continue;
				o = &own[(uintptr_t)me->val - 1];
				memcpy(tmp, c[i].rules, c[i].nrules * sizeof(tmp[0]));
				memcpy(tmp + c[i].nrules, o->rules, o->nrules * sizeof(tmp[0]));
				n = policy_rules_merge(tmp, c[i].nrules + o->nrules);
				if (n > POLICY_RULES_MAX) {
					inet_ntop(c[i].family, c[i].addr, key, sizeof(key));
					snprintf(
					    err, errlen,
					    "%s/%u: more than %d port ranges once the covering "
					    "prefixes are folded in",
					    key, c[i].prefix, POLICY_RULES_MAX);
					rc = -1;
					break;
				}
				memcpy(c[i].rules, tmp, n * sizeof(tmp[0]));
				c[i].nrules = n;
			}
		}
		free(own);
	}
	if (rc)
		goto out;
	if (nc)
		qsort(c, nc, sizeof(*c), cidr_cmp);
	for (size_t i = 0; i < nc; i++)
		if ((rc = fn(&c[i], arg)))
			break;
out:
	strmap_clear(&byk, NULL);
	free(c);
	return rc;
}

/* ---- rendering ---- */

static void fmt_rules(struct strbuf *sb, const struct policy_entry *e)
{
	unsigned proto = e->rules[0].proto;
	bool all = e->nrules == 1 && e->rules[0].lo == 0 && e->rules[0].hi == 65535;

	/* Entries from the file carry one proto for all rules; render that shape. */
	if (!all) {
		sb_addstr(sb, ", ports: [");
		for (size_t i = 0; i < e->nrules; i++) {
			if (i)
				sb_addstr(sb, ", ");
			if (e->rules[i].lo == e->rules[i].hi)
				sb_addf(sb, "%u", e->rules[i].lo);
			else
				sb_addf(sb, "\"%u-%u\"", e->rules[i].lo, e->rules[i].hi);
		}
		sb_addch(sb, ']');
	}
	if (proto != POLICY_PROTO_ANY && net_rule_proto_word(proto))
		sb_addf(sb, ", proto: %s", net_rule_proto_word(proto));
}

const char *capture_level_name(enum capture_level l)
{
	switch (l) {
	case CAPTURE_DETAILS:
		return "details";
	case CAPTURE_FULL:
		return "full";
	default:
		return "summary";
	}
}

void policy_entry_format(struct strbuf *sb, const struct policy_entry *e)
{
	if (e->kind == POLICY_ENTRY_HOST) {
		sb_addf(sb, "host: \"%s\"", e->host);
	} else {
		char txt[INET6_ADDRSTRLEN];
		int full = e->family == AF_INET ? 32 : 128;

		inet_ntop(e->family, e->addr, txt, sizeof(txt));
		if (e->prefix == full)
			sb_addf(sb, "ip: \"%s\"", txt);
		else
			sb_addf(sb, "cidr: \"%s/%u\"", txt, e->prefix);
	}
	fmt_rules(sb, e);
	if (e->http && e->http->methods) {
		const char *sep = ", methods: [";

		for (unsigned i = 0; i < HTTPM_COUNT; i++) {
			if (!(e->http->methods & (1u << i)))
				continue;
			sb_addf(sb, "%s%s", sep, http_methods[i]);
			sep = ", ";
		}
		sb_addch(sb, ']');
	}
	if (e->http && e->http->npaths) {
		sb_addstr(sb, ", paths: [");
		for (unsigned i = 0; i < e->http->npaths; i++) {
			if (i)
				sb_addstr(sb, ", ");
			policy_yaml_quote(sb, e->http->paths[i]);
		}
		sb_addch(sb, ']');
	}
	if (e->capture != CAPTURE_UNSET)
		sb_addf(sb, ", capture: %s", capture_level_name(e->capture));
}

static void fmt_list(struct strbuf *sb, const char *indent, const char *key,
		     const struct policy_list *l)
{
	if (!l->n) {
		sb_addf(sb, "%s%s: []\n", indent, key);
		return;
	}
	sb_addf(sb, "%s%s:\n", indent, key);
	for (size_t i = 0; i < l->n; i++) {
		sb_addf(sb, "%s  - { ", indent);
		policy_entry_format(sb, &l->v[i]);
		sb_addstr(sb, " }\n");
	}
}

static void fmt_paddr(struct strbuf *sb, const struct policy_addr *a)
{
	char txt[INET6_ADDRSTRLEN];

	inet_ntop(a->family, a->addr, txt, sizeof(txt));
	if (!a->port)
		sb_addf(sb, "\"%s\"", txt);
	else if (a->family == AF_INET6)
		sb_addf(sb, "\"[%s]:%u\"", txt, a->port);
	else
		sb_addf(sb, "\"%s:%u\"", txt, a->port);
}

/* Step names and paths may hold any printable bytes; YAML double quotes with escapes. */
void policy_yaml_quote(struct strbuf *sb, const char *s)
{
	sb_addch(sb, '"');
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			sb_addf(sb, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			sb_addf(sb, "\\x%02x", c);
		else
			sb_addch(sb, c);
	}
	sb_addch(sb, '"');
}

/* on_finding as written (the severities the file named), one flow mapping. */
static void fmt_on_finding(struct strbuf *sb, const struct policy *p)
{
	const char *sep = "on_finding: {";

	for (int s = 0; s < SEV_COUNT; s++) {
		if (!p->on_finding_written[s])
			continue;
		sb_addf(sb, "%s%s: %s", sep, finding_severity_name(s),
			p->on_finding[s] == FINDING_ACT_KILL ? "kill" : "none");
		sep = ", ";
	}
	if (strcmp(sep, ", ") == 0)
		sb_addstr(sb, "}\n");
}

/* capture as written: only what the file set. */
static void fmt_capture(struct strbuf *sb, const struct policy_capture *c)
{
	const char *sep = "capture: {";

	if (!c->written)
		return;
	if (c->allowed != CAPTURE_UNSET) {
		sb_addf(sb, "%sdefault: %s", sep, capture_level_name(c->allowed));
		sep = ", ";
	}
	if (c->not_allowed != CAPTURE_UNSET) {
		sb_addf(sb, "%snot_allowed: %s", sep, capture_level_name(c->not_allowed));
		sep = ", ";
	}
	if (c->body_bytes) {
		sb_addf(sb, "%sbody_bytes: %u", sep, c->body_bytes);
		sep = ", ";
	}
	if (c->budget_bytes) {
		sb_addf(sb, "%sbudget_bytes: %llu", sep, (unsigned long long)c->budget_bytes);
		sep = ", ";
	}
	if (c->h2_bytes) {
		sb_addf(sb, "%sh2_bytes: %u", sep, c->h2_bytes);
		sep = ", ";
	}
	sb_addstr(sb, strcmp(sep, ", ") ? "capture: {}\n" : "}\n");
}

void policy_format(struct strbuf *sb, const struct policy *p)
{
	sb_addf(sb, "version: %d\n", p->version);
	if (p->mode != POLICY_MODE_UNSET)
		sb_addf(sb, "mode: %s\n", policy_mode_name(p->mode));
	if (p->fail_on_violation >= 0)
		sb_addf(sb, "fail_on_violation: %s\n", p->fail_on_violation ? "true" : "false");
	fmt_on_finding(sb, p);
	fmt_capture(sb, &p->capture);
	fmt_list(sb, "", "allow", &p->allow);
	fmt_list(sb, "", "block", &p->block);
	if (p->nsteps) {
		sb_addstr(sb, "steps:\n");
		for (size_t i = 0; i < p->nsteps; i++) {
			sb_addstr(sb, "  ");
			policy_yaml_quote(sb, p->steps[i].name);
			sb_addstr(sb, ":\n");
			fmt_list(sb, "    ", "allow", &p->steps[i].allow);
			fmt_list(sb, "    ", "block", &p->steps[i].block);
		}
	}
	sb_addstr(sb, "dns:\n  resolvers: [");
	for (size_t i = 0; i < p->dns.nresolvers; i++) {
		if (i)
			sb_addstr(sb, ", ");
		fmt_paddr(sb, &p->dns.resolvers[i]);
	}
	sb_addf(sb, "]\n  refuse_unlisted: %s\n  refuse_with: %s\n",
		p->dns.refuse_unlisted ? "true" : "false",
		p->dns.refuse_with == POLICY_REFUSE_NXDOMAIN ? "nxdomain" : "refused");
	if (p->dns.has_upstream) {
		sb_addstr(sb, "  upstream: ");
		fmt_paddr(sb, &p->dns.upstream);
		sb_addch(sb, '\n');
	}
	if (p->dns.pin_grace_s)
		sb_addf(sb, "  pin_grace: %u\n", p->dns.pin_grace_s);
	if (p->nfiles) {
		sb_addstr(sb, "files:\n");
		for (size_t i = 0; i < p->nfiles; i++) {
			sb_addstr(sb, "  - ");
			policy_yaml_quote(sb, p->files[i]);
			sb_addch(sb, '\n');
		}
	}
}
