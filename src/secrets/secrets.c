/* The job's secrets: kept, matched with Hyperscan, written into the kernel's maps (secrets.h). */
#include "secrets/secrets.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <hs.h>
#include <openssl/crypto.h>

#include "common/jsonw.h"
#include "common/strbuf.h"
#include "common/xalloc.h"
#include "policy/policy.h"

/* Well-known token formats: the shapes the kernel checks (bpf/secretscan.bpf.h,
 * secret_format_at), as Hyperscan patterns, and where such a token may go unless the policy
 * says otherwise. */
static const struct format_def {
	uint32_t id;
	const char *name;
	const char *re;
	const char *to[4];
} formats[] = {
    {SF_GITHUB,
     "github",
     "(?:\\bgh[pousr]_[A-Za-z0-9]{30,}|\\bgithub_pat_[A-Za-z0-9_]{22,})",
     {"github.com", "**.github.com", "**.githubusercontent.com"}},
    {SF_NPM, "npm", "\\bnpm_[A-Za-z0-9]{36,}", {"registry.npmjs.org"}},
    /* an access key id alone: the secret key never leaves an SDK (SigV4 signs) */
    {SF_AWS, "aws", "\\bA[KS]IA[A-Z0-9]{16}\\b", {"**.amazonaws.com"}},
    {SF_SLACK, "slack", "\\bxox[abprs]-[A-Za-z0-9_-]{10,}", {"slack.com", "**.slack.com"}},
    {SF_PRIVATE_KEY, "private_key", "-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----", {NULL}},
};
#define N_FORMATS   (sizeof(formats) / sizeof(formats[0]))
#define FORMAT_BASE 0x100000u /* Hyperscan ids of the formats: FORMAT_BASE + index */

/* Variables whose value a well-known service takes, and only that service. */
static const struct env_default {
	const char *name;
	const char *to[4];
} env_defaults[] = {
    {"NPM_TOKEN", {"registry.npmjs.org"}},
    {"NODE_AUTH_TOKEN", {"registry.npmjs.org"}},
    {"GITHUB_TOKEN", {"github.com", "**.github.com", "**.githubusercontent.com"}},
    {"GH_TOKEN", {"github.com", "**.github.com", "**.githubusercontent.com"}},
};

const char *secret_source_name(enum secret_source src)
{
	return src == SECRET_ENV ? "env" : src == SECRET_FILE ? "file" : "format";
}

const char *secret_format_name(uint32_t id)
{
	for (size_t i = 0; i < N_FORMATS; i++)
		if (formats[i].id == id)
			return formats[i].name;
	return NULL;
}

uint64_t secret_fnv(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t secret_rhash(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	while (n--) {
		h ^= (unsigned char)s[n];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static void add_dest(struct secret *x, const char *host)
{
	if (!host || !*host)
		return;
	for (size_t i = 0; i < x->nto; i++)
		if (!strcmp(x->to[i], host))
			return;
	if (x->nto < SECRET_DESTS_MAX)
		x->to[x->nto++] = xstrdup(host);
}

static const struct policy_secret_rule *rule_for(const struct secrets *s, enum secret_source src,
						 const char *name)
{
	if (!s->pol)
		return NULL;
	for (size_t i = 0; i < s->pol->nrules; i++) {
		const struct policy_secret_rule *r = &s->pol->rules[i];

		if (src == SECRET_ENV && r->kind == POLICY_SECRET_ENV && !strcmp(r->name, name))
			return r;
		if (src == SECRET_FILE && r->kind == POLICY_SECRET_FILE &&
		    !fnmatch(r->name, name, 0))
			return r;
		if (src == SECRET_FORMAT && r->kind == POLICY_SECRET_FORMAT &&
		    !strcmp(r->name, name))
			return r;
	}
	return NULL;
}

/* The policy's `to:` for this secret, else the built-in one for its name or format. A
 * credential file's token may also go to the host the file names it for (added by the
 * caller). */
static void default_dests(struct secrets *s, struct secret *x)
{
	const struct policy_secret_rule *r = rule_for(s, x->src, x->name);

	if (r) {
		for (size_t i = 0; i < r->nto; i++)
			add_dest(x, r->to[i]);
		return;
	}
	if (x->src == SECRET_ENV)
		for (size_t i = 0; i < sizeof(env_defaults) / sizeof(env_defaults[0]); i++)
			if (!strcmp(env_defaults[i].name, x->name))
				for (int k = 0; k < 4 && env_defaults[i].to[k]; k++)
					add_dest(x, env_defaults[i].to[k]);
	if (x->src == SECRET_FORMAT)
		for (size_t i = 0; i < N_FORMATS; i++)
			if (formats[i].id == x->id)
				for (int k = 0; k < 4 && formats[i].to[k]; k++)
					add_dest(x, formats[i].to[k]);
}

static struct secret *new_secret(struct secrets *s)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 32;
		s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
	}
	memset(&s->v[s->n], 0, sizeof(s->v[0]));
	return &s->v[s->n++];
}

void secrets_init(struct secrets *s, const struct redactor *rd, const struct policy_secrets *pol)
{
	memset(s, 0, sizeof(*s));
	s->rd = rd;
	s->pol = pol;
	s->next_id = SECRET_ID_FIRST;
	s->dirty = true;
	for (size_t i = 0; i < N_FORMATS; i++) {
		struct secret *x = new_secret(s);

		x->id = formats[i].id;
		x->src = SECRET_FORMAT;
		x->name = xstrdup(formats[i].name);
		default_dests(s, x);
	}
}

void secrets_set_policy(struct secrets *s, const struct policy_secrets *pol)
{
	s->pol = pol;
	/* the formats were given their built-in destinations at init: the policy's now */
	for (size_t i = 0; i < s->n; i++) {
		struct secret *x = &s->v[i];

		if (x->src != SECRET_FORMAT)
			continue;
		for (size_t k = 0; k < x->nto; k++)
			free(x->to[k]);
		x->nto = 0;
		default_dests(s, x);
	}
}

static void free_one(struct secret *x)
{
	if (x->value) {
		OPENSSL_cleanse(x->value, x->len);
		free(x->value);
	}
	free(x->name);
	free(x->what);
	for (size_t i = 0; i < x->nto; i++)
		free(x->to[i]);
}

void secrets_free(struct secrets *s)
{
	for (size_t i = 0; i < s->n; i++)
		free_one(&s->v[i]);
	free(s->v);
	hs_free_scratch(s->scratch);
	hs_free_database(s->db);
	memset(s, 0, sizeof(*s));
}

struct secret *secrets_add(struct secrets *s, enum secret_source src, const char *name,
			   const char *what, const char *value, size_t len, const char *host)
{
	struct secret *x;

	if (len > SECRET_VALUE_MAX)
		len = SECRET_VALUE_MAX;
	if (len < SECRET_MIN_LEN) {
		s->too_short++;
		return NULL;
	}
	for (size_t i = 0; i < s->n; i++) {
		x = &s->v[i];
		if (x->value && x->len == len && !memcmp(x->value, value, len)) {
			/* known already (the same token in the environment and a file): it may go
			 * where either source says */
			if (src == SECRET_FILE)
				add_dest(x, host);
			return NULL;
		}
	}
	if (s->next_id >= SECRET_ID_FIRST + SECRETS_MAX) {
		s->dropped++;
		return NULL;
	}
	x = new_secret(s);
	x->id = s->next_id++;
	x->src = src;
	x->name = xstrdup(name);
	x->what = what ? xstrdup(what) : NULL;
	x->value = xmalloc(len + 1);
	memcpy(x->value, value, len);
	x->value[len] = 0;
	x->len = len;
	if (s->rd && s->rd->ready)
		redact_tag(s->rd, value, len, x->tag);
	default_dests(s, x);
	if (src == SECRET_FILE)
		add_dest(x, host);
	s->dirty = true;
	return x;
}

const struct secret *secrets_by_id(const struct secrets *s, uint32_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].id == id)
			return &s->v[i];
	return NULL;
}

bool secret_allowed_to(const struct secret *x, const char *host)
{
	size_t hl = host ? strlen(host) : 0;

	for (size_t i = 0; i < x->nto; i++) {
		const char *d = x->to[i];

		if (!strcmp(d, "*"))
			return true;
		if (!hl)
			continue;
		if (!strncmp(d, "**.", 3)) {
			size_t sl = strlen(d + 2); /* ".suffix" */

			if (hl > sl && !strcasecmp(host + hl - sl, d + 2))
				return true;
		} else if (!strcasecmp(d, host)) {
			return true;
		}
	}
	return false;
}

/* ---- Hyperscan ---- */

static int rebuild(struct secrets *s)
{
	size_t n = 0;
	const char **pats = xcalloc(s->n, sizeof(*pats));
	unsigned *flags = xcalloc(s->n, sizeof(*flags)), *ids = xcalloc(s->n, sizeof(*ids));
	char **own = xcalloc(s->n, sizeof(*own));
	hs_compile_error_t *ce = NULL;
	hs_database_t *db = NULL;
	int rc = -1;

	for (size_t i = 0; i < s->n; i++) {
		const struct secret *x = &s->v[i];
		struct strbuf re = STRBUF_INIT;

		if (x->src == SECRET_FORMAT) {
			for (size_t f = 0; f < N_FORMATS; f++)
				if (formats[f].id == x->id) {
					pats[n] = formats[f].re;
					ids[n] = FORMAT_BASE + (unsigned)i;
				}
		} else {
			/* a literal, every byte escaped: no byte of a value means anything */
			for (size_t k = 0; k < x->len; k++)
				sb_addf(&re, "\\x%02x", (unsigned char)x->value[k]);
			own[n] = sb_detach(&re);
			pats[n] = own[n];
			ids[n] = (unsigned)i;
		}
		/* a value matches in any case: DNS names reach the gate lower-cased */
		flags[n] = HS_FLAG_SOM_LEFTMOST | (x->src == SECRET_FORMAT ? 0 : HS_FLAG_CASELESS);
		n++;
	}
	if (hs_compile_multi(pats, flags, ids, (unsigned)n, HS_MODE_BLOCK, NULL, &db, &ce) !=
	    HS_SUCCESS) {
		snprintf(s->hs_error, sizeof(s->hs_error), "hyperscan: %s",
			 ce && ce->message ? ce->message : "cannot compile");
		hs_free_compile_error(ce);
		goto out;
	}
	if (hs_alloc_scratch(db, (hs_scratch_t **)&s->scratch) != HS_SUCCESS) {
		snprintf(s->hs_error, sizeof(s->hs_error), "hyperscan: cannot allocate scratch");
		hs_free_database(db);
		goto out;
	}
	hs_free_database(s->db);
	s->db = db;
	s->dirty = false;
	s->hs_error[0] = 0;
	rc = 0;
out:
	for (size_t i = 0; i < n; i++)
		if (own[i]) {
			OPENSSL_cleanse(own[i], strlen(own[i]));
			free(own[i]);
		}
	free(own);
	free(pats);
	free(flags);
	free(ids);
	return rc;
}

struct hit {
	size_t idx, from, to;
};
struct hits {
	struct hit *v;
	size_t n, cap;
};
/* Matches kept per scan; past it the scan stops (what is kept is enough to refuse or redact
 * what was seen, and the text is then redacted whole by the callers that need it). */
#define HITS_MAX 4096

static int on_hs_match(unsigned int id, unsigned long long from, unsigned long long to,
		       unsigned int flags, void *ctx)
{
	struct hits *h = ctx;
	size_t idx = id >= FORMAT_BASE ? id - FORMAT_BASE : id;

	(void)flags;
	/* a pattern with a repeat reports every end: the longest from one start wins */
	if (h->n && h->v[h->n - 1].idx == idx && h->v[h->n - 1].from == from) {
		h->v[h->n - 1].to = to;
		return 0;
	}
	if (h->n == HITS_MAX)
		return 1;
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 16;
		h->v = xreallocarray(h->v, h->cap, sizeof(*h->v));
	}
	h->v[h->n++] = (struct hit){idx, from, to};
	return 0;
}

static int hit_cmp(const void *a, const void *b)
{
	const struct hit *x = a, *y = b;

	if (x->from != y->from)
		return x->from < y->from ? -1 : 1;
	/* a job's own secret before a format that matches the same bytes: it names more */
	return x->idx < y->idx ? 1 : x->idx > y->idx ? -1 : 0;
}

int secrets_scan(struct secrets *s, const char *text, size_t len, secret_match_fn fn, void *ctx)
{
	struct hits h = {0};
	size_t covered = 0;
	int rc = 0;

	if (s->dirty && rebuild(s))
		return -1;
	if (!s->db || !len)
		return 0;
	if (len > UINT32_MAX)
		len = UINT32_MAX;
	hs_scan(s->db, text, (unsigned)len, 0, s->scratch, on_hs_match, &h);
	if (h.n > 1)
		qsort(h.v, h.n, sizeof(*h.v), hit_cmp);
	for (size_t i = 0; i < h.n && !rc; i++) {
		/* a match inside one already reported (a format inside a known secret) is not
		 * another secret */
		if (i && h.v[i].from < covered)
			continue;
		covered = h.v[i].to;
		rc = fn(ctx, &s->v[h.v[i].idx], h.v[i].from, h.v[i].to);
	}
	free(h.v);
	return 0;
}

struct first {
	const struct secret *x;
	size_t from, to;
};

static int take_first(void *ctx, const struct secret *x, size_t from, size_t to)
{
	struct first *f = ctx;

	f->x = x;
	f->from = from;
	f->to = to;
	return 1;
}

const struct secret *secrets_find(struct secrets *s, const char *text, size_t len, size_t *from,
				  size_t *to)
{
	struct first f = {0};

	if (secrets_scan(s, text, len, take_first, &f))
		return NULL;
	if (f.x && from)
		*from = f.from;
	if (f.x && to)
		*to = f.to;
	return f.x;
}

struct redacting {
	struct secrets *s;
	const char *text;
	size_t at, n;
	struct strbuf *out;
};

static int redact_hit(void *ctx, const struct secret *x, size_t from, size_t to)
{
	struct redacting *r = ctx;
	char tag[REDACT_TAG_LEN];

	if (from < r->at)
		return 0;
	sb_add(r->out, r->text + r->at, from - r->at);
	if (x->tag[0])
		sb_addstr(r->out, x->tag);
	else if (r->s->rd && r->s->rd->ready) {
		redact_tag(r->s->rd, r->text + from, to - from, tag);
		sb_addstr(r->out, tag);
	} else {
		sb_addstr(r->out, "[redacted]");
	}
	r->at = to;
	r->n++;
	return 0;
}

size_t secrets_redact(struct secrets *s, const char *text, size_t len, struct strbuf *out)
{
	struct redacting r = {.s = s, .text = text, .out = out};

	if (secrets_scan(s, text, len, redact_hit, &r)) {
		/* no matcher: nothing of the text is trusted to be free of secrets */
		sb_addstr(out, "[unscanned]");
		return 1;
	}
	sb_add(out, text + r.at, len - r.at);
	return r.n;
}

/* ---- the kernel's copy ---- */

static void pair_set(uint64_t *w, unsigned char a, unsigned char b)
{
	unsigned p = (unsigned)a << 8 | b;

	w[p >> 6] |= 1ULL << (p & 63);
}

static int put_dests(const struct secrets_kernel *k, const struct secret *x)
{
	uint8_t one = 1;
	int rc = 0;

	for (size_t i = 0; i < x->nto; i++) {
		const char *d = x->to[i];
		struct secret_to_key key = {.id = x->id};

		if (!strcmp(d, "*")) {
			key.how = 2;
		} else if (!strncmp(d, "**.", 3)) {
			key.how = 1;
			key.rhash = secret_rhash(d + 2, strlen(d + 2));
		} else {
			key.rhash = secret_rhash(d, strlen(d));
		}
		if (bpf_map_update_elem(k->to_fd, &key, &one, BPF_ANY))
			rc = -1;
	}
	return rc;
}

int secrets_kernel_sync(struct secrets *s, const struct secrets_kernel *k)
{
	/* The kernel looks pairs up at every third byte: each anchor's pairs at offsets 0, 1
	 * and 2 (bpf/secretscan.bpf.h). The formats' by their fixed prefixes; not github_pat_,
	 * whose "it" and "th" would make every other word of text a candidate (it is matched in
	 * user space, and as a value when the job was given it). */
	static const char *const prefixes[] = {"ghp_", "gho_", "ghu_", "ghs_", "ghr_",
					       "npm_", "AKIA", "ASIA", "xoxa", "xoxb",
					       "xoxp", "xoxr", "xoxs", "----"};
	struct secret_pairs_v {
		uint64_t w[SECRET_PAIRS];
	} *pairs = xcalloc(1, sizeof(*pairs));
	struct secret_cfg cfg = {.on = 1};
	uint32_t zero = 0;
	int rc = 0;

	s->k = *k;
	s->kernel = true;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		for (int o = 0; o < 3; o++)
			pair_set(pairs->w, prefixes[i][o], prefixes[i][o + 1]);
	for (size_t i = 0; i < s->n; i++) {
		const struct secret *x = &s->v[i];
		struct secret_anchor a;
		uint64_t key;
		size_t vlen;

		if (x->src == SECRET_FORMAT) {
			cfg.formats |= 1u << x->id;
		} else {
			memcpy(&key, x->value, sizeof(key));
			memset(&a, 0, sizeof(a));
			/* secrets sharing their first 8 bytes share the anchor */
			if (bpf_map_lookup_elem(k->anchors_fd, &key, &a))
				memset(&a, 0, sizeof(a));
			vlen = x->len < SECRET_VMAX ? x->len : SECRET_VMAX;
			bool have = false;

			for (uint32_t c = 0; c < a.n && c < SECRET_ALIASES; c++)
				have |= a.c[c].id == x->id;
			if (!have && a.n >= SECRET_ALIASES) {
				s->kernel_failed++;
			} else if (!have) {
				a.c[a.n].id = x->id;
				a.c[a.n].vlen = (uint32_t)vlen;
				a.c[a.n].hash = secret_fnv(x->value, vlen);
				a.n++;
				if (bpf_map_update_elem(k->anchors_fd, &key, &a, BPF_ANY)) {
					s->kernel_failed++;
					rc = -1;
				}
			}
			for (int o = 0; o < 3; o++)
				pair_set(pairs->w, (unsigned char)x->value[o],
					 (unsigned char)x->value[o + 1]);
		}
		if (put_dests(k, x)) {
			s->kernel_failed++;
			rc = -1;
		}
	}
	/* the bitmap before the switch: a scan never runs on a half-written set */
	if (bpf_map_update_elem(k->pairs_fd, &zero, pairs, BPF_ANY) ||
	    bpf_map_update_elem(k->cfg_fd, &zero, &cfg, BPF_ANY))
		rc = -1;
	free(pairs);
	return rc;
}

void secrets_json(const struct secrets *s, struct strbuf *sb)
{
	size_t env = 0, files = 0;

	for (size_t i = 0; i < s->n; i++) {
		env += s->v[i].src == SECRET_ENV;
		files += s->v[i].src == SECRET_FILE;
	}
	sb_addf(sb,
		",\"secrets\":{\"env\":%zu,\"file_tokens\":%zu,\"too_short\":%llu,"
		"\"dropped\":%llu,\"files_read\":%llu,\"files_skipped\":%llu,"
		"\"kernel_failed\":%llu,\"matcher\":",
		env, files, (unsigned long long)s->too_short, (unsigned long long)s->dropped,
		(unsigned long long)s->files_read, (unsigned long long)s->files_skipped,
		(unsigned long long)s->kernel_failed);
	json_cstr(sb, s->hs_error[0] ? s->hs_error : "hyperscan");
	sb_addch(sb, '}');
}
