/*
 * The one allocation family. Running out of memory mid-event has no sane recovery (a half-built
 * record is worse than none), so these never return NULL: they say so on stderr, in one line
 * naming the size asked for, and abort. Code that can degrade instead (the DNS gate answering
 * SERVFAIL, a parser reporting "out of memory" for its input) calls malloc itself.
 */
#ifndef RW_XALLOC_H
#define RW_XALLOC_H
#include <stddef.h>

void *xmalloc(size_t n) __attribute__((malloc, returns_nonnull));
/* Zeroed; n * size is checked for overflow. */
void *xcalloc(size_t n, size_t size) __attribute__((malloc, returns_nonnull));
/* realloc that never fails; n == 0 keeps a valid (1-byte) block rather than freeing p. */
void *xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
/* realloc of an array of n elements of size, checked for overflow. */
void *xreallocarray(void *p, size_t n, size_t size) __attribute__((returns_nonnull));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
/* At most n bytes of s, always NUL-terminated. */
char *xstrndup(const char *s, size_t n) __attribute__((malloc, returns_nonnull));

/* Prints "runwarden: out of memory (N bytes)" and aborts. */
void xalloc_die(size_t n) __attribute__((noreturn));

#endif
