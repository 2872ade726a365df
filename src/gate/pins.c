/*
 * DNS gate, pin table (see pins.h): a chained hash for lookups plus one list of all entries
 * for expiry. Expiry scans the list; the agent calls it about once a second and the table is
 * bounded, so a linear scan costs less than keeping a heap in step with refreshes.
 */
#include "gate/pins.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct pin {
	struct pin *hnext;	 /* bucket chain */
	struct pin *prev, *next; /* all entries */
	uint64_t expires_ms;
	int family;
	uint8_t addr[16];
	char qname[];
};

struct gate_pins {
	size_t max, count, nbuckets; /* nbuckets: a power of two */
	struct pin **buckets;
	struct pin *head;
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
	if (!t->buckets) {
		free(t);
		return NULL;
	}
	return t;
}

static void unlink_pin(struct gate_pins *t, struct pin **slot)
{
	struct pin *p = *slot;

	*slot = p->hnext;
	if (p->prev)
		p->prev->next = p->next;
	else
		t->head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	t->count--;
	free(p);
}

void gate_pins_free(struct gate_pins *t)
{
	if (!t)
		return;
	for (struct pin *p = t->head, *n; p; p = n) {
		n = p->next;
		free(p);
	}
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
	p->expires_ms = expires_ms;
	*slot = p;
	p->next = t->head;
	if (t->head)
		t->head->prev = p;
	t->head = p;
	t->count++;
	return 1;
}

size_t gate_pins_expire(struct gate_pins *t, uint64_t now_ms, gate_unpin_fn fn, void *arg,
			uint64_t *next)
{
	uint64_t earliest = 0;
	size_t n = 0;

	for (struct pin *p = t->head, *nx; p; p = nx) {
		nx = p->next;
		if (p->expires_ms > now_ms) {
			if (!earliest || p->expires_ms < earliest)
				earliest = p->expires_ms;
			continue;
		}
		if (fn)
			fn(arg, p->qname, p->family, p->addr);
		unlink_pin(t, find(t, p->qname, p->family, p->addr));
		n++;
	}
	if (next)
		*next = earliest;
	return n;
}

size_t gate_pins_count(const struct gate_pins *t)
{
	return t->count;
}
