/*
 * Writing JSON strings from bytes a process chose (argv, paths, comm).
 *
 * Valid UTF-8 passes through; control characters, quotes and backslashes use
 * JSON escapes; each byte that is not part of valid UTF-8 becomes \udcXX (a
 * lone low surrogate, the PEP 383 "surrogateescape" convention), so the
 * original bytes can be recovered exactly and nothing can break a line.
 * Python: s.encode("utf-8", "surrogateescape").
 */
#ifndef RW_JSONW_H
#define RW_JSONW_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/strbuf.h"

/* Decodes one UTF-8 sequence at p: its length (1..4) with the code point in
 * *out, or 0 if the bytes are not valid UTF-8 (overlong, surrogate, cut). */
size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *out);

/* Appends "..." (with the quotes). */
void json_str(struct strbuf *sb, const void *bytes, size_t len);
void json_cstr(struct strbuf *sb, const char *s); /* NULL -> null */
/* Appends ,"key":"value" pieces; key is trusted ASCII. */
void json_kv_str(struct strbuf *sb, const char *key, const char *s);
void json_kv_int(struct strbuf *sb, const char *key, long long v);

/*
 * Parses one line this program wrote. jansson refuses lone surrogates, so
 * \udcXX escapes are read as U+FFFD first: fine for display and grouping,
 * never for evidence (evidence is hashed as raw bytes, not re-parsed).
 */
json_t *json_load_line(const char *line, size_t len, json_error_t *err);

#endif
