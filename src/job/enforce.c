/* Policy to kernel maps, and the DNS gate's pins (see enforce.h, docs/policy.md). */
#include "job/enforce.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/jsonw.h"
#include "common/util.h"
#include "events.h"
#include "gate/dnsgate.h"
#include "common/xalloc.h"

/* Pins beyond the policy's own entries (each allowed name's addresses). */
#define PIN_ROOM 65536
/* Addresses blocked because a blocked name resolved to them off the gate (at most). */
#define BLOCKED_ANSWERS_MAX 4096

/* The port rules one allowed pattern gives an address, and how many pinned names (pairs the
 * gate holds) share them. An address's kernel value is its own `ip:` entry's rules plus the
 * union of its sets, so it widens only while a name that needs it is pinned. */
struct pin_set {
	uint32_t names;
	uint8_t nrules;
	struct policy_rule rules[POLICY_RULES_MAX];
};

struct pin {
	unsigned nsets;
	struct pin_set *sets;
};

/* Without a policy the run still has the built-in block list (and a DNS gate that enforces it):
 * an empty policy stands in, so every verdict has one code path. */
static const char no_policy[] = "version: 1\n";

int enforce_load(struct enforce *e, const char *policy_path, const char *step,
		 enum policy_mode mode, char *err, size_t errlen)
{
	memset(e, 0, sizeof(*e));
	strmap_init(&e->exact);
	strmap_init(&e->pins);
	strmap_init(&e->blocked);
	e->has_policy = policy_path != NULL;
	e->pol = e->has_policy
		     ? policy_load(policy_path, err, errlen)
		     : policy_parse("<no policy>", no_policy, strlen(no_policy), err, errlen);
	if (!e->pol)
		return -1;
	e->blocklist = policy_load_blocklist(NULL, err, errlen);
	if (!e->blocklist)
		return -1;
	e->set = policy_effective(e->pol, e->has_policy ? step : NULL, e->blocklist, err, errlen);
	if (!e->set)
		return -1;
	e->mode = mode != POLICY_MODE_UNSET	      ? mode
		  : e->pol->mode != POLICY_MODE_UNSET ? e->pol->mode
						      : POLICY_MODE_OBSERVE;
	return 0;
}

uint32_t enforce_lpm_capacity(const struct enforce *e)
{
	size_t n = e->set ? e->set->allow.n + e->set->block.n : 0;

	return (uint32_t)(n + PIN_ROOM);
}

/* Trie key text for the bookkeeping maps: family, address bytes, prefix. */
static void trie_key(char *buf, size_t len, int family, const uint8_t *addr, int prefix)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(family, addr, a, sizeof(a));
	snprintf(buf, len, "%s/%d", a, prefix);
}

static void rules_add(struct addr_rules *v, const struct policy_rule *r, int n)
{
	for (int i = 0; i < n && v->nrules < RULES_MAX; i++) {
		v->r[v->nrules].lo = r[i].lo;
		v->r[v->nrules].hi = r[i].hi;
		v->r[v->nrules].proto = r[i].proto;
		v->nrules++;
	}
}

/* Where an entry lives: single addresses in a hash, prefixes in a trie
 * (the policy maps' list, rwnet.h). */
#define LIST_IS_BLOCK_allow false
#define LIST_IS_BLOCK_block true
static const struct {
	enum loader_map map;
	bool block;
	int family;
	bool exact;
} policy_maps[] = {
#define POLICY_MAP_ROW_(e, name, list, fam, exact)                                                 \
	{LM_##e, LIST_IS_BLOCK_##list, fam == 4 ? AF_INET : AF_INET6, exact},
    RW_POLICY_MAPS(POLICY_MAP_ROW_)
#undef POLICY_MAP_ROW_
};

static int list_fd(const struct enforce *e, bool block, int family, int prefix)
{
	bool exact = prefix == (family == AF_INET ? 32 : 128);

	for (size_t i = 0; i < sizeof(policy_maps) / sizeof(policy_maps[0]); i++)
		if (policy_maps[i].block == block && policy_maps[i].family == family &&
		    policy_maps[i].exact == exact)
			return loader_map_fd(e->ld, policy_maps[i].map);
	abort(); /* every (list, family, exactness) has a map */
}

static int trie_update(struct enforce *e, bool block, int family, const uint8_t *addr, int prefix,
		       const struct addr_rules *v)
{
	int fd = list_fd(e, block, family, prefix);
	struct lpm6_key k6 = {.prefixlen = prefix};
	struct lpm4_key k4 = {.prefixlen = prefix};

	if (prefix == (family == AF_INET ? 32 : 128))
		return bpf_map_update_elem(fd, addr, v, BPF_ANY);
	if (family == AF_INET) {
		memcpy(k4.addr, addr, 4);
		return bpf_map_update_elem(fd, &k4, v, BPF_ANY);
	}
	memcpy(k6.addr, addr, 16);
	return bpf_map_update_elem(fd, &k6, v, BPF_ANY);
}

/* Only pins are ever deleted, and pins are single addresses. */
static int trie_delete(struct enforce *e, int family, const uint8_t *addr, int prefix)
{
	return bpf_map_delete_elem(list_fd(e, false, family, prefix), addr);
}

struct load_ctx {
	struct enforce *e;
	bool block;
	int err;
};

/* One trie entry per prefix; the policy layer has already folded into each
 * prefix the rules of the shorter ones covering it (the kernel's shorter-
 * prefix retry is for the gate's pins, which land inside CIDRs). */
static int load_cidr(const struct policy_cidr *pc, void *arg)
{
	struct load_ctx *lc = arg;
	struct addr_rules v = {.prefix = pc->prefix};
	char key[80];

	rules_add(&v, pc->rules, pc->nrules);
	if (trie_update(lc->e, lc->block, pc->family, pc->addr, pc->prefix, &v)) {
		lc->err = errno;
		return -1;
	}
	if (!lc->block && pc->prefix == (pc->family == AF_INET ? 32 : 128)) {
		struct addr_rules *copy = xmalloc(sizeof(*copy));

		*copy = v;
		trie_key(key, sizeof(key), pc->family, pc->addr, pc->prefix);
		strmap_put(&lc->e->exact, key, NULL)->val = copy;
	}
	return 0;
}

static int load_list(struct enforce *e, bool block, char *err, size_t errlen)
{
	struct load_ctx lc = {.e = e, .block = block};

	if (policy_for_each_cidr(e->set, block, load_cidr, &lc, err, errlen)) {
		if (lc.err)
			snprintf(err, errlen, "cannot load the %s list into the kernel: %s",
				 block ? "block" : "allow", strerror(lc.err));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ names (SNI, Host) */

/* Adds rules not there yet (same ports and protocols), each marked with flags. */
static void rules_add_new(struct addr_rules *v, const struct policy_rule *r, int n, uint8_t flags)
{
	for (int i = 0; i < n && v->nrules < RULES_MAX; i++) {
		bool dup = false;

		for (uint32_t k = 0; k < v->nrules && !dup; k++)
			dup = v->r[k].lo == r[i].lo && v->r[k].hi == r[i].hi &&
			      v->r[k].proto == r[i].proto;
		if (dup)
			continue;
		v->r[v->nrules].lo = r[i].lo;
		v->r[v->nrules].hi = r[i].hi;
		v->r[v->nrules].proto = r[i].proto;
		v->r[v->nrules].flags = flags;
		v->nrules++;
	}
}

/* The kernel key of a normalised host pattern (bpf/conn.bpf.h): the name reversed, an exact
 * one with its NUL, a wildcard's suffix from its dot ("*.x.test": ".x.test" reversed), so
 * every name under a pattern has its key as a prefix. False for a pattern too long for it. */
static bool name_key(const char *pattern, struct fb_name_key *k, struct name_rules *v)
{
	const char *s = pattern;
	size_t n;

	memset(k, 0, sizeof(*k));
	memset(v, 0, sizeof(*v));
	if (!strncmp(s, "**.", 3))
		s += 2;
	else if (!strncmp(s, "*.", 2)) {
		s += 1;
		v->one_label = 1;
	}
	n = strlen(s);
	if (n + 1 > sizeof(k->data))
		return false;
	for (size_t i = 0; i < n; i++) {
		k->data[i] = (uint8_t)s[n - 1 - i];
		v->dots += s[i] == '.';
	}
	/* exact: the NUL ends the key; a wildcard's key ends at its dot */
	k->prefixlen = (uint32_t)(s == pattern ? n + 1 : n) * 8;
	v->a.prefix = k->prefixlen;
	return true;
}

/* Adds rules not there yet into a name's value, each with the request rules (req: an id in
 * map http_rules, 0 for any request) of the entry it came from. The same ports with other
 * request rules are another rule: the kernel admits a request any of them admits. */
static void name_rules_add(struct name_rules *v, const struct policy_rule *r, int n, uint16_t req)
{
	for (int i = 0; i < n && v->a.nrules < RULES_MAX; i++) {
		bool dup = false;

		for (uint32_t k = 0; k < v->a.nrules && !dup; k++)
			dup = v->a.r[k].lo == r[i].lo && v->a.r[k].hi == r[i].hi &&
			      v->a.r[k].proto == r[i].proto && v->req[k] == req;
		if (dup)
			continue;
		v->a.r[v->a.nrules].lo = r[i].lo;
		v->a.r[v->a.nrules].hi = r[i].hi;
		v->a.r[v->a.nrules].proto = r[i].proto;
		v->a.r[v->a.nrules].flags = 0;
		v->req[v->a.nrules] = req;
		v->a.nrules++;
	}
}

/* The kernel form of an entry's `methods:`/`paths:` (struct http_rules). */
static void http_rules_fill(const struct policy_http *h, struct http_rules *r)
{
	memset(r, 0, sizeof(*r));
	r->methods = h->methods;
	r->npaths = h->npaths;
	for (unsigned i = 0; i < h->npaths && i < HTTP_PATHS_MAX; i++) {
		size_t n = strlen(h->paths[i]);

		if (n > HTTP_PATH_BYTES)
			n = HTTP_PATH_BYTES; /* the parser refuses longer ones */
		memcpy(r->p[i].s, h->paths[i], n);
		memset(r->p[i].mask, 0xff, n);
		r->p[i].len = (uint32_t)n;
	}
}

/* The id of h's rules in map http_rules (entries with the same rules share one), loading them
 * the first time; 0 with err set when the map is full. */
static uint16_t http_rules_id(struct enforce *e, struct strmap *ids, const struct policy_http *h,
			      char *err, size_t errlen)
{
	struct strbuf key = STRBUF_INIT;
	struct strmap_entry *me;
	struct http_rules r;
	bool created;
	uint32_t id;
	int fd = loader_map_fd(e->ld, LM_HTTP_RULES);

	sb_addf(&key, "%x", h->methods);
	for (unsigned i = 0; i < h->npaths; i++)
		sb_addf(&key, "\n%s", h->paths[i]);
	me = strmap_put(ids, sb_str(&key), &created);
	sb_release(&key);
	if (!created)
		return (uint16_t)(uintptr_t)me->val;
	id = (uint32_t)ids->count; /* 1, 2, ...: slot 0 stands for any request */
	if (id >= HTTP_RULES_MAX) {
		snprintf(err, errlen,
			 "more than %d different methods/paths rule sets in the policy",
			 HTTP_RULES_MAX - 1);
		return 0;
	}
	http_rules_fill(h, &r);
	if (bpf_map_update_elem(fd, &id, &r, BPF_ANY)) {
		snprintf(err, errlen, "cannot load methods/paths into the kernel: %s",
			 strerror(errno));
		return 0;
	}
	me->val = (void *)(uintptr_t)id;
	return (uint16_t)id;
}

/* Host entries into the name tries; a pattern listed twice (two steps, two entries) gets the
 * union of its rules. */
static int load_names(struct enforce *e, bool block, char *err, size_t errlen)
{
	const struct policy_list *l = block ? &e->set->block : &e->set->allow;
	int fd = loader_map_fd(e->ld, block ? LM_NAMES_BLOCK : LM_NAMES_ALLOW);
	struct strmap ids;
	int rc = -1;

	strmap_init(&ids);
	for (size_t i = 0; i < l->n; i++) {
		const struct policy_entry *pe = &l->v[i];
		struct policy_rule all = {0, 65535, POLICY_PROTO_ANY};

		/* The kernel reads requests with bpf_loop: without it (before 5.17) nothing would
		 * judge them, and an enforced `methods:`/`paths:` must not pass as if it held. */
		if (!block && pe->http && !loader_reads_requests(e->ld)) {
			if (e->mode == POLICY_MODE_ENFORCE) {
				snprintf(
				    err, errlen,
				    "host %s has methods/paths, which this kernel cannot judge (no "
				    "bpf_loop: Linux 5.17+); refusing to enforce them",
				    pe->host);
				goto out;
			}
			if (!e->warned_no_loop++)
				rw_err(
				    "warning: this kernel cannot read HTTP requests (no bpf_loop: "
				    "Linux 5.17+): methods/paths are not judged, not even as "
				    "audit");
		}
		struct fb_name_key k;
		struct name_rules v, old;
		uint16_t req = 0;

		if (pe->kind != POLICY_ENTRY_HOST || !name_key(pe->host, &k, &v))
			continue;
		if (!bpf_map_lookup_elem(fd, &k, &old) && old.a.prefix == v.a.prefix)
			v = old;
		if (!block && pe->http && !(req = http_rules_id(e, &ids, pe->http, err, errlen)))
			goto out;
		if (block)
			name_rules_add(&v, &all, 1, 0);
		else
			name_rules_add(&v, pe->rules, pe->nrules, req);
		if (bpf_map_update_elem(fd, &k, &v, BPF_ANY)) {
			snprintf(err, errlen, "cannot load host %s into the kernel's %s names: %s",
				 pe->host, block ? "blocked" : "allowed", strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	strmap_clear(&ids, NULL);
	return rc;
}

/* ---------------------------------------------------------------- DNS gate */

int enforce_judge_question(const struct enforce *e, const char *qname, int qtype, bool gated,
			   const char **why)
{
	enum policy_verdict v = policy_check_question(e->set, qname, qtype, why);

	if (v == POLICY_BLOCK)
		return VERDICT_BLOCK;
	if (v == POLICY_ALLOW)
		return VERDICT_ALLOW;
	if (!e->has_policy)
		return VERDICT_ALLOW;
	/* Only the gate can refuse; a question that went another way was not refused. */
	if (gated && e->mode == POLICY_MODE_ENFORCE && e->pol->dns.refuse_unlisted)
		return VERDICT_DENY;
	return VERDICT_AUDIT;
}

static enum dnsgate_verdict gate_decide(void *ctx, const char *qname, int qtype,
					const struct dnsgate_client *who,
					struct dnsgate_decision *d)
{
	struct enforce *e = ctx;
	int v = enforce_judge_question(e, qname, qtype, true, &d->reason);

	(void)who;
	/* a secret in the name (a DNS tunnel's payload) leaves with the question: refused before
	 * it is forwarded, in enforce mode */
	if (v == VERDICT_ALLOW && e->mode == POLICY_MODE_ENFORCE && e->secret_in_name &&
	    e->secret_in_name(e->on_question_ctx, qname)) {
		v = VERDICT_DENY;
		d->reason = "a secret in the name";
	}
	d->tag = v;
	d->ede = v == VERDICT_BLOCK ? DNSGATE_EDE_BLOCKED : DNSGATE_EDE_PROHIBITED;
	return v == VERDICT_BLOCK || v == VERDICT_DENY ? DNSGATE_REFUSE : DNSGATE_ALLOW;
}

static void gate_event(void *ctx, const struct dnsgate_event *ev)
{
	struct enforce *e = ctx;
	/* The gate's own refusals (malformed, meta-types, escaped names) apply in every mode. */
	int v = ev->tag == DNSGATE_TAG_OWN ? VERDICT_DENY : ev->tag;

	if (e->on_question)
		e->on_question(e->on_question_ctx, ev, v);
}

/* The kernel value of a pinned address: its own `ip:` entry, then every set still in use. */
static void pin_value(const struct enforce *e, const char *key, const struct pin *p, int full,
		      struct addr_rules *v)
{
	struct strmap_entry *own = strmap_get(&e->exact, key);

	memset(v, 0, sizeof(*v));
	if (own)
		*v = *(struct addr_rules *)own->val;
	v->prefix = full;
	for (unsigned i = 0; i < p->nsets; i++)
		rules_add_new(v, p->sets[i].rules, p->sets[i].nrules, PRF_PINNED);
}

static struct pin_set *pin_find_set(struct pin *p, const struct policy_match *m)
{
	for (unsigned i = 0; i < p->nsets; i++)
		if (p->sets[i].nrules == m->nrules &&
		    !memcmp(p->sets[i].rules, m->rules, m->nrules * sizeof(m->rules[0])))
			return &p->sets[i];
	return NULL;
}

static void pin_free(void *v)
{
	struct pin *p = v;

	if (p)
		free(p->sets);
	free(p);
}

/* The kernel judges v4-mapped as IPv4, so pins are keyed and stored that way. */
static const uint8_t *unmap(int *family, const void *addr, int *full)
{
	const uint8_t *a = addr;

	*full = *family == AF_INET ? 32 : 128;
	if (*family == AF_INET6 && !memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12)) {
		*family = AF_INET;
		*full = 32;
		return a + 12;
	}
	return a;
}

/* Writes p's value for the address, or, when no set is left, restores or removes the entry. */
static int pin_sync(struct enforce *e, const char *key, struct pin *p, int family, const uint8_t *a,
		    int full)
{
	struct addr_rules v;
	struct strmap_entry *own;

	if (p->nsets) {
		pin_value(e, key, p, full, &v);
		return trie_update(e, false, family, a, full, &v);
	}
	own = strmap_get(&e->exact, key);
	if (own)
		return trie_update(e, false, family, a, full, own->val);
	return trie_delete(e, family, a, full);
}

static int gate_pin(void *ctx, const char *asked, const char *owner, int family, const void *addr,
		    uint32_t ttl)
{
	struct enforce *e = ctx;
	struct policy_match m;
	char key[80];
	struct strmap_entry *ent;
	struct pin *p;
	struct pin_set *set;
	int full;
	const uint8_t *a = unmap(&family, addr, &full);

	(void)owner;
	(void)ttl;
	if (policy_check_host(e->set, asked, &m) != POLICY_ALLOW)
		return 0; /* observe mode let an unlisted name through: nothing to allow */
	trie_key(key, sizeof(key), family, a, full);
	ent = strmap_put(&e->pins, key, NULL);
	if (!ent->val) {
		ent->val = xcalloc(1, sizeof(struct pin));
	}
	p = ent->val;
	set = pin_find_set(p, &m);
	if (!set) {
		struct pin_set *grown = xreallocarray(p->sets, p->nsets + 1, sizeof(*grown));

		p->sets = grown;
		set = &p->sets[p->nsets++];
		memset(set, 0, sizeof(*set));
		set->nrules = m.nrules;
		memcpy(set->rules, m.rules, m.nrules * sizeof(m.rules[0]));
	}
	set->names++;
	if (set->names == 1 && pin_sync(e, key, p, family, a, full)) {
		e->pins_failed++;
		set->names--;
		p->nsets--; /* the set just added is the last one */
		if (!p->nsets)
			pin_free(strmap_del(&e->pins, key));
		return -1; /* the gate answers SERVFAIL rather than an address we would refuse */
	}
	e->pinned_total++;
	return 0;
}

static void gate_unpin(void *ctx, const char *asked, int family, const void *addr)
{
	struct enforce *e = ctx;
	struct policy_match m;
	char key[80];
	struct strmap_entry *ent;
	struct pin *p;
	struct pin_set *set;
	int full;
	const uint8_t *a = unmap(&family, addr, &full);

	if (policy_check_host(e->set, asked, &m) != POLICY_ALLOW)
		return; /* gate_pin pinned nothing for it (the policy does not change mid-run) */
	trie_key(key, sizeof(key), family, a, full);
	ent = strmap_get(&e->pins, key);
	if (!ent)
		return;
	p = ent->val;
	set = pin_find_set(p, &m);
	if (!set || --set->names > 0)
		return;
	*set = p->sets[--p->nsets];
	pin_sync(e, key, p, family, a, full);
	if (!p->nsets)
		pin_free(strmap_del(&e->pins, key));
}

int enforce_block_address(struct enforce *e, int family, const void *addr)
{
	struct addr_rules all = {.nrules = 1, .r = {{0, 65535, RPROTO_TCP | RPROTO_UDP, 0}}};
	char key[80];
	int full;
	const uint8_t *a = unmap(&family, addr, &full);

	trie_key(key, sizeof(key), family, a, full);
	if (strmap_get(&e->blocked, key))
		return 0;
	if (e->blocked.count >= BLOCKED_ANSWERS_MAX || !e->ld) {
		e->blocked_dropped++;
		return -1;
	}
	all.prefix = full;
	if (trie_update(e, true, family, a, full, &all)) {
		e->blocked_dropped++;
		return -1;
	}
	strmap_put(&e->blocked, key, NULL);
	return 0;
}

static bool usable_addr(const char *s)
{
	uint8_t a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static int gate_upstream_for(void *ctx, const struct dnsgate_client *who,
			     struct sockaddr_storage *to, socklen_t *tolen)
{
	struct enforce *e = ctx;
	const char *server = e->resolver_of ? e->resolver_of(e->on_question_ctx, who) : NULL;
	struct sockaddr_in *in4 = (struct sockaddr_in *)to;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)to;

	memset(to, 0, sizeof(*to));
	if (!server)
		return -1;
	/* The kernel judges v4-mapped as IPv4; forward the same way. */
	if (!strncmp(server, "::ffff:", 7) && strchr(server + 7, '.'))
		server += 7;
	if (inet_pton(AF_INET, server, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(53);
		*tolen = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, server, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(53);
		*tolen = sizeof(*in6);
		return 0;
	}
	return -1;
}

static int system_resolver(char *out, size_t len)
{
	char buf[8192], *line, *save = NULL;
	ssize_t n = read_text_bounded("/etc/resolv.conf", buf, sizeof(buf));

	if (n <= 0)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char addr[INET6_ADDRSTRLEN];

		if (sscanf(line, " nameserver %45s", addr) == 1) {
			snprintf(out, len, "%s", addr);
			return 0;
		}
	}
	return -1;
}

static int start_gate(struct enforce *e, char *err, size_t errlen)
{
	const struct policy_dns *d = &e->pol->dns;
	const struct policy_addr *up = d->has_upstream ? &d->upstream
				       : d->nresolvers ? &d->resolvers[0]
						       : NULL;
	char addr[INET6_ADDRSTRLEN];
	struct dnsgate_config gc = {0};
	char gerr[256];

	if (up) {
		inet_ntop(up->family, up->addr, addr, sizeof(addr));
	} else if (system_resolver(addr, sizeof(addr)) || !usable_addr(addr)) {
		if (e->has_policy) {
			snprintf(err, errlen,
				 "dns: no upstream in the policy and no usable nameserver in "
				 "/etc/resolv.conf for the DNS gate");
			return -1;
		}
		addr[0] = 0; /* each question goes where the job sent it (gate_upstream_for) */
	}
	gc.listen = "127.0.0.1";
	gc.upstream = addr[0] ? addr : NULL;
	if (!e->has_policy)
		gc.upstream_for = gate_upstream_for;
	gc.upstream_port = up && up->port ? up->port : 53;
	gc.max_pins = PIN_ROOM / 2;
	gc.pin_grace_s = d->pin_grace_s;
	gc.refusal = d->refuse_with == POLICY_REFUSE_REFUSED ? DNSGATE_REFUSED : DNSGATE_NXDOMAIN;
	gc.ctx = e;
	gc.decide = gate_decide;
	/* Without a policy every connect is allowed: nothing to pin. In observe mode a
	 * pin that cannot be made must not refuse the name (observing changes nothing). */
	gc.pin = e->has_policy ? gate_pin : NULL;
	gc.unpin = gate_unpin;
	gc.pin_best_effort = e->mode != POLICY_MODE_ENFORCE;
	gc.event = gate_event;
	e->gate = dnsgate_new(&gc, gerr, sizeof(gerr));
	if (!e->gate) {
		snprintf(err, errlen, "DNS gate: %s", gerr);
		return -1;
	}
	return 0;
}

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif
/* This process's network namespace: the one where the gate listens. */
static uint64_t own_netns_cookie(void)
{
	uint64_t ck = 0;
	socklen_t len = sizeof(ck);
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s >= 0) {
		if (getsockopt(s, SOL_SOCKET, SO_NETNS_COOKIE, &ck, &len))
			ck = 0; /* before 5.14: redirect everything, as before */
		close(s);
	}
	return ck;
}

int enforce_arm(struct enforce *e, const struct loader *ld, char *err, size_t errlen)
{
	struct rw_config c = {0};
	uint32_t zero = 0;
	const struct policy_dns *d = &e->pol->dns;

	e->ld = ld;
	if (load_list(e, true, err, errlen) || load_list(e, false, err, errlen) ||
	    load_names(e, true, err, errlen) || load_names(e, false, err, errlen))
		return -1;
	if (start_gate(e, err, errlen)) {
		if (e->has_policy)
			return -1;
		/* Observe without a policy must not stop a job from running; the block list's
		 * addresses are still refused by the kernel, its names are not. */
		rw_err("warning: %s; block-list names are not refused at DNS in this run", err);
		e->gate_missing = true;
	}
	c.mode = e->mode == POLICY_MODE_ENFORCE ? MODE_ENFORCE : MODE_OBSERVE;
	c.policy = e->has_policy;
	c.gate_port = e->gate ? dnsgate_port(e->gate) : 0;
	c.gate_netns = own_netns_cookie();
	for (size_t i = 0; i < d->nresolvers && c.nresolvers < RESOLVERS_MAX; i++) {
		const struct policy_addr *r = &d->resolvers[i];
		uint8_t *a = c.resolvers[c.nresolvers].addr;

		if (r->family == AF_INET) {
			a[10] = a[11] = 0xff;
			memcpy(a + 12, r->addr, 4);
		} else {
			memcpy(a, r->addr, 16);
		}
		c.resolvers[c.nresolvers].port = r->port ? r->port : 53;
		c.nresolvers++;
	}
	if (d->nresolvers > RESOLVERS_MAX) {
		snprintf(err, errlen, "dns.resolvers: at most %d resolvers", RESOLVERS_MAX);
		return -1;
	}
	if (bpf_map_update_elem(loader_map_fd(ld, LM_CONFIG), &zero, &c, BPF_ANY)) {
		snprintf(err, errlen, "cannot set the kernel's policy mode: %s", strerror(errno));
		return -1;
	}
	return 0;
}

void enforce_gate_close(struct enforce *e)
{
	if (!e->gate)
		return;
	dnsgate_dispatch(e->gate);
	dnsgate_abandon(e->gate);
}

int enforce_gate_fd(const struct enforce *e)
{
	return e->gate ? dnsgate_fd(e->gate) : -1;
}

void enforce_gate_dispatch(struct enforce *e)
{
	if (!e->gate)
		return;
	dnsgate_dispatch(e->gate);
	dnsgate_expire(e->gate, dnsgate_now_ms(), NULL);
}

char *enforce_policy_json(const struct enforce *e)
{
	struct strbuf sb = STRBUF_INIT;

	sb_addstr(&sb, "{\"path\":");
	json_cstr(&sb, e->pol->path);
	sb_addf(&sb, ",\"sha256\":\"%s\",\"version\":%d,\"mode\":\"%s\"", e->pol->sha256,
		e->pol->version, policy_mode_name(e->mode));
	sb_addf(&sb, ",\"allow_entries\":%zu,\"block_entries\":%zu", e->set->allow.n,
		e->set->block.n);
	sb_addf(&sb, ",\"pins\":%llu,\"pins_failed\":%llu}", (unsigned long long)e->pinned_total,
		(unsigned long long)e->pins_failed);
	return sb_detach(&sb);
}

void enforce_gate_json(const struct enforce *e, struct strbuf *sb)
{
	struct dnsgate_stats st = {0};

	if (e->gate)
		dnsgate_stats(e->gate, &st);
	sb_addf(sb,
		"{\"gate\":%s,\"questions\":%llu,\"forwarded\":%llu,\"refused\":%llu,"
		"\"malformed\":%llu,\"servfail\":%llu,\"pins\":%llu,\"pins_failed\":%llu,"
		"\"pins_skipped\":%llu,\"blocked_from_answers\":%zu,\"blocked_dropped\":%llu",
		e->gate ? "true" : "false", (unsigned long long)st.queries,
		(unsigned long long)st.forwarded, (unsigned long long)st.refused,
		(unsigned long long)st.malformed, (unsigned long long)st.servfail,
		(unsigned long long)e->pinned_total, (unsigned long long)e->pins_failed,
		(unsigned long long)st.pins_skipped, e->blocked.count,
		(unsigned long long)e->blocked_dropped);
}

void enforce_free(struct enforce *e)
{
	if (e->gate)
		dnsgate_free(e->gate);
	if (e->set)
		policy_set_free(e->set);
	if (e->blocklist)
		policy_list_free(e->blocklist);
	if (e->pol)
		policy_free(e->pol);
	strmap_clear(&e->exact, free);
	strmap_clear(&e->pins, pin_free);
	strmap_clear(&e->blocked, NULL);
	memset(e, 0, sizeof(*e));
}
