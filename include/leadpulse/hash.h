/* leadpulse: the one 64-bit hash (src/core/hash.c), used for event-id de-duplication, emitted
 * event ids, the engine's lead cache and batch map, and the in-memory store's lead table. */
#ifndef LEADPULSE_HASH_H
#define LEADPULSE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* Well-mixed 64-bit hash of len bytes (murmur3's mixing, word at a time): every input bit
 * reaches every output bit, and the result is the same on every host (little-endian loads), so
 * ids derived from it agree across machines. Callers that hash producer-chosen keys into tables
 * pass a per-process random seed. Pinned by test vectors (tests/unit/test_core_lookup.c). */
uint64_t lp_hash64(const void *data, size_t len, uint64_t seed);

#endif
