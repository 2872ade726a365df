/* Writer of the hash-chained event log; format in evlog.h and docs/events.md. */
#include "evidence/evlog.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

#include "common/strbuf.h"

void sha256_hex(const void *data, size_t len, char out[EVLOG_HASH_HEX])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int n = 0;

	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = 0;
}

/* The per-line hash, with one digest context kept for the whole log (the
 * collector's hot path: no allocation per line). */
static void hash_line(struct evlog *l, const void *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int n = 0;

	if (!l->md || !EVP_DigestInit_ex(l->md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(l->md, data, len) || !EVP_DigestFinal_ex(l->md, md, &n)) {
		sha256_hex(data, len, l->prev);
		return;
	}
	for (int i = 0; i < 32; i++) {
		l->prev[2 * i] = hex[md[i] >> 4];
		l->prev[2 * i + 1] = hex[md[i] & 15];
	}
	l->prev[64] = 0;
}

int evlog_open(struct evlog *l, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	memset(l, 0, sizeof(*l));
	if (fd < 0)
		return -1;
	l->f = fdopen(fd, "w");
	if (!l->f) {
		close(fd);
		return -1;
	}
	setvbuf(l->f, NULL, _IOFBF, 1 << 20);
	l->md = EVP_MD_CTX_new();
	l->seq = 1;
	memset(l->prev, '0', 64);
	l->prev[64] = 0;
	return 0;
}

int64_t evlog_append(struct evlog *l, const char *body, size_t len)
{
	struct strbuf *line = &l->line;
	int64_t seq = l->seq;

	sb_reset(line);
	sb_addf(line, "{\"seq\":%llu,\"prev\":\"%s\"", (unsigned long long)l->seq, l->prev);
	sb_add(line, body, len);
	sb_add(line, "}\n", 2);
	if (fwrite(line->buf, 1, line->len, l->f) != line->len)
		return -1;
	hash_line(l, line->buf, line->len);
	l->bytes += line->len;
	l->seq++;
	return seq;
}

int evlog_flush(struct evlog *l)
{
	return fflush(l->f);
}

int evlog_close(struct evlog *l, const char *extra)
{
	struct strbuf sb = STRBUF_INIT;
	int rc;

	sb_addf(&sb, ",\"kind\":\"close\",\"count\":%llu,\"root\":\"%s\"",
		(unsigned long long)(l->seq - 1), l->prev);
	if (extra)
		sb_addstr(&sb, extra);
	rc = evlog_append(l, sb.buf, sb.len) < 0 ? -1 : 0;
	sb_release(&sb);
	if (fflush(l->f) || fsync(fileno(l->f)))
		rc = -1;
	if (fclose(l->f))
		rc = -1;
	l->f = NULL;
	sb_release(&l->line);
	EVP_MD_CTX_free(l->md);
	l->md = NULL;
	return rc;
}

void evlog_abandon(struct evlog *l)
{
	if (l->f) {
		fflush(l->f);
		fclose(l->f);
		l->f = NULL;
	}
	sb_release(&l->line);
	EVP_MD_CTX_free(l->md);
	l->md = NULL;
}
