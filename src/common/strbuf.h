/* Growable byte buffer (after git's strbuf): the one way this code builds strings. */
#ifndef RW_STRBUF_H
#define RW_STRBUF_H
#include <stdarg.h>
#include <stddef.h>

struct strbuf {
	char *buf; /* always NUL-terminated once anything is added; NULL when empty */
	size_t len;
	size_t alloc;
};
#define STRBUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

void sb_grow(struct strbuf *sb, size_t extra);
void sb_add(struct strbuf *sb, const void *data, size_t len);
void sb_addstr(struct strbuf *sb, const char *s);
void sb_addch(struct strbuf *sb, char c);
void sb_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/* Decimal text of v. printf-free: the collector calls these several times per event. */
void sb_addu(struct strbuf *sb, unsigned long long v);
void sb_addi(struct strbuf *sb, long long v);
void sb_reset(struct strbuf *sb);
void sb_release(struct strbuf *sb);
/* Returns buf ("" when empty) */
const char *sb_str(const struct strbuf *sb);
/* Hands the buffer to the caller (never NULL); sb is left empty. */
char *sb_detach(struct strbuf *sb);

#endif
