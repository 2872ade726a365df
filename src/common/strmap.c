/* String-keyed chained hash map, iterated in insertion order (see strmap.h). */
#include "common/strmap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);

	if (!p) {
		fputs("runwarden: out of memory\n", stderr);
		abort();
	}
	return p;
}

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (size_t)h;
}

void strmap_init(struct strmap *m)
{
	memset(m, 0, sizeof(*m));
}

struct strmap_entry *strmap_get(const struct strmap *m, const char *key)
{
	if (!m->nb)
		return NULL;
	for (struct strmap_entry *e = m->b[hash(key) & (m->nb - 1)]; e; e = e->next)
		if (!strcmp(e->key, key))
			return e;
	return NULL;
}

static void grow(struct strmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	struct strmap_entry **b = xcalloc(nb, sizeof(*b));

	for (struct strmap_entry *e = m->first; e; e = e->order_next) {
		size_t i = hash(e->key) & (nb - 1);

		e->next = b[i];
		b[i] = e;
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

struct strmap_entry *strmap_put(struct strmap *m, const char *key, bool *created)
{
	struct strmap_entry *e = strmap_get(m, key);

	if (created)
		*created = !e;
	if (e)
		return e;
	if (m->count + 1 > m->nb * 3 / 4)
		grow(m);
	e = xcalloc(1, sizeof(*e));
	e->key = strdup(key);
	if (!e->key)
		abort();
	size_t i = hash(key) & (m->nb - 1);
	e->next = m->b[i];
	m->b[i] = e;
	e->order_prev = m->last;
	if (m->last)
		m->last->order_next = e;
	else
		m->first = e;
	m->last = e;
	m->count++;
	return e;
}

void *strmap_del(struct strmap *m, const char *key)
{
	struct strmap_entry **pp, *e;
	void *val;

	if (!m->nb)
		return NULL;
	for (pp = &m->b[hash(key) & (m->nb - 1)]; (e = *pp); pp = &e->next)
		if (!strcmp(e->key, key))
			break;
	if (!e)
		return NULL;
	*pp = e->next;
	if (e->order_prev)
		e->order_prev->order_next = e->order_next;
	else
		m->first = e->order_next;
	if (e->order_next)
		e->order_next->order_prev = e->order_prev;
	else
		m->last = e->order_prev;
	val = e->val;
	free(e->key);
	free(e);
	m->count--;
	return val;
}

void strmap_clear(struct strmap *m, void (*free_val)(void *))
{
	struct strmap_entry *e = m->first, *n;

	for (; e; e = n) {
		n = e->order_next;
		if (free_val)
			free_val(e->val);
		free(e->key);
		free(e);
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}
