/* String-keyed hash map (chained, grows): the one table type the agent uses. */
#ifndef RW_STRMAP_H
#define RW_STRMAP_H
#include <stdbool.h>
#include <stddef.h>

struct strmap_entry {
	char *key;
	void *val;
	struct strmap_entry *next;
	struct strmap_entry *order_next; /* insertion order, for stable output */
	struct strmap_entry *order_prev;
};

struct strmap {
	struct strmap_entry **b;
	size_t nb;
	size_t count;
	struct strmap_entry *first, *last;
};

void strmap_init(struct strmap *m);
/* Returns the entry for key, or NULL. */
struct strmap_entry *strmap_get(const struct strmap *m, const char *key);
/* Returns the entry for key, adding it (val NULL) when absent; *created tells. */
struct strmap_entry *strmap_put(struct strmap *m, const char *key, bool *created);
/* Removes key; returns its value (for the caller to free) or NULL. */
void *strmap_del(struct strmap *m, const char *key);
/* Moves e to the end of the insertion order, so that m->first is the least recently touched
 * entry: a bounded table that evicts m->first is then an LRU. */
void strmap_touch(struct strmap *m, struct strmap_entry *e);
/* Frees the table; free_val (may be NULL) is called on every value. */
void strmap_clear(struct strmap *m, void (*free_val)(void *));

/* The bucket hash: SipHash-2-4 under a random per-process key (keys are often the job's). */
size_t strmap_hash(const char *key);
/* Entries in the fullest bucket: what a lookup costs at worst (for tests and diagnostics). */
size_t strmap_longest_chain(const struct strmap *m);

#define strmap_for_each(e, m) for (struct strmap_entry *e = (m)->first; e; e = e->order_next)

#endif
