/* Chain verification for events.ndjson: every check names the line it failed on. */
#include "evidence/chain.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/jsonw.h"

void chain_init(struct chain *c, chain_line_fn fn, void *ctx)
{
	memset(c, 0, sizeof(*c));
	memset(c->prev, '0', 64);
	c->md = EVP_MD_CTX_new();
	if (!c->md || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
		c->failed = true;
		c->code = "internal";
		ev_errf(c->err, "cannot set up SHA-256");
	}
	c->fn = fn;
	c->ctx = ctx;
}

static int fail(struct chain *c, uint64_t line, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct chain *c, uint64_t line, const char *code, const char *fmt, ...)
{
	char why[EV_ERRLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	c->failed = true;
	c->where = line;
	c->code = code;
	if (line)
		ev_errf(c->err, "line %llu: %s", (unsigned long long)line, why);
	else
		ev_errf(c->err, "%s", why);
	return -1;
}

/* One complete line, newline included. */
static int check_line(struct chain *c, const char *raw, size_t len)
{
	uint64_t n = c->lines + 1;
	json_error_t jerr;
	json_t *o, *seq, *prev, *kind;
	int rc = -1;

	if (c->closed)
		return fail(c, n, "after-close", "data after the closing record (line %llu)",
			    (unsigned long long)c->lines);
	o = json_load_line(raw, len - 1, &jerr);
	if (!o)
		return fail(c, n, "not-json", "not JSON (column %d: %s)", jerr.column, jerr.text);
	if (!json_is_object(o)) {
		fail(c, n, "not-json", "not a JSON object");
		goto out;
	}
	seq = json_object_get(o, "seq");
	prev = json_object_get(o, "prev");
	if (!json_is_integer(seq)) {
		fail(c, n, "seq", "no integer seq");
		goto out;
	}
	if (json_integer_value(seq) != (json_int_t)n) {
		fail(c, n, "seq",
		     "seq is %lld, expected %llu (lines removed, inserted or reordered)",
		     (long long)json_integer_value(seq), (unsigned long long)n);
		goto out;
	}
	if (!json_is_string(prev) || strcmp(json_string_value(prev), c->prev)) {
		if (n == 1)
			fail(c, n, "prev", "prev is not 64 zeros: not the start of a log");
		else
			fail(c, n, "prev",
			     "prev is not the SHA-256 of line %llu (that line was altered, or "
			     "lines were removed or reordered)",
			     (unsigned long long)(n - 1));
		goto out;
	}
	kind = json_object_get(o, "kind");
	if (json_is_string(kind) && !strcmp(json_string_value(kind), "close")) {
		json_t *count = json_object_get(o, "count"), *root = json_object_get(o, "root");

		if (!json_is_integer(count) || json_integer_value(count) != (json_int_t)(n - 1)) {
			fail(c, n, "close-count",
			     "closing record's count is not %llu, the number of lines before it",
			     (unsigned long long)(n - 1));
			goto out;
		}
		if (!json_is_string(root) || strcmp(json_string_value(root), c->prev)) {
			fail(c, n, "close-root",
			     "closing record's root is not the SHA-256 of line %llu",
			     (unsigned long long)(n - 1));
			goto out;
		}
		c->closed = true;
		c->count = n - 1;
		memcpy(c->root, c->prev, sizeof(c->root));
		c->close = json_incref(o);
	} else if (c->fn) {
		c->fn(c->ctx, n, o, raw, len);
	}
	sha256_hex(raw, len, c->prev);
	c->lines = n;
	rc = 0;
out:
	json_decref(o);
	return rc;
}

int chain_feed(struct chain *c, const void *data, size_t len)
{
	const char *p = data, *end = p + len;

	if (c->failed)
		return -1;
	EVP_DigestUpdate(c->md, data, len);
	c->bytes += len;
	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		size_t take = nl ? (size_t)(nl - p + 1) : (size_t)(end - p);

		if (c->line.len + take > CHAIN_MAX_LINE)
			return fail(c, c->lines + 1, "line-too-long", "longer than %u bytes",
				    CHAIN_MAX_LINE);
		/* Whole lines in the input need no copy. */
		if (nl && c->line.len == 0) {
			if (check_line(c, p, take))
				return -1;
		} else {
			sb_add(&c->line, p, take);
			if (nl) {
				int rc = check_line(c, c->line.buf, c->line.len);

				sb_reset(&c->line);
				if (rc)
					return -1;
			}
		}
		p += take;
	}
	return 0;
}

int chain_finish(struct chain *c)
{
	if (c->failed)
		return -1;
	sha256_final_hex(c->md, c->sha256);
	if (c->line.len)
		return fail(c, c->lines + 1, "truncated",
			    "truncated: the file ends inside this line (no newline)");
	if (c->lines == 0)
		return fail(c, 0, "empty", "the log is empty");
	if (!c->closed)
		return fail(c, c->lines, "no-close",
			    "the log ends here without a closing record: its writer died or it was "
			    "truncated");
	memcpy(c->head, c->prev, sizeof(c->head));
	return 0;
}

void chain_release(struct chain *c)
{
	EVP_MD_CTX_free(c->md);
	c->md = NULL;
	json_decref(c->close);
	c->close = NULL;
	sb_release(&c->line);
}

int chain_verify_file(struct chain *c, const char *path)
{
	static char buf[1 << 16];
	char why[EV_ERRLEN];
	int fd = ev_open_regular(path, why);

	if (fd < 0)
		return fail(c, 0, "log-io", "%s", why);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			close(fd);
			return fail(c, 0, "log-io", "%s: %s", path, strerror(errno));
		}
		if (n == 0)
			break;
		if (chain_feed(c, buf, n)) {
			close(fd);
			return -1;
		}
	}
	close(fd);
	return chain_finish(c);
}
