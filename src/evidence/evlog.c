/* Writer of the hash-chained event log; format in evlog.h and docs/events.md. */
#include "evidence/evlog.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

#include "common/strbuf.h"
#include "evidence/codec.h"
#include "evidence/outdir.h"

/* The per-line hash, with one digest context kept for the whole log (the
 * collector's hot path: no allocation per line). */
static void hash_line(struct evlog *l, const void *data, size_t len)
{
	if (!l->md || !EVP_DigestInit_ex(l->md, l->md_sha256, NULL) ||
	    !EVP_DigestUpdate(l->md, data, len)) {
		sha256_hex(data, len, l->prev);
		return;
	}
	sha256_final_hex(l->md, l->prev);
}

int evlog_open_fd(struct evlog *l, int fd)
{
	memset(l, 0, sizeof(*l));
	l->fd = fd;
	l->md_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	l->md = EVP_MD_CTX_new();
	l->all = EVP_MD_CTX_new();
	if (fd < 0 || !l->md_sha256 || !l->md || !l->all ||
	    !EVP_DigestInit_ex(l->all, l->md_sha256, NULL)) {
		EVP_MD_CTX_free(l->md);
		EVP_MD_CTX_free(l->all);
		EVP_MD_free(l->md_sha256);
		l->md = l->all = NULL;
		l->md_sha256 = NULL;
		l->fd = -1;
		if (!errno)
			errno = ENOMEM;
		return -1;
	}
	l->seq = 1;
	memset(l->prev, '0', 64);
	l->prev[64] = 0;
	return 0;
}

int evlog_flush(struct evlog *l)
{
	if (!l->pending.len)
		return l->failed ? -1 : 0;
	/* The file's digest takes the lines a buffer at a time: one call per 64 KiB, not per line.
	 */
	if (l->all)
		EVP_DigestUpdate(l->all, l->pending.buf, l->pending.len);
	/* Once a write failed the file is short: later lines would not chain
	 * from what it holds, so nothing more is written. */
	if (!l->failed && l->fd >= 0 && write_full(l->fd, l->pending.buf, l->pending.len)) {
		l->failed = true;
		l->err = errno;
	}
	sb_reset(&l->pending);
	return l->failed ? -1 : 0;
}

/* Chains one line (built at the end of pending) and hands it on; keep: the closing record,
 * whose bytes stay readable after the flush. */
static int64_t append_line(struct evlog *l, const char *body, size_t len, bool keep)
{
	struct strbuf *p = &l->pending;
	int64_t seq = l->seq;
	size_t start = p->len, n;
	const char *line;

	if (l->fd < 0 || l->failed)
		return -1;
	sb_grow(p, len + 100);
	sb_add(p, "{\"seq\":", 7);
	sb_addu(p, l->seq);
	sb_add(p, ",\"prev\":\"", 9);
	sb_add(p, l->prev, 64);
	sb_addch(p, '"');
	sb_add(p, body, len);
	sb_add(p, "}\n", 2);
	line = p->buf + start;
	n = p->len - start;
	hash_line(l, line, n);
	l->bytes += n;
	l->seq++;
	if (l->on_line)
		l->on_line(l->on_line_ctx, line, n);
	if (keep)
		sb_add(&l->close_line, line, n - 1);
	if (p->len >= EVLOG_FLUSH_AT && evlog_flush(l))
		return -1;
	return seq;
}

int64_t evlog_append(struct evlog *l, const char *body, size_t len)
{
	return append_line(l, body, len, false);
}

static void free_state(struct evlog *l)
{
	sb_release(&l->pending);
	EVP_MD_CTX_free(l->md);
	EVP_MD_CTX_free(l->all);
	EVP_MD_free(l->md_sha256);
	l->md = l->all = NULL;
	l->md_sha256 = NULL;
}

int evlog_close(struct evlog *l, const char *extra)
{
	struct strbuf sb = STRBUF_INIT;
	int rc;

	memcpy(l->root, l->prev, sizeof(l->root));
	sb_addf(&sb, ",\"kind\":\"close\",\"count\":%llu,\"root\":\"%s\"",
		(unsigned long long)(l->seq - 1), l->prev);
	if (extra)
		sb_addstr(&sb, extra);
	sb_reset(&l->close_line);
	rc = append_line(l, sb.buf, sb.len, true) < 0 ? -1 : 0;
	sb_release(&sb);
	if (rc == 0)
		memcpy(l->head, l->prev, sizeof(l->head));
	if (evlog_flush(l) || (l->fd >= 0 && fsync(l->fd) && !l->failed)) {
		if (!l->failed) {
			l->failed = true;
			l->err = errno;
		}
		rc = -1;
	}
	if (l->fd >= 0 && close(l->fd) && rc == 0) {
		l->failed = true;
		l->err = errno;
		rc = -1;
	}
	l->fd = -1;
	sha256_final_hex(l->all, l->sha256);
	l->lines = l->seq - 1;
	l->closed = rc == 0;
	free_state(l);
	if (rc)
		errno = l->err ? l->err : EIO;
	return rc;
}

void evlog_abandon(struct evlog *l)
{
	if (l->fd >= 0) {
		evlog_flush(l);
		close(l->fd);
		l->fd = -1;
	}
	free_state(l);
	sb_release(&l->close_line);
}

void evlog_release(struct evlog *l)
{
	evlog_abandon(l);
}
