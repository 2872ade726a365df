/*
 * DNS gate, pin table (see pins.h): a chained hash for lookups plus a min-heap by expiry.
 * Expiry is called once a second by the agent but also for every answer while the table is
 * full (to make room), so it must not scan: a full table of 65,536 pins scanned per question
 * kept the agent at 100% CPU under a steady stream of new names (bench/rss.py). A refresh
 * only moves an expiry later, so the heap keeps each pin at the key it had when placed (a
 * lower bound) and puts it back in order when it reaches the top.
 */
#include "gate/pins.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct pin {
	struct pin *hnext; /* bucket chain */
	size_t hidx;	   /* position in the heap */
	uint64_t key_ms;   /* the heap's key: expires_ms when last placed, never later */
	uint64_t expires_ms;
	int family;
	uint8_t addr[16];
	char qname[];
};

struct gate_pins {
	size_t max, count, nbuckets; /* nbuckets: a power of two */
	struct pin **buckets;
	struct pin **heap; /* count entries, min key_ms first; room for max */
};

static size_t addr_len(int family)
{
	return family == AF_INET6 ? 16 : 4;
}

static size_t hash(const struct gate_pins *t, const char *qname, int family, const void *addr)
{
	uint64_t h = 14695981039346656037ull; /* FNV-1a */
	const uint8_t *a = addr;

	for (const char *s = qname; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	h = (h ^ (uint8_t)family) * 1099511628211ull;
	for (size_t i = 0; i < addr_len(family); i++)
		h = (h ^ a[i]) * 1099511628211ull;
	return (size_t)h & (t->nbuckets - 1);
}

static struct pin **find(const struct gate_pins *t, const char *qname, int family, const void *addr)
{
	struct pin **pp = &t->buckets[hash(t, qname, family, addr)];

	for (; *pp; pp = &(*pp)->hnext)
		if ((*pp)->family == family && !memcmp((*pp)->addr, addr, addr_len(family)) &&
		    !strcmp((*pp)->qname, qname))
			return pp;
	return pp;
}

struct gate_pins *gate_pins_new(size_t max)
{
	struct gate_pins *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->max = max ? max : 1;
	t->nbuckets = 16;
	while (t->nbuckets < t->max && t->nbuckets < ((size_t)1 << 24))
		t->nbuckets <<= 1;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	t->heap = calloc(t->max, sizeof(*t->heap));
	if (!t->buckets || !t->heap) {
		free(t->buckets);
		free(t->heap);
		free(t);
		return NULL;
	}
	return t;
}

static void heap_set(struct gate_pins *t, size_t i, struct pin *p)
{
	t->heap[i] = p;
	p->hidx = i;
}

static void sift_up(struct gate_pins *t, size_t i)
{
	struct pin *p = t->heap[i];

	while (i > 0 && t->heap[(i - 1) / 2]->key_ms > p->key_ms) {
		heap_set(t, i, t->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_set(t, i, p);
}

static void sift_down(struct gate_pins *t, size_t i)
{
	struct pin *p = t->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= t->count)
			break;
		if (c + 1 < t->count && t->heap[c + 1]->key_ms < t->heap[c]->key_ms)
			c++;
		if (t->heap[c]->key_ms >= p->key_ms)
			break;
		heap_set(t, i, t->heap[c]);
		i = c;
	}
	heap_set(t, i, p);
}

/* The pin that expires first, its key made exact (refreshes leave keys early), or NULL. */
static struct pin *heap_top(struct gate_pins *t)
{
	while (t->count && t->heap[0]->key_ms < t->heap[0]->expires_ms) {
		t->heap[0]->key_ms = t->heap[0]->expires_ms;
		sift_down(t, 0);
	}
	return t->count ? t->heap[0] : NULL;
}

/* Removes the top of the heap from the table and frees it. */
static void pop_top(struct gate_pins *t)
{
	struct pin *p = t->heap[0], **slot = find(t, p->qname, p->family, p->addr);

	*slot = p->hnext;
	if (--t->count) {
		heap_set(t, 0, t->heap[t->count]);
		sift_down(t, 0);
	}
	free(p);
}

void gate_pins_free(struct gate_pins *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->count; i++)
		free(t->heap[i]);
	free(t->heap);
	free(t->buckets);
	free(t);
}

bool gate_pins_room(const struct gate_pins *t, const char *qname, int family, const void *addr)
{
	return *find(t, qname, family, addr) || t->count < t->max;
}

bool gate_pins_refresh(struct gate_pins *t, const char *qname, int family, const void *addr,
		       uint64_t expires_ms)
{
	struct pin *p = *find(t, qname, family, addr);

	if (!p)
		return false;
	if (p->expires_ms < expires_ms)
		p->expires_ms = expires_ms;
	return true;
}

int gate_pins_put(struct gate_pins *t, const char *qname, int family, const void *addr,
		  uint64_t expires_ms)
{
	struct pin **slot = find(t, qname, family, addr), *p;
	size_t n;

	if (*slot) {
		if ((*slot)->expires_ms < expires_ms)
			(*slot)->expires_ms = expires_ms;
		return 0;
	}
	if (t->count >= t->max)
		return -1;
	n = strlen(qname) + 1;
	p = malloc(sizeof(*p) + n);
	if (!p)
		return -1;
	memset(p, 0, sizeof(*p));
	memcpy(p->qname, qname, n);
	memcpy(p->addr, addr, addr_len(family));
	p->family = family;
	p->expires_ms = p->key_ms = expires_ms;
	*slot = p;
	heap_set(t, t->count++, p);
	sift_up(t, p->hidx);
	return 1;
}

size_t gate_pins_expire(struct gate_pins *t, uint64_t now_ms, gate_unpin_fn fn, void *arg,
			uint64_t *next)
{
	struct pin *p;
	size_t n = 0;

	while ((p = heap_top(t)) && p->expires_ms <= now_ms) {
		if (fn)
			fn(arg, p->qname, p->family, p->addr);
		pop_top(t);
		n++;
	}
	if (next)
		*next = p ? p->expires_ms : 0;
	return n;
}

size_t gate_pins_count(const struct gate_pins *t)
{
	return t->count;
}
