/*
 * The policy file reader: libyaml's event API, strictly. Every key is known, every value has one
 * type, duplicates are errors, and each error names FILE:LINE:COL from libyaml's marks.
 *
 * Why events and not yaml_parser_load: the document loader expands aliases into a tree (a
 * "billion laughs" file grows without bound) and recurses per nesting level. Here anchors, aliases
 * and tags are refused outright (a policy has no use for them), the schema is at most five levels
 * deep, and the first unexpected collection is an error, so memory is bounded by the file size
 * (itself capped at POLICY_MAX_FILE_BYTES) and no input makes us recurse deeper than the schema.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <yaml.h>

#include "common/netnames.h"
#include "common/util.h"
#include "policy/policy.h"
#include "policy/policy_int.h"
#include "common/xalloc.h"
#include "common/sha256.h"

struct yp {
	yaml_parser_t p;
	yaml_event_t ev;
	bool have;
	const char *file;
	const char *text;
	size_t len;
	char *err;
	size_t errlen;
};

#define MARK(y) ((y)->ev.start_mark)

static int failv(struct yp *y, yaml_mark_t m, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	snprintf(y->err, y->errlen, "%s:%zu:%zu: %s", y->file, m.line + 1, m.column + 1, msg);
	return -1;
}

static int __attribute__((format(printf, 3, 4)))
fail(struct yp *y, yaml_mark_t m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	failv(y, m, fmt, ap);
	va_end(ap);
	return -1;
}

/* A scalar fit to quote in a one-line message: printable ASCII, at most 40 bytes shown. */
static const char *shown(char out[64], const char *s, size_t len)
{
	size_t n = len > 40 ? 40 : len, i;

	for (i = 0; i < n; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (len > n)
		memcpy(out + i, "...", 4);
	else
		out[i] = 0;
	return out;
}

/* libyaml reports reader errors (bad UTF-8) by byte offset only; turn it into a mark. */
static yaml_mark_t offset_mark(const struct yp *y, size_t off)
{
	yaml_mark_t m = {off, 0, 0};

	for (size_t i = 0; i < off && i < y->len; i++) {
		if (y->text[i] == '\n') {
			m.line++;
			m.column = 0;
		} else if (((unsigned char)y->text[i] & 0xc0) != 0x80) {
			m.column++;
		}
	}
	return m;
}

static int next(struct yp *y)
{
	const char *anchor = NULL, *tag = NULL;

	if (y->have) {
		yaml_event_delete(&y->ev);
		y->have = false;
	}
	if (!yaml_parser_parse(&y->p, &y->ev)) {
		yaml_mark_t m = y->p.problem_mark;

		if (y->p.error == YAML_READER_ERROR)
			m = offset_mark(y, y->p.problem_offset);
		if (y->p.context)
			return fail(y, m, "YAML syntax error: %s %s",
				    y->p.problem ? y->p.problem : "", y->p.context);
		return fail(y, m, "YAML syntax error: %s",
			    y->p.problem ? y->p.problem : "unreadable input");
	}
	y->have = true;
	switch (y->ev.type) {
	case YAML_ALIAS_EVENT:
		return fail(y, MARK(y), "aliases (*name) are not supported in a policy");
	case YAML_SCALAR_EVENT:
		anchor = (const char *)y->ev.data.scalar.anchor;
		tag = (const char *)y->ev.data.scalar.tag;
		if (strlen((const char *)y->ev.data.scalar.value) != y->ev.data.scalar.length)
			return fail(y, MARK(y), "NUL byte in a string");
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = (const char *)y->ev.data.sequence_start.anchor;
		tag = (const char *)y->ev.data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = (const char *)y->ev.data.mapping_start.anchor;
		tag = (const char *)y->ev.data.mapping_start.tag;
		break;
	default:
		break;
	}
	if (anchor)
		return fail(y, MARK(y), "anchors (&name) are not supported in a policy");
	if (tag)
		return fail(y, MARK(y), "tags (!tag) are not supported in a policy");
	return 0;
}

static const char *sval(const struct yp *y)
{
	return (const char *)y->ev.data.scalar.value;
}

static size_t slen(const struct yp *y)
{
	return y->ev.data.scalar.length;
}

static bool plain(const struct yp *y)
{
	return y->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool is_null(const struct yp *y)
{
	const char *s = sval(y);

	return y->ev.type == YAML_SCALAR_EVENT && plain(y) &&
	       (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
		!strcmp(s, "NULL"));
}

static const char *kind_name(const struct yp *y)
{
	switch (y->ev.type) {
	case YAML_SCALAR_EVENT:
		return is_null(y) ? "nothing (null)" : "a scalar";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	default:
		return "something else";
	}
}

static int want(struct yp *y, yaml_event_type_t t, const char *what, const char *ctx)
{
	if (y->ev.type == t && !(t == YAML_SCALAR_EVENT && is_null(y)))
		return 0;
	return fail(y, MARK(y), "%s: expected %s, found %s", ctx, what, kind_name(y));
}

static int want_scalar(struct yp *y, const char *ctx)
{
	return want(y, YAML_SCALAR_EVENT, "a value", ctx);
}

/*
 * Walks one mapping: for each key calls fn with the current event at the value. Keys must be
 * scalars; known[] (NULL-terminated; NULL for free-form keys) are the keys allowed, and any key
 * seen twice is an error pointing at the second with the first's position.
 */
typedef int (*key_fn)(struct yp *y, int idx, const char *key, yaml_mark_t km, void *arg);

struct seen {
	char *key;
	yaml_mark_t m;
};

static int walk_map(struct yp *y, const char *ctx, const char *const *known, key_fn fn, void *arg)
{
	struct seen *seen = NULL;
	size_t nseen = 0;
	int rc = -1;
	char buf[64];

	if (want(y, YAML_MAPPING_START_EVENT, "a mapping", ctx))
		return -1;
	for (;;) {
		yaml_mark_t km;
		char *key;
		int idx = -1;

		if (next(y))
			goto out;
		if (y->ev.type == YAML_MAPPING_END_EVENT)
			break;
		if (y->ev.type != YAML_SCALAR_EVENT || is_null(y)) {
			fail(y, MARK(y), "%s: keys must be strings, found %s", ctx, kind_name(y));
			goto out;
		}
		km = MARK(y);
		if (known) {
			for (int i = 0; known[i]; i++)
				if (!strcmp(known[i], sval(y)))
					idx = i;
			if (idx < 0) {
				fail(y, km, "%s: unknown key '%s'", ctx,
				     shown(buf, sval(y), slen(y)));
				goto out;
			}
		}
		for (size_t i = 0; i < nseen; i++) {
			if (!strcmp(seen[i].key, sval(y))) {
				fail(y, km,
				     "%s: duplicate key '%s' (first at line %zu, column %zu)", ctx,
				     shown(buf, sval(y), slen(y)), seen[i].m.line + 1,
				     seen[i].m.column + 1);
				goto out;
			}
		}
		key = xstrdup(sval(y));
		seen = xrealloc(seen, (nseen + 1) * sizeof(*seen));
		seen[nseen].key = key;
		seen[nseen++].m = km;
		if (next(y) || fn(y, idx, key, km, arg))
			goto out;
	}
	rc = 0;
out:
	for (size_t i = 0; i < nseen; i++)
		free(seen[i].key);
	free(seen);
	return rc;
}

/* Walks a list, calling fn with the current event at each item. Null means an empty list. */
typedef int (*item_fn)(struct yp *y, void *arg);

static int walk_list(struct yp *y, const char *ctx, item_fn fn, void *arg)
{
	if (is_null(y))
		return 0;
	if (want(y, YAML_SEQUENCE_START_EVENT, "a list", ctx))
		return -1;
	for (;;) {
		if (next(y))
			return -1;
		if (y->ev.type == YAML_SEQUENCE_END_EVENT)
			return 0;
		if (fn(y, arg))
			return -1;
	}
}

static int get_bool(struct yp *y, const char *ctx, bool *out)
{
	const char *s;

	if (want_scalar(y, ctx))
		return -1;
	s = sval(y);
	/* YAML 1.2 core booleans only: yes/no/on/off are 1.1 surprises ("Norway problem"). */
	if (plain(y) && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))) {
		*out = true;
		return 0;
	}
	if (plain(y) && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))) {
		*out = false;
		return 0;
	}
	return fail(y, MARK(y), "%s: expected true or false (unquoted)", ctx);
}

static int get_word(struct yp *y, const char *ctx, const char *const *words, int *out)
{
	char buf[64];
	struct strbuf sb = STRBUF_INIT;

	if (want_scalar(y, ctx))
		return -1;
	for (int i = 0; words[i]; i++) {
		if (!strcmp(words[i], sval(y))) {
			*out = i;
			return 0;
		}
	}
	for (int i = 0; words[i]; i++)
		sb_addf(&sb, "%s%s", i ? ", " : "", words[i]);
	fail(y, MARK(y), "%s: '%s' is not one of: %s", ctx, shown(buf, sval(y), slen(y)),
	     sb_str(&sb));
	sb_release(&sb);
	return -1;
}

/* ---- entries ---- */

struct entry_ctx {
	struct policy_list *list;
	bool block;
	enum policy_origin origin;
	const char *ctx; /* "allow entry", "steps.build.block entry" */
	/* per entry */
	struct policy_entry e;
	bool have_dest, have_ports, have_proto;
	yaml_mark_t ports_mark, proto_mark, http_mark;
	struct policy_http http;
	bool have_http;
	struct policy_rule *ranges;
	size_t nranges, cap;
};

static int port_item(struct yp *y, void *arg)
{
	struct entry_ctx *c = arg;
	const char *s, *dash;
	char buf[64];
	unsigned long lo, hi;
	size_t n;

	if (want(y, YAML_SCALAR_EVENT, "a port or \"LO-HI\"", "ports"))
		return -1;
	s = sval(y);
	n = slen(y);
	dash = strchr(s, '-');
	/* Digits only: no signs, spaces, hex or exponents sneak through strtoul. */
	if (n == 0 || n > 11 || strspn(s, "0123456789-") != n || (dash && strchr(dash + 1, '-')) ||
	    s[0] == '-' || s[n - 1] == '-')
		goto bad;
	lo = strtoul(s, NULL, 10);
	hi = dash ? strtoul(dash + 1, NULL, 10) : lo;
	if (lo < 1 || hi > 65535 || lo > 65535)
		return fail(y, MARK(y), "ports: '%s' is outside 1-65535", shown(buf, s, n));
	if (lo > hi)
		return fail(y, MARK(y), "ports: range '%s' runs backwards", shown(buf, s, n));
	if (c->nranges == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 8;
		c->ranges = xrealloc(c->ranges, c->cap * sizeof(*c->ranges));
	}
	c->ranges[c->nranges].lo = lo;
	c->ranges[c->nranges].hi = hi;
	c->ranges[c->nranges++].proto = POLICY_PROTO_ANY;
	return 0;
bad:
	return fail(y, MARK(y), "ports: '%s' is not a port (443) or a range (\"9000-9100\")",
		    shown(buf, s, n));
}

static int method_item(struct yp *y, void *arg)
{
	struct entry_ctx *c = arg;
	char buf[64];
	uint32_t bit;

	if (want(y, YAML_SCALAR_EVENT, "a method (GET)", "methods"))
		return -1;
	bit = policy_http_method_bit(sval(y), slen(y));
	if (!bit) {
		bool lower = false;

		for (size_t i = 0; i < slen(y); i++)
			lower |= sval(y)[i] >= 'a' && sval(y)[i] <= 'z';
		return fail(y, MARK(y), "methods: '%s' %s", shown(buf, sval(y), slen(y)),
			    lower
				? "is not a method: methods are written in capitals (GET)"
				: "is not a method runwarden knows (GET, HEAD, POST, PUT, DELETE, "
				  "PATCH, OPTIONS, ... docs/policy.md)");
	}
	c->http.methods |= bit;
	return 0;
}

static int path_item(struct yp *y, void *arg)
{
	struct entry_ctx *c = arg;
	char buf[64];
	const char *r;

	if (want(y, YAML_SCALAR_EVENT, "a path prefix (\"/simple/\")", "paths"))
		return -1;
	r = policy_http_path_check(sval(y), slen(y));
	if (r)
		return fail(y, MARK(y), "paths: '%s': %s", shown(buf, sval(y), slen(y)), r);
	if (c->http.npaths >= POLICY_PATHS_MAX)
		return fail(y, MARK(y), "paths: more than %d prefixes in one entry",
			    POLICY_PATHS_MAX);
	c->http.paths[c->http.npaths++] = xstrdup(sval(y));
	return 0;
}

/* `methods:` or `paths:` (idx 5, 6): a list, never empty (leave the key out for any). */
static int http_key(struct yp *y, struct entry_ctx *c, int idx, const char *key, yaml_mark_t km)
{
	uint32_t methods = c->http.methods;
	unsigned npaths = c->http.npaths;

	if (!c->have_http)
		c->http_mark = km;
	c->have_http = true;
	if (y->ev.type == YAML_SCALAR_EVENT && !is_null(y))
		return fail(y, MARK(y), "%s: expected a list ([%s])", key,
			    idx == 5 ? "GET, HEAD" : "\"/prefix/\"");
	if (walk_list(y, key, idx == 5 ? method_item : path_item, c))
		return -1;
	if (idx == 5 ? c->http.methods == methods : c->http.npaths == npaths)
		return fail(y, km, "%s: empty (leave %s out for any request)", key, key);
	return 0;
}

static const char *const entry_keys[] = {"host",    "cidr",  "ip",	"ports", "proto",
					 "methods", "paths", "capture", NULL};
static const char *const capture_words[] = {"summary", "details", "full", NULL};

static int entry_key(struct yp *y, int idx, const char *key, yaml_mark_t km, void *arg)
{
	struct entry_ctx *c = arg;
	char host[POLICY_HOST_MAX + 4], why[POLICY_WHYLEN], buf[64];
	const char *r;
	int w;

	switch (idx) {
	case 0: /* host */
	case 1: /* cidr */
	case 2: /* ip */
		if (c->have_dest)
			return fail(y, km, "%s: one destination per entry (host, cidr or ip)",
				    c->ctx);
		c->have_dest = true;
		if (want_scalar(y, key))
			return -1;
		if (idx == 0) {
			if (slen(y) > POLICY_HOST_MAX + 3) {
				r = "name longer than 253 characters";
			} else {
				r = policy_host_normalise(sval(y), slen(y), host);
			}
			if (r)
				return fail(y, MARK(y), "host: '%s': %s",
					    shown(buf, sval(y), slen(y)), r);
			c->e.kind = POLICY_ENTRY_HOST;
			c->e.host = xstrdup(host);
		} else {
			r = policy_addr_parse(sval(y), idx == 1, &c->e.family, c->e.addr,
					      &c->e.prefix, why);
			if (r)
				return fail(y, MARK(y), "%s: '%s': %s", key,
					    shown(buf, sval(y), slen(y)), r);
			c->e.kind = POLICY_ENTRY_CIDR;
		}
		return 0;
	case 3: /* ports */
		c->have_ports = true;
		c->ports_mark = km;
		if (y->ev.type == YAML_SCALAR_EVENT && !is_null(y))
			return port_item(y, c);
		if (is_null(y))
			return fail(y, MARK(y), "ports: empty (leave ports out for all ports)");
		if (walk_list(y, "ports", port_item, c))
			return -1;
		if (!c->nranges)
			return fail(y, km, "ports: empty list (leave ports out for all ports)");
		return 0;
	case 4: /* proto */
		c->have_proto = true;
		c->proto_mark = MARK(y);
		if (get_word(y, "proto", net_rule_proto_words, &w))
			return -1;
		c->e.rules[0].proto = net_rule_proto_masks[w];
		return 0;
	case 5: /* methods */
	case 6: /* paths */
		return http_key(y, c, idx, key, km);
	case 7: /* capture */
		if (c->block)
			return fail(y, km,
				    "%s: a blocked destination has nothing to capture; set "
				    "`capture: {not_allowed: ...}` at the top level",
				    c->ctx);
		if (get_word(y, "capture", capture_words, &w))
			return -1;
		c->e.capture = CAPTURE_SUMMARY + w;
		return 0;
	}
	return -1;
}

/* methods/paths judge what a request asks of a host: only an allow host entry has them. */
static int http_entry_check(struct yp *y, struct entry_ctx *c, yaml_mark_t start)
{
	unsigned proto = c->e.rules[0].proto;

	(void)start;
	if (c->block)
		return fail(y, c->http_mark,
			    "%s: methods/paths narrow what an allowed host admits; a blocked "
			    "destination is refused whole",
			    c->ctx);
	if (c->e.kind != POLICY_ENTRY_HOST)
		return fail(y, c->http_mark,
			    "%s: methods/paths need a host entry (a request is judged by the host "
			    "it names; an ip/cidr entry trusts every request to its addresses)",
			    c->ctx);
	if (!(proto & POLICY_PROTO_TCP))
		return fail(y, c->http_mark,
			    "%s: methods/paths judge HTTP over TCP; proto %s has none", c->ctx,
			    net_rule_proto_word(proto));
	return 0;
}

static int entry_item(struct yp *y, void *arg)
{
	struct entry_ctx *c = arg;
	yaml_mark_t start = MARK(y);
	unsigned proto;
	int rc = -1;

	memset(&c->e, 0, sizeof(c->e));
	memset(&c->http, 0, sizeof(c->http));
	c->have_dest = c->have_ports = c->have_proto = c->have_http = false;
	c->nranges = 0;
	c->e.rules[0].proto = POLICY_PROTO_ANY;
	if (walk_map(y, c->ctx, entry_keys, entry_key, c))
		goto out;
	if (!c->have_dest) {
		fail(y, start, "%s: needs a destination: host, cidr or ip", c->ctx);
		goto out;
	}
	/* A blocked name is refused whole at the DNS gate; ports would suggest otherwise. */
	if (c->block && c->e.kind == POLICY_ENTRY_HOST && (c->have_ports || c->have_proto)) {
		fail(y, c->have_ports ? c->ports_mark : start,
		     "%s: a blocked host is refused on every port; ports/proto apply only to "
		     "cidr/ip block entries",
		     c->ctx);
		goto out;
	}
	proto = c->e.rules[0].proto;
	if (c->have_http && http_entry_check(y, c, start))
		goto out;
	if (c->have_ports && !net_rule_proto_has_ports(proto)) {
		fail(y, c->proto_mark, "%s: proto %s has no ports; leave ports out", c->ctx,
		     net_rule_proto_word(proto));
		goto out;
	}
	if (c->nranges) {
		size_t n = policy_rules_merge(c->ranges, c->nranges);

		if (n > POLICY_RULES_MAX) {
			fail(y, c->ports_mark, "ports: more than %d separate ranges in one entry",
			     POLICY_RULES_MAX);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			c->e.rules[i] = c->ranges[i];
			c->e.rules[i].proto = proto;
		}
		c->e.nrules = n;
	} else {
		c->e.rules[0].lo = 0;
		c->e.rules[0].hi = 65535;
		c->e.nrules = 1;
	}
	c->e.origin = c->origin;
	c->e.line = start.line + 1;
	c->e.col = start.column + 1;
	c->e.http = c->have_http ? &c->http : NULL;
	policy_list_add(c->list, &c->e);
	rc = 0;
out:
	free(c->e.host);
	c->e.host = NULL;
	c->e.http = NULL;
	for (unsigned i = 0; i < c->http.npaths; i++)
		free(c->http.paths[i]);
	c->http.npaths = 0;
	return rc;
}

static int parse_entries(struct yp *y, struct policy_list *l, bool block, enum policy_origin o,
			 const char *ctx)
{
	struct entry_ctx c = {.list = l, .block = block, .origin = o, .ctx = ctx};
	int rc = walk_list(y, ctx, entry_item, &c);

	free(c.ranges);
	return rc;
}

/* ---- steps ---- */

struct step_ctx {
	struct policy *p;
	struct policy_step *st;
};

static const char *const step_keys[] = {"allow", "block", NULL};

static int step_key(struct yp *y, int idx, const char *key, yaml_mark_t km, void *arg)
{
	struct step_ctx *c = arg;

	(void)key;
	(void)km;
	return parse_entries(y, idx == 0 ? &c->st->allow : &c->st->block, idx == 1,
			     POLICY_FROM_STEP, idx == 0 ? "step allow entry" : "step block entry");
}

static int steps_key(struct yp *y, int idx, const char *key, yaml_mark_t km, void *arg)
{
	struct step_ctx *c = arg;
	struct policy *p = c->p;
	size_t n = strlen(key);

	(void)idx;
	if (n > POLICY_STEP_MAX)
		return fail(y, km, "steps: step name longer than %d bytes", POLICY_STEP_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)key[i] < 0x20 || key[i] == 0x7f)
			return fail(y, km, "steps: control character in a step name");
	p->steps = xrealloc(p->steps, (p->nsteps + 1) * sizeof(*p->steps));
	c->st = &p->steps[p->nsteps++];
	memset(c->st, 0, sizeof(*c->st));
	c->st->name = xstrdup(key);
	c->st->line = km.line + 1;
	c->st->col = km.column + 1;
	/* `test:` with nothing under it declares a step that only uses the top level. */
	if (is_null(y))
		return 0;
	return walk_map(y, "step", step_keys, step_key, c);
}

/* ---- dns ---- */

/* "ADDR", "IPv4:PORT" or "[IPv6]:PORT". */
static const char *hostport_parse(const char *s, struct policy_addr *a, char why[POLICY_WHYLEN])
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *port = NULL, *r;
	size_t alen;
	uint8_t prefix;
	const char *c1 = strchr(s, ':');

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || (rb[1] && rb[1] != ':'))
			return "expected [IPv6]:PORT";
		alen = rb - s - 1;
		if (alen >= sizeof(buf))
			return "not an IPv4 or IPv6 address";
		memcpy(buf, s + 1, alen);
		port = rb[1] ? rb + 2 : NULL;
	} else if (c1 && !strchr(c1 + 1, ':')) {
		alen = c1 - s;
		if (alen >= sizeof(buf))
			return "not an IPv4 or IPv6 address";
		memcpy(buf, s, alen);
		port = c1 + 1;
	} else {
		alen = strlen(s);
		if (alen >= sizeof(buf))
			return "not an IPv4 or IPv6 address";
		memcpy(buf, s, alen);
	}
	buf[alen] = 0;
	if (strchr(buf, '/'))
		return "an address, not a prefix";
	r = policy_addr_parse(buf, false, &a->family, a->addr, &prefix, why);
	if (r)
		return r;
	a->port = 0;
	if (port) {
		uint64_t v;

		if (strspn(port, "0123456789") != strlen(port) || !parse_u64(port, 1, 65535, &v))
			return "port must be 1-65535";
		a->port = v;
	}
	return NULL;
}

static int resolver_item(struct yp *y, void *arg)
{
	struct policy *p = arg;
	struct policy_addr a;
	char why[POLICY_WHYLEN], buf[64];
	const char *r;

	if (want_scalar(y, "dns.resolvers"))
		return -1;
	r = hostport_parse(sval(y), &a, why);
	if (r)
		return fail(y, MARK(y), "dns.resolvers: '%s': %s", shown(buf, sval(y), slen(y)), r);
	p->dns.resolvers = xrealloc(p->dns.resolvers, (p->dns.nresolvers + 1) * sizeof(a));
	p->dns.resolvers[p->dns.nresolvers++] = a;
	return 0;
}

static const char *const dns_keys[] = {"resolvers", "refuse_unlisted", "refuse_with",
				       "upstream",  "pin_grace",       NULL};

/* Seconds a pin outlives its answer's TTL: a plain unquoted integer in 1..3600. */
static int get_pin_grace(struct yp *y, unsigned *out)
{
	char buf[64];
	const char *s;
	unsigned v = 0;

	if (want_scalar(y, "dns.pin_grace"))
		return -1;
	s = sval(y);
	for (size_t i = 0; plain(y) && i < slen(y) && i < 5 && s[i] >= '0' && s[i] <= '9'; i++)
		v = v * 10 + (unsigned)(s[i] - '0');
	if (!plain(y) || !slen(y) || slen(y) > 4 || strspn(s, "0123456789") != slen(y) || v < 1 ||
	    v > 3600)
		return fail(y, MARK(y), "dns.pin_grace: '%s': expected seconds, 1 to 3600",
			    shown(buf, s, slen(y)));
	*out = v;
	return 0;
}

static int dns_key(struct yp *y, int idx, const char *key, yaml_mark_t km, void *arg)
{
	struct policy *p = arg;
	static const char *const refuse[] = {"refused", "nxdomain", NULL};
	char why[POLICY_WHYLEN], buf[64];
	const char *r;
	int w;

	(void)key;
	(void)km;
	switch (idx) {
	case 0:
		return walk_list(y, "dns.resolvers", resolver_item, p);
	case 1:
		return get_bool(y, "dns.refuse_unlisted", &p->dns.refuse_unlisted);
	case 2:
		if (get_word(y, "dns.refuse_with", refuse, &w))
			return -1;
		p->dns.refuse_with = w ? POLICY_REFUSE_NXDOMAIN : POLICY_REFUSE_REFUSED;
		return 0;
	case 3:
		if (want_scalar(y, "dns.upstream"))
			return -1;
		r = hostport_parse(sval(y), &p->dns.upstream, why);
		if (r)
			return fail(y, MARK(y), "dns.upstream: '%s': %s",
				    shown(buf, sval(y), slen(y)), r);
		p->dns.has_upstream = true;
		return 0;
	case 4:
		return get_pin_grace(y, &p->dns.pin_grace_s);
	}
	return -1;
}

/* ---- files ---- */

static int file_item(struct yp *y, void *arg)
{
	struct policy *p = arg;

	if (want_scalar(y, "files"))
		return -1;
	if (sval(y)[0] != '/')
		return fail(y, MARK(y), "files: paths must be absolute (start with /)");
	if (slen(y) >= 4096)
		return fail(y, MARK(y), "files: path longer than 4095 bytes");
	for (size_t i = 0; i < slen(y); i++)
		if ((unsigned char)sval(y)[i] < 0x20)
			return fail(y, MARK(y), "files: control character in a path");
	p->files = xrealloc(p->files, (p->nfiles + 1) * sizeof(*p->files));
	p->files[p->nfiles++] = xstrdup(sval(y));
	return 0;
}

/* ---- on_finding ---- */

static int on_finding_key(struct yp *y, int idx, const char *key, yaml_mark_t km, void *arg)
{
	static const char *const actions[] = {"none", "kill", NULL};
	struct policy *p = arg;
	char buf[64];
	int sev = finding_severity_parse(key), w;

	(void)idx;
	if (sev < 0)
		return fail(
		    y, km, "on_finding: '%s' is not a severity (info, low, medium, high, critical)",
		    shown(buf, key, strlen(key)));
	if (get_word(y, "on_finding action", actions, &w))
		return -1;
	p->on_finding[sev] = w ? FINDING_ACT_KILL : FINDING_ACT_NONE;
	p->on_finding_written[sev] = true;
	return 0;
}

/* A severity not named takes the action of the nearest lower one named: `high: kill` also
 * kills on critical findings. */
static void on_finding_resolve(struct policy *p)
{
	enum finding_action cur = FINDING_ACT_NONE;

	for (int s = 0; s < SEV_COUNT; s++) {
		if (p->on_finding_written[s])
			cur = p->on_finding[s];
		p->on_finding[s] = cur;
	}
}

static int parse_on_finding(struct yp *y, struct policy *p)
{
	if (is_null(y))
		return 0;
	if (walk_map(y, "on_finding", NULL, on_finding_key, p))
		return -1;
	on_finding_resolve(p);
	return 0;
}

/* ---- capture ---- */

/* A size in bytes: a plain unquoted integer, optionally with a KiB/MiB/GiB suffix, 1..max. */
static int get_size(struct yp *y, const char *ctx, uint64_t max, uint64_t *out)
{
	static const struct {
		const char *suffix;
		unsigned shift;
	} units[] = {{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"", 0}};
	char buf[64];
	const char *s;
	size_t n, digits;
	uint64_t v = 0;

	if (want_scalar(y, ctx))
		return -1;
	s = sval(y);
	n = slen(y);
	digits = strspn(s, "0123456789");
	if (plain(y) && digits && digits <= 10) {
		for (size_t i = 0; i < digits; i++)
			v = v * 10 + (uint64_t)(s[i] - '0');
		for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
			if (strcmp(s + digits, units[u].suffix))
				continue;
			if (v && v <= (max >> units[u].shift)) {
				*out = v << units[u].shift;
				return 0;
			}
			break;
		}
	}
	return fail(y, MARK(y),
		    "%s: '%s': expected a size in bytes (65536, 64KiB, 1MiB), 1 to %llu", ctx,
		    shown(buf, s, n), (unsigned long long)max);
}

static const char *const capture_keys[] = {"default",	   "not_allowed", "body_bytes",
					   "budget_bytes", "h2_bytes",	  NULL};

static int capture_key(struct yp *y, int idx, const char *key, yaml_mark_t km, void *arg)
{
	struct policy_capture *c = arg;
	uint64_t v;
	int w;

	(void)km;
	switch (idx) {
	case 0:
	case 1:
		if (get_word(y, idx ? "capture.not_allowed" : "capture.default", capture_words, &w))
			return -1;
		*(idx ? &c->not_allowed : &c->allowed) = CAPTURE_SUMMARY + w;
		return 0;
	case 2:
		if (get_size(y, "capture.body_bytes", CAPTURE_BODY_MAX, &v))
			return -1;
		c->body_bytes = (uint32_t)v;
		return 0;
	case 3:
		if (get_size(y, "capture.budget_bytes", CAPTURE_BUDGET_MAX, &v))
			return -1;
		c->budget_bytes = v;
		return 0;
	case 4:
		if (get_size(y, "capture.h2_bytes", CAPTURE_H2_MAX, &v))
			return -1;
		c->h2_bytes = (uint32_t)v;
		return 0;
	}
	(void)key;
	return -1;
}

/* `capture: details` (the default level) or a mapping of levels and limits. */
static int parse_capture(struct yp *y, struct policy *p)
{
	int w;

	p->capture.written = true;
	if (y->ev.type == YAML_SCALAR_EVENT) {
		if (get_word(y, "capture", capture_words, &w))
			return -1;
		p->capture.allowed = CAPTURE_SUMMARY + w;
		return 0;
	}
	return walk_map(y, "capture", capture_keys, capture_key, &p->capture);
}

/* ---- secrets ---- */

static int secret_env_item(struct yp *y, void *arg)
{
	struct policy_secrets *ps = arg;

	if (want_scalar(y, "secrets.env"))
		return -1;
	if (!slen(y) || slen(y) > 255 || strcspn(sval(y), "=") != slen(y) ||
	    strlen(sval(y)) != slen(y))
		return fail(y, MARK(y), "secrets.env: not a variable name");
	ps->env = xreallocarray(ps->env, ps->nenv + 1, sizeof(*ps->env));
	ps->env[ps->nenv++] = xstrdup(sval(y));
	return 0;
}

static int secret_to_item(struct yp *y, void *arg)
{
	struct policy_secret_rule *r = arg;
	char norm[POLICY_HOST_MAX + 4];
	const char *why;

	if (want_scalar(y, "secrets.allow to"))
		return -1;
	if (r->nto == POLICY_SECRET_TO_MAX)
		return fail(y, MARK(y), "secrets.allow to: more than %d hosts",
			    POLICY_SECRET_TO_MAX);
	if (!strcmp(sval(y), "*")) {
		r->to[r->nto++] = xstrdup("*");
		return 0;
	}
	if (!strncmp(sval(y), "*.", 2))
		return fail(y, MARK(y),
			    "secrets.allow to: '*.' is not used here; '**.%s' allows every name "
			    "below",
			    sval(y) + 2);
	why = policy_host_normalise(sval(y), slen(y), norm);
	if (why)
		return fail(y, MARK(y), "secrets.allow to: %s", why);
	r->to[r->nto++] = xstrdup(norm);
	return 0;
}

static const char *const secret_rule_keys[] = {"env", "file", "format", "to", NULL};

static int secret_rule_key(struct yp *y, int idx, const char *key, yaml_mark_t km, void *arg)
{
	static const char *const fmts[] = {"github", "npm", "aws", "slack", "private_key", NULL};
	struct policy_secret_rule *r = arg;
	int w;

	(void)key;
	if (idx == 3)
		return walk_list(y, "secrets.allow to", secret_to_item, r);
	if (r->kind)
		return fail(y, km, "secrets.allow entry: one of env, file or format, not two");
	r->kind = POLICY_SECRET_ENV + idx;
	if (idx == 2) {
		if (get_word(y, "secrets.allow format", fmts, &w))
			return -1;
		r->name = xstrdup(fmts[w]);
		return 0;
	}
	if (want_scalar(y, idx ? "secrets.allow file" : "secrets.allow env"))
		return -1;
	if (!slen(y) || strlen(sval(y)) != slen(y))
		return fail(y, MARK(y), "secrets.allow: empty name");
	if (idx == 1 && sval(y)[0] != '/' && sval(y)[0] != '*')
		return fail(y, MARK(y),
			    "secrets.allow file: a path must be absolute or start with *");
	r->name = xstrdup(sval(y));
	return 0;
}

static int secret_rule_item(struct yp *y, void *arg)
{
	struct policy_secrets *ps = arg;
	struct policy_secret_rule r = {.line = MARK(y).line + 1};
	yaml_mark_t m = MARK(y);

	if (walk_map(y, "secrets.allow entry", secret_rule_keys, secret_rule_key, &r))
		goto bad;
	if (!r.kind) {
		fail(y, m, "secrets.allow entry: name an env, a file or a format");
		goto bad;
	}
	ps->rules = xreallocarray(ps->rules, ps->nrules + 1, sizeof(*ps->rules));
	ps->rules[ps->nrules++] = r;
	return 0;
bad:
	free(r.name);
	for (size_t i = 0; i < r.nto; i++)
		free(r.to[i]);
	return -1;
}

static int secrets_key(struct yp *y, int idx, const char *key, yaml_mark_t km, void *arg)
{
	(void)key;
	(void)km;
	if (idx == 0)
		return walk_list(y, "secrets.env", secret_env_item, arg);
	return walk_list(y, "secrets.allow", secret_rule_item, arg);
}

static const char *const secrets_keys[] = {"env", "allow", NULL};

/* ---- top level ---- */

enum {
	K_VERSION,
	K_MODE,
	K_ALLOW,
	K_BLOCK,
	K_STEPS,
	K_DNS,
	K_FILES,
	K_FAIL,
	K_INBOUND,
	K_ON_FINDING,
	K_CAPTURE,
	K_SECRETS
};
static const char *const top_keys[] = {
    "version",		 "mode",    "allow",	  "block",   "steps",	"dns", "files",
    "fail_on_violation", "inbound", "on_finding", "capture", "secrets", NULL};

/* Inbound peers are addresses: a connecting peer has no name to check. */
static int parse_inbound(struct yp *y, struct policy *p)
{
	size_t first = p->inbound.n;

	p->has_inbound = true;
	if (is_null(y))
		return 0;
	if (parse_entries(y, &p->inbound, false, POLICY_FROM_FILE, "inbound entry"))
		return -1;
	for (size_t i = first; i < p->inbound.n; i++) {
		const struct policy_entry *e = &p->inbound.v[i];
		yaml_mark_t m = {.line = e->line - 1, .column = e->col - 1};

		if (e->kind == POLICY_ENTRY_HOST)
			return fail(
			    y, m,
			    "inbound entry: a peer is judged by its address; use cidr or ip, "
			    "not host");
	}
	return 0;
}

static int top_key(struct yp *y, int idx, const char *key, yaml_mark_t km, void *arg)
{
	struct policy *p = arg;
	static const char *const modes[] = {"observe", "learn", "enforce", NULL};
	struct step_ctx sc = {.p = p};
	char buf[64];
	bool b;
	int w;

	(void)key;
	(void)km;
	switch (idx) {
	case K_VERSION:
		if (want_scalar(y, "version"))
			return -1;
		if (!plain(y) || strspn(sval(y), "0123456789") != slen(y) || slen(y) > 6)
			return fail(y, MARK(y), "version: expected a number, found '%s'",
				    shown(buf, sval(y), slen(y)));
		if (strcmp(sval(y), "1"))
			return fail(y, MARK(y),
				    "version: unsupported policy version %s (this runwarden reads "
				    "version 1)",
				    sval(y));
		p->version = 1;
		return 0;
	case K_MODE:
		if (get_word(y, "mode", modes, &w))
			return -1;
		p->mode = POLICY_MODE_OBSERVE + w;
		return 0;
	case K_ALLOW:
		return parse_entries(y, &p->allow, false, POLICY_FROM_FILE, "allow entry");
	case K_BLOCK:
		return parse_entries(y, &p->block, true, POLICY_FROM_FILE, "block entry");
	case K_STEPS:
		if (is_null(y))
			return 0;
		return walk_map(y, "steps", NULL, steps_key, &sc);
	case K_DNS:
		if (is_null(y))
			return 0;
		return walk_map(y, "dns", dns_keys, dns_key, p);
	case K_FILES:
		return walk_list(y, "files", file_item, p);
	case K_INBOUND:
		return parse_inbound(y, p);
	case K_ON_FINDING:
		return parse_on_finding(y, p);
	case K_CAPTURE:
		return parse_capture(y, p);
	case K_SECRETS:
		if (is_null(y))
			return 0;
		return walk_map(y, "secrets", secrets_keys, secrets_key, &p->secrets);
	case K_FAIL:
		if (get_bool(y, "fail_on_violation", &b))
			return -1;
		p->fail_on_violation = b;
		return 0;
	}
	return -1;
}

static int parse_doc(struct yp *y, struct policy *p)
{
	yaml_mark_t root;

	if (next(y))
		return -1;
	if (y->ev.type != YAML_STREAM_START_EVENT)
		return fail(y, MARK(y), "not a YAML stream");
	if (next(y))
		return -1;
	if (y->ev.type == YAML_STREAM_END_EVENT)
		return fail(y, MARK(y), "empty policy (expected at least 'version: 1')");
	if (next(y))
		return -1;
	root = MARK(y);
	if (want(y, YAML_MAPPING_START_EVENT, "a mapping", "policy"))
		return -1;
	if (walk_map(y, "policy", top_keys, top_key, p))
		return -1;
	if (!p->version)
		return fail(y, root, "policy: missing 'version: 1'");
	if (next(y))
		return -1;
	if (next(y))
		return -1;
	if (y->ev.type != YAML_STREAM_END_EVENT)
		return fail(y, MARK(y), "only one YAML document is allowed in a policy");
	return 0;
}

struct policy *policy_parse(const char *name, const char *text, size_t len, char *err,
			    size_t errlen)
{
	struct yp y = {.file = name, .text = text, .len = len, .err = err, .errlen = errlen};
	struct policy *p = xcalloc(1, sizeof(*p));

	p->path = xstrdup(name);
	p->fail_on_violation = -1;
	p->dns.refuse_unlisted = true;
	if (len > POLICY_MAX_FILE_BYTES) {
		snprintf(err, errlen, "%s: larger than %u MiB", name, POLICY_MAX_FILE_BYTES >> 20);
		policy_free(p);
		return NULL;
	}
	sha256_hex(text, len, p->sha256);
	if (!yaml_parser_initialize(&y.p))
		abort();
	yaml_parser_set_input_string(&y.p, (const unsigned char *)text, len);
	if (parse_doc(&y, p)) {
		policy_free(p);
		p = NULL;
	}
	if (y.have)
		yaml_event_delete(&y.ev);
	yaml_parser_delete(&y.p);
	return p;
}

struct policy *policy_load(const char *path, char *err, size_t errlen)
{
	char *buf = xmalloc(POLICY_MAX_FILE_BYTES + 1);
	ssize_t n;
	struct policy *p;

	n = read_regular_file(path, buf, POLICY_MAX_FILE_BYTES + 1, err, errlen);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	/* Hash and parse the same bytes: no window for the file to change in between. */
	p = policy_parse(path, buf, n, err, errlen);
	free(buf);
	return p;
}
