/*
 * DNS gate, pin table: which (asked name, address) pairs the gate has told the kernel to
 * allow, and until when. It exists so that pins expire (TTL + grace) instead of accumulating
 * for the whole job, and it is bounded: a full table makes the gate refuse to release new
 * addresses rather than grow. Internal to src/gate/.
 */
#ifndef RW_GATE_PINS_H
#define RW_GATE_PINS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gate_pins;

typedef void (*gate_unpin_fn)(void *arg, const char *qname, int family, const void *addr);

struct gate_pins *gate_pins_new(size_t max);
void gate_pins_free(struct gate_pins *t);

/* Would a put of this key succeed (it is present, or there is room)? */
bool gate_pins_room(const struct gate_pins *t, const char *qname, int family, const void *addr);

/* For a present key, moves its expiry later (never earlier) and returns true; false if absent. */
bool gate_pins_refresh(struct gate_pins *t, const char *qname, int family, const void *addr,
		       uint64_t expires_ms);

/* Inserts, or for a present key moves its expiry later (never earlier: an earlier answer's
 * clients may still be inside their TTL). Returns 1 inserted, 0 refreshed, -1 full. */
int gate_pins_put(struct gate_pins *t, const char *qname, int family, const void *addr,
		  uint64_t expires_ms);

/* Removes every pin that expires at or before now, calling fn (may be NULL) for each first.
 * Returns how many; *next (if not NULL) gets the earliest remaining expiry, 0 if none. */
size_t gate_pins_expire(struct gate_pins *t, uint64_t now_ms, gate_unpin_fn fn, void *arg,
			uint64_t *next);

size_t gate_pins_count(const struct gate_pins *t);

#endif
