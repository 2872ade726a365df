/* Base64 (both DSSE alphabets, strictly canonical) and hex, on top of OpenSSL. */
#include "evidence/codec.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

void ev_errf(char *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err, EV_ERRLEN, fmt, ap);
	va_end(ap);
	/* The message ends up on one line of a verdict: no line breaks. */
	for (char *p = err; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

void b64_encode(struct strbuf *out, const void *data, size_t len)
{
	size_t need = 4 * ((len + 2) / 3);

	sb_grow(out, need);
	EVP_EncodeBlock((unsigned char *)out->buf + out->len, data, (int)len);
	out->len += need;
	out->buf[out->len] = 0;
}

static int b64_val(char c, int *url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '/') {
		if (*url == 1)
			return -2;
		*url = 0;
		return c == '+' ? 62 : 63;
	}
	if (c == '-' || c == '_') {
		if (*url == 0)
			return -2;
		*url = 1;
		return c == '-' ? 62 : 63;
	}
	return -1;
}

unsigned char *b64_decode(const char *s, size_t n, size_t *outlen, char *err)
{
	int url = -1; /* unknown until the first alphabet-specific character */
	size_t pad = 0, body, rem;
	char *std;
	unsigned char *out;
	int got;

	/* EVP_DecodeBlock takes an int; nothing we read is that large anyway. */
	if (n > (1u << 30)) {
		ev_errf(err, "base64 text too long");
		return NULL;
	}
	while (pad < n && pad < 2 && s[n - 1 - pad] == '=')
		pad++;
	body = n - pad;
	rem = body % 4;
	if (rem == 1 || (pad && (body + pad) % 4)) {
		ev_errf(err, "base64 text has an impossible length (%zu)", n);
		return NULL;
	}
	std = malloc(body + 4);
	if (!std) {
		ev_errf(err, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < body; i++) {
		int v = b64_val(s[i], &url);

		if (v == -2) {
			ev_errf(err,
				"base64 mixes the standard and URL-safe alphabets (offset %zu)", i);
			free(std);
			return NULL;
		}
		if (v < 0) {
			ev_errf(err, "invalid base64 character 0x%02x at offset %zu",
				(unsigned char)s[i], i);
			free(std);
			return NULL;
		}
		std[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[v];
		/* Canonical form: the bits the last character carries beyond the
		 * data must be zero. */
		if (i == body - 1 && ((rem == 2 && (v & 15)) || (rem == 3 && (v & 3)))) {
			ev_errf(err,
				"non-canonical base64 (unused bits set in the last character)");
			free(std);
			return NULL;
		}
	}
	size_t fill = rem ? 4 - rem : 0;
	for (size_t i = 0; i < fill; i++)
		std[body + i] = '=';
	out = malloc((body + fill) / 4 * 3 + 1);
	if (!out) {
		free(std);
		ev_errf(err, "out of memory");
		return NULL;
	}
	got = EVP_DecodeBlock(out, (unsigned char *)std, (int)(body + fill));
	free(std);
	if (got < 0) {
		free(out);
		ev_errf(err, "invalid base64");
		return NULL;
	}
	/* EVP_DecodeBlock counts the zero bytes the padding stands for. */
	*outlen = (size_t)got - fill;
	out[*outlen] = 0;
	return out;
}

int ev_open_regular(const char *path, char *err)
{
	return open_regular(AT_FDCWD, path, NULL, err, EV_ERRLEN);
}

int ev_read_file(const char *path, size_t cap, struct strbuf *out, char *err)
{
	int fd = ev_open_regular(path, err);

	if (fd < 0)
		return -1;
	for (;;) {
		ssize_t n;

		sb_grow(out, 65536);
		n = read(fd, out->buf + out->len, out->alloc - out->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			ev_errf(err, "%s: %s", path, strerror(e));
			close(fd);
			errno = e;
			return -1;
		}
		if (n == 0)
			break;
		out->len += n;
		out->buf[out->len] = 0;
		if (out->len > cap) {
			ev_errf(err, "%s: larger than %zu bytes", path, cap);
			close(fd);
			errno = EFBIG;
			return -1;
		}
	}
	close(fd);
	return 0;
}

int ev_write_file(const char *path, const void *data, size_t len, char *err)
{
	struct strbuf tmp = STRBUF_INIT;
	size_t off = 0;
	int fd;

	sb_addf(&tmp, "%s.tmp.%d", path, (int)getpid());
	/* Exclusive: a guessable name in a directory others may write to. */
	fd = open(tmp.buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		ev_errf(err, "%s: %s", tmp.buf, strerror(errno));
		sb_release(&tmp);
		return -1;
	}
	while (off < len) {
		ssize_t n = write(fd, (const char *)data + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
	}
	int bad = off < len || fsync(fd);
	int e = off < len ? (errno ? errno : EIO) : errno;

	if (close(fd) && !bad) {
		bad = 1;
		e = errno;
	}
	if (!bad && rename(tmp.buf, path)) {
		bad = 1;
		e = errno;
	}
	if (bad) {
		ev_errf(err, "%s: %s", path, strerror(e));
		unlink(tmp.buf);
		sb_release(&tmp);
		return -1;
	}
	sb_release(&tmp);
	return 0;
}
