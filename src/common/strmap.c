/* String-keyed chained hash map, iterated in insertion order (see strmap.h). */
#include "common/strmap.h"
#include "common/xalloc.h"
#include "common/util.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/*
 * Keys are often chosen by the job (DNS names, addresses, paths), so the bucket must not be
 * predictable: SipHash-2-4 (OpenSSL's EVP_MAC) under a key drawn from the kernel once per
 * process. An unkeyed hash (FNV) lets a job pick names that all land in one chain and make
 * every lookup linear. Cost: about 40 ns for a 40-byte key against FNV's 16 (docs/design.md).
 */
static uint8_t sip_key[16];
static pthread_once_t sip_once = PTHREAD_ONCE_INIT;
static __thread EVP_MAC_CTX *sip_ctx;

static void die_hash(const char *why)
{
	rw_err("hash: %s", why);
	abort();
}

static void sip_key_init(void)
{
	if (getrandom(sip_key, sizeof(sip_key), 0) != (ssize_t)sizeof(sip_key))
		die_hash("no random key from the kernel");
}

/* One keyed context per thread, reset (not re-keyed) for every hash. */
static EVP_MAC_CTX *sip(void)
{
	size_t size = 8;
	OSSL_PARAM params[] = {OSSL_PARAM_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_END};
	EVP_MAC *mac;

	if (sip_ctx)
		return sip_ctx;
	pthread_once(&sip_once, sip_key_init);
	mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	sip_ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	EVP_MAC_free(mac);
	if (!sip_ctx || !EVP_MAC_init(sip_ctx, sip_key, sizeof(sip_key), params))
		die_hash("OpenSSL has no SipHash");
	return sip_ctx;
}

static size_t hash(const char *s)
{
	EVP_MAC_CTX *c = sip();
	uint8_t out[8];
	size_t n = 0;
	uint64_t h;

	if (!EVP_MAC_init(c, NULL, 0, NULL) || !EVP_MAC_update(c, (const uint8_t *)s, strlen(s)) ||
	    !EVP_MAC_final(c, out, &n, sizeof(out)) || n != sizeof(out))
		die_hash("SipHash failed");
	memcpy(&h, out, sizeof(h));
	return (size_t)h;
}

size_t strmap_hash(const char *key)
{
	return hash(key);
}

size_t strmap_longest_chain(const struct strmap *m)
{
	size_t best = 0;

	for (size_t i = 0; i < m->nb; i++) {
		size_t n = 0;

		for (const struct strmap_entry *e = m->b[i]; e; e = e->next)
			n++;
		if (n > best)
			best = n;
	}
	return best;
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
	e->key = xstrdup(key);
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

void strmap_touch(struct strmap *m, struct strmap_entry *e)
{
	if (m->last == e)
		return;
	if (e->order_prev)
		e->order_prev->order_next = e->order_next;
	else
		m->first = e->order_next;
	e->order_next->order_prev = e->order_prev; /* e is not last: it has a next */
	e->order_prev = m->last;
	e->order_next = NULL;
	m->last->order_next = e;
	m->last = e;
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
