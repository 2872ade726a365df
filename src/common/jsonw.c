/* JSON string escaping that is lossless for arbitrary bytes (see jsonw.h). */
#include "common/jsonw.h"

#include <stdint.h>
#include <string.h>

size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *out)
{
	unsigned char c = p[0];
	uint32_t cp;
	size_t len;

	if (c < 0x80) {
		*out = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	*out = cp;
	return len;
}

void json_str(struct strbuf *sb, const void *bytes, size_t len)
{
	const unsigned char *p = bytes;
	size_t i = 0;

	sb_grow(sb, len + 2);
	sb_addch(sb, '"');
	while (i < len) {
		unsigned char c = p[i];
		size_t n, run = i;

		/* Printable ASCII needs no escaping: copied in runs, the common case. */
		while (run < len && p[run] >= 0x20 && p[run] < 0x7f && p[run] != '"' &&
		       p[run] != '\\')
			run++;
		if (run > i) {
			sb_add(sb, p + i, run - i);
			i = run;
			continue;
		}
		switch (c) {
		case '"':
			sb_add(sb, "\\\"", 2);
			i++;
			continue;
		case '\\':
			sb_add(sb, "\\\\", 2);
			i++;
			continue;
		case '\n':
			sb_add(sb, "\\n", 2);
			i++;
			continue;
		case '\r':
			sb_add(sb, "\\r", 2);
			i++;
			continue;
		case '\t':
			sb_add(sb, "\\t", 2);
			i++;
			continue;
		default:
			break;
		}
		if (c < 0x20 || c == 0x7f) {
			sb_addf(sb, "\\u%04x", c);
			i++;
			continue;
		}
		uint32_t cp;

		n = utf8_decode(p + i, len - i, &cp);
		if (n == 0) {
			sb_addf(sb, "\\udc%02x", c);
			i++;
			continue;
		}
		/* U+2028/2029 are valid JSON but break JavaScript line handling. */
		if (n == 3 && c == 0xe2 && p[i + 1] == 0x80 &&
		    (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
			sb_addf(sb, "\\u%04x", p[i + 2] == 0xa8 ? 0x2028 : 0x2029);
			i += 3;
			continue;
		}
		sb_add(sb, p + i, n);
		i += n;
	}
	sb_addch(sb, '"');
}

void json_cstr(struct strbuf *sb, const char *s)
{
	if (!s)
		sb_add(sb, "null", 4);
	else
		json_str(sb, s, strlen(s));
}

void json_kv_str(struct strbuf *sb, const char *key, const char *s)
{
	sb_addf(sb, ",\"%s\":", key);
	json_cstr(sb, s);
}

void json_kv_int(struct strbuf *sb, const char *key, long long v)
{
	sb_addf(sb, ",\"%s\":%lld", key, v);
}

json_t *json_load_line(const char *line, size_t len, json_error_t *err)
{
	struct strbuf sb = STRBUF_INIT;
	json_t *j;
	size_t i = 0;

	sb_grow(&sb, len);
	while (i < len) {
		if (line[i] == '\\' && i + 1 < len) {
			if (line[i + 1] == 'u' && i + 6 <= len && (line[i + 2] | 0x20) == 'd' &&
			    ((line[i + 3] | 0x20) == 'c' || (line[i + 3] | 0x20) == 'd' ||
			     (line[i + 3] | 0x20) == 'e' || (line[i + 3] | 0x20) == 'f')) {
				/* Only lone low surrogates are written by json_str; a
				 * high surrogate followed by a low one is left alone. */
				sb_add(&sb, "\\ufffd", 6);
				i += 6;
				continue;
			}
			sb_add(&sb, line + i, 2);
			i += 2;
			continue;
		}
		sb_addch(&sb, line[i]);
		i++;
	}
	j = json_loadb(sb_str(&sb), sb.len, JSON_REJECT_DUPLICATES, err);
	sb_release(&sb);
	return j;
}
