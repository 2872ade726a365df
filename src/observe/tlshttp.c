/* Heads of HTTP inside TLS (see tlshttp.h): the request parsed by the kernel's own parser
 * (bpf/firstbytes.h, compiled here), status and Content-Length read here. */
#include "observe/tlshttp.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "firstbytes.h"

/* Content-Length's value in a head of n bytes; -1 when absent, repeated or not a number. */
static int64_t content_length(const uint8_t *d, size_t n)
{
	static const char name[] = "\ncontent-length:";
	const size_t nl = sizeof(name) - 1;
	int64_t v = -1;

	for (size_t i = 0; i + nl <= n; i++) {
		int64_t x = 0;
		size_t j;

		if (d[i] != '\n' || strncasecmp((const char *)d + i, name, nl))
			continue;
		if (v >= 0)
			return -1; /* two of them: which one counts is the server's guess */
		for (j = i + nl; j < n && (d[j] == ' ' || d[j] == '\t'); j++)
			;
		if (j >= n || d[j] < '0' || d[j] > '9')
			return -1;
		for (; j < n && d[j] >= '0' && d[j] <= '9'; j++) {
			if (x > (INT64_MAX - 9) / 10)
				return -1;
			x = x * 10 + (d[j] - '0');
		}
		v = x;
	}
	return v;
}

/* An "Upgrade:" header naming websocket (RFC 6455 section 4.1), in a head of n bytes. */
static bool upgrade_websocket(const uint8_t *d, size_t n)
{
	static const char name[] = "\nupgrade:";
	const size_t nl = sizeof(name) - 1;

	for (size_t i = 0; i + nl <= n; i++) {
		size_t j = i + nl, end;

		if (d[i] != '\n' || strncasecmp((const char *)d + i, name, nl))
			continue;
		for (end = j; end < n && d[end] != '\r' && d[end] != '\n'; end++)
			;
		for (; j + 9 <= end; j++)
			if (!strncasecmp((const char *)d + j, "websocket", 9))
				return true;
	}
	return false;
}

static bool parse_request(const struct ev_tls_data *e, size_t n, struct tls_head *h)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n";
	struct fb *f;

	if (n >= sizeof(preface) - 1 && !memcmp(e->data, preface, sizeof(preface) - 1)) {
		h->request = h->h2 = true;
		return true;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return false;
	memcpy(f->buf, e->data, n < FB_CAP ? n : FB_CAP);
	f->len = (uint32_t)(n < FB_CAP ? n : FB_CAP);
	fb_parse(f);
	if (f->ev.app != FB_HTTP || !f->ev.method_len) {
		free(f);
		return false;
	}
	h->request = true;
	memcpy(h->method, f->ev.method, f->ev.method_len);
	memcpy(h->path, f->ev.path, f->ev.path_len);
	h->path_cut = f->ev.flags & FBF_PATH_CUT;
	if (f->ev.flags & (FBF_NAMED | FBF_LITERAL))
		memcpy(h->authority, f->ev.name, f->ev.name_len < FB_NAME ? f->ev.name_len : 0);
	h->length = content_length(e->data, n);
	h->websocket = upgrade_websocket(e->data, n);
	free(f);
	return true;
}

bool tls_head_parse(const struct ev_tls_data *e, struct tls_head *h)
{
	size_t n = e->data_len < TLS_HEAD ? e->data_len : TLS_HEAD;

	memset(h, 0, sizeof(*h));
	h->length = -1;
	if (e->dir == TLSD_WRITE)
		return parse_request(e, n, h);
	/* "HTTP/1.x NNN" */
	if (n < 12 || memcmp(e->data, "HTTP/1.", 7) || e->data[8] != ' ')
		return false;
	for (int i = 9; i < 12; i++) {
		if (e->data[i] < '0' || e->data[i] > '9')
			return false;
		h->status = h->status * 10 + (e->data[i] - '0');
	}
	if (h->status < 100)
		return false;
	h->length = content_length(e->data, n);
	return true;
}
