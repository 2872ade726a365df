/*
 * Where the job's secrets come from: its environment, and the credential files it reads. The
 * files are the job's to shape (it can put a link, a FIFO, a huge file or another user's file
 * in their place), so they are read only as the file the job itself opened, never through a
 * link, regular files only, owned by the job's user, and bounded.
 */
#include "secrets/secrets.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/xalloc.h"
#include "findings/redact.h"
#include "observe/fileid.h"
#include "policy/policy.h"

/* ---- the environment ---- */

static bool policy_names(const struct secrets *s, const char *name, size_t n)
{
	if (!s->pol)
		return false;
	for (size_t i = 0; i < s->pol->nenv; i++)
		if (strlen(s->pol->env[i]) == n && !memcmp(s->pol->env[i], name, n))
			return true;
	for (size_t i = 0; i < s->pol->nrules; i++)
		if (s->pol->rules[i].kind == POLICY_SECRET_ENV &&
		    strlen(s->pol->rules[i].name) == n && !memcmp(s->pol->rules[i].name, name, n))
			return true;
	return false;
}

/* A variable whose value is a secret: the redactor's names (token, secret, password, ...),
 * *_KEY, and the policy's. */
static bool env_secret_name(const struct secrets *s, const char *name, size_t n)
{
	return redact_secret_name(name, n) || (n > 4 && !memcmp(name + n - 4, "_KEY", 4)) ||
	       policy_names(s, name, n);
}

static void env_one(struct secrets *s, const char *kv, size_t len)
{
	const char *eq = memchr(kv, '=', len);
	char name[256];
	size_t nl;

	if (!eq || eq == kv)
		return;
	nl = (size_t)(eq - kv);
	if (nl >= sizeof(name) || !env_secret_name(s, kv, nl))
		return;
	memcpy(name, kv, nl);
	name[nl] = 0;
	secrets_add(s, SECRET_ENV, name, NULL, eq + 1, len - nl - 1, NULL);
}

void secrets_from_environ(struct secrets *s, char *const *env)
{
	for (size_t i = 0; env && env[i]; i++)
		env_one(s, env[i], strlen(env[i]));
}

void secrets_from_env_block(struct secrets *s, const char *data, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t l = strnlen(data + i, len - i);

		env_one(s, data + i, l);
		i += l + 1;
	}
}

/* ---- credential files ---- */

/* The host part of "https://user@host:port/path", "//host/path", "host". */
static void url_host(const char *s, size_t n, char *out, size_t cap)
{
	const char *p = memmem(s, n, "//", 2);
	size_t a = p ? (size_t)(p - s) + 2 : 0, e = a, k = 0;

	while (e < n && s[e] != '/' && s[e] != '?' && s[e] != '#')
		e++;
	for (size_t i = a; i < e; i++)
		if (s[i] == '@')
			a = i + 1;
	for (size_t i = a; i < e && s[i] != ':' && k + 1 < cap; i++)
		out[k++] = (char)tolower((unsigned char)s[i]);
	out[k] = 0;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');

	return b ? b + 1 : path;
}

static bool path_ends(const char *path, const char *suffix)
{
	size_t pl = strlen(path), sl = strlen(suffix);

	return pl >= sl && !strcmp(path + pl - sl, suffix);
}

/* One line at a time, without its end-of-line; trimmed of blanks at both ends. */
static bool next_line(const char **p, const char *end, const char **ls, size_t *ll)
{
	const char *s = *p, *e;

	if (s >= end)
		return false;
	e = memchr(s, '\n', (size_t)(end - s));
	*p = e ? e + 1 : end;
	if (!e)
		e = end;
	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	*ls = s;
	*ll = (size_t)(e - s);
	return true;
}

/* "key = value" or "key: value" (quotes taken off): false when the line is not one. */
static bool key_value(const char *l, size_t n, char sep, char *key, size_t kcap, const char **v,
		      size_t *vl)
{
	const char *eq = memchr(l, sep, n), *e = l + n;
	size_t kl;

	if (!eq)
		return false;
	kl = (size_t)(eq - l);
	while (kl && isspace((unsigned char)l[kl - 1]))
		kl--;
	if (!kl || kl >= kcap)
		return false;
	memcpy(key, l, kl);
	key[kl] = 0;
	eq++;
	while (eq < e && isspace((unsigned char)*eq))
		eq++;
	if (e - eq >= 2 && (*eq == '"' || *eq == '\'') && e[-1] == *eq) {
		eq++;
		e--;
	}
	*v = eq;
	*vl = (size_t)(e - eq);
	return true;
}

/* .npmrc: "//registry.example/:_authToken=X", "_authToken=X" for the default registry,
 * "_password" and "_auth" (base64) likewise. A value naming a variable (${NPM_TOKEN}) is the
 * variable's, found in the environment. */
static void parse_npmrc(const char *text, size_t len, secret_token_fn fn, void *ctx)
{
	const char *p = text, *end = text + len, *l, *v;
	char key[512], host[256], registry[256] = "registry.npmjs.org";
	size_t ll, vl;

	while (next_line(&p, end, &l, &ll))
		if (key_value(l, ll, '=', key, sizeof(key), &v, &vl) && !strcmp(key, "registry"))
			url_host(v, vl, registry, sizeof(registry));
	p = text;
	while (next_line(&p, end, &l, &ll)) {
		const char *k;

		if (!ll || *l == '#' || *l == ';' ||
		    !key_value(l, ll, '=', key, sizeof(key), &v, &vl))
			continue;
		k = strrchr(key, ':');
		k = k ? k + 1 : key;
		if (strcmp(k, "_authToken") && strcmp(k, "_password") && strcmp(k, "_auth"))
			continue;
		if (vl >= 2 && v[0] == '$' && v[1] == '{')
			continue;
		if (k != key)
			url_host(key, (size_t)(k - key - 1), host, sizeof(host));
		else
			snprintf(host, sizeof(host), "%s", registry);
		fn(ctx, k, v, vl, host[0] ? host : NULL);
	}
}

/* .git-credentials: one URL a line, https://user:token@host. */
static void parse_git_credentials(const char *text, size_t len, secret_token_fn fn, void *ctx)
{
	const char *p = text, *end = text + len, *l;
	size_t ll;
	char host[256];

	while (next_line(&p, end, &l, &ll)) {
		const char *sch = memmem(l, ll, "://", 3), *at, *colon;

		if (!sch)
			continue;
		at = memrchr(l, '@', ll);
		if (!at || at < sch)
			continue;
		colon = memchr(sch + 3, ':', (size_t)(at - sch - 3));
		url_host(l, ll, host, sizeof(host));
		if (colon)
			fn(ctx, "password", colon + 1, (size_t)(at - colon - 1), host);
		else /* a token as the user name */
			fn(ctx, "user", sch + 3, (size_t)(at - sch - 3), host);
	}
}

/* .netrc: "machine HOST login USER password SECRET", in any layout. */
static void parse_netrc(const char *text, size_t len, secret_token_fn fn, void *ctx)
{
	const char *p = text, *end = text + len;
	char host[256] = "", word[16];
	bool want_host = false, want_pass = false;

	while (p < end) {
		const char *w;
		size_t wl;

		while (p < end && isspace((unsigned char)*p))
			p++;
		w = p;
		while (p < end && !isspace((unsigned char)*p))
			p++;
		wl = (size_t)(p - w);
		if (!wl)
			break;
		if (want_host) {
			snprintf(host, sizeof(host), "%.*s", (int)wl, w);
			want_host = false;
		} else if (want_pass) {
			fn(ctx, "password", w, wl, host[0] ? host : NULL);
			want_pass = false;
		} else if (wl < sizeof(word)) {
			snprintf(word, sizeof(word), "%.*s", (int)wl, w);
			want_host = !strcmp(word, "machine");
			want_pass = !strcmp(word, "password");
			if (!strcmp(word, "default"))
				host[0] = 0;
		}
	}
}

/* The password inside a base64 "user:password" (docker's auth). */
static void basic_password(const char *b64, size_t n, const char *host, secret_token_fn fn,
			   void *ctx)
{
	unsigned char *raw = xmalloc(n + 4);
	int got = n <= INT32_MAX ? EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n) : -1;
	const unsigned char *c;

	if (got > 0) {
		while (got > 0 && raw[got - 1] == 0 && n && b64[n - 1] == '=')
			got--; /* padding decodes to NULs */
		c = memchr(raw, ':', (size_t)got);
		if (c)
			fn(ctx, "password", (const char *)c + 1, (size_t)(raw + got - c - 1), host);
	}
	OPENSSL_cleanse(raw, n + 4);
	free(raw);
}

/* ~/.docker/config.json: "auths": {"https://index.docker.io/v1/": {"auth": base64(user:pw),
 * "identitytoken": ...}}. The base64 is what a client sends (Basic), the password inside too. */
static void parse_docker(const char *text, size_t len, secret_token_fn fn, void *ctx)
{
	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL), *auths, *v;
	const char *reg;
	char host[256];

	if (!root)
		return;
	auths = json_object_get(root, "auths");
	json_object_foreach(auths, reg, v)
	{
		static const char *const keys[] = {"auth", "identitytoken", "registrytoken",
						   "password"};

		url_host(reg, strlen(reg), host, sizeof(host));
		/* Docker Hub's credentials go to its auth and registry hosts (auth.docker.io,
		 * registry-1.docker.io), not to the name the key says */
		if (!strcmp(host, "index.docker.io") || !strcmp(host, "docker.io"))
			snprintf(host, sizeof(host), "%s", "**.docker.io");
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			json_t *t = json_object_get(v, keys[i]);

			if (!json_is_string(t))
				continue;
			fn(ctx, keys[i], json_string_value(t), json_string_length(t), host);
			if (!i)
				basic_password(json_string_value(t), json_string_length(t), host,
					       fn, ctx);
		}
	}
	json_decref(root);
}

/* ~/.aws/credentials: the secret key never leaves an SDK (it signs); a session token is sent
 * with every request, to AWS. */
static void parse_aws(const char *text, size_t len, secret_token_fn fn, void *ctx)
{
	const char *p = text, *end = text + len, *l, *v;
	char key[64];
	size_t ll, vl;

	while (next_line(&p, end, &l, &ll)) {
		if (!key_value(l, ll, '=', key, sizeof(key), &v, &vl))
			continue;
		if (!strcasecmp(key, "aws_secret_access_key"))
			fn(ctx, key, v, vl, NULL);
		else if (!strcasecmp(key, "aws_session_token"))
			fn(ctx, key, v, vl, "**.amazonaws.com");
	}
}

/* ~/.pypirc: password under a [section] whose repository names the index (PyPI's upload host
 * by default). */
static void parse_pypirc(const char *text, size_t len, secret_token_fn fn, void *ctx)
{
	const char *p = text, *end = text + len, *l, *v;
	char key[64];
	size_t ll, vl;

	while (next_line(&p, end, &l, &ll))
		if (key_value(l, ll, '=', key, sizeof(key), &v, &vl) && !strcmp(key, "password"))
			fn(ctx, key, v, vl, "upload.pypi.org");
}

/* gh's hosts.yml: "github.com:" then "    oauth_token: X". */
static void parse_gh_hosts(const char *text, size_t len, secret_token_fn fn, void *ctx)
{
	const char *p = text, *end = text + len, *l, *v, *raw;
	char key[64], host[256] = "github.com";
	size_t ll, vl;

	while (raw = p, next_line(&p, end, &l, &ll)) {
		if (l == raw && ll > 1 && l[ll - 1] == ':') /* a top-level key: a host */
			snprintf(host, sizeof(host), "%.*s", (int)(ll - 1), l);
		else if (key_value(l, ll, ':', key, sizeof(key), &v, &vl) &&
			 !strcmp(key, "oauth_token"))
			fn(ctx, key, v, vl, host);
	}
}

/* A dotenv file, a token file: KEY=VALUE lines whose name says secret; a bare token. */
static void parse_dotenv(const char *text, size_t len, secret_token_fn fn, void *ctx)
{
	const char *p = text, *end = text + len, *l, *v;
	char key[256];
	size_t ll, vl;

	while (next_line(&p, end, &l, &ll)) {
		if (ll > 7 && !memcmp(l, "export ", 7)) {
			l += 7;
			ll -= 7;
		}
		if (ll && *l != '#' && key_value(l, ll, '=', key, sizeof(key), &v, &vl) &&
		    redact_secret_name(key, strlen(key)))
			fn(ctx, key, v, vl, NULL);
	}
}

static void parse_whole(const char *text, size_t len, secret_token_fn fn, void *ctx)
{
	while (len && isspace((unsigned char)text[len - 1]))
		len--;
	fn(ctx, "token", text, len, NULL);
}

void secrets_parse_file(const char *path, const char *text, size_t len, secret_token_fn fn,
			void *ctx)
{
	const char *b = base_name(path);

	if (!strcmp(b, ".npmrc"))
		parse_npmrc(text, len, fn, ctx);
	else if (!strcmp(b, ".git-credentials"))
		parse_git_credentials(text, len, fn, ctx);
	else if (!strcmp(b, ".netrc"))
		parse_netrc(text, len, fn, ctx);
	else if (path_ends(path, "/.docker/config.json") || !strcmp(b, ".dockercfg"))
		parse_docker(text, len, fn, ctx);
	else if (path_ends(path, "/.aws/credentials"))
		parse_aws(text, len, fn, ctx);
	else if (!strcmp(b, ".pypirc"))
		parse_pypirc(text, len, fn, ctx);
	else if (path_ends(path, "/gh/hosts.yml"))
		parse_gh_hosts(text, len, fn, ctx);
	else if (!strcmp(b, ".env"))
		parse_dotenv(text, len, fn, ctx);
	else if (!strcmp(b, ".vault-token") ||
		 path_ends(path, "/kubernetes.io/serviceaccount/token"))
		parse_whole(text, len, fn, ctx);
}

bool secrets_file_known(const char *path)
{
	const char *b = base_name(path);

	return !strcmp(b, ".npmrc") || !strcmp(b, ".git-credentials") || !strcmp(b, ".netrc") ||
	       path_ends(path, "/.docker/config.json") || !strcmp(b, ".dockercfg") ||
	       path_ends(path, "/.aws/credentials") || !strcmp(b, ".pypirc") ||
	       path_ends(path, "/gh/hosts.yml") || !strcmp(b, ".env") ||
	       !strcmp(b, ".vault-token") || path_ends(path, "/kubernetes.io/serviceaccount/token");
}

struct file_ctx {
	struct secrets *s;
	const char *path;
	int added;
};

static void file_token(void *ctx, const char *key, const char *value, size_t len, const char *host)
{
	struct file_ctx *f = ctx;

	if (secrets_add(f->s, SECRET_FILE, f->path, key, value, len, host))
		f->added++;
}

int secrets_from_file(struct secrets *s, const char *path, uint32_t kdev, uint64_t ino, int64_t uid)
{
	int fd;
	struct file_ctx f = {.s = s, .path = path};
	struct stat st;
	char *buf = NULL;
	ssize_t got = 0;
	size_t n = 0;

	if (!secrets_file_known(path))
		return 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > SECRET_FILE_BYTES ||
	    (ino && (st.st_ino != ino || fileid_kdev(fd) != kdev)) ||
	    (uid >= 0 && st.st_uid != (uid_t)uid) || s->files_read >= SECRET_FILES_MAX)
		goto skip;
	buf = xmalloc(SECRET_FILE_BYTES + 1);
	while (n < SECRET_FILE_BYTES && (got = read(fd, buf + n, SECRET_FILE_BYTES - n)) > 0)
		n += (size_t)got;
	if (got < 0)
		goto skip;
	close(fd);
	s->files_read++;
	buf[n] = 0;
	secrets_parse_file(path, buf, n, file_token, &f);
	OPENSSL_cleanse(buf, n);
	free(buf);
	return f.added;
skip:
	if (fd >= 0)
		close(fd);
	if (buf)
		free(buf);
	s->files_skipped++;
	return -1;
}
