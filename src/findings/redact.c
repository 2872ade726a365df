/* Secret values out of logged command lines (see redact.h, docs/findings.md). */
#include "findings/redact.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/jsonw.h"
#include "common/xalloc.h"

/* Spans redacted per argument; an argument with more is redacted whole. */
#define SPANS_MAX 16
/* Arguments looked at per command line (the kernel copies at most 16 KiB anyway). */
#define ARGS_MAX 4096

struct span {
	size_t a, b; /* [a, b) */
};

int redactor_init(struct redactor *r, const unsigned char *key)
{
	memset(r, 0, sizeof(*r));
	if (key)
		memcpy(r->key, key, REDACT_KEY_BYTES);
	else if (getrandom(r->key, sizeof(r->key), 0) != (ssize_t)sizeof(r->key))
		return -1;
	r->ready = true;
	return 0;
}

void redactor_wipe(struct redactor *r)
{
	OPENSSL_cleanse(r->key, sizeof(r->key));
	r->ready = false;
}

void redact_tag(const struct redactor *r, const void *secret, size_t n, char out[REDACT_TAG_LEN])
{
	unsigned char mac[32];
	size_t mlen = 0;
	char *p = out;

	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, r->key, sizeof(r->key), secret, n, mac,
		       sizeof(mac), &mlen) ||
	    mlen < 16)
		abort(); /* OpenSSL without HMAC-SHA256: nothing could be trusted here */
	p += sprintf(p, "[redacted:");
	for (int i = 0; i < 16; i++)
		p += sprintf(p, "%02x", mac[i]);
	sprintf(p, "]");
}

/* ---- what looks like a secret ---- */

static bool is_tokch(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

static size_t run_of(const char *s, size_t n, size_t i, int (*cls)(int))
{
	size_t j = i;

	while (j < n && cls((unsigned char)s[j]))
		j++;
	return j - i;
}

static int tokch(int c)
{
	return is_tokch((char)c);
}

static int alnum_(int c)
{
	return isalnum(c) || c == '_';
}

static int upper_digit(int c)
{
	return isupper(c) || isdigit(c);
}

/* Token formats providers publish so that secret scanners can find them: prefix, the
 * characters that follow and how many at least. */
static const struct token_format {
	const char *prefix;
	int (*cls)(int);
	size_t min;
} formats[] = {
    {"ghp_", isalnum, 30},     {"gho_", isalnum, 30},	  {"ghu_", isalnum, 30},
    {"ghs_", isalnum, 30},     {"ghr_", isalnum, 30},	  {"github_pat_", alnum_, 22},
    {"glpat-", tokch, 20},     {"npm_", isalnum, 36},	  {"xoxb-", tokch, 10},
    {"xoxp-", tokch, 10},      {"xoxa-", tokch, 10},	  {"xoxs-", tokch, 10},
    {"AKIA", upper_digit, 16}, {"ASIA", upper_digit, 16}, {"AIza", tokch, 35},
    {"sk_live_", isalnum, 16}, {"rk_live_", isalnum, 16}, {"sk-", tokch, 32},
    {"pypi-", tokch, 50},      {"hf_", isalnum, 30},	  {"dop_v1_", isalnum, 40},
    {"glrt-", tokch, 20},      {"SG.", tokch, 40},
};

/* A JSON Web Token: three base64url parts, the first a JSON object ("eyJ"). */
static size_t jwt_at(const char *s, size_t n, size_t i)
{
	size_t j = i;

	if (n - i < 3 || memcmp(s + i, "eyJ", 3))
		return 0;
	for (int part = 0; part < 3; part++) {
		size_t r = run_of(s, n, j, tokch);

		if (r < 10)
			return 0;
		j += r;
		if (part < 2) {
			if (j >= n || s[j] != '.')
				return 0;
			j++;
		}
	}
	return j - i;
}

static size_t token_at(const char *s, size_t n, size_t i)
{
	if (i > 0 && is_tokch(s[i - 1]))
		return 0; /* only at the start of a word */
	for (size_t k = 0; k < sizeof(formats) / sizeof(formats[0]); k++) {
		size_t pl = strlen(formats[k].prefix), r;

		if (n - i < pl || memcmp(s + i, formats[k].prefix, pl))
			continue;
		r = run_of(s, n, i + pl, formats[k].cls);
		if (r >= formats[k].min)
			return pl + r;
	}
	return jwt_at(s, n, i);
}

/* Names that say their value is a secret, and suffixes that say it is only where one is. */
static bool secret_name(const char *k, size_t n)
{
	static const char *const words[] = {
	    "password",	   "passwd",	 "secret",     "token",	       "apikey",     "api_key",
	    "api-key",	   "accesskey",	 "access_key", "access-key",   "privatekey", "private_key",
	    "private-key", "credential", "_auth",      "authorization"};
	static const char *const not_values[] = {"file",  "path",    "dir",	"env",	  "stdin",
						 "cmd",	  "command", "type",	"url",	  "name",
						 "len",	  "length",  "size",	"max",	  "min",
						 "count", "ttl",     "timeout", "expiry", "id"};
	char low[128];

	while (n && *k == '-') {
		k++;
		n--;
	}
	if (!n || n >= sizeof(low))
		return false;
	for (size_t i = 0; i < n; i++)
		low[i] = (char)tolower((unsigned char)k[i]);
	low[n] = 0;
	for (size_t i = 0; i < sizeof(not_values) / sizeof(not_values[0]); i++) {
		size_t m = strlen(not_values[i]);

		if (n > m && !strcmp(low + n - m, not_values[i]))
			return false;
	}
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(low, words[i]))
			return true;
	return false;
}

bool redact_secret_name(const char *name, size_t n)
{
	return secret_name(name, n);
}

/* "--password", "--token": the next argument is the value. */
static bool secret_flag(const char *s, size_t n)
{
	static const char *const flags[] = {"password",	     "passwd",	     "pass",
					    "token",	     "secret",	     "api-key",
					    "apikey",	     "access-token", "auth-token",
					    "client-secret", "secret-key",   "access-key",
					    "private-key",   "bearer",	     "oauth-token",
					    "github-token",  "npm-token",    "registry-password"};
	size_t d = 0;

	while (d < n && d < 2 && s[d] == '-')
		d++;
	if (!d || memchr(s, '=', n))
		return false;
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (n - d == strlen(flags[i]) && !strncasecmp(s + d, flags[i], n - d))
			return true;
	return false;
}

/* curl/wget style "-u user:password": the value after the first ':' of the next argument. */
static bool userpass_flag(const char *s, size_t n)
{
	return (n == 2 && !memcmp(s, "-u", 2)) || (n == 6 && !memcmp(s, "--user", 6));
}

/* "Authorization: Bearer X", "PRIVATE-TOKEN: X": the value (after a scheme word). */
static bool header_value(const char *s, size_t n, struct span *sp)
{
	static const char *const names[] = {
	    "authorization", "proxy-authorization", "x-api-key", "private-token", "x-auth-token",
	    "api-key",	     "job-token",	    "cookie"};
	size_t i, colon;

	for (colon = 0; colon < n && s[colon] != ':'; colon++)
		;
	if (colon == n)
		return false;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (colon == strlen(names[i]) && !strncasecmp(s, names[i], colon))
			break;
	if (i == sizeof(names) / sizeof(names[0]))
		return false;
	i = colon + 1;
	while (i < n && s[i] == ' ')
		i++;
	/* keep the scheme (Bearer, Basic, token) readable */
	{
		size_t w = run_of(s, n, i, isalpha);

		if (w && i + w < n && s[i + w] == ' ')
			i += w + 1;
	}
	if (i >= n)
		return false;
	sp->a = i;
	sp->b = n;
	return true;
}

/* scheme://user:password@host: the password (or a token used as the user name). */
static bool url_password(const char *s, size_t n, size_t from, struct span *sp)
{
	const char *p = from < n ? memmem(s + from, n - from, "://", 3) : NULL;
	size_t u, end, at;

	if (!p)
		return false;
	u = (size_t)(p - s) + 3;
	for (end = u; end < n && s[end] != '/' && s[end] != '?' && s[end] != '#'; end++)
		;
	for (at = end; at > u && s[at - 1] != '@'; at--)
		;
	if (at == u)
		return false;
	at--; /* the '@' */
	for (size_t c = u; c < at; c++) {
		if (s[c] == ':') {
			if (c + 1 == at)
				return false;
			sp->a = c + 1;
			sp->b = at;
			return true;
		}
	}
	if (token_at(s, at, u)) {
		sp->a = u;
		sp->b = at;
		return true;
	}
	return false;
}

static void add_span(struct span *sp, int *n, size_t a, size_t b, bool *whole)
{
	if (b <= a)
		return;
	for (int i = 0; i < *n; i++) {
		if (a < sp[i].b && b > sp[i].a) { /* overlap: merge */
			sp[i].a = a < sp[i].a ? a : sp[i].a;
			sp[i].b = b > sp[i].b ? b : sp[i].b;
			return;
		}
	}
	if (*n == SPANS_MAX) {
		*whole = true;
		return;
	}
	sp[*n].a = a;
	sp[(*n)++].b = b;
}

static bool word_ch(char c)
{
	return !isspace((unsigned char)c) && c != '"' && c != '\'' && c != ';' && c != '`';
}

static bool header_name_word(const char *s, size_t n)
{
	struct span h;
	char buf[64];

	if (n < 2 || n >= sizeof(buf) - 2 || s[n - 1] != ':')
		return false;
	memcpy(buf, s, n);
	memcpy(buf + n, " x", 3);
	return header_value(buf, n + 2, &h);
}

static bool scheme_word(const char *s, size_t n)
{
	static const char *const schemes[] = {"bearer", "basic", "token",
					      "digest", "bot",	 "negotiate"};

	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (n == strlen(schemes[i]) && !strncasecmp(s, schemes[i], n))
			return true;
	return false;
}

/* A shell command line in one argument (sh -c '...'): the same rules, word by word. */
static void word_spans(const char *s, size_t n, struct span *sp, int *k, bool *whole)
{
	size_t i = 0, pa = 0, pb = 0;
	bool prev = false;
	int header = 0; /* 1: after a header name, 2: after its scheme word */

	while (i < n) {
		size_t a, b;
		const char *eq;

		while (i < n && !word_ch(s[i]))
			i++;
		a = i;
		while (i < n && word_ch(s[i]))
			i++;
		b = i;
		if (a == b)
			break;
		eq = memchr(s + a, '=', b - a);
		if (eq && eq > s + a && secret_name(s + a, (size_t)(eq - s - a)))
			add_span(sp, k, (size_t)(eq - s) + 1, b, whole);
		if (header == 1 && scheme_word(s + a, b - a)) {
			header = 2;
		} else if (header) {
			add_span(sp, k, a, b, whole);
			header = 0;
		} else if (header_name_word(s + a, b - a)) {
			header = 1;
		} else if (prev && s[a] != '-' && secret_flag(s + pa, pb - pa)) {
			add_span(sp, k, a, b, whole);
		} else if (prev && userpass_flag(s + pa, pb - pa) && memchr(s + a, ':', b - a)) {
			add_span(sp, k, (size_t)((const char *)memchr(s + a, ':', b - a) - s) + 1,
				 b, whole);
		}
		pa = a;
		pb = b;
		prev = true;
	}
}

/* The secret spans of one argument, sorted. whole: the argument is a secret by position. */
static int find_spans(const struct redactor *r, const char *s, size_t n, bool whole,
		      struct span *sp)
{
	int k = 0;
	struct span h;
	const char *eq, *pem;

	if (whole || !n) {
		if (n) {
			sp[0].a = 0;
			sp[0].b = n;
		}
		return n ? 1 : 0;
	}
	pem = memmem(s, n, "-----BEGIN", 10);
	if (pem && memmem(pem, n - (size_t)(pem - s), "PRIVATE KEY", 11))
		add_span(sp, &k, (size_t)(pem - s), n, &whole);
	if (header_value(s, n, &h))
		add_span(sp, &k, h.a, h.b, &whole);
	eq = memchr(s, '=', n);
	if (eq && eq > s && secret_name(s, (size_t)(eq - s)))
		add_span(sp, &k, (size_t)(eq - s) + 1, n, &whole);
	for (size_t from = 0; url_password(s, n, from, &h); from = h.b)
		add_span(sp, &k, h.a, h.b, &whole);
	if (memchr(s, ' ', n) || memchr(s, '\t', n) || memchr(s, '\n', n))
		word_spans(s, n, sp, &k, &whole);
	if (r->extra) {
		size_t ex[SPANS_MAX][2], ne = r->extra(r->extra_ctx, s, n, ex, SPANS_MAX);

		for (size_t i = 0; i < ne; i++)
			add_span(sp, &k, ex[i][0], ex[i][1], &whole);
	}
	for (size_t i = 0; i < n; i++) {
		size_t t = token_at(s, n, i);

		if (t) {
			add_span(sp, &k, i, i + t, &whole);
			i += t - 1;
		}
	}
	if (whole) {
		sp[0].a = 0;
		sp[0].b = n;
		return 1;
	}
	/* sort by start (few spans) */
	for (int i = 1; i < k; i++)
		for (int j = i; j > 0 && sp[j].a < sp[j - 1].a; j--) {
			struct span t = sp[j];

			sp[j] = sp[j - 1];
			sp[j - 1] = t;
		}
	return k;
}

/* One argument with its spans replaced, raw bytes into out; tags noted. */
static size_t redact_one(const struct redactor *r, const char *s, size_t n, bool whole,
			 struct strbuf *out, struct strbuf *tags)
{
	struct span sp[SPANS_MAX];
	int k = find_spans(r, s, n, whole, sp);
	size_t at = 0;

	for (int i = 0; i < k; i++) {
		char tag[REDACT_TAG_LEN];

		redact_tag(r, s + sp[i].a, sp[i].b - sp[i].a, tag);
		sb_add(out, s + at, sp[i].a - at);
		sb_addstr(out, tag);
		at = sp[i].b;
		if (tags && !strstr(sb_str(tags), tag)) {
			if (tags->len)
				sb_addch(tags, ',');
			json_cstr(tags, tag);
		}
	}
	sb_add(out, s + at, n - at);
	return (size_t)k;
}

/* Does the previous argument make this one a secret? Returns 1 (whole), 2 (after ':'), 0. */
static int by_position(const char *prev, size_t plen, const char *s, size_t n)
{
	if (!prev || (n && s[0] == '-'))
		return 0;
	if (secret_flag(prev, plen))
		return 1;
	if (userpass_flag(prev, plen) && memchr(s, ':', n))
		return 2;
	return 0;
}

static size_t redact_arg(const struct redactor *r, const char *prev, size_t plen, const char *s,
			 size_t n, struct strbuf *out, struct strbuf *tags)
{
	int pos = by_position(prev, plen, s, n);

	if (pos == 2) {
		size_t c = (size_t)((const char *)memchr(s, ':', n) - s);

		sb_add(out, s, c + 1);
		return redact_one(r, s + c + 1, n - c - 1, true, out, tags);
	}
	return redact_one(r, s, n, pos == 1, out, tags);
}

size_t redact_text(const struct redactor *r, const char *s, size_t n, bool whole,
		   struct strbuf *out)
{
	return redact_one(r, s, n, whole, out, NULL);
}

size_t redact_argv_json(const struct redactor *r, const char *data, size_t len, struct strbuf *json,
			struct strbuf *tags)
{
	struct strbuf one = STRBUF_INIT;
	const char *prev = NULL;
	size_t plen = 0, i = 0, total = 0;
	int nargs = 0;

	sb_addch(json, '[');
	while (i < len) {
		size_t l = strnlen(data + i, len - i);

		if (nargs)
			sb_addch(json, ',');
		if (nargs++ < ARGS_MAX) {
			sb_reset(&one);
			total += redact_arg(r, prev, plen, data + i, l, &one, tags);
			json_str(json, one.buf ? one.buf : "", one.len);
		} else {
			json_str(json, data + i, l);
		}
		prev = data + i;
		plen = l;
		i += l + 1;
	}
	sb_addch(json, ']');
	sb_release(&one);
	return total;
}

size_t redact_argv_strings(const struct redactor *r, char *const *argv, char **out)
{
	struct strbuf one = STRBUF_INIT;
	size_t total = 0;

	for (int i = 0; argv && argv[i]; i++) {
		sb_reset(&one);
		total += redact_arg(r, i ? argv[i - 1] : NULL, i ? strlen(argv[i - 1]) : 0, argv[i],
				    strlen(argv[i]), &one, NULL);
		out[i] = xstrdup(sb_str(&one));
	}
	sb_release(&one);
	return total;
}
