/* The one allocation family (see xalloc.h). */
#include "common/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xalloc_die(size_t n)
{
	/* No strbuf and no heap here: the heap is what just failed. */
	fprintf(stderr, "runwarden: out of memory (%zu bytes)\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		xalloc_die(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p;

	if (size && n > (size_t)-1 / size)
		xalloc_die((size_t)-1);
	p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		xalloc_die(n * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q)
		xalloc_die(n);
	return q;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	if (size && n > (size_t)-1 / size)
		xalloc_die((size_t)-1);
	return xrealloc(p, n * size);
}

char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

char *xstrndup(const char *s, size_t n)
{
	size_t len = strnlen(s, n);
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = 0;
	return p;
}
